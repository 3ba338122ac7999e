/* OTLP request decoding, validation, counting and responses. The JSON side
 * lives in otlp_json*.c; this file owns the protobuf path and the
 * signal-specific walks over the generated types. */
#include <stdio.h>
#include <string.h>

#include "logs_service.pb-c.h"
#include "metrics_service.pb-c.h"
#include "otlp.h"
#include "otlp_json.h"
#include "status.pb-c.h"
#include "trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest metrics_req;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest logs_req;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Logs__V1__LogRecord log_t;

const char *otlp_signal_name(otlp_signal sig)
{
    static const char *names[OTLP_SIGNAL_COUNT] = OTLP_SIGNAL_NAMES;
    return (unsigned)sig < OTLP_SIGNAL_COUNT ? names[sig] : "unknown";
}

const char *otlp_item_name(otlp_signal sig)
{
    static const char *names[OTLP_SIGNAL_COUNT] = {"spans", "metric_points", "log_records"};
    return (unsigned)sig < OTLP_SIGNAL_COUNT ? names[sig] : "items";
}

const ProtobufCMessageDescriptor *otlp_request_descriptor(otlp_signal sig)
{
    switch (sig) {
    case OTLP_TRACES:
        return &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    case OTLP_METRICS:
        return &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    case OTLP_LOGS:
        return &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    default:
        return NULL;
    }
}

/* ---- protobuf pre-scan ---- */

/* Reads a varint of at most 10 bytes ending before `end`. */
static int pb_varint(const uint8_t *d, size_t end, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70 && *pos < end; shift += 7) {
        uint8_t b = d[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* protobuf-c's unpack recurses once per nested message with no limit, so a
 * few hundred KB of nested AnyValues would overflow the stack. This walk
 * follows the same structure iteratively, with an explicit stack of
 * OTLP_MAX_DEPTH frames, and also finds truncation, reporting its offset
 * (unpack only says "failed"). Unknown fields and non-message
 * length-delimited fields are skipped without looking inside, as unpack
 * does. */
static int pb_prescan(const ProtobufCMessageDescriptor *desc, const uint8_t *d, size_t len,
                      char *err, size_t errlen)
{
    struct {
        const ProtobufCMessageDescriptor *desc;
        size_t end;
    } stack[OTLP_MAX_DEPTH];
    int top = 0;
    size_t pos = 0;
    stack[0].desc = desc;
    stack[0].end = len;
    for (;;) {
        while (pos == stack[top].end) {
            if (top == 0)
                return 0;
            top--;
        }
        size_t at = pos, end = stack[top].end;
        uint64_t key, n;
        const char *what = "truncated field";
        if (pb_varint(d, end, &pos, &key) != 0)
            goto bad;
        if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff) {
            what = "invalid field number";
            goto bad;
        }
        switch (key & 7) {
        case 0:
            if (pb_varint(d, end, &pos, &n) != 0)
                goto bad;
            break;
        case 1:
        case 5: {
            size_t w = (key & 7) == 1 ? 8 : 4;
            if (end - pos < w)
                goto bad;
            pos += w;
            break;
        }
        case 2: {
            if (pb_varint(d, end, &pos, &n) != 0 || n > end - pos)
                goto bad;
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(stack[top].desc, (unsigned)(key >> 3));
            if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE) {
                pos += n;
                break;
            }
            if (top + 1 >= OTLP_MAX_DEPTH) {
                what = "nesting too deep";
                goto bad;
            }
            top++;
            stack[top].desc = f->descriptor;
            stack[top].end = pos + n;
            break;
        }
        default:
            what = "unsupported wire type";
            goto bad;
        }
        continue;
    bad:
        snprintf(err, errlen, "invalid protobuf: %s at offset %zu", what, at);
        return -1;
    }
}

/* ---- counting and validation ---- */

size_t otlp_metric_points(const ProtobufCMessage *metric)
{
    const metric_t *m = (const metric_t *)metric;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary->n_data_points;
    default:
        return 0;
    }
}

