/*
 * Every bound in ringmq, in one place, each named with its unit. Config
 * values are checked against the *_MIN and *_MAX bounds here; fixed bounds size arrays
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
#define LIMIT_CONFIG_FILE_BYTES_MAX 1048576u /* whole INI file, bytes (1 MiB) */
#define LIMIT_SEGMENT_BYTES_DEFAULT (64ull << 20) /* segment log file size, bytes (64 MiB) */
#define LIMIT_SEGMENT_BYTES_MIN (64ull << 10)     /* smallest segment_size accepted, bytes */
#define LIMIT_SEGMENT_BYTES_MAX (4ull << 30)      /* largest segment_size accepted, bytes */
#define LIMIT_CONFIG_CHANNELS_MAX 65535u  /* largest channel_max accepted: the wire field is a short */

STATIC_ASSERT(LIMIT_FRAME_BYTES_MIN <= LIMIT_FRAME_BYTES_DEFAULT, "default frame_max below minimum");
STATIC_ASSERT(LIMIT_FRAME_BYTES_DEFAULT <= LIMIT_FRAME_BYTES_MAX, "default frame_max above maximum");
STATIC_ASSERT(LIMIT_CHANNELS_DEFAULT <= LIMIT_CHANNELS_MAX, "default channel_max above maximum");
STATIC_ASSERT(LIMIT_MESSAGE_BYTES_DEFAULT <= LIMIT_MESSAGE_BYTES_MAX, "default message size");
STATIC_ASSERT(LIMIT_NAME_BYTES_MAX == LIMIT_SHORTSTR_BYTES_MAX, "names are shortstrs");
STATIC_ASSERT(LIMIT_CHANNELS_DEFAULT <= LIMIT_CONFIG_CHANNELS_MAX, "default channel_max above config max");

/* Cross-core mailbox (core/mbox.c): one SPSC ring per ordered pair of shards. */
#define LIMIT_MBOX_RING_BYTES (1u << 20)       /* default ring size, bytes (1 MiB, power of two) */
#define LIMIT_MBOX_RING_BYTES_MIN 4096u        /* smallest ring accepted, bytes (tests use it) */
#define LIMIT_MBOX_RING_BYTES_MAX (1u << 30)   /* largest ring accepted, bytes */
#define LIMIT_MBOX_PAYLOAD_BYTES_MAX 65536u    /* largest record payload; bigger bodies go by reference */
#define LIMIT_MBOX_DRAIN_RECORDS_MAX 256u      /* records one shard takes from one inbound ring per turn */

STATIC_ASSERT((LIMIT_MBOX_RING_BYTES & (LIMIT_MBOX_RING_BYTES - 1)) == 0, "mbox ring not a power of two");
STATIC_ASSERT((LIMIT_MBOX_RING_BYTES_MIN & (LIMIT_MBOX_RING_BYTES_MIN - 1)) == 0, "mbox ring min");
STATIC_ASSERT(LIMIT_MBOX_RING_BYTES_MIN <= LIMIT_MBOX_RING_BYTES, "mbox ring below minimum");
STATIC_ASSERT(LIMIT_MBOX_RING_BYTES <= LIMIT_MBOX_RING_BYTES_MAX, "mbox ring above maximum");
/* A record of the largest payload takes at most a quarter of the default ring, so a wrap wastes
 * at most a quarter and three such records always fit. */
STATIC_ASSERT(LIMIT_MBOX_PAYLOAD_BYTES_MAX + 8u <= LIMIT_MBOX_RING_BYTES / 4u, "mbox payload max");


