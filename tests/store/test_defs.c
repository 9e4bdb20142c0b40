/*
 * store/defs: the definitions journal. Every change kind round-trips through the file; replay
 * keeps the order of the changes; a torn tail is cut off and a corrupt record in the middle is
 * skipped; compaction keeps exactly the live set, also when a crash leaves its tmp file behind;
 * deletes take their bindings along; a failed write leaves the journal as it was.
 * Each test works in its own temporary directory. The live set is compared as text, one line per
 * definition, so a failure shows the whole set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/defs.h"
#include "store/record.h"

#define B(s) amqp_cstr(s)

typedef struct {
    char dir[64];
    char path[128];
    store_defs *d;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/ringmq-test-defs-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/definitions.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_defs_close(f->d);
    DIR *dir = opendir(f->dir);
    assert_non_null(dir);
    struct dirent *de;
    char path[512];
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "%s/%s", f->dir, de->d_name);
        unlink(path);
    }
    closedir(dir);
    rmdir(f->dir);
    free(f);
    return 0;
}

static store_defs *reopen_min(fixture *f, uint32_t compact_min)
{
    store_defs_close(f->d);
    store_defs_config cfg = {.dir = f->dir, .compact_records_min = compact_min};
    store_defs_error err;
    f->d = store_defs_open(&cfg, &err);
    if (f->d == NULL) fail_msg("open: %s", err.text);
    return f->d;
}

static store_defs *reopen(fixture *f) { return reopen_min(f, 0); }

/* ---- changes ---- */

/* Table entries: "x-message-ttl" = I 1000, "x-dead-letter-exchange" = S "dlx". */
static const uint8_t queue_args[] = {
    13, 'x', '-', 'm', 'e', 's', 's', 'a', 'g', 'e', '-', 't', 't', 'l', 'I', 0, 0, 0x03, 0xe8,
    22, 'x', '-', 'd', 'e', 'a', 'd', '-', 'l', 'e', 't', 't', 'e', 'r', '-', 'e', 'x', 'c', 'h',
    'a', 'n', 'g', 'e', 'S', 0, 0, 0, 3, 'd', 'l', 'x'};
static const uint8_t bind_args[] = {7, 'x', '-', 'm', 'a', 't', 'c', 'h', 'S', 0, 0, 0, 3, 'a', 'n', 'y'};

static store_defs_change exchange(const char *vhost, const char *name, const char *type)
{
    return (store_defs_change){.op = STORE_DEFS_EXCHANGE_DECLARE, .vhost = B(vhost),
                               .name = B(name), .type = B(type), .durable = true};
}

static store_defs_change queue(const char *vhost, const char *name, uint64_t id, uint32_t shard)
{
    return (store_defs_change){.op = STORE_DEFS_QUEUE_DECLARE, .vhost = B(vhost), .name = B(name),
                               .durable = true, .queue_id = id, .queue_shard = shard};
}

static store_defs_change binding(const char *vhost, const char *src, const char *dst, bool dst_x,
                                 const char *key)
{
    return (store_defs_change){.op = STORE_DEFS_BIND, .vhost = B(vhost), .name = B(src),
                               .destination = B(dst), .destination_is_exchange = dst_x,
                               .routing_key = B(key)};
}

static store_defs_change removal(store_defs_change c)
{
    switch (c.op) {
    case STORE_DEFS_EXCHANGE_DECLARE: c.op = STORE_DEFS_EXCHANGE_DELETE; break;
    case STORE_DEFS_QUEUE_DECLARE: c.op = STORE_DEFS_QUEUE_DELETE; break;
    case STORE_DEFS_BIND: c.op = STORE_DEFS_UNBIND; break;
    default: fail();
    }
    return c;
}

static void commit1(store_defs *d, store_defs_change c)
{
    store_defs_error err;
    if (!store_defs_commit(d, &c, 1, &err)) fail_msg("commit: %s", err.text);
}

/* ---- the live set as text ---- */

typedef struct {
    char text[8192];
    size_t len;
} dump;

static void dump_bytes(dump *out, amqp_bytes b)
{
    for (uint32_t i = 0; i < b.len && out->len + 4 < sizeof(out->text); i++) {
        uint8_t c = b.data[i];
        out->len += (size_t)snprintf(out->text + out->len, sizeof(out->text) - out->len,
                                     c >= 32 && c < 127 ? "%c" : "\\%02x", c);
    }
}

