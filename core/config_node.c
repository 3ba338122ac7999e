/* config_node: YAML -> located node tree, and the typed readers. See
 * config_node.h.
 *
 * Everything a loaded document owns (the node tree, every string, and what
 * the schema readers above build from it in config_doc_arena) lives in one
 * arena, so config_doc_free is a single arena_free and no error path can leak
 * a piece of a half-built tree.
 *
 * Rules beyond config.h, documented in docs/configuration.md:
 *  - A YAML null (empty value, ~, null) counts as absent: the key takes its
 *    default, and required keys report it as missing.
 *  - Anchors, aliases and explicit tags are rejected: they make a config
 *    harder to read, and refusing aliases rules out "billion laughs" growth.
 *  - Nesting is limited to CONFIG_MAX_DEPTH; duplicate keys are errors.
 *  - ${...} is expanded once, in values only (never in keys), and the result
 *    is not scanned again; "$${" writes a literal "${". */
#include "config_node.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "arena.h"
#include "buf.h"

#define CONFIG_MAX_FILE_BYTES ((size_t)16 << 20)
#define CONFIG_MAX_SECRET_BYTES ((size_t)1 << 20)
#define CONFIG_MAX_DEPTH 64
#define CONFIG_MAX_NAME 64
#define CONFIG_QUOTE 96 /* room for a quoted value in a message */

typedef enum { NODE_SCALAR, NODE_MAP, NODE_SEQ } node_kind;

struct config_node {
    node_kind kind;
    int is_null;        /* plain scalar spelled as a YAML null */
    unsigned line, col; /* 1-based */
    const char *file;
    const config_node *parent; /* NULL for the document root */
    const config_node *key;    /* map keys and values: the key scalar */
    size_t index;              /* sequence items: position in the sequence */
    const char *raw;           /* scalar text as written (safe to quote) */
    const char *value;         /* scalar after ${...} expansion (may be secret) */
    size_t n;                  /* map entries or sequence items */
    config_node **items;       /* map: key0, value0, key1, ...; sequence: items */
    config_node *next;         /* sibling list, only while parsing */
};

struct config_doc {
    arena *arena;
    const char *file;
    const config_node *root; /* NULL for an empty document */
};

/* ---- errors ---- */

static const char *kind_name(const config_node *n)
{
    if (n->kind == NODE_MAP)
        return "a mapping";
    if (n->kind == NODE_SEQ)
        return "a sequence";
    return n->is_null ? "null" : "a scalar";
}

static void path_appendf(char *out, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void path_appendf(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (k > 0)
        *len = *len + (size_t)k < cap ? *len + (size_t)k : cap - 1;
}

/* "listeners[0].tls.cert": walks up the parents, so no node stores its path
 * (long keys times many children would otherwise cost quadratic memory). */
static void path_build(const config_node *n, char *out, size_t cap, size_t *len)
{
    if (n->parent == NULL)
        return;
    path_build(n->parent, out, cap, len);
    if (n->parent->kind == NODE_SEQ)
        path_appendf(out, cap, len, "[%zu]", n->index);
    else
        path_appendf(out, cap, len, "%s%s", *len ? "." : "", n->key->raw);
}

static const config_node *map_find(const config_node *map, const char *key)
{
    if (map == NULL || map->kind != NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->items[2 * i]->raw, key) == 0)
            return map->items[2 * i + 1];
    return NULL;
}

/* Two calling styles are accepted, since both read naturally at call sites:
 * (map, "key") for an entry of a map, located at its value (or at the map
 * when the key is absent), and (value, "key") naming the node itself. A NULL
 * node (an absent optional key looked up with config_get) still yields a
 * message, just without a location. */
