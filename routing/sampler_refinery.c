/* sampler_refinery: Refinery-class samplers (see sampler_refinery.h). */
#include "sampler_refinery.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "sampler_refinery_internal.h"
#include "sampler_rules.h"

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

/* ---- values ---- */

int sr_parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0)
        return 0;
    *out = v;
    return 1;
}

int sr_parse_float(const char *s, double *out)
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
sr_val sr_typed_scalar(const char *s)
{
    sr_val v = {.t = V_STR, .s = s};
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        v.t = V_BOOL;
        v.b = s[0] == 't';
    } else if (sr_parse_int(s, &v.i)) {
        v.t = V_INT;
    } else if (sr_parse_float(s, &v.f)) {
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
const char *sr_val_str(const sr_val *v, char *tmp, size_t cap)
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
int sr_span_field(const sr_span *s, const char *f, sr_val *v)
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
        if (!sr_span_field(&t->spans[s], f, &v))
            continue;
        const char *txt = sr_val_str(&v, tmp, sizeof(tmp));
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
        if (sr_span_field(t->root, p->root_fields[i], &v)) {
            keybuf_add(p, &len, sr_val_str(&v, tmp, sizeof(tmp)));
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
int sr_chance(const sr_policy *p, const sr_trace *t, uint32_t rate)
{
    if (rate <= 1)
        return 1;
    uint64_t h = hash_mix64(hash_fnv1a(t->id, 16, HASH_FNV1A_INIT) ^ p->salt);
    return (double)(h >> 11) * 0x1p-53 * (double)rate < 1.0;
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
        return sr_rules_eval(p, t, now_ns, rate);
    default: {
        uint32_t r = key_rate(p, sr_trace_key(p, t), t->span_count ? t->span_count : 1, now_ns);
        if (r < 1)
            r = 1;
        *rate = r;
        return sr_chance(p, t, r);
    }
    }
}

int sr_needs_spans(const sr_policy *p) { return p->kind != SR_DETERMINISTIC; }

/* ---- config ---- */

int sr_read_err(const config_node *n, const char *key, char *err, size_t errlen, const char *msg)
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
    if (s == NULL || !sr_parse_float(s, out) || !isfinite(*out))
        return sr_read_err(n, key, err, errlen, "expected a number");
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
        return sr_read_err(n, key, err, errlen, "must be more than 0 and at most 24h");
    *ns = ms * 1000000;
    return 0;
}

int sr_dup_list(const config_node *seq, char ***out, size_t *n)
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
        return sr_read_err(n, "field_list", err, errlen, "required key is missing");
    if (seq != NULL && config_str_list(n, "field_list", &seq, err, errlen) != 0)
        return -1;
    char **all = NULL;
    size_t m = 0;
    if (seq != NULL && sr_dup_list(seq, &all, &m) != 0)
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
    return sr_read_err(n, NULL, err, errlen, "out of memory");
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
    if (bm != NULL && (config_scalar(bm) == NULL || !sr_parse_float(config_scalar(bm), &p->burst_multiple) ||
                       !isfinite(p->burst_multiple) || p->burst_multiple == 0))
        return sr_read_err(n, "burst_multiple", err, errlen, "expected a non-zero number (negative: no burst detection)");
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

static int read_kind(sr_policy *p, const config_node *n, char *err, size_t errlen)
{
    uint64_t ms;
    switch (p->kind) {
    case SR_DETERMINISTIC:
        return read_rate(n, "sample_rate", 1, &p->det_rate, err, errlen);
    case SR_RULES:
        return sr_read_rules(p, n, err, errlen);
    case SR_DYNAMIC:
        if (config_get(n, "sample_rate") == NULL)
            return sr_read_err(n, "sample_rate", err, errlen, "required key is missing");
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
            return sr_read_err(n, "lookback_frequency", err, errlen, "must be at least update_frequency");
        if (look / p->interval_ns > 100000)
            return sr_read_err(n, "lookback_frequency", err, errlen, "at most 100000 update intervals");
        p->lookback = (uint32_t)(look / p->interval_ns); /* a whole number of updates, as dynsampler */
        /* one slot more than the window: the interval being counted */
        if ((p->ring_idx = malloc((p->lookback + 1) * sizeof(int64_t))) == NULL)
            return sr_read_err(n, NULL, err, errlen, "out of memory");
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
        sr_read_err(n, NULL, err, errlen, "out of memory");
        return NULL;
    }
    p->kind = kind;
    p->salt = hash_mix64(hash_fnv1a(name, strlen(name), HASH_FNV1A_INIT));
    if ((p->name = strdup(name)) == NULL) {
        sr_free(p);
        sr_read_err(n, NULL, err, errlen, "out of memory");
        return NULL;
    }
    if (read_kind(p, n, err, errlen) != 0) {
        sr_free(p);
        return NULL;
    }
    return p;
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
            sr_cond_free(&p->rules[i].conds[k]);
        free(p->rules[i].conds);
        free(p->rules[i].name);
        sr_free(p->rules[i].sampler);
    }
    free(p->rules);
    free(p->name);
    free(p);
}
