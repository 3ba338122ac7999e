/* loadgen: OTLP trace load generator for the benchmarks (bench/README.md,
 * "loadgen"). Options are parsed here and the report printed; the load
 * itself is lg_client, the requests lg_payload, the latencies lg_hist.
 *
 * Exit status: 0 every request acknowledged in full, 3 some failed (the
 * report says which and why), 1 the run could not be made, 2 usage. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "lg_client.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen [options] URL\n"
            "  URL                http://HOST:PORT (h2c, prior knowledge) or https://HOST:PORT (TLS, ALPN h2),\n"
            "                     optionally with a path (default: the OTLP trace path of --proto)\n"
            "  -p, --proto P      grpc (default) or http (OTLP/HTTP protobuf)\n"
            "  -c, --conns N      connections (16)\n"
            "  -m, --streams M    concurrent requests per connection (10)\n"
            "  -t, --threads T    threads, each with its share of connections and rate (1)\n"
            "  -n, --requests N   stop after N requests\n"
            "  -d, --duration S   stop starting requests after S seconds\n"
            "  -r, --rate R       open loop: R requests/s in all, latency from each intended send time\n"
            "                     (default: closed loop, as fast as the server answers)\n"
            "      --timeout S    per-request timeout (30)\n"
            "  -H, --header 'N: V' extra request header (repeatable), e.g. 'authorization: Bearer X'\n"
            "      --spans N      spans per request (100)\n"
            "      --spans-per-trace N  spans per trace, root included (10)\n"
            "      --open-traces N      traces being filled at once per thread (default: spans per request)\n"
            "      --attrs N      attributes per span (10; beyond 10, app.extra.K strings)\n"
            "      --attr-bytes N length of each app.extra.K value (32)\n"
            "      --error-rate F share of spans with status ERROR (0.01)\n"
            "      --cacert FILE  TLS: CA certificates to verify the server with (default: system CAs)\n"
            "      --insecure     TLS: do not verify the server certificate\n"
            "      --seed N       id sequence (default: from the clock)\n"
            "      --dump FILE    write one request body (gRPC-framed for grpc) to FILE and exit\n");
}

static int num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "loadgen: %s: '%s' is not a number in [%g, %g]\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* URL -> cfg host, port, authority, path, tls. Strings live in `store`. */
static int parse_url(const char *url, lg_config *cfg, char *store, size_t storelen)
{
    const char *rest;
    if (strncmp(url, "http://", 7) == 0) {
        rest = url + 7;
        cfg->tls = 0;
    } else if (strncmp(url, "https://", 8) == 0) {
        rest = url + 8;
        cfg->tls = 1;
    } else {
        fprintf(stderr, "loadgen: URL must start with http:// or https://: %s\n", url);
        return -1;
    }
    size_t alen = strcspn(rest, "/");
    if (alen == 0 || alen * 2 + strlen(rest) + 8 > storelen) {
        fprintf(stderr, "loadgen: bad URL: %s\n", url);
        return -1;
    }
    /* store: authority \0 host \0 port \0 path */
    char *auth = store;
    memcpy(auth, rest, alen);
    auth[alen] = 0;
    char *host = auth + alen + 1;
    const char *colon = strrchr(auth, ':');
    const char *port = cfg->tls ? "443" : "80";
    size_t hlen = alen;
    if (colon && !strchr(colon, ']')) {
        hlen = (size_t)(colon - auth);
        port = colon + 1;
    }
    if (hlen >= 2 && auth[0] == '[' && auth[hlen - 1] == ']') { /* [v6] */
        memcpy(host, auth + 1, hlen - 2);
        host[hlen - 2] = 0;
    } else {
        memcpy(host, auth, hlen);
        host[hlen] = 0;
    }
    char *p = host + strlen(host) + 1;
    strcpy(p, port);
    cfg->authority = auth;
    cfg->host = host;
    cfg->port = p;
    if (rest[alen] == '/' && rest[alen + 1]) {
        char *path = p + strlen(p) + 1;
        strcpy(path, rest + alen);
        cfg->path = path;
    }
    return 0;
}

static int add_header(lg_config *cfg, char *h)
{
    char *colon = strchr(h, ':');
    if (!colon || colon == h || cfg->headers == LG_MAX_HEADERS) {
        fprintf(stderr, "loadgen: -H wants 'name: value' (at most %d): %s\n", LG_MAX_HEADERS, h);
        return -1;
    }
    *colon = 0;
    for (char *p = h; *p; p++)
        *p = (char)tolower((unsigned char)*p); /* HTTP/2 header names are lower case */
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    cfg->hdr_name[cfg->headers] = h;
    cfg->hdr_value[cfg->headers++] = v;
    return 0;
}

