/* aws_creds: the reply parsers, time parsing, the `credentials:` config,
 * source selection from the environment, and the ECS, IMDSv2 and STS web
 * identity providers end to end against a small HTTP/1.1 server on
 * loopback that checks what they send as the real endpoints do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws_creds.h"
#include "config.h"
#include "test_util.h"

#define ROLE_ARN "arn:aws:iam::123456789012:role/gateway"
#define IMDS_TOKEN "imds-session-token-AQAEAA"
#define IMDS_ROLE "gateway-role"

/* ---- the credential endpoints ---- */

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

typedef struct srv_req {
    char method[16], path[256];
    char head[4096]; /* header lines */
    char body[8192];
} srv_req;

/* A header's value (case-insensitive name), "" when absent. */
static void srv_header(const srv_req *r, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    for (const char *line = r->head; *line != '\0';) {
        size_t len = strcspn(line, "\r\n"), nl = strlen(name);
        if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1 + strspn(line + nl + 1, " ");
            snprintf(out, cap, "%.*s", (int)(len - (size_t)(v - line)), v);
            return;
        }
        line += len;
        line += strspn(line, "\r\n");
    }
}

/* A form parameter, percent- and '+'-decoded, "" when absent. */
static void srv_form(const char *form, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = form; *p != '\0'; p += strcspn(p, "&"), p += *p == '&') {
        if (strncmp(p, name, nl) != 0 || p[nl] != '=')
            continue;
        size_t o = 0;
        for (const char *v = p + nl + 1; *v != '\0' && *v != '&' && o + 1 < cap; v++) {
            unsigned x;
            if (*v == '%' && sscanf(v + 1, "%2x", &x) == 1) {
                out[o++] = (char)x;
                v += 2;
            } else {
                out[o++] = *v == '+' ? ' ' : *v;
            }
        }
        out[o] = '\0';
        return;
    }
}

