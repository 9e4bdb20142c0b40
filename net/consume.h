/*
 * The consuming side of channels (net/consume.c), as the rest of net/ uses it.
 */
#ifndef RINGMQ_NET_CONSUME_H
#define RINGMQ_NET_CONSUME_H

#include "net/channel.h"
#include "net/conn.h"

#include <stdbool.h>
#include <stdint.h>

/* basic.qos/consume/cancel/get/ack/nack/reject/recover, queue.purge,
 * confirm.select: true when m was one of them. */
bool consume_method(conn *c, session_channel *ch, const amqp_method *m);
/* A channel closes: its consumers and unacked deliveries go back to their queues. */
void consume_channel_closed(conn *c, session_channel *ch);
/* The connection cannot take more output now (high) or can again: its consumers pause or resume. */
void consume_channel_backlog(conn *c, session_channel *ch, bool high);
/* A publish in confirm mode: confirmed now, or once shards_left other shards
 * took it; nacked if a queue refused it (refused here, or on another shard). */
void consume_confirm_publish(conn *c, session_channel *ch, uint64_t seq, uint32_t shards_left,
                             bool refused);

#endif
