/* lg_payload: see lg_payload.h. Field numbers are those of proto/. */
#include "lg_payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* protobuf writer over a buf; a failed append sticks in err. */
typedef struct pbw {
    buf *b;
    int err;
} pbw;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Inlined fast path: the buffer keeps its capacity between requests, so
 * growing is rare; a call into buf_append per field was half the cost. */
static inline int room(pbw *w, size_t n)
{
    buf *b = w->b;
    if (b->cap - b->len >= n)
        return 1;
    if (!w->err && buf_reserve(b, n) == 0)
        return 1;
    w->err = 1;
    return 0;
}

static inline void put(pbw *w, const void *p, size_t n)
{
    if (room(w, n)) {
        memcpy(w->b->data + w->b->len, p, n);
        w->b->len += n;
    }
}

static inline size_t varint_enc(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static inline void varint(pbw *w, uint64_t v)
{
    if (room(w, 10))
        w->b->len += varint_enc((uint8_t *)w->b->data + w->b->len, v);
}

static void tag(pbw *w, unsigned field, unsigned wt) { varint(w, (uint64_t)field << 3 | wt); }

static void f_bytes(pbw *w, unsigned field, const void *p, size_t n)
{
    tag(w, field, WT_LEN);
    varint(w, n);
    put(w, p, n);
}

static void f_str(pbw *w, unsigned field, const char *s) { f_bytes(w, field, s, strlen(s)); }

static void f_varint(pbw *w, unsigned field, uint64_t v)
{
    tag(w, field, WT_VARINT);
    varint(w, v);
}

static void f_fixed64(pbw *w, unsigned field, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    tag(w, field, WT_I64);
    put(w, t, 8);
}

static void f_fixed32(pbw *w, unsigned field, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    tag(w, field, WT_I32);
    put(w, t, 4);
}

/* A nested message: its length is unknown until it is written, so room for
 * the longest varint is reserved and the body moved down over what the
 * actual length did not need. */
static size_t open_msg(pbw *w, unsigned field)
{
    tag(w, field, WT_LEN);
    size_t at = w->b->len;
    static const uint8_t room[5];
    put(w, room, sizeof room);
    return at;
}

static void close_msg(pbw *w, size_t at)
{
    if (w->err)
        return;
    size_t body = w->b->len - at - 5;
    uint8_t t[10];
    size_t n = varint_enc(t, body);
    char *p = w->b->data + at;
    memmove(p + n, p + 5, body);
    memcpy(p, t, n);
    w->b->len -= 5 - n;
}

static inline size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* KeyValue{key, AnyValue{value}}: the value's field (tag included) is
 * vlen bytes, so both lengths are known before writing: no moves. */
static void kv_head(pbw *w, unsigned field, const char *key, size_t vlen)
{
    size_t klen = strlen(key);
    size_t kv = 1 + varint_len(klen) + klen + 1 + varint_len(vlen) + vlen;
    tag(w, field, WT_LEN);
    varint(w, kv);
    f_bytes(w, 1, key, klen);
    tag(w, 2, WT_LEN);
    varint(w, vlen);
}

static void kv_str(pbw *w, unsigned field, const char *key, const char *s, size_t n)
{
    kv_head(w, field, key, 1 + varint_len(n) + n);
    f_bytes(w, 1, s, n);
}

static void kv_int(pbw *w, unsigned field, const char *key, int64_t i)
{
    kv_head(w, field, key, 1 + varint_len((uint64_t)i));
    f_varint(w, 3, (uint64_t)i);
}

static void kv_bool(pbw *w, unsigned field, const char *key, int b)
{
    kv_head(w, field, key, 2);
    f_varint(w, 2, b != 0);
}

static void kv_double(pbw *w, unsigned field, const char *key, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    kv_head(w, field, key, 9);
    f_fixed64(w, 4, u);
}

/* xorshift64*: ids only need to differ. */
static uint64_t rnd(lg_payload *g)
{
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return g->rng * 2685821657736338717ULL;
}

static void rnd_id(lg_payload *g, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = rnd(g);
        memcpy(p + i, &r, n - i < 8 ? n - i : 8);
    }
    p[0] |= 1; /* an all-zero id is invalid in OTLP */
}

