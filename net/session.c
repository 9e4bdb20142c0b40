/*
 * AMQP 0-9-1 connection and channel protocol for one connection. Runs on the
 * connection's shard only. Input arrives as receive-buffer slices; frames
 * are parsed in place and handled at once, and the one frame that straddles
 * two buffers is assembled in a per-connection buffer. Output is appended to
 * the connection's pending buffer and sent at the end of the turn.
 *
 * Phases: header -> start-ok -> tune-ok -> open -> open (running) ->
 * closing (we sent connection.close: only close/close-ok count) -> closed.
 * Error handling follows RabbitMQ: soft errors close the channel
 * (channel.close, then frames on it are dropped until close-ok), hard errors
 * close the connection (connection.close, then we wait for close-ok within
 * LIMIT_CLOSE_OK_WAIT_MS), and every error is logged once.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "net/session.h"

#include "core/assert.h"
#include "core/auth.h"
#include "core/log.h"
#include "core/runtime.h"
#include "net/amqp_frame.h"
#include "net/amqp_props.h"
#include "net/amqp_method.h"
#include "net/amqp_table.h"
#include "net/channel.h"
#include "net/session_internal.h"
#include "net/conn.h"
#include "net/consume.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- output ---- */

void session_send_method(conn *c, uint16_t channel, const amqp_method *m)
{
    size_t size = amqp_method_size(m) + LIMIT_FRAME_OVERHEAD_BYTES;
    ASSERT(size <= UINT32_MAX);
    uint8_t *out = conn_out_reserve(c, (uint32_t)size);
    if (out == NULL) {
        LOG_ERROR("connection %s: out of memory for output; closing", c->peer_name);
        conn_abort(c);
        return;
    }
    amqp_error err;
    ssize_t n = amqp_frame_write_method(out, size, channel, m, &err);
    ASSERT(n == (ssize_t)size);
    conn_out_commit(c, (uint32_t)n);
}

void session_send_content(conn *c, uint16_t channel, amqp_bytes props, const uint8_t *body,
                          uint64_t body_bytes)
{
    uint32_t frame_max = session_of(c)->frame_max;
    size_t size = amqp_frame_content_size(frame_max, props.len, body_bytes);
    uint8_t *out = size <= UINT32_MAX ? conn_out_reserve(c, (uint32_t)size) : NULL;
    if (out == NULL) return conn_abort(c);
    amqp_error err;
    ssize_t n = amqp_frame_write_content(out, size, channel, frame_max, AMQP_BASIC_CLASS_ID, props,
                                         body, body_bytes, &err);
    ASSERT(n == (ssize_t)size);
    conn_out_commit(c, (uint32_t)n);
}

static void session_send_heartbeat(conn *c)
{
    uint8_t *out = conn_out_reserve(c, LIMIT_FRAME_OVERHEAD_BYTES);
    if (out == NULL) return;
    amqp_error err;
    ssize_t n = amqp_frame_write_heartbeat(out, LIMIT_FRAME_OVERHEAD_BYTES, &err);
    ASSERT(n == LIMIT_FRAME_OVERHEAD_BYTES);
    conn_out_commit(c, (uint32_t)n);
}

/* "CODE_NAME - text", as RabbitMQ words its reply texts; truncated to a shortstr. */
static amqp_bytes session_reply_text(char *buf, size_t cap, uint16_t code, const char *fmt,
                                     va_list ap)
{
    ASSERT(cap > LIMIT_SHORTSTR_BYTES_MAX);
    int n = snprintf(buf, cap, "%s - ", amqp_reply_code_name(code));
    int m = vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
    if (len > LIMIT_SHORTSTR_BYTES_MAX) len = LIMIT_SHORTSTR_BYTES_MAX;
    return (amqp_bytes){.data = (const uint8_t *)buf, .len = (uint32_t)len};
}

/* ---- errors ---- */