size_t otlp_count_items(otlp_signal sig, const ProtobufCMessage *msg)
{
    size_t n = 0;
    if (msg == NULL)
        return 0;
    if (sig == OTLP_TRACES) {
        const trace_req *r = (const trace_req *)msg;
        for (size_t i = 0; i < r->n_resource_spans; i++)
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
                n += r->resource_spans[i]->scope_spans[j]->n_spans;
    } else if (sig == OTLP_METRICS) {
        const metrics_req *r = (const metrics_req *)msg;
        for (size_t i = 0; i < r->n_resource_metrics; i++)
            for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
                const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                    r->resource_metrics[i]->scope_metrics[j];
                for (size_t k = 0; k < sm->n_metrics; k++)
                    n += otlp_metric_points((const ProtobufCMessage *)sm->metrics[k]);
            }
    } else if (sig == OTLP_LOGS) {
        const logs_req *r = (const logs_req *)msg;
        for (size_t i = 0; i < r->n_resource_logs; i++)
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++)
                n += r->resource_logs[i]->scope_logs[j]->n_log_records;
    }
    return n;
}

/* Describes what is wrong with an id into why (0 when it is fine). */
static int id_invalid(const ProtobufCBinaryData *id, const char *name, size_t want, int required,
                      char *why, size_t whylen)
{
    if (id->len == 0 && !required)
        return 0;
    if (id->len != want) {
        snprintf(why, whylen, "invalid %s length %zu", name, id->len);
        return 1;
    }
    if (required) {
        for (size_t i = 0; i < want; i++)
            if (id->data[i] != 0)
                return 0;
        snprintf(why, whylen, "%s is all zero", name);
        return 1;
    }
    return 0;
}

/* Counts `weight` rejected items and keeps the first reason. */
static void note_reject(otlp_request *req, size_t weight, const char *item, size_t idx,
                        size_t scope, size_t resource, const char *why)
{
    if (req->reject_reason[0] == '\0')
        snprintf(req->reject_reason, sizeof(req->reject_reason),
                 "%s %zu of scope %zu of resource %zu: %.48s", item, idx, scope, resource, why);
    req->rejected += weight;
}

static int span_invalid(const span_t *s, char *why, size_t whylen)
{
    return id_invalid(&s->trace_id, "trace_id", 16, 1, why, whylen) ||
           id_invalid(&s->span_id, "span_id", 8, 1, why, whylen) ||
           id_invalid(&s->parent_span_id, "parent_span_id", 8, 0, why, whylen);
}

static int metric_invalid(const metric_t *m, char *why, size_t whylen)
{
    if (m->name == NULL || m->name[0] == '\0') {
        snprintf(why, whylen, "missing metric name");
        return 1;
    }
    if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA__NOT_SET) {
        snprintf(why, whylen, "metric %.32s has no data", m->name);
        return 1;
    }
    return 0;
}

static int log_invalid(const log_t *l, char *why, size_t whylen)
{
    return id_invalid(&l->trace_id, "trace_id", 16, 0, why, whylen) ||
           id_invalid(&l->span_id, "span_id", 8, 0, why, whylen);
}

void otlp_validate(otlp_request *req)
{
    char why[96];
    size_t items = 0;
    if (req->msg == NULL)
        return;
    if (req->signal == OTLP_TRACES) {
        trace_req *r = (trace_req *)req->msg;
        for (size_t i = 0; i < r->n_resource_spans; i++)
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
                Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = r->resource_spans[i]->scope_spans[j];
                size_t w = 0;
                for (size_t k = 0; k < ss->n_spans; k++) {
                    if (span_invalid(ss->spans[k], why, sizeof(why)))
                        note_reject(req, 1, "span", k, j, i, why);
                    else
                        ss->spans[w++] = ss->spans[k];
                }
                ss->n_spans = w;
                items += w;
            }
    } else if (req->signal == OTLP_METRICS) {
        metrics_req *r = (metrics_req *)req->msg;
        for (size_t i = 0; i < r->n_resource_metrics; i++)
            for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
                Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                    r->resource_metrics[i]->scope_metrics[j];
                size_t w = 0;
                for (size_t k = 0; k < sm->n_metrics; k++) {
                    size_t points = otlp_metric_points((const ProtobufCMessage *)sm->metrics[k]);
                    if (metric_invalid(sm->metrics[k], why, sizeof(why))) {
                        /* A metric without points still counts once, so
                         * the client hears that something was dropped. */
                        note_reject(req, points ? points : 1, "metric", k, j, i, why);
                    } else {
                        sm->metrics[w++] = sm->metrics[k];
                        items += points;
                    }
                }
                sm->n_metrics = w;
            }
    } else if (req->signal == OTLP_LOGS) {
        logs_req *r = (logs_req *)req->msg;
        for (size_t i = 0; i < r->n_resource_logs; i++)
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++) {
                Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = r->resource_logs[i]->scope_logs[j];
                size_t w = 0;
                for (size_t k = 0; k < sl->n_log_records; k++) {
                    if (log_invalid(sl->log_records[k], why, sizeof(why)))
                        note_reject(req, 1, "log record", k, j, i, why);
                    else
                        sl->log_records[w++] = sl->log_records[k];
                }
                sl->n_log_records = w;
                items += w;
            }
    }
    req->items = items;
}

