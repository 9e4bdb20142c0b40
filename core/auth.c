/*
 * The user store (SASL response parsing is in core/auth_sasl.c).
 *
 * Ownership: one auth_store, opened by the main thread before the shards
 * start and closed after they stop. Between those points nothing writes to
 * it, so the shards read it concurrently without locks. The write calls exist
 * for ringmqctl, which runs while the broker is stopped.
 *
 * Invariants kept by every write call and checked on load:
 * - names, vhosts, tags and patterns hold no control bytes (< 0x20, 0x7f),
 *   so they never contain the tab and newline of the file format nor a NUL;
 * - user names are unique, vhost names are unique, a user has at most one
 *   permission entry per vhost and only for vhosts that exist;
 * - every stored hash decodes to AUTH_HASH_BYTES;
 * - counts stay within LIMIT_USERS_MAX, LIMIT_VHOSTS_MAX, LIMIT_PERMISSIONS_MAX.
 *
 * Files are small and written rarely: each is rewritten whole, atomically
 * (tmp, fsync, rename, fsync dir). The two renames are not one transaction;
 * load therefore drops (with a warning) permissions on vhosts that do not
 * exist rather than refusing to start.
 */
#include "core/auth.h"

#include "core/assert.h"
#include "core/limits.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTH_USERS_FILE       "users"
#define AUTH_VHOSTS_FILE      "vhosts"
#define AUTH_USERS_HEADER     "# ringmq users 1"
#define AUTH_VHOSTS_HEADER    "# ringmq vhosts 1"
#define AUTH_DEFAULT_USER     "guest"
#define AUTH_DEFAULT_PASSWORD "guest"
#define AUTH_DEFAULT_VHOST    "/"

STATIC_ASSERT(AUTH_HASH_BYTES % 3 == 0, "hash text needs no base64 padding");
STATIC_ASSERT(AUTH_HASH_TEXT_BYTES == AUTH_HASH_BYTES / 3 * 4, "hash text length");
STATIC_ASSERT(sizeof(AUTH_USERS_HEADER) + 1 <= 32u && sizeof(AUTH_VHOSTS_HEADER) + 1 <= 32u,
              "headers fit the 32 bytes the file limits allow");

typedef struct {
    char vhost[LIMIT_NAME_BYTES_MAX + 1];
    char configure[LIMIT_PERMISSION_REGEX_BYTES_MAX + 1];
    char write[LIMIT_PERMISSION_REGEX_BYTES_MAX + 1];
    char read[LIMIT_PERMISSION_REGEX_BYTES_MAX + 1];
} auth_permission;

typedef struct {
    char name[LIMIT_USER_NAME_BYTES_MAX + 1];
    size_t name_len;
    char hash[AUTH_HASH_TEXT_BYTES + 1];
    char tags[LIMIT_USER_TAGS_BYTES_MAX + 1];
    auth_permission *perms; /* malloc'd, perms_count entries */
    uint32_t perms_count;
} auth_user;

typedef char auth_name[LIMIT_NAME_BYTES_MAX + 1];

struct auth_store {
    char data_dir[LIMIT_PATH_BYTES_MAX]; /* "" for a store with no directory */
    auth_user *users;                    /* [LIMIT_USERS_MAX] */
    uint32_t users_count;
    uint32_t perms_count; /* sum over users, <= LIMIT_PERMISSIONS_MAX */
    auth_name *vhosts;    /* [LIMIT_VHOSTS_MAX] */
    uint32_t vhosts_count;
    char loopback[LIMIT_LOOPBACK_USERS_MAX][LIMIT_USER_NAME_BYTES_MAX + 1];
    uint32_t loopback_count;
};

static void auth_fail(auth_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void auth_fail(auth_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
}

/* ---- base64 (RFC 4648, standard alphabet, padded) ---- */

static const char auth_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void auth_base64_encode(const uint8_t *in, size_t in_len, char *out, size_t out_size)
{
    ASSERT(out_size >= (in_len + 2) / 3 * 4 + 1);
    size_t o = 0;
    for (size_t i = 0; i < in_len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < in_len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < in_len) v |= in[i + 2];
        out[o++] = auth_b64_alphabet[(v >> 18) & 63];
        out[o++] = auth_b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < in_len ? auth_b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < in_len ? auth_b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
}

static int auth_base64_value(char c)
{
    const char *p = c != '\0' ? strchr(auth_b64_alphabet, c) : NULL;
    return p != NULL ? (int)(p - auth_b64_alphabet) : -1;
}

/* Strict decode: length a multiple of 4, padding only at the end, unused bits zero. Returns
 * the decoded length, or -1 if malformed or longer than out_size. */
static long auth_base64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_size)
{
    if (in_len % 4 != 0) return -1;
    size_t o = 0;
    for (size_t i = 0; i < in_len; i += 4) {
        bool last = i + 4 == in_len;
        size_t pad = 0;
        if (last && in[i + 3] == '=') pad = in[i + 2] == '=' ? 2 : 1;
        uint32_t v = 0;
        for (size_t j = 0; j < 4; j++) {
            int d = j < 4 - pad ? auth_base64_value(in[i + j]) : 0;
            if (d < 0) return -1;
            v = v << 6 | (uint32_t)d;
        }
        if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0)) return -1;
        if (o + 3 - pad > out_size) return -1;
        out[o++] = (uint8_t)(v >> 16);
        if (pad < 2) out[o++] = (uint8_t)(v >> 8);
        if (pad < 1) out[o++] = (uint8_t)v;
    }
    return (long)o;
}

