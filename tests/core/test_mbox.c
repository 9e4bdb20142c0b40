/*
 * Unit tests for core/mbox: empty, unpublished, FIFO over many turns, wrap-around, full and
 * the blocked-producer notice, zero-length and largest records, the sleeping-flag protocol,
 * and a bounded two-thread stress test that also runs the wake protocol over eventfds (a lost
 * wake-up shows as a poll timeout, not a hang). Rings are the 4 KiB minimum so that wrap and
 * full are reached in a few records.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/mbox.h"

#define TEST_RING_BYTES LIMIT_MBOX_RING_BYTES_MIN

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Payload of record seq: bytes derived from seq, so the reader can check every byte. */
static void fill_payload(uint8_t *payload, uint32_t payload_bytes, uint64_t seq)
{
    uint64_t word = splitmix64(seq);
    for (uint32_t i = 0; i < payload_bytes; i++) {
        payload[i] = (uint8_t)(word >> (8u * (i % 8u))) ^ (uint8_t)(i / 8u);
    }
}

static bool payload_matches(const uint8_t *payload, uint32_t payload_bytes, uint64_t seq)
{
    uint64_t word = splitmix64(seq);
    for (uint32_t i = 0; i < payload_bytes; i++) {
        if (payload[i] != ((uint8_t)(word >> (8u * (i % 8u))) ^ (uint8_t)(i / 8u))) return false;
    }
    return true;
}

static void push_seq(mbox_ring *ring, uint64_t seq, uint32_t payload_bytes)
{
    uint8_t *slot = mbox_reserve(ring, (uint16_t)(seq & 0x7fffu), payload_bytes);
    assert_non_null(slot);
    fill_payload(slot, payload_bytes, seq);
    mbox_commit(ring, payload_bytes);
}

static void pop_seq(mbox_ring *ring, uint64_t seq, uint32_t payload_bytes)
{
    const mbox_record *record = mbox_peek(ring);
    assert_non_null(record);
    assert_int_equal(record->kind, seq & 0x7fffu);
    assert_int_equal(record->payload_bytes, payload_bytes);
    assert_true(((uintptr_t)mbox_record_payload(record) % MBOX_RECORD_ALIGN_BYTES) == 0);
    assert_true(payload_matches(mbox_record_payload(record), payload_bytes, seq));
    mbox_pop(ring);
}

static void test_empty(void **state)
{
    (void)state;
    mbox_mesh *mesh = mbox_mesh_create(2, TEST_RING_BYTES);
    assert_non_null(mesh);
    mbox_ring *ring = mbox_mesh_ring(mesh, 0, 1);
    assert_int_equal(mbox_ring_bytes(ring), TEST_RING_BYTES);
    assert_null(mbox_peek(ring));
    assert_false(mbox_publish(ring)); /* nothing committed: no store, no wake */
    assert_false(mbox_release(ring));
    assert_false(mbox_mesh_pending(mesh, 1));
    assert_int_equal(mbox_space_bytes(ring), mbox_ring_payload_bytes_max(ring));
    /* Push one, drain it: empty again. */
    push_seq(ring, 1, 24);
    mbox_publish(ring);
    pop_seq(ring, 1, 24);
    assert_null(mbox_peek(ring));
    assert_false(mbox_release(ring)); /* producer never blocked */
    assert_false(mbox_mesh_pending(mesh, 1));
    mbox_mesh_destroy(mesh);
}

