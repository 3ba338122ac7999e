/* ottl: parser and evaluator for the OTTL condition subset (see ottl.h).
 *
 * The lexer follows upstream's token rules where they decide what parses:
 * a sign directly before a digit belongs to the number (`a -1` is a path and
 * the number -1, an error, as upstream), `1.` and `1e5` are not numbers,
 * strings take Go's escapes. The grammar is upstream's for conditions:
 *   expr    := term ('or' term)*
 *   term    := boolval ('and' boolval)*
 *   boolval := 'not'? (value CMP value | 'true' | 'false' | IsMatch(...) | '(' expr ')')
 *   value   := 'nil' | STRING | BYTES | 'true' | 'false' | ENUM | math
 *   math    := product (('+'|'-') product)*     product := unary (('*'|'/') unary)*
 *   unary   := ('+'|'-')? (INT | FLOAT | path | IsMatch(...) | '(' math ')')
 * A boolval is tried as a comparison first and then as the others (upstream's
 * order), so `(a + 1) > 2` is a comparison and `(a > 2)` a sub-expression; of
 * the failed attempts the error that got furthest is reported. Errors about
 * meaning (unknown path, function, enum; a bad regex) stop at once. */
#include "ottl.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "regexp.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;

/* ---- values ---- */

typedef enum { V_NIL, V_BOOL, V_INT, V_FLOAT, V_STR, V_BYTES, V_OTHER } vtype; /* OTHER: array, kvlist */

typedef struct val {
    vtype t;
    int64_t i; /* int, bool */
    double f;
    const char *s; /* string, bytes */
    size_t len;
} val;

typedef enum { C_EQ, C_NE, C_LT, C_LE, C_GE, C_GT } cmp_op;

/* ---- paths and enums ---- */

typedef enum {
    P_NAME, P_KIND, P_STATUS_CODE, P_STATUS_MESSAGE, P_START, P_END, P_ATTRS,
    P_RES_ATTRS, P_SCOPE_NAME, P_SCOPE_VERSION, P_EV_NAME, P_EV_ATTRS, P_EV_TIME,
} path_id;

#define IN_SPAN (1u << OTTL_SPAN)
#define IN_EVENT (1u << OTTL_SPANEVENT)
#define IN_BOTH (IN_SPAN | IN_EVENT)

static const struct path_info {
    const char *name;
    path_id id;
    int keyed; /* takes ["key"] */
    unsigned contexts;
} paths[] = {
    {"name", P_NAME, 0, IN_SPAN},
    {"kind", P_KIND, 0, IN_SPAN},
    {"status.code", P_STATUS_CODE, 0, IN_SPAN},
    {"status.message", P_STATUS_MESSAGE, 0, IN_SPAN},
    {"start_time_unix_nano", P_START, 0, IN_SPAN},
    {"end_time_unix_nano", P_END, 0, IN_SPAN},
    {"attributes", P_ATTRS, 1, IN_SPAN},
    {"span.name", P_NAME, 0, IN_BOTH},
    {"span.kind", P_KIND, 0, IN_BOTH},
    {"span.status.code", P_STATUS_CODE, 0, IN_BOTH},
    {"span.status.message", P_STATUS_MESSAGE, 0, IN_BOTH},
    {"span.start_time_unix_nano", P_START, 0, IN_BOTH},
    {"span.end_time_unix_nano", P_END, 0, IN_BOTH},
    {"span.attributes", P_ATTRS, 1, IN_BOTH},
    {"name", P_EV_NAME, 0, IN_EVENT},
    {"attributes", P_EV_ATTRS, 1, IN_EVENT},
    {"time_unix_nano", P_EV_TIME, 0, IN_EVENT},
    {"spanevent.name", P_EV_NAME, 0, IN_EVENT},
    {"spanevent.attributes", P_EV_ATTRS, 1, IN_EVENT},
    {"spanevent.time_unix_nano", P_EV_TIME, 0, IN_EVENT},
    {"resource.attributes", P_RES_ATTRS, 1, IN_BOTH},
    {"instrumentation_scope.name", P_SCOPE_NAME, 0, IN_BOTH},
    {"instrumentation_scope.version", P_SCOPE_VERSION, 0, IN_BOTH},
    {"scope.name", P_SCOPE_NAME, 0, IN_BOTH},
    {"scope.version", P_SCOPE_VERSION, 0, IN_BOTH},
};

static const struct {
    const char *name;
    int64_t value;
} enums[] = {
    {"SPAN_KIND_UNSPECIFIED", 0}, {"SPAN_KIND_INTERNAL", 1}, {"SPAN_KIND_SERVER", 2},
    {"SPAN_KIND_CLIENT", 3},      {"SPAN_KIND_PRODUCER", 4}, {"SPAN_KIND_CONSUMER", 5},
    {"STATUS_CODE_UNSET", 0},     {"STATUS_CODE_OK", 1},     {"STATUS_CODE_ERROR", 2},
};

/* ---- the compiled tree ---- */

typedef enum { N_OR, N_AND, N_NOT, N_CMP, N_LIT, N_PATH, N_ISMATCH, N_MATH, N_NEG } nkind;

