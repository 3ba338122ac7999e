/* apikey: key generation, the hashed keys file, lookup, and the locked
 * edits of the file behind `otlp-gateway keys` (gateway/keys_cli.c).
 *
 * What is hashed is the whole key string as presented, prefix included, so a
 * check needs no decoding: shape check, one SHA-256, one table lookup.
 *
 * The keys file is read with libyaml's document API (node marks give every
 * error its line) and written with libyaml's emitter, so whatever a tenant or
 * name contains is quoted correctly; only the comment header is written by
 * hand. Writers (create, revoke) hold an flock on the file's directory so two
 * concurrent commands cannot lose each other's change. */
#include "apikey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <yaml.h>

#include "codec.h"
#include "digest.h"

#define APIKEY_PREFIX_LEN (sizeof(APIKEY_PREFIX) - 1)
#define APIKEY_RANDOM_BYTES 32
#define APIKEY_ID_HEX (APIKEY_ID_LEN - 2) /* after "k_" */
#define APIKEY_ID_MAX 64
#define APIKEY_MAX_ENTRIES (1u << 24) /* slots hold uint32 indices; far above any real use */

typedef struct apikey_entry {
    uint8_t digest[DIGEST_SHA256_LEN];
    char *id;
    char *tenant;
    char *name; /* NULL: none */
    int64_t created;
    int64_t expires;
    int revoked;
    size_t line; /* in the file it was read from: duplicate errors name both */
} apikey_entry;

struct apikey_store {
    apikey_entry *entries; /* file order, which the CLI keeps when it rewrites */
    size_t n, cap;
    uint32_t *slots; /* open addressing on the digest: entry index + 1, 0 empty */
    size_t mask;
};

static int apikey_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int apikey_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int apikey_is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int apikey_looks_like(const char *token, size_t len)
{
    if (token == NULL || len != APIKEY_LEN || memcmp(token, APIKEY_PREFIX, APIKEY_PREFIX_LEN) != 0)
        return 0;
    for (size_t i = APIKEY_PREFIX_LEN; i < len; i++)
        if (!apikey_is_b64url(token[i]))
            return 0;
    return 1;
}

/* ---- time -------------------------------------------------------------- */

/* Strict RFC 3339 in UTC, whole seconds: the one form the file is written in. */
int apikey_parse_time(const char *s, int64_t *out)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    if (strlen(s) != APIKEY_TIME_LEN)
        return -1;
    for (size_t i = 0; i < APIKEY_TIME_LEN; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return -1;
    int f[6];
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ", &f[0], &f[1], &f[2], &f[3], &f[4], &f[5]) != 6 || f[0] < 1970 ||
        f[1] < 1 || f[1] > 12 || f[2] < 1 || f[3] > 23 || f[4] > 59 || f[5] > 59)
        return -1;
    struct tm tm = {.tm_year = f[0] - 1900, .tm_mon = f[1] - 1, .tm_mday = f[2], .tm_hour = f[3], .tm_min = f[4],
                    .tm_sec = f[5]};
    time_t t = timegm(&tm);
    /* timegm normalises 02-30 to 03-02; a changed day means the date did not exist. */
    if (t == (time_t)-1 || tm.tm_mday != f[2] || tm.tm_mon != f[1] - 1)
        return -1;
    *out = (int64_t)t;
    return 0;
}

const char *apikey_format_time(int64_t t, char out[APIKEY_TIME_LEN + 1])
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, APIKEY_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, APIKEY_TIME_LEN + 1, "?");
    return out;
}

/* ---- store ------------------------------------------------------------- */

static size_t apikey_slot_of(const apikey_store *s, const uint8_t *digest)
{
    uint64_t h;
    memcpy(&h, digest, sizeof(h)); /* SHA-256 output is already uniform */
    return (size_t)h & s->mask;
}

/* The entry with this digest, or NULL. CRYPTO_memcmp so a probe's timing
 * does not depend on how many leading bytes of a stored digest matched. */
static const apikey_entry *apikey_find(const apikey_store *s, const uint8_t *digest)
{
    for (size_t i = apikey_slot_of(s, digest);; i = (i + 1) & s->mask) {
        uint32_t v = s->slots[i];
        if (v == 0)
            return NULL;
        const apikey_entry *e = &s->entries[v - 1];
        if (CRYPTO_memcmp(e->digest, digest, DIGEST_SHA256_LEN) == 0)
            return e;
    }
}

