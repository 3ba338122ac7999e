/* sampler_refinery: Refinery-class samplers (see sampler_refinery.h). */
#include "sampler_refinery.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "regexp.h"

#define DETERMINISTIC_SALT "5VQ8l2jE5aJLPVqk" /* Refinery's, so decisions match */
#define MAX_KEY_VALUES 100                    /* distinct values in one key, as Refinery */
#define MAX_KEY_BYTES 1024                    /* longer keys keep a prefix and a hash of the rest */
#define DEFAULT_MAX_KEYS 500                  /* Refinery's when MaxKeys is 0 */
#define NS_PER_SEC 1000000000ull

const char *const sr_keys_deterministic[] = {"sample_rate", NULL};
const char *const sr_keys_rules[] = {"rules", NULL};
const char *const sr_keys_dynamic[] = {"sample_rate", "clear_frequency", "field_list", "max_keys",
                                       "use_trace_length", NULL};
const char *const sr_keys_ema_dynamic[] = {"goal_sample_rate", "adjustment_interval", "weight", "age_out_value",
                                           "burst_multiple", "burst_detection_delay", "field_list", "max_keys",
                                           "use_trace_length", NULL};
const char *const sr_keys_ema_throughput[] = {"goal_throughput_per_sec", "initial_sample_rate",
                                              "adjustment_interval", "weight", "age_out_value", "burst_multiple",
                                              "burst_detection_delay", "field_list", "max_keys", "use_trace_length",
                                              NULL};
const char *const sr_keys_windowed[] = {"goal_throughput_per_sec", "update_frequency", "lookback_frequency",
                                        "field_list", "max_keys", "use_trace_length", NULL};
const char *const sr_keys_total[] = {"goal_throughput_per_sec", "clear_frequency", "field_list", "max_keys",
                                     "use_trace_length", NULL};

/* ---- a string-keyed table (open addressing; rebuilt rather than deleted from) ---- */

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

static uint64_t str_hash(const char *s) { return hash_mix64(hash_fnv1a(s, strlen(s), HASH_FNV1A_INIT)); }

static void map_clear(sr_map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->e[i].key);
        free(m->e[i].slots);
    }
    free(m->e);
    memset(m, 0, sizeof(*m));
}

static sr_ent *map_slot(const sr_map *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = str_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1))
        if (m->e[i].key == NULL || strcmp(m->e[i].key, key) == 0)
            return &m->e[i];
}

static const sr_ent *map_get(const sr_map *m, const char *key)
{
    const sr_ent *e = map_slot(m, key);
    return e != NULL && e->key != NULL ? e : NULL;
}

static int map_grow(sr_map *m)
{
    sr_map n = {.cap = m->cap ? m->cap * 2 : 16};
    if ((n.e = calloc(n.cap, sizeof(*n.e))) == NULL)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->e[i].key != NULL)
            *map_slot(&n, m->e[i].key) = m->e[i];
    n.n = m->n;
    free(m->e);
    *m = n;
    return 0;
}

/* The entry for key, made (zeroed) when absent; NULL without memory. */
static sr_ent *map_put(sr_map *m, const char *key)
{
    sr_ent *e = map_slot(m, key);
    if (e != NULL && e->key != NULL)
        return e;
    if ((m->n + 1) * 2 > m->cap) {
        if (map_grow(m) != 0)
            return NULL;
        e = map_slot(m, key);
    }
    size_t len = strlen(key) + 1;
    if ((e->key = malloc(len)) == NULL)
        return NULL;
    memcpy(e->key, key, len);
    m->n++;
    return e;
}

/* Moves an entry's contents to a fresh table (the old slot is emptied). */
static sr_ent *map_take(sr_map *to, sr_ent *from)
{
    if ((to->n + 1) * 2 > to->cap && map_grow(to) != 0)
        return NULL;
    sr_ent *e = map_slot(to, from->key);
    *e = *from;
    memset(from, 0, sizeof(*from));
    to->n++;
    return e;
}

/* ---- policy state ---- */

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

/* ---- values ---- */

static int parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0)
        return 0;
    *out = v;
    return 1;
}

static int parse_float(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno != 0 || strpbrk(s, "xXnNiI") != NULL)
        return 0;
    *out = v;
    return 1;
}

/* A config scalar typed the way YAML would: bool, int, float, else string. */
static sr_val typed_scalar(const char *s)
{
    sr_val v = {.t = V_STR, .s = s};
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        v.t = V_BOOL;
        v.b = s[0] == 't';
    } else if (parse_int(s, &v.i)) {
        v.t = V_INT;
    } else if (parse_float(s, &v.f)) {
        v.t = V_FLOAT;
    }
    return v;
}