static void session_close_connection_v(conn *c, uint16_t code, uint32_t method_id,
                                       const char *fmt, va_list ap)
{
    session *s = session_of(c);
    if (s->phase == SESSION_CLOSING || s->phase == SESSION_CLOSED || c->closing) return;
    char text[512];
    amqp_bytes reply = session_reply_text(text, sizeof(text), code, fmt, ap);
    if (s->phase < SESSION_AWAIT_OPEN && code != AMQP_REPLY_ACCESS_REFUSED) {
        /* Before tune-ok is accepted RabbitMQ closes the socket without a
         * connection.close (only a refused login is announced, and only to
         * clients that asked for it). */
        LOG_ERROR("closing AMQP connection %s during the handshake: %.*s", c->peer_name,
                  (int)reply.len, reply.data);
        s->phase = SESSION_CLOSED;
        conn_close_after_flush(c, 0);
        return;
    }
    if (code == AMQP_REPLY_CONNECTION_FORCED || code == AMQP_REPLY_SUCCESS)
        LOG_INFO("closing AMQP connection %s: %.*s", c->peer_name, (int)reply.len, reply.data);
    else
        LOG_ERROR("closing AMQP connection %s (vhost '%s', user '%s'): %.*s", c->peer_name,
                  s->vhost, s->user, (int)reply.len, reply.data);
    amqp_method m = {.id = AMQP_CONNECTION_CLOSE};
    m.a.connection_close.reply_code = code;
    m.a.connection_close.reply_text = reply;
    m.a.connection_close.class_id = (uint16_t)(method_id >> 16);
    m.a.connection_close.method_id = (uint16_t)(method_id & 0xFFFF);
    session_send_method(c, 0, &m);
    s->phase = SESSION_CLOSING;
    timer_arm(&c->shard->timers, &c->heartbeat_timer, c->shard->now_ms + LIMIT_CLOSE_OK_WAIT_MS);
    /* As in RabbitMQ, the channels end with connection.close, not with close-ok: their
     * consumers go and their unacked deliveries are requeued now, so a peer that is slow to
     * answer holds nothing meanwhile, and an auto-delete queue it consumed from goes, also
     * when the broker stops. */
    for (uint32_t i = 0; i < s->channel_slots; i++)
        if (s->channels[i] != NULL) consume_channel_closed(c, s->channels[i]);
}

void session_close_connection(conn *c, uint16_t code, uint32_t method_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    session_close_connection_v(c, code, method_id, fmt, ap);
    va_end(ap);
}

void session_close_channel(conn *c, session_channel *ch, uint16_t code, uint32_t method_id,
                      const char *fmt, ...)
{
    ASSERT(ch != NULL && ch->phase == CHANNEL_OPEN);
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    amqp_bytes reply = session_reply_text(text, sizeof(text), code, fmt, ap);
    va_end(ap);
    LOG_ERROR("channel error on connection %s, channel %u: %.*s", c->peer_name, ch->id,
              (int)reply.len, reply.data);
    amqp_method m = {.id = AMQP_CHANNEL_CLOSE};
    m.a.channel_close.reply_code = code;
    m.a.channel_close.reply_text = reply;
    m.a.channel_close.class_id = (uint16_t)(method_id >> 16);
    m.a.channel_close.method_id = (uint16_t)(method_id & 0xFFFF);
    session_send_method(c, ch->id, &m);
    ch->phase = CHANNEL_CLOSING;
    consume_channel_closed(c, ch);
    ch->pub.state = PUBLISH_IDLE;
}

/* An error found by the codec: hard codes close the connection. */
void session_codec_error(conn *c, const amqp_error *err)
{
    ASSERT(err->reply_code >= 300);
    uint32_t method_id = ((uint32_t)err->class_id << 16) | err->method_id;
    if (err->reply_code == AMQP_REPLY_SYNTAX_ERROR) {
        /* RabbitMQ answers arguments it cannot decode with 501 ("cannot decode"). */
        session_close_connection(c, AMQP_REPLY_FRAME_ERROR, method_id, "cannot decode: %s",
                                 err->text ? err->text : "");
        return;
    }
    session_close_connection(c, err->reply_code, method_id, "%s", err->text ? err->text : "");
}

/* ---- handshake ---- */

