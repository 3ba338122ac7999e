/* sampler_policy: reading and evaluating tail-sampling policies. */
#include "sampler_policy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "sampler_refinery.h"

typedef struct type_info {
    const char *name;
    sp_type type;
    const char *const *keys; /* allowed keys besides name and type */
} type_info;

static const char *const k_none[] = {NULL};
static const char *const k_latency[] = {"threshold_ms", "upper_threshold_ms", NULL};
static const char *const k_status[] = {"status_codes", NULL};
static const char *const k_prob[] = {"sampling_percentage", NULL};
static const char *const k_string[] = {"key", "values", "enabled_regex_matching", "invert_match", NULL};
static const char *const k_numeric[] = {"key", "min_value", "max_value", "invert_match", NULL};
static const char *const k_boolean[] = {"key", "value", "invert_match", NULL};
static const char *const k_span_count[] = {"min_spans", "max_spans", NULL};
static const char *const k_rate[] = {"spans_per_second", NULL};
static const char *const k_bytes[] = {"bytes_per_second", "burst", NULL};
static const char *const k_subs[] = {"policies", NULL};
static const char *const k_composite[] = {"max_total_spans_per_second", "policy_order", "rate_allocation",
                                          "policies", NULL};

static const type_info types[] = {
    {"always_sample", SP_ALWAYS, k_none},
    {"latency", SP_LATENCY, k_latency},
    {"status_code", SP_STATUS, k_status},
    {"probabilistic", SP_PROBABILISTIC, k_prob},
    {"string_attribute", SP_STRING, k_string},
    {"numeric_attribute", SP_NUMERIC, k_numeric},
    {"boolean_attribute", SP_BOOLEAN, k_boolean},
    {"span_count", SP_SPAN_COUNT, k_span_count},
    {"rate_limiting", SP_RATE, k_rate},
    {"bytes_limiting", SP_BYTES, k_bytes},
    {"and", SP_AND, k_subs},
    {"composite", SP_COMPOSITE, k_composite},
    {"drop", SP_DROP, k_subs},
    {"deterministic", SP_DETERMINISTIC, sr_keys_deterministic},
    {"rules", SP_RULES, sr_keys_rules},
    {"dynamic", SP_DYNAMIC, sr_keys_dynamic},
    {"ema_dynamic", SP_EMA_DYNAMIC, sr_keys_ema_dynamic},
    {"ema_throughput", SP_EMA_THROUGHPUT, sr_keys_ema_throughput},
    {"windowed_throughput", SP_WINDOWED_THROUGHPUT, sr_keys_windowed},
    {"total_throughput", SP_TOTAL_THROUGHPUT, sr_keys_total},
};
#define N_TYPES (sizeof(types) / sizeof(types[0]))

/* ---- config helpers ---- */

typedef struct read_ctx {
    sp_set *set;
    size_t n_policies;
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

/* A sequence of non-empty strings (at least one). */
static int read_str_seq(read_ctx *c, const config_node *map, const char *key, const config_node **seq)
{
    const config_node *v = config_get(map, key);
    if (v == NULL || (!config_is_seq(v) && config_scalar(v) == NULL && !config_is_map(v)))
        return config_error(map, key, c->err, c->errlen, "required key is missing");
    if (!config_is_seq(v))
        return config_error(map, key, c->err, c->errlen, "expected a sequence of strings");
    if (config_seq_len(v) == 0)
        return config_error(map, key, c->err, c->errlen, "must not be empty");
    for (size_t i = 0; i < config_seq_len(v); i++) {
        const char *s = config_scalar(config_seq_at(v, i));
        if (s == NULL || s[0] == '\0')
            return config_error(config_seq_at(v, i), NULL, c->err, c->errlen, "expected a non-empty string");
    }
    *seq = v;
    return 0;
}

static int read_policy(read_ctx *c, const config_node *n, sp_policy *p, int depth, int parent_composite);

static int read_subs(read_ctx *c, const config_node *map, sp_policy *p, int depth)
{
    const config_node *seq = config_get(map, "policies");
    if (seq == NULL)
        return config_error(map, "policies", c->err, c->errlen, "required key is missing");
    if (!config_is_seq(seq))
        return config_error(map, "policies", c->err, c->errlen, "expected a sequence of policies");
    if (config_seq_len(seq) == 0)
        return config_error(map, "policies", c->err, c->errlen, "must not be empty");
    p->n_subs = config_seq_len(seq);
    p->subs = calloc(p->n_subs, sizeof(*p->subs));
    if (p->subs == NULL)
        return oom(c, seq);
    for (size_t i = 0; i < p->n_subs; i++) {
        if (read_policy(c, config_seq_at(seq, i), &p->subs[i], depth + 1, p->type == SP_COMPOSITE) != 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->subs[j].name, p->subs[i].name) == 0)
                return config_error(config_seq_at(seq, i), "name", c->err, c->errlen,
                                    "duplicate policy name \"%.60s\"", p->subs[i].name);
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

/* policy_order says which policies get the shared rate first; those not
 * listed follow in the order the policies are listed (p->order). */
static int read_policy_order(read_ctx *c, const config_node *n, sp_policy *p, int *seen)
{
    size_t k = 0;
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
        p->order[k++] = j;
    }
    for (size_t j = 0; j < p->n_subs; j++)
        if (!seen[j])
            p->order[k++] = j; /* not in policy_order: evaluated after, in listed order */
    return 0;
}

/* One rate_allocation entry {policy, percent}: a policy is allocated at most
 * once, so its percent is added to *sum once. */
static int read_allocation(read_ctx *c, const config_node *e, const sp_policy *p, int *seen, double *pct,
                           double *sum)
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
    if (v <= 0 || v > 100)
        return config_error(e, "percent", c->err, c->errlen, "must be more than 0 and at most 100");
    seen[j] = 1;
    pct[j] = v;
    *sum += v;
    return 0;
}

