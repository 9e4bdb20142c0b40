/*
 * store/log: the segment log against a model. Each test runs in a fresh directory under /tmp
 * (removed after), appends records of seeded random sizes and queue counts, drives the group
 * commit itself (flush_begin, pwrite, fdatasync, flush_end: what the shard does on its ring) or
 * with flush_sync, reopens, and checks that replay hands back exactly the live slots, in order,
 * with their bytes. Damage (torn tails, corrupt records, failed writes) is made by hand on the
 * files. Tests taking a bool state run with O_DIRECT requested and not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/limits.h"
#include "store/log.h"

#define SEG_SMALL         LIMIT_SEGMENT_BYTES_MIN /* 64 KiB: many segments */
#define SEG_MEDIUM        (1u << 20)
#define MODEL_QUEUES_MAX  6u
#define MODEL_RECORDS_MAX 4096u

static bool direct_on = true, direct_off = false;

/* ---- a seeded PRNG (xorshift64*) ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(rng_next(s) % n);
}

/* ---- temporary directories ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* RINGMQ_TEST_DIR picks the filesystem (e.g. a tmpfs); /tmp by default. */
static void dir_make(char *path, size_t bytes)
{
    const char *base = getenv("RINGMQ_TEST_DIR");
    snprintf(path, bytes, "%s/ringmq-test-log-XXXXXX", base != NULL ? base : "/tmp");
    assert_non_null(mkdtemp(path));
}

static void dir_remove(const char *path)
{
    assert_int_equal(nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static uint32_t dir_count(const char *path, const char *suffix)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    uint32_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len > sl && strcmp(e->d_name + len - sl, suffix) == 0) n++;
    }
    closedir(d);
    return n;
}

/* Open file descriptors of this process: the log must not leak any. */
static uint32_t fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    uint32_t n = 0;
    while (readdir(d) != NULL) n++;
    closedir(d);
    return n;
}

static void seg_path(char *out, size_t bytes, const char *dir, uint64_t segment)
{
    snprintf(out, bytes, "%s/%016llx.seg", dir, (unsigned long long)segment);
}

/* ---- the model ---- */

typedef struct model_rec {
    store_log_pos pos;
    uint64_t seq;
    uint64_t ids[MODEL_QUEUES_MAX];
    uint32_t body_bytes;
    uint16_t queue_count;
    uint8_t acked; /* bit per queue index */
    bool gone;     /* destroyed by the test: recovery must not return it */
} model_rec;

typedef struct model {
    char dir[160];
    uint32_t fds; /* open at the start */
    uint64_t segment_bytes;
    bool direct_io;
    store_log *log;
    model_rec *recs;
    uint32_t count;
    uint64_t seq_last;
    uint64_t rng;
    /* replay checking */
    uint32_t cursor_rec;
    uint16_t cursor_qi;
    uint64_t replayed;
    uint64_t refuse_queue_id; /* replay returns false for it */
    store_log_open_stats stats;
} model;

static uint8_t body_byte(uint64_t seq, uint32_t i)
{
    return (uint8_t)(seq * 131u + i * 7u + (i >> 8));
}

static uint32_t model_payload_bytes(const model_rec *r)
{
    return 8u + 8u * r->queue_count + r->body_bytes;
}

static bool model_live(const model_rec *r, uint16_t qi)
{
    return !r->gone && !(r->acked & (1u << qi));
}

/* The next live (record, queue index) from the cursor on, or NULL. */
static model_rec *model_next_live(model *m)
{
    while (m->cursor_rec < m->count) {
        model_rec *r = &m->recs[m->cursor_rec];
        while (m->cursor_qi < r->queue_count) {
            if (model_live(r, m->cursor_qi)) return r;
            m->cursor_qi++;
        }
        m->cursor_rec++;
        m->cursor_qi = 0;
    }
    return NULL;
}

static bool replay_check(void *arg, const store_log_msg_view *v, uint16_t qi)
{
    model *m = arg;
    model_rec *r = model_next_live(m);
    assert_non_null(r);
    assert_int_equal(v->seq, r->seq);
    assert_int_equal(v->pos.segment, r->pos.segment);
    assert_int_equal(v->pos.offset, r->pos.offset);
    assert_int_equal(v->pos.slot, r->pos.slot);
    assert_int_equal(qi, m->cursor_qi);
    assert_int_equal(v->queue_count, r->queue_count);
    assert_int_equal(v->body_bytes, r->body_bytes);
    for (uint16_t i = 0; i < r->queue_count; i++) {
        uint64_t id;
        memcpy(&id, v->queue_ids + 8u * i, 8);
        assert_int_equal(id, r->ids[i]);
    }
    for (uint32_t i = 0; i < r->body_bytes; i++)
        if (v->body[i] != body_byte(r->seq, i))
            fail_msg("seq %llu body byte %u", (unsigned long long)r->seq, i);
    m->cursor_qi++;
    m->replayed++;
    if (m->refuse_queue_id != 0 && r->ids[qi] == m->refuse_queue_id) {
        r->acked |= (uint8_t)(1u << qi);
        return false;
    }
    return true;
}

