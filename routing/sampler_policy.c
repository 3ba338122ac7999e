/* sampler_policy: reading and evaluating tail-sampling policies. */
#include "sampler_policy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "sampler_refinery.h"

/* One row per policy type: its settings keys (flat: beside name and type;
 * the Collector's shape: inside the `<type>:` block) and the key of its
 * sub-policies in each shape. A new type is a row here, a reader in
 * read_settings and a case in eval. */
typedef struct type_info {
    const char *name;
    sp_type type;
    const char *const *keys;
    const char *subs_flat, *subs_up; /* NULL: no sub-policies */
} type_info;

static const char *const k_none[] = {NULL};
static const char *const k_latency[] = {"threshold_ms", "upper_threshold_ms", NULL};
static const char *const k_status[] = {"status_codes", NULL};
static const char *const k_prob[] = {"sampling_percentage", "hash_salt", NULL};
static const char *const k_string[] = {"key", "values", "enabled_regex_matching", "invert_match", "cache_max_size",
                                       NULL};
static const char *const k_numeric[] = {"key", "min_value", "max_value", "invert_match", NULL};
static const char *const k_boolean[] = {"key", "value", "invert_match", NULL};
static const char *const k_span_count[] = {"min_spans", "max_spans", NULL};
static const char *const k_rate[] = {"spans_per_second", "burst", NULL};
static const char *const k_bytes[] = {"bytes_per_second", "burst", "burst_capacity", NULL};
static const char *const k_trace_state[] = {"key", "values", NULL};
static const char *const k_composite[] = {"max_total_spans_per_second", "policy_order", "rate_allocation", NULL};
static const char *const k_ottl[] = {"error_mode", "span", "spanevent", NULL};

static const type_info types[] = {
    {"always_sample", SP_ALWAYS, k_none, NULL, NULL},
    {"latency", SP_LATENCY, k_latency, NULL, NULL},
    {"status_code", SP_STATUS, k_status, NULL, NULL},
    {"probabilistic", SP_PROBABILISTIC, k_prob, NULL, NULL},
    {"string_attribute", SP_STRING, k_string, NULL, NULL},
    {"numeric_attribute", SP_NUMERIC, k_numeric, NULL, NULL},
    {"boolean_attribute", SP_BOOLEAN, k_boolean, NULL, NULL},
    {"span_count", SP_SPAN_COUNT, k_span_count, NULL, NULL},
    {"rate_limiting", SP_RATE, k_rate, NULL, NULL},
    {"bytes_limiting", SP_BYTES, k_bytes, NULL, NULL},
    {"trace_state", SP_TRACE_STATE, k_trace_state, NULL, NULL},
    {"trace_flags", SP_TRACE_FLAGS, k_none, NULL, NULL},
    {"and", SP_AND, k_none, "policies", "and_sub_policy"},
    {"not", SP_NOT, k_none, "policy", "not_sub_policy"},
    {"composite", SP_COMPOSITE, k_composite, "policies", "composite_sub_policy"},
    {"drop", SP_DROP, k_none, "policies", "drop_sub_policy"},
    {"ottl_condition", SP_OTTL, k_ottl, NULL, NULL},
    {"deterministic", SP_DETERMINISTIC, sr_keys_deterministic, NULL, NULL},
    {"rules", SP_RULES, sr_keys_rules, NULL, NULL},
    {"dynamic", SP_DYNAMIC, sr_keys_dynamic, NULL, NULL},
    {"ema_dynamic", SP_EMA_DYNAMIC, sr_keys_ema_dynamic, NULL, NULL},
    {"ema_throughput", SP_EMA_THROUGHPUT, sr_keys_ema_throughput, NULL, NULL},
    {"windowed_throughput", SP_WINDOWED_THROUGHPUT, sr_keys_windowed, NULL, NULL},
    {"total_throughput", SP_TOTAL_THROUGHPUT, sr_keys_total, NULL, NULL},
};
#define N_TYPES (sizeof(types) / sizeof(types[0]))

#define DEFAULT_HASH_SALT "default-hash-seed" /* the Collector's, when hash_salt is unset */

/* ---- config helpers ---- */

typedef struct read_ctx {
    sp_set *set;
    size_t n_policies;
    int upstream; /* the Collector's shape */
    char *err;
    size_t errlen;
} read_ctx;

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static int oom(read_ctx *c, const config_node *n)
{
    return config_error(n, NULL, c->err, c->errlen, "out of memory");
}

/* A plain decimal number (sign, digits, optional fraction); *set 0 when absent. */
static int read_double(read_ctx *c, const config_node *map, const char *key, double *out, int *set)
{
    const config_node *v = config_get(map, key);
    const char *s = config_scalar(v);
    *set = 0;
    if (v == NULL || (s == NULL && !config_is_map(v) && !config_is_seq(v)))
        return 0;
    if (s == NULL)
        return config_error(map, key, c->err, c->errlen, "expected a number");
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(d) || strpbrk(s, "xXpPnNiI") != NULL)
        return config_error(map, key, c->err, c->errlen, "invalid number \"%.40s\"", s);
    *out = d;
    *set = 1;
    return 0;
}

static int read_int64(read_ctx *c, const config_node *map, const char *key, int64_t *out, int *set)
{
    const config_node *v = config_get(map, key);
    const char *s = config_scalar(v);
    *set = 0;
    if (v == NULL || (s == NULL && !config_is_map(v) && !config_is_seq(v)))
        return 0;
    if (s == NULL)
        return config_error(map, key, c->err, c->errlen, "expected an integer");
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0)
        return config_error(map, key, c->err, c->errlen, "invalid integer \"%.40s\"", s);
    *out = (int64_t)x;
    *set = 1;
    return 0;
}

/* A sequence of non-empty strings (at least one unless allow_empty). */
static int read_str_seq(read_ctx *c, const config_node *map, const char *key, int allow_empty,
                        const config_node **seq)
{
    const config_node *v = config_get(map, key);
    if (v == NULL || (!config_is_seq(v) && config_scalar(v) == NULL && !config_is_map(v)))
        return config_error(map, key, c->err, c->errlen, "required key is missing");
    if (!config_is_seq(v))
        return config_error(map, key, c->err, c->errlen, "expected a sequence of strings");
    if (config_seq_len(v) == 0 && !allow_empty)
        return config_error(map, key, c->err, c->errlen, "must not be empty");
    for (size_t i = 0; i < config_seq_len(v); i++) {
        const char *s = config_scalar(config_seq_at(v, i));
        if (s == NULL || s[0] == '\0')
            return config_error(config_seq_at(v, i), NULL, c->err, c->errlen, "expected a non-empty string");
    }
    *seq = v;
    return 0;
}