/* rate_allocation: the percent of the composite's rate a policy may use
 * (seen[j] and pct[j] for those allocated, their total in *sum). */
static int read_rate_allocation(read_ctx *c, const config_node *n, const sp_policy *p, int *seen, double *pct,
                                double *sum)
{
    const config_node *ra = config_get(n, "rate_allocation");
    if (ra != NULL && !config_is_seq(ra))
        return config_error(n, "rate_allocation", c->err, c->errlen, "expected a sequence of {policy, percent}");
    for (size_t i = 0; i < config_seq_len(ra); i++)
        if (read_allocation(c, config_seq_at(ra, i), p, seen, pct, sum) != 0)
            return -1;
    if (*sum > 100.0 + 1e-9)
        return config_error(n, "rate_allocation", c->err, c->errlen, "percentages add up to %.4g, more than 100",
                            *sum);
    return 0;
}

static int read_composite(read_ctx *c, const config_node *n, sp_policy *p, int depth)
{
    uint64_t total;
    if (config_uint(n, "max_total_spans_per_second", 0, 1, UINT32_MAX, &total, c->err, c->errlen) != 0)
        return -1;
    if (config_get(n, "max_total_spans_per_second") == NULL)
        return config_error(n, "max_total_spans_per_second", c->err, c->errlen, "required key is missing");
    p->spans_per_sec = total;
    if (read_subs(c, n, p, depth) != 0)
        return -1;
    p->order = calloc(p->n_subs, sizeof(*p->order));
    p->alloc = calloc(p->n_subs, sizeof(*p->alloc));
    p->used = calloc(p->n_subs, sizeof(*p->used));
    int *seen = calloc(p->n_subs, sizeof(int));
    double *pct = calloc(p->n_subs, sizeof(double));
    if (p->order == NULL || p->alloc == NULL || p->used == NULL || seen == NULL || pct == NULL) {
        free(seen);
        free(pct);
        return oom(c, n);
    }
    double sum = 0;
    int rc = read_policy_order(c, n, p, seen);
    memset(seen, 0, p->n_subs * sizeof(int));
    if (rc == 0)
        rc = read_rate_allocation(c, n, p, seen, pct, &sum);
    if (rc == 0) {
        /* Policies without an allocation share what is left equally (all of
         * it when there is no rate_allocation). */
        size_t unalloc = 0;
        for (size_t j = 0; j < p->n_subs; j++)
            unalloc += !seen[j];
        for (size_t j = 0; j < p->n_subs; j++) {
            double share = seen[j] ? pct[j] : (100.0 - sum) / (double)unalloc;
            p->alloc[j] = (uint64_t)((double)total * share / 100.0);
        }
    }
    free(seen);
    free(pct);
    return rc;
}

static int read_status_codes(read_ctx *c, const config_node *n, sp_policy *p)
{
    const config_node *seq;
    if (read_str_seq(c, n, "status_codes", &seq) != 0)
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
        return config_error(n, NULL, c->err, c->errlen, "too many attribute policies (at most %d)",
                            SP_MAX_ATTR_POLICIES);
    p->attr_bit = (int)c->set->n_attr;
    c->set->attr[c->set->n_attr++] = p;
    return 0;
}

