/*
 * A queue's paged-out tail (see store/spill.h). Records, oldest first, in chunk files of the
 * shard's spill directory named "%016llx-%016llx.spill" (queue id, chunk number). The write end
 * appends to the newest chunk through a small buffer; the read end reads the oldest chunk
 * sequentially and unlinks it once read to its end; an empty spill holds no file and no buffer.
 * A record is a spill_head (what the wire form does not carry: flags, arrival time, publisher
 * fields, the owned log slot) followed by the message's wire form (store_msg_wire_write).
 *
 * I/O is synchronous, on the shard's thread: a deliberate simplification for now. Writes are
 * pwrites of LIMIT_SPILL_WRITE_BUFFER_BYTES into the page cache, never synced (the spill is a
 * cache: the directory is emptied at start and persistent messages come back from the segment
 * log). Reads are sequential preads of LIMIT_SPILL_READ_BYTES, a batch at a time, and usually
 * hit the page cache. Files are opened for each flush and each batch and closed after it, so a
 * paging queue holds no descriptor. Moving this I/O onto the shard's ring is left for later.
 *
 * Invariants: every chunk on disk holds whole records (a flush writes whole records; a chunk is
 * sealed only right after a flush, once it holds chunk_bytes); chunks read_chunk .. write_chunk
 * - 1 are sealed and exist; the write chunk holds written_bytes on disk (a file once
 * write_created) and the buffer's buf_bytes follow them; the read position is at or before the
 * end of that. A disk that refuses a write (ENOSPC, EIO, ...) leaves the records in the buffer,
 * which grows, and a later flush retries: memory instead of loss. A failed read cannot be
 * recovered from (the messages are nowhere else in memory): it is fatal, and a restart brings
 * the persistent ones back from the log.
 *
 * Ownership: the spill and its buffers are on the queue's heap; messages read back are new, on
 * the same heap, with one reference that passes to the sink.
 */
#include "store/spill.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/log.h"
#include "store/mem.h"

#define SPILL_MAGIC      0x5350494cu /* "SPIL" */
#define SPILL_HAS_SLOT   0x8000u     /* in spill_head.flags, beside the store_msg flags kept */
#define SPILL_NAME_BYTES 48u         /* "%016llx-%016llx.spill" and its NUL */
#define SPILL_KEPT_FLAGS STORE_MSG_RECOVERED /* flags the wire form does not carry */

typedef struct spill_head {
    uint32_t record_bytes; /* this head and the wire form */
    uint32_t check;        /* SPILL_MAGIC ^ record_bytes: a reader out of step stops on it */
    uint16_t flags;        /* SPILL_KEPT_FLAGS, SPILL_HAS_SLOT */
    uint16_t publisher_shard;
    uint32_t log_segment;
    uint32_t log_offset;
    uint32_t log_slot;
    uint64_t publish_seq;
    uint64_t arrival_ms;
} spill_head;

STATIC_ASSERT_SIZE(spill_head, 40);
STATIC_ASSERT((SPILL_KEPT_FLAGS & SPILL_HAS_SLOT) == 0, "spill flags apart from message flags");
STATIC_ASSERT(LIMIT_SPILL_READ_BYTES >= sizeof(spill_head) + sizeof(store_msg_wire), "read unit");

struct store_spill {
    mi_heap_t *heap;
    int dir_fd;
    uint64_t queue_id;
    uint64_t chunk_bytes;
    uint64_t count;      /* records not read back yet */
    uint64_t bytes;      /* their bytes */
    uint64_t slot_count; /* of them, those owning a log slot */
    /* The write end. */
    uint64_t write_chunk;
    uint64_t written_bytes;
    bool write_created;
    bool refused; /* the last flush was refused (logged once per episode) */
    uint8_t *buf;
    uint64_t buf_bytes;
    uint64_t buf_capacity;
    uint64_t flush_at; /* flush once buf_bytes reaches this; doubles while the disk refuses */
    /* The read end: the next record is at read_offset in chunk read_chunk. */
    uint64_t read_chunk;
    uint64_t read_offset;
};