void apikey_store_free(apikey_store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->entries[i].id);
        free(s->entries[i].tenant);
        free(s->entries[i].name);
    }
    free(s->entries);
    free(s->slots);
    free(s);
}

size_t apikey_store_count(const apikey_store *s)
{
    return s ? s->n : 0;
}

apikey_info apikey_store_entry(const apikey_store *s, size_t i)
{
    const apikey_entry *e = &s->entries[i];
    return (apikey_info){.id = e->id, .tenant = e->tenant, .name = e->name, .created = e->created,
                         .expires = e->expires, .revoked = e->revoked};
}

/* Appends a zeroed entry (times absent); NULL when out of memory or full. */
static apikey_entry *apikey_store_add(apikey_store *s)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        if (cap > APIKEY_MAX_ENTRIES)
            return NULL;
        apikey_entry *e = realloc(s->entries, cap * sizeof(*e));
        if (e == NULL)
            return NULL;
        s->entries = e;
        s->cap = cap;
    }
    apikey_entry *e = &s->entries[s->n++];
    memset(e, 0, sizeof(*e));
    e->created = e->expires = APIKEY_NO_TIME;
    return e;
}

static int apikey_cmp_id(const void *a, const void *b)
{
    const apikey_entry *x = *(const apikey_entry *const *)a, *y = *(const apikey_entry *const *)b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Builds the digest table (at most half full, so probes stay short) and
 * rejects duplicate digests and ids; ids are checked by sorting because a
 * pairwise scan is quadratic in the number of keys. */
static int apikey_store_index(apikey_store *s, const char *path, char *err, size_t errlen)
{
    size_t size = 16;
    while (size < 2 * s->n)
        size *= 2;
    s->mask = size - 1;
    s->slots = calloc(size, sizeof(*s->slots));
    const apikey_entry **by_id = malloc((s->n ? s->n : 1) * sizeof(*by_id));
    int rc = s->slots && by_id ? 0 : apikey_fail(err, errlen, "%s: out of memory", path);
    for (size_t k = 0; rc == 0 && k < s->n; k++) {
        const apikey_entry *e = by_id[k] = &s->entries[k];
        size_t i = apikey_slot_of(s, e->digest);
        while (s->slots[i] != 0 && memcmp(s->entries[s->slots[i] - 1].digest, e->digest, DIGEST_SHA256_LEN) != 0)
            i = (i + 1) & s->mask;
        if (s->slots[i] != 0)
            rc = apikey_fail(err, errlen, "%s:%zu: duplicate sha256 (same key as the entry at line %zu)", path,
                             e->line, s->entries[s->slots[i] - 1].line);
        else
            s->slots[i] = (uint32_t)(k + 1);
    }
    if (rc == 0)
        qsort(by_id, s->n, sizeof(*by_id), apikey_cmp_id);
    for (size_t k = 1; rc == 0 && k < s->n; k++)
        if (strcmp(by_id[k - 1]->id, by_id[k]->id) == 0)
            rc = apikey_fail(err, errlen, "%s:%zu: duplicate id \"%s\" (first at line %zu)", path, by_id[k]->line,
                             by_id[k]->id, by_id[k - 1]->line);
    free(by_id);
    return rc;
}

/* ---- reading the keys file --------------------------------------------- */

typedef struct apikey_reader {
    const char *path;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
} apikey_reader;

enum { APIKEY_F_ID, APIKEY_F_TENANT, APIKEY_F_NAME, APIKEY_F_SHA256, APIKEY_F_CREATED, APIKEY_F_EXPIRES,
       APIKEY_F_REVOKED, APIKEY_F_COUNT };
static const char *const apikey_fields[APIKEY_F_COUNT] = {"id",      "tenant",  "name",   "sha256",
                                                          "created", "expires", "revoked"};

static size_t apikey_line(const yaml_node_t *n)
{
    return n->start_mark.line + 1;
}

/* The node's text if it is a scalar without NUL bytes (which C strings would
 * silently cut), else NULL with an error naming `what`. */
static const char *apikey_scalar(apikey_reader *r, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE) {
        apikey_fail(r->err, r->errlen, "%s:%zu: %s must be a single value", r->path, apikey_line(n), what);
        return NULL;
    }
    const char *v = (const char *)n->data.scalar.value;
    if (strlen(v) != n->data.scalar.length) {
        apikey_fail(r->err, r->errlen, "%s:%zu: %s contains a NUL byte", r->path, apikey_line(n), what);
        return NULL;
    }
    return v;
}

