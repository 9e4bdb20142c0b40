/*
 * Producer threads. Each owns one connection and channel 1 and publishes
 * one message shape, built once as a template (basic.publish frame, content
 * header, body frames); a batch is the template copied into the send buffer
 * again and again with the stamp patched in (send time, run tag, producer,
 * sequence), then written with one send(). Confirms, returns and closes are
 * read between batches, never while a batch is half built.
 *
 * Publisher confirms (-c N): delivery tags are 1, 2, ... on the channel;
 * send times of the tags in flight live in a ring of N entries, and no tag
 * is published while the oldest unconfirmed one is N behind, so a tag never
 * shares its slot with another in flight.
 */
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "net/amqp_props.h"
#include "tools/amqp-perf/perf.h"

typedef struct prod_state {
    perf_conn conn;
    uint8_t *msg; /* the template */
    size_t msg_len;
    size_t stamp_off; /* first body byte in msg; only used when size >= 16 */
    uint64_t seq;     /* messages published */
    uint64_t *sent_ns;    /* confirm ring, 0 = confirmed */
    uint64_t unconfirmed; /* lowest tag not yet confirmed (tags start at 1) */
    uint64_t outstanding;
} prod_state;

static int prod_fail(perf_producer *p, const char *why)
{
    snprintf(p->error, sizeof p->error, "producer %u: %.400s", p->index, why);
    p->failed = true;
    return -1;
}

static int prod_template(perf_producer *p, prod_state *s)
{
    const perf_opts *o = p->run->o;
    amqp_method m = {.id = AMQP_BASIC_PUBLISH};
    m.a.basic_publish.exchange = amqp_cstr(o->exchange);
    m.a.basic_publish.routing_key = amqp_cstr(perf_routing_key_for(p->run, p->queue_index));
    m.a.basic_publish.mandatory = o->mandatory;
    amqp_basic_props props = {0};
    if (o->persistent) {
        props.flags = AMQP_PROP_DELIVERY_MODE;
        props.delivery_mode = 2;
    }
    uint8_t raw[16];
    amqp_error err;
    ssize_t raw_len = amqp_props_encode(&props, raw, sizeof raw, &err);
    ASSERT(raw_len > 0);
    uint32_t fmax = s->conn.frame_max;
    size_t cap = 512 + amqp_frame_content_size(fmax, (size_t)raw_len, o->size_bytes);
    s->msg = calloc(1, cap);
    uint8_t *body = calloc(1, o->size_bytes + 1);
    if (s->msg == NULL || body == NULL) return prod_fail(p, "out of memory");
    ssize_t n = amqp_frame_write_method(s->msg, cap, 1, &m, &err);
    ASSERT(n > 0);
    s->stamp_off = (size_t)n + amqp_frame_content_size(fmax, (size_t)raw_len, 0) +
                   AMQP_FRAME_HEADER_BYTES;
    ssize_t c = amqp_frame_write_content(s->msg + n, cap - (size_t)n, 1, fmax, AMQP_BASIC_CLASS_ID,
                                         (amqp_bytes){raw, (uint32_t)raw_len}, body,
                                         o->size_bytes, &err);
    free(body);
    if (c < 0) return prod_fail(p, err.text);
    s->msg_len = (size_t)n + (size_t)c;
    ASSERT(o->size_bytes < PERF_STAMP_BYTES || s->stamp_off + PERF_STAMP_BYTES <= s->msg_len);
    return 0;
}

static void prod_stamp(const perf_producer *p, uint8_t *msg, size_t off, uint64_t now_ns,
                       uint64_t seq)
{
    uint16_t tag = p->run->run_tag, id = (uint16_t)p->index;
    uint32_t seq32 = (uint32_t)seq;
    memcpy(msg + off, &now_ns, 8);
    memcpy(msg + off + 8, &tag, 2);
    memcpy(msg + off + 10, &id, 2);
    memcpy(msg + off + 12, &seq32, 4);
}

/* How many messages may go now; *wait_ms how long to wait when none. */
static uint64_t prod_allowance(perf_producer *p, prod_state *s, uint64_t now_ns, int *wait_ms)
{
    const perf_opts *o = p->run->o;
    uint64_t n = s->msg_len <= PERF_BATCH_BYTES ? PERF_BATCH_BYTES / s->msg_len : 1;
    *wait_ms = 100;
    if (s->conn.blocked || s->conn.wlen > 0) return 0;
    if (o->pmessages > 0 && o->pmessages - s->seq < n) n = o->pmessages - s->seq;
    if (o->confirm_window > 0) {
        uint64_t next_tag = s->seq + 1, room = s->unconfirmed + o->confirm_window - next_tag;
        if (room < n) n = room;
    }
    if (o->rate_per_s > 0) {
        double due = o->rate_per_s * (double)(now_ns - p->run->start_ns) / 1e9;
        uint64_t allowed = due > (double)s->seq ? (uint64_t)due - s->seq : 0;
        if (allowed < n) n = allowed;
        if (n == 0) {
            double next_ns = (double)(s->seq + 1) / o->rate_per_s * 1e9 -
                             (double)(now_ns - p->run->start_ns);
            *wait_ms = (int)(next_ns / 1e6) + 1;
            if (*wait_ms > 100) *wait_ms = 100;
        }
    }
    return n;
}