static int read_policy(read_ctx *c, const config_node *n, sp_policy *p, int depth);

/* The sub-policies under `key` of settings map s: a sequence, or for `not`
 * exactly one policy (a mapping). */
static int read_subs(read_ctx *c, const config_node *s, const char *key, sp_policy *p, int depth)
{
    const config_node *v = config_get(s, key);
    int one = p->type == SP_NOT;
    if (v == NULL)
        return config_error(s, key, c->err, c->errlen, "required key is missing");
    if (one ? !config_is_map(v) : !config_is_seq(v))
        return config_error(s, key, c->err, c->errlen, one ? "expected one policy (a mapping)"
                                                           : "expected a sequence of policies");
    p->n_subs = one ? 1 : config_seq_len(v);
    if (p->n_subs == 0)
        return config_error(s, key, c->err, c->errlen, "must not be empty");
    p->subs = calloc(p->n_subs, sizeof(*p->subs));
    if (p->subs == NULL)
        return oom(c, v);
    for (size_t i = 0; i < p->n_subs; i++) {
        const config_node *e = one ? v : config_seq_at(v, i);
        if (read_policy(c, e, &p->subs[i], depth + 1) != 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->subs[j].name, p->subs[i].name) == 0)
                return config_error(e, "name", c->err, c->errlen, "duplicate policy name \"%.60s\"", p->subs[i].name);
    }
    return 0;
}

static size_t sub_index(const sp_policy *p, const char *name)
{
    for (size_t i = 0; i < p->n_subs; i++)
        if (strcmp(p->subs[i].name, name) == 0)
            return i;
    return (size_t)-1;
}

/* policy_order must name this composite's sub-policies, each once. As in
 * the Collector it does not order anything: sub-policies are evaluated in
 * the order they are listed. */
static int read_policy_order(read_ctx *c, const config_node *n, const sp_policy *p, int *seen)
{
    const config_node *order = config_get(n, "policy_order");
    if (order != NULL && !config_is_seq(order))
        return config_error(n, "policy_order", c->err, c->errlen, "expected a sequence of policy names");
    for (size_t i = 0; i < config_seq_len(order); i++) {
        const char *name = config_scalar(config_seq_at(order, i));
        size_t j = name != NULL ? sub_index(p, name) : (size_t)-1;
        if (j == (size_t)-1)
            return config_error(config_seq_at(order, i), NULL, c->err, c->errlen,
                                "\"%.60s\" is not one of this composite's policies", name != NULL ? name : "");
        if (seen[j])
            return config_error(config_seq_at(order, i), NULL, c->err, c->errlen, "\"%.60s\" is listed twice",
                                name);
        seen[j] = 1;
    }
    return 0;
}

/* One rate_allocation entry {policy, percent}: a policy is allocated at most
 * once. The spans/s it may sample: percent of the total, or when percent is
 * 0 or less an equal share (total / sub-policies), as the Collector has it.
 * Like there, percentages are not checked to add up to 100: each
 * sub-policy is held to max_total_spans_per_second as well. */
static int read_allocation(read_ctx *c, const config_node *e, sp_policy *p, int *seen)
{
    static const char *const keys[] = {"policy", "percent", NULL};
    const char *name;
    double v;
    int set;
    if (!config_is_map(e))
        return config_error(e, NULL, c->err, c->errlen, "expected a mapping {policy, percent}");
    if (config_check_keys(e, keys, c->err, c->errlen) != 0 ||
        config_str_required(e, "policy", &name, c->err, c->errlen) != 0 || read_double(c, e, "percent", &v, &set) != 0)
        return -1;
    size_t j = sub_index(p, name);
    if (j == (size_t)-1)
        return config_error(e, "policy", c->err, c->errlen, "\"%.60s\" is not one of this composite's policies",
                            name);
    if (seen[j])
        return config_error(e, "policy", c->err, c->errlen, "\"%.60s\" is allocated twice", name);
    if (!set)
        return config_error(e, "percent", c->err, c->errlen, "required key is missing");
    seen[j] = 1;
    double total = (double)p->spans_per_sec;
    p->alloc[j] = v > 0 ? (uint64_t)(v / 100 * total) : (uint64_t)(total / (double)p->n_subs);
    return 0;
}

/* rate_allocation: a sub-policy without an entry gets no budget, so it
 * never samples (the Collector's behaviour, kept so decisions agree). */
static int read_rate_allocation(read_ctx *c, const config_node *n, sp_policy *p, int *seen)
{
    const config_node *ra = config_get(n, "rate_allocation");
    if (ra != NULL && !config_is_seq(ra))
        return config_error(n, "rate_allocation", c->err, c->errlen, "expected a sequence of {policy, percent}");
    for (size_t i = 0; i < config_seq_len(ra); i++)
        if (read_allocation(c, config_seq_at(ra, i), p, seen) != 0)
            return -1;
    return 0;
}

static int read_composite(read_ctx *c, const config_node *n, const char *subs_key, sp_policy *p, int depth)
{
    uint64_t total;
    if (config_get(n, "max_total_spans_per_second") == NULL)
        return config_error(n, "max_total_spans_per_second", c->err, c->errlen, "required key is missing");
    if (config_uint(n, "max_total_spans_per_second", 0, 1, UINT32_MAX, &total, c->err, c->errlen) != 0)
        return -1;
    p->spans_per_sec = total;
    if (read_subs(c, n, subs_key, p, depth) != 0)
        return -1;
    p->alloc = calloc(p->n_subs, sizeof(*p->alloc));
    p->used = calloc(p->n_subs, sizeof(*p->used));
    int *seen = calloc(p->n_subs, sizeof(int));
    if (p->alloc == NULL || p->used == NULL || seen == NULL) {
        free(seen);
        return oom(c, n);
    }
    int rc = read_policy_order(c, n, p, seen);
    memset(seen, 0, p->n_subs * sizeof(int));
    if (rc == 0)
        rc = read_rate_allocation(c, n, p, seen);
    free(seen);
    return rc;
}

