/* ottl: the condition subset against a span and an event decoded from
 * OTLP/JSON (a table of conditions and their results), evaluation errors and
 * error modes, and parse errors with their columns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "otlp.h"
#include "ottl.h"

static const char fixture[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}}]},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"io.opentelemetry.http\",\"version\":\"1.2.3\"},"
    "\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"0102030405060708\","
    "\"name\":\"GET /api/v2/users\",\"kind\":2,\"startTimeUnixNano\":\"1000000000\","
    "\"endTimeUnixNano\":\"1750000000\",\"status\":{\"code\":2,\"message\":\"boom\"},\"attributes\":["
    "{\"key\":\"http.route\",\"value\":{\"stringValue\":\"/api/v2/users/{id}\"}},"
    "{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"503\"}},"
    "{\"key\":\"ratio\",\"value\":{\"doubleValue\":0.25}},"
    "{\"key\":\"huge\",\"value\":{\"doubleValue\":1e21}},"
    "{\"key\":\"tiny\",\"value\":{\"doubleValue\":1.5e-7}},"
    "{\"key\":\"round\",\"value\":{\"doubleValue\":-100}},"
    "{\"key\":\"cached\",\"value\":{\"boolValue\":true}},"
    "{\"key\":\"blob\",\"value\":{\"bytesValue\":\"3q0=\"}},"
    "{\"key\":\"tags\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"}]}}},"
    "{\"key\":\"accent\",\"value\":{\"stringValue\":\"\\u00e9\"}},"
    "{\"key\":\"nothing\",\"value\":{}}],"
    "\"events\":[{\"name\":\"exception\",\"timeUnixNano\":\"1500000000\",\"attributes\":["
    "{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"TimeoutError\"}},"
    "{\"key\":\"retries\",\"value\":{\"intValue\":\"3\"}}]}]}]}]}]}";

static arena *A;
static ottl_subject S;

static int setup(void **state)
{
    (void)state;
    A = arena_new(0);
    otlp_request req;
    char err[200];
    if (otlp_decode(OTLP_TRACES, OTLP_JSON, (const uint8_t *)fixture, strlen(fixture), A, &req, err, sizeof(err)) != 0)
        fail_msg("fixture: %s", err);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r = (void *)req.msg;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[0];
    S.resource = rs->resource;
    S.scope = rs->scope_spans[0]->scope;
    S.span = rs->scope_spans[0]->spans[0];
    S.event = S.span->events[0];
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(A);
    return 0;
}

static ottl_cond *parse_ok(const char *text, ottl_context ctx)
{
    char err[256];
    ottl_cond *c = ottl_parse(text, ctx, err, sizeof(err));
    if (c == NULL)
        fail_msg("%s: %s", text, err);
    return c;
}

#define T OTTL_TRUE
#define F OTTL_FALSE
#define E OTTL_ERROR

static const struct {
    ottl_context ctx;
    const char *cond;
    ottl_result want;
} cases[] = {
    {OTTL_SPAN, "name == \"GET /api/v2/users\"", T},
    {OTTL_SPAN, "name != \"GET /api/v2/users\"", F},
    {OTTL_SPAN, "span.name == \"GET /api/v2/users\"", T},
    {OTTL_SPAN, "kind == SPAN_KIND_SERVER", T},
    {OTTL_SPAN, "kind == 2", T},
    {OTTL_SPAN, "kind == SPAN_KIND_CLIENT", F},
    {OTTL_SPAN, "status.code == STATUS_CODE_ERROR", T},
    {OTTL_SPAN, "span.status.code != STATUS_CODE_OK", T},
    {OTTL_SPAN, "status.message == \"boom\"", T},
    {OTTL_SPAN, "attributes[\"http.status_code\"] >= 500 and attributes[\"http.status_code\"] < 600", T},
    {OTTL_SPAN, "attributes[\"http.status_code\"] == 503.0", T},
    {OTTL_SPAN, "attributes[\"ratio\"] < 0.5", T},
    {OTTL_SPAN, "attributes[\"ratio\"] > 1", F},
    {OTTL_SPAN, "attributes[\"cached\"] == true", T},
    {OTTL_SPAN, "attributes[\"cached\"] > false", T},
    {OTTL_SPAN, "attributes[\"missing\"] == nil", T},
    {OTTL_SPAN, "attributes[\"missing\"] != nil", F},
    {OTTL_SPAN, "attributes[\"nothing\"] == nil", T},
    {OTTL_SPAN, "nil == nil", T},
    {OTTL_SPAN, "attributes[\"missing\"] < 5", F},
    {OTTL_SPAN, "attributes[\"missing\"] != 5", T},
    {OTTL_SPAN, "attributes[\"http.status_code\"] == \"503\"", F},
    {OTTL_SPAN, "attributes[\"http.status_code\"] != \"503\"", T},
    {OTTL_SPAN, "attributes[\"tags\"] == nil", F},
    {OTTL_SPAN, "attributes[\"tags\"] != \"a\"", T},
    {OTTL_SPAN, "attributes[\"blob\"] == 0xdead", T},
    {OTTL_SPAN, "attributes[\"blob\"] < 0xdeae", T},
    {OTTL_SPAN, "attributes[\"accent\"] == \"\\u00e9\"", T},
    {OTTL_SPAN, "attributes[\"accent\"] == \"\\xc3\\251\"", T},
    {OTTL_SPAN, "resource.attributes[\"service.name\"] == \"checkout\"", T},
    {OTTL_SPAN, "resource.attributes[\"missing\"] == nil", T},
    {OTTL_SPAN, "instrumentation_scope.name == \"io.opentelemetry.http\"", T},
    {OTTL_SPAN, "instrumentation_scope.version == \"1.2.3\" and scope.name != \"\"", T},
    {OTTL_SPAN, "start_time_unix_nano == 1000000000", T},
    /* duration: the difference of the two timestamps, in nanoseconds */
    {OTTL_SPAN, "end_time_unix_nano - start_time_unix_nano > 500000000", T},
    {OTTL_SPAN, "end_time_unix_nano - start_time_unix_nano >= 750000000 and end_time_unix_nano - "
                "start_time_unix_nano <= 750000000", T},
    {OTTL_SPAN, "(end_time_unix_nano - start_time_unix_nano) / 1000000 == 750", T},
    {OTTL_SPAN, "2 + 3 * 4 == 14", T},
    {OTTL_SPAN, "(2 + 3) * 4 == 20", T},
    {OTTL_SPAN, "10 - 2 - 3 == 5", T},
    {OTTL_SPAN, "7 / 2 == 3", T},
    {OTTL_SPAN, "-7 / 2 == -3", T},
    {OTTL_SPAN, "7 / 2.0 == 3.5", T},
    {OTTL_SPAN, "- attributes[\"http.status_code\"] == -503", T},
    {OTTL_SPAN, "9223372036854775807 + 1 < 0", T},
    {OTTL_SPAN, "-9223372036854775808 / -1 == -9223372036854775808", T},
    {OTTL_SPAN, "1 == 1.0", T},
    {OTTL_SPAN, "0.1 + 0.2 == 0.3", F},
    {OTTL_SPAN, ".5 == 0.5", T},
    {OTTL_SPAN, "\"abc\" < \"abd\"", T},
    {OTTL_SPAN, "\"b\" > \"abc\"", T},
    {OTTL_SPAN, "not name == \"x\"", T},
    {OTTL_SPAN, "not (name == \"GET /api/v2/users\" or kind == 1)", F},
    {OTTL_SPAN, "true", T},
    {OTTL_SPAN, "false", F},
    {OTTL_SPAN, "not false", T},
    {OTTL_SPAN, "true == false", F},
    {OTTL_SPAN, "name == \"x\" or kind == SPAN_KIND_SERVER and status.code == 2", T},
    {OTTL_SPAN, "(name == \"x\" or kind == SPAN_KIND_SERVER) and status.code == 0", F},
    {OTTL_SPAN, "((kind == 2))", T},
    {OTTL_SPAN, "IsMatch(attributes[\"http.route\"], \"^/api/v\\\\d+/users\")", T},
    {OTTL_SPAN, "IsMatch(attributes[\"http.route\"], \"^/api/v\\\\d+/orders\")", F},
    {OTTL_SPAN, "IsMatch(name, \"(?i)^get \")", T},
    {OTTL_SPAN, "IsMatch(name, \"users$\") == true", T},
    {OTTL_SPAN, "not IsMatch(name, \"^POST\")", T},
    {OTTL_SPAN, "IsMatch(attributes[\"http.status_code\"], \"^5\\\\d\\\\d$\")", T},
    {OTTL_SPAN, "IsMatch(attributes[\"ratio\"], \"^0\\\\.25$\")", T},
    {OTTL_SPAN, "IsMatch(attributes[\"huge\"], \"^1000000000000000000000$\")", T},
    {OTTL_SPAN, "IsMatch(attributes[\"tiny\"], \"^0\\\\.00000015$\")", T},
    {OTTL_SPAN, "IsMatch(attributes[\"round\"], \"^-100$\")", T},
    {OTTL_SPAN, "IsMatch(attributes[\"cached\"], \"^true$\")", T},
    {OTTL_SPAN, "IsMatch(attributes[\"blob\"], \"^dead$\")", T},
    {OTTL_SPAN, "IsMatch(attributes[\"missing\"], \".*\")", F},
    {OTTL_SPAN, "IsMatch(attributes[\"tags\"], \".*\")", F},
    {OTTL_SPAN, "IsMatch(resource.attributes[\"service.name\"], \"check\")", T},
    /* evaluation errors, and the short circuits that avoid them */
    {OTTL_SPAN, "attributes[\"http.route\"] + 1 > 0", E},
    {OTTL_SPAN, "1 / 0 == 0", E},
    {OTTL_SPAN, "1.0 / 0 > 0", E},
    {OTTL_SPAN, "- name == 1", E},
    {OTTL_SPAN, "not (1 / 0 == 0)", E},
    {OTTL_SPAN, "IsMatch(1 / 0, \"x\")", E},
    {OTTL_SPAN, "false and 1 / 0 == 0", F},
    {OTTL_SPAN, "true or 1 / 0 == 0", T},
    /* span events: unprefixed paths are the event's, span. the span's */
    {OTTL_SPANEVENT, "name == \"exception\"", T},
    {OTTL_SPANEVENT, "spanevent.name == \"exception\"", T},
    {OTTL_SPANEVENT, "attributes[\"exception.type\"] == \"TimeoutError\"", T},
    {OTTL_SPANEVENT, "spanevent.attributes[\"retries\"] > 2", T},
    {OTTL_SPANEVENT, "time_unix_nano == 1500000000", T},
    {OTTL_SPANEVENT, "time_unix_nano - span.start_time_unix_nano == 500000000", T},
    {OTTL_SPANEVENT, "span.name == \"GET /api/v2/users\" and span.kind == SPAN_KIND_SERVER", T},
    {OTTL_SPANEVENT, "span.attributes[\"http.status_code\"] == 503", T},
    {OTTL_SPANEVENT, "attributes[\"http.status_code\"] == nil", T},
    {OTTL_SPANEVENT, "resource.attributes[\"service.name\"] == \"checkout\"", T},
    {OTTL_SPANEVENT, "IsMatch(attributes[\"exception.type\"], \"Timeout\")", T},
};