/* Shortest decimal that reads back as d, without an exponent (Go's 'f', -1). */
static void fmt_float(char *out, size_t cap, double d)
{
    for (int prec = 0; prec < 40; prec++) {
        snprintf(out, cap, "%.*f", prec, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

/* A value as text, as Go's %v / strconv would print it (nil: "<nil>"). */
static const char *val_str(const sr_val *v, char *tmp, size_t cap)
{
    switch (v->t) {
    case V_STR: return v->s;
    case V_INT: snprintf(tmp, cap, "%lld", (long long)v->i); return tmp;
    case V_FLOAT: fmt_float(tmp, cap, v->f); return tmp;
    case V_BOOL: return v->b ? "true" : "false";
    default: return "<nil>";
    }
}

static int any_value(const Opentelemetry__Proto__Common__V1__AnyValue *a, sr_val *v)
{
    memset(v, 0, sizeof(*v));
    if (a == NULL)
        return 0;
    switch (a->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        v->t = V_STR;
        v->s = a->string_value;
        return 1;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        v->t = V_INT;
        v->i = a->int_value;
        return 1;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        v->t = V_FLOAT;
        v->f = a->double_value;
        return 1;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        v->t = V_BOOL;
        v->b = a->bool_value != 0;
        return 1;
    default: /* arrays, maps and bytes: present, compared as empty text */
        v->t = V_STR;
        v->s = "";
        return 1;
    }
}

static int find_attr(Opentelemetry__Proto__Common__V1__KeyValue *const *kv, size_t n, const char *key, sr_val *v)
{
    for (size_t i = 0; i < n; i++)
        if (kv[i] != NULL && kv[i]->key != NULL && strcmp(kv[i]->key, key) == 0)
            return any_value(kv[i]->value, v);
    return 0;
}

static const char *const kind_names[] = {"unspecified", "internal", "server", "client", "producer", "consumer"};

/* A span's field as Honeycomb's OTLP intake names it: its attributes, then
 * its resource's, then the span's own (name, span.kind, duration_ms,
 * status_code, error). */
static int span_field(const sr_span *s, const char *f, sr_val *v)
{
    const Opentelemetry__Proto__Trace__V1__Span *sp = s->span;
    if (find_attr(sp->attributes, sp->n_attributes, f, v))
        return 1;
    if (s->resource != NULL && find_attr(s->resource->attributes, s->resource->n_attributes, f, v))
        return 1;
    memset(v, 0, sizeof(*v));
    if (strcmp(f, "name") == 0 && sp->name != NULL) {
        v->t = V_STR;
        v->s = sp->name;
    } else if (strcmp(f, "span.kind") == 0) {
        v->t = V_STR;
        v->s = (unsigned)sp->kind < 6 ? kind_names[sp->kind] : "unspecified";
    } else if (strcmp(f, "duration_ms") == 0) {
        v->t = V_FLOAT;
        v->f = sp->end_time_unix_nano > sp->start_time_unix_nano
                   ? (double)(sp->end_time_unix_nano - sp->start_time_unix_nano) / 1e6
                   : 0;
    } else if (strcmp(f, "status_code") == 0) {
        v->t = V_INT;
        v->i = sp->status != NULL ? sp->status->code : 0;
    } else if (strcmp(f, "error") == 0 && sp->status != NULL &&
               sp->status->code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR) {
        v->t = V_BOOL;
        v->b = 1;
    } else {
        return 0;
    }
    return 1;
}

/* ---- trace keys (Refinery's traceKey) ---- */

static int keybuf_add(sr_policy *p, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > p->keycap) {
        size_t cap = p->keycap ? p->keycap : 256;
        while (*len + n + 1 > cap)
            cap *= 2;
        char *b = realloc(p->keybuf, cap);
        if (b == NULL)
            return -1;
        p->keybuf = b;
        p->keycap = cap;
    }
    memcpy(p->keybuf + *len, s, n + 1);
    *len += n;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The distinct values of field f over the spans, sorted, into vals (owned
 * strings); stops when *unique reaches MAX_KEY_VALUES as Refinery does. */
static size_t field_values(const sr_trace *t, const char *f, char **vals, size_t *unique)
{
    size_t n = 0;
    char tmp[64];
    for (size_t s = 0; s < t->n_spans && *unique < MAX_KEY_VALUES; s++) {
        sr_val v;
        if (!span_field(&t->spans[s], f, &v))
            continue;
        const char *txt = val_str(&v, tmp, sizeof(tmp));
        size_t j = 0;
        while (j < n && strcmp(vals[j], txt) != 0)
            j++;
        if (j < n)
            continue;
        if (++*unique >= MAX_KEY_VALUES)
            break;
        if ((vals[n] = strdup(txt)) != NULL)
            n++;
    }
    qsort(vals, n, sizeof(*vals), cmp_str);
    return n;
}

const char *sr_trace_key(sr_policy *p, const sr_trace *t)
{
    size_t len = 0, unique = 0;
    char *vals[MAX_KEY_VALUES];
    char tmp[64];
    if (keybuf_add(p, &len, "") != 0)
        return "";
    for (size_t i = 0; i < p->n_fields && unique < MAX_KEY_VALUES; i++) {
        size_t n = field_values(t, p->fields[i], vals, &unique);
        for (size_t j = 0; j < n; j++) {
            keybuf_add(p, &len, vals[j]);
            keybuf_add(p, &len, "\xe2\x80\xa2"); /* U+2022, Refinery's value separator */
            free(vals[j]);
        }
        if (n > 0)
            keybuf_add(p, &len, ",");
    }
    for (size_t i = 0; t->root != NULL && i < p->n_root_fields; i++) {
        sr_val v;
        if (span_field(t->root, p->root_fields[i], &v)) {
            keybuf_add(p, &len, val_str(&v, tmp, sizeof(tmp)));
            keybuf_add(p, &len, ",");
        }
    }
    if (p->use_trace_length) {
        snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)t->span_count);
        keybuf_add(p, &len, tmp);
    }
    if (len > MAX_KEY_BYTES) { /* attribute values are the sender's: bound what a key costs */
        uint64_t h = hash_mix64(hash_fnv1a(p->keybuf, len, HASH_FNV1A_INIT));
        snprintf(p->keybuf + MAX_KEY_BYTES - 17, 18, "#%016llx", (unsigned long long)h);
    }
    return p->keybuf;
}

/* ---- dynsampler-go arithmetic ---- */

/* Go's math.Max: NaN wins (C's fmax would drop it and change the result). */
static double go_max(double a, double b)
{
    if (isnan(a) || isnan(b))
        return NAN;
    return a > b ? a : b;
}

static int cmp_ent_key(const void *a, const void *b)
{
    return strcmp((*(sr_ent *const *)a)->key, (*(sr_ent *const *)b)->key);
}

/* Keys in sorted order (the allocation hands leftovers down that order). */
static void allocate(double goal_ratio, sr_ent **ents, size_t n, const double *counts)
{
    double extra = 0;
    size_t remaining = n;
    for (size_t k = 0; k < n; k++) {
        double count = go_max(1, counts[k]);
        double goal = go_max(1, log10(count) * goal_ratio);
        double share = extra / (double)remaining;
        goal += share;
        extra -= share;
        remaining--;
        if (count <= goal) {
            ents[k]->rate = 1;
            extra += goal - count;
        } else {
            double r = ceil(count / goal);
            ents[k]->rate = isnan(r) ? 1 : r >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)r;
            extra += goal - count / (double)ents[k]->rate;
        }
    }
}

void sr_avg_rates(uint32_t goal_rate, const char *const *keys, const double *counts, size_t n, uint32_t *rates)
{
    sr_ent *e = calloc(n ? n : 1, sizeof(*e));
    sr_ent **ents = calloc(n ? n : 1, sizeof(*ents));
    double *c = calloc(n ? n : 1, sizeof(*c));
    double sum = 0, log_sum = 0;
    if (e == NULL || ents == NULL || c == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        e[i].key = (char *)keys[i];
        e[i].count = counts[i];
        ents[i] = &e[i];
        sum += counts[i];
        log_sum += log10(counts[i]);
    }
    qsort(ents, n, sizeof(*ents), cmp_ent_key);
    for (size_t i = 0; i < n; i++)
        c[i] = ents[i]->count;
    allocate(sum / (double)goal_rate / log_sum, ents, n, c);
    for (size_t i = 0; i < n; i++)
        rates[i] = e[i].rate;
out:
    free(e);
    free(ents);
    free(c);
}

