/* aws_ini: the shared config / credentials file parser, its located errors
 * and the pair lookup; aws_process: splitting and running a
 * credential_process command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws_ini.h"
#include "aws_process.h"

static aws_ini *parse(const char *text, aws_ini_kind kind)
{
    char err[256] = "";
    aws_ini *f = aws_ini_parse("cfg", text, strlen(text), kind, err, sizeof(err));
    if (f == NULL)
        fail_msg("unexpected error: %s", err);
    return f;
}

static void test_config_file(void **state)
{
    (void)state;
    aws_ini *f = parse("# a comment\n"
                       "; another\n"
                       "\n"
                       "[default]\n"
                       "region = eu-west-1\n"
                       "aws_access_key_id=AKIADEFAULT\r\n"
                       "[profile cross]   # the other account\n"
                       "role_arn = arn:aws:iam::2:role/x\n"
                       "source_profile = default\n"
                       "s3 =\n"
                       "  max_concurrent_requests = 10\n"
                       "credential_process = /bin/tool\n"
                       "  --flag\n"
                       "[sso-session corp]\n"
                       "sso_region = us-east-1\n"
                       "[bare]\n"
                       "aws_access_key_id = ignored\n"
                       "[profile   spaced ]\n"
                       "Role_ARN = arn:aws:iam::3:role/y\n"
                       "role_arn = arn:aws:iam::3:role/z\n"
                       "empty =\n",
                       AWS_INI_CONFIG);
    unsigned line = 0;
    assert_string_equal(aws_ini_get(f, "default", "region", &line), "eu-west-1");
    assert_int_equal(line, 5);
    assert_string_equal(aws_ini_get(f, "default", "aws_access_key_id", NULL), "AKIADEFAULT");
    assert_string_equal(aws_ini_get(f, "cross", "source_profile", NULL), "default");
    /* A sub-property belongs to `s3`, not to the profile. */
    assert_null(aws_ini_get(f, "cross", "max_concurrent_requests", NULL));
    assert_string_equal(aws_ini_get(f, "cross", "s3", NULL), "");
    /* A continuation line joins the value with a newline. */
    assert_string_equal(aws_ini_get(f, "cross", "credential_process", NULL), "/bin/tool\n--flag");
    /* Not profiles in a config file. */
    assert_false(aws_ini_has_profile(f, "corp"));
    assert_false(aws_ini_has_profile(f, "bare"));
    assert_null(aws_ini_get(f, "bare", "aws_access_key_id", NULL));
    /* Keys compare case-insensitively; the last one wins. */
    assert_true(aws_ini_has_profile(f, "spaced"));
    assert_string_equal(aws_ini_get(f, "spaced", "role_arn", &line), "arn:aws:iam::3:role/z");
    assert_int_equal(line, 20);
    assert_string_equal(aws_ini_get(f, "spaced", "empty", NULL), "");
    assert_string_equal(aws_ini_name(f), "cfg");
    aws_ini_free(f);
}

