/* aws_assume: the sources that go through STS or the shared files, for
 * aws_creds (aws_assume.h). */
#include "aws_assume.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "aws_creds_internal.h"
#include "aws_ini.h"
#include "buf.h"

#define AWS_CREDS_MAX_PROFILE_DEPTH 8  /* source_profile hops before a chain counts as circular */
#define AWS_CREDS_ROLE_DURATION_MIN 900
#define AWS_CREDS_ROLE_DURATION_MAX 43200
#define AWS_CREDS_ROLE_DURATION_DEF 3600

/* "&name=value" with value form-encoded (RFC 3986 unreserved kept). */
static int aws_creds_form_param(buf *form, const char *name, const char *value)
{
    char *enc = curl_easy_escape(NULL, value, 0);
    if (enc == NULL)
        return -1;
    int rc = buf_printf(form, "&%s=%s", name, enc);
    explicit_bzero(enc, strlen(enc));
    curl_free(enc);
    return rc;
}

/* The start of an STS query: Action, Version, RoleArn, RoleSessionName. */
static int aws_creds_sts_form(buf *form, const char *action, const aws_creds *p)
{
    return buf_printf(form, "Action=%s&Version=2011-06-15", action) != 0 ||
                   aws_creds_form_param(form, "RoleArn", p->role_arn) != 0 ||
                   aws_creds_form_param(form, "RoleSessionName", p->role_session_name) != 0
               ? -1
               : 0;
}

/* POSTs an STS form (with hdr) and parses the <Credentials> of the reply,
 * or its <Error>. */
static int aws_creds_sts_post(const aws_creds *p, const struct curl_slist *hdr, const char *form, aws_creds_value *v,
                              char *err, size_t errlen)
{
    buf reply = BUF_INIT;
    int rc = -1;
    aws_creds_http_req r = {.method = "POST", .url = p->sts_endpoint, .headers = hdr, .form = form,
                            .timeout_ms = aws_creds_timeout(p, AWS_CREDS_TIMEOUT_MS)};
    long status;
    if (aws_creds_http(&r, &status, &reply, err, errlen) == 0) {
        if (status == 200)
            rc = aws_creds_parse_sts(reply.data, reply.len, v, err, errlen);
        else if (!aws_creds_sts_error(reply.data, reply.len, err, errlen))
            aws_creds_fail(err, errlen, "POST %s: HTTP %ld", p->sts_endpoint, status);
    }
    aws_creds_buf_wipe(&reply);
    return rc;
}

/* STS AssumeRoleWithWebIdentity: an unsigned form POST carrying the
 * (re-read) web identity token. */
int aws_creds_fetch_sts(aws_creds *p, aws_creds_value *v, char *err, size_t errlen)
{
    buf token = BUF_INIT, form = BUF_INIT;
    struct curl_slist *hdr = NULL;
    int rc = -1;
    if (aws_creds_read_token(p->web_identity_token_file, &token, err, errlen) != 0)
        goto out;
    if (aws_creds_sts_form(&form, "AssumeRoleWithWebIdentity", p) != 0 ||
        aws_creds_form_param(&form, "WebIdentityToken", token.data) != 0 || buf_putc(&form, '\0') != 0 ||
        aws_creds_header(&hdr, "Accept", "text/xml") != 0) {
        aws_creds_fail(err, errlen, "out of memory");
        goto out;
    }
    rc = aws_creds_sts_post(p, hdr, form.data, v, err, errlen);
out:
    aws_creds_buf_wipe(&token);
    aws_creds_buf_wipe(&form);
    curl_slist_free_all(hdr);
    return rc;
}

/* The region STS calls are signed for: the backend's, else us-east-1,
 * the global endpoint's. */
static const char *aws_creds_sts_region(const aws_creds *p) { return p->region != NULL ? p->region : "us-east-1"; }

/* Appends the signature's header lines ("Name: value\n" each, edited in
 * place) to *hdr. */
