/* aws_ini: the shared config and credentials files (aws_ini.h). */
#include "aws_ini.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

#define AWS_INI_MAX_FILE (1024 * 1024) /* these files are a few KiB */

typedef struct aws_ini_entry {
    char *profile, *key, *value;
    unsigned line;
} aws_ini_entry;

struct aws_ini {
    char *name;
    char **profiles; /* every profile section seen, once each */
    size_t n_profiles;
    aws_ini_entry *entries;
    size_t n, cap;
};

static int aws_ini_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int aws_ini_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* s[0..*n) with surrounding blanks removed (returns the new start). */
static const char *aws_ini_trim(const char *s, size_t *n)
{
    while (*n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        (*n)--;
    }
    while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t' || s[*n - 1] == '\r'))
        (*n)--;
    return s;
}

static int aws_ini_add_profile(aws_ini *f, const char *name, size_t n)
{
    for (size_t i = 0; i < f->n_profiles; i++)
        if (strlen(f->profiles[i]) == n && memcmp(f->profiles[i], name, n) == 0)
            return 0;
    char **grown = realloc(f->profiles, (f->n_profiles + 1) * sizeof(*grown));
    if (grown == NULL)
        return -1;
    f->profiles = grown;
    if ((f->profiles[f->n_profiles] = strndup(name, n)) == NULL)
        return -1;
    f->n_profiles++;
    return 0;
}

/* The profile a section header names, or *name NULL for a section that is
 * not a profile in this kind of file. -1 when the header is malformed. */
static int aws_ini_section(const char *s, size_t n, aws_ini_kind kind, const char **name, size_t *nlen)
{
    /* s[0] is '['; a comment may follow the ']'. */
    const char *close = memchr(s, ']', n);
    if (close == NULL)
        return -1;
    size_t rest = n - (size_t)(close + 1 - s);
    const char *after = aws_ini_trim(close + 1, &rest);
    if (rest > 0 && after[0] != '#' && after[0] != ';')
        return -1;
    size_t in = (size_t)(close - s - 1);
    const char *inner = aws_ini_trim(s + 1, &in);
    if (in == 0)
        return -1;
    *name = NULL;
    int prefixed = in > 7 && strncmp(inner, "profile", 7) == 0 && (inner[7] == ' ' || inner[7] == '\t');
    if (kind == AWS_INI_CREDENTIALS) {
        if (!prefixed) {
            *name = inner;
            *nlen = in;
        }
    } else if (prefixed) {
        size_t pn = in - 7;
        *name = aws_ini_trim(inner + 7, &pn);
        *nlen = pn;
    } else if (in == 7 && strncmp(inner, "default", 7) == 0) {
        *name = inner;
        *nlen = in;
    }
    return 0;
}

static int aws_ini_add(aws_ini *f, const char *profile, const char *key, size_t klen, const char *value, size_t vlen,
                       unsigned line)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        aws_ini_entry *grown = realloc(f->entries, cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        f->entries = grown;
        f->cap = cap;
    }
    aws_ini_entry *e = &f->entries[f->n];
    e->profile = strdup(profile);
    e->key = strndup(key, klen);
    e->value = strndup(value, vlen);
    e->line = line;
    if (e->profile == NULL || e->key == NULL || e->value == NULL) {
        free(e->profile);
        free(e->key);
        free(e->value);
        return -1;
    }
    f->n++;
    return 0;
}

/* Appends "\n" + more to the last entry's value (a continuation line). */
static int aws_ini_continue(aws_ini *f, const char *more, size_t n)
{
    aws_ini_entry *e = &f->entries[f->n - 1];
    size_t old = strlen(e->value);
    char *v = realloc(e->value, old + 1 + n + 1);
    if (v == NULL)
        return -1;
    v[old] = '\n';
    memcpy(v + old + 1, more, n);
    v[old + 1 + n] = '\0';
    e->value = v;
    return 0;
}