int config_error(const config_node *n, const char *key, char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen == 0)
        return -1;
    char path[256];
    size_t plen = 0;
    path[0] = '\0';
    int k;
    if (n == NULL) {
        k = snprintf(err, errlen, "%s: ", key != NULL ? key : "(top level)");
    } else {
        path_build(n, path, sizeof(path), &plen);
        const config_node *at = n;
        if (key != NULL && n->kind == NODE_MAP) {
            const config_node *v = map_find(n, key);
            if (v != NULL)
                at = v;
            path_appendf(path, sizeof(path), &plen, "%s%s", plen ? "." : "", key);
        } else if (key != NULL && (n->key == NULL || strcmp(n->key->raw, key) != 0)) {
            path_appendf(path, sizeof(path), &plen, "%s%s", plen ? "." : "", key);
        }
        k = snprintf(err, errlen, "%s:%u:%u: %s: ", at->file, at->line, at->col, plen ? path : "(top level)");
    }
    if (k >= 0 && (size_t)k < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *quote(char *out, const char *raw) { return log_quote(out, CONFIG_QUOTE, raw); }

/* ---- files ---- */

/* Secrets pass through temporary heap buffers; wipe them so freed memory
 * does not keep a copy around. */
static void buf_wipe_free(buf *b)
{
    if (b->data != NULL)
        explicit_bzero(b->data, b->cap);
    buf_free(b);
}

/* ---- ${...} expansion ---- */

static int valid_var_name(const char *s, size_t len)
{
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* Appends the value of one reference `ref` (the text between "${" and "}")
 * to out. `whole` is the reference as written, for messages. */
static int expand_ref(const config_node *n, const char *ref, size_t len, const char *whole, buf *out,
                      char *err, size_t errlen)
{
    char q[CONFIG_QUOTE];
    if (len > 5 && memcmp(ref, "file:", 5) == 0) {
        char path[4096];
        if (len - 5 >= sizeof(path))
            return config_error(n, NULL, err, errlen, "%s: path too long", quote(q, whole));
        memcpy(path, ref + 5, len - 5);
        path[len - 5] = '\0';
        buf content = BUF_INIT;
        if (buf_read_file(&content, path, CONFIG_MAX_SECRET_BYTES) != 0) {
            int e = errno;
            buf_wipe_free(&content);
            if (e == EFBIG)
                return config_error(n, NULL, err, errlen, "%s: file is larger than 1MiB", quote(q, whole));
            return config_error(n, NULL, err, errlen, "%s: cannot read file: %s", quote(q, whole), strerror(e));
        }
        size_t clen = content.len;
        if (memchr(content.data, '\0', clen) != NULL) {
            buf_wipe_free(&content);
            return config_error(n, NULL, err, errlen, "%s: file contains a NUL byte", quote(q, whole));
        }
        /* Files written by editors and `echo` end in a newline that is not
         * part of the secret. */
        if (clen > 0 && content.data[clen - 1] == '\n') {
            clen--;
            if (clen > 0 && content.data[clen - 1] == '\r')
                clen--;
        }
        int rc = buf_append(out, content.data, clen);
        buf_wipe_free(&content);
        return rc == 0 ? 0 : config_error(n, NULL, err, errlen, "out of memory");
    }

    const char *sep = NULL;
    for (size_t i = 0; i + 1 < len; i++) {
        if (ref[i] == ':' && ref[i + 1] == '-') {
            sep = ref + i;
            break;
        }
    }
    size_t name_len = sep != NULL ? (size_t)(sep - ref) : len;
    char name[256];
    if (!valid_var_name(ref, name_len) || name_len >= sizeof(name))
        return config_error(n, NULL, err, errlen, "invalid reference %s (use ${VAR}, ${VAR:-default} or ${file:/path})",
                            quote(q, whole));
    memcpy(name, ref, name_len);
    name[name_len] = '\0';
    const char *val = getenv(name);
    /* As in the shell: ":-" also replaces a variable that is set but empty. */
    int rc;
    if (sep != NULL && (val == NULL || val[0] == '\0'))
        rc = buf_append(out, sep + 2, (size_t)(ref + len - (sep + 2)));
    else if (val != NULL)
        rc = buf_puts(out, val);
    else
        return config_error(n, NULL, err, errlen, "%s: environment variable %s is not set and has no default",
                            quote(q, whole), name);
    return rc == 0 ? 0 : config_error(n, NULL, err, errlen, "out of memory");
}

static int expand_scalar(arena *a, config_node *n, char *err, size_t errlen)
{
    const char *raw = n->raw;
    if (strchr(raw, '$') == NULL) {
        n->value = raw;
        return 0;
    }
    buf out = BUF_INIT;
    const char *p = raw;
    int rc = 0, oom = 0; /* appends fail only for lack of memory: check once */
    while (rc == 0 && *p != '\0') {
        const char *d = strchr(p, '$');
        if (d == NULL)
            d = p + strlen(p);
        oom |= buf_append(&out, p, (size_t)(d - p));
        p = d;
        if (*p == '\0')
            break;
        if (strncmp(p, "$${", 3) == 0) {
            oom |= buf_puts(&out, "${");
            p += 3;
        } else if (strncmp(p, "${", 2) == 0) {
            const char *close = strchr(p + 2, '}');
            char q[CONFIG_QUOTE];
            if (close == NULL) {
                rc = config_error(n, NULL, err, errlen, "unterminated \"${\" in %s", quote(q, raw));
                break;
            }
            char whole[CONFIG_QUOTE];
            size_t wlen = (size_t)(close + 1 - p);
            if (wlen >= sizeof(whole))
                wlen = sizeof(whole) - 1;
            memcpy(whole, p, wlen);
            whole[wlen] = '\0';
            rc = expand_ref(n, p + 2, (size_t)(close - (p + 2)), whole, &out, err, errlen);
            p = close + 1;
        } else {
            oom |= buf_putc(&out, '$');
            p++;
        }
    }
    if (rc == 0) {
        n->value = oom ? NULL : arena_strndup(a, out.data != NULL ? out.data : "", out.len);
        if (n->value == NULL)
            rc = config_error(n, NULL, err, errlen, "out of memory");
    }
    buf_wipe_free(&out);
    return rc;
}

/* ---- duplicates ---- */

static int node_order(const void *pa, const void *pb)
{
    const config_node *a = *(const config_node *const *)pa;
    const config_node *b = *(const config_node *const *)pb;
    int c = strcmp(a->value, b->value);
    if (c != 0)
        return c;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return a->col < b->col ? -1 : a->col > b->col;
}

/* Finds two scalars with the same value among nodes (reordered in place);
 * sets *first and *again in document order. O(n log n), so a huge map cannot
 * make loading quadratic. */
static int find_duplicate(const config_node **nodes, size_t n, const config_node **first,
                          const config_node **again)
{
    qsort(nodes, n, sizeof(*nodes), node_order);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(nodes[i - 1]->value, nodes[i]->value) == 0) {
            *first = nodes[i - 1];
            *again = nodes[i];
            return 1;
        }
    }
    return 0;
}

