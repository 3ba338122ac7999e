/* proxy_parse: the pure half of proxy.h, kept apart from proxy_accept so the
 * fuzzer can build it without an event loop.
 *
 * Every byte is checked as soon as it arrives, so a connection that is not a
 * PROXY header (a plain HTTP request, the HTTP/2 preface, a TLS ClientHello)
 * is refused at its first distinguishing byte instead of waiting for the
 * header timeout; NEED_MORE means "a valid prefix so far".
 *
 * v1 is parsed strictly: single spaces, addresses that inet_pton accepts for
 * the announced family, ports in canonical decimal (no sign, no leading
 * zero) up to 65535, CRLF within 107 bytes. */
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define PROXY_V1_MAX 107     /* longest v1 line, CRLF included */
#define PROXY_V2_FIXED 16    /* signature, ver/cmd, fam, 16-bit length */
#define PROXY_V2_INET_LEN 12 /* two IPv4 addresses, two ports */
#define PROXY_V2_INET6_LEN 36
#define PROXY_V2_UNIX_LEN 216 /* two 108-byte socket paths */
#define PROXY_V2_TLV_HEAD 3   /* type, 16-bit length */

static const uint8_t proxy_v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* ---- v1 ------------------------------------------------------------------ */

typedef struct proxy_v1 {
    const uint8_t *p;
    size_t len;  /* bytes available, at most PROXY_V1_MAX */
    size_t pos;
    proxy_status more; /* what running out of bytes means */
} proxy_v1;

/* Match the literal `lit` at the cursor. */
static proxy_status proxy_v1_lit(proxy_v1 *v, const char *lit)
{
    for (; *lit; lit++, v->pos++) {
        if (v->pos == v->len)
            return v->more;
        if (v->p[v->pos] != (uint8_t)*lit)
            return PROXY_INVALID;
    }
    return PROXY_OK;
}

static int proxy_v1_addr_char(int family, uint8_t c)
{
    if (c >= '0' && c <= '9')
        return 1;
    if (c == '.')
        return 1;
    return family == AF_INET6 && (c == ':' || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
}

/* An address of `family` ended by `term`. */
static proxy_status proxy_v1_addr(proxy_v1 *v, int family, uint8_t term, struct sockaddr_storage *ss,
                                  socklen_t *sslen)
{
    char text[INET6_ADDRSTRLEN];
    size_t max = family == AF_INET ? INET_ADDRSTRLEN - 1 : INET6_ADDRSTRLEN - 1;
    size_t n = 0;
    for (;; v->pos++, n++) {
        if (v->pos == v->len)
            return v->more;
        uint8_t c = v->p[v->pos];
        if (c == term && n > 0)
            break;
        if (n == max || !proxy_v1_addr_char(family, c))
            return PROXY_INVALID;
        text[n] = (char)c;
    }
    text[n] = '\0';
    v->pos++;
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        *sslen = sizeof(*sin);
        return inet_pton(AF_INET, text, &sin->sin_addr) == 1 ? PROXY_OK : PROXY_INVALID;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    *sslen = sizeof(*sin6);
    return inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1 ? PROXY_OK : PROXY_INVALID;
}

/* A port ended by `term`, stored in network order. */
static proxy_status proxy_v1_port(proxy_v1 *v, uint8_t term, uint16_t *port)
{
    uint32_t val = 0;
    size_t n = 0;
    for (;; v->pos++, n++) {
        if (v->pos == v->len)
            return v->more;
        uint8_t c = v->p[v->pos];
        if (c == term && n > 0)
            break;
        if (c < '0' || c > '9' || (n == 1 && val == 0))
            return PROXY_INVALID;
        val = val * 10 + (uint32_t)(c - '0');
        if (val > 65535)
            return PROXY_INVALID;
    }
    v->pos++;
    *port = htons((uint16_t)val);
    return PROXY_OK;
}

static void proxy_set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = port;
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = port;
}

/* "UNKNOWN": the rest of the line carries nothing we may use; it only has to
 * be printable text ending in CRLF. */
