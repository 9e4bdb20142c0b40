/*
 * AMQP 0-9-1 method codec: argument structs, method ids, encode and decode,
 * all generated from the table in net/amqp_method_table.h.
 *
 * Decoding is zero-copy: shortstr/longstr arguments are slices and tables are
 * validated raw slices of the frame payload, valid as long as it is.
 */
#ifndef RINGMQ_NET_AMQP_METHOD_H
#define RINGMQ_NET_AMQP_METHOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/amqp_method_table.h"
#include "net/amqp_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Method id: (class_id << 16) | method_id, so a switch on the wire's two
 * shorts maps straight onto it. */
#define AMQP_METHOD_ID(class_id, method_id) (((uint32_t)(class_id) << 16) | (uint32_t)(method_id))

#define AMQP__ENUM(E, n, s, c, m, sync, content) AMQP_##E = AMQP_METHOD_ID(c, m),
typedef enum amqp_method_id { AMQP_METHOD_LIST(AMQP__ENUM) } amqp_method_id;
#undef AMQP__ENUM

/* One struct per method: amqp_basic_publish { ticket, exchange, ... }.
 * Methods without arguments get an empty struct (GNU C). */
#define AMQP__MEMBER(type, field) AMQP_CTYPE_##type field;
#define AMQP__STRUCT(E, n, s, c, m, sync, content)                                                 \
    typedef struct amqp_##n {                                                                      \
        AMQP_ARGS_##n(AMQP__MEMBER)                                                                \
    } amqp_##n;
AMQP_METHOD_LIST(AMQP__STRUCT)
#undef AMQP__STRUCT
#undef AMQP__MEMBER

/* A decoded (or to-be-encoded) method: the id selects the member of `a`,
 * which is named like the method (m.a.basic_publish). */
#define AMQP__UNION(E, n, s, c, m, sync, content) amqp_##n n;
typedef struct amqp_method {
    amqp_method_id id;
    union {
        AMQP_METHOD_LIST(AMQP__UNION)
    } a;
} amqp_method;
#undef AMQP__UNION

#define AMQP__COUNT(E, n, s, c, m, sync, content) +1
enum { AMQP_METHOD_COUNT = 0 AMQP_METHOD_LIST(AMQP__COUNT) };
#undef AMQP__COUNT

static inline uint16_t amqp_method_class_id(amqp_method_id id)
{
    return (uint16_t)(id >> 16);
}
static inline uint16_t amqp_method_method_id(amqp_method_id id)
{
    return (uint16_t)(id & 0xFFFF);
}

/* True if (class_id, method_id) names a method of the table. */
bool amqp_method_known(uint32_t id);
/* "basic.publish"; "?unknown" for ids not in the table. */
const char *amqp_method_name(uint32_t id);
/* The request expects a reply method (spec "synchronous"). */
bool amqp_method_is_synchronous(uint32_t id);
/* Content (header + body frames) follows the method. */
bool amqp_method_has_content(uint32_t id);
/* The i-th method of the table (0 <= i < AMQP_METHOD_COUNT), for tests and tools. */
amqp_method_id amqp_method_at(uint32_t index);

/*
 * Decodes a method frame payload (class-id, method-id, arguments).
 * Returns true and fills *out, or false and fills *err:
 *   502 SYNTAX_ERROR    truncated or malformed arguments, trailing bytes,
 *                       bad field table;
 *   503 COMMAND_INVALID unknown class or method id. RabbitMQ's framing
 *       raises unknown_method_id and the connection is closed; the spec's
 *       nearest code is COMMAND_INVALID ("invalid sequence of frames"), so
 *       that is the hard error we answer with, class/method ids echoed.
 */
bool amqp_method_decode(const uint8_t *payload, size_t len, amqp_method *out, amqp_error *err);

/* Exact size of the encoded payload (class-id, method-id, arguments). */
size_t amqp_method_size(const amqp_method *m);

/*
 * Encodes the payload into out[0..cap). Returns the bytes written, or -1 with
 * *err: 502 SYNTAX_ERROR for a shortstr over 255 bytes, 541 INTERNAL_ERROR
 * with text "no space" when cap is too small (nothing useful was written).
 */
ssize_t amqp_method_encode(const amqp_method *m, uint8_t *out, size_t cap, amqp_error *err);

#ifdef __cplusplus
}
#endif

#endif
