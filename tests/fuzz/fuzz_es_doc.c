/* libFuzzer: Elasticsearch bulk rendering of whatever OTLP protobuf the
 * server accepts (first byte: the signal). The renderer writes JSON by hand,
 * so every line it emits must parse as a JSON object (jansson rejects bad
 * escapes and invalid UTF-8), and the document table must tile the body:
 * entries back to back, each an action line and a document line. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "es_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_es_doc_line_is_object(const char *p, size_t n)
{
    json_error_t e;
    json_t *j = json_loadb(p, n, 0, &e);
    if (j == NULL || !json_is_object(j))
        abort();
    json_decref(j);
}

static void fuzz_es_doc_check(const buf *out, const es_doc_table *t)
{
    size_t at = 0;
    for (size_t i = 0; i < t->n; i++) {
        const es_doc_entry *d = &t->v[i];
        if (d->off != at || d->len > out->len - at || d->len < 4 || out->data[at + d->len - 1] != '\n')
            abort();
        const char *line = out->data + at;
        const char *nl = memchr(line, '\n', d->len);
        if (nl == NULL || nl == line + d->len - 1) /* two lines, both non-empty */
            abort();
        fuzz_es_doc_line_is_object(line, (size_t)(nl - line));
        fuzz_es_doc_line_is_object(nl + 1, (size_t)(line + d->len - 1 - (nl + 1)));
        at += d->len;
    }
    if (at != out->len || (t->n > 0 && !t->v[0].first))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    otlp_signal sig = (otlp_signal)(data[0] % OTLP_SIGNAL_COUNT);
    arena *a = arena_new((size_t)64 << 20);
    if (a == NULL)
        return 0;
    otlp_request req;
    char err[160];
    if (otlp_decode(sig, OTLP_PROTOBUF, data + 1, size - 1, a, &req, err, sizeof(err)) == 0) {
        es_doc_settings s = {0};
        buf out = BUF_INIT;
        es_doc_table t = {0};
        es_doc_report rep;
        if (es_doc_render(&s, sig, req.msg, &out, &t, &rep) != 0)
            abort(); /* only out of memory, which a fuzz run should not reach */
        fuzz_es_doc_check(&out, &t);
        buf_free(&out);
        es_doc_table_free(&t);
    }
    arena_free(a);
    return 0;
}
