/* sampler_refinery_internal: a Refinery policy's state and the helpers
 * sampler_refinery.c (the deterministic and per-key samplers, values, trace
 * keys, config) shares with sampler_rules.c (the rules sampler). Only those
 * two files include it; the contract to the sampler is sampler_refinery.h's.
 * A policy owns everything it points to (sr_free). Each helper is described
 * where it is defined (sampler_refinery.c). */
#ifndef GW_SAMPLER_REFINERY_INTERNAL_H
#define GW_SAMPLER_REFINERY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config_node.h"
#include "regexp.h"
#include "sampler_refinery.h"

typedef struct sr_ent {
    char *key;     /* NULL: empty slot */
    double count;  /* events this interval (or window total) */
    double avg;    /* EMA of counts */
    uint32_t rate; /* saved rate */
    double *slots; /* windowed: count per update interval in the lookback ring */
} sr_ent;

typedef struct sr_map {
    sr_ent *e;
    size_t cap, n;
} sr_map;

typedef enum { V_NIL, V_STR, V_INT, V_FLOAT, V_BOOL } vtype;

typedef struct sr_val {
    vtype t;
    const char *s;
    int64_t i;
    double f;
    int b;
} sr_val;

typedef enum { OP_EQ, OP_NE, OP_GT, OP_LT, OP_GE, OP_LE, OP_STARTS, OP_CONTAINS, OP_NOT_CONTAINS, OP_EXISTS,
               OP_NOT_EXISTS, OP_MATCHES, OP_IN, OP_NOT_IN, OP_HAS_ROOT } op_t;

typedef enum { DT_NONE, DT_STRING, DT_INT, DT_FLOAT, DT_BOOL } dtype;

typedef struct cond {
    char **fields; /* tried in order; a "root." prefix reads the root span */
    size_t n_fields;
    int descendants; /* field ?.NUM_DESCENDANTS */
    op_t op;
    dtype dt;
    sr_val v;     /* the value as written, typed */
    char *vstr;   /* its text */
    sr_val *list; /* in / not-in */
    char **list_str;
    size_t n_list;
    regexp *re; /* matches: RE2, unanchored (Go's regexp.MatchString, as Refinery) */
} cond;

typedef struct rule {
    char *name;
    uint32_t sample_rate;
    int drop, span_scope;
    cond *conds;
    size_t n_conds;
    sr_policy *sampler; /* a downstream sampler decides instead of sample_rate/drop */
} rule;

struct sr_policy {
    sr_kind kind;
    char *name; /* the policy's (a downstream sampler's: policy/rule) */
    uint64_t salt; /* random choices: hash(trace id) ^ salt */
    /* key */
    char **fields, **root_fields;
    size_t n_fields, n_root_fields;
    int use_trace_length;
    char *keybuf;
    size_t keycap;
    /* common */
    uint32_t goal_rate, initial_rate, max_keys;
    double goal_tput;
    uint64_t interval_ns, next_ns; /* clear / adjustment / update period; next tick (0: not started) */
    int have_data;
    sr_map counts, rates;
    /* ema */
    double weight, age_out, burst_multiple, burst_threshold, burst_sum;
    uint32_t burst_delay, intervals;
    sr_map avg;
    /* windowed */
    uint32_t lookback; /* update intervals in the window */
    int64_t *ring_idx;
    /* deterministic */
    uint32_t det_rate;
    /* rules */
    rule *rules;
    size_t n_rules;
};

/* Values: numbers as Go's strconv reads them, a config scalar typed, a value
 * as text (tmp: room for a number), a span's field (1 when present). */
int sr_parse_int(const char *s, int64_t *out);
int sr_parse_float(const char *s, double *out);
sr_val sr_typed_scalar(const char *s);
const char *sr_val_str(const sr_val *v, char *tmp, size_t cap);
int sr_span_field(const sr_span *s, const char *f, sr_val *v);

/* Keep 1 in rate, by the trace id: reproducible, independent per policy. */
int sr_chance(const sr_policy *p, const sr_trace *t, uint32_t rate);

/* Config: a located error (-1); a sequence of scalars copied (-1 on out of memory). */
int sr_read_err(const config_node *n, const char *key, char *err, size_t errlen, const char *msg);
int sr_dup_list(const config_node *seq, char ***out, size_t *n);

#endif
