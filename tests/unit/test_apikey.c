#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "apikey.h"
#include "digest.h"
#include "keys_cli.h"

/* Each test works in its own fresh directory; paths are built from it. */
static char dir[64];
static char keys_path[128];
static char out_text[1 << 16]; /* the last CLI run's stdout */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test-apikey-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(keys_path, sizeof(keys_path), "%s/keys.yaml", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(keys_path);
    assert_int_equal(rmdir(dir), 0); /* also proves no temp file was left behind */
    return 0;
}

static void read_fd(FILE *f, char *out, size_t cap)
{
    rewind(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

/* Runs keys_cli_main with the NULL-terminated arguments after "keys", stdout
 * captured into out_text and stderr into a discarded file. */
static int run_cli(const char *first, ...)
{
    char *argv[16] = {"keys"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
        assert_true(argc < 15);
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    FILE *out = tmpfile(), *errf = tmpfile();
    assert_non_null(out);
    assert_non_null(errf);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(fileno(out), 1);
    dup2(fileno(errf), 2);
    int rc = keys_cli_main(argc, argv, NULL, NULL);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    read_fd(out, out_text, sizeof(out_text));
    fclose(errf);
    return rc;
}

/* Creates a key for `tenant` in keys_path; returns it (static buffer). */
static const char *create_key(const char *tenant)
{
    static char key[128];
    assert_int_equal(run_cli("create", "--tenant", tenant, "--name", "ci", "--keys-file", keys_path, NULL), 0);
    size_t n = strlen(out_text);
    assert_true(n > 1 && out_text[n - 1] == '\n' && strchr(out_text, '\n') == out_text + n - 1); /* one line */
    assert_true(n < sizeof(key));
    memcpy(key, out_text, n - 1);
    key[n - 1] = '\0';
    return key;
}

static apikey_store *load_ok(void)
{
    char err[256];
    apikey_store *s = NULL;
    assert_int_equal(apikey_store_load(keys_path, &s, err, sizeof(err)), 0);
    assert_non_null(s);
    return s;
}

static void write_file(const char *text)
{
    FILE *f = fopen(keys_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void sha256_hex(const char *s, char out[65])
{
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, strlen(s), d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static apikey_status check(const apikey_store *s, const char *key, const char **tenant, const char **id)
{
    return apikey_check(s, key, strlen(key), (int64_t)time(NULL), tenant, id);
}

/* The id of a key that is valid in keys_path. */
static void id_of(const char *key, char out[32])
{
    apikey_store *s = load_ok();
    const char *tenant, *id;
    assert_int_equal(check(s, key, &tenant, &id), APIKEY_OK);
    snprintf(out, 32, "%s", id);
    apikey_store_free(s);
}

static void test_create_and_check(void **state)
{
    (void)state;
    const char *key = create_key("shop");
    assert_int_equal(strlen(key), strlen(APIKEY_PREFIX) + 43);
    assert_true(apikey_looks_like(key, strlen(key)));

    struct stat st;
    assert_int_equal(stat(keys_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    apikey_store *s = load_ok();
    assert_int_equal(apikey_store_count(s), 1);
    const char *tenant, *id;
    assert_int_equal(check(s, key, &tenant, &id), APIKEY_OK);
    assert_string_equal(tenant, "shop");
    assert_int_equal(strlen(id), 14);
    assert_memory_equal(id, "k_", 2);

    const char *other = "otlpgw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_int_equal(check(s, other, &tenant, &id), APIKEY_UNKNOWN);
    assert_null(tenant);
    assert_null(id);
    apikey_store_free(s);

    /* A second create keeps the first key, and the file never holds a key. */
    const char *first = strdup(key);
    const char *second = create_key("billing");
    s = load_ok();
    assert_int_equal(apikey_store_count(s), 2);
    assert_int_equal(check(s, first, &tenant, &id), APIKEY_OK);
    assert_string_equal(tenant, "shop");
    assert_int_equal(check(s, second, &tenant, &id), APIKEY_OK);
    assert_string_equal(tenant, "billing");
    apikey_store_free(s);
    FILE *f = fopen(keys_path, "r");
    char text[4096];
    read_fd(f, text, sizeof(text));
    assert_non_null(strstr(text, "# otlp-gateway API keys. Managed by `otlp-gateway keys"));
    assert_null(strstr(text, first));
    assert_null(strstr(text, second));
    free((void *)first);
}

static void test_list(void **state)
{
    (void)state;
    char key[128], hex[65];
    snprintf(key, sizeof(key), "%s", create_key("shop"));
    create_key("billing");
    char id_copy[32];
    id_of(key, id_copy);

    assert_int_equal(run_cli("list", "--keys-file", keys_path, NULL), 0);
    assert_non_null(strstr(out_text, "ID"));
    assert_non_null(strstr(out_text, id_copy));
    assert_non_null(strstr(out_text, "shop"));
    assert_non_null(strstr(out_text, "billing"));
    assert_non_null(strstr(out_text, "active"));
    assert_null(strstr(out_text, key));
    sha256_hex(key, hex);
    assert_null(strstr(out_text, hex));
    assert_null(strstr(out_text, hex + 12)); /* not even the part after the id */
}

static void test_revoke(void **state)
{
    (void)state;
    const char *key = create_key("shop");
    char id_copy[32];
    id_of(key, id_copy);
    assert_int_equal(run_cli("revoke", id_copy, "--keys-file", keys_path, NULL), 0);
    apikey_store *s = load_ok();
    const char *tenant, *id;
    assert_int_equal(check(s, key, &tenant, &id), APIKEY_REVOKED);
    assert_string_equal(id, id_copy);
    apikey_store_free(s);
    assert_int_equal(run_cli("revoke", id_copy, "--keys-file", keys_path, NULL), 0); /* idempotent */
    assert_int_equal(run_cli("revoke", "k_000000000000", "--keys-file", keys_path, NULL), 1);
    assert_int_equal(run_cli("list", "--keys-file", keys_path, NULL), 0);
    assert_non_null(strstr(out_text, "revoked"));
}

static void test_expired(void **state)
{
    (void)state;
    const char *key = "otlpgw_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
    char hex[65], text[512];
    sha256_hex(key, hex);
    snprintf(text, sizeof(text),
             "keys:\n  - id: k_old\n    tenant: shop\n    sha256: %s\n    created: 2000-01-01T00:00:00Z\n"
             "    expires: 2001-01-01T00:00:00Z\n",
             hex);
    write_file(text);
    apikey_store *s = load_ok();
    const char *tenant, *id;
    assert_int_equal(check(s, key, &tenant, &id), APIKEY_EXPIRED);
    assert_int_equal(apikey_check(s, key, strlen(key), 978307200, &tenant, &id), APIKEY_EXPIRED); /* == expiry */
    assert_int_equal(apikey_check(s, key, strlen(key), 978307199, &tenant, &id), APIKEY_OK);
    assert_string_equal(tenant, "shop");
    assert_string_equal(id, "k_old");
    apikey_store_free(s);
    assert_int_equal(run_cli("list", "--keys-file", keys_path, NULL), 0);
    assert_non_null(strstr(out_text, "expired"));

    /* --expires as a duration: valid now, expired after it. */
    const char *fresh = create_key("shop");
    char fresh_copy[64];
    snprintf(fresh_copy, sizeof(fresh_copy), "%s", fresh);
    assert_int_equal(run_cli("create", "--tenant", "t", "--expires", "90d", "--keys-file", keys_path, NULL), 0);
    out_text[strlen(out_text) - 1] = '\0';
    s = load_ok();
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(apikey_check(s, out_text, strlen(out_text), now, &tenant, &id), APIKEY_OK);
    assert_int_equal(apikey_check(s, out_text, strlen(out_text), now + 91 * 86400, &tenant, &id), APIKEY_EXPIRED);
    assert_int_equal(apikey_check(s, fresh_copy, strlen(fresh_copy), now + 91 * 86400, &tenant, &id), APIKEY_OK);
    assert_int_equal(apikey_check(s, key, strlen(key), now, &tenant, &id), APIKEY_EXPIRED); /* rewritten intact */
    apikey_store_free(s);
}

static void test_malformed(void **state)
{
    (void)state;
    write_file("keys: []\n");
    apikey_store *s = load_ok();
    const char *bad[] = {
        "otlpgx_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG", /* wrong prefix */
        "OTLPGW_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG",
        "otlpgw_0123456789abcdefghijklmnopqrstuvwxyzABCDEF",   /* 42 */
        "otlpgw_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH", /* 44 */
        "otlpgw_0123456789abcdefghijklmnopqrstuvwxyzABCDE+/",  /* standard base64 */
        "otlpgw_0123456789abcdefghijklmnopqrstuvwxyzABCDEF=",
        "otlpgw_0123456789abcdefghijklmnopqrstuvwxyz ABCDEF",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl", /* a JWT */
        "otlpgw_",
        "",
    };
    const char *tenant = "x", *id = "x";
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(apikey_looks_like(bad[i], strlen(bad[i])));
        assert_int_equal(check(s, bad[i], &tenant, &id), APIKEY_MALFORMED);
        assert_null(tenant);
    }
    /* Length is what the caller says, not up to a NUL. */
    const char *good = "otlpgw_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
    assert_true(apikey_looks_like(good, strlen(good)));
    assert_false(apikey_looks_like(good, strlen(good) - 1));
    assert_int_equal(check(s, good, &tenant, &id), APIKEY_UNKNOWN);
    apikey_store_free(s);
}

/* A document in memory (a fetched object) goes through the file's parser:
 * same entries, same located errors under the name given; format writes
 * what parses back to the same set; edits work on a store. */
static void test_memory_parse_format_edit(void **state)
{
    (void)state;
    static const char doc[] =
        "keys:\n"
        "  - id: k_a\n    tenant: shop\n    name: \"ci: agents\"\n"
        "    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n"
        "    created: 2026-01-01T00:00:00Z\n    revoked: false\n"
        "  - id: k_b\n    tenant: pay\n"
        "    sha256: 1111111111111111111111111111111111111111111111111111111111111111\n"
        "    expires: 2027-01-01T00:00:00Z\n    revoked: true\n";
    apikey_store *s, *again;
    char err[512];
    /* Not NUL-terminated: the length is what is parsed. */
    char *copy = malloc(sizeof(doc) - 1);
    memcpy(copy, doc, sizeof(doc) - 1);
    assert_int_equal(apikey_store_parse("s3://b/keys.yaml", copy, sizeof(doc) - 1, &s, err, sizeof(err)), 0);
    free(copy);
    assert_int_equal(apikey_store_count(s), 2);
    apikey_info e = apikey_store_entry(s, 0);
    assert_string_equal(e.id, "k_a");
    assert_string_equal(e.name, "ci: agents");
    assert_int_equal(e.expires, APIKEY_NO_TIME);
    e = apikey_store_entry(s, 1);
    assert_true(e.revoked);
    assert_null(e.name);

    char *out;
    size_t len;
    assert_int_equal(apikey_store_format(s, &out, &len), 0);
    assert_int_equal(strlen(out), len);
    assert_non_null(strstr(out, "# otlp-gateway API keys."));
    assert_int_equal(apikey_store_parse("formatted", out, len, &again, err, sizeof(err)), 0);
    free(out);
    assert_int_equal(apikey_store_count(again), 2);
    for (size_t i = 0; i < 2; i++) {
        apikey_info x = apikey_store_entry(s, i), y = apikey_store_entry(again, i);
        assert_string_equal(x.id, y.id);
        assert_string_equal(x.tenant, y.tenant);
        assert_int_equal(x.created, y.created);
        assert_int_equal(x.expires, y.expires);
        assert_int_equal(x.revoked, y.revoked);
    }
    apikey_store_free(again);

    /* Edits on a store: revoke (1 when already revoked, -1 naming the place
     * when the id is unknown) and create. */
    apikey_revoke rv = {.where = "s3://b/keys.yaml", .id = "k_a"};
    assert_int_equal(apikey_edit_revoke(s, &rv, err, sizeof(err)), 0);
    assert_true(apikey_store_entry(s, 0).revoked);
    assert_int_equal(apikey_edit_revoke(s, &rv, err, sizeof(err)), 1);
    rv.id = "k_zz";
    assert_int_equal(apikey_edit_revoke(s, &rv, err, sizeof(err)), -1);
    assert_string_equal(err, "s3://b/keys.yaml: no key with id \"k_zz\" (see `keys list`)");
    apikey_new k = {.tenant = "shop", .created = 1, .expires = APIKEY_NO_TIME};
    assert_int_equal(apikey_edit_create(s, &k, err, sizeof(err)), 0);
    assert_int_equal(apikey_store_count(s), 3);
    assert_true(apikey_looks_like(k.key, strlen(k.key)));
    assert_string_equal(apikey_store_entry(s, 2).id, k.id);
    /* The edited store formats to a document in which the new key checks out. */
    assert_int_equal(apikey_store_format(s, &out, &len), 0);
    assert_int_equal(apikey_store_parse("edited", out, len, &again, err, sizeof(err)), 0);
    free(out);
    const char *tenant, *id;
    assert_int_equal(apikey_check(again, k.key, strlen(k.key), 2, &tenant, &id), APIKEY_OK);
    assert_string_equal(tenant, "shop");
    assert_int_equal(apikey_check(again, k.key, strlen(k.key), 2, NULL, NULL), APIKEY_OK);
    apikey_store_free(again);
    apikey_store_free(s);

    /* Errors are located under the name; empty documents are empty sets. */
    assert_int_equal(apikey_store_parse("https://k/x", "keys:\n  - id: [a\n", 17, &s, err, sizeof(err)), -1);
    assert_null(s);
    assert_non_null(strstr(err, "https://k/x:3: invalid YAML"));
    assert_int_equal(apikey_store_parse("u", "keys:\n  - {id: a}\n", 18, &s, err, sizeof(err)), -1);
    assert_string_equal(err, "u:2: entry has no tenant");
    assert_int_equal(apikey_store_parse("u", "keys: []\0junk", 14, &s, err, sizeof(err)), -1);
    assert_string_equal(err, "u: the document contains a NUL byte");
    assert_int_equal(apikey_store_parse("u", "", 0, &s, err, sizeof(err)), 0);
    assert_int_equal(apikey_store_count(s), 0);
    apikey_store_free(s);
    assert_int_equal(apikey_store_parse("u", "# nothing yet\n", 14, &s, err, sizeof(err)), 0);
    apikey_store_free(s);
}

static void test_file_errors(void **state)
{
    (void)state;
    const char *h = "    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n";
    char entry[256], dup_entry[256];
    snprintf(entry, sizeof(entry), "  - id: a\n    tenant: t\n%s", h);
    snprintf(dup_entry, sizeof(dup_entry), "  - id: a\n    tenant: t\n%s",
             "    sha256: 1111111111111111111111111111111111111111111111111111111111111111\n");
    struct {
        const char *yaml, *line_msg;
    } cases[] = {
        {"keys:\n  - id: [a\n", ":3: invalid YAML"},
        {"keys:\n  - id: a\n    tenant: t\n    owner: me\n", ":4: unknown field \"owner\""},
        {"keys:\n  - id: a\n    tenant: t\n    sha256: 00zz\n", ":4: sha256 must be 64 hex digits"},
        {"keys:\n  - id: a\n    tenant: t\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000"
         "00\n",
         ":4: sha256 must be 64 hex digits"},
        {"keys:\n  - id: a\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n",
         ":2: entry has no tenant"},
        {NULL, ":5: duplicate id \"a\" (first at line 2)"},
        {"keys:\n\n  - id: a\n    tenant: t\n    expires: 2027-02-30T00:00:00Z\n", ":5: expires: invalid date"},
        {"keys:\n  - id: a\n    tenant: t\n    created: 2027-01-01 00:00:00\n", ":4: created: invalid date"},
        {"keys:\n  - id: a\n    tenant: t\n    revoked: yes\n", ":4: revoked must be true or false"},
        {"keys:\n  - id: a b\n", ":2: id must be"},
        {"keys:\n  - id: a\n    id: b\n", ":3: duplicate field \"id\""},
        {"keys:\n  - {id: a, tenant: t, sha256: 2222222222222222222222222222222222222222222222222222222222222222}\n"
         "  - {id: b, tenant: t, sha256: 2222222222222222222222222222222222222222222222222222222222222222}\n",
         ":3: duplicate sha256 (same key as the entry at line 2)"},
        {"keys: []\nkeys: []\n", ":2: duplicate field \"keys\""},
        {"- a\n", ":1: expected a mapping"},
        {"keys: 3\n", ":1: keys must be a list"},
        {"tenants: []\n", ":1: unknown field \"tenants\""},
        {"keys: []\n---\nkeys: []\n", ":3: only one YAML document"},
    };
    char dup_text[1024];
    snprintf(dup_text, sizeof(dup_text), "keys:\n%s%s", entry, dup_entry);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(cases[i].yaml ? cases[i].yaml : dup_text);
        char err[256], want[512];
        apikey_store *s = (apikey_store *)1;
        assert_int_equal(apikey_store_load(keys_path, &s, err, sizeof(err)), -1);
        assert_null(s);
        snprintf(want, sizeof(want), "%s%s", keys_path, cases[i].line_msg);
        if (strncmp(err, want, strlen(want)) != 0)
            fail_msg("case %zu: got \"%s\", want prefix \"%s\"", i, err, want);
    }
}

static void test_missing_and_empty_file(void **state)
{
    (void)state;
    apikey_store *s = load_ok(); /* not created yet */
    assert_int_equal(apikey_store_count(s), 0);
    const char *tenant, *id;
    assert_int_equal(check(s, "otlpgw_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG", &tenant, &id), APIKEY_UNKNOWN);
    apikey_store_free(s);
    const char *empties[] = {"", "# only a comment\n", "keys:\n", "keys: []\n"};
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        write_file(empties[i]);
        s = load_ok();
        assert_int_equal(apikey_store_count(s), 0);
        apikey_store_free(s);
    }
    /* The list of an absent file is just the heading. */
    unlink(keys_path);
    assert_int_equal(run_cli("list", "--keys-file", keys_path, NULL), 0);
    assert_non_null(strstr(out_text, "TENANT"));
}

static void test_many_keys(void **state)
{
    (void)state;
    enum { N = 10000 };
    FILE *f = fopen(keys_path, "w");
    assert_non_null(f);
    fputs("keys:\n", f);
    char key[64], hex[65];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "otlpgw_%043d", i);
        sha256_hex(key, hex);
        fprintf(f, "  - {id: k_%d, tenant: t%d, sha256: %s, revoked: %s}\n", i, i % 7, hex,
                i % 1000 == 0 ? "true" : "false");
    }
    fclose(f);
    apikey_store *s = load_ok();
    assert_int_equal(apikey_store_count(s), N);
    for (int i = 0; i < N; i++) {
        const char *tenant, *id;
        char want_tenant[8], want_id[16];
        snprintf(key, sizeof(key), "otlpgw_%043d", i);
        snprintf(want_tenant, sizeof(want_tenant), "t%d", i % 7);
        snprintf(want_id, sizeof(want_id), "k_%d", i);
        assert_int_equal(check(s, key, &tenant, &id), i % 1000 == 0 ? APIKEY_REVOKED : APIKEY_OK);
        assert_string_equal(tenant, want_tenant);
        assert_string_equal(id, want_id);
    }
    snprintf(key, sizeof(key), "otlpgw_%043d", N);
    const char *tenant, *id;
    assert_int_equal(check(s, key, &tenant, &id), APIKEY_UNKNOWN);
    apikey_store_free(s);
}

/* Awkward tenant and name values survive the rewrite unchanged. */
static void test_quoting_round_trip(void **state)
{
    (void)state;
    const char *name = "a: b # c\n\"quoted\" \\ é";
    assert_int_equal(run_cli("create", "--tenant=true", "--name", name, "--keys-file", keys_path, NULL), 0);
    char key[64];
    snprintf(key, sizeof(key), "%.*s", (int)strlen(out_text) - 1, out_text);
    create_key("007"); /* rewrites the file once more */
    apikey_store *s = load_ok();
    const char *tenant, *id;
    assert_int_equal(check(s, key, &tenant, &id), APIKEY_OK);
    assert_string_equal(tenant, "true");
    apikey_store_free(s);
    assert_int_equal(run_cli("list", "--keys-file", keys_path, NULL), 0);
    assert_non_null(strstr(out_text, "a: b # c?\"quoted\" \\ é")); /* newline shown as '?' */
    assert_non_null(strstr(out_text, "007"));
}

static void test_usage_errors(void **state)
{
    (void)state;
    const char *f = keys_path;
    assert_int_equal(run_cli(NULL), 2);
    assert_int_equal(run_cli("frobnicate", NULL), 2);
    assert_int_equal(run_cli("create", "--keys-file", f, NULL), 2);
    assert_int_equal(run_cli("create", "--tenant", NULL), 2);
    assert_int_equal(run_cli("create", "--tenant", "--name", "x", "--keys-file", f, NULL), 2);
    assert_int_equal(run_cli("create", "--tenant", "a b", "--keys-file", f, NULL), 2);
    assert_int_equal(run_cli("create", "--tenant", "a", "--tenant", "b", "--keys-file", f, NULL), 2);
    assert_int_equal(run_cli("create", "--tenant", "a", "--expires", "90", "--keys-file", f, NULL), 2);
    assert_int_equal(run_cli("create", "--tenant", "a", "--expires", "0d", "--keys-file", f, NULL), 2);
    assert_int_equal(run_cli("create", "--tenant", "a", "--expires", "9x", "--keys-file", f, NULL), 2);
    assert_int_equal(run_cli("create", "--tenant", "a", "--expires", "2001-01-01T00:00:00Z", "--keys-file", f, NULL),
                     2);
    assert_int_equal(run_cli("create", "--tenant", "a", "--bogus", "--keys-file", f, NULL), 2);
    assert_int_equal(run_cli("create", "--tenant", "a", NULL), 2); /* no keys file anywhere */
    assert_int_equal(run_cli("list", "extra", "--keys-file", f, NULL), 2);
    assert_int_equal(run_cli("list", "--tenant", "a", "--keys-file", f, NULL), 2);
    assert_int_equal(run_cli("revoke", "--keys-file", f, NULL), 2);
    assert_int_equal(run_cli("revoke", "a", "b", "--keys-file", f, NULL), 2);
    assert_int_equal(access(keys_path, F_OK), -1); /* none of them wrote anything */
    assert_int_equal(run_cli("--help", NULL), 0);
    assert_non_null(strstr(out_text, "usage: otlp-gateway keys create"));
    assert_int_equal(run_cli("create", "--help", NULL), 0);
    assert_non_null(strstr(out_text, "usage:"));
    /* An unreadable file is an operational error, not a usage one. */
    write_file("keys: [\n");
    assert_int_equal(run_cli("list", "--keys-file", f, NULL), 1);
    assert_int_equal(run_cli("create", "--tenant", "a", "--keys-file", f, NULL), 1);
    assert_string_equal(out_text, ""); /* no key printed when it could not be stored */
}

/* The digest keys are stored under: FIPS 180-2's "abc" vector, the empty
 * input, and agreement with OpenSSL's one-shot SHA256 on a key. */
static void test_digest_sha256(void **state)
{
    (void)state;
    static const uint8_t abc[] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                  0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                  0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    static const uint8_t empty[] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
                                    0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
                                    0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    uint8_t d[DIGEST_SHA256_LEN], want[SHA256_DIGEST_LENGTH];
    assert_int_equal(digest_sha256("abc", 3, d), 0);
    assert_memory_equal(d, abc, sizeof(abc));
    assert_int_equal(digest_sha256("", 0, d), 0);
    assert_memory_equal(d, empty, sizeof(empty));
    static const char key[] = "gw_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
    SHA256((const unsigned char *)key, sizeof(key) - 1, want);
    assert_int_equal(digest_sha256(key, sizeof(key) - 1, d), 0);
    assert_memory_equal(d, want, sizeof(want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_sha256),
        cmocka_unit_test_setup_teardown(test_create_and_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test(test_memory_parse_format_edit),
        cmocka_unit_test_setup_teardown(test_missing_and_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quoting_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
