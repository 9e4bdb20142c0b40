/*
 * Basic content-header properties (the only class with content) and the
 * content header frame payload: class-id, weight, body-size, property flags,
 * property list.
 *
 * The broker decodes a header with amqp_content_header_decode(): it validates
 * the whole property list, extracts the few fields routing and queueing need
 * and keeps the raw flags+list bytes to forward to consumers unchanged. Tools
 * and tests use the full amqp_props_decode()/amqp_props_encode().
 */
#ifndef RINGMQ_NET_AMQP_PROPS_H
#define RINGMQ_NET_AMQP_PROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/amqp_types.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { AMQP_BASIC_CLASS_ID = 60 };

/*
 * The 14 basic properties in wire order: P(FLAG, bit, type, field). Bit 15
 * comes first. Bit 0 would announce a second flags word; RabbitMQ never
 * sends one and basic has 14 properties, so bits 1 and 0 set are a 502
 * SYNTAX_ERROR.
 */
/* clang-format off */
#define AMQP_BASIC_PROPS(P) \
    P(CONTENT_TYPE,     15, shortstr,  content_type) \
    P(CONTENT_ENCODING, 14, shortstr,  content_encoding) \
    P(HEADERS,          13, table,     headers) \
    P(DELIVERY_MODE,    12, octet,     delivery_mode) /* 1 transient, 2 persistent */ \
    P(PRIORITY,         11, octet,     priority) \
    P(CORRELATION_ID,   10, shortstr,  correlation_id) \
    P(REPLY_TO,          9, shortstr,  reply_to) \
    P(EXPIRATION,        8, shortstr,  expiration) /* TTL in ms, as decimal text */ \
    P(MESSAGE_ID,        7, shortstr,  message_id) \
    P(TIMESTAMP,         6, timestamp, timestamp) /* seconds since the epoch */ \
    P(TYPE,              5, shortstr,  type) \
    P(USER_ID,           4, shortstr,  user_id) \
    P(APP_ID,            3, shortstr,  app_id) \
    P(CLUSTER_ID,        2, shortstr,  cluster_id)
/* clang-format on */

#define AMQP__PROP_FLAG(F, bit, type, field) AMQP_PROP_##F = 1u << (bit),
enum { AMQP_BASIC_PROPS(AMQP__PROP_FLAG) AMQP_PROP_ALL = 0xFFFCu };
#undef AMQP__PROP_FLAG

/* All 14 properties; a property is present iff its bit is set in flags. */
#define AMQP__PROP_MEMBER(F, bit, type, field) AMQP_CTYPE_##type field;
typedef struct amqp_basic_props {
    uint16_t flags;
    AMQP_BASIC_PROPS(AMQP__PROP_MEMBER)
} amqp_basic_props;
#undef AMQP__PROP_MEMBER

/* Decodes flags word + property list (raw[0..len)), validating all of it. */
bool amqp_props_decode(const uint8_t *raw, size_t len, amqp_basic_props *out, amqp_error *err);
/* Exact encoded size of flags word + property list. */
size_t amqp_props_size(const amqp_basic_props *p);
/* Encodes flags word + property list; bytes written, or -1 with *err (502
 * for a shortstr over 255 bytes or a bad flag bit, 541 "no space"). */
ssize_t amqp_props_encode(const amqp_basic_props *p, uint8_t *out, size_t cap, amqp_error *err);

/* What the broker takes from a content header frame. */
typedef struct amqp_content_header {
    uint16_t class_id;
    uint64_t body_size;
    amqp_bytes props_raw; /* flags word + property list, forwarded unchanged */
    uint16_t flags;
    uint8_t delivery_mode; /* 0 when absent */
    uint8_t priority;      /* 0 when absent */
    amqp_bytes expiration; /* empty when absent (check flags) */
    amqp_bytes reply_to;
    amqp_bytes user_id;
    amqp_table headers;
} amqp_content_header;

/*
 * Decodes a content header frame payload. Errors: 502 SYNTAX_ERROR for a
 * short payload or malformed properties; 505 UNEXPECTED_FRAME for a class
 * other than basic (no other class carries content). The weight field is
 * unused and, like RabbitMQ, ignored.
 */
bool amqp_content_header_decode(const uint8_t *payload, size_t len, amqp_content_header *out,
                                amqp_error *err);

#ifdef __cplusplus
}
#endif

#endif
