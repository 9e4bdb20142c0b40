/*
 * The throughput scenario: declares the topology on a setup connection,
 * starts the consumers (and waits until they consume), then the producers,
 * samples every thread's counters once a second and decides when the run
 * ends: at -z, when every thread is done, or, for a bounded run (-C), once
 * the producers are done and the consumers have drained what reached them
 * or stayed idle for PERF_DRAIN_IDLE_MS. Then it joins the threads, sums up
 * and, with --verify, judges that every message arrived exactly once and in
 * order per producer.
 *
 * The main thread owns the run; workers read it and write only their own
 * perf_producer / perf_consumer, and the shared verification bitmaps with
 * atomic ors.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/assert.h"
#include "tools/amqp-perf/perf.h"

enum { RUN_TICK_MS = 10 };

bool perf_run_stopping(const perf_run *r)
{
    return __atomic_load_n(&r->stop, __ATOMIC_RELAXED) != 0;
}

const char *perf_routing_key_for(const perf_run *r, uint32_t queue_index)
{
    if (r->o->queue_pattern[0] != 0) return r->queue_names[queue_index];
    return r->o->routing_key;
}

bool perf_routes(const perf_run *r, uint32_t producer, uint32_t queue)
{
    if (strcmp(r->o->exchange_type, "fanout") == 0 && r->o->exchange[0] != 0) return true;
    if (r->o->queue_pattern[0] != 0) return r->producers[producer].queue_index == queue;
    return true;
}

int perf_connect(perf_conn *c, const perf_opts *o, uint32_t index, const char *role)
{
    char name[PERF_NAME_BYTES_MAX + 64];
    snprintf(name, sizeof name, "amqp-perf %s %s %u", o->id, role, index);
    return perf_conn_open(c, &o->uris[index % o->uri_count], name);
}

/* "perf-%d" with n: the first %d replaced, nothing else interpreted. */
static void run_queue_name(char *out, const char *pattern, uint32_t n)
{
    const char *d = strstr(pattern, "%d");
    ASSERT(d != NULL);
    snprintf(out, PERF_NAME_BYTES_MAX, "%.*s%u%s", (int)(d - pattern), pattern, n, d + 2);
}

static int run_declare(perf_run *r, perf_conn *c)
{
    const perf_opts *o = r->o;
    amqp_method m;
    if (o->exchange[0] != 0 && strncmp(o->exchange, "amq.", 4) != 0) {
        m = (amqp_method){.id = AMQP_EXCHANGE_DECLARE};
        m.a.exchange_declare.exchange = amqp_cstr(o->exchange);
        m.a.exchange_declare.type = amqp_cstr(o->exchange_type);
        if (perf_conn_rpc(c, 1, &m, AMQP_EXCHANGE_DECLARE_OK, NULL) != 0) return -1;
    }
    for (uint32_t q = 0; q < r->queue_count && !r->queue_per_consumer; q++) {
        m = (amqp_method){.id = AMQP_QUEUE_DECLARE};
        m.a.queue_declare.queue = amqp_cstr(r->queue_names[q]);
        m.a.queue_declare.durable = true;
        m.a.queue_declare.auto_delete = o->auto_delete;
        m.a.queue_declare.arguments = (amqp_table){o->queue_args, o->queue_args_len};
        if (perf_conn_rpc(c, 1, &m, AMQP_QUEUE_DECLARE_OK, NULL) != 0) return -1;
        if (o->exchange[0] == 0) continue;
        m = (amqp_method){.id = AMQP_QUEUE_BIND};
        m.a.queue_bind.queue = amqp_cstr(r->queue_names[q]);
        m.a.queue_bind.exchange = amqp_cstr(o->exchange);
        m.a.queue_bind.routing_key = amqp_cstr(perf_routing_key_for(r, q));
        if (perf_conn_rpc(c, 1, &m, AMQP_QUEUE_BIND_OK, NULL) != 0) return -1;
    }
    return 0;
}

