/* sampler: reading a pipeline's sampling config, and the sampler's
 * lifecycle (policies in sampler_policy.c; spans in, sampler_add.c;
 * decisions and output, sampler_decide.c; data structures,
 * sampler_store.c). */
#include "sampler.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampler_internal.h"

/* A policy set's settings, read from either shape, then checked together. */
typedef struct set_cfg {
    const config_node *map;      /* where decision_wait and policies are (errors name it) */
    const char *quiet_key;       /* quiet_after or decision_wait_after_root_received, NULL: none */
    uint64_t wait_ms, quiet_ms, max_traces, sc, nsc, rate_hint, max_trace_spans;
    size_t max_bytes, max_trace_bytes;
    int record_policy, first_match, block, oversize_drop, upstream;
    sw_opts weight;
} set_cfg;

/* The early-decision timer: quiet_after (ours) or
 * decision_wait_after_root_received (the Collector's; 0s: off), not both. */
static int read_quiet(set_cfg *c, const config_node *quiet_map, const config_node *root_map, char *err,
                      size_t errlen)
{
    uint64_t q = 0, r = 0;
    if (config_duration_ms(quiet_map, "quiet_after", 0, &q, err, errlen) != 0 ||
        (root_map != NULL &&
         config_duration_ms(root_map, "decision_wait_after_root_received", 0, &r, err, errlen) != 0))
        return -1;
    int has_q = config_scalar(config_get(quiet_map, "quiet_after")) != NULL, has_r = r != 0;
    if (has_q && has_r)
        return config_error(root_map, "decision_wait_after_root_received", err, errlen,
                            "give quiet_after or decision_wait_after_root_received, not both");
    c->quiet_key = has_q ? "quiet_after" : has_r ? "decision_wait_after_root_received" : NULL;
    c->quiet_ms = has_q ? q : r;
    return 0;
}

/* Keys both shapes share, under the same names. */
static int read_common(set_cfg *c, const config_node *n, char *err, size_t errlen)
{
    return config_size(n, "max_bytes", (size_t)256 << 20, &c->max_bytes, err, errlen) != 0 ||
                   config_bool(n, "record_policy", 0, &c->record_policy, err, errlen) != 0 ||
                   config_bool(n, "sample_rate_attribute", 0, &c->weight.sample_rate, err, errlen) != 0 ||
                   config_bool(n, "trace_state_threshold", 0, &c->weight.threshold, err, errlen) != 0 ||
                   config_uint(n, "max_trace_spans", 0, 0, UINT32_MAX, &c->max_trace_spans, err, errlen) != 0
               ? -1
               : 0;
}

/* Ours: everything in one flat mapping. */
static int read_flat(set_cfg *c, const config_node *n, char *err, size_t errlen)
{
    static const char *const keys[] = {"decision_wait", "quiet_after", "decision_wait_after_root_received",
                                       "max_bytes", "max_traces", "sampled_cache", "not_sampled_cache",
                                       "record_policy", "sample_on_first_match", "block_on_overflow",
                                       "max_trace_spans", "max_trace_bytes", "expected_new_traces_per_sec",
                                       "policies", "sample_rate_attribute", "trace_state_threshold", NULL};
    c->map = n;
    return config_check_keys(n, keys, err, errlen) != 0 || read_common(c, n, err, errlen) != 0 ||
                   read_quiet(c, n, n, err, errlen) != 0 ||
                   config_duration_ms(n, "decision_wait", 30000, &c->wait_ms, err, errlen) != 0 ||
                   config_uint(n, "max_traces", 200000, 1, UINT32_MAX, &c->max_traces, err, errlen) != 0 ||
                   config_uint(n, "sampled_cache", 100000, 0, UINT32_MAX, &c->sc, err, errlen) != 0 ||
                   config_uint(n, "not_sampled_cache", 100000, 0, UINT32_MAX, &c->nsc, err, errlen) != 0 ||
                   config_bool(n, "sample_on_first_match", 0, &c->first_match, err, errlen) != 0 ||
                   config_bool(n, "block_on_overflow", 0, &c->block, err, errlen) != 0 ||
                   config_size(n, "max_trace_bytes", 0, &c->max_trace_bytes, err, errlen) != 0 ||
                   config_uint(n, "expected_new_traces_per_sec", 0, 0, UINT32_MAX, &c->rate_hint, err, errlen) != 0
               ? -1
               : 0;
}

