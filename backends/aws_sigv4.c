/* aws_sigv4: AWS Signature Version 4 (see aws_sigv4.h). */
#include "aws_sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"

/* Lowercase hex, NUL-terminated (out holds 2 * n + 1). */
static void to_hex(const uint8_t *in, size_t n, char *out)
{
    *codec_hex_encode(in, n, out) = '\0';
}

static int is_unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Percent-encodes p[0..n) (uppercase hex); '/' is kept when keep_slash. */
static int uri_encode(buf *b, const char *p, size_t n, int keep_slash)
{
    static const char up[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (is_unreserved(ch) || (keep_slash && ch == '/')) {
            if (buf_putc(b, (char)ch) < 0)
                return -1;
        } else {
            char e[3] = {'%', up[ch >> 4], up[ch & 15]};
            if (buf_append(b, e, 3) < 0)
                return -1;
        }
    }
    return 0;
}

/* Percent-decodes p[0..n) (malformed escapes stay literal, '+' stays '+'),
 * then encodes the result into out as a NUL-terminated string. */
static int query_component(const char *p, size_t n, char **out)
{
    buf dec = BUF_INIT, enc = BUF_INIT;
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (p[i] == '%' && i + 2 < n && (hi = codec_hex_value(p[i + 1])) >= 0 &&
            (lo = codec_hex_value(p[i + 2])) >= 0) {
            if (buf_putc(&dec, (char)(hi << 4 | lo)) < 0)
                goto out;
            i += 2;
        } else if (buf_putc(&dec, p[i]) < 0) {
            goto out;
        }
    }
    if (uri_encode(&enc, dec.data ? dec.data : "", dec.len, 0) < 0 || buf_putc(&enc, '\0') < 0)
        goto out;
    *out = enc.data;
    enc.data = NULL;
    rc = 0;
out:
    buf_free(&dec);
    buf_free(&enc);
    return rc;
}

/* Canonical URI: normalize segments, then encode (which double-encodes '%'). */
static int canonical_uri(buf *b, const char *path)
{
    if (!path || !*path)
        return buf_putc(b, '/');
    size_t n = strlen(path);
    /* Segment stack as (offset, length) pairs into path. */
    size_t *seg = malloc((n + 1) * 2 * sizeof *seg);
    if (!seg)
        return -1;
    size_t nseg = 0;
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        size_t len = j - i;
        if (len == 0 || (len == 1 && path[i] == '.')) {
            /* empty or '.' segment: dropped */
        } else if (len == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (nseg)
                nseg--;
        } else {
            seg[2 * nseg] = i;
            seg[2 * nseg + 1] = len;
            nseg++;
        }
        i = j + 1;
    }
    int rc = 0;
    if (path[0] == '/')
        rc |= buf_putc(b, '/');
    for (size_t k = 0; k < nseg && rc == 0; k++) {
        if (k)
            rc |= buf_putc(b, '/');
        rc |= uri_encode(b, path + seg[2 * k], seg[2 * k + 1], 0);
    }
    if (rc == 0 && nseg && path[n - 1] == '/')
        rc |= buf_putc(b, '/');
    if (rc == 0 && b->len == 0)
        rc |= buf_putc(b, '/');
    free(seg);
    return rc ? -1 : 0;
}

typedef struct kv {
    char *k, *v;
    size_t order;
} kv;

static int cmp_query(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

static int cmp_header(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void free_kvs(kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].k);
        free(v[i].v);
    }
    free(v);
}