/* Shard runtime (core/shard.c). */
#define LIMIT_RING_ENTRIES 1024u          /* SQ entries per shard ring; CQ is twice that */
#define LIMIT_CQES_PER_TURN 64u           /* CQEs handled per loop turn before other work */
#define LIMIT_TIMERS_PER_TURN 1024u       /* timer callbacks run per loop turn */
#define LIMIT_RECV_BUFFERS 512u           /* provided receive buffers per shard (power of two) */
#define LIMIT_RECV_BUFFER_BYTES 16384u    /* bytes per provided receive buffer */
#define LIMIT_CONNS_PER_SHARD 16384u      /* connections one shard holds at once */
#define LIMIT_LISTEN_BACKLOG 1024         /* listen(2) backlog per shard */
#define LIMIT_SHUTDOWN_GRACE_MS 500u      /* wait for close-ok after a forced close, ms */
#define LIMIT_CONN_OUTPUT_BYTES_HIGH 4194304u /* stop reading a peer whose unsent output exceeds this */
#define LIMIT_CONN_OUTPUT_BYTES_LOW 1048576u  /* resume reading once unsent output falls below this */

STATIC_ASSERT((LIMIT_RECV_BUFFERS & (LIMIT_RECV_BUFFERS - 1)) == 0, "buffer ring size is a power of two");
STATIC_ASSERT(LIMIT_RECV_BUFFERS <= 32768u, "io_uring buffer rings hold at most 32768 entries");
STATIC_ASSERT(LIMIT_CONN_OUTPUT_BYTES_LOW < LIMIT_CONN_OUTPUT_BYTES_HIGH, "output watermarks");
STATIC_ASSERT(LIMIT_CONNS_PER_SHARD < (1u << 24), "connection index fits the 24-bit user_data field");

/* Users, vhosts and SASL (core/auth.c). The store is read once at start-up. */
#define LIMIT_USER_NAME_BYTES_MAX 255u        /* user name, bytes (fits a shortstr) */
#define LIMIT_PASSWORD_BYTES_MAX 1024u        /* cleartext password accepted from SASL or ringmqctl */
#define LIMIT_USER_TAGS_BYTES_MAX 255u        /* one user's tags, comma-separated, bytes */
#define LIMIT_PERMISSION_REGEX_BYTES_MAX 255u /* one configure/write/read pattern, bytes */
#define LIMIT_USERS_MAX 1024u                 /* users in the store */
#define LIMIT_VHOSTS_MAX 1024u                /* virtual hosts in the store */
#define LIMIT_PERMISSIONS_MAX 16384u          /* (user, vhost) permission entries, all users */
#define LIMIT_LOOPBACK_USERS_MAX 16u          /* users allowed to log in only from loopback */
/* A users-file line: name, hash, tags, then per vhost: vhost, configure, write, read; each field
 * followed by a tab or the newline. The file adds a 32-byte header line. */
#define LIMIT_AUTH_USER_LINE_BYTES_FIXED (LIMIT_USER_NAME_BYTES_MAX + 48u + LIMIT_USER_TAGS_BYTES_MAX + 3u)
#define LIMIT_AUTH_PERMISSION_LINE_BYTES (LIMIT_NAME_BYTES_MAX + 3u * LIMIT_PERMISSION_REGEX_BYTES_MAX + 4u)
#define LIMIT_AUTH_USERS_FILE_BYTES_MAX                                                            \
    (32u + LIMIT_USERS_MAX * LIMIT_AUTH_USER_LINE_BYTES_FIXED +                                    \
     LIMIT_PERMISSIONS_MAX * LIMIT_AUTH_PERMISSION_LINE_BYTES)
#define LIMIT_AUTH_VHOSTS_FILE_BYTES_MAX (32u + LIMIT_VHOSTS_MAX * (LIMIT_NAME_BYTES_MAX + 1u))
/* The largest SASL response worth parsing: AMQPLAIN with LOGIN and PASSWORD at their maxima is
 * (1 + 5 + 1 + 4 + user) + (1 + 8 + 1 + 4 + password); PLAIN is authzid + user + password + 2. */
#define LIMIT_SASL_RESPONSE_BYTES_MAX 4096u

STATIC_ASSERT(LIMIT_USER_NAME_BYTES_MAX <= LIMIT_SHORTSTR_BYTES_MAX, "user names are shortstrs");
STATIC_ASSERT(LIMIT_VHOSTS_MAX <= LIMIT_PERMISSIONS_MAX, "permissions");
STATIC_ASSERT(2u * LIMIT_USER_NAME_BYTES_MAX + LIMIT_PASSWORD_BYTES_MAX + 2u <= LIMIT_SASL_RESPONSE_BYTES_MAX,
              "a maximal PLAIN response fits");