static void model_init(model *m, uint64_t seed, uint64_t segment_bytes, bool direct_io)
{
    memset(m, 0, sizeof(*m));
    m->fds = fd_count();
    dir_make(m->dir, sizeof(m->dir));
    m->segment_bytes = segment_bytes;
    m->direct_io = direct_io;
    m->rng = seed * 0x9e3779b97f4a7c15ull + 1;
    m->recs = calloc(MODEL_RECORDS_MAX, sizeof(model_rec));
    assert_non_null(m->recs);
}

/* Opens the log and checks that replay returned every live slot of the model, in order. */
static void model_open(model *m)
{
    store_log_config cfg = {
        .dir = m->dir, .shard_id = 3, .segment_bytes = m->segment_bytes, .direct_io = m->direct_io};
    m->cursor_rec = 0, m->cursor_qi = 0, m->replayed = 0;
    m->log = store_log_open(&cfg, replay_check, m, &m->stats);
    assert_non_null(m->log);
    assert_null(model_next_live(m)); /* nothing live was left out */
    m->seq_last = m->stats.seq_last; /* appends go on from the highest sequence number found */
    assert_true(!m->stats.direct_io || m->direct_io);
    store_log_stats st;
    store_log_stats_get(m->log, &st);
    uint64_t live = 0;
    for (uint32_t i = 0; i < m->count; i++)
        for (uint16_t q = 0; q < m->recs[i].queue_count; q++) live += model_live(&m->recs[i], q);
    assert_int_equal(st.live_slots, live);
}

static void model_close(model *m)
{
    store_log_close(m->log);
    m->log = NULL;
}

static void model_done(model *m)
{
    if (m->log != NULL) model_close(m);
    assert_int_equal(fd_count(), m->fds);
    dir_remove(m->dir);
    free(m->recs);
}

/* Appends one record; false when the log refused it (nothing is recorded then). */
static bool model_try_append(model *m, uint32_t body_bytes, uint16_t queue_count, bool needs_sync)
{
    assert_true(queue_count >= 1 && queue_count <= MODEL_QUEUES_MAX);
    assert_true(m->count < MODEL_RECORDS_MAX);
    model_rec *r = &m->recs[m->count];
    memset(r, 0, sizeof(*r));
    r->seq = m->seq_last + 1;
    r->queue_count = queue_count;
    r->body_bytes = body_bytes;
    for (uint16_t i = 0; i < queue_count; i++) r->ids[i] = 1 + rng_below(&m->rng, 6);
    uint8_t *body = malloc(body_bytes + 1u);
    assert_non_null(body);
    for (uint32_t i = 0; i < body_bytes; i++) body[i] = body_byte(r->seq, i);
    uint32_t cut = body_bytes > 0 ? rng_below(&m->rng, body_bytes + 1) : 0;
    struct iovec iov[2] = {{body, cut}, {body + cut, body_bytes - cut}};
    uint64_t seq = 0;
    bool ok = store_log_append_msg(m->log, r->ids, queue_count, iov, 2, needs_sync, &r->pos, &seq);
    free(body);
    if (!ok) return false;
    assert_int_equal(seq, r->seq);
    assert_int_equal(r->pos.offset % 8, 0);
    if (m->count > 0) {
        const model_rec *p = &m->recs[m->count - 1];
        assert_true(r->pos.segment > p->pos.segment ||
                    (r->pos.segment == p->pos.segment && r->pos.offset > p->pos.offset &&
                     r->pos.slot == p->pos.slot + p->queue_count));
    }
    m->seq_last = seq;
    m->count++;
    return true;
}

static void model_append(model *m, uint32_t body_bytes, uint16_t queue_count, bool needs_sync)
{
    assert_true(model_try_append(m, body_bytes, queue_count, needs_sync));
}

static void model_append_random(model *m, uint32_t n, uint32_t body_max)
{
    for (uint32_t i = 0; i < n; i++)
        model_append(m, rng_below(&m->rng, body_max + 1), (uint16_t)(1 + rng_below(&m->rng, 4)),
                     rng_below(&m->rng, 4) != 0);
}

static void model_ack(model *m, model_rec *r, uint16_t qi)
{
    store_log_ack(m->log, r->pos, qi);
    r->acked |= (uint8_t)(1u << qi);
}

/* ---- the shard's side of the group commit ---- */

static void io_run(const store_log_io *io, int *results, int *sync_results)
{
    assert_true(io->op_count >= 1 && io->op_count <= STORE_LOG_IO_OPS_MAX);
    for (uint32_t i = 0; i < io->op_count; i++) {
        const store_log_io_op *op = &io->ops[i];
        assert_true(op->bytes % LIMIT_LOG_BLOCK_BYTES == 0 &&
                    op->offset % LIMIT_LOG_BLOCK_BYTES == 0);
        assert_int_equal((uintptr_t)op->buf % LIMIT_LOG_BLOCK_BYTES, 0);
        ssize_t n = pwrite(op->fd, op->buf, op->bytes, (off_t)op->offset);
        results[i] = n < 0 ? -errno : (int)n;
        sync_results[i] = op->sync ? (fdatasync(op->fd) == 0 ? 0 : -errno) : 0;
    }
}