/* Only A-Z a-z 0-9 _ - . : safe unquoted in YAML, shells and log lines. */
int apikey_is_word(const char *v)
{
    for (; *v; v++)
        if (!apikey_is_b64url(*v) && *v != '.')
            return 0;
    return 1;
}

static int apikey_parse_hex(const char *v, uint8_t out[DIGEST_SHA256_LEN])
{
    if (strlen(v) != 2 * DIGEST_SHA256_LEN)
        return -1;
    for (size_t i = 0; i < DIGEST_SHA256_LEN; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)v[2 * i]), lo = OPENSSL_hexchar2int((unsigned char)v[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* One field's value into the entry. Raw values are quoted in errors, cut
 * short: the file holds no secrets, but messages should stay one line. */
static int apikey_read_field(apikey_reader *r, apikey_entry *e, int field, const yaml_node_t *vn)
{
    const char *v = apikey_scalar(r, vn, apikey_fields[field]);
    if (v == NULL)
        return -1;
    size_t line = apikey_line(vn);
    const char *problem = NULL;
    char **str = NULL;
    switch (field) {
    case APIKEY_F_ID:
        if (!*v || strlen(v) > APIKEY_ID_MAX || !apikey_is_word(v))
            problem = "id must be 1-64 characters of A-Z a-z 0-9 _ - .";
        str = &e->id;
        break;
    case APIKEY_F_TENANT:
        problem = *v ? NULL : "tenant is empty";
        str = &e->tenant;
        break;
    case APIKEY_F_NAME: str = &e->name; break;
    case APIKEY_F_SHA256:
        problem = apikey_parse_hex(v, e->digest) == 0 ? NULL : "sha256 must be 64 hex digits";
        break;
    case APIKEY_F_CREATED:
    case APIKEY_F_EXPIRES:
        if (apikey_parse_time(v, field == APIKEY_F_CREATED ? &e->created : &e->expires) != 0)
            return apikey_fail(r->err, r->errlen, "%s:%zu: %s: invalid date \"%.40s\" (use e.g. 2027-01-31T00:00:00Z)",
                               r->path, line, apikey_fields[field], v);
        break;
    default: /* APIKEY_F_REVOKED */
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
            problem = "revoked must be true or false";
        e->revoked = strcmp(v, "true") == 0;
        break;
    }
    if (problem != NULL)
        return apikey_fail(r->err, r->errlen, "%s:%zu: %s (got \"%.40s\")", r->path, line, problem, v);
    if (str != NULL && (*str = strdup(v)) == NULL)
        return apikey_fail(r->err, r->errlen, "%s: out of memory", r->path);
    return 0;
}

static int apikey_read_entry(apikey_reader *r, apikey_store *s, const yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return apikey_fail(r->err, r->errlen, "%s:%zu: each entry under keys must be a mapping", r->path,
                           apikey_line(n));
    apikey_entry *e = apikey_store_add(s);
    if (e == NULL)
        return apikey_fail(r->err, r->errlen, "%s:%zu: out of memory or too many keys", r->path, apikey_line(n));
    e->line = apikey_line(n);
    unsigned seen = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *kn = yaml_document_get_node(r->doc, p->key);
        const char *k = apikey_scalar(r, kn, "a field name");
        if (k == NULL)
            return -1;
        int f = 0;
        while (f < APIKEY_F_COUNT && strcmp(k, apikey_fields[f]) != 0)
            f++;
        if (f == APIKEY_F_COUNT)
            return apikey_fail(r->err, r->errlen,
                               "%s:%zu: unknown field \"%.40s\" (expected id, tenant, name, sha256, created, "
                               "expires, revoked)",
                               r->path, apikey_line(kn), k);
        if (seen & (1u << f))
            return apikey_fail(r->err, r->errlen, "%s:%zu: duplicate field \"%s\"", r->path, apikey_line(kn), k);
        seen |= 1u << f;
        if (apikey_read_field(r, e, f, yaml_document_get_node(r->doc, p->value)) != 0)
            return -1;
    }
    static const int required[] = {APIKEY_F_ID, APIKEY_F_TENANT, APIKEY_F_SHA256};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (!(seen & (1u << required[i])))
            return apikey_fail(r->err, r->errlen, "%s:%zu: entry has no %s", r->path, e->line,
                               apikey_fields[required[i]]);
    return 0;
}

/* The document: a mapping with only `keys`, a sequence (or empty). */
static int apikey_read_doc(apikey_reader *r, apikey_store *s)
{
    const yaml_node_t *root = yaml_document_get_root_node(r->doc);
    if (root == NULL) /* empty file or only comments */
        return 0;
    if (root->type != YAML_MAPPING_NODE)
        return apikey_fail(r->err, r->errlen, "%s:%zu: expected a mapping with `keys:`", r->path, apikey_line(root));
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        const yaml_node_t *kn = yaml_document_get_node(r->doc, p->key);
        const yaml_node_t *vn = yaml_document_get_node(r->doc, p->value);
        const char *k = apikey_scalar(r, kn, "a field name");
        if (k == NULL)
            return -1;
        if (strcmp(k, "keys") != 0)
            return apikey_fail(r->err, r->errlen, "%s:%zu: unknown field \"%.40s\" (expected keys)", r->path,
                               apikey_line(kn), k);
        if (p != root->data.mapping.pairs.start)
            return apikey_fail(r->err, r->errlen, "%s:%zu: duplicate field \"keys\"", r->path, apikey_line(kn));
        if (vn->type == YAML_SCALAR_NODE && vn->data.scalar.length == 0) /* `keys:` with nothing under it */
            continue;
        if (vn->type != YAML_SEQUENCE_NODE)
            return apikey_fail(r->err, r->errlen, "%s:%zu: keys must be a list", r->path, apikey_line(vn));
        for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++)
            if (apikey_read_entry(r, s, yaml_document_get_node(r->doc, *it)) != 0)
                return -1;
    }
    return 0;
}

