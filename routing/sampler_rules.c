/* sampler_rules: Refinery's rules sampler (see sampler_rules.h). */
#include "sampler_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rules ---- */

static int cmp3(double a, double b) { return a < b ? -1 : a > b ? 1 : 0; }

/* Refinery's compare() for conditions without a datatype: numbers with
 * numbers, bools with bools, strings with strings; else no verdict (0). */
static int compare_untyped(const sr_val *a, const sr_val *b, int *out)
{
    if ((a->t == V_INT || a->t == V_FLOAT) && (b->t == V_INT || b->t == V_FLOAT)) {
        if (a->t == V_INT && b->t == V_INT)
            *out = a->i < b->i ? -1 : a->i > b->i;
        else
            *out = cmp3(a->t == V_INT ? (double)a->i : a->f, b->t == V_INT ? (double)b->i : b->f);
        return 1;
    }
    if (a->t == V_BOOL && b->t == V_BOOL) {
        *out = a->b - b->b;
        return 1;
    }
    if (a->t == V_STR && b->t == V_STR) {
        int c = strcmp(a->s, b->s);
        *out = c < 0 ? -1 : c > 0;
        return 1;
    }
    return 0;
}

static int to_int(const sr_val *v, int64_t *out)
{
    switch (v->t) {
    case V_INT: *out = v->i; return 1;
    case V_FLOAT: *out = (int64_t)v->f; return 1;
    case V_STR: return sr_parse_int(v->s, out);
    default: return 0;
    }
}

static int to_float(const sr_val *v, double *out)
{
    switch (v->t) {
    case V_INT: *out = (double)v->i; return 1;
    case V_FLOAT: *out = v->f; return 1;
    case V_STR: return sr_parse_float(v->s, out);
    default: return 0;
    }
}

static int to_bool(const sr_val *v)
{
    char tmp[64];
    const char *s = sr_val_str(v, tmp, sizeof(tmp));
    return strcmp(s, "1") == 0 || strcmp(s, "t") == 0 || strcmp(s, "T") == 0 || strcmp(s, "true") == 0 ||
           strcmp(s, "TRUE") == 0 || strcmp(s, "True") == 0;
}

static int op_holds(op_t op, int c)
{
    switch (op) {
    case OP_EQ: return c == 0;
    case OP_NE: return c != 0;
    case OP_GT: return c > 0;
    case OP_LT: return c < 0;
    case OP_GE: return c >= 0;
    default: return c <= 0;
    }
}

static int compare_typed(const cond *c, const sr_val *v, int exists)
{
    char tmp[64];
    switch (c->dt) {
    case DT_STRING: {
        int r = strcmp(sr_val_str(v, tmp, sizeof(tmp)), c->vstr);
        return op_holds(c->op, r < 0 ? -1 : r > 0);
    }
    case DT_INT: {
        int64_t a, b;
        return exists && to_int(v, &a) && to_int(&c->v, &b) && op_holds(c->op, a < b ? -1 : a > b);
    }
    case DT_FLOAT: {
        double a, b;
        return exists && to_float(v, &a) && to_float(&c->v, &b) && op_holds(c->op, cmp3(a, b));
    }
    default: /* bool: = and != only (checked when read) */
        return exists && op_holds(c->op, to_bool(v) != to_bool(&c->v));
    }
}

static int in_list(const cond *c, const sr_val *v)
{
    char tmp[64];
    for (size_t i = 0; i < c->n_list; i++) {
        int64_t a, b;
        double x, y;
        if (c->dt == DT_INT ? to_int(v, &a) && to_int(&c->list[i], &b) && a == b
            : c->dt == DT_FLOAT ? to_float(v, &x) && to_float(&c->list[i], &y) && x == y
                                : strcmp(sr_val_str(v, tmp, sizeof(tmp)), c->list_str[i]) == 0)
            return 1;
    }
    return 0;
}