static int read_status_codes(read_ctx *c, const config_node *n, sp_policy *p)
{
    const config_node *seq;
    if (read_str_seq(c, n, "status_codes", 0, &seq) != 0)
        return -1;
    for (size_t i = 0; i < config_seq_len(seq); i++) {
        const char *s = config_scalar(config_seq_at(seq, i));
        if (strcmp(s, "UNSET") == 0)
            p->status_mask |= 1u << OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_UNSET;
        else if (strcmp(s, "OK") == 0)
            p->status_mask |= 1u << OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
        else if (strcmp(s, "ERROR") == 0)
            p->status_mask |= 1u << OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        else
            return config_error(config_seq_at(seq, i), NULL, c->err, c->errlen,
                                "invalid status code \"%.40s\" (use ERROR, OK or UNSET)", s);
    }
    return 0;
}

static int take_attr_bit(read_ctx *c, const config_node *n, sp_policy *p)
{
    if (c->set->n_attr >= SP_MAX_ATTR_POLICIES)
        return config_error(n, NULL, c->err, c->errlen, "too many attribute, trace_state, trace_flags and bounded "
                            "latency policies (at most %d)", SP_MAX_ATTR_POLICIES);
    p->attr_bit = (int)c->set->n_attr;
    c->set->attr[c->set->n_attr++] = p;
    return 0;
}

/* `key` and `values` into p (values may be empty where allow_empty). */
static int read_key_values(read_ctx *c, const config_node *n, sp_policy *p, int allow_empty, const config_node **seq)
{
    const char *key;
    if (config_str_required(n, "key", &key, c->err, c->errlen) != 0 ||
        read_str_seq(c, n, "values", allow_empty, seq) != 0)
        return -1;
    if ((p->key = dup_str(key)) == NULL)
        return oom(c, n);
    size_t m = config_seq_len(*seq);
    p->values = calloc(m ? m : 1, sizeof(char *));
    return p->values != NULL ? 0 : oom(c, n);
}

static int read_string_attr(read_ctx *c, const config_node *n, sp_policy *p)
{
    const config_node *seq;
    uint64_t cache_max;
    /* cache_max_size sizes the Collector's cache of regex results; matching
     * here is not cached, so it is accepted and has no effect. */
    /* The Collector takes an empty values list (nothing matches); ours
     * refuses it as a likely mistake. */
    if (read_key_values(c, n, p, c->upstream, &seq) != 0 ||
        config_bool(n, "enabled_regex_matching", 0, &p->use_regex, c->err, c->errlen) != 0 ||
        config_bool(n, "invert_match", 0, &p->invert, c->err, c->errlen) != 0 ||
        config_uint(n, "cache_max_size", 0, 0, INT32_MAX, &cache_max, c->err, c->errlen) != 0)
        return -1;
    size_t m = config_seq_len(seq);
    if (p->use_regex && (p->regexes = calloc(m ? m : 1, sizeof(*p->regexes))) == NULL)
        return oom(c, n);
    for (size_t i = 0; i < m; i++) {
        const char *v = config_scalar(config_seq_at(seq, i));
        if ((p->values[i] = dup_str(v)) == NULL)
            return oom(c, n);
        p->n_values = i + 1; /* read so far: what sp_set_free releases */
        char why[200];
        /* Unanchored, as upstream: a value matches when the pattern occurs in it. */
        if (p->use_regex && (p->regexes[i] = regexp_compile(v, REGEXP_SEARCH, why, sizeof(why))) == NULL)
            return config_error(config_seq_at(seq, i), NULL, c->err, c->errlen, "invalid regular expression: %s",
                                why);
    }
    return take_attr_bit(c, n, p);
}

/* One list of OTTL conditions (`span` or `spanevent`), compiled into
 * p->conds from index *at on; an error is located at the condition. */
static int read_ottl_list(read_ctx *c, const config_node *seq, ottl_context ctx, sp_policy *p, size_t *at)
{
    for (size_t i = 0; i < config_seq_len(seq); i++) {
        const config_node *item = config_seq_at(seq, i);
        const char *text = config_scalar(item);
        char why[320];
        if (text == NULL || text[0] == '\0')
            return config_error(item, NULL, c->err, c->errlen, "expected an OTTL condition (a string)");
        if ((p->conds[*at] = ottl_parse(text, ctx, why, sizeof(why))) == NULL)
            return config_error(item, NULL, c->err, c->errlen, "invalid OTTL condition \"%.80s\": %s", text, why);
        (*at)++;
    }
    return 0;
}

/* ottl_condition: the trace is sampled when any span condition holds for a
 * span, or any spanevent condition for one of its events (upstream's). */
static int read_ottl(read_ctx *c, const config_node *n, sp_policy *p)
{
    static const char *const modes[] = {"propagate", "ignore", "silent", NULL};
    int mode;
    const config_node *span, *event;
    if (config_choice(n, "error_mode", modes, OTTL_PROPAGATE, &mode, c->err, c->errlen) != 0 ||
        config_seq(n, "span", 0, &span, c->err, c->errlen) != 0 ||
        config_seq(n, "spanevent", 0, &event, c->err, c->errlen) != 0)
        return -1;
    p->ottl_mode = (ottl_error_mode)mode;
    p->n_span_conds = config_seq_len(span);
    p->n_event_conds = config_seq_len(event);
    if (p->n_span_conds + p->n_event_conds == 0)
        return config_error(n, "span", c->err, c->errlen,
                            "expected at least one OTTL condition in span or spanevent");
    if (c->set->n_ottl >= SP_MAX_OTTL_POLICIES)
        return config_error(n, NULL, c->err, c->errlen, "too many ottl_condition policies (at most %d)",
                            SP_MAX_OTTL_POLICIES);
    if ((p->conds = calloc(p->n_span_conds + p->n_event_conds, sizeof(*p->conds))) == NULL)
        return oom(c, n);
    size_t at = 0;
    if (read_ottl_list(c, span, OTTL_SPAN, p, &at) != 0 || read_ottl_list(c, event, OTTL_SPANEVENT, p, &at) != 0)
        return -1;
    p->attr_bit = (int)c->set->n_ottl;
    c->set->ottl[c->set->n_ottl++] = p;
    return 0;
}

/* The Collector compares a trace_state value with the configured ones only
 * when key=value fits a W3C list member (256 characters); longer values
 * never match. */
static int read_trace_state(read_ctx *c, const config_node *n, sp_policy *p)
{
    const config_node *seq;
    if (read_key_values(c, n, p, 1, &seq) != 0)
        return -1;
    for (size_t i = 0; i < config_seq_len(seq); i++) {
        const char *v = config_scalar(config_seq_at(seq, i));
        if (strlen(p->key) + strlen(v) >= 256)
            continue;
        if ((p->values[p->n_values] = dup_str(v)) == NULL)
            return oom(c, n);
        p->n_values++;
    }
    return take_attr_bit(c, n, p);
}