static int apikey_parse_error(const yaml_parser_t *p, const char *path, char *err, size_t errlen)
{
    if (p->error == YAML_MEMORY_ERROR)
        return apikey_fail(err, errlen, "%s: out of memory", path);
    return apikey_fail(err, errlen, "%s:%zu: invalid YAML: %s%s%s", path, p->problem_mark.line + 1,
                       p->problem ? p->problem : "syntax error", p->context ? " " : "", p->context ? p->context : "");
}

/* Parses the one document `parser` reads (its input already set) into s. */
static int apikey_parse(yaml_parser_t *parser, const char *path, apikey_store *s, char *err, size_t errlen)
{
    yaml_document_t doc;
    int rc;
    if (!yaml_parser_load(parser, &doc)) {
        rc = apikey_parse_error(parser, path, err, errlen);
    } else {
        apikey_reader r = {.path = path, .doc = &doc, .err = err, .errlen = errlen};
        rc = apikey_read_doc(&r, s);
        yaml_document_delete(&doc);
        /* A second document would be ignored silently, hiding whatever it says. */
        if (rc == 0 && !yaml_parser_load(parser, &doc)) {
            rc = apikey_parse_error(parser, path, err, errlen);
        } else if (rc == 0) {
            const yaml_node_t *extra = yaml_document_get_root_node(&doc);
            if (extra != NULL)
                rc = apikey_fail(err, errlen, "%s:%zu: only one YAML document is allowed", path, apikey_line(extra));
            yaml_document_delete(&doc);
        }
    }
    return rc;
}