static proxy_status proxy_v1_unknown(proxy_v1 *v, proxy_header *out)
{
    if (v->pos == v->len)
        return v->more;
    if (v->p[v->pos] != ' ' && v->p[v->pos] != '\r')
        return PROXY_INVALID;
    for (; v->pos < v->len && v->p[v->pos] != '\r'; v->pos++)
        if (v->p[v->pos] < 0x20 || v->p[v->pos] > 0x7e)
            return PROXY_INVALID;
    proxy_status st = proxy_v1_lit(v, "\r\n");
    if (st != PROXY_OK)
        return st;
    out->local = 1;
    return PROXY_OK;
}

static proxy_status proxy_parse_v1(const uint8_t *p, size_t len, proxy_header *out)
{
    proxy_v1 v = {.p = p, .len = len < PROXY_V1_MAX ? len : PROXY_V1_MAX, .pos = 0,
                  .more = len < PROXY_V1_MAX ? PROXY_NEED_MORE : PROXY_INVALID};
    proxy_status st = proxy_v1_lit(&v, "PROXY ");
    if (st != PROXY_OK)
        return st;
    /* "TCP4 ", "TCP6 " or "UNKNOWN", told apart by their first bytes. */
    static const char *const protos[] = {"TCP4 ", "TCP6 ", "UNKNOWN"};
    int proto = -1;
    for (int i = 0; i < 3 && proto < 0; i++) {
        proxy_v1 t = v;
        st = proxy_v1_lit(&t, protos[i]);
        if (st == PROXY_NEED_MORE)
            return st;
        if (st == PROXY_OK) {
            v = t;
            proto = i;
        }
    }
    if (proto < 0)
        return PROXY_INVALID;
    if (proto == 2) {
        st = proxy_v1_unknown(&v, out);
    } else {
        int family = proto == 0 ? AF_INET : AF_INET6;
        uint16_t sport = 0, dport = 0; /* set when proxy_v1_port succeeds; GCC -O3 cannot tell */
        if ((st = proxy_v1_addr(&v, family, ' ', &out->src, &out->src_len)) == PROXY_OK &&
            (st = proxy_v1_addr(&v, family, ' ', &out->dst, &out->dst_len)) == PROXY_OK &&
            (st = proxy_v1_port(&v, ' ', &sport)) == PROXY_OK && (st = proxy_v1_port(&v, '\r', &dport)) == PROXY_OK &&
            (st = proxy_v1_lit(&v, "\n")) == PROXY_OK) {
            proxy_set_port(&out->src, sport);
            proxy_set_port(&out->dst, dport);
        }
    }
    if (st != PROXY_OK)
        return st;
    out->version = 1;
    out->consumed = v.pos;
    return PROXY_OK;
}

/* ---- v2 ------------------------------------------------------------------ */