typedef struct node node;
struct node {
    nkind k;
    int op;          /* cmp_op for N_CMP; '+', '-', '*', '/' for N_MATH */
    node *a, *b;     /* operands; N_ISMATCH: a is the target */
    val v;           /* N_LIT */
    path_id path;    /* N_PATH */
    const char *key; /* N_PATH of attributes */
    regexp *re;      /* N_ISMATCH */
};

typedef struct re_list {
    regexp *re;
    struct re_list *next;
} re_list;

struct ottl_cond {
    arena *a; /* every node and string */
    node *root;
    re_list *res; /* the compiled patterns, freed with the condition */
};

/* ---- lexer ---- */

typedef enum {
    T_EOF, T_INT, T_FLOAT, T_STR, T_BYTES, T_IDENT, T_CMP, T_ADDSUB, T_MULDIV,
    T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_DOT, T_COMMA, T_OTHER,
} tkind;

typedef struct tok {
    tkind k;
    size_t pos, len; /* in the text */
    int op;          /* T_CMP: cmp_op; T_ADDSUB, T_MULDIV: the character */
    int64_t i;
    double f;
    char *s; /* T_STR (unquoted), T_BYTES (decoded), T_IDENT */
    size_t slen;
} tok;

typedef struct parser {
    const char *text;
    tok *t;
    size_t n, i;
    ottl_context ctx;
    ottl_cond *c;
    int failed, hard;
    int depth; /* nesting of parentheses, signs and calls: bounds the recursion */
    size_t err_pos;
    char err[320];
} parser;

/* Records an error at pos: the furthest one wins among alternatives, and a
 * hard error (about meaning, not syntax) is final. */
__attribute__((format(printf, 4, 5))) static void *fail_at(parser *p, size_t pos, int hard, const char *fmt, ...)
{
    if (p->hard || (p->failed && pos < p->err_pos))
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
    p->failed = 1;
    p->hard = hard;
    p->err_pos = pos;
    return NULL;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int hexval(char c)
{
    return is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A double-quoted string at s[*i] with Go's escapes (strconv.Unquote). */
static int lex_string(parser *p, const char *s, size_t *i, tok *t)
{
    size_t start = *i, j = start + 1, o = 0;
    char *out = arena_alloc(p->c->a, strlen(s + start) + 1); /* an escape is never shorter than what it makes */
    if (out == NULL)
        return fail_at(p, start, 1, "out of memory"), -1;
    for (;;) {
        char ch = s[j];
        if (ch == '\0' || ch == '\n')
            return fail_at(p, start, 1, "column %zu: unterminated string", start + 1), -1;
        if (ch == '"')
            break;
        if (ch != '\\') {
            out[o++] = ch;
            j++;
            continue;
        }
        char e = s[j + 1];
        size_t at = j;
        const char *simple = strchr("abfnrtv\\\"", e);
        if (e != '\0' && simple != NULL) {
            out[o++] = "\a\b\f\n\r\t\v\\\""[simple - "abfnrtv\\\""];
            j += 2;
        } else if (e == 'x' || e == 'u' || e == 'U') {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < nd; k++) {
                int h = hexval(s[j + 2 + k]);
                if (h < 0)
                    return fail_at(p, at, 1, "column %zu: invalid escape in string", at + 1), -1;
                cp = cp * 16 + (uint32_t)h;
            }
            if (e == 'x')
                out[o++] = (char)cp;
            else if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
                return fail_at(p, at, 1, "column %zu: invalid Unicode escape in string", at + 1), -1;
            else
                o += put_utf8(out + o, cp);
            j += 2 + (size_t)nd;
        } else if (e >= '0' && e <= '7') {
            unsigned v = 0;
            for (int k = 0; k < 3; k++) {
                char d = s[j + 1 + k];
                if (d < '0' || d > '7')
                    return fail_at(p, at, 1, "column %zu: invalid escape in string", at + 1), -1;
                v = v * 8 + (unsigned)(d - '0');
            }
            if (v > 255)
                return fail_at(p, at, 1, "column %zu: invalid escape in string", at + 1), -1;
            out[o++] = (char)v;
            j += 4;
        } else {
            return fail_at(p, at, 1, "column %zu: invalid escape \\%c in string (OTTL strings take Go's escapes: "
                           "write \\\\%c for a backslash before %c)",
                           at + 1, e, e, e),
                   -1;
        }
    }
    out[o] = '\0';
    t->k = T_STR;
    t->s = out;
    t->slen = o;
    *i = j + 1;
    return 0;
}

static int lex_number(parser *p, const char *s, size_t *i, tok *t)
{
    size_t j = *i;
    if (s[j] == '-' || s[j] == '+')
        j++;
    while (is_digit(s[j]))
        j++;
    int is_float = s[j] == '.' && is_digit(s[j + 1]);
    if (is_float) {
        j++;
        while (is_digit(s[j]))
            j++;
        size_t e = j;
        if (s[e] == 'e' || s[e] == 'E') {
            e++;
            if (s[e] == '-' || s[e] == '+')
                e++;
            if (is_digit(s[e])) {
                while (is_digit(s[e]))
                    e++;
                j = e;
            }
        }
    }
    char buf[400];
    size_t n = j - *i;
    if (n >= sizeof(buf))
        return fail_at(p, *i, 1, "column %zu: number too long", *i + 1), -1;
    memcpy(buf, s + *i, n);
    buf[n] = '\0';
    errno = 0;
    if (is_float) {
        t->k = T_FLOAT;
        t->f = strtod(buf, NULL);
        if (isinf(t->f))
            return fail_at(p, *i, 1, "column %zu: number %s is out of range", *i + 1, buf), -1;
    } else {
        t->k = T_INT;
        long long v = strtoll(buf, NULL, 10);
        if (errno == ERANGE)
            return fail_at(p, *i, 1, "column %zu: integer %s is out of range", *i + 1, buf), -1;
        t->i = (int64_t)v;
    }
    *i = j;
    return 0;
}

static int lex_bytes(parser *p, const char *s, size_t *i, tok *t)
{
    size_t j = *i + 2;
    while (hexval(s[j]) >= 0)
        j++;
    size_t nd = j - *i - 2;
    if (nd % 2 != 0)
        return fail_at(p, *i, 1, "column %zu: odd number of hex digits in bytes", *i + 1), -1;
    char *b = arena_alloc(p->c->a, nd / 2 + 1);
    if (b == NULL)
        return fail_at(p, *i, 1, "out of memory"), -1;
    for (size_t k = 0; k < nd / 2; k++)
        b[k] = (char)(hexval(s[*i + 2 + 2 * k]) * 16 + hexval(s[*i + 3 + 2 * k]));
    t->k = T_BYTES;
    t->s = b;
    t->slen = nd / 2;
    *i = j;
    return 0;
}

/* The operator tokens: two-character ones first. */
static int lex_op(const char *s, size_t i, tok *t)
{
    static const struct {
        const char *text;
        tkind k;
        int op;
    } ops[] = {
        {"==", T_CMP, C_EQ}, {"!=", T_CMP, C_NE}, {">=", T_CMP, C_GE}, {"<=", T_CMP, C_LE}, {">", T_CMP, C_GT},
        {"<", T_CMP, C_LT},  {"+", T_ADDSUB, '+'}, {"-", T_ADDSUB, '-'}, {"*", T_MULDIV, '*'}, {"/", T_MULDIV, '/'},
        {"(", T_LPAREN, 0},  {")", T_RPAREN, 0},  {"[", T_LBRACK, 0},  {"]", T_RBRACK, 0},  {".", T_DOT, 0},
        {",", T_COMMA, 0},
    };
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        size_t n = strlen(ops[k].text);
        if (strncmp(s + i, ops[k].text, n) == 0) {
            t->k = ops[k].k;
            t->op = ops[k].op;
            t->len = n;
            return 1;
        }
    }
    return 0;
}

