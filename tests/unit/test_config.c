#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/ssl.h>

#include "config.h"
#include "otlp.h"

#define ALL_SIGNALS ((1u << OTLP_TRACES) | (1u << OTLP_METRICS) | (1u << OTLP_LOGS))

/* Three lines that make a minimal valid config; tests append to it. */
#define MIN_LISTENER "listeners:\n  - name: a\n    grpc: 127.0.0.1:4317\n"

static config *load_ok(const char *yaml)
{
    config *c = NULL;
    char err[512] = "";
    int rc = config_load_string("gw.yaml", yaml, strlen(yaml), &c, err, sizeof(err));
    if (rc != 0)
        fail_msg("unexpected error: %s", err);
    assert_non_null(c);
    return c;
}

static void expect_error(const char *yaml, const char *want)
{
    config *c = (config *)1;
    char err[512] = "";
    assert_int_equal(config_load_string("gw.yaml", yaml, strlen(yaml), &c, err, sizeof(err)), -1);
    assert_null(c);
    assert_string_equal(err, want);
}

static void test_embedded_default(void **state)
{
    (void)state;
    config *c = NULL;
    char err[512] = "";
    int rc = config_load_string("<embedded>", config_embedded_default, strlen(config_embedded_default), &c, err,
                                sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_string_equal(c->source, "<embedded>");
    assert_int_equal(c->workers, 0);
    assert_string_equal(c->admin_addr, "127.0.0.1:8888");
    assert_int_equal(c->log_level, LOG_INFO);
    assert_int_equal(c->max_decoded_bytes, 256u << 20);
    assert_int_equal(c->max_connections, 0); /* derived from the descriptor limit */
    assert_int_equal(c->shutdown_timeout_ms, 10000);

    assert_int_equal(c->n_listeners, 1);
    const config_listener *l = &c->listeners[0];
    assert_string_equal(l->name, "default");
    assert_string_equal(l->grpc_addr, "127.0.0.1:4317");
    assert_string_equal(l->http_addr, "127.0.0.1:4318");
    assert_null(l->tls.cert_file);
    assert_null(l->tls.key_file);
    assert_int_equal(l->max_request_bytes, 8u << 20);
    assert_int_equal(l->max_concurrent_streams, 100);
    assert_int_equal(l->idle_timeout_ms, 120000);
    assert_int_equal(l->header_timeout_ms, 10000);
    assert_true(config_is_map(l->node));

    assert_int_equal(c->routing.n_backends, 1);
    assert_string_equal(c->routing.backends[0].name, "local");
    assert_string_equal(c->routing.backends[0].type, "file");
    const char *dir;
    assert_int_equal(config_str(c->routing.backends[0].node, "dir", NULL, &dir, err, sizeof(err)), 0);
    assert_string_equal(dir, "./otlp-gateway-data");

    assert_int_equal(c->routing.n_pipelines, 1);
    assert_string_equal(c->routing.pipelines[0].name, "default");
    assert_int_equal(c->routing.pipelines[0].signals, ALL_SIGNALS);
    assert_int_equal(c->routing.pipelines[0].n_backends, 1);
    assert_string_equal(c->routing.pipelines[0].backends[0], "local");
    config_free(c);
}

static void test_full_config(void **state)
{
    (void)state;
    setenv("GW_TEST_ADMIN", "0.0.0.0:9999", 1);
    config *c = load_ok("# production-like\n"
                        "workers: 4\n"
                        "admin: ${GW_TEST_ADMIN}\n"
                        "log: {level: debug}\n"
                        "limits:\n"
                        "  max_decoded_bytes: 1GB\n"
                        "  max_connections: 50000\n"
                        "shutdown_timeout: 1m\n"
                        "listeners:\n"
                        "  - name: secure\n"
                        "    grpc: 0.0.0.0:4317\n"
                        "    http: '[::]:4318'\n"
                        "    tls: {cert: /etc/gw/tls.crt, key: /etc/gw/tls.key}\n"
                        "    max_request_bytes: 16 MiB\n"
                        "    max_concurrent_streams: 10000\n"
                        "    idle_timeout: 1h\n"
                        "    header_timeout: 1500ms\n"
                        "    max_connections: 2000\n"
                        "  - name: insecure\n"
                        "    http: 0.0.0.0:14318\n"
                        "    max_request_bytes: 1KiB\n"
                        "    tls: ~\n"
                        "backends:\n"
                        "  honeycomb: {type: otlp_http, endpoint: https://api.honeycomb.io}\n"
                        "  jaeger:\n"
                        "    type: otlp_grpc\n"
                        "pipelines:\n"
                        "  - name: traces\n"
                        "    signals: [traces]\n"
                        "    backends: [honeycomb, jaeger]\n"
                        "  - name: rest\n"
                        "    signals: [logs, metrics]\n"
                        "    backends: [jaeger]\n");
    assert_int_equal(c->workers, 4);
    assert_string_equal(c->admin_addr, "0.0.0.0:9999");
    assert_int_equal(c->log_level, LOG_DEBUG);
    assert_int_equal(c->max_decoded_bytes, 1000000000);
    assert_int_equal(c->max_connections, 50000);
    assert_int_equal(c->shutdown_timeout_ms, 60000);
    assert_int_equal(c->n_listeners, 2);
    const config_listener *s = &c->listeners[0], *i = &c->listeners[1];
    assert_int_equal(s->max_connections, 2000);
    assert_int_equal(i->max_connections, 0);
    assert_string_equal(s->http_addr, "[::]:4318");
    assert_string_equal(s->tls.cert_file, "/etc/gw/tls.crt");
    assert_string_equal(s->tls.key_file, "/etc/gw/tls.key");
    assert_int_equal(s->max_request_bytes, 16u << 20);
    assert_int_equal(s->max_concurrent_streams, 10000);
    assert_int_equal(s->idle_timeout_ms, 3600000);
    assert_int_equal(s->header_timeout_ms, 1500);
    assert_string_equal(i->name, "insecure");
    assert_null(i->grpc_addr);
    assert_null(i->tls.cert_file);
    assert_int_equal(i->max_request_bytes, 1024);
    assert_int_equal(i->idle_timeout_ms, 120000);
    assert_int_equal(c->routing.n_backends, 2);
    assert_string_equal(c->routing.backends[1].name, "jaeger");
    assert_string_equal(c->routing.backends[1].type, "otlp_grpc");
    assert_int_equal(c->routing.n_pipelines, 2);
    assert_int_equal(c->routing.pipelines[0].signals, 1u << OTLP_TRACES);
    assert_int_equal(c->routing.pipelines[0].n_backends, 2);
    assert_string_equal(c->routing.pipelines[0].backends[1], "jaeger");
    assert_int_equal(c->routing.pipelines[1].signals, (1u << OTLP_LOGS) | (1u << OTLP_METRICS));
    config_free(c);
    unsetenv("GW_TEST_ADMIN");
}

static void test_defaults_and_nulls(void **state)
{
    (void)state;
    config *c = load_ok("admin: null\nlog:\nlimits: ~\n" MIN_LISTENER "backends:\npipelines:\n");
    assert_null(c->admin_addr);
    assert_int_equal(c->log_level, LOG_INFO);
    assert_int_equal(c->max_decoded_bytes, 256u << 20);
    assert_int_equal(c->routing.n_backends, 0);
    assert_int_equal(c->routing.n_pipelines, 0);
    assert_null(c->listeners[0].http_addr);
    config_free(c);
    c = load_ok(MIN_LISTENER);
    assert_null(c->admin_addr);
    assert_int_equal(c->admin_proxy_protocol, 0);
    config_free(c);
    c = load_ok("admin: 127.0.0.1:8888\nadmin_proxy_protocol: true\n" MIN_LISTENER);
    assert_int_equal(c->admin_proxy_protocol, 1);
    config_free(c);
    expect_error(MIN_LISTENER "admin_proxy_protocol: sometimes\n",
                 "gw.yaml:4:23: admin_proxy_protocol: invalid boolean \"sometimes\" (use true or false)");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("listeners:\n  - name: a\n   grpc: x\n",
                 "gw.yaml:3:4: syntax: did not find expected '-' indicator (while parsing a block collection at line 2, "
                 "column 3)");
    expect_error("a: [1, 2\n",
                 "gw.yaml:2:1: syntax: did not find expected ',' or ']' (while parsing a flow sequence at line 1, "
                 "column 4)");
    expect_error("a: &x 1\nb: *x\n", "gw.yaml:1:4: syntax: anchors are not supported");
    expect_error("a: !!str 1\n", "gw.yaml:1:4: syntax: tags are not supported");
    expect_error("a: *x\n", "gw.yaml:1:4: syntax: aliases are not supported");
    expect_error("a: &m {b: 1}\n", "gw.yaml:1:4: syntax: anchors are not supported");
    expect_error("a: !!seq [1]\n", "gw.yaml:1:4: syntax: tags are not supported");
    expect_error("a: 1\n---\nb: 2\n", "gw.yaml:2:1: syntax: only one YAML document is allowed");
    expect_error("? [a]\n: 1\n", "gw.yaml:1:3: syntax: mapping keys must be scalars");
    expect_error("a: \"x\\0y\"\n", "gw.yaml:1:4: syntax: NUL characters are not allowed");
    expect_error("", "gw.yaml:1:1: (top level): expected a mapping, got an empty document");
    expect_error("# only a comment\n", "gw.yaml:1:1: (top level): expected a mapping, got an empty document");
    expect_error("- a\n", "gw.yaml:1:1: (top level): expected a mapping, got a sequence");
    expect_error("a: \xff\n", "gw.yaml:1:4: syntax: invalid leading UTF-8 octet");
    expect_error("a: 1\nb: x\xc3\n", "gw.yaml:2:6: syntax: invalid trailing UTF-8 octet");

    /* Nesting is bounded: 70 levels of flow sequences. */
    char deep[200] = "a: ";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    expect_error(deep, "gw.yaml:1:67: syntax: nesting deeper than 64 levels");
}

static void test_duplicate_yaml_key(void **state)
{
    (void)state;
    expect_error(MIN_LISTENER "workers: 1\nworkers: 2\n",
                 "gw.yaml:5:1: workers: duplicate key (first at line 4, column 1)");
    expect_error("listeners:\n  - {name: a, grpc: 127.0.0.1:1, name: b}\n",
                 "gw.yaml:2:34: listeners[0].name: duplicate key (first at line 2, column 6)");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_error(MIN_LISTENER "listner: {}\n",
                 "gw.yaml:4:1: listner: unknown key (expected one of: workers, admin, admin_proxy_protocol, log, "
                 "limits, shutdown_timeout, listeners, backends, pipelines, auth, tenants, sampling, cluster)");
    expect_error(MIN_LISTENER "    grcp: 1.2.3.4:1\n",
                 "gw.yaml:4:5: listeners[0].grcp: unknown key (expected one of: name, grpc, http, tls, "
                 "max_request_bytes, max_concurrent_streams, idle_timeout, header_timeout, proxy_protocol, max_connections, auth, "
                 "allow_cidrs, tenant, cidr_tenants)");
    expect_error(MIN_LISTENER "    tls: {cert: a, key: b, ca: c}\n",
                 "gw.yaml:4:28: listeners[0].tls.ca: unknown key (expected one of: cert, key, client_ca, client_auth, "
                 "min_version, ciphers)");
    expect_error(MIN_LISTENER "log: {format: json}\n",
                 "gw.yaml:4:7: log.format: unknown key (expected one of: level)");
    expect_error(MIN_LISTENER "limits: {max: 1}\n",
                 "gw.yaml:4:10: limits.max: unknown key (expected one of: max_decoded_bytes, max_connections)");
    expect_error(MIN_LISTENER "backends: {b: {type: file}}\n"
                              "pipelines: [{name: p, signals: [logs], backends: [b], samplng: x}]\n",
                 "gw.yaml:5:55: pipelines[0].samplng: unknown key (expected one of: name, signals, backends, match, "
                 "default, resource, sampling)");
}

/* tls.min_version and tls.ciphers: defaults, overrides, located errors. The
 * cipher list is checked with OpenSSL when the config is read. */
static void test_tls_versions_and_ciphers(void **state)
{
    (void)state;
    config *c = load_ok(MIN_LISTENER "    tls: {cert: c, key: k}\n");
    assert_int_equal(c->listeners[0].tls.min_version, TLS1_2_VERSION);
    assert_null(c->listeners[0].tls.ciphers);
    config_free(c);
    c = load_ok(MIN_LISTENER "    tls: {cert: c, key: k, min_version: '1.3'}\n");
    assert_int_equal(c->listeners[0].tls.min_version, TLS1_3_VERSION);
    config_free(c);
    c = load_ok(MIN_LISTENER "    tls: {cert: c, key: k, min_version: 1.2, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256'}\n");
    assert_int_equal(c->listeners[0].tls.min_version, TLS1_2_VERSION);
    assert_string_equal(c->listeners[0].tls.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
    config_free(c);
    expect_error(MIN_LISTENER "    tls: {cert: c, key: k, min_version: 1.1}\n",
                 "gw.yaml:4:41: listeners[0].tls.min_version: expected 1.2 or 1.3");
    expect_error(MIN_LISTENER "    tls: {cert: c, key: k, ciphers: NOT-A-CIPHER}\n",
                 "gw.yaml:4:37: listeners[0].tls.ciphers: OpenSSL finds no TLS 1.2 cipher suite in \"NOT-A-CIPHER\" (an "
                 "OpenSSL cipher list, e.g. ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256)");
    expect_error(MIN_LISTENER "    tls: {cert: c, key: k, min_version: 1.3, ciphers: ECDHE-RSA-AES128-GCM-SHA256}\n",
                 "gw.yaml:4:55: listeners[0].tls.ciphers: applies to TLS 1.2 only, and min_version is 1.3 (TLS 1.3 "
                 "uses OpenSSL's suites)");
    expect_error(MIN_LISTENER "    tls: {min_version: 1.3}\n",
                 "gw.yaml:4:24: listeners[0].tls.min_version: needs cert and key");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error(MIN_LISTENER "workers: [1]\n", "gw.yaml:4:10: workers: expected an integer, got a sequence");
    expect_error(MIN_LISTENER "admin: {a: 1}\n", "gw.yaml:4:8: admin: expected a string, got a mapping");
    expect_error(MIN_LISTENER "log: debug\n", "gw.yaml:4:6: log: expected a mapping, got a scalar");
    expect_error("listeners: a\n", "gw.yaml:1:12: listeners: expected a sequence, got a scalar");
    expect_error("listeners: [a]\n", "gw.yaml:1:13: listeners[0]: expected a mapping, got a scalar");
    expect_error(MIN_LISTENER "backends: [a]\n",
                 "gw.yaml:4:11: backends: expected a mapping of name to backend, got a sequence");
    expect_error(MIN_LISTENER "backends: {a: file}\n",
                 "gw.yaml:4:15: backends.a: expected a mapping, got a scalar");
    expect_error(MIN_LISTENER "pipelines: {a: 1}\n", "gw.yaml:4:12: pipelines: expected a sequence, got a mapping");
    expect_error(MIN_LISTENER "backends: {b: {type: file}}\npipelines: [{name: p, signals: logs, backends: [b]}]\n",
                 "gw.yaml:5:32: pipelines[0].signals: expected a sequence, got a scalar");
    expect_error(MIN_LISTENER "backends: {b: {type: file}}\npipelines: [{name: p, signals: [[logs]], backends: [b]}]\n",
                 "gw.yaml:5:33: pipelines[0].signals[0]: expected a string, got a sequence");
    expect_error(MIN_LISTENER "log: {level: verbose}\n",
                 "gw.yaml:4:14: log.level: invalid log level \"verbose\" (use debug, info, warn or error)");
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_error(MIN_LISTENER "    max_request_bytes: 4XB\n",
                 "gw.yaml:4:24: listeners[0].max_request_bytes: invalid size \"4XB\" (use e.g. 4MiB)");
    expect_error(MIN_LISTENER "    max_request_bytes: 99999999999999999999\n",
                 "gw.yaml:4:24: listeners[0].max_request_bytes: size \"99999999999999999999\" is too large");
    expect_error(MIN_LISTENER "    max_request_bytes: 17179869184GiB\n",
                 "gw.yaml:4:24: listeners[0].max_request_bytes: size \"17179869184GiB\" is too large");
    expect_error(MIN_LISTENER "    max_request_bytes: 1023\n",
                 "gw.yaml:4:24: listeners[0].max_request_bytes: must be at least 1KiB");
    expect_error(MIN_LISTENER "    idle_timeout: 10x\n",
                 "gw.yaml:4:19: listeners[0].idle_timeout: invalid duration \"10x\" (use e.g. 500ms, 10s, 5m or 1h)");
    expect_error(MIN_LISTENER "    idle_timeout: -1s\n",
                 "gw.yaml:4:19: listeners[0].idle_timeout: invalid duration \"-1s\" (use e.g. 500ms, 10s, 5m or 1h)");
    expect_error(MIN_LISTENER "    idle_timeout: 0s\n",
                 "gw.yaml:4:19: listeners[0].idle_timeout: must be between 1ms and 1193h");
    expect_error(MIN_LISTENER "shutdown_timeout: 1194h\n",
                 "gw.yaml:4:19: shutdown_timeout: must be between 0ms and 1193h");
    expect_error(MIN_LISTENER "shutdown_timeout: 5124095576030432h\n",
                 "gw.yaml:4:19: shutdown_timeout: duration \"5124095576030432h\" is too long");
    expect_error(MIN_LISTENER "    max_concurrent_streams: 0\n",
                 "gw.yaml:4:29: listeners[0].max_concurrent_streams: \"0\" is out of range (1..10000)");
    expect_error(MIN_LISTENER "    max_concurrent_streams: 99999999999999999999999\n",
                 "gw.yaml:4:29: listeners[0].max_concurrent_streams: \"99999999999999999999999\" is out of range "
                 "(1..10000)");
    expect_error(MIN_LISTENER "workers: 1.5\n", "gw.yaml:4:10: workers: invalid integer \"1.5\"");
    expect_error(MIN_LISTENER "workers: 1025\n", "gw.yaml:4:10: workers: \"1025\" is out of range (0..1024)");
    expect_error(MIN_LISTENER "limits: {max_decoded_bytes: 1000B}\n",
                 "gw.yaml:4:29: limits.max_decoded_bytes: must be at least 1KiB");
    expect_error(MIN_LISTENER "limits: {max_connections: 0}\n",
                 "gw.yaml:4:27: limits.max_connections: \"0\" is out of range (1..100000000)");
    expect_error(MIN_LISTENER "    max_connections: lots\n",
                 "gw.yaml:4:22: listeners[0].max_connections: invalid integer \"lots\"");
    expect_error(MIN_LISTENER "admin: localhost\n",
                 "gw.yaml:4:8: admin: invalid address \"localhost\" (use host:port, e.g. 0.0.0.0:4317)");
    expect_error(MIN_LISTENER "admin: ::1:80\n",
                 "gw.yaml:4:8: admin: invalid address \"::1:80\" (use host:port, e.g. 0.0.0.0:4317)");
    expect_error(MIN_LISTENER "admin: 'h:65536'\n",
                 "gw.yaml:4:8: admin: invalid address \"h:65536\" (use host:port, e.g. 0.0.0.0:4317)");
    expect_error(MIN_LISTENER "    http: 4318\n",
                 "gw.yaml:4:11: listeners[0].http: invalid address \"4318\" (use host:port, e.g. 0.0.0.0:4317)");
    expect_error("listeners: [{name: 'a b', grpc: 'h:1'}]\n",
                 "gw.yaml:1:20: listeners[0].name: invalid name \"a b\" (1-64 letters, digits, '_', '-' or '.')");
}

static void test_listener_rules(void **state)
{
    (void)state;
    expect_error("workers: 1\n", "gw.yaml:1:1: listeners: at least one listener is required");
    expect_error("listeners: []\n", "gw.yaml:1:12: listeners: at least one listener is required");
    expect_error("listeners:\n  - grpc: 127.0.0.1:4317\n",
                 "gw.yaml:2:5: listeners[0].name: required key is missing");
    expect_error("listeners:\n  - name: ''\n    grpc: 127.0.0.1:4317\n",
                 "gw.yaml:2:11: listeners[0].name: must not be empty");
    expect_error(MIN_LISTENER "  - name: b\n    http: 127.0.0.1:1\n  - name: a\n    http: 127.0.0.1:2\n",
                 "gw.yaml:6:11: listeners[2].name: duplicate listener name \"a\" (first at line 2)");
    expect_error("listeners:\n  - name: a\n    max_request_bytes: 1MiB\n",
                 "gw.yaml:2:5: listeners[0]: needs grpc, http or both");
    expect_error(MIN_LISTENER "    tls: {cert: /c.pem}\n",
                 "gw.yaml:4:10: listeners[0].tls.key: required when cert is set");
    expect_error(MIN_LISTENER "    tls:\n      key: /k.pem\n",
                 "gw.yaml:5:7: listeners[0].tls.cert: required when key is set");
}

static void test_backend_and_pipeline_rules(void **state)
{
    (void)state;
    expect_error(MIN_LISTENER "backends:\n  b:\n    dir: /x\n", "gw.yaml:6:5: backends.b.type: required key is missing");
    expect_error(MIN_LISTENER "backends:\n  b:\n    type: file\n  b:\n    type: null\n",
                 "gw.yaml:7:3: backends.b: duplicate key (first at line 5, column 3)");
    expect_error(MIN_LISTENER "backends:\n  'b/c': {type: file}\n",
                 "gw.yaml:5:3: backends.b/c: invalid name \"b/c\" (1-64 letters, digits, '_', '-' or '.')");
#define BE MIN_LISTENER "backends:\n  local: {type: file}\n"
    expect_error(BE "pipelines:\n  - name: p\n    signals: [traces, spans]\n    backends: [local]\n",
                 "gw.yaml:8:23: pipelines[0].signals[1]: unknown signal \"spans\" (use traces, metrics or logs)");
    expect_error(BE "pipelines:\n  - name: p\n    signals: [logs, logs]\n    backends: [local]\n",
                 "gw.yaml:8:21: pipelines[0].signals[1]: signal logs is listed twice");
    expect_error(BE "pipelines:\n  - name: p\n    signals: []\n    backends: [local]\n",
                 "gw.yaml:8:14: pipelines[0].signals: must not be empty");
    expect_error(BE "pipelines:\n  - name: p\n    backends: [local]\n",
                 "gw.yaml:7:5: pipelines[0].signals: required key is missing");
    expect_error(BE "pipelines:\n  - name: p\n    signals: [logs]\n    backends: [local, honeycomb]\n",
                 "gw.yaml:9:23: pipelines[0].backends[1]: pipeline \"p\" names unknown backend \"honeycomb\" "
                 "(define it under backends:)");
    expect_error(MIN_LISTENER "pipelines:\n  - name: p\n    signals: [logs]\n    backends: [local]\n",
                 "gw.yaml:7:16: pipelines[0].backends[0]: pipeline \"p\" names unknown backend \"local\" "
                 "(define it under backends:)");
    expect_error(BE "pipelines:\n  - name: p\n    signals: [logs]\n    backends: [local, local]\n",
                 "gw.yaml:9:23: pipelines[0].backends[1]: backend \"local\" is listed twice");
    expect_error(BE "pipelines:\n  - {name: p, signals: [logs], backends: [local]}\n"
                    "  - {name: p, signals: [traces], backends: [local]}\n",
                 "gw.yaml:8:12: pipelines[1].name: duplicate pipeline name \"p\" (first at line 7)");
#undef BE
}

static void test_env_expansion(void **state)
{
    (void)state;
    unsetenv("GW_TEST_UNSET");
    setenv("GW_TEST_EMPTY", "", 1);
    setenv("GW_TEST_PORT", "4317", 1);
    config *c = load_ok("listeners:\n"
                        "  - name: a\n"
                        "    grpc: 127.0.0.1:${GW_TEST_PORT}\n"
                        "    http: \"${GW_TEST_UNSET:-127.0.0.1:4318}\"\n"
                        "backends:\n"
                        "  b:\n"
                        "    type: x\n"
                        "    empty: ${GW_TEST_EMPTY}\n"
                        "    empty_default: ${GW_TEST_EMPTY:-dflt}\n"
                        "    literal: $${NOT_EXPANDED} costs $5\n"
                        "    two: ${GW_TEST_PORT}-${GW_TEST_PORT}\n");
    assert_string_equal(c->listeners[0].grpc_addr, "127.0.0.1:4317");
    assert_string_equal(c->listeners[0].http_addr, "127.0.0.1:4318");
    const config_node *b = c->routing.backends[0].node;
    assert_string_equal(config_scalar(config_get(b, "empty")), "");
    assert_string_equal(config_scalar(config_get(b, "empty_default")), "dflt");
    assert_string_equal(config_scalar(config_get(b, "literal")), "${NOT_EXPANDED} costs $5");
    assert_string_equal(config_scalar(config_get(b, "two")), "4317-4317");
    config_free(c);

    expect_error(MIN_LISTENER "backends:\n  b: {type: x, token: \"Bearer ${GW_TEST_UNSET}\"}\n",
                 "gw.yaml:5:23: backends.b.token: \"${GW_TEST_UNSET}\": environment variable GW_TEST_UNSET is not "
                 "set and has no default");
    expect_error(MIN_LISTENER "admin: ${GW_TEST_PORT\n",
                 "gw.yaml:4:8: admin: unterminated \"${\" in \"${GW_TEST_PORT\"");
    expect_error(MIN_LISTENER "admin: ${1BAD}\n",
                 "gw.yaml:4:8: admin: invalid reference \"${1BAD}\" (use ${VAR}, ${VAR:-default} or ${file:/path})");
    expect_error(MIN_LISTENER "admin: ${}\n",
                 "gw.yaml:4:8: admin: invalid reference \"${}\" (use ${VAR}, ${VAR:-default} or ${file:/path})");

    /* Errors quote the raw text, never the expanded (possibly secret) value. */
    setenv("GW_TEST_SECRET", "s3cr3t-XB", 1);
    char err[512];
    config *bad = NULL;
    const char *yaml = MIN_LISTENER "    max_request_bytes: ${GW_TEST_SECRET}\n";
    assert_int_equal(config_load_string("gw.yaml", yaml, strlen(yaml), &bad, err, sizeof(err)), -1);
    assert_string_equal(err, "gw.yaml:4:24: listeners[0].max_request_bytes: invalid size \"${GW_TEST_SECRET}\" "
                             "(use e.g. 4MiB)");
    assert_null(strstr(err, "s3cr3t"));
    unsetenv("GW_TEST_SECRET");
    unsetenv("GW_TEST_EMPTY");
    unsetenv("GW_TEST_PORT");
}

static void test_file_expansion(void **state)
{
    (void)state;
    char path[] = "/tmp/gw-config-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hunter2\n", 8), 8);
    close(fd);
    char yaml[512];
    snprintf(yaml, sizeof(yaml), MIN_LISTENER "backends:\n  b:\n    type: x\n    key: ${file:%s}\n", path);
    config *c = load_ok(yaml);
    assert_string_equal(config_scalar(config_get(c->routing.backends[0].node, "key")), "hunter2");
    config_free(c);

    /* Only one trailing newline (or CRLF) goes. */
    FILE *f = fopen(path, "w");
    fputs("a\nb\r\n\r\n", f);
    fclose(f);
    c = load_ok(yaml);
    assert_string_equal(config_scalar(config_get(c->routing.backends[0].node, "key")), "a\nb\r\n");
    config_free(c);

    f = fopen(path, "w");
    fputc('x', f);
    fputc('\0', f);
    fclose(f);
    config *bad = NULL;
    char err[512], want[512];
    assert_int_equal(config_load_string("gw.yaml", yaml, strlen(yaml), &bad, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "gw.yaml:7:10: backends.b.key: \"${file:%s}\": file contains a NUL byte", path);
    assert_string_equal(err, want);

    expect_error(MIN_LISTENER "backends:\n  b:\n    type: x\n    key: ${file:/nonexistent/gw-secret}\n",
                 "gw.yaml:7:10: backends.b.key: \"${file:/nonexistent/gw-secret}\": cannot read file: No such file "
                 "or directory");
    expect_error(MIN_LISTENER "admin: ${file:/tmp}\n",
                 "gw.yaml:4:8: admin: \"${file:/tmp}\": cannot read file: Is a directory");
    /* Secrets are small; a huge file is a mistake, not a key. */
    f = fopen(path, "w");
    for (int i = 0; i < 1024 * 1024 + 1; i++)
        fputc('k', f);
    fclose(f);
    assert_int_equal(config_load_string("gw.yaml", yaml, strlen(yaml), &bad, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "gw.yaml:7:10: backends.b.key: \"${file:%s}\": file is larger than 1MiB", path);
    assert_string_equal(err, want);
    unlink(path);
    expect_error(MIN_LISTENER "admin: ${file:}\n",
                 "gw.yaml:4:8: admin: invalid reference \"${file:}\" (use ${VAR}, ${VAR:-default} or ${file:/path})");
}

static void test_node_readers(void **state)
{
    (void)state;
    config *c = load_ok(MIN_LISTENER "backends:\n"
                                     "  out:\n"
                                     "    type: otlp_http\n"
                                     "    endpoint: https://example.com\n"
                                     "    batch: 512KiB\n"
                                     "    timeout: 250ms\n"
                                     "    retries: 5\n"
                                     "    gzip: true\n"
                                     "    verify: FALSE\n"
                                     "    headers: {a: '1', b: '2'}\n"
                                     "    hosts: [h1, h2]\n"
                                     "    bad_bool: yes\n"
                                     "    nothing:\n");
    const config_node *b = c->routing.backends[0].node;
    char err[512];
    const char *s;
    size_t size;
    uint64_t u;
    int flag;

    assert_int_equal(config_str_required(b, "endpoint", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "https://example.com");
    assert_int_equal(config_str(b, "absent", "dflt", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "dflt");
    assert_int_equal(config_str(b, "nothing", "dflt", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "dflt");
    assert_int_equal(config_size(b, "batch", 0, &size, err, sizeof(err)), 0);
    assert_int_equal(size, 512 * 1024);
    assert_int_equal(config_size(b, "absent", 77, &size, err, sizeof(err)), 0);
    assert_int_equal(size, 77);
    assert_int_equal(config_duration_ms(b, "timeout", 0, &u, err, sizeof(err)), 0);
    assert_int_equal(u, 250);
    assert_int_equal(config_duration_ms(b, "retries", 0, &u, err, sizeof(err)), 0);
    assert_int_equal(u, 5000); /* plain numbers are seconds */
    assert_int_equal(config_uint(b, "retries", 3, 0, 10, &u, err, sizeof(err)), 0);
    assert_int_equal(u, 5);
    assert_int_equal(config_uint(b, "absent", 3, 0, 10, &u, err, sizeof(err)), 0);
    assert_int_equal(u, 3);
    assert_int_equal(config_bool(b, "gzip", 0, &flag, err, sizeof(err)), 0);
    assert_int_equal(flag, 1);
    assert_int_equal(config_bool(b, "verify", 1, &flag, err, sizeof(err)), 0);
    assert_int_equal(flag, 0);
    assert_int_equal(config_bool(b, "absent", 1, &flag, err, sizeof(err)), 0);
    assert_int_equal(flag, 1);

    assert_int_equal(config_bool(b, "bad_bool", 0, &flag, err, sizeof(err)), -1);
    assert_string_equal(err, "gw.yaml:15:15: backends.out.bad_bool: invalid boolean \"yes\" (use true or false)");
    assert_int_equal(config_uint(b, "retries", 0, 0, 4, &u, err, sizeof(err)), -1);
    assert_string_equal(err, "gw.yaml:10:14: backends.out.retries: \"5\" is out of range (0..4)");
    assert_int_equal(config_str(b, "hosts", NULL, &s, err, sizeof(err)), -1);
    assert_string_equal(err, "gw.yaml:14:12: backends.out.hosts: expected a string, got a sequence");
    assert_int_equal(config_str_required(b, "token", &s, err, sizeof(err)), -1);
    assert_string_equal(err, "gw.yaml:6:5: backends.out.token: required key is missing");
    assert_int_equal(config_str_required(b, "nothing", &s, err, sizeof(err)), -1);
    assert_string_equal(err, "gw.yaml:16:13: backends.out.nothing: required key is missing");

    static const char *const allowed[] = {"type", "endpoint", "batch", "timeout", "retries", "gzip", "verify",
                                          "headers", "hosts", "nothing", NULL};
    assert_int_equal(config_check_keys(b, allowed, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "gw.yaml:15:5: backends.out.bad_bool: unknown key (expected one of: type, "));

    const config_node *h = config_get(b, "headers");
    assert_true(config_is_map(h));
    assert_false(config_is_seq(h));
    assert_int_equal(config_map_len(h), 2);
    assert_string_equal(config_map_key(h, 1), "b");
    assert_string_equal(config_scalar(config_map_value(h, 1)), "2");
    assert_null(config_map_key(h, 2));
    assert_null(config_scalar(h));
    const config_node *hosts = config_get(b, "hosts");
    assert_true(config_is_seq(hosts));
    assert_int_equal(config_seq_len(hosts), 2);
    assert_string_equal(config_scalar(config_seq_at(hosts, 0)), "h1");
    assert_null(config_seq_at(hosts, 2));
    assert_int_equal(config_seq_len(h), 0);
    assert_null(config_scalar(config_get(b, "nothing")));

    assert_int_equal(config_error(config_seq_at(hosts, 1), NULL, err, sizeof(err), "cannot resolve %s", "h2"),
                     -1);
    assert_string_equal(err, "gw.yaml:14:17: backends.out.hosts[1]: cannot resolve h2");
    assert_int_equal(config_error(h, "c", err, sizeof(err), "missing"), -1);
    assert_string_equal(err, "gw.yaml:13:14: backends.out.headers.c: missing");
    /* The value node with its own key name reads the same as (map, key). */
    assert_int_equal(config_error(config_get(b, "timeout"), "timeout", err, sizeof(err), "too short"), -1);
    assert_string_equal(err, "gw.yaml:9:14: backends.out.timeout: too short");
    assert_int_equal(config_error(b, "timeout", err, sizeof(err), "too short"), -1);
    assert_string_equal(err, "gw.yaml:9:14: backends.out.timeout: too short");
    assert_int_equal(config_error(config_get(b, "absent"), "absent", err, sizeof(err), "no location"), -1);
    assert_string_equal(err, "absent: no location");
    assert_int_equal(config_error(c->root, NULL, err, sizeof(err), "whole file"), -1);
    assert_string_equal(err, "gw.yaml:1:1: (top level): whole file");
    config_free(c);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/gw-config-file-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *yaml = MIN_LISTENER "workers: 2\n";
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    config *c = NULL;
    char err[512], want[600];
    assert_int_equal(config_load_file(path, &c, err, sizeof(err)), 0);
    assert_string_equal(c->source, path);
    assert_int_equal(c->workers, 2);
    config_free(c);

    FILE *f = fopen(path, "w");
    fputs(MIN_LISTENER "workers: x\n", f);
    fclose(f);
    assert_int_equal(config_load_file(path, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:4:10: workers: invalid integer \"x\"", path);
    assert_string_equal(err, want);
    unlink(path);

    assert_int_equal(config_load_file("/nonexistent/gw.yaml", &c, err, sizeof(err)), -1);
    assert_null(c);
    assert_string_equal(err, "/nonexistent/gw.yaml: cannot read: No such file or directory");
    config_free(NULL);
}

#define CLUSTER_HDR MIN_LISTENER "cluster:\n"

static void test_cluster(void **state)
{
    (void)state;
    config *c = load_ok(MIN_LISTENER "cluster:\n"
                                     "  advertise: 127.0.0.1:4319\n"
                                     "  members: [127.0.0.1:4319, 127.0.0.2:4319, '[::1]:4319']\n"
                                     "  secret: 0123456789abcdef\n"
                                     "  forward: {queue_bytes: 8MiB, flush: 5ms}\n"
                                     "  health: {interval: 200ms, failures: 2}\n");
    const cluster_config *cc = c->cluster;
    assert_non_null(cc);
    assert_ptr_equal(c->routing.cluster, cc);
    assert_string_equal(cc->advertise, "127.0.0.1:4319");
    assert_string_equal(cc->listen, "0.0.0.0:4319");
    assert_int_equal(cc->n_members, 3);
    assert_string_equal(cc->members[2], "[::1]:4319");
    assert_null(cc->members_dns);
    assert_int_equal(cc->forward.queue_bytes, 8u << 20);
    assert_int_equal(cc->forward.batch_bytes, 4u << 20);
    assert_int_equal(cc->forward.flush_ms, 5);
    assert_int_equal(cc->forward.health_interval_ms, 200);
    assert_int_equal(cc->forward.health_failures, 2);
    assert_int_equal(cc->dns_interval_ms, 5000);
    assert_int_equal(cc->handoff_timeout_ms, 10000);
    /* The peer listener is the last listener: gRPC only, no TLS here. */
    assert_int_equal(c->n_listeners, 2);
    assert_null(c->listeners[0].peer);
    assert_ptr_equal(c->listeners[1].peer, cc);
    assert_string_equal(c->listeners[1].name, "cluster");
    assert_string_equal(c->listeners[1].grpc_addr, "0.0.0.0:4319");
    assert_null(c->listeners[1].http_addr);
    assert_null(c->listeners[1].tls.cert_file);
    assert_int_equal(c->listeners[1].max_request_bytes, 2 * (8u << 20));
    assert_int_equal(c->auth.n_listeners, 1); /* auth never sees it: peers authenticate there */
    config_free(c);
    c = load_ok(MIN_LISTENER "cluster: {advertise: '10.0.0.5:7000', listen: '10.0.0.5:7000', members_dns: "
                             "'peers.local:7000', dns_server: '127.0.0.1:5353', tls: {cert: c, key: k, ca: a}}\n");
    assert_string_equal(c->cluster->members_dns, "peers.local:7000");
    assert_string_equal(c->cluster->tls_client_ca, "a");
    assert_null(c->cluster->forward.secret);
    assert_string_equal(c->listeners[1].grpc_addr, "10.0.0.5:7000");
    assert_string_equal(c->listeners[1].tls.cert_file, "c");
    assert_string_equal(c->listeners[1].tls.client_ca_file, "a");
    assert_int_equal(c->listeners[1].tls.client_auth, TLS_CLIENT_AUTH_REQUIRED);
    config_free(c);
    c = load_ok(MIN_LISTENER);
    assert_null(c->cluster);
    assert_null(c->routing.cluster);
    config_free(c);
}

static void test_cluster_errors(void **state)
{
    (void)state;
    expect_error(CLUSTER_HDR "  members: [a:1]\n  secret: 0123456789abcdef\n",
                 "gw.yaml:5:3: cluster.advertise: required: this member's peer address as the others reach it "
                 "(host:port)");
    expect_error(CLUSTER_HDR "  advertise: a:1\n  secret: 0123456789abcdef\n",
                 "gw.yaml:5:3: cluster.members: give the members as a static list (members) or a DNS name "
                 "(members_dns), one of them");
    expect_error(CLUSTER_HDR "  advertise: a:1\n  members: [a:1]\n  members_dns: x:1\n  secret: 0123456789abcdef\n",
                 "gw.yaml:7:16: cluster.members_dns: give the members as a static list (members) or a DNS name "
                 "(members_dns), one of them");
    expect_error(CLUSTER_HDR "  advertise: a:1\n  members: [a:1]\n",
                 "gw.yaml:5:3: cluster.secret: the peer listener must be authenticated: set secret, tls (mutual "
                 "TLS) or both");
    expect_error(CLUSTER_HDR "  advertise: a:1\n  members: [a:1]\n  secret: short\n",
                 "gw.yaml:7:11: cluster.secret: must be at least 16 characters");
    expect_error(CLUSTER_HDR "  advertise: a:1\n  members: [a:1]\n  tls: {cert: c, key: k}\n",
                 "gw.yaml:7:8: cluster.tls.ca: mutual TLS between members needs cert, key and ca");
    expect_error(CLUSTER_HDR "  advertise: a:1\n  members: [a:1, nope]\n  secret: 0123456789abcdef\n",
                 "gw.yaml:6:18: cluster.members[1]: invalid address (use host:port, e.g. 10.0.1.5:4319)");
    expect_error(CLUSTER_HDR "  advertise: a:1\n  members: [a:1, a:1]\n  secret: 0123456789abcdef\n",
                 "gw.yaml:6:18: cluster.members[1]: member \"a:1\" is listed twice");
    expect_error(CLUSTER_HDR "  advertise: a:1\n  members: [b:1, c:1]\n  secret: 0123456789abcdef\n",
                 "gw.yaml:6:12: cluster.members: must list this member's advertise address a:1 too");
    expect_error(CLUSTER_HDR "  advertise: a:1\n  members: []\n  secret: 0123456789abcdef\n",
                 "gw.yaml:6:12: cluster.members: must not be empty");
    expect_error(CLUSTER_HDR "  advertise: a:1\n  members_dns: peers\n  secret: 0123456789abcdef\n",
                 "gw.yaml:6:16: cluster.members_dns: expected name:port, e.g. gateway-peers.local:4319");
    expect_error(CLUSTER_HDR "  advertise: a:1\n  members: [a:1]\n  secret: 0123456789abcdef\n"
                             "  forward: {queue_bytes: 1MiB, batch_bytes: 2MiB}\n",
                 "gw.yaml:8:45: cluster.forward.batch_bytes: must not exceed queue_bytes");
    expect_error("listeners:\n  - {name: cluster, grpc: 127.0.0.1:4317}\ncluster:\n  advertise: a:1\n  members: [a:1]\n"
                 "  secret: 0123456789abcdef\n",
                 "gw.yaml:2:12: listeners[0].name: \"cluster\" is the peer listener's name while cluster: is set");
    expect_error(CLUSTER_HDR "  advertise: a:1\n  members: [a:1]\n  secret: 0123456789abcdef\n  peers: 3\n",
                 "gw.yaml:8:3: cluster.peers: unknown key (expected one of: advertise, listen, members, members_dns, "
                 "dns_server, dns_interval, secret, tls, forward, health, handoff_timeout)");
}

/* Two listeners on one address would both bind (SO_REUSEPORT) and share
 * its connections: refused, naming both places. */
static void test_listen_addresses(void **state)
{
    (void)state;
    assert_true(config_addrs_overlap("127.0.0.1:4317", "127.0.0.1:4317"));
    assert_true(config_addrs_overlap("0.0.0.0:4317", "127.0.0.1:4317"));
    assert_true(config_addrs_overlap("10.0.0.5:4317", "0.0.0.0:4317"));
    assert_true(config_addrs_overlap(":4317", "[::1]:4317"));      /* the system picks the family */
    assert_true(config_addrs_overlap("[::]:4317", "[::1]:4317"));
    assert_true(config_addrs_overlap("localhost:4317", "[::]:4317")); /* a name may be either family */
    assert_true(config_addrs_overlap("LocalHost:4317", "localhost:4317"));
    assert_false(config_addrs_overlap("0.0.0.0:4317", "[::]:4317")); /* v6 sockets are v6-only */
    assert_false(config_addrs_overlap("[::]:4317", "127.0.0.1:4317"));
    assert_false(config_addrs_overlap("127.0.0.1:4317", "127.0.0.2:4317"));
    assert_false(config_addrs_overlap("127.0.0.1:4317", "127.0.0.1:4318"));
    assert_false(config_addrs_overlap("127.0.0.1:0", "127.0.0.1:0")); /* any free port: two of them */

    expect_error("listeners:\n  - {name: a, grpc: 127.0.0.1:4317, http: 127.0.0.1:4317}\n",
                 "gw.yaml:2:43: listeners[0].http: 127.0.0.1:4317 takes the port of 127.0.0.1:4317 (line 2, grpc): "
                 "two listeners on one address would share its connections");
    expect_error(MIN_LISTENER "  - name: b\n    grpc: 0.0.0.0:4317\n",
                 "gw.yaml:5:11: listeners[1].grpc: 0.0.0.0:4317 takes the port of 127.0.0.1:4317 (line 3, grpc): "
                 "two listeners on one address would share its connections");
    expect_error("admin: 127.0.0.1:8888\nlisteners:\n  - {name: a, http: 127.0.0.1:8888}\n",
                 "gw.yaml:3:21: listeners[0].http: 127.0.0.1:8888 takes the port of 127.0.0.1:8888 (line 1, admin): "
                 "two listeners on one address would share its connections");
    /* The peer listener, made from cluster.advertise's port on 0.0.0.0. */
    expect_error(CLUSTER_HDR "  advertise: 10.0.0.5:4317\n  members: ['10.0.0.5:4317']\n  secret: 0123456789abcdef\n",
                 "gw.yaml:5:14: cluster.advertise: 0.0.0.0:4317 takes the port of 127.0.0.1:4317 (line 3, grpc): "
                 "two listeners on one address would share its connections");
    expect_error(CLUSTER_HDR "  advertise: 10.0.0.5:4319\n  listen: 127.0.0.1:4317\n  members: ['10.0.0.5:4319']\n"
                             "  secret: 0123456789abcdef\n",
                 "gw.yaml:6:11: cluster.listen: 127.0.0.1:4317 takes the port of 127.0.0.1:4317 (line 3, grpc): "
                 "two listeners on one address would share its connections");
    config *c = load_ok("admin: 127.0.0.1:4319\nlisteners:\n  - {name: a, grpc: '0.0.0.0:4317', http: '[::]:4317'}\n"
                        "  - {name: b, grpc: 127.0.0.1:0, http: 127.0.0.2:4319}\n  - {name: c, grpc: 127.0.0.1:0}\n");
    config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded_default),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_defaults_and_nulls),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_duplicate_yaml_key),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_tls_versions_and_ciphers),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_listener_rules),
        cmocka_unit_test(test_backend_and_pipeline_rules),
        cmocka_unit_test(test_env_expansion),
        cmocka_unit_test(test_file_expansion),
        cmocka_unit_test(test_node_readers),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_cluster),
        cmocka_unit_test(test_cluster_errors),
        cmocka_unit_test(test_listen_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