/* ---- YAML events -> node tree ---- */

typedef struct frame {
    config_node *node;
    config_node *head, *tail; /* children in order; maps alternate key, value */
    size_t count;
    config_node *pending_key; /* maps: key whose value comes next */
} frame;

typedef struct parse_ctx {
    arena *a;
    const char *file;
    frame stack[CONFIG_MAX_DEPTH];
    size_t depth;
    config_node *root;
    char *err;
    size_t errlen;
} parse_ctx;

static int mark_error(const parse_ctx *ctx, yaml_mark_t m, const char *msg)
{
    snprintf(ctx->err, ctx->errlen, "%s:%zu:%zu: %s", ctx->file, m.line + 1, m.column + 1, msg);
    return -1;
}

/* Creates a node at mark m and links it under the open collection. */
static config_node *node_add(parse_ctx *ctx, node_kind kind, yaml_mark_t m)
{
    config_node *n = arena_calloc(ctx->a, 1, sizeof(*n));
    if (n == NULL) {
        mark_error(ctx, m, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->line = (unsigned)m.line + 1;
    n->col = (unsigned)m.column + 1;
    n->file = ctx->file;
    if (ctx->depth == 0) {
        ctx->root = n;
        return n;
    }
    frame *f = &ctx->stack[ctx->depth - 1];
    n->parent = f->node;
    if (f->node->kind == NODE_MAP) {
        if (f->pending_key == NULL) {
            if (kind != NODE_SCALAR) {
                mark_error(ctx, m, "syntax: mapping keys must be scalars");
                return NULL;
            }
            n->key = n;
            f->pending_key = n;
        } else {
            n->key = f->pending_key;
            f->pending_key = NULL;
        }
    } else {
        n->index = f->count;
    }
    if (f->tail != NULL)
        f->tail->next = n;
    else
        f->head = n;
    f->tail = n;
    f->count++;
    return n;
}

static int collection_open(parse_ctx *ctx, node_kind kind, yaml_mark_t m)
{
    if (ctx->depth == CONFIG_MAX_DEPTH)
        return mark_error(ctx, m, "syntax: nesting deeper than 64 levels");
    config_node *n = node_add(ctx, kind, m);
    if (n == NULL)
        return -1;
    ctx->stack[ctx->depth++] = (frame){.node = n};
    return 0;
}

static int collection_close(parse_ctx *ctx)
{
    frame *f = &ctx->stack[--ctx->depth];
    config_node *n = f->node;
    n->items = arena_calloc(ctx->a, f->count ? f->count : 1, sizeof(*n->items));
    if (n->items == NULL)
        return config_error(n, NULL, ctx->err, ctx->errlen, "out of memory");
    size_t i = 0;
    for (config_node *c = f->head; c != NULL; c = c->next)
        n->items[i++] = c;
    if (n->kind == NODE_SEQ) {
        n->n = f->count;
        return 0;
    }
    n->n = f->count / 2;
    const config_node **keys = arena_calloc(ctx->a, n->n ? n->n : 1, sizeof(*keys));
    if (keys == NULL)
        return config_error(n, NULL, ctx->err, ctx->errlen, "out of memory");
    for (i = 0; i < n->n; i++)
        keys[i] = n->items[2 * i];
    const config_node *first, *again;
    if (find_duplicate(keys, n->n, &first, &again))
        return config_error(again, NULL, ctx->err, ctx->errlen, "duplicate key (first at line %u, column %u)",
                            first->line, first->col);
    return 0;
}

static int is_null_spelling(const char *s)
{
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

static int scalar_add(parse_ctx *ctx, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (memchr(text, '\0', len) != NULL)
        return mark_error(ctx, ev->start_mark, "syntax: NUL characters are not allowed");
    config_node *n = node_add(ctx, NODE_SCALAR, ev->start_mark);
    if (n == NULL)
        return -1;
    n->raw = arena_strndup(ctx->a, text, len);
    if (n->raw == NULL)
        return mark_error(ctx, ev->start_mark, "out of memory");
    n->is_null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && is_null_spelling(n->raw);
    if (n->key == n || n->is_null) {
        n->value = n->raw; /* keys are names, never secrets */
        return 0;
    }
    return expand_scalar(ctx->a, n, ctx->err, ctx->errlen);
}

static int syntax_error(parse_ctx *ctx, const yaml_parser_t *p, const char *yaml, size_t len)
{
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR) {
        /* Encoding errors carry only a byte offset: libyaml decodes ahead of
         * the scanner, so no mark points at the bad byte. Count lines. */
        size_t end = p->problem_offset < len ? p->problem_offset : len;
        m = (yaml_mark_t){0};
        for (size_t i = 0; i < end; i++) {
            if (yaml[i] == '\n') {
                m.line++;
                m.column = 0;
            } else {
                m.column++;
            }
        }
    }
    const char *problem = p->problem != NULL ? p->problem : "out of memory";
    if (p->context != NULL)
        snprintf(ctx->err, ctx->errlen, "%s:%zu:%zu: syntax: %s (%s at line %zu, column %zu)", ctx->file,
                 m.line + 1, m.column + 1, problem, p->context, p->context_mark.line + 1,
                 p->context_mark.column + 1);
    else
        snprintf(ctx->err, ctx->errlen, "%s:%zu:%zu: syntax: %s", ctx->file, m.line + 1, m.column + 1, problem);
    return -1;
}

static int event_apply(parse_ctx *ctx, const yaml_event_t *ev, int *documents)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++*documents > 1)
            return mark_error(ctx, ev->start_mark, "syntax: only one YAML document is allowed");
        return 0;
    case YAML_ALIAS_EVENT:
        return mark_error(ctx, ev->start_mark, "syntax: aliases are not supported");
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.anchor != NULL)
            return mark_error(ctx, ev->start_mark, "syntax: anchors are not supported");
        if (ev->data.scalar.tag != NULL)
            return mark_error(ctx, ev->start_mark, "syntax: tags are not supported");
        return scalar_add(ctx, ev);
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        const yaml_char_t *anchor = is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
        const yaml_char_t *tag = is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
        if (anchor != NULL)
            return mark_error(ctx, ev->start_mark, "syntax: anchors are not supported");
        if (tag != NULL)
            return mark_error(ctx, ev->start_mark, "syntax: tags are not supported");
        return collection_open(ctx, is_map ? NODE_MAP : NODE_SEQ, ev->start_mark);
    }
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        return collection_close(ctx);
    default:
        return 0;
    }
}