static int lex(parser *p)
{
    const char *s = p->text;
    size_t len = strlen(s), i = 0;
    p->t = arena_calloc(p->c->a, len + 1, sizeof(tok)); /* at most one token per character, and EOF */
    if (p->t == NULL)
        return fail_at(p, 0, 1, "out of memory"), -1;
    for (;;) {
        while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v')
            i++;
        tok *t = &p->t[p->n];
        t->pos = i;
        int sign = (s[i] == '-' || s[i] == '+');
        if (s[i] == '\0') {
            t->k = T_EOF;
            p->n++;
            return 0;
        } else if (s[i] == '0' && s[i + 1] == 'x' && hexval(s[i + 2]) >= 0) {
            if (lex_bytes(p, s, &i, t) != 0)
                return -1;
        } else if (is_digit(s[i]) || (s[i] == '.' && is_digit(s[i + 1])) ||
                   (sign && (is_digit(s[i + 1]) || (s[i + 1] == '.' && is_digit(s[i + 2]))))) {
            if (lex_number(p, s, &i, t) != 0)
                return -1;
        } else if (s[i] == '"') {
            if (lex_string(p, s, &i, t) != 0)
                return -1;
        } else if (is_alpha(s[i])) {
            size_t j = i;
            while (is_alpha(s[j]) || is_digit(s[j]) || s[j] == '_')
                j++;
            t->k = T_IDENT;
            t->s = arena_strndup(p->c->a, s + i, j - i);
            t->slen = j - i;
            if (t->s == NULL)
                return fail_at(p, i, 1, "out of memory"), -1;
            i = j;
        } else if (lex_op(s, i, t)) {
            i += t->len;
        } else {
            t->k = T_OTHER;
            i++;
        }
        t->len = i - t->pos;
        p->n++;
    }
}

/* ---- parser ---- */

static tok *peek(parser *p) { return &p->t[p->i]; }
static tok *peek2(parser *p) { return &p->t[p->i + (p->t[p->i].k != T_EOF)]; }

static int is_word(const tok *t, const char *w) { return t->k == T_IDENT && strcmp(t->s, w) == 0; }

static int is_keyword(const tok *t)
{
    return is_word(t, "and") || is_word(t, "or") || is_word(t, "not") || is_word(t, "true") || is_word(t, "false") ||
           is_word(t, "nil");
}

