/* sampler_metrics: the sampler's stats and its Prometheus metrics. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "sampler_internal.h"

void sampler_get_stats(sampler *s, sampler_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < s->n_shards; i++) {
        shard *sh = &s->shards[i];
        pthread_mutex_lock(&sh->lock);
        out->traces_in_flight += sh->n_traces;
        out->bytes_held += sh->bytes;
        out->sampled += sh->st.sampled;
        out->dropped += sh->st.dropped;
        out->evicted_early += sh->st.evicted;
        out->late_spans_sampled += sh->st.late_sampled;
        out->late_spans_dropped += sh->st.late_dropped;
        out->spans_buffered += sh->st.buffered;
        out->spans_held += sh->spans_held;
        out->wire_bytes_held += sh->wire_held;
        out->decided_wait += sh->st.decided_wait;
        out->decided_quiet += sh->st.decided_quiet;
        out->decided_flush += sh->st.decided_flush;
        out->decided_oversize += sh->st.decided_oversize;
        out->evicted_max_traces += sh->st.evicted_traces;
        out->spans_sampled += sh->st.spans_sampled;
        out->spans_dropped += sh->st.spans_dropped;
        out->decision_latency_ns_sum += sh->st.lat_sum;
        if (sh->st.lat_max > out->decision_latency_ns_max)
            out->decision_latency_ns_max = sh->st.lat_max;
        out->spans_lost_oom += sh->st.lost_oom;
        out->released += sh->st.released;
        out->spans_released += sh->st.spans_released;
        out->held_traces += sh->held_pub;
        out->held_bytes += sh->held_pub != 0 ? sh->ready_bytes : 0;
        out->abandoned += sh->st.abandoned;
        out->spans_abandoned += sh->st.spans_abandoned;
        out->slab_bytes += slab_footprint(&sh->mem);
        pthread_mutex_unlock(&sh->lock);
    }
}

size_t sampler_policy_count(const sampler *s) { return s->pol.n_top; }

const char *sampler_policy_stats(const sampler *s, size_t i, uint64_t *sampled, uint64_t *not_sampled,
                                 uint64_t *kept)
{
    if (i >= s->pol.n_top)
        return NULL;
    sp_policy *p = &s->pol.top[i];
    if (sampled != NULL)
        *sampled = atomic_load_explicit(&p->n_sampled, memory_order_relaxed);
    if (not_sampled != NULL)
        *not_sampled = atomic_load_explicit(&p->n_not_sampled, memory_order_relaxed);
    if (kept != NULL)
        *kept = atomic_load_explicit(&p->n_kept, memory_order_relaxed);
    return p->name;
}

void sampler_set_metrics(sampler *s, const char *pipeline)
{
    static const double lat_bounds[] = {0.1, 0.5, 1, 2, 5, 10, 20, 30, 60};
    static const char *const reasons[R_COUNT] = {"wait", "quiet", "evicted", "flush", "oversize"};
    metric_family *in_flight = metrics_family("otlp_gateway_sampler_traces_in_flight", METRIC_GAUGE,
                                              "Traces the tail sampler holds: awaiting a decision, or sampled and not yet handed to the backends");
    metric_family *bytes = metrics_family("otlp_gateway_sampler_bytes_held", METRIC_GAUGE,
                                          "Memory the tail sampler accounts for buffered spans");
    metric_family *traces = metrics_family("otlp_gateway_sampler_traces_total", METRIC_COUNTER,
                                           "Traces decided by the tail sampler, by decision and reason");
    metric_family *pol = metrics_family("otlp_gateway_sampler_policy_decisions_total", METRIC_COUNTER,
                                        "Tail sampling policy evaluations by outcome");
    metric_family *kept = metrics_family("otlp_gateway_sampler_policy_kept_traces_total", METRIC_COUNTER,
                                         "Sampled traces by the first policy that sampled them");
    metric_family *late = metrics_family("otlp_gateway_sampler_late_spans_total", METRIC_COUNTER,
                                         "Spans arriving after their trace's decision, by decision");
    metric_family *evicted = metrics_family("otlp_gateway_sampler_evictions_total", METRIC_COUNTER,
                                            "Traces decided early because the sampler's memory budget was full");
    metric_family *held_f = metrics_family("otlp_gateway_sampler_traces_held", METRIC_GAUGE,
                                           "Sampled traces held in the tail sampler until every backend has room "
                                           "(new requests get 503 / UNAVAILABLE while this fills the budget)");
    metric_family *lat = metrics_histogram_family("otlp_gateway_sampler_decision_latency_seconds",
                                                  "Time from a trace's first span to its sampling decision",
                                                  lat_bounds, sizeof(lat_bounds) / sizeof(lat_bounds[0]));
    char labels[256], pl[160];
    log_quote(pl, sizeof(pl), pipeline != NULL ? pipeline : "");
    /* log_quote yields a quoted, escaped string: usable as a label value. */
    snprintf(labels, sizeof(labels), "pipeline=%s", pl);
    s->m.in_flight = metrics_series(in_flight, labels);
    s->m.bytes = metrics_series(bytes, labels);
    s->m.held = metrics_series(held_f, labels);
    s->m.evicted = metrics_series(evicted, labels);
    s->m.latency = metrics_series(lat, labels);
    for (int k = 0; k < 2; k++) {
        for (int r = 0; r < R_COUNT; r++) {
            char l[320];
            snprintf(l, sizeof(l), "%s,decision=\"%s\",reason=\"%s\"", labels, k ? "sampled" : "dropped",
                     reasons[r]);
            s->m.traces[k][r] = metrics_series(traces, l);
        }
    }
    char l[320];
    snprintf(l, sizeof(l), "%s,decision=\"sampled\"", labels);
    s->m.late_sampled = metrics_series(late, l);
    snprintf(l, sizeof(l), "%s,decision=\"dropped\"", labels);
    s->m.late_dropped = metrics_series(late, l);
    for (size_t i = 0; i < s->pol.n_top; i++) {
        sp_policy *p = &s->pol.top[i];
        char pn[160], l2[704];
        log_quote(pn, sizeof(pn), p->name);
        snprintf(l2, sizeof(l2), "%s,policy=%s,outcome=\"sampled\"", labels, pn);
        p->m_sampled = metrics_series(pol, l2);
        snprintf(l2, sizeof(l2), "%s,policy=%s,outcome=\"not_sampled\"", labels, pn);
        p->m_not_sampled = metrics_series(pol, l2);
        snprintf(l2, sizeof(l2), "%s,policy=%s", labels, pn);
        p->m_kept = metrics_series(kept, l2);
    }
    for (size_t i = 0; i < s->n_shards; i++) {
        shard *sh = &s->shards[i];
        pthread_mutex_lock(&sh->lock);
        sh->bytes_pub = sh->live_pub = 0; /* the series have none of it yet */
        sm_shard_publish(s, sh);
        pthread_mutex_unlock(&sh->lock);
    }
}