static void test_eval(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ottl_cond *c = parse_ok(cases[i].cond, cases[i].ctx);
        char err[200] = "";
        ottl_result r = ottl_eval(c, &S, err, sizeof(err));
        if (r != cases[i].want)
            fail_msg("%s: got %d, expected %d (%s)", cases[i].cond, r, cases[i].want, err);
        ottl_free(c);
    }
}

static void test_eval_errors(void **state)
{
    (void)state;
    const struct {
        const char *cond, *err;
    } errs[] = {
        {"attributes[\"http.route\"] + 1 > 0", "arithmetic on string and int: both must be int or float"},
        {"1 / 0 == 0", "division by zero"},
        {"- name == 1", "unary minus on string"},
    };
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        ottl_cond *c = parse_ok(errs[i].cond, OTTL_SPAN);
        char err[200] = "";
        assert_int_equal(ottl_eval(c, &S, err, sizeof(err)), OTTL_ERROR);
        assert_string_equal(err, errs[i].err);
        ottl_free(c);
    }
}

/* Upstream's sequence: the first true condition wins; an error stops the
 * sequence under propagate and is skipped under ignore and silent. */
static void test_error_modes(void **state)
{
    (void)state;
    ottl_cond *c[3] = {parse_ok("kind == 9", OTTL_SPAN), parse_ok("1 / 0 == 0", OTTL_SPAN),
                       parse_ok("kind == SPAN_KIND_SERVER", OTTL_SPAN)};
    assert_int_equal(ottl_eval_any(c, 3, OTTL_PROPAGATE, &S), OTTL_ERROR);
    assert_int_equal(ottl_eval_any(c, 3, OTTL_IGNORE, &S), OTTL_TRUE);
    assert_int_equal(ottl_eval_any(c, 3, OTTL_SILENT, &S), OTTL_TRUE);
    assert_int_equal(ottl_eval_any(c, 2, OTTL_IGNORE, &S), OTTL_FALSE);
    ottl_cond *swapped[2] = {c[2], c[1]};
    assert_int_equal(ottl_eval_any(swapped, 2, OTTL_PROPAGATE, &S), OTTL_TRUE);
    assert_int_equal(ottl_eval_any(c, 0, OTTL_PROPAGATE, &S), OTTL_FALSE);
    for (int i = 0; i < 3; i++)
        ottl_free(c[i]);
}

