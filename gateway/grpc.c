/* grpc: OTLP/gRPC listener; see grpc.h for why this is nghttp2 on h2o sockets.
 *
 * Ownership: the listener owns its connections (a linked list), a connection
 * owns its nghttp2 session and its streams (also a list, because
 * nghttp2_session_del does not report the streams it drops), a stream owns
 * its request body, authorization copy and response bytes.
 *
 * Control flow: every entry point from the event loop (read, write done,
 * timer) ends in grpc_conn_pump(), which is the only place that moves bytes
 * out of nghttp2, starts socket writes and closes connections. nghttp2
 * callbacks only change state, so a connection is never freed underneath the
 * session that is calling back.
 *
 * Decisions worth knowing:
 * - grpc-timeout is ignored: ingest_export runs synchronously and finishes
 *   long before any sane client deadline.
 * - A setting of 0 means the built-in default (see GRPC_DEFAULT_*), so a
 *   forgotten config value never disables a protection.
 * - Reading pauses while a socket write is in flight. h2o completes writes
 *   that fit the kernel buffer within the same loop iteration, so the cost is
 *   nil for healthy clients, while a client that does not read its responses
 *   stops being read from instead of growing nghttp2's output queue.
 * - The process must ignore SIGPIPE (h2o writes with writev, so a peer that
 *   hung up would otherwise kill the process). */
#include "grpc.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>
#include <openssl/evp.h>

#include "buf.h"
#include "clock.h"
#include "forward.h"
#include "grpc_frame.h"
#include "log.h"
#include "proxy.h"
#include "tls.h"

#define GRPC_DEFAULT_MAX_MESSAGE (4u << 20) /* gRPC's own default max receive size */
#define GRPC_DEFAULT_STREAMS 100u
#define GRPC_DEFAULT_HEADER_TIMEOUT_MS 10000u
#define GRPC_DEFAULT_IDLE_TIMEOUT_MS 300000u
#define GRPC_STREAM_WINDOW (1u << 20)     /* per-stream receive window */
#define GRPC_CONN_WINDOW (16u << 20)      /* connection receive window */
#define GRPC_MAX_HEADER_LIST 65536u       /* bytes of request headers we accept per stream */
#define GRPC_WRITE_CHUNK 65536u           /* bytes gathered from nghttp2 per socket write */
/* Bytes of input one connection may process per pass of the event loop. A
 * connection with more waiting (h2o reads a socket dry) goes on in the next
 * pass (grpc_listener_pass), after the other connections' turns: without
 * the budget, small requests on one connection waited for every large one
 * read on the others (bench/fairness.sh). Smaller budgets were no fairer
 * there but cost throughput: 128 KiB took 20 % more CPU per span on the
 * export path (more passes, reads and wake-ups), 512 KiB nothing measurable. */
#define GRPC_READ_BUDGET (512u << 10)
/* A connection's input buffer starts this large (see grpc_input_use), or
 * GRPC_INPUT_LARGE after a read that outgrew it. */
#define GRPC_INPUT_BUFFER (256u << 10)
#define GRPC_INPUT_LARGE (8192u << 10)
#define GRPC_INPUT_SMALL_AGAIN 64 /* turns in a row that fit the small buffer before it is used again */
#define GRPC_PREFIX_LEN GRPC_FRAME_PREFIX /* compressed flag + 4-byte big-endian length */
#define GRPC_MAX_METHOD_TOKEN 16u         /* longest HTTP/1 method we bother to recognise */

static const char grpc_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define GRPC_PREFACE_LEN (sizeof(grpc_preface) - 1)