static int parse_yaml(parse_ctx *ctx, const char *yaml, size_t len)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(ctx->err, ctx->errlen, "%s: out of memory", ctx->file);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    int rc = 0, documents = 0, done = 0;
    while (rc == 0 && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = syntax_error(ctx, &parser, yaml, len);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = event_apply(ctx, &ev, &documents);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- node readers ---- */

const config_node *config_get(const config_node *map, const char *key) { return map_find(map, key); }

int config_is_map(const config_node *n) { return n != NULL && n->kind == NODE_MAP; }

int config_is_seq(const config_node *n) { return n != NULL && n->kind == NODE_SEQ; }

size_t config_seq_len(const config_node *seq) { return config_is_seq(seq) ? seq->n : 0; }

const config_node *config_seq_at(const config_node *seq, size_t i)
{
    return i < config_seq_len(seq) ? seq->items[i] : NULL;
}

size_t config_map_len(const config_node *map) { return config_is_map(map) ? map->n : 0; }

const char *config_map_key(const config_node *map, size_t i)
{
    return i < config_map_len(map) ? map->items[2 * i]->raw : NULL;
}

const config_node *config_map_value(const config_node *map, size_t i)
{
    return i < config_map_len(map) ? map->items[2 * i + 1] : NULL;
}

/* A YAML null is "no value", like an absent key. */
const char *config_scalar(const config_node *n)
{
    return n != NULL && n->kind == NODE_SCALAR && !n->is_null ? n->value : NULL;
}

/* The value under key; NULL when absent or a YAML null (both mean "not set"). */
static const config_node *value_at(const config_node *map, const char *key)
{
    const config_node *v = map_find(map, key);
    return v != NULL && !v->is_null ? v : NULL;
}

/* The scalar under key, *out NULL when not set; error when the value is a
 * mapping or sequence. `what` names the expected type for the message. */
static int scalar_at(const config_node *map, const char *key, const char *what, const config_node **out,
                     char *err, size_t errlen)
{
    const config_node *v = value_at(map, key);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (v->kind != NODE_SCALAR)
        return config_error(map, key, err, errlen, "expected %s, got %s", what, kind_name(v));
    *out = v;
    return 0;
}

int config_str(const config_node *map, const char *key, const char *def, const char **out, char *err,
               size_t errlen)
{
    const config_node *v;
    if (scalar_at(map, key, "a string", &v, err, errlen) != 0)
        return -1;
    *out = v != NULL ? v->value : def;
    return 0;
}

int config_str_required(const config_node *map, const char *key, const char **out, char *err, size_t errlen)
{
    if (config_str(map, key, NULL, out, err, errlen) != 0)
        return -1;
    if (*out == NULL)
        return config_error(map, key, err, errlen, "required key is missing");
    if ((*out)[0] == '\0')
        return config_error(map, key, err, errlen, "must not be empty");
    return 0;
}

/* Decimal digits at *s, advancing *s. -1: no digits; -2: overflows uint64. */
static int parse_digits(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *s = p;
    *out = v;
    return 0;
}

typedef struct unit {
    const char *name;
    uint64_t mult;
} unit;

/* digits, optional spaces, one unit from the table ("" included). Same
 * return convention as parse_digits. */
static int parse_with_unit(const char *s, const unit *units, uint64_t max, uint64_t *out)
{
    uint64_t v;
    int rc = parse_digits(&s, &v);
    if (rc != 0)
        return rc;
    while (*s == ' ')
        s++;
    for (const unit *u = units; u->name != NULL; u++) {
        if (strcmp(s, u->name) == 0) {
            if (v > max / u->mult)
                return -2;
            *out = v * u->mult;
            return 0;
        }
    }
    return -1;
}

/* What differs between sizes and durations: units, ceiling and wording. */
typedef struct unit_kind {
    const char *what;    /* type name in messages */
    const char *too_big; /* "size ... is too large" */
    const char *example;
    const unit *units;
    uint64_t max;
} unit_kind;

static const unit size_units[] = {
    {"", 1},           {"B", 1},   {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
    {"KiB", 1u << 10}, {"MiB", 1u << 20}, {"GiB", 1u << 30}, {NULL, 0},
};

static const unit duration_units[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {NULL, 0},
};

static const unit_kind sizes = {"size", "too large", "4MiB", size_units, SIZE_MAX};
static const unit_kind durations = {"duration", "too long", "500ms, 10s, 5m or 1h", duration_units, UINT64_MAX};

static int read_with_unit(const config_node *map, const char *key, const unit_kind *k, uint64_t def,
                          uint64_t *out, char *err, size_t errlen)
{
    const config_node *v;
    char what[32], q[CONFIG_QUOTE];
    snprintf(what, sizeof(what), "a %s", k->what);
    if (scalar_at(map, key, what, &v, err, errlen) != 0)
        return -1;
    if (v == NULL) {
        *out = def;
        return 0;
    }
    int rc = parse_with_unit(v->value, k->units, k->max, out);
    if (rc == -2)
        return config_error(map, key, err, errlen, "%s %s is %s", k->what, quote(q, v->raw), k->too_big);
    if (rc != 0)
        return config_error(map, key, err, errlen, "invalid %s %s (use e.g. %s)", k->what, quote(q, v->raw),
                            k->example);
    return 0;
}

int config_size(const config_node *map, const char *key, size_t def, size_t *out, char *err, size_t errlen)
{
    uint64_t n;
    if (read_with_unit(map, key, &sizes, def, &n, err, errlen) != 0)
        return -1;
    *out = (size_t)n;
    return 0;
}

int config_duration_ms(const config_node *map, const char *key, uint64_t def, uint64_t *out, char *err,
                       size_t errlen)
{
    return read_with_unit(map, key, &durations, def, out, err, errlen);
}

int config_uint(const config_node *map, const char *key, uint64_t def, uint64_t min, uint64_t max,
                uint64_t *out, char *err, size_t errlen)
{
    const config_node *v;
    if (scalar_at(map, key, "an integer", &v, err, errlen) != 0)
        return -1;
    if (v == NULL) {
        *out = def;
        return 0;
    }
    char q[CONFIG_QUOTE];
    const char *s = v->value;
    uint64_t n = 0;
    int rc = parse_digits(&s, &n);
    if (rc == -1 || (rc == 0 && *s != '\0'))
        return config_error(map, key, err, errlen, "invalid integer %s", quote(q, v->raw));
    if (rc == -2 || n < min || n > max)
        return config_error(map, key, err, errlen, "%s is out of range (%llu..%llu)", quote(q, v->raw),
                            (unsigned long long)min, (unsigned long long)max);
    *out = n;
    return 0;
}

/* YAML 1.2 core schema booleans only: "yes"/"on" are strings there, and
 * guessing would surprise someone. */
int config_bool(const config_node *map, const char *key, int def, int *out, char *err, size_t errlen)
{
    const config_node *v;
    if (scalar_at(map, key, "a boolean", &v, err, errlen) != 0)
        return -1;
    if (v == NULL) {
        *out = def;
        return 0;
    }
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(v->value, yes[i]) == 0 || strcmp(v->value, no[i]) == 0) {
            *out = strcmp(v->value, yes[i]) == 0;
            return 0;
        }
    }
    char q[CONFIG_QUOTE];
    return config_error(map, key, err, errlen, "invalid boolean %s (use true or false)", quote(q, v->raw));
}

