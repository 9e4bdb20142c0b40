/* rmqc_handshake: connection-level checks through librabbitmq (rabbitmq-c),
 * driven by tests/interop/test_connection_clients.py.
 *
 *   rmqc_handshake HOST PORT USER PASSWORD VHOST ACTION [ARG...]
 *
 * ACTION is one of
 *   login             log in, print the negotiated limits, close
 *   channels N        open channels 1..N, then close them all
 *   heartbeat HB MS   log in asking for heartbeat HB, stay idle for MS ms
 *                     (librabbitmq answers heartbeats while it waits), then
 *                     open a channel to show the connection is alive
 *   channel-error     passive-declare a missing queue on channel 1 (channel
 *                     closed by the broker), reopen, use channel 2
 *   connection-error  channel.open twice on channel 1 (connection closed by
 *                     the broker)
 *
 * Each step prints one line "STEP key=value ..." on stdout; the caller
 * judges the values.  A step whose outcome is not one the caller can judge
 * prints "STEP unexpected ..." and the program exits 1.  Exit 2: usage or
 * socket set-up error.  Every blocking call is bounded (handshake and RPC
 * timeouts of 5 s). */

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define IO_TIMEOUT_S 5

static const char *host, *user, *password, *vhost;
static int port;

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Print an amqp_rpc_reply_t as "kind=... [code=... class=... method=...
 * text=...]" after the step name; returns the reply type. */
static int report(const char *step, amqp_rpc_reply_t r, const char *extra_fmt, ...)
{
    printf("%s ", step);
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        printf("kind=normal");
        break;
    case AMQP_RESPONSE_NONE:
        printf("kind=none");
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        printf("kind=library-error error=%d text=\"%s\"", r.library_error,
               amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;

            printf("kind=server-exception method=connection.close code=%u class=%u "
                   "method_id=%u text=\"%.*s\"",
                   m->reply_code, m->class_id, m->method_id, (int)m->reply_text.len,
                   (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;

            printf("kind=server-exception method=channel.close code=%u class=%u "
                   "method_id=%u text=\"%.*s\"",
                   m->reply_code, m->class_id, m->method_id, (int)m->reply_text.len,
                   (const char *)m->reply_text.bytes);
        } else {
            printf("kind=server-exception method_number=0x%08x", r.reply.id);
        }
        break;
    default:
        printf("kind=unknown");
    }
    if (extra_fmt != NULL) {
        va_list ap;

        va_start(ap, extra_fmt);
        putchar(' ');
        vprintf(extra_fmt, ap);
        va_end(ap);
    }
    putchar('\n');
    fflush(stdout);
    return r.reply_type;
}

static amqp_connection_state_t connect_socket(void)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    struct timeval tv = {IO_TIMEOUT_S, 0};
    int rc;

    if (sock == NULL) {
        printf("socket unexpected text=\"amqp_tcp_socket_new failed\"\n");
        exit(2);
    }
    rc = amqp_socket_open_noblock(sock, host, port, &tv);
    if (rc != AMQP_STATUS_OK) {
        printf("socket unexpected error=%d text=\"%s\"\n", rc, amqp_error_string2(rc));
        exit(2);
    }
    amqp_set_handshake_timeout(conn, &tv);
    amqp_set_rpc_timeout(conn, &tv);
    return conn;
}

static amqp_rpc_reply_t login(amqp_connection_state_t conn, const char *pass, int heartbeat)
{
    return amqp_login(conn, vhost, 0, 131072, heartbeat, AMQP_SASL_METHOD_PLAIN, user, pass);
}

static void finish(amqp_connection_state_t conn)
{
    report("close", amqp_connection_close(conn, AMQP_REPLY_SUCCESS), NULL);
    amqp_destroy_connection(conn);
}

static int do_login(void)
{
    amqp_connection_state_t conn = connect_socket();
    amqp_rpc_reply_t r = login(conn, password, 0);

    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        report("login", r, NULL);
        amqp_destroy_connection(conn);
        return 0;
    }
    report("login", r, "channel_max=%d frame_max=%d heartbeat=%d", amqp_get_channel_max(conn),
           amqp_get_frame_max(conn), amqp_get_heartbeat(conn));
    finish(conn);
    return 0;
}

static int do_channels(int n)
{
    amqp_connection_state_t conn = connect_socket();
    int opened = 0, closed = 0;
    amqp_rpc_reply_t r = login(conn, password, 0);

    if (report("login", r, NULL) != AMQP_RESPONSE_NORMAL) return 1;
    for (int ch = 1; ch <= n; ch++) {
        if (amqp_channel_open(conn, (amqp_channel_t)ch) == NULL) {
            report("channel-open", amqp_get_rpc_reply(conn), "channel=%d", ch);
            break;
        }
        opened++;
    }
    for (int ch = 1; ch <= opened; ch++) {
        r = amqp_channel_close(conn, (amqp_channel_t)ch, AMQP_REPLY_SUCCESS);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            report("channel-close", r, "channel=%d", ch);
            break;
        }
        closed++;
        amqp_maybe_release_buffers(conn);
    }
    printf("channels opened=%d closed=%d\n", opened, closed);
    finish(conn);
    return 0;
}

