/* aws_export: the SigV4 signer exporter types share (aws_export.h). The
 * OTLP types that use it (aws_xray, aws_cloudwatch_logs) live with the
 * other OTLP types in otlp_export.c; prometheus_remote_write uses it for
 * Amazon Managed Prometheus. */
#include "aws_export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws_creds.h"
#include "aws_sigv4.h"

#define AWS_SIGNER_MAX_HEADERS 64

struct aws_signer {
    aws_creds *creds;
    char region[64];
    char service[32];
    buf lines; /* the signer's output, reused */
};

const char *const aws_signer_keys[] = {"region", "credentials", NULL};

/* Region names are lowercase letters, digits and dashes ("us-east-1",
 * "cn-north-1", "us-gov-west-1"); anything else would only fail later at
 * AWS with a confusing signature error. */
static int aws_region_valid(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n >= 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
            return 0;
    return 1;
}

aws_signer *aws_signer_from_config(const config_node *node, const char *service, char *err, size_t errlen)
{
    const char *region;
    if (config_str(node, "region", NULL, &region, err, errlen) != 0)
        return NULL;
    if (region == NULL && (region = getenv("AWS_REGION")) == NULL && (region = getenv("AWS_DEFAULT_REGION")) == NULL) {
        config_error(node, "region", err, errlen, "required (or set AWS_REGION in the environment)");
        return NULL;
    }
    if (!aws_region_valid(region)) {
        config_error(node, "region", err, errlen, "\"%s\" is not a region name (like us-east-1)", region);
        return NULL;
    }
    aws_signer *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->region, sizeof(s->region), "%s", region);
    snprintf(s->service, sizeof(s->service), "%s", service);
    if ((s->creds = aws_creds_from_config(node, region, err, errlen)) == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

const char *aws_signer_region(const aws_signer *s) { return s->region; }

int aws_signer_sign(aws_signer *s, const export_signing *req, struct curl_slist **extra, char *err, size_t errlen)
{
    aws_credentials c;
    if (aws_creds_get(s->creds, &c, err, errlen) != 0)
        return -1;
    char host[300], path[2048], hostline[310], amz_date[17];
    const char *p, *query;
    size_t plen;
    if (aws_sigv4_url_parts(req->url, host, sizeof(host), &p, &plen, &query) != 0 || plen >= sizeof(path)) {
        snprintf(err, errlen, "cannot sign: bad URL");
        return -1;
    }
    memcpy(path, p, plen);
    path[plen] = '\0';
    char qcopy[2048];
    if (query != NULL) {
        snprintf(qcopy, sizeof(qcopy), "%.*s", (int)strcspn(query, "#"), query);
        query = qcopy;
    }
    snprintf(hostline, sizeof(hostline), "Host: %s", host);
    /* Sign what will be sent: the exporter's headers (minus curl's "Name:"
     * removal lines, which send nothing) and the Host we add. */
    const char *lines[AWS_SIGNER_MAX_HEADERS + 2];
    size_t n = 0;
    lines[n++] = hostline;
    for (const struct curl_slist *h = req->headers; h != NULL; h = h->next) {
        const char *colon = strchr(h->data, ':');
        if (colon == NULL || colon[1 + strspn(colon + 1, " \t")] == '\0')
            continue;
        if (n == AWS_SIGNER_MAX_HEADERS) {
            snprintf(err, errlen, "cannot sign: too many headers");
            return -1;
        }
        lines[n++] = h->data;
    }
    lines[n] = NULL;
    aws_sigv4_amz_date(time(NULL), amz_date);
    aws_sigv4_request r = {.method = req->method ? req->method : "POST", .path = path, .query = query, .headers = lines, .body = req->body,
                           .body_len = req->len};
    buf_clear(&s->lines);
    if (aws_sigv4_sign(&r, &c, s->region, s->service, amz_date, 1, &s->lines, NULL, NULL) != 0 ||
        buf_putc(&s->lines, '\0') != 0) {
        snprintf(err, errlen, "cannot sign the request");
        return -1;
    }
    /* On failure *extra keeps what was appended: the caller frees it. */
    struct curl_slist *t = curl_slist_append(*extra, hostline);
    char *save = NULL;
    for (char *line = strtok_r(s->lines.data, "\n", &save); t != NULL && line != NULL;
         line = strtok_r(NULL, "\n", &save))
        if ((t = curl_slist_append(*extra = t, line)) == NULL)
            break;
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *extra = t;
    return 0;
}

void aws_signer_free(aws_signer *s)
{
    if (s == NULL)
        return;
    aws_creds_free(s->creds);
    buf_free(&s->lines);
    free(s);
}
