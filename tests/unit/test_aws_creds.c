/* aws_creds: the reply parsers, time parsing, the `credentials:` config,
 * source selection from the environment, and the ECS, IMDSv2 and STS web
 * identity providers end to end against a small HTTP/1.1 server on
 * loopback that checks what they send as the real endpoints do
 * (aws_creds_testlib.h). Profiles, credential_process and AssumeRole are
 * tested in test_aws_profiles.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws_creds.h"
#include "aws_creds_testlib.h"

/* ---- parsers ---- */

static void test_parse_time(void **state)
{
    (void)state;
    assert_int_equal(aws_creds_parse_time("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(aws_creds_parse_time("2024-01-02T03:04:05Z"), 1704164645);
    assert_int_equal(aws_creds_parse_time("2024-01-02T03:04:05.123456Z"), 1704164645);
    assert_int_equal(aws_creds_parse_time("2024-01-02T04:04:05+01:00"), 1704164645);
    assert_int_equal(aws_creds_parse_time("2024-01-01T21:34:05-0530"), 1704164645);
    assert_int_equal(aws_creds_parse_time("2024-02-29T00:00:00Z"), 1709164800);
    static const char *const bad[] = {
        "",  "2024-01-02", "2024-01-02T03:04:05", "2024-01-02 03:04:05Z", "2024-13-02T03:04:05Z",
        "2023-02-29T00:00:00Z", "2024-04-31T00:00:00Z", "2024-01-02T24:00:00Z", "2024-01-02T03:60:00Z",
        "2024-01-02T03:04:05.Z", "2024-01-02T03:04:05Zjunk", "2024-01-02T03:04:05+1:00", "2024-01-02T03:04:05+25:00",
        "2024-1-02T03:04:05Z", "abcd-01-02T03:04:05Z", "2024-01-02T03:04:05z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (aws_creds_parse_time(bad[i]) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    /* Every prefix of a long form, each in an allocation of its own so
     * ASan sees a read past the terminator. */
    static const char full[] = "2024-01-02T03:04:05.123456789-05:30";
    for (size_t n = 0; n < sizeof(full) - 1; n++) {
        char *cut = strndup(full, n);
        assert_int_equal(aws_creds_parse_time(cut), -1);
        free(cut);
    }
}

static int parse_json(const char *s, aws_creds_value *v, char *err, size_t errlen)
{
    return aws_creds_parse_json(s, strlen(s), v, err, errlen);
}

static void test_parse_json(void **state)
{
    (void)state;
    aws_creds_value v;
    char err[256];
    assert_int_equal(parse_json("{\"Code\":\"Success\",\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s/e+c\","
                                "\"Token\":\"tok\",\"Expiration\":\"2024-01-02T03:04:05Z\",\"Type\":\"AWS-HMAC\"}",
                                &v, err, sizeof(err)),
                     0);
    assert_string_equal(v.access_key_id, "ASIA1");
    assert_string_equal(v.secret_access_key, "s/e+c");
    assert_string_equal(v.session_token, "tok");
    assert_int_equal(v.expiration, 1704164645);

    /* Long-term keys: no token, no expiry. */
    assert_int_equal(parse_json("{\"AccessKeyId\":\"AKIA1\",\"SecretAccessKey\":\"s\"}", &v, err, sizeof(err)), 0);
    assert_string_equal(v.session_token, "");
    assert_int_equal(v.expiration, 0);

    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"SecretAccessKey\":\"s\",\"Token\":\"t\"}", "AccessKeyId"},
        {"{\"AccessKeyId\":\"A\",\"Token\":\"t\"}", "SecretAccessKey"},
        {"{\"AccessKeyId\":\"\",\"SecretAccessKey\":\"s\"}", "empty"},
        {"{\"AccessKeyId\":1,\"SecretAccessKey\":\"s\"}", "AccessKeyId is not a string"},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"tomorrow\"}", "Expiration"},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"a\\r\\nX-Evil: 1\"}", "not allowed"},
        {"{\"AccessKeyId\":\"A\\u0000B\",\"SecretAccessKey\":\"s\"}", "not a JSON object"},
        {"{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"no role\",\"AccessKeyId\":\"A\"}",
         "Code AssumeRoleUnauthorizedAccess: no role"},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"", "not a JSON object"},
        {"[]", "not a JSON object"},
        {"", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(parse_json(bad[i].json, &v, err, sizeof(err)), -1);
        if (strstr(err, bad[i].want) == NULL)
            fail_msg("%s: error \"%s\" lacks \"%s\"", bad[i].json, err, bad[i].want);
        assert_string_equal(v.access_key_id, ""); /* nothing half-filled */
    }
    /* A secret longer than the field is refused, not truncated. */
    char big[512];
    snprintf(big, sizeof(big), "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"%0200d\"}", 7);
    assert_int_equal(parse_json(big, &v, err, sizeof(err)), -1);
    assert_null(strstr(err, "0000")); /* never quoted */
}