/* One flush as the shard runs it; false when there was nothing to flush. */
static bool flush_once(store_log *log)
{
    store_log_io io;
    if (!store_log_flush_begin(log, &io)) return false;
    int results[STORE_LOG_IO_OPS_MAX], sync_results[STORE_LOG_IO_OPS_MAX];
    io_run(&io, results, sync_results);
    assert_int_equal(store_log_flush_end(log, &io, results, sync_results), 0);
    return true;
}

static void flush_sync(model *m)
{
    assert_int_equal(store_log_flush_sync(m->log), 0);
    assert_int_equal(store_log_written_seq(m->log), m->seq_last);
    assert_int_equal(store_log_durable_seq(m->log), m->seq_last);
}

static void model_reopen(model *m)
{
    model_close(m);
    model_open(m);
}

/* ---- tests ---- */

static void test_round_trip(void **state)
{
    bool direct = *(bool *)*state;
    model m;
    model_init(&m, 1, LIMIT_SEGMENT_BYTES_DEFAULT, direct);
    model_open(&m);
    assert_int_equal(m.stats.records, 0);
    assert_int_equal(m.stats.segments, 0);
    for (uint32_t i = 0; i < 400; i++) {
        model_append_random(&m, 1, 5000);
        if (rng_below(&m.rng, 20) == 0) flush_sync(&m);
    }
    model_append(&m, 0, 1, true); /* an empty body */
    flush_sync(&m);
    model_reopen(&m);
    assert_int_equal(m.stats.records, m.count);
    assert_int_equal(m.stats.seq_last, m.count);
    assert_int_equal(m.stats.corrupt_records + m.stats.torn_bytes, 0);
    assert_true(m.stats.bytes_read > 0);
    model_append(&m, 100, 2, true); /* sequence numbers go on */
    assert_int_equal(m.recs[m.count - 1].seq, m.count);
    flush_sync(&m);
    model_reopen(&m);
    assert_int_equal(m.stats.records, m.count);
    model_done(&m);
}

static void test_many_segments(void **state)
{
    bool direct = *(bool *)*state;
    model m;
    model_init(&m, 2, SEG_SMALL, direct);
    model_open(&m);
    for (uint32_t i = 0; i < 300; i++) {
        uint32_t body = rng_below(&m.rng, 8192);
        if (i % 50 == 7) body = 150000;           /* larger than a segment */
        if (i % 50 == 21) body = SEG_SMALL - 100; /* nearly a segment */
        model_append(&m, body, (uint16_t)(1 + rng_below(&m.rng, 3)), true);
        if (rng_below(&m.rng, 10) == 0) flush_sync(&m);
    }
    flush_sync(&m);
    store_log_stats st;
    store_log_stats_get(m.log, &st);
    assert_true(st.segments > 30);
    assert_int_equal(dir_count(m.dir, ".seg"), st.segments);
    /* A record larger than a segment starts a segment of its own, sized to fit. */
    for (uint32_t i = 7; i < m.count; i += 50) {
        assert_int_equal(m.recs[i].pos.offset, 0);
        char path[256];
        seg_path(path, sizeof(path), m.dir, m.recs[i].pos.segment);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_true((uint64_t)sb.st_size >= 150000 && sb.st_size % LIMIT_LOG_BLOCK_BYTES == 0);
        assert_int_equal(m.recs[i].pos.segment, m.recs[i - 1].pos.segment + 1);
    }
    model_reopen(&m);
    assert_int_equal(m.stats.records, m.count);
    assert_int_equal(m.stats.segments, st.segments);
    model_done(&m);
}

static void test_flush_in_flight(void **state)
{
    bool direct = *(bool *)*state;
    model m;
    model_init(&m, 3, SEG_MEDIUM, direct);
    model_open(&m);
    store_log_io io;
    assert_false(store_log_flush_begin(m.log, &io)); /* nothing pending */
    model_append_random(&m, 10, 3000);
    uint64_t first = m.seq_last;
    assert_true(store_log_flush_begin(m.log, &io));
    assert_int_equal(io.seq_last, first);
    assert_int_equal(io.op_count, 1);
    uint8_t *copy = malloc(io.ops[0].bytes);
    assert_non_null(copy);
    memcpy(copy, io.ops[0].buf, io.ops[0].bytes);
    store_log_io other;
    assert_false(store_log_flush_begin(m.log, &other)); /* one flush at a time */
    model_append_random(&m, 20, 3000);                  /* appends go on meanwhile */
    assert_memory_equal(copy, io.ops[0].buf, io.ops[0].bytes);
    free(copy);
    int results[STORE_LOG_IO_OPS_MAX], sync_results[STORE_LOG_IO_OPS_MAX];
    io_run(&io, results, sync_results);
    assert_int_equal(store_log_written_seq(m.log), 0);
    assert_int_equal(store_log_flush_end(m.log, &io, results, sync_results), 0);
    assert_int_equal(store_log_written_seq(m.log), first);
    assert_true(store_log_durable_seq(m.log) == first || !io.sync);
    assert_true(flush_once(m.log));
    assert_false(flush_once(m.log));
    assert_int_equal(store_log_written_seq(m.log), m.seq_last);
    store_log_stats st;
    store_log_stats_get(m.log, &st);
    assert_int_equal(st.flushes, 2);
    assert_int_equal(st.appended_records, 30);
    model_reopen(&m);
    assert_int_equal(m.stats.records, 30);
    model_done(&m);
}