/* Parse state: the current section, and what an indented line would continue. */
typedef struct aws_ini_state {
    char *profile; /* NULL: before any section, or in a section that is not a profile */
    int in_section;
    enum { AWS_INI_NOTHING, AWS_INI_VALUE, AWS_INI_SUBPROPS } last;
} aws_ini_state;

static int aws_ini_line(aws_ini *f, aws_ini_kind kind, aws_ini_state *st, const char *raw, size_t rawlen,
                        unsigned lineno, char *err, size_t errlen)
{
    size_t n = rawlen;
    const char *s = aws_ini_trim(raw, &n);
    if (n == 0 || s[0] == '#' || s[0] == ';')
        return 0;
    if (s != raw) { /* indented: continues the property above */
        if (st->last == AWS_INI_NOTHING)
            return aws_ini_fail(err, errlen, "%s:%u: indented line continues no property", f->name, lineno);
        if (st->last == AWS_INI_VALUE && st->profile != NULL && aws_ini_continue(f, s, n) != 0)
            return aws_ini_fail(err, errlen, "out of memory");
        return 0; /* a sub-property, or a section that is not a profile */
    }
    if (s[0] == '[') {
        const char *name;
        size_t nlen;
        if (aws_ini_section(s, n, kind, &name, &nlen) != 0)
            return aws_ini_fail(err, errlen, "%s:%u: malformed section header (expected [name])", f->name, lineno);
        free(st->profile);
        st->profile = NULL;
        st->in_section = 1;
        st->last = AWS_INI_NOTHING;
        if (name != NULL &&
            ((st->profile = strndup(name, nlen)) == NULL || aws_ini_add_profile(f, name, nlen) != 0))
            return aws_ini_fail(err, errlen, "out of memory");
        return 0;
    }
    const char *eq = memchr(s, '=', n);
    if (eq == NULL)
        return aws_ini_fail(err, errlen, "%s:%u: expected key = value", f->name, lineno);
    size_t klen = (size_t)(eq - s), vlen = n - klen - 1;
    const char *key = aws_ini_trim(s, &klen), *value = aws_ini_trim(eq + 1, &vlen);
    if (klen == 0)
        return aws_ini_fail(err, errlen, "%s:%u: empty key before '='", f->name, lineno);
    if (!st->in_section)
        return aws_ini_fail(err, errlen, "%s:%u: property outside a [section]", f->name, lineno);
    st->last = vlen == 0 ? AWS_INI_SUBPROPS : AWS_INI_VALUE;
    if (st->profile != NULL && aws_ini_add(f, st->profile, key, klen, value, vlen, lineno) != 0)
        return aws_ini_fail(err, errlen, "out of memory");
    return 0;
}

aws_ini *aws_ini_parse(const char *name, const char *text, size_t len, aws_ini_kind kind, char *err, size_t errlen)
{
    aws_ini *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->name = strdup(name)) == NULL) {
        aws_ini_free(f);
        aws_ini_fail(err, errlen, "out of memory");
        return NULL;
    }
    aws_ini_state st = {0};
    unsigned lineno = 0;
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        const char *line = text + off;
        const char *nl = memchr(line, '\n', len - off);
        size_t n = nl ? (size_t)(nl - line) : len - off;
        off += n + (nl != NULL);
        lineno++;
        if (memchr(line, '\0', n) != NULL)
            rc = aws_ini_fail(err, errlen, "%s:%u: contains a NUL byte", f->name, lineno);
        else
            rc = aws_ini_line(f, kind, &st, line, n, lineno, err, errlen);
    }
    free(st.profile);
    if (rc != 0) {
        aws_ini_free(f);
        return NULL;
    }
    return f;
}

int aws_ini_has_profile(const aws_ini *f, const char *profile)
{
    for (size_t i = 0; f != NULL && i < f->n_profiles; i++)
        if (strcmp(f->profiles[i], profile) == 0)
            return 1;
    return 0;
}