/* New saved rates from `from`'s per-key value (count or avg): goal_count
 * events to keep, shared by log10 of each key's count. */
static int rates_from(sr_policy *p, sr_map *from, int use_avg, double goal_count)
{
    sr_ent **ents = calloc(from->n ? from->n : 1, sizeof(*ents));
    double *c = calloc(from->n ? from->n : 1, sizeof(*c));
    size_t n = 0;
    int rc = -1;
    if (ents == NULL || c == NULL)
        goto out;
    for (size_t i = 0; i < from->cap; i++)
        if (from->e[i].key != NULL)
            ents[n++] = &from->e[i];
    qsort(ents, n, sizeof(*ents), cmp_ent_key);
    double log_sum = 0;
    for (size_t k = 0; k < n; k++) {
        c[k] = use_avg ? ents[k]->avg : ents[k]->count;
        log_sum += log10(use_avg ? go_max(1, c[k]) : c[k]);
    }
    allocate(goal_count / log_sum, ents, n, c);
    map_clear(&p->rates);
    for (size_t k = 0; k < n; k++) {
        sr_ent *e = map_put(&p->rates, ents[k]->key);
        if (e == NULL)
            goto out;
        e->rate = ents[k]->rate;
    }
    rc = 0;
out:
    free(ents);
    free(c);
    return rc;
}

/* AvgSampleRate's update: rates from this interval's counts, then a fresh count. */
static void avg_update(sr_policy *p)
{
    if (p->counts.n == 0) {
        map_clear(&p->rates); /* no traffic: every key at 1 (have_data unchanged) */
        return;
    }
    double sum = 0;
    for (size_t i = 0; i < p->counts.cap; i++)
        if (p->counts.e[i].key != NULL)
            sum += p->counts.e[i].count;
    if (rates_from(p, &p->counts, 0, sum / (double)p->goal_rate) == 0)
        p->have_data = 1;
    map_clear(&p->counts);
}

/* TotalThroughput's update: the goal split equally over the keys seen. */
static void total_update(sr_policy *p)
{
    map_clear(&p->rates);
    if (p->counts.n == 0)
        return;
    double per_key = p->goal_tput * ((double)p->interval_ns / 1e9) / (double)p->counts.n;
    for (size_t i = 0; i < p->counts.cap; i++) {
        sr_ent *c = &p->counts.e[i];
        sr_ent *e = c->key != NULL ? map_put(&p->rates, c->key) : NULL;
        if (e != NULL) {
            double r = go_max(1, c->count / per_key);
            e->rate = r >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)r;
        }
    }
    map_clear(&p->counts);
}

/* EMA update: fold this interval's counts into the moving averages (ageing
 * out small ones), then rates from the averages. No traffic: no change. */
static void ema_update(sr_policy *p)
{
    if (p->counts.n == 0)
        return;
    sr_map next = {0};
    for (size_t i = 0; i < p->avg.cap; i++) {
        sr_ent *a = &p->avg.e[i];
        if (a->key == NULL)
            continue;
        sr_ent *c = (sr_ent *)map_get(&p->counts, a->key);
        a->avg = (c != NULL ? c->count : 0) * p->weight + (1.0 - p->weight) * a->avg;
        if (c != NULL)
            c->rate = 1; /* folded in: not a new key below */
        if (a->avg >= p->age_out)
            map_take(&next, a);
    }
    for (size_t i = 0; i < p->counts.cap; i++) {
        sr_ent *c = &p->counts.e[i];
        if (c->key == NULL || c->rate != 0)
            continue;
        double avg = c->count * p->weight;
        sr_ent *e = avg >= p->age_out ? map_put(&next, c->key) : NULL;
        if (e != NULL)
            e->avg = avg;
    }
    map_clear(&p->avg); /* what is left there aged out */
    p->avg = next;
    map_clear(&p->counts);
    p->burst_sum = 0;
    double sum = 0;
    for (size_t i = 0; i < p->avg.cap; i++)
        if (p->avg.e[i].key != NULL)
            sum += go_max(1, p->avg.e[i].avg);
    p->burst_threshold = sum * p->burst_multiple;
    double goal = p->kind == SR_EMA_DYNAMIC ? sum / (double)p->goal_rate
                                            : p->goal_tput * ((double)p->interval_ns / 1e9);
    if (rates_from(p, &p->avg, 1, goal) == 0)
        p->have_data = 1;
}

/* The window's ring: slot i holds update interval ring_idx[i]. */
static void windowed_slot(sr_policy *p, int64_t idx, size_t *slot)
{
    *slot = (size_t)(idx % (p->lookback + 1));
    if (p->ring_idx[*slot] == idx)
        return;
    p->ring_idx[*slot] = idx;
    for (size_t i = 0; i < p->counts.cap; i++)
        if (p->counts.e[i].key != NULL)
            p->counts.e[i].slots[*slot] = 0;
}

/* WindowedThroughput's update: counts over the last `lookback` whole
 * intervals, the goal split equally over the keys seen there; keys with
 * nothing left in the window are forgotten. */
static void windowed_update(sr_policy *p, uint64_t now_ns)
{
    int64_t cur = (int64_t)(now_ns / p->interval_ns);
    sr_map next = {0};
    for (size_t i = 0; i < p->counts.cap; i++) {
        sr_ent *c = &p->counts.e[i];
        if (c->key == NULL)
            continue;
        c->count = 0;
        int live = 0;
        for (size_t s = 0; s <= p->lookback; s++) {
            int64_t idx = p->ring_idx[s];
            if (idx >= cur - (int64_t)p->lookback && idx <= cur - 1)
                c->count += c->slots[s];
            if (idx >= cur - (int64_t)p->lookback && c->slots[s] > 0)
                live = 1;
        }
        if (live)
            map_take(&next, c);
    }
    map_clear(&p->counts);
    p->counts = next;
    map_clear(&p->rates);
    size_t keys = 0;
    for (size_t i = 0; i < p->counts.cap; i++)
        keys += p->counts.e[i].key != NULL && p->counts.e[i].count > 0;
    if (keys == 0)
        return;
    double per_key = p->goal_tput * ((double)p->interval_ns * p->lookback / 1e9) / (double)keys;
    for (size_t i = 0; i < p->counts.cap; i++) {
        sr_ent *c = &p->counts.e[i];
        sr_ent *e = c->key != NULL && c->count > 0 ? map_put(&p->rates, c->key) : NULL;
        if (e != NULL) {
            double r = go_max(1, c->count / per_key);
            e->rate = r >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)r;
        }
    }
}