static void iso_time(time_t t, char *out, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void srv_refuse(srv *s, const char *what)
{
    if (s->problem[0] == '\0')
        snprintf(s->problem, sizeof(s->problem), "%s", what);
}

/* STS AssumeRole: a form POST signed with the base credentials for
 * eu-west-1/sts (the signature itself is recomputed by the e2e stand-in
 * with an independent implementation; here: its scope, key and token). */
static int srv_assume_role(srv *s, const srv_req *r, const char *when, char *body, size_t cap)
{
    char action[64], version[32], arn[128], name[128], ext[128], dur[32], ctype[128], auth[512], tok[128], want[256];
    s->assume_hits++;
    srv_form(r->body, "Action", action, sizeof(action));
    srv_form(r->body, "Version", version, sizeof(version));
    srv_form(r->body, "RoleArn", arn, sizeof(arn));
    srv_form(r->body, "RoleSessionName", name, sizeof(name));
    srv_form(r->body, "ExternalId", ext, sizeof(ext));
    srv_form(r->body, "DurationSeconds", dur, sizeof(dur));
    srv_header(r, "Content-Type", ctype, sizeof(ctype));
    srv_header(r, "Authorization", auth, sizeof(auth));
    srv_header(r, "X-Amz-Security-Token", tok, sizeof(tok));
    snprintf(want, sizeof(want), "AWS4-HMAC-SHA256 Credential=%s/", s->base_key);
    /* After the key: YYYYMMDD, then the scope and the signed headers. */
    const char *scope = strlen(auth) > strlen(want) + 8 ? auth + strlen(want) + 8 : NULL;
    if (strcmp(r->method, "POST") != 0 || strcmp(action, "AssumeRole") != 0 || strcmp(version, "2011-06-15") != 0 ||
        strcmp(arn, ROLE_ARN) != 0 || strcmp(name, s->session_name) != 0 || strcmp(ext, s->external_id) != 0 ||
        strcmp(dur, s->duration) != 0 || strcmp(ctype, "application/x-www-form-urlencoded; charset=utf-8") != 0 ||
        strncmp(auth, want, strlen(want)) != 0 || scope == NULL ||
        strncmp(scope, "/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date", 71) != 0 ||
        strcmp(tok, s->base_token) != 0) {
        srv_refuse(s, "sts: malformed or wrongly signed AssumeRole");
        return 400;
    }
    if (s->sts_error) {
        snprintf(body, cap,
                 "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
                 "<Code>AccessDenied</Code><Message>User: arn:aws:iam::1:user/base is not authorized to perform: "
                 "sts:AssumeRole on resource: " ROLE_ARN "</Message></Error><RequestId>r-2</RequestId>"
                 "</ErrorResponse>");
        return 403;
    }
    unsigned n = ++s->issued;
    snprintf(body, cap,
             "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
             "  <AssumeRoleResult>\n"
             "    <SourceIdentity>base</SourceIdentity>\n"
             "    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/gateway/%s</Arn>"
             "<AssumedRoleId>AROA1:%s</AssumedRoleId></AssumedRoleUser>\n"
             "    <Credentials>\n"
             "      <AccessKeyId>ASIAROLE%u</AccessKeyId>\n"
             "      <SecretAccessKey>role-secret-%u</SecretAccessKey>\n"
             "      <SessionToken>role-token-%u</SessionToken>\n"
             "      <Expiration>%s</Expiration>\n"
             "    </Credentials>\n"
             "    <PackedPolicySize>6</PackedPolicySize>\n"
             "  </AssumeRoleResult>\n"
             "  <ResponseMetadata><RequestId>r-%u</RequestId></ResponseMetadata>\n"
             "</AssumeRoleResponse>\n",
             name, name, n, n, n, when, n);
    return 200;
}

/* The answer to one request, with s->mu held: status and body. */
static int srv_route(srv *s, const srv_req *r, char *body, size_t cap)
{
    char h[512], when[32];
    iso_time(time(NULL) + s->ttl_s, when, sizeof(when));
    body[0] = '\0';
    if (strcmp(r->path, "/ecs/creds") == 0) {
        s->ecs_hits++;
        srv_header(r, "Authorization", h, sizeof(h));
        if (strcmp(r->method, "GET") != 0 || strcmp(h, s->ecs_auth) != 0) {
            srv_refuse(s, "ecs: wrong method or Authorization");
            return 401;
        }
        if (s->fail)
            return 500;
        unsigned n = ++s->issued;
        snprintf(body, cap,
                 "{\"AccessKeyId\":\"ASIAECS%u\",\"SecretAccessKey\":\"ecs/secret+%u\",\"Token\":\"ecs-token-%u\","
                 "\"Expiration\":\"%s\",\"RoleArn\":\"" ROLE_ARN "\"}",
                 n, n, n, when);
        return 200;
    }
    if (strcmp(r->path, "/latest/api/token") == 0) {
        s->imds_token_hits++;
        srv_header(r, "X-aws-ec2-metadata-token-ttl-seconds", h, sizeof(h));
        if (strcmp(r->method, "PUT") != 0 || strcmp(h, "21600") != 0) {
            srv_refuse(s, "imds: token request is not a PUT with a TTL");
            return 400;
        }
        snprintf(body, cap, IMDS_TOKEN);
        return 200;
    }
    if (strncmp(r->path, "/latest/meta-data/iam/security-credentials/", 43) == 0) {
        const char *role = r->path + 43;
        srv_header(r, "X-aws-ec2-metadata-token", h, sizeof(h));
        if (*role == '\0')
            s->imds_list_hits++;
        else
            s->imds_creds_hits++;
        if (strcmp(r->method, "GET") != 0 || strcmp(h, IMDS_TOKEN) != 0) {
            srv_refuse(s, "imds: GET without the session token");
            return 401;
        }
        if (*role == '\0') {
            snprintf(body, cap, IMDS_ROLE "\n");
            return 200;
        }
        if (strcmp(role, IMDS_ROLE) != 0)
            return 404;
        if (s->fail)
            return 500;
        unsigned n = ++s->issued;
        snprintf(body, cap,
                 "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2024-01-01T00:00:00Z\",\n  \"Type\" : "
                 "\"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAIMDS%u\",\n  \"SecretAccessKey\" : \"imds-secret-%u\",\n"
                 "  \"Token\" : \"imds-token-%u\",\n  \"Expiration\" : \"%s\"\n}",
                 n, n, n, when);
        return 200;
    }
    if (strcmp(r->path, "/sts/") == 0) {
        s->sts_hits++;
        char action[64], version[32], arn[128], name[128], tok[512], ctype[128];
        srv_form(r->body, "Action", action, sizeof(action));
        srv_form(r->body, "Version", version, sizeof(version));
        srv_form(r->body, "RoleArn", arn, sizeof(arn));
        srv_form(r->body, "RoleSessionName", name, sizeof(name));
        srv_form(r->body, "WebIdentityToken", tok, sizeof(tok));
        srv_header(r, "Content-Type", ctype, sizeof(ctype));
        srv_header(r, "Authorization", h, sizeof(h));
        if (strcmp(r->method, "POST") != 0 || strcmp(action, "AssumeRoleWithWebIdentity") != 0 ||
            strcmp(version, "2011-06-15") != 0 || strcmp(arn, ROLE_ARN) != 0 ||
            strcmp(name, s->session_name) != 0 || strcmp(ctype, "application/x-www-form-urlencoded") != 0 ||
            h[0] != '\0') {
            srv_refuse(s, "sts: malformed AssumeRoleWithWebIdentity");
            return 400;
        }
        if (s->sts_error || strcmp(tok, s->web_token) != 0) {
            snprintf(body, cap,
                     "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
                     "<Code>InvalidIdentityToken</Code><Message>Token &quot;expired&quot; &amp; refused</Message>"
                     "</Error><RequestId>r-1</RequestId></ErrorResponse>");
            return 400;
        }
        if (s->fail)
            return 503;
        unsigned n = ++s->issued;
        snprintf(body, cap,
                 "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                 "  <AssumeRoleWithWebIdentityResult>\n"
                 "    <SubjectFromWebIdentityToken>system:serviceaccount:otel:gateway</SubjectFromWebIdentityToken>\n"
                 "    <Credentials>\n"
                 "      <SessionToken>sts-token-%u&amp;more</SessionToken>\n"
                 "      <SecretAccessKey>sts-secret-%u</SecretAccessKey>\n"
                 "      <Expiration>%s</Expiration>\n"
                 "      <AccessKeyId>ASIASTS%u</AccessKeyId>\n"
                 "    </Credentials>\n"
                 "  </AssumeRoleWithWebIdentityResult>\n"
                 "</AssumeRoleWithWebIdentityResponse>\n",
                 n, n, when, n);
        return 200;
    }
    if (strcmp(r->path, "/sts-assume/") == 0)
        return srv_assume_role(s, r, when, body, cap);
    srv_refuse(s, "unknown path");
    return 404;
}

/* Reads one request: header block, then Content-Length bytes of body. */
static int srv_read(int c, srv_req *r)
{
    char buf[16384] = "";
    size_t n = 0;
    char *end;
    while ((end = strstr(buf, "\r\n\r\n")) == NULL) {
        ssize_t got = recv(c, buf + n, sizeof(buf) - 1 - n, 0);
        if (got <= 0 || n + (size_t)got >= sizeof(buf) - 1)
            return -1;
        n += (size_t)got;
        buf[n] = '\0';
    }
    size_t head_len = (size_t)(end - buf) + 4;
    if (sscanf(buf, "%15s %255s", r->method, r->path) != 2)
        return -1;
    const char *first = strstr(buf, "\r\n") + 2;
    snprintf(r->head, sizeof(r->head), "%.*s", (int)(head_len - (size_t)(first - buf)), first);
    char cl[32];
    srv_header(r, "Content-Length", cl, sizeof(cl));
    size_t want = (size_t)strtoul(cl, NULL, 10);
    if (want >= sizeof(r->body))
        return -1;
    while (n - head_len < want) {
        ssize_t got = recv(c, buf + n, sizeof(buf) - 1 - n, 0);
        if (got <= 0)
            return -1;
        n += (size_t)got;
    }
    memcpy(r->body, buf + head_len, want);
    r->body[want] = '\0';
    return 0;
}

static void srv_answer(void *ctx, int c)
{
    srv *s = ctx;
    static srv_req r; /* one server thread */
    char body[8192], head[256];
    memset(&r, 0, sizeof(r));
    if (srv_read(c, &r) != 0)
        return;
    pthread_mutex_lock(&s->mu);
    int stall = s->stall_ms;
    int status = srv_route(s, &r, body, sizeof(body));
    pthread_mutex_unlock(&s->mu);
    if (stall > 0) {
        usleep((useconds_t)stall * 1000);
        return;
    }
    int hl = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      status, strlen(body));
    send(c, head, (size_t)hl, MSG_NOSIGNAL);
    send(c, body, strlen(body), MSG_NOSIGNAL);
}