static int cond_matches(const cond *c, const sr_val *v, int exists)
{
    char tmp[64];
    switch (c->op) {
    case OP_EXISTS: return exists;
    case OP_NOT_EXISTS: return !exists;
    case OP_STARTS: return strncmp(sr_val_str(v, tmp, sizeof(tmp)), c->vstr, strlen(c->vstr)) == 0;
    case OP_CONTAINS: return strstr(sr_val_str(v, tmp, sizeof(tmp)), c->vstr) != NULL;
    case OP_NOT_CONTAINS: return strstr(sr_val_str(v, tmp, sizeof(tmp)), c->vstr) == NULL;
    case OP_MATCHES: {
        const char *s = sr_val_str(v, tmp, sizeof(tmp));
        return regexp_match(c->re, s, strlen(s));
    }
    case OP_IN: return in_list(c, v);
    case OP_NOT_IN: return !in_list(c, v);
    case OP_HAS_ROOT: return 0; /* decided per trace, before spans */
    default:
        if (c->dt != DT_NONE)
            return compare_typed(c, v, exists);
        int r;
        return exists && compare_untyped(v, &c->v, &r) && op_holds(c->op, r);
    }
}

/* The first of the condition's fields that span s (or the root, for
 * "root." fields) has. */
static int cond_value(const cond *c, const sr_trace *t, const sr_span *s, sr_val *v)
{
    if (c->descendants) {
        memset(v, 0, sizeof(*v));
        v->t = V_INT;
        v->i = (int64_t)t->span_count;
        return 1;
    }
    for (size_t i = 0; i < c->n_fields; i++) {
        const char *f = c->fields[i];
        const sr_span *from = s;
        if (strncmp(f, "root.", 5) == 0) {
            if (t->root == NULL)
                continue;
            from = t->root;
            f += 5;
        }
        if (sr_span_field(from, f, v))
            return 1;
    }
    memset(v, 0, sizeof(*v));
    return 0;
}

static int span_meets(const cond *c, const sr_trace *t, const sr_span *s)
{
    sr_val v;
    int exists = cond_value(c, t, s, &v);
    return cond_matches(c, &v, exists);
}

/* Trace scope: every condition met by some span (not necessarily the same).
 * Span scope: one span meets every condition. No conditions: a match. */
static int rule_matches(const rule *r, const sr_trace *t)
{
    for (size_t k = 0; k < r->n_conds; k++)
        if (r->conds[k].op == OP_HAS_ROOT && (t->root != NULL) != r->conds[k].v.b)
            return 0;
    if (r->span_scope) {
        for (size_t s = 0; s < t->n_spans; s++) {
            size_t k = 0;
            while (k < r->n_conds && (r->conds[k].op == OP_HAS_ROOT || span_meets(&r->conds[k], t, &t->spans[s])))
                k++;
            if (k == r->n_conds)
                return 1;
        }
        return r->n_conds == 0;
    }
    for (size_t k = 0; k < r->n_conds; k++) {
        if (r->conds[k].op == OP_HAS_ROOT)
            continue;
        size_t s = 0;
        while (s < t->n_spans && !span_meets(&r->conds[k], t, &t->spans[s]))
            s++;
        if (s == t->n_spans)
            return 0;
    }
    return 1;
}

int sr_rules_eval(sr_policy *p, const sr_trace *t, uint64_t now_ns, double *rate)
{
    for (size_t i = 0; i < p->n_rules; i++) {
        const rule *r = &p->rules[i];
        if (!rule_matches(r, t))
            continue;
        if (r->sampler != NULL)
            return sr_eval(r->sampler, t, now_ns, rate);
        *rate = r->sample_rate > 0 ? r->sample_rate : 1;
        return !r->drop && r->sample_rate > 0 && sr_chance(p, t, r->sample_rate);
    }
    *rate = 1; /* no rule matched: kept, as Refinery does */
    return 1;
}

static const char *const op_names[] = {"=", "!=", ">", "<", ">=", "<=", "starts-with", "contains",
                                       "does-not-contain", "exists", "not-exists", "matches", "in", "not-in",
                                       "has-root-span", NULL};
static const char *const dt_names[] = {"string", "int", "float", "bool", NULL};