static const char sts_ok[] =
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
    "<AssumeRoleWithWebIdentityResult><Credentials>"
    "<AccessKeyId>ASIASTS</AccessKeyId><SecretAccessKey>se&lt;cr&gt;et</SecretAccessKey>"
    "<SessionToken>a&amp;b&quot;c&apos;d</SessionToken><Expiration>2024-01-02T03:04:05.000Z</Expiration>"
    "</Credentials><Audience>sts.amazonaws.com</Audience></AssumeRoleWithWebIdentityResult>"
    "</AssumeRoleWithWebIdentityResponse>";

static void test_parse_sts(void **state)
{
    (void)state;
    aws_creds_value v;
    char err[256];
    assert_int_equal(aws_creds_parse_sts(sts_ok, strlen(sts_ok), &v, err, sizeof(err)), 0);
    assert_string_equal(v.access_key_id, "ASIASTS");
    assert_string_equal(v.secret_access_key, "se<cr>et");
    assert_string_equal(v.session_token, "a&b\"c'd");
    assert_int_equal(v.expiration, 1704164645);

    static const char error_reply[] =
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
        "<Code>InvalidIdentityToken</Code><Message>No OpenIDConnect provider &apos;x&apos;</Message></Error>"
        "<RequestId>1</RequestId></ErrorResponse>";
    assert_int_equal(aws_creds_parse_sts(error_reply, strlen(error_reply), &v, err, sizeof(err)), -1);
    assert_string_equal(err, "STS error InvalidIdentityToken: No OpenIDConnect provider 'x'");

    /* AssumeRole's reply: the same <Credentials>, next to AssumedRoleUser
     * and PackedPolicySize; its AccessDenied error the same way. */
    static const char assume_ok[] =
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>"
        "<SourceIdentity>gw</SourceIdentity><AssumedRoleUser><Arn>arn:aws:sts::2:assumed-role/w/s</Arn>"
        "<AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser><Credentials><AccessKeyId>ASIAROLE</AccessKeyId>"
        "<SecretAccessKey>r/s+k</SecretAccessKey><SessionToken>FwoG&amp;tok</SessionToken>"
        "<Expiration>2024-01-02T04:04:05Z</Expiration></Credentials><PackedPolicySize>6</PackedPolicySize>"
        "</AssumeRoleResult><ResponseMetadata><RequestId>c6104cbe</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>";
    assert_int_equal(aws_creds_parse_sts(assume_ok, strlen(assume_ok), &v, err, sizeof(err)), 0);
    assert_string_equal(v.access_key_id, "ASIAROLE");
    assert_string_equal(v.secret_access_key, "r/s+k");
    assert_string_equal(v.session_token, "FwoG&tok");
    assert_int_equal(v.expiration, 1704168245);
    static const char denied[] =
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
        "<Code>AccessDenied</Code><Message>User: arn:aws:iam::1:user/gw is not authorized to perform: "
        "sts:AssumeRole on resource: arn:aws:iam::2:role/w</Message></Error><RequestId>2</RequestId>"
        "</ErrorResponse>";
    assert_int_equal(aws_creds_parse_sts(denied, strlen(denied), &v, err, sizeof(err)), -1);
    assert_string_equal(err, "STS error AccessDenied: User: arn:aws:iam::1:user/gw is not authorized to perform: "
                             "sts:AssumeRole on resource: arn:aws:iam::2:role/w");

    static const struct {
        const char *xml, *want;
    } bad[] = {
        {"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
         "<Expiration>2024-01-02T03:04:05Z</Expiration></Credentials>",
         "<SessionToken>"},
        {"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
         "<SessionToken>t</SessionToken><Expiration>soon</Expiration></Credentials>",
         "Expiration"},
        {"<Credentials><AccessKeyId>A&nbsp;</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
         "<SessionToken>t</SessionToken><Expiration>2024-01-02T03:04:05Z</Expiration></Credentials>",
         "<AccessKeyId>"},
        {"<Credentials><AccessKeyId><b>A</b></AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
         "<SessionToken>t</SessionToken><Expiration>2024-01-02T03:04:05Z</Expiration></Credentials>",
         "<AccessKeyId>"},
        {"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
         "<SessionToken>t</SessionToken><Expiration>2024-01-02T03:04:05Z</Expiration>",
         "no complete <Credentials>"},
        {"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s", "no complete <Credentials>"},
        {"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s &amp</SecretAccessKey>"
         "<SessionToken>t</SessionToken><Expiration>2024-01-02T03:04:05Z</Expiration></Credentials>",
         "<SecretAccessKey>"},
        {"<Error><Message>m</Message></Error>", "STS error (no code): m"},
        {"<Error><Code>Throttling</Code>", "STS error reply is truncated"},
        {"", "no complete <Credentials>"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(aws_creds_parse_sts(bad[i].xml, strlen(bad[i].xml), &v, err, sizeof(err)), -1);
        if (strstr(err, bad[i].want) == NULL)
            fail_msg("%s: error \"%s\" lacks \"%s\"", bad[i].xml, err, bad[i].want);
        assert_string_equal(v.access_key_id, "");
    }
    /* Every truncation before </Credentials> ends fails cleanly, reading
     * nothing past the cut (ASan checks: each cut is its own allocation). */
    size_t complete = (size_t)(strstr(sts_ok, "</Credentials>") - sts_ok) + strlen("</Credentials>");
    for (size_t n = 0; n < complete; n++) {
        char *cut = malloc(n ? n : 1);
        memcpy(cut, sts_ok, n);
        assert_int_equal(aws_creds_parse_sts(cut, n, &v, err, sizeof(err)), -1);
        free(cut);
    }
}

/* ---- config ---- */

static void test_config_errors(void **state)
{
    (void)state; /* the fixture's clean environment is what matters */
    expect_config_error("{bogus: 1}", "backends.aws.credentials.bogus: unknown key");
    expect_config_error("[a]", "backends.aws.credentials: expected a mapping");
    expect_config_error("{source: vault}", "credentials.source: invalid value (use one of: auto, static, env, "
                                           "web_identity, ecs, imds, profile)");
    expect_config_error("{source: static, access_key_id: AKIA1}", "credentials.secret_access_key: required");
    expect_config_error("{secret_access_key: s3cr3t}", "credentials.access_key_id: required");
    expect_config_error("{session_token: t}", "credentials.access_key_id: required");
    expect_config_error("{source: ecs, role_arn: 'arn:aws:iam::1:role/x'}",
                        "credentials.role_arn: not used with source ecs");
    expect_config_error("{source: env, access_key_id: A, secret_access_key: B}", "not used with source env");
    expect_config_error("{sts_endpoint: 'ftp://sts'}", "credentials.sts_endpoint: expected an http:// or https://");
    expect_config_error("{imds_endpoint: ''}", "credentials.imds_endpoint: must not be empty");
    expect_config_error("{timeout: 5x}", "credentials.timeout: invalid duration");
    expect_config_error("{timeout: 2m}", "credentials.timeout: must be from 10ms to 60s");
    expect_config_error("{role_arn: gateway}", "credentials.role_arn: expected a role ARN");
    expect_config_error("{role_session_name: 'a b'}", "credentials.role_session_name: expected 2 to 64");
    expect_config_error("{access_key_id: 'AKIA 1', secret_access_key: s}", "not allowed in a header");
    /* Explicit sources need their inputs at startup; the error names them. */
    expect_config_error("{source: env}", "credentials.source: env: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    expect_config_error("{source: web_identity}", "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE");
    expect_config_error("{source: ecs}", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor _FULL_URI");
    expect_config_error("{source: imds}", "disabled by AWS_EC2_METADATA_DISABLED");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds", 1);
    expect_config_error("{source: ecs}", "plain http is only allowed");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "file:///etc/passwd", 1);
    expect_config_error("{source: ecs}", "not an http(s) URL");
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "creds", 1);
    expect_config_error("{source: ecs}", "must start with /");
}

static void test_full_uri_hosts(void **state)
{
    (void)state;
    static const char *const allowed[] = {
        "https://creds.example.com/v1", "http://127.0.0.1:9/x", "http://127.3.4.5/x", "http://[::1]:80/x",
        "http://169.254.170.2/v2/credentials", "http://169.254.170.23/v1/credentials",
        "http://[fd00:ec2::23]/v1/credentials", "http://[::ffff:127.0.0.1]/x",
    };
    static const char *const refused[] = {"http://169.254.170.3/x", "http://localhost.example.com/x",
                                          "http://[fd00:ec2::24]/x", "http://128.0.0.1/x"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", allowed[i], 1);
        aws_creds_free(provider_ok("{source: ecs}"));
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", refused[i], 1);
        expect_config_error("{source: ecs}", "plain http is only allowed");
    }
}

/* ---- source selection ---- */

static void test_static_and_env(void **state)
{
    (void)state;
    aws_credentials c;
    aws_creds *p = provider_ok("{source: static, access_key_id: AKIASTATIC, secret_access_key: 's/ecret'}");
    assert_string_equal(aws_creds_source(p), "static");
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "AKIASTATIC");
    assert_string_equal(c.secret_access_key, "s/ecret");
    assert_null(c.session_token);
    aws_creds_free(p);

    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    setenv("AWS_SESSION_TOKEN", "env-token", 1);
    p = provider_ok("{source: env}");
    /* Read at startup: a later change of the environment is not seen. */
    setenv("AWS_ACCESS_KEY_ID", "AKIACHANGED", 1);
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "AKIAENV");
    assert_string_equal(c.session_token, "env-token");
    aws_creds_free(p);
}