static int canonical_query(buf *b, const char *q)
{
    if (!q || !*q)
        return 0;
    size_t cap = 1;
    for (const char *p = q; *p; p++)
        cap += *p == '&';
    kv *v = calloc(cap, sizeof *v);
    if (!v)
        return -1;
    size_t nv = 0;
    int rc = -1;
    for (const char *p = q; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t kl = eq ? (size_t)(eq - p) : len;
            if (query_component(p, kl, &v[nv].k) < 0)
                goto out;
            if (query_component(eq ? eq + 1 : "", eq ? len - kl - 1 : 0, &v[nv].v) < 0) {
                free(v[nv].k);
                goto out;
            }
            nv++;
        }
        p += len + (amp != NULL);
    }
    qsort(v, nv, sizeof *v, cmp_query);
    rc = 0;
    for (size_t i = 0; i < nv && rc == 0; i++)
        rc = buf_printf(b, "%s%s=%s", i ? "&" : "", v[i].k, v[i].v);
out:
    free_kvs(v, nv);
    return rc;
}

static int unsignable(const char *name)
{
    static const char *const never[] = {
        "authorization", "cache-control", "connection", "expect", "from", "keep-alive",
        "max-forwards", "pragma", "referer", "te", "trailer", "transfer-encoding", "upgrade",
        "user-agent", "x-amzn-trace-id", "date", "x-amz-date", NULL};
    for (size_t i = 0; never[i]; i++)
        if (strcmp(name, never[i]) == 0)
            return 1;
    return strncmp(name, "proxy-", 6) == 0 || strncmp(name, "sec-", 4) == 0;
}

/* Lowercased name and whitespace-normalized value as a heap kv. */
static int header_kv(const char *name, size_t nl, const char *val, kv *out)
{
    out->k = malloc(nl + 1);
    out->v = malloc(strlen(val) + 1);
    if (!out->k || !out->v) {
        free(out->k);
        free(out->v);
        return -1;
    }
    for (size_t i = 0; i < nl; i++) {
        char ch = name[i];
        out->k[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    out->k[nl] = '\0';
    size_t o = 0;
    int pending = 0;
    for (const char *p = val; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            pending = o > 0;
        } else {
            if (pending)
                out->v[o++] = ' ';
            pending = 0;
            out->v[o++] = *p;
        }
    }
    out->v[o] = '\0';
    return 0;
}

static int hmac(const void *key, size_t kl, const char *msg, uint8_t out[32])
{
    unsigned int ol = 0;
    return HMAC(EVP_sha256(), key, (int)kl, (const unsigned char *)msg, strlen(msg), out, &ol) &&
                   ol == 32
               ? 0
               : -1;
}

static int sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t md[32];
    unsigned int ml = 0;
    if (!EVP_Digest(p, n, md, &ml, EVP_sha256(), NULL) || ml != 32)
        return -1;
    to_hex(md, 32, out);
    return 0;
}

static int valid_date(const char *d)
{
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return 0;
    return 1;
}

static int token_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '/' || *s == ' ')
            return 0;
    return 1;
}

/* One signing in progress: each step reads what the ones before it made. */
typedef struct sigv4_state {
    const aws_sigv4_request *r;
    const aws_credentials *c;
    const char *region, *service, *amz_date;
    const char *token; /* NULL if none */
    int add_content_sha256;
    char payload[65]; /* hex SHA-256 of the body */
    char sig[65];
    kv *h; /* the signed headers, sorted */
    size_t n;
    buf creq, sts, signed_names, scope;
} sigv4_state;

/* Every header line goes in the same way: order keeps duplicates in the
 * caller's order once sorted. */
static int push_header(sigv4_state *st, const char *name, size_t nl, const char *val)
{
    if (header_kv(name, nl, val, &st->h[st->n]) < 0)
        return -1;
    st->h[st->n].order = st->n;
    st->n++;
    return 0;
}

/* A caller's header that is never signed, or that this signer replaces with
 * its own, must not be signed twice or at all. */
static int replaced_or_unsignable(const sigv4_state *st, const char *name)
{
    return unsignable(name) || (st->token && strcmp(name, "x-amz-security-token") == 0) ||
           (st->add_content_sha256 && strcmp(name, "x-amz-content-sha256") == 0);
}

/* What is signed is a fixed, sorted set: the caller's headers that may be
 * signed plus the signer's own, in st->h (st->n of them). */