static void srv_start(srv *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->ttl_s = 3600;
    loopback_start(&s->ls, srv_answer, s);
}

static void srv_stop(srv *s)
{
    loopback_stop(&s->ls);
    pthread_mutex_destroy(&s->mu);
}

#define SRV_SET(s, field, value)                                                                                      \
    do {                                                                                                              \
        pthread_mutex_lock(&(s)->mu);                                                                                 \
        (s)->field = (value);                                                                                         \
        pthread_mutex_unlock(&(s)->mu);                                                                               \
    } while (0)

static unsigned srv_count(srv *s, const unsigned *counter)
{
    pthread_mutex_lock(&s->mu);
    unsigned n = *counter;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- fixture: a server, a clean environment, a token file ---- */

static const char *const aws_env[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL_STS", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_PROFILE", "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
};

typedef struct fx {
    srv s;
    char base[64];      /* http://127.0.0.1:<port> */
    char token_file[64];
    char dir[64];       /* a scratch directory: the shared files, scripts */
    char config_file[128], credentials_file[128];
} fx;

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    srv_start(&f->s);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", f->s.ls.port);
    for (size_t i = 0; i < sizeof(aws_env) / sizeof(aws_env[0]); i++)
        unsetenv(aws_env[i]);
    /* Never reach for a real instance metadata service from a test. */
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    snprintf(f->token_file, sizeof(f->token_file), "/tmp/aws-creds-test-XXXXXX");
    int fd = mkstemp(f->token_file);
    assert_true(fd >= 0);
    close(fd);
    snprintf(f->dir, sizeof(f->dir), "/tmp/aws-creds-dir-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    /* The shared files of the tests, never the real ~/.aws. */
    snprintf(f->config_file, sizeof(f->config_file), "%s/config", f->dir);
    snprintf(f->credentials_file, sizeof(f->credentials_file), "%s/credentials", f->dir);
    setenv("AWS_CONFIG_FILE", f->config_file, 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", f->credentials_file, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    srv_stop(&f->s);
    unlink(f->token_file);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* A provider for `credentials: <flow>` in a backend; the config is freed
 * at once, so this also checks that the provider keeps its own copies. */
static aws_creds *provider(const char *flow, char *err, size_t errlen)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "listeners:\n  - name: a\n    grpc: 127.0.0.1:4317\nbackends:\n  aws:\n    type: aws_xray\n"
             "    credentials: %s\n",
             flow);
    config *c = NULL;
    if (config_load_string("gw.yaml", yaml, strlen(yaml), &c, err, errlen) != 0)
        fail_msg("config: %s", err);
    aws_creds *p = aws_creds_from_config(c->routing.backends[0].node, "eu-west-1", err, errlen);
    config_free(c);
    return p;
}

static aws_creds *provider_ok(const char *flow)
{
    char err[512] = "";
    aws_creds *p = provider(flow, err, sizeof(err));
    if (p == NULL)
        fail_msg("unexpected error: %s", err);
    return p;
}

static void expect_config_error(const char *flow, const char *want)
{
    char err[512] = "";
    aws_creds *p = provider(flow, err, sizeof(err));
    assert_null(p);
    if (strncmp(err, "gw.yaml:", 8) != 0 || strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\" or a location", err, want);
}

static void get_ok(aws_creds *p, aws_credentials *c)
{
    char err[512] = "";
    if (aws_creds_get(p, c, err, sizeof(err)) != 0)
        fail_msg("aws_creds_get: %s", err);
}

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
    SRV_SET(&f->s, stall_ms, 800);
    char flow[256], err[512];
    snprintf(flow, sizeof(flow), "{source: imds, imds_endpoint: '%s', timeout: 150ms}", f->base);
    aws_creds *p = provider_ok(flow);
    aws_credentials c;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms < 700);
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