static void test_unpublished_invisible(void **state)
{
    (void)state;
    mbox_mesh *mesh = mbox_mesh_create(2, TEST_RING_BYTES);
    mbox_ring *ring = mbox_mesh_ring(mesh, 0, 1);
    push_seq(ring, 7, 40);
    push_seq(ring, 8, 0);
    assert_null(mbox_peek(ring));
    assert_false(mbox_mesh_pending(mesh, 1));
    /* An open reservation is invisible too. */
    mbox_publish(ring);
    assert_non_null(mbox_reserve(ring, 9, 16));
    assert_true(mbox_mesh_pending(mesh, 1));
    pop_seq(ring, 7, 40);
    pop_seq(ring, 8, 0);
    assert_null(mbox_peek(ring));
    mbox_commit(ring, 16);
    assert_null(mbox_peek(ring));
    mbox_publish(ring);
    const mbox_record *record = mbox_peek(ring);
    assert_non_null(record);
    assert_int_equal(record->kind, 9);
    mbox_mesh_destroy(mesh);
}

/* FIFO over many turns of random size and count; the ring wraps many times. */
static void test_fifo_many_turns(void **state)
{
    (void)state;
    mbox_mesh *mesh = mbox_mesh_create(2, TEST_RING_BYTES);
    mbox_ring *ring = mbox_mesh_ring(mesh, 0, 1);
    uint64_t seq_written = 0, seq_read = 0;
    for (uint32_t turn = 0; turn < 20000; turn++) {
        uint64_t r = splitmix64(turn);
        uint32_t records = (uint32_t)(r % 8u);
        for (uint32_t i = 0; i < records; i++) {
            uint32_t payload_bytes = (uint32_t)(splitmix64(seq_written) % 200u);
            if (mbox_space_bytes(ring) < payload_bytes) break;
            push_seq(ring, seq_written, payload_bytes);
            seq_written++;
        }
        mbox_publish(ring);
        uint32_t reads = (uint32_t)((r >> 32) % 9u);
        for (uint32_t i = 0; i < reads && seq_read < seq_written; i++) {
            pop_seq(ring, seq_read, (uint32_t)(splitmix64(seq_read) % 200u));
            seq_read++;
        }
        mbox_release(ring);
    }
    while (seq_read < seq_written) {
        pop_seq(ring, seq_read, (uint32_t)(splitmix64(seq_read) % 200u));
        seq_read++;
    }
    assert_null(mbox_peek(ring));
    assert_true(seq_written > 50000); /* many wraps of a 4 KiB ring */
    mbox_mesh_destroy(mesh);
}

/* A record that would straddle the end goes to offset 0 behind a SKIP; the consumer never
 * sees the SKIP and reads the payload whole. */
static void test_wrap(void **state)
{
    (void)state;
    mbox_mesh *mesh = mbox_mesh_create(2, TEST_RING_BYTES);
    mbox_ring *ring = mbox_mesh_ring(mesh, 0, 1);
    /* 3 records of 1024 bytes (payload 1016) fill [0, 3072); drain them. */
    for (uint64_t s = 0; s < 3; s++) push_seq(ring, s, 1016);
    mbox_publish(ring);
    for (uint64_t s = 0; s < 3; s++) pop_seq(ring, s, 1016);
    mbox_release(ring);
    /* 1024 bytes remain before the end; a 1000-byte payload (1008-byte record) fits... */
    uint8_t *first = mbox_reserve(ring, 3, 1000);
    assert_non_null(first);
    fill_payload(first, 1000, 3);
    mbox_commit(ring, 1000);
    /* ...and the next record (16 bytes left at the end) goes to offset 0 behind a SKIP. */
    uint8_t *wrapped = mbox_reserve(ring, 4, 300);
    assert_non_null(wrapped);
    assert_true(wrapped + 3072 == first); /* both payloads follow an 8-byte header */
    fill_payload(wrapped, 300, 4);
    mbox_commit(ring, 300);
    push_seq(ring, 5, 17); /* tail at 312 + 32 = 344 */
    mbox_publish(ring);
    pop_seq(ring, 3, 1000);
    pop_seq(ring, 4, 300);
    pop_seq(ring, 5, 17);
    assert_null(mbox_peek(ring));
    mbox_release(ring);
    /* Straddle by a lot: fill to 200 bytes before the end, then ask for a 408-byte record. */
    for (uint64_t s = 6; s < 9; s++) push_seq(ring, s, 1016); /* tail at 3416 */
    push_seq(ring, 9, 472);                                   /* tail at 3896 */
    mbox_publish(ring);
    for (uint64_t s = 6; s < 9; s++) pop_seq(ring, s, 1016);
    pop_seq(ring, 9, 472);
    mbox_release(ring);
    uint8_t *straddle = mbox_reserve(ring, 10, 400);
    assert_true(straddle + 3072 == first); /* offset 8 again */
    fill_payload(straddle, 400, 10);
    mbox_commit(ring, 400);
    mbox_publish(ring);
    pop_seq(ring, 10, 400);
    assert_null(mbox_peek(ring));
    mbox_mesh_destroy(mesh);
}

