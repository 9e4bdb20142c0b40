/*
 * amqp-perf: types and functions shared by the tool's files.
 *
 *   main.c      sub-command dispatch, usage
 *   opts.c      command line (RabbitMQ PerfTest flags) and URIs
 *   client.c    one AMQP client connection over a non-blocking socket
 *   hist.c      log-linear latency histogram
 *   producer.c  producer threads (batched publishes, confirms, rate)
 *   consumer.c  consumer threads (acks, prefetch, verification)
 *   run.c       throughput: topology, threads, per-second sampling, verdict
 *   report.c    progress lines, summary, JSON, CSV and SVG output
 *   churn.c     the LavinMQ-style sub-commands (counts and churns)
 *   sink.c      a do-nothing AMQP server to measure the tool itself
 *
 * Threads own their connection and counters; the main thread only reads
 * counters (relaxed atomics) and sets the stop flag.
 */
#ifndef RINGMQ_TOOLS_AMQP_PERF_H
#define RINGMQ_TOOLS_AMQP_PERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "net/amqp_frame.h"
#include "net/amqp_method.h"

/* Bounds of the tool, each with its unit. */
#define PERF_URIS_MAX 16u               /* -h given at most this often */
#define PERF_THREADS_MAX 1024u          /* producers, consumers each */
#define PERF_QUEUES_MAX 4096u           /* --queue-pattern range */
#define PERF_NAME_BYTES_MAX 256u        /* shortstr names and their NUL */
#define PERF_ARGS_BYTES_MAX 1024u       /* -Q queue arguments, encoded table */
#define PERF_FRAME_BYTES 131072u        /* frame_max we ask for */
#define PERF_RBUF_BYTES (1024u * 1024u) /* receive buffer per connection */
#define PERF_WBUF_BYTES (1024u * 1024u) /* send buffer per connection */
#define PERF_BATCH_BYTES (128u * 1024u) /* publishes built per write */
#define PERF_MESSAGE_BYTES_MAX (64u * 1024u * 1024u) /* -s */
#define PERF_STAMP_BYTES 16u            /* send time, run tag, producer, sequence */
#define PERF_SAMPLES_MAX 86400u         /* per-second samples kept (a day) */
#define PERF_RPC_TIMEOUT_MS 15000       /* a synchronous reply is this late: give up */
#define PERF_DRAIN_IDLE_MS 5000         /* bounded run: consumers idle this long end it */
#define PERF_VERIFY_ISSUES_MAX 10u      /* verification problems printed */

/* ---- options ---- */

typedef struct perf_uri {
    char host[PERF_NAME_BYTES_MAX];
    uint16_t port;
    char user[PERF_NAME_BYTES_MAX];
    char pass[PERF_NAME_BYTES_MAX];
    char vhost[PERF_NAME_BYTES_MAX];
} perf_uri;

typedef enum perf_cmd {
    PERF_CMD_THROUGHPUT,
    PERF_CMD_QUEUE_COUNT,
    PERF_CMD_CONNECTION_COUNT,
    PERF_CMD_QUEUE_CHURN,
    PERF_CMD_CONNECTION_CHURN,
    PERF_CMD_BIND_CHURN,
    PERF_CMD_CONSUMER_CHURN,
    PERF_CMD_SINK,
} perf_cmd;

typedef struct perf_opts {
    perf_cmd cmd;
    perf_uri uris[PERF_URIS_MAX];
    uint32_t uri_count;
    uint32_t producers, consumers;
    uint32_t size_bytes;
    char queue[PERF_NAME_BYTES_MAX];
    char exchange[PERF_NAME_BYTES_MAX];
    char exchange_type[PERF_NAME_BYTES_MAX];
    char routing_key[PERF_NAME_BYTES_MAX];
    char queue_pattern[PERF_NAME_BYTES_MAX];
    uint32_t queue_pattern_from, queue_pattern_to;
    uint8_t queue_args[PERF_ARGS_BYTES_MAX]; /* encoded table entries */
    uint32_t queue_args_len;
    double time_s;            /* 0: no time limit */
    uint64_t pmessages;       /* -C, 0: unbounded */
    uint64_t cmessages;       /* -D, 0: unbounded */
    double rate_per_s;        /* -r per producer, 0: unlimited */
    double consumer_rate_per_s; /* -R per consumer, 0: unlimited */
    uint32_t confirm_window;  /* -c, 0: no confirms */
    uint32_t prefetch;        /* -q, 0: none */
    uint32_t multi_ack_every; /* -A, 0: ack each */
    bool auto_ack, persistent, mandatory, predeclared, auto_delete;
    bool verify, json;
    char id[PERF_NAME_BYTES_MAX];
    const char *csv_path, *plot_path;
    uint64_t count; /* --count for queue-count / connection-count / churns */
    uint16_t sink_port;
    char sink_bind[PERF_NAME_BYTES_MAX];
} perf_opts;

