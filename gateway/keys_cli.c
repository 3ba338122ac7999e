/* keys_cli: the `otlp-gateway keys` command (see keys_cli.h). Errors are
 * printed here, at the top, from the messages apikey returns. */
#include "keys_cli.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "apikey.h"

static const char keys_cli_usage[] =
    "usage: otlp-gateway keys create --tenant TENANT [--name NAME] [--expires DURATION|DATE] [--keys-file FILE]\n"
    "       otlp-gateway keys list [--keys-file FILE]\n"
    "       otlp-gateway keys revoke ID [--keys-file FILE]\n"
    "       otlp-gateway keys --help\n"
    "\n"
    "Manages gateway API keys, sent by clients as `Authorization: Bearer otlpgw_...`.\n"
    "Only a SHA-256 hash of each key is stored; `create` prints the new key once, on\n"
    "stdout. DURATION is a count and a unit m, h, d or w (e.g. 90d); DATE is RFC 3339\n"
    "UTC (e.g. 2027-01-31T00:00:00Z). Without --keys-file, the keys are where the\n"
    "configuration's auth.api_keys says: a file, or an s3://bucket/key object shared\n"
    "by a fleet (written with conditional PUTs, so concurrent edits are not lost; a\n"
    "url source is read-only). Running gateways see changes within their reload or\n"
    "poll interval.\n"
    "Exit status: 0 ok, 1 error, 2 usage error.\n";

typedef enum { KEYS_CLI_CREATE, KEYS_CLI_LIST, KEYS_CLI_REVOKE } keys_cli_cmd;

typedef struct keys_cli_args {
    const char *tenant, *name, *expires, *file, *id;
} keys_cli_args;

static int keys_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int keys_cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("otlp-gateway keys: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", keys_cli_usage);
    return 2;
}

/* An operational error: the message apikey returned. */
static int keys_cli_error(const char *err)
{
    fprintf(stderr, "otlp-gateway keys: %s\n", err);
    return 1;
}

/* "90d", "12h", "30m", "2w": a positive count and a unit, at most ~100 years. */
static int keys_cli_parse_duration(const char *s, int64_t *out)
{
    int64_t n = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        n = n * 10 + (s[i] - '0');
        if (n > 100 * 366 * 24 * 60)
            return -1;
    }
    if (i == 0 || n == 0 || s[i] == '\0' || s[i + 1] != '\0')
        return -1;
    int64_t unit;
    switch (s[i]) {
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: return -1;
    }
    if (n * unit > (int64_t)100 * 366 * 86400)
        return -1;
    *out = n * unit;
    return 0;
}

/* Options take their value as the next argument or after '='. Returns 0, 2
 * (usage error, already reported) or -1 when help was asked for. */
static int keys_cli_parse_args(int argc, char **argv, keys_cli_cmd cmd, keys_cli_args *a)
{
    static const char *const names[] = {"--tenant", "--name", "--expires", "--keys-file"};
    const char **slots[] = {&a->tenant, &a->name, &a->expires, &a->file};
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return -1;
        if (strncmp(arg, "--", 2) != 0) {
            if (cmd != KEYS_CLI_REVOKE || a->id != NULL)
                return keys_cli_usage_error("unexpected argument \"%s\"", arg);
            a->id = arg;
            continue;
        }
        size_t nlen = strcspn(arg, "="), k = 0;
        while (k < 4 && !(strlen(names[k]) == nlen && strncmp(arg, names[k], nlen) == 0))
            k++;
        if (k == 4 || (k < 3 && cmd != KEYS_CLI_CREATE)) /* only --keys-file is common to all */
            return keys_cli_usage_error("unknown option \"%s\" for %s", arg, argv[1]);
        const char *v = arg[nlen] == '=' ? arg + nlen + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (v == NULL || (arg[nlen] != '=' && strncmp(v, "--", 2) == 0))
            return keys_cli_usage_error("%s needs a value", names[k]);
        if (*slots[k] != NULL)
            return keys_cli_usage_error("%s given twice", names[k]);
        *slots[k] = v;
    }
    return 0;
}

/* Writes a table cell; control characters in names become '?' so a hostile
 * name cannot rewrite the terminal. `width` 0: last column, no padding. */
static void keys_cli_cell(const char *v, size_t width)
{
    size_t n = 0;
    for (; v[n]; n++)
        putchar((unsigned char)v[n] < 0x20 || v[n] == 0x7f ? '?' : v[n]);
    if (width == 0)
        putchar('\n');
    else
        printf("%*s", (int)(width - n + 2), "");
}

static int keys_cli_file_load(void *path, apikey_store **out, char *err, size_t errlen)
{
    return apikey_store_load(path, out, err, errlen);
}

static int keys_cli_file_edit(void *path, apikey_edit_fn fn, void *arg, char *err, size_t errlen)
{
    return apikey_file_edit(path, fn, arg, err, errlen);
}

