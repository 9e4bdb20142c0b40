/*
 * Headers exchange matching (rabbit_exchange_type_headers) and the sorted
 * argument tables it depends on. RabbitMQ keysorts binding arguments when a
 * binding is added and message headers when a message is routed, then walks
 * both lists in one merge; this file does the same so that even duplicate
 * keys behave as they do there. Values compare as Erlang's == compares the
 * decoded terms: integers of any wire type and floats by numeric value,
 * 'S' and 'x' strings by bytes, decimals, booleans and void by value, and
 * nested arrays and tables by their encoded bytes (types included).
 * Nothing here allocates on the publish path; headers beyond
 * LIMIT_ROUTE_HEADERS_SORTED_MAX are matched by lookup instead of merge.
 */
#include "route/route_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

int route__bytes_compare(amqp_bytes a, amqp_bytes b)
{
    uint32_t n = a.len < b.len ? a.len : b.len;
    int c = n == 0 ? 0 : memcmp(a.data, b.data, n);
    if (c != 0) return c;
    return (a.len > b.len) - (a.len < b.len);
}

/* Stable insertion sort by key (lists:keysort is stable). */
static void entries_sort(route_header_entry *e, uint32_t *order_raw, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        route_header_entry cur = e[i];
        uint32_t cur_raw = order_raw != NULL ? order_raw[i] : 0;
        uint32_t j = i;
        while (j > 0 && route__bytes_compare(e[j - 1].key, cur.key) > 0) {
            e[j] = e[j - 1];
            if (order_raw != NULL) order_raw[j] = order_raw[j - 1];
            j--;
        }
        e[j] = cur;
        if (order_raw != NULL) order_raw[j] = cur_raw;
    }
}

/* Decodes up to cap entries of t into e; returns the entry count (which may
 * exceed cap: then only cap were written). raw_off, when given, receives
 * each entry's offset in t and raw_len its encoded length. */
static uint32_t entries_read(amqp_table t, route_header_entry *e, uint32_t cap, uint32_t *raw_off,
                             uint32_t *raw_len)
{
    amqp_table_iter it;
    amqp_table_iter_init(&it, t);
    uint32_t n = 0;
    amqp_bytes key;
    amqp_field value;
    const uint8_t *start = it.pos;
    while (amqp_table_iter_next(&it, &key, &value)) {
        if (n < cap) {
            e[n].key = key;
            e[n].value = value;
            if (raw_off != NULL) raw_off[n] = (uint32_t)(start - t.data);
            if (raw_len != NULL) raw_len[n] = (uint32_t)(it.pos - start);
        }
        n++;
        start = it.pos;
    }
    return n;
}

uint8_t *route__args_sorted_copy(amqp_table t, uint32_t *len_out)
{
    ASSERT(len_out != NULL);
    *len_out = t.len;
    if (t.len == 0) return NULL;
    uint32_t n = amqp_table_count(t);
    route_header_entry *e = calloc(n, sizeof(*e));
    uint32_t *off = calloc(n, sizeof(*off));
    uint32_t *len = calloc(n, sizeof(*len));
    uint32_t *order = calloc(n, sizeof(*order));
    uint8_t *out = malloc(t.len);
    ASSERT(e != NULL && off != NULL && len != NULL && order != NULL && out != NULL);
    uint32_t read = entries_read(t, e, n, off, len);
    ASSERT(read == n);
    for (uint32_t i = 0; i < n; i++) order[i] = i;
    entries_sort(e, order, n);
    uint32_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(out + pos, t.data + off[order[i]], len[order[i]]);
        pos += len[order[i]];
    }
    ASSERT(pos == t.len);
    free(e);
    free(off);
    free(len);
    free(order);
    return out;
}

/* --- x-match ----------------------------------------------------------- */

static const char *const xmatch_names[] = {
    [ROUTE_XMATCH_ALL] = "all",
    [ROUTE_XMATCH_ANY] = "any",
    [ROUTE_XMATCH_ALL_WITH_X] = "all-with-x",
    [ROUTE_XMATCH_ANY_WITH_X] = "any-with-x",
};

static bool xmatch_parse(amqp_bytes v, route_xmatch *out)
{
    for (uint32_t i = 0; i < ARRAY_LEN(xmatch_names); i++) {
        if (amqp_bytes_equal(v, amqp_cstr(xmatch_names[i]))) {
            *out = (route_xmatch)i;
            return true;
        }
    }
    return false;
}