/* ---- Password hashes ---- */

static void auth_digest(const uint8_t salt[AUTH_SALT_BYTES], const char *pass, size_t pass_len,
                        uint8_t digest[SHA256_DIGEST_BYTES])
{
    sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, salt, AUTH_SALT_BYTES);
    sha256_update(&ctx, pass, pass_len);
    sha256_final(&ctx, digest);
}

void auth_password_hash_salted(const uint8_t salt[AUTH_SALT_BYTES], const char *pass,
                               size_t pass_len, char out[AUTH_HASH_TEXT_BYTES + 1])
{
    ASSERT(salt != NULL && out != NULL);
    ASSERT(pass != NULL || pass_len == 0);
    uint8_t raw[AUTH_HASH_BYTES];
    memcpy(raw, salt, AUTH_SALT_BYTES);
    auth_digest(salt, pass, pass_len, raw + AUTH_SALT_BYTES);
    auth_base64_encode(raw, sizeof(raw), out, AUTH_HASH_TEXT_BYTES + 1);
    ASSERT(strlen(out) == AUTH_HASH_TEXT_BYTES);
}

bool auth_password_hash(const char *pass, size_t pass_len, char out[AUTH_HASH_TEXT_BYTES + 1])
{
    uint8_t salt[AUTH_SALT_BYTES];
    ssize_t got;
    do {
        got = getrandom(salt, sizeof(salt), 0);
    } while (got < 0 && errno == EINTR);
    /* Requests of at most 256 bytes are never short once the pool is ready. */
    if (got != (ssize_t)sizeof(salt)) return false;
    auth_password_hash_salted(salt, pass, pass_len, out);
    return true;
}

static bool auth_equal_constant_time(const uint8_t *a, const uint8_t *b, size_t len)
{
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < len; i++) diff |= a[i] ^ b[i];
    return diff == 0;
}

bool auth_password_verify(const char *hash_text, const char *pass, size_t pass_len)
{
    ASSERT(hash_text != NULL);
    ASSERT(pass != NULL || pass_len == 0);
    uint8_t raw[AUTH_HASH_BYTES];
    long raw_len = auth_base64_decode(hash_text, strlen(hash_text), raw, sizeof(raw));
    if (raw_len != (long)AUTH_HASH_BYTES) return false;
    uint8_t digest[SHA256_DIGEST_BYTES];
    auth_digest(raw, pass, pass_len, digest);
    return auth_equal_constant_time(digest, raw + AUTH_SALT_BYTES, SHA256_DIGEST_BYTES);
}

static bool auth_hash_is_valid(const char *hash_text)
{
    uint8_t raw[AUTH_HASH_BYTES];
    return auth_base64_decode(hash_text, strlen(hash_text), raw, sizeof(raw)) ==
           (long)AUTH_HASH_BYTES;
}

/* ---- Validation ---- */

/* A name, tag list or pattern: at most max bytes, no control bytes, non-empty unless allowed. */
static bool auth_text_check(const char *what, const char *text, size_t max, bool empty_ok,
                            auth_error *err)
{
    ASSERT(what != NULL && text != NULL);
    size_t len = strlen(text);
    if (len == 0 && !empty_ok) {
        auth_fail(err, "%s must not be empty", what);
        return false;
    }
    if (len > max) {
        auth_fail(err, "%s is %zu bytes, more than the %zu allowed", what, len, max);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f) {
            auth_fail(err, "%s '%.*s' holds control character 0x%02x", what, (int)i, text, c);
            return false;
        }
    }
    return true;
}

static bool auth_tags_check(const char *tags, auth_error *err)
{
    if (!auth_text_check("tags", tags, LIMIT_USER_TAGS_BYTES_MAX, true, err)) return false;
    bool tag_empty = true;
    for (const char *p = tags; *p != '\0'; p++) {
        char c = *p;
        if (c == ',') {
            if (tag_empty) break;
            tag_empty = true;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok) {
            auth_fail(err,
                      "tags '%s': '%c' is not allowed (tags are [A-Za-z0-9_.-]+, "
                      "comma-separated)",
                      tags, c);
            return false;
        }
        tag_empty = false;
    }
    if (tags[0] != '\0' && tag_empty) {
        auth_fail(err, "tags '%s': empty tag", tags);
        return false;
    }
    return true;
}