int config_choice(const config_node *map, const char *key, const char *const *names, int def, int *out, char *err,
                  size_t errlen)
{
    const char *s;
    if (config_str(map, key, NULL, &s, err, errlen) != 0)
        return -1;
    *out = def;
    if (s == NULL)
        return 0;
    char list[160] = "";
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
        size_t len = strlen(list);
        snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", names[i]);
    }
    return config_error(map, key, err, errlen, "invalid value (use one of: %s)", list);
}

int config_check_keys(const config_node *map, const char *const *allowed, char *err, size_t errlen)
{
    if (map == NULL)
        return 0;
    if (!config_is_map(map))
        return config_error(map, NULL, err, errlen, "expected a mapping, got %s", kind_name(map));
    for (size_t i = 0; i < map->n; i++) {
        const config_node *k = map->items[2 * i];
        size_t j = 0;
        while (allowed[j] != NULL && strcmp(allowed[j], k->raw) != 0)
            j++;
        if (allowed[j] != NULL)
            continue;
        char list[512]; /* the sampler's flat policy-set keys need more than 256 */
        size_t len = 0;
        list[0] = '\0';
        for (j = 0; allowed[j] != NULL; j++)
            path_appendf(list, sizeof(list), &len, "%s%s", j ? ", " : "", allowed[j]);
        return config_error(k, NULL, err, errlen, "unknown key (expected one of: %s)", list);
    }
    return 0;
}