/* Reserve fails exactly when the ring is full, arms the blocked notice, and succeeds again
 * once the consumer pops and releases. */
static void test_full(void **state)
{
    (void)state;
    mbox_mesh *mesh = mbox_mesh_create(2, TEST_RING_BYTES);
    mbox_ring *ring = mbox_mesh_ring(mesh, 0, 1);
    /* 56-byte payloads make 64-byte records: exactly 64 fit. */
    for (uint64_t s = 0; s < TEST_RING_BYTES / 64; s++) {
        assert_true(mbox_space_bytes(ring) >= 56);
        push_seq(ring, s, 56);
    }
    assert_int_equal(mbox_space_bytes(ring), 0);
    assert_null(mbox_reserve(ring, 1, 0));
    mbox_publish(ring);
    pop_seq(ring, 0, 56);
    assert_null(mbox_reserve(ring, 1, 0)); /* popped but not released: still full */
    assert_true(mbox_release(ring));       /* the producer was blocked: tell it */
    assert_false(mbox_release(ring));      /* once */
    assert_int_equal(mbox_space_bytes(ring), 56);
    assert_null(mbox_reserve(ring, 1, 57)); /* 72 bytes do not fit in 64 */
    push_seq(ring, 64, 56);
    assert_null(mbox_reserve(ring, 1, 0));
    mbox_publish(ring);
    for (uint64_t s = 1; s <= 64; s++) pop_seq(ring, s, 56);
    assert_null(mbox_peek(ring));
    assert_true(mbox_release(ring));
    assert_int_equal(mbox_space_bytes(ring), mbox_ring_payload_bytes_max(ring));
    mbox_mesh_destroy(mesh);
}

/* mbox_space_bytes is exactly the boundary of mbox_reserve, in random states. */
static void test_space_is_reserve_boundary(void **state)
{
    (void)state;
    mbox_mesh *mesh = mbox_mesh_create(2, TEST_RING_BYTES);
    mbox_ring *ring = mbox_mesh_ring(mesh, 0, 1);
    uint32_t payload_bytes_max = mbox_ring_payload_bytes_max(ring);
    uint64_t seq_written = 0, seq_read = 0;
    uint32_t full_seen = 0;
    for (uint32_t step = 0; step < 50000; step++) {
        uint64_t r = splitmix64(step + 1000000);
        if (r % 3u != 0) {
            uint32_t space_bytes = mbox_space_bytes(ring);
            uint32_t want_bytes = (uint32_t)((r >> 8) % (payload_bytes_max + 1u));
            void *slot = mbox_reserve(ring, 1, want_bytes);
            assert_true((slot != NULL) == (want_bytes <= space_bytes));
            if (slot != NULL) mbox_commit(ring, 0), seq_written++;
            if (space_bytes < payload_bytes_max) full_seen++;
            if (slot == NULL && space_bytes > 0) {
                slot = mbox_reserve(ring, 1, space_bytes);
                assert_non_null(slot);
                mbox_commit(ring, 0);
                seq_written++;
            }
            mbox_publish(ring);
        } else {
            for (uint32_t i = 0; i < (r >> 8) % 4u && mbox_peek(ring) != NULL; i++) {
                mbox_pop(ring);
                seq_read++;
            }
            mbox_release(ring);
        }
    }
    assert_true(seq_read <= seq_written);
    assert_true(full_seen > 1000);
    mbox_mesh_destroy(mesh);
}

