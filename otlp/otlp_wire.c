/* The one-pass scan of otlp_wire.h. It walks the bytes with the generated
 * descriptors and an explicit stack (as pb_prescan does), holds every known
 * field to the wire types protobuf-c's unpack requires, and checks the few
 * fields otlp_validate looks at, in the items that carry them: spans, log
 * records and metrics (which never nest inside one another, so one item
 * state suffices). Where protobuf-c keeps the last of a repeated singular
 * field, so does the scan. */
#include "otlp_wire.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common.pb-c.h"
#include "logs.pb-c.h"
#include "metrics.pb-c.h"
#include "otlp.h"
#include "trace.pb-c.h"

typedef enum { K_OTHER, K_SPAN, K_LOG, K_METRIC, K_POINTS, K_STATUS } frame_kind;

/* The descriptors as a graph built once: each message type's fields by
 * number (OTLP's are all below WIRE_DIRECT) with what the scan needs of
 * them in 4 bytes, so the scan indexes a small array where protobuf-c
 * would search, and the whole graph (a few KB) stays in the L1 cache while
 * the tail sampler churns through memory beside it. */
#define WIRE_DIRECT 32
#define WIRE_NODES 96
_Static_assert(WIRE_NODES <= 256, "wire_field.child is a byte");

enum {
    WF_KNOWN = 1 << 0,    /* a field of this message */
    WF_REPEATED = 1 << 1,
    WF_ONEOF = 1 << 2,
    WF_VARINT = 1 << 3,   /* wire type 0 */
    WF_I64 = 1 << 4,      /* wire type 1 */
    WF_I32 = 1 << 5,      /* wire type 5 */
    WF_MESSAGE = 1 << 6,  /* wire type 2, descended into */
    WF_BYTES = 1 << 7,    /* wire type 2, a string or bytes */
};

typedef struct wire_field {
    uint8_t flags; /* WF_* */
    uint8_t child; /* message fields: index in nodes */
    uint8_t type;  /* ProtobufCType, for packed repeated scalars */
} wire_field;

typedef struct wire_node {
    wire_field by_id[WIRE_DIRECT];
    uint8_t kind; /* K_SPAN, K_LOG, K_METRIC, K_STATUS (a span's) or K_OTHER */
    const ProtobufCMessageDescriptor *desc;
} wire_node;

static wire_node nodes[WIRE_NODES];
static size_t n_nodes;
static const wire_node *roots[OTLP_SIGNAL_COUNT];
static const wire_node *kv_node; /* KeyValue: kv_plain's shortcut */
static pthread_once_t graph_once = PTHREAD_ONCE_INIT;

static int varint_type(ProtobufCType t);
static int fixed_type(ProtobufCType t, size_t width);

/* What the scan needs of field f (NULL: unknown to the message). */
static wire_field field_of(const ProtobufCFieldDescriptor *f)
{
    wire_field w = {0, 0, 0};
    if (f == NULL)
        return w;
    w.flags = WF_KNOWN | (f->label == PROTOBUF_C_LABEL_REPEATED ? WF_REPEATED : 0) |
              (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF ? WF_ONEOF : 0) |
              (varint_type(f->type) ? WF_VARINT : 0) | (fixed_type(f->type, 8) ? WF_I64 : 0) |
              (fixed_type(f->type, 4) ? WF_I32 : 0) | (f->type == PROTOBUF_C_TYPE_MESSAGE ? WF_MESSAGE : 0) |
              (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES ? WF_BYTES : 0);
    w.type = (uint8_t)f->type;
    return w;
}