static void dump_one(void *ctx, const store_defs_change *c)
{
    dump *out = ctx;
    const char *kind = c->op == STORE_DEFS_EXCHANGE_DECLARE ? "X"
                       : c->op == STORE_DEFS_QUEUE_DECLARE  ? "Q"
                                                            : "B";
    out->len += (size_t)snprintf(out->text + out->len, sizeof(out->text) - out->len, "%s ", kind);
    dump_bytes(out, c->vhost);
    out->len += (size_t)snprintf(out->text + out->len, sizeof(out->text) - out->len, " ");
    dump_bytes(out, c->name);
    if (c->op == STORE_DEFS_BIND) {
        out->len += (size_t)snprintf(out->text + out->len, sizeof(out->text) - out->len, " -> %s:",
                                     c->destination_is_exchange ? "x" : "q");
        dump_bytes(out, c->destination);
        out->len += (size_t)snprintf(out->text + out->len, sizeof(out->text) - out->len, " key=");
        dump_bytes(out, c->routing_key);
    }
    if (c->op == STORE_DEFS_EXCHANGE_DECLARE) {
        out->len += (size_t)snprintf(out->text + out->len, sizeof(out->text) - out->len, " ");
        dump_bytes(out, c->type);
    }
    if (c->op == STORE_DEFS_QUEUE_DECLARE)
        out->len += (size_t)snprintf(out->text + out->len, sizeof(out->text) - out->len,
                                     " id=%llu shard=%u", (unsigned long long)c->queue_id,
                                     c->queue_shard);
    if (c->op != STORE_DEFS_BIND)
        out->len += (size_t)snprintf(out->text + out->len, sizeof(out->text) - out->len, " %s%s%s",
                                     c->durable ? "D" : "-", c->auto_delete ? "A" : "-",
                                     c->internal ? "I" : "-");
    if (c->arguments.len > 0) {
        out->len += (size_t)snprintf(out->text + out->len, sizeof(out->text) - out->len, " args=");
        dump_bytes(out, c->arguments);
    }
    out->len += (size_t)snprintf(out->text + out->len, sizeof(out->text) - out->len, "\n");
}

static const char *live(store_defs *d)
{
    static dump out;
    out.len = 0;
    out.text[0] = '\0';
    store_defs_each(d, dump_one, &out);
    return out.text;
}

static off_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return st.st_size;
}

/* ---- tests ---- */

static void test_empty_dir(void **state)
{
    fixture *f = *state;
    store_defs *d = reopen(f);
    assert_int_equal(store_defs_live_count(d), 0);
    assert_int_equal(store_defs_queue_id_next(d), 1);
    assert_int_equal(file_size(f->path), -1); /* nothing is created until the first write */
    assert_string_equal(live(d), "");
}