static int run_setup(perf_run *r)
{
    const perf_opts *o = r->o;
    r->run_tag = (uint16_t)(getpid() ^ (perf_now_ns() >> 10));
    if (o->queue_pattern[0] != 0) r->queue_count = o->queue_pattern_to - o->queue_pattern_from + 1;
    else if (o->queue[0] != 0) r->queue_count = 1;
    else r->queue_per_consumer = true, r->queue_count = o->consumers;
    r->queue_names = calloc(r->queue_count + 1, sizeof *r->queue_names);
    r->producers = calloc(o->producers + 1, sizeof *r->producers);
    r->consumers = calloc(o->consumers + 1, sizeof *r->consumers);
    if (r->queue_names == NULL || r->producers == NULL || r->consumers == NULL) return -1;
    for (uint32_t q = 0; q < r->queue_count && o->queue_pattern[0] != 0; q++)
        run_queue_name(r->queue_names[q], o->queue_pattern, o->queue_pattern_from + q);
    if (o->queue[0] != 0) strcpy(r->queue_names[0], o->queue);
    for (uint32_t i = 0; i < o->producers; i++)
        r->producers[i] = (perf_producer){
            .run = r, .index = i, .queue_index = r->queue_count > 0 ? i % r->queue_count : 0};
    for (uint32_t i = 0; i < o->consumers; i++) {
        perf_consumer *c = &r->consumers[i];
        *c = (perf_consumer){.run = r, .index = i, .queue_index = i % r->queue_count};
        c->last_seq = calloc(o->producers + 1, sizeof *c->last_seq);
        if (c->last_seq == NULL) return -1;
    }
    if (!o->verify) return 0;
    size_t words = (size_t)(o->pmessages + 63) / 64;
    r->seen = calloc((size_t)r->queue_count * o->producers, sizeof *r->seen);
    if (r->seen == NULL) return -1;
    for (size_t i = 0; i < (size_t)r->queue_count * o->producers; i++)
        if ((r->seen[i] = calloc(words, sizeof(uint64_t))) == NULL) return -1;
    return 0;
}

static void run_free(perf_run *r)
{
    for (size_t i = 0; r->seen != NULL && i < (size_t)r->queue_count * r->o->producers; i++)
        free(r->seen[i]);
    for (uint32_t i = 0; r->consumers != NULL && i < r->o->consumers; i++)
        free(r->consumers[i].last_seq);
    free(r->seen);
    free(r->queue_names);
    free(r->producers);
    free(r->consumers);
}

/* Sums every thread's counters (each read relaxed) into *t. */
static void run_collect(const perf_run *r, perf_totals *t)
{
    memset(t, 0, sizeof *t);
    for (uint32_t i = 0; i < r->o->producers; i++) {
        const perf_counters *c = &r->producers[i].ctr;
        t->published += perf_count_get(&c->published);
        t->confirmed += perf_count_get(&c->confirmed);
        t->nacked += perf_count_get(&c->nacked);
        t->returned += perf_count_get(&c->returned);
        perf_hist_add(&t->confirm_latency, &c->confirm_latency);
    }
    for (uint32_t i = 0; i < r->o->consumers; i++) {
        const perf_counters *c = &r->consumers[i].ctr;
        t->consumed += perf_count_get(&c->consumed);
        t->foreign += perf_count_get(&c->foreign);
        perf_hist_add(&t->latency, &c->latency);
    }
}

static bool run_queue_consumed(const perf_run *r, uint32_t q)
{
    return r->queue_per_consumer || q < r->o->consumers;
}

/* Deliveries the consumers should see for what was published so far. */
static uint64_t run_expected(const perf_run *r)
{
    uint64_t n = 0;
    for (uint32_t q = 0; q < r->queue_count; q++) {
        if (!run_queue_consumed(r, q)) continue;
        for (uint32_t p = 0; p < r->o->producers; p++)
            if (perf_routes(r, p, q)) n += perf_count_get(&r->producers[p].ctr.published);
    }
    return n;
}

static bool run_all_done(const perf_run *r, bool producers)
{
    uint32_t n = producers ? r->o->producers : r->o->consumers;
    for (uint32_t i = 0; i < n; i++) {
        const bool *done = producers ? &r->producers[i].done : &r->consumers[i].done;
        if (!__atomic_load_n(done, __ATOMIC_ACQUIRE)) return false;
    }
    return true;
}

static uint64_t run_consumed(const perf_run *r)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < r->o->consumers; i++) n += perf_count_get(&r->consumers[i].ctr.consumed);
    return n;
}

static volatile sig_atomic_t run_interrupted;

static void run_on_signal(int sig)
{
    (void)sig;
    run_interrupted = 1;
}

/* One end-of-run rule per line; true when the run is over. */
static bool run_over(const perf_run *r, uint64_t now_ns, uint64_t *idle_since_ns, uint64_t *seen)
{
    const perf_opts *o = r->o;
    if (run_interrupted) return true;
    if (o->time_s > 0 && (double)(now_ns - r->start_ns) >= o->time_s * 1e9) return true;
    bool pdone = run_all_done(r, true), cdone = run_all_done(r, false);
    if (pdone && cdone) return true;
    if (o->consumers > 0 && cdone) return true;
    if (o->producers == 0 || !pdone) return false;
    if (o->consumers == 0) return true;
    uint64_t consumed = run_consumed(r);
    if (o->cmessages == 0 && consumed >= run_expected(r)) return true;
    if (consumed != *seen) *seen = consumed, *idle_since_ns = now_ns;
    return now_ns - *idle_since_ns > (uint64_t)PERF_DRAIN_IDLE_MS * 1000000u;
}