static void tick(sr_policy *p, uint64_t now_ns)
{
    switch (p->kind) {
    case SR_DYNAMIC: avg_update(p); break;
    case SR_TOTAL_THROUGHPUT: total_update(p); break;
    case SR_EMA_DYNAMIC:
    case SR_EMA_THROUGHPUT:
        ema_update(p);
        p->intervals++;
        break;
    case SR_WINDOWED_THROUGHPUT: windowed_update(p, now_ns); break;
    default: break;
    }
}

/* Periodic updates that fell due by now_ns, as dynsampler's tickers would
 * have run them (the first one interval after the first decision). After
 * the first, the due ticks saw no traffic: one more clears the rates of the
 * samplers that clear, the EMA only counts them, the window is a function
 * of the time the update runs. */
static void run_ticks(sr_policy *p, uint64_t now_ns)
{
    if (p->next_ns == 0)
        p->next_ns = now_ns + p->interval_ns;
    if (now_ns < p->next_ns)
        return;
    tick(p, now_ns);
    p->next_ns += p->interval_ns;
    if (now_ns < p->next_ns)
        return;
    uint64_t idle = (now_ns - p->next_ns) / p->interval_ns + 1;
    if (p->kind == SR_DYNAMIC || p->kind == SR_TOTAL_THROUGHPUT)
        tick(p, now_ns);
    else if (p->kind != SR_WINDOWED_THROUGHPUT)
        p->intervals += (uint32_t)idle;
    p->next_ns += idle * p->interval_ns;
}

/* Count `count` events for key and return its rate, as GetSampleRateMulti. */
static uint32_t key_rate(sr_policy *p, const char *key, uint64_t count, uint64_t now_ns)
{
    run_ticks(p, now_ns);
    sr_ent *e = (sr_ent *)map_get(&p->counts, key);
    if (e == NULL && p->counts.n < p->max_keys) {
        e = map_put(&p->counts, key);
        if (e != NULL && p->kind == SR_WINDOWED_THROUGHPUT &&
            (e->slots = calloc(p->lookback + 1, sizeof(double))) == NULL)
            e = NULL;
    }
    if (p->kind == SR_WINDOWED_THROUGHPUT) {
        if (e == NULL)
            return 1; /* over max_keys: dynsampler says 0, Refinery makes it 1 */
        size_t slot;
        windowed_slot(p, (int64_t)(now_ns / p->interval_ns), &slot);
        e->slots[slot] += (double)count;
        const sr_ent *r = map_get(&p->rates, key);
        return r != NULL ? r->rate : 1;
    }
    int burst = 0;
    if (e != NULL) {
        e->count += (double)count;
        p->burst_sum += (double)count;
    }
    if ((p->kind == SR_EMA_DYNAMIC || p->kind == SR_EMA_THROUGHPUT) && p->burst_threshold > 0 &&
        p->burst_sum >= p->burst_threshold && p->intervals >= p->burst_delay) {
        p->burst_sum = 0;
        burst = 1;
    }
    uint32_t rate = 1;
    const sr_ent *r = map_get(&p->rates, key);
    if (!p->have_data && p->kind != SR_TOTAL_THROUGHPUT)
        rate = p->kind == SR_EMA_THROUGHPUT ? p->initial_rate : p->goal_rate;
    else if (r != NULL)
        rate = r->rate;
    if (burst) { /* dynsampler updates at once and restarts its ticker */
        ema_update(p);
        p->next_ns = now_ns + p->interval_ns;
    }
    return rate;
}

uint32_t sr_key_rate(const sr_policy *p, const char *key)
{
    const sr_ent *r = map_get(&p->rates, key);
    return r != NULL ? r->rate : 0;
}

/* ---- deterministic ---- */

size_t sr_trace_id_string(const uint8_t id[16], char out[33])
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    while (start < 8 && id[start] == 0)
        start++;
    start = start == 8 ? 8 : 0;
    size_t n = 0;
    for (size_t i = start; i < 16; i++) {
        out[n++] = hex[id[i] >> 4];
        out[n++] = hex[id[i] & 15];
    }
    out[n] = '\0';
    return n;
}

int sr_deterministic_keep(const char *id, size_t len, uint32_t rate)
{
    if (rate <= 1)
        return 1;
    uint8_t md[EVP_MAX_MD_SIZE];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha1(), NULL) == 1 && EVP_DigestUpdate(c, id, len) == 1 &&
             EVP_DigestUpdate(c, DETERMINISTIC_SALT, strlen(DETERMINISTIC_SALT)) == 1 &&
             EVP_DigestFinal_ex(c, md, NULL) == 1;
    EVP_MD_CTX_free(c);
    if (!ok)
        return 1; /* no digest (out of memory): keep rather than lose the trace */
    uint32_t v = (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 | (uint32_t)md[2] << 8 | md[3];
    return v <= UINT32_MAX / rate;
}

/* keep 1 in rate, by the trace id: reproducible, independent per policy */
static int chance(const sr_policy *p, const sr_trace *t, uint32_t rate)
{
    if (rate <= 1)
        return 1;
    uint64_t h = hash_mix64(hash_fnv1a(t->id, 16, HASH_FNV1A_INIT) ^ p->salt);
    return (double)(h >> 11) * 0x1p-53 * (double)rate < 1.0;
}

/* ---- rules ---- */

static int cmp3(double a, double b) { return a < b ? -1 : a > b ? 1 : 0; }

/* Refinery's compare() for conditions without a datatype: numbers with
 * numbers, bools with bools, strings with strings; else no verdict (0). */
static int compare_untyped(const sr_val *a, const sr_val *b, int *out)
{
    if ((a->t == V_INT || a->t == V_FLOAT) && (b->t == V_INT || b->t == V_FLOAT)) {
        if (a->t == V_INT && b->t == V_INT)
            *out = a->i < b->i ? -1 : a->i > b->i;
        else
            *out = cmp3(a->t == V_INT ? (double)a->i : a->f, b->t == V_INT ? (double)b->i : b->f);
        return 1;
    }
    if (a->t == V_BOOL && b->t == V_BOOL) {
        *out = a->b - b->b;
        return 1;
    }
    if (a->t == V_STR && b->t == V_STR) {
        int c = strcmp(a->s, b->s);
        *out = c < 0 ? -1 : c > 0;
        return 1;
    }
    return 0;
}