static int dump(const lg_config *cfg, const char *file)
{
    lg_payload g;
    buf b = BUF_INIT;
    if (lg_payload_init(&g, &cfg->shape, cfg->seed) != 0 || lg_payload_request(&g, &b, cfg->proto == LG_GRPC) != 0) {
        fprintf(stderr, "loadgen: cannot build a request\n");
        return 1;
    }
    FILE *f = fopen(file, "wb");
    int rc = 0;
    if (!f || fwrite(b.data, 1, b.len, f) != b.len || fclose(f) != 0) {
        fprintf(stderr, "loadgen: %s: %s\n", file, strerror(errno));
        rc = 1;
    } else {
        fprintf(stderr, "loadgen: %s: %u spans, %zu bytes%s\n", file, cfg->shape.spans_per_request, b.len,
                cfg->proto == LG_GRPC ? " (gRPC-framed)" : " (protobuf)");
    }
    buf_free(&b);
    lg_payload_free(&g);
    return rc;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* User and system CPU of the whole process (every thread), in seconds. */
static double process_cpu_s(void)
{
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u) != 0)
        return 0;
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* cpu_s: the process's CPU over the run, so that a benchmark on a shared
 * machine can say how much of it the client took. */
static void report(const lg_config *cfg, const lg_result *r, double cpu_s)
{
    double secs = (double)(r->end_ns - r->start_ns) / 1e9;
    if (secs <= 0)
        secs = 1e-9;
    const lg_hist *h = &r->latency;
    printf("loadgen: %s %s %s:%s, %s, %u conns x %u streams, %u thread%s, %u spans/request\n",
           cfg->proto == LG_GRPC ? "OTLP/gRPC" : "OTLP/HTTP", cfg->tls ? "h2 (TLS)" : "h2c", cfg->host, cfg->port,
           cfg->rate > 0 ? "open loop" : "closed loop", cfg->conns, cfg->streams, cfg->threads,
           cfg->threads == 1 ? "" : "s", cfg->shape.spans_per_request);
    if (cfg->rate > 0)
        printf("target rate: %.1f requests/s\n", cfg->rate);
    printf("requests: %llu sent, %llu ok, %llu failed\n", (unsigned long long)r->sent, (unsigned long long)r->ok,
           (unsigned long long)r->failed);
    char fails[2048] = "";
    size_t fl = 0;
#define FAILF(...) fl += (size_t)snprintf(fails + fl, fl < sizeof fails ? sizeof fails - fl : 0, __VA_ARGS__)
    for (int i = 0; i < 600; i++)
        if (r->http[i])
            FAILF(" fail_http_%d=%llu", i, (unsigned long long)r->http[i]);
    for (int i = 0; i < 17; i++)
        if (r->grpc[i])
            FAILF(" fail_grpc_%d=%llu", i, (unsigned long long)r->grpc[i]);
    for (int i = 0; i < LG_F_KINDS; i++)
        if (r->fail[i])
            FAILF(" fail_%s=%llu", lg_fail_names[i], (unsigned long long)r->fail[i]);
#undef FAILF
    if (fails[0])
        printf("failures:%s\n", fails);
    if (r->reconnects || r->dead_conns)
        printf("connections: %llu lost and reopened, %llu could not be reopened\n",
               (unsigned long long)r->reconnects, (unsigned long long)r->dead_conns);
    printf("spans: %llu sent, %llu acknowledged\n", (unsigned long long)r->spans_sent,
           (unsigned long long)r->spans_acked);
    double rps = (double)r->ok / secs, sps = (double)r->spans_acked / secs;
    printf("throughput: %.1f requests/s, %.0f spans/s, %.1f MB/s sent, over %.3f s\n", rps, sps,
           (double)r->bytes_sent / secs / 1e6, secs);
    printf("client CPU: %.3f s user+system, %.2f cores over the run\n", cpu_s, cpu_s / secs);
    printf("latency ms (%s, %llu ok requests): p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f\n",
           cfg->rate > 0 ? "from intended send time" : "from send", (unsigned long long)h->count,
           ms(lg_hist_quantile(h, 0.5)), ms(lg_hist_quantile(h, 0.9)), ms(lg_hist_quantile(h, 0.99)),
           ms(lg_hist_quantile(h, 0.999)), ms(h->max));
    printf("result requests=%llu ok=%llu failed=%llu spans_sent=%llu spans_acked=%llu duration_s=%.3f rps=%.1f "
           "spans_per_s=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f cpu_s=%.3f%s\n",
           (unsigned long long)r->sent, (unsigned long long)r->ok, (unsigned long long)r->failed,
           (unsigned long long)r->spans_sent, (unsigned long long)r->spans_acked, secs, rps, sps,
           ms(lg_hist_quantile(h, 0.5)), ms(lg_hist_quantile(h, 0.9)), ms(lg_hist_quantile(h, 0.99)),
           ms(lg_hist_quantile(h, 0.999)), ms(h->max), cpu_s, fails);
}

