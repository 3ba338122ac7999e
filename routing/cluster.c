/* cluster: membership, health and the ownership ring. See cluster.h.
 *
 * Threads: the resolver thread (DNS membership) and the forwarder's thread
 * (health changes) change the member list under c->mu; every change that
 * alters who is live publishes a new immutable view. Workers take a
 * reference to the current view for one request (cluster_view_get), so a
 * view is freed by whoever drops the last reference. */
#include "cluster.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "ring.h"

#define CLUSTER_ADDR_MAX 96
#define CLUSTER_MAX_MEMBERS 256

typedef struct member {
    char addr[CLUSTER_ADDR_MAX];
    int peer;                  /* forwarder handle */
    forward_peer_state state;
    int seen;                  /* in the latest resolution */
} member;

struct cluster_view {
    atomic_int refs;
    uint64_t epoch;
    size_t n;
    uint64_t *keys;
    int *owners; /* -1: this member; else a forwarder peer handle */
};

struct cluster {
    cluster_config cfg; /* strings borrowed from the config, which outlives the cluster */
    forward *fw;
    pthread_mutex_t mu;
    member *members; /* every member but this one */
    size_t n_members;
    cluster_view *view;
    uint64_t epoch;
    atomic_int draining;
    uint64_t self_key;
    pthread_t resolver;
    int resolver_started;
    pthread_cond_t cv;
    int stopping;
    int dns_failing;   /* log a failing resolution once, and its recovery */
    int self_unlisted; /* log once that the records do not include this member */
    metric_series *m_members, *m_changes, *m_draining;
    cluster_return_fn ret; /* the owner's (the pipeline's) */
    void *ret_data;
};

/* ---- views ---- */

static void view_free(cluster_view *v)
{
    if (v == NULL)
        return;
    free(v->keys);
    free(v->owners);
    free(v);
}

/* The live members as a new view; c->mu held. NULL on allocation failure
 * (the previous view stays). */
static cluster_view *view_build(cluster *c)
{
    cluster_view *v = calloc(1, sizeof(*v));
    size_t cap = c->n_members + 1;
    if (v == NULL || (v->keys = calloc(cap, sizeof(*v->keys))) == NULL ||
        (v->owners = calloc(cap, sizeof(*v->owners))) == NULL) {
        view_free(v);
        return NULL;
    }
    atomic_init(&v->refs, 1);
    if (!atomic_load(&c->draining)) {
        v->keys[v->n] = c->self_key;
        v->owners[v->n++] = -1;
    }
    for (size_t i = 0; i < c->n_members; i++) {
        if (c->members[i].state != FORWARD_PEER_UP)
            continue;
        v->keys[v->n] = ring_member_key(c->members[i].addr);
        v->owners[v->n++] = c->members[i].peer;
    }
    return v;
}

/* Publish the ring as the members now stand; c->mu held. */
static void view_publish(cluster *c)
{
    cluster_view *v = view_build(c);
    if (v == NULL) {
        log_error("cluster: out of memory publishing the ring; keeping the previous one", "epoch=%llu",
                  (unsigned long long)c->epoch);
        return;
    }
    v->epoch = ++c->epoch;
    cluster_view *old = c->view;
    c->view = v;
    metrics_set(c->m_members, (int64_t)v->n);
    metrics_add(c->m_changes, 1);
    log_info("cluster ring", "epoch=%llu members=%zu draining=%d", (unsigned long long)v->epoch, v->n,
             atomic_load(&c->draining));
    cluster_view_put(old);
}

cluster_view *cluster_view_get(cluster *c)
{
    pthread_mutex_lock(&c->mu);
    cluster_view *v = c->view;
    atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&c->mu);
    return v;
}

void cluster_view_put(cluster_view *v)
{
    if (v != NULL && atomic_fetch_sub(&v->refs, 1) == 1)
        view_free(v);
}

int cluster_view_owner(const cluster_view *v, const uint8_t trace_id[16])
{
    /* Nobody live (this member draining, alone): keep it here. */
    return v->n == 0 ? -1 : v->owners[ring_owner(v->keys, v->n, trace_id)];
}

size_t cluster_view_members(const cluster_view *v) { return v->n; }