static size_t graph_node(const ProtobufCMessageDescriptor *desc)
{
    for (size_t i = 0; i < n_nodes; i++)
        if (nodes[i].desc == desc)
            return i;
    if (n_nodes == WIRE_NODES)
        abort(); /* the schema outgrew WIRE_NODES: a build-time fact, caught by every test */
    size_t idx = n_nodes++;
    nodes[idx].desc = desc;
    nodes[idx].kind = desc == &opentelemetry__proto__trace__v1__span__descriptor         ? K_SPAN
                      : desc == &opentelemetry__proto__logs__v1__log_record__descriptor  ? K_LOG
                      : desc == &opentelemetry__proto__metrics__v1__metric__descriptor   ? K_METRIC
                      : desc == &opentelemetry__proto__trace__v1__status__descriptor     ? K_STATUS
                                                                                         : K_OTHER;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (f->id >= WIRE_DIRECT)
            continue; /* looked up by protobuf-c at scan time */
        wire_field w = field_of(f);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            w.child = (uint8_t)graph_node(f->descriptor); /* nodes[] is not moved: idx stays valid */
        nodes[idx].by_id[f->id] = w;
    }
    return idx;
}

static void graph_build(void)
{
    for (int s = 0; s < OTLP_SIGNAL_COUNT; s++)
        roots[s] = &nodes[graph_node(otlp_request_descriptor((otlp_signal)s))];
    kv_node = &nodes[graph_node(&opentelemetry__proto__common__v1__key_value__descriptor)];
}

typedef struct frame {
    const wire_node *node;
    size_t end;
    frame_kind kind;
    uint32_t merged; /* singular message fields seen in this message, by number */
} frame;

/* The span, log record or metric being scanned. */
typedef struct item_state {
    size_t id_len[3];    /* trace id, span id, parent span id (spans) */
    int id_nonzero[3];
    size_t name_len;     /* metric name */
    uint32_t data_field; /* metric's oneof data field, 0 when none */
    size_t points, cur_points;
} item_state;

enum { ID_TRACE, ID_SPAN, ID_PARENT };

/* A varint of at most `max` bytes inside [pos, end); its length, 0 if bad. */
static size_t varint_len(const uint8_t *d, size_t pos, size_t end, size_t max)
{
    for (size_t i = 0; i < max && pos + i < end; i++)
        if ((d[pos + i] & 0x80) == 0)
            return i + 1;
    return 0;
}

/* A metric's data fields (gauge, sum, histogram, exponential histogram,
 * summary) hold its points; other frames are what their message is. */
static frame_kind kind_of(frame_kind parent, uint32_t tag, const wire_node *child)
{
    if (parent == K_METRIC && (tag == 5 || tag == 7 || tag == 9 || tag == 10 || tag == 11))
        return K_POINTS;
    return (frame_kind)child->kind;
}

/* A packed repeated scalar field's bytes, as protobuf-c counts and reads
 * them: fixed-size elements must divide the length, varints must each end. */
static int packed_ok(ProtobufCType type, const uint8_t *d, size_t len)
{
    switch (type) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return len % 4 == 0;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return len % 8 == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return 1;
    default:
        for (size_t pos = 0; pos < len;) {
            size_t n = varint_len(d, pos, len, 10);
            if (n == 0)
                return 0;
            pos += n;
        }
        return 1;
    }
}

static int varint_type(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_ENUM || t == PROTOBUF_C_TYPE_INT32 || t == PROTOBUF_C_TYPE_UINT32 ||
           t == PROTOBUF_C_TYPE_SINT32 || t == PROTOBUF_C_TYPE_INT64 || t == PROTOBUF_C_TYPE_UINT64 ||
           t == PROTOBUF_C_TYPE_SINT64 || t == PROTOBUF_C_TYPE_BOOL;
}

static int fixed_type(ProtobufCType t, size_t width)
{
    if (width == 4)
        return t == PROTOBUF_C_TYPE_SFIXED32 || t == PROTOBUF_C_TYPE_FIXED32 || t == PROTOBUF_C_TYPE_FLOAT;
    return t == PROTOBUF_C_TYPE_SFIXED64 || t == PROTOBUF_C_TYPE_FIXED64 || t == PROTOBUF_C_TYPE_DOUBLE;
}

