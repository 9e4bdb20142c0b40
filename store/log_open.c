/*
 * Opening and recovering the segment log (see store/log.h; the running half is store/log.c).
 * The directory is listed, segments are read in number order through a chunked pread window, and
 * every record is checked (store_record_read). A damaged record followed by a valid one (a later
 * sequence number further in the same segment) is a corrupt record: logged, skipped. A damaged
 * record followed by nothing valid is a torn tail: in the newest segment it is zeroed on disk. Live
 * slots go to the replay callback in log order; then dead segments are deleted and a fresh segment
 * is started, so no append ever lands in a recovered file. Recovery runs once, before the shard's
 * loop: it blocks, and it may allocate as it likes (bounded by the largest record).
 */
#include "store/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/assert.h"
#include "core/limits.h"
#include "core/log.h"
#include "store/log_int.h"

#define SLOG_DIR_DEPTH_MAX 64u /* directories store_log_open creates above the log's own */

/* A window over one segment file: [base, base + len) of it is in buf. */
typedef struct slog_reader {
    int fd;
    uint64_t file_bytes;
    uint8_t *buf;
    size_t capacity;
    uint64_t base;
    size_t len;
    int error; /* errno of a read that failed: the rest of the file is unreadable */
    uint64_t bytes_read;
} slog_reader;

typedef struct slog_recovery {
    store_log *log;
    store_log_replay_fn *replay;
    void *ctx;
    store_log_open_stats *stats;
    slog_reader reader;
} slog_recovery;

typedef struct slog_listing {
    uint64_t *segs, *acks;
    uint32_t seg_count, ack_count, seg_capacity, ack_capacity;
    uint64_t number_max;
    bool any;
} slog_listing;

/* ---- reading ---- */

/* pread of all bytes; 0 or -errno (-EIO when the file ends first). */
static int slog_pread_all(int fd, void *buf, size_t bytes, uint64_t offset)
{
    size_t done = 0;
    while (done < bytes) {
        ssize_t n = pread(fd, (uint8_t *)buf + done, bytes - done, (off_t)(offset + done));
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0) return -EIO; /* the file is shorter than it was: nothing sane to read */
        switch (errno) {
        case EINTR:
        case EAGAIN:
            continue;
        case EIO:
        case EISDIR:
        case ENXIO:
            return -errno;
        case EBADF:
        case EFAULT:
            ASSERT(!"pread: bad fd or buffer");
            return -errno;
        default:
            LOG_ERROR("segment log: unexpected pread error: %s", strerror(errno));
            return -errno;
        }
    }
    return 0;
}

/* Makes file bytes [off, min(off + want, file end)) available and returns a pointer to off;
 * *avail is what the window holds from there (at least that). NULL on a read error. */
static const uint8_t *slog_reader_at(slog_reader *r, uint64_t off, size_t want, size_t *avail)
{
    ASSERT(off <= r->file_bytes);
    uint64_t end = off + want < r->file_bytes ? off + want : r->file_bytes;
    if (off < r->base || end > r->base + r->len) {
        size_t need = (size_t)(end - off);
        if (need > r->capacity) {
            size_t capacity = (size_t)store_log__round_up(need);
            uint8_t *buf = mi_malloc(capacity);
            if (buf == NULL) {
                r->error = ENOMEM;
                return NULL;
            }
            mi_free(r->buf);
            r->buf = buf;
            r->capacity = capacity;
        }
        uint64_t rest = r->file_bytes - off;
        size_t n = rest < r->capacity ? (size_t)rest : r->capacity;
        r->base = off;
        r->len = 0;
        int rc = slog_pread_all(r->fd, r->buf, n, off);
        if (rc != 0) {
            r->error = -rc;
            return NULL;
        }
        r->len = n;
        r->bytes_read += n;
    }
    *avail = (size_t)(r->base + r->len - off);
    return r->buf + (off - r->base);
}

/* Reads the record at off: the header first, then all of it if its length is plausible. */
static store_record_status slog_read_record(slog_reader *r, uint64_t off, store_record_view *v)
{
    size_t avail;
    const uint8_t *p = slog_reader_at(r, off, STORE_RECORD_HEADER_BYTES, &avail);
    if (p == NULL) return STORE_RECORD_CORRUPT;
    size_t want = STORE_RECORD_HEADER_BYTES;
    if (avail >= STORE_RECORD_HEADER_BYTES && store_get_u32(p + 8) <= LIMIT_LOG_PAYLOAD_BYTES_MAX)
        want = store_record_bytes(store_get_u32(p + 8));
    if (want > avail) {
        p = slog_reader_at(r, off, want, &avail);
        if (p == NULL) return STORE_RECORD_CORRUPT;
    }
    return store_record_read(p, avail, LIMIT_LOG_PAYLOAD_BYTES_MAX, v);
}