typedef struct run_series {
    perf_sample *samples;
    uint32_t count;
    perf_totals *prev, *cur;
    perf_hist *lat, *clat; /* this second's */
} run_series;

static void run_sample(perf_run *r, run_series *s, double t_s)
{
    run_collect(r, s->cur);
    perf_hist_sub(s->lat, &s->cur->latency, &s->prev->latency);
    perf_hist_sub(s->clat, &s->cur->confirm_latency, &s->prev->confirm_latency);
    perf_sample x = {
        .t_s = t_s,
        .published = s->cur->published - s->prev->published,
        .confirmed = s->cur->confirmed - s->prev->confirmed,
        .nacked = s->cur->nacked - s->prev->nacked,
        .returned = s->cur->returned - s->prev->returned,
        .consumed = s->cur->consumed - s->prev->consumed,
        .latency_p50_ns = perf_hist_percentile(s->lat, 50),
        .latency_p99_ns = perf_hist_percentile(s->lat, 99),
        .confirm_p50_ns = perf_hist_percentile(s->clat, 50),
        .confirm_p99_ns = perf_hist_percentile(s->clat, 99),
    };
    perf_report_progress(r->o->json ? stderr : stdout, r->o, &x);
    if (s->count < PERF_SAMPLES_MAX) s->samples[s->count++] = x;
    perf_totals *t = s->prev;
    s->prev = s->cur;
    s->cur = t;
}

static uint64_t run_loop(perf_run *r, run_series *s)
{
    uint64_t next_ns = r->start_ns + 1000000000u, idle_since_ns = r->start_ns, seen = 0;
    for (;;) {
        perf_sleep_ns(RUN_TICK_MS * 1000000u);
        uint64_t now_ns = perf_now_ns();
        if (now_ns >= next_ns) {
            run_sample(r, s, (double)(next_ns - r->start_ns) / 1e9);
            next_ns += 1000000000u;
        }
        if (run_over(r, now_ns, &idle_since_ns, &seen)) return now_ns;
    }
}