static int to_int(const sr_val *v, int64_t *out)
{
    switch (v->t) {
    case V_INT: *out = v->i; return 1;
    case V_FLOAT: *out = (int64_t)v->f; return 1;
    case V_STR: return parse_int(v->s, out);
    default: return 0;
    }
}

static int to_float(const sr_val *v, double *out)
{
    switch (v->t) {
    case V_INT: *out = (double)v->i; return 1;
    case V_FLOAT: *out = v->f; return 1;
    case V_STR: return parse_float(v->s, out);
    default: return 0;
    }
}

static int to_bool(const sr_val *v)
{
    char tmp[64];
    const char *s = val_str(v, tmp, sizeof(tmp));
    return strcmp(s, "1") == 0 || strcmp(s, "t") == 0 || strcmp(s, "T") == 0 || strcmp(s, "true") == 0 ||
           strcmp(s, "TRUE") == 0 || strcmp(s, "True") == 0;
}

static int op_holds(op_t op, int c)
{
    switch (op) {
    case OP_EQ: return c == 0;
    case OP_NE: return c != 0;
    case OP_GT: return c > 0;
    case OP_LT: return c < 0;
    case OP_GE: return c >= 0;
    default: return c <= 0;
    }
}

static int compare_typed(const cond *c, const sr_val *v, int exists)
{
    char tmp[64];
    switch (c->dt) {
    case DT_STRING: {
        int r = strcmp(val_str(v, tmp, sizeof(tmp)), c->vstr);
        return op_holds(c->op, r < 0 ? -1 : r > 0);
    }
    case DT_INT: {
        int64_t a, b;
        return exists && to_int(v, &a) && to_int(&c->v, &b) && op_holds(c->op, a < b ? -1 : a > b);
    }
    case DT_FLOAT: {
        double a, b;
        return exists && to_float(v, &a) && to_float(&c->v, &b) && op_holds(c->op, cmp3(a, b));
    }
    default: /* bool: = and != only (checked when read) */
        return exists && op_holds(c->op, to_bool(v) != to_bool(&c->v));
    }
}

static int in_list(const cond *c, const sr_val *v)
{
    char tmp[64];
    for (size_t i = 0; i < c->n_list; i++) {
        int64_t a, b;
        double x, y;
        if (c->dt == DT_INT ? to_int(v, &a) && to_int(&c->list[i], &b) && a == b
            : c->dt == DT_FLOAT ? to_float(v, &x) && to_float(&c->list[i], &y) && x == y
                                : strcmp(val_str(v, tmp, sizeof(tmp)), c->list_str[i]) == 0)
            return 1;
    }
    return 0;
}

static int cond_matches(const cond *c, const sr_val *v, int exists)
{
    char tmp[64];
    switch (c->op) {
    case OP_EXISTS: return exists;
    case OP_NOT_EXISTS: return !exists;
    case OP_STARTS: return strncmp(val_str(v, tmp, sizeof(tmp)), c->vstr, strlen(c->vstr)) == 0;
    case OP_CONTAINS: return strstr(val_str(v, tmp, sizeof(tmp)), c->vstr) != NULL;
    case OP_NOT_CONTAINS: return strstr(val_str(v, tmp, sizeof(tmp)), c->vstr) == NULL;
    case OP_MATCHES: {
        const char *s = val_str(v, tmp, sizeof(tmp));
        return regexp_match(c->re, s, strlen(s));
    }
    case OP_IN: return in_list(c, v);
    case OP_NOT_IN: return !in_list(c, v);
    case OP_HAS_ROOT: return 0; /* decided per trace, before spans */
    default:
        if (c->dt != DT_NONE)
            return compare_typed(c, v, exists);
        int r;
        return exists && compare_untyped(v, &c->v, &r) && op_holds(c->op, r);
    }
}

/* The first of the condition's fields that span s (or the root, for
 * "root." fields) has. */
static int cond_value(const cond *c, const sr_trace *t, const sr_span *s, sr_val *v)
{
    if (c->descendants) {
        memset(v, 0, sizeof(*v));
        v->t = V_INT;
        v->i = (int64_t)t->span_count;
        return 1;
    }
    for (size_t i = 0; i < c->n_fields; i++) {
        const char *f = c->fields[i];
        const sr_span *from = s;
        if (strncmp(f, "root.", 5) == 0) {
            if (t->root == NULL)
                continue;
            from = t->root;
            f += 5;
        }
        if (span_field(from, f, v))
            return 1;
    }
    memset(v, 0, sizeof(*v));
    return 0;
}

static int span_meets(const cond *c, const sr_trace *t, const sr_span *s)
{
    sr_val v;
    int exists = cond_value(c, t, s, &v);
    return cond_matches(c, &v, exists);
}

/* Trace scope: every condition met by some span (not necessarily the same).
 * Span scope: one span meets every condition. No conditions: a match. */
static int rule_matches(const rule *r, const sr_trace *t)
{
    for (size_t k = 0; k < r->n_conds; k++)
        if (r->conds[k].op == OP_HAS_ROOT && (t->root != NULL) != r->conds[k].v.b)
            return 0;
    if (r->span_scope) {
        for (size_t s = 0; s < t->n_spans; s++) {
            size_t k = 0;
            while (k < r->n_conds && (r->conds[k].op == OP_HAS_ROOT || span_meets(&r->conds[k], t, &t->spans[s])))
                k++;
            if (k == r->n_conds)
                return 1;
        }
        return r->n_conds == 0;
    }
    for (size_t k = 0; k < r->n_conds; k++) {
        if (r->conds[k].op == OP_HAS_ROOT)
            continue;
        size_t s = 0;
        while (s < t->n_spans && !span_meets(&r->conds[k], t, &t->spans[s]))
            s++;
        if (s == t->n_spans)
            return 0;
    }
    return 1;
}

static int rules_eval(sr_policy *p, const sr_trace *t, uint64_t now_ns, double *rate)
{
    for (size_t i = 0; i < p->n_rules; i++) {
        const rule *r = &p->rules[i];
        if (!rule_matches(r, t))
            continue;
        if (r->sampler != NULL)
            return sr_eval(r->sampler, t, now_ns, rate);
        *rate = r->sample_rate > 0 ? r->sample_rate : 1;
        return !r->drop && r->sample_rate > 0 && chance(p, t, r->sample_rate);
    }
    *rate = 1; /* no rule matched: kept, as Refinery does */
    return 1;
}

