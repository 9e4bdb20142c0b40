/*
 * The segment log's running half (see store/log.h; recovery is store/log_open.c): appends into
 * the write buffer, the group commit described as I/O the shard submits, acks, checkpoints and
 * the life of segment files. One log per shard, touched by that shard's thread only.
 *
 * Invariants:
 * - The active buffer's last extent is the current segment's and ends at its end (store/log_int.h).
 * - At most one flush is in flight; its buffer and extents are not touched until flush_end.
 * - Every write is whole blocks at block offsets: the last partial block goes out zero-padded and
 *   is rewritten by the next flush from its copy at the start of the next buffer.
 * - A segment's last write syncs (or the segment had nothing unsynced), so durable_seq, moved only
 *   by a flush whose last op synced, covers every earlier record in every segment.
 * - A segment file is deleted only when sealed, with nothing live, and no buffer refers to it; its
 *   fd is closed as soon as no buffer refers to it.
 * - Segment creation is synchronous (open, fallocate, directory fsync): once per segment.
 */
#include "store/log.h"

#include <errno.h>
#include <fcntl.h>
#include <mimalloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/assert.h"
#include "core/limits.h"
#include "core/log.h"
#include "store/log_int.h"

#define SLOG_BLOCK LIMIT_LOG_BLOCK_BYTES

STATIC_ASSERT(STORE_LOG_IO_OPS_MAX == 2, "a flush writes the tail of one segment and another");
STATIC_ASSERT(LIMIT_LOG_WRITE_BUFFER_BYTES_INITIAL >= SLOG_BLOCK, "a buffer holds a carried block");

/* ---- small helpers ---- */

void store_log__name(char *out, uint64_t number, const char *ext)
{
    int n = snprintf(out, STORE_LOG__NAME_BYTES, "%016llx.%s", (unsigned long long)number, ext);
    ASSERT(n > 0 && (unsigned)n < STORE_LOG__NAME_BYTES);
}

void store_log__fail(store_log *log, int err, const char *what)
{
    ASSERT(err > 0);
    if (log->failed) return;
    log->failed = true;
    LOG_ERROR("segment log %u (%s): %s: %s; appends are refused from now on", log->shard_id,
              log->dir, what, strerror(err));
}

int store_log__pwrite_all(int fd, const void *buf, size_t bytes, uint64_t offset)
{
    ASSERT(fd >= 0 && (buf != NULL || bytes == 0));
    size_t done = 0;
    while (done < bytes) {
        ssize_t n = pwrite(fd, (const uint8_t *)buf + done, bytes - done, (off_t)(offset + done));
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0) return -EIO; /* no progress on a regular file: treat as a device error */
        switch (errno) {
        case EINTR:
        case EAGAIN:
            continue;
        case ENOSPC:
        case EDQUOT:
        case EIO:
        case EFBIG:
        case EROFS:
            return -errno;
        case EBADF:
        case EFAULT:
        case EINVAL: /* a closed fd or a misaligned O_DIRECT buffer: our bug */
            ASSERT(!"pwrite: bad fd, buffer or alignment");
            return -errno;
        default:
            LOG_ERROR("segment log: unexpected pwrite error: %s", strerror(errno));
            return -errno;
        }
    }
    return 0;
}

int store_log__fdatasync(int fd)
{
    ASSERT(fd >= 0);
    for (;;) {
        if (fdatasync(fd) == 0) return 0;
        switch (errno) {
        case EINTR:
            continue;
        case EIO:
        case ENOSPC:
        case EDQUOT:
            return -errno;
        case EBADF:
            ASSERT(!"fdatasync: bad fd");
            return -errno;
        default: /* EROFS, EINVAL: a file that cannot be synced cannot hold the log */
            LOG_ERROR("segment log: unexpected fdatasync error: %s", strerror(errno));
            return -errno;
        }
    }
}

int store_log__sync_dir(store_log *log)
{
    ASSERT(log->dir_fd >= 0);
    for (;;) {
        if (fsync(log->dir_fd) == 0) break;
        switch (errno) {
        case EINTR:
            continue;
        case EINVAL:
        case EROFS: /* a filesystem without directory fsync: nothing more can be done */
            break;
        case EIO:
        case ENOSPC:
        case EDQUOT:
            LOG_ERROR("segment log %u: fsync of %s: %s", log->shard_id, log->dir, strerror(errno));
            return -errno;
        default:
            LOG_ERROR("segment log %u: unexpected fsync error on %s: %s", log->shard_id, log->dir,
                      strerror(errno));
            return -errno;
        }
        break;
    }
    log->dir_dirty = false;
    return 0;
}