/* ---- readers shared by the schemas of several floors ---- */

const char *config_raw(const config_node *n) { return n != NULL ? n->raw : NULL; }

unsigned config_line(const config_node *n) { return n != NULL ? n->line : 0; }

/* Names show up in metrics labels and log lines, so keep them plain. */
int config_valid_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > CONFIG_MAX_NAME)
        return 0;
    for (const char *p = s; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

int config_name_error(const config_node *n, const char *key, char *err, size_t errlen)
{
    char q[CONFIG_QUOTE];
    const config_node *at = key != NULL ? config_get(n, key) : n;
    return config_error(n, key, err, errlen, "invalid name %s (1-%d letters, digits, '_', '-' or '.')",
                        quote(q, at != NULL ? at->raw : ""), CONFIG_MAX_NAME);
}

int config_name(const config_node *map, const char **out, char *err, size_t errlen)
{
    if (config_str_required(map, "name", out, err, errlen) != 0)
        return -1;
    return config_valid_name(*out) ? 0 : config_name_error(map, "name", err, errlen);
}

/* "host:port" or "[v6]:port", port 0..65535 (0: any free port, for tests).
 * Catching typos here beats a bind error at startup that names no line. */
int config_valid_addr(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return 0;
    if (s[0] == '[') {
        if (colon[-1] != ']' || colon - s < 3)
            return 0;
    } else if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
        return 0; /* an IPv6 host needs brackets */
    }
    const char *p = colon + 1;
    uint64_t port;
    return strlen(p) <= 5 && parse_digits(&p, &port) == 0 && *p == '\0' && port <= 65535;
}

