/*
 * A small librabbitmq (rabbitmq-c) client for the interop tests, built and
 * driven by tests/interop/test_clients.py:
 *
 *   rmqc_client HOST PORT QUEUE N
 *
 * declares QUEUE, publishes N messages with publisher confirms plus one
 * mandatory unroutable message (expects basic.return 312 before its ack),
 * gets the first message with basic.get, consumes the rest with acks and
 * checks their order and contents, publishes one 1 MiB message and reads it
 * back, deletes the queue and closes.  Prints one line per step and "OK" at
 * the end; exits non-zero with a "FAIL: ..." line on the first problem.
 * Every wait is bounded (5 s).
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(1);
}

static void check_rpc(amqp_connection_state_t conn, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            fail("%s: channel.close %u %.*s", what, m->reply_code, (int)m->reply_text.len,
                 (char *)m->reply_text.bytes);
        }
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            fail("%s: connection.close %u %.*s", what, m->reply_code, (int)m->reply_text.len,
                 (char *)m->reply_text.bytes);
        }
        fail("%s: server exception, method 0x%08x", what, r.reply.id);
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        fail("%s: %s", what, amqp_error_string2(r.library_error));
    fail("%s: no reply", what);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST PORT QUEUE N\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    const char *queue = argv[3];
    int n = atoi(argv[4]);
    if (n < 2 || n > 100000) fail("N out of range");

    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (sock == NULL) fail("socket");
    struct timeval tv = {5, 0};
    if (amqp_socket_open_noblock(sock, host, port, &tv) != AMQP_STATUS_OK) fail("connect");
    amqp_rpc_reply_t lr = amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest",
                                     "guest");
    if (lr.reply_type != AMQP_RESPONSE_NORMAL) fail("login");
    amqp_channel_open(conn, 1);
    check_rpc(conn, "channel.open");

    amqp_bytes_t q = amqp_cstring_bytes(queue);
    amqp_queue_declare_ok_t *dok = amqp_queue_declare(conn, 1, q, 0, 0, 0, 0, amqp_empty_table);
    check_rpc(conn, "queue.declare");
    if (dok->message_count != 0 || dok->consumer_count != 0)
        fail("declare-ok counts %u %u", dok->message_count, dok->consumer_count);
    printf("declared %.*s\n", (int)dok->queue.len, (char *)dok->queue.bytes);

    amqp_confirm_select(conn, 1);
    check_rpc(conn, "confirm.select");

    char buf[64];
    for (int i = 0; i < n; i++) {
        amqp_basic_properties_t props;
        memset(&props, 0, sizeof(props));
        props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
        props.content_type = amqp_cstring_bytes("text/plain");
        snprintf(buf, sizeof(buf), "id-%d", i);
        props.message_id = amqp_cstring_bytes(buf);
        char body[64];
        snprintf(body, sizeof(body), "msg-%d", i);
        if (amqp_basic_publish(conn, 1, amqp_cstring_bytes(""), q, 0, 0, &props,
                               amqp_cstring_bytes(body)) != AMQP_STATUS_OK)
            fail("publish %d", i);
    }
    if (amqp_basic_publish(conn, 1, amqp_cstring_bytes(""), amqp_cstring_bytes("rmqc-nowhere"), 1,
                           0, NULL, amqp_cstring_bytes("unroutable")) != AMQP_STATUS_OK)
        fail("publish unroutable");

    /* Confirms for tags 1..n+1, each once, in any order (an unroutable
     * publish may be confirmed before earlier routed ones); the return must
     * come before the ack of tag n+1. */
    unsigned char *acked = calloc((size_t)n + 2, 1);
    uint64_t confirmed = 0;
    int returned = 0;
    if (acked == NULL) fail("calloc");
    for (int iter = 0; iter < 10 * n + 100 && confirmed < (uint64_t)n + 1; iter++) {
        amqp_frame_t f;
        struct timeval wait = {5, 0};
        int rc = amqp_simple_wait_frame_noblock(conn, &f, &wait);
        if (rc != AMQP_STATUS_OK) fail("waiting for confirms: %s", amqp_error_string2(rc));
        if (f.frame_type != AMQP_FRAME_METHOD) fail("unexpected frame type %d", f.frame_type);
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            uint64_t tag = a->delivery_tag;
            if (tag < 1 || tag > (uint64_t)n + 1) fail("ack of tag %llu", (unsigned long long)tag);
            uint64_t from = a->multiple ? 1 : tag;
            int any = 0;
            for (uint64_t t = from; t <= tag; t++) {
                if (acked[t] && !a->multiple) fail("tag %llu acked twice", (unsigned long long)t);
                if (!acked[t]) {
                    acked[t] = 1;
                    confirmed++;
                    any = 1;
                }
            }
            if (!any) fail("ack %llu confirms nothing new", (unsigned long long)tag);
            if (acked[n + 1] && !returned) fail("ack before basic.return");
        } else if (f.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
            amqp_basic_return_t *r = f.payload.method.decoded;
            if (r->reply_code != 312) fail("return code %u", r->reply_code);
            if (acked[n + 1]) fail("basic.return after its ack");
            amqp_message_t msg;
            amqp_rpc_reply_t rr = amqp_read_message(conn, 1, &msg, 0);
            if (rr.reply_type != AMQP_RESPONSE_NORMAL) fail("return content");
            if (msg.body.len != 10 || memcmp(msg.body.bytes, "unroutable", 10) != 0)
                fail("returned body");
            amqp_destroy_message(&msg);
            returned = 1;
            printf("return 312\n");
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            fail("nack");
        } else {
            fail("unexpected method 0x%08x", f.payload.method.id);
        }
    }
    free(acked);
    printf("confirmed %llu\n", (unsigned long long)confirmed);

    amqp_rpc_reply_t gr = amqp_basic_get(conn, 1, q, 0);
    if (gr.reply_type != AMQP_RESPONSE_NORMAL || gr.reply.id != AMQP_BASIC_GET_OK_METHOD)
        fail("basic.get");
    amqp_basic_get_ok_t *gok = gr.reply.decoded;
    uint64_t gtag = gok->delivery_tag;
    uint32_t left = gok->message_count;
    amqp_message_t gm;
    if (amqp_read_message(conn, 1, &gm, 0).reply_type != AMQP_RESPONSE_NORMAL) fail("get content");
    if (gm.body.len != 5 || memcmp(gm.body.bytes, "msg-0", 5) != 0) fail("get body");
    amqp_destroy_message(&gm);
    if (left != (uint32_t)n - 1) fail("get-ok message_count %u", left);
    amqp_basic_ack(conn, 1, gtag, 0);
    printf("get msg-0 count=%u\n", left);

    amqp_basic_qos(conn, 1, 0, 10, 0);
    check_rpc(conn, "basic.qos");
    amqp_basic_consume(conn, 1, q, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    check_rpc(conn, "basic.consume");
    for (int i = 1; i < n; i++) {
        amqp_envelope_t env;
        struct timeval wait = {5, 0};
        amqp_maybe_release_buffers(conn);
        amqp_rpc_reply_t cr = amqp_consume_message(conn, &env, &wait, 0);
        if (cr.reply_type != AMQP_RESPONSE_NORMAL) fail("consume %d", i);
        char body[64];
        int len = snprintf(body, sizeof(body), "msg-%d", i);
        snprintf(buf, sizeof(buf), "id-%d", i);
        if (env.message.body.len != (size_t)len || memcmp(env.message.body.bytes, body, len) != 0)
            fail("message %d: got %.*s", i, (int)env.message.body.len,
                 (char *)env.message.body.bytes);
        if (!(env.message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) ||
            env.message.properties.message_id.len != strlen(buf) ||
            memcmp(env.message.properties.message_id.bytes, buf, strlen(buf)) != 0)
            fail("message %d: message_id", i);
        if (env.redelivered) fail("message %d redelivered", i);
        if (amqp_basic_ack(conn, 1, env.delivery_tag, 0) != 0) fail("ack %d", i);
        amqp_destroy_envelope(&env);
    }
    printf("consumed %d in order\n", n - 1);

    size_t big = 1024 * 1024;
    unsigned char *payload = malloc(big);
    if (payload == NULL) fail("malloc");
    for (size_t i = 0; i < big; i++) payload[i] = (unsigned char)(i * 13 + (i >> 9));
    amqp_bytes_t pb = {big, payload};
    if (amqp_basic_publish(conn, 1, amqp_cstring_bytes(""), q, 0, 0, NULL, pb) != AMQP_STATUS_OK)
        fail("publish 1 MiB");
    {
        amqp_envelope_t env = {0};
        struct timeval wait = {5, 0};
        amqp_rpc_reply_t cr;
        /* The confirm for it may come first: skip it. */
        for (int k = 0; k < 3; k++) {
            amqp_maybe_release_buffers(conn);
            cr = amqp_consume_message(conn, &env, &wait, 0);
            if (cr.reply_type == AMQP_RESPONSE_NORMAL) break;
            if (cr.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                cr.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
                amqp_frame_t f;
                struct timeval w2 = {5, 0};
                if (amqp_simple_wait_frame_noblock(conn, &f, &w2) != AMQP_STATUS_OK)
                    fail("frame after 1 MiB publish");
                if (f.frame_type != AMQP_FRAME_METHOD || f.payload.method.id != AMQP_BASIC_ACK_METHOD)
                    fail("unexpected method 0x%08x", f.payload.method.id);
                continue;
            }
            fail("consume 1 MiB");
        }
        if (cr.reply_type != AMQP_RESPONSE_NORMAL) fail("consume 1 MiB");
        if (env.message.body.len != big || memcmp(env.message.body.bytes, payload, big) != 0)
            fail("1 MiB body corrupted (%zu bytes)", env.message.body.len);
        amqp_basic_ack(conn, 1, env.delivery_tag, 0);
        amqp_destroy_envelope(&env);
    }
    free(payload);
    printf("large 1048576 intact\n");

    amqp_queue_delete_ok_t *del = amqp_queue_delete(conn, 1, q, 0, 0);
    check_rpc(conn, "queue.delete");
    printf("deleted %u\n", del->message_count);
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    printf("OK\n");
    return 0;
}