static void test_round_trip_every_kind(void **state)
{
    fixture *f = *state;
    store_defs *d = reopen(f);
    store_defs_change x = exchange("/", "orders", "topic");
    x.auto_delete = true;
    x.internal = true;
    static const char ae_args[] = "\x12" "alternate-exchange" "S\0\0\0\x02" "ae";
    x.arguments = (amqp_bytes){(const uint8_t *)ae_args, sizeof(ae_args) - 1};
    store_defs_change hx = exchange("vh2", "hdr", "headers");
    store_defs_change q = queue("/", "q1", 7, 1);
    q.arguments = (amqp_bytes){queue_args, sizeof(queue_args)};
    store_defs_change qa = queue("vh2", "qa", 9, 0);
    qa.auto_delete = true;
    store_defs_change bq = binding("/", "orders", "q1", false, "a.*.c");
    store_defs_change bx = binding("vh2", "hdr", "amq.fanout", true, "");
    bx.arguments = (amqp_bytes){bind_args, sizeof(bind_args)};
    store_defs_change bp = binding("vh2", "amq.direct", "qa", false, "k");
    store_defs_change all[] = {x, hx, q, qa, bq, bx, bp};
    for (size_t i = 0; i < ARRAY_LEN(all); i++) commit1(d, all[i]);
    const char *want = "X / orders topic DAI args=\\12alternate-exchangeS\\00\\00\\00\\02ae\n"
                       "X vh2 hdr headers D--\n"
                       "Q / q1 id=7 shard=1 D-- args=\\0dx-message-ttlI\\00\\00\\03\\e8"
                       "\\16x-dead-letter-exchangeS\\00\\00\\00\\03dlx\n"
                       "Q vh2 qa id=9 shard=0 DA-\n"
                       "B / orders -> q:q1 key=a.*.c\n"
                       "B vh2 hdr -> x:amq.fanout key= args=\\07x-matchS\\00\\00\\00\\03any\n"
                       "B vh2 amq.direct -> q:qa key=k\n";
    assert_string_equal(live(d), want);
    assert_int_equal(store_defs_queue_id_next(d), 10);
    d = reopen(f);
    assert_string_equal(live(d), want);
    assert_int_equal(store_defs_queue_id_next(d), 10);
    assert_int_equal(store_defs_stats(d)->records, ARRAY_LEN(all));
    assert_int_equal(store_defs_stats(d)->torn_bytes, 0);

    /* The removals, each kind, also survive a reopen. */
    commit1(d, removal(bp));
    commit1(d, removal(hx)); /* takes hdr -> amq.fanout along */
    commit1(d, removal(qa));
    want = "X / orders topic DAI args=\\12alternate-exchangeS\\00\\00\\00\\02ae\n"
           "Q / q1 id=7 shard=1 D-- args=\\0dx-message-ttlI\\00\\00\\03\\e8"
           "\\16x-dead-letter-exchangeS\\00\\00\\00\\03dlx\n"
           "B / orders -> q:q1 key=a.*.c\n";
    assert_string_equal(live(d), want);
    d = reopen(f);
    assert_string_equal(live(d), want);
    assert_int_equal(store_defs_queue_id_next(d), 10); /* deleted ids are not handed out again */
}

static void test_replay_order(void **state)
{
    fixture *f = *state;
    store_defs *d = reopen(f);
    commit1(d, exchange("/", "a", "direct"));
    commit1(d, exchange("/", "b", "direct"));
    commit1(d, exchange("/", "c", "direct"));
    commit1(d, queue("/", "q", 1, 0));
    commit1(d, binding("/", "b", "q", false, "k"));
    commit1(d, removal(exchange("/", "b", "direct")));
    commit1(d, exchange("/", "b", "fanout")); /* declared again: last in line, without bindings */
    commit1(d, queue("/", "q", 1, 1));        /* moved to shard 1: keeps its place */
    commit1(d, queue("/", "r", 2, 0));
    commit1(d, binding("/", "a", "q", false, "k2"));
    commit1(d, binding("/", "a", "q", false, "k1"));
    commit1(d, binding("/", "a", "q", false, "k2")); /* again: nothing new */
    const char *want = "X / a direct D--\nX / c direct D--\nX / b fanout D--\n"
                       "Q / q id=1 shard=1 D--\nQ / r id=2 shard=0 D--\n"
                       "B / a -> q:q key=k2\nB / a -> q:q key=k1\n";
    assert_string_equal(live(d), want);
    d = reopen(f);
    assert_string_equal(live(d), want);
}

static void test_deletes_take_bindings(void **state)
{
    fixture *f = *state;
    store_defs *d = reopen(f);
    commit1(d, exchange("/", "x", "topic"));
    commit1(d, exchange("/", "y", "fanout"));
    commit1(d, exchange("v", "x", "topic")); /* same name, other vhost */
    commit1(d, queue("/", "q", 1, 0));
    commit1(d, queue("/", "x", 2, 0)); /* a queue named like the exchange */
    commit1(d, queue("v", "q", 3, 0));
    commit1(d, binding("/", "x", "q", false, "1"));
    commit1(d, binding("/", "y", "x", true, "2"));
    commit1(d, binding("/", "x", "y", true, "3"));
    commit1(d, binding("/", "x", "x", true, "4"));  /* to itself */
    commit1(d, binding("/", "y", "x", false, "5")); /* to the queue x */
    commit1(d, binding("v", "x", "q", false, "6"));
    commit1(d, removal(exchange("/", "x", "topic")));
    const char *want = "X / y fanout D--\nX v x topic D--\n"
                       "Q / q id=1 shard=0 D--\nQ / x id=2 shard=0 D--\nQ v q id=3 shard=0 D--\n"
                       "B / y -> q:x key=5\nB v x -> q:q key=6\n";
    assert_string_equal(live(d), want);
    commit1(d, removal(queue("/", "x", 2, 0)));
    commit1(d, removal(queue("v", "q", 3, 0)));
    commit1(d, removal(binding("/", "y", "nothing", false, "z"))); /* missing: fine */
    want = "X / y fanout D--\nX v x topic D--\nQ / q id=1 shard=0 D--\n";
    assert_string_equal(live(d), want);
    d = reopen(f);
    assert_string_equal(live(d), want);
}