static int aws_creds_header_lines(struct curl_slist **hdr, char *lines)
{
    char *save = NULL;
    for (char *line = strtok_r(lines, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        struct curl_slist *t = curl_slist_append(*hdr, line);
        if (t == NULL)
            return -1;
        *hdr = t;
    }
    return 0;
}

/* STS AssumeRole: a form POST signed (SigV4, service sts) with the base
 * provider's credentials, refreshed by it as they age. */
int aws_creds_fetch_assume_role(aws_creds *p, aws_creds_value *v, char *err, size_t errlen)
{
    static const char ctype[] = "Content-Type: application/x-www-form-urlencoded; charset=utf-8";
    aws_credentials base;
    char why[512];
    if (aws_creds_get(p->base, &base, why, sizeof(why)) != 0)
        return aws_creds_fail(err, errlen, "AssumeRole %s: no base credentials (source %s): %s", p->role_arn,
                              aws_creds_source(p->base), why);
    buf form = BUF_INIT, lines = BUF_INIT;
    struct curl_slist *hdr = NULL;
    int rc = -1;
    char dur[24], host[300], path[1024], query[1024], hostline[310], amz_date[17];
    snprintf(dur, sizeof(dur), "%ld", p->duration_s);
    const char *pp, *q;
    size_t plen;
    if (aws_sigv4_url_parts(p->sts_endpoint, host, sizeof(host), &pp, &plen, &q) != 0 || plen >= sizeof(path)) {
        aws_creds_fail(err, errlen, "STS endpoint %s: not a URL that can be signed", p->sts_endpoint);
        goto out;
    }
    memcpy(path, pp, plen);
    path[plen] = '\0';
    if (q != NULL)
        snprintf(query, sizeof(query), "%.*s", (int)strcspn(q, "#"), q);
    snprintf(hostline, sizeof(hostline), "Host: %s", host);
    if (aws_creds_sts_form(&form, "AssumeRole", p) != 0 || aws_creds_form_param(&form, "DurationSeconds", dur) != 0 ||
        (p->external_id != NULL && aws_creds_form_param(&form, "ExternalId", p->external_id) != 0) ||
        buf_putc(&form, '\0') != 0) {
        aws_creds_fail(err, errlen, "out of memory");
        goto out;
    }
    const char *signed_headers[] = {hostline, ctype, NULL};
    aws_sigv4_request r = {.method = "POST", .path = path, .query = q != NULL ? query : NULL,
                           .headers = signed_headers, .body = (const uint8_t *)form.data, .body_len = form.len - 1};
    aws_sigv4_amz_date(time(NULL), amz_date);
    if (aws_sigv4_sign(&r, &base, aws_creds_sts_region(p), "sts", amz_date, 0, &lines, NULL, NULL) != 0 ||
        buf_putc(&lines, '\0') != 0 || aws_creds_header(&hdr, "Host", host) != 0 ||
        aws_creds_header(&hdr, "Content-Type", ctype + strlen("Content-Type: ")) != 0 ||
        aws_creds_header_lines(&hdr, lines.data) != 0) {
        aws_creds_fail(err, errlen, "cannot sign the AssumeRole request");
        goto out;
    }
    rc = aws_creds_sts_post(p, hdr, form.data, v, err, errlen);
    if (rc != 0) {
        /* Name the role: with several backends the log must say which. */
        char detail[512];
        snprintf(detail, sizeof(detail), "%s", err);
        aws_creds_fail(err, errlen, "AssumeRole %s: %s", p->role_arn, detail);
    }
out:
    aws_creds_buf_wipe(&form);
    aws_creds_buf_wipe(&lines);
    curl_slist_free_all(hdr);
    return rc;
}

/* What every STS source needs besides its role: the session name
 * (AWS_ROLE_SESSION_NAME, else one naming this process) and the endpoint
 * (AWS_ENDPOINT_URL_STS, else the region's). */
static int aws_creds_setup_sts(aws_creds *p, char *err, size_t errlen)
{
    char pid_name[64];
    snprintf(pid_name, sizeof(pid_name), "otlp-gateway-%ld", (long)getpid());
    const char *name = p->role_session_name ? p->role_session_name : aws_creds_env("AWS_ROLE_SESSION_NAME");
    const char *sts = p->sts_endpoint ? p->sts_endpoint : aws_creds_env("AWS_ENDPOINT_URL_STS");
    if (sts != NULL && !aws_creds_is_http_url(sts))
        return aws_creds_fail(err, errlen, "AWS_ENDPOINT_URL_STS is not an http(s) URL");
    char def[160];
    if (sts == NULL) {
        /* The regional endpoint (China's partition has a domain of its
         * own), or the global one when no region is known. */
        const char *r = p->region;
        if (r != NULL)
            snprintf(def, sizeof(def), "https://sts.%s.amazonaws.com%s/", r, strncmp(r, "cn-", 3) == 0 ? ".cn" : "");
        else
            snprintf(def, sizeof(def), "https://sts.amazonaws.com/");
        sts = def;
    }
    if (aws_creds_dup(&p->role_session_name, name ? name : pid_name) != 0 || aws_creds_dup(&p->sts_endpoint, sts) != 0)
        return aws_creds_fail(err, errlen, "out of memory");
    return 0;
}

int aws_creds_setup_web_identity(aws_creds *p, char *err, size_t errlen)
{
    const char *arn = p->role_arn ? p->role_arn : aws_creds_env("AWS_ROLE_ARN");
    const char *file = p->web_identity_token_file ? p->web_identity_token_file
                                                  : aws_creds_env("AWS_WEB_IDENTITY_TOKEN_FILE");
    if (arn == NULL || file == NULL)
        return aws_creds_fail(err, errlen, "web identity needs AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE "
                                           "(or role_arn and web_identity_token_file)");
    if (aws_creds_dup(&p->role_arn, arn) != 0 || aws_creds_dup(&p->web_identity_token_file, file) != 0)
        return aws_creds_fail(err, errlen, "out of memory");
    return aws_creds_setup_sts(p, err, errlen);
}

int aws_creds_setup_assume_role(aws_creds *p, char *err, size_t errlen)
{
    if (p->base == NULL || p->role_arn == NULL)
        return aws_creds_fail(err, errlen, "assume_role needs a role ARN and base credentials");
    if (p->duration_s == 0)
        p->duration_s = AWS_CREDS_ROLE_DURATION_DEF;
    return aws_creds_setup_sts(p, err, errlen);
}

/* ---- profiles: the shared config and credentials files ---- */

/* A provider for a profile's base credentials, sharing p's region,
 * endpoints and timeout. NULL on out-of-memory. */
static aws_creds *aws_creds_child(const aws_creds *p)
{
    aws_creds *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT); /* paired with the cleanup in aws_creds_free */
    c->timeout_ms = p->timeout_ms;
    if (aws_creds_dup(&c->region, p->region) != 0 || aws_creds_dup(&c->sts_endpoint, p->sts_endpoint) != 0 ||
        aws_creds_dup(&c->imds_endpoint, p->imds_endpoint) != 0 ||
        aws_creds_dup(&c->ecs_endpoint, p->ecs_endpoint) != 0) {
        aws_creds_free(c);
        return NULL;
    }
    return c;
}