static const char grpc_http1_reply[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain\r\n"
    "Connection: close\r\n"
    "Content-Length: 71\r\n"
    "\r\n"
    "This port speaks OTLP/gRPC (HTTP/2); use the OTLP/HTTP port for HTTP/1.\n";

typedef enum {
    GRPC_CONN_HANDSHAKE, /* TLS handshake running */
    GRPC_CONN_PREFACE,   /* waiting for the HTTP/2 client preface */
    GRPC_CONN_H2,        /* nghttp2 session running */
    GRPC_CONN_CLOSING    /* last bytes (HTTP/1 reply) being written, then close */
} grpc_conn_state;

/* What the connection timer currently measures. */
typedef enum { GRPC_TIMER_NONE, GRPC_TIMER_HEADER, GRPC_TIMER_IDLE, GRPC_TIMER_WRITE } grpc_timer_kind;

typedef enum { GRPC_ENC_IDENTITY, GRPC_ENC_GZIP, GRPC_ENC_OTHER } grpc_encoding;

struct grpc_listener {
    h2o_evloop_t *loop;
    conn_acceptor acceptor; /* the listening socket; stopped at shutdown */
    grpc_settings settings;
    char *name;
    char *peer_secret; /* settings.peer_secret's copy */
    ingest_ctx *ictx;
    nghttp2_session_callbacks *callbacks;
    h2o_timeout_t header_timeout;
    h2o_timeout_t idle_timeout;
    proxy_waiters proxy; /* connections still sending their PROXY header */
    h2o_linklist_t conns;
    h2o_linklist_t pending; /* connections with input left over the read budget */
    size_t nconns;
    int shutting_down;
};

typedef struct grpc_conn {
    grpc_listener *l;
    h2o_socket_t *sock;
    nghttp2_session *session; /* NULL until the preface arrived */
    h2o_linklist_t link;      /* in l->conns */
    h2o_linklist_t pending;   /* in l->pending while input is left over */
    h2o_linklist_t streams;   /* grpc_stream.link */
    size_t nstreams;
    grpc_conn_state state;
    h2o_timeout_entry_t timer;
    grpc_timer_kind timer_kind;
    buf out;     /* bytes handed to h2o_socket_write; stable until on_write */
    int writing; /* a socket write is in flight */
    int final_goaway;
    int tls;
    unsigned small_reads; /* turns in a row whose input fit GRPC_INPUT_BUFFER (grpc_input_use) */
    struct sockaddr_storage peer;
    socklen_t peer_len;
} grpc_conn;

typedef struct grpc_stream {
    grpc_conn *conn;
    int32_t id;
    h2o_linklist_t link;      /* in conn->streams */
    h2o_timeout_entry_t timer; /* request deadline, then response deadline */
    uint64_t start_ns;
    size_t header_bytes;
    int method_post;
    int content_type_ok;
    int signal; /* otlp_signal, -1 when the path is unknown */
    grpc_encoding encoding;
    char *authorization; /* copy of the header value (NUL-terminated, may hold NULs) */
    int authorizations;  /* how many authorization headers came: more than one is refused */
    size_t authorization_len;
    int health;      /* peer mode: FORWARD_HEALTH_PATH */
    char *tenant;    /* peer mode: FORWARD_HDR_TENANT, FORWARD_HDR_PIPELINE, FORWARD_HDR_PEER */
    char *pipeline;
    char *peer_id;
    buf body;      /* length-prefixed request messages as received */
    int recv_done; /* END_STREAM received */
    int answered;  /* a response was submitted; ignore further input */
    buf resp;      /* length-prefixed response message */
    size_t resp_off;
} grpc_stream;

static void grpc_conn_pump(grpc_conn *c);
static void grpc_conn_on_read(h2o_socket_t *sock, const char *err);

/* ---- small helpers ---------------------------------------------------- */

static int grpc_token_eq(const uint8_t *p, size_t n, const char *lit)
{
    size_t ln = strlen(lit);
    return n == ln && memcmp(p, lit, n) == 0;
}

/* gRPC content types are application/grpc optionally followed by +codec or
 * ;params; "application/grpcfoo" is something else. */
static int grpc_content_type_ok(const uint8_t *v, size_t n)
{
    static const char base[] = "application/grpc";
    size_t bl = sizeof(base) - 1;
    if (n < bl || strncasecmp((const char *)v, base, bl) != 0)
        return 0;
    return n == bl || v[bl] == '+' || v[bl] == ';';
}

/* grpc-message is percent-encoded: everything outside printable ASCII, and
 * '%' itself. */
static size_t grpc_percent_encode(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *in && o + 4 <= outlen; in++) {
        unsigned char ch = (unsigned char)*in;
        if (ch < 0x20 || ch > 0x7e || ch == '%') {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return o;
}

static size_t grpc_put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t grpc_put_bytes_field(uint8_t *p, unsigned field, const void *data, size_t len)
{
    size_t n = grpc_put_varint(p, (uint64_t)field << 3 | 2);
    n += grpc_put_varint(p + n, len);
    memcpy(p + n, data, len);
    return n + len;
}

/* grpc-status-details-bin carrying google.rpc.Status{code, message,
 * details: [Any(google.rpc.RetryInfo{retry_delay: {seconds}})]}: the OTLP
 * spec's way to tell a gRPC client how long to back off. Encoded by hand
 * because it is four tiny messages. Returns the base64 length (unpadded, as
 * gRPC binary headers are sent), 0 when it does not fit. */
static size_t grpc_retry_details(int code, const char *msg, uint32_t seconds, char *out, size_t outlen)
{
    static const char type_url[] = "type.googleapis.com/google.rpc.RetryInfo";
    uint8_t dur[16], retry[24], any[96], st[512];
    size_t dn = grpc_put_varint(dur, 1 << 3);
    dn += grpc_put_varint(dur + dn, seconds);
    size_t rn = grpc_put_bytes_field(retry, 1, dur, dn);
    size_t an = grpc_put_bytes_field(any, 1, type_url, sizeof(type_url) - 1);
    an += grpc_put_bytes_field(any + an, 2, retry, rn);
    size_t mlen = strnlen(msg, 300);
    size_t sn = grpc_put_varint(st, 1 << 3);
    sn += grpc_put_varint(st + sn, (uint64_t)code);
    if (mlen)
        sn += grpc_put_bytes_field(st + sn, 2, msg, mlen);
    sn += grpc_put_bytes_field(st + sn, 3, any, an);
    if (outlen < 4 * ((sn + 2) / 3) + 1)
        return 0;
    int n = EVP_EncodeBlock((unsigned char *)out, st, (int)sn);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    return (size_t)n;
}

#define GRPC_NV(name, value, valuelen)                                                           \
    {                                                                                            \
        (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, (valuelen), NGHTTP2_NV_FLAG_NONE \
    }

/* ---- streams ---------------------------------------------------------- */

static void grpc_stream_free(grpc_stream *s)
{
    h2o_timeout_unlink(&s->timer);
    h2o_linklist_unlink(&s->link);
    s->conn->nstreams--;
    free(s->authorization);
    free(s->tenant);
    free(s->pipeline);
    free(s->peer_id);
    buf_free(&s->body);
    buf_free(&s->resp);
    free(s);
}

/* After the response is submitted the stream only needs the client to take
 * it; bound that by the idle timeout so a peer that never opens its flow
 * control window cannot pin the stream. */
static void grpc_stream_answered(grpc_stream *s)
{
    grpc_conn *c = s->conn;
    s->answered = 1;
    buf_free(&s->body);
    h2o_timeout_unlink(&s->timer);
    h2o_timeout_link(c->l->loop, &c->l->idle_timeout, &s->timer);
}

/* Trailers-only response: HEADERS with END_STREAM carrying grpc-status. */
static void grpc_stream_reply_status(grpc_stream *s, int code, const char *msg, uint32_t retry_after_s)
{
    char status[12], emsg[3 * 256 + 4], details[1024];
    int slen = snprintf(status, sizeof(status), "%d", code);
    nghttp2_nv nva[6] = {
        GRPC_NV(":status", "200", 3),
        GRPC_NV("content-type", "application/grpc", 16),
        GRPC_NV("grpc-accept-encoding", "identity,gzip", 13),
        GRPC_NV("grpc-status", status, (size_t)slen),
    };
    size_t n = 4;
    if (msg && *msg) {
        size_t elen = grpc_percent_encode(msg, emsg, sizeof(emsg));
        nva[n++] = (nghttp2_nv)GRPC_NV("grpc-message", emsg, elen);
    }
    if (retry_after_s > 0 && (code == GRPC_RESOURCE_EXHAUSTED || code == GRPC_UNAVAILABLE)) {
        size_t dlen = grpc_retry_details(code, msg ? msg : "", retry_after_s, details, sizeof(details));
        if (dlen > 0)
            nva[n++] = (nghttp2_nv)GRPC_NV("grpc-status-details-bin", details, dlen);
    }
    if (nghttp2_submit_response(s->conn->session, s->id, nva, n, NULL) != 0)
        nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    grpc_stream_answered(s);
}

/* Refusal metrics need a signal even when the path named none; those are
 * counted under traces (the most common signal) rather than dropped. */
static otlp_signal grpc_stream_metric_signal(const grpc_stream *s)
{
    return s->signal < 0 ? OTLP_TRACES : (otlp_signal)s->signal;
}

/* A refusal that never reached ingest_export: count it, then answer. */
static void grpc_stream_refuse(grpc_stream *s, req_status st, int code, const char *msg)
{
    ingest_count_refused(REQ_GRPC, grpc_stream_metric_signal(s), st, s->start_ns);
    grpc_stream_reply_status(s, code, msg, 0);
}

/* Plain HTTP answer for requests that are not gRPC at all. */
static void grpc_stream_refuse_http(grpc_stream *s, req_status st, const char *status)
{
    nghttp2_nv nva[] = {
        GRPC_NV(":status", status, 3),
        GRPC_NV("allow", "POST", 4),
        GRPC_NV("accept", "application/grpc", 16),
    };
    ingest_count_refused(REQ_GRPC, grpc_stream_metric_signal(s), st, s->start_ns);
    if (nghttp2_submit_response(s->conn->session, s->id, nva, sizeof(nva) / sizeof(nva[0]), NULL) != 0)
        nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    grpc_stream_answered(s);
}

static ssize_t grpc_stream_read_resp(nghttp2_session *session, int32_t stream_id, uint8_t *dst, size_t length,
                                     uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    (void)user_data;
    grpc_stream *s = source->ptr;
    size_t left = s->resp.len - s->resp_off;
    size_t n = left < length ? left : length;
    memcpy(dst, s->resp.data + s->resp_off, n);
    s->resp_off += n;
    if (s->resp_off == s->resp.len) {
        /* End DATA without END_STREAM; the trailers end the stream. */
        static const nghttp2_nv trailers[] = {GRPC_NV("grpc-status", "0", 1)};
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(session, stream_id, trailers, 1) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

/* OK with the response message: the Export*ServiceResponse for res, or an
 * empty message (a peer health check) when res is NULL. */
static void grpc_stream_reply_ok(grpc_stream *s, const ingest_result *res)
{
    static const nghttp2_nv nva[] = {
        GRPC_NV(":status", "200", 3),
        GRPC_NV("content-type", "application/grpc", 16),
        GRPC_NV("grpc-accept-encoding", "identity,gzip", 13),
    };
    uint8_t prefix[GRPC_PREFIX_LEN] = {0};
    buf_clear(&s->resp);
    if (buf_append(&s->resp, prefix, sizeof(prefix)) != 0 ||
        (res != NULL && ingest_response_body((otlp_signal)s->signal, OTLP_PROTOBUF, res, &s->resp) != 0)) {
        grpc_stream_reply_status(s, GRPC_INTERNAL, "out of memory", 0);
        return;
    }
    grpc_frame_put_prefix((uint8_t *)s->resp.data, 0, (uint32_t)(s->resp.len - GRPC_PREFIX_LEN));
    s->resp_off = 0;
    nghttp2_data_provider prd = {.source = {.ptr = s}, .read_callback = grpc_stream_read_resp};
    if (nghttp2_submit_response(s->conn->session, s->id, nva, sizeof(nva) / sizeof(nva[0]), &prd) != 0)
        nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    grpc_stream_answered(s);
}

/* Peer mode: the caller must be a member (secret) and, for an export, name
 * the tenant and pipeline. */
static void grpc_stream_check_peer(grpc_stream *s)
{
    grpc_listener *l = s->conn->l;
    ingest_result res;
    if (ingest_peer_authorize(l->peer_secret, s->authorization, s->authorization_len, &res) != 0) {
        log_info("cluster peer refused", "listener=%s peer=%s reason=\"%s\"", l->name,
                 s->peer_id != NULL ? s->peer_id : "-", res.message);
        grpc_stream_reply_status(s, ingest_grpc_status(res.status), res.message, 0);
    } else if (!s->health && (s->tenant == NULL || s->pipeline == NULL)) {
        grpc_stream_refuse(s, REQ_INVALID, GRPC_INVALID_ARGUMENT,
                           "missing " FORWARD_HDR_TENANT " or " FORWARD_HDR_PIPELINE);
    }
}

/* Request headers are complete: refuse anything that is not a call we serve
 * before any body is buffered. */
static void grpc_stream_check_headers(grpc_stream *s)
{
    if (!s->method_post)
        grpc_stream_refuse_http(s, REQ_INVALID, "405");
    else if (!s->content_type_ok)
        grpc_stream_refuse_http(s, REQ_UNSUPPORTED_MEDIA, "415");
    else if (s->signal < 0 && !s->health)
        grpc_stream_refuse(s, REQ_NOT_FOUND, GRPC_UNIMPLEMENTED, "unknown method");
    else if (s->encoding == GRPC_ENC_OTHER)
        grpc_stream_refuse(s, REQ_UNSUPPORTED_MEDIA, GRPC_UNIMPLEMENTED,
                           "unsupported grpc-encoding; supported: identity, gzip");
    else if (s->authorizations > 1) /* ambiguous: refused as the HTTP listener does */
        grpc_stream_refuse(s, REQ_UNAUTHENTICATED, GRPC_UNAUTHENTICATED, "more than one authorization header");
    else if (s->conn->l->settings.peer)
        grpc_stream_check_peer(s);
}


/* END_STREAM (recv_done is set): the body must hold exactly one length-prefixed message. */
static void grpc_stream_finish(grpc_stream *s)
{
    grpc_conn *c = s->conn;
    grpc_listener *l = c->l;
    if (s->answered)
        return;
    const uint8_t *b = (const uint8_t *)s->body.data;
    size_t len = s->body.len;
    if (len < GRPC_PREFIX_LEN) {
        grpc_stream_refuse(s, REQ_INVALID, GRPC_INVALID_ARGUMENT,
                           len == 0 ? "request has no message" : "truncated gRPC message prefix");
        return;
    }
    uint32_t mlen = grpc_frame_len(b);
    if (b[0] > 1) {
        grpc_stream_refuse(s, REQ_INVALID, GRPC_INVALID_ARGUMENT, "invalid gRPC compressed flag");
        return;
    }
    if ((size_t)mlen > len - GRPC_PREFIX_LEN) {
        grpc_stream_refuse(s, REQ_INVALID, GRPC_INVALID_ARGUMENT, "truncated gRPC message");
        return;
    }
    if ((size_t)mlen < len - GRPC_PREFIX_LEN) {
        grpc_stream_refuse(s, REQ_INVALID, GRPC_INVALID_ARGUMENT, "unary call carries more than one message");
        return;
    }
    if (b[0] == 1 && s->encoding != GRPC_ENC_GZIP) {
        grpc_stream_refuse(s, REQ_INVALID, GRPC_INVALID_ARGUMENT,
                           "compressed message without grpc-encoding gzip");
        return;
    }
    char subject[TLS_SUBJECT_MAX];
    req_origin origin = {
        .listener = l->name,
        .transport = REQ_GRPC,
        .peer = c->peer,
        .peer_len = c->peer_len,
        .tls = c->tls,
        .authorization = s->authorization,
        .authorization_len = s->authorization_len,
        .start_ns = s->start_ns,
        .client_cert_subject = tls_peer_subject(tls_socket_ssl(c->sock), subject, sizeof(subject)),
    };
    ingest_result res;
    memset(&res, 0, sizeof(res));
    if (s->health) {
        /* A draining member tells its peers to stop sending it traces. */
        if (ingest_draining(l->ictx))
            grpc_stream_reply_status(s, GRPC_UNAVAILABLE, FORWARD_DRAINING, 0);
        else
            grpc_stream_reply_ok(s, NULL);
        return;
    }
    if (l->settings.peer)
        ingest_forwarded(l->ictx, &l->settings.limits, &origin, s->tenant, s->pipeline, s->peer_id,
                         b + GRPC_PREFIX_LEN, mlen, b[0] == 1, &res);
    else
        ingest_export(l->ictx, &l->settings.limits, (otlp_signal)s->signal, OTLP_PROTOBUF, &origin,
                      b + GRPC_PREFIX_LEN, mlen, b[0] == 1, &res);
    res.message[sizeof(res.message) - 1] = '\0';
    if (res.status == REQ_OK)
        grpc_stream_reply_ok(s, &res);
    else
        grpc_stream_reply_status(s, ingest_grpc_status(res.status), res.message, res.retry_after_s);
}

/* The request (or, once answered, the response) did not complete in time.
 * A lone stream takes its connection with it: the client is stalled, and
 * keeping the socket open is exactly the resource it should not hold. */
static void grpc_stream_on_timeout(h2o_timeout_entry_t *entry)
{
    grpc_stream *s = H2O_STRUCT_FROM_MEMBER(grpc_stream, timer, entry);
    grpc_conn *c = s->conn;
    log_debug("grpc stream timeout", "listener=%s stream=%d answered=%d", c->l->name, (int)s->id, s->answered);
    if (!s->answered)
        ingest_count_refused(REQ_GRPC, grpc_stream_metric_signal(s), REQ_INVALID,
                             s->start_ns);
    s->answered = 1;
    nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    if (c->nstreams == 1)
        nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
    grpc_conn_pump(c);
}

/* ---- nghttp2 callbacks ------------------------------------------------- */

static int grpc_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    grpc_conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    grpc_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->conn = c;
    s->id = frame->hd.stream_id;
    s->signal = -1;
    s->start_ns = clock_now_ns();
    s->timer.cb = grpc_stream_on_timeout;
    h2o_linklist_insert(&c->streams, &s->link);
    c->nstreams++;
    /* A stream is open: the connection is not idle. The pump re-arms the
     * idle timer from zero when the last stream is done; left running, it
     * would close a busy connection whose requests each come and go within
     * one read (a GOAWAY every idle_timeout, refusing a client's next
     * stream). */
    if (c->timer_kind == GRPC_TIMER_IDLE) {
        h2o_timeout_unlink(&c->timer);
        c->timer_kind = GRPC_TIMER_NONE;
    }
    h2o_timeout_link(c->l->loop, &c->l->header_timeout, &s->timer);
    nghttp2_session_set_stream_user_data(session, s->id, s);
    return 0;
}

/* Replace *dst with a NUL-terminated copy of a header value (*len gets its
 * length when len is not NULL); an nghttp2 callback result. */
static int grpc_copy_header(char **dst, size_t *len, const uint8_t *value, size_t valuelen)
{
    char *copy = malloc(valuelen + 1);
    if (!copy)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    memcpy(copy, value, valuelen);
    copy[valuelen] = '\0';
    free(*dst);
    *dst = copy;
    if (len)
        *len = valuelen;
    return 0;
}

static int grpc_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                          size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* client trailers carry nothing we need */
    grpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s)
        return 0;
    int peer = s->conn->l->settings.peer;
    /* nghttp2 bounds each field, not the list; bound what one stream may send. */
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > GRPC_MAX_HEADER_LIST)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (grpc_token_eq(name, namelen, ":method")) {
        s->method_post = grpc_token_eq(value, valuelen, "POST");
    } else if (grpc_token_eq(name, namelen, ":path")) {
        if (!peer) {
            s->signal = ingest_signal_from_grpc_path((const char *)value, valuelen);
        } else {
            /* A peer listener serves the cluster's two calls and nothing else. */
            s->signal = grpc_token_eq(value, valuelen, FORWARD_EXPORT_PATH) ? OTLP_TRACES : -1;
            s->health = grpc_token_eq(value, valuelen, FORWARD_HEALTH_PATH);
        }
    } else if (grpc_token_eq(name, namelen, "content-type")) {
        s->content_type_ok = grpc_content_type_ok(value, valuelen);
    } else if (grpc_token_eq(name, namelen, "grpc-encoding")) {
        if (grpc_token_eq(value, valuelen, "identity"))
            s->encoding = GRPC_ENC_IDENTITY;
        else if (grpc_token_eq(value, valuelen, "gzip"))
            s->encoding = GRPC_ENC_GZIP;
        else
            s->encoding = GRPC_ENC_OTHER;
    } else if (grpc_token_eq(name, namelen, "authorization")) {
        s->authorizations++;
        return grpc_copy_header(&s->authorization, &s->authorization_len, value, valuelen);
    } else if (!peer) {
        return 0; /* a tenant is only taken from an authenticated peer */
    } else if (grpc_token_eq(name, namelen, FORWARD_HDR_TENANT)) {
        return grpc_copy_header(&s->tenant, NULL, value, valuelen);
    } else if (grpc_token_eq(name, namelen, FORWARD_HDR_PIPELINE)) {
        return grpc_copy_header(&s->pipeline, NULL, value, valuelen);
    } else if (grpc_token_eq(name, namelen, FORWARD_HDR_PEER)) {
        return grpc_copy_header(&s->peer_id, NULL, value, valuelen);
    }
    return 0;
}

static int grpc_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                              size_t len, void *user_data)
{
    (void)flags;
    grpc_conn *c = user_data;
    grpc_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!s || s->answered)
        return 0; /* nghttp2 still credits the flow-control window */
    size_t max = c->l->settings.limits.max_request_bytes;
    int too_large = s->body.len + len > max + GRPC_PREFIX_LEN;
    if (!too_large && s->body.len < GRPC_PREFIX_LEN && s->body.len + len >= GRPC_PREFIX_LEN) {
        /* Refuse as soon as the prefix announces an oversized message. */
        uint8_t prefix[GRPC_PREFIX_LEN];
        if (s->body.len > 0)
            memcpy(prefix, s->body.data, s->body.len);
        memcpy(prefix + s->body.len, data, GRPC_PREFIX_LEN - s->body.len);
        size_t announced = grpc_frame_len(prefix);
        too_large = announced > max;
        /* Room for the message at once, rather than doubling up to it with
         * a copy each time; no more than the stream's window, which is all
         * a client can send before it is granted more, so that announcing
         * a large message without sending it does not take memory. */
        size_t room = announced < GRPC_STREAM_WINDOW ? announced : GRPC_STREAM_WINDOW;
        if (!too_large) /* failing, the appends below grow it as before */
            (void)buf_reserve(&s->body, GRPC_PREFIX_LEN + room - s->body.len);
    }
    if (too_large) {
        grpc_stream_refuse(s, REQ_TOO_LARGE, GRPC_RESOURCE_EXHAUSTED, "message larger than the limit");
        return 0;
    }
    if (buf_append(&s->body, data, len) != 0)
        grpc_stream_reply_status(s, GRPC_RESOURCE_EXHAUSTED, "out of memory", 0);
    return 0;
}