/* Reads from f, or else from data/len, into a new indexed store. */
static int apikey_store_read(FILE *f, const char *data, size_t len, const char *path, apikey_store **out, char *err,
                             size_t errlen)
{
    *out = NULL;
    apikey_store *s = calloc(1, sizeof(*s));
    yaml_parser_t parser;
    if (s == NULL || !yaml_parser_initialize(&parser)) {
        free(s);
        return apikey_fail(err, errlen, "%s: out of memory", path);
    }
    if (f != NULL)
        yaml_parser_set_input_file(&parser, f);
    else
        yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    int rc = apikey_parse(&parser, path, s, err, errlen);
    yaml_parser_delete(&parser);
    if (rc == 0)
        rc = apikey_store_index(s, path, err, errlen);
    if (rc != 0) {
        apikey_store_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

int apikey_store_parse(const char *name, const char *data, size_t len, apikey_store **out, char *err, size_t errlen)
{
    if (len > 0 && memchr(data, '\0', len) != NULL) { /* refused up front: a clearer error than the YAML one */
        *out = NULL;
        return apikey_fail(err, errlen, "%s: the document contains a NUL byte", name);
    }
    return apikey_store_read(NULL, data, len, name, out, err, errlen);
}

int apikey_store_load(const char *path, apikey_store **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *out = NULL;
        if (errno != ENOENT) /* missing means no keys issued yet; anything else is a real problem */
            return apikey_fail(err, errlen, "%s: %s", path, strerror(errno));
        return apikey_store_read(NULL, "", 0, path, out, err, errlen);
    }
    int rc = apikey_store_read(f, NULL, 0, path, out, err, errlen);
    fclose(f);
    return rc;
}

/* tenant and key_id are also set for revoked and expired keys, so the caller
 * can log which key was refused; they are NULL when no key matched. */
apikey_status apikey_check(const apikey_store *s, const char *token, size_t len, int64_t now, const char **tenant,
                           const char **key_id)
{
    if (tenant)
        *tenant = NULL;
    if (key_id)
        *key_id = NULL;
    if (!apikey_looks_like(token, len))
        return APIKEY_MALFORMED;
    uint8_t digest[DIGEST_SHA256_LEN];
    if (s == NULL || digest_sha256(token, len, digest) != 0)
        return APIKEY_UNKNOWN;
    const apikey_entry *e = apikey_find(s, digest);
    if (e == NULL)
        return APIKEY_UNKNOWN;
    if (tenant)
        *tenant = e->tenant;
    if (key_id)
        *key_id = e->id;
    if (e->revoked)
        return APIKEY_REVOKED;
    if (e->expires != APIKEY_NO_TIME && e->expires <= now)
        return APIKEY_EXPIRED;
    return APIKEY_OK;
}

/* ---- writing the keys file --------------------------------------------- */

static const char apikey_file_header[] =
    "# otlp-gateway API keys. Managed by `otlp-gateway keys create|list|revoke`,\n"
    "# which rewrite this whole file: other comments and formatting are not kept.\n"
    "# Only a SHA-256 hash of each key is stored; the key itself is printed once,\n"
    "# by `keys create`. Per entry: id, tenant, name (optional), sha256 (hex),\n"
    "# created, expires (optional; both RFC 3339 UTC), revoked (true|false).\n";

/* Plain style only where every YAML reader still sees a string (not a bool,
 * null or number); anything else double-quoted, escaped by the emitter. */
static yaml_scalar_style_t apikey_style(const char *v)
{
    static const char *const special[] = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"};
    if (!((*v >= 'A' && *v <= 'Z') || (*v >= 'a' && *v <= 'z')) || !apikey_is_word(v))
        return YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (strcasecmp(v, special[i]) == 0)
            return YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    return YAML_PLAIN_SCALAR_STYLE;
}

/* libyaml's emitter takes ownership of the event whether or not it succeeds;
 * APIKEY_EMIT initialises `ev` (in scope) with `init` and emits it. */
#define APIKEY_EMIT(em, init) ((init) && yaml_emitter_emit((em), &ev))

static int apikey_emit_str(yaml_emitter_t *em, const char *v, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    return APIKEY_EMIT(em,
                       yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)v, (int)strlen(v), 1, 1, style));
}

static int apikey_emit_pair(yaml_emitter_t *em, const char *k, const char *v, yaml_scalar_style_t style)
{
    return apikey_emit_str(em, k, YAML_PLAIN_SCALAR_STYLE) && apikey_emit_str(em, v, style);
}