const char *aws_ini_get(const aws_ini *f, const char *profile, const char *key, unsigned *line)
{
    /* The last one wins: search backwards. */
    for (size_t i = f != NULL ? f->n : 0; i-- > 0;) {
        const aws_ini_entry *e = &f->entries[i];
        if (strcmp(e->profile, profile) == 0 && strcasecmp(e->key, key) == 0) {
            if (line != NULL)
                *line = e->line;
            return e->value;
        }
    }
    return NULL;
}

const char *aws_ini_name(const aws_ini *f) { return f->name; }

void aws_ini_free(aws_ini *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->entries[i].profile);
        free(f->entries[i].key);
        if (f->entries[i].value != NULL) /* may be a secret */
            explicit_bzero(f->entries[i].value, strlen(f->entries[i].value));
        free(f->entries[i].value);
    }
    for (size_t i = 0; i < f->n_profiles; i++)
        free(f->profiles[i]);
    free(f->profiles);
    free(f->entries);
    free(f->name);
    free(f);
}

/* ---- the pair of files ---- */

/* `env` if set and non-empty, else $HOME/.aws/<base>; NULL without HOME. */
static char *aws_profiles_path(const char *env, const char *base)
{
    const char *v = getenv(env);
    if (v != NULL && v[0] != '\0')
        return strdup(v);
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0')
        return NULL;
    buf b = BUF_INIT;
    if (buf_printf(&b, "%s/.aws/%s", home, base) != 0) {
        buf_free(&b);
        return NULL;
    }
    return b.data;
}

static int aws_profiles_read(const char *env, const char *base, aws_ini_kind kind, aws_ini **out, char *err,
                             size_t errlen)
{
    *out = NULL;
    char *path = aws_profiles_path(env, base);
    if (path == NULL)
        return 0;
    buf text = BUF_INIT;
    int rc = 0;
    if (buf_read_file(&text, path, AWS_INI_MAX_FILE) != 0) {
        if (errno != ENOENT)
            rc = errno == EFBIG ? aws_ini_fail(err, errlen, "%s: larger than %d bytes", path, AWS_INI_MAX_FILE)
                                : aws_ini_fail(err, errlen, "%s: %s", path, strerror(errno));
    } else if ((*out = aws_ini_parse(path, text.data ? text.data : "", text.len, kind, err, errlen)) == NULL) {
        rc = -1;
    }
    if (text.data != NULL)
        explicit_bzero(text.data, text.cap);
    buf_free(&text);
    free(path);
    return rc;
}

int aws_profiles_load(aws_profiles *p, char *err, size_t errlen)
{
    p->config = p->credentials = NULL;
    if (aws_profiles_read("AWS_CONFIG_FILE", "config", AWS_INI_CONFIG, &p->config, err, errlen) != 0 ||
        aws_profiles_read("AWS_SHARED_CREDENTIALS_FILE", "credentials", AWS_INI_CREDENTIALS, &p->credentials, err,
                          errlen) != 0) {
        aws_profiles_free(p);
        return -1;
    }
    return 0;
}

int aws_profiles_has(const aws_profiles *p, const char *profile)
{
    return aws_ini_has_profile(p->credentials, profile) || aws_ini_has_profile(p->config, profile);
}

const char *aws_profiles_get(const aws_profiles *p, const char *profile, const char *key, char *where,
                             size_t wherecap)
{
    const aws_ini *files[] = {p->credentials, p->config};
    for (size_t i = 0; i < 2; i++) {
        unsigned line;
        const char *v = aws_ini_get(files[i], profile, key, &line);
        if (v != NULL) {
            if (where != NULL)
                snprintf(where, wherecap, "%s:%u", files[i]->name, line);
            return v;
        }
    }
    return NULL;
}

void aws_profiles_free(aws_profiles *p)
{
    aws_ini_free(p->config);
    aws_ini_free(p->credentials);
    p->config = p->credentials = NULL;
}