static int grpc_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    grpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s)
        return 0;
    /* Set first, so an early refusal knows not to RST a finished request. */
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        s->recv_done = 1;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        grpc_stream_check_headers(s);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        grpc_stream_finish(s);
    return 0;
}

/* An early answer (the request was still arriving) tells the client to stop
 * sending with RST_STREAM NO_ERROR, as gRPC servers do. It must follow the
 * response on the wire, which submitting it here guarantees; submitted
 * together, nghttp2 would drop the response of a stream it is resetting. */
static int grpc_on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    grpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s && !s->recv_done)
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int grpc_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
    (void)error_code;
    (void)user_data;
    grpc_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s) {
        nghttp2_session_set_stream_user_data(session, stream_id, NULL);
        grpc_stream_free(s);
    }
    return 0;
}

/* ---- connections ------------------------------------------------------- */

static void grpc_conn_close(grpc_conn *c)
{
    grpc_listener *l = c->l;
    h2o_timeout_unlink(&c->timer);
    if (h2o_linklist_is_linked(&c->pending))
        h2o_linklist_unlink(&c->pending);
    while (!h2o_linklist_is_empty(&c->streams))
        grpc_stream_free(H2O_STRUCT_FROM_MEMBER(grpc_stream, link, c->streams.next));
    if (c->session)
        nghttp2_session_del(c->session);
    h2o_linklist_unlink(&c->link);
    l->nconns--;
    /* h2o drops a pending write on close, so c->out may go right after. */
    h2o_socket_close(c->sock);
    buf_free(&c->out);
    free(c);
}