static void note_bytes(item_state *st, frame_kind k, uint32_t tag, const uint8_t *v, size_t n)
{
    int which = -1;
    if (k == K_SPAN)
        which = tag == 1 ? ID_TRACE : tag == 2 ? ID_SPAN : tag == 4 ? ID_PARENT : -1;
    else if (k == K_LOG)
        which = tag == 9 ? ID_TRACE : tag == 10 ? ID_SPAN : -1;
    else if (k == K_METRIC && tag == 1)
        st->name_len = n > 0 && v[0] != 0 ? n : 0; /* the decoder's C string: empty if it starts with NUL */
    if (which < 0)
        return;
    st->id_len[which] = n;
    st->id_nonzero[which] = 0;
    for (size_t i = 0; i < n && !st->id_nonzero[which]; i++)
        st->id_nonzero[which] = v[i] != 0;
}

/* An item (or a metric's data) ends: 0 when otlp_validate would drop it. */
static int item_done(item_state *st, frame_kind k, size_t *items)
{
    switch (k) {
    case K_SPAN:
        if (st->id_len[ID_TRACE] != 16 || !st->id_nonzero[ID_TRACE] || st->id_len[ID_SPAN] != 8 ||
            !st->id_nonzero[ID_SPAN] || (st->id_len[ID_PARENT] != 0 && st->id_len[ID_PARENT] != 8))
            return 0;
        (*items)++;
        return 1;
    case K_LOG:
        if ((st->id_len[ID_TRACE] != 0 && st->id_len[ID_TRACE] != 16) ||
            (st->id_len[ID_SPAN] != 0 && st->id_len[ID_SPAN] != 8))
            return 0;
        (*items)++;
        return 1;
    case K_METRIC:
        if (st->name_len == 0 || st->data_field == 0)
            return 0;
        *items += st->points;
        return 1;
    case K_POINTS:
        st->points = st->cur_points; /* the last of the oneof's fields wins */
        return 1;
    default:
        return 1;
    }
}

static void item_start(item_state *st, frame_kind k, uint32_t tag)
{
    if (k == K_POINTS) {
        st->data_field = tag;
        st->cur_points = 0;
    } else if (k != K_OTHER && k != K_STATUS) { /* a status is part of its span */
        memset(st, 0, sizeof(*st));
    }
}

size_t otlp_wire_spans_cap(size_t len)
{
    return len / 29 + 1;
}

/* A varint known to end within 10 bytes at d: its low 32 bits, as
 * protobuf-c reads an enum. */
static uint32_t varint_low32(const uint8_t *d, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 5; i++)
        v |= (uint64_t)(d[i] & 0x7f) << (7 * i);
    return (uint32_t)v;
}

static uint64_t load_le64(const uint8_t *d)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | d[i];
    return v;
}

/* A valid span's note, kept when there is room. */
static void note_span(otlp_wire_spans *spans, otlp_wire_span *note, int root)
{
    if (spans->n >= spans->cap) {
        spans->n = SIZE_MAX; /* no room: never a count of items */
        return;
    }
    note->root = (uint8_t)root;
    spans->v[spans->n++] = *note;
}

/* Attributes are most of OTLP's fields: in the benchmark's span, 40 of the
 * 49 fields the scan meets are its ten attributes'. Most are plain: a
 * KeyValue holding a short key, then an AnyValue holding one string, bool,
 * int, double or bytes. Such a KeyValue (len bytes at p) is valid, and
 * carries nothing the scan notes or counts, so it is checked here in one
 * go instead of field by field with two frames. Anything else (a long key,
 * an array, a repeated or reordered field, an unknown one) returns 0 and
 * takes the general path, which then accepts or refuses it as it always
 * did. */