/* "`x`" for an error message: the token as written, or "the end". */
static const char *tok_text(parser *p, const tok *t, char *buf, size_t n)
{
    if (t->k == T_EOF)
        return "end of condition";
    snprintf(buf, n, "\"%.*s\"", (int)(t->len > 40 ? 40 : t->len), p->text + t->pos);
    return buf;
}

static void *unexpected(parser *p, const char *expected)
{
    char b[64];
    tok *t = peek(p);
    return fail_at(p, t->pos, 0, "column %zu: unexpected %s (expected %s)", t->pos + 1, tok_text(p, t, b, sizeof(b)),
                   expected);
}

static node *mk(parser *p, nkind k)
{
    node *n = arena_calloc(p->c->a, 1, sizeof(node));
    if (n == NULL)
        return fail_at(p, peek(p)->pos, 1, "out of memory");
    n->k = k;
    return n;
}

static node *parse_expr(parser *p);
static node *parse_math(parser *p);
static node *parse_value(parser *p);

/* path := ident ('.' ident)* ('[' STRING ']')? resolved against the context. */
static node *parse_path(parser *p)
{
    tok *first = peek(p);
    char name[128];
    size_t nl = 0;
    for (;;) {
        tok *t = peek(p);
        if (t->k != T_IDENT || is_keyword(t))
            return unexpected(p, "a path");
        if (nl + t->slen + 2 > sizeof(name))
            return fail_at(p, t->pos, 1, "column %zu: path too long", t->pos + 1);
        nl += (size_t)snprintf(name + nl, sizeof(name) - nl, "%s%s", nl ? "." : "", t->s);
        p->i++;
        if (peek(p)->k != T_DOT)
            break;
        p->i++;
    }
    if (peek(p)->k == T_LPAREN)
        return fail_at(p, first->pos, 1,
                       "column %zu: \"%s\" is not a function of the subset (conditions may call IsMatch only)",
                       first->pos + 1, name);
    const struct path_info *pi = NULL;
    for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]) && pi == NULL; k++)
        if (strcmp(paths[k].name, name) == 0 && (paths[k].contexts & (1u << p->ctx)))
            pi = &paths[k];
    if (pi == NULL)
        return fail_at(p, first->pos, 1,
                       p->ctx == OTTL_SPAN
                           ? "column %zu: unknown path \"%s\" (span conditions may use name, kind, status.code, "
                             "status.message, start_time_unix_nano, end_time_unix_nano, attributes[\"k\"], "
                             "resource.attributes[\"k\"], instrumentation_scope.name/.version)"
                           : "column %zu: unknown path \"%s\" (span event conditions may use name, time_unix_nano, "
                             "attributes[\"k\"], span.<a span path>, resource.attributes[\"k\"], "
                             "instrumentation_scope.name/.version)",
                       first->pos + 1, name);
    node *n = mk(p, N_PATH);
    if (n == NULL)
        return NULL;
    n->path = pi->id;
    if (peek(p)->k == T_LBRACK) {
        tok *k = peek2(p);
        if (!pi->keyed)
            return fail_at(p, peek(p)->pos, 1, "column %zu: \"%s\" cannot be indexed", peek(p)->pos + 1, name);
        if (k->k != T_STR)
            return fail_at(p, k->pos, 1, "column %zu: %s[...] takes a string key", k->pos + 1, name);
        p->i += 2;
        if (peek(p)->k != T_RBRACK)
            return unexpected(p, "\"]\"");
        p->i++;
        if (peek(p)->k == T_LBRACK)
            return fail_at(p, peek(p)->pos, 1,
                           "column %zu: indexing into an attribute's value is not supported", peek(p)->pos + 1);
        n->key = k->s;
    } else if (pi->keyed) {
        return fail_at(p, first->pos, 1, "column %zu: %s must be indexed with a key, as %s[\"key\"]", first->pos + 1,
                       name, name);
    }
    return n;
}

/* IsMatch(target, "pattern"): the pattern is compiled now (RE2, unanchored). */
static node *parse_call(parser *p)
{
    tok *f = peek(p);
    if (strcmp(f->s, "IsMatch") != 0)
        return fail_at(p, f->pos, 1, "column %zu: function \"%s\" is not supported (conditions may call IsMatch only)",
                       f->pos + 1, f->s);
    p->i += 2; /* name and '(' */
    node *n = mk(p, N_ISMATCH);
    if (n == NULL || (n->a = parse_value(p)) == NULL)
        return NULL;
    if (peek(p)->k != T_COMMA)
        return unexpected(p, "\",\" and the pattern");
    p->i++;
    tok *pat = peek(p);
    if (pat->k != T_STR)
        return fail_at(p, pat->pos, 1, "column %zu: IsMatch's pattern must be a string literal", pat->pos + 1);
    p->i++;
    if (peek(p)->k != T_RPAREN)
        return unexpected(p, "\")\"");
    p->i++;
    char why[200];
    if (strlen(pat->s) != pat->slen)
        return fail_at(p, pat->pos, 1, "column %zu: invalid regular expression: contains a NUL byte", pat->pos + 1);
    re_list *l = arena_alloc(p->c->a, sizeof(*l));
    if (l == NULL)
        return fail_at(p, pat->pos, 1, "out of memory");
    if ((n->re = regexp_compile(pat->s, REGEXP_SEARCH, why, sizeof(why))) == NULL)
        return fail_at(p, pat->pos, 1, "column %zu: invalid regular expression: %s", pat->pos + 1, why);
    l->re = n->re;
    l->next = p->c->res;
    p->c->res = l;
    return n;
}