/* ---- profiles: shared files, credential_process, AssumeRole ---- */

static void write_files(const fx *f, const char *config, const char *credentials)
{
    unlink(f->config_file);
    unlink(f->credentials_file);
    if (config != NULL)
        write_file(f->config_file, config);
    if (credentials != NULL)
        write_file(f->credentials_file, credentials);
}

/* Expects `flow` to fail at startup with an error containing want. */
static void expect_profile_error(const char *flow, const char *want)
{
    char err[512] = "";
    aws_creds *p = provider(flow, err, sizeof(err));
    assert_null(p);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_profile_static(void **state)
{
    fx *f = *state;
    aws_credentials c;
    write_files(f, "[default]\nregion = eu-west-1\n[profile dev]\naws_access_key_id = AKIACONFIG\n"
                   "aws_secret_access_key = from-config\n",
                "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = def/secret\n"
                "aws_session_token = def-token\n[dev]\naws_access_key_id = AKIADEV\n");
    /* auto: the default profile holds keys, so it is used (after env). */
    aws_creds *p = provider_ok("{}");
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "static");
    assert_string_equal(c.access_key_id, "AKIADEFAULT");
    assert_string_equal(c.secret_access_key, "def/secret");
    assert_string_equal(c.session_token, "def-token");
    aws_creds_free(p);
    /* AWS_PROFILE; the credentials file's key wins over the config file's,
     * the secret comes from the config file. */
    setenv("AWS_PROFILE", "dev", 1);
    p = provider_ok("{}");
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "AKIADEV");
    assert_string_equal(c.secret_access_key, "from-config");
    assert_null(c.session_token);
    aws_creds_free(p);
    /* The `profile` key beats AWS_PROFILE, and resolves at startup. */
    p = provider_ok("{source: profile, profile: default}");
    assert_string_equal(aws_creds_source(p), "static");
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "AKIADEFAULT");
    aws_creds_free(p);
    /* Environment keys come before any profile. */
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env", 1);
    p = provider_ok("{}");
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "env");
    aws_creds_free(p);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    /* A default profile without credentials is skipped by auto. */
    unsetenv("AWS_PROFILE");
    write_files(f, "[default]\nregion = eu-west-1\n", NULL);
    p = provider_ok("{}");
    char err[512];
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no AWS credentials found"));
    aws_creds_free(p);
    /* ... but a named one must work. */
    setenv("AWS_PROFILE", "default", 1);
    p = provider_ok("{}");
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "profile default has no credentials"));
    aws_creds_free(p);
}

