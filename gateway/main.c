/* otlp-gateway: command line, signals, startup and orderly shutdown. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accept.h"
#include "admin.h"
#include "auth.h"
#include "config.h"
#include "keys_cli.h"
#include "keys_source.h"
#include "log.h"
#include "pipeline.h"
#include "server.h"

static const char usage[] =
    "usage: otlp-gateway [--config FILE]\n"
    "       otlp-gateway --check-config FILE\n"
    "       otlp-gateway --print-default-config\n"
    "       otlp-gateway [--config FILE] keys create|list|revoke ... (see keys --help)\n"
    "       otlp-gateway --version | --help\n"
    "\n"
    "Authenticating OpenTelemetry (OTLP/gRPC and OTLP/HTTP) gateway.\n"
    "Without --config it runs the embedded default: OTLP/gRPC on 127.0.0.1:4317,\n"
    "OTLP/HTTP on 127.0.0.1:4318, admin on 127.0.0.1:8888, data written as\n"
    "OTLP/JSON lines to ./otlp-gateway-data/. SIGTERM or SIGINT stops it gracefully.\n";

/* The config's auth.api_keys map, or NULL. */
static const config_node *api_keys_node(const config *cfg)
{
    return config_get(config_get(cfg->root, "auth"), "api_keys");
}

static int load(const char *path, config **cfg)
{
    char err[512];
    int rc = path ? config_load_file(path, cfg, err, sizeof(err))
                  : config_load_string("<embedded>", config_embedded_default, strlen(config_embedded_default), cfg,
                                       err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "otlp-gateway: config error: %s\n", err);
    return rc;
}

/* Validate the config and every section modules read themselves (backends,
 * pipelines, sampling, auth, tenants, TLS files) as a start would, short of
 * creating anything: no sockets, directories, queues or threads. */
static int check_config(const char *path)
{
    config *cfg;
    char err[512];
    if (load(path, &cfg) != 0)
        return 1;
    auth *au = NULL;
    keys_source *ks = NULL;
    int rc = pipeline_check(&cfg->routing, err, sizeof(err)) != 0 || (au = auth_new(&cfg->auth, err, sizeof(err))) == NULL ||
             keys_source_from_config(api_keys_node(cfg), &ks, err, sizeof(err)) != 0 ||
             server_check(cfg, err, sizeof(err)) != 0;
    keys_source_free(ks);
    if (rc)
        fprintf(stderr, "otlp-gateway: config error: %s\n", err);
    else
        printf("%s: ok\n", path);
    auth_free(au);
    config_free(cfg);
    return rc;
}

static int keys_source_load_cb(void *ks, apikey_store **out, char *err, size_t errlen)
{
    return keys_source_load(ks, out, err, errlen);
}

static int keys_source_edit_cb(void *ks, apikey_edit_fn fn, void *arg, char *err, size_t errlen)
{
    return keys_source_edit(ks, fn, arg, err, errlen);
}

/* `otlp-gateway [--config FILE] keys ...`: the API key CLI. With --config,
 * the keys are where the config's auth.api_keys says (file, url or s3). */
static int keys_command(int argc, char **argv, const char *config_path)
{
    config *cfg = NULL;
    const char *keys_file = NULL;
    keys_source *ks = NULL;
    if (config_path != NULL) {
        char err[512];
        if (load(config_path, &cfg) != 0)
            return 1;
        const config_node *ak = api_keys_node(cfg);
        keys_file = ak ? config_scalar(config_get(ak, "file")) : NULL;
        if (keys_source_from_config(ak, &ks, err, sizeof(err)) != 0) {
            fprintf(stderr, "otlp-gateway: config error: %s\n", err);
            config_free(cfg);
            return 1;
        }
    }
    keys_cli_store remote = {.load = keys_source_load_cb, .edit = keys_source_edit_cb, .ctx = ks};
    if (ks != NULL)
        remote.where = keys_source_where(ks);
    int rc = keys_cli_main(argc, argv, keys_file, ks ? &remote : NULL);
    keys_source_free(ks);
    config_free(cfg);
    return rc;
}

/* Waits for a stop signal; SIGHUP reloads API keys, refetches OIDC keys and
 * reloads TLS certificates. */
