/* auth.c: listener modes, tenants, source rules, API keys, rate limits and
 * config errors. OIDC paths are covered by test_oidc and the e2e suite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "apikey.h"
#include "auth.h"
#include "config.h"
#include "cidr.h"
#include "keys_cli.h"
#include "metrics.h"

static const char base[] =
    "listeners:\n"
    "  - {name: secure, http: 127.0.0.1:0, auth: required}\n"
    "  - {name: insecure, http: 127.0.0.1:0, auth: none, allow_cidrs: [10.0.0.0/8], tenant: legacy,\n"
    "     cidr_tenants: {10.1.0.0/16: shop, 10.1.2.0/24: legacy2}}\n"
    "auth:\n  api_keys: {file: %s}\n"
    "tenants:\n"
    "  - {id: shop, endpoints: [secure, insecure], limits: {spans_per_sec: 100},\n"
    "     client_cert_subjects: [agent-1.shop.example]}\n"
    "  - {id: legacy, endpoints: [insecure]}\n"
    "  - {id: legacy2, endpoints: [insecure], source_cidrs: [10.1.2.128/25]}\n"
    "  - {id: other, endpoints: [insecure]}\n";

typedef struct fixture {
    char keys[64];
    config *cfg;
    auth *au;
    char key_shop[64], key_other[64];
} fixture;

/* Create a key with the CLI entry point, capturing what it prints on stdout. */
static void create_key(const char *file, const char *tenant, char *out, size_t outlen)
{
    char tmpl[] = "/tmp/gw-key-out-XXXXXX";
    int fd = mkstemp(tmpl);
    int saved = dup(1);
    fflush(stdout);
    dup2(fd, 1);
    char *argv[] = {"keys", "create", "--tenant", (char *)tenant, "--keys-file", (char *)file, NULL};
    int rc = keys_cli_main(6, argv, NULL, NULL);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    assert_int_equal(rc, 0);
    FILE *f = fopen(tmpl, "r");
    assert_non_null(fgets(out, (int)outlen, f));
    out[strcspn(out, "\r\n")] = '\0';
    fclose(f);
    close(fd);
    unlink(tmpl);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->keys, sizeof(f->keys), "/tmp/gw-auth-keys-%d.yaml", (int)getpid());
    unlink(f->keys);
    create_key(f->keys, "shop", f->key_shop, sizeof(f->key_shop));
    create_key(f->keys, "nobody", f->key_other, sizeof(f->key_other));
    char yaml[2048], err[512];
    snprintf(yaml, sizeof(yaml), base, f->keys);
    assert_int_equal(config_load_string("auth.yaml", yaml, strlen(yaml), &f->cfg, err, sizeof(err)), 0);
    f->au = auth_new(&f->cfg->auth, err, sizeof(err));
    if (f->au == NULL)
        fail_msg("auth_new: %s", err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    auth_free(f->au);
    config_free(f->cfg);
    unlink(f->keys);
    free(f);
    return 0;
}

static req_origin origin(const char *listener, const char *ip, const char *authz)
{
    req_origin o = {.listener = listener, .transport = REQ_HTTP};
    struct sockaddr_in *sin = (struct sockaddr_in *)&o.peer;
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &sin->sin_addr);
    o.authorization = authz;
    o.authorization_len = authz ? strlen(authz) : 0;
    return o;
}

static void expect(fixture *f, const char *listener, const char *ip, const char *authz, req_status st,
                   const char *tenant_or_reason)
{
    req_origin o = origin(listener, ip, authz);
    auth_result r;
    auth_request(f->au, &o, &r);
    assert_int_equal(r.status, st);
    if (st == REQ_OK)
        assert_string_equal(tenant_id(r.tenant), tenant_or_reason);
    else
        assert_string_equal(r.reason, tenant_or_reason);
}