static void slog_close_fd(store_log *log, int fd)
{
    ASSERT(fd >= 0);
    if (close(fd) == 0) return;
    switch (errno) {
    case EINTR: /* Linux closed it anyway: never retry close */
        break;
    case EIO:
    case ENOSPC:
    case EDQUOT: /* the data was synced or will be rewritten: only worth a line */
        LOG_WARN("segment log %u: close: %s", log->shard_id, strerror(errno));
        break;
    default:
        ASSERT(errno != EBADF);
        LOG_ERROR("segment log %u: unexpected close error: %s", log->shard_id, strerror(errno));
        break;
    }
}

/* Removes name from the log directory; 0 or -errno. A missing file counts as removed. */
static int slog_unlink(store_log *log, const char *name)
{
    if (unlinkat(log->dir_fd, name, 0) == 0) {
        log->dir_dirty = true;
        return 0;
    }
    switch (errno) {
    case ENOENT:
        return 0;
    case EACCES:
    case EPERM:
    case EROFS:
    case EIO:
    case EBUSY:
        LOG_ERROR("segment log %u: cannot remove %s/%s: %s", log->shard_id, log->dir, name,
                  strerror(errno));
        return -errno;
    default:
        LOG_ERROR("segment log %u: unexpected error removing %s/%s: %s", log->shard_id, log->dir,
                  name, strerror(errno));
        return -errno;
    }
}

/* ---- segments ---- */

static int32_t slog_find_index(const store_log *log, uint64_t number)
{
    uint32_t lo = 0, hi = log->segment_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (log->segments[mid]->number < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < log->segment_count && log->segments[lo]->number == number) return (int32_t)lo;
    return -1;
}

store_log_segment *store_log__segment_add(store_log *log, uint64_t number)
{
    ASSERT(slog_find_index(log, number) < 0);
    if (log->segment_count == log->segment_capacity) {
        uint32_t capacity = log->segment_capacity ? log->segment_capacity * 2 : 16;
        store_log_segment **grown = mi_realloc(log->segments, capacity * sizeof(*grown));
        if (grown == NULL) return NULL;
        log->segments = grown;
        log->segment_capacity = capacity;
    }
    store_log_segment *seg = mi_zalloc(sizeof(*seg));
    if (seg == NULL) return NULL;
    seg->number = number;
    seg->fd = -1;
    uint32_t at = log->segment_count;
    while (at > 0 && log->segments[at - 1]->number > number) at--;
    memmove(&log->segments[at + 1], &log->segments[at],
            (log->segment_count - at) * sizeof(log->segments[0]));
    log->segments[at] = seg;
    log->segment_count++;
    return seg;
}

/* Grows the file to bytes with real blocks where the filesystem can, a sparse size otherwise. */
static int slog_preallocate(int fd, uint64_t bytes)
{
    for (;;) {
        if (fallocate(fd, 0, 0, (off_t)bytes) == 0) return 0;
        switch (errno) {
        case EINTR:
            continue;
        case EOPNOTSUPP:
        case ENOSYS:
            break;
        case ENOSPC:
        case EDQUOT:
        case EIO:
        case EFBIG:
            return -errno;
        default:
            LOG_ERROR("segment log: unexpected fallocate error: %s", strerror(errno));
            return -errno;
        }
        break;
    }
    for (;;) {
        if (ftruncate(fd, (off_t)bytes) == 0) return 0;
        switch (errno) {
        case EINTR:
            continue;
        case EIO:
        case EFBIG:
        case ENOSPC:
        case EDQUOT:
        case EPERM:
            return -errno;
        default:
            LOG_ERROR("segment log: unexpected ftruncate error: %s", strerror(errno));
            return -errno;
        }
    }
}

/* Turns O_DIRECT on for fd, or the log over to buffered I/O when the filesystem refuses it. */
static void slog_direct_probe(store_log *log, int fd)
{
    int flags = fcntl(fd, F_GETFL);
    ASSERT(flags >= 0);
    if (fcntl(fd, F_SETFL, flags | O_DIRECT) == 0) return;
    switch (errno) {
    case EINVAL:
        LOG_INFO("segment log %u: %s refuses O_DIRECT; using buffered I/O", log->shard_id,
                 log->dir);
        break;
    default:
        LOG_WARN("segment log %u: unexpected error enabling O_DIRECT: %s; using buffered I/O",
                 log->shard_id, strerror(errno));
        break;
    }
    log->direct_io = false;
}