static void test_needs_sync(void **state)
{
    (void)state;
    model m;
    model_init(&m, 4, SEG_MEDIUM, false);
    model_open(&m);
    model_append(&m, 10, 1, false);
    store_log_io io;
    assert_true(store_log_flush_begin(m.log, &io));
    assert_false(io.sync);
    assert_false(io.ops[0].sync);
    int results[STORE_LOG_IO_OPS_MAX], sync_results[STORE_LOG_IO_OPS_MAX];
    io_run(&io, results, sync_results);
    assert_int_equal(store_log_flush_end(m.log, &io, results, sync_results), 0);
    assert_int_equal(store_log_written_seq(m.log), 1);
    assert_int_equal(store_log_durable_seq(m.log), 0);
    model_append(&m, 10, 1, true);
    assert_true(store_log_flush_begin(m.log, &io));
    assert_true(io.sync);
    io_run(&io, results, sync_results);
    assert_int_equal(store_log_flush_end(m.log, &io, results, sync_results), 0);
    assert_int_equal(store_log_durable_seq(m.log), 2);
    model_append(&m, 10, 1, false);
    assert_true(flush_once(m.log));
    assert_int_equal(store_log_durable_seq(m.log), 2);
    flush_sync(&m); /* syncs what an unsynced flush wrote */
    assert_int_equal(store_log_flush_sync(m.log), 0);
    model_done(&m);
}

static void test_backpressure(void **state)
{
    bool direct = *(bool *)*state;
    model m;
    model_init(&m, 5, SEG_MEDIUM * 16, direct);
    model_open(&m);
    model_append(&m, 100, 1, true);
    store_log_io io;
    assert_true(store_log_flush_begin(m.log, &io));
    uint32_t appended = 0;
    while (model_try_append(&m, 60000, 2, true)) {
        appended++;
        assert_true(appended <= LIMIT_LOG_WRITE_BUFFER_BYTES / 60000 + 1);
    }
    assert_true(appended >= LIMIT_LOG_WRITE_BUFFER_BYTES / 60000 - 2);
    assert_false(model_try_append(&m, 60000, 1, true)); /* still full */
    int results[STORE_LOG_IO_OPS_MAX], sync_results[STORE_LOG_IO_OPS_MAX];
    io_run(&io, results, sync_results);
    assert_int_equal(store_log_flush_end(m.log, &io, results, sync_results), 0);
    model_append(&m, 60000, 2, true); /* room again once the flush ended */
    /* Without a flush in flight the buffer takes a whole turn's appends. */
    for (uint32_t i = 0; i < 200; i++) model_append(&m, 60000, 1, true);
    flush_sync(&m);
    model_reopen(&m);
    assert_int_equal(m.stats.records, m.count);
    model_done(&m);
}

static void test_acks_checkpoint(void **state)
{
    bool direct = *(bool *)*state;
    model m;
    model_init(&m, 6, SEG_SMALL, direct);
    model_open(&m);
    model_append_random(&m, 300, 1500);
    flush_sync(&m);
    for (uint32_t i = 0; i < m.count; i++)
        for (uint16_t q = 0; q < m.recs[i].queue_count; q++)
            if (rng_below(&m.rng, 2) == 0) model_ack(&m, &m.recs[i], q);
    model_ack(&m, &m.recs[0], 0); /* idempotent */
    model_ack(&m, &m.recs[0], 0);
    store_log_checkpoint(m.log);
    assert_true(dir_count(m.dir, ".ack") > 0);
    model_reopen(&m); /* checks that no acked slot comes back */
    /* Acks without a checkpoint are lost by a restart: those slots come back (redelivered).
     * (Only slots of records that keep another live slot: a segment whose last live slot is
     * acked is deleted at once, which makes its acks durable.) */
    uint32_t lost = 0;
    for (uint32_t i = 0; i < m.count; i++)
        if (m.recs[i].queue_count >= 2 && model_live(&m.recs[i], 0) && model_live(&m.recs[i], 1)) {
            store_log_ack(m.log, m.recs[i].pos, 0);
            lost++;
        }
    assert_true(lost > 0);
    model_reopen(&m);
    /* Now acked and checkpointed, then reopened twice. */
    for (uint32_t i = 0; i < m.count; i++)
        if (model_live(&m.recs[i], 0)) model_ack(&m, &m.recs[i], 0);
    store_log_checkpoint(m.log);
    model_reopen(&m);
    model_reopen(&m);
    model_done(&m);
}