STATIC_ASSERT(25u + LIMIT_USER_NAME_BYTES_MAX + LIMIT_PASSWORD_BYTES_MAX <= LIMIT_SASL_RESPONSE_BYTES_MAX,
              "a maximal AMQPLAIN response fits");
STATIC_ASSERT(LIMIT_AUTH_USERS_FILE_BYTES_MAX < (64u << 20), "users file stays small");

/* AMQP session (net/session.c). */
#define LIMIT_HANDSHAKE_MS 10000u     /* protocol header to open-ok, ms (RabbitMQ's handshake_timeout) */
#define LIMIT_CLOSE_OK_WAIT_MS 3000u  /* wait for close-ok after our connection.close, ms */
#define LIMIT_OUTPUT_BUFFER_BYTES 16384u  /* a connection's output buffer, bytes; grows for bursts */
#define LIMIT_OUTPUT_POOL_BUFFERS 256u     /* free output buffers a shard keeps for reuse */
#define LIMIT_CHANNEL_SLOTS_INITIAL 8u     /* channel table entries allocated at open; grows by doubling */

/* Routing replica (route/). */
#define LIMIT_ROUTE_QUEUES_MAX 65536u      /* destination queues one publish may reach */
#define LIMIT_ROUTE_ERROR_TEXT_BYTES 256u  /* reply text (a shortstr) plus its NUL */
#define LIMIT_ROUTE_TOPIC_WORDS_MAX 256u   /* words in a routing key: 255 bytes hold 255 dots */
#define LIMIT_ROUTE_HEADERS_SORTED_MAX 256u /* message headers sorted on the stack per publish */
#define LIMIT_ROUTE_MAP_SLOTS_MIN 16u      /* smallest hash map, slots (power of two) */

STATIC_ASSERT(LIMIT_ROUTE_TOPIC_WORDS_MAX == LIMIT_SHORTSTR_BYTES_MAX + 1u, "one word per dot, plus one");
STATIC_ASSERT(LIMIT_ROUTE_ERROR_TEXT_BYTES == LIMIT_SHORTSTR_BYTES_MAX + 1u, "reply text is a shortstr");
STATIC_ASSERT((LIMIT_ROUTE_MAP_SLOTS_MIN & (LIMIT_ROUTE_MAP_SLOTS_MIN - 1u)) == 0, "map size");

/* Topology (route/topo.c). */
#define LIMIT_TOPO_ARGUMENTS_BYTES_MAX 16384u /* arguments table of a declare or bind, bytes */
STATIC_ASSERT(LIMIT_TOPO_ARGUMENTS_BYTES_MAX + 2048u <= LIMIT_MBOX_PAYLOAD_BYTES_MAX, "topology record fits a mailbox record");

/* Definitions journal (store/defs.c). */
#define LIMIT_DEFS_COMPACT_RECORDS_MIN 1024u /* records in the file before compaction is considered */
#define LIMIT_DEFS_QUEUE_ID_BLOCK 4096u      /* queue ids the sequencer reserves per journal write */
#define LIMIT_DEFS_FIXED_BYTES 32u           /* a definition record's fixed payload part, bytes */
/* A definition record's payload, bytes: the fixed part, five names (vhost, name, destination,
 * routing key, exchange type), each a shortstr, and an arguments table. */
#define LIMIT_DEFS_PAYLOAD_BYTES_MAX                                                               \
    (LIMIT_DEFS_FIXED_BYTES + 5u * LIMIT_SHORTSTR_BYTES_MAX + LIMIT_TOPO_ARGUMENTS_BYTES_MAX)
STATIC_ASSERT(LIMIT_DEFS_COMPACT_RECORDS_MIN >= 2u, "compaction needs a few records");