static bool auth_password_check(const char *pass, auth_error *err)
{
    size_t len = strlen(pass);
    if (len == 0) {
        auth_fail(err, "password must not be empty");
        return false;
    }
    if (len > LIMIT_PASSWORD_BYTES_MAX) {
        auth_fail(err, "password is %zu bytes, more than the %u allowed", len,
                  LIMIT_PASSWORD_BYTES_MAX);
        return false;
    }
    return true;
}

/* ---- Lookup ---- */

static auth_user *auth_find_user(const auth_store *store, const char *user, size_t user_len)
{
    ASSERT(store != NULL);
    ASSERT(user != NULL || user_len == 0);
    ASSERT(store->users_count <= LIMIT_USERS_MAX);
    for (uint32_t i = 0; i < store->users_count; i++) {
        auth_user *u = &store->users[i];
        if (u->name_len == user_len && memcmp(u->name, user, user_len) == 0) return u;
    }
    return NULL;
}

static int64_t auth_find_vhost(const auth_store *store, const char *vhost, size_t vhost_len)
{
    ASSERT(store != NULL);
    ASSERT(vhost != NULL || vhost_len == 0);
    for (uint32_t i = 0; i < store->vhosts_count; i++) {
        const char *v = store->vhosts[i];
        if (strlen(v) == vhost_len && memcmp(v, vhost, vhost_len) == 0) return i;
    }
    return -1;
}

static auth_permission *auth_find_permission(const auth_user *u, const char *vhost,
                                             size_t vhost_len)
{
    for (uint32_t i = 0; i < u->perms_count; i++) {
        auth_permission *p = &u->perms[i];
        if (strlen(p->vhost) == vhost_len && memcmp(p->vhost, vhost, vhost_len) == 0) return p;
    }
    return NULL;
}

bool auth_user_exists(const auth_store *store, const char *user, size_t user_len)
{
    return auth_find_user(store, user, user_len) != NULL;
}

bool auth_vhost_exists(const auth_store *store, const char *vhost, size_t vhost_len)
{
    return auth_find_vhost(store, vhost, vhost_len) >= 0;
}

bool auth_check_password(const auth_store *store, const char *user, size_t user_len,
                         const char *pass, size_t pass_len)
{
    ASSERT(store != NULL);
    ASSERT(pass != NULL || pass_len == 0);
    /* RabbitMQ refuses empty passwords outright. */
    if (pass_len == 0 || pass_len > LIMIT_PASSWORD_BYTES_MAX) return false;
    const auth_user *u = auth_find_user(store, user, user_len);
    if (u == NULL) {
        /* Hash anyway so an unknown user costs what a wrong password does. */
        static const uint8_t salt[AUTH_SALT_BYTES] = {0};
        char ignored[AUTH_HASH_TEXT_BYTES + 1];
        auth_password_hash_salted(salt, pass, pass_len, ignored);
        return false;
    }
    return auth_password_verify(u->hash, pass, pass_len);
}

bool auth_user_can_access_vhost(const auth_store *store, const char *user, size_t user_len,
                                const char *vhost, size_t vhost_len)
{
    const auth_user *u = auth_find_user(store, user, user_len);
    if (u == NULL) return false;
    /* Permissions exist only for existing vhosts (module invariant). */
    return auth_find_permission(u, vhost, vhost_len) != NULL;
}

bool auth_user_has_tag(const auth_store *store, const char *user, size_t user_len, const char *tag)
{
    ASSERT(tag != NULL);
    const auth_user *u = auth_find_user(store, user, user_len);
    if (u == NULL) return false;
    size_t tag_len = strlen(tag);
    for (const char *p = u->tags; *p != '\0';) {
        const char *end = strchrnul(p, ',');
        if ((size_t)(end - p) == tag_len && memcmp(p, tag, tag_len) == 0) return true;
        p = *end == ',' ? end + 1 : end;
    }
    return false;
}

bool auth_user_is_loopback_only(const auth_store *store, const char *user, size_t user_len)
{
    ASSERT(store != NULL);
    ASSERT(store->loopback_count <= LIMIT_LOOPBACK_USERS_MAX);
    for (uint32_t i = 0; i < store->loopback_count; i++) {
        const char *name = store->loopback[i];
        if (strlen(name) == user_len && memcmp(name, user, user_len) == 0) return true;
    }
    return false;
}

bool auth_store_set_loopback_users(auth_store *store, const char *const *users,
                                   uint32_t users_count, auth_error *err)
{
    ASSERT(store != NULL);
    ASSERT(users != NULL || users_count == 0);
    if (users_count > LIMIT_LOOPBACK_USERS_MAX) {
        auth_fail(err, "%u loopback users, more than the %u allowed", users_count,
                  LIMIT_LOOPBACK_USERS_MAX);
        return false;
    }
    for (uint32_t i = 0; i < users_count; i++) {
        if (!auth_text_check("user name", users[i], LIMIT_USER_NAME_BYTES_MAX, false, err))
            return false;
    }
    for (uint32_t i = 0; i < users_count; i++) {
        snprintf(store->loopback[i], sizeof(store->loopback[i]), "%s", users[i]);
    }
    store->loopback_count = users_count;
    return true;
}

