/*
 * One AMQP channel of a connection: its phase, and the publish being
 * assembled from its method, content header and body frames. Owned by the
 * session of its connection (net/session.c); the connection's shard alone
 * touches it.
 */
#ifndef RINGMQ_NET_CHANNEL_H
#define RINGMQ_NET_CHANNEL_H

#include "core/limits.h"
#include "net/amqp_frame.h"
#include "net/amqp_props.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    CHANNEL_CLOSED = 0,
    CHANNEL_OPEN,
    CHANNEL_CLOSING, /* we sent channel.close; waiting for close-ok */
} channel_phase;

typedef enum {
    PUBLISH_IDLE = 0,   /* expect a method frame */
    PUBLISH_HEADER = 1, /* basic.publish seen: expect its content header */
    PUBLISH_BODY = 2,   /* header seen: expect body frames up to body_size */
} publish_state;

/* A publish between its method frame and its last body frame. The method's
 * names and the properties are copied (their frames may live in receive
 * buffers already given back); the body is gathered once into body. */
typedef struct {
    publish_state state;
    bool mandatory;
    uint8_t exchange_len;
    uint8_t routing_key_len;
    char exchange[LIMIT_SHORTSTR_BYTES_MAX];
    char routing_key[LIMIT_SHORTSTR_BYTES_MAX];
    amqp_content_header header; /* slices into props */
    uint8_t *props;             /* copy of the raw properties */
    uint32_t props_capacity;
    uint8_t *body;              /* body_size bytes, allocated at the header */
    uint64_t body_received;
} channel_publish;

typedef struct session_channel {
    channel_phase phase;
    uint16_t id;
    channel_publish pub;
} session_channel;

#endif
