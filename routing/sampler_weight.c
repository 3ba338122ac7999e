/* sampler_weight: sample rates, th thresholds and policy attributes on kept
 * spans (see sampler_weight.h). */
#include "sampler_weight.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampler_internal.h"

#define TH_DIGITS 14           /* 56 bits */
#define TH_PRECISION 4         /* significant hex digits, as the spec recommends */
#define MAX_TH (1ull << 56)
#define RATE_ATTR "SampleRate" /* Honeycomb's; read back as sampleRate first, then SampleRate */
#define RATE_ATTR_LOWER "sampleRate"

static uint8_t *put(uint8_t *o, const void *p, size_t n)
{
    if (o != NULL)
        memcpy(o, p, n);
    return o != NULL ? o + n : NULL;
}

static uint8_t *put_hdr(uint8_t *o, unsigned num, size_t payload)
{
    return o != NULL ? put_field_hdr(o, num, payload) : NULL;
}

size_t sw_kv_str(unsigned num, const char *key, const char *val, uint8_t *out)
{
    size_t kl = strlen(key), vl = strlen(val);
    size_t any = field_len(vl), kv = field_len(kl) + field_len(any);
    uint8_t *o = put_hdr(out, num, kv);
    o = put(put_hdr(o, 1, kl), key, kl);
    o = put_hdr(put_hdr(o, 2, any), 1, vl);
    put(o, val, vl);
    return field_len(kv);
}

/* KeyValue with a varint AnyValue (field 2 bool, field 3 int). */
static size_t kv_varint(unsigned num, const char *key, unsigned any_field, uint64_t val, uint8_t *out)
{
    size_t kl = strlen(key), any = 1 + varint_len(val), kv = field_len(kl) + field_len(any);
    uint8_t *o = put_hdr(out, num, kv);
    o = put(put_hdr(o, 1, kl), key, kl);
    o = put_hdr(o, 2, any);
    if (o != NULL)
        put_varint(put(o, (uint8_t[]){(uint8_t)(any_field << 3)}, 1), val);
    return field_len(kv);
}

size_t sw_kv_bool(unsigned num, const char *key, int val, uint8_t *out)
{
    return kv_varint(num, key, 2, val != 0, out);
}

size_t sw_scope(const uint8_t *ctx, size_t len, const uint8_t *kv, size_t kvlen, uint8_t *out)
{
    const uint8_t *p = ctx, *end = ctx + len;
    sm_field f;
    size_t n = 0;
    int have_scope = 0;
    uint8_t *o = out;
    while (sm_next_field(&p, end, &f)) {
        if (f.num == 1 && f.wt == 2 && !have_scope) {
            have_scope = 1;
            o = put(put(put_hdr(o, 1, f.plen + kvlen), f.payload, f.plen), kv, kvlen);
            n += field_len(f.plen + kvlen);
        } else {
            o = put(o, f.start, (size_t)(f.end - f.start));
            n += (size_t)(f.end - f.start);
        }
    }
    if (!have_scope) {
        put(put_hdr(o, 1, kvlen), kv, kvlen);
        n += field_len(kvlen);
    }
    return n;
}

/* ---- thresholds ---- */

