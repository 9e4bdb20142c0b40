/*
 * Method codec, generated from AMQP_METHOD_LIST (net/amqp_method_table.h).
 * Each method expands to one switch case that reads or writes its arguments
 * in wire order through a small cursor; the cursor carries the bit-packing
 * state (consecutive bit arguments share an octet, least significant bit
 * first, and any other type ends the run) and a sticky failure flag, so the
 * generated code has no branches of its own and the check happens once at
 * the end. Decoding never copies: strings are slices and tables validated
 * slices of the payload.
 */
#include "net/amqp_method.h"

#include <string.h>

#include "core/assert.h"
#include "core/limits.h"
#include "net/amqp_cursor.h"

/* ---- decoding ---- */

#define DEC_FIELD(type, field) rd_##type(&r, &a->field);
#define DEC_CASE(E, n, s, c, m, sync, content)                                                     \
    case AMQP_##E: {                                                                               \
        amqp_##n *a = &out->a.n;                                                                   \
        (void)a;                                                                                   \
        AMQP_ARGS_##n(DEC_FIELD) break;                                                            \
    }

bool amqp_method_decode(const uint8_t *payload, size_t len, amqp_method *out, amqp_error *err)
{
    ASSERT(payload != NULL || len == 0);
    ASSERT(out != NULL);
    if (len < 4) return amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, 0, 0, "truncated method id");
    uint16_t class_id = amqp_wire_get_u16(payload);
    uint16_t method_id = amqp_wire_get_u16(payload + 2);
    uint32_t id = AMQP_METHOD_ID(class_id, method_id);
    amqp_reader r = {.p = payload + 4, .end = payload + len, .why = NULL, .bit_n = AMQP_BITS_NONE};
    switch (id) {
        AMQP_METHOD_LIST(DEC_CASE)
    default:
        /* See amqp_method.h: unknown ids are answered with 503. */
        return amqp_error_set(err, AMQP_REPLY_COMMAND_INVALID, class_id, method_id,
                              "unknown method");
    }
    if (r.why != NULL)
        return amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, class_id, method_id, r.why);
    if (r.p != r.end)
        return amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, class_id, method_id,
                              "trailing bytes after method arguments");
    out->id = (amqp_method_id)id;
    ASSERT(r.p <= r.end);
    return true;
}

#undef DEC_CASE
#undef DEC_FIELD

/* ---- sizing ---- */

#define SZ_FIELD(type, field) sz_##type(&s, a->field);
#define SZ_CASE(E, n, str, c, m, sync, content)                                                    \
    case AMQP_##E: {                                                                               \
        const amqp_##n *a = &meth->a.n;                                                            \
        (void)a;                                                                                   \
        AMQP_ARGS_##n(SZ_FIELD) break;                                                             \
    }

size_t amqp_method_size(const amqp_method *meth)
{
    ASSERT(meth != NULL);
    ASSERT(amqp_method_known(meth->id));
    amqp_sizer s = {.n = 4, .bit_n = AMQP_BITS_NONE};
    switch (meth->id) {
        AMQP_METHOD_LIST(SZ_CASE)
    default:
        UNREACHABLE();
    }
    return s.n;
}

#undef SZ_CASE
#undef SZ_FIELD

/* ---- encoding ---- */

#define ENC_FIELD(type, field) wr_##type(&w, a->field);
#define ENC_CASE(E, n, s, c, m, sync, content)                                                     \
    case AMQP_##E: {                                                                               \
        const amqp_##n *a = &meth->a.n;                                                            \
        (void)a;                                                                                   \
        AMQP_ARGS_##n(ENC_FIELD) break;                                                            \
    }

ssize_t amqp_method_encode(const amqp_method *meth, uint8_t *out, size_t cap, amqp_error *err)
{
    ASSERT(meth != NULL);
    ASSERT(out != NULL || cap == 0);
    ASSERT(amqp_method_known(meth->id));
    uint16_t class_id = amqp_method_class_id(meth->id);
    uint16_t method_id = amqp_method_method_id(meth->id);
    amqp_writer w = {.p = out, .end = out + cap, .bit_n = AMQP_BITS_NONE};
    wr_short(&w, class_id);
    wr_short(&w, method_id);
    switch (meth->id) {
        AMQP_METHOD_LIST(ENC_CASE)
    default:
        UNREACHABLE();
    }
    if (w.bad_shortstr) {
        amqp_error_set(err, AMQP_REPLY_SYNTAX_ERROR, class_id, method_id,
                       "shortstr longer than 255 bytes");
        return -1;
    }
    if (w.no_space) {
        amqp_error_set(err, AMQP_REPLY_INTERNAL_ERROR, class_id, method_id, "no space");
        return -1;
    }
    ASSERT((size_t)(w.p - out) == amqp_method_size(meth));
    return w.p - out;
}

#undef ENC_CASE
#undef ENC_FIELD

/* ---- the table's metadata ---- */

#define NAME_CASE(E, n, s, c, m, sync, content)                                                    \
    case AMQP_##E:                                                                                 \
        return s;
#define SYNC_CASE(E, n, s, c, m, sync, content)                                                    \
    case AMQP_##E:                                                                                 \
        return sync;
#define CONTENT_CASE(E, n, s, c, m, sync, content)                                                 \
    case AMQP_##E:                                                                                 \
        return content;
#define ID_ITEM(E, n, s, c, m, sync, content) AMQP_##E,

static const amqp_method_id method_ids[] = {AMQP_METHOD_LIST(ID_ITEM)};
STATIC_ASSERT(ARRAY_LEN(method_ids) == AMQP_METHOD_COUNT, "method table count");

bool amqp_method_known(uint32_t id)
{
    return amqp_method_name(id)[0] != '?';
}

const char *amqp_method_name(uint32_t id)
{
    switch (id) {
        AMQP_METHOD_LIST(NAME_CASE)
    default:
        return "?unknown";
    }
}

bool amqp_method_is_synchronous(uint32_t id)
{
    ASSERT(amqp_method_known(id));
    switch (id) {
        AMQP_METHOD_LIST(SYNC_CASE)
    default:
        return false;
    }
}

bool amqp_method_has_content(uint32_t id)
{
    ASSERT(amqp_method_known(id));
    switch (id) {
        AMQP_METHOD_LIST(CONTENT_CASE)
    default:
        return false;
    }
}

amqp_method_id amqp_method_at(uint32_t index)
{
    ASSERT(index < AMQP_METHOD_COUNT);
    amqp_method_id id = method_ids[index];
    ASSERT(amqp_method_known(id));
    return id;
}
