/*
 * Basic content-header properties and the content header frame payload,
 * generated from AMQP_BASIC_PROPS (net/amqp_props.h) with the cursors of
 * net/amqp_cursor.h. The broker's path, amqp_content_header_decode(),
 * validates the whole property list (a malformed header must close the
 * connection even if the broker would not read the bad field) but copies
 * nothing: it keeps the raw flags+list bytes for forwarding and slices of
 * the few properties routing and queueing read.
 */
#include "net/amqp_props.h"

#include <string.h>

#include "core/assert.h"
#include "net/amqp_cursor.h"

enum { CONTENT_HEADER_FIXED_BYTES = 12 }; /* class-id, weight, body-size */

#define DEC_PROP(F, bit, type, field)                                                              \
    if (out->flags & AMQP_PROP_##F) rd_##type(&r, &out->field);

bool amqp_props_decode(const uint8_t *raw, size_t len, amqp_basic_props *out, amqp_error *err)
{
    ASSERT(raw != NULL || len == 0);
    ASSERT(out != NULL);
    if (len < 2)
        return amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, AMQP_BASIC_CLASS_ID, 0,
                              "truncated property flags");
    memset(out, 0, sizeof(*out));
    out->flags = amqp_wire_get_u16(raw);
    if (out->flags & ~AMQP_PROP_ALL)
        return amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, AMQP_BASIC_CLASS_ID, 0,
                              "property flags continuation or reserved bit set");
    amqp_reader r = {.p = raw + 2, .end = raw + len, .why = NULL, .bit_n = AMQP_BITS_NONE};
    AMQP_BASIC_PROPS(DEC_PROP)
    if (r.why != NULL)
        return amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, AMQP_BASIC_CLASS_ID, 0, r.why);
    if (r.p != r.end)
        return amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, AMQP_BASIC_CLASS_ID, 0,
                              "trailing bytes after properties");
    return true;
}

#undef DEC_PROP

#define SZ_PROP(F, bit, type, field)                                                               \
    if (p->flags & AMQP_PROP_##F) sz_##type(&s, p->field);

size_t amqp_props_size(const amqp_basic_props *p)
{
    ASSERT(p != NULL);
    ASSERT((p->flags & ~AMQP_PROP_ALL) == 0);
    amqp_sizer s = {.n = 2, .bit_n = AMQP_BITS_NONE};
    AMQP_BASIC_PROPS(SZ_PROP)
    ASSERT(s.n >= 2);
    return s.n;
}

#undef SZ_PROP

#define ENC_PROP(F, bit, type, field)                                                              \
    if (p->flags & AMQP_PROP_##F) wr_##type(&w, p->field);

ssize_t amqp_props_encode(const amqp_basic_props *p, uint8_t *out, size_t cap, amqp_error *err)
{
    ASSERT(p != NULL);
    ASSERT(out != NULL || cap == 0);
    if (p->flags & ~AMQP_PROP_ALL) {
        amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, AMQP_BASIC_CLASS_ID, 0,
                       "property flags continuation or reserved bit set");
        return -1;
    }
    amqp_writer w = {.p = out, .end = out + cap, .bit_n = AMQP_BITS_NONE};
    wr_short(&w, p->flags);
    AMQP_BASIC_PROPS(ENC_PROP)
    if (w.bad_shortstr) {
        amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, AMQP_BASIC_CLASS_ID, 0,
                       "shortstr longer than 255 bytes");
        return -1;
    }
    if (w.no_space) {
        amqp_error_set(err, AMQP_REPLY_INTERNAL_ERROR, AMQP_BASIC_CLASS_ID, 0, "no space");
        return -1;
    }
    ASSERT((size_t)(w.p - out) == amqp_props_size(p));
    return w.p - out;
}

#undef ENC_PROP

bool amqp_content_header_decode(const uint8_t *payload, size_t len, amqp_content_header *out,
                                amqp_error *err)
{
    ASSERT(payload != NULL || len == 0);
    ASSERT(out != NULL);
    if (len < CONTENT_HEADER_FIXED_BYTES + 2)
        return amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, 0, 0, "truncated content header");
    uint16_t class_id = amqp_wire_get_u16(payload);
    if (class_id != AMQP_BASIC_CLASS_ID)
        return amqp_error_set(err, AMQP_REPLY_UNEXPECTED_FRAME, class_id, 0,
                              "content header for a class without content");
    /* payload[2..4) is the weight: unused, ignored as RabbitMQ does. */
    amqp_basic_props props;
    ASSERT(len <= UINT32_MAX);
    const uint8_t *raw = payload + CONTENT_HEADER_FIXED_BYTES;
    size_t raw_len = len - CONTENT_HEADER_FIXED_BYTES;
    if (!amqp_props_decode(raw, raw_len, &props, err)) return false;
    out->class_id = class_id;
    out->body_size = amqp_wire_get_u64(payload + 4);
    out->props_raw = (amqp_bytes){.data = raw, .len = (uint32_t)raw_len};
    out->flags = props.flags;
    out->delivery_mode = props.delivery_mode;
    out->priority = props.priority;
    out->expiration = props.expiration;
    out->reply_to = props.reply_to;
    out->user_id = props.user_id;
    out->headers = props.headers;
    ASSERT(out->props_raw.len >= 2);
    return true;
}