/* ~tp of a decoded scalar, enough for validate_binding's reply text. */
static void field_print(const amqp_field *f, char *out, size_t cap)
{
    switch (f->type) {
    case AMQP_FIELD_LONGSTR:
    case AMQP_FIELD_BYTES: snprintf(out, cap, "<<\"%.*s\">>", ROUTE_BYTES_FMT(f->v.bytes)); break;
    case AMQP_FIELD_BOOL: snprintf(out, cap, "%s", f->v.boolean ? "true" : "false"); break;
    case AMQP_FIELD_INT8: snprintf(out, cap, "%d", f->v.i8); break;
    case AMQP_FIELD_UINT8: snprintf(out, cap, "%u", f->v.u8); break;
    case AMQP_FIELD_INT16: snprintf(out, cap, "%d", f->v.i16); break;
    case AMQP_FIELD_UINT16: snprintf(out, cap, "%u", f->v.u16); break;
    case AMQP_FIELD_INT32: snprintf(out, cap, "%" PRId32, f->v.i32); break;
    case AMQP_FIELD_UINT32: snprintf(out, cap, "%" PRIu32, f->v.u32); break;
    case AMQP_FIELD_INT64: snprintf(out, cap, "%" PRId64, f->v.i64); break;
    case AMQP_FIELD_TIMESTAMP: snprintf(out, cap, "%" PRIu64, f->v.timestamp_s); break;
    case AMQP_FIELD_VOID: snprintf(out, cap, "undefined"); break;
    default: snprintf(out, cap, "..."); break;
    }
}


bool route__headers_validate(route_vhost *vh, amqp_table args, route_error *err)
{
    ASSERT(vh != NULL);
    amqp_field f;
    if (!amqp_table_get(args, amqp_cstr("x-match"), &f)) return true;
    route_xmatch kind;
    char v[LIMIT_ROUTE_ERROR_TEXT_BYTES];
    field_print(&f, v, sizeof(v));
    if (f.type != AMQP_FIELD_LONGSTR)
        return route__fail(err, AMQP_REPLY_PRECONDITION_FAILED,
                           "Invalid x-match field type %s (value %s); expected longstr",
                           amqp_field_type_name(f.type), v);
    if (!xmatch_parse(f.v.bytes, &kind))
        return route__fail(err, AMQP_REPLY_PRECONDITION_FAILED,
                           "Invalid x-match field value %s; expected all, any, all-with-x, or "
                           "any-with-x",
                           v);
    return true;
}

void route__headers_prepare(route_binding *b)
{
    ASSERT(b != NULL && b->pattern == NULL);
    amqp_table args = {b->args, b->args_len};
    amqp_field f;
    route_xmatch kind = ROUTE_XMATCH_ALL; /* RabbitMQ's default, also for odd values */
    if (amqp_table_get(args, amqp_cstr("x-match"), &f) && f.type == AMQP_FIELD_LONGSTR &&
        !xmatch_parse(f.v.bytes, &kind))
        kind = ROUTE_XMATCH_ALL;
    b->xmatch = (uint8_t)kind;
    b->pattern_count = amqp_table_count(args);
    if (b->pattern_count == 0) return;
    b->pattern = calloc(b->pattern_count, sizeof(*b->pattern));
    ASSERT(b->pattern != NULL);
    uint32_t n = entries_read(args, b->pattern, b->pattern_count, NULL, NULL);
    ASSERT(n == b->pattern_count); /* args are stored sorted already */
}

/* --- value comparison -------------------------------------------------- */

typedef enum { NUM_NONE, NUM_INT, NUM_FLOAT } num_kind;

static num_kind field_number(const amqp_field *f, __int128 *i, double *d)
{
    switch (f->type) {
    case AMQP_FIELD_INT8: *i = f->v.i8; return NUM_INT;
    case AMQP_FIELD_UINT8: *i = f->v.u8; return NUM_INT;
    case AMQP_FIELD_INT16: *i = f->v.i16; return NUM_INT;
    case AMQP_FIELD_UINT16: *i = f->v.u16; return NUM_INT;
    case AMQP_FIELD_INT32: *i = f->v.i32; return NUM_INT;
    case AMQP_FIELD_UINT32: *i = f->v.u32; return NUM_INT;
    case AMQP_FIELD_INT64: *i = f->v.i64; return NUM_INT;
    case AMQP_FIELD_TIMESTAMP: *i = f->v.timestamp_s; return NUM_INT;
    case AMQP_FIELD_FLOAT: *d = f->v.f32; return NUM_FLOAT;
    case AMQP_FIELD_DOUBLE: *d = f->v.f64; return NUM_FLOAT;
    default: return NUM_NONE;
    }
}

/* Erlang's 1 == 1.0: an integer equals a float holding exactly its value. */
static bool int_equals_float(__int128 i, double d)
{
    if (!isfinite(d) || d != trunc(d)) return false;
    if (fabs(d) >= 0x1p100) return false; /* no AMQP integer is that large */
    return (__int128)d == i;
}

