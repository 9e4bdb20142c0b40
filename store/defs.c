/*
 * The definitions journal (see store/defs.h). The live set is three lists in creation order
 * (exchanges, queues, bindings) of entries that own a copy of their definition, indexed by
 * identity and, for bindings, by source and by destination, so that a delete finds the bindings
 * it takes along. Invariants:
 *   - replaying definitions.log from its first record gives exactly the live set, except after a
 *     failed write, when needs_snapshot is set and the next write replaces the whole file;
 *   - `end` is the offset just past the last good record, where the next append goes;
 *   - every binding's source and destination are in the live set or are predeclared ("amq.*").
 * The file is only ever appended to, cut back to `end`, or replaced by rename.
 */
#include "store/defs.h"

#include "core/assert.h"
#include "core/log.h"
#include "route/route_map.h"
#include "store/record.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define DEFS_FILE "definitions.log"
#define DEFS_TMP_FILE "definitions.log.tmp"

enum {
    DEFS_F_DURABLE = 1u << 0,
    DEFS_F_AUTO_DELETE = 1u << 1,
    DEFS_F_INTERNAL = 1u << 2,
    DEFS_F_DEST_EXCHANGE = 1u << 3,
};

typedef enum { DEFS_EXCHANGE = 0, DEFS_QUEUE = 1, DEFS_BINDING = 2, DEFS_KINDS = 3 } defs_kind;

typedef struct defs_entry {
    struct defs_entry *prev, *next; /* its kind's list, creation order */
    uint64_t hash;                  /* identity */
    uint64_t src_hash, dst_hash;    /* bindings: what they point at */
    store_defs_change def;          /* slices point into bytes */
    uint8_t bytes[];
} defs_entry;

typedef struct defs_list {
    defs_entry *head, *tail;
    uint32_t count;
} defs_list;

struct store_defs {
    char dir[LIMIT_PATH_BYTES_MAX];
    char path[LIMIT_PATH_BYTES_MAX];
    char tmp_path[LIMIT_PATH_BYTES_MAX];
    int fd;          /* -1 until the file exists */
    uint64_t end;    /* bytes of good records in the file */
    uint64_t file_records;
    uint64_t seq_next;
    uint64_t queue_id_next;
    uint32_t compact_records_min;
    bool needs_snapshot; /* a write failed: the file may not match the live set */
    bool dir_synced;     /* the file's directory entry is known durable */
    int fail_next_errno; /* tests */
    defs_list lists[DEFS_KINDS];
    route_map objects;        /* exchanges and queues by identity */
    route_map bindings;       /* by identity */
    route_map by_source;      /* bindings by src_hash */
    route_map by_destination; /* bindings by dst_hash */
    store_defs_load_stats stats;
};

static void defs_fail(store_defs_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void defs_fail(store_defs_error *err, const char *fmt, ...)
{
    if (err == NULL) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
}

/* ---- identity ---- */

static uint64_t defs_hash_parts(const amqp_bytes *parts, uint32_t count, uint64_t seed)
{
    uint64_t h = seed;
    for (uint32_t i = 0; i < count; i++)
        h = XXH3_64bits_withSeed(parts[i].data, parts[i].len, h * 31u + parts[i].len + 1u);
    return h;
}

/* An exchange or queue name as a binding refers to it. */
static uint64_t defs_ref_hash(defs_kind kind, amqp_bytes vhost, amqp_bytes name)
{
    amqp_bytes parts[] = {vhost, name};
    return defs_hash_parts(parts, 2, (uint64_t)kind + 0x5eedu);
}

static uint64_t defs_binding_hash(const store_defs_change *c)
{
    amqp_bytes parts[] = {c->vhost, c->name, c->destination, c->routing_key, c->arguments};
    return defs_hash_parts(parts, 5, c->destination_is_exchange ? 0xb1u : 0xb2u);
}

static defs_kind defs_kind_of(store_defs_op op)
{
    switch (op) {
    case STORE_DEFS_EXCHANGE_DECLARE:
    case STORE_DEFS_EXCHANGE_DELETE: return DEFS_EXCHANGE;
    case STORE_DEFS_QUEUE_DECLARE:
    case STORE_DEFS_QUEUE_DELETE: return DEFS_QUEUE;
    case STORE_DEFS_BIND:
    case STORE_DEFS_UNBIND: return DEFS_BINDING;
    case STORE_DEFS_QUEUE_IDS: break;
    }
    UNREACHABLE();
}

static bool defs_is_removal(store_defs_op op)
{
    return op == STORE_DEFS_EXCHANGE_DELETE || op == STORE_DEFS_QUEUE_DELETE ||
           op == STORE_DEFS_UNBIND;
}

/* ---- the live set ---- */

static defs_entry *defs_entry_new(const store_defs_change *c)
{
    const amqp_bytes *parts[] = {&c->vhost, &c->name, &c->destination, &c->routing_key, &c->type,
                                 &c->arguments};
    size_t bytes = 0;
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) bytes += parts[i]->len;
    defs_entry *e = calloc(1, sizeof(*e) + bytes);
    ASSERT(e != NULL);
    e->def = *c;
    amqp_bytes *copies[] = {&e->def.vhost, &e->def.name, &e->def.destination,
                            &e->def.routing_key, &e->def.type, &e->def.arguments};
    uint8_t *p = e->bytes;
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
        if (parts[i]->len > 0) memcpy(p, parts[i]->data, parts[i]->len);
        *copies[i] = (amqp_bytes){p, parts[i]->len}; /* never NULL: memcpy takes it */
        p += parts[i]->len;
    }
    return e;
}

