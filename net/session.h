/*
 * The AMQP 0-9-1 connection and channel protocol of one connection: the
 * handshake (protocol header, start/start-ok with SASL PLAIN or AMQPLAIN,
 * tune/tune-ok, open), heartbeats both ways, connection.close and
 * channel.open/close/flow, and the mapping of protocol errors to RabbitMQ's
 * reply codes. Channel errors close the channel, connection errors the
 * connection. Embedded in struct conn; runs on the connection's shard.
 */
#ifndef RINGMQ_NET_SESSION_H
#define RINGMQ_NET_SESSION_H

#include "net/amqp_frame.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct conn conn;
typedef struct session_channel session_channel;

typedef enum {
    SESSION_AWAIT_HEADER = 0, /* nothing read yet: expect "AMQP\0\0\x09\x01" */
    SESSION_AWAIT_START_OK,
    SESSION_AWAIT_TUNE_OK,
    SESSION_AWAIT_OPEN,
    SESSION_OPEN,
    SESSION_CLOSING, /* we sent connection.close: only close/close-ok count now */
    SESSION_CLOSED,  /* close-ok exchanged or the socket is gone */
} session_phase;

typedef struct {
    session_phase phase;
    uint32_t frame_max;   /* negotiated, bytes */
    uint16_t channel_max; /* negotiated */
    uint16_t heartbeat_s; /* negotiated, 0 = off */
    bool cap_auth_failure_close;
    bool cap_connection_blocked;
    bool cap_consumer_cancel_notify;
    bool blocked_sent;    /* connection.blocked sent, unblocked not yet */
    bool publisher;       /* has published: a resource alarm holds its socket */
    char user[256];
    char vhost[256];
    uint8_t header[8];       /* the protocol header as it arrives */
    uint8_t header_len;
    amqp_frame_assembler partial; /* a frame split across receive buffers */
    uint8_t *partial_buf;         /* frame_max bytes, allocated on first use */
    /* A channel waits for another shard (a declare, a bind, ...): input is
     * held from the frame after the one that waits, in order, and replayed
     * when the answer comes. RabbitMQ runs a channel's methods one after the
     * other; holding the connection keeps that order for every channel. */
    bool input_blocked;
    uint16_t paused_channel; /* the channel whose publish waits for mailbox space */
    uint64_t publish_turn;   /* the shard turn publishes_in_turn counts for */
    uint32_t publishes_in_turn;
    uint8_t *deferred;
    uint32_t deferred_len;
    uint32_t deferred_capacity;
    uint32_t deferred_off; /* replayed up to here */
    /* Names of the exclusive queues this connection declared: deleted with it. */
    char **exclusive_names;
    uint32_t exclusive_count;
    uint32_t exclusive_capacity;
    /* Open channels by id: open addressing, linear probing, at most half full.
     * channel_max bounds how many are open at once (RabbitMQ counts channels,
     * not ids: any id 1..65535 may be used). */
    session_channel **channels;
    uint32_t channel_slots; /* power of two, or 0 */
    uint32_t channels_open;
} session;

void session_init(conn *c);
void session_free(conn *c);
/* Bytes received from the socket; frames are parsed in place. */
void session_input(conn *c, const uint8_t *data, uint32_t len);
/* The peer closed or reset the socket (err 0 for an orderly EOF). */
void session_peer_closed(conn *c, int err);
/* Broker shutdown: connection.close 320 CONNECTION_FORCED. */
void session_shutdown(conn *c);
/* A resource alarm was raised or cleared. */
void session_alarm(conn *c, bool raised);
/* The connection's unsent output crossed the high (true) or low (false)
 * watermark: its consumers stop or resume receiving deliveries. */
void session_output_backlog(conn *c, bool high);
/* A new turn: input held because this connection used its share resumes. */
void session_yield_end(conn *c);
/* Mailbox space may have freed: retry the publish this connection paused on. */
void session_mbox_retry(conn *c);
/* This connection's id across the broker (exclusive queue ownership). */
uint64_t session_conn_id(const conn *c);

#endif