static void test_auto_order(void **state)
{
    fx *f = *state;
    aws_credentials c;
    char err[512];
    /* Nothing present and IMDS disabled. */
    aws_creds *p = provider_ok("{}");
    assert_string_equal(aws_creds_source(p), "auto");
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no AWS credentials found"));
    aws_creds_free(p);

    /* IMDS, last. */
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f->base, 1);
    p = provider_ok("{}");
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "imds");
    aws_creds_free(p);

    /* ECS before IMDS. */
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/creds", 1);
    char flow[256];
    snprintf(flow, sizeof(flow), "{ecs_endpoint: '%s'}", f->base);
    p = provider_ok(flow);
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "ecs");
    aws_creds_free(p);

    /* Web identity before ECS. */
    write_file(f->token_file, "jwt-from-kubernetes\n");
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", f->token_file, 1);
    setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
    setenv("AWS_ROLE_SESSION_NAME", "pod-1", 1);
    char sts[128];
    snprintf(sts, sizeof(sts), "%s/sts/", f->base);
    setenv("AWS_ENDPOINT_URL_STS", sts, 1);
    pthread_mutex_lock(&f->s.mu);
    snprintf(f->s.web_token, sizeof(f->s.web_token), "jwt-from-kubernetes");
    snprintf(f->s.session_name, sizeof(f->s.session_name), "pod-1");
    pthread_mutex_unlock(&f->s.mu);
    p = provider_ok("{}");
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "web_identity");
    aws_creds_free(p);

    /* Environment keys before web identity. */
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    p = provider_ok("{}");
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "env");
    assert_null(c.session_token);
    aws_creds_free(p);

    /* Configured keys first. */
    p = provider_ok("{access_key_id: AKIACFG, secret_access_key: cfg, session_token: cfgtok}");
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "static");
    assert_string_equal(c.access_key_id, "AKIACFG");
    assert_string_equal(c.session_token, "cfgtok");
    aws_creds_free(p);

    assert_string_equal(f->s.problem, "");
}