static int prod_publish(perf_producer *p, prod_state *s, uint64_t n, uint64_t now_ns)
{
    const perf_opts *o = p->run->o;
    bool stamp = o->size_bytes >= PERF_STAMP_BYTES;
    for (uint64_t i = 0; i < n; i++, s->seq++) {
        if (o->confirm_window > 0) {
            s->sent_ns[(s->seq + 1) % o->confirm_window] = now_ns;
            s->outstanding++;
        }
        if (s->msg_len > PERF_BATCH_BYTES) {
            if (stamp) prod_stamp(p, s->msg, s->stamp_off, now_ns, s->seq);
            if (perf_conn_write_all(&s->conn, s->msg, s->msg_len) != 0)
                return prod_fail(p, s->conn.error);
            continue;
        }
        uint8_t *dst = s->conn.wbuf + s->conn.wlen;
        ASSERT(perf_conn_wroom(&s->conn) >= s->msg_len);
        memcpy(dst, s->msg, s->msg_len);
        if (stamp) prod_stamp(p, dst, s->stamp_off, now_ns, s->seq);
        s->conn.wlen += s->msg_len;
    }
    perf_count_add(&p->ctr.published, n);
    return 0;
}

static void prod_confirm_one(perf_producer *p, prod_state *s, uint64_t tag, bool ack,
                             uint64_t now_ns)
{
    uint64_t *slot = &s->sent_ns[tag % p->run->o->confirm_window];
    if (*slot == 0) return;
    perf_hist_record(&p->ctr.confirm_latency, now_ns - *slot);
    *slot = 0;
    s->outstanding--;
    perf_count_add(ack ? &p->ctr.confirmed : &p->ctr.nacked, 1);
}

static void prod_confirm(perf_producer *p, prod_state *s, uint64_t tag, bool multiple, bool ack)
{
    const perf_opts *o = p->run->o;
    if (o->confirm_window == 0 || tag < s->unconfirmed || tag > s->seq) return;
    uint64_t now_ns = perf_now_ns();
    if (multiple) {
        for (uint64_t t = s->unconfirmed; t <= tag; t++) prod_confirm_one(p, s, t, ack, now_ns);
    } else {
        prod_confirm_one(p, s, tag, ack, now_ns);
    }
    while (s->unconfirmed <= s->seq && s->sent_ns[s->unconfirmed % o->confirm_window] == 0)
        s->unconfirmed++;
}

/* Confirms, returns, blocks and closes; content frames of returns skipped. */
static int prod_read(perf_producer *p, prod_state *s)
{
    amqp_frame f;
    int r;
    while ((r = perf_conn_next_frame(&s->conn, &f)) == 1) {
        if (f.type != AMQP_FRAME_METHOD) continue;
        if (perf_conn_check_close(&s->conn, &f)) return prod_fail(p, s->conn.error);
        amqp_method m;
        amqp_error err;
        if (!amqp_method_decode(f.payload, f.payload_len, &m, &err)) return prod_fail(p, err.text);
        switch (m.id) {
        case AMQP_BASIC_ACK:
            prod_confirm(p, s, m.a.basic_ack.delivery_tag, m.a.basic_ack.multiple, true);
            break;
        case AMQP_BASIC_NACK:
            prod_confirm(p, s, m.a.basic_nack.delivery_tag, m.a.basic_nack.multiple, false);
            break;
        case AMQP_BASIC_RETURN: perf_count_add(&p->ctr.returned, 1); break;
        case AMQP_CONNECTION_BLOCKED: s->conn.blocked = true; break;
        case AMQP_CONNECTION_UNBLOCKED: s->conn.blocked = false; break;
        default: break;
        }
    }
    return r < 0 ? prod_fail(p, s->conn.error) : 0;
}

static int prod_loop(perf_producer *p, prod_state *s)
{
    const perf_opts *o = p->run->o;
    for (;;) {
        bool all_sent = o->pmessages > 0 && s->seq >= o->pmessages;
        if (all_sent && s->outstanding == 0 && s->conn.wlen == 0) return 0;
        if (perf_run_stopping(p->run)) return 0;
        int wait_ms = 100;
        uint64_t n = all_sent ? 0 : prod_allowance(p, s, perf_now_ns(), &wait_ms);
        if (n > 0 && prod_publish(p, s, n, perf_now_ns()) != 0) return -1;
        if (perf_conn_flush_some(&s->conn) != 0) return prod_fail(p, s->conn.error);
        if (perf_conn_fill(&s->conn, n > 0 && s->conn.wlen == 0 ? 0 : wait_ms) < 0)
            return prod_fail(p, s->conn.error);
        if (prod_read(p, s) != 0) return -1;
    }
}

void *perf_producer_main(void *arg)
{
    perf_producer *p = arg;
    const perf_opts *o = p->run->o;
    prod_state s = {.unconfirmed = 1};
    if (perf_connect(&s.conn, o, p->index, "producer") != 0) {
        prod_fail(p, s.conn.error);
    } else if (perf_conn_channel_open(&s.conn, 1) != 0) {
        prod_fail(p, s.conn.error);
    } else if (prod_template(p, &s) == 0) {
        amqp_method cs = {.id = AMQP_CONFIRM_SELECT};
        if (o->confirm_window > 0) s.sent_ns = calloc(o->confirm_window, sizeof *s.sent_ns);
        if (o->confirm_window > 0 && s.sent_ns == NULL) prod_fail(p, "out of memory");
        else if (o->confirm_window > 0 &&
                 perf_conn_rpc(&s.conn, 1, &cs, AMQP_CONFIRM_SELECT_OK, NULL) != 0)
            prod_fail(p, s.conn.error);
        else prod_loop(p, &s);
    }
    p->done_ns = perf_now_ns();
    perf_conn_close(&s.conn);
    free(s.msg);
    free(s.sent_ns);
    __atomic_store_n(&p->done, true, __ATOMIC_RELEASE);
    return NULL;
}
