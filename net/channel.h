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
    PUBLISH_PAUSED = 3, /* complete, waiting for room in a mailbox ring */
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
    struct store_msg *msg;      /* made at the header; body frames are copied into it */
    uint64_t body_received;
    bool has_expiration;        /* the expiration property, parsed */
    uint64_t expiration_ms;
} channel_publish;

/* The method a channel waits on while another shard answers. */
typedef struct {
    uint32_t method; /* amqp_method_id; 0 when not waiting */
    uint8_t stage;   /* DECLARE_STAGE_* of net/declare.c */
    bool nowait;
    bool if_unused;
    bool if_empty;
    bool no_ack_get;
    bool exclusive;
    uint32_t message_count;
    uint8_t name_len;
    char name[LIMIT_SHORTSTR_BYTES_MAX]; /* the queue named in declare-ok */
} channel_wait;

/* A consumer of this channel; consumer_id is 0 until the queue accepted it. */
typedef struct channel_consumer {
    struct channel_consumer *next;
    uint64_t queue_id;
    uint32_t queue_shard;
    uint64_t consumer_id;
    bool no_ack;
    uint8_t tag_len;
    char tag[LIMIT_SHORTSTR_BYTES_MAX];
} channel_consumer;

/* A delivery not yet acknowledged, in delivery tag order. */
typedef struct {
    uint64_t tag;
    uint64_t queue_id;
    uint64_t consumer_id; /* 0 for basic.get */
    uint64_t delivery_id;
    uint32_t queue_shard;
    bool settled; /* acked out of order: dropped when it reaches the front */
} channel_unacked;

/* A publish waiting for other shards before its confirm. */
typedef struct {
    uint64_t seq;
    uint32_t shards_left;
    bool nack; /* a queue refused it */
} channel_confirm;

typedef struct session_channel {
    channel_phase phase;
    uint16_t id;
    channel_publish pub;
    channel_wait wait;
    channel_consumer *consumers;
    /* Unacked deliveries: a ring of channel_unacked ordered by tag. */
    channel_unacked *unacked;
    uint32_t unacked_head, unacked_count, unacked_capacity;
    uint64_t delivery_tag_last;
    uint16_t prefetch_count; /* basic.qos for consumers started after it; 0 = unlimited */
    uint16_t global_prefetch; /* basic.qos global=true: a limit shared by the channel's consumers */
    uint32_t global_credit;   /* of that limit, what no consumer holds now */
    uint32_t grant_next;      /* round-robin position among consumers for the next credit */
    bool confirm_mode;
    uint64_t publish_seq_last;
    uint8_t reply_tag_len; /* direct reply-to consumer's tag; 0 when none */
    char reply_tag[LIMIT_SHORTSTR_BYTES_MAX];
    /* Transactions (net/tx.c): publishes and acks kept until commit. */
    bool tx_mode;
    struct channel_tx_entry *tx;
    uint32_t tx_count, tx_capacity;
    /* Confirms waiting for other shards, a ring ordered by seq. */
    channel_confirm *confirms;
    uint32_t confirms_head, confirms_count, confirms_capacity;
} session_channel;

#endif