/* Prefixes err with "<where>: profile <name>: " (a located error). */
static int aws_creds_locate(char *err, size_t errlen, const char *where, const char *name)
{
    char detail[512];
    snprintf(detail, sizeof(detail), "%s", err);
    return aws_creds_fail(err, errlen, "%s: profile %s: %s", where, name, detail);
}

/* A profile's aws_access_key_id / aws_secret_access_key / aws_session_token. */
static int aws_creds_profile_static(aws_creds *p, const aws_profiles *f, const char *name, char *err, size_t errlen)
{
    char where[512];
    const char *id = aws_profiles_get(f, name, "aws_access_key_id", where, sizeof(where));
    const char *secret = aws_profiles_get(f, name, "aws_secret_access_key", NULL, 0);
    if (id == NULL)
        return aws_creds_fail(err, errlen, "profile %s has no aws_access_key_id", name);
    if (secret == NULL)
        return aws_creds_fail(err, errlen, "%s: profile %s: aws_access_key_id without aws_secret_access_key", where,
                              name);
    if (aws_creds_dup(&p->access_key_id, id) != 0 || aws_creds_dup(&p->secret_access_key, secret) != 0 ||
        aws_creds_dup(&p->session_token, aws_profiles_get(f, name, "aws_session_token", NULL, 0)) != 0)
        return aws_creds_fail(err, errlen, "out of memory");
    if (aws_creds_setup(p, AWS_CREDS_STATIC, err, errlen) != 0)
        return aws_creds_locate(err, errlen, where, name);
    return 0;
}