static void test_segment_deletion(void **state)
{
    bool direct = *(bool *)*state;
    model m;
    model_init(&m, 7, SEG_SMALL, direct);
    model_open(&m);
    for (uint32_t i = 0; i < 300; i++) model_append(&m, 2000, 1, true);
    flush_sync(&m);
    store_log_stats st;
    store_log_stats_get(m.log, &st);
    assert_true(st.segments >= 8);
    for (uint32_t i = 0; i < m.count / 2; i++) model_ack(&m, &m.recs[i], 0);
    store_log_checkpoint(m.log); /* ack files exist for the segments still there */
    for (uint32_t i = m.count / 2; i < m.count; i++) model_ack(&m, &m.recs[i], 0);
    store_log_stats_get(m.log, &st);
    assert_int_equal(st.live_slots, 0);
    assert_true(st.segments <= 2);
    assert_true(st.segments_deleted >= 6);
    assert_true(st.disk_bytes <= 2ull * SEG_SMALL);
    assert_int_equal(dir_count(m.dir, ".seg"), st.segments);
    assert_true(dir_count(m.dir, ".ack") <= st.segments);

    /* Acked before their flush: the segments go once the flush has written them. */
    uint32_t from = m.count;
    for (uint32_t i = 0; i < 200; i++) model_append(&m, 2000, 2, true);
    for (uint32_t i = from; i < m.count; i++) {
        model_ack(&m, &m.recs[i], 1);
        model_ack(&m, &m.recs[i], 0);
    }
    flush_sync(&m);
    store_log_stats_get(m.log, &st);
    assert_true(st.segments <= 2);
    assert_int_equal(dir_count(m.dir, ".seg"), st.segments);
    store_log_checkpoint(m.log); /* the current segment's acks */
    model_reopen(&m);
    assert_int_equal(m.replayed, 0);
    store_log_stats_get(m.log, &st);
    assert_int_equal(st.segments, 1); /* the dead ones went at open: only the fresh one is left */
    assert_int_equal(dir_count(m.dir, ".seg"), 1);
    model_done(&m);
}

/* Damages the last records of the newest segment; returns the index of the first one damaged. */
static uint32_t damage_tail(model *m, uint32_t kind)
{
    uint32_t d = m->count - 1 - (kind == 2 ? 0 : rng_below(&m->rng, 5));
    model_rec *r = &m->recs[d];
    uint32_t payload = model_payload_bytes(r);
    uint32_t covered = 24u + payload; /* bytes the checksum covers */
    uint32_t rec = (covered + 7u) & ~7u;
    char path[256];
    seg_path(path, sizeof(path), m->dir, r->pos.segment);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    if (kind == 0) { /* the file ends inside the record */
        uint64_t at = r->pos.offset + 8 + rng_below(&m->rng, rec - 8);
        assert_int_equal(ftruncate(fd, (off_t)at), 0);
    } else if (kind == 1) { /* zeros from inside the record on */
        uint64_t at = r->pos.offset + 8 + rng_below(&m->rng, covered - 8);
        const model_rec *last = &m->recs[m->count - 1];
        uint64_t end = last->pos.offset + ((24u + model_payload_bytes(last) + 7u) & ~7u);
        static const uint8_t zeros[65536];
        while (at < end) {
            size_t n = end - at < sizeof(zeros) ? (size_t)(end - at) : sizeof(zeros);
            assert_int_equal(pwrite(fd, zeros, n, (off_t)at), (ssize_t)n);
            at += n;
        }
    } else { /* one flipped byte in the last record */
        uint64_t at = r->pos.offset + rng_below(&m->rng, covered);
        uint8_t b;
        assert_int_equal(pread(fd, &b, 1, (off_t)at), 1);
        b ^= (uint8_t)(1u << rng_below(&m->rng, 8));
        assert_int_equal(pwrite(fd, &b, 1, (off_t)at), 1);
    }
    close(fd);
    for (uint32_t i = d; i < m->count; i++) m->recs[i].gone = true;
    return d;
}

static void test_torn_tail(void **state)
{
    bool direct = *(bool *)*state;
    for (uint64_t seed = 0; seed < 24; seed++) {
        model m;
        model_init(&m, 100 + seed, SEG_MEDIUM, direct);
        model_open(&m);
        model_append_random(&m, 20 + rng_below(&m.rng, 60), 3000);
        flush_sync(&m);
        model_close(&m);
        uint32_t d = damage_tail(&m, (uint32_t)(seed % 3));
        model_open(&m);
        assert_int_equal(m.stats.records, d);
        assert_true(m.stats.torn_bytes > 0);
        assert_int_equal(m.stats.corrupt_records, 0);
        assert_int_equal(m.stats.seq_last, d);
        m.seq_last = d;
        model_append_random(&m, 10, 3000); /* and the log goes on */
        flush_sync(&m);
        model_reopen(&m);
        assert_int_equal(m.stats.torn_bytes, 0); /* the tail was zeroed on disk */
        assert_int_equal(m.stats.records, d + 10);
        model_done(&m);
    }
}

