/* aws_creds_internal: the provider's state and the helpers aws_creds.c
 * shares with aws_assume.c. Only those two files include it; the rest of the
 * gateway sees aws_creds.h. Each helper is described where it is defined
 * (aws_creds.c); errors go into err, secrets never do. */
#ifndef GW_AWS_CREDS_INTERNAL_H
#define GW_AWS_CREDS_INTERNAL_H

#include <stddef.h>

#include <curl/curl.h>

#include "aws_creds.h"
#include "buf.h"

#define AWS_CREDS_TIMEOUT_MS 5000      /* per HTTP call: STS, ECS */

typedef enum {
    AWS_CREDS_AUTO,
    AWS_CREDS_STATIC,
    AWS_CREDS_ENV,
    AWS_CREDS_WEB_IDENTITY,
    AWS_CREDS_ECS,
    AWS_CREDS_IMDS,
    AWS_CREDS_PROFILE, /* last of the `source` values; resolved into one of the kinds below or above */
    AWS_CREDS_PROCESS,
    AWS_CREDS_ASSUME_ROLE,
} aws_creds_kind;

struct aws_creds {
    aws_creds_kind kind; /* AWS_CREDS_AUTO until the first aws_creds_get picks a source */
    /* Inputs, owned copies (NULL: not set): from the config, completed
     * from the environment when the source is picked. */
    char *access_key_id, *secret_access_key, *session_token;
    char *role_arn, *role_session_name, *web_identity_token_file;
    char *sts_endpoint, *imds_endpoint, *ecs_endpoint;
    char *region;
    uint64_t timeout_ms; /* 0: the source's default */
    char *profile;       /* profile: its name (else AWS_PROFILE, else "default") */
    char *process;       /* process: the credential_process command */
    /* assume_role: STS AssumeRole (role_arn, role_session_name and
     * sts_endpoint above) signed with the credentials of `base`. */
    aws_creds *base;
    char *external_id;
    long duration_s;
    /* Set when the source is picked: the ECS credentials URL and its
     * authorization (a value, or a file re-read on every refresh). */
    char *ecs_url, *ecs_token, *ecs_token_file;
    aws_creds_value cur;
    int have;        /* cur holds credentials */
    time_t retry_at; /* after a failed refresh: no new attempt before this while cur is valid */
};

typedef struct aws_creds_http_req {
    const char *method; /* GET, PUT (empty body) or POST (form body) */
    const char *url;
    const struct curl_slist *headers;
    const char *form; /* POST body, else NULL */
    long timeout_ms;
    int direct; /* never through a proxy: link-local and loopback endpoints */
} aws_creds_http_req;

int aws_creds_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An environment variable, NULL when unset or empty. */
const char *aws_creds_env(const char *name);
/* *dst replaced by a copy of src; -1 on out-of-memory. */
int aws_creds_dup(char **dst, const char *src);
/* Zeroes a buffer that held a secret, then frees it. */
void aws_creds_buf_wipe(buf *b);
/* 1 with an STS <Error>'s Code and Message in err, 0 when there is none. */
int aws_creds_sts_error(const char *body, size_t len, char *err, size_t errlen);
/* One HTTP exchange: *status and the reply, or -1 on a transport failure. */
int aws_creds_http(const aws_creds_http_req *r, long *status, buf *reply, char *err, size_t errlen);
/* "Name: value" appended to *list; -1 on out-of-memory. */
int aws_creds_header(struct curl_slist **list, const char *name, const char *value);
/* A whole token file, whitespace trimmed, NUL-terminated into out. */
int aws_creds_read_token(const char *path, buf *out, char *err, size_t errlen);
/* p's configured timeout, else def_ms. */
long aws_creds_timeout(const aws_creds *p, long def_ms);
/* Whether s is an http:// or https:// URL. */
int aws_creds_is_http_url(const char *s);
/* Letters, digits and +=,.@_- only (IAM role and session names). */
int aws_creds_role_name_ok(const char *s);
/* role_arn and role_session_name as STS takes them; a located error. */
int aws_creds_check_role(const aws_creds *p, const config_node *m, char *err, size_t errlen);
/* Makes `kind` the source in use, reading its inputs. */
int aws_creds_setup(aws_creds *p, aws_creds_kind kind, char *err, size_t errlen);

#endif
