/* libFuzzer: the OTTL condition parser (config text is semi-trusted, but the
 * parser backtracks and decodes escapes and numbers, so it gets a target).
 * The first byte picks the context (even: span, odd: span event); a
 * condition that parses is evaluated against a fixed span with attributes of
 * every type and one event, so the evaluator runs on every parsed shape. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ottl.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;

static any_t v_str = {.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE,
                      .string_value = "/api/v2/users"};
static any_t v_int = {.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE, .int_value = 503};
static any_t v_dbl = {.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE,
                      .double_value = 0.25};
static any_t v_bool = {.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE, .bool_value = 1};
static uint8_t blob[] = {0xde, 0xad};
static any_t v_bytes = {.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE,
                        .bytes_value = {sizeof(blob), blob}};
static any_t v_empty = {.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET};
static kv_t kvs[] = {{.key = "s", .value = &v_str},  {.key = "i", .value = &v_int},     {.key = "f", .value = &v_dbl},
                     {.key = "b", .value = &v_bool}, {.key = "y", .value = &v_bytes}, {.key = "e", .value = &v_empty},
                     {.key = "n", .value = NULL}};
static kv_t *attrs[] = {&kvs[0], &kvs[1], &kvs[2], &kvs[3], &kvs[4], &kvs[5], &kvs[6]};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    Opentelemetry__Proto__Trace__V1__Span__Event ev = {.name = "exception", .time_unix_nano = 5,
                                                       .n_attributes = 7, .attributes = attrs};
    Opentelemetry__Proto__Trace__V1__Span__Event *evs[] = {&ev};
    Opentelemetry__Proto__Trace__V1__Span span = {.name = "GET", .kind = 2, .start_time_unix_nano = 1,
                                                  .end_time_unix_nano = 9, .n_attributes = 7, .attributes = attrs,
                                                  .n_events = 1, .events = evs};
    ottl_subject s = {.span = &span, .event = &ev};
    char err[320];
    ottl_cond *c = ottl_parse(text, data[0] & 1 ? OTTL_SPANEVENT : OTTL_SPAN, err, sizeof(err));
    if (c != NULL) {
        (void)ottl_eval(c, &s, err, sizeof(err));
        ottl_free(c);
    } else if (err[0] == '\0') {
        abort(); /* a refusal always says why */
    }
    free(text);
    return 0;
}
