/* aws_creds: the profiles of the shared config and credentials files,
 * credential_process, and AssumeRole (from a profile and from the
 * `assume_role:` config), end to end against the loopback endpoints of
 * aws_creds_testlib.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws_creds.h"
#include "aws_creds_testlib.h"

/* ---- profiles: shared files, credential_process, AssumeRole ---- */

static void write_files(const fx *f, const char *config, const char *credentials)
{
    unlink(f->config_file);
    unlink(f->credentials_file);
    if (config != NULL)
        write_file(f->config_file, config);
    if (credentials != NULL)
        write_file(f->credentials_file, credentials);
}

/* Expects `flow` to fail at startup with an error containing want. */
static void expect_profile_error(const char *flow, const char *want)
{
    char err[512] = "";
    aws_creds *p = provider(flow, err, sizeof(err));
    assert_null(p);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_profile_static(void **state)
{
    fx *f = *state;
    aws_credentials c;
    write_files(f, "[default]\nregion = eu-west-1\n[profile dev]\naws_access_key_id = AKIACONFIG\n"
                   "aws_secret_access_key = from-config\n",
                "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = def/secret\n"
                "aws_session_token = def-token\n[dev]\naws_access_key_id = AKIADEV\n");
    /* auto: the default profile holds keys, so it is used (after env). */
    aws_creds *p = provider_ok("{}");
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "static");
    assert_string_equal(c.access_key_id, "AKIADEFAULT");
    assert_string_equal(c.secret_access_key, "def/secret");
    assert_string_equal(c.session_token, "def-token");
    aws_creds_free(p);
    /* AWS_PROFILE; the credentials file's key wins over the config file's,
     * the secret comes from the config file. */
    setenv("AWS_PROFILE", "dev", 1);
    p = provider_ok("{}");
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "AKIADEV");
    assert_string_equal(c.secret_access_key, "from-config");
    assert_null(c.session_token);
    aws_creds_free(p);
    /* The `profile` key beats AWS_PROFILE, and resolves at startup. */
    p = provider_ok("{source: profile, profile: default}");
    assert_string_equal(aws_creds_source(p), "static");
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "AKIADEFAULT");
    aws_creds_free(p);
    /* Environment keys come before any profile. */
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env", 1);
    p = provider_ok("{}");
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "env");
    aws_creds_free(p);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    /* A default profile without credentials is skipped by auto. */
    unsetenv("AWS_PROFILE");
    write_files(f, "[default]\nregion = eu-west-1\n", NULL);
    p = provider_ok("{}");
    char err[512];
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no AWS credentials found"));
    aws_creds_free(p);
    /* ... but a named one must work. */
    setenv("AWS_PROFILE", "default", 1);
    p = provider_ok("{}");
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "profile default has no credentials"));
    aws_creds_free(p);
}