static void grpc_conn_on_timeout(h2o_timeout_entry_t *entry)
{
    grpc_conn *c = H2O_STRUCT_FROM_MEMBER(grpc_conn, timer, entry);
    log_debug("grpc connection timeout", "listener=%s kind=%d", c->l->name, (int)c->timer_kind);
    if (c->timer_kind == GRPC_TIMER_IDLE && c->session && !c->writing) {
        /* Polite close: GOAWAY, then the pump closes once it is written.
         * The idle timer is re-armed to bound that write. */
        c->timer_kind = GRPC_TIMER_NONE;
        nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
        grpc_conn_pump(c);
        return;
    }
    grpc_conn_close(c);
}

static void grpc_conn_set_timer(grpc_conn *c, grpc_timer_kind kind, int restart)
{
    if (kind == c->timer_kind && !restart)
        return;
    h2o_timeout_unlink(&c->timer);
    c->timer_kind = kind;
    if (kind == GRPC_TIMER_IDLE || kind == GRPC_TIMER_WRITE)
        h2o_timeout_link(c->l->loop, &c->l->idle_timeout, &c->timer);
    else if (kind == GRPC_TIMER_HEADER)
        h2o_timeout_link(c->l->loop, &c->l->header_timeout, &c->timer);
}

static void grpc_conn_on_write(h2o_socket_t *sock, const char *err)
{
    grpc_conn *c = sock->data;
    c->writing = 0;
    buf_clear(&c->out);
    if (err) {
        log_debug("grpc write failed", "listener=%s err=\"%s\"", c->l->name, err);
        grpc_conn_close(c);
        return;
    }
    grpc_conn_pump(c);
}