static void flip_byte(const char *path, uint64_t at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)at), 1);
    b ^= 0x20;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)at), 1);
    close(fd);
}

static void test_corrupt_middle(void **state)
{
    bool direct = *(bool *)*state;
    for (uint64_t seed = 0; seed < 8; seed++) {
        model m;
        model_init(&m, 200 + seed, seed % 2 ? SEG_SMALL : SEG_MEDIUM, direct);
        model_open(&m);
        model_append_random(&m, 120, 1500);
        flush_sync(&m);
        model_close(&m);
        /* A record followed by another in its segment, anywhere but at the end. */
        uint32_t i = 10 + rng_below(&m.rng, m.count - 20);
        while (m.recs[i + 1].pos.segment != m.recs[i].pos.segment) i--;
        model_rec *r = &m.recs[i];
        char path[256];
        seg_path(path, sizeof(path), m.dir, r->pos.segment);
        flip_byte(path, r->pos.offset + rng_below(&m.rng, 24u + model_payload_bytes(r)));
        r->gone = true;
        model_open(&m);
        assert_int_equal(m.stats.corrupt_records, 1);
        assert_int_equal(m.stats.torn_bytes, 0);
        assert_int_equal(m.stats.records, m.count - 1);
        model_append_random(&m, 5, 100);
        flush_sync(&m);
        model_reopen(&m);
        assert_int_equal(m.stats.corrupt_records, 1); /* still there, still skipped */
        model_done(&m);
    }
}

static void test_replay_refuses(void **state)
{
    bool direct = *(bool *)*state;
    model m;
    model_init(&m, 8, SEG_SMALL, direct);
    model_open(&m);
    model_append_random(&m, 400, 1000);
    flush_sync(&m);
    model_close(&m);
    m.refuse_queue_id = 3; /* queue 3 is gone: its slots get acked by the log */
    model_open(&m);
    store_log_checkpoint(m.log);
    model_close(&m);
    m.refuse_queue_id = 0;
    model_open(&m); /* queue 3's slots are not replayed again */
    for (uint32_t i = 0; i < m.count; i++)
        for (uint16_t q = 0; q < m.recs[i].queue_count; q++)
            if (m.recs[i].ids[q] == 3) assert_false(model_live(&m.recs[i], q));
    /* Every queue gone: every segment is dead and deleted at open. */
    model_close(&m);
    m.refuse_queue_id = 0;
    for (uint64_t q = 1; q <= 6; q++) {
        m.refuse_queue_id = q;
        model_open(&m);
        store_log_checkpoint(m.log);
        model_close(&m);
    }
    m.refuse_queue_id = 0;
    model_open(&m);
    assert_int_equal(m.replayed, 0);
    assert_int_equal(dir_count(m.dir, ".seg"), 1);
    model_done(&m);
}

static void test_write_errors(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        model m;
        model_init(&m, 9, SEG_MEDIUM, false);
        model_open(&m);
        model_append_random(&m, 5, 100);
        store_log_io io;
        assert_true(store_log_flush_begin(m.log, &io));
        int results[STORE_LOG_IO_OPS_MAX] = {0}, sync_results[STORE_LOG_IO_OPS_MAX] = {0};
        results[0] = (int)io.ops[0].bytes;
        int want = -EIO;
        if (kind == 0) results[0] = want = -ENOSPC;
        if (kind == 1) results[0] = (int)io.ops[0].bytes - 4096; /* short */
        if (kind == 2) sync_results[0] = -EIO;
        assert_int_equal(store_log_flush_end(m.log, &io, results, sync_results), want);
        assert_true(store_log_failed(m.log));
        assert_int_equal(store_log_durable_seq(m.log), 0);
        assert_false(model_try_append(&m, 10, 1, true));
        assert_false(store_log_flush_begin(m.log, &io));
        assert_int_not_equal(store_log_flush_sync(m.log), 0);
        store_log_checkpoint(m.log); /* still harmless */
        model_done(&m);
    }
}