static void defs_list_link(defs_list *l, defs_entry *e, defs_entry *after)
{
    e->prev = after;
    e->next = after != NULL ? after->next : l->head;
    if (e->next != NULL) e->next->prev = e;
    else l->tail = e;
    if (after != NULL) after->next = e;
    else l->head = e;
    l->count++;
}

static void defs_list_unlink(defs_list *l, defs_entry *e)
{
    ASSERT(l->count > 0);
    if (e->prev != NULL) e->prev->next = e->next;
    else l->head = e->next;
    if (e->next != NULL) e->next->prev = e->prev;
    else l->tail = e->prev;
    l->count--;
}

static defs_entry *defs_find_object(const store_defs *d, defs_kind kind, amqp_bytes vhost,
                                    amqp_bytes name)
{
    route_map_iter it;
    uint64_t h = defs_ref_hash(kind, vhost, name);
    for (defs_entry *e = route_map_first(&d->objects, h, &it); e; e = route_map_next(&it))
        if (defs_kind_of(e->def.op) == kind && amqp_bytes_equal(e->def.vhost, vhost) &&
            amqp_bytes_equal(e->def.name, name))
            return e;
    return NULL;
}

static bool defs_binding_same(const store_defs_change *a, const store_defs_change *b)
{
    return a->destination_is_exchange == b->destination_is_exchange &&
           amqp_bytes_equal(a->vhost, b->vhost) && amqp_bytes_equal(a->name, b->name) &&
           amqp_bytes_equal(a->destination, b->destination) &&
           amqp_bytes_equal(a->routing_key, b->routing_key) &&
           amqp_bytes_equal(a->arguments, b->arguments);
}

static defs_entry *defs_find_binding(const store_defs *d, const store_defs_change *c)
{
    route_map_iter it;
    uint64_t h = defs_binding_hash(c);
    for (defs_entry *e = route_map_first(&d->bindings, h, &it); e; e = route_map_next(&it))
        if (defs_binding_same(&e->def, c)) return e;
    return NULL;
}

/* The predeclared exchanges ("amq.direct", ...) are durable and never recorded; clients cannot
 * declare other "amq." exchanges. */
static bool defs_exchange_exists(const store_defs *d, amqp_bytes vhost, amqp_bytes name)
{
    if (name.len >= 4 && memcmp(name.data, "amq.", 4) == 0) return true;
    return defs_find_object(d, DEFS_EXCHANGE, vhost, name) != NULL;
}

static void defs_binding_unlink(store_defs *d, defs_entry *b)
{
    bool ok = route_map_remove(&d->bindings, b->hash, b);
    ok = ok && route_map_remove(&d->by_source, b->src_hash, b);
    ok = ok && route_map_remove(&d->by_destination, b->dst_hash, b);
    ASSERT(ok);
    defs_list_unlink(&d->lists[DEFS_BINDING], b);
    free(b);
}