static bool slog_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0) return false;
    return true;
}

/* After a damaged record at off: the next valid record in the segment (8-byte steps) whose
 * sequence number is above seq_last, and the end of the non-zero bytes met before it. */
static bool slog_scan(slog_reader *r, uint64_t off, uint64_t seq_last, uint64_t *next,
                      uint64_t *damaged_end)
{
    ASSERT(off % STORE_RECORD_ALIGN_BYTES == 0);
    *damaged_end = off + 8 < r->file_bytes ? off + 8 : r->file_bytes;
    for (uint64_t at = off + 8; at < r->file_bytes; at += 8) {
        size_t avail;
        const uint8_t *p = slog_reader_at(r, at, STORE_RECORD_HEADER_BYTES, &avail);
        if (p == NULL) return false;
        size_t word = avail < 8 ? avail : 8;
        if (!slog_zero(p, word)) *damaged_end = at + word;
        if (avail < STORE_RECORD_HEADER_BYTES || slog_zero(p, STORE_RECORD_HEADER_BYTES)) continue;
        if (p[12] == 0 || p[12] > STORE_RECORD_KIND_MAX) continue;
        if (store_get_u16(p + 14) != STORE_RECORD_VERSION) continue;
        store_record_view v;
        if (slog_read_record(r, at, &v) == STORE_RECORD_OK && v.seq > seq_last) {
            *next = at;
            return true;
        }
        if (r->error != 0) return false;
    }
    return false;
}

/* ---- replay ---- */

/* One valid record: hands its live slots to the callback. 0, or an errno that stops the open. */
static int slog_replay_record(slog_recovery *rc, store_log_segment *seg, uint64_t off,
                              const store_record_view *v)
{
    store_log *log = rc->log;
    rc->stats->records++;
    log->seq_last = v->seq;
    if (v->kind != STORE_RECORD_MSG) return 0; /* no other kind carries slots */
    const uint8_t *p = v->payload;
    uint32_t first = v->payload_bytes >= STORE_LOG__MSG_FIXED_BYTES ? store_get_u32(p) : 0;
    uint16_t count = v->payload_bytes >= STORE_LOG__MSG_FIXED_BYTES ? store_get_u16(p + 4) : 0;
    if (count == 0 || count > LIMIT_PUBLISH_QUEUES_MAX || first < seg->slots ||
        first > UINT32_MAX - count ||
        STORE_LOG__MSG_FIXED_BYTES + 8ull * count > v->payload_bytes) {
        LOG_WARN("segment log %u: segment %016llx offset %llu: malformed message record skipped",
                 log->shard_id, (unsigned long long)seg->number, (unsigned long long)off);
        rc->stats->corrupt_records++;
        return 0;
    }
    seg->slots = first + count;
    if (!store_log__acked_reserve(seg, seg->slots)) return ENOMEM;
    uint32_t ids_bytes = 8u * count;
    store_log_msg_view view = {
        .pos = {.segment = seg->number, .offset = (uint32_t)off, .slot = first},
        .seq = v->seq,
        .queue_count = count,
        .queue_ids = p + STORE_LOG__MSG_FIXED_BYTES,
        .body = p + STORE_LOG__MSG_FIXED_BYTES + ids_bytes,
        .body_bytes = v->payload_bytes - STORE_LOG__MSG_FIXED_BYTES - ids_bytes,
    };
    for (uint16_t i = 0; i < count; i++) {
        if (store_log__acked_get(seg, first + i)) continue;
        if (rc->replay(rc->ctx, &view, i)) {
            seg->live++;
            log->live_slots++;
            rc->stats->live_slots++;
        } else {
            (void)store_log__acked_set(seg, first + i);
            seg->ack_dirty = true;
        }
    }
    return 0;
}