/* ---- providers against the endpoints ---- */

static void test_ecs_token(void **state)
{
    fx *f = *state;
    snprintf(f->s.ecs_auth, sizeof(f->s.ecs_auth), "Bearer ecs-auth-1");
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/creds", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer ecs-auth-1", 1);
    char flow[256];
    snprintf(flow, sizeof(flow), "{source: ecs, ecs_endpoint: '%s/'}", f->base);
    aws_creds *p = provider_ok(flow);
    assert_int_equal(srv_count(&f->s, &f->s.ecs_hits), 0); /* nothing fetched at startup */
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAECS1");
    assert_string_equal(c.secret_access_key, "ecs/secret+1");
    assert_string_equal(c.session_token, "ecs-token-1");
    get_ok(p, &c); /* an hour left: no new fetch */
    assert_string_equal(c.access_key_id, "ASIAECS1");
    assert_int_equal(srv_count(&f->s, &f->s.ecs_hits), 1);
    aws_creds_free(p);
    assert_string_equal(f->s.problem, "");
}

static void test_ecs_token_file_reread(void **state)
{
    fx *f = *state;
    char full[128];
    snprintf(full, sizeof(full), "%s/ecs/creds", f->base);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", full, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", f->token_file, 1);
    write_file(f->token_file, "pod-identity-token-A\n");
    SRV_SET(&f->s, ttl_s, 240); /* under 5 minutes: every get refreshes */
    pthread_mutex_lock(&f->s.mu);
    snprintf(f->s.ecs_auth, sizeof(f->s.ecs_auth), "pod-identity-token-A");
    pthread_mutex_unlock(&f->s.mu);
    aws_creds *p = provider_ok("{source: ecs}");
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAECS1");
    /* The agent rotates the file: the next refresh sends the new token. */
    write_file(f->token_file, "pod-identity-token-B");
    pthread_mutex_lock(&f->s.mu);
    snprintf(f->s.ecs_auth, sizeof(f->s.ecs_auth), "pod-identity-token-B");
    pthread_mutex_unlock(&f->s.mu);
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAECS2");
    assert_int_equal(srv_count(&f->s, &f->s.ecs_hits), 2);
    assert_string_equal(f->s.problem, "");
    /* A missing token file is an error that names the file only. */
    unlink(f->token_file);
    SRV_SET(&f->s, ttl_s, 3600);
    char err[512];
    aws_creds_free(p);
    p = provider_ok("{source: ecs}");
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, f->token_file));
    aws_creds_free(p);
}

