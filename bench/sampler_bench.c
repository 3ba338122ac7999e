/* sampler_bench: memory per buffered span and CPU per span of the tail
 * sampler, on the decoded path (sampler_add) and on the wire path
 * (sampler_add_wire).
 *
 *   sampler_bench [SPANS [SET [PASS]]]  (default 1000000 spans, SET collector, PASS all)
 *
 * SET is the policy set: `collector` (errors, slow, 10%), `weights` (the
 * same, writing SampleRate and th on kept spans), `dynamic` (Refinery's
 * dynamic sampler keyed on service.name and http.route, goal 10: the trace's
 * spans are decoded at the decision), `rules` (Refinery's rules sampler),
 * `ottl` (the collector set plus an ottl_condition policy, an IsMatch on a
 * route plus a duration and a resource attribute comparison, and an RE2
 * string_attribute policy: what those cost per span in sampler_add) or
 * `probabilistic` (10% alone: bench/run.sh's sampling scenario). The last
 * three read span fields, which the wire path does not take.
 *
 * PASS is `decoded`, `wire`, `steady` or `all`; each runs in its own child
 * process, so that its RSS growth starts from the same small heap:
 * - decoded and wire take the same requests, of a realistic shape: one
 *   resource (service.name and four more attributes), one scope, 100 spans
 *   with ten attributes of mixed types, status and timestamps (1 span in 200
 *   slow, 1 in 500 an error); a request carries 5 spans of each of 20
 *   traces, and every trace is split over two consecutive requests from two
 *   services (10 spans a trace). decoded decodes each request with
 *   otlp_decode (the baseline) and hands it to sampler_add; wire hands the
 *   encoded bytes to sampler_add_wire. Both then decide everything
 *   (sampler_flush).
 * - steady is run.sh's sampling scenario without the network: loadgen's
 *   requests (lg_payload) through sampler_add_wire and sampler_tick, on a
 *   simulated clock (see run_steady).
 *
 * Printed: wire bytes per span; the sampler's accounted bytes per buffered
 * span; process RSS growth per buffered span; CPU time of the benchmark's
 * thread per span for decoding, adding and deciding (immune to other
 * processes sharing the cores); and what is left held after everything is
 * decided. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "lg_payload.h"
#include "otlp.h"
#include "otlp_wire.h"
#include "sampler.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

#define PER_REQ 100
#define TRACES_PER_REQ 20
#define SPAN_ATTRS 10

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

/* CPU time of this thread: what the decisions cost on a shared machine,
 * where wall time also counts the time other processes had the CPU. */