static const struct {
    ottl_context ctx;
    const char *cond, *err;
} parse_errors[] = {
    {OTTL_SPAN, "name = \"x\"", "column 6: unexpected \"=\" (expected a comparison operator (==, !=, <, <=, >, >=))"},
    {OTTL_SPAN, "name == ", "column 9: unexpected end of condition (expected a number, a path or IsMatch(...))"},
    {OTTL_SPAN, "", "column 1: unexpected end of condition (expected a number, a path or IsMatch(...))"},
    {OTTL_SPAN, "trace_id == 0x01", "column 1: unknown path \"trace_id\" (span conditions may use name, kind,"},
    {OTTL_SPAN, "time_unix_nano > 0", "column 1: unknown path \"time_unix_nano\""},
    {OTTL_SPANEVENT, "kind == 2", "column 1: unknown path \"kind\" (span event conditions may use"},
    {OTTL_SPAN, "span.events == nil", "column 1: unknown path \"span.events\""},
    {OTTL_SPAN, "attributes == nil", "column 1: attributes must be indexed with a key, as attributes[\"key\"]"},
    {OTTL_SPAN, "attributes[\"a\"][\"b\"] == 1", "column 16: indexing into an attribute's value is not supported"},
    {OTTL_SPAN, "name[\"x\"] == 1", "column 5: \"name\" cannot be indexed"},
    {OTTL_SPAN, "attributes[0] == 1", "column 12: attributes[...] takes a string key"},
    {OTTL_SPAN, "Concat(name, \"x\") == \"y\"", "column 1: function \"Concat\" is not supported (conditions may call "
                                              "IsMatch only)"},
    {OTTL_SPAN, "set(name, \"x\")", "column 1: \"set\" is not a function of the subset"},
    {OTTL_SPAN, "kind == SPAN_KIND_SERVR", "column 9: unknown enum \"SPAN_KIND_SERVR\""},
    {OTTL_SPAN, "IsMatch(name, \"(\")", "column 15: invalid regular expression: missing ): ( (RE2 syntax"},
    {OTTL_SPAN, "IsMatch(name, \"(a)\\\\1\")", "column 15: invalid regular expression: invalid escape sequence: \\1"},
    {OTTL_SPAN, "IsMatch(name, name)", "column 15: IsMatch's pattern must be a string literal"},
    {OTTL_SPAN, "IsMatch(name)", "column 13: unexpected \")\" (expected \",\" and the pattern)"},
    {OTTL_SPAN, "IsMatch(name, \"a\\d\")", "column 17: invalid escape \\d in string (OTTL strings take Go's escapes: "
                                          "write \\\\d for a backslash before d)"},
    {OTTL_SPAN, "name == \"abc", "column 9: unterminated string"},
    {OTTL_SPAN, "name == \"\\u12\"", "column 10: invalid escape in string"},
    {OTTL_SPAN, "name == \"\\ud800\"", "column 10: invalid Unicode escape in string"},
    {OTTL_SPAN, "name -1 == 2", "column 6: unexpected \"-1\" (expected a comparison operator"},
    {OTTL_SPAN, "(name == \"x\"", "column 13: unexpected end of condition (expected \")\", \"and\" or \"or\")"},
    {OTTL_SPAN, "name == \"x\" and", "column 16: unexpected end of condition"},
    {OTTL_SPAN, "name == \"x\" xor kind == 1", "column 13: unexpected \"xor\" (expected \"and\", \"or\" or the end of "
                                            "the condition)"},
    {OTTL_SPAN, "1 == 1 == 1", "column 8: unexpected \"==\" (expected \"and\", \"or\" or the end"},
    {OTTL_SPAN, "attributes[\"a\"] == [1, 2]", "column 20: lists and maps are not supported"},
    {OTTL_SPAN, "attributes[\"a\"] == {\"k\": 1}", "column 20: lists and maps are not supported"},
    {OTTL_SPAN, "99999999999999999999 == 1", "column 1: integer 99999999999999999999 is out of range"},
    {OTTL_SPAN, "1.5e999 == 1", "column 1: number 1.5e999 is out of range"},
    {OTTL_SPAN, "name == 0x1", "column 9: odd number of hex digits in bytes"},
    {OTTL_SPAN, "1. == 1", "column 2: unexpected \".\""},
    {OTTL_SPAN, "not not true", "column 5: unexpected \"not\""},
    {OTTL_SPAN, "IsMatch(name, \"x\") + 1", "column 23: unexpected end of condition (expected a comparison"},
    {OTTL_SPAN, "attributes[\"a\"]", "column 16: unexpected end of condition (expected a comparison"},
    {OTTL_SPAN, "name == 'x'", "column 9: unexpected \"'\""},
};