static node *literal(parser *p, vtype t)
{
    tok *k = peek(p);
    node *n = mk(p, N_LIT);
    if (n == NULL)
        return NULL;
    n->v.t = t;
    n->v.i = t == V_BOOL ? is_word(k, "true") : k->i;
    n->v.f = k->f;
    n->v.s = k->s;
    n->v.len = k->slen;
    p->i++;
    return n;
}

static node *parse_unary_at(parser *p);

/* Nesting is bounded so that neither parsing nor evaluating (both
 * recursive) can exhaust a thread's stack; the length limit bounds chains. */
#define OTTL_MAX_DEPTH 64
#define OTTL_MAX_LEN 4096

static node *parse_unary(parser *p)
{
    if (++p->depth > OTTL_MAX_DEPTH)
        return fail_at(p, peek(p)->pos, 1, "column %zu: nested more than %d deep", peek(p)->pos + 1, OTTL_MAX_DEPTH);
    node *n = parse_unary_at(p);
    p->depth--;
    return n;
}

/* unary := ('+'|'-')? (INT | FLOAT | path | IsMatch(...) | '(' math ')') */
static node *parse_unary_at(parser *p)
{
    tok *t = peek(p);
    if (t->k == T_ADDSUB) {
        p->i++;
        node *inner = parse_unary(p);
        if (inner == NULL || t->op == '+')
            return inner;
        node *n = mk(p, N_NEG);
        if (n != NULL)
            n->a = inner;
        return n;
    }
    if (t->k == T_INT)
        return literal(p, V_INT);
    if (t->k == T_FLOAT)
        return literal(p, V_FLOAT);
    if (t->k == T_LPAREN) {
        p->i++;
        node *n = parse_math(p);
        if (n == NULL)
            return NULL;
        if (peek(p)->k != T_RPAREN)
            return unexpected(p, "\")\" or an arithmetic operator");
        p->i++;
        return n;
    }
    if (t->k == T_IDENT && !is_keyword(t)) {
        if (t->s[0] >= 'A' && t->s[0] <= 'Z' && peek2(p)->k == T_LPAREN)
            return parse_call(p);
        if (t->s[0] >= 'a' && t->s[0] <= 'z')
            return parse_path(p);
    }
    return unexpected(p, "a number, a path or IsMatch(...)");
}

static int is_addsub(const tok *t) { return t->k == T_ADDSUB; }
static int is_muldiv(const tok *t) { return t->k == T_MULDIV; }
static int is_and(const tok *t) { return is_word(t, "and"); }
static int is_or(const tok *t) { return is_word(t, "or"); }

/* A left-associative chain: operand (OP operand)*, an OP being a token that
 * is_op accepts; each becomes a node of kind k with the token's op. */
static node *parse_left(parser *p, int (*is_op)(const tok *), nkind k, node *(*operand)(parser *))
{
    node *l = operand(p);
    while (l != NULL && is_op(peek(p))) {
        node *n = mk(p, k);
        if (n == NULL)
            return NULL;
        n->op = peek(p)->op;
        p->i++;
        n->a = l;
        if ((n->b = operand(p)) == NULL)
            return NULL;
        l = n;
    }
    return l;
}

static node *parse_product(parser *p) { return parse_left(p, is_muldiv, N_MATH, parse_unary); }
static node *parse_math(parser *p) { return parse_left(p, is_addsub, N_MATH, parse_product); }

/* value := 'nil' | STRING | BYTES | 'true' | 'false' | ENUM | math */
static node *parse_value(parser *p)
{
    tok *t = peek(p);
    if (is_word(t, "nil"))
        return literal(p, V_NIL);
    if (t->k == T_STR)
        return literal(p, V_STR);
    if (t->k == T_BYTES)
        return literal(p, V_BYTES);
    if (is_word(t, "true") || is_word(t, "false"))
        return literal(p, V_BOOL);
    if (t->k == T_LBRACK || (t->k == T_OTHER && p->text[t->pos] == '{'))
        return fail_at(p, t->pos, 1, "column %zu: lists and maps are not supported", t->pos + 1);
    if (t->k == T_IDENT && t->s[0] >= 'A' && t->s[0] <= 'Z' && peek2(p)->k != T_LPAREN) {
        for (size_t k = 0; k < sizeof(enums) / sizeof(enums[0]); k++) {
            if (strcmp(enums[k].name, t->s) == 0) {
                node *n = literal(p, V_INT);
                if (n != NULL)
                    n->v.i = enums[k].value;
                return n;
            }
        }
        return fail_at(p, t->pos, 1, "column %zu: unknown enum \"%s\" (use SPAN_KIND_UNSPECIFIED, "
                       "SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER, "
                       "SPAN_KIND_CONSUMER, STATUS_CODE_UNSET, STATUS_CODE_OK or STATUS_CODE_ERROR)",
                       t->pos + 1, t->s);
    }
    return parse_math(p);
}