static int apikey_emit_entry(yaml_emitter_t *em, const apikey_entry *e)
{
    char hex[2 * DIGEST_SHA256_LEN + 1], created[APIKEY_TIME_LEN + 1], expires[APIKEY_TIME_LEN + 1];
    for (size_t i = 0; i < DIGEST_SHA256_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", e->digest[i]);
    const yaml_scalar_style_t plain = YAML_PLAIN_SCALAR_STYLE;
    yaml_event_t ev;
    return APIKEY_EMIT(em, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)) &&
           apikey_emit_pair(em, "id", e->id, plain) &&
           apikey_emit_pair(em, "tenant", e->tenant, apikey_style(e->tenant)) &&
           (e->name == NULL || apikey_emit_pair(em, "name", e->name, apikey_style(e->name))) &&
           apikey_emit_pair(em, "sha256", hex, plain) &&
           (e->created == APIKEY_NO_TIME ||
            apikey_emit_pair(em, "created", apikey_format_time(e->created, created), plain)) &&
           (e->expires == APIKEY_NO_TIME ||
            apikey_emit_pair(em, "expires", apikey_format_time(e->expires, expires), plain)) &&
           apikey_emit_pair(em, "revoked", e->revoked ? "true" : "false", plain) &&
           APIKEY_EMIT(em, yaml_mapping_end_event_initialize(&ev));
}

static int apikey_emit(FILE *f, const apikey_store *s)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&em))
        return -1;
    yaml_emitter_set_output_file(&em, f);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1); /* never fold long names over lines */
    int ok = APIKEY_EMIT(&em, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) &&
             APIKEY_EMIT(&em, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)) &&
             APIKEY_EMIT(&em, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)) &&
             apikey_emit_str(&em, "keys", YAML_PLAIN_SCALAR_STYLE) &&
             APIKEY_EMIT(&em, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
    for (size_t i = 0; ok && i < s->n; i++)
        ok = apikey_emit_entry(&em, &s->entries[i]);
    ok = ok && APIKEY_EMIT(&em, yaml_sequence_end_event_initialize(&ev)) &&
         APIKEY_EMIT(&em, yaml_mapping_end_event_initialize(&ev)) &&
         APIKEY_EMIT(&em, yaml_document_end_event_initialize(&ev, 1)) &&
         APIKEY_EMIT(&em, yaml_stream_end_event_initialize(&ev)) && yaml_emitter_flush(&em);
    yaml_emitter_delete(&em);
    return ok ? 0 : -1;
}

/* The whole document: the comment header, then the keys. */
static int apikey_write_doc(FILE *f, const apikey_store *s)
{
    return fputs(apikey_file_header, f) >= 0 && apikey_emit(f, s) == 0 ? 0 : -1;
}

int apikey_store_format(const apikey_store *s, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = open_memstream(out, len);
    if (f == NULL)
        return -1;
    int rc = apikey_write_doc(f, s);
    if (fclose(f) != 0 || rc != 0) {
        free(*out);
        *out = NULL;
        *len = 0;
        return -1;
    }
    return 0;
}

/* Fills the temp file and makes it durable; closes fd. */
static int apikey_write_fd(int fd, const char *path, const char *tmp, const apikey_store *s, char *err, size_t errlen)
{
    struct stat st;
    /* Keep an existing file's owner: a command run as root must not leave the
     * gateway's own 0600 file unreadable to the gateway. */
    if (stat(path, &st) == 0 && (st.st_uid != geteuid() || st.st_gid != getegid()) &&
        fchown(fd, st.st_uid, st.st_gid) != 0) {
        close(fd);
        return apikey_fail(err, errlen, "%s: cannot keep the file's owner: %s", path, strerror(errno));
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return apikey_fail(err, errlen, "%s: %s", tmp, strerror(errno));
    }
    errno = 0;
    int ok = apikey_write_doc(f, s) == 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok)
        return apikey_fail(err, errlen, "%s: cannot write: %s", tmp, saved ? strerror(saved) : "YAML emitter error");
    return 0;
}

/* Temp file in the same directory (so rename is atomic), fsync, rename, then
 * fsync the directory so the rename itself survives a crash. mkstemp creates
 * the file with mode 0600. */
static int apikey_write_file(const char *path, int dirfd, const apikey_store *s, char *err, size_t errlen)
{
    static const char suffix[] = ".tmp.XXXXXX";
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof(suffix));
    if (tmp == NULL)
        return apikey_fail(err, errlen, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof(suffix));
    int fd = mkstemp(tmp);
    int rc = fd < 0 ? apikey_fail(err, errlen, "%s: %s", tmp, strerror(errno))
                    : apikey_write_fd(fd, path, tmp, s, err, errlen);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = apikey_fail(err, errlen, "%s: cannot replace: %s", path, strerror(errno));
    if (rc != 0 && fd >= 0)
        unlink(tmp);
    if (rc == 0 && fsync(dirfd) != 0)
        rc = apikey_fail(err, errlen, "%s: cannot sync its directory: %s", path, strerror(errno));
    free(tmp);
    return rc;
}