static void session_send_start(conn *c)
{
    uint8_t props[1024];
    amqp_table_builder b;
    amqp_table_builder_init(&b, props, sizeof(props));
    amqp_table_open_table(&b, "capabilities");
    static const char *const caps[] = {
        "publisher_confirms",         "exchange_exchange_bindings", "basic.nack",
        "consumer_cancel_notify",     "connection.blocked",         "consumer_priorities",
        "authentication_failure_close", "per_consumer_qos",         "direct_reply_to",
    };
    for (size_t i = 0; i < ARRAY_LEN(caps); i++) amqp_table_add_bool(&b, caps[i], true);
    amqp_table_close(&b);
    amqp_table_add_cstr(&b, "cluster_name", "ringmq");
    amqp_table_add_cstr(&b, "copyright", "Copyright (c) the ringmq developers");
    amqp_table_add_cstr(&b, "information", "ringmq, an AMQP 0-9-1 broker on io_uring");
    amqp_table_add_cstr(&b, "platform", "Linux io_uring, C");
    amqp_table_add_cstr(&b, "product", "ringmq");
    amqp_table_add_cstr(&b, "version", PACKAGE_VERSION);
    amqp_method m = {.id = AMQP_CONNECTION_START};
    ASSERT(amqp_table_builder_finish(&b, &m.a.connection_start.server_properties));
    m.a.connection_start.version_major = 0;
    m.a.connection_start.version_minor = 9;
    m.a.connection_start.mechanisms = amqp_cstr("PLAIN AMQPLAIN");
    m.a.connection_start.locales = amqp_cstr("en_US");
    session_send_method(c, 0, &m);
}

static bool session_table_flag(amqp_table t, const char *key)
{
    amqp_field v;
    return amqp_table_get(t, amqp_cstr(key), &v) && v.type == AMQP_FIELD_BOOL && v.v.boolean;
}

static void session_read_client_capabilities(session *s, amqp_table client_properties)
{
    amqp_field caps;
    if (!amqp_table_get(client_properties, amqp_cstr("capabilities"), &caps)) return;
    if (caps.type != AMQP_FIELD_TABLE) return;
    s->cap_auth_failure_close = session_table_flag(caps.v.table, "authentication_failure_close");
    s->cap_connection_blocked = session_table_flag(caps.v.table, "connection.blocked");
    s->cap_consumer_cancel_notify = session_table_flag(caps.v.table, "consumer_cancel_notify");
}

static void session_refuse_login(conn *c, const char *mechanism, const char *why)
{
    session *s = session_of(c);
    LOG_ERROR("connection %s: %s login refused: %s", c->peer_name, mechanism, why);
    if (s->cap_auth_failure_close) {
        session_close_connection(c, AMQP_REPLY_ACCESS_REFUSED, AMQP_CONNECTION_START_OK,
                                 "Login was refused using authentication mechanism %s. For "
                                 "details see the broker logfile.",
                                 mechanism);
        return;
    }
    s->phase = SESSION_CLOSED; /* RabbitMQ drops such a client without a close */
    conn_close_after_flush(c, 0);
}

static void session_on_start_ok(conn *c, const amqp_connection_start_ok *a)
{
    session *s = session_of(c);
    session_read_client_capabilities(s, a->client_properties);
    auth_credentials cred;
    auth_sasl_result r;
    const char *mech;
    if (amqp_bytes_equal(a->mechanism, amqp_cstr("PLAIN"))) {
        mech = "PLAIN";
        r = auth_sasl_plain_parse(a->response.data, a->response.len, &cred);
    } else if (amqp_bytes_equal(a->mechanism, amqp_cstr("AMQPLAIN"))) {
        mech = "AMQPLAIN";
        r = auth_sasl_amqplain_parse(a->response.data, a->response.len, &cred);
    } else {
        session_close_connection(c, AMQP_REPLY_COMMAND_INVALID, AMQP_CONNECTION_START_OK,
                                 "unknown authentication mechanism '%.*s'",
                                 (int)a->mechanism.len, (const char *)a->mechanism.data);
        return;
    }
    if (r != AUTH_SASL_OK) {
        session_refuse_login(c, mech, "malformed SASL response");
        return;
    }
    const auth_store *auth = c->shard->auth;
    char why[400];
    if (!auth_check_password(auth, cred.user, cred.user_len, cred.pass, cred.pass_len)) {
        snprintf(why, sizeof(why), "user '%.*s' - invalid credentials", (int)cred.user_len,
                 cred.user);
        session_refuse_login(c, mech, why);
        return;
    }
    if (!c->peer_loopback && auth_user_is_loopback_only(auth, cred.user, cred.user_len)) {
        snprintf(why, sizeof(why), "user '%.*s' can only connect via localhost",
                 (int)cred.user_len, cred.user);
        session_refuse_login(c, mech, why);
        return;
    }
    ASSERT(cred.user_len < sizeof(s->user));
    memcpy(s->user, cred.user, cred.user_len);
    s->user[cred.user_len] = '\0';
    const config *cfg = c->shard->cfg;
    amqp_method m = {.id = AMQP_CONNECTION_TUNE};
    m.a.connection_tune.channel_max = cfg->channel_max;
    m.a.connection_tune.frame_max = cfg->frame_max;
    m.a.connection_tune.heartbeat = cfg->heartbeat_s;
    session_send_method(c, 0, &m);
    s->phase = SESSION_AWAIT_TUNE_OK;
}