static int do_heartbeat(int heartbeat, int idle_ms)
{
    amqp_connection_state_t conn = connect_socket();
    amqp_rpc_reply_t r = login(conn, password, heartbeat);
    long long t0, deadline;
    int frames = 0, rc = AMQP_STATUS_TIMEOUT;

    if (report("login", r, "heartbeat=%d", amqp_get_heartbeat(conn)) != AMQP_RESPONSE_NORMAL)
        return 1;
    /* Idle: waiting for frames lets librabbitmq send its heartbeats and
     * swallow the broker's.  No other frame is expected. */
    t0 = now_ms();
    deadline = t0 + idle_ms;
    for (int i = 0; i < 100000 && now_ms() < deadline; i++) {
        amqp_frame_t f;
        long long left = deadline - now_ms();
        struct timeval tv = {0, 0};

        if (left > 100) left = 100;
        tv.tv_usec = (suseconds_t)(left * 1000);
        rc = amqp_simple_wait_frame_noblock(conn, &f, &tv);
        if (rc == AMQP_STATUS_OK) {
            frames++;
            continue;
        }
        if (rc != AMQP_STATUS_TIMEOUT) break;
    }
    printf("idle ms=%lld frames=%d status=%d text=\"%s\"\n", now_ms() - t0, frames, rc,
           amqp_error_string2(rc));
    if (amqp_channel_open(conn, 1) == NULL) {
        report("channel-open", amqp_get_rpc_reply(conn), NULL);
        amqp_destroy_connection(conn);
        return 0;
    }
    report("channel-open", amqp_get_rpc_reply(conn), NULL);
    finish(conn);
    return 0;
}

static int do_channel_error(void)
{
    amqp_connection_state_t conn = connect_socket();
    amqp_rpc_reply_t r = login(conn, password, 0);
    amqp_channel_close_ok_t close_ok = {0};

    if (report("login", r, NULL) != AMQP_RESPONSE_NORMAL) return 1;
    if (amqp_channel_open(conn, 1) == NULL) {
        report("channel-open", amqp_get_rpc_reply(conn), NULL);
        return 1;
    }
    amqp_queue_declare(conn, 1, amqp_cstring_bytes("interop-rmqc-no-such-queue"), 1, 0, 0, 0,
                       amqp_empty_table);
    r = amqp_get_rpc_reply(conn);
    report("declare-passive", r, NULL);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        /* The application answers the broker's channel.close. */
        int rc = amqp_send_method(conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);

        printf("close-ok status=%d\n", rc);
    }
    amqp_maybe_release_buffers(conn);
    /* Channel 1 may be reused, and the connection is still usable. */
    if (amqp_channel_open(conn, 1) == NULL) {
        report("reopen", amqp_get_rpc_reply(conn), NULL);
        amqp_destroy_connection(conn);
        return 0;
    }
    report("reopen", amqp_get_rpc_reply(conn), NULL);
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(conn, 1, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
    r = amqp_get_rpc_reply(conn);
    report("declare", r, "named=%d", ok != NULL && ok->queue.len > 0);
    report("channel-close", amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS), NULL);
    finish(conn);
    return 0;
}

static int do_connection_error(void)
{
    amqp_connection_state_t conn = connect_socket();
    amqp_rpc_reply_t r = login(conn, password, 0);

    if (report("login", r, NULL) != AMQP_RESPONSE_NORMAL) return 1;
    if (amqp_channel_open(conn, 1) == NULL) {
        report("channel-open", amqp_get_rpc_reply(conn), NULL);
        return 1;
    }
    amqp_channel_open(conn, 1);
    r = amqp_get_rpc_reply(conn);
    report("second-open", r, NULL);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_ok_t close_ok = {0};
        int rc = amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &close_ok);

        printf("close-ok status=%d\n", rc);
    }
    amqp_destroy_connection(conn);
    return 0;
}

int main(int argc, char **argv)
{
    const char *action;

    if (argc < 7) {
        fprintf(stderr,
                "usage: %s HOST PORT USER PASSWORD VHOST "
                "login|channels N|heartbeat HB MS|channel-error|connection-error\n",
                argv[0]);
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    user = argv[3];
    password = argv[4];
    vhost = argv[5];
    action = argv[6];
    if (strcmp(action, "login") == 0) return do_login();
    if (strcmp(action, "channels") == 0 && argc == 8) return do_channels(atoi(argv[7]));
    if (strcmp(action, "heartbeat") == 0 && argc == 9)
        return do_heartbeat(atoi(argv[7]), atoi(argv[8]));
    if (strcmp(action, "channel-error") == 0) return do_channel_error();
    if (strcmp(action, "connection-error") == 0) return do_connection_error();
    fprintf(stderr, "%s: unknown action %s\n", argv[0], action);
    return 2;
}
