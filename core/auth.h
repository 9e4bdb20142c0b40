/*
 * Users, virtual hosts and SASL credentials.
 *
 * The store lives in the data directory as two text files, `users` and
 * `vhosts` (format in docs/users.md). The broker opens it once at start-up,
 * before the shards start; from then on it is read-only and any shard may
 * call the const functions below concurrently without locks. Writes
 * (auth_user_add ... auth_store_save) are for ringmqctl while the broker is
 * stopped; there is no live management path yet.
 *
 * Passwords are hashed like RabbitMQ's rabbit_password_hashing_sha256:
 * base64(salt ++ SHA-256(salt ++ password)) with a 4-byte random salt.
 *
 * The SASL helpers are pure functions over byte spans: they return slices of
 * the response they were given, never copies.
 */
#ifndef RINGMQ_CORE_AUTH_H
#define RINGMQ_CORE_AUTH_H

#include "core/sha256.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_SALT_BYTES      4u
#define AUTH_HASH_BYTES      (AUTH_SALT_BYTES + SHA256_DIGEST_BYTES) /* salt ++ digest */
#define AUTH_HASH_TEXT_BYTES 48u /* base64 of AUTH_HASH_BYTES, no padding needed */

/* Error text for the operator, e.g. "user 'bob' already exists". */
typedef struct {
    char text[512];
} auth_error;

typedef struct auth_store auth_store;

/* ---- Password hashes ---- */

/* Hashes with a fresh salt from getrandom(2); out gets AUTH_HASH_TEXT_BYTES chars and a NUL.
 * Returns false only if the kernel gave no random bytes. */
bool auth_password_hash(const char *pass, size_t pass_len, char out[AUTH_HASH_TEXT_BYTES + 1]);
/* The same with a given salt (tests, and the fixed-time path for unknown users). */
void auth_password_hash_salted(const uint8_t salt[AUTH_SALT_BYTES], const char *pass,
                               size_t pass_len, char out[AUTH_HASH_TEXT_BYTES + 1]);
/* True if pass matches hash_text; compares the digests in constant time. A malformed hash_text
 * never matches. */
bool auth_password_verify(const char *hash_text, const char *pass, size_t pass_len);

/* ---- The store ---- */

/* Reads data_dir/users and data_dir/vhosts. If there is no users file (first start), creates
 * the defaults -- vhost "/" and user guest/guest, tag administrator, full access to "/" -- and
 * saves them. Returns NULL and fills err on I/O errors and malformed files. data_dir must
 * exist. */
auth_store *auth_store_open(const char *data_dir, auth_error *err);
/* A store with the defaults and no directory (tests); auth_store_save then fails. */
auth_store *auth_store_open_defaults(auth_error *err);
void auth_store_close(auth_store *store);
/* Writes both files atomically (tmp, fsync, rename, fsync dir). */
bool auth_store_save(auth_store *store, auth_error *err);

/* Read side: safe from any thread once the store is open. Lengths because SASL strings are
 * not NUL-terminated and may hold NULs (which never match). */
bool auth_check_password(const auth_store *store, const char *user, size_t user_len,
                         const char *pass, size_t pass_len);
bool auth_user_exists(const auth_store *store, const char *user, size_t user_len);
bool auth_user_can_access_vhost(const auth_store *store, const char *user, size_t user_len,
                                const char *vhost, size_t vhost_len);
bool auth_vhost_exists(const auth_store *store, const char *vhost, size_t vhost_len);
bool auth_user_has_tag(const auth_store *store, const char *user, size_t user_len, const char *tag);
/* RabbitMQ's loopback_users: these users may log in only from a loopback address. The
 * default list is "guest". */
bool auth_user_is_loopback_only(const auth_store *store, const char *user, size_t user_len);
/* Replaces the loopback list (config, before the shards start). */
bool auth_store_set_loopback_users(auth_store *store, const char *const *users,
                                   uint32_t users_count, auth_error *err);

/* Write side: ringmqctl, broker stopped. Names are NUL-terminated; each call validates its
 * arguments and fills err with a message for the operator. Nothing is saved until
 * auth_store_save. Arguments must not point into the store (auth_*_at views). */
bool auth_user_add(auth_store *store, const char *user, const char *pass, auth_error *err);
bool auth_user_delete(auth_store *store, const char *user, auth_error *err);
bool auth_user_change_password(auth_store *store, const char *user, const char *pass,
                               auth_error *err);
/* tags: comma-separated, "" for none; each tag is [A-Za-z0-9_.-]+. */
bool auth_user_set_tags(auth_store *store, const char *user, const char *tags, auth_error *err);
bool auth_permissions_set(auth_store *store, const char *user, const char *vhost,
                          const char *configure, const char *write, const char *read,
                          auth_error *err);
bool auth_permissions_clear(auth_store *store, const char *user, const char *vhost,
                            auth_error *err);
bool auth_vhost_add(auth_store *store, const char *vhost, auth_error *err);
/* Also removes every user's permissions on the vhost. */
bool auth_vhost_delete(auth_store *store, const char *vhost, auth_error *err);

/* Listing, in insertion order. Pointers stay valid until the next write call. */
typedef struct {
    const char *name;
    const char *tags; /* comma-separated, "" for none */
    uint32_t permissions_count;
} auth_user_view;

typedef struct {
    const char *vhost;
    const char *configure;
    const char *write;
    const char *read;
} auth_permission_view;

uint32_t auth_users_count(const auth_store *store);
auth_user_view auth_user_at(const auth_store *store, uint32_t user_index);
auth_permission_view auth_permission_at(const auth_store *store, uint32_t user_index,
                                        uint32_t permission_index);
uint32_t auth_vhosts_count(const auth_store *store);
const char *auth_vhost_at(const auth_store *store, uint32_t vhost_index);

/* ---- SASL responses ---- */

typedef enum {
    AUTH_SASL_OK = 0,
    AUTH_SASL_MALFORMED, /* not the mechanism's syntax: a protocol error */
    AUTH_SASL_TOO_LONG,  /* a field or the response beyond the limits in core/limits.h */
} auth_sasl_result;

/* Slices of the response. Empty user or password parse fine (the login then fails). */
typedef struct {
    const char *user;
    size_t user_len;
    const char *pass;
    size_t pass_len;
} auth_credentials;

/* PLAIN (RFC 4616): "authzid NUL authcid NUL passwd"; authzid may be empty and is ignored.
 * Exactly two NULs. */
auth_sasl_result auth_sasl_plain_parse(const uint8_t *response, size_t response_len,
                                       auth_credentials *out);
/* AMQPLAIN: field-table entries without the table's 4-byte length: shortstr key, 'S', longstr
 * value. Needs exactly one LOGIN and one PASSWORD; other keys must also be longstrs and are
 * ignored. */
auth_sasl_result auth_sasl_amqplain_parse(const uint8_t *response, size_t response_len,
                                          auth_credentials *out);
const char *auth_sasl_result_name(auth_sasl_result result);

#endif