static void test_credentials_file(void **state)
{
    (void)state;
    aws_ini *f = parse("[default]\naws_access_key_id = AKIA1\n[profile x]\naws_access_key_id = skipped\n"
                       "[dev]\naws_secret_access_key = s;e#c=ret\n",
                       AWS_INI_CREDENTIALS);
    assert_true(aws_ini_has_profile(f, "default"));
    assert_true(aws_ini_has_profile(f, "dev"));
    /* `[profile x]` is not a profile in the credentials file. */
    assert_false(aws_ini_has_profile(f, "x"));
    assert_false(aws_ini_has_profile(f, "profile x"));
    /* No inline comments in values: secrets may hold ; # and =. */
    assert_string_equal(aws_ini_get(f, "dev", "aws_secret_access_key", NULL), "s;e#c=ret");
    aws_ini_free(f);
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"[default]\nregion eu-west-1\n", "cfg:2: expected key = value"},
        {"[default\nregion = x\n", "cfg:1: malformed section header"},
        {"[]\n", "cfg:1: malformed section header"},
        {"[default] trailing\n", "cfg:1: malformed section header"},
        {"[default]\n= value\n", "cfg:2: empty key"},
        {"region = x\n[default]\n", "cfg:1: property outside a [section]"},
        {"[default]\n  indented = x\n", "cfg:2: indented line continues no property"},
        {"[default]\nk = v\n[other]\n  cont\n", "cfg:4: indented line continues no property"},
        {"[default]\nk = a\0b\n", "cfg:2: contains a NUL byte"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        size_t len = strlen(bad[i].text);
        if (i == sizeof(bad) / sizeof(bad[0]) - 1)
            len = sizeof("[default]\nk = a\0b\n") - 1;
        aws_ini *f = aws_ini_parse("cfg", bad[i].text, len, AWS_INI_CONFIG, err, sizeof(err));
        if (f != NULL || strstr(err, bad[i].want) == NULL)
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, bad[i].want);
    }
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void test_profiles_pair(void **state)
{
    (void)state;
    char dir[] = "/tmp/aws-ini-XXXXXX", cfg[64], cred[64], where[128];
    assert_non_null(mkdtemp(dir));
    snprintf(cfg, sizeof(cfg), "%s/config", dir);
    snprintf(cred, sizeof(cred), "%s/credentials", dir);
    write_file(cfg, "[profile a]\nregion = r1\naws_access_key_id = FROMCONFIG\n[default]\nregion = r0\n");
    write_file(cred, "\n[a]\naws_access_key_id = FROMCREDS\n");
    setenv("AWS_CONFIG_FILE", cfg, 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
    aws_profiles p;
    char err[256];
    assert_int_equal(aws_profiles_load(&p, err, sizeof(err)), 0);
    assert_true(aws_profiles_has(&p, "a"));
    assert_true(aws_profiles_has(&p, "default"));
    assert_false(aws_profiles_has(&p, "b"));
    /* The credentials file wins over the config file. */
    assert_string_equal(aws_profiles_get(&p, "a", "aws_access_key_id", where, sizeof(where)), "FROMCREDS");
    char want[128];
    snprintf(want, sizeof(want), "%s:3", cred);
    assert_string_equal(where, want);
    assert_string_equal(aws_profiles_get(&p, "a", "region", where, sizeof(where)), "r1");
    assert_null(aws_profiles_get(&p, "a", "role_arn", NULL, 0));
    aws_profiles_free(&p);

    /* Absent files are not an error; a malformed one is, located. */
    unlink(cred);
    assert_int_equal(aws_profiles_load(&p, err, sizeof(err)), 0);
    assert_null(p.credentials);
    assert_string_equal(aws_profiles_get(&p, "a", "aws_access_key_id", NULL, 0), "FROMCONFIG");
    aws_profiles_free(&p);
    write_file(cfg, "[default]\nregion\n");
    assert_int_equal(aws_profiles_load(&p, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: expected key = value", cfg);
    assert_string_equal(err, want);
    /* A directory cannot be read as a file. */
    setenv("AWS_CONFIG_FILE", dir, 1);
    assert_int_equal(aws_profiles_load(&p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, dir));
    unlink(cfg);
    rmdir(dir);
    unsetenv("AWS_CONFIG_FILE");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}

static void test_process_split(void **state)
{
    (void)state;
    char err[256];
    char **argv = aws_process_split("  /opt/bin/creds --user \"helen smith\" a\"b c\"d  ", err, sizeof(err));
    assert_non_null(argv);
    assert_string_equal(argv[0], "/opt/bin/creds");
    assert_string_equal(argv[1], "--user");
    assert_string_equal(argv[2], "helen smith");
    assert_string_equal(argv[3], "ab cd");
    assert_null(argv[4]);
    free(argv);
    argv = aws_process_split("\"\"", err, sizeof(err));
    assert_non_null(argv);
    assert_string_equal(argv[0], "");
    free(argv);
    assert_null(aws_process_split("  ", err, sizeof(err)));
    assert_non_null(strstr(err, "empty command"));
    assert_null(aws_process_split("tool \"open", err, sizeof(err)));
    assert_non_null(strstr(err, "unterminated double quote"));
}

static void test_process_run(void **state)
{
    (void)state;
    char err[512];
    buf out = BUF_INIT;
    /* No shell: $HOME and ; reach the program as written. */
    assert_int_equal(aws_process_run("/bin/echo \"$HOME; x\" y", 5000, &out, err, sizeof(err)), 0);
    assert_string_equal(out.data, "$HOME; x y\n");
    buf_clear(&out);
    assert_int_equal(aws_process_run("/bin/sh -c \"echo 'no role for you' >&2; exit 3\"", 5000, &out, err,
                                     sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "exit status 3: no role for you"));
    buf_clear(&out);
    assert_int_equal(aws_process_run("/nonexistent/tool", 5000, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot run /nonexistent/tool"));
    buf_clear(&out);
    assert_int_equal(aws_process_run("/bin/sleep 10", 200, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no answer within 200 ms"));
    buf_clear(&out);
    assert_int_equal(aws_process_run("/bin/sh -c \"head -c 70000 /dev/zero\"", 5000, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "output larger than"));
    /* SIGPIPE is back to its default in the child, whatever the parent does. */
    buf_clear(&out);
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(aws_process_run("/bin/sh -c \"grep SigIgn /proc/self/status\"", 5000, &out, err, sizeof(err)), 0);
    signal(SIGPIPE, SIG_DFL);
    unsigned long long ign = strtoull(strchr(out.data, ':') + 1, NULL, 16);
    assert_int_equal(ign & (1ull << (SIGPIPE - 1)), 0);
    /* Only stdin, stdout and stderr reach the child. */
    buf_clear(&out);
    assert_int_equal(aws_process_run("/bin/sh -c \"ls /proc/self/fd | wc -l\"", 5000, &out, err, sizeof(err)), 0);
    assert_int_equal(atoi(out.data), 4); /* 0, 1, 2 and ls's own directory handle */
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_file),   cmocka_unit_test(test_credentials_file),
        cmocka_unit_test(test_malformed),     cmocka_unit_test(test_profiles_pair),
        cmocka_unit_test(test_process_split), cmocka_unit_test(test_process_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