uint64_t cluster_view_epoch(const cluster_view *v) { return v->epoch; }

/* ---- members ---- */

static member *member_by_peer(cluster *c, int peer)
{
    for (size_t i = 0; i < c->n_members; i++)
        if (c->members[i].peer == peer)
            return &c->members[i];
    return NULL;
}

static const char *state_name(forward_peer_state s)
{
    static const char *const names[] = {"unknown", "up", "down", "draining"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* The forwarder's health report: a member is live while it answers. */
static void on_health(void *data, int peer, forward_peer_state state)
{
    cluster *c = data;
    pthread_mutex_lock(&c->mu);
    member *m = member_by_peer(c, peer);
    if (m != NULL && m->state != state) {
        int was_live = m->state == FORWARD_PEER_UP;
        log_info("cluster member", "peer=%s state=%s was=%s", m->addr, state_name(state), state_name(m->state));
        m->state = state;
        if (was_live != (state == FORWARD_PEER_UP))
            view_publish(c);
    }
    pthread_mutex_unlock(&c->mu);
}

/* Undelivered spans go back to whoever built the cluster. */
static void on_return(void *data, const char *tenant, const char *pipeline, const uint8_t *req, size_t len,
                      size_t spans)
{
    cluster *c = data;
    c->ret(c->ret_data, tenant, pipeline, req, len, spans);
}

/* A resolved address joins (health checks start; it is live once it
 * answers); c->mu held. The advertised address is this member itself. */
static void member_seen(cluster *c, const char *addr)
{
    if (strcmp(addr, c->cfg.advertise) == 0)
        return;
    for (size_t i = 0; i < c->n_members; i++)
        if (strcmp(c->members[i].addr, addr) == 0) {
            c->members[i].seen = 1;
            return;
        }
    if (c->n_members == CLUSTER_MAX_MEMBERS || strlen(addr) >= CLUSTER_ADDR_MAX) {
        log_warn("cluster: member ignored", "peer=%s reason=%s", addr,
                 c->n_members == CLUSTER_MAX_MEMBERS ? "too_many_members" : "address_too_long");
        return;
    }
    member *grown = realloc(c->members, (c->n_members + 1) * sizeof(*grown));
    if (grown == NULL)
        return;
    c->members = grown;
    int peer = forward_peer_add(c->fw, addr);
    if (peer < 0)
        return;
    member *m = &c->members[c->n_members++];
    memset(m, 0, sizeof(*m));
    snprintf(m->addr, sizeof(m->addr), "%s", addr);
    m->peer = peer;
    m->seen = 1;
    log_info("cluster member", "peer=%s state=joining", addr);
}

/* Members missing from the latest resolution leave at once (their queued
 * spans come back through the return callback); c->mu held. */
static void members_sweep(cluster *c)
{
    int changed = 0;
    for (size_t i = 0; i < c->n_members;) {
        member *m = &c->members[i];
        if (m->seen) {
            m->seen = 0;
            i++;
            continue;
        }
        log_info("cluster member", "peer=%s state=gone", m->addr);
        changed |= m->state == FORWARD_PEER_UP;
        forward_peer_remove(c->fw, m->peer);
        c->members[i] = c->members[--c->n_members];
    }
    if (changed)
        view_publish(c);
}

/* ---- DNS ---- */

typedef struct addr_list {
    char (*v)[CLUSTER_ADDR_MAX];
    size_t n, cap;
} addr_list;

static void addr_add(addr_list *l, int family, const void *ip, const char *port)
{
    char host[INET6_ADDRSTRLEN];
    if (inet_ntop(family, ip, host, sizeof(host)) == NULL)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        void *grown = realloc(l->v, cap * sizeof(*l->v));
        if (grown == NULL)
            return;
        l->v = grown;
        l->cap = cap;
    }
    snprintf(l->v[l->n++], CLUSTER_ADDR_MAX, family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* Splits "name:port" (name may be "[v6]"); 0 or -1. */
static int split_host_port(const char *s, char *host, size_t hostcap, const char **port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL)
        return -1;
    const char *h = s;
    size_t len = (size_t)(colon - s);
    if (len >= 2 && h[0] == '[' && h[len - 1] == ']')
        h++, len -= 2;
    if (len == 0 || len >= hostcap)
        return -1;
    memcpy(host, h, len);
    host[len] = '\0';
    *port = colon + 1;
    return 0;
}

/* The system resolver: every A and AAAA record of host. */
static int resolve_system(const char *host, const char *port, addr_list *out, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s", gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET)
            addr_add(out, AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, port);
        else if (ai->ai_family == AF_INET6)
            addr_add(out, AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, port);
    }
    freeaddrinfo(res);
    return 0;
}

/* One query of type (T_A or T_AAAA) to the configured server. An empty
 * answer (NXDOMAIN, NODATA) is no records, not an error. */
static int query_server(res_state rs, const char *host, int type, const char *port, addr_list *out, char *err,
                        size_t errlen)
{
    unsigned char ans[8192];
    int len = res_nquery(rs, host, C_IN, type, ans, sizeof(ans));
    if (len < 0) {
        if (rs->res_h_errno == HOST_NOT_FOUND || rs->res_h_errno == NO_DATA)
            return 0;
        snprintf(err, errlen, "%s", hstrerror(rs->res_h_errno));
        return -1;
    }
    ns_msg msg;
    if (ns_initparse(ans, len, &msg) != 0) {
        snprintf(err, errlen, "unreadable DNS answer");
        return -1;
    }
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0)
            continue;
        if (ns_rr_type(rr) == ns_t_a && ns_rr_rdlen(rr) == 4)
            addr_add(out, AF_INET, ns_rr_rdata(rr), port);
        else if (ns_rr_type(rr) == ns_t_aaaa && ns_rr_rdlen(rr) == 16)
            addr_add(out, AF_INET6, ns_rr_rdata(rr), port);
    }
    return 0;
}

