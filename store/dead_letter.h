/*
 * Dead-lettering: a message that leaves a queue without being consumed
 * (rejected or nacked without requeue) is republished to the queue's
 * x-dead-letter-exchange, with x-death headers as RabbitMQ writes them.
 */
#ifndef RINGMQ_STORE_DEAD_LETTER_H
#define RINGMQ_STORE_DEAD_LETTER_H

#include "core/shard.h"
#include "net/amqp_types.h"
#include "store/msg.h"

typedef struct {
    amqp_bytes vhost;
    amqp_bytes queue;
    amqp_bytes exchange;    /* x-dead-letter-exchange */
    amqp_bytes routing_key; /* x-dead-letter-routing-key; len 0: the message's own */
    bool has_routing_key;
} dead_letter_target;

/* Republishes msg (the caller keeps its reference) for reason ("rejected", "expired", "maxlen"). */
void dead_letter(shard *s, const dead_letter_target *t, const store_msg *msg, const char *reason);

#endif