static void test_profile_errors(void **state)
{
    fx *f = *state;
    char want[256];
    write_files(f, NULL, NULL);
    expect_profile_error("{source: profile, profile: nope}", "profile nope not found");
    expect_profile_error("{source: ecs, profile: x}", "credentials.profile: not used with source ecs");
    write_files(f, "[default]\nregion\n", NULL);
    snprintf(want, sizeof(want), "credentials.source: profile: %s:2: expected key = value", f->config_file);
    expect_profile_error("{source: profile}", want);
    write_files(f,
                "[profile r1]\nrole_arn = arn:aws:iam::1:role/a\n"
                "[profile r2]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = k\ncredential_source = Environment\n"
                "[profile r3]\nrole_arn = arn:aws:iam::1:role/a\ncredential_source = Lambda\n"
                "[profile r4]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = k\nduration_seconds = 60\n"
                "[profile loop1]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = loop2\n"
                "[profile loop2]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = loop1\n"
                "[profile r5]\nrole_arn = not-an-arn\nsource_profile = k\n"
                "[profile p1]\ncredential_process = tool \"unterminated\n"
                "[profile r6]\nrole_arn = arn:aws:iam::1:role/a\ncredential_source = Environment\n",
                "[k]\naws_access_key_id = AKIAK\n");
    snprintf(want, sizeof(want), "%s:2: profile r1: role_arn needs source_profile", f->config_file);
    expect_profile_error("{profile: r1}", want);
    snprintf(want, sizeof(want), "%s:6: profile r2: source_profile and credential_source exclude", f->config_file);
    expect_profile_error("{profile: r2}", want);
    snprintf(want, sizeof(want), "%s:9: profile r3: credential_source: expected Environment", f->config_file);
    expect_profile_error("{profile: r3}", want);
    snprintf(want, sizeof(want), "%s:13: profile r4: duration_seconds: expected 900 to 43200", f->config_file);
    expect_profile_error("{profile: r4}", want);
    expect_profile_error("{profile: loop1}", "source_profile chain longer than 8 profiles");
    expect_profile_error("{profile: r5}", "profile r5: role_arn: expected a role ARN");
    snprintf(want, sizeof(want), "%s:24: profile p1: credential_process: unterminated", f->config_file);
    expect_profile_error("{profile: p1}", want);
    /* The base profile k has a key id but no secret. */
    setenv("AWS_PROFILE", "k", 1);
    expect_profile_error("{source: profile}", "aws_access_key_id without aws_secret_access_key");
    /* credential_source Environment without the variables: located. */
    snprintf(want, sizeof(want), "%s:27: profile r6: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", f->config_file);
    expect_profile_error("{profile: r6}", want);
    /* In auto the profile is resolved at each export until it works: the
     * same error each time, nothing left over from the failed attempts. */
    setenv("AWS_PROFILE", "r6", 1);
    aws_creds *p = provider_ok("{}");
    aws_credentials c;
    char err[512];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
        assert_non_null(strstr(err, want));
    }
    setenv("AWS_ACCESS_KEY_ID", "AKIAK", 1); /* env keys now win over the profile */
    setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
    get_ok(p, &c);
    assert_string_equal(aws_creds_source(p), "env");
    aws_creds_free(p);
}

/* A credential_process script that logs each run to <dir>/runs and prints
 * credentials expiring in `ttl` seconds (0: none). */
static void write_process_script(const fx *f, const char *name, const char *body)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    write_file(path, body);
    assert_int_equal(chmod(path, 0700), 0);
}

static int count_lines(const char *path)
{
    FILE *fp = fopen(path, "r");
    int n = 0, ch;
    if (fp == NULL)
        return 0;
    while ((ch = fgetc(fp)) != EOF)
        n += ch == '\n';
    fclose(fp);
    return n;
}

/* The default profile runs script `name`; the first get fails with want. */
static void expect_process_failure(const fx *f, const char *name, const char *script, const char *want)
{
    char config[512], err[512];
    aws_credentials c;
    write_process_script(f, name, script);
    snprintf(config, sizeof(config), "[default]\ncredential_process = %s/%s\n", f->dir, name);
    write_files(f, config, NULL);
    aws_creds *p = provider_ok("{source: profile}");
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    aws_creds_free(p);
}

static void test_credential_process(void **state)
{
    fx *f = *state;
    char script[1024], config[512], runs[160];
    snprintf(runs, sizeof(runs), "%s/runs", f->dir);
    /* Arguments arrive unsplit by any shell; the expiry is 2 minutes away,
     * inside the refresh window, so every get runs the process again. */
    snprintf(script, sizeof(script),
             "#!/bin/sh\n"
             "[ \"$1\" = \"--user\" ] && [ \"$2\" = \"helen smith\" ] || { echo \"bad args: $*\" >&2; exit 2; }\n"
             "echo run >> '%s'\n"
             "n=$(wc -l < '%s')\n"
             "exp=$(date -u -d @$(( $(date +%%s) + 120 )) +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n"
             "printf '{\"Version\": 1, \"AccessKeyId\": \"ASIAPROC%%s\", \"SecretAccessKey\": \"proc/secret\", "
             "\"SessionToken\": \"proc-token\", \"Expiration\": \"%%s\"}' \"$n\" \"$exp\"\n",
             runs, runs);
    write_process_script(f, "creds tool.sh", script);
    snprintf(config, sizeof(config), "[default]\ncredential_process = \"%s/creds tool.sh\" --user \"helen smith\"\n",
             f->dir);
    write_files(f, config, NULL);
    aws_creds *p = provider_ok("{source: profile}");
    assert_string_equal(aws_creds_source(p), "process");
    assert_int_equal(count_lines(runs), 0); /* nothing run at startup */
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAPROC1");
    assert_string_equal(c.secret_access_key, "proc/secret");
    assert_string_equal(c.session_token, "proc-token");
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAPROC2");
    assert_int_equal(count_lines(runs), 2);
    aws_creds_free(p);

    /* Output already expired: a failed fetch. */
    expect_process_failure(f, "expired.sh",
                           "#!/bin/sh\nprintf '{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\","
                           "\"Expiration\":\"2020-01-01T00:00:00Z\"}'\n",
                           "process credentials are already expired");
    /* A failing process: its exit status and stderr. */
    expect_process_failure(f, "fails.sh", "#!/bin/sh\necho 'token expired, run login' >&2\nexit 1\n",
                           "exit status 1: token expired, run login");
    /* Long-term keys without Expiration are fetched once. */
    write_process_script(f, "static.sh",
                         "#!/bin/sh\necho x >> \"$0.runs\"\n"
                         "printf '{\"Version\":1,\"AccessKeyId\":\"AKIAPROC\",\"SecretAccessKey\":\"s\"}'\n");
    snprintf(config, sizeof(config), "[default]\ncredential_process = %s/static.sh\n", f->dir);
    write_files(f, config, NULL);
    p = provider_ok("{source: profile}");
    get_ok(p, &c);
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "AKIAPROC");
    assert_null(c.session_token);
    snprintf(runs, sizeof(runs), "%s/static.sh.runs", f->dir);
    assert_int_equal(count_lines(runs), 1);
    aws_creds_free(p);
}