static void new_trace(lg_payload *g, lg_open_trace *t)
{
    rnd_id(g, t->trace_id, 16);
    rnd_id(g, t->root_id, 8);
    t->left = g->shape.spans_per_trace;
    t->error = 0;
}

int lg_payload_init(lg_payload *g, const lg_shape *shape, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    if (shape->spans_per_request < 1 || shape->spans_per_trace < 1 || shape->open_traces < 1 ||
        !(shape->error_rate >= 0 && shape->error_rate <= 1))
        return -1;
    g->shape = *shape;
    g->rng = seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
    if (g->rng == 0)
        g->rng = 1;
    g->pool = calloc(shape->open_traces, sizeof *g->pool);
    g->extra = malloc(shape->attr_bytes + 1);
    if (!g->pool || !g->extra) {
        lg_payload_free(g);
        return -1;
    }
    for (unsigned i = 0; i < shape->attr_bytes; i++)
        g->extra[i] = (char)('a' + i % 26);
    g->extra[shape->attr_bytes] = 0;
    for (unsigned i = 0; i < shape->open_traces; i++)
        new_trace(g, &g->pool[i]);
    return 0;
}

void lg_payload_free(lg_payload *g)
{
    free(g->pool);
    free(g->extra);
    g->pool = NULL;
    g->extra = NULL;
}

static const char *const routes[] = {"/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/cart",
                                     "/api/v1/users/{id}", "/api/v1/checkout", "/api/v1/search"};
static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
static const char *const ops[] = {"SELECT orders", "INSERT orders", "GET cart:*", "publish order.created",
                                  "HTTP GET inventory", "render template"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Decimal digits of v at p; returns the end. */
static char *put_dec(char *p, uint64_t v)
{
    char t[20];
    int n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = t[--n];
    return p;
}

static void span_attrs(lg_payload *g, pbw *w, const char *method, const char *route, int error)
{
    char tmp[64];
    unsigned n = g->shape.attrs;
    for (unsigned i = 0; i < n; i++) {
        switch (i) {
        case 0: kv_str(w, 9, "http.request.method", method, strlen(method)); break;
        case 1: kv_str(w, 9, "http.route", route, strlen(route)); break;
        case 2: kv_int(w, 9, "http.response.status_code", error ? 503 : 200); break;
        case 3: {
            uint64_t r = rnd(g);
            char *e = tmp;
            memcpy(e, "10", 2);
            e += 2;
            for (int k = 0; k < 3; k++) {
                *e++ = '.';
                e = put_dec(e, (r >> (8 * k)) & 255);
            }
            kv_str(w, 9, "client.address", tmp, (size_t)(e - tmp));
            break;
        }
        case 4: kv_int(w, 9, "server.port", 8080); break;
        case 5: {
            static const char ua[] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)";
            kv_str(w, 9, "user_agent.original", ua, sizeof ua - 1);
            break;
        }
        case 6: kv_double(w, 9, "app.cart.total", (double)(rnd(g) % 100000) / 100.0); break;
        case 7: kv_bool(w, 9, "app.cache.hit", (int)(rnd(g) & 1)); break;
        case 8: {
            memcpy(tmp, "user-", 5);
            uint64_t u = rnd(g) % 1000000;
            for (int k = 10; k >= 5; k--, u /= 10)
                tmp[k] = (char)('0' + u % 10);
            kv_str(w, 9, "enduser.id", tmp, 11);
            break;
        }
        case 9: kv_int(w, 9, "app.items.count", (int64_t)(rnd(g) % 20)); break;
        default: {
            memcpy(tmp, "app.extra.", 10);
            *put_dec(tmp + 10, i - 10) = 0;
            kv_str(w, 9, tmp, g->extra, g->shape.attr_bytes);
            break;
        }
        }
    }
}