typedef struct addr_parts {
    const char *host;
    size_t host_len;
    unsigned long port;
    int v6;       /* [v6] */
    int wildcard; /* any address of its family */
    int either;   /* a host name or an empty host: the system picks the family */
} addr_parts;

static addr_parts addr_split(const char *s)
{
    const char *colon = strrchr(s, ':');
    addr_parts p = {.host = s, .host_len = (size_t)(colon - s), .port = strtoul(colon + 1, NULL, 10)};
    if (s[0] == '[') {
        p.host++;
        p.host_len -= 2;
        p.v6 = 1;
        p.wildcard = p.host_len == 2 && memcmp(p.host, "::", 2) == 0;
    } else {
        p.wildcard = p.host_len == 0 || (p.host_len == 7 && memcmp(p.host, "0.0.0.0", 7) == 0);
        p.either = strspn(p.host, "0123456789.") < p.host_len || p.host_len == 0;
    }
    return p;
}

int config_addrs_overlap(const char *a, const char *b)
{
    addr_parts x = addr_split(a), y = addr_split(b);
    if (x.port == 0 || x.port != y.port)
        return 0;
    if (x.host_len == y.host_len && strncasecmp(x.host, y.host, x.host_len) == 0)
        return 1;
    return (x.v6 == y.v6 || x.either || y.either) && (x.wildcard || y.wildcard);
}

int config_addr(const config_node *map, const char *key, const char **out, char *err, size_t errlen)
{
    if (config_str(map, key, NULL, out, err, errlen) != 0)
        return -1;
    if (*out == NULL || config_valid_addr(*out))
        return 0;
    char q[CONFIG_QUOTE];
    return config_error(map, key, err, errlen, "invalid address %s (use host:port, e.g. 0.0.0.0:4317)",
                        quote(q, config_get(map, key)->raw));
}

int config_duration_u32(const config_node *map, const char *key, uint32_t def, uint32_t min, uint32_t *out,
                        char *err, size_t errlen)
{
    uint64_t ms;
    if (config_duration_ms(map, key, def, &ms, err, errlen) != 0)
        return -1;
    if (ms < min || ms > UINT32_MAX)
        return config_error(map, key, err, errlen, "must be between %ums and 1193h", (unsigned)min);
    *out = (uint32_t)ms;
    return 0;
}

int config_section(const config_node *map, const char *key, const char *const *allowed, const config_node **out,
                   char *err, size_t errlen)
{
    *out = value_at(map, key);
    return *out != NULL ? config_check_keys(*out, allowed, err, errlen) : 0;
}

int config_str_list(const config_node *map, const char *key, const config_node **out, char *err, size_t errlen)
{
    const config_node *v = value_at(map, key);
    *out = v;
    if (v == NULL)
        return config_error(map, key, err, errlen, "required key is missing");
    if (v->kind != NODE_SEQ)
        return config_error(map, key, err, errlen, "expected a sequence, got %s", kind_name(v));
    if (v->n == 0)
        return config_error(map, key, err, errlen, "must not be empty");
    for (size_t i = 0; i < v->n; i++)
        if (config_scalar(v->items[i]) == NULL)
            return config_error(v->items[i], NULL, err, errlen, "expected a string, got %s",
                                kind_name(v->items[i]));
    return 0;
}