static void test_secure_listener_tokens(void **state)
{
    fixture *f = *state;
    char h[128];
    snprintf(h, sizeof(h), "Bearer %s", f->key_shop);
    expect(f, "secure", "192.0.2.1", h, REQ_OK, "shop");
    snprintf(h, sizeof(h), "bearer   %s  ", f->key_shop); /* scheme is case-insensitive */
    expect(f, "secure", "192.0.2.1", h, REQ_OK, "shop");
    expect(f, "secure", "192.0.2.1", NULL, REQ_UNAUTHENTICATED, "missing_token");
    expect(f, "secure", "192.0.2.1", "Basic dXNlcjpwYXNz", REQ_UNAUTHENTICATED, "missing_token");
    expect(f, "secure", "192.0.2.1", "Bearer ", REQ_UNAUTHENTICATED, "missing_token");
    expect(f, "secure", "192.0.2.1", "Bearer otlpgw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", REQ_UNAUTHENTICATED,
           "unknown_key");
    /* A JWT-shaped token with no OIDC provider configured is refused, not crashed on. */
    expect(f, "secure", "192.0.2.1", "Bearer a.b.c", REQ_UNAUTHENTICATED, "malformed");
    /* A valid key whose tenant is not configured. */
    snprintf(h, sizeof(h), "Bearer %s", f->key_other);
    expect(f, "secure", "192.0.2.1", h, REQ_PERMISSION_DENIED, "unknown_tenant");
}

static void test_insecure_listener_sources(void **state)
{
    fixture *f = *state;
    expect(f, "insecure", "10.9.9.9", NULL, REQ_OK, "legacy");      /* listener's tenant */
    expect(f, "insecure", "10.1.0.1", NULL, REQ_OK, "shop");        /* cidr_tenants */
    expect(f, "insecure", "10.1.2.200", NULL, REQ_OK, "legacy2");   /* longest prefix wins */
    expect(f, "insecure", "10.1.2.5", NULL, REQ_PERMISSION_DENIED, "source_not_allowed"); /* legacy2's own rule */
    expect(f, "insecure", "192.0.2.1", NULL, REQ_PERMISSION_DENIED, "source_not_allowed");
    /* An IPv4-mapped IPv6 peer is matched as IPv4. */
    req_origin o = {.listener = "insecure", .transport = REQ_GRPC};
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&o.peer;
    s6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:10.9.9.9", &s6->sin6_addr);
    auth_result r;
    auth_request(f->au, &o, &r);
    assert_int_equal(r.status, REQ_OK);
    assert_string_equal(tenant_id(r.tenant), "legacy");
}

static void test_endpoint_rules(void **state)
{
    fixture *f = *state;
    /* legacy may not use the secure endpoint: give it a key and try. */
    char key[64], h[128], err[512];
    create_key(f->keys, "legacy", key, sizeof(key));
    auth_reload(f->au);
    snprintf(h, sizeof(h), "Bearer %s", key);
    expect(f, "secure", "192.0.2.1", h, REQ_PERMISSION_DENIED, "endpoint_not_allowed");
    /* Revoke via the CLI, reload, and the key stops working. */
    apikey_store *st;
    assert_int_equal(apikey_store_load(f->keys, &st, err, sizeof(err)), 0);
    const char *tenant, *id;
    assert_int_equal(apikey_check(st, f->key_shop, strlen(f->key_shop), 0, &tenant, &id), APIKEY_OK);
    char idbuf[64];
    snprintf(idbuf, sizeof(idbuf), "%s", id);
    apikey_store_free(st);
    char *argv[] = {"keys", "revoke", idbuf, "--keys-file", f->keys, NULL};
    assert_int_equal(keys_cli_main(5, argv, NULL, NULL), 0);
    auth_reload(f->au);
    snprintf(h, sizeof(h), "Bearer %s", f->key_shop);
    expect(f, "secure", "192.0.2.1", h, REQ_UNAUTHENTICATED, "revoked_key");
}