static void session_on_tune_ok(conn *c, const amqp_connection_tune_ok *a)
{
    session *s = session_of(c);
    const config *cfg = c->shard->cfg;
    /* RabbitMQ's rules: 0 means "no limit", which a server with a limit refuses. */
    uint32_t frame_max = a->frame_max;
    uint16_t channel_max = a->channel_max;
    if (frame_max == 0 || channel_max == 0) {
        session_close_connection(c, AMQP_REPLY_NOT_ALLOWED, AMQP_CONNECTION_TUNE_OK,
                                 "failed to negotiate connection parameters: negotiated "
                                 "frame_max = %u, channel_max = %u, 0 is above the limit",
                                 frame_max, channel_max);
        return;
    }
    if (frame_max < LIMIT_FRAME_BYTES_MIN) {
        session_close_connection(c, AMQP_REPLY_NOT_ALLOWED, AMQP_CONNECTION_TUNE_OK,
                                 "frame_max=%u < %u min size", frame_max, LIMIT_FRAME_BYTES_MIN);
        return;
    }
    if (frame_max > cfg->frame_max) {
        session_close_connection(c, AMQP_REPLY_NOT_ALLOWED, AMQP_CONNECTION_TUNE_OK,
                                 "frame_max=%u > %u max size", frame_max, cfg->frame_max);
        return;
    }
    if (channel_max > cfg->channel_max) {
        session_close_connection(c, AMQP_REPLY_NOT_ALLOWED, AMQP_CONNECTION_TUNE_OK,
                                 "channel_max=%u > %u max", channel_max, cfg->channel_max);
        return;
    }
    s->frame_max = frame_max;
    s->channel_max = channel_max;
    s->heartbeat_s = a->heartbeat;
    s->phase = SESSION_AWAIT_OPEN;
}

static void session_on_open(conn *c, const amqp_connection_open *a)
{
    session *s = session_of(c);
    const auth_store *auth = c->shard->auth;
    const char *vhost = (const char *)a->virtual_host.data;
    if (!auth_vhost_exists(auth, vhost, a->virtual_host.len)) {
        session_close_connection(c, AMQP_REPLY_NOT_ALLOWED, AMQP_CONNECTION_OPEN,
                                 "vhost %.*s not found", (int)a->virtual_host.len, vhost);
        return;
    }
    if (!auth_user_can_access_vhost(auth, s->user, strlen(s->user), vhost, a->virtual_host.len)) {
        session_close_connection(c, AMQP_REPLY_NOT_ALLOWED, AMQP_CONNECTION_OPEN,
                                 "access to vhost '%.*s' refused for user '%s'",
                                 (int)a->virtual_host.len, vhost, s->user);
        return;
    }
    memcpy(s->vhost, vhost, a->virtual_host.len);
    s->vhost[a->virtual_host.len] = '\0';
    amqp_method m = {.id = AMQP_CONNECTION_OPEN_OK};
    m.a.connection_open_ok.known_hosts = amqp_cstr("");
    session_send_method(c, 0, &m);
    s->phase = SESSION_OPEN;
    LOG_INFO("connection %s: user '%s' authenticated and granted access to vhost '%s'",
             c->peer_name, s->user, s->vhost);
    uint64_t now = c->shard->now_ms;
    timer_cancel(&c->shard->timers, &c->heartbeat_timer);
    if (s->heartbeat_s > 0)
        timer_arm(&c->shard->timers, &c->heartbeat_timer, now + s->heartbeat_s * 500u);
    if (c->shard->alarm_seen) session_alarm(c, true);
}