/* Creates name in the log directory; the fd, or -errno. */
static int slog_create_file(store_log *log, const char *name)
{
    for (;;) {
        int fd = openat(log->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (fd >= 0) return fd;
        int err = errno;
        switch (err) {
        case EINTR:
            continue;
        case EEXIST: /* numbers are never reused: someone else writes in our directory */
        case ENOSPC:
        case EDQUOT:
        case EIO:
        case EACCES:
        case EPERM:
        case EROFS:
        case EMFILE:
        case ENFILE:
        case ENOMEM:
            LOG_ERROR("segment log %u: cannot create %s/%s: %s", log->shard_id, log->dir, name,
                      strerror(err));
            return -err;
        default:
            LOG_ERROR("segment log %u: unexpected error creating %s/%s: %s", log->shard_id,
                      log->dir, name, strerror(err));
            return -err;
        }
    }
}

store_log_segment *store_log__segment_create(store_log *log, uint64_t number, uint64_t file_bytes)
{
    /* file_bytes 0: an empty placeholder, when the disk is full at open (store_log_full). */
    ASSERT(file_bytes % SLOG_BLOCK == 0 && (file_bytes == 0 || file_bytes >= log->segment_bytes));
    ASSERT(log->segment_count == 0 || log->segments[log->segment_count - 1]->number < number);
    char name[STORE_LOG__NAME_BYTES];
    store_log__name(name, number, "seg");
    int fd = slog_create_file(log, name);
    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    int rc = file_bytes > 0 ? slog_preallocate(fd, file_bytes) : 0;
    if (rc == 0 && log->direct_io) slog_direct_probe(log, fd);
    if (rc == 0) rc = store_log__sync_dir(log); /* the file outlives a crash before any sync */
    store_log_segment *seg = rc == 0 ? store_log__segment_add(log, number) : NULL;
    if (seg == NULL) {
        if (rc == 0) rc = -ENOMEM;
        LOG_ERROR("segment log %u: cannot set up %s/%s: %s", log->shard_id, log->dir, name,
                  strerror(-rc));
        slog_close_fd(log, fd);
        (void)slog_unlink(log, name);
        errno = -rc;
        return NULL;
    }
    seg->fd = fd;
    seg->file_bytes = file_bytes;
    return seg;
}

static bool slog_buffer_refers(const store_log_buffer *b, const store_log_segment *seg)
{
    for (uint32_t i = 0; i < b->extent_count; i++)
        if (b->extents[i].seg == seg) return true;
    return false;
}

static bool slog_referenced(const store_log *log, const store_log_segment *seg)
{
    if (slog_buffer_refers(&log->buffers[log->active], seg)) return true;
    return log->in_flight && slog_buffer_refers(&log->buffers[!log->active], seg);
}

static int slog_ack_write(store_log *log, store_log_segment *seg);

static void slog_delete(store_log *log, store_log_segment *seg)
{
    ASSERT(seg->sealed && seg->live == 0 && seg->fd < 0 && !seg->damaged);
    int32_t index = slog_find_index(log, seg->number);
    ASSERT(index >= 0 && seg != log->current);
    char name[STORE_LOG__NAME_BYTES];
    store_log__name(name, seg->number, "seg");
    if (slog_unlink(log, name) != 0) {
        /* The file stays: its acks on disk let the next open see it is dead and delete it. */
        (void)slog_ack_write(log, seg);
    } else if (seg->ack_file) {
        /* After the segment: an ack file without its segment is harmless (removed at open). */
        store_log__name(name, seg->number, "ack");
        (void)slog_unlink(log, name);
    }
    memmove(&log->segments[index], &log->segments[index + 1],
            (log->segment_count - (uint32_t)index - 1) * sizeof(log->segments[0]));
    log->segment_count--;
    log->stats.segments_deleted++;
    mi_free(seg->acked);
    mi_free(seg);
}

void store_log__settle(store_log *log, store_log_segment *seg)
{
    ASSERT(seg != NULL);
    if (!seg->sealed || slog_referenced(log, seg)) return;
    ASSERT(seg != log->current);
    if (seg->fd >= 0) {
        slog_close_fd(log, seg->fd);
        seg->fd = -1;
    }
    if (seg->live == 0 && !seg->damaged) slog_delete(log, seg);
}

bool store_log__acked_reserve(store_log_segment *seg, uint32_t slots)
{
    uint32_t words = slots / 64 + 1;
    if (words <= seg->acked_words) return true;
    uint32_t grown = seg->acked_words ? seg->acked_words : 16;
    while (grown < words) grown = grown <= UINT32_MAX / 2 ? grown * 2 : words;
    uint64_t *bits = mi_realloc(seg->acked, (size_t)grown * sizeof(*bits));
    if (bits == NULL) return false;
    memset(bits + seg->acked_words, 0, (size_t)(grown - seg->acked_words) * sizeof(*bits));
    seg->acked = bits;
    seg->acked_words = grown;
    return true;
}

bool store_log__acked_set(store_log_segment *seg, uint32_t slot)
{
    ASSERT(slot / 64 < seg->acked_words);
    uint64_t bit = 1ull << (slot % 64);
    if (seg->acked[slot / 64] & bit) return false;
    seg->acked[slot / 64] |= bit;
    return true;
}

/* ---- the write buffers ---- */

static bool slog_buffer_reserve(store_log_buffer *b, size_t capacity)
{
    ASSERT(capacity % SLOG_BLOCK == 0);
    if (capacity <= b->capacity) return true;
    uint8_t *base = mi_malloc_aligned(capacity, SLOG_BLOCK);
    if (base == NULL) return false;
    if (b->used > 0) memcpy(base, b->base, b->used);
    mi_free(b->base);
    b->base = base;
    b->capacity = capacity;
    return true;
}

static bool slog_extents_reserve(store_log_buffer *b, uint32_t count)
{
    if (count <= b->extent_capacity) return true;
    uint32_t capacity = b->extent_capacity ? b->extent_capacity * 2 : 4;
    while (capacity < count) capacity *= 2;
    store_log_extent *grown = mi_realloc(b->extents, capacity * sizeof(*grown));
    if (grown == NULL) return false;
    b->extents = grown;
    b->extent_capacity = capacity;
    return true;
}

/* Whether the buffer holds anything a flush must write: records, or a sealed segment's tail. */
static bool slog_buffer_pending(const store_log_buffer *b)
{
    for (uint32_t i = 0; i < b->extent_count; i++)
        if (b->extents[i].seq_last != 0 || b->extents[i].seg->sealed) return true;
    return false;
}

bool store_log__buffers_init(store_log *log)
{
    ASSERT(log->current != NULL && log->current->end == 0);
    store_log_buffer *b = &log->buffers[0];
    log->active = 0;
    if (!slog_buffer_reserve(b, LIMIT_LOG_WRITE_BUFFER_BYTES_INITIAL)) return false;
    if (!slog_extents_reserve(b, 4)) return false;
    b->extents[0] = (store_log_extent){.seg = log->current};
    b->extent_count = 1;
    b->used = 0;
    return true;
}

/* ---- appends ---- */

/* Finds where a record of rec bytes goes in the active buffer (*at) and makes room for it.
 * false: backpressure (the buffer is full while a flush is in flight), or out of memory. */
static bool slog_make_room(store_log *log, uint32_t rec, bool roll, size_t *at)
{
    store_log_buffer *b = &log->buffers[log->active];
    const store_log_extent *last = &b->extents[b->extent_count - 1];
    ASSERT(last->seg == log->current && last->buf_offset + last->bytes == b->used);
    if (!roll && (uint64_t)last->bytes + rec > LIMIT_LOG_WRITE_OP_BYTES_MAX - SLOG_BLOCK)
        return false; /* one write would carry more than its result can say: flush first */
    *at = roll ? (size_t)store_log__round_up(b->used) : b->used;
    size_t need = (size_t)store_log__round_up(*at + rec);
    bool ok = !roll || slog_extents_reserve(b, b->extent_count + 1);
    if (ok && need > b->capacity) {
        size_t doubled = b->capacity * 2 < LIMIT_LOG_WRITE_BUFFER_BYTES
                             ? b->capacity * 2
                             : (size_t)LIMIT_LOG_WRITE_BUFFER_BYTES;
        size_t grown = need > doubled ? need : doubled;
        /* During a flush the buffer stays within its limit, but for one record larger than it. */
        if (log->in_flight && need > LIMIT_LOG_WRITE_BUFFER_BYTES && slog_buffer_pending(b))
            return false;
        ok = slog_buffer_reserve(b, grown);
    }
    if (!ok)
        LOG_WARN("segment log %u: out of memory for a %u-byte record; refused", log->shard_id, rec);
    return ok;
}

/* Seals the current segment and starts the next, sized for a record of rec bytes at *at. */
static bool slog_roll(store_log *log, uint32_t rec, size_t at)
{
    store_log_segment *old = log->current;
    uint64_t bytes = store_log__round_up(rec);
    if (bytes < log->segment_bytes) bytes = log->segment_bytes;
    store_log_segment *seg = store_log__segment_create(log, old->number + 1, bytes);
    if (seg == NULL) {
        if (errno == ENOSPC || errno == EDQUOT) {
            /* Disk full is an operating condition: nothing was appended, nothing is lost;
             * appends wait for store_log_retry to find room. */
            if (!log->full)
                LOG_ERROR("segment log %u (%s): no space for a new segment; appends refused "
                          "until space is freed", log->shard_id, log->dir);
            log->full = true;
            return false;
        }
        store_log__fail(log, errno, "cannot start a new segment");
        return false;
    }
    old->sealed = true;
    store_log_buffer *b = &log->buffers[log->active];
    store_log_extent *last = &b->extents[b->extent_count - 1];
    ASSERT(last->seg == old);
    if (last->bytes == 0 && !old->unsynced) b->extent_count--; /* nothing to write or to sync */
    ASSERT(b->extent_count < b->extent_capacity);
    b->extents[b->extent_count++] = (store_log_extent){.seg = seg, .buf_offset = at};
    b->used = at; /* what lies between is the sealed extent's padding, zeroed by flush_begin */
    log->current = seg;
    store_log__settle(log, old);
    return true;
}

static uint64_t slog_iov_bytes(const struct iovec *iov, int count)
{
    uint64_t bytes = 0;
    for (int i = 0; i < count; i++) {
        ASSERT(iov[i].iov_base != NULL || iov[i].iov_len == 0);
        bytes += iov[i].iov_len;
    }
    return bytes;
}

bool store_log_append_msg(store_log *log, const uint64_t *queue_ids, uint16_t queue_count,
                          const struct iovec *body, int body_iov_count, bool needs_sync,
                          store_log_pos *pos_out, uint64_t *seq_out)
{
    ASSERT(log != NULL && queue_ids != NULL && pos_out != NULL && seq_out != NULL);
    ASSERT(queue_count >= 1 && queue_count <= LIMIT_PUBLISH_QUEUES_MAX);
    ASSERT(body_iov_count >= 0 && (unsigned)body_iov_count <= LIMIT_LOG_BODY_IOVS_MAX);
    ASSERT(body_iov_count == 0 || body != NULL);
    if (log->failed || log->full) return false;
    uint64_t payload =
        STORE_LOG__MSG_FIXED_BYTES + 8ull * queue_count + slog_iov_bytes(body, body_iov_count);
    ASSERT(payload <= LIMIT_LOG_PAYLOAD_BYTES_MAX); /* the caller bounds message sizes */
    uint32_t rec = store_record_bytes((uint32_t)payload);
    bool roll = log->current->end + rec > log->current->file_bytes;
    size_t at;
    if (!slog_make_room(log, rec, roll, &at)) return false;
    if (roll && !slog_roll(log, rec, at)) return false;
    store_log_segment *seg = log->current;
    ASSERT(seg->end + rec <= seg->file_bytes && seg->slots <= UINT32_MAX - queue_count);
    if (!store_log__acked_reserve(seg, seg->slots + queue_count)) {
        LOG_WARN("segment log %u: out of memory for an ack bitmap; refused", log->shard_id);
        return false;
    }

    uint8_t fixed[STORE_LOG__MSG_FIXED_BYTES];
    store_put_u32(fixed, seg->slots);
    store_put_u16(fixed + 4, queue_count);
    store_put_u16(fixed + 6, 0);
    struct iovec iov[2 + LIMIT_LOG_BODY_IOVS_MAX];
    iov[0] = (struct iovec){fixed, sizeof(fixed)};
    iov[1] = (struct iovec){(void *)queue_ids, 8u * (size_t)queue_count};
    if (body_iov_count > 0) memcpy(&iov[2], body, (size_t)body_iov_count * sizeof(*body));
    store_log_buffer *b = &log->buffers[log->active];
    store_log_extent *ext = &b->extents[b->extent_count - 1];
    ASSERT(ext->seg == seg && ext->buf_offset + ext->bytes == at);
    ASSERT(ext->file_offset + ext->bytes == seg->end);
    uint64_t seq = log->seq_last + 1;
    uint32_t n =
        store_record_write(b->base + at, STORE_RECORD_MSG, 0, seq, iov, 2 + body_iov_count);
    ASSERT(n == rec && at + n <= b->capacity);

    *pos_out =
        (store_log_pos){.segment = seg->number, .offset = (uint32_t)seg->end, .slot = seg->slots};
    *seq_out = seq;
    ext->bytes += rec;
    ext->seq_last = seq;
    ext->needs_sync = ext->needs_sync || needs_sync;
    b->used = at + rec;
    seg->end += rec;
    seg->slots += queue_count;
    seg->live += queue_count;
    log->live_slots += queue_count;
    log->seq_last = seq;
    log->stats.appended_records++;
    return true;
}

/* ---- acks ---- */

void store_log_ack(store_log *log, store_log_pos pos, uint16_t queue_index)
{
    ASSERT(log != NULL && pos.segment <= log->current->number);
    int32_t index = slog_find_index(log, pos.segment);
    if (index < 0) return; /* deleted: every slot in it was acked before */
    store_log_segment *seg = log->segments[index];
    ASSERT((uint64_t)pos.slot + queue_index < seg->slots);
    if (!store_log__acked_set(seg, pos.slot + queue_index)) return; /* acked before */
    ASSERT(seg->live > 0 && log->live_slots > 0);
    seg->live--;
    log->live_slots--;
    seg->ack_dirty = true;
    if (seg->live == 0) store_log__settle(log, seg);
}

static int slog_ack_open(store_log *log, const char *name)
{
    for (;;) {
        int fd = openat(log->dir_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
        if (fd >= 0) return fd;
        switch (errno) {
        case EINTR:
            continue;
        case ENOSPC:
        case EDQUOT:
        case EIO:
        case EACCES:
        case EPERM:
        case EROFS:
        case EMFILE:
        case ENFILE:
        case ENOMEM:
            return -errno;
        default:
            LOG_ERROR("segment log %u: unexpected error opening %s: %s", log->shard_id, name,
                      strerror(errno));
            return -errno;
        }
    }
}

/* Writes seg's ack bitmap: the bits first, then the header that covers them. A torn write
 * leaves a subset of the acks (bits only go from 0 to 1), never an ack that did not happen. */
static int slog_ack_write(store_log *log, store_log_segment *seg)
{
    char name[STORE_LOG__NAME_BYTES];
    store_log__name(name, seg->number, "ack");
    int fd = slog_ack_open(log, name);
    int rc = fd < 0 ? fd : 0;
    if (fd >= 0) {
        seg->ack_file = true;
        size_t words = seg->slots / 64 + (seg->slots % 64 != 0);
        ASSERT(words <= seg->acked_words);
        if (words > 0)
            rc = store_log__pwrite_all(fd, seg->acked, words * 8, STORE_LOG__ACK_HEADER_BYTES);
        uint8_t header[STORE_LOG__ACK_HEADER_BYTES];
        store_put_u64(header, STORE_LOG__ACK_MAGIC);
        store_put_u64(header + 8, seg->number);
        store_put_u32(header + 16, seg->slots);
        store_put_u32(header + 20, 0);
        store_put_u64(header + 24, XXH3_64bits_withSeed(header, 24, STORE_LOG__ACK_SEED));
        if (rc == 0) rc = store_log__pwrite_all(fd, header, sizeof(header), 0);
        slog_close_fd(log, fd);
    }
    if (rc != 0 && !log->ack_warned) {
        log->ack_warned = true; /* once: acks stay in memory and are retried by each checkpoint */
        LOG_WARN("segment log %u: cannot write %s/%s: %s", log->shard_id, log->dir, name,
                 strerror(-rc));
    }
    return rc;
}

void store_log_checkpoint(store_log *log)
{
    ASSERT(log != NULL);
    for (uint32_t i = 0; i < log->segment_count; i++) {
        store_log_segment *seg = log->segments[i];
        if (seg->ack_dirty && slog_ack_write(log, seg) == 0) seg->ack_dirty = false;
    }
    if (log->dir_dirty) (void)store_log__sync_dir(log);
}

/* ---- group commit ---- */

/* Sets up the idle buffer b to take the appends: it starts with a's extents from k on (moved when
 * the flush cannot take them all), or else with the current segment's partial last block. */
static bool slog_next_buffer(store_log *log, store_log_buffer *a, store_log_buffer *b, uint32_t k)
{
    ASSERT(b->extent_count == 0 && b->used == 0);
    if (k < a->extent_count) {
        size_t from = a->extents[k].buf_offset;
        size_t bytes = a->used - from;
        uint32_t count = a->extent_count - k;
        size_t capacity = (size_t)store_log__round_up(bytes);
        if (capacity < LIMIT_LOG_WRITE_BUFFER_BYTES_INITIAL)
            capacity = LIMIT_LOG_WRITE_BUFFER_BYTES_INITIAL;
        if (!slog_buffer_reserve(b, capacity) || !slog_extents_reserve(b, count)) return false;
        memcpy(b->base, a->base + from, bytes);
        for (uint32_t i = 0; i < count; i++) {
            b->extents[i] = a->extents[k + i];
            b->extents[i].buf_offset -= from;
        }
        b->extent_count = count;
        b->used = bytes;
        return true;
    }
    const store_log_extent *last = &a->extents[a->extent_count - 1];
    ASSERT(last->seg == log->current && !last->seg->sealed);
    uint32_t carry = (uint32_t)(last->seg->end % SLOG_BLOCK);
    ASSERT(last->bytes >= carry);
    if (!slog_buffer_reserve(b, LIMIT_LOG_WRITE_BUFFER_BYTES_INITIAL) ||
        !slog_extents_reserve(b, 1))
        return false;
    memcpy(b->base, a->base + last->buf_offset + last->bytes - carry, carry);
    b->extents[0] =
        (store_log_extent){.seg = last->seg, .file_offset = last->seg->end - carry, .bytes = carry};
    b->extent_count = 1;
    b->used = carry;
    return true;
}

static bool slog_flush_begin(store_log *log, store_log_io *io, bool sync_all)
{
    ASSERT(log != NULL && io != NULL);
    if (log->failed || log->in_flight) return false;
    store_log_buffer *a = &log->buffers[log->active];
    store_log_buffer *b = &log->buffers[!log->active];
    ASSERT(a->extent_count >= 1);
    if (!slog_buffer_pending(a)) return false;
    uint32_t k = a->extent_count < STORE_LOG_IO_OPS_MAX ? a->extent_count : STORE_LOG_IO_OPS_MAX;
    if (!slog_next_buffer(log, a, b, k)) {
        store_log__fail(log, ENOMEM, "no memory for the next write buffer");
        return false;
    }
    memset(io, 0, sizeof(*io));
    for (uint32_t i = 0; i < k; i++) {
        store_log_extent *e = &a->extents[i];
        size_t padded = (size_t)store_log__round_up(e->bytes);
        ASSERT(e->seg->fd >= 0 && e->buf_offset + padded <= a->capacity);
        ASSERT(padded <= LIMIT_LOG_WRITE_OP_BYTES_MAX);
        memset(a->base + e->buf_offset + e->bytes, 0, padded - e->bytes);
        bool sync = sync_all || e->needs_sync || e->seg->sealed; /* a sealed segment ends synced */
        io->ops[i] = (store_log_io_op){.fd = e->seg->fd,
                                       .buf = a->base + e->buf_offset,
                                       .bytes = (uint32_t)padded,
                                       .offset = e->file_offset,
                                       .sync = sync};
        e->seg->unsynced = !sync;
        if (e->seq_last > io->seq_last) io->seq_last = e->seq_last;
    }
    io->op_count = k;
    io->sync = io->ops[k - 1].sync;
    a->extent_count = k; /* what is left moved to b */
    log->flight = *io;
    log->in_flight = true;
    log->active = !log->active;
    return true;
}

bool store_log_flush_begin(store_log *log, store_log_io *io)
{
    return slog_flush_begin(log, io, false);
}

/* The flight's buffer goes idle: its segments may now be closed or deleted. */
static void slog_flight_done(store_log *log)
{
    store_log_buffer *f = &log->buffers[!log->active];
    store_log_segment *segs[STORE_LOG_IO_OPS_MAX];
    uint32_t count = f->extent_count;
    ASSERT(count <= STORE_LOG_IO_OPS_MAX);
    for (uint32_t i = 0; i < count; i++) segs[i] = f->extents[i].seg;
    f->extent_count = 0;
    f->used = 0;
    if (f->capacity > LIMIT_LOG_WRITE_BUFFER_BYTES) { /* grown for one huge record or turn */
        mi_free(f->base);
        f->base = NULL;
        f->capacity = 0;
    }
    log->in_flight = false;
    for (uint32_t i = 0; i < count; i++) store_log__settle(log, segs[i]);
}

int store_log_flush_end(store_log *log, const store_log_io *io, const int *results,
                        const int *sync_results)
{
    ASSERT(log != NULL && io != NULL && results != NULL && sync_results != NULL);
    ASSERT(log->in_flight);
    const store_log_io *f = &log->flight;
    ASSERT(io->op_count == f->op_count && io->seq_last == f->seq_last && io->sync == f->sync);
    int err = 0;
    uint64_t syncs = 0;
    for (uint32_t i = 0; i < f->op_count; i++) {
        const store_log_io_op *op = &f->ops[i];
        ASSERT(io->ops[i].fd == op->fd && io->ops[i].bytes == op->bytes);
        int rc = results[i] < 0 ? results[i] : (uint32_t)results[i] != op->bytes ? -EIO : 0;
        if (rc == 0 && op->sync) rc = sync_results[i] < 0 ? sync_results[i] : 0;
        if (rc == 0 && op->sync) syncs++;
        if (err == 0) err = rc;
    }
    if (err != 0) {
        store_log__fail(log, -err, "a write or sync of the segment log failed");
    } else {
        log->stats.flushes++;
        log->stats.syncs += syncs;
        if (f->seq_last > log->written_seq) log->written_seq = f->seq_last;
        if (f->sync && f->seq_last > log->durable_seq) log->durable_seq = f->seq_last;
    }
    slog_flight_done(log);
    return err;
}

static void slog_run_io(const store_log_io *io, int *results, int *sync_results)
{
    for (uint32_t i = 0; i < io->op_count; i++) {
        const store_log_io_op *op = &io->ops[i];
        int rc = store_log__pwrite_all(op->fd, op->buf, op->bytes, op->offset);
        results[i] = rc < 0 ? rc : (int)op->bytes;
        sync_results[i] = rc == 0 && op->sync ? store_log__fdatasync(op->fd) : 0;
    }
}

int store_log_flush_sync(store_log *log)
{
    ASSERT(log != NULL && !log->in_flight);
    store_log_io io;
    while (slog_flush_begin(log, &io, true)) {
        int results[STORE_LOG_IO_OPS_MAX], sync_results[STORE_LOG_IO_OPS_MAX];
        slog_run_io(&io, results, sync_results);
        int rc = store_log_flush_end(log, &io, results, sync_results);
        if (rc != 0) return rc;
    }
    if (log->failed) return -EIO;
    if (log->durable_seq < log->written_seq) {
        /* Earlier flushes wrote without a sync; sealed segments were synced as they ended. */
        ASSERT(log->current->fd >= 0);
        int rc = store_log__fdatasync(log->current->fd);
        if (rc != 0) {
            store_log__fail(log, -rc, "fdatasync of the segment log failed");
            return rc;
        }
        log->stats.syncs++;
        log->current->unsynced = false;
        log->durable_seq = log->written_seq;
    }
    return 0;
}

uint64_t store_log_written_seq(const store_log *log)
{
    ASSERT(log != NULL);
    return log->written_seq;
}

uint64_t store_log_durable_seq(const store_log *log)
{
    ASSERT(log != NULL);
    return log->durable_seq;
}

bool store_log_full(const store_log *log)
{
    ASSERT(log != NULL);
    return log->full;
}

bool store_log_retry(store_log *log)
{
    ASSERT(log != NULL);
    if (log->failed) return false;
    if (!log->full) return true;
    /* Start the next segment now, with nothing in it: if that works there is room again. */
    size_t at;
    if (!slog_make_room(log, 0, true, &at)) return false;
    log->full = false;
    if (!slog_roll(log, 0, at)) return false; /* still full (sets full again) or failed */
    LOG_INFO("segment log %u (%s): space found again; appends resume", log->shard_id, log->dir);
    return true;
}

bool store_log_failed(const store_log *log)
{
    ASSERT(log != NULL);
    return log->failed;
}

void store_log_stats_get(const store_log *log, store_log_stats *out)
{
    ASSERT(log != NULL && out != NULL);
    *out = log->stats;
    out->segments = log->segment_count;
    out->disk_bytes = 0;
    for (uint32_t i = 0; i < log->segment_count; i++)
        out->disk_bytes += log->segments[i]->file_bytes;
    out->live_slots = log->live_slots;
}

/* ---- teardown ---- */

void store_log__free(store_log *log)
{
    if (log == NULL) return;
    for (uint32_t i = 0; i < log->segment_count; i++) {
        store_log_segment *seg = log->segments[i];
        if (seg->fd >= 0) slog_close_fd(log, seg->fd);
        mi_free(seg->acked);
        mi_free(seg);
    }
    mi_free(log->segments);
    for (int i = 0; i < 2; i++) {
        mi_free(log->buffers[i].base);
        mi_free(log->buffers[i].extents);
    }
    if (log->dir_fd >= 0) slog_close_fd(log, log->dir_fd);
    mi_free(log->dir);
    mi_free(log);
}

void store_log_close(store_log *log)
{
    if (log == NULL) return;
    if (log->dir_dirty) (void)store_log__sync_dir(log);
    store_log__free(log);
}