static void test_zero_and_max_records(void **state)
{
    (void)state;
    mbox_mesh *mesh = mbox_mesh_create(2, TEST_RING_BYTES);
    mbox_ring *ring = mbox_mesh_ring(mesh, 0, 1);
    uint32_t payload_bytes_max = mbox_ring_payload_bytes_max(ring);
    assert_int_equal(payload_bytes_max, TEST_RING_BYTES / 4 - sizeof(mbox_record));
    /* Zero-length records take a header each and carry only their kind. */
    for (uint64_t s = 0; s < 10; s++) push_seq(ring, s, 0);
    push_seq(ring, 10, payload_bytes_max);
    push_seq(ring, 11, payload_bytes_max);
    push_seq(ring, 12, payload_bytes_max);
    mbox_publish(ring);
    for (uint64_t s = 0; s < 10; s++) pop_seq(ring, s, 0);
    pop_seq(ring, 10, payload_bytes_max);
    mbox_release(ring);
    push_seq(ring, 13, payload_bytes_max); /* wraps */
    mbox_publish(ring);
    for (uint64_t s = 11; s <= 13; s++) pop_seq(ring, s, payload_bytes_max);
    /* A reservation may be committed shorter than reserved. */
    mbox_release(ring);
    uint8_t *slot = mbox_reserve(ring, 14, payload_bytes_max);
    fill_payload(slot, 5, 14);
    mbox_commit(ring, 5);
    push_seq(ring, 15, 3);
    mbox_publish(ring);
    pop_seq(ring, 14, 5);
    pop_seq(ring, 15, 3);
    assert_null(mbox_peek(ring));
    /* The default ring takes the global payload maximum. */
    mbox_mesh *big = mbox_mesh_create(2, LIMIT_MBOX_RING_BYTES);
    assert_int_equal(mbox_ring_payload_bytes_max(mbox_mesh_ring(big, 1, 0)),
                     LIMIT_MBOX_PAYLOAD_BYTES_MAX);
    mbox_mesh_destroy(big);
    mbox_mesh_destroy(mesh);
}

/* One byte over the maximum is a programmer error: the process aborts. */
static void test_oversize_asserts(void **state)
{
    (void)state;
    mbox_mesh *mesh = mbox_mesh_create(2, TEST_RING_BYTES);
    mbox_ring *ring = mbox_mesh_ring(mesh, 0, 1);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen("/dev/null", "w", stderr) == NULL) _exit(2);
        mbox_reserve(ring, 1, mbox_ring_payload_bytes_max(ring) + 1);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    mbox_mesh_destroy(mesh);
}