/* ---- connection-level methods and frames ---- */

static void session_method0(conn *c, const amqp_method *m)
{
    session *s = session_of(c);
    amqp_method reply = {.id = 0};
    switch (s->phase) {
    case SESSION_AWAIT_START_OK:
        if (m->id == AMQP_CONNECTION_START_OK) return session_on_start_ok(c, &m->a.connection_start_ok);
        break;
    case SESSION_AWAIT_TUNE_OK:
        if (m->id == AMQP_CONNECTION_TUNE_OK) return session_on_tune_ok(c, &m->a.connection_tune_ok);
        break;
    case SESSION_AWAIT_OPEN:
        if (m->id == AMQP_CONNECTION_OPEN) return session_on_open(c, &m->a.connection_open);
        break;
    case SESSION_OPEN:
        if (m->id == AMQP_CONNECTION_UPDATE_SECRET) {
            reply.id = AMQP_CONNECTION_UPDATE_SECRET_OK;
            session_send_method(c, 0, &reply);
            return;
        }
        break;
    default:
        UNREACHABLE();
    }
    if (m->id == AMQP_CONNECTION_CLOSE) {
        reply.id = AMQP_CONNECTION_CLOSE_OK;
        session_send_method(c, 0, &reply);
        s->phase = SESSION_CLOSED;
        LOG_INFO("closing AMQP connection %s (vhost '%s', user '%s'): client asked to",
                 c->peer_name, s->vhost, s->user);
        conn_close_after_flush(c, LIMIT_CLOSE_OK_WAIT_MS);
        return;
    }
    static const char *const phase_names[] = {"starting", "starting", "tuning",
                                              "opening",  "running",  "closing", "closed"};
    session_close_connection(c, AMQP_REPLY_CHANNEL_ERROR, m->id,
                             "unexpected method in connection state %s", phase_names[s->phase]);
}

/* After our connection.close only close and close-ok count (RabbitMQ's closing state). */
static void session_closing_frame(conn *c, const amqp_frame *f)
{
    if (f->type != AMQP_FRAME_METHOD || f->channel != 0) return;
    amqp_method m;
    amqp_error err;
    if (!amqp_method_decode(f->payload, f->payload_len, &m, &err)) return;
    if (m.id == AMQP_CONNECTION_CLOSE) {
        amqp_method reply = {.id = AMQP_CONNECTION_CLOSE_OK};
        session_send_method(c, 0, &reply);
    } else if (m.id != AMQP_CONNECTION_CLOSE_OK) {
        return;
    }
    session_of(c)->phase = SESSION_CLOSED;
    conn_close_after_flush(c, LIMIT_CLOSE_OK_WAIT_MS);
}

static void session_frame(conn *c, const amqp_frame *f)
{
    session *s = session_of(c);
    if (s->phase == SESSION_CLOSING) return session_closing_frame(c, f);
    if (s->phase == SESSION_CLOSED) return;
    amqp_error err;
    switch (f->type) {
    case AMQP_FRAME_HEARTBEAT:
        if (f->channel != 0)
            session_close_connection(c, AMQP_REPLY_FRAME_ERROR, 0,
                                     "heartbeat frame on channel %u", f->channel);
        return;
    case AMQP_FRAME_METHOD: {
        amqp_method m;
        if (!amqp_method_decode(f->payload, f->payload_len, &m, &err))
            return session_codec_error(c, &err);
        if (f->channel == 0) return session_method0(c, &m);
        if (s->phase != SESSION_OPEN) {
            session_close_connection(c, AMQP_REPLY_UNEXPECTED_FRAME, m.id,
                                     "method frame on channel %u before connection.open-ok",
                                     f->channel);
            return;
        }
        if (amqp_method_class_id(m.id) == 10) {
            session_close_connection(c, AMQP_REPLY_COMMAND_INVALID, m.id,
                                     "%s on channel %u", amqp_method_name(m.id), f->channel);
            return;
        }
        session_channel *ch = session_channel_get(s, f->channel);
        if (ch != NULL && ch->phase == CHANNEL_OPEN && ch->pub.state != PUBLISH_IDLE)
            return session_channel_content(c, ch, f);
        return session_on_channel_frame_method(c, f->channel, &m);
    }
    case AMQP_FRAME_HEADER:
    case AMQP_FRAME_BODY: {
        session_channel *ch = session_channel_get(s, f->channel);
        if (s->phase == SESSION_OPEN && ch != NULL && ch->phase == CHANNEL_CLOSING) return;
        if (s->phase != SESSION_OPEN || ch == NULL) {
            session_close_connection(c, AMQP_REPLY_UNEXPECTED_FRAME, 0,
                                     "expected method frame, got non method frame instead "
                                     "(type %u, channel %u)",
                                     f->type, f->channel);
            return;
        }
        return session_channel_content(c, ch, f);
    }
    default:
        UNREACHABLE(); /* the frame parser refuses other types */
    }
}