static void span(lg_payload *g, pbw *w, lg_open_trace *t, uint64_t now_ns)
{
    int root = t->left == 1;
    int error = (double)(rnd(g) >> 11) * 0x1.0p-53 < g->shape.error_rate;
    if (root)
        error |= t->error;
    else
        t->error |= error;
    uint8_t sid[8];
    const uint8_t *id = t->root_id;
    if (!root) {
        rnd_id(g, sid, 8);
        id = sid;
    }
    size_t sp = open_msg(w, 2);
    f_bytes(w, 1, t->trace_id, 16);
    f_bytes(w, 2, id, 8);
    if (!root)
        f_bytes(w, 4, t->root_id, 8);
    const char *route = routes[rnd(g) % NELEM(routes)];
    const char *method = methods[rnd(g) % NELEM(methods)];
    if (root) { /* "METHOD route" */
        size_t ml = strlen(method), rl = strlen(route);
        tag(w, 5, WT_LEN);
        varint(w, ml + 1 + rl);
        put(w, method, ml);
        put(w, " ", 1);
        put(w, route, rl);
    } else {
        f_str(w, 5, ops[rnd(g) % NELEM(ops)]);
    }
    f_varint(w, 6, root ? 2 /* SERVER */ : (rnd(g) & 1) ? 3 /* CLIENT */ : 1 /* INTERNAL */);
    uint64_t dur = 50000 + rnd(g) % 250000000; /* 50 µs .. 250 ms */
    uint64_t start = now_ns - dur - rnd(g) % 1000000000;
    f_fixed64(w, 7, start);
    f_fixed64(w, 8, start + dur);
    span_attrs(g, w, method, route, error);
    size_t st = open_msg(w, 15);
    if (error) {
        f_str(w, 2, "upstream connect error or disconnect/reset before headers");
        f_varint(w, 3, 2); /* STATUS_CODE_ERROR */
    } else if (root) {
        f_varint(w, 3, 1); /* STATUS_CODE_OK */
    }
    close_msg(w, st);
    f_fixed32(w, 16, 0x101); /* sampled, is-remote known */
    close_msg(w, sp);
    g->spans++;
    g->errors += (uint64_t)error;
    if (root) {
        g->roots++;
        g->traces_done++;
        new_trace(g, t);
    } else {
        t->left--;
    }
}

int lg_payload_request(lg_payload *g, buf *out, int grpc)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;

    buf_clear(out);
    pbw w = {out, 0};
    static const uint8_t frame[5];
    if (grpc)
        put(&w, frame, sizeof frame);
    size_t rs = open_msg(&w, 1);
    size_t res = open_msg(&w, 1);
    static const char *const res_str[][2] = {{"service.name", "checkout"},
                                             {"service.version", "1.42.0"},
                                             {"deployment.environment.name", "production"},
                                             {"host.name", "ip-10-12-34-56.eu-west-1.compute.internal"}};
    for (size_t i = 0; i < NELEM(res_str); i++)
        kv_str(&w, 1, res_str[i][0], res_str[i][1], strlen(res_str[i][1]));
    kv_int(&w, 1, "process.pid", 4242);
    close_msg(&w, res);
    size_t ss = open_msg(&w, 2);
    size_t scope = open_msg(&w, 1);
    f_str(&w, 1, "io.opentelemetry.instrumentation.http");
    f_str(&w, 2, "2.10.0");
    close_msg(&w, scope);
    for (unsigned i = 0; i < g->shape.spans_per_request; i++)
        span(g, &w, &g->pool[rnd(g) % g->shape.open_traces], now_ns);
    f_str(&w, 3, "https://opentelemetry.io/schemas/1.26.0");
    close_msg(&w, ss);
    f_str(&w, 3, "https://opentelemetry.io/schemas/1.26.0");
    close_msg(&w, rs);
    if (w.err)
        return -1;
    if (grpc) {
        size_t len = out->len - 5;
        uint8_t *p = (uint8_t *)out->data;
        p[0] = 0; /* not compressed */
        p[1] = (uint8_t)(len >> 24);
        p[2] = (uint8_t)(len >> 16);
        p[3] = (uint8_t)(len >> 8);
        p[4] = (uint8_t)len;
    }
    return 0;
}
