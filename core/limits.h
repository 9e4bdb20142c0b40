/*
 * Every bound in ringmq, in one place, each named with its unit. Config
 * values are checked against the *_min/*_max here; fixed bounds size arrays
 * and pools. Relations between limits are checked with static asserts below.
 */
#ifndef RINGMQ_CORE_LIMITS_H
#define RINGMQ_CORE_LIMITS_H

#include "core/assert.h"

/* Shards and CPUs. */
#define LIMIT_SHARDS_MAX 64           /* shard threads per process */
#define LIMIT_CPUS_MAX 1024           /* highest CPU index + 1 accepted for pinning */
#define LIMIT_PLACEMENT_PINS_MAX 1024 /* queue-to-shard pins in the config */

/* AMQP wire. */
#define LIMIT_FRAME_BYTES_MIN 4096u       /* AMQP FRAME-MIN-SIZE: frame_max below this is refused */
#define LIMIT_FRAME_BYTES_MAX 1048576u    /* largest frame_max the server offers, bytes (1 MiB) */
#define LIMIT_FRAME_BYTES_DEFAULT 131072u /* RabbitMQ's default frame_max, bytes */
#define LIMIT_FRAME_OVERHEAD_BYTES 8u     /* 7-byte header + 1 frame-end octet */
#define LIMIT_CHANNELS_MAX 2047u          /* RabbitMQ's default channel_max */
#define LIMIT_CHANNELS_DEFAULT 2047u
#define LIMIT_HEARTBEAT_S_DEFAULT 60u     /* seconds */
#define LIMIT_HEARTBEAT_S_MAX 65535u      /* the wire field is a short */
#define LIMIT_SHORTSTR_BYTES_MAX 255u
#define LIMIT_TABLE_DEPTH_MAX 16u         /* nesting of tables/arrays in a field value */
#define LIMIT_MESSAGE_BYTES_DEFAULT 134217728u /* RabbitMQ's default max_message_size, bytes (128 MiB) */
#define LIMIT_MESSAGE_BYTES_MAX 536870912u     /* RabbitMQ's hard ceiling, bytes (512 MiB) */

/* Config file. */
#define LIMIT_CONFIG_LINE_BYTES_MAX 4096u /* one line of the INI file */
#define LIMIT_PATH_BYTES_MAX 4096u        /* file and directory paths */
#define LIMIT_NAME_BYTES_MAX 255u         /* queue, exchange, vhost names (shortstr) */

STATIC_ASSERT(LIMIT_FRAME_BYTES_MIN <= LIMIT_FRAME_BYTES_DEFAULT, "default frame_max below minimum");
STATIC_ASSERT(LIMIT_FRAME_BYTES_DEFAULT <= LIMIT_FRAME_BYTES_MAX, "default frame_max above maximum");
STATIC_ASSERT(LIMIT_CHANNELS_DEFAULT <= LIMIT_CHANNELS_MAX, "default channel_max above maximum");
STATIC_ASSERT(LIMIT_MESSAGE_BYTES_DEFAULT <= LIMIT_MESSAGE_BYTES_MAX, "default message size");
STATIC_ASSERT(LIMIT_NAME_BYTES_MAX == LIMIT_SHORTSTR_BYTES_MAX, "names are shortstrs");

#endif
