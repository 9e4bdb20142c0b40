/*
 * `amqp-perf sink`: a do-nothing AMQP 0-9-1 server to measure the tool
 * itself. It does the handshake (any PLAIN credentials), answers every
 * topology method with its -ok, discards publishes (acking them in one
 * multiple ack per read when the channel is in confirm mode), and pushes
 * basic.deliver frames to each consumer as fast as the socket takes them,
 * within the prefetch window when acks are manual.
 *
 * One thread per accepted connection; it owns its socket and channel table.
 * Deliveries come from a template (basic.deliver, header, -s byte body)
 * whose delivery tag is patched per message, so the sink spends next to
 * nothing per message and the figures are the client's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/assert.h"
#include "net/amqp_props.h"
#include "net/amqp_table.h"
#include "tools/amqp-perf/perf.h"

enum { SINK_CHANNELS = 2048, SINK_TAG_BYTES = 64 };

typedef struct sink_channel {
    bool confirm, consuming, no_ack;
    uint64_t published, confirmed; /* publishes seen, confirm tag sent */
    uint64_t delivered, acked;     /* delivery tags */
    uint32_t prefetch;
    uint8_t *tmpl; /* delivery template */
    size_t tmpl_len, tag_off;
} sink_channel;

typedef struct sink_conn {
    perf_conn c;
    const perf_opts *o;
    sink_channel *ch;
    uint32_t queues; /* for generated names */
    bool closing;
} sink_conn;

static uint64_t sink_received, sink_delivered; /* all connections, relaxed */

static int sink_send(sink_conn *s, uint16_t channel, amqp_method *m)
{
    return perf_conn_put_method(&s->c, channel, m);
}

static int sink_start(sink_conn *s)
{
    uint8_t props[256];
    amqp_table_builder b;
    amqp_table_builder_init(&b, props, sizeof props);
    amqp_table_add_cstr(&b, "product", "amqp-perf sink");
    amqp_table_open_table(&b, "capabilities");
    amqp_table_add_bool(&b, "publisher_confirms", true);
    amqp_table_add_bool(&b, "basic.nack", true);
    amqp_table_add_bool(&b, "consumer_cancel_notify", true);
    amqp_table_add_bool(&b, "exchange_exchange_bindings", true);
    amqp_table_close(&b);
    amqp_method m = {.id = AMQP_CONNECTION_START};
    m.a.connection_start.version_minor = 9;
    if (!amqp_table_builder_finish(&b, &m.a.connection_start.server_properties)) return -1;
    m.a.connection_start.mechanisms = amqp_cstr("PLAIN AMQPLAIN");
    m.a.connection_start.locales = amqp_cstr("en_US");
    return sink_send(s, 0, &m);
}

/* A delivery for this consumer: tag patched per message, body stamped. */
static int sink_template(sink_conn *s, sink_channel *ch, uint16_t channel, amqp_bytes ctag)
{
    amqp_method m = {.id = AMQP_BASIC_DELIVER};
    m.a.basic_deliver.consumer_tag = ctag;
    m.a.basic_deliver.delivery_tag = 0;
    m.a.basic_deliver.routing_key = amqp_cstr("sink");
    uint32_t size = s->o->size_bytes;
    size_t cap = 512 + amqp_frame_content_size(s->c.frame_max, 2, size);
    uint8_t *body = calloc(1, size + 1);
    free(ch->tmpl);
    ch->tmpl = malloc(cap);
    if (body == NULL || ch->tmpl == NULL) return -1;
    amqp_error err;
    ssize_t n = amqp_frame_write_method(ch->tmpl, cap, channel, &m, &err);
    uint8_t noprops[2] = {0, 0};
    ssize_t c = n < 0 ? -1
                      : amqp_frame_write_content(ch->tmpl + n, cap - (size_t)n, channel,
                                                 s->c.frame_max, AMQP_BASIC_CLASS_ID,
                                                 (amqp_bytes){noprops, 2}, body, size, &err);
    free(body);
    if (c < 0) return -1;
    ch->tmpl_len = (size_t)(n + c);
    ch->tag_off = AMQP_FRAME_HEADER_BYTES + 4 + 1 + ctag.len;
    return 0;
}

