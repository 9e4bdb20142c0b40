/*
 * Types of the queue structure that other modules read or fill in (see store/queue.h for the
 * functions): the owner of a consumer or a basic.get delivery, consumer parameters and the
 * consumer record, and the reply a refused call reports.
 */
#ifndef RINGMQ_STORE_QUEUE_TYPES_H
#define RINGMQ_STORE_QUEUE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

/* The channel a consumer or a basic.get delivery belongs to; the values are opaque here. */
typedef struct store_owner {
    uint64_t shard_id;
    uint64_t conn_id;
    uint64_t channel_id;
} store_owner;

/* How an owner is matched when a channel or a whole connection goes away. */
typedef enum store_owner_match {
    STORE_OWNER_CHANNEL,    /* shard, connection and channel equal */
    STORE_OWNER_CONNECTION, /* shard and connection equal: every channel of the connection */
} store_owner_match;

#define STORE_CREDIT_UNLIMITED UINT32_MAX /* a consumer without a prefetch limit */

typedef struct store_consumer_params {
    const char *tag;
    size_t tag_bytes; /* <= LIMIT_CONSUMER_TAG_BYTES_MAX */
    store_owner owner;
    int32_t priority; /* x-priority; higher is served first */
    uint32_t credit;  /* deliveries allowed before store_queue_credit, or STORE_CREDIT_UNLIMITED */
    bool no_ack;
    bool exclusive;
    bool inactive; /* start without receiving deliveries (zero-initialised params: active) */
} store_consumer_params;

/* A consumer as the queue keeps it. Read-only outside store/: the queue changes credit and the
 * links as it dispatches. */
typedef struct store_consumer {
    uint64_t id; /* (slot generation << 32) | slot; never 0 */
    store_owner owner;
    int32_t priority;
    uint32_t credit;
    uint64_t delivered_count; /* deliveries made to this consumer, ever */
    bool no_ack;
    bool exclusive;
    bool active;
    bool in_ready; /* linked in its level's ready list: active and credit > 0 */
    uint8_t tag_bytes;
    struct store_consumer *ready_prev;          /* private to store/ */
    struct store_consumer *ready_next;          /* private to store/ */
    char tag[LIMIT_CONSUMER_TAG_BYTES_MAX + 1]; /* NUL-terminated for logs */
} store_consumer;

/* How a queue pages its backlog out (store/ready.c, store/spill.c): past either bound of the
 * in-memory window, new ready messages go to files in dir_fd until the window has room again. */
typedef struct store_queue_paging {
    int dir_fd;                   /* the shard's spill directory (store_spill_dir_open); borrowed */
    uint64_t queue_id;            /* names the queue's spill files: unique on the shard */
    uint64_t chunk_bytes;         /* spill file size, bytes (LIMIT_SPILL_CHUNK_BYTES; tests less) */
    uint64_t memory_messages_max; /* ready messages kept in memory (>= 2) */
    uint64_t memory_bytes_max;    /* their memory, headers included, bytes */
} store_queue_paging;

/* AMQP reply codes a queue operation can refuse with. */
#define STORE_REPLY_ACCESS_REFUSED 403
#define STORE_REPLY_RESOURCE_ERROR 506

typedef struct store_reply {
    uint16_t code;      /* 0 when the call succeeded */
    uint8_t text_bytes; /* reply-text is a shortstr */
    char text[LIMIT_SHORTSTR_BYTES_MAX + 1];
} store_reply;

#endif