/* Writes zeros over [off, off + bytes) of fd and syncs: a cut torn tail. 0 or an errno. */
static int slog_zero_range(int fd, uint64_t off, uint64_t bytes)
{
    static const uint8_t zeros[65536];
    while (bytes > 0) {
        size_t n = bytes < sizeof(zeros) ? (size_t)bytes : sizeof(zeros);
        int rc = store_log__pwrite_all(fd, zeros, n, off);
        if (rc != 0) return -rc;
        off += n;
        bytes -= n;
    }
    int rc = store_log__fdatasync(fd);
    return rc != 0 ? -rc : 0;
}

static int slog_torn_tail(slog_recovery *rc, store_log_segment *seg, uint64_t off, uint64_t end,
                          bool newest)
{
    ASSERT(end > off);
    uint64_t bytes = end - off;
    if (!newest) {
        LOG_WARN("segment log %u: segment %016llx ends in %llu damaged bytes at offset %llu; "
                 "records there (not synced before a crash) are lost",
                 rc->log->shard_id, (unsigned long long)seg->number, (unsigned long long)bytes,
                 (unsigned long long)off);
        return 0;
    }
    LOG_WARN("segment log %u: segment %016llx: torn tail of %llu bytes at offset %llu cut",
             rc->log->shard_id, (unsigned long long)seg->number, (unsigned long long)bytes,
             (unsigned long long)off);
    rc->stats->torn_bytes += bytes;
    int err = slog_zero_range(rc->reader.fd, off, bytes);
    if (err != 0)
        LOG_ERROR("segment log %u: cannot zero the torn tail of segment %016llx: %s",
                  rc->log->shard_id, (unsigned long long)seg->number, strerror(err));
    return err;
}

static void slog_unreadable(slog_recovery *rc, store_log_segment *seg, uint64_t off)
{
    seg->damaged = true;
    LOG_ERROR("segment log %u: segment %016llx unreadable from offset %llu (%s); the rest of it "
              "is skipped and the file kept",
              rc->log->shard_id, (unsigned long long)seg->number, (unsigned long long)off,
              strerror(rc->reader.error));
}

/* Walks one segment's records. 0, or an errno that stops the open. */
static int slog_walk(slog_recovery *rc, store_log_segment *seg, bool newest)
{
    slog_reader *r = &rc->reader;
    uint64_t off = 0;
    while (off < r->file_bytes) {
        store_record_view v;
        store_record_status st = slog_read_record(r, off, &v);
        if (r->error != 0) break;
        if (st == STORE_RECORD_END) return 0;
        if (st == STORE_RECORD_OK && v.seq > rc->log->seq_last) {
            int err = slog_replay_record(rc, seg, off, &v);
            if (err != 0) return err;
            off += v.record_bytes;
            continue;
        }
        uint64_t next = 0, damaged_end = 0;
        bool found = slog_scan(r, off, rc->log->seq_last, &next, &damaged_end);
        if (r->error != 0) break;
        if (!found) return slog_torn_tail(rc, seg, off, damaged_end, newest);
        LOG_WARN("segment log %u: segment %016llx: corrupt record at offset %llu skipped (%llu "
                 "bytes)",
                 rc->log->shard_id, (unsigned long long)seg->number, (unsigned long long)off,
                 (unsigned long long)(next - off));
        rc->stats->corrupt_records++;
        off = next;
    }
    if (r->error == ENOMEM) return ENOMEM;
    if (r->error != 0) slog_unreadable(rc, seg, off);
    return 0;
}

/* ---- ack files ---- */

static bool slog_ack_header_ok(const uint8_t *h, const store_log_segment *seg)
{
    if (store_get_u64(h) != STORE_LOG__ACK_MAGIC || store_get_u64(h + 8) != seg->number)
        return false;
    if (store_get_u64(h + 24) != XXH3_64bits_withSeed(h, 24, STORE_LOG__ACK_SEED)) return false;
    /* A record is at least 32 bytes for its first slot and 8 more per further slot. */
    return store_get_u32(h + 16) <= seg->file_bytes / 8;
}

