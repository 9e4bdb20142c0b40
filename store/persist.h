/*
 * A shard's durability: its segment log (store/log.h) opened and replayed at start, persistent
 * messages for durable queues appended as they reach the shard's queues, the turn's records
 * written with one group commit (a write and a linked fdatasync submitted on the shard's ring),
 * and publisher confirms that wait for that sync. Runs on the shard's thread only.
 */
#ifndef RINGMQ_STORE_PERSIST_H
#define RINGMQ_STORE_PERSIST_H

#include "core/shard.h"
#include "store/msg.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct persist persist;

/* Per shard: the replay callback's view of the shard's queues. Returns false when the queue is
 * unknown or not durable (the slot is then acked). */
typedef bool persist_recover_fn(shard *s, uint64_t queue_id, store_msg *msg);

/* Opens DATA_DIR/shard-N, replays it into the shard's queues through recover. Exits the process
 * with a log line when the log cannot be opened (the broker never starts half-recovered). */
void persist_open(shard *s, persist_recover_fn *recover);
/* Writes what is pending and the ack checkpoint, synchronously; then frees everything. */
void persist_close(shard *s);

/* Appends msg, which reached the durable queues ids[0 .. n) of this shard, to the log. Returns
 * the record's sequence number (0 when the log refused it: failed or full; the caller nacks). */
uint64_t persist_message(shard *s, store_msg *msg, const uint64_t *ids, uint16_t n);

/* A publisher confirm held until log record log_seq is synced: then publish_confirmed() runs on
 * reply_shard (this one, or another through the mailbox) with accepted = !refused, or with
 * accepted = false if the log failed. */
void persist_hold_confirm(shard *s, uint64_t log_seq, uint32_t reply_shard, uint64_t conn_id,
                          uint16_t channel, uint64_t confirm_seq, bool refused);

/* End of turn: start the group commit of the turn's records (at most one in flight). */
void persist_flush(shard *s);
/* A completion of SHARD_OP_LOG. */
void persist_on_cqe(shard *s, const struct io_uring_cqe *cqe);

#endif