static void test_parse_process(void **state)
{
    (void)state;
    aws_creds_value v;
    char err[256];
    const char *ok = "{\"Version\": 1, \"AccessKeyId\": \"ASIA1\", \"SecretAccessKey\": \"s\", \"SessionToken\": "
                     "\"t\", \"Expiration\": \"2024-01-02T03:04:05.123Z\"}";
    assert_int_equal(aws_creds_parse_process(ok, strlen(ok), &v, err, sizeof(err)), 0);
    assert_string_equal(v.session_token, "t");
    assert_int_equal(v.expiration, 1704164645);
    static const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", "Version must be the number 1"},
        {"{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", "Version must be the number 1"},
        {"{\"Version\":\"1\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}", "Version must be the number 1"},
        {"{\"Version\":1,\"AccessKeyId\":\"A\"}", "lacks AccessKeyId or SecretAccessKey"},
        {"{\"Version\":1,\"SecretAccessKey\":\"s\"}", "lacks AccessKeyId or SecretAccessKey"},
        {"{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"soon\"}",
         "invalid Expiration"},
        {"{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"SessionToken\":7}",
         "SessionToken is not a string"},
        {"{\"Version\":1,\"AccessKeyId\":\"A B\",\"SecretAccessKey\":\"s\"}", "not allowed in a header"},
        {"Version: 1", "credential_process output is not a JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (aws_creds_parse_process(bad[i].json, strlen(bad[i].json), &v, err, sizeof(err)) != -1 ||
            strstr(err, bad[i].want) == NULL)
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, bad[i].want);
        assert_string_equal(v.access_key_id, ""); /* wiped */
    }
}

/* Points the AssumeRole stand-in at the expected request. */
static void expect_assume(fx *f, const char *base_key, const char *base_token, const char *session,
                          const char *external_id, const char *duration)
{
    pthread_mutex_lock(&f->s.mu);
    snprintf(f->s.base_key, sizeof(f->s.base_key), "%s", base_key);
    snprintf(f->s.base_token, sizeof(f->s.base_token), "%s", base_token);
    snprintf(f->s.session_name, sizeof(f->s.session_name), "%s", session);
    snprintf(f->s.external_id, sizeof(f->s.external_id), "%s", external_id);
    snprintf(f->s.duration, sizeof(f->s.duration), "%s", duration);
    pthread_mutex_unlock(&f->s.mu);
}