int main(int argc, char **argv)
{
    lg_config cfg = {
        .proto = LG_GRPC,
        .conns = 16,
        .streams = 10,
        .threads = 1,
        .timeout = 30,
        .shape = {.spans_per_request = 100, .spans_per_trace = 10, .attrs = 10, .attr_bytes = 32, .error_rate = 0.01},
    };
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cfg.seed = (uint64_t)ts.tv_sec * 1000003ULL ^ (uint64_t)ts.tv_nsec;
    const char *dump_file = NULL;
    unsigned open_traces = 0;
    enum { O_TIMEOUT = 256, O_SPANS, O_SPT, O_OPEN, O_ATTRS, O_ABYTES, O_ERR, O_CACERT, O_INSECURE, O_SEED, O_DUMP, O_HELP };
    static const struct option opts[] = {
        {"proto", 1, 0, 'p'},       {"conns", 1, 0, 'c'},          {"streams", 1, 0, 'm'},
        {"threads", 1, 0, 't'},     {"requests", 1, 0, 'n'},       {"duration", 1, 0, 'd'},
        {"rate", 1, 0, 'r'},        {"header", 1, 0, 'H'},         {"timeout", 1, 0, O_TIMEOUT},
        {"spans", 1, 0, O_SPANS},   {"spans-per-trace", 1, 0, O_SPT}, {"open-traces", 1, 0, O_OPEN},
        {"attrs", 1, 0, O_ATTRS},   {"attr-bytes", 1, 0, O_ABYTES}, {"error-rate", 1, 0, O_ERR},
        {"cacert", 1, 0, O_CACERT}, {"insecure", 0, 0, O_INSECURE}, {"seed", 1, 0, O_SEED},
        {"dump", 1, 0, O_DUMP},     {"help", 0, 0, O_HELP},        {0, 0, 0, 0}};
    int o;
    double v;
#define NUM(lo, hi) \
    if (num(opts[idx].name, optarg, lo, hi, &v) != 0) \
        return 2;
    int idx = 0;
    while ((o = getopt_long(argc, argv, "p:c:m:t:n:d:r:H:", opts, &idx)) != -1) {
        for (idx = 0; opts[idx].name && opts[idx].val != o; idx++)
            ;
        switch (o) {
        case 'p':
            if (strcmp(optarg, "grpc") == 0)
                cfg.proto = LG_GRPC;
            else if (strcmp(optarg, "http") == 0)
                cfg.proto = LG_HTTP;
            else {
                fprintf(stderr, "loadgen: --proto takes grpc or http, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'c': NUM(1, 100000) cfg.conns = (unsigned)v; break;
        case 'm': NUM(1, 10000) cfg.streams = (unsigned)v; break;
        case 't': NUM(1, 256) cfg.threads = (unsigned)v; break;
        case 'n': NUM(1, 1e15) cfg.requests = (uint64_t)v; break;
        case 'd': NUM(0.001, 1e7) cfg.duration = v; break;
        case 'r': NUM(0.001, 1e9) cfg.rate = v; break;
        case 'H':
            if (add_header(&cfg, optarg) != 0)
                return 2;
            break;
        case O_TIMEOUT: NUM(0.001, 1e6) cfg.timeout = v; break;
        case O_SPANS: NUM(1, 1000000) cfg.shape.spans_per_request = (unsigned)v; break;
        case O_SPT: NUM(1, 1000000) cfg.shape.spans_per_trace = (unsigned)v; break;
        case O_OPEN: NUM(1, 1000000) open_traces = (unsigned)v; break;
        case O_ATTRS: NUM(0, 10000) cfg.shape.attrs = (unsigned)v; break;
        case O_ABYTES: NUM(0, 1 << 20) cfg.shape.attr_bytes = (unsigned)v; break;
        case O_ERR: NUM(0, 1) cfg.shape.error_rate = v; break;
        case O_CACERT: cfg.cacert = optarg; break;
        case O_INSECURE: cfg.insecure = 1; break;
        case O_SEED: NUM(0, 1e18) cfg.seed = (uint64_t)v; break;
        case O_DUMP: dump_file = optarg; break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
#undef NUM
    cfg.shape.open_traces = open_traces ? open_traces : cfg.shape.spans_per_request;
    cfg.path = cfg.proto == LG_GRPC ? "/opentelemetry.proto.collector.trace.v1.TraceService/Export" : "/v1/traces";
    if (dump_file) {
        if (optind != argc) {
            usage(stderr);
            return 2;
        }
        return dump(&cfg, dump_file);
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    char store[4096];
    if (parse_url(argv[optind], &cfg, store, sizeof store) != 0)
        return 2;
    if (cfg.requests == 0 && cfg.duration == 0) {
        fprintf(stderr, "loadgen: give --requests or --duration (or both)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    static lg_result r; /* large: histogram and per-status counters */
    char err[512];
    double cpu0 = process_cpu_s();
    if (lg_run(&cfg, &r, err, sizeof err) != 0) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 1;
    }
    report(&cfg, &r, process_cpu_s() - cpu0);
    return r.failed ? 3 : 0;
}