static void test_torn_tail_truncated(void **state)
{
    fixture *f = *state;
    store_defs *d = reopen(f);
    commit1(d, exchange("/", "a", "direct"));
    commit1(d, exchange("/", "b", "direct"));
    off_t good = file_size(f->path);
    commit1(d, exchange("/", "torn", "direct"));
    off_t full = file_size(f->path);
    store_defs_close(d);
    f->d = NULL;
    for (off_t cut = full - 1; cut > good; cut -= 13) {
        assert_int_equal(truncate(f->path, cut), 0);
        d = reopen(f);
        assert_string_equal(live(d), "X / a direct D--\nX / b direct D--\n");
        assert_int_equal(store_defs_stats(d)->torn_bytes, cut - good);
        assert_int_equal(file_size(f->path), good);
        assert_int_equal(store_defs_stats(d)->corrupt_regions, 0);
        /* The next write goes where the torn record was. */
        commit1(d, exchange("/", "torn", "direct"));
        assert_int_equal(file_size(f->path), full);
    }
    /* Zeros past the end (a file extended but never written) are a torn tail too. */
    int fd = open(f->path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    static const uint8_t zeros[100];
    assert_int_equal(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
    close(fd);
    d = reopen(f);
    assert_string_equal(live(d), "X / a direct D--\nX / b direct D--\nX / torn direct D--\n");
    assert_int_equal(file_size(f->path), full);
}

static void test_corrupt_middle_skipped(void **state)
{
    fixture *f = *state;
    store_defs *d = reopen(f);
    commit1(d, exchange("/", "a", "direct"));
    off_t a_end = file_size(f->path);
    commit1(d, exchange("/", "bad", "direct"));
    commit1(d, exchange("/", "c", "direct"));
    commit1(d, queue("/", "q", 5, 0));
    store_defs_close(d);
    f->d = NULL;
    /* Flip one byte of the second record's payload. */
    int fd = open(f->path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte;
    off_t at = a_end + STORE_RECORD_HEADER_BYTES + LIMIT_DEFS_FIXED_BYTES + 2;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 0x40;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);
    d = reopen(f);
    const char *want = "X / a direct D--\nX / c direct D--\nQ / q id=5 shard=0 D--\n";
    assert_string_equal(live(d), want);
    assert_int_equal(store_defs_stats(d)->corrupt_regions, 1);
    assert_int_equal(store_defs_stats(d)->torn_bytes, 0);
    /* The journal was rewritten without it: the next start finds nothing wrong. */
    d = reopen(f);
    assert_string_equal(live(d), want);
    assert_int_equal(store_defs_stats(d)->corrupt_regions, 0);
    assert_int_equal(store_defs_queue_id_next(d), 6);
}

static void test_compaction_keeps_live_set(void **state)
{
    fixture *f = *state;
    store_defs *d = reopen_min(f, 16);
    commit1(d, exchange("/", "keep", "topic"));
    commit1(d, queue("/", "kq", 1, 1));
    commit1(d, binding("/", "keep", "kq", false, "#"));
    uint64_t records_max = 0;
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "churn-%d", i);
        commit1(d, queue("/", name, 2 + (uint64_t)i, 0));
        commit1(d, binding("/", "keep", name, false, name));
        commit1(d, removal(queue("/", name, 2 + (uint64_t)i, 0)));
        if (store_defs_file_records(d) > records_max) records_max = store_defs_file_records(d);
    }
    commit1(d, queue("/", "last", 500, 0));
    const char *want = "X / keep topic D--\nQ / kq id=1 shard=1 D--\nQ / last id=500 shard=0 D--\n"
                       "B / keep -> q:kq key=#\n";
    assert_string_equal(live(d), want);
    assert_true(records_max <= 17); /* compacted as soon as it passed the minimum */
    assert_true(store_defs_file_records(d) <= 17);
    d = reopen_min(f, 16);
    assert_string_equal(live(d), want);
    assert_int_equal(store_defs_queue_id_next(d), 501);
    /* An explicit compaction writes the live set and the id watermark, nothing else. */
    commit1(d, removal(queue("/", "last", 500, 0)));
    store_defs_error err;
    assert_true(store_defs_compact(d, &err));
    assert_int_equal(store_defs_file_records(d), 4); /* ids, keep, kq, keep -> kq */
    d = reopen(f);
    assert_int_equal(store_defs_stats(d)->records, 4);
    assert_int_equal(store_defs_queue_id_next(d), 501);
    assert_string_equal(live(d), "X / keep topic D--\nQ / kq id=1 shard=1 D--\nB / keep -> q:kq key=#\n");
}