static int read_latency(read_ctx *c, const config_node *n, sp_policy *p)
{
    if (config_get(n, "threshold_ms") == NULL)
        return config_error(n, "threshold_ms", c->err, c->errlen, "required key is missing");
    if (config_uint(n, "threshold_ms", 0, 0, UINT64_MAX / 1000000, &p->lat_lo_ms, c->err, c->errlen) != 0 ||
        config_uint(n, "upper_threshold_ms", 0, 0, UINT64_MAX / 1000000, &p->lat_hi_ms, c->err, c->errlen) != 0)
        return -1;
    if (p->lat_hi_ms != 0 && p->lat_hi_ms < p->lat_lo_ms)
        return config_error(n, "upper_threshold_ms", c->err, c->errlen, "must be at least threshold_ms (%llu)",
                            (unsigned long long)p->lat_lo_ms);
    /* With an upper bound the Collector samples when the duration so far,
     * span by span in arrival order, is ever inside the window (a later
     * span may take it past the bound): kept as a bit, set as spans come.
     * Without one the duration only grows, so the whole trace's decides. */
    return p->lat_hi_ms != 0 ? take_attr_bit(c, n, p) : 0;
}

/* floor(ratio x (2^64 - 1)), the product rounded to 64 significant bits
 * first (nearest, ties to even): what the Collector computes with Go's
 * big.Float, so both sample exactly the same hashes. */
uint64_t sp_prob_threshold(double ratio)
{
    if (!(ratio > 0))
        return 0;
    if (ratio >= 1)
        return UINT64_MAX;
    int e;
    double f = frexp(ratio, &e);        /* ratio = f * 2^e, 0.5 <= f < 1 */
    uint64_t m = (uint64_t)ldexp(f, 53); /* exact: ratio = m * 2^(e - 53) */
    int shift = 53 - e;                  /* >= 53 */
    __extension__ typedef unsigned __int128 u128;
    u128 x = (u128)UINT64_MAX * m;
    int bits = 0;
    for (u128 y = x; y != 0; y >>= 1)
        bits++;
    if (bits > 64) {
        int drop = bits - 64;
        u128 keep = x >> drop, rem = x & (((u128)1 << drop) - 1), half = (u128)1 << (drop - 1);
        if (rem > half || (rem == half && (keep & 1)))
            keep++;
        x = keep << drop;
    }
    return shift >= 128 ? 0 : (uint64_t)(x >> shift);
}

/* The Collector's shape takes any percentage (below 0: none, from 100:
 * all); ours refuses what is outside 0..100. */
static int read_probabilistic(read_ctx *c, const config_node *n, sp_policy *p)
{
    double pct;
    int set;
    const char *salt;
    if (read_double(c, n, "sampling_percentage", &pct, &set) != 0 ||
        config_str(n, "hash_salt", "", &salt, c->err, c->errlen) != 0)
        return -1;
    if (!set)
        return config_error(n, "sampling_percentage", c->err, c->errlen, "required key is missing");
    if (!c->upstream && (pct < 0 || pct > 100))
        return config_error(n, "sampling_percentage", c->err, c->errlen, "must be between 0 and 100");
    if (salt[0] == '\0')
        salt = DEFAULT_HASH_SALT;
    p->prob_threshold = sp_prob_threshold(pct / 100);
    p->prob_rate = pct > 0 && pct < 100 ? 100 / pct : 1;
    p->prob_seed = hash_fnv1a(salt, strlen(salt), HASH_FNV1A_INIT);
    return 0;
}

/* In the Collector's shape a bound of 0 means "no bound" (its config cannot
 * tell 0 from absent); in ours 0 is a bound like any other. */
static int read_numeric_attr(read_ctx *c, const config_node *n, sp_policy *p)
{
    const char *key;
    int set, set2;
    if (config_str_required(n, "key", &key, c->err, c->errlen) != 0 ||
        read_int64(c, n, "min_value", &p->min_value, &set) != 0 ||
        read_int64(c, n, "max_value", &p->max_value, &set2) != 0 ||
        config_bool(n, "invert_match", 0, &p->invert, c->err, c->errlen) != 0)
        return -1;
    if (c->upstream) {
        set = set && p->min_value != 0;
        set2 = set2 && p->max_value != 0;
    }
    if (!set && !set2)
        return config_error(n, "min_value", c->err, c->errlen,
                            c->upstream ? "min_value or max_value is required (0 means unset)"
                                        : "min_value or max_value is required");
    if (!set)
        p->min_value = INT64_MIN;
    if (!set2)
        p->max_value = INT64_MAX;
    if (p->max_value < p->min_value)
        return config_error(n, "max_value", c->err, c->errlen, "must be at least min_value");
    if ((p->key = dup_str(key)) == NULL)
        return oom(c, n);
    return take_attr_bit(c, n, p);
}

static int read_boolean_attr(read_ctx *c, const config_node *n, sp_policy *p)
{
    const char *key;
    if (config_get(n, "value") == NULL)
        return config_error(n, "value", c->err, c->errlen, "required key is missing");
    if (config_str_required(n, "key", &key, c->err, c->errlen) != 0 ||
        config_bool(n, "value", 0, &p->bool_value, c->err, c->errlen) != 0 ||
        config_bool(n, "invert_match", 0, &p->invert, c->err, c->errlen) != 0)
        return -1;
    if ((p->key = dup_str(key)) == NULL)
        return oom(c, n);
    return take_attr_bit(c, n, p);
}

static int read_span_count(read_ctx *c, const config_node *n, sp_policy *p)
{
    if (config_get(n, "min_spans") == NULL)
        return config_error(n, "min_spans", c->err, c->errlen, "required key is missing");
    if (config_uint(n, "min_spans", 1, 1, UINT32_MAX, &p->min_spans, c->err, c->errlen) != 0 ||
        config_uint(n, "max_spans", 0, 0, UINT32_MAX, &p->max_spans, c->err, c->errlen) != 0)
        return -1;
    if (p->max_spans != 0 && p->max_spans < p->min_spans)
        return config_error(n, "max_spans", c->err, c->errlen, "must be at least min_spans");
    return 0;
}

/* A token bucket of `burst` (default twice the rate, as the Collector's)
 * refilled at `<rate_key>` per second. bytes_limiting also takes the
 * Collector's name for the burst, burst_capacity. */