static void test_sleep_protocol(void **state)
{
    (void)state;
    mbox_mesh *mesh = mbox_mesh_create(3, TEST_RING_BYTES);
    mbox_ring *ring_01 = mbox_mesh_ring(mesh, 0, 1);
    mbox_ring *ring_21 = mbox_mesh_ring(mesh, 2, 1);
    /* Shard 1 sleeps; the first producer to publish takes the wake, the second does not. */
    assert_true(mbox_sleep_prepare(mesh, 1));
    push_seq(ring_01, 0, 8);
    push_seq(ring_21, 0, 8);
    assert_true(mbox_publish(ring_01));
    assert_false(mbox_publish(ring_21));
    mbox_sleep_end(mesh, 1);
    /* Published-but-unread records keep the shard awake, and nobody is asked to wake it. */
    pop_seq(ring_01, 0, 8);
    assert_false(mbox_sleep_prepare(mesh, 1)); /* ring 2->1 still holds one */
    push_seq(ring_01, 1, 8);
    assert_false(mbox_publish(ring_01));
    pop_seq(ring_01, 1, 8);
    pop_seq(ring_21, 0, 8);
    mbox_release(ring_01);
    mbox_release(ring_21);
    /* Unpublished records do not keep it awake: the publish that follows wakes it. */
    push_seq(ring_21, 1, 8);
    assert_true(mbox_sleep_prepare(mesh, 1));
    assert_true(mbox_publish(ring_21));
    mbox_sleep_end(mesh, 1);
    pop_seq(ring_21, 1, 8);
    mbox_release(ring_21);
    /* A sleeping shard 1 is nothing to producers for shard 0 or 2. */
    assert_true(mbox_sleep_prepare(mesh, 1));
    push_seq(mbox_mesh_ring(mesh, 1, 0), 0, 8);
    assert_false(mbox_publish(mbox_mesh_ring(mesh, 1, 0)));
    assert_true(mbox_sleep_prepare(mesh, 0) == false); /* 1->0 holds a record */
    /* Woken by something else, the shard clears its flag; a later publish wakes no one. */
    mbox_sleep_end(mesh, 1);
    push_seq(ring_01, 2, 8);
    assert_false(mbox_publish(ring_01));
    assert_true(mbox_mesh_pending(mesh, 1));
    mbox_mesh_destroy(mesh);
}

/* ---- two-thread stress ---- */

#define STRESS_RECORDS     2000000u
#define STRESS_RING_BYTES  65536u
#define STRESS_WALL_NS_MAX (60ull * 1000000000ull) /* generous for TSan; a few seconds plain */
#define STRESS_POLL_MS     2000 /* a wake-up lost for this long is a protocol bug */
#define STRESS_SYNC_TURNS  8    /* every this many turns the producer waits for the consumer */
#define STRESS_SYNC_NONE   UINT64_MAX

typedef struct {
    mbox_mesh *mesh;
    int consumer_eventfd;      /* shard 1 sleeps on it */
    int producer_eventfd;      /* shard 0 waits on it for space */
    int sync_eventfd;          /* shard 0 waits on it at a sync point */
    _Atomic uint64_t sync_seq; /* the consumer signals sync_eventfd on reaching it */
    uint64_t deadline_ns;
    atomic_bool failed;
    const char *failure; /* first failure, written by the thread that set failed */
    uint64_t seq_expected;
    uint64_t consumer_wakes, consumer_sleeps; /* wakes: sent by the producer */
    uint64_t producer_wakes, producer_blocks; /* wakes: sent by the consumer */
    uint64_t turns;
} stress_ctx;

static void stress_fail(stress_ctx *ctx, const char *why)
{
    bool expected = false;
    if (atomic_compare_exchange_strong(&ctx->failed, &expected, true)) ctx->failure = why;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t stress_payload_bytes(uint64_t seq, uint32_t payload_bytes_max)
{
    uint64_t r = splitmix64(seq ^ 0x5eedull);
    if (r % 64u == 0) return (uint32_t)((r >> 8) % (payload_bytes_max + 1u));
    return 16u + (uint32_t)((r >> 8) % 240u);
}

static uint64_t fnv1a64(const uint8_t *bytes, uint32_t count)
{
    uint64_t hash = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < count; i++) hash = (hash ^ bytes[i]) * 0x100000001b3ull;
    return hash;
}

static void eventfd_signal(int fd)
{
    uint64_t one = 1;
    if (write(fd, &one, sizeof(one)) != (ssize_t)sizeof(one)) abort();
}

/* Blocks until fd is signalled; false when STRESS_POLL_MS passed (a lost wake-up). */
static bool eventfd_wait(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc;
    do rc = poll(&pfd, 1, STRESS_POLL_MS);
    while (rc < 0 && errno == EINTR);
    if (rc <= 0) return false;
    uint64_t count;
    return read(fd, &count, sizeof(count)) == (ssize_t)sizeof(count);
}

