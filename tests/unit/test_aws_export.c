/* aws_export: the SigV4 signer the AWS exporter types share -- its config
 * (region from config or environment, located errors), the Host it adds
 * (default ports dropped, as curl sends it), which headers it signs (the
 * exporter's, minus curl's removal lines) and that its Authorization is the
 * one aws_sigv4 computes for exactly those inputs. aws_sigv4 itself is
 * checked against AWS's test suite in test_sigv4.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "aws_export.h"
#include "aws_sigv4.h"

typedef struct signer_fixture {
    config *cfg;
    aws_signer *s;
} signer_fixture;

static const char *signer_up(signer_fixture *f, const char *yaml, char *err, size_t errlen)
{
    assert_int_equal(config_load_string("t.yaml", yaml, strlen(yaml), &f->cfg, err, errlen), 0);
    f->s = aws_signer_from_config(f->cfg->routing.backends[0].node, "logs", err, errlen);
    return f->s != NULL ? NULL : err;
}

static void signer_down(signer_fixture *f)
{
    aws_signer_free(f->s);
    config_free(f->cfg);
}

/* The value of header `name` among the signer's lines, or NULL. */
static const char *extra_value(const struct curl_slist *l, const char *name)
{
    size_t n = strlen(name);
    for (; l != NULL; l = l->next)
        if (strncmp(l->data, name, n) == 0 && l->data[n] == ':')
            return l->data + n + 2;
    return NULL;
}

#define STATIC_CREDS "credentials: {source: static, access_key_id: AKIDTEST, secret_access_key: SECRETTEST%s}"

static void check_signature(const char *url, const char *want_host, const char *path, const char *query,
                            const char *token)
{
    char yaml[512], err[256];
    char creds[256], tok[96] = "";
    if (token != NULL)
        snprintf(tok, sizeof(tok), ", session_token: %s", token);
    snprintf(creds, sizeof(creds), STATIC_CREDS, tok);
    snprintf(yaml, sizeof(yaml),
             "listeners: [{name: l, http: 127.0.0.1:0}]\nbackends:\n  x: {type: aws_cloudwatch_logs, region: "
             "eu-west-1, %s}\n",
             creds);
    signer_fixture f;
    const char *e = signer_up(&f, yaml, err, sizeof(err));
    if (e != NULL)
        fail_msg("%s", e);
    assert_string_equal(aws_signer_region(f.s), "eu-west-1");
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
    h = curl_slist_append(h, "x-aws-log-group: /otel/gw");
    h = curl_slist_append(h, "Content-Encoding: gzip");
    h = curl_slist_append(h, "Expect:"); /* curl's "do not send": not signed */
    export_signing req = {.url = url, .headers = h, .body = (const uint8_t *)"abc", .len = 3};
    struct curl_slist *extra = NULL;
    assert_int_equal(aws_signer_sign(f.s, &req, &extra, err, sizeof(err)), 0);

    assert_string_equal(extra_value(extra, "Host"), want_host);
    assert_string_equal(extra_value(extra, "X-Amz-Content-Sha256"),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    if (token != NULL)
        assert_string_equal(extra_value(extra, "X-Amz-Security-Token"), token);
    else
        assert_null(extra_value(extra, "X-Amz-Security-Token"));
    const char *date = extra_value(extra, "X-Amz-Date"), *auth = extra_value(extra, "Authorization");
    assert_non_null(date);
    assert_non_null(auth);
    char want_prefix[256];
    snprintf(want_prefix, sizeof(want_prefix),
             "AWS4-HMAC-SHA256 Credential=AKIDTEST/%.8s/eu-west-1/logs/aws4_request, "
             "SignedHeaders=content-encoding;content-type;host;x-amz-content-sha256;x-amz-date;%sx-aws-log-group, "
             "Signature=",
             date, token != NULL ? "x-amz-security-token;" : "");
    if (strncmp(auth, want_prefix, strlen(want_prefix)) != 0)
        fail_msg("Authorization \"%s\"\nwant prefix \"%s\"", auth, want_prefix);

    /* The same inputs through aws_sigv4 directly give the same signature. */
    char hostline[128];
    snprintf(hostline, sizeof(hostline), "Host: %s", want_host);
    const char *lines[] = {hostline, "Content-Type: application/x-protobuf", "x-aws-log-group: /otel/gw",
                           "Content-Encoding: gzip", NULL};
    aws_credentials c = {"AKIDTEST", "SECRETTEST", token};
    aws_sigv4_request r = {"POST", path, query, lines, (const uint8_t *)"abc", 3};
    buf out = BUF_INIT;
    assert_int_equal(aws_sigv4_sign(&r, &c, "eu-west-1", "logs", date, 1, &out, NULL, NULL), 0);
    assert_int_equal(buf_putc(&out, '\0'), 0);
    const char *a = strstr(out.data, "Authorization: ");
    assert_non_null(a);
    assert_memory_equal(a + 15, auth, strlen(auth));
    buf_free(&out);
    curl_slist_free_all(extra);
    curl_slist_free_all(h);
    signer_down(&f);
}

static void test_sign_default_port_dropped(void **state)
{
    (void)state;
    check_signature("https://logs.eu-west-1.amazonaws.com:443/v1/logs", "logs.eu-west-1.amazonaws.com", "/v1/logs",
                    NULL, NULL);
    check_signature("https://logs.eu-west-1.amazonaws.com/v1/logs", "logs.eu-west-1.amazonaws.com", "/v1/logs", NULL,
                    "SESSIONTOKEN");
}

static void test_sign_port_and_query_kept(void **state)
{
    (void)state;
    check_signature("http://127.0.0.1:4567/api/v1/remote_write?b=2&a=1", "127.0.0.1:4567", "/api/v1/remote_write",
                    "b=2&a=1", NULL);
    check_signature("http://127.0.0.1:80", "127.0.0.1", "/", NULL, NULL);
}

static void test_region(void **state)
{
    (void)state;
    char err[256];
    signer_fixture f;
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    const char *y = "listeners: [{name: l, http: 127.0.0.1:0}]\nbackends:\n"
                    "  x: {type: aws_xray, credentials: {source: static, access_key_id: A, secret_access_key: B}}\n";
    const char *e = signer_up(&f, y, err, sizeof(err));
    assert_non_null(e);
    assert_non_null(strstr(e, "t.yaml:3:"));
    assert_non_null(strstr(e, "backends.x.region: required (or set AWS_REGION in the environment)"));
    config_free(f.cfg);

    setenv("AWS_DEFAULT_REGION", "ap-southeast-2", 1);
    assert_null(signer_up(&f, y, err, sizeof(err)));
    assert_string_equal(aws_signer_region(f.s), "ap-southeast-2");
    signer_down(&f);
    setenv("AWS_REGION", "us-gov-west-1", 1); /* AWS_REGION wins */
    assert_null(signer_up(&f, y, err, sizeof(err)));
    assert_string_equal(aws_signer_region(f.s), "us-gov-west-1");
    signer_down(&f);
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");

    y = "listeners: [{name: l, http: 127.0.0.1:0}]\nbackends:\n"
        "  x: {type: aws_xray, region: EU_WEST, credentials: {source: static, access_key_id: A, secret_access_key: "
        "B}}\n";
    e = signer_up(&f, y, err, sizeof(err));
    assert_non_null(e);
    assert_non_null(strstr(e, "backends.x.region: \"EU_WEST\" is not a region name (like us-east-1)"));
    config_free(f.cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_default_port_dropped),
        cmocka_unit_test(test_sign_port_and_query_kept),
        cmocka_unit_test(test_region),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