static int aws_creds_resolve_profile(aws_creds *p, const aws_profiles *f, const char *name, int depth, char *err,
                                     size_t errlen);

/* credential_source: which provider of the environment a role is assumed with. */
static int aws_creds_credential_source(const char *v, aws_creds_kind *kind)
{
    static const struct {
        const char *name;
        aws_creds_kind kind;
    } sources[] = {{"Environment", AWS_CREDS_ENV},
                   {"Ec2InstanceMetadata", AWS_CREDS_IMDS},
                   {"EcsContainer", AWS_CREDS_ECS}};
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
        if (strcmp(v, sources[i].name) == 0) {
            *kind = sources[i].kind;
            return 0;
        }
    return -1;
}

/* role_arn: the base credentials, then the role on top of them (or web
 * identity when the profile names a token file). */
static int aws_creds_profile_role(aws_creds *p, const aws_profiles *f, const char *name, const char *where,
                                  int depth, char *err, size_t errlen)
{
    char w_src[512], w_cs[512], w_dur[512], w_sess[512];
    const char *arn = aws_profiles_get(f, name, "role_arn", NULL, 0);
    const char *session = aws_profiles_get(f, name, "role_session_name", w_sess, sizeof(w_sess));
    const char *token_file = aws_profiles_get(f, name, "web_identity_token_file", NULL, 0);
    const char *src = aws_profiles_get(f, name, "source_profile", w_src, sizeof(w_src));
    const char *cs = aws_profiles_get(f, name, "credential_source", w_cs, sizeof(w_cs));
    const char *duration = aws_profiles_get(f, name, "duration_seconds", w_dur, sizeof(w_dur));
    if (strncmp(arn, "arn:", 4) != 0)
        return aws_creds_fail(err, errlen, "%s: profile %s: role_arn: expected a role ARN", where, name);
    if (session != NULL && (strlen(session) < 2 || !aws_creds_role_name_ok(session)))
        return aws_creds_fail(err, errlen, "%s: profile %s: role_session_name: expected 2 to 64 letters, digits or "
                              "+=,.@_- characters", w_sess, name);
    if (aws_creds_dup(&p->role_arn, arn) != 0 || aws_creds_dup(&p->role_session_name, session) != 0 ||
        aws_creds_dup(&p->web_identity_token_file, token_file) != 0 ||
        aws_creds_dup(&p->external_id, aws_profiles_get(f, name, "external_id", NULL, 0)) != 0)
        return aws_creds_fail(err, errlen, "out of memory");
    if (token_file != NULL)
        return aws_creds_setup(p, AWS_CREDS_WEB_IDENTITY, err, errlen);
    if (src != NULL && cs != NULL)
        return aws_creds_fail(err, errlen, "%s: profile %s: source_profile and credential_source exclude each other",
                              w_cs, name);
    if (src == NULL && cs == NULL)
        return aws_creds_fail(err, errlen, "%s: profile %s: role_arn needs source_profile, credential_source or "
                              "web_identity_token_file", where, name);
    if (duration != NULL) {
        char *end;
        errno = 0;
        long d = strtol(duration, &end, 10);
        if (errno != 0 || *end != '\0' || end == duration || d < AWS_CREDS_ROLE_DURATION_MIN ||
            d > AWS_CREDS_ROLE_DURATION_MAX)
            return aws_creds_fail(err, errlen, "%s: profile %s: duration_seconds: expected %d to %d", w_dur, name,
                                  AWS_CREDS_ROLE_DURATION_MIN, AWS_CREDS_ROLE_DURATION_MAX);
        p->duration_s = d;
    }
    aws_creds_free(p->base); /* from an earlier attempt that failed further on */
    if ((p->base = aws_creds_child(p)) == NULL)
        return aws_creds_fail(err, errlen, "out of memory");
    if (src != NULL) {
        /* A profile naming itself as its source uses its own keys. */
        int rc = strcmp(src, name) == 0 ? aws_creds_profile_static(p->base, f, name, err, errlen)
                                        : aws_creds_resolve_profile(p->base, f, src, depth + 1, err, errlen);
        if (rc != 0)
            return -1;
    } else {
        aws_creds_kind k;
        if (aws_creds_credential_source(cs, &k) != 0)
            return aws_creds_fail(err, errlen, "%s: profile %s: credential_source: expected Environment, "
                                  "Ec2InstanceMetadata or EcsContainer", w_cs, name);
        if (aws_creds_setup(p->base, k, err, errlen) != 0)
            return aws_creds_locate(err, errlen, w_cs, name);
    }
    return aws_creds_setup(p, AWS_CREDS_ASSUME_ROLE, err, errlen);
}

