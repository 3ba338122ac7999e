/* aws_creds: AWS credential sources and their refresh (aws_creds.h). */
#include "aws_creds.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "aws_assume.h"
#include "aws_creds_internal.h"
#include "aws_process.h"
#include "buf.h"
#include "log.h"

#define AWS_CREDS_REFRESH_WINDOW_S 300 /* refresh when less than this remains */
#define AWS_CREDS_RETRY_S 10           /* after a failed refresh, while the old ones are valid */
#define AWS_CREDS_IMDS_TIMEOUT_MS 1000 /* per HTTP call: IMDS, absent off EC2, so fail fast */
#define AWS_CREDS_PROCESS_TIMEOUT_MS 30000 /* credential_process: may itself call a service */
#define AWS_CREDS_MAX_REPLY 65536      /* credential replies are a few KiB */
#define AWS_CREDS_MAX_TOKEN_FILE 65536 /* web identity / ECS authorization token files */
#define AWS_CREDS_IMDS_TOKEN_TTL "21600"

#define AWS_CREDS_ECS_HOST "http://169.254.170.2"
#define AWS_CREDS_IMDS_HOST "http://169.254.169.254"

/* The `source` values (config_choice's list) ... */
static const char *const aws_creds_source_names[] = {"auto", "static", "env", "web_identity", "ecs",
                                                     "imds", "profile", NULL};
/* ... and every kind's name, for logs and errors. */
static const char *const aws_creds_kind_names[] = {"auto", "static",  "env",     "web_identity", "ecs",
                                                   "imds", "profile", "process", "assume_role"};

#define AWS_CREDS_BIT(k) (1u << (k))

/* The `credentials:` keys and the sources that read each one: with an
 * explicit source, a key it would ignore is an error rather than a silent
 * no-op. */
static const struct {
    const char *key;
    unsigned used_by;
} aws_creds_keys[] = {
    {"source", ~0u},
    {"access_key_id", AWS_CREDS_BIT(AWS_CREDS_STATIC)},
    {"secret_access_key", AWS_CREDS_BIT(AWS_CREDS_STATIC)},
    {"session_token", AWS_CREDS_BIT(AWS_CREDS_STATIC)},
    {"role_arn", AWS_CREDS_BIT(AWS_CREDS_WEB_IDENTITY)},
    {"role_session_name", AWS_CREDS_BIT(AWS_CREDS_WEB_IDENTITY)},
    {"web_identity_token_file", AWS_CREDS_BIT(AWS_CREDS_WEB_IDENTITY)},
    {"sts_endpoint", AWS_CREDS_BIT(AWS_CREDS_WEB_IDENTITY) | AWS_CREDS_BIT(AWS_CREDS_PROFILE)},
    {"profile", AWS_CREDS_BIT(AWS_CREDS_PROFILE)},
    {"assume_role", ~0u},
    {"imds_endpoint", AWS_CREDS_BIT(AWS_CREDS_IMDS)},
    {"ecs_endpoint", AWS_CREDS_BIT(AWS_CREDS_ECS)},
    {"timeout", AWS_CREDS_BIT(AWS_CREDS_WEB_IDENTITY) | AWS_CREDS_BIT(AWS_CREDS_ECS) | AWS_CREDS_BIT(AWS_CREDS_IMDS) |
                    AWS_CREDS_BIT(AWS_CREDS_PROFILE)},
};
#define AWS_CREDS_N_KEYS (sizeof(aws_creds_keys) / sizeof(aws_creds_keys[0]))

int aws_creds_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* An environment variable, NULL when unset or empty (the SDKs treat both alike). */
const char *aws_creds_env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Replaces *dst with a copy of src (which may be *dst itself; NULL stays
 * NULL). -1 on out-of-memory, *dst unchanged. */
int aws_creds_dup(char **dst, const char *src)
{
    char *copy = NULL;
    if (src != NULL && (copy = strdup(src)) == NULL)
        return -1;
    free(*dst);
    *dst = copy;
    return 0;
}

/* Zeroes a buffer that held a secret, then frees it. */
void aws_creds_buf_wipe(buf *b)
{
    if (b->data != NULL)
        explicit_bzero(b->data, b->cap);
    buf_free(b);
}

/* ---- parsers ---- */

/* n decimal digits at s. */
static int aws_creds_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int aws_creds_days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return days[month - 1] + (month == 2 && leap);
}