static void test_client_certificate_subject(void **state)
{
    fixture *f = *state;
    req_origin o = origin("secure", "192.0.2.1", NULL);
    auth_result r;
    o.client_cert_subject = "agent-1.shop.example";
    auth_request(f->au, &o, &r);
    assert_int_equal(r.status, REQ_OK);
    assert_string_equal(tenant_id(r.tenant), "shop");
    assert_string_equal(r.method, "client_cert");
    o.client_cert_subject = "stranger.example";
    auth_request(f->au, &o, &r);
    assert_int_equal(r.status, REQ_UNAUTHENTICATED);
    assert_string_equal(r.reason, "unknown_client_cert");
    /* A bearer token, when present, decides (here: an unknown key). */
    o.authorization = "Bearer otlpgw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    o.authorization_len = strlen(o.authorization);
    o.client_cert_subject = "agent-1.shop.example";
    auth_request(f->au, &o, &r);
    assert_string_equal(r.reason, "unknown_key");
}

static void test_keys_file_change_is_noticed(void **state)
{
    fixture *f = *state;
    char key[64], h[128];
    create_key(f->keys, "shop", key, sizeof(key));
    snprintf(h, sizeof(h), "Bearer %s", key);
    expect(f, "secure", "192.0.2.1", h, REQ_UNAUTHENTICATED, "unknown_key"); /* not loaded yet */
    auth_reload_if_changed(f->au);
    expect(f, "secure", "192.0.2.1", h, REQ_OK, "shop");
    auth_reload_if_changed(f->au); /* unchanged: a no-op that keeps working */
    expect(f, "secure", "192.0.2.1", h, REQ_OK, "shop");
    /* A broken keys file keeps the previous keys. */
    FILE *fp = fopen(f->keys, "a");
    fputs("garbage: [\n", fp);
    fclose(fp);
    auth_reload_if_changed(f->au);
    expect(f, "secure", "192.0.2.1", h, REQ_OK, "shop");
}

/* The tenant the shop API key authenticates as. */
static const tenant *shop_tenant(fixture *f)
{
    char h[128];
    snprintf(h, sizeof(h), "Bearer %s", f->key_shop);
    req_origin o = origin("secure", "192.0.2.1", h);
    auth_result r;
    auth_request(f->au, &o, &r);
    assert_int_equal(r.status, REQ_OK);
    return r.tenant;
}

static void test_rate_limit(void **state)
{
    const tenant *shop = shop_tenant(*state);
    uint32_t retry = 0;
    /* 100 spans/s with a 1 s burst: 150 pass once (debt), then refused. */
    assert_int_equal(auth_admit(shop, OTLP_TRACES, 150, 1000, &retry), REQ_OK);
    assert_int_equal(auth_admit(shop, OTLP_TRACES, 1, 10, &retry), REQ_THROTTLED);
    assert_true(retry >= 1);
    /* Other signals have no limit configured. */
    assert_int_equal(auth_admit(shop, OTLP_LOGS, 100000, 10, &retry), REQ_OK);
    assert_int_equal(auth_admit(NULL, OTLP_TRACES, 1u << 30, 1u << 30, &retry), REQ_OK);
}

/* A known tenant's items, accepted and refused by reason, in its counters. */
static void test_tenant_item_counters(void **state)
{
    const tenant *shop = shop_tenant(*state);
    const char *id = tenant_id(shop);
    char labels[160];
    snprintf(labels, sizeof(labels), "tenant=\"%s\",signal=\"logs\"", id);
    metric_series *in = metrics_series(metrics_family("otlp_gateway_tenant_items_total", METRIC_COUNTER, ""), labels);
    snprintf(labels, sizeof(labels), "tenant=\"%s\",signal=\"logs\",reason=\"throttled\"", id);
    metric_series *thr =
        metrics_series(metrics_family("otlp_gateway_tenant_refused_items_total", METRIC_COUNTER, ""), labels);
    uint64_t in0 = metrics_value(in), thr0 = metrics_value(thr);
    auth_count_items(shop, OTLP_LOGS, 7);
    auth_count_refused(shop, OTLP_LOGS, "throttled", 5);
    auth_count_items(NULL, OTLP_LOGS, 100); /* no tenant: nothing */
    auth_count_refused(NULL, OTLP_LOGS, "throttled", 100);
    assert_int_equal(metrics_value(in), in0 + 7);
    assert_int_equal(metrics_value(thr), thr0 + 5);
}