static int read_cond_value(cond *c, const config_node *n, char *err, size_t errlen)
{
    const config_node *v = config_get(n, "value");
    if (c->op == OP_EXISTS || c->op == OP_NOT_EXISTS) {
        c->vstr = strdup("");
        return c->vstr != NULL ? 0 : sr_read_err(n, NULL, err, errlen, "out of memory");
    }
    if (c->op == OP_IN || c->op == OP_NOT_IN) {
        if (v == NULL || (!config_is_seq(v) && config_scalar(v) == NULL))
            return sr_read_err(n, "value", err, errlen, "expected a value or a sequence of values");
        if (c->dt == DT_BOOL)
            return sr_read_err(n, "datatype", err, errlen, "in and not-in do not take bool values");
        size_t m = config_is_seq(v) ? config_seq_len(v) : 1;
        c->list = calloc(m, sizeof(*c->list));
        c->list_str = calloc(m, sizeof(char *));
        if (c->list == NULL || c->list_str == NULL)
            return sr_read_err(n, NULL, err, errlen, "out of memory");
        for (size_t i = 0; i < m; i++) {
            const config_node *e = config_is_seq(v) ? config_seq_at(v, i) : v;
            const char *s = config_scalar(e);
            if (s == NULL)
                return sr_read_err(e, NULL, err, errlen, "expected a scalar");
            if ((c->list_str[i] = strdup(s)) == NULL)
                return sr_read_err(n, NULL, err, errlen, "out of memory");
            c->list[i] = sr_typed_scalar(c->list_str[i]);
            c->n_list = i + 1;
        }
        c->vstr = strdup("");
        return c->vstr != NULL ? 0 : sr_read_err(n, NULL, err, errlen, "out of memory");
    }
    if (v == NULL || config_scalar(v) == NULL)
        return sr_read_err(n, "value", err, errlen, "expected a scalar value");
    if ((c->vstr = strdup(config_scalar(v))) == NULL)
        return sr_read_err(n, NULL, err, errlen, "out of memory");
    c->v = sr_typed_scalar(c->vstr);
    int64_t i;
    double f;
    if ((c->dt == DT_INT && !to_int(&c->v, &i)) || (c->dt == DT_FLOAT && !to_float(&c->v, &f)))
        return sr_read_err(n, "value", err, errlen, "does not convert to the datatype");
    if (c->dt == DT_BOOL && c->op != OP_EQ && c->op != OP_NE)
        return sr_read_err(n, "operator", err, errlen, "a bool datatype takes only = and !=");
    if (c->op == OP_HAS_ROOT) {
        if (c->v.t != V_BOOL)
            return sr_read_err(n, "value", err, errlen, "has-root-span takes true or false");
    }
    char why[200];
    if (c->op == OP_MATCHES && (c->re = regexp_compile(c->vstr, REGEXP_SEARCH, why, sizeof(why))) == NULL)
        return config_error(n, "value", err, errlen, "invalid regular expression: %s", why);
    return 0;
}

static int read_cond(cond *c, const config_node *n, char *err, size_t errlen)
{
    static const char *const keys[] = {"field", "fields", "operator", "value", "datatype", NULL};
    int op, dt;
    if (!config_is_map(n))
        return sr_read_err(n, NULL, err, errlen, "expected a condition {field, operator, value}");
    if (config_check_keys(n, keys, err, errlen) != 0 ||
        config_choice(n, "operator", op_names, -1, &op, err, errlen) != 0 ||
        config_choice(n, "datatype", dt_names, -1, &dt, err, errlen) != 0)
        return -1;
    if (op < 0)
        return sr_read_err(n, "operator", err, errlen, "required key is missing");
    c->op = (op_t)op;
    c->dt = (dtype)(dt + 1); /* -1 (absent): DT_NONE */
    const config_node *f = config_get(n, "field"), *fs = config_get(n, "fields");
    if (f != NULL && fs != NULL)
        return sr_read_err(n, "fields", err, errlen, "give field or fields, not both");
    if (c->op != OP_HAS_ROOT) {
        if (f == NULL && fs == NULL)
            return sr_read_err(n, "field", err, errlen, "required key is missing");
        if (fs != NULL && config_str_list(n, "fields", &fs, err, errlen) != 0)
            return -1;
        if (f != NULL && config_scalar(f) == NULL)
            return sr_read_err(n, "field", err, errlen, "expected a field name");
        if (fs != NULL ? sr_dup_list(fs, &c->fields, &c->n_fields) != 0
                       : (c->fields = calloc(1, sizeof(char *))) == NULL ||
                             (c->fields[c->n_fields++] = strdup(config_scalar(f))) == NULL)
            return sr_read_err(n, NULL, err, errlen, "out of memory");
        c->descendants = c->n_fields == 1 && strcmp(c->fields[0], "?.NUM_DESCENDANTS") == 0;
    }
    return read_cond_value(c, n, err, errlen);
}

/* A rule's downstream `sampler: {type, <its keys>}` (Refinery's
 * RulesBasedDownstreamSampler: any sampler but rules), salted by the
 * policy's and the rule's names. */
