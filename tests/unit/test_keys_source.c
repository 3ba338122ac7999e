/* keys_source: reading auth.api_keys' url and s3 sources (located config
 * errors), the read-only url source, and an unreachable source's error. The
 * polling and the conditional writes run against a real S3 in
 * tests/e2e/test/fleet_keys.test.js. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "keys_source.h"

static const char head[] = "listeners: [{name: a, http: 127.0.0.1:0, auth: required}]\nauth:\n  api_keys: ";

/* Reads `api_keys` (the flow map after "api_keys: "): 0 with *ks, or -1 with err. */
static int read_source(const char *api_keys, keys_source **ks, char *err, size_t errlen)
{
    char yaml[1024];
    config *cfg;
    snprintf(yaml, sizeof(yaml), "%s%s\n", head, api_keys);
    assert_int_equal(config_load_string("k.yaml", yaml, strlen(yaml), &cfg, err, errlen), 0);
    int rc = keys_source_from_config(config_get(config_get(cfg->root, "auth"), "api_keys"), ks, err, errlen);
    config_free(cfg); /* the source keeps no pointer into the config */
    return rc;
}

static void fails(const char *api_keys, const char *expected)
{
    keys_source *ks = NULL;
    char err[512] = "";
    if (read_source(api_keys, &ks, err, sizeof(err)) == 0 || strstr(err, expected) == NULL)
        fail_msg("%s: expected an error containing \"%s\", got \"%s\"", api_keys, expected, ks ? "(none)" : err);
    assert_null(ks);
}

static void test_config_errors(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    static const struct {
        const char *api_keys, *expected;
    } cases[] = {
        {"{s3: s3://bucket/k}", "k.yaml:3:13: auth.api_keys.region: required (or set AWS_REGION"},
        {"{s3: s3:/bucket/k, region: eu-west-1}", "k.yaml:3:18: auth.api_keys.s3: expected s3://bucket/key"},
        {"{s3: s3://Bucket/k, region: eu-west-1}", "auth.api_keys.s3: expected s3://bucket/key (bucket: 3-63"},
        {"{s3: s3://bucket, region: eu-west-1}", "auth.api_keys.s3: expected s3://bucket/key"},
        {"{s3: s3://bucket/a/../k, region: eu-west-1}", "auth.api_keys.s3: the object key must be"},
        {"{s3: s3://bucket/a b, region: eu-west-1}", "auth.api_keys.s3: the object key must be"},
        {"{s3: s3://bucket/k/, region: eu-west-1}", "auth.api_keys.s3: the object key must be"},
        {"{s3: s3://bucket/k, region: eu-west-1, endpoint: http://127.0.0.1:9000/bucket}",
         "auth.api_keys.endpoint: expected http(s)://host[:port] without a path"},
        {"{s3: s3://bucket/k, region: eu-west-1, endpoint: ftp://127.0.0.1}",
         "auth.api_keys.endpoint: expected http(s)://host[:port]"},
        {"{s3: s3://bucket/k, region: US-East}", "auth.api_keys.region: \"US-East\" is not a region name"},
        {"{s3: s3://bucket/k, region: eu-west-1, credentials: {source: vault}}", "auth.api_keys.credentials.source"},
        {"{s3: s3://bucket/k, region: eu-west-1, poll_interval: 10ms}",
         "k.yaml:3:67: auth.api_keys.poll_interval: at least 100ms"},
        {"{s3: s3://bucket/k, region: eu-west-1, timeout: 0s}", "auth.api_keys.timeout: must be more than 0"},
        {"{s3: s3://bucket/k, region: eu-west-1, timeout: soon}", "auth.api_keys.timeout"},
        {"{url: https://keys.example.com/k.yaml, region: eu-west-1}",
         "k.yaml:3:60: auth.api_keys.region: applies to an s3 source only"},
        {"{url: https://keys.example.com/k.yaml, credentials: {source: env}}",
         "auth.api_keys.credentials: applies to an s3 source only"},
        {"{url: ftp://keys.example.com/k.yaml}", "k.yaml:3:19: auth.api_keys.url: expected an http:// or https:// URL"},
        {"{url: https:///k.yaml}", "auth.api_keys.url: expected an http:// or https:// URL"},
        {"{url: \"https://u:p@keys.example.com/k\"}", "auth.api_keys.url: credentials in the URL are not supported"},
        {"{url: \"https://k/a\\\"b\"}", "auth.api_keys.url: expected an http:// or https:// URL"},
        {"{url: https://keys.example.com/k.yaml, ca_file: /nonexistent/ca.pem}",
         "k.yaml:3:61: auth.api_keys.ca_file: cannot read /nonexistent/ca.pem: No such file or directory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        fails(cases[i].api_keys, cases[i].expected);
}

static void test_sources(void **state)
{
    (void)state;
    keys_source *ks = (keys_source *)1;
    char err[512];
    /* A file (or nothing) is not a remote source. */
    assert_int_equal(read_source("{file: /tmp/k.yaml}", &ks, err, sizeof(err)), 0);
    assert_null(ks);
    assert_int_equal(read_source("{url: https://keys.example.com/k.yaml?token=secret, poll_interval: 1s}", &ks, err,
                                 sizeof(err)),
                     0);
    assert_non_null(ks);
    /* The query (which may carry a token) is not in what logs and metrics show. */
    assert_string_equal(keys_source_where(ks), "https://keys.example.com/k.yaml");
    /* A url source is read-only for the CLI; nothing is fetched to say so. */
    assert_int_equal(keys_source_edit(ks, apikey_edit_revoke, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "https://keys.example.com/k.yaml: a url source is read-only"));
    keys_source_free(ks);

    /* An s3 source nobody listens for: a located network error, quickly. */
    assert_int_equal(read_source("{s3: s3://bucket/dir/keys.yaml, region: eu-west-1, endpoint: http://127.0.0.1:1,"
                                 " credentials: {source: static, access_key_id: AKID, secret_access_key: s},"
                                 " timeout: 2s}",
                                 &ks, err, sizeof(err)),
                     0);
    assert_string_equal(keys_source_where(ks), "s3://bucket/dir/keys.yaml");
    apikey_store *s = (apikey_store *)1;
    assert_int_equal(keys_source_load(ks, &s, err, sizeof(err)), -1);
    assert_null(s);
    assert_non_null(strstr(err, "s3://bucket/dir/keys.yaml: "));
    assert_null(strstr(err, "AKID")); /* credentials stay out of errors */
    keys_source_free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