static void test_huge_record(void **state)
{
    bool direct = *(bool *)*state;
    model m;
    model_init(&m, 10, SEG_SMALL, direct);
    model_open(&m);
    uint32_t huge = LIMIT_LOG_WRITE_BUFFER_BYTES + 123457;
    model_append(&m, 50, 1, true);
    model_append(&m, huge, 2, true); /* larger than the buffer and a segment */
    flush_sync(&m);
    char path[256];
    seg_path(path, sizeof(path), m.dir, m.recs[1].pos.segment);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true((uint64_t)sb.st_size >= huge && (uint64_t)sb.st_size < huge + 8192u);
    model_append(&m, 50, 1, true);
    store_log_io io;
    assert_true(store_log_flush_begin(m.log, &io));
    model_append(&m, 50, 1, true);
    /* In flight with records pending: a huge record waits for the flush to end. */
    assert_false(model_try_append(&m, huge, 1, true));
    int results[STORE_LOG_IO_OPS_MAX], sync_results[STORE_LOG_IO_OPS_MAX];
    io_run(&io, results, sync_results);
    assert_int_equal(store_log_flush_end(m.log, &io, results, sync_results), 0);
    model_append(&m, huge, 1, true);
    flush_sync(&m);
    /* In flight with nothing pending: one huge record is taken. */
    model_append(&m, 50, 1, true);
    assert_true(store_log_flush_begin(m.log, &io));
    model_append(&m, huge, 3, true);
    io_run(&io, results, sync_results);
    assert_int_equal(store_log_flush_end(m.log, &io, results, sync_results), 0);
    flush_sync(&m);
    model_reopen(&m);
    assert_int_equal(m.stats.records, m.count);
    model_done(&m);
}

/* Many segment rolls in one buffer: each flush writes at most two segments' pieces. */
static void test_many_rolls(void **state)
{
    bool direct = *(bool *)*state;
    model m;
    model_init(&m, 11, SEG_SMALL, direct);
    model_open(&m);
    for (uint32_t i = 0; i < 60; i++) model_append(&m, 20000, 1, true);
    uint32_t flushes = 0;
    store_log_io io;
    while (store_log_flush_begin(m.log, &io)) {
        assert_true(io.op_count <= STORE_LOG_IO_OPS_MAX);
        if (io.op_count == 2) assert_true(io.ops[0].sync); /* a sealed segment ends synced */
        model_append(&m, 20000, 1, true);                  /* appends during each flight */
        int results[STORE_LOG_IO_OPS_MAX], sync_results[STORE_LOG_IO_OPS_MAX];
        io_run(&io, results, sync_results);
        assert_int_equal(store_log_flush_end(m.log, &io, results, sync_results), 0);
        assert_true(++flushes < 200);
        if (flushes > 40) break;
    }
    assert_true(flushes >= 10);
    flush_sync(&m);
    model_reopen(&m);
    assert_int_equal(m.stats.records, m.count);
    model_done(&m);
}

static void test_open_directory(void **state)
{
    (void)state;
    char top[160], path[256];
    dir_make(top, sizeof(top));
    /* Not a directory: refused with errno. */
    snprintf(path, sizeof(path), "%s/file", top);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    store_log_config cfg = {.dir = path, .segment_bytes = SEG_SMALL};
    model m;
    memset(&m, 0, sizeof(m));
    errno = 0;
    assert_null(store_log_open(&cfg, replay_check, &m, NULL));
    assert_int_equal(errno, ENOTDIR);
    /* Missing parents are created. */
    snprintf(path, sizeof(path), "%s/a/b/c", top);
    cfg.dir = path;
    store_log *log = store_log_open(&cfg, replay_check, &m, NULL);
    assert_non_null(log);
    store_log_close(log);
    /* Unknown files are ignored, an empty segment and an orphan ack file removed. */
    char name[300];
    const char *files[] = {"README", "0000000000000099.seg", "0000000000000098.ack"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "%s/%s", path, files[i]);
        fd = open(name, O_CREAT | O_WRONLY, 0600);
        assert_true(fd >= 0);
        close(fd);
    }
    store_log_open_stats stats;
    log = store_log_open(&cfg, replay_check, &m, &stats);
    assert_non_null(log);
    assert_int_equal(stats.records, 0);
    snprintf(name, sizeof(name), "%s/0000000000000099.seg", path);
    assert_int_not_equal(access(name, F_OK), 0);
    snprintf(name, sizeof(name), "%s/0000000000000098.ack", path);
    assert_int_not_equal(access(name, F_OK), 0);
    snprintf(name, sizeof(name), "%s/000000000000009a.seg", path); /* numbers are never reused */
    assert_int_equal(access(name, F_OK), 0);
    assert_int_equal(store_log_flush_sync(log), 0);
    store_log_close(log);
    dir_remove(top);
}

/* A garbage ack file counts as no acks: everything is replayed again. */
static void test_bad_ack_file(void **state)
{
    (void)state;
    model m;
    model_init(&m, 12, SEG_SMALL, false);
    model_open(&m);
    model_append_random(&m, 50, 500);
    flush_sync(&m);
    for (uint32_t i = 0; i < m.count; i++) store_log_ack(m.log, m.recs[i].pos, 0);
    store_log_checkpoint(m.log);
    model_close(&m);
    char path[256];
    snprintf(path, sizeof(path), "%s/%016llx.ack", m.dir,
             (unsigned long long)m.recs[0].pos.segment);
    flip_byte(path, 3); /* the magic */
    model_open(&m);     /* the model still has every slot live, so this checks it all comes back */
    model_done(&m);
}