static void test_profile_errors(void **state)
{
    fx *f = *state;
    char want[256];
    write_files(f, NULL, NULL);
    expect_profile_error("{source: profile, profile: nope}", "profile nope not found");
    expect_profile_error("{source: ecs, profile: x}", "credentials.profile: not used with source ecs");
    write_files(f, "[default]\nregion\n", NULL);
    snprintf(want, sizeof(want), "credentials.source: profile: %s:2: expected key = value", f->config_file);
    expect_profile_error("{source: profile}", want);
    write_files(f,
                "[profile r1]\nrole_arn = arn:aws:iam::1:role/a\n"
                "[profile r2]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = k\ncredential_source = Environment\n"
                "[profile r3]\nrole_arn = arn:aws:iam::1:role/a\ncredential_source = Lambda\n"
                "[profile r4]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = k\nduration_seconds = 60\n"
                "[profile loop1]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = loop2\n"
                "[profile loop2]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = loop1\n"
                "[profile r5]\nrole_arn = not-an-arn\nsource_profile = k\n"
                "[profile p1]\ncredential_process = tool \"unterminated\n"
                "[profile r6]\nrole_arn = arn:aws:iam::1:role/a\ncredential_source = Environment\n",
                "[k]\naws_access_key_id = AKIAK\n");
    snprintf(want, sizeof(want), "%s:2: profile r1: role_arn needs source_profile", f->config_file);
    expect_profile_error("{profile: r1}", want);
    snprintf(want, sizeof(want), "%s:6: profile r2: source_profile and credential_source exclude", f->config_file);
    expect_profile_error("{profile: r2}", want);
    snprintf(want, sizeof(want), "%s:9: profile r3: credential_source: expected Environment", f->config_file);
    expect_profile_error("{profile: r3}", want);
    snprintf(want, sizeof(want), "%s:13: profile r4: duration_seconds: expected 900 to 43200", f->config_file);
    expect_profile_error("{profile: r4}", want);
    expect_profile_error("{profile: loop1}", "source_profile chain longer than 8 profiles");
    expect_profile_error("{profile: r5}", "profile r5: role_arn: expected a role ARN");
    snprintf(want, sizeof(want), "%s:24: profile p1: credential_process: unterminated", f->config_file);
    expect_profile_error("{profile: p1}", want);
    /* The base profile k has a key id but no secret. */
    setenv("AWS_PROFILE", "k", 1);
    expect_profile_error("{source: profile}", "aws_access_key_id without aws_secret_access_key");
    /* credential_source Environment without the variables: located. */
    snprintf(want, sizeof(want), "%s:27: profile r6: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", f->config_file);
    expect_profile_error("{profile: r6}", want);
    /* In auto the profile is resolved at each export until it works: the
     * same error each time, nothing left over from the failed attempts. */
    setenv("AWS_PROFILE", "r6", 1);
    aws_creds *p = provider_ok("{}");
    aws_credentials c;
    char err[512];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
        assert_non_null(strstr(err, want));
    }
    setenv("AWS_ACCESS_KEY_ID", "AKIAK", 1); /* env keys now win over the profile */
    setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "env");
    aws_creds_free(p);
}