/* Queue structure (store/queue.c, store/ready.c, store/unacked.c, store/consumers.c). */
#define LIMIT_CONSUMER_TAG_BYTES_MAX 255u     /* consumer tags are shortstrs */
#define LIMIT_QUEUE_CONSUMERS_MAX (1u << 20)  /* consumers on one queue; more is RESOURCE_ERROR */
#define LIMIT_QUEUE_RING_SLOTS_MIN 64u        /* ready ring slots at declare (power of two); never shrinks below */
#define LIMIT_QUEUE_REQUEUED_SLOTS_MIN 16u    /* requeue heap entries at the first requeue */
#define LIMIT_QUEUE_UNACKED_SLOTS_MIN 64u     /* unacked hash slots at the first delivery (power of two) */
#define LIMIT_QUEUE_CONSUMER_SLOTS_MIN 4u     /* consumer slots at the first basic.consume */

STATIC_ASSERT(LIMIT_CONSUMER_TAG_BYTES_MAX == LIMIT_SHORTSTR_BYTES_MAX, "consumer tags are shortstrs");
STATIC_ASSERT((LIMIT_QUEUE_RING_SLOTS_MIN & (LIMIT_QUEUE_RING_SLOTS_MIN - 1)) == 0, "ring slots");
STATIC_ASSERT((LIMIT_QUEUE_UNACKED_SLOTS_MIN & (LIMIT_QUEUE_UNACKED_SLOTS_MIN - 1)) == 0, "unacked slots");
STATIC_ASSERT(LIMIT_QUEUE_CONSUMERS_MAX < (1ull << 32), "consumer slot fits the low half of an id");
/* Paging a queue's backlog out (store/ready.c keeps a window in memory, store/spill.c the rest
 * on disk). A queue pages out while its ring holds more than either bound; memory per paging
 * queue is then the window plus its spill's write buffer (and a read buffer during a refill). */
#define LIMIT_QUEUE_MEMORY_MESSAGES 262144u             /* ready messages a queue keeps in memory */
#define LIMIT_QUEUE_MEMORY_BYTES_DEFAULT (32ull << 20)  /* their memory, headers included, bytes ([storage] queue_memory_bytes) */
#define LIMIT_QUEUE_MEMORY_BYTES_MIN (4ull << 10)       /* smallest queue_memory_bytes accepted, bytes */
#define LIMIT_QUEUE_MEMORY_BYTES_MAX (1ull << 40)       /* largest queue_memory_bytes accepted, bytes */
#define LIMIT_SPILL_CHUNK_BYTES (16ull << 20)           /* a spill chunk file is sealed past this, bytes */
#define LIMIT_SPILL_WRITE_BUFFER_BYTES (64u << 10)      /* a paging queue's write buffer, bytes */
#define LIMIT_SPILL_READ_BYTES (64u << 10)              /* one pread of a refill, bytes */
STATIC_ASSERT(LIMIT_QUEUE_MEMORY_BYTES_MIN <= LIMIT_QUEUE_MEMORY_BYTES_DEFAULT, "queue memory min");
STATIC_ASSERT(LIMIT_QUEUE_MEMORY_BYTES_DEFAULT <= LIMIT_QUEUE_MEMORY_BYTES_MAX, "queue memory max");
STATIC_ASSERT(LIMIT_QUEUE_MEMORY_MESSAGES >= 2u, "a window refills at half");
STATIC_ASSERT(LIMIT_SPILL_WRITE_BUFFER_BYTES <= LIMIT_SPILL_CHUNK_BYTES, "a flush fits a chunk");
#define LIMIT_MBOX_INLINE_BYTES_MAX 32768u /* larger control records travel by reference, bytes */
STATIC_ASSERT(LIMIT_MBOX_INLINE_BYTES_MAX <= LIMIT_MBOX_PAYLOAD_BYTES_MAX, "inline records fit a ring");
#define LIMIT_QUEUE_DISPATCH_PER_TURN 256u  /* deliveries one queue makes per loop turn */
#define LIMIT_PUBLISH_QUEUES_MAX 4096u      /* queues one publish may reach; past it the rest are dropped and logged */
#define LIMIT_PUBLISHES_PER_TURN 256u      /* publishes one connection hands in per loop turn */