/* Appends, flushes held across other work, acks, checkpoints and reopens in a seeded random
 * order; the model checks every replay, the directory holds exactly the segments the log counts,
 * and draining everything leaves at most two segments. */
static void test_random_ops(void **state)
{
    bool direct = *(bool *)*state;
    for (uint64_t seed = 0; seed < 3; seed++) {
        model m;
        model_init(&m, 300 + seed, SEG_SMALL, direct);
        model_open(&m);
        store_log_io io;
        int results[STORE_LOG_IO_OPS_MAX], sync_results[STORE_LOG_IO_OPS_MAX];
        bool flying = false;
        for (uint32_t step = 0; step < 1500 && m.count < MODEL_RECORDS_MAX - 10; step++) {
            uint32_t r = rng_below(&m.rng, 100);
            if (r < 55) {
                uint32_t body = rng_below(&m.rng, 100) == 0 ? 70000 : rng_below(&m.rng, 6000);
                bool ok = model_try_append(&m, body, (uint16_t)(1 + rng_below(&m.rng, 4)),
                                           rng_below(&m.rng, 8) != 0);
                assert_true(ok || flying); /* refused only during a flush */
            } else if (r < 70 && flying) {
                io_run(&io, results, sync_results);
                assert_int_equal(store_log_flush_end(m.log, &io, results, sync_results), 0);
                assert_int_equal(store_log_written_seq(m.log), io.seq_last);
                flying = false;
            } else if (r < 70) {
                flying = store_log_flush_begin(m.log, &io);
            } else if (r < 92 && m.count > 0) {
                model_rec *rec = &m.recs[rng_below(&m.rng, m.count)];
                uint16_t q = (uint16_t)rng_below(&m.rng, rec->queue_count);
                if (model_live(rec, q)) model_ack(&m, rec, q);
            } else if (r < 97) {
                store_log_checkpoint(m.log);
            } else if (!flying) {
                flush_sync(&m);
                store_log_checkpoint(m.log); /* so that the model knows every ack survives */
                model_reopen(&m);
            }
        }
        if (flying) {
            io_run(&io, results, sync_results);
            assert_int_equal(store_log_flush_end(m.log, &io, results, sync_results), 0);
        }
        flush_sync(&m);
        store_log_checkpoint(m.log);
        model_reopen(&m);
        store_log_stats st;
        store_log_stats_get(m.log, &st);
        assert_int_equal(dir_count(m.dir, ".seg"), st.segments);
        for (uint32_t i = 0; i < m.count; i++)
            for (uint16_t q = 0; q < m.recs[i].queue_count; q++)
                if (model_live(&m.recs[i], q)) model_ack(&m, &m.recs[i], q);
        store_log_stats_get(m.log, &st);
        assert_int_equal(st.live_slots, 0);
        assert_true(st.segments <= 2);
        assert_int_equal(dir_count(m.dir, ".seg"), st.segments);
        model_done(&m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_round_trip, &direct_off),
        cmocka_unit_test_prestate(test_round_trip, &direct_on),
        cmocka_unit_test_prestate(test_many_segments, &direct_off),
        cmocka_unit_test_prestate(test_many_segments, &direct_on),
        cmocka_unit_test_prestate(test_flush_in_flight, &direct_off),
        cmocka_unit_test_prestate(test_flush_in_flight, &direct_on),
        cmocka_unit_test(test_needs_sync),
        cmocka_unit_test_prestate(test_backpressure, &direct_off),
        cmocka_unit_test_prestate(test_backpressure, &direct_on),
        cmocka_unit_test_prestate(test_acks_checkpoint, &direct_off),
        cmocka_unit_test_prestate(test_acks_checkpoint, &direct_on),
        cmocka_unit_test_prestate(test_segment_deletion, &direct_off),
        cmocka_unit_test_prestate(test_segment_deletion, &direct_on),
        cmocka_unit_test_prestate(test_torn_tail, &direct_off),
        cmocka_unit_test_prestate(test_torn_tail, &direct_on),
        cmocka_unit_test_prestate(test_corrupt_middle, &direct_off),
        cmocka_unit_test_prestate(test_corrupt_middle, &direct_on),
        cmocka_unit_test_prestate(test_replay_refuses, &direct_off),
        cmocka_unit_test_prestate(test_replay_refuses, &direct_on),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test_prestate(test_huge_record, &direct_off),
        cmocka_unit_test_prestate(test_huge_record, &direct_on),
        cmocka_unit_test_prestate(test_many_rolls, &direct_off),
        cmocka_unit_test_prestate(test_many_rolls, &direct_on),
        cmocka_unit_test_prestate(test_random_ops, &direct_off),
        cmocka_unit_test_prestate(test_random_ops, &direct_on),
        cmocka_unit_test(test_open_directory),
        cmocka_unit_test(test_bad_ack_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