/* ---- Write side ---- */

static auth_user *auth_user_lookup(auth_store *store, const char *user, auth_error *err)
{
    auth_user *u = auth_find_user(store, user, strlen(user));
    if (u == NULL) auth_fail(err, "no such user '%s'", user);
    return u;
}

/* Adds a user with a given, already-valid hash (load and auth_user_add). */
static bool auth_user_insert(auth_store *store, const char *user, const char *hash,
                             const char *tags, auth_error *err)
{
    ASSERT(auth_hash_is_valid(hash));
    if (!auth_text_check("user name", user, LIMIT_USER_NAME_BYTES_MAX, false, err)) return false;
    if (!auth_tags_check(tags, err)) return false;
    if (auth_find_user(store, user, strlen(user)) != NULL) {
        auth_fail(err, "user '%s' already exists", user);
        return false;
    }
    if (store->users_count == LIMIT_USERS_MAX) {
        auth_fail(err, "cannot add user '%s': the store holds the most users allowed (%u)", user,
                  LIMIT_USERS_MAX);
        return false;
    }
    auth_user *u = &store->users[store->users_count++];
    memset(u, 0, sizeof(*u));
    u->name_len = strlen(user);
    memcpy(u->name, user, u->name_len + 1);
    memcpy(u->hash, hash, AUTH_HASH_TEXT_BYTES + 1);
    snprintf(u->tags, sizeof(u->tags), "%s", tags);
    return true;
}

bool auth_user_add(auth_store *store, const char *user, const char *pass, auth_error *err)
{
    ASSERT(store != NULL && user != NULL && pass != NULL);
    if (!auth_password_check(pass, err)) return false;
    char hash[AUTH_HASH_TEXT_BYTES + 1];
    if (!auth_password_hash(pass, strlen(pass), hash)) {
        auth_fail(err, "getrandom: %s", strerror(errno));
        return false;
    }
    return auth_user_insert(store, user, hash, "", err);
}

bool auth_user_delete(auth_store *store, const char *user, auth_error *err)
{
    ASSERT(store != NULL && user != NULL);
    auth_user *u = auth_user_lookup(store, user, err);
    if (u == NULL) return false;
    ASSERT(store->perms_count >= u->perms_count);
    store->perms_count -= u->perms_count;
    free(u->perms);
    size_t index = (size_t)(u - store->users);
    memmove(u, u + 1, (store->users_count - index - 1) * sizeof(*u));
    store->users_count--;
    return true;
}

bool auth_user_change_password(auth_store *store, const char *user, const char *pass,
                               auth_error *err)
{
    ASSERT(store != NULL && user != NULL && pass != NULL);
    auth_user *u = auth_user_lookup(store, user, err);
    if (u == NULL || !auth_password_check(pass, err)) return false;
    if (!auth_password_hash(pass, strlen(pass), u->hash)) {
        auth_fail(err, "getrandom: %s", strerror(errno));
        return false;
    }
    return true;
}

bool auth_user_set_tags(auth_store *store, const char *user, const char *tags, auth_error *err)
{
    ASSERT(store != NULL && user != NULL && tags != NULL);
    auth_user *u = auth_user_lookup(store, user, err);
    if (u == NULL || !auth_tags_check(tags, err)) return false;
    snprintf(u->tags, sizeof(u->tags), "%s", tags);
    return true;
}

bool auth_permissions_set(auth_store *store, const char *user, const char *vhost,
                          const char *configure, const char *write, const char *read,
                          auth_error *err)
{
    ASSERT(store != NULL && user != NULL && vhost != NULL);
    ASSERT(configure != NULL && write != NULL && read != NULL);
    auth_user *u = auth_user_lookup(store, user, err);
    if (u == NULL) return false;
    if (!auth_vhost_exists(store, vhost, strlen(vhost))) {
        auth_fail(err, "no such vhost '%s'", vhost);
        return false;
    }
    const size_t max = LIMIT_PERMISSION_REGEX_BYTES_MAX;
    if (!auth_text_check("configure pattern", configure, max, true, err) ||
        !auth_text_check("write pattern", write, max, true, err) ||
        !auth_text_check("read pattern", read, max, true, err))
        return false;
    auth_permission *p = auth_find_permission(u, vhost, strlen(vhost));
    if (p == NULL) {
        if (store->perms_count == LIMIT_PERMISSIONS_MAX) {
            auth_fail(err, "the store holds the most permission entries allowed (%u)",
                      LIMIT_PERMISSIONS_MAX);
            return false;
        }
        auth_permission *grown = realloc(u->perms, (u->perms_count + 1) * sizeof(*grown));
        if (grown == NULL) {
            auth_fail(err, "out of memory");
            return false;
        }
        u->perms = grown;
        p = &u->perms[u->perms_count++];
        store->perms_count++;
        snprintf(p->vhost, sizeof(p->vhost), "%s", vhost);
    }
    snprintf(p->configure, sizeof(p->configure), "%s", configure);
    snprintf(p->write, sizeof(p->write), "%s", write);
    snprintf(p->read, sizeof(p->read), "%s", read);
    return true;
}