/* Fills *o from argv; returns 0, or 2 after printing why (usage error),
 * or 1 with *help set when --help was asked. */
int perf_opts_parse(perf_opts *o, int argc, char **argv, bool *help);
int perf_uri_parse(perf_uri *u, const char *text);
void perf_usage(FILE *out);
const char *perf_cmd_name(perf_cmd cmd);

/* ---- time ---- */

uint64_t perf_now_ns(void);
void perf_sleep_ns(uint64_t ns);

/* ---- client connection ---- */

typedef struct perf_conn {
    int fd;
    uint32_t frame_max;
    uint16_t channel_max;
    uint8_t *rbuf;
    size_t rhead, rtail; /* unparsed bytes are rbuf[rhead..rtail) */
    uint8_t *wbuf;
    size_t woff, wlen; /* unsent bytes are wbuf[woff..wlen) */
    bool blocked;      /* connection.blocked received */
    char error[512];   /* why the last call failed */
} perf_conn;

int perf_conn_open(perf_conn *c, const perf_uri *u, const char *name);
void perf_conn_close(perf_conn *c);
/* Server side (the sink): buffers around an accepted socket; no handshake. */
int perf_conn_adopt(perf_conn *c, int fd);
/* Closes the socket and frees the buffers, no close method. */
void perf_conn_drop(perf_conn *c);
/* Appends a method frame to the send buffer (flushes first when full). */
int perf_conn_put_method(perf_conn *c, uint16_t channel, const amqp_method *m);
/* Room left in the send buffer, bytes. */
size_t perf_conn_wroom(const perf_conn *c);
/* Sends what it can without blocking: 0, or -1 on a socket error. */
int perf_conn_flush_some(perf_conn *c);
/* Sends everything, reading (and keeping) what arrives meanwhile. */
int perf_conn_flush(perf_conn *c);
/* Flushes the send buffer, then sends data[0..len) from the caller's
 * memory (large messages), reading meanwhile. */
int perf_conn_write_all(perf_conn *c, const uint8_t *data, size_t len);
/* Reads what is there, waiting up to timeout_ms (0: not at all); also
 * sends pending output when the socket takes it. Returns bytes read (0 on
 * timeout) or -1 on EOF or error. Frames handed out before are invalid. */
long perf_conn_fill(perf_conn *c, int timeout_ms);
/* Next complete frame of the receive buffer: 1, 0 when more is needed,
 * -1 on a framing error. */
int perf_conn_next_frame(perf_conn *c, amqp_frame *f);
/* Sends req and waits for a reply of id `reply` on its channel; content and
 * other methods meanwhile are skipped. A close from the broker fails it with
 * the reply text in c->error. out may be NULL. */
int perf_conn_rpc(perf_conn *c, uint16_t channel, const amqp_method *req, amqp_method_id reply,
                  amqp_method *out);
int perf_conn_channel_open(perf_conn *c, uint16_t channel);
/* Handles a broker's close method frame: answers, fills c->error. True if
 * the frame was one. */
bool perf_conn_check_close(perf_conn *c, const amqp_frame *f);

/* ---- latency histogram ---- */

enum { PERF_HIST_SUB_BITS = 6, PERF_HIST_OCTAVES = 36 };
enum { PERF_HIST_BUCKETS = (PERF_HIST_OCTAVES + 1) << PERF_HIST_SUB_BITS };

/* Written by its owner thread only, read by others with relaxed loads. */
typedef struct perf_hist {
    uint64_t counts[PERF_HIST_BUCKETS];
    uint64_t total;
    uint64_t max_ns;
} perf_hist;

