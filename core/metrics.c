#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct metric_series {
    metric_series *next;
    char *labels;
    _Atomic int64_t value; /* counter (as unsigned) or gauge */
    /* histogram: counts per bucket (non-cumulative), then +Inf; sum as double bits */
    _Atomic uint64_t *buckets;
    _Atomic uint64_t sum_bits;
    _Atomic uint64_t count;
    const double *bounds; /* the family's, for bucket lookup without the family */
    size_t n_bounds;
};

struct metric_family {
    metric_family *next;
    char *name;
    char *help;
    metric_type type;
    double *bounds;
    size_t n_bounds;
    metric_series *_Atomic series;
};

typedef struct collector {
    struct collector *next;
    metrics_collect_fn fn;
    void *data;
} collector;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static metric_family *families; /* registration order, for stable output */
static metric_family **families_tail = &families;
static collector *collectors;

static metric_family *family_find(const char *name)
{
    for (metric_family *f = families; f != NULL; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static metric_family *family_register(const char *name, metric_type type, const char *help, const double *bounds,
                                      size_t n)
{
    pthread_mutex_lock(&registry_lock);
    metric_family *f = family_find(name);
    if (f == NULL && (f = calloc(1, sizeof(*f))) != NULL) {
        f->name = strdup(name);
        f->help = strdup(help);
        f->type = type;
        if (n > 0 && (f->bounds = malloc(n * sizeof(double))) != NULL) {
            memcpy(f->bounds, bounds, n * sizeof(double));
            f->n_bounds = n;
        }
        *families_tail = f;
        families_tail = &f->next;
    }
    pthread_mutex_unlock(&registry_lock);
    return f;
}

metric_family *metrics_family(const char *name, metric_type type, const char *help)
{
    return family_register(name, type, help, NULL, 0);
}

metric_family *metrics_histogram_family(const char *name, const char *help, const double *bounds, size_t n)
{
    return family_register(name, METRIC_HISTOGRAM, help, bounds, n);
}

metric_series *metrics_series(metric_family *f, const char *labels)
{
    if (f == NULL)
        return NULL;
    pthread_mutex_lock(&registry_lock);
    metric_series *s;
    for (s = atomic_load(&f->series); s != NULL; s = s->next)
        if (strcmp(s->labels, labels) == 0)
            break;
    if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL) {
        s->labels = strdup(labels);
        if (f->type == METRIC_HISTOGRAM) {
            s->buckets = calloc(f->n_bounds + 1, sizeof(*s->buckets));
            s->bounds = f->bounds;
            s->n_bounds = f->n_bounds;
        }
        if (s->labels == NULL || (f->type == METRIC_HISTOGRAM && s->buckets == NULL)) {
            free(s->labels);
            free(s);
            s = NULL;
        } else {
            /* Publish fully initialised; render walks the list without the lock
             * held for the values, only for the structure. */
            s->next = atomic_load(&f->series);
            atomic_store(&f->series, s);
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return s;
}

void metrics_add(metric_series *s, uint64_t n)
{
    if (s != NULL)
        atomic_fetch_add_explicit(&s->value, (int64_t)n, memory_order_relaxed);
}

void metrics_set(metric_series *s, int64_t v)
{
    if (s != NULL)
        atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

void metrics_gauge_add(metric_series *s, int64_t d)
{
    if (s != NULL)
        atomic_fetch_add_explicit(&s->value, d, memory_order_relaxed);
}

uint64_t metrics_value(const metric_series *s)
{
    return s == NULL ? 0 : (uint64_t)atomic_load_explicit(&s->value, memory_order_relaxed);
}

void metrics_observe(metric_series *s, double v)
{
    if (s == NULL || s->buckets == NULL)
        return;
    size_t i = 0;
    while (i < s->n_bounds && v > s->bounds[i])
        i++;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&s->sum_bits, memory_order_relaxed), new_bits;
    do {
        double sum;
        memcpy(&sum, &old, sizeof(sum));
        sum += v;
        memcpy(&new_bits, &sum, sizeof(sum));
    } while (!atomic_compare_exchange_weak_explicit(&s->sum_bits, &old, new_bits, memory_order_relaxed,
                                                    memory_order_relaxed));
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

void metrics_register_collector(metrics_collect_fn fn, void *data)
{
    collector *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->fn = fn;
    c->data = data;
    pthread_mutex_lock(&registry_lock);
    c->next = collectors;
    collectors = c;
    pthread_mutex_unlock(&registry_lock);
}

static void render_number(buf *out, double v)
{
    if (isinf(v))
        buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else
        buf_printf(out, "%.17g", v);
}

/* name{labels[,extra]} — braces omitted when there are no labels at all. */
static void render_name(buf *out, const char *name, const char *suffix, const char *labels, const char *extra)
{
    buf_puts(out, name);
    buf_puts(out, suffix);
    int has = labels[0] != '\0', has_extra = extra != NULL && extra[0] != '\0';
    if (!has && !has_extra)
        return;
    buf_putc(out, '{');
    buf_puts(out, labels);
    if (has && has_extra)
        buf_putc(out, ',');
    if (has_extra)
        buf_puts(out, extra);
    buf_putc(out, '}');
}

static void render_histogram(buf *out, const metric_family *f, const metric_series *s)
{
    uint64_t cumulative = 0;
    char le[64];
    for (size_t i = 0; i <= f->n_bounds; i++) {
        cumulative += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        if (i < f->n_bounds)
            snprintf(le, sizeof(le), "le=\"%g\"", f->bounds[i]);
        else
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        render_name(out, f->name, "_bucket", s->labels, le);
        buf_printf(out, " %llu\n", (unsigned long long)cumulative);
    }
    uint64_t bits = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
    double sum;
    memcpy(&sum, &bits, sizeof(sum));
    render_name(out, f->name, "_sum", s->labels, NULL);
    buf_putc(out, ' ');
    render_number(out, sum);
    buf_putc(out, '\n');
    render_name(out, f->name, "_count", s->labels, NULL);
    /* Count is read after the buckets, so it is never below their total. */
    uint64_t count = atomic_load_explicit(&s->count, memory_order_relaxed);
    buf_printf(out, " %llu\n", (unsigned long long)(count > cumulative ? count : cumulative));
}

int metrics_render(buf *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&registry_lock);
    for (const metric_family *f = families; f != NULL; f = f->next) {
        const metric_series *first = atomic_load(&f->series);
        if (first == NULL)
            continue;
        buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, type_names[f->type]);
        for (const metric_series *s = first; s != NULL; s = s->next) {
            if (f->type == METRIC_HISTOGRAM) {
                render_histogram(out, f, s);
                continue;
            }
            render_name(out, f->name, "", s->labels, NULL);
            int64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
            if (f->type == METRIC_COUNTER)
                buf_printf(out, " %llu\n", (unsigned long long)v);
            else
                buf_printf(out, " %lld\n", (long long)v);
        }
    }
    collector *head = collectors;
    pthread_mutex_unlock(&registry_lock);
    /* Collectors run unlocked so they may look series up; the list only grows
     * at its head, so the snapshot stays valid. */
    for (collector *c = head; c != NULL; c = c->next)
        c->fn(out, c->data);
    /* Appends above ignore errors individually; check once for OOM. */
    return buf_reserve(out, 1);
}

void metrics_reset_for_tests(void)
{
    pthread_mutex_lock(&registry_lock);
    while (families != NULL) {
        metric_family *f = families;
        families = f->next;
        metric_series *s = atomic_load(&f->series);
        while (s != NULL) {
            metric_series *n = s->next;
            free(s->labels);
            free((void *)s->buckets);
            free(s);
            s = n;
        }
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
    }
    families_tail = &families;
    while (collectors != NULL) {
        collector *c = collectors;
        collectors = c->next;
        free(c);
    }
    pthread_mutex_unlock(&registry_lock);
}