static void auth_permission_remove(auth_store *store, auth_user *u, auth_permission *p)
{
    ASSERT(p >= u->perms && p < u->perms + u->perms_count);
    ASSERT(store->perms_count > 0);
    size_t index = (size_t)(p - u->perms);
    memmove(p, p + 1, (u->perms_count - index - 1) * sizeof(*p));
    u->perms_count--;
    store->perms_count--;
}

bool auth_permissions_clear(auth_store *store, const char *user, const char *vhost, auth_error *err)
{
    ASSERT(store != NULL && user != NULL && vhost != NULL);
    auth_user *u = auth_user_lookup(store, user, err);
    if (u == NULL) return false;
    if (!auth_vhost_exists(store, vhost, strlen(vhost))) {
        auth_fail(err, "no such vhost '%s'", vhost);
        return false;
    }
    auth_permission *p = auth_find_permission(u, vhost, strlen(vhost));
    /* Like rabbitmqctl, clearing permissions that are not there succeeds. */
    if (p != NULL) auth_permission_remove(store, u, p);
    return true;
}

bool auth_vhost_add(auth_store *store, const char *vhost, auth_error *err)
{
    ASSERT(store != NULL && vhost != NULL);
    if (!auth_text_check("vhost name", vhost, LIMIT_NAME_BYTES_MAX, false, err)) return false;
    if (auth_vhost_exists(store, vhost, strlen(vhost))) {
        auth_fail(err, "vhost '%s' already exists", vhost);
        return false;
    }
    if (store->vhosts_count == LIMIT_VHOSTS_MAX) {
        auth_fail(err, "cannot add vhost '%s': the store holds the most vhosts allowed (%u)", vhost,
                  LIMIT_VHOSTS_MAX);
        return false;
    }
    snprintf(store->vhosts[store->vhosts_count++], sizeof(auth_name), "%s", vhost);
    return true;
}

bool auth_vhost_delete(auth_store *store, const char *vhost, auth_error *err)
{
    ASSERT(store != NULL && vhost != NULL);
    int64_t index = auth_find_vhost(store, vhost, strlen(vhost));
    if (index < 0) {
        auth_fail(err, "no such vhost '%s'", vhost);
        return false;
    }
    for (uint32_t i = 0; i < store->users_count; i++) {
        auth_user *u = &store->users[i];
        auth_permission *p = auth_find_permission(u, vhost, strlen(vhost));
        if (p != NULL) auth_permission_remove(store, u, p);
    }
    memmove(&store->vhosts[index], &store->vhosts[index + 1],
            (store->vhosts_count - (uint32_t)index - 1) * sizeof(auth_name));
    store->vhosts_count--;
    return true;
}

/* ---- Listing ---- */

uint32_t auth_users_count(const auth_store *store)
{
    return store->users_count;
}

auth_user_view auth_user_at(const auth_store *store, uint32_t user_index)
{
    ASSERT(user_index < store->users_count);
    const auth_user *u = &store->users[user_index];
    return (auth_user_view){.name = u->name, .tags = u->tags, .permissions_count = u->perms_count};
}

auth_permission_view auth_permission_at(const auth_store *store, uint32_t user_index,
                                        uint32_t permission_index)
{
    ASSERT(user_index < store->users_count);
    const auth_user *u = &store->users[user_index];
    ASSERT(permission_index < u->perms_count);
    const auth_permission *p = &u->perms[permission_index];
    return (auth_permission_view){
        .vhost = p->vhost, .configure = p->configure, .write = p->write, .read = p->read};
}

uint32_t auth_vhosts_count(const auth_store *store)
{
    return store->vhosts_count;
}

const char *auth_vhost_at(const auth_store *store, uint32_t vhost_index)
{
    ASSERT(vhost_index < store->vhosts_count);
    return store->vhosts[vhost_index];
}

/* ---- Files ---- */

static bool auth_path(char *out, size_t out_size, const char *dir, const char *name,
                      const char *suffix, auth_error *err)
{
    int n = snprintf(out, out_size, "%s/%s%s", dir, name, suffix);
    if (n < 0 || (size_t)n >= out_size) {
        auth_fail(err, "path '%s/%s%s' is too long", dir, name, suffix);
        return false;
    }
    return true;
}