/* A credential_process script that logs each run to <dir>/runs and prints
 * credentials expiring in `ttl` seconds (0: none). */
static void write_process_script(const fx *f, const char *name, const char *body)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    write_file(path, body);
    assert_int_equal(chmod(path, 0700), 0);
}

static int count_lines(const char *path)
{
    FILE *fp = fopen(path, "r");
    int n = 0, ch;
    if (fp == NULL)
        return 0;
    while ((ch = fgetc(fp)) != EOF)
        n += ch == '\n';
    fclose(fp);
    return n;
}

/* The default profile runs script `name`; the first get fails with want. */
static void expect_process_failure(const fx *f, const char *name, const char *script, const char *want)
{
    char config[512], err[512];
    aws_credentials c;
    write_process_script(f, name, script);
    snprintf(config, sizeof(config), "[default]\ncredential_process = %s/%s\n", f->dir, name);
    write_files(f, config, NULL);
    aws_creds *p = provider_ok("{source: profile}");
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    aws_creds_free(p);
}

static void test_credential_process(void **state)
{
    fx *f = *state;
    char script[1024], config[512], runs[160];
    snprintf(runs, sizeof(runs), "%s/runs", f->dir);
    /* Arguments arrive unsplit by any shell; the expiry is 2 minutes away,
     * inside the refresh window, so every get runs the process again. */
    snprintf(script, sizeof(script),
             "#!/bin/sh\n"
             "[ \"$1\" = \"--user\" ] && [ \"$2\" = \"helen smith\" ] || { echo \"bad args: $*\" >&2; exit 2; }\n"
             "echo run >> '%s'\n"
             "n=$(wc -l < '%s')\n"
             "exp=$(date -u -d @$(( $(date +%%s) + 120 )) +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n"
             "printf '{\"Version\": 1, \"AccessKeyId\": \"ASIAPROC%%s\", \"SecretAccessKey\": \"proc/secret\", "
             "\"SessionToken\": \"proc-token\", \"Expiration\": \"%%s\"}' \"$n\" \"$exp\"\n",
             runs, runs);
    write_process_script(f, "creds tool.sh", script);
    snprintf(config, sizeof(config), "[default]\ncredential_process = \"%s/creds tool.sh\" --user \"helen smith\"\n",
             f->dir);
    write_files(f, config, NULL);
    aws_creds *p = provider_ok("{source: profile}");
    assert_string_equal(aws_creds_source(p), "process");
    assert_int_equal(count_lines(runs), 0); /* nothing run at startup */
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAPROC1");
    assert_string_equal(c.secret_access_key, "proc/secret");
    assert_string_equal(c.session_token, "proc-token");
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAPROC2");
    assert_int_equal(count_lines(runs), 2);
    aws_creds_free(p);

    /* Output already expired: a failed fetch. */
    expect_process_failure(f, "expired.sh",
                           "#!/bin/sh\nprintf '{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\","
                           "\"Expiration\":\"2020-01-01T00:00:00Z\"}'\n",
                           "process credentials are already expired");
    /* A failing process: its exit status and stderr. */
    expect_process_failure(f, "fails.sh", "#!/bin/sh\necho 'token expired, run login' >&2\nexit 1\n",
                           "exit status 1: token expired, run login");
    /* Long-term keys without Expiration are fetched once. */
    write_process_script(f, "static.sh",
                         "#!/bin/sh\necho x >> \"$0.runs\"\n"
                         "printf '{\"Version\":1,\"AccessKeyId\":\"AKIAPROC\",\"SecretAccessKey\":\"s\"}'\n");
    snprintf(config, sizeof(config), "[default]\ncredential_process = %s/static.sh\n", f->dir);
    write_files(f, config, NULL);
    p = provider_ok("{source: profile}");
    get_ok(p, &c);
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "AKIAPROC");
    assert_null(c.session_token);
    snprintf(runs, sizeof(runs), "%s/static.sh.runs", f->dir);
    assert_int_equal(count_lines(runs), 1);
    aws_creds_free(p);
}