static void grpc_conn_start_write(grpc_conn *c)
{
    h2o_iovec_t iov = h2o_iovec_init(c->out.data, c->out.len);
    c->writing = 1;
    h2o_socket_write(c->sock, &iov, 1, grpc_conn_on_write);
}

/* Move nghttp2's output to the socket, choose whether to read, arm the
 * connection timer, and close when the session is finished. May free c. */
static void grpc_conn_pump(grpc_conn *c)
{
    grpc_listener *l = c->l;
    if (c->state == GRPC_CONN_H2) {
        if (l->shutting_down && c->nstreams == 0 && !c->final_goaway) {
            c->final_goaway = 1;
            nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->session),
                                  NGHTTP2_NO_ERROR, NULL, 0);
        }
        while (!c->writing && c->out.len < GRPC_WRITE_CHUNK) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(c->session, &data);
            if (n < 0) {
                log_debug("grpc session error", "listener=%s err=\"%s\"", l->name, nghttp2_strerror((int)n));
                grpc_conn_close(c);
                return;
            }
            if (n == 0)
                break;
            if (buf_append(&c->out, data, (size_t)n) != 0) {
                grpc_conn_close(c);
                return;
            }
        }
        if (!c->writing && c->out.len > 0) {
            grpc_conn_start_write(c);
            if (c->nstreams > 0)
                grpc_conn_set_timer(c, GRPC_TIMER_WRITE, 1);
        }
        if (!c->writing && !nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) {
            grpc_conn_close(c);
            return;
        }
        if (c->nstreams == 0)
            grpc_conn_set_timer(c, GRPC_TIMER_IDLE, 0);
        else if (!c->writing)
            grpc_conn_set_timer(c, GRPC_TIMER_NONE, 0);
    } else if (c->state == GRPC_CONN_CLOSING) {
        if (!c->writing) {
            grpc_conn_close(c);
            return;
        }
        h2o_socket_read_stop(c->sock);
        return;
    }
    if (c->state == GRPC_CONN_HANDSHAKE)
        return; /* h2o drives the socket until the handshake callback */
    /* Nothing more is read while a write is in flight or while input is
     * left over the read budget. */
    if (c->writing || h2o_linklist_is_linked(&c->pending))
        h2o_socket_read_stop(c->sock);
    else if (!h2o_socket_is_reading(c->sock))
        h2o_socket_read_start(c->sock, grpc_conn_on_read);
}

