/*
 * store/spill: a queue's paged-out tail. Each test runs in a fresh directory under /tmp (made by
 * store_spill_dir_open, removed after) on a private heap whose blocks are counted at the end.
 * Messages are numbered (publish_seq) and carry a body derived from their number, of seeded
 * sizes, some with a log slot, the recovered flag, an expiration and a priority; what comes back
 * is compared field by field with what went in, in order, across chunk files that tiny chunk
 * sizes make many. Also: chunk files go as they are read, drop_all reports each slot (and reads
 * nothing when there are none), records larger than both buffers, the byte budget of a batch,
 * a stale directory emptied at open, and a disk that refuses writes (RLIMIT_FSIZE: EFBIG)
 * keeping the records in memory, in order, until it takes them again.
 */
#include "tests/store/store_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/limits.h"
#include "store/spill.h"

#define CHUNK_SMALL 4096u

typedef struct fixture {
    mi_heap_t *heap;
    char data_dir[64];
    char spill_dir[96];
    int dir_fd;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL) return -1;
    f->heap = mi_heap_new();
    snprintf(f->data_dir, sizeof(f->data_dir), "/tmp/ringmq-test-spill-XXXXXX");
    if (f->heap == NULL || mkdtemp(f->data_dir) == NULL) return -1;
    f->dir_fd = store_spill_dir_open(f->data_dir, 3);
    snprintf(f->spill_dir, sizeof(f->spill_dir), "%s/spill/shard-3", f->data_dir);
    *state = f;
    return f->dir_fd >= 0 ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fixture *f = *state;
    size_t blocks = util_heap_blocks(f->heap);
    mi_heap_destroy(f->heap);
    close(f->dir_fd);
    int rc = nftw(f->data_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    if (blocks != 0) fprintf(stderr, "leak: %zu live blocks\n", blocks);
    return blocks == 0 && rc == 0 ? 0 : -1;
}