static void test_parse_process(void **state)
{
    (void)state;
    aws_creds_value v;
    char err[256];
    const char *ok = "{\"Version\": 1, \"AccessKeyId\": \"ASIA1\", \"SecretAccessKey\": \"s\", \"SessionToken\": "
                     "\"t\", \"Expiration\": \"2024-01-02T03:04:05.123Z\"}";
    assert_int_equal(aws_creds_parse_process(ok, strlen(ok), &v, err, sizeof(err)), 0);
    assert_string_equal(v.session_token, "t");
    assert_int_equal(v.expiration, 1704164645);
    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", "Version must be the number 1"},
        {"{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", "Version must be the number 1"},
        {"{\"Version\":\"1\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", "Version must be the number 1"},
        {"{\"Version\":1,\"AccessKeyId\":\"A\"}", "lacks AccessKeyId or SecretAccessKey"},
        {"{\"Version\":1,\"SecretAccessKey\":\"s\"}", "lacks AccessKeyId or SecretAccessKey"},
        {"{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"soon\"}",
         "invalid Expiration"},
        {"{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"SessionToken\":7}",
         "SessionToken is not a string"},
        {"{\"Version\":1,\"AccessKeyId\":\"A B\",\"SecretAccessKey\":\"s\"}", "not allowed in a header"},
        {"Version: 1", "credential_process output is not a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (aws_creds_parse_process(bad[i].json, strlen(bad[i].json), &v, err, sizeof(err)) != -1 ||
            strstr(err, bad[i].want) == NULL)
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, bad[i].want);
        assert_string_equal(v.access_key_id, ""); /* wiped */
    }
}

/* Points the AssumeRole stand-in at the expected request. */
static void expect_assume(fx *f, const char *base_key, const char *base_token, const char *session,
                          const char *external_id, const char *duration)
{
    pthread_mutex_lock(&f->s.mu);
    snprintf(f->s.base_key, sizeof(f->s.base_key), "%s", base_key);
    snprintf(f->s.base_token, sizeof(f->s.base_token), "%s", base_token);
    snprintf(f->s.session_name, sizeof(f->s.session_name), "%s", session);
    snprintf(f->s.external_id, sizeof(f->s.external_id), "%s", external_id);
    snprintf(f->s.duration, sizeof(f->s.duration), "%s", duration);
    pthread_mutex_unlock(&f->s.mu);
}