__attribute__((format(printf, 2, 3))) static void run_issue(uint32_t *issues, const char *fmt, ...)
{
    if (++*issues > PERF_VERIFY_ISSUES_MAX) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("amqp-perf: verify: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static uint64_t run_bits(const uint64_t *bits, uint64_t n)
{
    uint64_t set = 0;
    for (uint64_t w = 0; w < (n + 63) / 64; w++) set += (uint64_t)__builtin_popcountll(bits[w]);
    return set;
}

/* Every message of every producer reached each of its queues exactly once,
 * in order per producer on each consumer, and was confirmed when asked. */
static bool run_verify(const perf_run *r)
{
    const perf_opts *o = r->o;
    uint32_t issues = 0;
    for (uint32_t p = 0; p < o->producers; p++) {
        const perf_counters *c = &r->producers[p].ctr;
        if (c->published != o->pmessages)
            run_issue(&issues, "producer %u published %llu of %llu", p,
                      (unsigned long long)c->published, (unsigned long long)o->pmessages);
        if (o->confirm_window > 0 && (c->confirmed != c->published || c->nacked != 0))
            run_issue(&issues, "producer %u: %llu confirmed, %llu nacked of %llu", p,
                      (unsigned long long)c->confirmed, (unsigned long long)c->nacked,
                      (unsigned long long)c->published);
    }
    for (uint32_t i = 0; i < o->consumers; i++) {
        const perf_consumer *c = &r->consumers[i];
        if (c->duplicates > 0)
            run_issue(&issues, "consumer %u: %llu duplicates", i, (unsigned long long)c->duplicates);
        if (c->out_of_order > 0)
            run_issue(&issues, "consumer %u: %llu out of order", i,
                      (unsigned long long)c->out_of_order);
    }
    for (uint32_t q = 0; q < r->queue_count; q++) {
        for (uint32_t p = 0; p < o->producers && run_queue_consumed(r, q); p++) {
            uint64_t got = run_bits(r->seen[q * o->producers + p], o->pmessages);
            uint64_t want = perf_routes(r, p, q) ? o->pmessages : 0;
            if (got != want)
                run_issue(&issues, "queue %u got %llu of producer %u's %llu messages", q,
                          (unsigned long long)got, p, (unsigned long long)want);
        }
    }
    return issues == 0;
}

static int run_threads(perf_run *r, pthread_t *pt, pthread_t *ct)
{
    const perf_opts *o = r->o;
    for (uint32_t i = 0; i < o->consumers; i++)
        if (pthread_create(&ct[i], NULL, perf_consumer_main, &r->consumers[i]) != 0) return -1;
    for (uint32_t i = 0; i < o->consumers; i++)
        while (!__atomic_load_n(&r->consumers[i].ready, __ATOMIC_ACQUIRE)) perf_sleep_ns(1000000);
    for (uint32_t i = 0; i < o->consumers; i++)
        if (r->consumers[i].failed) return -1;
    r->start_ns = perf_now_ns();
    for (uint32_t i = 0; i < o->producers; i++)
        if (pthread_create(&pt[i], NULL, perf_producer_main, &r->producers[i]) != 0) return -1;
    return 0;
}

static int run_output(const perf_run *r, run_series *s, perf_totals *t)
{
    const perf_opts *o = r->o;
    int rc = 0;
    for (uint32_t i = 0; i < o->producers; i++)
        if (r->producers[i].failed) fprintf(stderr, "amqp-perf: %s\n", r->producers[i].error), rc = 1;
    for (uint32_t i = 0; i < o->consumers; i++)
        if (r->consumers[i].failed) fprintf(stderr, "amqp-perf: %s\n", r->consumers[i].error), rc = 1;
    if (o->verify) {
        t->verified = true;
        t->verify_ok = rc == 0 && run_verify(r);
        if (!t->verify_ok) rc = 1;
    }
    perf_report_summary(o->json ? stderr : stdout, o, t);
    if (o->json) perf_report_json(stdout, o, t);
    if (o->csv_path != NULL && perf_report_csv(o->csv_path, s->samples, s->count) != 0) rc = 1;
    if (o->plot_path != NULL && perf_report_svg(o->plot_path, o, s->samples, s->count) != 0) rc = 1;
    return rc;
}

int perf_throughput(const perf_opts *o)
{
    perf_run r = {.o = o};
    run_series s = {0};
    pthread_t *pt = calloc(o->producers + 1, sizeof *pt), *ct = calloc(o->consumers + 1, sizeof *ct);
    s.samples = calloc(PERF_SAMPLES_MAX, sizeof *s.samples);
    s.prev = calloc(1, sizeof *s.prev);
    s.cur = calloc(1, sizeof *s.cur);
    s.lat = calloc(1, sizeof *s.lat);
    s.clat = calloc(1, sizeof *s.clat);
    if (pt == NULL || ct == NULL || s.samples == NULL || s.prev == NULL || s.cur == NULL ||
        s.lat == NULL || s.clat == NULL || run_setup(&r) != 0) {
        fprintf(stderr, "amqp-perf: out of memory\n");
        return 1;
    }
    perf_conn setup;
    if (!o->predeclared &&
        (perf_connect(&setup, o, 0, "setup") != 0 || perf_conn_channel_open(&setup, 1) != 0 ||
         run_declare(&r, &setup) != 0)) {
        fprintf(stderr, "amqp-perf: setup: %s\n", setup.error);
        perf_conn_close(&setup);
        return 1;
    }
    if (!o->predeclared) perf_conn_close(&setup);
    signal(SIGINT, run_on_signal);
    signal(SIGTERM, run_on_signal);
    int rc = 0;
    uint64_t end_ns = perf_now_ns();
    r.start_ns = end_ns;
    if (run_threads(&r, pt, ct) == 0) end_ns = run_loop(&r, &s);
    else rc = 1;
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < o->producers; i++)
        if (pt[i] != 0) pthread_join(pt[i], NULL);
    for (uint32_t i = 0; i < o->consumers; i++)
        if (ct[i] != 0) pthread_join(ct[i], NULL);
    perf_totals *t = s.cur;
    run_collect(&r, t);
    t->elapsed_s = (double)(end_ns - r.start_ns) / 1e9;
    for (uint32_t i = 0; i < o->producers; i++) {
        uint64_t done_ns = pt[i] != 0 ? r.producers[i].done_ns : 0;
        double s_i = done_ns > r.start_ns ? (double)(done_ns - r.start_ns) / 1e9 : t->elapsed_s;
        if (s_i > t->publish_elapsed_s) t->publish_elapsed_s = s_i;
    }
    int out_rc = run_output(&r, &s, t);
    run_free(&r);
    free(pt), free(ct), free(s.samples), free(s.prev), free(s.cur), free(s.lat), free(s.clat);
    return rc != 0 ? rc : out_rc;
}
