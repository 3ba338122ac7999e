#include "admin.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "metrics.h"

typedef struct admin_handler {
    h2o_handler_t super;
    admin_state *st;
} admin_handler;

/* Not ready while starting, stopping or leaving the cluster, so the load
 * balancer (and, through health checks, the other members) stop sending first. */
static int is_ready(const admin_state *st)
{
    return atomic_load(&st->serving) && !pipeline_draining(st->pl) && pipeline_ready(st->pl);
}

static int on_healthz(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    http_respond(req, 200, "text/plain", H2O_STRLIT("ok\n"));
    return 0;
}

static int on_readyz(h2o_handler_t *self, h2o_req_t *req)
{
    if (is_ready(((admin_handler *)self)->st))
        http_respond(req, 200, "text/plain", H2O_STRLIT("ready\n"));
    else
        http_respond(req, 503, "text/plain", H2O_STRLIT("not ready\n"));
    return 0;
}

static int on_metrics(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    buf out = BUF_INIT;
    if (metrics_render(&out) != 0)
        http_respond(req, 500, "text/plain", H2O_STRLIT("out of memory\n"));
    else
        http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    buf_free(&out);
    return 0;
}

static double now_unix(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int on_status(h2o_handler_t *self, h2o_req_t *req)
{
    const admin_state *st = ((admin_handler *)self)->st;
    if (req->path_normalized.len != 1) {
        http_respond(req, 404, "text/plain", H2O_STRLIT("not found: see / for the admin endpoints\n"));
        return 0;
    }
    const config *c = st->cfg;
    buf out = BUF_INIT;
    buf_printf(&out, "otlp-gateway %s\nconfig: %s\nuptime_seconds: %.0f\nready: %s\n\nlisteners:\n", GATEWAY_VERSION,
               c->source, now_unix() - st->started_unix, is_ready(st) ? "yes" : "no");
    for (size_t i = 0; i < c->n_listeners; i++) {
        const config_listener *l = &c->listeners[i];
        buf_printf(&out, "  %s grpc=%s http=%s tls=%s\n", l->name, l->grpc_addr ? l->grpc_addr : "-",
                   l->http_addr ? l->http_addr : "-", l->tls.cert_file ? "on" : "off");
    }
    pipeline_describe(st->pl, &out);
    buf_puts(&out, "\nendpoints: /healthz /readyz /metrics\n");
    http_respond(req, 200, "text/plain; charset=utf-8", out.data, out.len);
    buf_free(&out);
    return 0;
}

static long resident_bytes(void)
{
    long pages_total, pages_resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    int ok = fscanf(f, "%ld %ld", &pages_total, &pages_resident) == 2;
    fclose(f);
    return ok ? pages_resident * sysconf(_SC_PAGESIZE) : -1;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own fd */
}

/* User plus system CPU time of the whole process, in seconds. */
static double cpu_seconds(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void collect_process(buf *out, void *data)
{
    const admin_state *st = data;
    buf_printf(out,
               "# HELP otlp_gateway_build_info Build information.\n# TYPE otlp_gateway_build_info gauge\n"
               "otlp_gateway_build_info{version=\"%s\"} 1\n"
               "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
               "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n"
               "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
               "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.3f\n"
               "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
               "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n"
               "# HELP process_open_fds Number of open file descriptors.\n"
               "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n"
               "# HELP otlp_gateway_ready Whether the gateway reports ready.\n"
               "# TYPE otlp_gateway_ready gauge\notlp_gateway_ready %d\n",
               GATEWAY_VERSION, st->started_unix, cpu_seconds(), resident_bytes(), open_fds(), is_ready(st));
}

http_site *admin_site_new(admin_state *st)
{
    static const struct {
        const char *path;
        int (*fn)(h2o_handler_t *, h2o_req_t *);
    } routes[] = {{"/healthz", on_healthz}, {"/readyz", on_readyz}, {"/metrics", on_metrics}, {"/", on_status}};
    http_site_settings s = {.name = "admin", .max_body_bytes = 64 * 1024, .idle_timeout_ms = 60000,
                            .header_timeout_ms = 10000};
    http_site *site = http_site_new(&s);
    if (site == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        admin_handler *h = (admin_handler *)http_site_handler(site, routes[i].path, sizeof(*h), routes[i].fn);
        if (h == NULL) {
            http_site_free(site);
            return NULL;
        }
        h->st = st;
    }
    st->started_unix = now_unix();
    metrics_register_collector(collect_process, st);
    return site;
}