/* One batch's view of the read chunk: a window of file bytes and the open file. */
typedef struct spill_reader {
    store_spill *spill;
    int fd;
    uint64_t fd_chunk;   /* the chunk fd and buf belong to */
    uint8_t *buf;        /* LIMIT_SPILL_READ_BYTES */
    uint64_t buf_offset; /* file offset of buf[0] */
    uint64_t buf_len;
    uint8_t *big; /* a record larger than buf */
} spill_reader;

static void spill_name(const store_spill *sp, uint64_t chunk, char *out)
{
    int n = snprintf(out, SPILL_NAME_BYTES, "%016llx-%016llx.spill",
                     (unsigned long long)sp->queue_id, (unsigned long long)chunk);
    ASSERT(n > 0 && (unsigned)n < SPILL_NAME_BYTES);
}

__attribute__((noreturn, cold)) static void spill_fatal(const char *what, const char *name, int err)
{
    LOG_ERROR("spill file %s: %s failed: %s; paged-out messages cannot be read back", name, what,
              strerror(err));
    abort();
}

/* ---- directory ---- */

static int spill_mkdir(const char *path)
{
    if (mkdir(path, 0750) == 0 || errno == EEXIST) return 0;
    return -1;
}

/* Unlinks every entry of the directory (files only: ours). 0, or -1 with errno. */
static int spill_dir_empty(int dir_fd)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (errno = 0, e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (unlinkat(dir_fd, e->d_name, 0) != 0 && errno != ENOENT) rc = -1;
    }
    if (rc == 0 && errno != 0) rc = -1; /* readdir failed */
    int err = errno;
    closedir(dir);
    errno = err;
    return rc;
}