static int sink_consume(sink_conn *s, uint16_t channel, const amqp_basic_consume *a)
{
    sink_channel *ch = &s->ch[channel];
    char tag[SINK_TAG_BYTES];
    amqp_bytes ctag = a->consumer_tag;
    if (ctag.len == 0 || ctag.len >= SINK_TAG_BYTES) {
        snprintf(tag, sizeof tag, "amq.ctag-sink-%u", channel);
        ctag = amqp_cstr(tag);
    }
    ch->consuming = true;
    ch->no_ack = a->no_ack;
    if (sink_template(s, ch, channel, ctag) != 0) return -1;
    if (a->nowait) return 0;
    amqp_method ok = {.id = AMQP_BASIC_CONSUME_OK};
    ok.a.basic_consume_ok.consumer_tag = ctag;
    return sink_send(s, channel, &ok);
}

static int sink_queue_declare(sink_conn *s, uint16_t channel, const amqp_queue_declare *a)
{
    char name[PERF_NAME_BYTES_MAX];
    amqp_method ok = {.id = AMQP_QUEUE_DECLARE_OK};
    if (a->queue.len == 0) {
        snprintf(name, sizeof name, "amq.gen-sink-%u", ++s->queues);
        ok.a.queue_declare_ok.queue = amqp_cstr(name);
    } else {
        ok.a.queue_declare_ok.queue = a->queue;
    }
    return a->nowait ? 0 : sink_send(s, channel, &ok);
}

/* The -ok each synchronous request gets; 0 when it needs none. */
static amqp_method_id sink_reply_of(amqp_method_id id)
{
    switch (id) {
    case AMQP_CONNECTION_OPEN: return AMQP_CONNECTION_OPEN_OK;
    case AMQP_CHANNEL_OPEN: return AMQP_CHANNEL_OPEN_OK;
    case AMQP_CHANNEL_CLOSE: return AMQP_CHANNEL_CLOSE_OK;
    case AMQP_EXCHANGE_DECLARE: return AMQP_EXCHANGE_DECLARE_OK;
    case AMQP_EXCHANGE_DELETE: return AMQP_EXCHANGE_DELETE_OK;
    case AMQP_EXCHANGE_BIND: return AMQP_EXCHANGE_BIND_OK;
    case AMQP_EXCHANGE_UNBIND: return AMQP_EXCHANGE_UNBIND_OK;
    case AMQP_QUEUE_BIND: return AMQP_QUEUE_BIND_OK;
    case AMQP_QUEUE_UNBIND: return AMQP_QUEUE_UNBIND_OK;
    case AMQP_QUEUE_PURGE: return AMQP_QUEUE_PURGE_OK;
    case AMQP_QUEUE_DELETE: return AMQP_QUEUE_DELETE_OK;
    case AMQP_BASIC_QOS: return AMQP_BASIC_QOS_OK;
    case AMQP_CONFIRM_SELECT: return AMQP_CONFIRM_SELECT_OK;
    case AMQP_CONNECTION_CLOSE: return AMQP_CONNECTION_CLOSE_OK;
    default: return 0;
    }
}

static void sink_ack(sink_channel *ch, uint64_t tag, bool multiple)
{
    if (tag > ch->delivered) return;
    if (multiple) ch->acked = tag > ch->acked ? tag : ch->acked;
    else ch->acked++; /* in-order single acks, as amqp-perf sends them */
}