time_t aws_creds_parse_time(const char *s)
{
    int year, mon, day, hour, min, sec;
    if (aws_creds_digits(s, 4, &year) || s[4] != '-' || aws_creds_digits(s + 5, 2, &mon) || s[7] != '-' ||
        aws_creds_digits(s + 8, 2, &day) || s[10] != 'T' || aws_creds_digits(s + 11, 2, &hour) || s[13] != ':' ||
        aws_creds_digits(s + 14, 2, &min) || s[16] != ':' || aws_creds_digits(s + 17, 2, &sec))
        return -1;
    if (mon < 1 || mon > 12 || day < 1 || day > aws_creds_days_in_month(year, mon) || hour > 23 || min > 59 ||
        sec > 60)
        return -1;
    const char *p = s + 19;
    if (*p == '.') { /* fractional seconds: any precision, ignored */
        size_t n = strspn(++p, "0123456789");
        if (n == 0)
            return -1;
        p += n;
    }
    long offset = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (aws_creds_digits(p + 1, 2, &oh)) /* before looking at p[3] */
            return -1;
        int colon = p[3] == ':';
        if (aws_creds_digits(p + 3 + colon, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset = (*p == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
        p += 5 + colon;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    struct tm tm = {.tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = day, .tm_hour = hour, .tm_min = min,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? -1 : t - offset;
}

/* Credentials go into HTTP headers and the signature: printable ASCII
 * without spaces only, so nothing from an endpoint can inject a header. */
static int aws_creds_token_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s <= ' ' || *s > '~')
            return 0;
    return 1;
}

static int aws_creds_value_check(const aws_creds_value *v, char *err, size_t errlen)
{
    if (v->access_key_id[0] == '\0' || v->secret_access_key[0] == '\0')
        return aws_creds_fail(err, errlen, "empty access key id or secret access key");
    if (!aws_creds_token_ok(v->access_key_id) || !aws_creds_token_ok(v->secret_access_key) ||
        !aws_creds_token_ok(v->session_token))
        return aws_creds_fail(err, errlen, "credentials contain characters not allowed in a header");
    return 0;
}

/* Copies a credential field, or fails naming it (never quoting it). */
static int aws_creds_field(char *dst, size_t cap, const char *src, size_t len, const char *name, char *err,
                           size_t errlen)
{
    if (len >= cap)
        return aws_creds_fail(err, errlen, "%s is too long", name);
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

/* A string member of a JSON object: 1 copied, 0 absent, -1 not a string or too long. */
static int aws_creds_json_str(json_t *obj, const char *key, char *dst, size_t cap, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return aws_creds_fail(err, errlen, "%s is not a string", key);
    return aws_creds_field(dst, cap, json_string_value(v), json_string_length(v), key, err, errlen) == 0 ? 1 : -1;
}

/* The two JSON credential formats: the endpoints' (ECS, IMDS) and
 * credential_process's. They differ in the token's name and in what comes
 * before the keys: IMDS's "Code", the process's "Version". */
typedef struct aws_creds_json_format {
    const char *what;      /* in errors */
    const char *token_key; /* "Token" or "SessionToken" */
    int (*check)(json_t *doc, char *err, size_t errlen);
} aws_creds_json_format;

/* IMDS says "Code": "Success"; anything else comes with a Message. */
static int aws_creds_json_check_code(json_t *doc, char *err, size_t errlen)
{
    char code[64] = "", msg[256] = "";
    if (aws_creds_json_str(doc, "Code", code, sizeof(code), err, errlen) < 0)
        return -1;
    if (code[0] == '\0' || strcmp(code, "Success") == 0)
        return 0;
    if (aws_creds_json_str(doc, "Message", msg, sizeof(msg), err, errlen) < 0)
        msg[0] = '\0';
    return aws_creds_fail(err, errlen, "credentials endpoint answered Code %s%s%s", code, msg[0] ? ": " : "", msg);
}

static int aws_creds_json_check_version(json_t *doc, char *err, size_t errlen)
{
    json_t *version = json_object_get(doc, "Version");
    if (!json_is_integer(version) || json_integer_value(version) != 1)
        return aws_creds_fail(err, errlen, "credential_process output: Version must be the number 1");
    return 0;
}

static int aws_creds_parse_json_as(const aws_creds_json_format *f, const char *body, size_t len, aws_creds_value *out,
                                   char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        return aws_creds_fail(err, errlen, "%s is not a JSON object", f->what);
    }
    char when[64] = "";
    int rc = f->check(doc, err, errlen);
    int has_id = 0, has_secret = 0, has_when = 0;
    if (rc == 0 &&
        ((has_id = aws_creds_json_str(doc, "AccessKeyId", out->access_key_id, sizeof(out->access_key_id), err,
                                      errlen)) < 0 ||
         (has_secret = aws_creds_json_str(doc, "SecretAccessKey", out->secret_access_key,
                                          sizeof(out->secret_access_key), err, errlen)) < 0 ||
         aws_creds_json_str(doc, f->token_key, out->session_token, sizeof(out->session_token), err, errlen) < 0 ||
         (has_when = aws_creds_json_str(doc, "Expiration", when, sizeof(when), err, errlen)) < 0))
        rc = -1;
    if (rc == 0 && (!has_id || !has_secret))
        rc = aws_creds_fail(err, errlen, "%s lacks AccessKeyId or SecretAccessKey", f->what);
    if (rc == 0 && has_when && (out->expiration = aws_creds_parse_time(when)) == -1)
        rc = aws_creds_fail(err, errlen, "%s: invalid Expiration time", f->what);
    if (rc == 0)
        rc = aws_creds_value_check(out, err, errlen);
    json_decref(doc);
    if (rc != 0)
        explicit_bzero(out, sizeof(*out));
    return rc;
}

int aws_creds_parse_json(const char *body, size_t len, aws_creds_value *out, char *err, size_t errlen)
{
    static const aws_creds_json_format f = {"reply", "Token", aws_creds_json_check_code};
    return aws_creds_parse_json_as(&f, body, len, out, err, errlen);
}

int aws_creds_parse_process(const char *body, size_t len, aws_creds_value *out, char *err, size_t errlen)
{
    static const aws_creds_json_format f = {"credential_process output", "SessionToken",
                                            aws_creds_json_check_version};
    return aws_creds_parse_json_as(&f, body, len, out, err, errlen);
}

/* The content of the first <tag>...</tag> (no attributes) in p[0..n):
 * 1 found, 0 absent, -1 opened but never closed. */
static int aws_creds_xml_element(const char *p, size_t n, const char *tag, const char **inner, size_t *inner_len)
{
    char open[48], close[48];
    int ol = snprintf(open, sizeof(open), "<%s>", tag), cl = snprintf(close, sizeof(close), "</%s>", tag);
    const char *s = memmem(p, n, open, (size_t)ol);
    if (s == NULL)
        return 0;
    s += ol;
    const char *e = memmem(s, n - (size_t)(s - p), close, (size_t)cl);
    if (e == NULL)
        return -1;
    *inner = s;
    *inner_len = (size_t)(e - s);
    return 1;
}

/* The text of <tag> in p[0..n) with the XML entities decoded into out
 * (NUL-terminated): 1 found, 0 absent, -1 malformed (unclosed, nested
 * markup, unknown entity) or longer than cap - 1. */
static int aws_creds_xml_text(const char *p, size_t n, const char *tag, char *out, size_t cap)
{
    static const struct {
        const char *name;
        char ch;
    } entities[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    const char *s;
    size_t len;
    int rc = aws_creds_xml_element(p, n, tag, &s, &len);
    if (rc <= 0)
        return rc;
    size_t o = 0;
    for (size_t i = 0; i < len; o++) {
        if (o + 1 >= cap || s[i] == '<' || s[i] == '\0')
            return -1;
        if (s[i] != '&') {
            out[o] = s[i++];
            continue;
        }
        size_t j = 0, nl = 0;
        for (; j < sizeof(entities) / sizeof(entities[0]); j++) {
            nl = strlen(entities[j].name);
            if (len - i >= nl && memcmp(s + i, entities[j].name, nl) == 0)
                break;
        }
        if (j == sizeof(entities) / sizeof(entities[0]))
            return -1;
        out[o] = entities[j].ch;
        i += nl;
    }
    out[o] = '\0';
    return 1;
}

/* An <Error> element anywhere in the reply (STS wraps it in <ErrorResponse>):
 * 1 with its Code and Message in err, 0 when there is none. */
int aws_creds_sts_error(const char *body, size_t len, char *err, size_t errlen)
{
    const char *e;
    size_t elen;
    int found = aws_creds_xml_element(body, len, "Error", &e, &elen);
    if (found == 0)
        return 0;
    if (found < 0) {
        aws_creds_fail(err, errlen, "STS error reply is truncated");
        return 1;
    }
    char code[128], msg[512];
    if (aws_creds_xml_text(e, elen, "Code", code, sizeof(code)) != 1)
        snprintf(code, sizeof(code), "(no code)");
    if (aws_creds_xml_text(e, elen, "Message", msg, sizeof(msg)) != 1)
        msg[0] = '\0';
    aws_creds_fail(err, errlen, "STS error %s%s%s", code, msg[0] ? ": " : "", msg);
    return 1;
}

int aws_creds_parse_sts(const char *body, size_t len, aws_creds_value *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (aws_creds_sts_error(body, len, err, errlen))
        return -1;
    const char *c;
    size_t clen;
    if (aws_creds_xml_element(body, len, "Credentials", &c, &clen) != 1)
        return aws_creds_fail(err, errlen, "STS reply has no complete <Credentials>");
    char when[64];
    static const char *const names[] = {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"};
    char *const dst[] = {out->access_key_id, out->secret_access_key, out->session_token, when};
    const size_t cap[] = {sizeof(out->access_key_id), sizeof(out->secret_access_key), sizeof(out->session_token),
                          sizeof(when)};
    int rc = 0;
    for (size_t i = 0; i < 4 && rc == 0; i++)
        if (aws_creds_xml_text(c, clen, names[i], dst[i], cap[i]) != 1)
            rc = aws_creds_fail(err, errlen, "STS reply: <%s> missing, malformed or too long", names[i]);
    if (rc == 0 && (out->expiration = aws_creds_parse_time(when)) == -1)
        rc = aws_creds_fail(err, errlen, "STS reply: invalid Expiration time");
    if (rc == 0)
        rc = aws_creds_value_check(out, err, errlen);
    if (rc != 0)
        explicit_bzero(out, sizeof(*out));
    return rc;
}

/* ---- HTTP ---- */

static size_t aws_creds_http_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    buf *b = ud;
    size_t n = size * nmemb;
    if (n > AWS_CREDS_MAX_REPLY - b->len || buf_append(b, ptr, n) != 0)
        return 0; /* curl then fails the transfer with CURLE_WRITE_ERROR */
    return n;
}

/* Performs the request; *status and reply (NUL-terminated, reply->len
 * excludes it) on any HTTP answer, -1 with err on a transport failure.
 * No redirects: a credentials endpoint has no reason to send one, and the
 * Authorization header must not follow it elsewhere. */
int aws_creds_http(const aws_creds_http_req *r, long *status, buf *reply, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    if (c == NULL)
        return aws_creds_fail(err, errlen, "curl_easy_init failed");
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "otlp-gateway/" GATEWAY_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, aws_creds_http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
    if (r->direct)
        curl_easy_setopt(c, CURLOPT_PROXY, "");
    if (r->form != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->form);
    } else if (strcmp(r->method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    }
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    if (rc == CURLE_OK && buf_putc(reply, '\0') == 0) {
        reply->len--;
        return 0;
    }
    if (rc == CURLE_WRITE_ERROR)
        return aws_creds_fail(err, errlen, "%s %s: reply larger than %d bytes", r->method, r->url,
                              AWS_CREDS_MAX_REPLY);
    return aws_creds_fail(err, errlen, "%s %s: %s", r->method, r->url,
                          rc == CURLE_OK ? "out of memory" : curl_easy_strerror(rc));
}

/* "Name: value" appended to *list; -1 on out-of-memory. */
int aws_creds_header(struct curl_slist **list, const char *name, const char *value)
{
    buf line = BUF_INIT;
    struct curl_slist *t = NULL;
    if (buf_printf(&line, "%s: %s", name, value) == 0 && (t = curl_slist_append(*list, line.data)) != NULL)
        *list = t;
    aws_creds_buf_wipe(&line);
    return t != NULL ? 0 : -1;
}

/* A whole token file, surrounding whitespace trimmed, into out
 * (NUL-terminated). The file's name may appear in errors, its content not. */
int aws_creds_read_token(const char *path, buf *out, char *err, size_t errlen)
{
    buf raw = BUF_INIT;
    int rc = 0;
    if (buf_read_file(&raw, path, AWS_CREDS_MAX_TOKEN_FILE) != 0)
        rc = errno == EFBIG ? aws_creds_fail(err, errlen, "%s: larger than %d bytes", path, AWS_CREDS_MAX_TOKEN_FILE)
                            : aws_creds_fail(err, errlen, "%s: %s", path, strerror(errno));
    size_t start = 0, end = raw.len;
    while (start < end && isspace((unsigned char)raw.data[start]))
        start++;
    while (end > start && isspace((unsigned char)raw.data[end - 1]))
        end--;
    if (rc == 0 && start == end)
        rc = aws_creds_fail(err, errlen, "%s: empty", path);
    if (rc == 0 && memchr(raw.data + start, '\0', end - start) != NULL)
        rc = aws_creds_fail(err, errlen, "%s: contains NUL", path);
    if (rc == 0 && (buf_append(out, raw.data + start, end - start) != 0 || buf_putc(out, '\0') != 0))
        rc = aws_creds_fail(err, errlen, "%s: out of memory", path);
    aws_creds_buf_wipe(&raw);
    return rc;
}

long aws_creds_timeout(const aws_creds *p, long def_ms)
{
    return p->timeout_ms != 0 ? (long)p->timeout_ms : def_ms;
}

/* ---- sources ---- */

/* ECS / EKS Pod Identity: one GET with an optional Authorization token. */
static int aws_creds_fetch_ecs(aws_creds *p, aws_creds_value *v, char *err, size_t errlen)
{
    buf token = BUF_INIT, reply = BUF_INIT;
    struct curl_slist *hdr = NULL;
    int rc = -1;
    const char *auth = p->ecs_token;
    if (auth == NULL && p->ecs_token_file != NULL) {
        /* Re-read every time: the agent rotates the file. */
        if (aws_creds_read_token(p->ecs_token_file, &token, err, errlen) != 0)
            goto out;
        auth = token.data;
    }
    if (auth != NULL && strpbrk(auth, "\r\n") != NULL) {
        aws_creds_fail(err, errlen, "ECS authorization token contains a line break");
        goto out;
    }
    if (aws_creds_header(&hdr, "Accept", "application/json") != 0 ||
        (auth != NULL && aws_creds_header(&hdr, "Authorization", auth) != 0)) {
        aws_creds_fail(err, errlen, "out of memory");
        goto out;
    }
    aws_creds_http_req r = {.method = "GET", .url = p->ecs_url, .headers = hdr,
                            .timeout_ms = aws_creds_timeout(p, AWS_CREDS_TIMEOUT_MS), .direct = 1};
    long status;
    if (aws_creds_http(&r, &status, &reply, err, errlen) != 0)
        goto out;
    if (status != 200)
        aws_creds_fail(err, errlen, "GET %s: HTTP %ld", p->ecs_url, status);
    else
        rc = aws_creds_parse_json(reply.data, reply.len, v, err, errlen);
out:
    aws_creds_buf_wipe(&token);
    aws_creds_buf_wipe(&reply);
    curl_slist_free_all(hdr);
    return rc;
}

/* One IMDS call with the session token (NULL for the token request itself);
 * the reply when it is HTTP 200. */
static int aws_creds_imds_call(const aws_creds *p, const char *method, const char *path, const char *token,
                               buf *reply, char *err, size_t errlen)
{
    buf url = BUF_INIT;
    struct curl_slist *hdr = NULL;
    int rc = -1;
    if (buf_printf(&url, "%s%s", p->imds_endpoint, path) != 0 ||
        aws_creds_header(&hdr, token ? "X-aws-ec2-metadata-token" : "X-aws-ec2-metadata-token-ttl-seconds",
                         token ? token : AWS_CREDS_IMDS_TOKEN_TTL) != 0) {
        aws_creds_fail(err, errlen, "out of memory");
        goto out;
    }
    aws_creds_http_req r = {.method = method, .url = url.data, .headers = hdr,
                            .timeout_ms = aws_creds_timeout(p, AWS_CREDS_IMDS_TIMEOUT_MS), .direct = 1};
    long status;
    if (aws_creds_http(&r, &status, reply, err, errlen) != 0)
        goto out;
    if (status != 200)
        aws_creds_fail(err, errlen, "%s %s: HTTP %ld", method, url.data, status);
    else
        rc = 0;
out:
    buf_free(&url);
    curl_slist_free_all(hdr);
    return rc;
}

/* IAM role names: letters, digits and +=,.@_- (they become a URL path segment). */
int aws_creds_role_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-") == n;
}

/* IMDSv2: a session token (PUT), the instance profile's role name (first
 * line of the listing), then that role's credentials. */
static int aws_creds_fetch_imds(aws_creds *p, aws_creds_value *v, char *err, size_t errlen)
{
    static const char creds_path[] = "/latest/meta-data/iam/security-credentials/";
    buf token = BUF_INIT, role = BUF_INIT, reply = BUF_INIT, path = BUF_INIT;
    int rc = -1;
    if (aws_creds_imds_call(p, "PUT", "/latest/api/token", NULL, &token, err, errlen) != 0)
        goto out;
    if (token.len == 0 || !aws_creds_token_ok(token.data)) {
        aws_creds_fail(err, errlen, "IMDS returned an invalid session token");
        goto out;
    }
    if (aws_creds_imds_call(p, "GET", creds_path, token.data, &role, err, errlen) != 0)
        goto out;
    role.data[strcspn(role.data, "\r\n")] = '\0';
    if (!aws_creds_role_name_ok(role.data)) {
        aws_creds_fail(err, errlen, "IMDS: no valid instance profile role name (is a role attached?)");
        goto out;
    }
    if (buf_printf(&path, "%s%s", creds_path, role.data) != 0) {
        aws_creds_fail(err, errlen, "out of memory");
        goto out;
    }
    if (aws_creds_imds_call(p, "GET", path.data, token.data, &reply, err, errlen) == 0)
        rc = aws_creds_parse_json(reply.data, reply.len, v, err, errlen);
out:
    aws_creds_buf_wipe(&token);
    buf_free(&role);
    aws_creds_buf_wipe(&reply);
    buf_free(&path);
    return rc;
}

/* credential_process: the command's JSON output. */
static int aws_creds_fetch_process(aws_creds *p, aws_creds_value *v, char *err, size_t errlen)
{
    buf out = BUF_INIT;
    int rc = aws_process_run(p->process, aws_creds_timeout(p, AWS_CREDS_PROCESS_TIMEOUT_MS), &out, err, errlen);
    if (rc == 0)
        rc = aws_creds_parse_process(out.data, out.len, v, err, errlen);
    aws_creds_buf_wipe(&out);
    return rc;
}

/* ---- picking a source: its inputs from the config and the environment ---- */

int aws_creds_is_http_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* The host of an absolute http(s) URL is one ECS's full URI may name over
 * plain http: a loopback address or the ECS / EKS Pod Identity agents. */
static int aws_creds_ecs_host_allowed(const char *host)
{
    static const char *const agents[] = {"169.254.170.2", "169.254.170.23", "fd00:ec2::23"};
    char h[64];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(h)) { /* IPv6 literal */
        memcpy(h, host + 1, n - 2);
        h[n - 2] = '\0';
    } else if (n < sizeof(h)) {
        memcpy(h, host, n + 1);
    } else {
        return 0;
    }
    for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++)
        if (strcasecmp(h, agents[i]) == 0)
            return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, h, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

/* AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a host
 * aws_creds_ecs_host_allowed accepts: credentials must not cross a network
 * in clear text. */
static int aws_creds_ecs_full_uri_ok(const char *uri, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int ok = u != NULL && curl_url_set(u, CURLUPART_URL, uri, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK;
    int rc = 0;
    if (!ok || (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0))
        rc = aws_creds_fail(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not an http(s) URL");
    else if (strcmp(scheme, "http") == 0 && !aws_creds_ecs_host_allowed(host))
        rc = aws_creds_fail(err, errlen,
                            "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http is only allowed to a loopback "
                            "address or the ECS/EKS agent (169.254.170.2, 169.254.170.23, fd00:ec2::23)");
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static int aws_creds_setup_ecs(aws_creds *p, char *err, size_t errlen)
{
    const char *rel = aws_creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = aws_creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    buf url = BUF_INIT;
    if (rel != NULL) {
        /* The relative URI wins, as in the SDKs: it is what ECS itself sets. */
        if (rel[0] != '/')
            return aws_creds_fail(err, errlen, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with /");
        const char *host = p->ecs_endpoint != NULL ? p->ecs_endpoint : AWS_CREDS_ECS_HOST;
        size_t hl = strlen(host);
        hl -= hl > 0 && host[hl - 1] == '/';
        if (buf_printf(&url, "%.*s%s", (int)hl, host, rel) != 0)
            return aws_creds_fail(err, errlen, "out of memory");
    } else if (full != NULL) {
        if (aws_creds_ecs_full_uri_ok(full, err, errlen) != 0)
            return -1;
        if (buf_printf(&url, "%s", full) != 0)
            return aws_creds_fail(err, errlen, "out of memory");
    } else {
        return aws_creds_fail(err, errlen, "neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor _FULL_URI is set");
    }
    free(p->ecs_url);
    p->ecs_url = url.data;
    if (aws_creds_dup(&p->ecs_token, aws_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) != 0 ||
        aws_creds_dup(&p->ecs_token_file, aws_creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) != 0)
        return aws_creds_fail(err, errlen, "out of memory");
    return 0;
}

static int aws_creds_imds_disabled(void)
{
    const char *d = aws_creds_env("AWS_EC2_METADATA_DISABLED");
    return d != NULL && strcasecmp(d, "true") == 0;
}

static int aws_creds_setup_imds(aws_creds *p, char *err, size_t errlen)
{
    if (aws_creds_imds_disabled())
        return aws_creds_fail(err, errlen, "IMDS is disabled by AWS_EC2_METADATA_DISABLED=true");
    const char *ep = p->imds_endpoint ? p->imds_endpoint : aws_creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (ep != NULL && !aws_creds_is_http_url(ep))
        return aws_creds_fail(err, errlen, "AWS_EC2_METADATA_SERVICE_ENDPOINT is not an http(s) URL");
    if (aws_creds_dup(&p->imds_endpoint, ep ? ep : AWS_CREDS_IMDS_HOST) != 0)
        return aws_creds_fail(err, errlen, "out of memory");
    /* Paths are appended to it. */
    size_t n = strlen(p->imds_endpoint);
    while (n > 0 && p->imds_endpoint[n - 1] == '/')
        p->imds_endpoint[--n] = '\0';
    return 0;
}

static int aws_creds_fill(aws_creds_value *v, const char *id, const char *secret, const char *token, char *err,
                          size_t errlen)
{
    memset(v, 0, sizeof(*v));
    if (aws_creds_field(v->access_key_id, sizeof(v->access_key_id), id, strlen(id), "access key id", err, errlen) ||
        aws_creds_field(v->secret_access_key, sizeof(v->secret_access_key), secret, strlen(secret),
                        "secret access key", err, errlen) ||
        (token != NULL && aws_creds_field(v->session_token, sizeof(v->session_token), token, strlen(token),
                                          "session token", err, errlen)))
        return -1;
    return aws_creds_value_check(v, err, errlen);
}

/* Credentials that never expire (static, env) are loaded once, here. */
static int aws_creds_setup_env(aws_creds *p, char *err, size_t errlen)
{
    const char *id = aws_creds_env("AWS_ACCESS_KEY_ID"), *secret = aws_creds_env("AWS_SECRET_ACCESS_KEY");
    if (id == NULL || secret == NULL)
        return aws_creds_fail(err, errlen, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set");
    if (aws_creds_fill(&p->cur, id, secret, aws_creds_env("AWS_SESSION_TOKEN"), err, errlen) != 0)
        return -1;
    p->have = 1;
    return 0;
}

static int aws_creds_setup_static(aws_creds *p, char *err, size_t errlen)
{
    if (aws_creds_fill(&p->cur, p->access_key_id, p->secret_access_key, p->session_token, err, errlen) != 0)
        return -1;
    p->have = 1;
    return 0;
}

static void aws_creds_log_in_use(const aws_creds *p)
{
    char when[32] = "none";
    if (p->cur.expiration != 0) {
        struct tm tm;
        gmtime_r(&p->cur.expiration, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    if (p->kind == AWS_CREDS_ASSUME_ROLE)
        log_info("aws credentials loaded", "source=%s role_arn=%s base=%s expiration=%s",
                 aws_creds_kind_names[p->kind], p->role_arn, aws_creds_kind_names[p->base->kind], when);
    else
        log_info("aws credentials loaded", "source=%s expiration=%s", aws_creds_kind_names[p->kind], when);
}

static int aws_creds_setup_process(aws_creds *p, char *err, size_t errlen)
{
    /* Split now, so a malformed command is an error before the first export. */
    char **argv = p->process != NULL ? aws_process_split(p->process, err, errlen) : NULL;
    free(argv);
    return argv != NULL ? 0 : -1;
}

/* Makes `kind` the source in use, reading its inputs (and loading the
 * credentials of the sources that never expire). */
int aws_creds_setup(aws_creds *p, aws_creds_kind kind, char *err, size_t errlen)
{
    int rc;
    if (kind == AWS_CREDS_PROFILE) /* becomes the kind the profile describes */
        return aws_creds_setup_profile(p, err, errlen);
    switch (kind) {
    case AWS_CREDS_STATIC: rc = aws_creds_setup_static(p, err, errlen); break;
    case AWS_CREDS_PROCESS: rc = aws_creds_setup_process(p, err, errlen); break;
    case AWS_CREDS_ASSUME_ROLE: rc = aws_creds_setup_assume_role(p, err, errlen); break;
    case AWS_CREDS_ENV: rc = aws_creds_setup_env(p, err, errlen); break;
    case AWS_CREDS_WEB_IDENTITY: rc = aws_creds_setup_web_identity(p, err, errlen); break;
    case AWS_CREDS_ECS: rc = aws_creds_setup_ecs(p, err, errlen); break;
    case AWS_CREDS_IMDS: rc = aws_creds_setup_imds(p, err, errlen); break;
    default: rc = aws_creds_fail(err, errlen, "no credentials source"); break;
    }
    if (rc != 0)
        return -1;
    p->kind = kind;
    if (p->have)
        aws_creds_log_in_use(p);
    return 0;
}

/* `auto` at first use: the first source whose inputs are present, in the
 * documented order (configured keys were picked at startup). */
static aws_creds_kind aws_creds_detect(const aws_creds *p)
{
    if (aws_creds_env("AWS_ACCESS_KEY_ID") && aws_creds_env("AWS_SECRET_ACCESS_KEY"))
        return AWS_CREDS_ENV;
    if (aws_creds_profile_present(p))
        return AWS_CREDS_PROFILE;
    if ((p->role_arn || aws_creds_env("AWS_ROLE_ARN")) &&
        (p->web_identity_token_file || aws_creds_env("AWS_WEB_IDENTITY_TOKEN_FILE")))
        return AWS_CREDS_WEB_IDENTITY;
    if (aws_creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || aws_creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
        return AWS_CREDS_ECS;
    return aws_creds_imds_disabled() ? AWS_CREDS_AUTO : AWS_CREDS_IMDS;
}

/* ---- config ---- */

/* Reads the string keys into p's copies; the ones that are URLs must be http(s). */
static int aws_creds_read_keys(aws_creds *p, const config_node *m, char *err, size_t errlen)
{
    struct {
        const char *key;
        char **dst;
        int url;
    } keys[] = {
        {"access_key_id", &p->access_key_id, 0},       {"secret_access_key", &p->secret_access_key, 0},
        {"session_token", &p->session_token, 0},       {"role_arn", &p->role_arn, 0},
        {"role_session_name", &p->role_session_name, 0}, {"web_identity_token_file", &p->web_identity_token_file, 0},
        {"sts_endpoint", &p->sts_endpoint, 1},         {"imds_endpoint", &p->imds_endpoint, 1},
        {"ecs_endpoint", &p->ecs_endpoint, 1},         {"profile", &p->profile, 0},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v;
        if (config_str(m, keys[i].key, NULL, &v, err, errlen) != 0)
            return -1;
        if (v != NULL && v[0] == '\0')
            return config_error(m, keys[i].key, err, errlen, "must not be empty");
        if (v != NULL && keys[i].url && !aws_creds_is_http_url(v))
            return config_error(m, keys[i].key, err, errlen, "expected an http:// or https:// URL");
        if (aws_creds_dup(keys[i].dst, v) != 0)
            return config_error(m, keys[i].key, err, errlen, "out of memory");
    }
    return 0;
}

/* role_arn and role_session_name as STS takes them. */
int aws_creds_check_role(const aws_creds *p, const config_node *m, char *err, size_t errlen)
{
    if (p->role_arn != NULL && strncmp(p->role_arn, "arn:", 4) != 0)
        return config_error(m, "role_arn", err, errlen, "expected a role ARN (arn:aws:iam::<account>:role/<name>)");
    /* STS: 2 to 64 of [A-Za-z0-9+=,.@_-]. */
    if (p->role_session_name != NULL &&
        (strlen(p->role_session_name) < 2 || !aws_creds_role_name_ok(p->role_session_name)))
        return config_error(m, "role_session_name", err, errlen,
                            "expected 2 to 64 letters, digits or +=,.@_- characters");
    return 0;
}

/* Checks between keys: values the config reader cannot see alone. Messages
 * name keys, never values (they are often secrets). */
static int aws_creds_check_keys(const aws_creds *p, const config_node *m, aws_creds_kind kind, char *err,
                                size_t errlen)
{
    /* assume_role talks to STS whatever the source: its endpoint and timeout apply. */
    unsigned sts_keys = config_get(m, "assume_role") != NULL ? ~0u : 0;
    for (size_t i = 0; kind != AWS_CREDS_AUTO && i < AWS_CREDS_N_KEYS; i++) {
        const char *key = aws_creds_keys[i].key;
        unsigned used_by = aws_creds_keys[i].used_by;
        if (strcmp(key, "sts_endpoint") == 0 || strcmp(key, "timeout") == 0)
            used_by |= sts_keys;
        if (config_get(m, key) != NULL && !(used_by & AWS_CREDS_BIT(kind)))
            return config_error(m, key, err, errlen, "not used with source %s", aws_creds_kind_names[kind]);
    }
    if (kind == AWS_CREDS_STATIC || p->access_key_id || p->secret_access_key || p->session_token) {
        if (p->access_key_id == NULL)
            return config_error(m, "access_key_id", err, errlen, "required with static credentials");
        if (p->secret_access_key == NULL)
            return config_error(m, "secret_access_key", err, errlen, "required with static credentials");
    }
    return aws_creds_check_role(p, m, err, errlen);
}

/* The `source` key; *kind AWS_CREDS_AUTO when absent. */
static int aws_creds_read_source(const config_node *m, aws_creds_kind *kind, char *err, size_t errlen)
{
    int k;
    if (config_choice(m, "source", aws_creds_source_names, AWS_CREDS_AUTO, &k, err, errlen) != 0)
        return -1;
    *kind = (aws_creds_kind)k;
    return 0;
}

static int aws_creds_configure(aws_creds *p, const config_node *m, char *err, size_t errlen)
{
    const char *names[AWS_CREDS_N_KEYS + 1];
    for (size_t i = 0; i < AWS_CREDS_N_KEYS; i++)
        names[i] = aws_creds_keys[i].key;
    names[AWS_CREDS_N_KEYS] = NULL;
    aws_creds_kind kind;
    if (config_check_keys(m, names, err, errlen) != 0 || aws_creds_read_source(m, &kind, err, errlen) != 0 ||
        aws_creds_read_keys(p, m, err, errlen) != 0 || aws_creds_check_keys(p, m, kind, err, errlen) != 0 ||
        config_duration_ms(m, "timeout", 0, &p->timeout_ms, err, errlen) != 0)
        return -1;
    if (config_get(m, "timeout") != NULL && (p->timeout_ms < 10 || p->timeout_ms > 60000))
        return config_error(m, "timeout", err, errlen, "must be from 10ms to 60s");
    /* Configured keys come first in `auto`'s order: nothing to wait for. */
    if (kind == AWS_CREDS_AUTO && p->access_key_id != NULL)
        kind = AWS_CREDS_STATIC;
    else if (kind == AWS_CREDS_AUTO && p->profile != NULL)
        kind = AWS_CREDS_PROFILE;
    /* An explicit source reads its inputs now, so a missing environment
     * variable is a startup error rather than a failing export. */
    char why[256];
    if (kind != AWS_CREDS_AUTO && aws_creds_setup(p, kind, why, sizeof(why)) != 0)
        return config_error(m, "source", err, errlen, "%s: %s", aws_creds_kind_names[kind], why);
    return 0;
}

aws_creds *aws_creds_from_config(const config_node *backend_node, const char *region, char *err, size_t errlen)
{
    const config_node *m = config_get(backend_node, "credentials");
    if (m != NULL && !config_is_map(m) && !config_is_seq(m) && config_scalar(m) == NULL)
        m = NULL; /* `credentials:` with no value: the defaults */
    if (m != NULL && !config_is_map(m)) {
        config_error(backend_node, "credentials", err, errlen, "expected a mapping");
        return NULL;
    }
    aws_creds *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* Paired with the cleanup in aws_creds_free (libcurl counts them). */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (aws_creds_dup(&p->region, region) != 0) {
        snprintf(err, errlen, "out of memory");
        aws_creds_free(p);
        return NULL;
    }
    if (m != NULL && aws_creds_configure(p, m, err, errlen) != 0) {
        aws_creds_free(p);
        return NULL;
    }
    if (m != NULL && config_get(m, "assume_role") != NULL)
        return aws_creds_assume_role_from_config(p, m, err, errlen);
    return p;
}

/* ---- use ---- */

static int aws_creds_fetch(aws_creds *p, aws_creds_value *v, char *err, size_t errlen)
{
    switch (p->kind) {
    case AWS_CREDS_WEB_IDENTITY: return aws_creds_fetch_sts(p, v, err, errlen);
    case AWS_CREDS_ECS: return aws_creds_fetch_ecs(p, v, err, errlen);
    case AWS_CREDS_IMDS: return aws_creds_fetch_imds(p, v, err, errlen);
    case AWS_CREDS_PROCESS: return aws_creds_fetch_process(p, v, err, errlen);
    case AWS_CREDS_ASSUME_ROLE: return aws_creds_fetch_assume_role(p, v, err, errlen);
    default: return aws_creds_fail(err, errlen, "source %s cannot refresh", aws_creds_kind_names[p->kind]);
    }
}

/* A first fetch, or a refresh of credentials about to expire. A failure
 * keeps valid credentials in use and postpones the next attempt; with none
 * valid it is the caller's error. */
static int aws_creds_refresh(aws_creds *p, time_t now, char *err, size_t errlen)
{
    aws_creds_value v;
    int rc = aws_creds_fetch(p, &v, err, errlen);
    if (rc == 0 && v.expiration != 0 && v.expiration <= now)
        rc = aws_creds_fail(err, errlen, "%s credentials are already expired", aws_creds_kind_names[p->kind]);
    if (rc == 0) {
        p->cur = v;
        p->have = 1;
        p->retry_at = 0;
        aws_creds_log_in_use(p);
    }
    explicit_bzero(&v, sizeof(v));
    if (rc == 0)
        return 0;
    if (p->have && (p->cur.expiration == 0 || p->cur.expiration > now)) {
        char q[512];
        p->retry_at = now + AWS_CREDS_RETRY_S;
        log_warn("aws credentials refresh failed", "source=%s retry_in_s=%d error=%s", aws_creds_kind_names[p->kind],
                 AWS_CREDS_RETRY_S, log_quote(q, sizeof(q), err));
        return 0;
    }
    return -1;
}

int aws_creds_get(aws_creds *p, aws_credentials *out, char *err, size_t errlen)
{
    if (p->kind == AWS_CREDS_AUTO) {
        aws_creds_kind k = aws_creds_detect(p);
        if (k == AWS_CREDS_AUTO)
            return aws_creds_fail(err, errlen, "no AWS credentials found (static keys, AWS_ACCESS_KEY_ID, a "
                                               "profile, web identity, ECS) and IMDS is disabled");
        if (aws_creds_setup(p, k, err, errlen) != 0)
            return -1;
    }
    time_t now = time(NULL);
    int stale = !p->have || (p->cur.expiration != 0 && p->cur.expiration - now < AWS_CREDS_REFRESH_WINDOW_S);
    int valid = p->have && (p->cur.expiration == 0 || p->cur.expiration > now);
    if (stale && (!valid || now >= p->retry_at) && aws_creds_refresh(p, now, err, errlen) != 0)
        return -1;
    out->access_key_id = p->cur.access_key_id;
    out->secret_access_key = p->cur.secret_access_key;
    out->session_token = p->cur.session_token[0] != '\0' ? p->cur.session_token : NULL;
    return 0;
}

const char *aws_creds_source(const aws_creds *p) { return aws_creds_kind_names[p->kind]; }

static void aws_creds_free_secret(char *s)
{
    if (s != NULL)
        explicit_bzero(s, strlen(s));
    free(s);
}

void aws_creds_free(aws_creds *p)
{
    if (p == NULL)
        return;
    aws_creds_free_secret(p->access_key_id);
    aws_creds_free_secret(p->secret_access_key);
    aws_creds_free_secret(p->session_token);
    aws_creds_free_secret(p->ecs_token);
    free(p->role_arn);
    free(p->role_session_name);
    free(p->web_identity_token_file);
    free(p->sts_endpoint);
    free(p->imds_endpoint);
    free(p->ecs_endpoint);
    free(p->region);
    free(p->ecs_url);
    free(p->ecs_token_file);
    free(p->profile);
    free(p->process);
    free(p->external_id);
    aws_creds_free(p->base);
    explicit_bzero(&p->cur, sizeof(p->cur));
    free(p);
    curl_global_cleanup();
}