int sr_eval(sr_policy *p, const sr_trace *t, uint64_t now_ns, double *rate)
{
    switch (p->kind) {
    case SR_DETERMINISTIC: {
        char id[33];
        size_t n = sr_trace_id_string(t->id, id);
        *rate = p->det_rate;
        return sr_deterministic_keep(id, n, p->det_rate);
    }
    case SR_RULES:
        return rules_eval(p, t, now_ns, rate);
    default: {
        uint32_t r = key_rate(p, sr_trace_key(p, t), t->span_count ? t->span_count : 1, now_ns);
        if (r < 1)
            r = 1;
        *rate = r;
        return chance(p, t, r);
    }
    }
}

int sr_needs_spans(const sr_policy *p) { return p->kind != SR_DETERMINISTIC; }

/* ---- config ---- */

static int read_err(const config_node *n, const char *key, char *err, size_t errlen, const char *msg)
{
    return config_error(n, key, err, errlen, "%s", msg);
}

static int read_fraction(const config_node *n, const char *key, double def, double lo_excl, double hi_excl,
                         double *out, char *err, size_t errlen)
{
    const config_node *v = config_get(n, key);
    *out = def;
    if (v == NULL)
        return 0;
    const char *s = config_scalar(v);
    if (s == NULL || !parse_float(s, out) || !isfinite(*out))
        return read_err(n, key, err, errlen, "expected a number");
    if (*out <= lo_excl || (hi_excl > 0 && *out >= hi_excl))
        return config_error(n, key, err, errlen, "must be more than %g%s", lo_excl,
                            hi_excl > 0 ? " and less than 1" : "");
    return 0;
}

static int read_period(const config_node *n, const char *key, uint64_t def_ms, uint64_t *ns, char *err,
                       size_t errlen)
{
    uint64_t ms;
    if (config_duration_ms(n, key, def_ms, &ms, err, errlen) != 0)
        return -1;
    if (ms == 0 || ms > 24 * 3600 * 1000ull)
        return read_err(n, key, err, errlen, "must be more than 0 and at most 24h");
    *ns = ms * 1000000;
    return 0;
}

static int dup_list(const config_node *seq, char ***out, size_t *n)
{
    *n = config_seq_len(seq);
    if ((*out = calloc(*n ? *n : 1, sizeof(char *))) == NULL)
        return -1;
    for (size_t i = 0; i < *n; i++)
        if (((*out)[i] = strdup(config_scalar(config_seq_at(seq, i)))) == NULL)
            return -1;
    return 0;
}

/* field_list (sorted as Refinery does, root.-prefixed ones apart) and the
 * other key settings shared by the per-key samplers. */
static int read_key(sr_policy *p, const config_node *n, int required, char *err, size_t errlen)
{
    const config_node *seq = config_get(n, "field_list");
    if (seq == NULL && required)
        return read_err(n, "field_list", err, errlen, "required key is missing");
    if (seq != NULL && config_str_list(n, "field_list", &seq, err, errlen) != 0)
        return -1;
    char **all = NULL;
    size_t m = 0;
    if (seq != NULL && dup_list(seq, &all, &m) != 0)
        goto oom;
    qsort(all, m, sizeof(*all), cmp_str);
    p->fields = calloc(m ? m : 1, sizeof(char *));
    p->root_fields = calloc(m ? m : 1, sizeof(char *));
    if (p->fields == NULL || p->root_fields == NULL)
        goto oom;
    for (size_t i = 0; i < m; i++) {
        if (strncmp(all[i], "root.", 5) == 0) {
            memmove(all[i], all[i] + 5, strlen(all[i] + 5) + 1);
            p->root_fields[p->n_root_fields++] = all[i];
        } else {
            p->fields[p->n_fields++] = all[i];
        }
    }
    free(all);
    uint64_t mk;
    if (config_uint(n, "max_keys", DEFAULT_MAX_KEYS, 0, 1000000, &mk, err, errlen) != 0 ||
        config_bool(n, "use_trace_length", 0, &p->use_trace_length, err, errlen) != 0)
        return -1;
    p->max_keys = mk != 0 ? (uint32_t)mk : DEFAULT_MAX_KEYS; /* 0 means the default, as in Refinery */
    return 0;
oom:
    for (size_t i = 0; all != NULL && i < m; i++)
        free(all[i]);
    free(all);
    return read_err(n, NULL, err, errlen, "out of memory");
}