static int read_downstream(rule *r, const char *policy, const config_node *n, char *err, size_t errlen)
{
    static const char *const kinds[] = {"deterministic", "dynamic", "ema_dynamic", "ema_throughput",
                                        "windowed_throughput", "total_throughput", NULL};
    static const sr_kind kind_of[] = {SR_DETERMINISTIC, SR_DYNAMIC, SR_EMA_DYNAMIC, SR_EMA_THROUGHPUT,
                                      SR_WINDOWED_THROUGHPUT, SR_TOTAL_THROUGHPUT};
    static const char *const *const keys_of[] = {sr_keys_deterministic, sr_keys_dynamic, sr_keys_ema_dynamic,
                                                 sr_keys_ema_throughput, sr_keys_windowed, sr_keys_total};
    const config_node *d = config_get(n, "sampler");
    int k;
    if (!config_is_map(d))
        return sr_read_err(n, "sampler", err, errlen, "expected a sampler mapping {type, ...}");
    if (config_choice(d, "type", kinds, -1, &k, err, errlen) != 0)
        return -1;
    if (k < 0)
        return sr_read_err(d, "type", err, errlen, "required key is missing");
    const char *allowed[16] = {"type"};
    size_t m = 1;
    for (size_t i = 0; keys_of[k][i] != NULL && m < 15; i++)
        allowed[m++] = keys_of[k][i];
    if (config_check_keys(d, allowed, err, errlen) != 0)
        return -1;
    char salt[256];
    snprintf(salt, sizeof(salt), "%s/%s", policy, r->name);
    r->sampler = sr_read(kind_of[k], salt, d, err, errlen);
    return r->sampler != NULL ? 0 : -1;
}

static int read_rule(rule *r, const char *policy, const config_node *n, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", "sample_rate", "drop", "scope", "conditions", "sampler", NULL};
    static const char *const scopes[] = {"trace", "span", NULL};
    const char *name;
    uint64_t rate;
    const config_node *conds = NULL;
    if (!config_is_map(n))
        return sr_read_err(n, NULL, err, errlen, "expected a rule {name, sample_rate, conditions, ...}");
    if (config_check_keys(n, keys, err, errlen) != 0 || config_str(n, "name", "", &name, err, errlen) != 0 ||
        config_uint(n, "sample_rate", 1, 0, UINT32_MAX, &rate, err, errlen) != 0 ||
        config_bool(n, "drop", 0, &r->drop, err, errlen) != 0 ||
        config_choice(n, "scope", scopes, 0, &r->span_scope, err, errlen) != 0 ||
        config_seq(n, "conditions", 0, &conds, err, errlen) != 0)
        return -1;
    if ((r->name = strdup(name)) == NULL)
        return sr_read_err(n, NULL, err, errlen, "out of memory");
    r->sample_rate = (uint32_t)rate;
    size_t m = config_seq_len(conds);
    if ((r->conds = calloc(m ? m : 1, sizeof(*r->conds))) == NULL)
        return sr_read_err(n, NULL, err, errlen, "out of memory");
    for (size_t i = 0; i < m; i++) {
        r->n_conds = i + 1; /* freed by sr_free even if half read */
        if (read_cond(&r->conds[i], config_seq_at(conds, i), err, errlen) != 0)
            return -1;
    }
    return config_get(n, "sampler") != NULL ? read_downstream(r, policy, n, err, errlen) : 0;
}

int sr_read_rules(sr_policy *p, const config_node *n, char *err, size_t errlen)
{
    const config_node *seq;
    if (config_seq(n, "rules", 1, &seq, err, errlen) != 0)
        return -1;
    if (config_seq_len(seq) == 0)
        return sr_read_err(n, "rules", err, errlen, "must not be empty");
    if ((p->rules = calloc(config_seq_len(seq), sizeof(*p->rules))) == NULL)
        return sr_read_err(n, NULL, err, errlen, "out of memory");
    for (size_t i = 0; i < config_seq_len(seq); i++) {
        p->n_rules = i + 1;
        if (read_rule(&p->rules[i], p->name, config_seq_at(seq, i), err, errlen) != 0)
            return -1;
    }
    return 0;
}

void sr_cond_free(cond *c)
{
    for (size_t i = 0; i < c->n_fields; i++)
        free(c->fields[i]);
    free(c->fields);
    for (size_t i = 0; i < c->n_list; i++)
        free(c->list_str[i]);
    free(c->list_str);
    free(c->list);
    free(c->vstr);
    regexp_free(c->re);
}