/* Removes every binding stored under hash in map whose end (source or destination) is name. */
static void defs_drop_bindings(store_defs *d, route_map *map, uint64_t hash, bool by_source,
                               defs_kind kind, amqp_bytes vhost, amqp_bytes name)
{
    for (;;) {
        route_map_iter it;
        defs_entry *victim = NULL;
        for (defs_entry *b = route_map_first(map, hash, &it); b && !victim; b = route_map_next(&it)) {
            const store_defs_change *c = &b->def;
            bool kind_ok = by_source || (c->destination_is_exchange == (kind == DEFS_EXCHANGE));
            if (kind_ok && amqp_bytes_equal(c->vhost, vhost) &&
                amqp_bytes_equal(by_source ? c->name : c->destination, name))
                victim = b;
        }
        if (victim == NULL) return;
        defs_binding_unlink(d, victim); /* the map changed: walk again */
    }
}

static bool defs_remove_object(store_defs *d, defs_kind kind, amqp_bytes vhost, amqp_bytes name)
{
    defs_entry *e = defs_find_object(d, kind, vhost, name);
    if (e == NULL) return false;
    uint64_t ref = defs_ref_hash(kind, vhost, name);
    if (kind == DEFS_EXCHANGE) defs_drop_bindings(d, &d->by_source, ref, true, kind, vhost, name);
    defs_drop_bindings(d, &d->by_destination, ref, false, kind, vhost, name);
    bool ok = route_map_remove(&d->objects, e->hash, e);
    ASSERT(ok);
    defs_list_unlink(&d->lists[kind], e);
    free(e);
    return true;
}

/* A declare: a new entry at the end, or new properties in place (the position is kept). */
static void defs_put_object(store_defs *d, const store_defs_change *c)
{
    defs_kind kind = defs_kind_of(c->op);
    ASSERT(kind != DEFS_BINDING);
    defs_entry *old = defs_find_object(d, kind, c->vhost, c->name);
    defs_entry *e = defs_entry_new(c);
    e->hash = defs_ref_hash(kind, c->vhost, c->name);
    defs_list *l = &d->lists[kind];
    if (old != NULL) {
        defs_entry *after = old->prev;
        bool ok = route_map_remove(&d->objects, old->hash, old);
        ASSERT(ok);
        defs_list_unlink(l, old);
        free(old);
        defs_list_link(l, e, after);
    } else {
        defs_list_link(l, e, l->tail);
    }
    route_map_insert(&d->objects, e->hash, e);
    if (kind == DEFS_QUEUE && c->queue_id >= d->queue_id_next) d->queue_id_next = c->queue_id + 1;
}

/* False when an end of the binding is missing. */
static bool defs_put_binding(store_defs *d, const store_defs_change *c)
{
    if (!defs_exchange_exists(d, c->vhost, c->name)) return false;
    if (c->destination_is_exchange ? !defs_exchange_exists(d, c->vhost, c->destination)
                                   : defs_find_object(d, DEFS_QUEUE, c->vhost, c->destination) == NULL)
        return false;
    if (defs_find_binding(d, c) != NULL) return true;
    defs_entry *e = defs_entry_new(c);
    e->hash = defs_binding_hash(c);
    e->src_hash = defs_ref_hash(DEFS_EXCHANGE, c->vhost, c->name);
    e->dst_hash = defs_ref_hash(c->destination_is_exchange ? DEFS_EXCHANGE : DEFS_QUEUE, c->vhost,
                                c->destination);
    route_map_insert(&d->bindings, e->hash, e);
    route_map_insert(&d->by_source, e->src_hash, e);
    route_map_insert(&d->by_destination, e->dst_hash, e);
    defs_list_link(&d->lists[DEFS_BINDING], e, d->lists[DEFS_BINDING].tail);
    return true;
}

/* Applies one change to the live set. False when it makes no sense here (a binding whose ends
 * are missing): replay logs and skips it. Deleting what is missing is fine. */
static bool defs_apply(store_defs *d, const store_defs_change *c)
{
    switch (c->op) {
    case STORE_DEFS_EXCHANGE_DECLARE:
    case STORE_DEFS_QUEUE_DECLARE:
        defs_put_object(d, c);
        return true;
    case STORE_DEFS_EXCHANGE_DELETE:
    case STORE_DEFS_QUEUE_DELETE:
        defs_remove_object(d, defs_kind_of(c->op), c->vhost, c->name);
        return true;
    case STORE_DEFS_BIND:
        return defs_put_binding(d, c);
    case STORE_DEFS_UNBIND: {
        defs_entry *b = defs_find_binding(d, c);
        if (b != NULL) defs_binding_unlink(d, b);
        return true;
    }
    case STORE_DEFS_QUEUE_IDS:
        if (c->queue_id > d->queue_id_next) d->queue_id_next = c->queue_id;
        return true;
    }
    UNREACHABLE();
}

