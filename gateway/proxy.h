/* proxy: the PROXY protocol (v1 text and v2 binary, as HAProxy defines it
 * and as an AWS NLB sends v2), read before TLS/HTTP on listeners that enable
 * `proxy_protocol: true`, so address rules see the agent, not the balancer.
 *
 * proxy_parse is pure (and fuzzed); proxy_accept drives it on a freshly
 * accepted h2o socket: it reads until a complete header arrives (bounded by
 * a timeout and by the protocol's maximum header size), replaces the socket's
 * peer address with the source address from the header
 * (h2o_socket_setpeername), leaves any bytes after the header in
 * sock->input, and calls `done`. A malformed, missing or timed-out header
 * closes the connection. A v2 LOCAL command (health checks from the balancer
 * itself), a v2 UNSPEC or UNIX family, or v1 UNKNOWN keeps the real peer
 * address. In optional mode (the admin listener: an NLB sends the header on
 * its health checks too, a scraper does not) bytes that cannot start a
 * header are left untouched for HTTP instead. */
#ifndef GW_PROXY_H
#define GW_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <h2o.h>

typedef enum { PROXY_NEED_MORE = 0, PROXY_OK = 1, PROXY_INVALID = -1 } proxy_status;

/* What a listener expects before TLS/HTTP. */
typedef enum { PROXY_NONE = 0, PROXY_REQUIRED, PROXY_OPTIONAL } proxy_mode;

typedef struct proxy_header {
    size_t consumed;               /* header length in bytes */
    int version;                   /* 1 or 2 */
    int local;                     /* v2 LOCAL, or v1 UNKNOWN: no address to use */
    struct sockaddr_storage src;   /* valid when !local */
    socklen_t src_len;
    struct sockaddr_storage dst;
    socklen_t dst_len;
} proxy_header;

/* The longest header we accept. The protocol allows 16 + 65535 bytes for v2,
 * but addresses take at most 216 bytes and an NLB's TLVs (VPC endpoint id)
 * are tiny, so anything longer is refused rather than buffered. v1 lines are
 * at most 107 bytes by definition. */
#define PROXY_MAX_HEADER 4096

/* Parse the start of a connection's bytes. NEED_MORE while a valid prefix is
 * incomplete; INVALID as soon as the bytes cannot be a PROXY header. */
proxy_status proxy_parse(const uint8_t *p, size_t len, proxy_header *out);

/* The connections of one listener (one event loop) still waiting for their
 * header. h2o 2.2.5 timeouts have one duration per h2o_timeout_t, so the
 * timeout lives here, in the listener; the list lets the listener close the
 * waiting sockets when it stops (they are not connections of its own yet). */
typedef struct proxy_waiters {
    h2o_loop_t *loop;
    h2o_timeout_t timeout;
    h2o_linklist_t pending;
} proxy_waiters;

void proxy_waiters_init(proxy_waiters *w, h2o_loop_t *loop, uint32_t timeout_ms);
/* Close every socket still waiting for its header (listener shutdown). */
void proxy_waiters_close(proxy_waiters *w);
/* proxy_waiters_close, then release the timeout. */
void proxy_waiters_dispose(proxy_waiters *w);

/* Read and apply the header on a freshly accepted `sock`, within w's
 * timeout, then call done(sock, data) with reading stopped; sock->data is
 * the caller's to set again. On failure close the socket (done is not
 * called). With mode PROXY_OPTIONAL, bytes that are no header are not a
 * failure: done gets them unconsumed. */
void proxy_accept(proxy_waiters *w, h2o_socket_t *sock, proxy_mode mode, void (*done)(h2o_socket_t *sock, void *data),
                  void *data);

#endif