static void test_imds_v2(void **state)
{
    fx *f = *state;
    unsetenv("AWS_EC2_METADATA_DISABLED");
    char flow[256];
    snprintf(flow, sizeof(flow), "{source: imds, imds_endpoint: '%s'}", f->base);
    aws_creds *p = provider_ok(flow);
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "imds");
    assert_string_equal(c.access_key_id, "ASIAIMDS1");
    assert_string_equal(c.secret_access_key, "imds-secret-1");
    assert_string_equal(c.session_token, "imds-token-1");
    assert_int_equal(srv_count(&f->s, &f->s.imds_token_hits), 1);
    assert_int_equal(srv_count(&f->s, &f->s.imds_list_hits), 1);
    assert_int_equal(srv_count(&f->s, &f->s.imds_creds_hits), 1);
    assert_string_equal(f->s.problem, "");
    aws_creds_free(p);
}

static void test_imds_timeout(void **state)
{
    fx *f = *state;
    unsetenv("AWS_EC2_METADATA_DISABLED");
    SRV_SET(&f->s, stall_ms, 3000);
    char flow[256], err[512];
    snprintf(flow, sizeof(flow), "{source: imds, imds_endpoint: '%s', timeout: 150ms}", f->base);
    aws_creds *p = provider_ok(flow);
    aws_credentials c;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms < 1500); /* its 150 ms timeout, not the 3 s stall */
    assert_non_null(strstr(err, "/latest/api/token"));
    aws_creds_free(p);
}

static aws_creds *web_identity(fx *f, const char *extra)
{
    write_file(f->token_file, "eyJhbGciOi.web-identity.token+/=\n");
    pthread_mutex_lock(&f->s.mu);
    snprintf(f->s.web_token, sizeof(f->s.web_token), "eyJhbGciOi.web-identity.token+/=");
    snprintf(f->s.session_name, sizeof(f->s.session_name), "gw@eu-1");
    pthread_mutex_unlock(&f->s.mu);
    char flow[512];
    snprintf(flow, sizeof(flow),
             "{source: web_identity, role_arn: '" ROLE_ARN "', role_session_name: 'gw@eu-1', "
             "web_identity_token_file: '%s', sts_endpoint: '%s/sts/'%s}",
             f->token_file, f->base, extra);
    return provider_ok(flow);
}

static void test_sts_web_identity(void **state)
{
    fx *f = *state;
    aws_creds *p = web_identity(f, "");
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "web_identity");
    assert_string_equal(c.access_key_id, "ASIASTS1");
    assert_string_equal(c.secret_access_key, "sts-secret-1");
    assert_string_equal(c.session_token, "sts-token-1&more");
    assert_int_equal(srv_count(&f->s, &f->s.sts_hits), 1);
    assert_string_equal(f->s.problem, "");
    aws_creds_free(p);
}