/* dns_server: its A and AAAA answers, asked directly (tests, split-horizon
 * setups where the system resolver is not the one that knows the fleet). */
static int resolve_server(const char *server, const char *host, const char *port, addr_list *out, char *err,
                          size_t errlen)
{
    char ip[INET6_ADDRSTRLEN];
    const char *sport;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (split_host_port(server, ip, sizeof(ip), &sport) != 0 || inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "dns_server must be an IPv4 address and port");
        return -1;
    }
    sa.sin_port = htons((uint16_t)atoi(sport));
    struct __res_state rs;
    memset(&rs, 0, sizeof(rs));
    if (res_ninit(&rs) != 0) {
        snprintf(err, errlen, "cannot initialise the resolver");
        return -1;
    }
    rs.nscount = 1;
    rs.nsaddr_list[0] = sa;
    rs.retry = 2;
    rs.retrans = 1;
    int rc = query_server(&rs, host, T_A, port, out, err, errlen);
    if (rc == 0)
        rc = query_server(&rs, host, T_AAAA, port, out, err, errlen);
    res_nclose(&rs);
    return rc;
}

/* Re-resolve members_dns and apply the difference. A failed resolution
 * keeps the members as they are: a DNS outage must not empty the ring. */
static void resolve_members(cluster *c)
{
    char host[256], err[256] = "";
    const char *port;
    addr_list l = {0};
    int rc = split_host_port(c->cfg.members_dns, host, sizeof(host), &port) != 0 ? -1
             : c->cfg.dns_server != NULL ? resolve_server(c->cfg.dns_server, host, port, &l, err, sizeof(err))
                                         : resolve_system(host, port, &l, err, sizeof(err));
    pthread_mutex_lock(&c->mu);
    if (rc != 0) {
        if (!c->dns_failing)
            log_warn("cluster: members_dns resolution failed; keeping the current members", "name=%s error=%s",
                     c->cfg.members_dns, err);
        c->dns_failing = 1;
    } else {
        if (c->dns_failing)
            log_info("cluster: members_dns resolves again", "name=%s records=%zu", c->cfg.members_dns, l.n);
        c->dns_failing = 0;
        int self_listed = 0;
        for (size_t i = 0; i < l.n; i++) {
            self_listed |= strcmp(l.v[i], c->cfg.advertise) == 0;
            member_seen(c, l.v[i]);
        }
        /* The others build their ring from the same records: until this
         * member is among them, it owns traces nobody sends it. */
        if (!self_listed && !c->self_unlisted)
            log_warn("cluster: this member is not among members_dns's records yet", "name=%s advertise=%s",
                     c->cfg.members_dns, c->cfg.advertise);
        c->self_unlisted = !self_listed;
        members_sweep(c);
    }
    pthread_mutex_unlock(&c->mu);
    free(l.v);
}