static int read_string_attr(read_ctx *c, const config_node *n, sp_policy *p)
{
    const char *key;
    const config_node *seq;
    if (config_str_required(n, "key", &key, c->err, c->errlen) != 0 || read_str_seq(c, n, "values", &seq) != 0 ||
        config_bool(n, "enabled_regex_matching", 0, &p->use_regex, c->err, c->errlen) != 0 ||
        config_bool(n, "invert_match", 0, &p->invert, c->err, c->errlen) != 0)
        return -1;
    if ((p->key = dup_str(key)) == NULL)
        return oom(c, n);
    size_t m = config_seq_len(seq);
    p->values = calloc(m, sizeof(char *));
    if (p->values == NULL)
        return oom(c, n);
    if (p->use_regex && (p->regexes = calloc(m, sizeof(regex_t))) == NULL)
        return oom(c, n);
    for (size_t i = 0; i < m; i++) {
        const char *v = config_scalar(config_seq_at(seq, i));
        if ((p->values[i] = dup_str(v)) == NULL)
            return oom(c, n);
        if (p->use_regex) {
            int rc = regcomp(&p->regexes[i], v, REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char msg[128];
                regerror(rc, &p->regexes[i], msg, sizeof(msg));
                free(p->values[i]);
                p->values[i] = NULL;
                return config_error(config_seq_at(seq, i), NULL, c->err, c->errlen, "invalid regex: %s", msg);
            }
        }
        p->n_values = i + 1; /* compiled so far: what sp_set_free releases */
    }
    return take_attr_bit(c, n, p);
}

static int read_latency(read_ctx *c, const config_node *n, sp_policy *p)
{
    uint64_t u, u2;
    if (config_get(n, "threshold_ms") == NULL)
        return config_error(n, "threshold_ms", c->err, c->errlen, "required key is missing");
    if (config_uint(n, "threshold_ms", 0, 0, UINT64_MAX / 1000000, &u, c->err, c->errlen) != 0 ||
        config_uint(n, "upper_threshold_ms", 0, 0, UINT64_MAX / 1000000, &u2, c->err, c->errlen) != 0)
        return -1;
    if (u2 != 0 && u2 < u)
        return config_error(n, "upper_threshold_ms", c->err, c->errlen, "must be at least threshold_ms (%llu)",
                            (unsigned long long)u);
    p->lat_lo_ns = u * 1000000;
    p->lat_hi_ns = u2 * 1000000;
    return 0;
}

static int read_probabilistic(read_ctx *c, const config_node *n, sp_policy *p)
{
    double pct;
    int set;
    if (read_double(c, n, "sampling_percentage", &pct, &set) != 0)
        return -1;
    if (!set)
        return config_error(n, "sampling_percentage", c->err, c->errlen, "required key is missing");
    if (pct < 0 || pct > 100)
        return config_error(n, "sampling_percentage", c->err, c->errlen, "must be between 0 and 100");
    p->prob_rate = pct > 0 ? 100.0 / pct : 1;
    if (pct >= 100)
        p->prob_all = 1;
    else
        p->prob_threshold = (uint64_t)ldexp(pct / 100.0, 64); /* < 2^64 since pct < 100 */
    return 0;
}

