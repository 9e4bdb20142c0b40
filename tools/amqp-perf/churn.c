/*
 * The sub-commands after LavinMQ's lavinmqperf, each a bounded loop of one
 * operation, timed one by one into a histogram, with a progress line per
 * second and a summary (ops, ops/s, op latency):
 *
 *   queue-churn       queue.declare (server-named) + queue.delete
 *   connection-churn  connect, handshake, channel.open, connection.close
 *   bind-churn        queue.bind + queue.unbind of a private queue on amq.direct
 *   consumer-churn    basic.consume + basic.cancel on a private queue
 *   queue-count       --count queues declared and held for -z seconds
 *   connection-count  --count connections opened and held for -z seconds
 *
 * A churn runs for -z seconds (5 by default) or --count operations; all of
 * it on the main thread, over one connection (connection-churn: its own).
 */
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "tools/amqp-perf/perf.h"

enum { CHURN_DEFAULT_S = 5, COUNT_DEFAULT = 1000 };

typedef struct churn {
    const perf_opts *o;
    perf_conn conn;
    char queue[PERF_NAME_BYTES_MAX]; /* private queue of bind/consumer churn */
    perf_conn *held;                 /* connection-count */
    uint64_t held_count;
    perf_hist *lat;
} churn;

typedef int (*churn_op)(churn *ch, uint64_t i);

static int churn_queue(churn *ch, uint64_t i)
{
    (void)i;
    amqp_method m = {.id = AMQP_QUEUE_DECLARE}, ok;
    m.a.queue_declare.exclusive = true;
    if (perf_conn_rpc(&ch->conn, 1, &m, AMQP_QUEUE_DECLARE_OK, &ok) != 0) return -1;
    char name[PERF_NAME_BYTES_MAX];
    amqp_bytes q = ok.a.queue_declare_ok.queue;
    memcpy(name, q.data, q.len);
    name[q.len] = 0;
    m = (amqp_method){.id = AMQP_QUEUE_DELETE};
    m.a.queue_delete.queue = amqp_cstr(name);
    return perf_conn_rpc(&ch->conn, 1, &m, AMQP_QUEUE_DELETE_OK, NULL);
}

static int churn_connection(churn *ch, uint64_t i)
{
    perf_conn c;
    int rc = perf_connect(&c, ch->o, (uint32_t)i, "churn");
    if (rc == 0) rc = perf_conn_channel_open(&c, 1);
    if (rc != 0) memcpy(ch->conn.error, c.error, sizeof c.error);
    perf_conn_close(&c);
    return rc;
}

static int churn_bind(churn *ch, uint64_t i)
{
    char key[32];
    snprintf(key, sizeof key, "churn-%llu", (unsigned long long)i);
    amqp_method m = {.id = AMQP_QUEUE_BIND};
    m.a.queue_bind.queue = amqp_cstr(ch->queue);
    m.a.queue_bind.exchange = amqp_cstr("amq.direct");
    m.a.queue_bind.routing_key = amqp_cstr(key);
    if (perf_conn_rpc(&ch->conn, 1, &m, AMQP_QUEUE_BIND_OK, NULL) != 0) return -1;
    m = (amqp_method){.id = AMQP_QUEUE_UNBIND};
    m.a.queue_unbind.queue = amqp_cstr(ch->queue);
    m.a.queue_unbind.exchange = amqp_cstr("amq.direct");
    m.a.queue_unbind.routing_key = amqp_cstr(key);
    return perf_conn_rpc(&ch->conn, 1, &m, AMQP_QUEUE_UNBIND_OK, NULL);
}

static int churn_consumer(churn *ch, uint64_t i)
{
    char tag[32];
    snprintf(tag, sizeof tag, "churn-%llu", (unsigned long long)i);
    amqp_method m = {.id = AMQP_BASIC_CONSUME};
    m.a.basic_consume.queue = amqp_cstr(ch->queue);
    m.a.basic_consume.consumer_tag = amqp_cstr(tag);
    if (perf_conn_rpc(&ch->conn, 1, &m, AMQP_BASIC_CONSUME_OK, NULL) != 0) return -1;
    m = (amqp_method){.id = AMQP_BASIC_CANCEL};
    m.a.basic_cancel.consumer_tag = amqp_cstr(tag);
    return perf_conn_rpc(&ch->conn, 1, &m, AMQP_BASIC_CANCEL_OK, NULL);
}