static node *parse_comparison(parser *p)
{
    node *l = parse_value(p);
    if (l == NULL)
        return NULL;
    if (peek(p)->k != T_CMP)
        return unexpected(p, "a comparison operator (==, !=, <, <=, >, >=)");
    node *n = mk(p, N_CMP);
    if (n == NULL)
        return NULL;
    n->op = peek(p)->op;
    p->i++;
    n->a = l;
    return (n->b = parse_value(p)) != NULL ? n : NULL;
}

/* boolval := 'not'? (comparison | 'true' | 'false' | IsMatch(...) | '(' expr ')'):
 * each alternative from the same token, the comparison first. */
static node *parse_boolval(parser *p)
{
    if (++p->depth > OTTL_MAX_DEPTH)
        return fail_at(p, peek(p)->pos, 1, "column %zu: nested more than %d deep", peek(p)->pos + 1, OTTL_MAX_DEPTH);
    node *neg = NULL;
    if (is_word(peek(p), "not")) {
        if ((neg = mk(p, N_NOT)) == NULL)
            return NULL;
        p->i++;
    }
    size_t at = p->i;
    node *n = parse_comparison(p);
    if (n == NULL && !p->hard) {
        p->i = at;
        tok *t = peek(p);
        if (is_word(t, "true") || is_word(t, "false"))
            n = literal(p, V_BOOL);
        else if (t->k == T_IDENT && t->s[0] >= 'A' && t->s[0] <= 'Z' && peek2(p)->k == T_LPAREN)
            n = parse_call(p);
        else if (t->k == T_LPAREN) {
            p->i++;
            n = parse_expr(p);
            if (n != NULL && peek(p)->k != T_RPAREN)
                n = unexpected(p, "\")\", \"and\" or \"or\"");
            else if (n != NULL)
                p->i++;
        }
        if (n != NULL && p->failed && !p->hard && p->err_pos > peek(p)->pos) {
            n = NULL; /* the comparison got further than this alternative: its error stands */
            p->i = at;
        }
    }
    p->depth--;
    if (n == NULL)
        return NULL;
    p->failed = 0; /* an alternative parsed: the errors of the others are moot */
    if (neg == NULL)
        return n;
    neg->a = n;
    return neg;
}

static node *parse_term(parser *p) { return parse_left(p, is_and, N_AND, parse_boolval); }
static node *parse_expr(parser *p) { return parse_left(p, is_or, N_OR, parse_term); }

void ottl_free(ottl_cond *c)
{
    if (c == NULL)
        return;
    for (re_list *l = c->res; l != NULL; l = l->next)
        regexp_free(l->re);
    arena_free(c->a);
    free(c);
}

ottl_cond *ottl_parse(const char *text, ottl_context ctx, char *err, size_t errlen)
{
    ottl_cond *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->a = arena_new(0)) == NULL) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    parser p = {.text = text, .ctx = ctx, .c = c};
    if (strlen(text) > OTTL_MAX_LEN)
        fail_at(&p, 0, 1, "longer than %d bytes", OTTL_MAX_LEN);
    else if (lex(&p) == 0) {
        c->root = parse_expr(&p);
        if (c->root != NULL && peek(&p)->k != T_EOF) {
            c->root = NULL;
            unexpected(&p, "\"and\", \"or\" or the end of the condition");
        }
    }
    if (c->root == NULL) {
        snprintf(err, errlen, "%s", p.err);
        ottl_free(c);
        return NULL;
    }
    return c;
}

/* ---- evaluation ---- */

static val attr_value(kv_t *const *kvs, size_t n, const char *key)
{
    val v = {.t = V_NIL};
    for (size_t i = 0; i < n; i++) {
        if (kvs[i] == NULL || kvs[i]->key == NULL || strcmp(kvs[i]->key, key) != 0)
            continue;
        const any_t *a = kvs[i]->value;
        if (a == NULL)
            return v;
        switch (a->value_case) {
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
            v.t = V_STR;
            v.s = a->string_value != NULL ? a->string_value : "";
            v.len = strlen(v.s);
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
            v.t = V_BOOL;
            v.i = a->bool_value != 0;
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
            v.t = V_INT;
            v.i = a->int_value;
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
            v.t = V_FLOAT;
            v.f = a->double_value;
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
            v.t = V_BYTES;
            v.s = (const char *)a->bytes_value.data;
            v.len = a->bytes_value.len;
            break;
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
            v.t = V_OTHER;
            break;
        default:
            break; /* an empty value reads as nil */
        }
        return v;
    }
    return v;
}

static val str_val(const char *s)
{
    val v = {.t = V_STR, .s = s != NULL ? s : ""};
    v.len = strlen(v.s);
    return v;
}

static val int_val(int64_t i) { return (val){.t = V_INT, .i = i}; }