/* ---- input ---- */

/* Returns the bytes of data taken by the protocol header, or -1 when the connection is done. */
static int32_t session_input_header(conn *c, const uint8_t *data, uint32_t len)
{
    session *s = session_of(c);
    uint32_t take = AMQP_PROTOCOL_HEADER_BYTES - s->header_len;
    if (take > len) take = len;
    memcpy(s->header + s->header_len, data, take);
    s->header_len = (uint8_t)(s->header_len + take);
    amqp_error err;
    ssize_t r = amqp_protocol_header_parse(s->header, s->header_len, &err);
    if (r == 0) return (int32_t)take; /* a prefix so far */
    if (r < 0) {
        LOG_ERROR("closing connection %s: bad protocol header %02x %02x %02x %02x %02x %02x %02x %02x",
                  c->peer_name, s->header[0], s->header[1], s->header[2], s->header[3],
                  s->header_len > 4 ? s->header[4] : 0, s->header_len > 5 ? s->header[5] : 0,
                  s->header_len > 6 ? s->header[6] : 0, s->header_len > 7 ? s->header[7] : 0);
        uint8_t *out = conn_out_reserve(c, AMQP_PROTOCOL_HEADER_BYTES);
        if (out != NULL) {
            memcpy(out, AMQP_PROTOCOL_HEADER, AMQP_PROTOCOL_HEADER_BYTES);
            conn_out_commit(c, AMQP_PROTOCOL_HEADER_BYTES);
        }
        s->phase = SESSION_CLOSED;
        conn_close_after_flush(c, LIMIT_CLOSE_OK_WAIT_MS);
        return -1;
    }
    session_send_start(c);
    s->phase = SESSION_AWAIT_START_OK;
    return (int32_t)take;
}

static bool session_partial_ready(conn *c)
{
    session *s = session_of(c);
    if (s->partial_buf != NULL) return true;
    uint32_t cap = c->shard->cfg->frame_max;
    s->partial_buf = mi_heap_malloc(c->shard->heap, cap);
    if (s->partial_buf == NULL) {
        LOG_ERROR("connection %s: out of memory for frame assembly", c->peer_name);
        conn_abort(c);
        return false;
    }
    amqp_frame_assembler_init(&s->partial, s->partial_buf, cap);
    return true;
}

static bool session_input_done(conn *c)
{
    return c->closing || session_of(c)->phase == SESSION_CLOSED;
}

/* Keeps data for later, after what is already kept. */
static void session_defer(conn *c, const uint8_t *data, uint32_t len)
{
    session *s = session_of(c);
    if (len == 0) return;
    if (s->deferred_off > 0 && s->deferred_off >= s->deferred_len / 2) {
        /* Drop what was replayed before growing. */
        memmove(s->deferred, s->deferred + s->deferred_off, s->deferred_len - s->deferred_off);
        s->deferred_len -= s->deferred_off;
        s->deferred_off = 0;
    }
    if (s->deferred_len + len > s->deferred_capacity) {
        uint32_t capacity = s->deferred_capacity ? s->deferred_capacity : LIMIT_RECV_BUFFER_BYTES;
        while (capacity < s->deferred_len + len) capacity *= 2;
        uint8_t *buf = mi_heap_realloc(c->shard->heap, s->deferred, capacity);
        if (buf == NULL) {
            LOG_ERROR("connection %s: out of memory holding input", c->peer_name);
            conn_abort(c);
            return;
        }
        s->deferred = buf;
        s->deferred_capacity = capacity;
    }
    memcpy(s->deferred + s->deferred_len, data, len);
    s->deferred_len += len;
}