/* Keys of the Collector's tail_sampling block that have no meaning here:
 * refused, saying why, rather than silently ignored. */
static int refuse_upstream_keys(const config_node *ts, char *err, size_t errlen)
{
    static const char *const refused[][2] = {
        {"num_shards", "the gateway keeps one sampler shard per worker thread (set `workers:`)"},
        {"tail_storage", "spans are held in memory only, within max_bytes"},
        {"drop_pending_traces_on_shutdown", "a graceful stop decides every buffered trace and forwards the "
                                            "sampled ones"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (config_get(ts, refused[i][0]) != NULL)
            return config_error(ts, refused[i][0], err, errlen, "not supported: %s", refused[i][1]);
    static const char *const strategies[] = {"trace-complete", NULL};
    int strategy;
    return config_choice(ts, "sampling_strategy", strategies, 0, &strategy, err, errlen);
}

/* The decision_cache block; absent sizes keep ours (100000 each: late spans
 * follow their trace's decision), where the Collector's default is none. */
static int read_decision_cache(set_cfg *c, const config_node *ts, char *err, size_t errlen)
{
    static const char *const keys[] = {"sampled_cache_size", "non_sampled_cache_size", NULL};
    const config_node *dc;
    c->sc = c->nsc = 100000;
    if (config_section(ts, "decision_cache", keys, &dc, err, errlen) != 0)
        return -1;
    if (dc == NULL)
        return 0;
    return config_uint(dc, "sampled_cache_size", 100000, 0, UINT32_MAX, &c->sc, err, errlen) != 0 ||
                   config_uint(dc, "non_sampled_cache_size", 100000, 0, UINT32_MAX, &c->nsc, err, errlen) != 0
               ? -1
               : 0;
}

/* The Collector's shape: its processor block under `tail_sampling:`, with
 * our own settings beside it. maximum_trace_size_bytes drops a trace over
 * it, as there. */
static int read_upstream(set_cfg *c, const config_node *n, char *err, size_t errlen)
{
    static const char *const outer[] = {"tail_sampling", "max_bytes", "record_policy", "max_trace_spans",
                                        "quiet_after", "sample_rate_attribute", "trace_state_threshold", NULL};
    static const char *const keys[] = {"decision_wait", "num_traces", "expected_new_traces_per_sec", "policies",
                                       "decision_cache", "sample_on_first_match",
                                       "decision_wait_after_root_received", "block_on_overflow",
                                       "maximum_trace_size_bytes", "sampling_strategy", NULL};
    const config_node *ts = config_get(n, "tail_sampling");
    if (config_check_keys(n, outer, err, errlen) != 0 || read_common(c, n, err, errlen) != 0)
        return -1;
    if (!config_is_map(ts))
        return config_error(n, "tail_sampling", err, errlen,
                            "expected the Collector's tail_sampling mapping {decision_wait, policies, ...}");
    c->map = ts;
    c->upstream = 1;
    if (refuse_upstream_keys(ts, err, errlen) != 0 || config_check_keys(ts, keys, err, errlen) != 0 ||
        read_quiet(c, n, ts, err, errlen) != 0 || read_decision_cache(c, ts, err, errlen) != 0 ||
        config_duration_ms(ts, "decision_wait", 30000, &c->wait_ms, err, errlen) != 0 ||
        config_uint(ts, "num_traces", 50000, 1, UINT32_MAX, &c->max_traces, err, errlen) != 0 ||
        config_uint(ts, "expected_new_traces_per_sec", 0, 0, UINT32_MAX, &c->rate_hint, err, errlen) != 0 ||
        config_bool(ts, "sample_on_first_match", 0, &c->first_match, err, errlen) != 0 ||
        config_bool(ts, "block_on_overflow", 0, &c->block, err, errlen) != 0 ||
        config_size(ts, "maximum_trace_size_bytes", 0, &c->max_trace_bytes, err, errlen) != 0)
        return -1;
    c->oversize_drop = c->max_trace_bytes != 0;
    return 0;
}

static int read_config(sampler *s, const config_node *n, size_t n_shards, set_cfg *c, char *err, size_t errlen)
{
    if (!config_is_map(n))
        return config_error(n, NULL, err, errlen, "expected a sampling mapping {decision_wait, policies, ...}");
    if ((config_get(n, "tail_sampling") != NULL ? read_upstream(c, n, err, errlen) : read_flat(c, n, err, errlen)) != 0)
        return -1;
    if (c->wait_ms == 0 || c->wait_ms > 3600 * 1000)
        return config_error(c->map, "decision_wait", err, errlen, "must be more than 0 and at most 1h");
    if (c->quiet_key != NULL && c->quiet_ms >= c->wait_ms)
        return config_error(c->quiet_key[0] == 'q' ? n : c->map, c->quiet_key, err, errlen,
                            "must be less than decision_wait");
    if (c->max_bytes < ((size_t)1 << 20))
        return config_error(n, "max_bytes", err, errlen, "must be at least 1MiB");
    if (config_get(c->map, "policies") == NULL)
        return config_error(c->map, "policies", err, errlen, "required key is missing");
    s->wait_ns = c->wait_ms * 1000000;
    s->quiet_ns = c->quiet_key != NULL ? c->quiet_ms * 1000000 : NO_QUIET;
    s->quiet_root = c->quiet_key != NULL && c->quiet_key[0] == 'd';
    s->record_policy = c->record_policy;
    s->weight = c->weight;
    s->block = c->block;
    s->max_trace_spans = c->max_trace_spans;
    s->max_trace_bytes = c->max_trace_bytes;
    s->oversize_drop = c->oversize_drop;
    s->max_bytes = c->max_bytes / n_shards;
    s->max_traces = (size_t)(c->max_traces + n_shards - 1) / n_shards;
    c->sc = (c->sc + n_shards - 1) / n_shards;
    c->nsc = (c->nsc + n_shards - 1) / n_shards;
    /* expected_new_traces_per_sec presizes each shard's trace table for a
     * decision_wait's worth of new traces (at most max_traces). */
    uint64_t hint = c->rate_hint * (c->wait_ms / 1000 ? c->wait_ms / 1000 : 1) / n_shards;
    c->rate_hint = hint < s->max_traces ? hint : s->max_traces;
    if (sp_set_read(&s->pol, config_get(c->map, "policies"), c->upstream, err, errlen) != 0)
        return -1;
    s->pol.first_match = c->first_match;
    return 0;
}

/* The Collector's tailsampling.policy KeyValue per top-level policy, and
 * tailsampling.cached_decision: true, framed as InstrumentationScope field 3. */
static int build_policy_attrs(sampler *s)
{
    s->attr_enc = calloc(s->pol.n_top, sizeof(*s->attr_enc));
    s->attr_len = calloc(s->pol.n_top, sizeof(*s->attr_len));
    size_t cl = sw_kv_bool(3, CACHED_ATTR_KEY, 1, NULL);
    s->cached_kv = malloc(cl);
    if (s->attr_enc == NULL || s->attr_len == NULL || s->cached_kv == NULL)
        return -1;
    s->cached_len = sw_kv_bool(3, CACHED_ATTR_KEY, 1, s->cached_kv);
    for (size_t i = 0; i < s->pol.n_top; i++) {
        size_t n = sw_kv_str(3, POLICY_ATTR_KEY, s->pol.top[i].name, NULL);
        if ((s->attr_enc[i] = malloc(n)) == NULL)
            return -1;
        s->attr_len[i] = sw_kv_str(3, POLICY_ATTR_KEY, s->pol.top[i].name, s->attr_enc[i]);
    }
    return 0;
}

sampler *sampler_new(const config_node *n, size_t n_shards, char *err, size_t errlen)
{
    if (n_shards == 0)
        n_shards = 1;
    sampler *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "sampling: out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->pol_lock, NULL);
    s->dest_mask = 1;
    set_cfg c = {0};
    if (read_config(s, n, n_shards, &c, err, errlen) != 0) {
        sampler_free(s);
        return NULL;
    }
    s->shards = calloc(n_shards, sizeof(*s->shards));
    if (s->shards == NULL || build_policy_attrs(s) != 0)
        goto oom;
    s->n_shards = n_shards;
    for (size_t i = 0; i < n_shards; i++) {
        shard *sh = &s->shards[i];
        pthread_mutex_init(&sh->lock, NULL);
        slab_init(&sh->mem);
        sh->fifo.next = sh->fifo.prev = &sh->fifo;
        sh->quiet.qnext = sh->quiet.qprev = &sh->quiet;
        if (sm_dcache_init(&sh->sampled, c.sc, s->weight.sample_rate || s->weight.threshold) != 0 ||
            sm_dcache_init(&sh->not_sampled, c.nsc, 0) != 0 ||
            sm_tab_grow(sh) != 0 || sm_btab_grow(sh) != 0)
            goto oom;
        while (sh->tab_size < c.rate_hint)
            if (sm_tab_grow(sh) != 0)
                goto oom;
    }
    return s;
oom:
    snprintf(err, errlen, "sampling: out of memory");
    sampler_free(s);
    return NULL;
}

void sampler_free(sampler *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_shards; i++) {
        shard *sh = &s->shards[i];
        while (sh->fifo.next != &sh->fifo) {
            trace *t = sh->fifo.next;
            sm_list_unlink(t);
            sm_trace_free(sh, t);
        }
        while (sh->ready != NULL) {
            trace *t = sh->ready;
            sh->ready = t->next;
            sm_trace_free(sh, t);
        }
        sh->n_traces = sh->n_ready = 0; /* the lists went whole, without their counts */
        sm_shard_publish(s, sh);        /* the gauges give back what was held */
        for (tenant_name *t = sh->tenants, *nx; t != NULL; t = nx) {
            nx = t->next;
            free(t);
        }
        sm_dcache_free(&sh->sampled);
        sm_dcache_free(&sh->not_sampled);
        free(sh->tab);
        free(sh->btab);
        free(sh->span_trace);
        free(sh->span_size);
        free(sh->span_late);
        free(sh->span_rate);
        free(sh->span_key);
        free(sh->span_in);
        free(sh->over);
        free(sh->pack);
        free(sh->groups);
        free(sh->group_len);
        buf_free(&sh->out);
        buf_free(&sh->late_rs);
        buf_free(&sh->late_ss);
        buf_free(&sh->wire_res);
        buf_free(&sh->wire_scope);
        buf_free(&sh->kv);
        slab_destroy(&sh->mem);
        pthread_mutex_destroy(&sh->lock);
    }
    free(s->shards);
    for (size_t i = 0; s->attr_enc != NULL && i < s->pol.n_top; i++)
        free(s->attr_enc[i]);
    free(s->attr_enc);
    free(s->attr_len);
    free(s->cached_kv);
    sp_set_free(&s->pol);
    pthread_mutex_destroy(&s->pol_lock);
    free(s);
}

size_t sampler_shard_of(const sampler *s, const uint8_t trace_id[16])
{
    return s->n_shards <= 1 ? 0 : sm_shard_of_hash(s, sp_trace_hash(trace_id));
}

void sampler_set_destinations(sampler *s, unsigned n)
{
    s->dest_mask = n >= 64 ? UINT64_MAX : n == 0 ? 1 : (1ull << n) - 1;
}
