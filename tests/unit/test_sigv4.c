/* aws_sigv4: the AWS SigV4 test-suite cases (sigv4_vectors.h) checked for the
 * exact canonical request, string-to-sign and Authorization, plus edge cases
 * of our own (query decoding and ordering, whitespace, path encoding, the
 * generated headers, invalid input). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aws_sigv4.h"
#include "sigv4_vectors.h"

static const aws_credentials suite_creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                            NULL};
#define DATE "20150830T123600Z"

/* NUL-terminated copy of a buf's contents (empty string for an empty buf). */
static char *str(buf *b)
{
    char *s = malloc(b->len + 1);
    assert_non_null(s);
    if (b->len)
        memcpy(s, b->data, b->len);
    s[b->len] = '\0';
    return s;
}

/* The value of header `name` in sign output (caller frees), or NULL. */
static char *out_header(const char *out, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = out; *p;) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol);
        if (strncmp(p, name, nl) == 0 && p[nl] == ':' && p[nl + 1] == ' ')
            return strndup(p + nl + 2, (size_t)(eol - p - nl - 2));
        p = eol + 1;
    }
    return NULL;
}

typedef struct signed_result {
    int rc;
    char *headers, *creq, *sts;
} signed_result;

static signed_result sign(const char *method, const char *path, const char *query,
                          const char *const *headers, const char *body, const char *token,
                          int add_sha)
{
    aws_credentials c = suite_creds;
    c.session_token = token;
    aws_sigv4_request r = {method, path, query, headers, (const uint8_t *)body,
                           body ? strlen(body) : 0};
    buf h = BUF_INIT, cr = BUF_INIT, st = BUF_INIT;
    signed_result s;
    s.rc = aws_sigv4_sign(&r, &c, "us-east-1", "service", DATE, add_sha, &h, &cr, &st);
    s.headers = str(&h);
    s.creq = str(&cr);
    s.sts = str(&st);
    buf_free(&h);
    buf_free(&cr);
    buf_free(&st);
    return s;
}

static void result_free(signed_result *s)
{
    free(s->headers);
    free(s->creq);
    free(s->sts);
}

static void test_suite_vectors(void **state)
{
    (void)state;
    size_t n = sizeof sigv4_vectors / sizeof sigv4_vectors[0];
    assert_true(n >= 12);
    for (size_t i = 0; i < n; i++) {
        const sigv4_vector *v = &sigv4_vectors[i];
        print_message("  %s\n", v->name);
        signed_result s = sign(v->method, v->path, v->query, v->headers, v->body, v->token, 0);
        assert_int_equal(s.rc, 0);
        assert_string_equal(s.creq, v->creq);
        assert_string_equal(s.sts, v->sts);
        char *authz = out_header(s.headers, "Authorization");
        assert_non_null(authz);
        assert_string_equal(authz, v->authz);
        free(authz);
        char *date = out_header(s.headers, "X-Amz-Date");
        assert_non_null(date);
        assert_string_equal(date, DATE);
        free(date);
        char *tok = out_header(s.headers, "X-Amz-Security-Token");
        if (v->token) {
            assert_non_null(tok);
            assert_string_equal(tok, v->token);
        } else {
            assert_null(tok);
        }
        free(tok);
        assert_null(strstr(s.headers, "X-Amz-Content-Sha256"));
        result_free(&s);
    }
}

static const char *const host_only[] = {"Host:example.amazonaws.com", NULL};