typedef enum { AUTH_READ_OK, AUTH_READ_MISSING, AUTH_READ_ERROR } auth_read_result;

/* Reads all of fd, expected to be size bytes, into buf. Returns 0 or an errno value. */
static int auth_read_all(int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len < size) {
        ssize_t got = read(fd, buf + len, size - len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return errno;
        if (got == 0) return EIO; /* the file shrank under us */
        len += (size_t)got;
    }
    return 0;
}

/* Reads a whole file of at most size_max bytes into a NUL-terminated malloc'd buffer. */
static auth_read_result auth_file_read(const char *path, size_t size_max, char **out,
                                       size_t *out_len, auth_error *err)
{
    ASSERT(path != NULL && out != NULL && out_len != NULL);
    ASSERT(size_max > 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return AUTH_READ_MISSING;
        auth_fail(err, "cannot open %s: %s", path, strerror(errno));
        return AUTH_READ_ERROR;
    }
    struct stat st;
    char *buf = NULL;
    int read_errno = 0;
    if (fstat(fd, &st) != 0) {
        auth_fail(err, "cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > size_max) {
        auth_fail(err, "%s: not a regular file of at most %zu bytes", path, size_max);
    } else if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        auth_fail(err, "%s: out of memory", path);
    } else if ((read_errno = auth_read_all(fd, buf, (size_t)st.st_size)) != 0) {
        auth_fail(err, "cannot read %s: %s", path, strerror(read_errno));
        free(buf);
        buf = NULL;
    } else {
        buf[st.st_size] = '\0';
        *out = buf;
        *out_len = (size_t)st.st_size;
    }
    close(fd);
    return buf != NULL ? AUTH_READ_OK : AUTH_READ_ERROR;
}

static bool auth_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t put = write(fd, data, len);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) return false;
        data += put;
        len -= (size_t)put;
    }
    return true;
}

/* Replaces dir/name with data: write dir/name.tmp, fsync, rename, fsync dir. */
static bool auth_file_write_atomic(const char *dir, const char *name, const char *data, size_t len,
                                   auth_error *err)
{
    ASSERT(dir != NULL && dir[0] != '\0' && name != NULL);
    ASSERT(data != NULL || len == 0);
    char tmp[LIMIT_PATH_BYTES_MAX + 16], path[LIMIT_PATH_BYTES_MAX + 16];
    if (!auth_path(tmp, sizeof(tmp), dir, name, ".tmp", err) ||
        !auth_path(path, sizeof(path), dir, name, "", err))
        return false;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600); /* hashes: owner only */
    if (fd < 0) {
        auth_fail(err, "cannot create %s: %s", tmp, strerror(errno));
        return false;
    }
    const char *failed = NULL;
    if (!auth_write_all(fd, data, len))
        failed = "write";
    else if (fsync(fd) != 0)
        failed = "fsync";
    int saved_errno = errno;
    if (close(fd) != 0 && failed == NULL) {
        failed = "close";
        saved_errno = errno;
    }
    if (failed == NULL && rename(tmp, path) != 0) {
        failed = "rename";
        saved_errno = errno;
    }
    if (failed != NULL) {
        auth_fail(err, "cannot save %s: %s: %s", path, failed, strerror(saved_errno));
        unlink(tmp);
        return false;
    }
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || fsync(dir_fd) != 0) {
        auth_fail(err, "cannot fsync directory %s: %s", dir, strerror(errno));
        if (dir_fd >= 0) close(dir_fd);
        return false;
    }
    close(dir_fd);
    return true;
}

/* Splits off the next tab-separated field of a NUL-terminated line; NULL at its end. */
static char *auth_field_next(char **cursor)
{
    char *field = *cursor;
    if (field == NULL) return NULL;
    char *tab = strchr(field, '\t');
    if (tab != NULL) *tab = '\0';
    *cursor = tab != NULL ? tab + 1 : NULL;
    return field;
}

/* Calls line_fn on each line after the header, NUL-terminated in place. */
static bool auth_parse_lines(auth_store *store, char *text, size_t len, const char *path,
                             const char *header,
                             bool (*line_fn)(auth_store *, char *, auth_error *), auth_error *err)
{
    ASSERT(text != NULL && text[len] == '\0');
    ASSERT(header != NULL && line_fn != NULL);
    if (memchr(text, '\0', len) != NULL) {
        auth_fail(err, "%s: holds a NUL byte", path);
        return false;
    }
    char *end = text + len;
    uint32_t line_no = 0;
    for (char *line = text; line < end; line_no++) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (nl == NULL) {
            auth_fail(err, "%s:%u: last line has no newline (truncated file?)", path, line_no + 1);
            return false;
        }
        *nl = '\0';
        auth_error why;
        if (line_no == 0 && strcmp(line, header) != 0) {
            auth_fail(err, "%s:1: expected the header '%s'", path, header);
            return false;
        }
        if (line_no > 0 && !line_fn(store, line, &why)) {
            auth_fail(err, "%s:%u: %s", path, line_no + 1, why.text);
            return false;
        }
        line = nl + 1;
    }
    if (line_no == 0) {
        auth_fail(err, "%s: empty file, expected the header '%s'", path, header);
        return false;
    }
    return true;
}