int config_seq(const config_node *map, const char *key, int required, const config_node **out, char *err,
               size_t errlen)
{
    const config_node *v = value_at(map, key);
    *out = v;
    if (v == NULL)
        return required ? config_error(map, key, err, errlen, "required key is missing") : 0;
    if (v->kind != NODE_SEQ)
        return config_error(v, NULL, err, errlen, "expected a sequence, got %s", kind_name(v));
    return 0;
}

int config_map_of_maps(const config_node *map, const char *key, const char *what, config_entry_fn each, void *ctx,
                       char *err, size_t errlen)
{
    const config_node *v = value_at(map, key);
    if (v == NULL)
        return each(ctx, NULL, 0, NULL, NULL, err, errlen);
    if (v->kind != NODE_MAP)
        return config_error(v, NULL, err, errlen, "expected a mapping of name to %s, got %s", what, kind_name(v));
    for (size_t i = 0; i < v->n; i++) {
        const config_node *k = v->items[2 * i], *val = v->items[2 * i + 1];
        if (!config_valid_name(k->raw))
            return config_name_error(k, NULL, err, errlen);
        if (val->kind != NODE_MAP)
            return config_error(val, NULL, err, errlen, "expected a mapping, got %s", kind_name(val));
        if (each(ctx, v, i, k->raw, val, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int config_unique_names(arena *a, const config_node *seq, const char *what, char *err, size_t errlen)
{
    if (!config_is_seq(seq) || seq->n == 0)
        return 0;
    const config_node **names = arena_calloc(a, seq->n, sizeof(*names));
    if (names == NULL)
        return config_error(seq, NULL, err, errlen, "out of memory");
    for (size_t i = 0; i < seq->n; i++)
        names[i] = config_get(seq->items[i], "name");
    const config_node *first, *again;
    if (!find_duplicate(names, seq->n, &first, &again))
        return 0;
    char q[CONFIG_QUOTE];
    return config_error(again, NULL, err, errlen, "duplicate %s name %s (first at line %u)", what,
                        quote(q, again->raw), first->line);
}

int config_unique_items(arena *a, const config_node *seq, const char *what, char *err, size_t errlen)
{
    if (!config_is_seq(seq))
        return 0;
    /* Sorting a scratch copy keeps the document's own order intact. */
    const config_node **scratch = arena_calloc(a, seq->n ? seq->n : 1, sizeof(*scratch));
    if (scratch == NULL)
        return config_error(seq, NULL, err, errlen, "out of memory");
    memcpy(scratch, seq->items, seq->n * sizeof(*scratch));
    const config_node *first, *again;
    if (!find_duplicate(scratch, seq->n, &first, &again))
        return 0;
    char q[CONFIG_QUOTE];
    return config_error(again, NULL, err, errlen, "%s %s is listed twice", what, quote(q, again->raw));
}

/* ---- documents ---- */

config_doc *config_doc_parse(const char *source_name, const char *yaml, size_t len, char *err, size_t errlen)
{
    arena *a = arena_new(0);
    config_doc *doc = a != NULL ? arena_calloc(a, 1, sizeof(*doc)) : NULL;
    const char *file = doc != NULL ? arena_strndup(a, source_name, strlen(source_name)) : NULL;
    if (file == NULL) {
        arena_free(a);
        snprintf(err, errlen, "%s: out of memory", source_name);
        return NULL;
    }
    doc->arena = a;
    doc->file = file;
    parse_ctx ctx = {.a = a, .file = file, .err = err, .errlen = errlen};
    if (parse_yaml(&ctx, yaml, len) != 0) {
        arena_free(a);
        return NULL;
    }
    doc->root = ctx.root;
    return doc;
}

config_doc *config_doc_read(const char *path, char *err, size_t errlen)
{
    buf text = BUF_INIT;
    if (buf_read_file(&text, path, CONFIG_MAX_FILE_BYTES) != 0) {
        int e = errno;
        buf_free(&text);
        snprintf(err, errlen, "%s: cannot read: %s", path, e == EFBIG ? "larger than 16MiB" : strerror(e));
        return NULL;
    }
    config_doc *doc = config_doc_parse(path, text.data, text.len, err, errlen);
    buf_wipe_free(&text); /* the file may hold inline secrets */
    return doc;
}

const config_node *config_doc_root(const config_doc *doc) { return doc->root; }

const char *config_doc_source(const config_doc *doc) { return doc->file; }

arena *config_doc_arena(config_doc *doc) { return doc->arena; }

void config_doc_free(config_doc *doc)
{
    if (doc != NULL)
        arena_free(doc->arena);
}
