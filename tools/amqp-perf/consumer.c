/*
 * Consumer threads. Each owns one connection and channel 1, consumes one
 * queue, and reads deliveries in large chunks parsed in place: a delivery is
 * a basic.deliver frame, a content header and body frames, tracked by a
 * small state machine so only the stamp (the first 16 body bytes) is kept.
 *
 * Acks are written into the send buffer while a chunk is parsed and sent
 * once per chunk. Nothing that reads the socket runs while frames of the
 * chunk are in use. When the buffer is full, the pending acks collapse into
 * one multiple ack (deliveries on a channel are acked in order, so "all up
 * to tag T" is the same thing), which bounds memory without ever blocking
 * on a broker that waits for us to read.
 *
 * Verification: per producer, sequences must rise on this consumer; each
 * (queue, producer, sequence) is marked in a shared bitmap, a second mark
 * is a duplicate.
 */
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "net/amqp_props.h"
#include "tools/amqp-perf/perf.h"

enum { ACK_FRAME_BYTES = 64, NOW_REFRESH_MSGS = 64 };

typedef enum cons_phase { CONS_METHOD, CONS_HEADER, CONS_BODY } cons_phase;

typedef struct cons_state {
    perf_conn conn;
    char queue[PERF_NAME_BYTES_MAX];
    cons_phase phase;
    uint64_t tag;      /* of the delivery being read */
    uint64_t last_tag; /* of the last delivery read whole */
    uint64_t body_left;
    uint8_t stamp[PERF_STAMP_BYTES];
    uint32_t stamp_len;
    uint64_t consumed;
    uint64_t unacked;     /* multi-ack: delivered since the last ack */
    uint64_t ack_pending; /* tag of a collapsed multiple ack, 0 if none */
    uint64_t now_ns;
    uint32_t since_now;
    bool finished; /* -D reached */
} cons_state;

static int cons_fail(perf_consumer *c, const char *why)
{
    snprintf(c->error, sizeof c->error, "consumer %u: %.400s", c->index, why);
    c->failed = true;
    return -1;
}

static void cons_ack(cons_state *s, uint64_t tag, bool multiple)
{
    if (s->ack_pending != 0 || perf_conn_wroom(&s->conn) < ACK_FRAME_BYTES) {
        s->ack_pending = tag;
        return;
    }
    amqp_method m = {.id = AMQP_BASIC_ACK};
    m.a.basic_ack = (amqp_basic_ack){tag, multiple};
    amqp_error err;
    ssize_t n = amqp_frame_write_method(s->conn.wbuf + s->conn.wlen, perf_conn_wroom(&s->conn), 1,
                                        &m, &err);
    ASSERT(n > 0);
    s->conn.wlen += (size_t)n;
}

static void cons_verify(perf_consumer *c, uint16_t producer, uint32_t seq)
{
    perf_run *r = c->run;
    if (producer >= r->o->producers || seq >= r->o->pmessages) {
        c->out_of_order++;
        return;
    }
    if (seq + 1 <= c->last_seq[producer]) c->out_of_order++;
    c->last_seq[producer] = seq + 1;
    uint64_t *bits = r->seen[c->queue_index * r->o->producers + producer];
    uint64_t bit = (uint64_t)1 << (seq % 64);
    if (__atomic_fetch_or(&bits[seq / 64], bit, __ATOMIC_RELAXED) & bit) c->duplicates++;
}

static void cons_stamp(perf_consumer *c, cons_state *s)
{
    if (s->stamp_len < PERF_STAMP_BYTES) return;
    uint64_t sent_ns;
    uint16_t tag, producer;
    uint32_t seq;
    memcpy(&sent_ns, s->stamp, 8);
    memcpy(&tag, s->stamp + 8, 2);
    memcpy(&producer, s->stamp + 10, 2);
    memcpy(&seq, s->stamp + 12, 4);
    if (tag != c->run->run_tag) {
        perf_count_add(&c->ctr.foreign, 1);
        return;
    }
    if (++s->since_now == NOW_REFRESH_MSGS) {
        s->since_now = 0;
        s->now_ns = perf_now_ns();
    }
    perf_hist_record(&c->ctr.latency, s->now_ns > sent_ns ? s->now_ns - sent_ns : 0);
    if (c->run->o->verify) cons_verify(c, producer, seq);
}