static val path_value(const node *n, const ottl_subject *s)
{
    const Opentelemetry__Proto__Trace__V1__Span *sp = s->span;
    const Opentelemetry__Proto__Trace__V1__Span__Event *ev = s->event;
    switch (n->path) {
    case P_NAME:
        return str_val(sp->name);
    case P_KIND:
        return int_val((int64_t)sp->kind);
    case P_STATUS_CODE:
        return int_val(sp->status != NULL ? (int64_t)sp->status->code : 0);
    case P_STATUS_MESSAGE:
        return str_val(sp->status != NULL ? sp->status->message : "");
    case P_START:
        return int_val((int64_t)sp->start_time_unix_nano);
    case P_END:
        return int_val((int64_t)sp->end_time_unix_nano);
    case P_ATTRS:
        return attr_value(sp->attributes, sp->n_attributes, n->key);
    case P_RES_ATTRS:
        return s->resource != NULL ? attr_value(s->resource->attributes, s->resource->n_attributes, n->key)
                                   : (val){.t = V_NIL};
    case P_SCOPE_NAME:
        return str_val(s->scope != NULL ? s->scope->name : "");
    case P_SCOPE_VERSION:
        return str_val(s->scope != NULL ? s->scope->version : "");
    case P_EV_NAME:
        return str_val(ev->name);
    case P_EV_ATTRS:
        return attr_value(ev->attributes, ev->n_attributes, n->key);
    case P_EV_TIME:
        return int_val((int64_t)ev->time_unix_nano);
    }
    return (val){.t = V_NIL};
}

static const char *type_name(vtype t)
{
    static const char *const names[] = {"nil", "bool", "int", "float", "string", "bytes", "list or map"};
    return names[t];
}

/* Go's arithmetic: int64 wraps, int/int truncates, a zero divisor is an
 * error for floats too, an int meeting a float becomes a float. */
static int math_op(int op, val x, val y, val *out, char *err, size_t errlen)
{
    if ((x.t != V_INT && x.t != V_FLOAT) || (y.t != V_INT && y.t != V_FLOAT)) {
        snprintf(err, errlen, "arithmetic on %s and %s: both must be int or float", type_name(x.t), type_name(y.t));
        return -1;
    }
    if (x.t == V_INT && y.t == V_INT) {
        uint64_t a = (uint64_t)x.i, b = (uint64_t)y.i;
        out->t = V_INT;
        if (op == '/') {
            if (y.i == 0) {
                snprintf(err, errlen, "division by zero");
                return -1;
            }
            out->i = (x.i == INT64_MIN && y.i == -1) ? INT64_MIN : x.i / y.i;
        } else {
            out->i = (int64_t)(op == '+' ? a + b : op == '-' ? a - b : a * b);
        }
        return 0;
    }
    double a = x.t == V_INT ? (double)x.i : x.f, b = y.t == V_INT ? (double)y.i : y.f;
    if (op == '/' && b == 0) {
        snprintf(err, errlen, "division by zero");
        return -1;
    }
    out->t = V_FLOAT;
    out->f = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
    return 0;
}

static int eval_value(const node *n, const ottl_subject *s, val *out, char *err, size_t errlen);

static int ismatch(const node *n, const ottl_subject *s, int *m, char *err, size_t errlen);

static int eval_value(const node *n, const ottl_subject *s, val *out, char *err, size_t errlen)
{
    val x, y;
    int m;
    switch (n->k) {
    case N_LIT:
        *out = n->v;
        return 0;
    case N_PATH:
        *out = path_value(n, s);
        return 0;
    case N_ISMATCH:
        if (ismatch(n, s, &m, err, errlen) != 0)
            return -1;
        *out = (val){.t = V_BOOL, .i = m};
        return 0;
    case N_NEG:
        if (eval_value(n->a, s, &x, err, errlen) != 0)
            return -1;
        if (x.t == V_INT)
            *out = int_val((int64_t)(0 - (uint64_t)x.i));
        else if (x.t == V_FLOAT)
            *out = (val){.t = V_FLOAT, .f = -x.f};
        else {
            snprintf(err, errlen, "unary minus on %s", type_name(x.t));
            return -1;
        }
        return 0;
    case N_MATH:
        if (eval_value(n->a, s, &x, err, errlen) != 0 || eval_value(n->b, s, &y, err, errlen) != 0)
            return -1;
        return math_op(n->op, x, y, out, err, errlen);
    default:
        snprintf(err, errlen, "not a value");
        return -1;
    }
}

/* Go's strconv.FormatFloat(f, 'f', -1, 64): the shortest digits that read
 * back as f, written without an exponent. */
static void go_float(double f, char out[400]) /* 1 + 2 + 323 zeros + 17 digits at most */
{
    if (isnan(f) || isinf(f)) {
        snprintf(out, 8, "%s", isnan(f) ? "NaN" : f > 0 ? "+Inf" : "-Inf");
        return;
    }
    char e[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec, f);
        if (strtod(e, NULL) == f)
            break;
    }
    /* e is [-]d[.ddd]e[+-]xx: place the point by the exponent. */
    char digits[24];
    size_t nd = 0, o = 0;
    const char *q = e;
    if (*q == '-')
        out[o++] = *q++;
    for (; *q != 'e'; q++)
        if (is_digit(*q))
            digits[nd++] = *q;
    long point = strtol(q + 1, NULL, 10) + 1; /* digits before the point */
    if (point <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (long z = 0; z < -point; z++)
            out[o++] = '0';
        point = 0;
    }
    for (size_t k = 0; k < nd || (long)k < point; k++) {
        if ((long)k == point && k > 0)
            out[o++] = '.';
        out[o++] = k < nd ? digits[k] : '0';
    }
    out[o] = '\0';
}