static int keys_cli_list(const keys_cli_store *st, int64_t now)
{
    char err[512];
    apikey_store *s;
    if (st->load(st->ctx, &s, err, sizeof(err)) != 0)
        return keys_cli_error(err);
    size_t n = apikey_store_count(s);
    size_t w_id = 2, w_tenant = 6, w_name = 4; /* the headings */
    for (size_t i = 0; i < n; i++) {
        apikey_info e = apikey_store_entry(s, i);
        size_t name_len = e.name ? strlen(e.name) : 1;
        w_id = strlen(e.id) > w_id ? strlen(e.id) : w_id;
        w_tenant = strlen(e.tenant) > w_tenant ? strlen(e.tenant) : w_tenant;
        w_name = name_len > w_name ? name_len : w_name;
    }
    keys_cli_cell("ID", w_id);
    keys_cli_cell("TENANT", w_tenant);
    keys_cli_cell("NAME", w_name);
    keys_cli_cell("CREATED", APIKEY_TIME_LEN);
    keys_cli_cell("EXPIRES", APIKEY_TIME_LEN);
    keys_cli_cell("STATUS", 0);
    for (size_t i = 0; i < n; i++) {
        apikey_info e = apikey_store_entry(s, i);
        char created[APIKEY_TIME_LEN + 1], expires[APIKEY_TIME_LEN + 1];
        keys_cli_cell(e.id, w_id);
        keys_cli_cell(e.tenant, w_tenant);
        keys_cli_cell(e.name ? e.name : "-", w_name);
        keys_cli_cell(e.created == APIKEY_NO_TIME ? "-" : apikey_format_time(e.created, created), APIKEY_TIME_LEN);
        keys_cli_cell(e.expires == APIKEY_NO_TIME ? "never" : apikey_format_time(e.expires, expires),
                      APIKEY_TIME_LEN);
        keys_cli_cell(e.revoked                                             ? "revoked"
                      : e.expires != APIKEY_NO_TIME && e.expires <= now ? "expired"
                                                                          : "active",
                      0);
    }
    apikey_store_free(s);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int keys_cli_create(const keys_cli_store *st, const keys_cli_args *a, int64_t now)
{
    apikey_new k = {.tenant = a->tenant, .name = a->name, .created = now, .expires = APIKEY_NO_TIME};
    if (a->tenant == NULL || *a->tenant == '\0')
        return keys_cli_usage_error("create needs --tenant");
    if (!apikey_is_word(a->tenant)) /* tenant ids are names in the configuration */
        return keys_cli_usage_error("--tenant must be letters, digits, _ - or .");
    if (a->expires != NULL) {
        int64_t d;
        if (apikey_parse_time(a->expires, &k.expires) == 0) {
            if (k.expires <= now)
                return keys_cli_usage_error("--expires %s is in the past", a->expires);
        } else if (keys_cli_parse_duration(a->expires, &d) == 0) {
            k.expires = now + d;
        } else {
            return keys_cli_usage_error("invalid --expires \"%s\" (use e.g. 90d, 12h, 30m or 2027-01-31T00:00:00Z)",
                                        a->expires);
        }
    }
    char err[512];
    if (st->edit(st->ctx, apikey_edit_create, &k, err, sizeof(err)) != 0) {
        OPENSSL_cleanse(k.key, sizeof(k.key));
        return keys_cli_error(err);
    }
    char expires[APIKEY_TIME_LEN + 1];
    fprintf(stderr, "created key %s for tenant %s in %s, expires %s\n", k.id, k.tenant, st->where,
            k.expires == APIKEY_NO_TIME ? "never" : apikey_format_time(k.expires, expires));
    fprintf(stderr, "the key follows on stdout; it is shown only this once\n");
    int rc = printf("%s\n", k.key) < 0 || fflush(stdout) != 0 ? 1 : 0;
    OPENSSL_cleanse(k.key, sizeof(k.key));
    return rc;
}

static int keys_cli_revoke(const keys_cli_store *st, const char *id)
{
    if (id == NULL)
        return keys_cli_usage_error("revoke needs a key id (see `keys list`)");
    char err[512];
    apikey_revoke r = {.where = st->where, .id = id};
    int rc = st->edit(st->ctx, apikey_edit_revoke, &r, err, sizeof(err));
    if (rc < 0)
        return keys_cli_error(err);
    fprintf(stderr, rc == 1 ? "key %s was already revoked\n" : "revoked key %s\n", id);
    return 0;
}

int keys_cli_main(int argc, char **argv, const char *default_keys_file, const keys_cli_store *remote)
{
    if (argc < 2)
        return keys_cli_usage_error("missing command (create, list or revoke)");
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(keys_cli_usage, stdout);
        return 0;
    }
    keys_cli_cmd cmd;
    if (strcmp(sub, "create") == 0)
        cmd = KEYS_CLI_CREATE;
    else if (strcmp(sub, "list") == 0)
        cmd = KEYS_CLI_LIST;
    else if (strcmp(sub, "revoke") == 0)
        cmd = KEYS_CLI_REVOKE;
    else
        return keys_cli_usage_error("unknown command \"%s\"", sub);
    keys_cli_args a = {0};
    int rc = keys_cli_parse_args(argc, argv, cmd, &a);
    if (rc < 0) {
        fputs(keys_cli_usage, stdout);
        return 0;
    }
    if (rc != 0)
        return rc;
    const char *path = a.file ? a.file : default_keys_file;
    keys_cli_store file = {.where = path, .load = keys_cli_file_load, .edit = keys_cli_file_edit, .ctx = (void *)path};
    const keys_cli_store *st = a.file == NULL && remote != NULL ? remote : &file;
    if (st == &file && (path == NULL || *path == '\0'))
        return keys_cli_usage_error("no keys file: give --keys-file or set auth.api_keys in the configuration");
    int64_t now = (int64_t)time(NULL);
    if (cmd == KEYS_CLI_LIST)
        return keys_cli_list(st, now);
    if (cmd == KEYS_CLI_CREATE)
        return keys_cli_create(st, &a, now);
    return keys_cli_revoke(st, a.id);
}