/* Files in the shard's spill directory. */
static uint64_t dir_files(const fixture *f)
{
    DIR *d = opendir(f->spill_dir);
    assert_non_null(d);
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static store_spill *spill_new(fixture *f, uint64_t queue_id, uint64_t chunk_bytes)
{
    store_spill_config cfg = {
        .dir_fd = f->dir_fd, .queue_id = queue_id, .chunk_bytes = chunk_bytes};
    store_spill *sp = store_spill_new(f->heap, &cfg);
    assert_non_null(sp);
    return sp;
}

/* ---- messages derived from their number ---- */

static uint64_t body_bytes_of(uint64_t n, uint64_t big_every)
{
    if (big_every != 0 && n % big_every == big_every - 1)
        return 200000 + n % 7; /* > both buffers */
    return (n * 2654435761u) % 300;
}

static uint8_t body_byte(uint64_t n, uint64_t i)
{
    return (uint8_t)(n * 31 + i * 7);
}

static bool has_slot(uint64_t n)
{
    return n % 3 != 0;
}

static store_msg *msg_of(mi_heap_t *heap, uint64_t n, uint64_t big_every)
{
    uint64_t body_bytes = body_bytes_of(n, big_every);
    char key[32];
    int key_bytes = snprintf(key, sizeof(key), "key.%llu", (unsigned long long)n);
    const uint8_t props[] = {0x10, 0x00, 0x02}; /* delivery-mode 2 */
    store_msg_params p = {.exchange = "amq.direct",
                          .exchange_bytes = n % 2 ? 10 : 0,
                          .routing_key = key,
                          .routing_key_bytes = (size_t)key_bytes,
                          .props = props,
                          .props_bytes = n % 5 ? sizeof(props) : 0,
                          .body_bytes = body_bytes,
                          .persistent = n % 2 == 0,
                          .has_expiration = n % 4 == 1,
                          .expiration_ms = 1000 + n,
                          .priority = (uint8_t)(n % 10),
                          .publisher_shard = (uint16_t)(n % 8),
                          .publish_seq = n,
                          .arrival_ms = 5000000 + n};
    store_msg *m = store_msg_new(heap, &p);
    assert_non_null(m);
    for (uint64_t i = 0; i < body_bytes; i++) store_msg_body_mut(m)[i] = body_byte(n, i);
    if (n % 7 == 3) m->flags |= STORE_MSG_RECOVERED;
    return m;
}

static store_msg_slot slot_of(uint64_t n)
{
    return (store_msg_slot){
        .segment = (uint32_t)(n / 100), .offset = (uint32_t)(n * 64), .slot = (uint32_t)n};
}

static void push_n(store_spill *sp, mi_heap_t *heap, uint64_t n, uint64_t big_every)
{
    store_msg *m = msg_of(heap, n, big_every);
    store_msg_slot slot = slot_of(n);
    store_spill_push(sp, m, has_slot(n) ? &slot : NULL);
    store_msg_unref(m);
}

/* Checks that m is message n, field by field. */
static void check_msg(const store_msg *m, uint64_t n, uint64_t big_every)
{
    assert_int_equal(m->publish_seq, n);
    assert_int_equal(m->refs, 1);
    assert_int_equal(m->arrival_ms, 5000000 + n);
    assert_int_equal(m->publisher_shard, n % 8);
    assert_int_equal(m->priority, n % 10);
    assert_int_equal(m->exchange_bytes, n % 2 ? 10 : 0);
    char key[32];
    int key_bytes = snprintf(key, sizeof(key), "key.%llu", (unsigned long long)n);
    assert_int_equal(m->routing_key_bytes, key_bytes);
    assert_memory_equal(store_msg_routing_key(m), key, (size_t)key_bytes);
    assert_int_equal(m->props_bytes, n % 5 ? 3 : 0);
    assert_int_equal(store_msg_persistent(m), n % 2 == 0);
    assert_int_equal((m->flags & STORE_MSG_HAS_EXPIRATION) != 0, n % 4 == 1);
    if (n % 4 == 1) assert_int_equal(m->expiration_ms, 1000 + n);
    assert_int_equal((m->flags & STORE_MSG_RECOVERED) != 0, n % 7 == 3);
    uint64_t body_bytes = body_bytes_of(n, big_every);
    assert_int_equal(m->body_bytes, body_bytes);
    for (uint64_t i = 0; i < body_bytes; i++)
        assert_int_equal(store_msg_body(m)[i], body_byte(n, i));
    if (has_slot(n)) {
        store_msg_slot slot = slot_of(n);
        assert_int_equal(m->log_queues, 1);
        assert_int_equal(m->log_segment, slot.segment);
        assert_int_equal(m->log_offset, slot.offset);
        assert_int_equal(m->log_slot, slot.slot);
    } else {
        assert_int_equal(m->log_queues, 0);
    }
}

typedef struct popped {
    uint64_t next; /* the number expected next */
    uint64_t big_every;
    uint32_t count;
} popped;

static void check_sink(void *ctx, store_msg *m)
{
    popped *p = ctx;
    check_msg(m, p->next, p->big_every);
    p->next++;
    p->count++;
    m->log_queues = 0; /* no release hook here: nothing to ack */
    store_msg_unref(m);
}

/* ---- tests ---- */

static void test_round_trip_in_order_across_chunks(void **state)
{
    fixture *f = *state;
    store_spill *sp = spill_new(f, 0x1234, CHUNK_SMALL);
    assert_int_equal(store_spill_files(sp), 0);
    uint64_t pushed = 0;
    popped p = {0};
    uint64_t rng = 42;
    for (int round = 0; round < 200; round++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t pushes = (rng >> 33) % 150;
        for (uint64_t i = 0; i < pushes; i++) push_n(sp, f->heap, pushed++, 0);
        assert_int_equal(store_spill_count(sp), pushed - p.next);
        if (store_spill_count(sp) == 0) continue;
        uint32_t want = 1 + (uint32_t)((rng >> 20) % 120);
        p.count = 0;
        uint32_t n = store_spill_pop_batch(sp, want, UINT64_MAX, check_sink, &p);
        assert_int_equal(n, p.count);
        assert_true(n >= 1 && n <= want);
        assert_true(n == want || store_spill_count(sp) == 0);
        assert_int_equal(dir_files(f), store_spill_files(sp));
    }
    assert_true(pushed > 5000);
    while (store_spill_count(sp) > 0) store_spill_pop_batch(sp, 1000, UINT64_MAX, check_sink, &p);
    assert_int_equal(p.next, pushed);
    assert_int_equal(store_spill_bytes(sp), 0);
    assert_int_equal(store_spill_files(sp), 0);
    assert_int_equal(dir_files(f), 0);
    store_spill_free(sp);
}

static void test_chunks_go_once_read(void **state)
{
    fixture *f = *state;
    store_spill *sp = spill_new(f, 7, CHUNK_SMALL);
    for (uint64_t n = 0; n < 2000; n++) push_n(sp, f->heap, n, 0);
    uint64_t files = store_spill_files(sp);
    assert_true(files >= 5); /* ~230 bytes a record; a chunk is sealed by its first 64 KiB flush */
    assert_int_equal(dir_files(f), files);
    popped p = {0};
    uint64_t last = files;
    while (store_spill_count(sp) > 0) {
        store_spill_pop_batch(sp, 50, UINT64_MAX, check_sink, &p);
        uint64_t now = store_spill_files(sp);
        assert_true(now <= last);
        assert_int_equal(dir_files(f), now);
        last = now;
    }
    assert_int_equal(p.next, 2000);
    assert_int_equal(dir_files(f), 0);
    store_spill_free(sp);
}

/* Pushes that stay in the write buffer are read back from it: no file at all. */
static void test_small_spill_needs_no_file(void **state)
{
    fixture *f = *state;
    store_spill *sp = spill_new(f, 8, LIMIT_SPILL_CHUNK_BYTES);
    popped p = {0};
    for (uint64_t n = 0; n < 30; n++) {
        push_n(sp, f->heap, n, 0);
        push_n(sp, f->heap, 1000 + n, 0);
        store_spill_pop_batch(sp, 1, UINT64_MAX, check_sink, &p);
        p.next = 1000 + n;
        store_spill_pop_batch(sp, 1, UINT64_MAX, check_sink, &p);
        assert_int_equal(store_spill_count(sp), 0);
        p.next = n + 1;
    }
    assert_int_equal(dir_files(f), 0);
    store_spill_free(sp);
}

static void test_large_records(void **state)
{
    fixture *f = *state;
    store_spill *sp = spill_new(f, 9, 256u << 10);
    for (uint64_t n = 0; n < 60; n++) push_n(sp, f->heap, n, 5);
    popped p = {.big_every = 5};
    while (store_spill_count(sp) > 0) store_spill_pop_batch(sp, 7, UINT64_MAX, check_sink, &p);
    assert_int_equal(p.next, 60);
    assert_int_equal(dir_files(f), 0);
    store_spill_free(sp);
}

/* A batch stops at its byte budget, after at least one message. */
static void test_batch_byte_budget(void **state)
{
    fixture *f = *state;
    store_spill *sp = spill_new(f, 10, CHUNK_SMALL);
    for (uint64_t n = 0; n < 100; n++) push_n(sp, f->heap, n, 0);
    popped p = {0};
    assert_int_equal(store_spill_pop_batch(sp, 100, 1, check_sink, &p), 1);
    uint32_t n = store_spill_pop_batch(sp, 100, 1000, check_sink, &p);
    assert_true(n >= 2 && n < 100);
    assert_int_equal(store_spill_count(sp), 100 - 1 - n);
    store_spill_drop_all(sp, NULL, NULL);
    store_spill_free(sp);
}

typedef struct dropped {
    store_msg_slot slots[4096];
    uint32_t count;
} dropped;

static void drop_sink(void *ctx, const store_msg_slot *slot)
{
    dropped *d = ctx;
    assert_true(d->count < ARRAY_LEN(d->slots));
    d->slots[d->count++] = *slot;
}

static void test_drop_all_reports_slots(void **state)
{
    fixture *f = *state;
    store_spill *sp = spill_new(f, 11, CHUNK_SMALL);
    for (uint64_t n = 0; n < 1500; n++) push_n(sp, f->heap, n, 0);
    popped p = {0};
    store_spill_pop_batch(sp, 100, UINT64_MAX, check_sink, &p);
    static dropped d;
    d.count = 0;
    assert_int_equal(store_spill_drop_all(sp, drop_sink, &d), 1400);
    uint32_t i = 0;
    for (uint64_t n = 100; n < 1500; n++) {
        if (!has_slot(n)) continue;
        store_msg_slot want = slot_of(n);
        assert_true(i < d.count);
        assert_int_equal(d.slots[i].segment, want.segment);
        assert_int_equal(d.slots[i].offset, want.offset);
        assert_int_equal(d.slots[i].slot, want.slot);
        i++;
    }
    assert_int_equal(i, d.count);
    assert_int_equal(store_spill_count(sp), 0);
    assert_int_equal(dir_files(f), 0);
    /* Still usable, with new chunk numbers. */
    for (uint64_t n = 0; n < 500; n++) push_n(sp, f->heap, n, 0);
    p = (popped){0};
    while (store_spill_count(sp) > 0) store_spill_pop_batch(sp, 64, UINT64_MAX, check_sink, &p);
    assert_int_equal(p.next, 500);
    store_spill_free(sp);
}

/* Without slots (or without a callback) the records go unread: only the files are removed. */
static void test_drop_all_without_slots(void **state)
{
    fixture *f = *state;
    store_spill *sp = spill_new(f, 12, CHUNK_SMALL);
    for (uint64_t n = 0; n < 1800; n += 3) push_n(sp, f->heap, n, 0); /* n % 3 == 0: no slot */
    assert_true(dir_files(f) > 1);
    static dropped d;
    d.count = 0;
    assert_int_equal(store_spill_drop_all(sp, drop_sink, &d), 600);
    assert_int_equal(d.count, 0);
    assert_int_equal(dir_files(f), 0);
    for (uint64_t n = 0; n < 900; n++) push_n(sp, f->heap, n, 0);
    assert_int_equal(store_spill_drop_all(sp, NULL, NULL), 900);
    assert_int_equal(dir_files(f), 0);
    store_spill_free(sp); /* frees an empty spill */
    sp = spill_new(f, 13, CHUNK_SMALL);
    for (uint64_t n = 0; n < 900; n++) push_n(sp, f->heap, n, 0);
    store_spill_free(sp); /* and a full one: its files go */
    assert_int_equal(dir_files(f), 0);
}

/* Two queues' spills side by side in one directory. */
static void test_two_queues(void **state)
{
    fixture *f = *state;
    store_spill *a = spill_new(f, 21, CHUNK_SMALL), *b = spill_new(f, 22, CHUNK_SMALL);
    for (uint64_t n = 0; n < 700; n++) push_n(a, f->heap, n, 0), push_n(b, f->heap, n, 0);
    assert_int_equal(dir_files(f), store_spill_files(a) + store_spill_files(b));
    popped pa = {0}, pb = {0};
    while (store_spill_count(a) > 0) store_spill_pop_batch(a, 90, UINT64_MAX, check_sink, &pa);
    assert_int_equal(dir_files(f), store_spill_files(b));
    while (store_spill_count(b) > 0) store_spill_pop_batch(b, 90, UINT64_MAX, check_sink, &pb);
    assert_int_equal(pa.next + pb.next, 1400);
    store_spill_free(a);
    store_spill_free(b);
    assert_int_equal(dir_files(f), 0);
}

static void test_dir_open_empties_stale_files(void **state)
{
    fixture *f = *state;
    store_spill *sp = spill_new(f, 30, CHUNK_SMALL);
    for (uint64_t n = 0; n < 300; n++) push_n(sp, f->heap, n, 0);
    assert_true(dir_files(f) > 0);
    int fd = store_spill_dir_open(f->data_dir, 3); /* as a restart would */
    assert_true(fd >= 0);
    assert_int_equal(dir_files(f), 0);
    close(fd);
    store_spill_drop_all(sp, NULL, NULL); /* its files are gone: unlinks only warn */
    store_spill_free(sp);
    /* A missing parent is an error with errno. */
    errno = 0;
    assert_int_equal(store_spill_dir_open("/nonexistent/ringmq-test", 0), -1);
    assert_int_equal(errno, ENOENT);
}

/* A disk that refuses (files may not grow past 8 KiB: EFBIG) keeps the records in memory, in
 * order, and writes them out once it takes them again. */
static void test_refused_writes_stay_in_memory(void **state)
{
    fixture *f = *state;
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = {.rlim_cur = 8192, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    store_spill *sp = spill_new(f, 40, 1u << 20);
    for (uint64_t n = 0; n < 1500; n++) push_n(sp, f->heap, n, 0); /* ~250 KiB */
    popped p = {0};
    store_spill_pop_batch(sp, 500, UINT64_MAX, check_sink, &p);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    for (uint64_t n = 1500; n < 3000; n++) push_n(sp, f->heap, n, 0);
    assert_true(dir_files(f) >= 1);
    while (store_spill_count(sp) > 0) store_spill_pop_batch(sp, 333, UINT64_MAX, check_sink, &p);
    assert_int_equal(p.next, 3000);
    assert_int_equal(dir_files(f), 0);
    store_spill_free(sp);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_round_trip_in_order_across_chunks),
        T(test_chunks_go_once_read),
        T(test_small_spill_needs_no_file),
        T(test_large_records),
        T(test_batch_byte_budget),
        T(test_drop_all_reports_slots),
        T(test_drop_all_without_slots),
        T(test_two_queues),
        T(test_dir_open_empties_stale_files),
        T(test_refused_writes_stay_in_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