static void test_sts_default_session_name(void **state)
{
    fx *f = *state;
    write_file(f->token_file, "tok");
    pthread_mutex_lock(&f->s.mu);
    snprintf(f->s.web_token, sizeof(f->s.web_token), "tok");
    snprintf(f->s.session_name, sizeof(f->s.session_name), "otlp-gateway-%ld", (long)getpid());
    pthread_mutex_unlock(&f->s.mu);
    setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", f->token_file, 1);
    char flow[256];
    snprintf(flow, sizeof(flow), "{source: web_identity, sts_endpoint: '%s/sts/'}", f->base);
    aws_creds *p = provider_ok(flow);
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIASTS1");
    assert_string_equal(f->s.problem, "");
    aws_creds_free(p);
}

static void test_sts_error(void **state)
{
    fx *f = *state;
    aws_creds *p = web_identity(f, "");
    SRV_SET(&f->s, sts_error, true);
    aws_credentials c;
    char err[512];
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "STS error InvalidIdentityToken: Token \"expired\" & refused");
    /* Nothing valid yet: every get asks again (the caller paces them). */
    SRV_SET(&f->s, sts_error, false);
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIASTS1");
    assert_int_equal(srv_count(&f->s, &f->s.sts_hits), 2);
    aws_creds_free(p);
}

static void test_refresh_before_expiry(void **state)
{
    fx *f = *state;
    SRV_SET(&f->s, ttl_s, 240);
    aws_creds *p = web_identity(f, "");
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIASTS1");
    SRV_SET(&f->s, ttl_s, 3600);
    get_ok(p, &c); /* 4 minutes left: refreshed */
    assert_string_equal(c.access_key_id, "ASIASTS2");
    get_ok(p, &c); /* an hour left now */
    assert_string_equal(c.access_key_id, "ASIASTS2");
    assert_int_equal(srv_count(&f->s, &f->s.sts_hits), 2);
    aws_creds_free(p);
}

static void test_failure_keeps_valid(void **state)
{
    fx *f = *state;
    SRV_SET(&f->s, ttl_s, 240);
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/creds", 1);
    char flow[256];
    snprintf(flow, sizeof(flow), "{source: ecs, ecs_endpoint: '%s'}", f->base);
    aws_creds *p = provider_ok(flow);
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAECS1");
    SRV_SET(&f->s, fail, true);
    get_ok(p, &c); /* the refresh fails: the old ones, still valid, stay */
    assert_string_equal(c.access_key_id, "ASIAECS1");
    assert_int_equal(srv_count(&f->s, &f->s.ecs_hits), 2);
    get_ok(p, &c); /* and the next attempt waits 10 s */
    assert_int_equal(srv_count(&f->s, &f->s.ecs_hits), 2);
    aws_creds_free(p);
}

static void test_expired_and_failing(void **state)
{
    fx *f = *state;
    SRV_SET(&f->s, ttl_s, 2);
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/creds", 1);
    char flow[256], err[512];
    snprintf(flow, sizeof(flow), "{source: ecs, ecs_endpoint: '%s'}", f->base);
    aws_creds *p = provider_ok(flow);
    aws_credentials c;
    get_ok(p, &c);
    SRV_SET(&f->s, fail, true);
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAECS1");
    usleep(2500 * 1000);
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "HTTP 500"));
    assert_int_equal(srv_count(&f->s, &f->s.ecs_hits), 3);
    /* It recovers as soon as the endpoint does. */
    SRV_SET(&f->s, fail, false);
    SRV_SET(&f->s, ttl_s, 3600);
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAECS2");
    aws_creds_free(p);
}

static void test_already_expired_reply(void **state)
{
    fx *f = *state;
    SRV_SET(&f->s, ttl_s, -60);
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/ecs/creds", 1);
    char flow[256], err[512];
    snprintf(flow, sizeof(flow), "{source: ecs, ecs_endpoint: '%s'}", f->base);
    aws_creds *p = provider_ok(flow);
    aws_credentials c;
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already expired"));
    aws_creds_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_parse_json),
        cmocka_unit_test(test_parse_sts),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_uri_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_and_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_token_file_reread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sts_web_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sts_default_session_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sts_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_before_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_keeps_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_and_failing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_already_expired_reply, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