int store_spill_dir_open(const char *data_dir, uint32_t shard_id)
{
    ASSERT(data_dir != NULL);
    char path[LIMIT_PATH_BYTES_MAX + 32];
    int n = snprintf(path, sizeof(path), "%s/spill", data_dir);
    ASSERT(n > 0 && (size_t)n < sizeof(path));
    if (spill_mkdir(path) != 0) return -1;
    n = snprintf(path, sizeof(path), "%s/spill/shard-%u", data_dir, shard_id);
    ASSERT(n > 0 && (size_t)n < sizeof(path));
    if (spill_mkdir(path) != 0) return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (spill_dir_empty(fd) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* ---- life ---- */

store_spill *store_spill_new(mi_heap_t *heap, const store_spill_config *config)
{
    ASSERT(config != NULL && config->dir_fd >= 0);
    ASSERT(config->chunk_bytes > 0);
    store_spill *sp = store_mem_zalloc(heap, sizeof(*sp));
    sp->heap = heap;
    sp->dir_fd = config->dir_fd;
    sp->queue_id = config->queue_id;
    sp->chunk_bytes = config->chunk_bytes;
    sp->flush_at = LIMIT_SPILL_WRITE_BUFFER_BYTES;
    ASSERT(store_spill_count(sp) == 0 && store_spill_files(sp) == 0);
    return sp;
}

void store_spill_free(store_spill *sp)
{
    ASSERT(sp != NULL);
    store_spill_drop_all(sp, NULL, NULL);
    ASSERT(sp->buf == NULL && store_spill_files(sp) == 0);
    store_mem_free(sp);
}

uint64_t store_spill_count(const store_spill *sp)
{
    return sp->count;
}

uint64_t store_spill_bytes(const store_spill *sp)
{
    return sp->bytes;
}

uint64_t store_spill_files(const store_spill *sp)
{
    ASSERT(sp->read_chunk <= sp->write_chunk);
    return sp->write_chunk - sp->read_chunk + (sp->write_created ? 1u : 0u);
}

static void spill_unlink(const store_spill *sp, uint64_t chunk)
{
    char name[SPILL_NAME_BYTES];
    spill_name(sp, chunk, name);
    if (unlinkat(sp->dir_fd, name, 0) == 0) return;
    /* The bytes are read or dropped: a file left behind costs disk until the next start. */
    LOG_WARN("spill file %s: unlink failed: %s", name, strerror(errno));
}

/* Back to no file and no buffer, with the chunk numbers moving on. */
static void spill_reset(store_spill *sp)
{
    ASSERT(sp->count == 0 && sp->bytes == 0 && sp->slot_count == 0);
    ASSERT(sp->read_chunk + 1 >= sp->write_chunk); /* only a sealed chunk read to its last byte */
    if (sp->read_chunk < sp->write_chunk) spill_unlink(sp, sp->read_chunk);
    if (sp->write_created) spill_unlink(sp, sp->write_chunk);
    store_mem_free(sp->buf);
    sp->buf = NULL;
    sp->buf_bytes = sp->buf_capacity = 0;
    sp->flush_at = LIMIT_SPILL_WRITE_BUFFER_BYTES;
    sp->write_chunk++;
    sp->write_created = false;
    sp->written_bytes = 0;
    sp->read_chunk = sp->write_chunk;
    sp->read_offset = 0;
    ASSERT(store_spill_files(sp) == 0);
}

/* ---- the write end ---- */

/* A flush the disk refused: the records stay buffered. Unexpected errors are fatal. */
static bool spill_refused(store_spill *sp, const char *what, const char *name, int err)
{
    switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EIO:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EROFS:
    case EACCES:
    case EPERM:
        break;
    default:
        spill_fatal(what, name, err);
    }
    if (!sp->refused)
        LOG_WARN("spill file %s: %s failed: %s; the queue's paged-out messages stay in memory "
                 "until the disk takes them",
                 name, what, strerror(err));
    sp->refused = true;
    sp->flush_at = 2 * (sp->buf_bytes > sp->flush_at ? sp->buf_bytes : sp->flush_at);
    return false;
}

/* 0, or the errno of the failed write. */
static int spill_pwrite_all(int fd, const uint8_t *buf, uint64_t bytes, uint64_t offset)
{
    uint64_t done = 0;
    while (done < bytes) {
        ssize_t n = pwrite(fd, buf + done, bytes - done, (off_t)(offset + done));
        if (n > 0) {
            done += (uint64_t)n;
            continue;
        }
        if (n == 0) return EIO; /* no progress and no error: treat as a failing device */
        if (errno != EINTR) return errno;
    }
    ASSERT(done == bytes);
    return 0;
}

/* Writes the buffer after written_bytes in the write chunk; seals the chunk once full. False
 * when the disk refused (the buffer is kept, to be written again whole at the same offset). */
static bool spill_flush(store_spill *sp)
{
    ASSERT(sp->buf_bytes > 0);
    ASSERT(sp->read_chunk < sp->write_chunk ||
           sp->read_offset <= sp->written_bytes + sp->buf_bytes);
    char name[SPILL_NAME_BYTES];
    spill_name(sp, sp->write_chunk, name);
    int fd = openat(sp->dir_fd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return spill_refused(sp, "open", name, errno);
    sp->write_created = true;
    int err = spill_pwrite_all(fd, sp->buf, sp->buf_bytes, sp->written_bytes);
    if (close(fd) != 0 && err == 0 && errno != EINTR) err = errno;
    if (err != 0) return spill_refused(sp, "write", name, err);
    if (sp->refused) LOG_INFO("spill file %s: writes resumed", name);
    sp->refused = false;
    sp->written_bytes += sp->buf_bytes;
    sp->buf_bytes = 0;
    sp->flush_at = LIMIT_SPILL_WRITE_BUFFER_BYTES;
    if (sp->buf_capacity > LIMIT_SPILL_WRITE_BUFFER_BYTES) { /* a large record passed */
        store_mem_free(sp->buf);
        sp->buf = NULL;
        sp->buf_capacity = 0;
    }
    if (sp->written_bytes >= sp->chunk_bytes) {
        sp->write_chunk++;
        sp->written_bytes = 0;
        sp->write_created = false;
    }
    return true;
}

/* Room for record_bytes more in the buffer: flush first if it holds records (unless the disk
 * refuses: then only flush_at retries), grow if need be. */
static void spill_reserve(store_spill *sp, uint64_t record_bytes)
{
    ASSERT(sp->buf_bytes + record_bytes > sp->buf_capacity);
    if (sp->buf_bytes > 0 && !sp->refused) (void)spill_flush(sp);
    uint64_t need = sp->buf_bytes + record_bytes;
    if (need <= sp->buf_capacity) return;
    uint64_t capacity = LIMIT_SPILL_WRITE_BUFFER_BYTES;
    while (capacity < need) capacity *= 2;
    uint8_t *buf = store_mem_alloc(sp->heap, capacity);
    if (sp->buf_bytes > 0) memcpy(buf, sp->buf, sp->buf_bytes);
    store_mem_free(sp->buf);
    sp->buf = buf;
    sp->buf_capacity = capacity;
    ASSERT(sp->buf_bytes + record_bytes <= sp->buf_capacity);
}

void store_spill_push(store_spill *sp, const store_msg *msg, const store_msg_slot *slot)
{
    ASSERT(msg != NULL && msg->refs >= 1);
    ASSERT((msg->flags & SPILL_HAS_SLOT) == 0);
    uint64_t record_bytes = sizeof(spill_head) + store_msg_wire_bytes(msg);
    ASSERT(record_bytes <= UINT32_MAX);
    if (sp->buf_bytes + record_bytes > sp->buf_capacity) spill_reserve(sp, record_bytes);
    spill_head h = {
        .record_bytes = (uint32_t)record_bytes,
        .check = SPILL_MAGIC ^ (uint32_t)record_bytes,
        .flags = (uint16_t)((msg->flags & SPILL_KEPT_FLAGS) | (slot != NULL ? SPILL_HAS_SLOT : 0)),
        .publisher_shard = msg->publisher_shard,
        .log_segment = slot != NULL ? slot->segment : 0,
        .log_offset = slot != NULL ? slot->offset : 0,
        .log_slot = slot != NULL ? slot->slot : 0,
        .publish_seq = msg->publish_seq,
        .arrival_ms = msg->arrival_ms,
    };
    uint8_t *at = sp->buf + sp->buf_bytes;
    memcpy(at, &h, sizeof(h));
    store_msg_wire_write(at + sizeof(h), msg);
    sp->buf_bytes += record_bytes;
    sp->count++;
    sp->bytes += record_bytes;
    if (slot != NULL) sp->slot_count++;
    if (sp->buf_bytes >= sp->flush_at) (void)spill_flush(sp);
    ASSERT(sp->buf_bytes <= sp->buf_capacity);
}

/* ---- the read end ---- */

/* Reads up to bytes at offset; fewer only at the end of the file. Errors are fatal. */
static uint64_t spill_pread_all(int fd, uint8_t *buf, uint64_t bytes, uint64_t offset,
                                const char *name)
{
    uint64_t got = 0;
    while (got < bytes) {
        ssize_t n = pread(fd, buf + got, bytes - got, (off_t)(offset + got));
        if (n > 0) {
            got += (uint64_t)n;
            continue;
        }
        if (n == 0) break;
        if (errno != EINTR) spill_fatal("read", name, errno);
    }
    ASSERT(got <= bytes);
    return got;
}

/* The head at rec, checked against the bytes that hold it. */
static void spill_head_read(const store_spill *sp, const uint8_t *rec, spill_head *h)
{
    memcpy(h, rec, sizeof(*h));
    if (h->check != (SPILL_MAGIC ^ h->record_bytes) ||
        h->record_bytes < sizeof(*h) + sizeof(store_msg_wire)) {
        char name[SPILL_NAME_BYTES];
        spill_name(sp, sp->read_chunk, name);
        LOG_ERROR("spill file %s: damaged record at offset %llu", name,
                  (unsigned long long)sp->read_offset);
        abort();
    }
}

static void spill_reader_init(spill_reader *rd, store_spill *sp)
{
    *rd = (spill_reader){.spill = sp, .fd = -1, .fd_chunk = UINT64_MAX};
}

static void spill_reader_fini(spill_reader *rd)
{
    if (rd->fd >= 0) close(rd->fd); /* read-only: nothing to lose on close */
    store_mem_free(rd->buf);
    store_mem_free(rd->big);
    *rd = (spill_reader){.fd = -1};
}

/* The read chunk's file is open in rd. */
static void spill_reader_open(spill_reader *rd, const char *name)
{
    store_spill *sp = rd->spill;
    if (rd->fd >= 0 && rd->fd_chunk == sp->read_chunk) return;
    if (rd->fd >= 0) close(rd->fd);
    do {
        rd->fd = openat(sp->dir_fd, name, O_RDONLY | O_CLOEXEC);
    } while (rd->fd < 0 && errno == EINTR);
    if (rd->fd < 0) spill_fatal("open", name, errno);
    rd->fd_chunk = sp->read_chunk;
    rd->buf_len = 0;
    if (rd->buf == NULL) rd->buf = store_mem_alloc(sp->heap, LIMIT_SPILL_READ_BYTES);
}

/* The record at the read position from the read chunk's file (which ends at end, or at its
 * end of file when sealed), or NULL at the end of a sealed chunk. */
static const uint8_t *spill_reader_record(spill_reader *rd, uint64_t end, spill_head *h)
{
    store_spill *sp = rd->spill;
    uint64_t off = sp->read_offset;
    ASSERT(off <= end);
    if (rd->fd_chunk == sp->read_chunk && off >= rd->buf_offset &&
        off + sizeof(*h) <= rd->buf_offset + rd->buf_len) {
        const uint8_t *rec = rd->buf + (off - rd->buf_offset);
        spill_head_read(sp, rec, h);
        if (off + h->record_bytes <= rd->buf_offset + rd->buf_len) return rec;
    }
    char name[SPILL_NAME_BYTES];
    spill_name(sp, sp->read_chunk, name);
    spill_reader_open(rd, name);
    uint64_t want = end - off < LIMIT_SPILL_READ_BYTES ? end - off : LIMIT_SPILL_READ_BYTES;
    uint64_t got = spill_pread_all(rd->fd, rd->buf, want, off, name);
    rd->buf_offset = off;
    rd->buf_len = got;
    if (got == 0) {
        ASSERT(end == UINT64_MAX); /* only a sealed chunk ends before its records do */
        return NULL;
    }
    if (got < sizeof(*h)) spill_fatal("read (record cut short)", name, EIO);
    spill_head_read(sp, rd->buf, h);
    if (h->record_bytes <= got) return rd->buf;
    if (h->record_bytes <= LIMIT_SPILL_READ_BYTES)
        spill_fatal("read (record cut short)", name, EIO);
    store_mem_free(rd->big);
    rd->big = store_mem_alloc(sp->heap, h->record_bytes);
    if (spill_pread_all(rd->fd, rd->big, h->record_bytes, off, name) != h->record_bytes)
        spill_fatal("read (record cut short)", name, EIO);
    return rd->big;
}

/* The read chunk is read to its end: it goes, and the next one is read. */
static void spill_reader_next_chunk(spill_reader *rd)
{
    store_spill *sp = rd->spill;
    ASSERT(sp->read_chunk < sp->write_chunk);
    if (rd->fd >= 0) close(rd->fd);
    rd->fd = -1;
    rd->fd_chunk = UINT64_MAX;
    rd->buf_len = 0;
    spill_unlink(sp, sp->read_chunk);
    sp->read_chunk++;
    sp->read_offset = 0;
}

/* The next record (valid until the next call), its head in *h; the read position passes it. */
static const uint8_t *spill_next(spill_reader *rd, spill_head *h)
{
    store_spill *sp = rd->spill;
    ASSERT(sp->count > 0);
    const uint8_t *rec = NULL;
    while (rec == NULL) {
        ASSERT(sp->read_chunk <= sp->write_chunk);
        bool in_write_chunk = sp->read_chunk == sp->write_chunk;
        if (in_write_chunk && sp->read_offset >= sp->written_bytes) {
            uint64_t at = sp->read_offset - sp->written_bytes;
            ASSERT(at + sizeof(*h) <= sp->buf_bytes);
            rec = sp->buf + at;
            spill_head_read(sp, rec, h);
            ASSERT(at + h->record_bytes <= sp->buf_bytes);
            break;
        }
        rec = spill_reader_record(rd, in_write_chunk ? sp->written_bytes : UINT64_MAX, h);
        if (rec == NULL) spill_reader_next_chunk(rd);
    }
    sp->read_offset += h->record_bytes;
    sp->count--;
    ASSERT(sp->bytes >= h->record_bytes);
    sp->bytes -= h->record_bytes;
    if (h->flags & SPILL_HAS_SLOT) sp->slot_count--;
    return rec;
}

/* A message made from a record; it owns the record's slot, if any. */
static store_msg *spill_msg_make(const store_spill *sp, const spill_head *h, const uint8_t *rec)
{
    store_msg_params params;
    if (!store_msg_wire_read(rec + sizeof(*h), h->record_bytes - sizeof(*h), &params)) {
        char name[SPILL_NAME_BYTES];
        spill_name(sp, sp->read_chunk, name);
        spill_fatal("decode", name, EIO);
    }
    params.publisher_shard = h->publisher_shard;
    params.publish_seq = h->publish_seq;
    params.arrival_ms = h->arrival_ms;
    store_msg *m = store_msg_new(sp->heap, &params);
    ASSERT(m != NULL); /* the in-memory window is sized to fit; none at all is fatal */
    m->flags |= (uint16_t)(h->flags & SPILL_KEPT_FLAGS);
    if (h->flags & SPILL_HAS_SLOT) {
        m->log_segment = h->log_segment;
        m->log_offset = h->log_offset;
        m->log_slot = h->log_slot;
        m->log_queues = 1;
    }
    return m;
}

uint32_t store_spill_pop_batch(store_spill *sp, uint32_t count_max, uint64_t bytes_max,
                               store_spill_sink_fn *sink, void *ctx)
{
    ASSERT(sp->count > 0 && count_max > 0);
    ASSERT(sink != NULL);
    spill_reader rd;
    spill_reader_init(&rd, sp);
    uint32_t n = 0;
    uint64_t memory_bytes = 0;
    while (n < count_max && sp->count > 0 && (n == 0 || memory_bytes < bytes_max)) {
        spill_head h;
        const uint8_t *rec = spill_next(&rd, &h);
        store_msg *m = spill_msg_make(sp, &h, rec);
        memory_bytes += sizeof(store_msg) + store_msg_wire_bytes(m) - sizeof(store_msg_wire);
        sink(ctx, m);
        n++;
    }
    spill_reader_fini(&rd);
    if (sp->count == 0) spill_reset(sp);
    ASSERT(n >= 1 && n <= count_max);
    return n;
}

uint64_t store_spill_drop_all(store_spill *sp, store_spill_drop_fn *drop, void *ctx)
{
    ASSERT(sp != NULL);
    uint64_t dropped = sp->count;
    if (drop != NULL && sp->slot_count > 0) {
        spill_reader rd;
        spill_reader_init(&rd, sp);
        while (sp->count > 0) {
            spill_head h;
            (void)spill_next(&rd, &h);
            if ((h.flags & SPILL_HAS_SLOT) == 0) continue;
            store_msg_slot slot = {
                .segment = h.log_segment, .offset = h.log_offset, .slot = h.log_slot};
            drop(ctx, &slot);
        }
        spill_reader_fini(&rd);
    } else {
        /* Nothing to tell about the records: the files go unread. */
        for (uint64_t c = sp->read_chunk; c < sp->write_chunk; c++) spill_unlink(sp, c);
        sp->read_chunk = sp->write_chunk;
        sp->read_offset = sp->written_bytes + sp->buf_bytes;
        sp->count = sp->bytes = sp->slot_count = 0;
    }
    spill_reset(sp);
    ASSERT(sp->count == 0 && store_spill_files(sp) == 0);
    return dropped;
}