static bool auth_parse_vhost_line(auth_store *store, char *line, auth_error *err)
{
    return auth_vhost_add(store, line, err);
}

/* name TAB hash TAB tags { TAB vhost TAB configure TAB write TAB read } */
static bool auth_parse_user_line(auth_store *store, char *line, auth_error *err)
{
    char *cursor = line;
    char *name = auth_field_next(&cursor);
    char *hash = auth_field_next(&cursor);
    char *tags = auth_field_next(&cursor);
    if (tags == NULL) {
        auth_fail(err, "expected name, password hash and tags separated by tabs");
        return false;
    }
    if (!auth_hash_is_valid(hash)) {
        auth_fail(err, "user '%s': malformed password hash", name);
        return false;
    }
    if (!auth_user_insert(store, name, hash, tags, err)) return false;
    ASSERT(store->users_count > 0);
    ASSERT(store->users[store->users_count - 1].perms_count == 0);
    for (;;) {
        char *vhost = auth_field_next(&cursor);
        if (vhost == NULL) return true;
        char *configure = auth_field_next(&cursor);
        char *write = auth_field_next(&cursor);
        char *read = auth_field_next(&cursor);
        if (read == NULL) {
            auth_fail(err, "user '%s': permission needs vhost, configure, write and read", name);
            return false;
        }
        auth_user *u = &store->users[store->users_count - 1];
        if (auth_find_permission(u, vhost, strlen(vhost)) != NULL) {
            auth_fail(err, "user '%s': vhost '%s' listed twice", name, vhost);
            return false;
        }
        if (!auth_vhost_exists(store, vhost, strlen(vhost))) {
            /* A save interrupted between the two renames can leave this behind. */
            LOG_WARN("auth: user '%s': dropping permissions on missing vhost '%.255s'", name,
                     vhost);
            continue;
        }
        if (!auth_permissions_set(store, name, vhost, configure, write, read, err)) return false;
    }
}

/* ---- Open, save, close ---- */

static auth_store *auth_store_alloc(const char *data_dir, auth_error *err)
{
    if (strlen(data_dir) >= LIMIT_PATH_BYTES_MAX) {
        auth_fail(err, "data directory path is longer than %u bytes", LIMIT_PATH_BYTES_MAX - 1);
        return NULL;
    }
    auth_store *store = calloc(1, sizeof(*store));
    if (store != NULL) {
        store->users = calloc(LIMIT_USERS_MAX, sizeof(*store->users));
        store->vhosts = calloc(LIMIT_VHOSTS_MAX, sizeof(*store->vhosts));
    }
    if (store == NULL || store->users == NULL || store->vhosts == NULL) {
        auth_store_close(store);
        auth_fail(err, "out of memory");
        return NULL;
    }
    snprintf(store->data_dir, sizeof(store->data_dir), "%s", data_dir);
    snprintf(store->loopback[0], sizeof(store->loopback[0]), "%s", AUTH_DEFAULT_USER);
    store->loopback_count = 1;
    return store;
}

/* RabbitMQ's first-start defaults: vhost "/", guest/guest, administrator, full access. */
static bool auth_store_add_defaults(auth_store *store, auth_error *err)
{
    ASSERT(store->users_count == 0 && store->vhosts_count == 0);
    const char *v = AUTH_DEFAULT_VHOST, *u = AUTH_DEFAULT_USER;
    bool ok = auth_vhost_add(store, v, err) &&
              auth_user_add(store, u, AUTH_DEFAULT_PASSWORD, err) &&
              auth_user_set_tags(store, u, "administrator", err) &&
              auth_permissions_set(store, u, v, ".*", ".*", ".*", err);
    ASSERT(!ok || store->users_count == 1);
    return ok;
}

auth_store *auth_store_open_defaults(auth_error *err)
{
    auth_store *store = auth_store_alloc("", err);
    if (store != NULL && !auth_store_add_defaults(store, err)) {
        auth_store_close(store);
        return NULL;
    }
    return store;
}

