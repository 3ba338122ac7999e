/* regexp: RE2 regular expressions behind a C interface (regexp_re2.cc).
 *
 * Every regex in the config uses RE2 syntax, the syntax of Go's regexp
 * package that the OpenTelemetry Collector uses (\d, (?i), non-greedy
 * repeats; no backreferences or lookaround). Matching is linear in the
 * length of the subject, so attribute values sent by clients cannot make a
 * pattern backtrack for ever. UTF-8 throughout; a subject need not be
 * NUL-terminated.
 *
 * The anchoring is fixed when a pattern is compiled, so each call site
 * states its own: REGEXP_SEARCH finds the pattern anywhere in the subject
 * (Go's MatchString: use ^...$ for a whole-value match), REGEXP_FULL
 * matches only the whole subject (as if written ^(?:...)$).
 *
 * A compiled regexp is immutable and may be matched from many threads at
 * once; regexp_free releases it (NULL is fine). */
#ifndef GW_REGEXP_H
#define GW_REGEXP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct regexp regexp;

typedef enum { REGEXP_SEARCH, REGEXP_FULL } regexp_anchor;

/* NULL with RE2's reason in err (e.g. "invalid escape sequence: \1"), or
 * "out of memory". */
regexp *regexp_compile(const char *pattern, regexp_anchor anchor, char *err, size_t errlen);
/* 1 when s (len bytes) matches, else 0. */
int regexp_match(const regexp *re, const char *s, size_t len);
void regexp_free(regexp *re);

#ifdef __cplusplus
}
#endif

#endif