static int read_numeric_attr(read_ctx *c, const config_node *n, sp_policy *p)
{
    const char *key;
    int set, set2;
    if (config_str_required(n, "key", &key, c->err, c->errlen) != 0 ||
        read_int64(c, n, "min_value", &p->min_value, &set) != 0 ||
        read_int64(c, n, "max_value", &p->max_value, &set2) != 0 ||
        config_bool(n, "invert_match", 0, &p->invert, c->err, c->errlen) != 0)
        return -1;
    if (!set && !set2)
        return config_error(n, "min_value", c->err, c->errlen, "min_value or max_value is required");
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

static int read_bytes_limit(read_ctx *c, const config_node *n, sp_policy *p)
{
    size_t bps, burst;
    if (config_get(n, "bytes_per_second") == NULL)
        return config_error(n, "bytes_per_second", c->err, c->errlen, "required key is missing");
    if (config_size(n, "bytes_per_second", 0, &bps, c->err, c->errlen) != 0)
        return -1;
    if (bps == 0)
        return config_error(n, "bytes_per_second", c->err, c->errlen, "must be at least 1");
    if (config_size(n, "burst", bps, &burst, c->err, c->errlen) != 0)
        return -1;
    if (burst == 0)
        return config_error(n, "burst", c->err, c->errlen, "must be at least 1");
    p->bytes_per_sec = bps;
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
static int read_settings(read_ctx *c, const config_node *n, sp_policy *p, int depth)
{
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
        if (config_get(n, "spans_per_second") == NULL)
            return config_error(n, "spans_per_second", c->err, c->errlen, "required key is missing");
        c->set->stateful = 1;
        return config_uint(n, "spans_per_second", 0, 1, UINT32_MAX, &p->spans_per_sec, c->err, c->errlen);
    case SP_BYTES:
        return read_bytes_limit(c, n, p);
    case SP_AND:
    case SP_DROP:
        return read_subs(c, n, p, depth);
    case SP_COMPOSITE:
        c->set->stateful = 1;
        return read_composite(c, n, p, depth);
    default:
        return read_refinery(c, n, p);
    }
    return 0;
}

/* The policy's type, or a config error that lists the types there are. */
static const type_info *read_type(read_ctx *c, const config_node *n, const char *type)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (strcmp(types[i].name, type) == 0)
            return &types[i];
    config_error(n, "type", c->err, c->errlen,
                 "unknown policy type \"%.40s\" (use always_sample, latency, status_code, probabilistic, "
                 "string_attribute, numeric_attribute, boolean_attribute, span_count, rate_limiting, "
                 "bytes_limiting, and, composite, drop, deterministic, rules, dynamic, ema_dynamic, "
                 "ema_throughput, windowed_throughput or total_throughput)",
                 type);
    return NULL;
}

/* A key another type uses (or a typo) is an error, not silently ignored:
 * allowed are name, type and the type's own. */
static int check_policy_keys(read_ctx *c, const config_node *n, const type_info *ti)
{
    static const char *const base_keys[] = {"name", "type", NULL};
    const char *allowed[16];
    size_t k = 0;
    for (size_t i = 0; base_keys[i] != NULL; i++)
        allowed[k++] = base_keys[i];
    for (size_t i = 0; ti->keys[i] != NULL; i++)
        allowed[k++] = ti->keys[i];
    allowed[k] = NULL;
    return config_check_keys(n, allowed, c->err, c->errlen);
}

static int read_policy(read_ctx *c, const config_node *n, sp_policy *p, int depth, int parent_composite)
{
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
    if ((p->type == SP_DROP && depth > 0) || (p->type == SP_COMPOSITE && (depth > 0)))
        return config_error(n, "type", c->err, c->errlen, "a %s policy is only allowed at the top level", ti->name);
    (void)parent_composite;
    if (check_policy_keys(c, n, ti) != 0)
        return -1;
    return read_settings(c, n, p, depth);
}

int sp_set_read(sp_set *set, const config_node *seq, char *err, size_t errlen)
{
    memset(set, 0, sizeof(*set));
    read_ctx c = {.set = set, .err = err, .errlen = errlen};
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
        if (read_policy(&c, config_seq_at(seq, i), &set->top[i], 0, 0) != 0)
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
            regfree(&p->regexes[i]);
    }
    free(p->values);
    free(p->regexes);
    for (size_t i = 0; p->subs != NULL && i < p->n_subs; i++)
        policy_free(&p->subs[i]);
    free(p->subs);
    free(p->order);
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

/* ---- evaluation ---- */