/* Loads seg's ack bitmap. A missing or invalid file means no acks: a redelivery, never a loss. */
static void slog_ack_load(store_log *log, store_log_segment *seg)
{
    char name[STORE_LOG__NAME_BYTES];
    store_log__name(name, seg->number, "ack");
    int fd = openat(log->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            LOG_WARN("segment log %u: cannot open %s/%s (%s): its slots count as live",
                     log->shard_id, log->dir, name, strerror(errno));
        return;
    }
    seg->ack_file = true;
    uint8_t h[STORE_LOG__ACK_HEADER_BYTES];
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(h) &&
              slog_pread_all(fd, h, sizeof(h), 0) == 0 && slog_ack_header_ok(h, seg);
    if (ok) {
        uint32_t slots = store_get_u32(h + 16);
        uint64_t bytes = (uint64_t)(slots / 64 + (slots % 64 != 0)) * 8;
        uint64_t there = ((uint64_t)st.st_size - sizeof(h)) & ~7ull; /* a short file: fewer acks */
        if (there < bytes) bytes = there;
        ok = store_log__acked_reserve(seg, slots) &&
             slog_pread_all(fd, seg->acked, (size_t)bytes, sizeof(h)) == 0;
        if (!ok && seg->acked != NULL)
            memset(seg->acked, 0, (size_t)seg->acked_words * sizeof(*seg->acked));
    }
    if (!ok)
        LOG_WARN("segment log %u: %s/%s is invalid or unreadable: its slots count as live",
                 log->shard_id, log->dir, name);
    if (close(fd) != 0 && errno != EINTR)
        LOG_WARN("segment log %u: close of %s: %s", log->shard_id, name, strerror(errno));
}

/* ---- segments ---- */

static int slog_open_segment(store_log *log, const char *name)
{
    for (;;) {
        int fd = openat(log->dir_fd, name, O_RDWR | O_CLOEXEC);
        if (fd >= 0) return fd;
        int err = errno;
        switch (err) {
        case EINTR:
            continue;
        case EMFILE:
        case ENFILE:
        case ENOMEM:
            return -err; /* the process, not the file: the open fails */
        case ENOENT:
        case EACCES:
        case EPERM:
        case EISDIR:
        case EIO:
        case ELOOP:
        case ETXTBSY:
        case EROFS:
        case ENXIO:
            LOG_WARN("segment log %u: cannot open %s/%s (%s): skipped", log->shard_id, log->dir,
                     name, strerror(err));
            return -EAGAIN;
        default:
            LOG_ERROR("segment log %u: unexpected error opening %s/%s (%s): skipped", log->shard_id,
                      log->dir, name, strerror(err));
            return -EAGAIN;
        }
    }
}

/* Recovers one segment file. 0 (also when it is skipped), or an errno that stops the open. */
static int slog_recover_segment(slog_recovery *rc, uint64_t number, bool newest)
{
    store_log *log = rc->log;
    char name[STORE_LOG__NAME_BYTES];
    store_log__name(name, number, "seg");
    rc->stats->segments++;
    int fd = slog_open_segment(log, name);
    if (fd < 0) return fd == -EAGAIN ? 0 : -fd;
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) != 0) {
        LOG_WARN("segment log %u: cannot stat %s/%s (%s): skipped", log->shard_id, log->dir, name,
                 strerror(errno));
    } else if (st.st_size == 0) {
        LOG_WARN("segment log %u: %s/%s is empty (a crash while creating it): removed",
                 log->shard_id, log->dir, name);
        if (unlinkat(log->dir_fd, name, 0) == 0) log->dir_dirty = true;
    } else {
        store_log_segment *seg = store_log__segment_add(log, number);
        if (seg == NULL) {
            err = ENOMEM;
        } else {
            seg->file_bytes = (uint64_t)st.st_size;
            seg->sealed = true;
            slog_ack_load(log, seg);
            rc->reader = (slog_reader){.fd = fd,
                                       .file_bytes = seg->file_bytes,
                                       .buf = rc->reader.buf,
                                       .capacity = rc->reader.capacity,
                                       .bytes_read = rc->reader.bytes_read};
            err = slog_walk(rc, seg, newest);
            /* What a previous run wrote without a sync may sit in the page cache only: durable
             * from here on, as written_seq and durable_seq will say. */
            if (err == 0 && seg->live > 0) err = -store_log__fdatasync(fd);
        }
    }
    if (close(fd) != 0 && errno != EINTR)
        LOG_WARN("segment log %u: close of %s: %s", log->shard_id, name, strerror(errno));
    return err;
}

/* ---- the directory ---- */

static int slog_sync_parent(const char *path)
{
    char parent[LIMIT_PATH_BYTES_MAX];
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    while (n > 0 && path[n - 1] != '/') n--;
    if (n == 0) {
        parent[0] = '.', parent[1] = '\0';
    } else {
        memcpy(parent, path, n);
        parent[n] = '\0';
    }
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    int err = 0;
    while (fsync(fd) != 0) {
        if (errno == EINTR) continue;
        if (errno != EINVAL && errno != EROFS) err = errno; /* EINVAL, EROFS: no directory fsync */
        break;
    }
    (void)close(fd);
    return err;
}