void session_block_input(conn *c)
{
    session *s = session_of(c);
    ASSERT(!s->input_blocked);
    s->input_blocked = true;
    conn_recv_hold(c, CONN_HOLD_PENDING, true);
}

/* Parses and handles frames from data until it is used up, the connection
 * stops, or a channel makes input wait; returns the bytes used. A trailing
 * partial frame is taken into the assembler, so it counts as used. */
static uint32_t session_consume(conn *c, const uint8_t *data, uint32_t len)
{
    session *s = session_of(c);
    uint32_t off = 0;
    if (s->phase == SESSION_AWAIT_HEADER) {
        int32_t n = session_input_header(c, data, len);
        if (n < 0 || s->phase == SESSION_AWAIT_HEADER) return len;
        off = (uint32_t)n;
    }
    amqp_frame f;
    amqp_error err;
    if (s->partial_buf != NULL && amqp_frame_assembler_busy(&s->partial)) {
        bool complete = false;
        ssize_t n = amqp_frame_assembler_feed(&s->partial, data + off, len - off, s->frame_max,
                                              &f, &complete, &err);
        if (n < 0) {
            session_codec_error(c, &err);
            return len;
        }
        off += (uint32_t)n;
        if (!complete) return len;
        session_frame(c, &f);
        /* Split frames are the exception: give the assembly buffer back. */
        mi_free(s->partial_buf);
        s->partial_buf = NULL;
    }
    while (off < len && !session_input_done(c) && !s->input_blocked) {
        ssize_t n = amqp_frame_parse(data + off, len - off, s->frame_max, &f, &err);
        if (n < 0) {
            session_codec_error(c, &err);
            return len;
        }
        if (n == 0) {
            if (!session_partial_ready(c)) return len;
            bool complete = false;
            n = amqp_frame_assembler_feed(&s->partial, data + off, len - off, s->frame_max, &f,
                                          &complete, &err);
            if (n < 0) session_codec_error(c, &err);
            ASSERT(n < 0 || (!complete && (uint32_t)n == len - off));
            return len;
        }
        off += (uint32_t)n;
        session_frame(c, &f);
    }
    return session_input_done(c) ? len : off;
}

void session_resume_input(conn *c)
{
    session *s = session_of(c);
    ASSERT(s->input_blocked);
    s->input_blocked = false;
    /* Replay the held bytes in place; what is left when input waits again
     * stays where it is (no copy per turn). */
    while (s->deferred_off < s->deferred_len && !s->input_blocked && !c->closing) {
        uint32_t n = session_consume(c, s->deferred + s->deferred_off, s->deferred_len - s->deferred_off);
        s->deferred_off += n;
        if (n == 0) break;
    }
    if (s->deferred_off == s->deferred_len || c->closing) {
        mi_free(s->deferred);
        s->deferred = NULL;
        s->deferred_len = s->deferred_capacity = s->deferred_off = 0;
    }
    if (!s->input_blocked) conn_recv_hold(c, CONN_HOLD_PENDING, false);
}

void session_input(conn *c, const uint8_t *data, uint32_t len)
{
    session *s = session_of(c);
    if (s->input_blocked) return session_defer(c, data, len);
    uint32_t used = session_consume(c, data, len);
    if (used < len && s->input_blocked) session_defer(c, data + used, len - used);
}

/* ---- timers, lifecycle ---- */