static int kv_plain(const uint8_t *p, size_t len)
{
    if (len < 4 || p[0] != 0x0a /* 1: key */ || p[1] >= 0x80 || (size_t)p[1] + 4 > len)
        return 0;
    const uint8_t *q = p + 2 + p[1];
    size_t vlen = len - (size_t)(q - p) - 2;
    if (q[0] != 0x12 /* 2: value */ || q[1] >= 0x80 || q[1] != vlen)
        return 0;
    const uint8_t *v = q + 2;
    if (vlen == 0)
        return 1; /* a value with none of its oneof set */
    switch (v[0]) {
    case 0x0a: /* 1: string_value */
    case 0x3a: /* 7: bytes_value */
        return vlen >= 2 && v[1] < 0x80 && (size_t)v[1] + 2 == vlen;
    case 0x10: /* 2: bool_value */
    case 0x18: /* 3: int_value */
        return vlen >= 2 && varint_len(v, 1, vlen, 10) == vlen - 1;
    case 0x21: /* 4: double_value */
        return vlen == 9;
    default:
        return 0;
    }
}

/* The scan proper. `noting` is a constant in both callers below, which
 * take everything inline: the compiler builds the scan twice, with the
 * notes for the sampler and without a trace of them for everyone else
 * (taking them in every scan cost 4 % of its time in convert_bench). */