static int sink_method(sink_conn *s, uint16_t channel, const amqp_method *m)
{
    sink_channel *ch = &s->ch[channel];
    switch (m->id) {
    case AMQP_CONNECTION_START_OK: {
        amqp_method t = {.id = AMQP_CONNECTION_TUNE};
        t.a.connection_tune = (amqp_connection_tune){SINK_CHANNELS - 1, PERF_FRAME_BYTES, 0};
        return sink_send(s, 0, &t);
    }
    case AMQP_CONNECTION_TUNE_OK:
        if (m->a.connection_tune_ok.frame_max >= LIMIT_FRAME_BYTES_MIN)
            s->c.frame_max = m->a.connection_tune_ok.frame_max;
        return 0;
    case AMQP_QUEUE_DECLARE: return sink_queue_declare(s, channel, &m->a.queue_declare);
    case AMQP_BASIC_CONSUME: return sink_consume(s, channel, &m->a.basic_consume);
    case AMQP_BASIC_CANCEL: {
        ch->consuming = false;
        amqp_method ok = {.id = AMQP_BASIC_CANCEL_OK};
        ok.a.basic_cancel_ok.consumer_tag = m->a.basic_cancel.consumer_tag;
        return m->a.basic_cancel.nowait ? 0 : sink_send(s, channel, &ok);
    }
    case AMQP_BASIC_ACK: sink_ack(ch, m->a.basic_ack.delivery_tag, m->a.basic_ack.multiple); return 0;
    case AMQP_BASIC_QOS: ch->prefetch = m->a.basic_qos.prefetch_count; break;
    case AMQP_CONFIRM_SELECT: ch->confirm = true; break;
    case AMQP_CHANNEL_CLOSE: free(ch->tmpl); *ch = (sink_channel){0}; break;
    case AMQP_CONNECTION_CLOSE: s->closing = true; break;
    default: break;
    }
    amqp_method_id reply = sink_reply_of(m->id);
    if (reply == 0) return 0;
    amqp_method ok = {.id = reply};
    return sink_send(s, channel, &ok);
}

/* Every complete frame of the receive buffer; publishes on the fast path. */
static int sink_read(sink_conn *s, uint64_t *received)
{
    static const uint8_t publish_id[4] = {0, 60, 0, 40};
    amqp_frame f;
    int r;
    while ((r = perf_conn_next_frame(&s->c, &f)) == 1) {
        if (f.type != AMQP_FRAME_METHOD) continue; /* content of publishes, heartbeats */
        if (f.channel >= SINK_CHANNELS) return -1;
        if (f.payload_len >= 4 && memcmp(f.payload, publish_id, 4) == 0) {
            s->ch[f.channel].published++;
            ++*received;
            continue;
        }
        amqp_method m;
        amqp_error err;
        if (!amqp_method_decode(f.payload, f.payload_len, &m, &err)) return -1;
        if (sink_method(s, f.channel, &m) != 0) return -1;
    }
    return r;
}

/* Confirms for what was read, then deliveries while the window and the
 * send buffer allow. Returns deliveries written. */
static uint64_t sink_pump(sink_conn *s, uint64_t now_ns)
{
    uint64_t n = 0;
    for (uint32_t i = 1; i < SINK_CHANNELS; i++) {
        sink_channel *ch = &s->ch[i];
        if (ch->confirm && ch->published > ch->confirmed && perf_conn_wroom(&s->c) >= 64) {
            amqp_method m = {.id = AMQP_BASIC_ACK};
            m.a.basic_ack = (amqp_basic_ack){ch->published, true};
            if (sink_send(s, (uint16_t)i, &m) == 0) ch->confirmed = ch->published;
        }
        if (!ch->consuming) continue;
        while (perf_conn_wroom(&s->c) >= ch->tmpl_len &&
               s->c.wlen < PERF_BATCH_BYTES &&
               (ch->no_ack || ch->prefetch == 0 || ch->delivered - ch->acked < ch->prefetch)) {
            uint8_t *d = s->c.wbuf + s->c.wlen;
            uint64_t tag_be = __builtin_bswap64(++ch->delivered);
            memcpy(d, ch->tmpl, ch->tmpl_len);
            memcpy(d + ch->tag_off, &tag_be, 8);
            if (s->o->size_bytes >= 8 && s->o->size_bytes + 8 <= s->c.frame_max) memcpy(d + ch->tmpl_len - 1 - s->o->size_bytes, &now_ns, 8);
            s->c.wlen += ch->tmpl_len;
            n++;
        }
    }
    return n;
}

