/* libFuzzer: the replies of the AWS credential endpoints, which arrive from
 * the network (and, for ECS full URIs, from wherever the URI points), and
 * the other inputs of the credential chain. Every input goes through each
 * parser: the JSON of ECS and IMDS, the XML of STS (AssumeRole and
 * AssumeRoleWithWebIdentity), credential_process's JSON output, and the
 * shared config / credentials file parser (both kinds), whose lookups must
 * return NUL-terminated strings. A success must leave credentials that pass
 * the parsers' own promises: NUL-terminated, non-empty keys, no bytes that
 * could break out of an HTTP header. The same bytes, NUL-terminated, go
 * through the time parser. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws_creds.h"
#include "aws_ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Printable ASCII without spaces, as the parsers guarantee. */
static void fuzz_check_token(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        abort();
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            abort();
}

static void fuzz_check(const aws_creds_value *v)
{
    if (v->access_key_id[0] == '\0' || v->secret_access_key[0] == '\0')
        abort();
    fuzz_check_token(v->access_key_id, sizeof(v->access_key_id));
    fuzz_check_token(v->secret_access_key, sizeof(v->secret_access_key));
    fuzz_check_token(v->session_token, sizeof(v->session_token));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    aws_creds_value v;
    char err[256];
    if (aws_creds_parse_json(in, size, &v, err, sizeof(err)) == 0)
        fuzz_check(&v);
    if (aws_creds_parse_sts(in, size, &v, err, sizeof(err)) == 0)
        fuzz_check(&v);
    if (aws_creds_parse_process(in, size, &v, err, sizeof(err)) == 0)
        fuzz_check(&v);
    for (int kind = AWS_INI_CONFIG; kind <= AWS_INI_CREDENTIALS; kind++) {
        aws_ini *f = aws_ini_parse("fuzz", in, size, (aws_ini_kind)kind, err, sizeof(err));
        if (f == NULL)
            continue;
        static const char *const keys[] = {"role_arn", "aws_access_key_id", "credential_process", "region"};
        unsigned line;
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            const char *val = aws_ini_get(f, "default", keys[k], &line);
            if (val != NULL && (strlen(val) >= size + 1 || line == 0))
                abort();
        }
        aws_ini_free(f);
    }
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    (void)aws_creds_parse_time(s);
    free(s);
    return 0;
}
