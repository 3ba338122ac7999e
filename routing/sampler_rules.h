/* sampler_rules: Refinery's rules sampler (RulesBasedSampler) for
 * sampler_refinery. Rules are tried in order; the first whose conditions
 * match decides: drop, keep 1 in its sample_rate, or hand the trace to its
 * downstream sampler (any sampler but rules). A rule's conditions hold for
 * the trace (each met by some span) or, with scope span, for one span
 * together; no rule matching keeps the trace, as Refinery does.
 *
 * For sampler_refinery.c only (the state is sampler_refinery_internal.h's).
 * The rules, their conditions and downstream samplers belong to the policy
 * and are freed by sr_free. */
#ifndef GW_SAMPLER_RULES_H
#define GW_SAMPLER_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "sampler_refinery_internal.h"

/* Reads the `rules` list into p->rules. 0, or -1 with a located error. */
int sr_read_rules(sr_policy *p, const config_node *n, char *err, size_t errlen);
/* Decides t by p's rules at now_ns: 1 to keep; *rate the rate chosen. */
int sr_rules_eval(sr_policy *p, const sr_trace *t, uint64_t now_ns, double *rate);
/* Frees what a condition owns (not c itself). */
void sr_cond_free(cond *c);

#endif