static int collect_headers(sigv4_state *st)
{
    const aws_sigv4_request *r = st->r;
    size_t nh = 0;
    if (r->headers)
        while (r->headers[nh])
            nh++;
    st->h = calloc(nh + 3, sizeof *st->h);
    if (!st->h)
        return -1;
    for (size_t i = 0; i < nh; i++) {
        const char *line = r->headers[i], *colon = strchr(line, ':');
        if (!colon || colon == line || push_header(st, line, (size_t)(colon - line), colon + 1) < 0)
            return -1;
        if (replaced_or_unsignable(st, st->h[st->n - 1].k)) {
            st->n--;
            free(st->h[st->n].k);
            free(st->h[st->n].v);
            st->h[st->n].k = st->h[st->n].v = NULL;
        }
    }
    if (push_header(st, "x-amz-date", 10, st->amz_date) < 0 ||
        (st->token && push_header(st, "x-amz-security-token", 20, st->token) < 0) ||
        (st->add_content_sha256 && push_header(st, "x-amz-content-sha256", 20, st->payload) < 0))
        return -1;
    qsort(st->h, st->n, sizeof *st->h, cmp_header);
    return 0;
}

/* Canonical request: what AWS hashes on its side; any byte of difference
 * fails the signature. Also lists the signed header names. */
static int canonical_request(sigv4_state *st)
{
    buf *creq = &st->creq;
    const kv *h = st->h;
    if (buf_printf(creq, "%s\n", st->r->method) < 0 || canonical_uri(creq, st->r->path) < 0 ||
        buf_putc(creq, '\n') < 0 || canonical_query(creq, st->r->query) < 0 ||
        buf_putc(creq, '\n') < 0)
        return -1;
    for (size_t i = 0; i < st->n;) {
        size_t j = i + 1;
        if (buf_printf(creq, "%s:%s", h[i].k, h[i].v) < 0 ||
            buf_printf(&st->signed_names, "%s%s", i ? ";" : "", h[i].k) < 0)
            return -1;
        for (; j < st->n && strcmp(h[j].k, h[i].k) == 0; j++)
            if (buf_printf(creq, ",%s", h[j].v) < 0)
                return -1;
        if (buf_putc(creq, '\n') < 0)
            return -1;
        i = j;
    }
    if (buf_putc(&st->signed_names, '\0') < 0 ||
        buf_printf(creq, "\n%s\n%s", st->signed_names.data, st->payload) < 0)
        return -1;
    return 0;
}

/* String to sign: binds the canonical request's hash to the time and the
 * credential scope. NUL-terminated (not counted in len) for the HMAC. */
static int string_to_sign_of(sigv4_state *st)
{
    char creq_hash[65];
    if (sha256_hex(st->creq.data, st->creq.len, creq_hash) < 0 ||
        buf_printf(&st->scope, "%.8s/%s/%s/aws4_request", st->amz_date, st->region,
                   st->service) < 0 ||
        buf_printf(&st->sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", st->amz_date, st->scope.data,
                   creq_hash) < 0 ||
        buf_putc(&st->sts, '\0') < 0)
        return -1;
    st->sts.len--;
    return 0;
}

/* The secret never signs directly: a key scoped to the date, region and
 * service is derived from it (HMAC chain from "AWS4" + secret), used once
 * and wiped. */
static int signature(sigv4_state *st)
{
    uint8_t k[32], k2[32];
    char date8[9];
    memcpy(date8, st->amz_date, 8);
    date8[8] = '\0';
    size_t sl = strlen(st->c->secret_access_key);
    char *seed = malloc(sl + 5);
    if (!seed)
        return -1;
    memcpy(seed, "AWS4", 4);
    memcpy(seed + 4, st->c->secret_access_key, sl + 1);
    int hr = hmac(seed, sl + 4, date8, k);
    OPENSSL_cleanse(seed, sl + 4);
    free(seed);
    if (hr < 0 || hmac(k, 32, st->region, k2) < 0 || hmac(k2, 32, st->service, k) < 0 ||
        hmac(k, 32, "aws4_request", k2) < 0 || hmac(k2, 32, st->sts.data, k) < 0)
        return -1;
    to_hex(k, 32, st->sig);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(k2, sizeof k2);
    return 0;
}