static void config_fails(const char *yaml, const char *expected)
{
    config *cfg;
    char err[512];
    assert_int_equal(config_load_string("bad.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)), 0);
    auth *a = auth_new(&cfg->auth, err, sizeof(err));
    if (a != NULL || strstr(err, expected) == NULL)
        fail_msg("expected error containing \"%s\", got \"%s\"", expected, a ? "(none)" : err);
    config_free(cfg);
}

static void test_config_errors(void **state)
{
    (void)state;
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, auth: maybe}]\n",
                 "bad.yaml:1:48: listeners[0].auth: expected \"required\"");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, auth: required}]\n", "no auth.oidc providers");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, allow_cidrs: [10.0.0.1/8]}]\n", "invalid CIDR \"10.0.0.1/8\"");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, tenant: ghost}]\n", "no tenant \"ghost\"");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0}]\ntenants: [{id: t, endpoints: [b]}]\n",
                 "no listener named \"b\"");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, tenant: t}]\ntenants: [{id: t, endpoints: [a]}, {id: t, endpoints: [a]}]\n",
                 "duplicate tenant \"t\"");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, tenant: t}]\ntenants: [{id: t, endpoints: [a]}, {id: 'x\"y', endpoints: [a]}]\n",
                 "at most 128 characters");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0}]\ntenants: [{id: t, endpoints: [a]}]\n",
                 "neither tenant nor cidr_tenants");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, tenant: t}]\ntenants: [{id: t, endpoints: [a], limits: {spans_per_second: 1}}]\n",
                 "spans_per_second");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, auth: required}]\nauth:\n  oidc:\n"
                 "    - {issuer: http://x/realms/t, algorithms: [HS256], tenant_claim: tenant}\n",
                 "unsupported algorithm \"HS256\"");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, auth: required}]\nauth:\n  oidc:\n"
                 "    - {issuer: http://x/realms/t}\n",
                 "set exactly one of tenant_claim");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, auth: required}]\nauth:\n  oidc:\n"
                 "    - {issuer: http://x/realms/t, tenant_claim: tenant, require_typ: ID}\n",
                 "bad.yaml:4:70: auth.oidc[0].require_typ: only Bearer (the typ claim of Keycloak's access tokens) is "
                 "supported");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, auth: required}]\nauth:\n  oidc:\n"
                 "    - {issuer: http://x/realms/t, tenant_claim: tenant, allowed_clients: []}\n",
                 "bad.yaml:4:74: auth.oidc[0].allowed_clients: an empty list would refuse every token");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, auth: required}]\nauth:\n  oidc:\n"
                 "    - {issuer: http://x/realms/t, tenant_claim: tenant, allowed_clients: agent}\n",
                 "auth.oidc[0].allowed_clients: expected a list");
    config_fails("listeners: [{name: a, http: 127.0.0.1:0, auth: required}]\nauth:\n  oidc:\n"
                 "    - {issuer: http://x/realms/t, tenant_claim: tenant, allowed_clients: [agent, '']}\n",
                 "auth.oidc[0].allowed_clients[1]");
}

/* auth.api_keys: exactly one source; the remote sources' own keys are read
 * by gateway/keys_source (test_keys_source). */
static void test_api_keys_config_errors(void **state)
{
    (void)state;
    static const char head[] = "listeners: [{name: a, http: 127.0.0.1:0, auth: required}]\nauth:\n";
    static const struct {
        const char *api_keys, *expected;
    } cases[] = {
        {"  api_keys: {file: /k.yaml, s3: s3://b/k}\n",
         "bad.yaml:3:33: auth.api_keys.s3: give exactly one of file, url and s3 (file is set too)"},
        {"  api_keys: {url: https://x/k, s3: s3://b/k}\n", "bad.yaml:3:36: auth.api_keys.s3: give exactly one"},
        {"  api_keys: {poll_interval: 1s}\n", "bad.yaml:3:13: auth.api_keys: needs one of file"},
        {"  api_keys: {file: /k.yaml, poll_interval: 1s}\n",
         "bad.yaml:3:44: auth.api_keys.poll_interval: applies to url and s3 sources"},
        {"  api_keys: {file: /k.yaml, ca_file: /ca.pem}\n",
         "bad.yaml:3:38: auth.api_keys.ca_file: applies to url and s3 sources"},
        {"  api_keys: {s3: s3://b/k, bucket: b}\n", "auth.api_keys.bucket: unknown key"},
        {"  api_keys: /k.yaml\n", "bad.yaml:3:13: auth.api_keys: expected a map"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml), "%s%s", head, cases[i].api_keys);
        config_fails(yaml, cases[i].expected);
    }
}