/* ---- decode ---- */

int otlp_decode(otlp_signal sig, otlp_encoding enc, const uint8_t *data, size_t len, arena *a,
                otlp_request *out, char *err, size_t errlen)
{
    static const uint8_t empty[1];
    const ProtobufCMessageDescriptor *desc = otlp_request_descriptor(sig);
    memset(out, 0, sizeof(*out));
    out->signal = sig;
    if (desc == NULL) {
        snprintf(err, errlen, "unknown signal");
        return -1;
    }
    if (data == NULL)
        data = empty;
    ProtobufCMessage *msg = NULL;
    if (enc == OTLP_JSON) {
        if (otlp_json_decode(desc, data, len, a, &msg, err, errlen) != 0)
            return -1;
    } else {
        if (pb_prescan(desc, data, len, err, errlen) != 0)
            return -1;
        ProtobufCAllocator al = arena_protobuf_allocator(a);
        msg = protobuf_c_message_unpack(desc, &al, len, data);
        if (msg == NULL) {
            snprintf(err, errlen, "%s",
                     arena_failed(a) ? OTLP_ERR_TOO_LARGE : "invalid protobuf: malformed message");
            return -1;
        }
    }
    out->msg = msg;
    out->items = otlp_count_items(sig, msg);
    return 0;
}

/* ---- responses ---- */

static int encode_message(const ProtobufCMessage *m, otlp_encoding enc, buf *out)
{
    if (enc == OTLP_JSON)
        return otlp_encode_json(m, out);
    size_t n = protobuf_c_message_get_packed_size(m);
    if (buf_reserve(out, n) != 0)
        return -1;
    out->len += protobuf_c_message_pack(m, (uint8_t *)out->data + out->len);
    return 0;
}

int otlp_encode_response(otlp_signal sig, otlp_encoding enc, uint64_t rejected, const char *message,
                         buf *out)
{
    int partial = rejected > 0 || (message != NULL && message[0] != '\0');
    int64_t count = rejected > INT64_MAX ? INT64_MAX : (int64_t)rejected;
    /* protobuf-c's string fields are not const; packing does not write them. */
    char *text = (char *)(message ? message : "");
    switch (sig) {
    case OTLP_TRACES: {
        Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
        Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
        ps.rejected_spans = count;
        ps.error_message = text;
        r.partial_success = partial ? &ps : NULL;
        return encode_message(&r.base, enc, out);
    }
    case OTLP_METRICS: {
        Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsPartialSuccess ps =
            OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
        Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
        ps.rejected_data_points = count;
        ps.error_message = text;
        r.partial_success = partial ? &ps : NULL;
        return encode_message(&r.base, enc, out);
    }
    case OTLP_LOGS: {
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsPartialSuccess ps =
            OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
        ps.rejected_log_records = count;
        ps.error_message = text;
        r.partial_success = partial ? &ps : NULL;
        return encode_message(&r.base, enc, out);
    }
    default:
        return -1;
    }
}

int otlp_encode_status(otlp_encoding enc, int32_t code, const char *message, buf *out)
{
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = code;
    st.message = (char *)(message ? message : "");
    return encode_message(&st.base, enc, out);
}