static inline int wire_scan(const wire_node *root, const uint8_t *d, size_t len, size_t *items,
                            otlp_wire_spans *spans, const int noting)
{
    frame stack[OTLP_MAX_DEPTH];
    item_state st;
    otlp_wire_span note = {0};
    int top = 0;
    size_t pos = 0;
    memset(&st, 0, sizeof(st));
    stack[0] = (frame){.node = root, .end = len, .kind = K_OTHER};
    for (;;) {
        while (pos == stack[top].end) {
            if (top == 0)
                return 1;
            if (!item_done(&st, stack[top].kind, items))
                return 0;
            if (noting && stack[top].kind == K_SPAN)
                note_span(spans, &note, st.id_len[ID_PARENT] == 0);
            top--;
        }
        frame *fr = &stack[top];
        /* A tag of at most 4 bytes (field numbers below 2^25; OTLP's are
         * below 20) and not 0: the decoding path takes longer ones, and
         * refuses field 0 however it is spelled. */
        const uint8_t tag_byte = d[pos];
        uint32_t tag = (d[pos] & 0x7f) >> 3;
        unsigned wire = d[pos] & 7;
        if (d[pos] < 0x80) { /* every OTLP field's tag is one byte */
            pos++;
        } else {
            size_t tl = varint_len(d, pos, fr->end, 4);
            if (tl == 0)
                return 0;
            for (size_t i = 1; i < tl; i++)
                tag |= (uint32_t)(d[pos + i] & 0x7f) << (4 + 7 * (i - 1));
            pos += tl;
        }
        if (tag == 0)
            return 0;
        /* Fields numbered past the graph (none in OTLP today) are looked
         * up; a message among them is left to the decoder below. */
        wire_field far;
        int direct = tag < WIRE_DIRECT;
        if (!direct)
            far = field_of(protobuf_c_message_descriptor_get_field(fr->node->desc, tag));
        const wire_field *wf = direct ? &fr->node->by_id[tag] : &far;
        unsigned fl = wf->flags;
        size_t n;
        switch (wire) {
        case 0:
            if ((n = varint_len(d, pos, fr->end, 10)) == 0 || (fl != 0 && !(fl & WF_VARINT)))
                return 0;
            if (noting && fr->kind == K_STATUS && tag == 3)
                note.code = varint_low32(d + pos, n);
            pos += n;
            break;
        case 1:
        case 5:
            n = wire == 1 ? 8 : 4;
            if (fr->end - pos < n || (fl != 0 && !(fl & (wire == 1 ? WF_I64 : WF_I32))))
                return 0;
            if (noting && fr->kind == K_SPAN && (tag == 7 || tag == 8) && wire == 1)
                *(tag == 7 ? &note.start : &note.end) = load_le64(d + pos);
            pos += n;
            break;
        case 2: {
            uint64_t v;
            if (pos < fr->end && d[pos] < 0x80) { /* lengths below 128: most of them */
                v = d[pos++];
            } else {
                size_t hl = varint_len(d, pos, fr->end, 5);
                if (hl == 0)
                    return 0;
                v = 0;
                for (size_t i = 0; i < hl; i++)
                    v |= (uint64_t)(d[pos + i] & 0x7f) << (7 * i);
                pos += hl;
            }
            if (v > INT_MAX || v > fr->end - pos)
                return 0;
            n = (size_t)v;
            if (fl == 0 || (fl & WF_BYTES)) {
                if (fl != 0)
                    note_bytes(&st, fr->kind, tag, d + pos, n);
                if (noting && fr->kind == K_SPAN && tag == 1)
                    note.trace_at = (uint32_t)pos; /* noting: the request is below 4 GiB */
                pos += n;
                break;
            }
            if (!(fl & WF_MESSAGE)) {
                /* Packed repeated scalars; a singular scalar as bytes is
                 * left to the decoder. */
                if (!(fl & WF_REPEATED) || !packed_ok((ProtobufCType)wf->type, d + pos, n))
                    return 0;
                pos += n;
                break;
            }
            if (top + 1 >= OTLP_MAX_DEPTH || !direct)
                return 0; /* too deep, or a message field numbered past the graph: the decoder's */
            /* A singular message field sent twice is merged by protobuf-c,
             * which can fail (two values with their oneof unset): left to
             * the decoder. A oneof's fields replace each other instead. */
            if (!(fl & WF_REPEATED) && !(fl & WF_ONEOF)) {
                if (fr->merged & (1u << tag))
                    return 0;
                fr->merged |= 1u << tag;
            }
            if (fr->kind == K_POINTS && tag == 1)
                st.cur_points++;
            const wire_node *child = &nodes[wf->child];
            /* The general path would push two frames for it: the same depth
             * limit. A repeated field's entries come together, so the next
             * field is most likely another attribute of this list: one with
             * the same one-byte tag and a one-byte length would take this
             * same branch, and is taken here. */
            if (child == kv_node && top + 2 < OTLP_MAX_DEPTH && kv_plain(d + pos, n)) {
                pos += n;
                while (tag_byte < 0x80 && fr->end - pos >= 2 && d[pos] == tag_byte && d[pos + 1] < 0x80 &&
                       d[pos + 1] <= fr->end - pos - 2 && kv_plain(d + pos + 2, d[pos + 1]))
                    pos += 2 + (size_t)d[pos + 1];
                break;
            }
            frame_kind k = kind_of(fr->kind, tag, child);
            item_start(&st, k, tag);
            if (noting && k == K_SPAN)
                note = (otlp_wire_span){0};
            stack[++top] = (frame){.node = child, .end = pos + n, .kind = k};
            break;
        }
        default:
            return 0;
        }
    }
}

static __attribute__((flatten, noinline)) int scan_plain(const wire_node *root, const uint8_t *d, size_t len,
                                                          size_t *items)
{
    return wire_scan(root, d, len, items, NULL, 0);
}

static __attribute__((flatten, noinline)) int scan_noting(const wire_node *root, const uint8_t *d, size_t len,
                                                           size_t *items, otlp_wire_spans *spans)
{
    return wire_scan(root, d, len, items, spans, 1);
}

int otlp_wire_scan(otlp_signal sig, const uint8_t *d, size_t len, size_t *items, otlp_wire_spans *spans)
{
    *items = 0;
    if (spans != NULL)
        spans->n = 0;
    if ((unsigned)sig >= OTLP_SIGNAL_COUNT || (len > 0 && d == NULL))
        return 0;
    pthread_once(&graph_once, graph_build);
    if (spans != NULL && sig == OTLP_TRACES && len <= UINT32_MAX)
        return scan_noting(roots[sig], d, len, items, spans);
    return scan_plain(roots[sig], d, len, items); /* n stays 0: nothing noted */
}