static int read_bucket(read_ctx *c, const config_node *n, const char *rate_key, sp_policy *p)
{
    size_t rate, burst;
    const char *burst_key = config_get(n, "burst_capacity") != NULL ? "burst_capacity" : "burst";
    if (config_get(n, rate_key) == NULL)
        return config_error(n, rate_key, c->err, c->errlen, "required key is missing");
    if (config_get(n, "burst") != NULL && config_get(n, "burst_capacity") != NULL)
        return config_error(n, "burst_capacity", c->err, c->errlen, "give burst or burst_capacity, not both");
    if (config_size(n, rate_key, 0, &rate, c->err, c->errlen) != 0)
        return -1;
    if (rate == 0 || rate > UINT32_MAX)
        return config_error(n, rate_key, c->err, c->errlen, "must be between 1 and %u", UINT32_MAX);
    if (config_size(n, burst_key, 2 * rate, &burst, c->err, c->errlen) != 0)
        return -1;
    if (burst == 0)
        return config_error(n, burst_key, c->err, c->errlen, "must be at least 1");
    p->per_sec = rate;
    p->burst = burst;
    c->set->stateful = 1;
    return 0;
}

/* Refinery's samplers keep per-key state (stateful) and look at the trace
 * id, most also at its spans (the set's view level). */
static int read_refinery(read_ctx *c, const config_node *n, sp_policy *p)
{
    p->refinery = sr_read((sr_kind)(p->type - SP_DETERMINISTIC), p->name, n, c->err, c->errlen);
    if (p->refinery == NULL)
        return -1;
    c->set->stateful = 1;
    int view = sr_needs_spans(p->refinery) ? 2 : 1;
    if (view > c->set->view)
        c->set->view = view;
    return 0;
}

/* Each type's own keys mean something different: one reader per type, and
 * the stateful types flag the set so deciding takes the policy lock. */
static int read_settings(read_ctx *c, const config_node *n, const type_info *ti, sp_policy *p, int depth)
{
    const char *subs_key = c->upstream ? ti->subs_up : ti->subs_flat;
    switch (p->type) {
    case SP_ALWAYS:
        return 0;
    case SP_LATENCY:
        return read_latency(c, n, p);
    case SP_STATUS:
        return read_status_codes(c, n, p);
    case SP_PROBABILISTIC:
        return read_probabilistic(c, n, p);
    case SP_STRING:
        return read_string_attr(c, n, p);
    case SP_NUMERIC:
        return read_numeric_attr(c, n, p);
    case SP_BOOLEAN:
        return read_boolean_attr(c, n, p);
    case SP_SPAN_COUNT:
        return read_span_count(c, n, p);
    case SP_RATE:
        return read_bucket(c, n, "spans_per_second", p);
    case SP_BYTES:
        return read_bucket(c, n, "bytes_per_second", p);
    case SP_TRACE_STATE:
        return read_trace_state(c, n, p);
    case SP_TRACE_FLAGS:
        return take_attr_bit(c, n, p);
    case SP_AND:
    case SP_NOT:
    case SP_DROP:
        return read_subs(c, n, subs_key, p, depth);
    case SP_COMPOSITE:
        c->set->stateful = 1;
        return read_composite(c, n, subs_key, p, depth);
    case SP_OTTL:
        return read_ottl(c, n, p);
    default:
        return read_refinery(c, n, p);
    }
    return 0;
}

static const type_info *find_type(const char *name)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (strcmp(types[i].name, name) == 0)
            return &types[i];
    return NULL;
}

/* The policy's type, or a config error that lists the types there are. */
static const type_info *read_type(read_ctx *c, const config_node *n, const char *type)
{
    const type_info *ti = find_type(type);
    if (ti != NULL)
        return ti;
    char list[512];
    size_t k = 0;
    for (size_t i = 0; i < N_TYPES && k < sizeof(list); i++)
        k += (size_t)snprintf(list + k, sizeof(list) - k, "%s%s", i == 0 ? "" : i + 1 == N_TYPES ? " or " : ", ",
                              types[i].name);
    config_error(n, "type", c->err, c->errlen, "unknown policy type \"%.40s\" (use %s)", type, list);
    return NULL;
}

/* Allowed keys: `base` and the type's own (and its sub-policies' key). */
static int check_keys(read_ctx *c, const config_node *n, const char *const *base, const type_info *ti)
{
    const char *allowed[16];
    size_t k = 0;
    const char *subs_key = c->upstream ? ti->subs_up : ti->subs_flat;
    for (size_t i = 0; base[i] != NULL; i++)
        allowed[k++] = base[i];
    for (size_t i = 0; ti->keys[i] != NULL; i++)
        allowed[k++] = ti->keys[i];
    if (subs_key != NULL)
        allowed[k++] = subs_key;
    allowed[k] = NULL;
    return config_check_keys(n, allowed, c->err, c->errlen);
}

/* The settings of a policy in the Collector's shape: its `<type>:` block.
 * Another type's block on it is refused (the Collector would ignore it
 * silently, which hides a mistyped `type`). Types without settings may
 * leave the block out. */
static const config_node *upstream_settings(read_ctx *c, const config_node *n, const type_info *ti)
{
    for (size_t i = 0; i < config_map_len(n); i++) {
        const type_info *other = find_type(config_map_key(n, i));
        if (other != NULL && other != ti) {
            config_error(n, other->name, c->err, c->errlen,
                         "%s settings on a policy of type %s (the Collector ignores them; remove them or fix the "
                         "type)", other->name, ti->name);
            return NULL;
        }
    }
    const char *const base[] = {"name", "type", ti->name, NULL};
    if (config_check_keys(n, base, c->err, c->errlen) != 0)
        return NULL;
    const config_node *s = config_get(n, ti->name);
    if (s == NULL && ti->keys[0] == NULL && ti->subs_up == NULL)
        return n; /* nothing to read: the policy map itself has no settings keys */
    if (s == NULL) {
        config_error(n, ti->name, c->err, c->errlen, "required key is missing (the %s policy's settings)", ti->name);
        return NULL;
    }
    if (!config_is_map(s)) {
        config_error(n, ti->name, c->err, c->errlen, "expected a mapping of %s settings", ti->name);
        return NULL;
    }
    static const char *const none[] = {NULL};
    return check_keys(c, s, none, ti) == 0 ? s : NULL;
}