static int grpc_conn_start_session(grpc_conn *c)
{
    grpc_listener *l = c->l;
    if (nghttp2_session_server_new(&c->session, l->callbacks, c) != 0)
        return -1;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, l->settings.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GRPC_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, GRPC_MAX_HEADER_LIST},
    };
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, GRPC_CONN_WINDOW) != 0)
        return -1;
    c->state = GRPC_CONN_H2;
    /* The header timer, armed at accept, covered the preface; from here
     * streams carry their own deadlines. */
    grpc_conn_set_timer(c, GRPC_TIMER_NONE, 0);
    return 0;
}

/* Classify the first bytes: 1 full HTTP/2 preface, 0 need more, -1 an
 * HTTP/1.x request line, -2 anything else. */
static int grpc_classify_preface(const char *p, size_t n)
{
    if (n == 0)
        return 0; /* h2o calls back on TCP activity even without new bytes */
    size_t cmp = n < GRPC_PREFACE_LEN ? n : GRPC_PREFACE_LEN;
    if (memcmp(p, grpc_preface, cmp) == 0)
        return n >= GRPC_PREFACE_LEN ? 1 : 0;
    for (size_t i = 0; i < n && i <= GRPC_MAX_METHOD_TOKEN; i++) {
        if (p[i] == ' ')
            return i > 0 ? -1 : -2;
        if (p[i] < 'A' || p[i] > 'Z')
            return -2;
    }
    return n <= GRPC_MAX_METHOD_TOKEN ? 0 : -2;
}

/* Returns -1 when the connection must close now. */
static int grpc_conn_read_preface(grpc_conn *c)
{
    h2o_buffer_t *in = c->sock->input;
    switch (grpc_classify_preface(in->bytes, in->size)) {
    case 0:
        return 0;
    case 1:
        if (grpc_conn_start_session(c) != 0)
            return -1;
        return 0;
    case -1:
        log_debug("grpc HTTP/1 request refused", "listener=%s", c->l->name);
        c->state = GRPC_CONN_CLOSING;
        h2o_buffer_consume(&c->sock->input, in->size);
        if (buf_append(&c->out, grpc_http1_reply, sizeof(grpc_http1_reply) - 1) != 0)
            return -1;
        grpc_conn_start_write(c);
        return 0;
    default:
        log_debug("grpc garbage preface", "listener=%s", c->l->name);
        return -1;
    }
}