/* Line `idx` (0-based) of the canonical request, as a fresh string. */
static char *creq_line(const char *creq, int idx)
{
    const char *p = creq;
    for (int i = 0; i < idx; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    const char *e = strchr(p, '\n');
    return strndup(p, e ? (size_t)(e - p) : strlen(p));
}

static void expect_uri(const char *path, const char *want)
{
    signed_result s = sign("GET", path, NULL, host_only, NULL, NULL, 0);
    assert_int_equal(s.rc, 0);
    char *l = creq_line(s.creq, 1);
    assert_string_equal(l, want);
    free(l);
    result_free(&s);
}

static void expect_query(const char *query, const char *want)
{
    signed_result s = sign("GET", "/", query, host_only, NULL, NULL, 0);
    assert_int_equal(s.rc, 0);
    char *l = creq_line(s.creq, 2);
    assert_string_equal(l, want);
    free(l);
    result_free(&s);
}

static void test_empty_query(void **state)
{
    (void)state;
    expect_query(NULL, "");
    expect_query("", "");
    expect_query("&&", "");
    expect_query("flag", "flag=");
    expect_query("flag=", "flag=");
    /* NULL and "" sign identically. */
    signed_result a = sign("GET", "/", NULL, host_only, NULL, NULL, 0);
    signed_result b = sign("GET", "/", "", host_only, NULL, NULL, 0);
    assert_string_equal(a.headers, b.headers);
    result_free(&a);
    result_free(&b);
}

static void test_duplicate_query_keys(void **state)
{
    (void)state;
    expect_query("a=2&a=1&a=1&b=0", "a=1&a=1&a=2&b=0");
    /* Keys are ordered on their own, before values: "a" sorts before "a-b". */
    expect_query("a-b=1&a=2", "a=2&a-b=1");
    expect_query("B=1&a=1&_=1&~=1", "B=1&_=1&a=1&~=1");
}

static void test_query_reencoding(void **state)
{
    (void)state;
    /* Decoded then re-encoded: lowercase hex and needless escapes normalize. */
    expect_query("k=%7e%41%2f", "k=~A%2F");
    expect_query("x=a+b", "x=a%2Bb");
    expect_query("x=a b", "x=a%20b");
    expect_query("x=%zz%4", "x=%25zz%254");
    expect_query("x=1=2", "x=1%3D2");
    expect_query("%E1%88%B4=%e1%88%b4", "%E1%88%B4=%E1%88%B4");
    expect_query("q=*'()!", "q=%2A%27%28%29%21");
}

static void test_header_whitespace(void **state)
{
    (void)state;
    const char *const h[] = {"Host:example.amazonaws.com", "X-Multi:   a    b\t\t c   ",
                             "x-tabs:\tv\t", "X-Empty:", "X-Empty2:    ", NULL};
    signed_result s = sign("GET", "/", NULL, h, NULL, NULL, 0);
    assert_int_equal(s.rc, 0);
    assert_non_null(strstr(s.creq, "\nx-empty:\nx-empty2:\nx-multi:a b c\nx-tabs:v\n"));
    assert_non_null(strstr(s.creq, "\nhost;x-amz-date;x-empty;x-empty2;x-multi;x-tabs\n"));
    result_free(&s);
}

static void test_unsigned_headers(void **state)
{
    (void)state;
    const char *const h[] = {"Host:example.amazonaws.com", "User-Agent: gw/1", "Authorization: x",
                             "Connection: close", "Proxy-Foo: 1", "X-Amz-Date: 19990101T000000Z",
                             "Date: Mon", "Content-Type: a/b", NULL};
    signed_result s = sign("GET", "/", NULL, h, NULL, NULL, 0);
    assert_int_equal(s.rc, 0);
    assert_non_null(strstr(s.creq, "\ncontent-type;host;x-amz-date\n"));
    assert_non_null(strstr(s.creq, "\nx-amz-date:" DATE "\n"));
    result_free(&s);
}

static void test_unicode_and_encoded_path(void **state)
{
    (void)state;
    expect_uri("/\xe1\x88\xb4/\xc3\xa9t\xc3\xa9", "/%E1%88%B4/%C3%A9t%C3%A9");
    /* An already-encoded path is encoded again (non-S3 rules). */
    expect_uri("/example%20space/", "/example%2520space/");
    expect_uri("/%E1%88%B4", "/%25E1%2588%25B4");
    expect_uri("/a:b@c+d=e;f", "/a%3Ab%40c%2Bd%3De%3Bf");
    expect_uri("/a/b/../../..", "/");
    expect_uri("/a/./b/", "/a/b/");
    expect_uri("/a/b/.", "/a/b");
    expect_uri("", "/");
    expect_uri("/v1/traces", "/v1/traces");
}

static void test_content_sha256_and_token(void **state)
{
    (void)state;
    signed_result s = sign("POST", "/", NULL, host_only, "Param1=value1", "TOKEN", 1);
    assert_int_equal(s.rc, 0);
    const char *want_hash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
    char *hv = out_header(s.headers, "X-Amz-Content-Sha256");
    assert_non_null(hv);
    assert_string_equal(hv, want_hash);
    free(hv);
    char *tok = out_header(s.headers, "X-Amz-Security-Token");
    assert_non_null(tok);
    assert_string_equal(tok, "TOKEN");
    free(tok);
    assert_non_null(strstr(s.creq, "\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654"
                                   "192329106275f4c7b24d0b6e\nx-amz-date:" DATE
                                   "\nx-amz-security-token:TOKEN\n"));
    char *authz = out_header(s.headers, "Authorization");
    assert_non_null(strstr(authz, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                                  "x-amz-security-token, Signature="));
    free(authz);
    /* Output lines are in a fixed order, each "Name: value\n". */
    const char *prefix = "X-Amz-Date: " DATE "\nX-Amz-Content-Sha256: ";
    assert_int_equal(strncmp(s.headers, prefix, strlen(prefix)), 0);
    result_free(&s);
}

static void test_invalid_input(void **state)
{
    (void)state;
    const char *const bad_header[] = {"Host:example.amazonaws.com", "no colon here", NULL};
    const char *const empty_name[] = {": v", NULL};
    aws_sigv4_request r = {"GET", "/", NULL, host_only, NULL, 0};
    buf out = BUF_INIT;
    assert_int_equal(aws_sigv4_sign(&r, &suite_creds, "us-east-1", "svc", "2015-08-30", 0, &out,
                                    NULL, NULL),
                     -1);
    assert_int_equal(aws_sigv4_sign(&r, &suite_creds, "us-east-1", "svc", "20150830T123600",
                                    0, &out, NULL, NULL),
                     -1);
    assert_int_equal(aws_sigv4_sign(&r, &suite_creds, "", "svc", DATE, 0, &out, NULL, NULL), -1);
    assert_int_equal(aws_sigv4_sign(&r, &suite_creds, "us-east-1", "a/b", DATE, 0, &out, NULL,
                                    NULL),
                     -1);
    r.headers = bad_header;
    assert_int_equal(aws_sigv4_sign(&r, &suite_creds, "us-east-1", "svc", DATE, 0, &out, NULL,
                                    NULL),
                     -1);
    r.headers = empty_name;
    assert_int_equal(aws_sigv4_sign(&r, &suite_creds, "us-east-1", "svc", DATE, 0, &out, NULL,
                                    NULL),
                     -1);
    r.headers = host_only;
    r.body_len = 3; /* body NULL */
    assert_int_equal(aws_sigv4_sign(&r, &suite_creds, "us-east-1", "svc", DATE, 0, &out, NULL,
                                    NULL),
                     -1);
    assert_int_equal(out.len, 0);
    /* Optional outputs may be NULL; output appends to what is there. */
    r.body_len = 0;
    assert_int_equal(buf_puts(&out, "Keep: me\n"), 0);
    assert_int_equal(aws_sigv4_sign(&r, &suite_creds, "us-east-1", "svc", DATE, 0, &out, NULL,
                                    NULL),
                     0);
    assert_int_equal(strncmp(out.data, "Keep: me\nX-Amz-Date: ", 21), 0);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_vectors),
        cmocka_unit_test(test_empty_query),
        cmocka_unit_test(test_duplicate_query_keys),
        cmocka_unit_test(test_query_reencoding),
        cmocka_unit_test(test_header_whitespace),
        cmocka_unit_test(test_unsigned_headers),
        cmocka_unit_test(test_unicode_and_encoded_path),
        cmocka_unit_test(test_content_sha256_and_token),
        cmocka_unit_test(test_invalid_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