static int read_policy(read_ctx *c, const config_node *n, sp_policy *p, int depth)
{
    static const char *const base[] = {"name", "type", NULL};
    const char *name, *type;
    if (!config_is_map(n))
        return config_error(n, NULL, c->err, c->errlen, "expected a policy mapping {name, type, ...}");
    if (++c->n_policies > SP_MAX_POLICIES)
        return config_error(n, NULL, c->err, c->errlen, "too many policies (at most %d)", SP_MAX_POLICIES);
    if (config_str_required(n, "name", &name, c->err, c->errlen) != 0 ||
        config_str_required(n, "type", &type, c->err, c->errlen) != 0)
        return -1;
    if ((p->name = dup_str(name)) == NULL)
        return oom(c, n);
    p->attr_bit = -1;
    const type_info *ti = read_type(c, n, type);
    if (ti == NULL)
        return -1;
    p->type = ti->type;
    if ((p->type == SP_DROP || p->type == SP_COMPOSITE) && depth > 0)
        return config_error(n, "type", c->err, c->errlen, "a %s policy is only allowed at the top level", ti->name);
    const config_node *s = c->upstream ? upstream_settings(c, n, ti) : n;
    if (s == NULL || (!c->upstream && check_keys(c, n, base, ti) != 0))
        return -1;
    return read_settings(c, s, ti, p, depth);
}

int sp_set_read(sp_set *set, const config_node *seq, int upstream, char *err, size_t errlen)
{
    memset(set, 0, sizeof(*set));
    read_ctx c = {.set = set, .upstream = upstream, .err = err, .errlen = errlen};
    if (!config_is_seq(seq))
        return config_error(seq, "policies", err, errlen, "expected a sequence of policies");
    if (config_seq_len(seq) == 0)
        return config_error(seq, "policies", err, errlen, "must not be empty");
    set->n_top = config_seq_len(seq);
    set->top = calloc(set->n_top, sizeof(*set->top));
    if (set->top == NULL) {
        set->n_top = 0;
        return oom(&c, seq);
    }
    for (size_t i = 0; i < set->n_top; i++) {
        if (read_policy(&c, config_seq_at(seq, i), &set->top[i], 0) != 0)
            return -1; /* caller frees the partial set */
        for (size_t j = 0; j < i; j++)
            if (strcmp(set->top[j].name, set->top[i].name) == 0)
                return config_error(config_seq_at(seq, i), "name", err, errlen, "duplicate policy name \"%.60s\"",
                                    set->top[i].name);
    }
    return 0;
}

static void policy_free(sp_policy *p)
{
    free(p->name);
    free(p->key);
    for (size_t i = 0; i < p->n_values; i++) {
        free(p->values[i]);
        if (p->regexes != NULL)
            regexp_free(p->regexes[i]);
    }
    free(p->values);
    free(p->regexes);
    for (size_t i = 0; p->conds != NULL && i < p->n_span_conds + p->n_event_conds; i++)
        ottl_free(p->conds[i]);
    free(p->conds);
    for (size_t i = 0; p->subs != NULL && i < p->n_subs; i++)
        policy_free(&p->subs[i]);
    free(p->subs);
    free(p->alloc);
    free(p->used);
    sr_free(p->refinery);
}

void sp_set_free(sp_set *set)
{
    for (size_t i = 0; set->top != NULL && i < set->n_top; i++)
        policy_free(&set->top[i]);
    free(set->top);
    memset(set, 0, sizeof(*set));
}

/* ---- per-span predicates ---- */

static int ts_key_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '*' || ch == '/';
}

/* A W3C tracestate key: simple (a-z first, at most 256) or tenant@system
 * (tenant: a-z or 0-9 first, at most 241; system: a-z first, at most 14). */