uint64_t sw_threshold(double p)
{
    if (!(p < 1))
        return 0;
    if (p < 0x1p-56)
        p = 0x1p-56;
    int exp;
    frexp(p, &exp);
    int prec = TH_PRECISION + (exp < 0 ? -exp / 4 : 0); /* more digits near 0: significant ones */
    if (prec > 12)
        prec = 12;
    double rej = 2 - p + ldexp(0.5, -4 * prec); /* in [1, 2): 0x1.<digits>, rounded at prec */
    char buf[40];
    const char *digits = "fffffffffffff";
    if (rej < 2) {
        snprintf(buf, sizeof(buf), "%.13a", rej);
        digits = buf + 4; /* after "0x1." */
    }
    uint64_t th = 0;
    for (int i = 0; i < prec; i++) {
        char c = digits[i];
        th = th << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return th << 4 * (TH_DIGITS - prec);
}

size_t sw_th_text(uint64_t th, char *out)
{
    if (th == 0) {
        strcpy(out, "0");
        return 1;
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < TH_DIGITS; i++)
        out[i] = hex[(th >> 4 * (TH_DIGITS - 1 - i)) & 15];
    size_t n = TH_DIGITS;
    while (n > 1 && out[n - 1] == '0')
        n--;
    out[n] = '\0';
    return n;
}

int sw_th_parse(const char *s, size_t n, uint64_t *th)
{
    if (n == 0 || n > TH_DIGITS)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        v = v << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    *th = v << 4 * (TH_DIGITS - n);
    return 0;
}

/* ---- tracestate ---- */

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* The next list member of s[*i..n) (trimmed), separated by sep. */
static int next_member(const char *s, size_t n, size_t *i, char sep, const char **m, size_t *ml)
{
    while (*i < n && (is_ows(s[*i]) || s[*i] == sep))
        (*i)++;
    if (*i >= n)
        return 0;
    size_t b = *i;
    while (*i < n && s[*i] != sep)
        (*i)++;
    size_t e = *i;
    while (e > b && is_ows(s[e - 1]))
        e--;
    *m = s + b;
    *ml = e - b;
    return 1;
}

static char *append(char *o, const char *p, size_t n)
{
    memcpy(o, p, n);
    return o + n;
}

/* The ot member's value rewritten with th: rv first, th, then the rest.
 * -1 when its th does not parse. */
static char *ot_value(char *o, const char *v, size_t vl, double p_tail, double p_attr, int *bad)
{
    const char *rv = NULL, *m;
    size_t rvl = 0, ml, i = 0;
    double p_in = p_attr > 0 ? p_attr : 1;
    while (next_member(v, vl, &i, ';', &m, &ml)) {
        if (ml > 3 && memcmp(m, "rv:", 3) == 0) {
            rv = m;
            rvl = ml;
        } else if (ml >= 3 && memcmp(m, "th:", 3) == 0) {
            uint64_t th;
            if (sw_th_parse(m + 3, ml - 3, &th) != 0) {
                *bad = 1;
                return o;
            }
            p_in = (double)(MAX_TH - th) / (double)MAX_TH;
        }
    }
    char th_txt[TH_DIGITS + 1];
    size_t tl = sw_th_text(sw_threshold(p_in * p_tail), th_txt);
    o = append(o, "ot=", 3);
    if (rv != NULL)
        o = append(append(o, rv, rvl), ";", 1);
    o = append(append(o, "th:", 3), th_txt, tl);
    i = 0;
    while (next_member(v, vl, &i, ';', &m, &ml))
        if (!(ml >= 3 && (memcmp(m, "rv:", 3) == 0 || memcmp(m, "th:", 3) == 0)))
            o = append(append(o, ";", 1), m, ml);
    return o;
}

size_t sw_tracestate(const char *in, size_t n, double p_tail, double p_attr, char *out)
{
    const char *m, *ot = "";
    size_t ml, otl = 0, i = 0;
    while (next_member(in, n, &i, ',', &m, &ml))
        if (ml >= 3 && memcmp(m, "ot=", 3) == 0) {
            ot = m + 3;
            otl = ml - 3;
        }
    int bad = 0;
    char *o = ot_value(out, ot, otl, p_tail, p_attr, &bad);
    if (bad)
        return (size_t)-1;
    i = 0;
    while (next_member(in, n, &i, ',', &m, &ml))
        if (!(ml >= 3 && memcmp(m, "ot=", 3) == 0))
            o = append(append(o, ",", 1), m, ml);
    return (size_t)(o - out);
}

/* ---- spans ---- */

/* The th of a tracestate's ot member; -1 when there is none (or it does
 * not parse). */
static int ts_th(const char *ts, size_t n, uint64_t *th)
{
    const char *m, *k;
    size_t ml, kl, i = 0, j = 0;
    while (next_member(ts, n, &i, ',', &m, &ml)) {
        if (!(ml >= 3 && memcmp(m, "ot=", 3) == 0))
            continue;
        while (next_member(m + 3, ml - 3, &j, ';', &k, &kl))
            if (kl >= 3 && memcmp(k, "th:", 3) == 0)
                return sw_th_parse(k + 3, kl - 3, th);
    }
    return -1;
}

/* The number an incoming sample-rate attribute holds (Honeycomb's rules:
 * rounded; 1 when it is below 1 or not a number). */
static double rate_value(const uint8_t *any, size_t len)
{
    const uint8_t *p = any, *end = any + len;
    sm_field f;
    double r = 0;
    while (sm_next_field(&p, end, &f)) {
        uint64_t v = 0;
        if (f.num == 3 && f.wt == 0 && get_varint(f.payload, f.end, &v) != NULL) {
            r = (double)(int64_t)v;
        } else if (f.num == 4 && f.wt == 1) {
            double d;
            memcpy(&d, f.payload, 8); /* little-endian, as the hosts this builds for */
            r = floor(d + 0.5);
        } else if (f.num == 1 && f.wt == 2) {
            char buf[64];
            size_t l = f.plen < sizeof(buf) - 1 ? f.plen : sizeof(buf) - 1;
            memcpy(buf, f.payload, l);
            buf[l] = '\0';
            char *e;
            double d = strtod(buf, &e);
            r = e != buf && isfinite(d) ? floor(d + 0.5) : 0;
        }
    }
    return r >= 1 ? r : 1; /* present but 0, negative or not a number: 1 */
}

/* 2 for sampleRate, 1 for SampleRate (Honeycomb's precedence), else 0. */
static int rate_attr(const sm_field *kv, const uint8_t **any, size_t *anylen)
{
    const uint8_t *p = kv->payload, *end = kv->payload + kv->plen;
    sm_field f;
    int which = 0;
    *any = NULL;
    *anylen = 0;
    while (sm_next_field(&p, end, &f)) {
        if (f.num == 1 && f.wt == 2) {
            if (f.plen == strlen(RATE_ATTR_LOWER) && memcmp(f.payload, RATE_ATTR_LOWER, f.plen) == 0)
                which = 2;
            else if (f.plen == strlen(RATE_ATTR) && memcmp(f.payload, RATE_ATTR, f.plen) == 0)
                which = 1;
        } else if (f.num == 2 && f.wt == 2) {
            *any = f.payload;
            *anylen = f.plen;
        }
    }
    return which;
}

size_t sw_span_max(size_t len) { return len + 128 + 64; }

size_t sw_span(const sw_opts *o, double rate, const uint8_t *span, size_t len, uint8_t *out)
{
    const uint8_t *p = span, *end = span + len, *ts = NULL;
    size_t tsl = 0;
    double attr_rate = 0;
    int attr_which = 0;
    sm_field f;
    while (sm_next_field(&p, end, &f)) {
        const uint8_t *any;
        size_t anylen;
        int w;
        if (f.num == 3 && f.wt == 2) {
            ts = f.payload;
            tsl = f.plen;
        } else if (f.num == 9 && f.wt == 2 && (w = rate_attr(&f, &any, &anylen)) > attr_which) {
            attr_which = w;
            attr_rate = rate_value(any, anylen);
        }
    }
    /* the new tracestate (when it parses) */
    char tsbuf[1024];
    size_t ntl = (size_t)-1;
    if (o->threshold && tsl <= sizeof(tsbuf) - 64)
        ntl = sw_tracestate(ts != NULL ? (const char *)ts : "", tsl, 1.0 / rate,
                            attr_rate >= 1 ? 1.0 / attr_rate : 0, tsbuf);
    /* the incoming rate: its attribute, else th's adjusted count, else 1 */
    double in_rate = attr_rate >= 1 ? attr_rate : 1;
    uint64_t th;
    if (attr_rate < 1 && ts != NULL && ts_th((const char *)ts, tsl, &th) == 0)
        in_rate = (double)MAX_TH / (double)(MAX_TH - th);
    size_t n = 0;
    uint8_t *w = out;
    p = span;
    while (sm_next_field(&p, end, &f)) {
        const uint8_t *any;
        size_t anylen;
        if ((f.num == 3 && f.wt == 2 && ntl != (size_t)-1) ||
            (o->sample_rate && f.num == 9 && f.wt == 2 && rate_attr(&f, &any, &anylen) != 0))
            continue;
        w = put(w, f.start, (size_t)(f.end - f.start));
        n += (size_t)(f.end - f.start);
    }
    if (ntl != (size_t)-1) {
        w = put(put_hdr(w, 3, ntl), tsbuf, ntl);
        n += field_len(ntl);
    }
    if (o->sample_rate) {
        double r = floor(in_rate * rate + 0.5);
        uint64_t v = r < 1 ? 1 : r > 9.2e18 ? INT64_MAX : (uint64_t)r;
        n += kv_varint(9, RATE_ATTR, 3, v, w);
    }
    return n;
}