static void session_on_timer(timer *t, uint64_t now_ms)
{
    conn *c = (conn *)((char *)t - offsetof(conn, heartbeat_timer));
    session *s = session_of(c);
    if (c->closing) return;
    if (s->phase < SESSION_OPEN) {
        LOG_ERROR("closing connection %s: handshake timeout", c->peer_name);
        conn_abort(c);
        return;
    }
    if (s->phase == SESSION_CLOSING || s->phase == SESSION_CLOSED) {
        conn_abort(c); /* no close-ok in time */
        return;
    }
    uint64_t interval_ms = (uint64_t)s->heartbeat_s * 1000u;
    ASSERT(interval_ms > 0);
    if (now_ms - c->last_recv_ms >= 2 * interval_ms) {
        LOG_ERROR("closing connection %s: missed heartbeats from client, timeout: %us",
                  c->peer_name, s->heartbeat_s);
        conn_abort(c);
        return;
    }
    if (now_ms - c->last_send_ms >= interval_ms / 2 && conn_out_unsent(c) == 0)
        session_send_heartbeat(c);
    timer_arm(&c->shard->timers, &c->heartbeat_timer, now_ms + interval_ms / 2);
}

void session_init(conn *c)
{
    session *s = session_of(c);
    memset(s, 0, sizeof(*s));
    s->phase = SESSION_AWAIT_HEADER;
    s->frame_max = c->shard->cfg->frame_max;
    s->channel_max = c->shard->cfg->channel_max;
    timer_init(&c->heartbeat_timer, session_on_timer);
    timer_arm(&c->shard->timers, &c->heartbeat_timer, c->shard->now_ms + LIMIT_HANDSHAKE_MS);
}

void session_free(conn *c)
{
    session *s = session_of(c);
    declare_connection_gone(c);
    for (uint32_t i = 0; i < s->channel_slots; i++)
        if (s->channels[i] != NULL) session_channel_free(c, s->channels[i]);
    mi_free(s->channels);
    s->channels = NULL;
    s->channel_slots = 0;
    s->channels_open = 0;
    mi_free(s->partial_buf);
    s->partial_buf = NULL;
    mi_free(s->deferred);
    s->deferred = NULL;
}

void session_output_backlog(conn *c, bool high)
{
    session *s = session_of(c);
    if (s->phase != SESSION_OPEN) return;
    for (uint32_t i = 0; i < s->channel_slots; i++)
        if (s->channels[i] != NULL && s->channels[i]->phase == CHANNEL_OPEN)
            consume_channel_backlog(c, s->channels[i], high);
}

uint64_t session_conn_id(const conn *c)
{
    return ((uint64_t)c->shard->id << 56) | ((uint64_t)c->index << 32) | c->generation;
}

void session_peer_closed(conn *c, int err)
{
    session *s = session_of(c);
    if (s->phase != SESSION_CLOSED && s->phase != SESSION_CLOSING && s->phase != SESSION_AWAIT_HEADER)
        LOG_WARN("connection %s (vhost '%s', user '%s') closed by the client without "
                 "connection.close%s%s",
                 c->peer_name, s->vhost, s->user, err ? ": " : "", err ? strerror(err) : "");
    s->phase = SESSION_CLOSED;
    conn_abort(c);
}

void session_shutdown(conn *c)
{
    session *s = session_of(c);
    if (s->phase == SESSION_AWAIT_HEADER) {
        conn_abort(c);
        return;
    }
    session_close_connection(c, AMQP_REPLY_CONNECTION_FORCED, 0,
                             "broker forced connection closure with reason 'shutdown'");
}

void session_alarm(conn *c, bool raised)
{
    session *s = session_of(c);
    if (s->phase != SESSION_OPEN) return;
    if (raised && s->cap_connection_blocked && !s->blocked_sent) {
        amqp_method m = {.id = AMQP_CONNECTION_BLOCKED};
        /* RabbitMQ's reasons: the disk alarm wins when both are raised. */
        bool disk = atomic_load(&c->shard->rt->disk_alarm) != 0;
        m.a.connection_blocked.reason = amqp_cstr(disk ? "low on disk" : "low on memory");
        session_send_method(c, 0, &m);
        s->blocked_sent = true;
    } else if (!raised && s->blocked_sent) {
        amqp_method m = {.id = AMQP_CONNECTION_UNBLOCKED};
        session_send_method(c, 0, &m);
        s->blocked_sent = false;
    }
    if (s->publisher) conn_recv_hold(c, CONN_HOLD_BLOCKED, raised);
}