static void defs_free_all(store_defs *d)
{
    for (int k = 0; k < DEFS_KINDS; k++) {
        defs_entry *e = d->lists[k].head;
        while (e != NULL) {
            defs_entry *next = e->next;
            free(e);
            e = next;
        }
        d->lists[k] = (defs_list){0};
    }
    route_map_free(&d->objects);
    route_map_free(&d->bindings);
    route_map_free(&d->by_source);
    route_map_free(&d->by_destination);
}

/* ---- record payload ----
 *   u8 op, u8 flags, u16 zero, u32 queue_shard, u64 queue_id,
 *   u8 lengths of vhost, name, destination, routing key, type; u8[3] zero,
 *   u32 arguments length, u32 zero; then the six byte strings back to back. */

static uint32_t defs_payload_bytes(const store_defs_change *c)
{
    return LIMIT_DEFS_FIXED_BYTES + c->vhost.len + c->name.len + c->destination.len +
           c->routing_key.len + c->type.len + c->arguments.len;
}

static void defs_check_change(const store_defs_change *c)
{
    ASSERT(c->op >= STORE_DEFS_EXCHANGE_DECLARE && c->op <= STORE_DEFS_OP_MAX);
    ASSERT(c->vhost.len <= LIMIT_SHORTSTR_BYTES_MAX && c->name.len <= LIMIT_SHORTSTR_BYTES_MAX);
    ASSERT(c->destination.len <= LIMIT_SHORTSTR_BYTES_MAX && c->type.len <= LIMIT_SHORTSTR_BYTES_MAX);
    ASSERT(c->routing_key.len <= LIMIT_SHORTSTR_BYTES_MAX);
    ASSERT(c->arguments.len <= LIMIT_TOPO_ARGUMENTS_BYTES_MAX);
}

/* Writes c as one record at dst; returns its size. */
static uint32_t defs_encode(const store_defs_change *c, uint64_t seq, uint8_t *dst)
{
    defs_check_change(c);
    uint8_t fixed[LIMIT_DEFS_FIXED_BYTES];
    memset(fixed, 0, sizeof(fixed));
    fixed[0] = (uint8_t)c->op;
    fixed[1] = (uint8_t)((c->durable ? DEFS_F_DURABLE : 0) | (c->auto_delete ? DEFS_F_AUTO_DELETE : 0) |
                         (c->internal ? DEFS_F_INTERNAL : 0) |
                         (c->destination_is_exchange ? DEFS_F_DEST_EXCHANGE : 0));
    store_put_u32(fixed + 4, c->queue_shard);
    store_put_u64(fixed + 8, c->queue_id);
    fixed[16] = (uint8_t)c->vhost.len;
    fixed[17] = (uint8_t)c->name.len;
    fixed[18] = (uint8_t)c->destination.len;
    fixed[19] = (uint8_t)c->routing_key.len;
    fixed[20] = (uint8_t)c->type.len;
    store_put_u32(fixed + 24, c->arguments.len);
    struct iovec iov[] = {
        {fixed, sizeof(fixed)},
        {(void *)c->vhost.data, c->vhost.len},
        {(void *)c->name.data, c->name.len},
        {(void *)c->destination.data, c->destination.len},
        {(void *)c->routing_key.data, c->routing_key.len},
        {(void *)c->type.data, c->type.len},
        {(void *)c->arguments.data, c->arguments.len},
    };
    return store_record_write(dst, STORE_RECORD_DEF, 0, seq, iov, (int)ARRAY_LEN(iov));
}