static double cpu_s(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

/* Page faults of this thread so far: memory touched the first time (the
 * kernel's share of a pass that fills an empty sampler; getrusage's split
 * of CPU time into user and system is sampled at the tick, too coarse). */
static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_minflt;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static kv_t *kv(const char *k, any_t *v)
{
    kv_t *p = calloc(1, sizeof(*p));
    opentelemetry__proto__common__v1__key_value__init(p);
    p->key = (char *)k;
    p->value = v;
    return p;
}

static any_t *sval(const char *s)
{
    any_t *v = calloc(1, sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

static any_t *ival(int64_t i)
{
    any_t *v = calloc(1, sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return v;
}

/* A request template whose ids and times are rewritten per request. */
typedef struct tmpl {
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs, *rsp;
    Opentelemetry__Proto__Resource__V1__Resource res;
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss, *ssp;
    Opentelemetry__Proto__Common__V1__InstrumentationScope scope;
    kv_t *res_attrs[5];
    span_t spans[PER_REQ], *spp[PER_REQ];
    kv_t *attrs[PER_REQ][SPAN_ATTRS];
    Opentelemetry__Proto__Trace__V1__Status status[PER_REQ];
    uint8_t ids[PER_REQ][16 + 8 + 8];
    any_t *svc;
} tmpl;

static void tmpl_init(tmpl *t)
{
    memset(t, 0, sizeof(*t));
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&t->req);
    opentelemetry__proto__trace__v1__resource_spans__init(&t->rs);
    opentelemetry__proto__resource__v1__resource__init(&t->res);
    opentelemetry__proto__trace__v1__scope_spans__init(&t->ss);
    opentelemetry__proto__common__v1__instrumentation_scope__init(&t->scope);
    t->svc = sval("checkout");
    t->res_attrs[0] = kv("service.name", t->svc);
    t->res_attrs[1] = kv("service.version", sval("1.42.7"));
    t->res_attrs[2] = kv("deployment.environment", sval("production"));
    t->res_attrs[3] = kv("host.name", sval("ip-10-1-23-45.eu-west-1.compute.internal"));
    t->res_attrs[4] = kv("telemetry.sdk.language", sval("nodejs"));
    t->res.attributes = t->res_attrs;
    t->res.n_attributes = 5;
    t->rs.resource = &t->res;
    t->scope.name = "@opentelemetry/instrumentation-http";
    t->scope.version = "0.52.1";
    t->ss.scope = &t->scope;
    static const char *routes[] = {"/api/cart", "/api/checkout", "/api/orders/{id}", "/health"};
    for (int i = 0; i < PER_REQ; i++) {
        span_t *s = &t->spans[i];
        opentelemetry__proto__trace__v1__span__init(s);
        s->trace_id.data = t->ids[i];
        s->trace_id.len = 16;
        s->span_id.data = t->ids[i] + 16;
        s->span_id.len = 8;
        s->name = (char *)(i % 2 ? "GET /api/checkout" : "SELECT orders");
        s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
        t->attrs[i][0] = kv("http.method", sval("GET"));
        t->attrs[i][1] = kv("http.route", sval(routes[i % 4]));
        t->attrs[i][2] = kv("http.status_code", ival(200));
        t->attrs[i][3] = kv("http.url", sval("https://shop.example.com/api/checkout?cart=8a7f6e"));
        t->attrs[i][4] = kv("net.peer.name", sval("orders-db.internal"));
        t->attrs[i][5] = kv("net.peer.port", ival(5432));
        t->attrs[i][6] = kv("db.system", sval("postgresql"));
        t->attrs[i][7] = kv("user_agent.original", sval("Mozilla/5.0 (X11; Linux x86_64)"));
        t->attrs[i][8] = kv("thread.id", ival(17));
        t->attrs[i][9] = kv("code.function", sval("handleCheckout"));
        s->attributes = t->attrs[i];
        s->n_attributes = SPAN_ATTRS;
        opentelemetry__proto__trace__v1__status__init(&t->status[i]);
        s->status = &t->status[i];
        t->spp[i] = s;
    }
    t->ss.spans = t->spp;
    t->ss.n_spans = PER_REQ;
    t->ssp = &t->ss;
    t->rs.scope_spans = &t->ssp;
    t->rs.n_scope_spans = 1;
    t->rsp = &t->rs;
    t->req.resource_spans = &t->rsp;
    t->req.n_resource_spans = 1;
}

/* Request r: traces [base, base+20) where base = (r/2)*20; spans 5 each; the
 * second request of a pair comes from another service and holds the root. */
static void tmpl_fill(tmpl *t, uint64_t r, uint64_t seed)
{
    uint64_t base = (r / 2) * TRACES_PER_REQ;
    t->svc->string_value = (char *)(r % 2 ? "frontend" : "checkout");
    for (int i = 0; i < PER_REQ; i++) {
        uint64_t tr = base + (uint64_t)(i / 5), x = (tr + 1) * 0x9E3779B97F4A7C15ULL ^ seed;
        for (int k = 0; k < 8; k++) {
            t->ids[i][k] = (uint8_t)(x >> (8 * k));
            t->ids[i][8 + k] = (uint8_t)((tr + 1) >> (8 * k));
        }
        uint64_t sid = rnd() | 1;
        memcpy(t->ids[i] + 16, &sid, 8);
        int root = r % 2 == 1 && i % 5 == 0;
        uint64_t parent = 0x0102030405060708ULL;
        memcpy(t->ids[i] + 24, &parent, 8);
        t->spans[i].parent_span_id.data = root ? NULL : t->ids[i] + 24;
        t->spans[i].parent_span_id.len = root ? 0 : 8;
        uint64_t start = 1700000000000000000ULL + r * 1000000ULL;
        t->spans[i].start_time_unix_nano = start;
        /* Mostly fast spans; 1 in 200 slow (over the 500 ms policy), 1 in 500 an error. */
        t->spans[i].end_time_unix_nano = start + (rnd() % 50 + (rnd() % 200 == 0 ? 600 : 0)) * 1000000ULL;
        t->status[i].code = rnd() % 500 == 0 ? OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR
                                            : OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_UNSET;
    }
}

static size_t g_emits, g_emit_spans, g_emit_bytes;
static int on_emit(void *data, const char *tenant, const uint8_t *req, size_t len, size_t spans, uint64_t *done,
                   uint64_t *full)
{
    (void)data;
    (void)tenant;
    (void)req;
    (void)full;
    *done = 1;
    g_emits++;
    g_emit_spans += spans;
    g_emit_bytes += len;
    return 0;
}

#define YAML_HEAD                                                                                               \
    "listeners:\n  - name: a\n    grpc: 127.0.0.1:4317\n"                                                      \
    "backends:\n  x:\n    type: discard\n"                                                                     \
    "    s: {decision_wait: WAIT, max_bytes: 8GiB, max_traces: 10000000, sampled_cache: 1000000,\n"             \
    "        not_sampled_cache: 1000000, "
#define COLLECTOR_LIST                                                                                          \
    "policies: [{name: errors, type: status_code, status_codes: [ERROR]},\n"                                  \
    "        {name: slow, type: latency, threshold_ms: 500}, {name: some, type: probabilistic,\n"             \
    "        sampling_percentage: 10}"
#define COLLECTOR_POLICIES COLLECTOR_LIST "]}\n"
#define OTTL_POLICIES                                                                                           \
    ", {name: api, type: ottl_condition, span: ['IsMatch(attributes[\"http.route\"], \"^/api/orders/\") and "   \
    "end_time_unix_nano - start_time_unix_nano > 300000000', 'resource.attributes[\"deployment.environment\"] == " \
    "\"staging\"']}, {name: pg, type: string_attribute, key: db.system, values: ['(?i)^postgres'], "            \
    "enabled_regex_matching: true}]}\n"

static const struct {
    const char *name, *yaml;
} sets[] = {
    {"collector", YAML_HEAD COLLECTOR_POLICIES},
    {"weights", YAML_HEAD "sample_rate_attribute: true, trace_state_threshold: true, " COLLECTOR_POLICIES},
    {"dynamic", YAML_HEAD "policies: [{name: dyn, type: dynamic, sample_rate: 10, clear_frequency: 30s,\n"
                "        field_list: [service.name, http.route]}]}\n"},
    {"rules", YAML_HEAD "policies: [{name: r, type: rules, rules: [{name: errors, conditions: [{field: error,\n"
              "        operator: '=', value: true}]}, {name: health, drop: true, conditions: [{field: http.route,\n"
              "        operator: '=', value: /health}]}, {name: rest, sample_rate: 10}]}]}\n"},
    {"ottl", YAML_HEAD COLLECTOR_LIST OTTL_POLICIES},
    {"probabilistic", YAML_HEAD "policies: [{name: some, type: probabilistic, sampling_percentage: 10}]}\n"},
};

/* The set's sampler with decision_wait `wait` (one shard); *cfg holds its
 * configuration until the caller frees it after the sampler. */
static sampler *bench_sampler(const char *yaml, const char *wait, config **cfg)
{
    char text[4096], err[512];
    const char *w = strstr(yaml, "WAIT");
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(w - yaml), yaml, wait, w + 4);
    if (config_load_string("bench.yaml", text, strlen(text), cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    sampler *s = sampler_new(config_get((*cfg)->routing.backends[0].node, "s"), 1, err, sizeof(err));
    if (s == NULL) {
        fprintf(stderr, "%s\n", err);
        config_free(*cfg);
    }
    return s;
}

/* bench_sampler for a wire pass; NULL when it cannot run, with *rc its exit
 * status: 1 on an error, 0 when the set's policies read span fields (which
 * the wire path does not take: nothing to measure). */
static sampler *wire_sampler(const char *yaml, const char *wait, const char *pass, config **cfg, int *rc)
{
    sampler *s = bench_sampler(yaml, wait, cfg);
    *rc = s == NULL;
    if (s != NULL && !sampler_wire_ok(s)) {
        printf("%s: not for this policy set (its policies read span fields)\n", pass);
        sampler_free(s);
        config_free(*cfg);
        s = NULL;
    }
    return s;
}

/* Request r of a pass, encoded into w; its length. Every pass starts from
 * the same rng, so every pass sees the same requests. */
static size_t encode_request(tmpl *t, uint64_t r, buf *w)
{
    tmpl_fill(t, r, 0x1234);
    size_t len = protobuf_c_message_get_packed_size(&t->req.base);
    buf_clear(w);
    buf_reserve(w, len);
    protobuf_c_message_pack(&t->req.base, (uint8_t *)w->data);
    w->len = len;
    return len;
}

/* Wire bytes of the spans alone (without resource, scope and framing). */
static size_t spans_wire(const tmpl *t)
{
    size_t n = 0;
    for (int i = 0; i < PER_REQ; i++)
        n += protobuf_c_message_get_packed_size(&t->spans[i].base);
    return n;
}

static void print_held(const char *what, sampler *s, long rss0, size_t span_wire, size_t spans)
{
    sampler_stats st;
    sampler_get_stats(s, &st);
    printf("  %-23s %.1f bytes/span held (%.2fx the span's wire size); %llu spans, %.1f MiB\n", what,
           (double)st.bytes_held / (double)st.spans_held, (double)st.bytes_held / (double)st.wire_bytes_held,
           (unsigned long long)st.spans_held, (double)st.bytes_held / 1048576.0);
    printf("  process RSS growth:     %.1f bytes/span (%.2fx the span's wire size; %.1f MiB)\n",
           (double)(rss_kib() - rss0) * 1024.0 / (double)st.spans_held,
           (double)(rss_kib() - rss0) * 1024.0 * (double)spans / (double)span_wire / (double)st.spans_held,
           (double)(rss_kib() - rss0) / 1024.0);
}

/* Everything decided and emitted: what is left held, and RSS against the
 * start (what the sampler gave back). */
static void print_after(sampler *s, long rss0)
{
    sampler_stats st;
    sampler_get_stats(s, &st);
    printf("  after flush:            %llu bytes held (slab %llu), %llu sampled, %llu dropped; RSS %+.1f MiB from "
           "before\n",
           (unsigned long long)st.bytes_held, (unsigned long long)st.slab_bytes, (unsigned long long)st.sampled,
           (unsigned long long)st.dropped, (double)(rss_kib() - rss0) / 1024.0);
}

/* The decoded path: decode (the baseline), sampler_add, then decide all. */
static int run_decoded(const char *yaml, size_t nreq)
{
    char err[512];
    tmpl *t = malloc(sizeof(*t));
    tmpl_init(t);
    arena *a = arena_new(0);
    buf wire = BUF_INIT;
    otlp_request req;
    size_t wire_total = 0, span_wire = 0, total_spans = nreq * PER_REQ;
    double t_decode = 0, t_add = 0;
    config *cfg;
    sampler *s = bench_sampler(yaml, "1h", &cfg);
    if (s == NULL)
        return 1;
    long rss0 = rss_kib();
    for (size_t r = 0; r < nreq; r++) {
        size_t len = encode_request(t, r, &wire);
        wire_total += len;
        span_wire += spans_wire(t);
        arena_reset(a);
        double c0 = cpu_s();
        if (otlp_decode(OTLP_TRACES, OTLP_PROTOBUF, (const uint8_t *)wire.data, len, a, &req, err, sizeof(err)) != 0) {
            fprintf(stderr, "decode: %s\n", err);
            return 1;
        }
        double c1 = cpu_s();
        sampler_add(s, 0, req.msg, "shop", 1000000000ULL, NULL);
        t_add += cpu_s() - c1;
        t_decode += c1 - c0;
    }
    printf("decoded path (otlp_decode, sampler_add): %zu spans in %zu requests (%zu traces of 10 spans)\n",
           total_spans, nreq, total_spans / 10);
    printf("  wire size:              %.1f bytes/span as sent (request %.0f bytes/span incl. resource/scope)\n",
           (double)span_wire / (double)total_spans, (double)wire_total / (double)total_spans);
    print_held("sampler accounting:", s, rss0, span_wire, total_spans);
    printf("  decode only (baseline): %.0f ns/span CPU\n", t_decode * 1e9 / (double)total_spans);
    printf("  sampler_add:            %.0f ns/span CPU (after decode)\n", t_add * 1e9 / (double)total_spans);
    double t0 = now_s(), c0 = cpu_s();
    size_t decided = sampler_flush(s, 0, 2000000000ULL, on_emit, NULL);
    double t_flush = now_s() - t0, c_flush = cpu_s() - c0;
    printf("  decisions:              %zu traces in %.3f s = %.0f decisions/s (%.0f spans/s), incl. encoding\n"
           "                          %zu sampled traces (%zu spans, %.1f MiB) and freeing everything\n",
           decided, t_flush, (double)decided / t_flush, (double)total_spans / t_flush, g_emits, g_emit_spans,
           (double)g_emit_bytes / 1048576.0);
    printf("  decision CPU time:      %.3f s = %.0f decisions per CPU-second (%.1f us a trace, %.0f ns/span)\n",
           c_flush, (double)decided / c_flush, c_flush * 1e6 / (double)decided, c_flush * 1e9 / (double)total_spans);
    printf("  add + decide:           %.0f ns/span CPU\n", (t_add + c_flush) * 1e9 / (double)total_spans);
    print_after(s, rss0);
    sampler_free(s);
    config_free(cfg);
    arena_free(a);
    buf_free(&wire);
    free(t);
    return 0;
}

/* The wire path with the same requests: sampler_add_wire on the bytes,
 * then decide all. */
static int run_wire(const char *yaml, size_t nreq)
{
    config *cfg;
    int rc;
    sampler *s = wire_sampler(yaml, "1h", "wire path", &cfg, &rc);
    if (s == NULL)
        return rc;
    tmpl *t = malloc(sizeof(*t));
    tmpl_init(t);
    buf *wire = calloc(nreq, sizeof(*wire));
    size_t span_wire = 0, total_spans = nreq * PER_REQ;
    for (size_t r = 0; r < nreq; r++) { /* encoded beforehand: the pass times the sampler alone */
        encode_request(t, r, &wire[r]);
        span_wire += spans_wire(t);
    }
    long rss0 = rss_kib();
    double c0 = cpu_s();
    long f0 = minor_faults();
    for (size_t r = 0; r < nreq; r++)
        sampler_add_wire(s, 0, (const uint8_t *)wire[r].data, wire[r].len, NULL, 0, "shop", 1000000000ULL, NULL);
    double t_add = cpu_s() - c0, faults = (double)(minor_faults() - f0);
    printf("wire path (sampler_add_wire, the same requests as bytes):\n");
    print_held("sampler accounting:", s, rss0, span_wire, total_spans);
    c0 = cpu_s();
    size_t decided = sampler_flush(s, 0, 2000000000ULL, on_emit, NULL);
    double c_flush = cpu_s() - c0;
    printf("  sampler_add_wire:       %.0f ns/span CPU, with %.0f page faults per 1000 spans (the first touch of\n"
           "                          the memory: their cost varies with the machine's load)\n",
           t_add * 1e9 / (double)total_spans, faults * 1000 / (double)total_spans);
    printf("  decisions:              %zu traces, %.0f ns/span CPU (%.1f us a trace)\n", decided,
           c_flush * 1e9 / (double)total_spans, c_flush * 1e6 / (double)decided);
    printf("  add + decide:           %.0f ns/span CPU\n", (t_add + c_flush) * 1e9 / (double)total_spans);
    print_after(s, rss0);
    sampler_free(s);
    config_free(cfg);
    for (size_t r = 0; r < nreq; r++)
        buf_free(&wire[r]);
    free(wire);
    free(t);
    return 0;
}

#define STEADY_RATE 500000 /* spans per second of the simulated clock */
#define STEADY_WAIT_S 2

/* bench/run.sh's sampling scenario in one process: loadgen's requests (100
 * spans drawn from 100 open traces of 10 spans, so a request brings about
 * one span to each of 60 traces), sampler_add_wire with the notes of the
 * ingest scan (made outside the timing) and sampler_tick after each as the
 * pipeline does, on a simulated clock at STEADY_RATE spans/s
 * with decision_wait STEADY_WAIT_S: traces are decided while others
 * arrive. Timed after the first decision_wait (the buffer full), for
 * `spans` spans. */
static int run_steady(const char *yaml, size_t spans)
{
    config *cfg;
    int rc;
    sampler *s = wire_sampler(yaml, "2s", "steady wire path", &cfg, &rc);
    if (s == NULL)
        return rc;
    lg_shape shape = {.spans_per_request = PER_REQ, .spans_per_trace = 10, .open_traces = PER_REQ, .attrs = 10,
                      .attr_bytes = 32, .error_rate = 0.01};
    lg_payload g;
    if (lg_payload_init(&g, &shape, 42) != 0)
        return 1;
    size_t warm = (size_t)STEADY_RATE * STEADY_WAIT_S / PER_REQ, nreq = warm + (spans + PER_REQ - 1) / PER_REQ;
    uint64_t step = 1000000000ULL * PER_REQ / STEADY_RATE, now = 1000000000ULL;
    buf w = BUF_INIT;
    otlp_wire_spans notes = {0};
    long rss0 = rss_kib();
    double c = 0, wire_bytes = 0;
    for (size_t r = 0; r < nreq; r++, now += step) {
        lg_payload_request(&g, &w, 0);
        size_t items;
        if (otlp_wire_spans_cap(w.len) > notes.cap) {
            notes.cap = otlp_wire_spans_cap(w.len);
            if ((notes.v = realloc(notes.v, notes.cap * sizeof(*notes.v))) == NULL)
                return 1;
        }
        if (!otlp_wire_scan(OTLP_TRACES, (const uint8_t *)w.data, w.len, &items, &notes) || notes.n != items)
            return 1; /* loadgen's requests are valid */
        double c0 = cpu_s();
        sampler_add_wire(s, 0, (const uint8_t *)w.data, w.len, notes.v, notes.n, "shop", now, NULL);
        sampler_tick(s, 0, now, on_emit, NULL);
        if (r >= warm) {
            c += cpu_s() - c0;
            wire_bytes += (double)w.len;
        }
    }
    double n = (double)(nreq - warm) * PER_REQ;
    sampler_stats st;
    sampler_get_stats(s, &st);
    printf("steady wire path (loadgen's requests, %d spans/s simulated, decision_wait %ds, tick per request):\n",
           STEADY_RATE, STEADY_WAIT_S);
    printf("  add + tick:             %.0f ns/span CPU over %.0f spans\n", c * 1e9 / n, n);
    printf("  held at the end:        %llu spans, %.1f bytes/span accounted (%.2fx wire; slab %.1f), RSS +%.1f MiB = "
           "%.1f bytes/span (%.2fx the %.0f bytes of a request's span)\n",
           (unsigned long long)st.spans_held, (double)st.bytes_held / (double)st.spans_held,
           (double)st.bytes_held / (double)st.wire_bytes_held, (double)st.slab_bytes / (double)st.spans_held, (double)(rss_kib() - rss0) / 1024.0,
           (double)(rss_kib() - rss0) * 1024.0 / (double)st.spans_held,
           (double)(rss_kib() - rss0) * 1024.0 / (double)st.spans_held / (wire_bytes / n), wire_bytes / n);
    sampler_flush(s, 0, now, on_emit, NULL);
    print_after(s, rss0);
    sampler_free(s);
    config_free(cfg);
    lg_payload_free(&g);
    buf_free(&w);
    free(notes.v);
    return 0;
}

/* Each pass in its own child process, so that its RSS growth starts from
 * the same small heap. */
static int in_child(int (*fn)(const char *, size_t), const char *yaml, size_t n)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int rc = fn(yaml, n);
        fflush(stdout);
        _exit(rc);
    }
    int status = 1;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
    size_t spans = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
    const char *set = argc > 2 ? argv[2] : "collector", *yaml = NULL;
    const char *which = argc > 3 ? argv[3] : "all";
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
        if (strcmp(sets[i].name, set) == 0)
            yaml = sets[i].yaml;
    if (yaml == NULL) {
        fprintf(stderr, "sampler_bench: unknown policy set %s (use collector, weights, dynamic, rules, ottl or "
                        "probabilistic)\n",
                set);
        return 2;
    }
    int all = strcmp(which, "all") == 0;
    if (!all && strcmp(which, "decoded") != 0 && strcmp(which, "wire") != 0 && strcmp(which, "steady") != 0) {
        fprintf(stderr, "sampler_bench: unknown pass %s (use all, decoded, wire or steady)\n", which);
        return 2;
    }
    size_t nreq = (spans + PER_REQ - 1) / PER_REQ;
    nreq += nreq % 2;
    printf("sampler_bench: %zu spans, 1 shard, policy set %s; CPU time of the benchmark's thread\n", nreq * PER_REQ,
           set);
    int rc = 0;
    if (all || strcmp(which, "decoded") == 0)
        rc |= in_child(run_decoded, yaml, nreq);
    if (all || strcmp(which, "wire") == 0)
        rc |= in_child(run_wire, yaml, nreq);
    if (all || strcmp(which, "steady") == 0)
        rc |= in_child(run_steady, yaml, spans);
    return rc;
}