static void test_assume_role_profile(void **state)
{
    fx *f = *state;
    char config[1024], sts[128];
    snprintf(sts, sizeof(sts), "%s/sts-assume/", f->base);
    setenv("AWS_ENDPOINT_URL_STS", sts, 1);
    snprintf(config, sizeof(config),
             "[profile cross]\nrole_arn = " ROLE_ARN "\nsource_profile = base\nexternal_id = ext-42\n"
             "role_session_name = gw-cross\nduration_seconds = 900\n"
             "[profile chained]\nrole_arn = " ROLE_ARN "\nsource_profile = cross\nrole_session_name = gw-chain\n"
             "[profile from-env]\nrole_arn = " ROLE_ARN "\ncredential_source = Environment\n"
             "role_session_name = gw-env\n");
    write_files(f, config, "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = base/secret\n");
    aws_creds *p = provider_ok("{source: profile, profile: cross}");
    assert_string_equal(aws_creds_source(p), "assume_role");
    assert_int_equal(srv_count(&f->s, &f->s.assume_hits), 0);
    expect_assume(f, "AKIABASE", "", "gw-cross", "ext-42", "900");
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAROLE1");
    assert_string_equal(c.secret_access_key, "role-secret-1");
    assert_string_equal(c.session_token, "role-token-1");
    /* Valid for an hour: no new call. */
    get_ok(p, &c);
    assert_int_equal(srv_count(&f->s, &f->s.assume_hits), 1);
    aws_creds_free(p);

    /* Role chaining resolves at startup (a role assumed with another
     * assumed role's credentials); the stand-in checks one caller at a
     * time, so the chain's calls are exercised by the e2e test. */
    p = provider_ok("{profile: chained}");
    assert_string_equal(aws_creds_source(p), "assume_role");
    aws_creds_free(p);

    /* credential_source Environment: the session token is signed too. */
    setenv("AWS_ACCESS_KEY_ID", "ASIAENVBASE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env/secret", 1);
    setenv("AWS_SESSION_TOKEN", "env-token", 1);
    p = provider_ok("{profile: from-env}");
    expect_assume(f, "ASIAENVBASE", "env-token", "gw-env", "", "3600");
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAROLE2");
    aws_creds_free(p);
    assert_string_equal(f->s.problem, "");
}

static void test_assume_role_config(void **state)
{
    fx *f = *state;
    char flow[512];
    snprintf(flow, sizeof(flow),
             "{source: static, access_key_id: AKIABASE, secret_access_key: 'base/secret', sts_endpoint: "
             "'%s/sts-assume/', timeout: 2s, assume_role: {role_arn: '" ROLE_ARN "', external_id: 'ext:1/2', "
             "role_session_name: gw-cfg, duration: 20m}}",
             f->base);
    aws_creds *p = provider_ok(flow);
    assert_string_equal(aws_creds_source(p), "assume_role");
    expect_assume(f, "AKIABASE", "", "gw-cfg", "ext:1/2", "1200");
    /* The role's credentials last 4 minutes: inside the refresh window, so
     * each get assumes the role again (refresh before expiry). */
    SRV_SET(&f->s, ttl_s, 240);
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAROLE1");
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAROLE2");
    assert_int_equal(srv_count(&f->s, &f->s.assume_hits), 2);

    /* AccessDenied: a clear error naming the role while the old
     * credentials still serve; once they expire, get fails. */
    SRV_SET(&f->s, sts_error, true);
    get_ok(p, &c); /* the failed refresh is postponed, ASIAROLE2 stays */
    assert_string_equal(c.access_key_id, "ASIAROLE2");
    aws_creds_free(p);
    p = provider_ok(flow);
    char err[512];
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AssumeRole " ROLE_ARN ": STS error AccessDenied: User: arn:aws:iam::1:user/base is "
                                "not authorized to perform: sts:AssumeRole"));
    aws_creds_free(p);
    assert_string_equal(f->s.problem, "");

    expect_config_error("{assume_role: {external_id: x1}}", "credentials.assume_role.role_arn: required");
    expect_config_error("{assume_role: {role_arn: 'arn:a', duration: 10m}}",
                        "credentials.assume_role.duration: must be whole seconds from 15m to 12h");
    expect_config_error("{assume_role: {role_arn: 'arn:a', external_id: 'a b'}}",
                        "credentials.assume_role.external_id: expected 2 to 1224");
    expect_config_error("{assume_role: {role_arn: x}}", "credentials.assume_role.role_arn: expected a role ARN");
    expect_config_error("{assume_role: {role_arn: 'arn:a', policy: x}}", "credentials.assume_role.policy: unknown key");
    expect_config_error("{assume_role: arn}", "credentials.assume_role: expected a mapping");
    expect_config_error("{source: ecs, sts_endpoint: 'http://x/'}", "credentials.sts_endpoint: not used with source ecs");
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
        cmocka_unit_test(test_parse_process),
        cmocka_unit_test_setup_teardown(test_profile_static, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assume_role_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assume_role_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