/* A whole delivery is in: stamp, ack, limits. */
static void cons_message(perf_consumer *c, cons_state *s)
{
    const perf_opts *o = c->run->o;
    cons_stamp(c, s);
    s->consumed++;
    perf_count_add(&c->ctr.consumed, 1);
    if (!o->auto_ack) {
        if (o->multi_ack_every <= 1) {
            cons_ack(s, s->tag, false);
        } else if (++s->unacked >= o->multi_ack_every) {
            cons_ack(s, s->tag, true);
            s->unacked = 0;
        }
    }
    if (o->cmessages > 0 && s->consumed >= o->cmessages) s->finished = true;
    if (o->consumer_rate_per_s > 0) {
        uint64_t due_ns = c->run->start_ns + (uint64_t)((double)s->consumed / o->consumer_rate_per_s * 1e9);
        uint64_t now_ns = perf_now_ns();
        if (due_ns > now_ns) {
            perf_conn_flush_some(&s->conn);
            perf_sleep_ns(due_ns - now_ns);
        }
        s->now_ns = perf_now_ns();
    }
    s->last_tag = s->tag;
    s->phase = CONS_METHOD;
}

static int cons_content(perf_consumer *c, cons_state *s, const amqp_frame *f)
{
    if (s->phase == CONS_HEADER && f->type == AMQP_FRAME_HEADER) {
        amqp_content_header h;
        amqp_error err;
        if (!amqp_content_header_decode(f->payload, f->payload_len, &h, &err))
            return cons_fail(c, err.text);
        s->body_left = h.body_size;
        s->stamp_len = 0;
        s->phase = CONS_BODY;
        if (s->body_left == 0) cons_message(c, s);
        return 0;
    }
    if (s->phase == CONS_BODY && f->type == AMQP_FRAME_BODY) {
        if (f->payload_len > s->body_left) return cons_fail(c, "body longer than announced");
        uint32_t take = PERF_STAMP_BYTES - s->stamp_len;
        if (take > f->payload_len) take = f->payload_len;
        memcpy(s->stamp + s->stamp_len, f->payload, take);
        s->stamp_len += take;
        s->body_left -= f->payload_len;
        if (s->body_left == 0) cons_message(c, s);
        return 0;
    }
    return cons_fail(c, "unexpected content frame");
}

/* Parses every complete frame of the receive buffer. */
static int cons_read(perf_consumer *c, cons_state *s)
{
    amqp_frame f;
    int r;
    s->now_ns = perf_now_ns();
    s->since_now = 0;
    while (!s->finished && (r = perf_conn_next_frame(&s->conn, &f)) == 1) {
        if (f.type == AMQP_FRAME_HEARTBEAT) continue;
        if (f.type != AMQP_FRAME_METHOD) {
            if (cons_content(c, s, &f) != 0) return -1;
            continue;
        }
        if (s->phase != CONS_METHOD) return cons_fail(c, "method inside a delivery");
        if (perf_conn_check_close(&s->conn, &f)) return cons_fail(c, s->conn.error);
        amqp_method m;
        amqp_error err;
        if (!amqp_method_decode(f.payload, f.payload_len, &m, &err)) return cons_fail(c, err.text);
        if (m.id == AMQP_BASIC_DELIVER) {
            s->tag = m.a.basic_deliver.delivery_tag;
            s->phase = CONS_HEADER;
        } else if (m.id == AMQP_BASIC_CANCEL) {
            return cons_fail(c, "consumer cancelled by the broker");
        }
    }
    if (s->ack_pending != 0 && perf_conn_wroom(&s->conn) >= ACK_FRAME_BYTES) {
        uint64_t tag = s->ack_pending;
        s->ack_pending = 0;
        cons_ack(s, tag, true);
    }
    return 0;
}