bool route__field_equal(const amqp_field *a, const amqp_field *b)
{
    ASSERT(a != NULL && b != NULL);
    __int128 ai = 0, bi = 0;
    double ad = 0, bd = 0;
    num_kind ak = field_number(a, &ai, &ad), bk = field_number(b, &bi, &bd);
    if (ak != NUM_NONE || bk != NUM_NONE) {
        if (ak == NUM_NONE || bk == NUM_NONE) return false;
        if (ak == NUM_INT && bk == NUM_INT) return ai == bi;
        if (ak == NUM_FLOAT && bk == NUM_FLOAT) return ad == bd;
        return ak == NUM_INT ? int_equals_float(ai, bd) : int_equals_float(bi, ad);
    }
    bool a_str = a->type == AMQP_FIELD_LONGSTR || a->type == AMQP_FIELD_BYTES;
    bool b_str = b->type == AMQP_FIELD_LONGSTR || b->type == AMQP_FIELD_BYTES;
    if (a_str || b_str) return a_str && b_str && amqp_bytes_equal(a->v.bytes, b->v.bytes);
    if (a->type != b->type) return false;
    switch (a->type) {
    case AMQP_FIELD_BOOL: return a->v.boolean == b->v.boolean;
    case AMQP_FIELD_VOID: return true;
    case AMQP_FIELD_DECIMAL:
        return a->v.decimal.scale == b->v.decimal.scale && a->v.decimal.value == b->v.decimal.value;
    case AMQP_FIELD_ARRAY:
        return amqp_bytes_equal((amqp_bytes){a->v.array.data, a->v.array.len},
                                (amqp_bytes){b->v.array.data, b->v.array.len});
    case AMQP_FIELD_TABLE:
        return amqp_bytes_equal((amqp_bytes){a->v.table.data, a->v.table.len},
                                (amqp_bytes){b->v.table.data, b->v.table.len});
    default: UNREACHABLE();
    }
}

/* --- matching ---------------------------------------------------------- */

static bool key_is_x(amqp_bytes k) { return k.len >= 2 && k.data[0] == 'x' && k.data[1] == '-'; }

static bool key_is_xmatch(amqp_bytes k) { return amqp_bytes_equal(k, amqp_cstr("x-match")); }

/* RabbitMQ's headers_match/5 over sorted pattern p and sorted data d. */
static bool headers_merge(const route_binding *b, const route_header_entry *d, uint32_t dn)
{
    const route_header_entry *p = b->pattern;
    uint32_t pn = b->pattern_count;
    bool is_all = b->xmatch == ROUTE_XMATCH_ALL || b->xmatch == ROUTE_XMATCH_ALL_WITH_X;
    bool with_x = b->xmatch == ROUTE_XMATCH_ALL_WITH_X || b->xmatch == ROUTE_XMATCH_ANY_WITH_X;
    bool all = true, any = false;
    uint32_t i = 0, j = 0;
    for (;;) {
        if (is_all && !all) return false;
        if (!is_all && any) return true;
        if (i == pn) return is_all ? all : any;
        amqp_bytes pk = p[i].key;
        if (key_is_xmatch(pk) || (!with_x && key_is_x(pk))) {
            i++;
            continue;
        }
        if (j == dn) { /* no more data, still pattern: false with all */
            all = false;
            i = pn;
            continue;
        }
        int c = route__bytes_compare(pk, d[j].key);
        if (c > 0) {
            j++;
        } else if (c < 0) {
            all = false;
            i++;
        } else {
            if (p[i].value.type == AMQP_FIELD_VOID || route__field_equal(&p[i].value, &d[j].value))
                any = true;
            else
                all = false;
            i++;
            j++;
        }
    }
}

/* Headers too many to sort on the stack: look each pattern key up. Same
 * result as the merge unless a key repeats in the headers. */
static bool headers_lookup(const route_binding *b, amqp_table headers)
{
    bool is_all = b->xmatch == ROUTE_XMATCH_ALL || b->xmatch == ROUTE_XMATCH_ALL_WITH_X;
    bool with_x = b->xmatch == ROUTE_XMATCH_ALL_WITH_X || b->xmatch == ROUTE_XMATCH_ANY_WITH_X;
    bool all = true, any = false;
    for (uint32_t i = 0; i < b->pattern_count; i++) {
        const route_header_entry *p = &b->pattern[i];
        if (key_is_xmatch(p->key) || (!with_x && key_is_x(p->key))) continue;
        amqp_field v;
        if (amqp_table_get(headers, p->key, &v) &&
            (p->value.type == AMQP_FIELD_VOID || route__field_equal(&p->value, &v)))
            any = true;
        else
            all = false;
    }
    return is_all ? all : any;
}

bool route__headers_match(const route_binding *b, route_ctx *ctx)
{
    ASSERT(b != NULL && ctx != NULL);
    ASSERT(ctx->headers_sorted != NULL);
    if (!ctx->headers_ready) {
        uint32_t n = entries_read(ctx->headers, ctx->headers_sorted, LIMIT_ROUTE_HEADERS_SORTED_MAX,
                                  NULL, NULL);
        if (n <= LIMIT_ROUTE_HEADERS_SORTED_MAX) {
            entries_sort(ctx->headers_sorted, NULL, n);
            ctx->headers_sorted_count = n;
        } else {
            ctx->headers_sorted_count = UINT32_MAX;
        }
        ctx->headers_ready = true;
    }
    if (ctx->headers_sorted_count == UINT32_MAX) return headers_lookup(b, ctx->headers);
    return headers_merge(b, ctx->headers_sorted, ctx->headers_sorted_count);
}