/* mkdir -p, fsyncing the parent of every directory it creates. 0 or an errno. */
static int slog_mkdirs(const char *path, unsigned depth)
{
    size_t n = strlen(path);
    if (n == 0 || n >= LIMIT_PATH_BYTES_MAX) return n == 0 ? ENOENT : ENAMETOOLONG;
    if (mkdir(path, 0750) == 0) return slog_sync_parent(path);
    switch (errno) {
    case EEXIST:
        return 0;
    case ENOENT:
        break;
    case EACCES:
    case EPERM:
    case EROFS:
    case ENOSPC:
    case EDQUOT:
    case ENOTDIR:
    case ENAMETOOLONG:
    case ELOOP:
    case EMLINK:
    case EIO:
        return errno;
    default:
        LOG_ERROR("segment log: unexpected error creating %s: %s", path, strerror(errno));
        return errno;
    }
    if (depth >= SLOG_DIR_DEPTH_MAX) return ENOENT;
    char parent[LIMIT_PATH_BYTES_MAX];
    memcpy(parent, path, n + 1);
    while (n > 1 && parent[n - 1] == '/') n--;
    while (n > 0 && parent[n - 1] != '/') n--;
    while (n > 1 && parent[n - 1] == '/') n--;
    if (n == 0) return ENOENT;
    parent[n] = '\0';
    int err = slog_mkdirs(parent, depth + 1);
    if (err != 0) return err;
    if (mkdir(path, 0750) == 0) return slog_sync_parent(path);
    return errno == EEXIST ? 0 : errno;
}

static bool slog_list_push(uint64_t **items, uint32_t *count, uint32_t *capacity, uint64_t v)
{
    if (*count == *capacity) {
        uint32_t grown = *capacity ? *capacity * 2 : 64;
        uint64_t *p = mi_realloc(*items, grown * sizeof(*p));
        if (p == NULL) return false;
        *items = p;
        *capacity = grown;
    }
    (*items)[(*count)++] = v;
    return true;
}

/* "%016llx.seg" or "%016llx.ack": the number and which; false for any other name. */
static bool slog_parse_name(const char *name, uint64_t *number, bool *is_seg)
{
    if (strlen(name) != 20 || name[16] != '.') return false;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return false;
        v = v << 4 | (uint64_t)d;
    }
    if (strcmp(name + 17, "seg") != 0 && strcmp(name + 17, "ack") != 0) return false;
    *number = v;
    *is_seg = name[17] == 's';
    return true;
}

static int slog_list(store_log *log, slog_listing *out)
{
    int fd = openat(log->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int err = errno;
        (void)close(fd);
        return err;
    }
    int err = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            err = errno;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        uint64_t number;
        bool is_seg;
        if (!slog_parse_name(e->d_name, &number, &is_seg)) {
            LOG_WARN("segment log %u: unknown file %s/%s ignored", log->shard_id, log->dir,
                     e->d_name);
            continue;
        }
        bool ok = is_seg ? slog_list_push(&out->segs, &out->seg_count, &out->seg_capacity, number)
                         : slog_list_push(&out->acks, &out->ack_count, &out->ack_capacity, number);
        if (!ok) {
            err = ENOMEM;
            break;
        }
        if (!out->any || number > out->number_max) out->number_max = number;
        out->any = true;
    }
    (void)closedir(d);
    return err;
}

static int slog_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Ack files whose segment is gone (a crash between the two unlinks) are removed. */
static void slog_remove_orphans(store_log *log, const slog_listing *l)
{
    for (uint32_t i = 0; i < l->ack_count; i++) {
        if (bsearch(&l->acks[i], l->segs, l->seg_count, sizeof(uint64_t), slog_cmp_u64)) continue;
        char name[STORE_LOG__NAME_BYTES];
        store_log__name(name, l->acks[i], "ack");
        if (unlinkat(log->dir_fd, name, 0) == 0)
            log->dir_dirty = true;
        else if (errno != ENOENT)
            LOG_WARN("segment log %u: cannot remove %s/%s: %s", log->shard_id, log->dir, name,
                     strerror(errno));
    }
}