/* Payload: [0,8) seq, [8,16) FNV-1a of [16,n), [16,n) derived from seq; shorter ones: derived
 * bytes only. */
static void stress_write(uint8_t *slot, uint32_t payload_bytes, uint64_t seq)
{
    fill_payload(slot, payload_bytes, seq);
    if (payload_bytes < 16) return;
    uint64_t checksum = fnv1a64(slot + 16, payload_bytes - 16);
    memcpy(slot, &seq, sizeof(seq));
    memcpy(slot + 8, &checksum, sizeof(checksum));
}

static void stress_check(void *arg, const mbox_record *record)
{
    stress_ctx *ctx = arg;
    uint64_t seq = ctx->seq_expected++;
    const uint8_t *payload = mbox_record_payload(record);
    uint32_t payload_bytes_max = mbox_ring_payload_bytes_max(mbox_mesh_ring(ctx->mesh, 0, 1));
    if (record->kind != (seq & 0x7fffu)) return stress_fail(ctx, "kind out of sequence");
    if (record->payload_bytes != stress_payload_bytes(seq, payload_bytes_max)) {
        return stress_fail(ctx, "payload length");
    }
    if (record->payload_bytes < 16) {
        if (!payload_matches(payload, record->payload_bytes, seq)) stress_fail(ctx, "bytes");
        return;
    }
    uint64_t seq_found, checksum;
    memcpy(&seq_found, payload, sizeof(seq_found));
    memcpy(&checksum, payload + 8, sizeof(checksum));
    if (seq_found != seq) return stress_fail(ctx, "sequence number");
    if (checksum != fnv1a64(payload + 16, record->payload_bytes - 16)) {
        stress_fail(ctx, "checksum");
    }
}

static void *stress_producer(void *arg)
{
    stress_ctx *ctx = arg;
    mbox_ring *ring = mbox_mesh_ring(ctx->mesh, 0, 1);
    uint32_t payload_bytes_max = mbox_ring_payload_bytes_max(ring);
    uint64_t seq = 0;
    while (seq < STRESS_RECORDS && !atomic_load(&ctx->failed)) {
        /* One turn: a random number of records, then one publish. */
        uint32_t turn_records = 1u + (uint32_t)(splitmix64(seq) % 64u);
        bool blocked = false;
        for (uint32_t i = 0; i < turn_records && seq < STRESS_RECORDS; i++) {
            uint32_t payload_bytes = stress_payload_bytes(seq, payload_bytes_max);
            uint8_t *slot = mbox_reserve(ring, (uint16_t)(seq & 0x7fffu), payload_bytes);
            if (slot == NULL) {
                blocked = true; /* the failed reserve armed the consumer's notice */
                break;
            }
            stress_write(slot, payload_bytes, seq);
            mbox_commit(ring, payload_bytes);
            seq++;
        }
        ctx->turns++;
        /* Every few turns, stop after the publish until the consumer has read everything: a
         * lost wake-up for this last publish cannot be covered by a later one, so it shows as a
         * timeout. sync_seq is stored before the publish that makes the records visible. */
        bool sync = !blocked && ctx->turns % STRESS_SYNC_TURNS == 0;
        if (sync) atomic_store(&ctx->sync_seq, seq);
        if (mbox_publish(ring)) {
            ctx->consumer_wakes++;
            eventfd_signal(ctx->consumer_eventfd);
        }
        if (blocked) {
            ctx->producer_blocks++;
            if (!eventfd_wait(ctx->producer_eventfd)) stress_fail(ctx, "producer never told");
        } else if (sync) {
            if (!eventfd_wait(ctx->sync_eventfd)) stress_fail(ctx, "consumer missed a wake");
        }
        if (now_ns() > ctx->deadline_ns) stress_fail(ctx, "producer past the wall time");
    }
    return NULL;
}