/* Reads a payload; the slices point into p. False if it is not a change we know. */
static bool defs_decode(const uint8_t *p, uint32_t bytes, store_defs_change *c)
{
    if (bytes < LIMIT_DEFS_FIXED_BYTES) return false;
    memset(c, 0, sizeof(*c));
    if (p[0] < STORE_DEFS_EXCHANGE_DECLARE || p[0] > STORE_DEFS_OP_MAX) return false;
    c->op = (store_defs_op)p[0];
    c->durable = p[1] & DEFS_F_DURABLE;
    c->auto_delete = p[1] & DEFS_F_AUTO_DELETE;
    c->internal = p[1] & DEFS_F_INTERNAL;
    c->destination_is_exchange = p[1] & DEFS_F_DEST_EXCHANGE;
    c->queue_shard = store_get_u32(p + 4);
    c->queue_id = store_get_u64(p + 8);
    uint32_t args_len = store_get_u32(p + 24);
    if (args_len > LIMIT_TOPO_ARGUMENTS_BYTES_MAX) return false;
    amqp_bytes *parts[] = {&c->vhost, &c->name, &c->destination, &c->routing_key, &c->type,
                           &c->arguments};
    uint32_t lens[] = {p[16], p[17], p[18], p[19], p[20], args_len};
    uint32_t off = LIMIT_DEFS_FIXED_BYTES;
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
        if (lens[i] > bytes - off) return false;
        *parts[i] = (amqp_bytes){p + off, lens[i]}; /* never NULL, even when empty */
        off += lens[i];
    }
    return off == bytes;
}

/* ---- file I/O: every errno either handled (the write fails) or fatal ---- */

static void defs_fatal(const char *what, const char *path, int e) __attribute__((noreturn));
static void defs_fatal(const char *what, const char *path, int e)
{
    LOG_ERROR("definitions journal: %s %s: %s", what, path, strerror(e));
    abort();
}

static bool defs_io_error_expected(int e)
{
    switch (e) {
    case EIO:
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EROFS:
    case EPERM:
    case EACCES:
    case ENOMEM:
        return true;
    default:
        return false;
    }
}

static bool defs_pwrite_all(store_defs *d, const char *path, int fd, const uint8_t *buf,
                            size_t len, uint64_t off, store_defs_error *err)
{
    if (d->fail_next_errno != 0) {
        /* Injected (tests): half the bytes reach the file, then the disk "fails". */
        int e = d->fail_next_errno;
        d->fail_next_errno = 0;
        if (len / 2 > 0 && pwrite(fd, buf, len / 2, (off_t)off) < 0)
            LOG_WARN("definitions journal: injected partial write: %s", strerror(errno));
        defs_fail(err, "cannot write %s: %s", path, strerror(e));
        return false;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, buf + done, len - done, (off_t)(off + done));
        if (n >= 0) {
            done += (size_t)n;
            continue;
        }
        int e = errno;
        if (e == EINTR) continue;
        if (!defs_io_error_expected(e)) defs_fatal("write", path, e);
        defs_fail(err, "cannot write %s: %s", path, strerror(e));
        return false;
    }
    return true;
}

static bool defs_sync(const char *path, int fd, store_defs_error *err)
{
    while (fdatasync(fd) != 0) {
        int e = errno;
        if (e == EINTR) continue;
        if (e != EINVAL && !defs_io_error_expected(e)) defs_fatal("fdatasync", path, e);
        defs_fail(err, "cannot sync %s: %s", path, strerror(e));
        return false;
    }
    return true;
}

/* A rename or a new file is durable only once its directory is. */
static bool defs_sync_dir(const store_defs *d, store_defs_error *err)
{
    int fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        defs_fail(err, "cannot open directory %s: %s", d->dir, strerror(errno));
        return false;
    }
    bool ok = defs_sync(d->dir, fd, err);
    close(fd);
    return ok;
}

/* ---- writing ---- */

static uint8_t *defs_buffer(size_t bytes)
{
    uint8_t *buf = malloc(bytes > 0 ? bytes : 1); /* malloc's alignment suits the records' 8 */
    ASSERT(buf != NULL);
    return buf;
}