static void test_leftover_tmp_ignored(void **state)
{
    fixture *f = *state;
    /* Another live set's journal, to stand for a snapshot written but never renamed. */
    store_defs *d = reopen(f);
    commit1(d, exchange("/", "other", "fanout"));
    store_defs_close(d);
    f->d = NULL;
    static uint8_t other[4096];
    int fd = open(f->path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t other_bytes = read(fd, other, sizeof(other));
    assert_true(other_bytes > 0);
    close(fd);
    assert_int_equal(unlink(f->path), 0);

    d = reopen(f);
    commit1(d, exchange("/", "a", "direct"));
    commit1(d, queue("/", "q", 3, 0));
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s/definitions.log.tmp", f->dir);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, other, (size_t)other_bytes), other_bytes);
    close(fd);
    d = reopen(f);
    assert_true(store_defs_stats(d)->tmp_removed);
    assert_int_equal(file_size(tmp), -1);
    assert_string_equal(live(d), "X / a direct D--\nQ / q id=3 shard=0 D--\n");
    /* And a torn tmp file (the crash came during its write). */
    fd = open(tmp, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "garbage", 7), 7);
    close(fd);
    d = reopen(f);
    assert_true(store_defs_stats(d)->tmp_removed);
    assert_string_equal(live(d), "X / a direct D--\nQ / q id=3 shard=0 D--\n");
    /* The compaction itself, all the way: the journal is the snapshot, no tmp is left. */
    store_defs_error err;
    assert_true(store_defs_compact(d, &err));
    assert_int_equal(file_size(tmp), -1);
    d = reopen(f);
    assert_false(store_defs_stats(d)->tmp_removed);
    assert_string_equal(live(d), "X / a direct D--\nQ / q id=3 shard=0 D--\n");
}

static void test_failed_write(void **state)
{
    fixture *f = *state;
    store_defs *d = reopen(f);
    commit1(d, exchange("/", "a", "direct"));
    commit1(d, exchange("/", "b", "direct"));
    commit1(d, queue("/", "q", 1, 0));
    off_t size = file_size(f->path);
    store_defs_error err;

    store_defs__fail_next_write(d, ENOSPC);
    store_defs_change c = exchange("/", "new", "direct");
    assert_false(store_defs_commit(d, &c, 1, &err));
    assert_non_null(strstr(err.text, strerror(ENOSPC)));
    assert_int_equal(file_size(f->path), size); /* the half-written record is cut off */
    assert_string_equal(live(d), "X / a direct D--\nX / b direct D--\nQ / q id=1 shard=0 D--\n");

    /* A delete whose write fails stays applied, and is durable after the next write. */
    store_defs__fail_next_write(d, EIO);
    c = removal(exchange("/", "b", "direct"));
    assert_false(store_defs_commit(d, &c, 1, &err));
    assert_string_equal(live(d), "X / a direct D--\nQ / q id=1 shard=0 D--\n");
    commit1(d, queue("/", "r", 2, 1));
    const char *want = "X / a direct D--\nQ / q id=1 shard=0 D--\nQ / r id=2 shard=1 D--\n";
    assert_string_equal(live(d), want);
    d = reopen(f);
    assert_string_equal(live(d), want);
}

static void test_queue_ids_reserved(void **state)
{
    fixture *f = *state;
    store_defs *d = reopen(f);
    store_defs_change ids = {.op = STORE_DEFS_QUEUE_IDS, .queue_id = 4097};
    commit1(d, ids);
    commit1(d, queue("/", "q", 12, 0));
    assert_int_equal(store_defs_queue_id_next(d), 4097);
    d = reopen(f);
    assert_int_equal(store_defs_queue_id_next(d), 4097);
    assert_int_equal(store_defs_live_count(d), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_every_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deletes_take_bindings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_keeps_live_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftover_tmp_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_ids_reserved, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