static int attr_matches(const sp_policy *p, const Opentelemetry__Proto__Common__V1__AnyValue *v)
{
    if (v == NULL)
        return 0;
    switch (p->type) {
    case SP_STRING:
        if (v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
            return 0;
        for (size_t i = 0; i < p->n_values; i++) {
            if (p->use_regex ? regexec(&p->regexes[i], v->string_value, 0, NULL, 0) == 0
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

uint64_t sp_attr_bits(const sp_set *set, Opentelemetry__Proto__Common__V1__KeyValue *const *attrs, size_t n)
{
    uint64_t bits = 0;
    for (size_t a = 0; a < set->n_attr; a++) {
        const sp_policy *p = set->attr[a];
        for (size_t i = 0; i < n; i++) {
            if (attrs[i] != NULL && attrs[i]->key != NULL && strcmp(attrs[i]->key, p->key) == 0 &&
                attr_matches(p, attrs[i]->value)) {
                bits |= (uint64_t)1 << a;
                break;
            }
        }
    }
    return bits;
}

uint64_t sp_trace_hash(const uint8_t id[16])
{
    return hash_mix64(hash_fnv1a(id, 16, HASH_FNV1A_INIT));
}

/* Spans/s window: reset when the second changes. */
static void window_roll(sp_policy *p, uint64_t now_ns)
{
    uint64_t sec = now_ns / 1000000000u;
    if (sec != p->window_sec) {
        p->window_sec = sec;
        p->window_used = 0;
        for (size_t i = 0; p->used != NULL && i < p->n_subs; i++)
            p->used[i] = 0;
    }
}

static int eval(sp_policy *p, const sp_summary *t, uint64_t now_ns)
{
    switch (p->type) {
    case SP_ALWAYS:
        return 1;
    case SP_LATENCY: {
        uint64_t d = t->min_start != UINT64_MAX && t->max_end > t->min_start ? t->max_end - t->min_start : 0;
        return d >= p->lat_lo_ns && (p->lat_hi_ns == 0 || d <= p->lat_hi_ns);
    }
    case SP_STATUS:
        return (t->status_mask & p->status_mask) != 0;
    case SP_PROBABILISTIC:
        return p->prob_all || t->id_hash < p->prob_threshold;
    case SP_STRING:
    case SP_NUMERIC:
    case SP_BOOLEAN: {
        int m = (t->attr_bits >> p->attr_bit) & 1;
        return p->invert ? !m : m;
    }
    case SP_SPAN_COUNT:
        return t->spans >= p->min_spans && (p->max_spans == 0 || t->spans <= p->max_spans);
    case SP_RATE:
        window_roll(p, now_ns);
        if (p->window_used + t->spans > p->spans_per_sec)
            return 0;
        p->window_used += t->spans;
        return 1;
    case SP_BYTES:
        if (!p->tokens_init) {
            p->tokens = (double)p->burst;
            p->tokens_at_ns = now_ns;
            p->tokens_init = 1;
        } else if (now_ns > p->tokens_at_ns) {
            p->tokens += (double)(now_ns - p->tokens_at_ns) * (double)p->bytes_per_sec / 1e9;
            if (p->tokens > (double)p->burst)
                p->tokens = (double)p->burst;
            p->tokens_at_ns = now_ns;
        }
        if ((double)t->span_bytes > p->tokens)
            return 0;
        p->tokens -= (double)t->span_bytes;
        return 1;
    case SP_AND:
    case SP_DROP:
        for (size_t i = 0; i < p->n_subs; i++)
            if (!eval(&p->subs[i], t, now_ns))
                return 0;
        return 1;
    case SP_DETERMINISTIC:
    case SP_RULES:
    case SP_DYNAMIC:
    case SP_EMA_DYNAMIC:
    case SP_EMA_THROUGHPUT:
    case SP_WINDOWED_THROUGHPUT:
    case SP_TOTAL_THROUGHPUT:
        return t->view != NULL && sr_eval(p->refinery, t->view, now_ns, &p->last_rate);
    case SP_COMPOSITE:
        window_roll(p, now_ns);
        for (size_t k = 0; k < p->n_subs; k++) {
            size_t i = p->order[k];
            if (p->used[i] + t->spans > p->alloc[i] || !eval(&p->subs[i], t, now_ns))
                continue;
            p->used[i] += t->spans;
            return 1;
        }
        return 0;
    }
    return 0;
}

/* The sample rate a policy that just sampled kept the trace at (sp_decide). */
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
    default:
        return p->refinery != NULL ? p->last_rate : 1;
    }
}

static void count(sp_policy *p, int sampled)
{
    atomic_fetch_add_explicit(sampled ? &p->n_sampled : &p->n_not_sampled, 1, memory_order_relaxed);
    metrics_add(sampled ? p->m_sampled : p->m_not_sampled, 1);
}

int sp_decide(sp_set *set, const sp_summary *t, uint64_t now_ns, int *who, double *rate)
{
    *who = -1;
    *rate = 1;
    /* Drop policies veto: evaluated first so stateful policies spend no
     * budget on a trace that is dropped anyway. */
    for (size_t i = 0; i < set->n_top; i++) {
        sp_policy *p = &set->top[i];
        if (p->type != SP_DROP)
            continue;
        int d = eval(p, t, now_ns);
        count(p, d); /* for a drop policy "sampled" means it matched (dropped the trace) */
        if (d) {
            *who = (int)i;
            return 0;
        }
    }
    int keep = 0;
    for (size_t i = 0; i < set->n_top; i++) {
        sp_policy *p = &set->top[i];
        if (p->type == SP_DROP)
            continue;
        int r = eval(p, t, now_ns);
        count(p, r);
        if (r && (!keep || policy_rate(p) < *rate))
            *rate = policy_rate(p);
        if (r && !keep) {
            keep = 1;
            *who = (int)i;
        }
    }
    return keep;
}