static uint16_t proxy_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* TLVs fill the block after the addresses: walk them as far as bytes are
 * available and refuse one that overruns the block. Their contents (ALPN,
 * NLB's VPC endpoint id, ...) are not used. */
static proxy_status proxy_v2_tlvs(const uint8_t *p, size_t len, size_t off, size_t end)
{
    while (off < end) {
        if (end - off < PROXY_V2_TLV_HEAD)
            return PROXY_INVALID;
        if (len < off + 2)
            return PROXY_NEED_MORE;
        /* The high length byte alone may already overrun the block. */
        if ((size_t)p[off + 1] << 8 > end - off - PROXY_V2_TLV_HEAD)
            return PROXY_INVALID;
        if (len < off + PROXY_V2_TLV_HEAD)
            return PROXY_NEED_MORE;
        size_t tlen = proxy_be16(p + off + 1);
        if (tlen > end - off - PROXY_V2_TLV_HEAD)
            return PROXY_INVALID;
        off += PROXY_V2_TLV_HEAD + tlen;
    }
    return len < end ? PROXY_NEED_MORE : PROXY_OK;
}

static void proxy_v2_inet(const uint8_t *a, proxy_header *out)
{
    struct sockaddr_in *src = (struct sockaddr_in *)&out->src, *dst = (struct sockaddr_in *)&out->dst;
    src->sin_family = dst->sin_family = AF_INET;
    memcpy(&src->sin_addr, a, 4);
    memcpy(&dst->sin_addr, a + 4, 4);
    memcpy(&src->sin_port, a + 8, 2);
    memcpy(&dst->sin_port, a + 10, 2);
    out->src_len = out->dst_len = sizeof(*src);
}

static void proxy_v2_inet6(const uint8_t *a, proxy_header *out)
{
    struct sockaddr_in6 *src = (struct sockaddr_in6 *)&out->src, *dst = (struct sockaddr_in6 *)&out->dst;
    src->sin6_family = dst->sin6_family = AF_INET6;
    memcpy(&src->sin6_addr, a, 16);
    memcpy(&dst->sin6_addr, a + 16, 16);
    memcpy(&src->sin6_port, a + 32, 2);
    memcpy(&dst->sin6_port, a + 34, 2);
    out->src_len = out->dst_len = sizeof(*src);
}

static proxy_status proxy_parse_v2(const uint8_t *p, size_t len, proxy_header *out)
{
    size_t sig = len < sizeof(proxy_v2_sig) ? len : sizeof(proxy_v2_sig);
    if (memcmp(p, proxy_v2_sig, sig) != 0)
        return PROXY_INVALID;
    if (len < 13)
        return PROXY_NEED_MORE;
    /* Version 2 in the high nibble; command LOCAL (0) or PROXY (1). */
    if (p[12] >> 4 != 2 || (p[12] & 0x0f) > 1)
        return PROXY_INVALID;
    int local = (p[12] & 0x0f) == 0;
    if (len < 14)
        return PROXY_NEED_MORE;
    /* Family UNSPEC/INET/INET6/UNIX (0-3), transport UNSPEC/STREAM/DGRAM
     * (0-2). A LOCAL block is discarded whatever it says, as the spec asks. */
    unsigned fam = p[13] >> 4, transport = p[13] & 0x0f;
    size_t addr_len = 0;
    if (!local) {
        if (fam > 3 || transport > 2)
            return PROXY_INVALID;
        if (fam == 1 || fam == 2) {
            if (transport != 1)
                return PROXY_INVALID; /* we serve TCP; DGRAM or unspecified cannot be this connection */
            addr_len = fam == 1 ? PROXY_V2_INET_LEN : PROXY_V2_INET6_LEN;
        } else if (fam == 3) {
            addr_len = PROXY_V2_UNIX_LEN;
        }
    }
    if (len < 15)
        return PROXY_NEED_MORE;
    if (PROXY_V2_FIXED + ((size_t)p[14] << 8) > PROXY_MAX_HEADER)
        return PROXY_INVALID;
    if (len < PROXY_V2_FIXED)
        return PROXY_NEED_MORE;
    size_t block = proxy_be16(p + 14);
    size_t end = PROXY_V2_FIXED + block;
    if (end > PROXY_MAX_HEADER || block < addr_len)
        return PROXY_INVALID;
    proxy_status st = local ? (len < end ? PROXY_NEED_MORE : PROXY_OK)
                            : proxy_v2_tlvs(p, len, PROXY_V2_FIXED + addr_len, end);
    if (st != PROXY_OK)
        return st;
    out->version = 2;
    out->consumed = end;
    /* UNSPEC and UNIX carry no address we can use as a TCP peer. */
    out->local = local || fam == 0 || fam == 3;
    if (!out->local && fam == 1)
        proxy_v2_inet(p + PROXY_V2_FIXED, out);
    else if (!out->local)
        proxy_v2_inet6(p + PROXY_V2_FIXED, out);
    return PROXY_OK;
}

proxy_status proxy_parse(const uint8_t *p, size_t len, proxy_header *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return PROXY_NEED_MORE;
    if (p[0] == 'P')
        return proxy_parse_v1(p, len, out);
    if (p[0] == proxy_v2_sig[0])
        return proxy_parse_v2(p, len, out);
    return PROXY_INVALID;
}
