/* cluster: N gateways behind one load balancer act as one (docs/cluster.md).
 *
 * Membership: the members are a static list of peer addresses or a DNS
 * name whose A/AAAA records are re-resolved every dns_interval (Cloud Map,
 * ECS service discovery, a Kubernetes headless service). Each member other
 * than this one is health-checked by the forwarder (forward.h); a member is
 * live once it answers, and leaves the ring when it stops answering
 * (health.failures checks in a row) or says it is draining. This member is
 * live until cluster_drain.
 *
 * Ownership: a trace's owner is the live member with the highest
 * rendezvous weight hash(member, trace id) (ring.h), so a membership change
 * moves only the share of the member that left or joined. The ring is
 * published as an immutable, reference-counted view; readers never block
 * writers for longer than a pointer swap.
 *
 * A cluster is built from the `cluster:` section the gateway's schema read
 * (cluster_config); cluster_new starts its resolver and forwarder threads. */
#ifndef GW_CLUSTER_H
#define GW_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "forward.h"

/* The `cluster:` section (docs/configuration.md, "Cluster"). */
typedef struct cluster_config {
    const char *advertise;      /* this member's peer address "host:port" as the others reach it */
    const char *listen;         /* peer listener bind address; default 0.0.0.0:<advertise port> */
    const char *const *members; /* static member addresses ("host:port"), or NULL */
    size_t n_members;
    const char *members_dns;    /* "name:port": every A/AAAA record is a member; or NULL */
    const char *dns_server;     /* "ip:port" to query instead of the system resolver; NULL: system */
    uint32_t dns_interval_ms;   /* default 5000 */
    uint32_t handoff_timeout_ms; /* at stop: longest wait for handed-off traces to leave, default 10000 */
    forward_settings forward;   /* secret, TLS client side, queue, batching, health */
    const char *tls_client_ca;  /* the peer listener's client CA (mutual TLS); NULL without tls */
} cluster_config;

typedef struct cluster cluster;

/* Called (on the forwarder thread) with spans that could not be delivered
 * to their owner; see forward_return_fn. */
typedef forward_return_fn cluster_return_fn;

/* NULL with err. Starts resolving and health-checking. */
cluster *cluster_new(const cluster_config *cfg, cluster_return_fn ret, void *data, char *err, size_t errlen);
void cluster_free(cluster *c);

/* The ring as it is now; hold it for the length of one request. */
typedef struct cluster_view cluster_view;
cluster_view *cluster_view_get(cluster *c);
void cluster_view_put(cluster_view *v);
/* The owner of a trace: -1 for this member, else a forwarder peer handle. */
int cluster_view_owner(const cluster_view *v, const uint8_t trace_id[16]);
/* Number of live members (this one included while not draining). */
size_t cluster_view_members(const cluster_view *v);
/* Incremented on every ring change. */
uint64_t cluster_view_epoch(const cluster_view *v);

forward *cluster_forward(cluster *c);
/* The forwarder handle of the member at addr ("host:port"), -1 if none. */
int cluster_peer_of(cluster *c, const char *addr);

/* Stop owning traces: health checks of this member answer draining, and
 * this member leaves its own ring (every trace is owned elsewhere, if there
 * is anywhere else). */
void cluster_drain(cluster *c);
int cluster_draining(const cluster *c);

/* The status page's "cluster:" section. */
void cluster_describe(cluster *c, buf *out);

#endif