void perf_hist_record(perf_hist *h, uint64_t ns);
/* dst += src, read with relaxed atomics (src may be written meanwhile). */
void perf_hist_add(perf_hist *dst, const perf_hist *src);
/* dst = a - b (counts only; max taken from a). */
void perf_hist_sub(perf_hist *dst, const perf_hist *a, const perf_hist *b);
/* Value at percentile p (0..100], ns; 0 when empty. */
uint64_t perf_hist_percentile(const perf_hist *h, double p);

/* ---- throughput run ---- */

/* A producer's or consumer's counters: owner writes, sampler reads. */
typedef struct perf_counters {
    uint64_t published, confirmed, nacked, returned, consumed, foreign;
    perf_hist latency;         /* consumer: publish to delivery */
    perf_hist confirm_latency; /* producer: publish to confirm */
} perf_counters;

static inline void perf_count_add(uint64_t *c, uint64_t n)
{
    __atomic_store_n(c, *c + n, __ATOMIC_RELAXED);
}
static inline uint64_t perf_count_get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* The run as the threads share it. */
typedef struct perf_run perf_run;

typedef struct perf_producer {
    perf_run *run;
    uint32_t index;
    uint32_t queue_index; /* with a queue pattern: the queue it feeds */
    perf_counters ctr;
    uint64_t done_ns; /* when it finished publishing (confirms included) */
    bool done, failed;
    char error[512];
} perf_producer;

typedef struct perf_consumer {
    perf_run *run;
    uint32_t index;
    uint32_t queue_index; /* the queue it consumes (a verification group) */
    perf_counters ctr;
    uint32_t *last_seq;   /* per producer, +1 (0: none yet) */
    uint64_t out_of_order, duplicates;
    bool ready, done, failed;
    char error[512];
} perf_consumer;

struct perf_run {
    const perf_opts *o;
    uint16_t run_tag; /* marks this run's bodies */
    uint32_t queue_count;
    char (*queue_names)[PERF_NAME_BYTES_MAX]; /* "" when server-named per consumer */
    bool queue_per_consumer;
    perf_producer *producers;
    perf_consumer *consumers;
    uint64_t **seen; /* [queue * producers + producer] bitmaps, -C bits each */
    int stop;        /* set by the main thread, read relaxed by workers */
    uint64_t start_ns;
};

bool perf_run_stopping(const perf_run *r);
const char *perf_routing_key_for(const perf_run *r, uint32_t queue_index);
/* True if producer p's messages reach queue q. */
bool perf_routes(const perf_run *r, uint32_t producer, uint32_t queue);
void *perf_producer_main(void *arg);
void *perf_consumer_main(void *arg);
int perf_throughput(const perf_opts *o);
/* Connects thread `index` to its broker (round robin over -h). */
int perf_connect(perf_conn *c, const perf_opts *o, uint32_t index, const char *role);

/* ---- reporting ---- */

typedef struct perf_sample {
    double t_s;
    uint64_t published, confirmed, nacked, returned, consumed; /* in this second */
    uint64_t latency_p50_ns, latency_p99_ns, confirm_p50_ns, confirm_p99_ns;
} perf_sample;

typedef struct perf_totals {
    double elapsed_s;
    double publish_elapsed_s; /* start to the last producer's end */
    uint64_t published, confirmed, nacked, returned, consumed, foreign;
    perf_hist latency, confirm_latency;
    bool verified, verify_ok;
} perf_totals;

void perf_report_progress(FILE *out, const perf_opts *o, const perf_sample *s);
void perf_report_summary(FILE *out, const perf_opts *o, const perf_totals *t);
void perf_report_json(FILE *out, const perf_opts *o, const perf_totals *t);
int perf_report_csv(const char *path, const perf_sample *s, uint32_t n);
int perf_report_svg(const char *path, const perf_opts *o, const perf_sample *s, uint32_t n);
/* JSON string body with escapes (no quotes). */
void perf_json_string(FILE *out, const char *s);

/* ---- other sub-commands ---- */

int perf_churn(const perf_opts *o);
int perf_sink(const perf_opts *o);

#endif