static int read_rate(const config_node *n, const char *key, uint64_t def, uint32_t *out, char *err,
                     size_t errlen)
{
    uint64_t v;
    if (config_uint(n, key, def, 1, UINT32_MAX, &v, err, errlen) != 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int read_ema(sr_policy *p, const config_node *n, char *err, size_t errlen)
{
    uint64_t delay;
    if (read_period(n, "adjustment_interval", 15000, &p->interval_ns, err, errlen) != 0 ||
        read_fraction(n, "weight", 0.5, 0, 1, &p->weight, err, errlen) != 0 ||
        read_fraction(n, "age_out_value", p->weight, 0, 0, &p->age_out, err, errlen) != 0 ||
        config_uint(n, "burst_detection_delay", 3, 0, UINT32_MAX, &delay, err, errlen) != 0)
        return -1;
    const config_node *bm = config_get(n, "burst_multiple");
    p->burst_multiple = 2;
    if (bm != NULL && (config_scalar(bm) == NULL || !parse_float(config_scalar(bm), &p->burst_multiple) ||
                       !isfinite(p->burst_multiple) || p->burst_multiple == 0))
        return read_err(n, "burst_multiple", err, errlen, "expected a non-zero number (negative: no burst detection)");
    p->burst_delay = (uint32_t)delay;
    return 0;
}

static int read_goal_tput(sr_policy *p, const config_node *n, char *err, size_t errlen)
{
    uint64_t g;
    if (config_uint(n, "goal_throughput_per_sec", 100, 1, UINT32_MAX, &g, err, errlen) != 0)
        return -1;
    p->goal_tput = (double)g;
    return 0;
}

static const char *const op_names[] = {"=", "!=", ">", "<", ">=", "<=", "starts-with", "contains",
                                       "does-not-contain", "exists", "not-exists", "matches", "in", "not-in",
                                       "has-root-span", NULL};
static const char *const dt_names[] = {"string", "int", "float", "bool", NULL};

static int read_cond_value(cond *c, const config_node *n, char *err, size_t errlen)
{
    const config_node *v = config_get(n, "value");
    if (c->op == OP_EXISTS || c->op == OP_NOT_EXISTS) {
        c->vstr = strdup("");
        return c->vstr != NULL ? 0 : read_err(n, NULL, err, errlen, "out of memory");
    }
    if (c->op == OP_IN || c->op == OP_NOT_IN) {
        if (v == NULL || (!config_is_seq(v) && config_scalar(v) == NULL))
            return read_err(n, "value", err, errlen, "expected a value or a sequence of values");
        if (c->dt == DT_BOOL)
            return read_err(n, "datatype", err, errlen, "in and not-in do not take bool values");
        size_t m = config_is_seq(v) ? config_seq_len(v) : 1;
        c->list = calloc(m, sizeof(*c->list));
        c->list_str = calloc(m, sizeof(char *));
        if (c->list == NULL || c->list_str == NULL)
            return read_err(n, NULL, err, errlen, "out of memory");
        for (size_t i = 0; i < m; i++) {
            const config_node *e = config_is_seq(v) ? config_seq_at(v, i) : v;
            const char *s = config_scalar(e);
            if (s == NULL)
                return read_err(e, NULL, err, errlen, "expected a scalar");
            if ((c->list_str[i] = strdup(s)) == NULL)
                return read_err(n, NULL, err, errlen, "out of memory");
            c->list[i] = typed_scalar(c->list_str[i]);
            c->n_list = i + 1;
        }
        c->vstr = strdup("");
        return c->vstr != NULL ? 0 : read_err(n, NULL, err, errlen, "out of memory");
    }
    if (v == NULL || config_scalar(v) == NULL)
        return read_err(n, "value", err, errlen, "expected a scalar value");
    if ((c->vstr = strdup(config_scalar(v))) == NULL)
        return read_err(n, NULL, err, errlen, "out of memory");
    c->v = typed_scalar(c->vstr);
    int64_t i;
    double f;
    if ((c->dt == DT_INT && !to_int(&c->v, &i)) || (c->dt == DT_FLOAT && !to_float(&c->v, &f)))
        return read_err(n, "value", err, errlen, "does not convert to the datatype");
    if (c->dt == DT_BOOL && c->op != OP_EQ && c->op != OP_NE)
        return read_err(n, "operator", err, errlen, "a bool datatype takes only = and !=");
    if (c->op == OP_HAS_ROOT) {
        if (c->v.t != V_BOOL)
            return read_err(n, "value", err, errlen, "has-root-span takes true or false");
    }
    char why[200];
    if (c->op == OP_MATCHES && (c->re = regexp_compile(c->vstr, REGEXP_SEARCH, why, sizeof(why))) == NULL)
        return config_error(n, "value", err, errlen, "invalid regular expression: %s", why);
    return 0;
}

static int read_cond(cond *c, const config_node *n, char *err, size_t errlen)
{
    static const char *const keys[] = {"field", "fields", "operator", "value", "datatype", NULL};
    int op, dt;
    if (!config_is_map(n))
        return read_err(n, NULL, err, errlen, "expected a condition {field, operator, value}");
    if (config_check_keys(n, keys, err, errlen) != 0 ||
        config_choice(n, "operator", op_names, -1, &op, err, errlen) != 0 ||
        config_choice(n, "datatype", dt_names, -1, &dt, err, errlen) != 0)
        return -1;
    if (op < 0)
        return read_err(n, "operator", err, errlen, "required key is missing");
    c->op = (op_t)op;
    c->dt = (dtype)(dt + 1); /* -1 (absent): DT_NONE */
    const config_node *f = config_get(n, "field"), *fs = config_get(n, "fields");
    if (f != NULL && fs != NULL)
        return read_err(n, "fields", err, errlen, "give field or fields, not both");
    if (c->op != OP_HAS_ROOT) {
        if (f == NULL && fs == NULL)
            return read_err(n, "field", err, errlen, "required key is missing");
        if (fs != NULL && config_str_list(n, "fields", &fs, err, errlen) != 0)
            return -1;
        if (f != NULL && config_scalar(f) == NULL)
            return read_err(n, "field", err, errlen, "expected a field name");
        if (fs != NULL ? dup_list(fs, &c->fields, &c->n_fields) != 0
                       : (c->fields = calloc(1, sizeof(char *))) == NULL ||
                             (c->fields[c->n_fields++] = strdup(config_scalar(f))) == NULL)
            return read_err(n, NULL, err, errlen, "out of memory");
        c->descendants = c->n_fields == 1 && strcmp(c->fields[0], "?.NUM_DESCENDANTS") == 0;
    }
    return read_cond_value(c, n, err, errlen);
}

/* A rule's downstream `sampler: {type, <its keys>}` (Refinery's
 * RulesBasedDownstreamSampler: any sampler but rules), salted by the
 * policy's and the rule's names. */
static int read_downstream(rule *r, const char *policy, const config_node *n, char *err, size_t errlen)
{
    static const char *const kinds[] = {"deterministic", "dynamic", "ema_dynamic", "ema_throughput",
                                        "windowed_throughput", "total_throughput", NULL};
    static const sr_kind kind_of[] = {SR_DETERMINISTIC, SR_DYNAMIC, SR_EMA_DYNAMIC, SR_EMA_THROUGHPUT,
                                      SR_WINDOWED_THROUGHPUT, SR_TOTAL_THROUGHPUT};
    static const char *const *const keys_of[] = {sr_keys_deterministic, sr_keys_dynamic, sr_keys_ema_dynamic,
                                                 sr_keys_ema_throughput, sr_keys_windowed, sr_keys_total};
    const config_node *d = config_get(n, "sampler");
    int k;
    if (!config_is_map(d))
        return read_err(n, "sampler", err, errlen, "expected a sampler mapping {type, ...}");
    if (config_choice(d, "type", kinds, -1, &k, err, errlen) != 0)
        return -1;
    if (k < 0)
        return read_err(d, "type", err, errlen, "required key is missing");
    const char *allowed[16] = {"type"};
    size_t m = 1;
    for (size_t i = 0; keys_of[k][i] != NULL && m < 15; i++)
        allowed[m++] = keys_of[k][i];
    if (config_check_keys(d, allowed, err, errlen) != 0)
        return -1;
    char salt[256];
    snprintf(salt, sizeof(salt), "%s/%s", policy, r->name);
    r->sampler = sr_read(kind_of[k], salt, d, err, errlen);
    return r->sampler != NULL ? 0 : -1;
}

static int read_rule(rule *r, const char *policy, const config_node *n, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", "sample_rate", "drop", "scope", "conditions", "sampler", NULL};
    static const char *const scopes[] = {"trace", "span", NULL};
    const char *name;
    uint64_t rate;
    const config_node *conds = NULL;
    if (!config_is_map(n))
        return read_err(n, NULL, err, errlen, "expected a rule {name, sample_rate, conditions, ...}");
    if (config_check_keys(n, keys, err, errlen) != 0 || config_str(n, "name", "", &name, err, errlen) != 0 ||
        config_uint(n, "sample_rate", 1, 0, UINT32_MAX, &rate, err, errlen) != 0 ||
        config_bool(n, "drop", 0, &r->drop, err, errlen) != 0 ||
        config_choice(n, "scope", scopes, 0, &r->span_scope, err, errlen) != 0 ||
        config_seq(n, "conditions", 0, &conds, err, errlen) != 0)
        return -1;
    if ((r->name = strdup(name)) == NULL)
        return read_err(n, NULL, err, errlen, "out of memory");
    r->sample_rate = (uint32_t)rate;
    size_t m = config_seq_len(conds);
    if ((r->conds = calloc(m ? m : 1, sizeof(*r->conds))) == NULL)
        return read_err(n, NULL, err, errlen, "out of memory");
    for (size_t i = 0; i < m; i++) {
        r->n_conds = i + 1; /* freed by sr_free even if half read */
        if (read_cond(&r->conds[i], config_seq_at(conds, i), err, errlen) != 0)
            return -1;
    }
    return config_get(n, "sampler") != NULL ? read_downstream(r, policy, n, err, errlen) : 0;
}

static int read_rules(sr_policy *p, const config_node *n, char *err, size_t errlen)
{
    const config_node *seq;
    if (config_seq(n, "rules", 1, &seq, err, errlen) != 0)
        return -1;
    if (config_seq_len(seq) == 0)
        return read_err(n, "rules", err, errlen, "must not be empty");
    if ((p->rules = calloc(config_seq_len(seq), sizeof(*p->rules))) == NULL)
        return read_err(n, NULL, err, errlen, "out of memory");
    for (size_t i = 0; i < config_seq_len(seq); i++) {
        p->n_rules = i + 1;
        if (read_rule(&p->rules[i], p->name, config_seq_at(seq, i), err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int read_kind(sr_policy *p, const config_node *n, char *err, size_t errlen)
{
    uint64_t ms;
    switch (p->kind) {
    case SR_DETERMINISTIC:
        return read_rate(n, "sample_rate", 1, &p->det_rate, err, errlen);
    case SR_RULES:
        return read_rules(p, n, err, errlen);
    case SR_DYNAMIC:
        if (config_get(n, "sample_rate") == NULL)
            return read_err(n, "sample_rate", err, errlen, "required key is missing");
        return read_rate(n, "sample_rate", 1, &p->goal_rate, err, errlen) != 0 ||
                       read_period(n, "clear_frequency", 30000, &p->interval_ns, err, errlen) != 0
                   ? -1
                   : read_key(p, n, 1, err, errlen);
    case SR_EMA_DYNAMIC:
        return read_rate(n, "goal_sample_rate", 10, &p->goal_rate, err, errlen) != 0 || read_ema(p, n, err, errlen) != 0
                   ? -1
                   : read_key(p, n, 1, err, errlen);
    case SR_EMA_THROUGHPUT:
        return read_goal_tput(p, n, err, errlen) != 0 ||
                       read_rate(n, "initial_sample_rate", 10, &p->initial_rate, err, errlen) != 0 ||
                       read_ema(p, n, err, errlen) != 0
                   ? -1
                   : read_key(p, n, 0, err, errlen);
    case SR_TOTAL_THROUGHPUT:
        return read_goal_tput(p, n, err, errlen) != 0 ||
                       read_period(n, "clear_frequency", 30000, &p->interval_ns, err, errlen) != 0
                   ? -1
                   : read_key(p, n, 1, err, errlen);
    case SR_WINDOWED_THROUGHPUT: {
        uint64_t look = 0; /* read_period sets it; gcc -O3 cannot tell */
        if (read_goal_tput(p, n, err, errlen) != 0 ||
            read_period(n, "update_frequency", 1000, &p->interval_ns, err, errlen) != 0)
            return -1;
        ms = p->interval_ns / 1000000;
        if (read_period(n, "lookback_frequency", 30 * ms, &look, err, errlen) != 0)
            return -1;
        if (look < p->interval_ns)
            return read_err(n, "lookback_frequency", err, errlen, "must be at least update_frequency");
        if (look / p->interval_ns > 100000)
            return read_err(n, "lookback_frequency", err, errlen, "at most 100000 update intervals");
        p->lookback = (uint32_t)(look / p->interval_ns); /* a whole number of updates, as dynsampler */
        /* one slot more than the window: the interval being counted */
        if ((p->ring_idx = malloc((p->lookback + 1) * sizeof(int64_t))) == NULL)
            return read_err(n, NULL, err, errlen, "out of memory");
        for (uint32_t i = 0; i <= p->lookback; i++)
            p->ring_idx[i] = -1;
        return read_key(p, n, 0, err, errlen);
    }
    }
    return 0;
}

sr_policy *sr_read(sr_kind kind, const char *name, const config_node *n, char *err, size_t errlen)
{
    sr_policy *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        read_err(n, NULL, err, errlen, "out of memory");
        return NULL;
    }
    p->kind = kind;
    p->salt = hash_mix64(hash_fnv1a(name, strlen(name), HASH_FNV1A_INIT));
    if ((p->name = strdup(name)) == NULL) {
        sr_free(p);
        read_err(n, NULL, err, errlen, "out of memory");
        return NULL;
    }
    if (read_kind(p, n, err, errlen) != 0) {
        sr_free(p);
        return NULL;
    }
    return p;
}

static void cond_free(cond *c)
{
    for (size_t i = 0; i < c->n_fields; i++)
        free(c->fields[i]);
    free(c->fields);
    for (size_t i = 0; i < c->n_list; i++)
        free(c->list_str[i]);
    free(c->list_str);
    free(c->list);
    free(c->vstr);
    regexp_free(c->re);
}

void sr_free(sr_policy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_fields; i++)
        free(p->fields[i]);
    for (size_t i = 0; i < p->n_root_fields; i++)
        free(p->root_fields[i]);
    free(p->fields);
    free(p->root_fields);
    free(p->keybuf);
    map_clear(&p->counts);
    map_clear(&p->rates);
    map_clear(&p->avg);
    free(p->ring_idx);
    for (size_t i = 0; i < p->n_rules; i++) {
        for (size_t k = 0; k < p->rules[i].n_conds; k++)
            cond_free(&p->rules[i].conds[k]);
        free(p->rules[i].conds);
        free(p->rules[i].name);
        sr_free(p->rules[i].sampler);
    }
    free(p->rules);
    free(p->name);
    free(p);
}