static int churn_queue_hold(churn *ch, uint64_t i)
{
    char name[PERF_NAME_BYTES_MAX];
    snprintf(name, sizeof name, "%.200s-q-%llu", ch->o->id, (unsigned long long)i);
    amqp_method m = {.id = AMQP_QUEUE_DECLARE};
    m.a.queue_declare.queue = amqp_cstr(name);
    m.a.queue_declare.exclusive = true;
    m.a.queue_declare.arguments = (amqp_table){ch->o->queue_args, ch->o->queue_args_len};
    return perf_conn_rpc(&ch->conn, 1, &m, AMQP_QUEUE_DECLARE_OK, NULL);
}

static int churn_connection_hold(churn *ch, uint64_t i)
{
    perf_conn *c = &ch->held[i];
    int rc = perf_connect(c, ch->o, (uint32_t)i, "count");
    if (rc == 0) rc = perf_conn_channel_open(c, 1);
    if (rc != 0) {
        memcpy(ch->conn.error, c->error, sizeof c->error);
        perf_conn_close(c);
        return -1;
    }
    ch->held_count++;
    return 0;
}

typedef struct churn_result {
    uint64_t ops;
    double elapsed_s;
    bool failed;
} churn_result;

/* Runs op until count ops are done or seconds have passed (0: no bound). */
static churn_result churn_loop(churn *ch, churn_op op, uint64_t count, double seconds)
{
    const perf_opts *o = ch->o;
    FILE *out = o->json ? stderr : stdout;
    churn_result res = {0};
    uint64_t start_ns = perf_now_ns(), next_ns = start_ns + 1000000000u, last_ops = 0;
    for (;;) {
        uint64_t now_ns = perf_now_ns();
        if (now_ns >= next_ns) {
            fprintf(out, "id: %s, time %.3f s, %s: %llu ops/s\n", o->id,
                    (double)(next_ns - start_ns) / 1e9, perf_cmd_name(o->cmd),
                    (unsigned long long)(res.ops - last_ops));
            fflush(out);
            last_ops = res.ops;
            next_ns += 1000000000u;
        }
        if ((count > 0 && res.ops >= count) ||
            (seconds > 0 && (double)(now_ns - start_ns) >= seconds * 1e9))
            break;
        if (op(ch, res.ops) != 0) {
            fprintf(stderr, "amqp-perf: %s: %s\n", perf_cmd_name(o->cmd), ch->conn.error);
            res.failed = true;
            break;
        }
        perf_hist_record(ch->lat, perf_now_ns() - now_ns);
        res.ops++;
    }
    res.elapsed_s = (double)(perf_now_ns() - start_ns) / 1e9;
    return res;
}

static void churn_report(const churn *ch, const churn_result *r)
{
    const perf_opts *o = ch->o;
    double rate = r->elapsed_s > 0 ? (double)r->ops / r->elapsed_s : 0;
    static const double pcts[] = {50, 75, 95, 99, 99.9};
    static const char *const names[] = {"p50", "p75", "p95", "p99", "p99_9"};
    FILE *out = o->json ? stderr : stdout;
    fprintf(out, "summary: id %s, %s, %.3f s, %llu ops, %.1f ops/s\n  op latency", o->id,
            perf_cmd_name(o->cmd), r->elapsed_s, (unsigned long long)r->ops, rate);
    for (size_t i = 0; i < ARRAY_LEN(pcts); i++)
        fprintf(out, " %s %.0f us", names[i], (double)perf_hist_percentile(ch->lat, pcts[i]) / 1e3);
    fprintf(out, " max %.0f us\n", (double)ch->lat->max_ns / 1e3);
    if (!o->json) return;
    fputs("{\"id\": \"", stdout);
    perf_json_string(stdout, o->id);
    fprintf(stdout, "\", \"scenario\": \"%s\", \"elapsed_s\": %.3f, \"ops\": %llu, \"ops_per_s\": %.1f",
            perf_cmd_name(o->cmd), r->elapsed_s, (unsigned long long)r->ops, rate);
    fputs(", \"op_latency_us\": {", stdout);
    for (size_t i = 0; i < ARRAY_LEN(pcts); i++)
        fprintf(stdout, "\"%s\": %.3f, ", names[i], (double)perf_hist_percentile(ch->lat, pcts[i]) / 1e3);
    fprintf(stdout, "\"max\": %.3f}, \"failed\": %s}\n", (double)ch->lat->max_ns / 1e3,
            r->failed ? "true" : "false");
}