static void test_assume_role_profile(void **state)
{
    fx *f = *state;
    char config[1024], sts[128];
    snprintf(sts, sizeof(sts), "%s/sts-assume/", f->base);
    setenv("AWS_ENDPOINT_URL_STS", sts, 1);
    snprintf(config, sizeof(config),
             "[profile cross]\nrole_arn = " ROLE_ARN "\nsource_profile = base\nexternal_id = ext-42\n"
             "role_session_name = gw-cross\nduration_seconds = 900\n"
             "[profile chained]\nrole_arn = " ROLE_ARN "\nsource_profile = cross\nrole_session_name = gw-chain\n"
             "[profile from-env]\nrole_arn = " ROLE_ARN "\ncredential_source = Environment\n"
             "role_session_name = gw-env\n");
    write_files(f, config, "[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = base/secret\n");
    aws_creds *p = provider_ok("{source: profile, profile: cross}");
    assert_string_equal(aws_creds_source(p), "assume_role");
    assert_int_equal(srv_count(&f->s, &f->s.assume_hits), 0);
    expect_assume(f, "AKIABASE", "", "gw-cross", "ext-42", "900");
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAROLE1");
    assert_string_equal(c.secret_access_key, "role-secret-1");
    assert_string_equal(c.session_token, "role-token-1");
    /* Valid for an hour: no new call. */
    get_ok(p, &c);
    assert_int_equal(srv_count(&f->s, &f->s.assume_hits), 1);
    aws_creds_free(p);

    /* Role chaining resolves at startup (a role assumed with another
     * assumed role's credentials); the stand-in checks one caller at a
     * time, so the chain's calls are exercised by the e2e test. */
    p = provider_ok("{profile: chained}");
    assert_string_equal(aws_creds_source(p), "assume_role");
    aws_creds_free(p);

    /* credential_source Environment: the session token is signed too. */
    setenv("AWS_ACCESS_KEY_ID", "ASIAENVBASE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env/secret", 1);
    setenv("AWS_SESSION_TOKEN", "env-token", 1);
    p = provider_ok("{profile: from-env}");
    expect_assume(f, "ASIAENVBASE", "env-token", "gw-env", "", "3600");
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAROLE2");
    aws_creds_free(p);
    assert_string_equal(f->s.problem, "");
}

static void test_assume_role_config(void **state)
{
    fx *f = *state;
    char flow[512];
    snprintf(flow, sizeof(flow),
             "{source: static, access_key_id: AKIABASE, secret_access_key: 'base/secret', sts_endpoint: "
             "'%s/sts-assume/', timeout: 2s, assume_role: {role_arn: '" ROLE_ARN "', external_id: 'ext:1/2', "
             "role_session_name: gw-cfg, duration: 20m}}",
             f->base);
    aws_creds *p = provider_ok(flow);
    assert_string_equal(aws_creds_source(p), "assume_role");
    expect_assume(f, "AKIABASE", "", "gw-cfg", "ext:1/2", "1200");
    /* The role's credentials last 4 minutes: inside the refresh window, so
     * each get assumes the role again (refresh before expiry). */
    SRV_SET(&f->s, ttl_s, 240);
    aws_credentials c;
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAROLE1");
    get_ok(p, &c);
    assert_string_equal(c.access_key_id, "ASIAROLE2");
    assert_int_equal(srv_count(&f->s, &f->s.assume_hits), 2);

    /* AccessDenied: a clear error naming the role while the old
     * credentials still serve; once they expire, get fails. */
    SRV_SET(&f->s, sts_error, true);
    get_ok(p, &c); /* the failed refresh is postponed, ASIAROLE2 stays */
    assert_string_equal(c.access_key_id, "ASIAROLE2");
    aws_creds_free(p);
    p = provider_ok(flow);
    char err[512];
    assert_int_equal(aws_creds_get(p, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "AssumeRole " ROLE_ARN ": STS error AccessDenied: User: arn:aws:iam::1:user/base is "
                                "not authorized to perform: sts:AssumeRole"));
    aws_creds_free(p);
    assert_string_equal(f->s.problem, "");

    expect_config_error("{assume_role: {external_id: x1}}", "credentials.assume_role.role_arn: required");
    expect_config_error("{assume_role: {role_arn: 'arn:a', duration: 10m}}",
                        "credentials.assume_role.duration: must be whole seconds from 15m to 12h");
    expect_config_error("{assume_role: {role_arn: 'arn:a', external_id: 'a b'}}",
                        "credentials.assume_role.external_id: expected 2 to 1224");
    expect_config_error("{assume_role: {role_arn: x}}", "credentials.assume_role.role_arn: expected a role ARN");
    expect_config_error("{assume_role: {role_arn: 'arn:a', policy: x}}", "credentials.assume_role.policy: unknown key");
    expect_config_error("{assume_role: arn}", "credentials.assume_role: expected a mapping");
    expect_config_error("{source: ecs, sts_endpoint: 'http://x/'}", "credentials.sts_endpoint: not used with source ecs");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_process),
        cmocka_unit_test_setup_teardown(test_profile_static, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assume_role_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assume_role_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