static bool auth_store_load(auth_store *store, char *users_text, size_t users_len,
                            const char *users_path, auth_error *err)
{
    char vhosts_path[LIMIT_PATH_BYTES_MAX + 16];
    if (!auth_path(vhosts_path, sizeof(vhosts_path), store->data_dir, AUTH_VHOSTS_FILE, "", err))
        return false;
    char *vhosts_text = NULL;
    size_t vhosts_len = 0;
    auth_read_result r = auth_file_read(vhosts_path, LIMIT_AUTH_VHOSTS_FILE_BYTES_MAX, &vhosts_text,
                                        &vhosts_len, err);
    if (r == AUTH_READ_MISSING)
        auth_fail(err, "%s is missing (but %s exists)", vhosts_path, users_path);
    if (r != AUTH_READ_OK) return false;
    bool ok = auth_parse_lines(store, vhosts_text, vhosts_len, vhosts_path, AUTH_VHOSTS_HEADER,
                               auth_parse_vhost_line, err) &&
              auth_parse_lines(store, users_text, users_len, users_path, AUTH_USERS_HEADER,
                               auth_parse_user_line, err);
    free(vhosts_text);
    return ok;
}

auth_store *auth_store_open(const char *data_dir, auth_error *err)
{
    ASSERT(data_dir != NULL && err != NULL);
    /* Without this check a mistyped directory would look like a first start. */
    struct stat st;
    if (stat(data_dir, &st) != 0) {
        auth_fail(err, "data directory %s: %s", data_dir, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        auth_fail(err, "data directory %s: not a directory", data_dir);
        return NULL;
    }
    auth_store *store = auth_store_alloc(data_dir, err);
    if (store == NULL) return NULL;

    char users_path[LIMIT_PATH_BYTES_MAX + 16];
    char *users_text = NULL;
    size_t users_len = 0;
    auth_read_result r = AUTH_READ_ERROR;
    if (auth_path(users_path, sizeof(users_path), data_dir, AUTH_USERS_FILE, "", err))
        r = auth_file_read(users_path, LIMIT_AUTH_USERS_FILE_BYTES_MAX, &users_text, &users_len,
                           err);
    bool ok = false;
    if (r == AUTH_READ_MISSING) {
        /* First start. The users file is written last, so its absence also covers a first
         * start that crashed half-way: any vhosts file is overwritten. */
        ok = auth_store_add_defaults(store, err) && auth_store_save(store, err);
        if (ok)
            LOG_INFO("auth: created %s with the default user '%s'", users_path, AUTH_DEFAULT_USER);
    } else if (r == AUTH_READ_OK) {
        ok = auth_store_load(store, users_text, users_len, users_path, err);
        free(users_text);
    }
    if (!ok) {
        auth_store_close(store);
        return NULL;
    }
    ASSERT(store->users_count <= LIMIT_USERS_MAX && store->vhosts_count <= LIMIT_VHOSTS_MAX);
    return store;
}

static void auth_format_users(const auth_store *store, FILE *out)
{
    fprintf(out, "%s\n", AUTH_USERS_HEADER);
    for (uint32_t i = 0; i < store->users_count; i++) {
        const auth_user *u = &store->users[i];
        fprintf(out, "%s\t%s\t%s", u->name, u->hash, u->tags);
        for (uint32_t j = 0; j < u->perms_count; j++) {
            const auth_permission *p = &u->perms[j];
            fprintf(out, "\t%s\t%s\t%s\t%s", p->vhost, p->configure, p->write, p->read);
        }
        fputc('\n', out);
    }
}

static void auth_format_vhosts(const auth_store *store, FILE *out)
{
    fprintf(out, "%s\n", AUTH_VHOSTS_HEADER);
    for (uint32_t i = 0; i < store->vhosts_count; i++) fprintf(out, "%s\n", store->vhosts[i]);
}

static bool auth_save_file(const auth_store *store, const char *name,
                           void (*format)(const auth_store *, FILE *), auth_error *err)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL) {
        auth_fail(err, "out of memory");
        return false;
    }
    format(store, out);
    bool ok = !ferror(out);
    if (fclose(out) != 0) ok = false;
    if (!ok) auth_fail(err, "out of memory");
    ok = ok && auth_file_write_atomic(store->data_dir, name, text, len, err);
    free(text);
    return ok;
}

bool auth_store_save(auth_store *store, auth_error *err)
{
    ASSERT(store != NULL && err != NULL);
    ASSERT(store->perms_count <= LIMIT_PERMISSIONS_MAX);
    if (store->data_dir[0] == '\0') {
        auth_fail(err, "this store has no data directory");
        return false;
    }
    /* vhosts first: a crash between the renames leaves at worst permissions on a missing
     * vhost, which load drops; and a first start is complete only once users exists. */
    return auth_save_file(store, AUTH_VHOSTS_FILE, auth_format_vhosts, err) &&
           auth_save_file(store, AUTH_USERS_FILE, auth_format_users, err);
}

void auth_store_close(auth_store *store)
{
    if (store == NULL) return;
    if (store->users != NULL) {
        for (uint32_t i = 0; i < store->users_count; i++) free(store->users[i].perms);
        /* The hashes are not secrets, but there is no reason to leave them around. */
        explicit_bzero(store->users, LIMIT_USERS_MAX * sizeof(*store->users));
    }
    free(store->users);
    free(store->vhosts);
    free(store);
}