/* The private exclusive queue bind-churn and consumer-churn work on. */
static int churn_private_queue(churn *ch)
{
    amqp_method m = {.id = AMQP_QUEUE_DECLARE}, ok;
    m.a.queue_declare.exclusive = true;
    if (perf_conn_rpc(&ch->conn, 1, &m, AMQP_QUEUE_DECLARE_OK, &ok) != 0) return -1;
    amqp_bytes q = ok.a.queue_declare_ok.queue;
    memcpy(ch->queue, q.data, q.len);
    ch->queue[q.len] = 0;
    return 0;
}

static churn_op churn_pick(perf_cmd cmd)
{
    switch (cmd) {
    case PERF_CMD_QUEUE_CHURN: return churn_queue;
    case PERF_CMD_CONNECTION_CHURN: return churn_connection;
    case PERF_CMD_BIND_CHURN: return churn_bind;
    case PERF_CMD_CONSUMER_CHURN: return churn_consumer;
    case PERF_CMD_QUEUE_COUNT: return churn_queue_hold;
    case PERF_CMD_CONNECTION_COUNT: return churn_connection_hold;
    default: UNREACHABLE();
    }
}

int perf_churn(const perf_opts *o)
{
    churn ch = {.o = o, .lat = calloc(1, sizeof(perf_hist))};
    bool counting = o->cmd == PERF_CMD_QUEUE_COUNT || o->cmd == PERF_CMD_CONNECTION_COUNT;
    uint64_t count = counting && o->count == 0 ? COUNT_DEFAULT : o->count;
    double seconds = counting ? 0 : o->time_s > 0 || o->count > 0 ? o->time_s : CHURN_DEFAULT_S;
    if (ch.lat == NULL) return 1;
    ch.conn.fd = -1;
    if (o->cmd == PERF_CMD_CONNECTION_COUNT && (ch.held = calloc(count, sizeof *ch.held)) == NULL)
        return 1;
    if (o->cmd != PERF_CMD_CONNECTION_CHURN && o->cmd != PERF_CMD_CONNECTION_COUNT &&
        (perf_connect(&ch.conn, o, 0, perf_cmd_name(o->cmd)) != 0 ||
         perf_conn_channel_open(&ch.conn, 1) != 0 ||
         ((o->cmd == PERF_CMD_BIND_CHURN || o->cmd == PERF_CMD_CONSUMER_CHURN) &&
          churn_private_queue(&ch) != 0))) {
        fprintf(stderr, "amqp-perf: %s: %s\n", perf_cmd_name(o->cmd), ch.conn.error);
        perf_conn_close(&ch.conn);
        return 1;
    }
    churn_result r = churn_loop(&ch, churn_pick(o->cmd), count, seconds);
    churn_report(&ch, &r);
    if (counting && o->time_s > 0 && !r.failed) perf_sleep_ns((uint64_t)(o->time_s * 1e9));
    for (uint64_t i = 0; i < ch.held_count; i++) perf_conn_close(&ch.held[i]);
    perf_conn_close(&ch.conn);
    free(ch.held);
    free(ch.lat);
    return r.failed ? 1 : 0;
}
