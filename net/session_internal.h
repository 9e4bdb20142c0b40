/*
 * What the parts of a connection's AMQP protocol share: net/session.c (the
 * connection), net/channel.c (channels and method dispatch), net/publish.c
 * (publish assembly). Internal to net/.
 */
#ifndef RINGMQ_NET_SESSION_INTERNAL_H
#define RINGMQ_NET_SESSION_INTERNAL_H

#include "net/amqp_frame.h"
#include "net/amqp_method.h"
#include "net/channel.h"
#include "net/conn.h"
#include "net/session.h"

static inline session *session_of(conn *c) { return &c->sess; }

/* Output. */
void session_send_method(conn *c, uint16_t channel, const amqp_method *m);
/* A content header and body frames (split at frame_max) after a content method. */
void session_send_content(conn *c, uint16_t channel, amqp_bytes props, const uint8_t *body,
                          uint64_t body_bytes);

/* Errors: a hard error closes the connection, a soft one the channel. */
__attribute__((format(printf, 4, 5))) void session_close_connection(conn *c, uint16_t code,
                                                                    uint32_t method_id,
                                                                    const char *fmt, ...);
__attribute__((format(printf, 5, 6))) void session_close_channel(conn *c, session_channel *ch,
                                                                 uint16_t code, uint32_t method_id,
                                                                 const char *fmt, ...);
void session_codec_error(conn *c, const amqp_error *err);

/* Input held while a channel waits for another shard. */
void session_block_input(conn *c);
void session_resume_input(conn *c);

/* Channels (net/channel.c). */
session_channel *session_channel_get(session *s, uint16_t id);
void session_channel_free(conn *c, session_channel *ch);
void session_on_channel_frame_method(conn *c, uint16_t id, const amqp_method *m);

/* The queue a method names on this shard's replica; NULL after closing the
 * channel with RabbitMQ's 404 (missing) or 405 (another connection's
 * exclusive queue). In net/consume.c. */
struct route_queue_info;
const struct route_queue_info *session_queue_lookup(conn *c, session_channel *ch, uint32_t method,
                                                    amqp_bytes name);

/* Exchanges, queues, bindings (net/declare.c): true when m was one of them. */
bool declare_method(conn *c, session_channel *ch, const amqp_method *m);
/* The connection is closing: its exclusive queues are deleted. */
void declare_connection_gone(conn *c);

/* Publishing (net/publish.c). */
void session_on_publish(conn *c, session_channel *ch, const amqp_basic_publish *a);
void session_channel_content(conn *c, session_channel *ch, const amqp_frame *f);

#endif
