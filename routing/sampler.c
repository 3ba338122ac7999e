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

static int read_config(sampler *s, const config_node *n, size_t n_shards, size_t *sampled_cache,
                       size_t *not_sampled_cache, char *err, size_t errlen)
{
    static const char *const keys[] = {"decision_wait", "quiet_after",       "max_bytes",     "max_traces",
                                       "sampled_cache", "not_sampled_cache", "record_policy", "policies",
                                       "sample_rate_attribute", "trace_state_threshold", NULL};
    uint64_t wait, quiet, max_traces, sc, nsc;
    size_t max_bytes;
    if (!config_is_map(n))
        return config_error(n, NULL, err, errlen, "expected a sampling mapping {decision_wait, policies, ...}");
    if (config_check_keys(n, keys, err, errlen) != 0 ||
        config_duration_ms(n, "decision_wait", 10000, &wait, err, errlen) != 0 ||
        config_duration_ms(n, "quiet_after", 0, &quiet, err, errlen) != 0 ||
        config_size(n, "max_bytes", (size_t)256 << 20, &max_bytes, err, errlen) != 0 ||
        config_uint(n, "max_traces", 200000, 1, UINT32_MAX, &max_traces, err, errlen) != 0 ||
        config_uint(n, "sampled_cache", 100000, 0, UINT32_MAX, &sc, err, errlen) != 0 ||
        config_uint(n, "not_sampled_cache", 100000, 0, UINT32_MAX, &nsc, err, errlen) != 0 ||
        config_bool(n, "record_policy", 0, &s->record_policy, err, errlen) != 0 ||
        config_bool(n, "sample_rate_attribute", 0, &s->weight.sample_rate, err, errlen) != 0 ||
        config_bool(n, "trace_state_threshold", 0, &s->weight.threshold, err, errlen) != 0)
        return -1;
    if (wait == 0 || wait > 3600 * 1000)
        return config_error(n, "decision_wait", err, errlen, "must be more than 0 and at most 1h");
    if (config_scalar(config_get(n, "quiet_after")) != NULL && quiet >= wait)
        return config_error(n, "quiet_after", err, errlen, "must be less than decision_wait");
    if (max_bytes < ((size_t)1 << 20))
        return config_error(n, "max_bytes", err, errlen, "must be at least 1MiB");
    if (config_get(n, "policies") == NULL)
        return config_error(n, "policies", err, errlen, "required key is missing");
    s->wait_ns = wait * 1000000;
    s->quiet_ns = config_scalar(config_get(n, "quiet_after")) != NULL ? quiet * 1000000 : NO_QUIET;
    s->max_bytes = max_bytes / n_shards;
    s->max_traces = (size_t)(max_traces + n_shards - 1) / n_shards;
    *sampled_cache = (size_t)(sc + n_shards - 1) / n_shards;
    *not_sampled_cache = (size_t)(nsc + n_shards - 1) / n_shards;
    return sp_set_read(&s->pol, config_get(n, "policies"), err, errlen);
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
    size_t sc = 0, nsc = 0;
    if (read_config(s, n, n_shards, &sc, &nsc, err, errlen) != 0) {
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
        sh->fifo.next = sh->fifo.prev = &sh->fifo;
        sh->quiet.qnext = sh->quiet.qprev = &sh->quiet;
        if (sm_dcache_init(&sh->sampled, sc, s->weight.sample_rate || s->weight.threshold) != 0 ||
            sm_dcache_init(&sh->not_sampled, nsc, 0) != 0 || sm_tab_grow(sh) != 0 ||
            sm_btab_grow(sh) != 0)
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
            sm_trace_free(s, sh, t);
        }
        while (sh->ready != NULL) {
            trace *t = sh->ready;
            sh->ready = t->next;
            sm_trace_free(s, sh, t);
        }
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
        free(sh->pack);
        free(sh->groups);
        free(sh->group_len);
        buf_free(&sh->out);
        buf_free(&sh->late_rs);
        buf_free(&sh->late_ss);
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
    return s->n_shards <= 1 ? 0 : (size_t)(sp_trace_hash(trace_id) % s->n_shards);
}

void sampler_set_destinations(sampler *s, unsigned n)
{
    s->dest_mask = n >= 64 ? UINT64_MAX : n == 0 ? 1 : (1ull << n) - 1;
}