/* Makes p the provider profile `name` describes. In a profile, role_arn
 * comes first, then credential_process, then static keys, as in the SDKs. */
static int aws_creds_resolve_profile(aws_creds *p, const aws_profiles *f, const char *name, int depth, char *err,
                                     size_t errlen)
{
    char where[512];
    if (depth > AWS_CREDS_MAX_PROFILE_DEPTH)
        return aws_creds_fail(err, errlen, "profile %s: source_profile chain longer than %d profiles (a loop?)", name,
                              AWS_CREDS_MAX_PROFILE_DEPTH);
    if (!aws_profiles_has(f, name))
        return aws_creds_fail(err, errlen, "profile %s not found (config file %s, credentials file %s)", name,
                              f->config ? aws_ini_name(f->config) : "absent",
                              f->credentials ? aws_ini_name(f->credentials) : "absent");
    if (aws_profiles_get(f, name, "role_arn", where, sizeof(where)) != NULL)
        return aws_creds_profile_role(p, f, name, where, depth, err, errlen);
    const char *cmd = aws_profiles_get(f, name, "credential_process", where, sizeof(where));
    if (cmd != NULL) {
        if (aws_creds_dup(&p->process, cmd) != 0)
            return aws_creds_fail(err, errlen, "out of memory");
        if (aws_creds_setup(p, AWS_CREDS_PROCESS, err, errlen) != 0)
            return aws_creds_locate(err, errlen, where, name);
        return 0;
    }
    if (aws_profiles_get(f, name, "aws_access_key_id", NULL, 0) != NULL)
        return aws_creds_profile_static(p, f, name, err, errlen);
    return aws_creds_fail(err, errlen, "profile %s has no credentials (aws_access_key_id, credential_process or "
                          "role_arn)", name);
}

/* The profile to use: the `profile` key, else AWS_PROFILE, else "default". */
static const char *aws_creds_profile_name(const aws_creds *p)
{
    const char *env = aws_creds_env("AWS_PROFILE");
    return p->profile != NULL ? p->profile : env != NULL ? env : "default";
}

