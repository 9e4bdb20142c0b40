/*
 * Transactions on a channel (tx.select/commit/rollback): publishes and
 * acknowledgements are kept in order until tx.commit carries them out, or
 * tx.rollback drops them, as RabbitMQ does. A channel is in tx mode or in
 * confirm mode, never both (406).
 */
#ifndef RINGMQ_NET_TX_H
#define RINGMQ_NET_TX_H

#include "net/channel.h"
#include "net/conn.h"
#include "store/msg.h"
#include "store/queues.h"

void tx_add_publish(conn *c, session_channel *ch, store_msg *msg, bool mandatory);
void tx_add_settle(conn *c, session_channel *ch, uint32_t method, uint64_t tag, bool multiple,
                   queues_settle how);
bool tx_method(conn *c, session_channel *ch, const amqp_method *m);
void tx_free(session_channel *ch);

/* What commit calls back into (net/publish.c, net/consume.c). */
void publish_commit(conn *c, session_channel *ch, store_msg *msg, bool mandatory);
void consume_settle_now(conn *c, session_channel *ch, uint32_t method, uint64_t tag, bool multiple,
                        queues_settle how);

#endif
