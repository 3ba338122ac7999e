/* ottl: the subset of OTTL (the OpenTelemetry Transformation Language) that
 * tail-sampling conditions on spans and span events use: a parser and an
 * evaluator (docs/configuration.md, "ottl_condition", lists the subset and
 * every difference from upstream).
 *
 * A condition is compiled once (ottl_parse) for one context: OTTL_SPAN (paths
 * name the span) or OTTL_SPANEVENT (paths name the event; `span.` paths its
 * span). Anything outside the subset is refused with the 1-based column and
 * the offending token, never accepted and ignored. A compiled condition is
 * immutable: many threads may evaluate it at once.
 *
 * Evaluation reads the subject without copying or allocating. It can fail
 * only where upstream's does at run time (arithmetic on a non-number,
 * division by zero): OTTL_ERROR, with the reason when err is given. */
#ifndef GW_OTTL_H
#define GW_OTTL_H

#include <stddef.h>

#include "trace_service.pb-c.h"

typedef enum { OTTL_SPAN, OTTL_SPANEVENT } ottl_context;

typedef enum { OTTL_ERROR = -1, OTTL_FALSE = 0, OTTL_TRUE = 1 } ottl_result;

/* How a list of conditions treats an evaluation error (upstream's
 * error_mode): propagate stops at it and returns OTTL_ERROR; ignore and
 * silent count the condition as false and go on (neither logs here). */
typedef enum { OTTL_PROPAGATE, OTTL_IGNORE, OTTL_SILENT } ottl_error_mode;

typedef struct ottl_cond ottl_cond;

/* What a condition looks at. scope and resource may be NULL (their fields
 * read as empty); event is used only by OTTL_SPANEVENT conditions. */
typedef struct ottl_subject {
    const Opentelemetry__Proto__Resource__V1__Resource *resource;
    const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope;
    const Opentelemetry__Proto__Trace__V1__Span *span;
    const Opentelemetry__Proto__Trace__V1__Span__Event *event;
} ottl_subject;

/* NULL with "column N: ..." in err. */
ottl_cond *ottl_parse(const char *text, ottl_context ctx, char *err, size_t errlen);
ottl_result ottl_eval(const ottl_cond *c, const ottl_subject *s, char *err, size_t errlen);
/* Upstream's condition sequence: OTTL_TRUE at the first condition that is
 * true; an error stops it under OTTL_PROPAGATE and is skipped otherwise. */
ottl_result ottl_eval_any(ottl_cond *const *conds, size_t n, ottl_error_mode mode, const ottl_subject *s);
void ottl_free(ottl_cond *c);

#endif
