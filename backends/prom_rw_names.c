/* prom_rw_names: Prometheus names and label texts (see prom_rw_names.h).
 *
 * A metric name is built as a list of words (pointer and length into the
 * name, the unit text or constants) and joined once at the end, which is
 * how "a word already present" and "move `total` to the end" stay simple. */
#include "prom_rw_names.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Words of a name; a name of n bytes has at most n/2 + 1 of them, plus the
 * two unit words and `total` or `ratio`. */
typedef struct prom_rw_word {
    const char *s;
    size_t n;
} prom_rw_word;

static int prom_rw_metric_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == ':';
}

static int prom_rw_label_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static int prom_rw_is_digit(char ch) { return ch >= '0' && ch <= '9'; }

static int prom_rw_is_space(char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r'); }

/* 0 when what was appended since start has a character other than '_';
 * else it is taken back and the answer is 1 (no valid name). */
static int prom_rw_check_written(buf *out, size_t start)
{
    for (size_t i = start; i < out->len; i++)
        if (out->data[i] != '_')
            return 0;
    out->len = start;
    return 1;
}

/* ---- units ---- */

/* otlptranslator's unit tables: UCUM units spelled out, and the unit after
 * a '/' in the singular. Units not listed are used as written. */
static const char *prom_rw_unit_lookup(const char *u, size_t n, int per)
{
    static const char *const units[][2] = {
        {"d", "days"},          {"h", "hours"},         {"min", "minutes"},    {"s", "seconds"},
        {"ms", "milliseconds"}, {"us", "microseconds"}, {"ns", "nanoseconds"}, {"By", "bytes"},
        {"KiBy", "kibibytes"},  {"MiBy", "mebibytes"},  {"GiBy", "gibibytes"}, {"TiBy", "tibibytes"},
        {"KBy", "kilobytes"},   {"MBy", "megabytes"},   {"GBy", "gigabytes"},  {"TBy", "terabytes"},
        {"m", "meters"},        {"V", "volts"},         {"A", "amperes"},      {"J", "joules"},
        {"W", "watts"},         {"g", "grams"},         {"Cel", "celsius"},    {"Hz", "hertz"},
        {"1", ""},              {"%", "percent"}};
    static const char *const per_units[][2] = {{"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
                                               {"w", "week"},   {"mo", "month"}, {"y", "year"}};
    const char *const(*table)[2] = per ? per_units : units;
    size_t len = per ? sizeof(per_units) / sizeof(per_units[0]) : sizeof(units) / sizeof(units[0]);
    for (size_t i = 0; i < len; i++)
        if (strlen(table[i][0]) == n && memcmp(table[i][0], u, n) == 0)
            return table[i][1];
    return NULL;
}

/* One side of a unit ("By" before the '/', "s" after it) as its word,
 * cleaned: characters outside [A-Za-z0-9:] become '_', runs of '_'
 * collapse, one leading '_' goes (a trailing one stays, as upstream).
 * Nothing for an empty side or one with a {annotation}. "per_" goes in
 * front of the per side. */
static int prom_rw_unit_side(buf *out, const char *u, size_t n, int per)
{
    while (n > 0 && prom_rw_is_space(u[0]))
        u++, n--;
    while (n > 0 && prom_rw_is_space(u[n - 1]))
        n--;
    if (n == 0 || memchr(u, '{', n) != NULL || memchr(u, '}', n) != NULL)
        return 0;
    const char *word = prom_rw_unit_lookup(u, n, per);
    size_t wn = word != NULL ? strlen(word) : n;
    if (word == NULL)
        word = u;
    if (wn == 0)
        return 0;
    size_t start = out->len;
    if (per && buf_puts(out, "per_") != 0)
        return -1;
    for (size_t i = 0; i < wn; i++) {
        char ch = prom_rw_metric_char((unsigned char)word[i]) ? word[i] : '_';
        if (ch == '_' && (out->len == start || out->data[out->len - 1] == '_'))
            continue; /* collapsed, or the leading '_' upstream trims */
        if (buf_putc(out, ch) != 0)
            return -1;
    }
    return 0;
}

/* The unit's main and per words, appended to out one after the other;
 * *main_len tells where the per word starts. */
static int prom_rw_unit_words(buf *out, const char *unit, size_t *main_len)
{
    const char *slash = strchr(unit, '/');
    size_t start = out->len;
    if (prom_rw_unit_side(out, unit, slash != NULL ? (size_t)(slash - unit) : strlen(unit), 0) != 0)
        return -1;
    *main_len = out->len - start;
    return slash != NULL ? prom_rw_unit_side(out, slash + 1, strlen(slash + 1), 1) : 0;
}

int prom_rw_unit_name(buf *out, const char *unit)
{
    const char *slash = strchr(unit, '/');
    size_t start = out->len;
    if (prom_rw_unit_side(out, unit, slash != NULL ? (size_t)(slash - unit) : strlen(unit), 0) != 0)
        return -1;
    size_t main_end = out->len;
    if (main_end > start && buf_putc(out, '_') != 0) /* joins main and per, if both */
        return -1;
    size_t per_start = out->len;
    if (slash != NULL && prom_rw_unit_side(out, slash + 1, strlen(slash + 1), 1) != 0)
        return -1;
    if (out->len == per_start)
        out->len = main_end;
    if (out->len > start && out->data[out->len - 1] == '_')
        out->len--;
    return 0;
}

/* ---- metric names ---- */

static int prom_rw_word_is(const prom_rw_word *w, const char *s, size_t n)
{
    return w->n == n && memcmp(w->s, s, n) == 0;
}

static int prom_rw_words_have(const prom_rw_word *w, size_t nw, const char *s, size_t n)
{
    for (size_t i = 0; i < nw; i++)
        if (prom_rw_word_is(&w[i], s, n))
            return 1;
    return 0;
}

/* Removes every word equal to s, then appends s. */
static void prom_rw_words_move_last(prom_rw_word *w, size_t *nw, const char *s)
{
    size_t n = strlen(s), k = 0;
    for (size_t i = 0; i < *nw; i++)
        if (!prom_rw_word_is(&w[i], s, n))
            w[k++] = w[i];
    w[k++] = (prom_rw_word){s, n};
    *nw = k;
}

/* Splits s into runs of characters for which keep() holds. */
static size_t prom_rw_split(const char *s, int (*keep)(unsigned char), prom_rw_word *w)
{
    size_t nw = 0;
    for (const char *p = s; *p != '\0';) {
        if (!keep((unsigned char)*p)) {
            p++;
            continue;
        }
        const char *start = p;
        while (*p != '\0' && keep((unsigned char)*p))
            p++;
        w[nw++] = (prom_rw_word){start, (size_t)(p - start)};
    }
    return nw;
}

static int prom_rw_metric_or_underscore(unsigned char ch) { return prom_rw_metric_char(ch) || ch == '_'; }

/* Joins the words with '_' (a leading digit gets a '_' first); 1 when
 * there is nothing, or nothing but underscores. */
static int prom_rw_join_words(buf *out, const prom_rw_word *w, size_t nw)
{
    size_t start = out->len;
    if (nw > 0 && prom_rw_is_digit(w[0].s[0]) && buf_putc(out, '_') != 0)
        return -1;
    for (size_t i = 0; i < nw; i++)
        if ((i > 0 && buf_putc(out, '_') != 0) || buf_append(out, w[i].s, w[i].n) != 0)
            return -1;
    return prom_rw_check_written(out, start);
}

int prom_rw_metric_name(buf *out, const char *name, const char *unit, prom_rw_kind kind, int suffixes)
{
    prom_rw_word *w = calloc(strlen(name) / 2 + 4, sizeof(*w));
    buf units = BUF_INIT;
    size_t main_len = 0;
    int rc = w == NULL ? -1 : 0;
    if (rc == 0 && !suffixes) {
        /* underscores are part of the words here, so they stay as written */
        rc = prom_rw_join_words(out, w, prom_rw_split(name, prom_rw_metric_or_underscore, w));
        goto done;
    }
    /* reserved first: units.data is then never NULL, even for no unit */
    if (rc != 0 || buf_reserve(&units, 32) != 0 || prom_rw_unit_words(&units, unit, &main_len) != 0) {
        rc = -1;
        goto done;
    }
    size_t nw = prom_rw_split(name, prom_rw_metric_char, w);
    const char *main = units.data, *per = units.data + main_len;
    size_t per_len = units.len - main_len;
    if (prom_rw_words_have(w, nw, main, main_len))
        main_len = 0;
    if (per_len == 4) /* "per_" alone: the per side cleaned to nothing */
        per_len = 0;
    if (per_len > 0 && per[per_len - 1] == '_')
        per_len--;
    if (prom_rw_words_have(w, nw, per, per_len))
        per_len = 0;
    if (per_len > 0 && main_len > 0 && main[main_len - 1] == '_')
        main_len--;
    if (main_len > 0)
        w[nw++] = (prom_rw_word){main, main_len};
    if (per_len > 0)
        w[nw++] = (prom_rw_word){per, per_len};
    if (kind == PROM_RW_KIND_COUNTER)
        prom_rw_words_move_last(w, &nw, "total");
    /* "1" exactly, as upstream compares it; only gauges, as a dimensionless
     * count (a common misuse of "1") is no ratio */
    if (kind == PROM_RW_KIND_GAUGE && strcmp(unit, "1") == 0)
        prom_rw_words_move_last(w, &nw, "ratio");
    rc = prom_rw_join_words(out, w, nw);
done:
    buf_free(&units);
    free(w);
    return rc;
}

/* ---- label names ---- */

/* Characters outside [A-Za-z0-9] as '_', runs collapsed. */
static int prom_rw_put_label_chars(buf *out, const char *s, size_t n)
{
    int underscore = 0;
    for (size_t i = 0; i < n; i++) {
        if (prom_rw_label_char((unsigned char)s[i])) {
            underscore = 0;
            if (buf_putc(out, s[i]) != 0)
                return -1;
        } else if (!underscore) {
            underscore = 1;
            if (buf_putc(out, '_') != 0)
                return -1;
        }
    }
    return 0;
}

int prom_rw_label_name(buf *out, const char *key)
{
    size_t n = strlen(key), start = out->len;
    int reserved = n >= 4 && key[0] == '_' && key[1] == '_' && key[n - 2] == '_' && key[n - 1] == '_';
    if (n == 0)
        return 1;
    if (prom_rw_is_digit(key[0]) && buf_puts(out, "key_") != 0)
        return -1;
    if (reserved ? buf_puts(out, "__") != 0 || prom_rw_put_label_chars(out, key + 2, n - 4) != 0 ||
                       buf_puts(out, "__") != 0
                 : prom_rw_put_label_chars(out, key, n) != 0)
        return -1;
    return prom_rw_check_written(out, start);
}

/* ---- floats ---- */

/* The shortest decimal digits that read back as d (finite, not negative):
 * digits[] without a point, and the exponent of the first digit. */
static size_t prom_rw_shortest(double d, char *digits, int *exp10)
{
    char tmp[40];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
    size_t n = 0;
    const char *p = tmp;
    for (; *p != 'e'; p++)
        if (*p != '.')
            digits[n++] = *p;
    *exp10 = atoi(p + 1);
    while (n > 1 && digits[n - 1] == '0') /* %.Ne pads; the shortest form does not */
        n--;
    return n;
}

static int prom_rw_put_nonfinite(buf *out, double d)
{
    return buf_puts(out, isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf");
}

/* Go's 'f' with precision -1, or with exponent = 1 its 'e' (exponent
 * without padding, as pdata cleans it). */
static int prom_rw_put_decimal(buf *out, double d, int exponent)
{
    if (!isfinite(d))
        return prom_rw_put_nonfinite(out, d);
    char digits[24];
    int e;
    if (signbit(d) && buf_putc(out, '-') != 0)
        return -1;
    size_t n = prom_rw_shortest(fabs(d), digits, &e);
    if (exponent) {
        if (buf_putc(out, digits[0]) != 0 || (n > 1 && (buf_putc(out, '.') != 0 ||
                                                        buf_append(out, digits + 1, n - 1) != 0)))
            return -1;
        return buf_printf(out, "e%c%d", e < 0 ? '-' : '+', abs(e));
    }
    if (e < 0) {
        if (buf_puts(out, "0.") != 0)
            return -1;
        for (int i = -1; i > e; i--)
            if (buf_putc(out, '0') != 0)
                return -1;
        return buf_append(out, digits, n);
    }
    for (int i = 0; i <= e; i++)
        if (buf_putc(out, (size_t)i < n ? digits[i] : '0') != 0)
            return -1;
    if ((size_t)e + 1 < n && (buf_putc(out, '.') != 0 || buf_append(out, digits + e + 1, n - (size_t)e - 1) != 0))
        return -1;
    return 0;
}

int prom_rw_put_float(buf *out, double d) { return prom_rw_put_decimal(out, d, 0); }

int prom_rw_put_float_attr(buf *out, double d)
{
    double a = fabs(d);
    return prom_rw_put_decimal(out, d, a != 0 && (a < 1e-6 || a >= 1e21));
}
