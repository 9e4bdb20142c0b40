/*
 * Direct reply-to (amq.rabbitmq.reply-to): see net/reply_to.c.
 */
#ifndef RINGMQ_NET_REPLY_TO_H
#define RINGMQ_NET_REPLY_TO_H

#include "net/amqp_method.h"
#include "net/amqp_props.h"
#include "net/channel.h"
#include "net/conn.h"
#include "store/msg.h"

bool reply_to_is_queue(amqp_bytes name);
/* basic.consume / basic.cancel on the pseudo-queue; true when handled. */
bool reply_to_consume(conn *c, session_channel *ch, const amqp_basic_consume *a);
bool reply_to_cancel(conn *c, session_channel *ch, amqp_bytes tag);
/* A publish's properties with reply_to rewritten to this channel's address:
 * the new length, 0 when nothing changes, -1 after a channel error. */
int32_t reply_to_rewrite(conn *c, session_channel *ch, const amqp_content_header *h,
                         uint8_t *props_out, uint32_t cap);
/* A publish to a reply-to address: delivered (or dropped); false when it is not one. */
bool reply_to_route(shard *s, amqp_bytes exchange, amqp_bytes routing_key, store_msg *msg);
void reply_to_register(void);

#endif