/* The headers the signature covers must be sent as signed, so all of them
 * are added, or none (out_headers restored on failure). */
static int authorization(const sigv4_state *st, buf *out_headers)
{
    size_t mark = out_headers->len;
    if (buf_printf(out_headers, "X-Amz-Date: %s\n", st->amz_date) < 0 ||
        (st->add_content_sha256 &&
         buf_printf(out_headers, "X-Amz-Content-Sha256: %s\n", st->payload) < 0) ||
        (st->token &&
         buf_printf(out_headers, "X-Amz-Security-Token: %s\n", st->token) < 0) ||
        buf_printf(out_headers,
                   "Authorization: AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                   "Signature=%s\n",
                   st->c->access_key_id, st->scope.data, st->signed_names.data, st->sig) < 0) {
        out_headers->len = mark;
        return -1;
    }
    return 0;
}

int aws_sigv4_sign(const aws_sigv4_request *r, const aws_credentials *c, const char *region,
                   const char *service, const char *amz_date, int add_content_sha256,
                   buf *out_headers, buf *canonical, buf *string_to_sign)
{
    if (!r || !c || !r->method || !*r->method || !c->access_key_id || !c->secret_access_key ||
        !token_ok(region) || !token_ok(service) || !valid_date(amz_date) || !out_headers ||
        (r->body_len && !r->body))
        return -1;
    sigv4_state st = {
        .r = r, .c = c, .region = region, .service = service, .amz_date = amz_date,
        .token = c->session_token && *c->session_token ? c->session_token : NULL,
        .add_content_sha256 = add_content_sha256,
        .creq = BUF_INIT, .sts = BUF_INIT, .signed_names = BUF_INIT, .scope = BUF_INIT,
    };
    if (sha256_hex(r->body_len ? (const void *)r->body : "", r->body_len, st.payload) < 0)
        return -1;
    int rc = -1;
    if (collect_headers(&st) < 0 || canonical_request(&st) < 0 || string_to_sign_of(&st) < 0 ||
        signature(&st) < 0 || authorization(&st, out_headers) < 0)
        goto out;
    if (canonical && buf_append(canonical, st.creq.data, st.creq.len) < 0)
        goto out;
    if (string_to_sign && buf_append(string_to_sign, st.sts.data, st.sts.len) < 0)
        goto out;
    rc = 0;
out:
    free_kvs(st.h, st.n);
    buf_free(&st.creq);
    buf_free(&st.sts);
    buf_free(&st.signed_names);
    buf_free(&st.scope);
    return rc;
}

void aws_sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

int aws_sigv4_url_parts(const char *url, char *host, size_t hostcap, const char **path, size_t *pathlen,
                        const char **query)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return -1;
    p += 3;
    size_t alen = strcspn(p, "/?#");
    if (alen == 0 || alen >= hostcap || memchr(p, '@', alen) != NULL)
        return -1;
    memcpy(host, p, alen);
    host[alen] = '\0';
    /* Drop a port that is the scheme's default: curl does not send it. */
    size_t hl = alen;
    if (strncmp(url, "https://", 8) == 0 && hl > 4 && strcmp(host + hl - 4, ":443") == 0)
        host[hl - 4] = '\0';
    else if (strncmp(url, "http://", 7) == 0 && hl > 3 && strcmp(host + hl - 3, ":80") == 0)
        host[hl - 3] = '\0';
    p += alen;
    *path = *p == '/' ? p : "/";
    *pathlen = *p == '/' ? strcspn(p, "?#") : 1;
    const char *q = strchr(p, '?');
    *query = q != NULL ? q + 1 : NULL;
    return 0;
}
