/* es_bulk: _bulk response reading (es_bulk.h has the contract).
 *
 * The top-level object and the items array are walked by hand so that a
 * body cut short keeps what came before the cut; each member value and each
 * item is parsed by jansson (JSON_DISABLE_EOF_CHECK stops after one value
 * and reports how many bytes it used). */
#include "es_bulk.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

typedef struct es_bulk_cursor {
    const char *p, *end;
} es_bulk_cursor;

/* What a read at the cursor found. */
typedef enum { ES_BULK_READ_OK, ES_BULK_READ_CUT, ES_BULK_READ_BAD } es_bulk_read;

static void es_bulk_ws(es_bulk_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Skips whitespace, then the character `ch` if it is next. */
static es_bulk_read es_bulk_expect(es_bulk_cursor *c, char ch)
{
    es_bulk_ws(c);
    if (c->p == c->end)
        return ES_BULK_READ_CUT;
    if (*c->p != ch)
        return ES_BULK_READ_BAD;
    c->p++;
    return ES_BULK_READ_OK;
}

/* Is the next non-blank character one of `set`? (An empty element or a key
 * that is not a string would otherwise read as a value cut short when it
 * ends the body.) */
static int es_bulk_next_is(es_bulk_cursor *c, const char *set)
{
    es_bulk_ws(c);
    return c->p < c->end && strchr(set, *c->p) != NULL;
}

/* One JSON value at the cursor; *out is a new reference. An error found
 * only at the end of the body (an unfinished string, number, literal or
 * UTF-8 sequence) counts as the body being cut short. */
static es_bulk_read es_bulk_value(es_bulk_cursor *c, json_t **out)
{
    json_error_t e;
    es_bulk_ws(c);
    size_t left = (size_t)(c->end - c->p);
    if (left == 0)
        return ES_BULK_READ_CUT;
    *out = json_loadb(c->p, left, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &e);
    if (*out != NULL) {
        c->p += e.position;
        return ES_BULK_READ_OK;
    }
    enum json_error_code code = json_error_code(&e);
    size_t at = e.position > 0 ? (size_t)e.position : 0;
    if (code == json_error_premature_end_of_input || at >= left || (code == json_error_invalid_utf8 && at + 4 >= left))
        return ES_BULK_READ_CUT;
    return ES_BULK_READ_BAD;
}

es_bulk_outcome es_bulk_item_outcome(long status)
{
    if (status >= 200 && status < 300)
        return ES_BULK_OK;
    if (status == 429)
        return ES_BULK_RETRY;
    return ES_BULK_REJECT;
}

/* "type: reason" of an error value (an object or a string). */
static void es_bulk_describe(const json_t *error, char *out, size_t outlen)
{
    const char *type = json_string_value(json_object_get(error, "type"));
    const char *reason = json_string_value(json_object_get(error, "reason"));
    if (json_is_string(error))
        snprintf(out, outlen, "%s", json_string_value(error));
    else if (type != NULL || reason != NULL)
        snprintf(out, outlen, "%s%s%s", type != NULL ? type : "", type != NULL && reason != NULL ? ": " : "",
                 reason != NULL ? reason : "");
    else if (outlen > 0)
        out[0] = '\0';
}

/* An item, {"<action>": {"status": N, "error": {...}}}: its outcome, and
 * the first reason of each kind kept in the summary. */
static es_bulk_outcome es_bulk_item(const json_t *item, es_bulk_summary *s)
{
    const json_t *op = json_is_object(item) && json_object_size(item) == 1
                           ? json_object_iter_value(json_object_iter((json_t *)item))
                           : NULL;
    const json_t *st = json_object_get(op, "status");
    long status = json_is_integer(st) ? (long)json_integer_value(st) : -1;
    es_bulk_outcome o = status < 0 ? ES_BULK_REJECT : es_bulk_item_outcome(status);
    s->conflicts += status == 409;
    char *reason = o == ES_BULK_REJECT ? s->reason : o == ES_BULK_RETRY ? s->retry_reason : NULL;
    if (reason != NULL && reason[0] == '\0') {
        char what[200];
        es_bulk_describe(json_object_get(op, "error"), what, sizeof(what));
        if (status < 0)
            snprintf(reason, sizeof(s->reason), "malformed bulk item");
        else
            snprintf(reason, sizeof(s->reason), "%ld%s%s", status, what[0] ? " " : "", what);
    }
    return o;
}

/* The items array, cursor after "items":. */
static es_bulk_read es_bulk_items(es_bulk_cursor *c, size_t n_docs, uint8_t *outcomes, es_bulk_summary *s,
                                  char *err, size_t errlen)
{
    es_bulk_read r = es_bulk_expect(c, '[');
    for (size_t i = 0; r == ES_BULK_READ_OK; i++) {
        if ((r = es_bulk_expect(c, ']')) != ES_BULK_READ_BAD)
            return r;
        if (i > 0 && (r = es_bulk_expect(c, ',')) != ES_BULK_READ_OK)
            break;
        json_t *item;
        if (es_bulk_next_is(c, ",]")) {
            r = ES_BULK_READ_BAD;
            break;
        }
        if ((r = es_bulk_value(c, &item)) != ES_BULK_READ_OK)
            break;
        if (s->items == n_docs) {
            json_decref(item);
            snprintf(err, errlen, "bulk response has more items than the %zu documents sent", n_docs);
            return ES_BULK_READ_BAD;
        }
        outcomes[s->items++] = (uint8_t)es_bulk_item(item, s);
        json_decref(item);
    }
    if (r == ES_BULK_READ_BAD)
        snprintf(err, errlen, "malformed items in the bulk response");
    return r;
}

/* The top-level object: "errors" and "items", other members skipped. Sets
 * *have_items; CUT when the body ends first. */
static es_bulk_read es_bulk_top(es_bulk_cursor *c, size_t n_docs, uint8_t *outcomes, es_bulk_summary *s,
                                int *have_items, char *err, size_t errlen)
{
    es_bulk_read r = es_bulk_expect(c, '{');
    if (r != ES_BULK_READ_OK) { /* an empty body is no response, not a cut one */
        snprintf(err, errlen, r == ES_BULK_READ_CUT ? "empty response" : "not a JSON object");
        return ES_BULK_READ_BAD;
    }
    for (int first = 1; r == ES_BULK_READ_OK; first = 0) {
        if ((r = es_bulk_expect(c, '}')) != ES_BULK_READ_BAD)
            return r;
        json_t *key = NULL, *v = NULL;
        if (!first && (r = es_bulk_expect(c, ',')) != ES_BULK_READ_OK)
            break;
        es_bulk_ws(c);
        if (c->p < c->end && *c->p != '"') {
            r = ES_BULK_READ_BAD;
            break;
        }
        if ((r = es_bulk_value(c, &key)) != ES_BULK_READ_OK)
            break;
        const char *k = json_string_value(key);
        if (k == NULL || (r = es_bulk_expect(c, ':')) != ES_BULK_READ_OK) {
            json_decref(key);
            r = k == NULL ? ES_BULK_READ_BAD : r;
            break;
        }
        if (strcmp(k, "items") == 0) {
            *have_items = 1;
            r = es_bulk_items(c, n_docs, outcomes, s, err, errlen);
        } else if ((r = es_bulk_value(c, &v)) == ES_BULK_READ_OK && strcmp(k, "errors") == 0 && json_is_boolean(v)) {
            s->errors = json_is_true(v);
        }
        json_decref(v);
        json_decref(key);
    }
    if (r == ES_BULK_READ_BAD && err[0] == '\0')
        snprintf(err, errlen, "malformed JSON in the bulk response");
    return r;
}

int es_bulk_parse(const uint8_t *body, size_t len, size_t n_docs, uint8_t *outcomes, es_bulk_summary *s,
                  char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->errors = -1;
    if (errlen > 0)
        err[0] = '\0';
    es_bulk_cursor c = {(const char *)body, (const char *)body + len};
    int have_items = 0;
    es_bulk_read r = es_bulk_top(&c, n_docs, outcomes, s, &have_items, err, errlen);
    if (r == ES_BULK_READ_BAD)
        return -1;
    s->truncated = r == ES_BULK_READ_CUT;
    if (s->errors == 0) { /* Elasticsearch says every document went in: no need to read further */
        memset(outcomes, ES_BULK_OK, n_docs);
    } else if (!s->truncated && !have_items) {
        snprintf(err, errlen, "not a bulk response (no items)");
        return -1;
    } else if (!s->truncated && s->items != n_docs) {
        snprintf(err, errlen, "bulk response has %zu items for %zu documents", s->items, n_docs);
        return -1;
    } else {
        memset(outcomes + s->items, ES_BULK_RETRY, n_docs - s->items); /* unknown: send again */
    }
    for (size_t i = 0; i < n_docs; i++) {
        s->ok += outcomes[i] == ES_BULK_OK;
        s->retry += outcomes[i] == ES_BULK_RETRY;
        s->reject += outcomes[i] == ES_BULK_REJECT;
    }
    if (s->truncated && s->errors != 0 && s->retry_reason[0] == '\0')
        snprintf(s->retry_reason, sizeof(s->retry_reason), "bulk response cut short after %zu items", s->items);
    return 0;
}

void es_bulk_error_reason(const uint8_t *body, size_t len, char *out, size_t outlen)
{
    json_t *root = json_loadb((const char *)body, len, 0, NULL);
    es_bulk_describe(json_object_get(root, "error"), out, outlen);
    json_decref(root);
}