/* A url or s3 source: API-key tokens get a retryable UNAVAILABLE until the
 * first key set arrives, then are checked against it; replacing the set
 * takes effect at once (a revocation). */
static void test_remote_keys(void **state)
{
    fixture *f = *state;
    static const char yaml[] = "listeners: [{name: secure, http: 127.0.0.1:0, auth: required}]\n"
                               "auth: {api_keys: {s3: s3://bucket/keys.yaml}}\n"
                               "tenants: [{id: shop, endpoints: [secure]}]\n";
    config *cfg;
    char err[512];
    assert_int_equal(config_load_string("remote.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)), 0);
    auth *a = auth_new(&cfg->auth, err, sizeof(err));
    if (a == NULL)
        fail_msg("auth_new: %s", err);
    assert_true(auth_keys_remote(a));
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "Bearer %s", f->key_shop);
    req_origin o = {.listener = "secure", .authorization = hdr, .authorization_len = strlen(hdr)};
    auth_result r;
    auth_request(a, &o, &r);
    assert_int_equal(r.status, REQ_UNAVAILABLE);
    assert_string_equal(r.reason, "keys_unavailable");
    assert_int_equal(r.retry_after_s, 1);

    apikey_store *keys;
    assert_int_equal(apikey_store_load(f->keys, &keys, err, sizeof(err)), 0);
    auth_keys_replace(a, keys); /* auth owns it now */
    auth_request(a, &o, &r);
    assert_int_equal(r.status, REQ_OK);
    assert_string_equal(tenant_id(r.tenant), "shop");

    assert_int_equal(apikey_store_parse("empty", "keys: []\n", 9, &keys, err, sizeof(err)), 0);
    auth_keys_replace(a, keys);
    auth_request(a, &o, &r);
    assert_int_equal(r.status, REQ_UNAUTHENTICATED);
    assert_string_equal(r.reason, "unknown_key");
    auth_free(a);
    config_free(cfg);
}

static void test_cidr(void **state)
{
    (void)state;
    cidr c;
    assert_int_equal(cidr_parse("10.0.0.0/8", &c), 0);
    assert_int_equal(cidr_parse("2001:db8::/32", &c), 0);
    assert_int_equal(cidr_parse("::1", &c), 0);
    assert_int_equal(c.prefix, 128);
    assert_int_equal(cidr_parse("0.0.0.0/0", &c), 0);
    assert_int_equal(cidr_parse("10.0.0.1/8", &c), -1); /* host bits */
    assert_int_equal(cidr_parse("10.0.0.0/33", &c), -1);
    assert_int_equal(cidr_parse("10.0.0.0/", &c), -1);
    assert_int_equal(cidr_parse("10.0.0.0/-1", &c), -1);
    assert_int_equal(cidr_parse("example.com", &c), -1);
    assert_int_equal(cidr_parse("", &c), -1);
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8:1::5", &s6->sin6_addr);
    assert_int_equal(cidr_parse("2001:db8::/32", &c), 0);
    assert_true(cidr_match(&c, &ss));
    assert_int_equal(cidr_parse("2001:db9::/32", &c), 0);
    assert_false(cidr_match(&c, &ss));
    assert_int_equal(cidr_parse("10.0.0.0/8", &c), 0);
    assert_false(cidr_match(&c, &ss)); /* families differ */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secure_listener_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insecure_listener_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endpoint_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_item_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_file_change_is_noticed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_keys, setup, teardown),
        cmocka_unit_test(test_api_keys_config_errors),
        cmocka_unit_test_setup_teardown(test_client_certificate_subject, setup, teardown),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_cidr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