/* h2o's socket input buffers start at 8 KiB and double whenever a read
 * fills them, copying what they hold each time: reading a burst of 44 KB
 * requests copied it about once more (h2o_buffer_reserve, 4.8 % of the
 * gateway's CPU in bench/run.sh's apikey scenario). A connection's input is
 * taken whole after each read (nghttp2 consumes every byte, or the read
 * budget leaves the rest for the next pass), so its buffer only lives
 * during a read: once the preface is in, it comes from these prototypes
 * instead. h2o reads a socket dry, so a client sending large requests back
 * to back (Collectors batch thousands of spans a request) has megabytes
 * waiting: with h2load's 440 KB requests, 38 % of the turns found 2-8 MB in
 * the buffer, and growing 256 KiB that far made the copies 13 % of the
 * gateway's CPU. So after a turn with more than GRPC_INPUT_BUFFER, a
 * connection's next buffer is GRPC_INPUT_LARGE, until
 * GRPC_INPUT_SMALL_AGAIN turns in a row fit the small one. Few large
 * buffers are kept for reuse, since the pages a buffer touched stay
 * resident while it waits. Per worker thread, as h2o's own (its list of
 * recycled buffers is not thread-safe). */
static __thread h2o_buffer_prototype_t grpc_input = {.allocator = {.max = 16},
                                                     ._initial_buf = {.capacity = GRPC_INPUT_BUFFER}};
static __thread h2o_buffer_prototype_t grpc_input_large = {.allocator = {.max = 2},
                                                           ._initial_buf = {.capacity = GRPC_INPUT_LARGE}};

/* After a turn over `got` bytes of input. */
static void grpc_input_use(grpc_conn *c, size_t got)
{
    if (got > GRPC_INPUT_BUFFER)
        c->small_reads = 0;
    else if (c->small_reads < GRPC_INPUT_SMALL_AGAIN)
        c->small_reads++;
    if (c->sock->input->bytes == NULL) /* empty: the buffer to come is ours */
        c->sock->input = c->small_reads < GRPC_INPUT_SMALL_AGAIN ? &grpc_input_large._initial_buf
                                                                 : &grpc_input._initial_buf;
}

static void recycled_free(h2o_mem_recycle_t *r)
{
    while (r->cnt > 0)
        free(h2o_mem_alloc_recycle(r, 0));
}

void grpc_thread_release(void)
{
    recycled_free(&grpc_input.allocator);
    recycled_free(&grpc_input_large.allocator);
}

static void grpc_conn_on_read(h2o_socket_t *sock, const char *err)
{
    grpc_conn *c = sock->data;
    if (err) {
        log_debug("grpc read closed", "listener=%s err=\"%s\"", c->l->name, err);
        grpc_conn_close(c);
        return;
    }
    if (c->state == GRPC_CONN_PREFACE && grpc_conn_read_preface(c) != 0) {
        grpc_conn_close(c);
        return;
    }
    if (c->state == GRPC_CONN_H2 && sock->input->size > 0) {
        size_t got = sock->input->size;
        size_t take = got < GRPC_READ_BUDGET ? got : GRPC_READ_BUDGET;
        ssize_t n = nghttp2_session_mem_recv(c->session, (const uint8_t *)sock->input->bytes, take);
        if (n < 0) {
            log_debug("grpc protocol error", "listener=%s err=\"%s\"", c->l->name, nghttp2_strerror((int)n));
            grpc_conn_close(c);
            return;
        }
        h2o_buffer_consume(&sock->input, (size_t)n);
        if (sock->input->size > 0 && !h2o_linklist_is_linked(&c->pending))
            h2o_linklist_insert(&c->l->pending, &c->pending);
        grpc_input_use(c, got);
    }
    grpc_conn_pump(c);
}

int grpc_listener_pass(grpc_listener *l)
{
    /* The connections waiting now get one budget each; those that still
     * have input left join the list again, for the next pass. */
    h2o_linklist_t now;
    h2o_linklist_init_anchor(&now);
    h2o_linklist_insert_list(&now, &l->pending);
    while (!h2o_linklist_is_empty(&now)) {
        grpc_conn *c = H2O_STRUCT_FROM_MEMBER(grpc_conn, pending, now.next);
        h2o_linklist_unlink(&c->pending);
        grpc_conn_on_read(c->sock, NULL);
    }
    return !h2o_linklist_is_empty(&l->pending);
}

static void grpc_conn_on_handshake(h2o_socket_t *sock, const char *err)
{
    grpc_conn *c = sock->data;
    if (err) {
        log_debug("grpc TLS handshake failed", "listener=%s err=\"%s\"", c->l->name, err);
        grpc_conn_close(c);
        return;
    }
    h2o_iovec_t proto = h2o_socket_ssl_get_selected_protocol(sock);
    if (!(proto.len == 2 && memcmp(proto.base, "h2", 2) == 0)) {
        log_debug("grpc TLS without ALPN h2", "listener=%s", c->l->name);
        grpc_conn_close(c);
        return;
    }
    c->state = GRPC_CONN_PREFACE;
    h2o_socket_read_start(sock, grpc_conn_on_read);
    /* The preface may have arrived with the handshake's last flight. */
    grpc_conn_on_read(sock, NULL);
}