static void *stress_consumer(void *arg)
{
    stress_ctx *ctx = arg;
    mbox_ring *ring = mbox_mesh_ring(ctx->mesh, 0, 1);
    while (ctx->seq_expected < STRESS_RECORDS && !atomic_load(&ctx->failed)) {
        uint32_t records = mbox_drain(ring, stress_check, ctx, LIMIT_MBOX_DRAIN_RECORDS_MAX);
        if (atomic_load(&ctx->sync_seq) == ctx->seq_expected) {
            atomic_store(&ctx->sync_seq, STRESS_SYNC_NONE);
            eventfd_signal(ctx->sync_eventfd);
        }
        if (mbox_release(ring)) {
            ctx->producer_wakes++;
            eventfd_signal(ctx->producer_eventfd);
        }
        if (records == 0 && mbox_sleep_prepare(ctx->mesh, 1)) {
            ctx->consumer_sleeps++;
            if (!eventfd_wait(ctx->consumer_eventfd)) stress_fail(ctx, "consumer never woken");
            mbox_sleep_end(ctx->mesh, 1);
        }
        if (now_ns() > ctx->deadline_ns) stress_fail(ctx, "consumer past the wall time");
    }
    return NULL;
}

static void test_two_thread_stress(void **state)
{
    (void)state;
    stress_ctx ctx = {0};
    ctx.mesh = mbox_mesh_create(2, STRESS_RING_BYTES);
    assert_non_null(ctx.mesh);
    ctx.consumer_eventfd = eventfd(0, EFD_CLOEXEC);
    ctx.producer_eventfd = eventfd(0, EFD_CLOEXEC);
    ctx.sync_eventfd = eventfd(0, EFD_CLOEXEC);
    assert_true(ctx.consumer_eventfd >= 0 && ctx.producer_eventfd >= 0 && ctx.sync_eventfd >= 0);
    atomic_init(&ctx.failed, false);
    atomic_init(&ctx.sync_seq, STRESS_SYNC_NONE);
    uint64_t start_ns = now_ns();
    ctx.deadline_ns = start_ns + STRESS_WALL_NS_MAX;
    pthread_t producer, consumer;
    assert_int_equal(pthread_create(&consumer, NULL, stress_consumer, &ctx), 0);
    assert_int_equal(pthread_create(&producer, NULL, stress_producer, &ctx), 0);
    assert_int_equal(pthread_join(producer, NULL), 0);
    assert_int_equal(pthread_join(consumer, NULL), 0);
    uint64_t wall_ms = (now_ns() - start_ns) / 1000000u;
    printf("stress: %llu records in %llu ms; %llu turns, consumer slept %llu woken %llu, "
           "producer blocked %llu told %llu\n",
           (unsigned long long)ctx.seq_expected, (unsigned long long)wall_ms,
           (unsigned long long)ctx.turns, (unsigned long long)ctx.consumer_sleeps,
           (unsigned long long)ctx.consumer_wakes, (unsigned long long)ctx.producer_blocks,
           (unsigned long long)ctx.producer_wakes);
    if (atomic_load(&ctx.failed)) fail_msg("stress failed: %s", ctx.failure);
    assert_int_equal(ctx.seq_expected, STRESS_RECORDS);
    assert_null(mbox_peek(mbox_mesh_ring(ctx.mesh, 0, 1)));
    close(ctx.consumer_eventfd);
    close(ctx.producer_eventfd);
    close(ctx.sync_eventfd);
    mbox_mesh_destroy(ctx.mesh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_unpublished_invisible),
        cmocka_unit_test(test_fifo_many_turns),
        cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_space_is_reserve_boundary),
        cmocka_unit_test(test_zero_and_max_records),
        cmocka_unit_test(test_oversize_asserts),
        cmocka_unit_test(test_sleep_protocol),
        cmocka_unit_test(test_two_thread_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