/* ---- editing the keys file --------------------------------------------- */

static char *apikey_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash == NULL ? strdup(".") : slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
}

/* Load, edit, write under an exclusive flock on the directory (the file
 * itself is replaced by rename, so it cannot carry the lock). The edited
 * store is only written, never looked up in: its digest table is stale. */
int apikey_file_edit(const char *path, apikey_edit_fn fn, void *ctx, char *err, size_t errlen)
{
    char *dir = apikey_dirname(path);
    int dirfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    int rc = dirfd < 0 ? apikey_fail(err, errlen, "%s: %s", dir ? dir : path, strerror(dir ? errno : ENOMEM)) : 0;
    if (rc == 0 && flock(dirfd, LOCK_EX) != 0)
        rc = apikey_fail(err, errlen, "%s: cannot lock: %s", dir, strerror(errno));
    apikey_store *s = NULL;
    if (rc == 0)
        rc = apikey_store_load(path, &s, err, errlen);
    if (rc == 0)
        rc = fn(s, ctx, err, errlen);
    if (rc == 0)
        rc = apikey_write_file(path, dirfd, s, err, errlen);
    apikey_store_free(s);
    if (dirfd >= 0)
        close(dirfd); /* releases the lock */
    free(dir);
    return rc;
}

static int apikey_taken(const apikey_store *s, const char *id, const uint8_t *digest)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->entries[i].id, id) == 0 || memcmp(s->entries[i].digest, digest, DIGEST_SHA256_LEN) == 0)
            return 1;
    return 0;
}

int apikey_edit_create(apikey_store *s, void *arg, char *err, size_t errlen)
{
    apikey_new *c = arg;
    uint8_t raw[APIKEY_RANDOM_BYTES], digest[DIGEST_SHA256_LEN];
    /* The id is 48 bits of the hash: a clash with an existing key is
     * improbable, not impossible, so draw again rather than fail later. */
    for (int attempt = 0;; attempt++) {
        if (attempt == 8)
            return apikey_fail(err, errlen, "cannot generate a key with a unique id");
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            return apikey_fail(err, errlen, "no randomness available (RAND_bytes failed)");
        memcpy(c->key, APIKEY_PREFIX, APIKEY_PREFIX_LEN);
        size_t o = APIKEY_PREFIX_LEN + codec_base64_encode(raw, sizeof(raw), CODEC_B64_URL, c->key + APIKEY_PREFIX_LEN);
        c->key[o] = '\0';
        if (digest_sha256(c->key, APIKEY_LEN, digest) != 0)
            return apikey_fail(err, errlen, "out of memory");
        memcpy(c->id, "k_", 2);
        for (size_t i = 0; i < APIKEY_ID_HEX / 2; i++)
            snprintf(c->id + 2 + 2 * i, 3, "%02x", digest[i]);
        if (!apikey_taken(s, c->id, digest))
            break;
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    apikey_entry *e = apikey_store_add(s);
    if (e == NULL)
        return apikey_fail(err, errlen, "out of memory or too many keys");
    memcpy(e->digest, digest, sizeof(digest));
    e->created = c->created;
    e->expires = c->expires;
    e->id = strdup(c->id);
    e->tenant = strdup(c->tenant);
    e->name = c->name ? strdup(c->name) : NULL;
    if (e->id == NULL || e->tenant == NULL || (c->name && e->name == NULL))
        return apikey_fail(err, errlen, "out of memory");
    return 0;
}

int apikey_edit_revoke(apikey_store *s, void *arg, char *err, size_t errlen)
{
    const apikey_revoke *c = arg;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->entries[i].id, c->id) == 0) {
            if (s->entries[i].revoked)
                return 1;
            s->entries[i].revoked = 1;
            return 0;
        }
    }
    return apikey_fail(err, errlen, "%s: no key with id \"%s\" (see `keys list`)", c->where, c->id);
}