static void grpc_conn_new(grpc_listener *l, h2o_socket_t *sock)
{
    grpc_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        h2o_socket_close(sock);
        return;
    }
    c->l = l;
    c->sock = sock;
    c->small_reads = GRPC_INPUT_SMALL_AGAIN;
    sock->data = c;
    h2o_linklist_init_anchor(&c->streams);
    h2o_linklist_insert(&l->conns, &c->link);
    l->nconns++;
    c->timer.cb = grpc_conn_on_timeout;
    c->peer_len = h2o_socket_getpeername(sock, (struct sockaddr *)&c->peer);
    if (c->peer.ss_family == AF_INET || c->peer.ss_family == AF_INET6) {
        /* Small unary replies must not wait for Nagle. */
        int one = 1;
        setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    grpc_conn_set_timer(c, GRPC_TIMER_HEADER, 1);
    if (l->settings.ssl_ctx) {
        c->tls = 1;
        c->state = GRPC_CONN_HANDSHAKE;
        h2o_socket_ssl_handshake(sock, l->settings.ssl_ctx, NULL, grpc_conn_on_handshake);
    } else {
        c->state = GRPC_CONN_PREFACE;
        h2o_socket_read_start(sock, grpc_conn_on_read);
        /* Bytes that arrived with a PROXY header are already buffered; h2o
         * only calls back for new ones. */
        if (sock->input->size > 0)
            grpc_conn_on_read(sock, NULL);
    }
}

static void grpc_conn_on_proxy_done(h2o_socket_t *sock, void *data)
{
    grpc_conn_new(data, sock);
}

/* ---- listener ---------------------------------------------------------- */

static void grpc_listener_on_conn(h2o_socket_t *sock, void *data)
{
    grpc_listener *l = data;
    if (l->settings.proxy_protocol)
        proxy_accept(&l->proxy, sock, PROXY_REQUIRED, grpc_conn_on_proxy_done, l);
    else
        grpc_conn_new(l, sock);
}

static int grpc_listener_init_nghttp2(grpc_listener *l)
{
    if (nghttp2_session_callbacks_new(&l->callbacks) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_begin_headers_callback(l->callbacks, grpc_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(l->callbacks, grpc_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(l->callbacks, grpc_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(l->callbacks, grpc_on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(l->callbacks, grpc_on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(l->callbacks, grpc_on_frame_send);
    return 0;
}

grpc_listener *grpc_listener_start(h2o_evloop_t *loop, int listen_fd, const grpc_settings *settings,
                                   ingest_ctx *ictx)
{
    grpc_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->loop = loop;
    l->ictx = ictx;
    l->settings = *settings;
    l->name = strdup(settings->name ? settings->name : "grpc");
    if (!l->name || grpc_listener_init_nghttp2(l) != 0) {
        free(l->name);
        free(l);
        return NULL;
    }
    l->settings.name = l->name;
    if (settings->peer_secret && !(l->peer_secret = strdup(settings->peer_secret))) {
        nghttp2_session_callbacks_del(l->callbacks);
        free(l->name);
        free(l);
        return NULL;
    }
    l->settings.peer_secret = l->peer_secret;
    if (l->settings.limits.max_request_bytes == 0)
        l->settings.limits.max_request_bytes = GRPC_DEFAULT_MAX_MESSAGE;
    if (l->settings.max_concurrent_streams == 0)
        l->settings.max_concurrent_streams = GRPC_DEFAULT_STREAMS;
    if (l->settings.header_timeout_ms == 0)
        l->settings.header_timeout_ms = GRPC_DEFAULT_HEADER_TIMEOUT_MS;
    if (l->settings.idle_timeout_ms == 0)
        l->settings.idle_timeout_ms = GRPC_DEFAULT_IDLE_TIMEOUT_MS;
    h2o_timeout_init(loop, &l->header_timeout, l->settings.header_timeout_ms);
    h2o_timeout_init(loop, &l->idle_timeout, l->settings.idle_timeout_ms);
    proxy_waiters_init(&l->proxy, loop, l->settings.header_timeout_ms);
    h2o_linklist_init_anchor(&l->conns);
    h2o_linklist_init_anchor(&l->pending);
    /* A bounded batch per wake-up so one busy listener cannot starve the loop. */
    conn_acceptor_start(&l->acceptor, loop, listen_fd, l->settings.gate, 0, 64, grpc_listener_on_conn, l);
    return l;
}

void grpc_listener_shutdown(grpc_listener *l)
{
    if (l->shutting_down)
        return;
    l->shutting_down = 1;
    conn_acceptor_stop(&l->acceptor);
    proxy_waiters_close(&l->proxy);
    /* pump may free the connection, so step before calling it. */
    h2o_linklist_t *node = l->conns.next;
    while (node != &l->conns) {
        grpc_conn *c = H2O_STRUCT_FROM_MEMBER(grpc_conn, link, node);
        node = node->next;
        if (c->state != GRPC_CONN_H2) {
            grpc_conn_close(c);
            continue;
        }
        /* Notice first (clients stop opening streams), final GOAWAY with the
         * real last stream id once the in-flight ones finished (pump). */
        nghttp2_submit_shutdown_notice(c->session);
        grpc_conn_pump(c);
    }
}

size_t grpc_listener_connections(const grpc_listener *l)
{
    return l->nconns;
}

void grpc_listener_free(grpc_listener *l)
{
    if (!l)
        return;
    conn_acceptor_stop(&l->acceptor);
    while (!h2o_linklist_is_empty(&l->conns))
        grpc_conn_close(H2O_STRUCT_FROM_MEMBER(grpc_conn, link, l->conns.next));
    proxy_waiters_dispose(&l->proxy);
    conn_acceptor_dispose(&l->acceptor); /* TLS sockets may still be closing */
    h2o_timeout_dispose(l->loop, &l->header_timeout);
    h2o_timeout_dispose(l->loop, &l->idle_timeout);
    nghttp2_session_callbacks_del(l->callbacks);
    free(l->name);
    free(l->peer_secret);
    free(l);
}