static void test_parse_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_errors) / sizeof(parse_errors[0]); i++) {
        char err[320] = "";
        ottl_cond *c = ottl_parse(parse_errors[i].cond, parse_errors[i].ctx, err, sizeof(err));
        if (c != NULL || strncmp(err, parse_errors[i].err, strlen(parse_errors[i].err)) != 0)
            fail_msg("%s: got \"%s\", expected \"%s...\"", parse_errors[i].cond, c ? "(parsed)" : err,
                     parse_errors[i].err);
    }
}

/* Nesting and length are bounded (parsing and evaluating recurse); a chain
 * up to the length limit evaluates. */
static void test_limits(void **state)
{
    (void)state;
    char text[5000], err[320];
    size_t n = 0;
    for (int i = 0; i < 65; i++)
        text[n++] = '(';
    strcpy(text + n, "true");
    assert_null(ottl_parse(text, OTTL_SPAN, err, sizeof(err)));
    assert_string_equal(err, "column 64: nested more than 64 deep");
    memset(text, '-', 70);
    strcpy(text + 70, "1 == 1");
    assert_null(ottl_parse(text, OTTL_SPAN, err, sizeof(err)));
    assert_string_equal(err, "column 64: nested more than 64 deep");
    n = 0;
    while (n + 9 + 4 <= 4096) /* "false or " each, then "true" */
        n += (size_t)sprintf(text + n, "false or ");
    strcpy(text + n, "true");
    ottl_cond *c = parse_ok(text, OTTL_SPAN);
    assert_int_equal(ottl_eval(c, &S, NULL, 0), OTTL_TRUE);
    ottl_free(c);
    memset(text, ' ', 4097);
    text[4097] = '\0';
    assert_null(ottl_parse(text, OTTL_SPAN, err, sizeof(err)));
    assert_string_equal(err, "longer than 4096 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval),
        cmocka_unit_test(test_eval_errors),
        cmocka_unit_test(test_error_modes),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