int aws_creds_setup_profile(aws_creds *p, char *err, size_t errlen)
{
    aws_profiles f;
    if (aws_profiles_load(&f, err, errlen) != 0)
        return -1;
    int rc = aws_creds_resolve_profile(p, &f, aws_creds_profile_name(p), 0, err, errlen);
    aws_profiles_free(&f);
    return rc;
}

/* `auto`: whether the profile step applies. A profile named by the config
 * or AWS_PROFILE always does (and then must work); the default profile
 * only when it holds credentials of some kind. */
int aws_creds_profile_present(const aws_creds *p)
{
    if (p->profile != NULL || aws_creds_env("AWS_PROFILE") != NULL)
        return 1;
    aws_profiles f;
    char err[256];
    if (aws_profiles_load(&f, err, sizeof(err)) != 0)
        return 1; /* a broken file is an error to report, not a step to skip */
    int present = aws_profiles_get(&f, "default", "aws_access_key_id", NULL, 0) != NULL ||
                  aws_profiles_get(&f, "default", "credential_process", NULL, 0) != NULL ||
                  aws_profiles_get(&f, "default", "role_arn", NULL, 0) != NULL;
    aws_profiles_free(&f);
    return present;
}

/* STS's ExternalId: 2 to 1224 of [A-Za-z0-9+=,.@:/_-]. */
static int aws_creds_external_id_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 2 && n <= 1224 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@:/_-") == n;
}

/* The `assume_role:` map: a provider that assumes the role with the
 * credentials of `base` (which it then owns, freed on failure too). */
aws_creds *aws_creds_assume_role_from_config(aws_creds *base, const config_node *m, char *err, size_t errlen)
{
    static const char *const keys[] = {"role_arn", "external_id", "role_session_name", "duration", NULL};
    const config_node *a = config_get(m, "assume_role");
    aws_creds *p = aws_creds_child(base);
    if (p == NULL) {
        aws_creds_free(base);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->base = base;
    const char *arn, *ext, *session;
    uint64_t dur_ms;
    char why[512];
    if (!config_is_map(a)) {
        config_error(m, "assume_role", err, errlen, "expected a mapping (role_arn, external_id, role_session_name, "
                                                    "duration)");
    } else if (config_check_keys(a, keys, err, errlen) != 0 ||
               config_str_required(a, "role_arn", &arn, err, errlen) != 0 ||
               config_str(a, "external_id", NULL, &ext, err, errlen) != 0 ||
               config_str(a, "role_session_name", NULL, &session, err, errlen) != 0 ||
               config_duration_ms(a, "duration", AWS_CREDS_ROLE_DURATION_DEF * 1000ull, &dur_ms, err, errlen) != 0) {
        /* err is set */
    } else if (aws_creds_dup(&p->role_arn, arn) != 0 || aws_creds_dup(&p->role_session_name, session) != 0 ||
               aws_creds_dup(&p->external_id, ext) != 0) {
        snprintf(err, errlen, "out of memory");
    } else if (aws_creds_check_role(p, a, err, errlen) != 0) {
        /* err is set */
    } else if (ext != NULL && !aws_creds_external_id_ok(ext)) {
        config_error(a, "external_id", err, errlen, "expected 2 to 1224 letters, digits or +=,.@:/_- characters");
    } else if (dur_ms < AWS_CREDS_ROLE_DURATION_MIN * 1000ull || dur_ms > AWS_CREDS_ROLE_DURATION_MAX * 1000ull ||
               dur_ms % 1000 != 0) {
        config_error(a, "duration", err, errlen, "must be whole seconds from 15m to 12h");
    } else {
        p->duration_s = (long)(dur_ms / 1000);
        if (aws_creds_setup(p, AWS_CREDS_ASSUME_ROLE, why, sizeof(why)) == 0)
            return p;
        config_error(a, "role_arn", err, errlen, "%s", why);
    }
    aws_creds_free(p);
    return NULL;
}