static int ts_valid_key(const char *k, size_t n)
{
    const char *at = memchr(k, '@', n);
    size_t tn = at != NULL ? (size_t)(at - k) : n, sn = at != NULL ? n - tn - 1 : 0;
    if (tn == 0 || (at == NULL ? tn > 256 : tn > 241 || sn == 0 || sn > 14))
        return 0;
    if (!((k[0] >= 'a' && k[0] <= 'z') || (at != NULL && k[0] >= '0' && k[0] <= '9')))
        return 0;
    if (at != NULL && !(at[1] >= 'a' && at[1] <= 'z'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k + i != at && !ts_key_char(k[i]))
            return 0;
    return 1;
}

/* 1 to 256 printable ASCII characters but ',' and '=', not ending in a space. */
static int ts_valid_value(const char *v, size_t n)
{
    if (n == 0 || n > 256 || v[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',' || v[i] == '=')
            return 0;
    return 1;
}

const char *sp_tracestate_get(const char *ts, const char *key, size_t *vlen)
{
    enum { MAX_MEMBERS = 32 };
    const char *keys[MAX_MEMBERS], *found = NULL;
    size_t klens[MAX_MEMBERS], n = 0, want = strlen(key);
    for (const char *p = ts != NULL ? ts : ""; *p != '\0';) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        if (end != p) { /* empty members are skipped */
            const char *eq = memchr(p, '=', (size_t)(end - p)), *k = p, *ve = end;
            if (eq == NULL || n == MAX_MEMBERS)
                return NULL;
            while (k < eq && (*k == ' ' || *k == '\t'))
                k++;
            while (ve > eq + 1 && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t kl = (size_t)(eq - k);
            if (!ts_valid_key(k, kl) || !ts_valid_value(eq + 1, (size_t)(ve - eq - 1)))
                return NULL;
            for (size_t i = 0; i < n; i++)
                if (klens[i] == kl && memcmp(keys[i], k, kl) == 0)
                    return NULL; /* a duplicate key invalidates the list */
            keys[n] = k;
            klens[n++] = kl;
            if (kl == want && memcmp(k, key, kl) == 0) {
                found = eq + 1;
                *vlen = (size_t)(ve - eq - 1);
            }
        }
        p = *end != '\0' ? end + 1 : end;
    }
    return found;
}

static int attr_matches(const sp_policy *p, const Opentelemetry__Proto__Common__V1__AnyValue *v)
{
    if (v == NULL)
        return 0;
    switch (p->type) {
    case SP_STRING:
        if (v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
            return 0;
        for (size_t i = 0; i < p->n_values; i++) {
            if (p->use_regex ? regexp_match(p->regexes[i], v->string_value, strlen(v->string_value))
                             : strcmp(p->values[i], v->string_value) == 0)
                return 1;
        }
        return 0;
    case SP_NUMERIC:
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
            return v->int_value >= p->min_value && v->int_value <= p->max_value;
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE)
            return v->double_value >= (double)p->min_value && v->double_value <= (double)p->max_value;
        return 0;
    case SP_BOOLEAN:
        return v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE &&
               (v->bool_value != 0) == (p->bool_value != 0);
    default:
        return 0;
    }
}

static int is_attr_policy(const sp_policy *p)
{
    return p->type == SP_STRING || p->type == SP_NUMERIC || p->type == SP_BOOLEAN;
}

static int attrs_match(const sp_policy *p, Opentelemetry__Proto__Common__V1__KeyValue *const *attrs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (attrs[i] != NULL && attrs[i]->key != NULL && strcmp(attrs[i]->key, p->key) == 0 &&
            attr_matches(p, attrs[i]->value))
            return 1;
    return 0;
}

uint64_t sp_attr_bits(const sp_set *set, Opentelemetry__Proto__Common__V1__KeyValue *const *attrs, size_t n)
{
    uint64_t bits = 0;
    for (size_t a = 0; a < set->n_attr; a++)
        if (is_attr_policy(set->attr[a]) && attrs_match(set->attr[a], attrs, n))
            bits |= (uint64_t)1 << a;
    return bits;
}

/* Duration in whole milliseconds (truncated, as Go's Milliseconds()); at
 * least threshold_ms without an upper bound, else above threshold_ms and
 * at most upper_threshold_ms. */
static int latency_matches(const sp_policy *p, const sp_summary *t)
{
    uint64_t d = t->min_start != UINT64_MAX && t->max_end > t->min_start ? t->max_end - t->min_start : 0;
    uint64_t ms = d / 1000000u;
    if (p->lat_hi_ms == 0)
        return ms >= p->lat_lo_ms;
    return ms > p->lat_lo_ms && ms <= p->lat_hi_ms;
}

uint64_t sp_summary_bits(const sp_set *set, const sp_summary *t)
{
    uint64_t bits = 0;
    for (size_t a = 0; a < set->n_attr; a++)
        if (set->attr[a]->type == SP_LATENCY && latency_matches(set->attr[a], t))
            bits |= (uint64_t)1 << a;
    return bits;
}

int sp_reads_spans(const sp_set *set)
{
    for (size_t a = 0; a < set->n_attr; a++)
        if (set->attr[a]->type != SP_LATENCY)
            return 1;
    return set->n_ottl != 0;
}

uint64_t sp_span_bits(const sp_set *set, const Opentelemetry__Proto__Trace__V1__Span *span)
{
    uint64_t bits = 0;
    for (size_t a = 0; a < set->n_attr; a++) {
        const sp_policy *p = set->attr[a];
        int m;
        switch (p->type) {
        case SP_TRACE_STATE: {
            size_t vlen;
            const char *v = sp_tracestate_get(span->trace_state, p->key, &vlen);
            m = 0;
            for (size_t i = 0; v != NULL && i < p->n_values && !m; i++)
                m = strlen(p->values[i]) == vlen && memcmp(p->values[i], v, vlen) == 0;
            break;
        }
        case SP_TRACE_FLAGS:
            m = (span->flags & 1u) != 0; /* W3C trace flags, low byte: sampled */
            break;
        case SP_LATENCY:
            m = 0; /* sp_summary_bits */
            break;
        default:
            m = attrs_match(p, span->attributes, span->n_attributes);
            break;
        }
        if (m)
            bits |= (uint64_t)1 << a;
    }
    return bits;
}

void sp_ottl_span(const sp_set *set, sp_summary *t, const Opentelemetry__Proto__Resource__V1__Resource *resource,
                  const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope,
                  const Opentelemetry__Proto__Trace__V1__Span *span)
{
    for (size_t k = 0; k < set->n_ottl; k++) {
        const sp_policy *p = set->ottl[k];
        uint32_t bit = (uint32_t)1 << k;
        if ((t->ottl_match | t->ottl_error) & bit)
            continue;
        ottl_subject s = {.resource = resource, .scope = scope, .span = span};
        ottl_result r = ottl_eval_any(p->conds, p->n_span_conds, p->ottl_mode, &s);
        for (size_t e = 0; r == OTTL_FALSE && p->n_event_conds != 0 && e < span->n_events; e++) {
            if ((s.event = span->events[e]) != NULL)
                r = ottl_eval_any(p->conds + p->n_span_conds, p->n_event_conds, p->ottl_mode, &s);
        }
        if (r == OTTL_TRUE)
            t->ottl_match |= bit;
        else if (r == OTTL_ERROR)
            t->ottl_error |= bit;
    }
}

uint64_t sp_trace_hash(const uint8_t id[16])
{
    return hash_mix64(hash_fnv1a(id, 16, HASH_FNV1A_INIT));
}

/* ---- evaluation ---- */

/* Go's x/time/rate limiter, which the Collector's limits use: full at
 * first, refilled at per_sec up to burst; a trace costing more than burst
 * never fits, and a deficit worth less than a nanosecond of refill passes
 * (its wait rounds to zero). */
static int bucket_take(sp_policy *p, uint64_t cost, uint64_t now_ns)
{
    if (!p->tokens_init) {
        p->tokens = (double)p->burst;
        p->tokens_at_ns = now_ns;
        p->tokens_init = 1;
    } else if (now_ns > p->tokens_at_ns) {
        p->tokens += (double)(now_ns - p->tokens_at_ns) / 1e9 * (double)p->per_sec;
        if (p->tokens > (double)p->burst)
            p->tokens = (double)p->burst;
        p->tokens_at_ns = now_ns;
    }
    double deficit = (double)cost - p->tokens;
    if (cost > p->burst || (deficit > 0 && deficit / (double)p->per_sec * 1e9 >= 1.0))
        return 0;
    p->tokens -= (double)cost;
    return 1;
}

static sp_dec eval(sp_policy *p, const uint8_t *id, const sp_summary *t, uint64_t now_ns);

/* Composite: the first sub-policy (listed order) that samples decides; it
 * samples when its share of this second's budget, and the total, still
 * hold the trace's spans, else the trace is not sampled (later sub-policies
 * are not tried). */
static sp_dec eval_composite(sp_policy *p, const uint8_t *id, const sp_summary *t, uint64_t now_ns)
{
    uint64_t sec = now_ns / 1000000000u;
    if (sec != p->window_sec) {
        p->window_sec = sec;
        memset(p->used, 0, p->n_subs * sizeof(*p->used));
    }
    for (size_t i = 0; i < p->n_subs; i++) {
        sp_dec d = eval(&p->subs[i], id, t, now_ns);
        if (d == SP_ERROR)
            return d;
        if (d != SP_SAMPLED && d != SP_INV_SAMPLED)
            continue;
        uint64_t next = p->used[i] + t->spans;
        if (next > p->alloc[i] || next > p->spans_per_sec)
            return SP_NOT_SAMPLED;
        p->used[i] = next;
        p->last_sub = (int)i;
        return SP_SAMPLED;
    }
    return SP_NOT_SAMPLED;
}

static sp_dec eval(sp_policy *p, const uint8_t *id, const sp_summary *t, uint64_t now_ns)
{
    switch (p->type) {
    case SP_ALWAYS:
        return SP_SAMPLED;
    case SP_LATENCY:
        if (p->attr_bit >= 0)
            return (t->attr_bits >> p->attr_bit) & 1 ? SP_SAMPLED : SP_NOT_SAMPLED;
        return latency_matches(p, t) ? SP_SAMPLED : SP_NOT_SAMPLED;
    case SP_STATUS:
        return (t->status_mask & p->status_mask) != 0 ? SP_SAMPLED : SP_NOT_SAMPLED;
    case SP_PROBABILISTIC:
        return hash_fnv1a(id, 16, p->prob_seed) <= p->prob_threshold ? SP_SAMPLED : SP_NOT_SAMPLED;
    case SP_STRING:
    case SP_NUMERIC:
    case SP_BOOLEAN: {
        int m = (t->attr_bits >> p->attr_bit) & 1;
        if (p->invert)
            return m ? SP_INV_NOT_SAMPLED : SP_INV_SAMPLED;
        return m ? SP_SAMPLED : SP_NOT_SAMPLED;
    }
    case SP_TRACE_STATE:
    case SP_TRACE_FLAGS:
        return (t->attr_bits >> p->attr_bit) & 1 ? SP_SAMPLED : SP_NOT_SAMPLED;
    case SP_OTTL:
        if ((t->ottl_error >> p->attr_bit) & 1)
            return SP_ERROR;
        return (t->ottl_match >> p->attr_bit) & 1 ? SP_SAMPLED : SP_NOT_SAMPLED;
    case SP_SPAN_COUNT:
        return t->spans >= p->min_spans && (p->max_spans == 0 || t->spans <= p->max_spans) ? SP_SAMPLED
                                                                                              : SP_NOT_SAMPLED;
    case SP_RATE:
        return bucket_take(p, t->spans, now_ns) ? SP_SAMPLED : SP_NOT_SAMPLED;
    case SP_BYTES:
        return bucket_take(p, t->span_bytes, now_ns) ? SP_SAMPLED : SP_NOT_SAMPLED;
    case SP_AND:
    case SP_DROP:
        for (size_t i = 0; i < p->n_subs; i++) {
            sp_dec d = eval(&p->subs[i], id, t, now_ns);
            if (d == SP_ERROR)
                return d;
            if (d == SP_NOT_SAMPLED || d == SP_INV_NOT_SAMPLED)
                return SP_NOT_SAMPLED;
        }
        return p->type == SP_DROP ? SP_DROPPED : SP_SAMPLED;
    case SP_NOT: {
        sp_dec d = eval(&p->subs[0], id, t, now_ns);
        return d == SP_SAMPLED ? SP_NOT_SAMPLED : d == SP_NOT_SAMPLED ? SP_SAMPLED : d;
    }
    case SP_COMPOSITE:
        return eval_composite(p, id, t, now_ns);
    default: /* Refinery's samplers */
        return t->view != NULL && sr_eval(p->refinery, t->view, now_ns, &p->last_rate) ? SP_SAMPLED
                                                                                        : SP_NOT_SAMPLED;
    }
    return SP_NOT_SAMPLED;
}

/* The sample rate of a policy that just sampled (its weight, sp_decide);
 * Refinery samplers and composite remember theirs from eval, under the
 * policy lock (both make the set stateful). */
static double policy_rate(const sp_policy *p)
{
    double r = 1;
    switch (p->type) {
    case SP_PROBABILISTIC:
        return p->prob_rate;
    case SP_AND:
        for (size_t i = 0; i < p->n_subs; i++)
            r *= policy_rate(&p->subs[i]);
        return r;
    case SP_COMPOSITE:
        return p->last_sub >= 0 ? policy_rate(&p->subs[p->last_sub]) : 1;
    default:
        return p->refinery != NULL ? p->last_rate : 1;
    }
}

static void count(sp_policy *p, sp_dec d)
{
    int sampled = d == SP_SAMPLED || d == SP_INV_SAMPLED || d == SP_DROPPED;
    atomic_fetch_add_explicit(sampled ? &p->n_sampled : &p->n_not_sampled, 1, memory_order_relaxed);
    metrics_add(sampled ? p->m_sampled : p->m_not_sampled, 1);
}

int sp_decide(sp_set *set, const uint8_t trace_id[16], const sp_summary *t, uint64_t now_ns, int *who,
              sp_weight *w)
{
    w->rate = 1;
    w->composite_sub = NULL;
    double best = 0; /* least rate among the policies that sampled (0: none yet) */
    int first[SP_ERROR + 1] = {-1, -1, -1, -1, -1, -1}; /* first policy per verdict */
    /* Drop policies first, so a dropped trace spends no budget. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < set->n_top; i++) {
            sp_policy *p = &set->top[i];
            if ((p->type == SP_DROP) != (pass == 0))
                continue;
            sp_dec d = eval(p, trace_id, t, now_ns);
            count(p, d);
            if ((d == SP_SAMPLED || d == SP_INV_SAMPLED) && (best == 0 || policy_rate(p) < best))
                best = policy_rate(p);
            if (first[d] < 0)
                first[d] = (int)i;
            if (d == SP_DROPPED || (set->first_match && d == SP_SAMPLED))
                goto decided;
        }
    }
decided:
    *who = -1;
    if (first[SP_DROPPED] >= 0) {
        *who = first[SP_DROPPED];
        return 0;
    }
    if (first[SP_INV_NOT_SAMPLED] >= 0)
        return 0;
    if (first[SP_SAMPLED] >= 0)
        *who = first[SP_SAMPLED];
    else if (first[SP_INV_SAMPLED] >= 0 && first[SP_NOT_SAMPLED] < 0)
        *who = first[SP_INV_SAMPLED];
    else
        return 0;
    const sp_policy *p = &set->top[*who];
    w->rate = best > 0 ? best : 1;
    if (p->type == SP_COMPOSITE && p->last_sub >= 0)
        w->composite_sub = p->subs[p->last_sub].name;
    return 1;
}