/* Segment log (store/log.c); segment sizes are LIMIT_SEGMENT_BYTES_* above. */
#define LIMIT_LOG_BLOCK_BYTES 4096u                   /* O_DIRECT alignment and write unit, bytes */
#define LIMIT_LOG_WRITE_BUFFER_BYTES_INITIAL (1u << 20) /* a write buffer at open, bytes (1 MiB) */
#define LIMIT_LOG_WRITE_BUFFER_BYTES (8u << 20) /* a write buffer grows to this during a flush, bytes */
#define LIMIT_LOG_BODY_IOVS_MAX 16u             /* iovecs of one appended message body */
#define LIMIT_LOG_WRITE_OP_BYTES_MAX (1u << 30) /* one write of a flush: results are ints, bytes */
/* Room in a message record for the caller's encoding around the body: its fixed header, the
 * exchange and routing key (shortstrs) and the content properties (one content-header frame). */
#define LIMIT_LOG_MSG_HEADROOM_BYTES (2u << 20)
/* A record payload, bytes: first slot, queue count and reserved (8), the queue ids, the message.
 * Recovery reads a larger length as corrupt. */
#define LIMIT_LOG_PAYLOAD_BYTES_MAX                                                                \
    (8u + 8u * LIMIT_PUBLISH_QUEUES_MAX + LIMIT_LOG_MSG_HEADROOM_BYTES + LIMIT_MESSAGE_BYTES_MAX)
#define LIMIT_LOG_RECOVERY_READ_BYTES (4u << 20) /* recovery reads segments in chunks of this, bytes */

STATIC_ASSERT(LIMIT_SEGMENT_BYTES_DEFAULT % LIMIT_LOG_BLOCK_BYTES == 0, "segment size in blocks");
STATIC_ASSERT(LIMIT_SEGMENT_BYTES_MIN % LIMIT_LOG_BLOCK_BYTES == 0, "segment size in blocks");
STATIC_ASSERT(LIMIT_SEGMENT_BYTES_MIN <= LIMIT_SEGMENT_BYTES_DEFAULT, "segment minimum");
STATIC_ASSERT(LIMIT_SEGMENT_BYTES_DEFAULT <= LIMIT_SEGMENT_BYTES_MAX, "segment maximum");
STATIC_ASSERT(LIMIT_SEGMENT_BYTES_MAX <= (1ull << 32), "record offsets in a segment are u32");
STATIC_ASSERT(LIMIT_LOG_WRITE_BUFFER_BYTES_INITIAL % LIMIT_LOG_BLOCK_BYTES == 0, "buffer in blocks");
STATIC_ASSERT(LIMIT_LOG_WRITE_BUFFER_BYTES % LIMIT_LOG_BLOCK_BYTES == 0, "buffer in blocks");
STATIC_ASSERT(LIMIT_LOG_WRITE_BUFFER_BYTES_INITIAL <= LIMIT_LOG_WRITE_BUFFER_BYTES, "buffer growth");
STATIC_ASSERT(LIMIT_LOG_MSG_HEADROOM_BYTES >= 24u + 2u * LIMIT_SHORTSTR_BYTES_MAX + LIMIT_FRAME_BYTES_MAX,
              "a message's properties and names fit the headroom");
STATIC_ASSERT(LIMIT_LOG_PAYLOAD_BYTES_MAX + 64u < LIMIT_SEGMENT_BYTES_MAX, "a segment sized for one record stays addressable");
STATIC_ASSERT(LIMIT_LOG_PAYLOAD_BYTES_MAX + 2u * LIMIT_LOG_BLOCK_BYTES <= LIMIT_LOG_WRITE_OP_BYTES_MAX,
              "a record and a carried block fit one write");
STATIC_ASSERT(LIMIT_LOG_WRITE_OP_BYTES_MAX <= 0x7fffffffu, "a write's result is an int");

#endif