/* IsMatch's target as a string, as upstream's StringLikeGetter renders it;
 * nil (and a list or map, see the docs) does not match. */
static int ismatch(const node *n, const ottl_subject *s, int *m, char *err, size_t errlen)
{
    val v;
    char buf[400];
    if (eval_value(n->a, s, &v, err, errlen) != 0)
        return -1;
    const char *text = buf;
    size_t len;
    switch (v.t) {
    case V_STR:
        text = v.s;
        len = v.len;
        break;
    case V_INT:
        len = (size_t)snprintf(buf, sizeof(buf), "%" PRId64, v.i);
        break;
    case V_FLOAT:
        go_float(v.f, buf);
        len = strlen(buf);
        break;
    case V_BOOL:
        len = (size_t)snprintf(buf, sizeof(buf), "%s", v.i ? "true" : "false");
        break;
    case V_BYTES: {
        char *hex = malloc(v.len * 2 + 1);
        if (hex == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < v.len; i++)
            snprintf(hex + 2 * i, 3, "%02x", (unsigned char)v.s[i]);
        *m = regexp_match(n->re, hex, v.len * 2);
        free(hex);
        return 0;
    }
    default:
        *m = 0;
        return 0;
    }
    *m = regexp_match(n->re, text, len);
    return 0;
}

static int cmp3(int c, cmp_op op)
{
    switch (op) {
    case C_EQ: return c == 0;
    case C_NE: return c != 0;
    case C_LT: return c < 0;
    case C_LE: return c <= 0;
    case C_GE: return c >= 0;
    case C_GT: return c > 0;
    }
    return 0;
}

static int cmp_double(double a, double b, cmp_op op)
{
    switch (op) { /* IEEE: NaN compares false except != */
    case C_EQ: return a == b;
    case C_NE: return a != b;
    case C_LT: return a < b;
    case C_LE: return a <= b;
    case C_GE: return a >= b;
    case C_GT: return a > b;
    }
    return 0;
}

static int cmp_mem(const val *a, const val *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->s, b->s, n) : 0;
    return c != 0 ? c : (a->len > b->len) - (a->len < b->len);
}

/* Upstream's rules: nil equals only nil; int and float compare as numbers;
 * strings and bytes bytewise; bools with false < true; any other mix is
 * unequal (!= true, everything else false). */
static int compare(const val *a, const val *b, cmp_op op)
{
    if (a->t == V_NIL && b->t == V_NIL)
        return op == C_EQ || op == C_LE || op == C_GE;
    int num_a = a->t == V_INT || a->t == V_FLOAT, num_b = b->t == V_INT || b->t == V_FLOAT;
    if (a->t == V_INT && b->t == V_INT)
        return cmp3((a->i > b->i) - (a->i < b->i), op);
    if (num_a && num_b)
        return cmp_double(a->t == V_INT ? (double)a->i : a->f, b->t == V_INT ? (double)b->i : b->f, op);
    if (a->t == b->t && (a->t == V_STR || a->t == V_BYTES))
        return cmp3(cmp_mem(a, b), op);
    if (a->t == V_BOOL && b->t == V_BOOL)
        return cmp3((int)(a->i - b->i), op);
    return op == C_NE;
}

static ottl_result eval_bool(const node *n, const ottl_subject *s, char *err, size_t errlen)
{
    ottl_result r;
    val a, b;
    switch (n->k) {
    case N_OR:
    case N_AND:
        r = eval_bool(n->a, s, err, errlen);
        if (r == OTTL_ERROR || r == (n->k == N_OR ? OTTL_TRUE : OTTL_FALSE))
            return r;
        return eval_bool(n->b, s, err, errlen);
    case N_NOT:
        r = eval_bool(n->a, s, err, errlen);
        return r == OTTL_ERROR ? r : r == OTTL_TRUE ? OTTL_FALSE : OTTL_TRUE;
    case N_CMP:
        if (eval_value(n->a, s, &a, err, errlen) != 0 || eval_value(n->b, s, &b, err, errlen) != 0)
            return OTTL_ERROR;
        return compare(&a, &b, (cmp_op)n->op) ? OTTL_TRUE : OTTL_FALSE;
    default: /* true, false, IsMatch(...) */
        if (eval_value(n, s, &a, err, errlen) != 0)
            return OTTL_ERROR;
        return a.t == V_BOOL && a.i ? OTTL_TRUE : OTTL_FALSE;
    }
}

ottl_result ottl_eval(const ottl_cond *c, const ottl_subject *s, char *err, size_t errlen)
{
    char scratch[8];
    if (err == NULL) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    return eval_bool(c->root, s, err, errlen);
}

ottl_result ottl_eval_any(ottl_cond *const *conds, size_t n, ottl_error_mode mode, const ottl_subject *s)
{
    for (size_t i = 0; i < n; i++) {
        ottl_result r = ottl_eval(conds[i], s, NULL, 0);
        if (r == OTTL_TRUE || (r == OTTL_ERROR && mode == OTTL_PROPAGATE))
            return r;
    }
    return OTTL_FALSE;
}