static void *resolver_main(void *arg)
{
    cluster *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        pthread_mutex_unlock(&c->mu);
        resolve_members(c);
        pthread_mutex_lock(&c->mu);
        struct timespec until = clock_deadline(c->cfg.dns_interval_ms);
        while (!c->stopping && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- lifecycle ---- */

static void cluster_metrics(cluster *c)
{
    metric_family *f = metrics_family("otlp_gateway_cluster_members", METRIC_GAUGE,
                                      "Live cluster members in this instance's ring, itself included unless draining");
    c->m_members = metrics_series(f, "");
    f = metrics_family("otlp_gateway_cluster_ring_changes_total", METRIC_COUNTER,
                       "Times the set of live members (and so trace ownership) changed");
    c->m_changes = metrics_series(f, "");
    f = metrics_family("otlp_gateway_cluster_draining", METRIC_GAUGE,
                       "1 while this instance is leaving the cluster (owns no traces)");
    c->m_draining = metrics_series(f, "");
}

cluster *cluster_new(const cluster_config *cfg, cluster_return_fn ret, void *data, char *err, size_t errlen)
{
    cluster *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "cluster: out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    c->ret = ret;
    c->ret_data = data;
    c->self_key = ring_member_key(cfg->advertise);
    pthread_mutex_init(&c->mu, NULL);
    clock_cond_init(&c->cv);
    cluster_metrics(c);
    forward_settings fs = cfg->forward;
    fs.self_id = cfg->advertise;
    if ((c->fw = forward_new(&fs, on_return, on_health, c, err, errlen)) == NULL) {
        cluster_free(c);
        return NULL;
    }
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < cfg->n_members; i++)
        member_seen(c, cfg->members[i]);
    view_publish(c);
    pthread_mutex_unlock(&c->mu);
    if (cfg->members_dns != NULL) {
        if (pthread_create(&c->resolver, NULL, resolver_main, c) != 0) {
            snprintf(err, errlen, "cluster: cannot start the resolver thread");
            cluster_free(c);
            return NULL;
        }
        c->resolver_started = 1;
    }
    log_info("cluster", "self=%s members=%zu members_dns=%s", cfg->advertise, cfg->n_members,
             cfg->members_dns ? cfg->members_dns : "-");
    return c;
}

void cluster_free(cluster *c)
{
    if (c == NULL)
        return;
    if (c->resolver_started) {
        pthread_mutex_lock(&c->mu);
        c->stopping = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->resolver, NULL);
    }
    forward_free(c->fw); /* hands back what is left through the return callback */
    cluster_view_put(c->view);
    free(c->members);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

forward *cluster_forward(cluster *c) { return c->fw; }

void cluster_drain(cluster *c)
{
    pthread_mutex_lock(&c->mu);
    if (!atomic_exchange(&c->draining, 1)) {
        metrics_set(c->m_draining, 1);
        view_publish(c);
    }
    pthread_mutex_unlock(&c->mu);
}

int cluster_draining(const cluster *c) { return atomic_load(&c->draining); }

int cluster_peer_of(cluster *c, const char *addr)
{
    int peer = -1;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_members && peer < 0; i++)
        if (strcmp(c->members[i].addr, addr) == 0)
            peer = c->members[i].peer;
    pthread_mutex_unlock(&c->mu);
    return peer;
}

void cluster_describe(cluster *c, buf *out)
{
    pthread_mutex_lock(&c->mu);
    buf_printf(out, "\ncluster:\n  self %s %s epoch=%llu live=%zu\n", c->cfg.advertise,
               atomic_load(&c->draining) ? "draining" : "up", (unsigned long long)c->epoch, c->view->n);
    for (size_t i = 0; i < c->n_members; i++)
        buf_printf(out, "  %s %s\n", c->members[i].addr, state_name(c->members[i].state));
    pthread_mutex_unlock(&c->mu);
}