static void sink_serve(sink_conn *s)
{
    while (s->c.rtail - s->c.rhead < AMQP_PROTOCOL_HEADER_BYTES)
        if (perf_conn_fill(&s->c, 1000) < 0) return;
    amqp_error err;
    if (amqp_protocol_header_parse(s->c.rbuf + s->c.rhead, AMQP_PROTOCOL_HEADER_BYTES, &err) !=
        AMQP_PROTOCOL_HEADER_BYTES)
        return;
    s->c.rhead += AMQP_PROTOCOL_HEADER_BYTES;
    if (sink_start(s) != 0) return;
    uint64_t received = 0;
    while (!s->closing) {
        if (sink_read(s, &received) < 0) return;
        __atomic_fetch_add(&sink_received, received, __ATOMIC_RELAXED);
        received = 0;
        uint64_t sent = sink_pump(s, perf_now_ns());
        __atomic_fetch_add(&sink_delivered, sent, __ATOMIC_RELAXED);
        if (perf_conn_flush_some(&s->c) != 0) return;
        if (perf_conn_fill(&s->c, sent > 0 && s->c.wlen == 0 ? 0 : 1000) < 0) return;
    }
    perf_conn_flush(&s->c);
}

static void *sink_thread(void *arg)
{
    sink_conn *s = arg;
    sink_serve(s);
    for (uint32_t i = 0; i < SINK_CHANNELS; i++) free(s->ch[i].tmpl);
    perf_conn_drop(&s->c);
    free(s->ch);
    free(s);
    return NULL;
}

static void *sink_stats(void *arg)
{
    (void)arg;
    uint64_t r0 = 0, d0 = 0;
    for (;;) {
        perf_sleep_ns(1000000000u);
        uint64_t r = __atomic_load_n(&sink_received, __ATOMIC_RELAXED);
        uint64_t d = __atomic_load_n(&sink_delivered, __ATOMIC_RELAXED);
        if (r != r0 || d != d0)
            fprintf(stderr, "sink: received %llu msg/s, delivered %llu msg/s\n",
                    (unsigned long long)(r - r0), (unsigned long long)(d - d0));
        r0 = r, d0 = d;
    }
    return NULL;
}

static int sink_listen(const perf_opts *o)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(o->sink_port)};
    if (inet_pton(AF_INET, o->sink_bind, &a.sin_addr) != 1) {
        fprintf(stderr, "amqp-perf sink: bad address %s\n", o->sink_bind);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0) {
        fprintf(stderr, "amqp-perf sink: %s:%u: %s\n", o->sink_bind, o->sink_port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int perf_sink(const perf_opts *o)
{
    int lfd = sink_listen(o);
    if (lfd < 0) return 1;
    fprintf(stderr, "amqp-perf sink listening on %s:%u\n", o->sink_bind, o->sink_port);
    pthread_t t;
    if (pthread_create(&t, NULL, sink_stats, NULL) == 0) pthread_detach(t);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
            fprintf(stderr, "amqp-perf sink: accept: %s\n", strerror(errno));
            return 1;
        }
        sink_conn *s = calloc(1, sizeof *s);
        if (s != NULL) s->ch = calloc(SINK_CHANNELS, sizeof *s->ch);
        if (s == NULL || s->ch == NULL) {
            close(fd);
            if (s != NULL) free(s->ch);
            free(s);
            continue;
        }
        if (perf_conn_adopt(&s->c, fd) != 0) {
            perf_conn_drop(&s->c);
            free(s->ch);
            free(s);
            continue;
        }
        s->o = o;
        if (pthread_create(&t, NULL, sink_thread, s) != 0) sink_thread(s);
        else pthread_detach(t);
    }
}