/* Appends changes as records at `end`, then syncs. On failure the file is cut back. */
static bool defs_append(store_defs *d, const store_defs_change *changes, uint32_t count,
                        store_defs_error *err)
{
    if (d->fd < 0) {
        d->fd = open(d->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
        if (d->fd < 0) {
            defs_fail(err, "cannot create %s: %s", d->path, strerror(errno));
            return false;
        }
        d->dir_synced = false; /* the new name is durable once the directory is */
    }
    size_t bytes = 0;
    for (uint32_t i = 0; i < count; i++) bytes += store_record_bytes(defs_payload_bytes(&changes[i]));
    uint8_t *buf = defs_buffer(bytes);
    size_t off = 0;
    for (uint32_t i = 0; i < count; i++) off += defs_encode(&changes[i], d->seq_next + i, buf + off);
    ASSERT(off == bytes);
    bool ok = defs_pwrite_all(d, d->path, d->fd, buf, bytes, d->end, err) &&
              defs_sync(d->path, d->fd, err) && (d->dir_synced || defs_sync_dir(d, err));
    free(buf);
    if (!ok) {
        if (ftruncate(d->fd, (off_t)d->end) != 0)
            LOG_ERROR("definitions journal: cannot cut %s back to %llu bytes: %s", d->path,
                      (unsigned long long)d->end, strerror(errno));
        d->needs_snapshot = true;
        return false;
    }
    d->dir_synced = true;
    d->end += bytes;
    d->seq_next += count;
    d->file_records += count;
    return true;
}

static size_t defs_snapshot_bytes(const store_defs *d, uint32_t *records)
{
    size_t bytes = store_record_bytes(LIMIT_DEFS_FIXED_BYTES); /* QUEUE_IDS */
    *records = 1;
    for (int k = 0; k < DEFS_KINDS; k++)
        for (const defs_entry *e = d->lists[k].head; e; e = e->next) {
            bytes += store_record_bytes(defs_payload_bytes(&e->def));
            (*records)++;
        }
    return bytes;
}

static void defs_snapshot_encode(const store_defs *d, uint8_t *buf, size_t bytes)
{
    store_defs_change ids = {.op = STORE_DEFS_QUEUE_IDS, .queue_id = d->queue_id_next};
    uint64_t seq = d->seq_next;
    size_t off = defs_encode(&ids, seq++, buf);
    for (int k = 0; k < DEFS_KINDS; k++)
        for (const defs_entry *e = d->lists[k].head; e; e = e->next)
            off += defs_encode(&e->def, seq++, buf + off);
    ASSERT(off == bytes);
}

bool store_defs_compact(store_defs *d, store_defs_error *err)
{
    ASSERT(d != NULL);
    uint32_t records;
    size_t bytes = defs_snapshot_bytes(d, &records);
    uint8_t *buf = defs_buffer(bytes);
    defs_snapshot_encode(d, buf, bytes);
    int fd = open(d->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    bool ok = fd >= 0;
    if (!ok) defs_fail(err, "cannot create %s: %s", d->tmp_path, strerror(errno));
    ok = ok && defs_pwrite_all(d, d->tmp_path, fd, buf, bytes, 0, err) &&
         defs_sync(d->tmp_path, fd, err);
    free(buf);
    if (ok && rename(d->tmp_path, d->path) != 0) {
        defs_fail(err, "cannot rename %s: %s", d->tmp_path, strerror(errno));
        ok = false;
    }
    if (!ok) {
        if (fd >= 0) close(fd);
        if (unlink(d->tmp_path) != 0 && errno != ENOENT)
            LOG_WARN("definitions journal: cannot remove %s: %s", d->tmp_path, strerror(errno));
        return false;
    }
    /* From here the snapshot is the journal, whatever the directory sync says: it holds the same
     * live set as the file it replaced. */
    store_defs_error dir_err;
    d->dir_synced = defs_sync_dir(d, &dir_err);
    if (!d->dir_synced) LOG_WARN("definitions journal: %s", dir_err.text);
    if (d->fd >= 0) close(d->fd);
    d->fd = fd;
    d->end = bytes;
    d->seq_next += records;
    d->file_records = records;
    d->needs_snapshot = false;
    LOG_DEBUG("definitions journal compacted: %u records", records);
    return true;
}

bool store_defs_commit(store_defs *d, const store_defs_change *changes, uint32_t count,
                       store_defs_error *err)
{
    ASSERT(d != NULL && (count == 0 || changes != NULL));
    if (count == 0) return true;
    /* Deletes first: they stay applied even if the write fails (see store/defs.h). */
    for (uint32_t i = 0; i < count; i++) {
        defs_check_change(&changes[i]);
        if (defs_is_removal(changes[i].op)) defs_apply(d, &changes[i]);
    }
    if (d->needs_snapshot && !store_defs_compact(d, err)) return false;
    if (!defs_append(d, changes, count, err)) return false;
    for (uint32_t i = 0; i < count; i++) {
        if (defs_is_removal(changes[i].op)) continue;
        bool ok = defs_apply(d, &changes[i]);
        ASSERT(ok); /* the sequencer binds only what its replica holds, which this set mirrors */
    }
    uint64_t live = (uint64_t)store_defs_live_count(d) + 1u;
    if (d->file_records > d->compact_records_min && d->file_records > 2u * live) {
        store_defs_error cerr;
        if (!store_defs_compact(d, &cerr))
            LOG_WARN("definitions journal: compaction failed (the journal stays as it is): %s",
                     cerr.text);
    }
    return true;
}

/* ---- loading ---- */

static bool defs_read_file(store_defs *d, uint8_t **out, size_t *len, store_defs_error *err)
{
    *out = NULL;
    *len = 0;
    d->fd = open(d->path, O_RDWR | O_CLOEXEC);
    if (d->fd < 0) {
        if (errno == ENOENT) return true;
        defs_fail(err, "cannot open %s: %s", d->path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(d->fd, &st) != 0) {
        defs_fail(err, "cannot stat %s: %s", d->path, strerror(errno));
        return false;
    }
    uint8_t *buf = defs_buffer((size_t)st.st_size);
    size_t done = 0;
    while (done < (size_t)st.st_size) {
        ssize_t n = pread(d->fd, buf + done, (size_t)st.st_size - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            defs_fail(err, "cannot read %s: %s", d->path, n == 0 ? "file shrank" : strerror(errno));
            free(buf);
            return false;
        }
        done += (size_t)n;
    }
    *out = buf;
    *len = done;
    return true;
}

/* The offset of the next whole record at or after from (8-byte steps), or len if none. */
static size_t defs_resync(const uint8_t *buf, size_t len, size_t from)
{
    store_record_view v;
    for (size_t o = from; o + STORE_RECORD_HEADER_BYTES <= len; o += STORE_RECORD_ALIGN_BYTES)
        if (store_record_read(buf + o, len - o, LIMIT_DEFS_PAYLOAD_BYTES_MAX, &v) == STORE_RECORD_OK)
            return o;
    return len;
}

static void defs_replay_record(store_defs *d, const store_record_view *v, size_t off)
{
    store_defs_change c;
    d->stats.records++;
    if (v->seq >= d->seq_next) d->seq_next = v->seq + 1;
    if (v->kind != STORE_RECORD_DEF || !defs_decode(v->payload, v->payload_bytes, &c)) {
        LOG_ERROR("definitions journal: record at offset %zu (kind %u) is not a definition: "
                  "skipped", off, v->kind);
        d->stats.rejected++;
        return;
    }
    if (!defs_apply(d, &c)) {
        LOG_ERROR("definitions journal: binding of '%.*s' to %s '%.*s' in vhost '%.*s' at offset "
                  "%zu names something that does not exist: skipped",
                  (int)c.name.len, (const char *)c.name.data,
                  c.destination_is_exchange ? "exchange" : "queue", (int)c.destination.len,
                  (const char *)c.destination.data, (int)c.vhost.len, (const char *)c.vhost.data,
                  off);
        d->stats.rejected++;
    }
}

/* Replays buf; returns the offset just past the last good record. */
static size_t defs_replay(store_defs *d, const uint8_t *buf, size_t len)
{
    size_t off = 0, good_end = 0;
    while (off < len) {
        store_record_view v;
        store_record_status st = store_record_read(buf + off, len - off, LIMIT_DEFS_PAYLOAD_BYTES_MAX, &v);
        if (st == STORE_RECORD_OK) {
            defs_replay_record(d, &v, off);
            off += v.record_bytes;
            good_end = off;
            continue;
        }
        size_t next = defs_resync(buf, len, off + STORE_RECORD_ALIGN_BYTES);
        if (next == len) break; /* nothing whole follows: a torn tail */
        LOG_ERROR("definitions journal: %zu corrupt bytes at offset %zu of %s skipped", next - off,
                  off, d->path);
        d->stats.corrupt_regions++;
        d->stats.corrupt_bytes += next - off;
        off = next;
    }
    d->stats.torn_bytes = len - good_end;
    return good_end;
}

static bool defs_load(store_defs *d, store_defs_error *err)
{
    if (unlink(d->tmp_path) == 0) {
        LOG_WARN("definitions journal: removed %s left by a compaction cut short", d->tmp_path);
        d->stats.tmp_removed = true;
    } else if (errno != ENOENT) {
        defs_fail(err, "cannot remove %s: %s", d->tmp_path, strerror(errno));
        return false;
    }
    uint8_t *buf;
    size_t len;
    if (!defs_read_file(d, &buf, &len, err)) return false;
    size_t good_end = defs_replay(d, buf, len);
    free(buf);
    d->end = good_end;
    d->file_records = d->stats.records;
    if (good_end < len) {
        LOG_WARN("definitions journal: torn tail of %zu bytes cut off %s", len - good_end, d->path);
        if (ftruncate(d->fd, (off_t)good_end) != 0) {
            defs_fail(err, "cannot truncate %s: %s", d->path, strerror(errno));
            return false;
        }
        if (!defs_sync(d->path, d->fd, err)) return false;
    }
    /* The file may have been created by a run that stopped before syncing its directory. */
    if (d->fd >= 0) d->dir_synced = defs_sync_dir(d, err);
    return d->fd < 0 || d->dir_synced;
}

static bool defs_paths(store_defs *d, const char *dir, store_defs_error *err)
{
    int n1 = snprintf(d->dir, sizeof(d->dir), "%s", dir);
    int n2 = snprintf(d->path, sizeof(d->path), "%s/%s", dir, DEFS_FILE);
    int n3 = snprintf(d->tmp_path, sizeof(d->tmp_path), "%s/%s", dir, DEFS_TMP_FILE);
    if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n3 >= sizeof(d->tmp_path)) {
        defs_fail(err, "data directory path too long: %s", dir);
        return false;
    }
    return true;
}

store_defs *store_defs_open(const store_defs_config *cfg, store_defs_error *err)
{
    ASSERT(cfg != NULL && cfg->dir != NULL);
    store_defs *d = calloc(1, sizeof(*d));
    ASSERT(d != NULL);
    d->fd = -1;
    d->seq_next = 1;
    d->queue_id_next = 1;
    d->compact_records_min = cfg->compact_records_min ? cfg->compact_records_min
                                                      : LIMIT_DEFS_COMPACT_RECORDS_MIN;
    route_map_init(&d->objects);
    route_map_init(&d->bindings);
    route_map_init(&d->by_source);
    route_map_init(&d->by_destination);
    if (!defs_paths(d, cfg->dir, err) || !defs_load(d, err)) {
        store_defs_close(d);
        return NULL;
    }
    if (d->stats.corrupt_regions > 0) {
        /* Write the live set out clean, so the next start does not trip on the same bytes. */
        store_defs_error cerr;
        if (!store_defs_compact(d, &cerr))
            LOG_WARN("definitions journal: cannot rewrite it without its corrupt records: %s",
                     cerr.text);
    }
    LOG_INFO("definitions journal: %u definitions from %llu records of %s", store_defs_live_count(d),
             (unsigned long long)d->stats.records, d->path);
    return d;
}

void store_defs_close(store_defs *d)
{
    if (d == NULL) return;
    if (d->fd >= 0 && close(d->fd) != 0)
        LOG_WARN("definitions journal: close %s: %s", d->path, strerror(errno));
    defs_free_all(d);
    free(d);
}

/* ---- reading the live set ---- */

void store_defs_each(const store_defs *d, store_defs_visit_fn *fn, void *ctx)
{
    ASSERT(d != NULL && fn != NULL);
    for (int k = 0; k < DEFS_KINDS; k++)
        for (const defs_entry *e = d->lists[k].head; e; e = e->next) fn(ctx, &e->def);
}

const store_defs_load_stats *store_defs_stats(const store_defs *d) { return &d->stats; }

uint32_t store_defs_live_count(const store_defs *d)
{
    return d->lists[DEFS_EXCHANGE].count + d->lists[DEFS_QUEUE].count + d->lists[DEFS_BINDING].count;
}

uint64_t store_defs_file_records(const store_defs *d) { return d->file_records; }
uint64_t store_defs_queue_id_next(const store_defs *d) { return d->queue_id_next; }

void store_defs__fail_next_write(store_defs *d, int err_no) { d->fail_next_errno = err_no; }
