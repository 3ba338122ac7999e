/* regexp: RE2 syntax and semantics through the C interface, both anchorings,
 * errors, and linear-time matching of a pattern that makes backtracking
 * engines take exponential time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "regexp.h"

static regexp *ok(const char *pattern, regexp_anchor anchor)
{
    char err[256];
    regexp *re = regexp_compile(pattern, anchor, err, sizeof(err));
    if (re == NULL)
        fail_msg("%s: %s", pattern, err);
    return re;
}

static int matches(const char *pattern, regexp_anchor anchor, const char *s)
{
    regexp *re = ok(pattern, anchor);
    int m = regexp_match(re, s, strlen(s));
    regexp_free(re);
    return m;
}

static const char *error_of(const char *pattern)
{
    static char err[256];
    regexp *re = regexp_compile(pattern, REGEXP_SEARCH, err, sizeof(err));
    assert_null(re);
    return err;
}

static const struct {
    const char *pattern;
    regexp_anchor anchor;
    const char *subject;
    int match;
} cases[] = {
    /* Go's regexp syntax, which POSIX extended regexes lack or spell otherwise. */
    {"^/api/v\\d+/users", REGEXP_SEARCH, "/api/v2/users/7", 1},
    {"^/api/v\\d+/users", REGEXP_SEARCH, "/api/vx/users", 0},
    {"(?i)^select", REGEXP_SEARCH, "SeLeCt * from t", 1},
    {"^select", REGEXP_SEARCH, "SELECT 1", 0},
    {"\\bpay\\b", REGEXP_SEARCH, "to pay now", 1},
    {"\\bpay\\b", REGEXP_SEARCH, "payment", 0},
    {"a.*?b", REGEXP_FULL, "axxbyyb", 1},
    {"[[:digit:]]{3}", REGEXP_FULL, "503", 1},
    {"^\xc3\xa9.$", REGEXP_SEARCH, "\xc3\xa9\xc3\xbc", 1}, /* UTF-8: . is one character */
    {"^abc$", REGEXP_SEARCH, "abc\nx", 0},                  /* $ is the end of the text, not of a line */
    /* SEARCH finds the pattern anywhere; FULL needs the whole value, and an
     * alternation is anchored as a whole (not just its first and last branch). */
    {"shop", REGEXP_SEARCH, "my-shop-1", 1},
    {"shop", REGEXP_FULL, "my-shop-1", 0},
    {"shop-.*", REGEXP_FULL, "shop-eu", 1},
    {"a|b", REGEXP_FULL, "ab", 0},
    {"a|b", REGEXP_SEARCH, "xb", 1},
    {"", REGEXP_SEARCH, "anything", 1},
    {"", REGEXP_FULL, "", 1},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (matches(cases[i].pattern, cases[i].anchor, cases[i].subject) != cases[i].match)
            fail_msg("case %zu: /%s/ %s \"%s\": expected %d", i, cases[i].pattern,
                     cases[i].anchor == REGEXP_FULL ? "full" : "search", cases[i].subject, cases[i].match);
}

/* The length bounds the subject: bytes after it are not looked at. */
static void test_length(void **state)
{
    (void)state;
    regexp *re = ok("^ab$", REGEXP_SEARCH);
    assert_true(regexp_match(re, "abc", 2));
    assert_false(regexp_match(re, "abc", 3));
    regexp_free(re);
}

/* (a+)+$ against "aaa...ab" takes time exponential in the a's in a
 * backtracking engine (2^40 steps here, hours); RE2 is linear. No timing is
 * asserted: a backtracking engine would not finish within the test timeout. */
static void test_linear_time(void **state)
{
    (void)state;
    const char *patterns[] = {"(a+)+$", "(a|aa)+$", "(a*)*b$x", "^(\\w+\\s?)*$"};
    size_t n = 100000;
    char *s = malloc(n + 2);
    assert_non_null(s);
    memset(s, 'a', n);
    s[n] = '!';
    s[n + 1] = '\0';
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        regexp *re = ok(patterns[i], REGEXP_SEARCH);
        assert_false(regexp_match(re, s, n + 1));
        regexp_free(re);
        re = ok(patterns[i], REGEXP_FULL);
        assert_false(regexp_match(re, s, n + 1));
        regexp_free(re);
    }
    regexp *re = ok("(a+)+$", REGEXP_SEARCH);
    assert_true(regexp_match(re, s, n)); /* and it does match without the '!' */
    regexp_free(re);
    free(s);
}

/* RE2 names the offending part; POSIX-only or backtracking-only constructs
 * are refused with a note saying why. */
static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(error_of("(a"), "missing ): (a (RE2 syntax, as Go's regexp: no backreferences, lookaround "
                                        "or POSIX word boundaries)");
    assert_non_null(strstr(error_of("(a)\\1"), "invalid escape sequence: \\1 (RE2 syntax"));
    assert_non_null(strstr(error_of("[[:<:]]x"), "invalid character class range: [:<:]"));
    assert_non_null(strstr(error_of("a(?=b)"), "invalid perl operator: (?="));
    assert_non_null(strstr(error_of("x{2,1}"), "invalid repetition size: {2,1}"));
    assert_non_null(strstr(error_of("\xff"), "invalid UTF-8"));
    char small[8];
    assert_null(regexp_compile("(", REGEXP_FULL, small, sizeof(small))); /* truncated, still terminated */
    assert_int_equal(strlen(small), sizeof(small) - 1);
    regexp_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_linear_time),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