static int cons_setup(perf_consumer *c, cons_state *s)
{
    const perf_opts *o = c->run->o;
    perf_conn *conn = &s->conn;
    if (perf_connect(conn, o, c->index, "consumer") != 0 || perf_conn_channel_open(conn, 1) != 0)
        return cons_fail(c, conn->error);
    amqp_method m, ok;
    if (c->run->queue_per_consumer) {
        m = (amqp_method){.id = AMQP_QUEUE_DECLARE};
        m.a.queue_declare.exclusive = m.a.queue_declare.auto_delete = true;
        m.a.queue_declare.arguments = (amqp_table){o->queue_args, o->queue_args_len};
        if (perf_conn_rpc(conn, 1, &m, AMQP_QUEUE_DECLARE_OK, &ok) != 0) return cons_fail(c, conn->error);
        amqp_bytes q = ok.a.queue_declare_ok.queue;
        memcpy(s->queue, q.data, q.len);
        s->queue[q.len] = 0;
        m = (amqp_method){.id = AMQP_QUEUE_BIND};
        m.a.queue_bind.queue = amqp_cstr(s->queue);
        m.a.queue_bind.exchange = amqp_cstr(o->exchange);
        m.a.queue_bind.routing_key = amqp_cstr(o->routing_key);
        if (perf_conn_rpc(conn, 1, &m, AMQP_QUEUE_BIND_OK, NULL) != 0) return cons_fail(c, conn->error);
    } else {
        strcpy(s->queue, c->run->queue_names[c->queue_index]);
    }
    if (o->prefetch > 0) {
        m = (amqp_method){.id = AMQP_BASIC_QOS};
        m.a.basic_qos.prefetch_count = (uint16_t)o->prefetch;
        if (perf_conn_rpc(conn, 1, &m, AMQP_BASIC_QOS_OK, NULL) != 0) return cons_fail(c, conn->error);
    }
    m = (amqp_method){.id = AMQP_BASIC_CONSUME};
    m.a.basic_consume.queue = amqp_cstr(s->queue);
    m.a.basic_consume.no_ack = o->auto_ack;
    if (perf_conn_rpc(conn, 1, &m, AMQP_BASIC_CONSUME_OK, NULL) != 0) return cons_fail(c, conn->error);
    return 0;
}

static int cons_loop(perf_consumer *c, cons_state *s)
{
    while (!s->finished && !perf_run_stopping(c->run)) {
        if (cons_read(c, s) != 0) return -1;
        if (perf_conn_flush_some(&s->conn) != 0) return cons_fail(c, s->conn.error);
        if (s->finished) break;
        if (perf_conn_fill(&s->conn, 100) < 0) return cons_fail(c, s->conn.error);
    }
    if (c->run->o->auto_ack || s->last_tag == 0) return 0;
    if (s->unacked > 0 || s->ack_pending != 0) {
        s->ack_pending = 0;
        if (perf_conn_flush(&s->conn) == 0) cons_ack(s, s->last_tag, true);
    }
    return 0;
}

void *perf_consumer_main(void *arg)
{
    perf_consumer *c = arg;
    cons_state *s = calloc(1, sizeof *s);
    if (s == NULL) {
        cons_fail(c, "out of memory");
    } else {
        s->conn.fd = -1;
        if (cons_setup(c, s) == 0) {
            __atomic_store_n(&c->ready, true, __ATOMIC_RELEASE);
            cons_loop(c, s);
        }
        perf_conn_close(&s->conn);
        free(s);
    }
    __atomic_store_n(&c->ready, true, __ATOMIC_RELEASE);
    __atomic_store_n(&c->done, true, __ATOMIC_RELEASE);
    return NULL;
}
