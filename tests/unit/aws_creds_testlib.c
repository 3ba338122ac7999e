/* aws_creds_testlib: the credential endpoints on loopback and the test
 * fixture (aws_creds_testlib.h). */
#include "aws_creds_testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

#define IMDS_TOKEN "imds-session-token-AQAEAA"
#define IMDS_ROLE "gateway-role"

/* ---- the credential endpoints ---- */

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

unsigned srv_count(srv *s, const unsigned *counter)
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

void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

int setup(void **state)
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

int teardown(void **state)
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
aws_creds *provider(const char *flow, char *err, size_t errlen)
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

aws_creds *provider_ok(const char *flow)
{
    char err[512] = "";
    aws_creds *p = provider(flow, err, sizeof(err));
    if (p == NULL)
        fail_msg("unexpected error: %s", err);
    return p;
}

void expect_config_error(const char *flow, const char *want)
{
    char err[512] = "";
    aws_creds *p = provider(flow, err, sizeof(err));
    assert_null(p);
    if (strncmp(err, "gw.yaml:", 8) != 0 || strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\" or a location", err, want);
}

void get_ok(aws_creds *p, aws_credentials *c)
{
    char err[512] = "";
    if (aws_creds_get(p, c, err, sizeof(err)) != 0)
        fail_msg("aws_creds_get: %s", err);
}