/* ---- open ---- */

static int slog_open_dir(store_log *log)
{
    int err = slog_mkdirs(log->dir, 0);
    if (err != 0) return err;
    log->dir_fd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return log->dir_fd < 0 ? errno : 0;
}

static int slog_recover(store_log *log, store_log_replay_fn *replay, void *ctx,
                        store_log_open_stats *stats, uint64_t *number_next)
{
    slog_listing l = {0};
    int err = slog_list(log, &l);
    slog_recovery rc = {.log = log, .replay = replay, .ctx = ctx, .stats = stats};
    if (err == 0) {
        if (l.seg_count > 1) qsort(l.segs, l.seg_count, sizeof(uint64_t), slog_cmp_u64);
        slog_remove_orphans(log, &l);
        rc.reader.capacity = LIMIT_LOG_RECOVERY_READ_BYTES;
        rc.reader.buf = mi_malloc(rc.reader.capacity);
        if (rc.reader.buf == NULL) err = ENOMEM;
    }
    if (err == 0 && l.any && l.number_max == UINT64_MAX) {
        LOG_ERROR("segment log %u: a file in %s has the last segment number", log->shard_id,
                  log->dir);
        err = EOVERFLOW;
    }
    for (uint32_t i = 0; err == 0 && i < l.seg_count; i++)
        err = slog_recover_segment(&rc, l.segs[i], i + 1 == l.seg_count);
    stats->bytes_read = rc.reader.bytes_read;
    *number_next = l.any ? l.number_max + 1 : 1;
    mi_free(rc.reader.buf);
    mi_free(l.segs);
    mi_free(l.acks);
    return err;
}

/* After recovery: deletes what is dead and starts the segment appends go to. */
static int slog_start(store_log *log, uint64_t number_next)
{
    for (uint32_t i = 0; i < log->segment_count;) {
        uint32_t before = log->segment_count;
        store_log__settle(log, log->segments[i]);
        if (log->segment_count == before) i++;
    }
    /* Creating the segment fsyncs the directory, which also makes the deletions durable. */
    log->current = store_log__segment_create(log, number_next, log->segment_bytes);
    if (log->current == NULL && (errno == ENOSPC || errno == EDQUOT)) {
        /* A full disk must not keep the broker from starting: what is recovered is served,
         * appends wait for space (store_log_retry). */
        LOG_ERROR("segment log %u (%s): no space for a new segment; appends refused until "
                  "space is freed", log->shard_id, log->dir);
        log->full = true;
        log->current = store_log__segment_create(log, number_next, 0);
    }
    if (log->current == NULL) return errno;
    if (!store_log__buffers_init(log)) return ENOMEM;
    return 0;
}

store_log *store_log_open(const store_log_config *config, store_log_replay_fn *replay, void *ctx,
                          store_log_open_stats *stats)
{
    ASSERT(config != NULL && config->dir != NULL && replay != NULL);
    ASSERT(config->segment_bytes % LIMIT_LOG_BLOCK_BYTES == 0);
    ASSERT(config->segment_bytes >= LIMIT_SEGMENT_BYTES_MIN &&
           config->segment_bytes <= LIMIT_SEGMENT_BYTES_MAX);
    store_log_open_stats local;
    if (stats == NULL) stats = &local;
    memset(stats, 0, sizeof(*stats));
    store_log *log = mi_zalloc(sizeof(*log));
    char *dir = mi_strdup(config->dir);
    if (log == NULL || dir == NULL) {
        mi_free(log);
        mi_free(dir);
        errno = ENOMEM;
        return NULL;
    }
    log->dir = dir;
    log->dir_fd = -1;
    log->shard_id = config->shard_id;
    log->segment_bytes = config->segment_bytes;
    log->direct_io = config->direct_io;
    uint64_t number_next = 1;
    int err = slog_open_dir(log);
    if (err == 0) err = slog_recover(log, replay, ctx, stats, &number_next);
    if (err == 0) err = slog_start(log, number_next);
    if (err != 0) {
        LOG_ERROR("segment log %u: cannot open %s: %s", config->shard_id, config->dir,
                  strerror(err));
        store_log__free(log);
        errno = err;
        return NULL;
    }
    log->written_seq = log->durable_seq = log->seq_last; /* recovered records are on disk */
    stats->seq_last = log->seq_last;
    stats->direct_io = log->direct_io;
    return log;
}
