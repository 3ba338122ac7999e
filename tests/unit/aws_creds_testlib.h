/* aws_creds_testlib: what the aws_creds unit tests (test_aws_creds.c,
 * test_aws_profiles.c) share. A small HTTP/1.1 server on loopback answers as
 * the credential endpoints do (ECS, IMDSv2, STS AssumeRoleWithWebIdentity
 * and AssumeRole) and checks what the providers send, refusing (and
 * recording in `problem`) a request the real endpoint would refuse. The
 * fixture (setup/teardown, cmocka's state: an fx it owns) starts the
 * server, clears the AWS environment variables, disables IMDS and points the
 * shared config files at a scratch directory it removes afterwards.
 * Failures assert through cmocka. */
#ifndef GW_TEST_AWS_CREDS_TESTLIB_H
#define GW_TEST_AWS_CREDS_TESTLIB_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aws_creds.h"
#include "test_util.h" /* after <cmocka.h> */

#define ROLE_ARN "arn:aws:iam::123456789012:role/gateway"

typedef struct srv {
    loopback_server ls;
    pthread_mutex_t mu; /* guards everything below */
    long ttl_s;         /* lifetime of the credentials handed out */
    bool fail;          /* answer 500 to credential requests */
    bool sts_error;     /* STS answers an ErrorResponse */
    int stall_ms;       /* wait this long, then hang up without answering */
    char ecs_auth[128]; /* the Authorization the ECS route requires ("" none) */
    char web_token[256];    /* the WebIdentityToken STS requires */
    char session_name[128]; /* the RoleSessionName STS requires */
    /* AssumeRole: the base key id and session token (or "") its signature
     * must use, the ExternalId and DurationSeconds it must carry. */
    char base_key[64], base_token[64], external_id[64], duration[16];
    unsigned ecs_hits, imds_token_hits, imds_list_hits, imds_creds_hits, sts_hits, assume_hits, issued;
    char problem[256]; /* the first request the endpoint had to refuse */
} srv;

#define SRV_SET(s, field, value)                                                                                      \
    do {                                                                                                              \
        pthread_mutex_lock(&(s)->mu);                                                                                 \
        (s)->field = (value);                                                                                         \
        pthread_mutex_unlock(&(s)->mu);                                                                               \
    } while (0)

/* A counter of s read under its lock. */
unsigned srv_count(srv *s, const unsigned *counter);

typedef struct fx {
    srv s;
    char base[64];      /* http://127.0.0.1:<port> */
    char token_file[64];
    char dir[64];       /* a scratch directory: the shared files, scripts */
    char config_file[128], credentials_file[128];
} fx;

/* Writes content to path (asserting). */
void write_file(const char *path, const char *content);
int setup(void **state);
int teardown(void **state);

/* A provider for `credentials: <flow>` in a backend config, or NULL with err. */
aws_creds *provider(const char *flow, char *err, size_t errlen);
/* The same, failing the test on an error. */
aws_creds *provider_ok(const char *flow);
/* Expects `flow` to fail with a located error (gw.yaml:...) containing want. */
void expect_config_error(const char *flow, const char *want);
/* aws_creds_get, failing the test on an error. */
void get_ok(aws_creds *p, aws_credentials *c);

#endif
