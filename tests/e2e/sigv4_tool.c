/* sigv4_tool: signs requests with aws_sigv4 for the e2e cross-check against
 * @smithy/signature-v4 (tests/e2e/test/sigv4.test.js).
 *
 * Reads one JSON object per stdin line:
 *   {"method", "path", "query" (or null), "headers": ["Name: value", ...],
 *    "body_hex", "access_key_id", "secret_access_key", "session_token" (or null),
 *    "region", "service", "amz_date", "add_content_sha256": bool}
 * and writes one JSON object per line: {"ok": true, "headers": {Name: value},
 * "canonical": ..., "string_to_sign": ...} or {"ok": false, "error": ...}. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_sigv4.h"
#include "codec.h"

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *sign_one(json_t *in)
{
    const char *hex = jstr(in, "body_hex");
    size_t hl = hex ? strlen(hex) : 0, body_len = hl / 2;
    uint8_t *body = malloc(body_len + 1);
    json_t *jh = json_object_get(in, "headers");
    size_t nh = json_is_array(jh) ? json_array_size(jh) : 0;
    const char **headers = calloc(nh + 1, sizeof *headers);
    json_t *res = NULL;
    buf out = BUF_INIT, cr = BUF_INIT, st = BUF_INIT;
    if (!body || !headers || codec_hex_decode(hex ? hex : "", hl, body, body_len, &body_len) != 0)
        goto out;
    for (size_t i = 0; i < nh; i++) {
        headers[i] = json_string_value(json_array_get(jh, i));
        if (!headers[i])
            goto out;
    }
    aws_sigv4_request r = {jstr(in, "method"), jstr(in, "path"), jstr(in, "query"),
                           headers, body, body_len};
    aws_credentials c = {jstr(in, "access_key_id"), jstr(in, "secret_access_key"),
                         jstr(in, "session_token")};
    if (aws_sigv4_sign(&r, &c, jstr(in, "region"), jstr(in, "service"), jstr(in, "amz_date"),
                       json_is_true(json_object_get(in, "add_content_sha256")), &out, &cr,
                       &st) < 0 ||
        buf_putc(&out, '\0') < 0)
        goto out;
    json_t *hs = json_object();
    for (char *line = out.data; *line;) {
        char *eol = strchr(line, '\n'), *sep = strstr(line, ": ");
        if (!eol || !sep || sep > eol)
            break;
        *sep = '\0';
        json_object_set_new(hs, line, json_stringn(sep + 2, (size_t)(eol - sep - 2)));
        line = eol + 1;
    }
    res = json_pack("{s:b, s:o, s:s%, s:s%}", "ok", 1, "headers", hs, "canonical",
                    cr.data ? cr.data : "", cr.len, "string_to_sign", st.data ? st.data : "",
                    st.len);
out:
    free(body);
    free(headers);
    buf_free(&out);
    buf_free(&cr);
    buf_free(&st);
    return res ? res : json_pack("{s:b, s:s}", "ok", 0, "error", "sign failed");
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        json_error_t err;
        json_t *in = json_loadb(line, (size_t)n, 0, &err), *res;
        res = in ? sign_one(in) : json_pack("{s:b, s:s}", "ok", 0, "error", err.text);
        char *s = json_dumps(res, JSON_COMPACT);
        if (!s)
            return 1;
        puts(s);
        fflush(stdout);
        free(s);
        json_decref(res);
        json_decref(in);
    }
    free(line);
    return 0;
}