static void wait_for_stop(const sigset_t *set, auth *au, server *srv)
{
    /* Wake every second to notice an edited API keys file without a SIGHUP. */
    const struct timespec tick = {.tv_sec = 1};
    for (;;) {
        int sig = sigtimedwait(set, NULL, &tick);
        if (sig < 0) {
            auth_reload_if_changed(au);
            continue;
        }
        if (sig == SIGHUP) {
            log_info("SIGHUP received", "action=reload");
            auth_reload(au);
            server_reload_tls(srv);
            continue;
        }
        log_info("stopping", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        return;
    }
}

/* A member stopping (SIGTERM, scale-in, a rolling deploy) first leaves the
 * ring while it still serves: /readyz and its peer health answer draining,
 * new spans of sampled traces go to their new owners, and the workers hand
 * over the traces they hold. It waits long enough for every peer's health
 * check to have seen it draining (two intervals, plus a forward flush) so
 * what they had queued for it still arrives and is passed on. */
static void leave_cluster(const config *cfg, pipeline *pl)
{
    if (cfg->cluster == NULL)
        return;
    pipeline_drain(pl);
    const forward_settings *f = &cfg->cluster->forward;
    uint64_t ms = 2 * (uint64_t)f->health_interval_ms + 2 * (uint64_t)f->flush_ms;
    log_info("cluster: leaving", "wait_ms=%llu", (unsigned long long)ms);
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int run(const char *path)
{
    config *cfg;
    if (load(path, &cfg) != 0)
        return 1;
    log_set_level(cfg->log_level);
    accept_raise_fd_limit(); /* before anything opens descriptors */
    /* Block the stop and reload signals before any thread starts (the
     * pipeline's exporters start theirs), so that only wait_for_stop sees
     * them: a thread that had them unblocked would take a SIGHUP or SIGTERM
     * arriving while the main thread is busy, and its default action ends
     * the process at once. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    pipeline *pl = pipeline_new(&cfg->routing, server_worker_count(cfg), err, sizeof(err));
    auth *au = pl ? auth_new(&cfg->auth, err, sizeof(err)) : NULL;
    keys_source *ks = NULL;
    if (pl == NULL || au == NULL || keys_source_from_config(api_keys_node(cfg), &ks, err, sizeof(err)) != 0) {
        char q[600];
        log_error("cannot start", "error=%s", log_quote(q, sizeof(q), err));
        auth_free(au);
        pipeline_free(pl);
        config_free(cfg);
        return 1;
    }
    admin_state admin = {.cfg = cfg, .pl = pl};
    server *srv = server_new(cfg, pl, au, &admin, err, sizeof(err));
    /* A shared key source starts polling before the listeners open; until its
     * first load, API-key tokens get a retryable 503 (auth_keys_replace). */
    if (srv == NULL || auth_start(au, http_get_curl, err, sizeof(err)) != 0 ||
        (ks != NULL && keys_source_start(ks, au, err, sizeof(err)) != 0) || server_start(srv, err, sizeof(err)) != 0) {
        char q[600];
        log_error("cannot start", "error=%s", log_quote(q, sizeof(q), err));
        keys_source_free(ks);
        server_free(srv);
        auth_free(au);
        pipeline_free(pl);
        config_free(cfg);
        return 1;
    }
    log_info("started", "version=%s config=%s admin=%s", GATEWAY_VERSION, cfg->source,
             cfg->admin_addr ? cfg->admin_addr : "off");
    wait_for_stop(&set, au, srv);
    leave_cluster(cfg, pl);
    server_stop(srv);
    server_wait(srv);
    if (cfg->cluster != NULL && pipeline_handoff(pl, cfg->cluster->handoff_timeout_ms) != 0)
        log_warn("cluster: handoff timed out; deciding what is left here", "timeout_ms=%u",
                 (unsigned)cfg->cluster->handoff_timeout_ms);
    pipeline_flush(pl);
    server_free(srv);
    keys_source_free(ks); /* before auth: the poller hands key sets to it */
    auth_free(au);
    pipeline_free(pl);
    config_free(cfg);
    log_info("stopped", "%s", "");
    return 0;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "keys") == 0)
            return keys_command(argc - i, argv + i, config_path);
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("otlp-gateway %s\n", GATEWAY_VERSION);
            return 0;
        }
        if (strcmp(a, "--print-default-config") == 0) {
            fputs(config_embedded_default, stdout);
            return 0;
        }
        if ((strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0 || strcmp(a, "--check-config") == 0) && i + 1 < argc) {
            if (strcmp(a, "--check-config") == 0) {
                return check_config(argv[i + 1]);
            }
            config_path = argv[++i];
            continue;
        }
        fprintf(stderr, "otlp-gateway: unknown or incomplete argument: %s\n\n%s", a, usage);
        return 2;
    }
    return run(config_path);
}
