/*
 * Tests for core/sha256.c and core/auth.c: the FIPS 180-4 vectors, password
 * hashes in RabbitMQ's format, the user store on disk (defaults at first
 * start, save and reload, every write call and its errors, malformed files)
 * and the PLAIN and AMQPLAIN response parsers, good and malformed. Each store
 * test gets a fresh mkdtemp directory, removed afterwards.
 */
#include "core/auth.h"
#include "core/limits.h"
#include "core/sha256.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- helpers ---- */

static void assert_digest_hex(const uint8_t digest[SHA256_DIGEST_BYTES], const char *hex)
{
    char got[2 * SHA256_DIGEST_BYTES + 1];
    for (unsigned i = 0; i < SHA256_DIGEST_BYTES; i++) sprintf(got + 2 * i, "%02x", digest[i]);
    assert_string_equal(got, hex);
}

static void assert_sha256(const char *msg, const char *hex)
{
    uint8_t digest[SHA256_DIGEST_BYTES];
    sha256(msg, strlen(msg), digest);
    assert_digest_hex(digest, hex);
}

typedef struct {
    char dir[64];
    auth_error err;
} fixture;

static int dir_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_auth.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static void path_in(const fixture *f, const char *name, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s/%s", f->dir, name);
}

static int dir_teardown(void **state)
{
    fixture *f = *state;
    const char *names[] = {"users", "vhosts", "users.tmp", "vhosts.tmp"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[128];
        path_in(f, names[i], path, sizeof(path));
        unlink(path);
    }
    assert_int_equal(rmdir(f->dir), 0);
    free(f);
    return 0;
}

static void write_file(const fixture *f, const char *name, const char *text)
{
    char path[128];
    path_in(f, name, path, sizeof(path));
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(fwrite(text, 1, strlen(text), out), strlen(text));
    assert_int_equal(fclose(out), 0);
}

static size_t read_file(const fixture *f, const char *name, char *buf, size_t buf_size)
{
    char path[128];
    path_in(f, name, path, sizeof(path));
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    size_t len = fread(buf, 1, buf_size - 1, in);
    buf[len] = '\0';
    fclose(in);
    return len;
}

static auth_store *open_ok(fixture *f)
{
    auth_store *store = auth_store_open(f->dir, &f->err);
    if (store == NULL) fail_msg("auth_store_open: %s", f->err.text);
    return store;
}

static void open_fails(fixture *f, const char *needle)
{
    assert_null(auth_store_open(f->dir, &f->err));
    if (strstr(f->err.text, needle) == NULL) fail_msg("error '%s' lacks '%s'", f->err.text, needle);
}

static bool check(const auth_store *store, const char *user, const char *pass)
{
    return auth_check_password(store, user, strlen(user), pass, strlen(pass));
}

static bool can_access(const auth_store *store, const char *user, const char *vhost)
{
    return auth_user_can_access_vhost(store, user, strlen(user), vhost, strlen(vhost));
}

static void assert_err(const auth_error *err, const char *text)
{
    assert_string_equal(err->text, text);
}

/* ---- SHA-256: FIPS 180-4 examples and the NIST vectors ---- */

static void test_sha256_empty(void **state)
{
    (void)state;
    assert_sha256("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_sha256_abc(void **state)
{
    (void)state;
    assert_sha256("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_sha256_448_bits(void **state)
{
    (void)state;
    assert_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_sha256_896_bits(void **state)
{
    (void)state;
    assert_sha256(
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklm"
        "nopqrlmnopqrsmnopqrstnopqrstu",
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_sha256_million_a(void **state)
{
    (void)state;
    static char a[1000];
    memset(a, 'a', sizeof(a));
    sha256_ctx ctx;
    sha256_init(&ctx);
    for (int i = 0; i < 1000; i++) sha256_update(&ctx, a, sizeof(a));
    uint8_t digest[SHA256_DIGEST_BYTES];
    sha256_final(&ctx, digest);
    assert_digest_hex(digest, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Every split of messages around the padding boundaries (55, 56, 63, 64 bytes) gives the
 * one-shot digest. */
static void test_sha256_incremental_splits(void **state)
{
    (void)state;
    uint8_t msg[130];
    for (size_t i = 0; i < sizeof(msg); i++) msg[i] = (uint8_t)(i * 7 + 1);
    for (size_t len = 0; len <= sizeof(msg); len++) {
        uint8_t want[SHA256_DIGEST_BYTES], got[SHA256_DIGEST_BYTES];
        sha256(msg, len, want);
        for (size_t cut = 0; cut <= len; cut += 5) {
            sha256_ctx ctx;
            sha256_init(&ctx);
            sha256_update(&ctx, msg, cut);
            sha256_update(&ctx, msg + cut, len - cut);
            sha256_final(&ctx, got);
            assert_memory_equal(got, want, sizeof(want));
        }
    }
}

/* ---- Password hashes ---- */

/* Expected values computed independently: base64(salt + hashlib.sha256(salt + pw).digest()). */
static void test_hash_known_values(void **state)
{
    (void)state;
    char out[AUTH_HASH_TEXT_BYTES + 1];
    const uint8_t salt1[AUTH_SALT_BYTES] = {0xca, 0xd5, 0x08, 0x9b};
    auth_password_hash_salted(salt1, "test12", 6, out);
    assert_string_equal(out, "ytUIm2F9eV3qWWARNnCjyAl43Ykoi8RM6UsDGYNU4KCxHspv");
    const uint8_t salt2[AUTH_SALT_BYTES] = {0, 1, 2, 3};
    const char *utf8 = "p\xc3\xa4ssw\xc3\xb6rd";
    auth_password_hash_salted(salt2, utf8, strlen(utf8), out);
    assert_string_equal(out, "AAECAxZ/Vijt1IjF1P3o0JXUjgvz7P03KmJSUpJESCYnG90x");
    assert_true(auth_password_verify(out, utf8, strlen(utf8)));
}

static void test_hash_verify_right_and_wrong(void **state)
{
    (void)state;
    char hash[AUTH_HASH_TEXT_BYTES + 1];
    assert_true(auth_password_hash("s3cret", 6, hash));
    assert_int_equal(strlen(hash), AUTH_HASH_TEXT_BYTES);
    assert_true(auth_password_verify(hash, "s3cret", 6));
    assert_false(auth_password_verify(hash, "s3cre", 5));
    assert_false(auth_password_verify(hash, "s3cret!", 7));
    assert_false(auth_password_verify(hash, "S3cret", 6));
    assert_false(auth_password_verify(hash, "", 0));
    /* Lengths, not NULs, end a password. */
    char with_nul[] = {'a', '\0', 'b'};
    assert_true(auth_password_hash(with_nul, 3, hash));
    assert_true(auth_password_verify(hash, with_nul, 3));
    assert_false(auth_password_verify(hash, with_nul, 1));
}

static void test_hash_salts_differ(void **state)
{
    (void)state;
    char a[AUTH_HASH_TEXT_BYTES + 1], b[AUTH_HASH_TEXT_BYTES + 1];
    assert_true(auth_password_hash("same", 4, a));
    assert_true(auth_password_hash("same", 4, b));
    /* 2^-32 chance of a false failure. */
    assert_string_not_equal(a, b);
    assert_true(auth_password_verify(a, "same", 4));
    assert_true(auth_password_verify(b, "same", 4));
}

static void test_hash_malformed_never_matches(void **state)
{
    (void)state;
    char hash[AUTH_HASH_TEXT_BYTES + 1];
    assert_true(auth_password_hash("pw", 2, hash));
    char bad[AUTH_HASH_TEXT_BYTES + 1];
    memcpy(bad, hash, sizeof(bad));
    bad[10] = '!';
    assert_false(auth_password_verify(bad, "pw", 2));
    assert_false(auth_password_verify("", "pw", 2));
    assert_false(auth_password_verify("AAAA", "pw", 2));
    bad[AUTH_HASH_TEXT_BYTES - 4] = '\0'; /* 33 bytes: too short */
    assert_false(auth_password_verify(bad, "pw", 2));
    memcpy(bad, hash, sizeof(bad));
    bad[AUTH_HASH_TEXT_BYTES - 1] = '='; /* padding where a digit belongs */
    assert_false(auth_password_verify(bad, "pw", 2));
}

/* ---- The store ---- */

static void test_store_creates_defaults(void **state)
{
    fixture *f = *state;
    auth_store *store = open_ok(f);
    assert_int_equal(auth_users_count(store), 1);
    assert_int_equal(auth_vhosts_count(store), 1);
    assert_string_equal(auth_vhost_at(store, 0), "/");
    auth_user_view u = auth_user_at(store, 0);
    assert_string_equal(u.name, "guest");
    assert_string_equal(u.tags, "administrator");
    assert_int_equal(u.permissions_count, 1);
    auth_permission_view p = auth_permission_at(store, 0, 0);
    assert_string_equal(p.vhost, "/");
    assert_string_equal(p.configure, ".*");
    assert_string_equal(p.write, ".*");
    assert_string_equal(p.read, ".*");
    assert_true(check(store, "guest", "guest"));
    assert_false(check(store, "guest", "Guest"));
    assert_true(can_access(store, "guest", "/"));
    assert_true(auth_vhost_exists(store, "/", 1));
    assert_true(auth_user_has_tag(store, "guest", 5, "administrator"));
    assert_false(auth_user_has_tag(store, "guest", 5, "admin"));
    assert_true(auth_user_is_loopback_only(store, "guest", 5));
    auth_store_close(store);

    /* Both files were written, owner-only, with their headers. */
    char text[1024], path[128];
    read_file(f, "vhosts", text, sizeof(text));
    assert_string_equal(text, "# ringmq vhosts 1\n/\n");
    read_file(f, "users", text, sizeof(text));
    assert_true(strncmp(text, "# ringmq users 1\nguest\t", 23) == 0);
    assert_non_null(strstr(text, "\tadministrator\t/\t.*\t.*\t.*\n"));
    struct stat st;
    path_in(f, "users", path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

/* A second open reads the files: the salt, hence the file, stays the same. */
static void test_store_reopen_keeps_files(void **state)
{
    fixture *f = *state;
    auth_store_close(open_ok(f));
    char before[1024], after[1024];
    read_file(f, "users", before, sizeof(before));
    auth_store *store = open_ok(f);
    assert_true(check(store, "guest", "guest"));
    auth_store_close(store);
    read_file(f, "users", after, sizeof(after));
    assert_string_equal(before, after);
}

static void test_store_save_reload_round_trip(void **state)
{
    fixture *f = *state;
    auth_store *store = open_ok(f);
    auth_error *err = &f->err;
    assert_true(auth_vhost_add(store, "prod", err));
    assert_true(auth_vhost_add(store, "with space/and,comma", err));
    assert_true(auth_user_add(store, "alice", "alice-pw", err));
    assert_true(auth_user_add(store,
                              "b\xc3\xb6"
                              "b",
                              "p\xc3\xa4ss", err));
    assert_true(auth_user_set_tags(store, "alice", "monitoring,policymaker", err));
    assert_true(auth_permissions_set(store, "alice", "prod", "", "^amq\\.", "a|b,c", err));
    assert_true(auth_permissions_set(store, "alice", "/", ".*", ".*", ".*", err));
    assert_true(auth_permissions_set(store,
                                     "b\xc3\xb6"
                                     "b",
                                     "with space/and,comma", "x", "y", "z", err));
    assert_true(auth_store_save(store, err));
    auth_store_close(store);

    store = open_ok(f);
    assert_int_equal(auth_users_count(store), 3);
    assert_int_equal(auth_vhosts_count(store), 3);
    assert_string_equal(auth_vhost_at(store, 2), "with space/and,comma");
    auth_user_view u = auth_user_at(store, 1);
    assert_string_equal(u.name, "alice");
    assert_string_equal(u.tags, "monitoring,policymaker");
    assert_int_equal(u.permissions_count, 2);
    auth_permission_view p = auth_permission_at(store, 1, 0);
    assert_string_equal(p.vhost, "prod");
    assert_string_equal(p.configure, "");
    assert_string_equal(p.write, "^amq\\.");
    assert_string_equal(p.read, "a|b,c");
    assert_true(check(store, "alice", "alice-pw"));
    assert_true(check(store,
                      "b\xc3\xb6"
                      "b",
                      "p\xc3\xa4ss"));
    assert_true(can_access(store,
                           "b\xc3\xb6"
                           "b",
                           "with space/and,comma"));
    assert_false(can_access(store,
                            "b\xc3\xb6"
                            "b",
                            "/"));
    assert_true(auth_user_has_tag(store, "alice", 5, "policymaker"));
    assert_false(auth_user_is_loopback_only(store, "alice", 5));
    auth_store_close(store);
}

static void test_user_add_errors(void **state)
{
    (void)state;
    auth_error err;
    auth_store *store = auth_store_open_defaults(&err);
    assert_non_null(store);
    assert_false(auth_user_add(store, "guest", "x", &err));
    assert_err(&err, "user 'guest' already exists");
    assert_false(auth_user_add(store, "", "x", &err));
    assert_err(&err, "user name must not be empty");
    assert_false(auth_user_add(store, "a\tb", "x", &err));
    assert_err(&err, "user name 'a' holds control character 0x09");
    assert_false(auth_user_add(store, "bob", "", &err));
    assert_err(&err, "password must not be empty");
    char long_name[LIMIT_USER_NAME_BYTES_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_false(auth_user_add(store, long_name, "x", &err));
    assert_err(&err, "user name is 256 bytes, more than the 255 allowed");
    long_name[LIMIT_USER_NAME_BYTES_MAX] = '\0'; /* exactly at the limit */
    assert_true(auth_user_add(store, long_name, "x", &err));
    static char long_pass[LIMIT_PASSWORD_BYTES_MAX + 2];
    memset(long_pass, 'p', sizeof(long_pass) - 1);
    assert_false(auth_user_add(store, "bob", long_pass, &err));
    assert_err(&err, "password is 1025 bytes, more than the 1024 allowed");
    assert_int_equal(auth_users_count(store), 2);
    auth_store_close(store);
}

static void test_user_delete(void **state)
{
    (void)state;
    auth_error err;
    auth_store *store = auth_store_open_defaults(&err);
    assert_true(auth_user_add(store, "alice", "pw", &err));
    assert_true(auth_user_add(store, "bob", "pw2", &err));
    assert_true(auth_permissions_set(store, "alice", "/", ".*", ".*", ".*", &err));
    assert_true(auth_user_delete(store, "alice", &err));
    assert_false(check(store, "alice", "pw"));
    assert_false(can_access(store, "alice", "/"));
    assert_false(auth_user_exists(store, "alice", 5));
    assert_true(check(store, "bob", "pw2")); /* the one after moved down intact */
    assert_string_equal(auth_user_at(store, 1).name, "bob");
    assert_false(auth_user_delete(store, "alice", &err));
    assert_err(&err, "no such user 'alice'");
    assert_int_equal(auth_users_count(store), 2);
    auth_store_close(store);
}

static void test_user_change_password(void **state)
{
    (void)state;
    auth_error err;
    auth_store *store = auth_store_open_defaults(&err);
    assert_true(auth_user_change_password(store, "guest", "n3w", &err));
    assert_false(check(store, "guest", "guest"));
    assert_true(check(store, "guest", "n3w"));
    assert_false(auth_user_change_password(store, "nobody", "x", &err));
    assert_err(&err, "no such user 'nobody'");
    assert_false(auth_user_change_password(store, "guest", "", &err));
    assert_true(check(store, "guest", "n3w"));
    auth_store_close(store);
}

static void test_check_password_edges(void **state)
{
    (void)state;
    auth_error err;
    auth_store *store = auth_store_open_defaults(&err);
    assert_false(check(store, "nobody", "guest"));
    assert_false(check(store, "", "guest"));
    assert_false(check(store, "guest", ""));
    /* A NUL inside the span never matches a stored name. */
    assert_false(auth_check_password(store, "guest\0x", 7, "guest", 5));
    assert_false(auth_check_password(store, "gues", 4, "guest", 5));
    assert_true(auth_check_password(store, "guestXX", 5, "guestYY", 5));
    static char long_pass[LIMIT_PASSWORD_BYTES_MAX + 1];
    memset(long_pass, 'p', sizeof(long_pass));
    assert_false(auth_check_password(store, "guest", 5, long_pass, sizeof(long_pass)));
    auth_store_close(store);
}

static void test_vhost_access(void **state)
{
    (void)state;
    auth_error err;
    auth_store *store = auth_store_open_defaults(&err);
    assert_true(auth_user_add(store, "alice", "pw", &err));
    assert_true(auth_vhost_add(store, "prod", &err));
    assert_false(can_access(store, "alice", "prod"));
    assert_false(can_access(store, "alice", "/"));
    assert_true(auth_permissions_set(store, "alice", "prod", ".*", ".*", ".*", &err));
    assert_true(can_access(store, "alice", "prod"));
    assert_false(can_access(store, "alice", "pro"));
    assert_false(can_access(store, "alice", "/"));
    assert_false(can_access(store, "nobody", "prod"));
    /* Setting again replaces the patterns, it adds no second entry. */
    assert_true(auth_permissions_set(store, "alice", "prod", "", "", "", &err));
    assert_int_equal(auth_user_at(store, 1).permissions_count, 1);
    assert_string_equal(auth_permission_at(store, 1, 0).read, "");
    assert_true(auth_permissions_clear(store, "alice", "prod", &err));
    assert_false(can_access(store, "alice", "prod"));
    assert_true(auth_permissions_clear(store, "alice", "prod", &err)); /* already clear: fine */
    assert_false(auth_permissions_set(store, "alice", "nope", ".*", ".*", ".*", &err));
    assert_err(&err, "no such vhost 'nope'");
    assert_false(auth_permissions_set(store, "nobody", "/", ".*", ".*", ".*", &err));
    assert_err(&err, "no such user 'nobody'");
    assert_false(auth_permissions_set(store, "alice", "/", "a\nb", ".*", ".*", &err));
    assert_err(&err, "configure pattern 'a' holds control character 0x0a");
    assert_false(auth_permissions_clear(store, "alice", "nope", &err));
    auth_store_close(store);
}

static void test_vhost_add_delete(void **state)
{
    (void)state;
    auth_error err;
    auth_store *store = auth_store_open_defaults(&err);
    assert_true(auth_vhost_add(store, "a", &err));
    assert_true(auth_vhost_add(store, "b", &err));
    assert_false(auth_vhost_add(store, "a", &err));
    assert_err(&err, "vhost 'a' already exists");
    assert_false(auth_vhost_add(store, "", &err));
    assert_err(&err, "vhost name must not be empty");
    assert_true(auth_permissions_set(store, "guest", "a", ".*", ".*", ".*", &err));
    assert_true(auth_vhost_delete(store, "a", &err));
    assert_false(auth_vhost_exists(store, "a", 1));
    assert_false(can_access(store, "guest", "a"));
    assert_int_equal(auth_user_at(store, 0).permissions_count, 1);
    assert_string_equal(auth_vhost_at(store, 1), "b");
    assert_false(auth_vhost_delete(store, "a", &err));
    assert_err(&err, "no such vhost 'a'");
    /* Re-creating it does not bring the old permissions back. */
    assert_true(auth_vhost_add(store, "a", &err));
    assert_false(can_access(store, "guest", "a"));
    auth_store_close(store);
}

static void test_tags(void **state)
{
    (void)state;
    auth_error err;
    auth_store *store = auth_store_open_defaults(&err);
    assert_true(auth_user_set_tags(store, "guest", "", &err));
    assert_false(auth_user_has_tag(store, "guest", 5, "administrator"));
    assert_true(auth_user_set_tags(store, "guest", "a-b,c_d,e.f", &err));
    assert_true(auth_user_has_tag(store, "guest", 5, "c_d"));
    assert_true(auth_user_has_tag(store, "guest", 5, "e.f"));
    assert_false(auth_user_has_tag(store, "guest", 5, "c"));
    assert_false(auth_user_set_tags(store, "guest", "a,,b", &err));
    assert_false(auth_user_set_tags(store, "guest", "a,", &err));
    assert_false(auth_user_set_tags(store, "guest", ",a", &err));
    assert_false(auth_user_set_tags(store, "guest", "a b", &err));
    assert_err(&err, "tags 'a b': ' ' is not allowed (tags are [A-Za-z0-9_.-]+, comma-separated)");
    assert_string_equal(auth_user_at(store, 0).tags, "a-b,c_d,e.f");
    auth_store_close(store);
}

static void test_loopback_users(void **state)
{
    (void)state;
    auth_error err;
    auth_store *store = auth_store_open_defaults(&err);
    assert_true(auth_user_is_loopback_only(store, "guest", 5));
    const char *none[] = {NULL};
    assert_true(auth_store_set_loopback_users(store, none, 0, &err));
    assert_false(auth_user_is_loopback_only(store, "guest", 5));
    const char *two[] = {"guest", "local"};
    assert_true(auth_store_set_loopback_users(store, two, 2, &err));
    assert_true(auth_user_is_loopback_only(store, "local", 5));
    assert_false(auth_user_is_loopback_only(store, "loca", 4));
    const char *bad[] = {""};
    assert_false(auth_store_set_loopback_users(store, bad, 1, &err));
    assert_true(auth_user_is_loopback_only(store, "local", 5)); /* unchanged */
    auth_store_close(store);
}

static void test_users_max(void **state)
{
    (void)state;
    auth_error err;
    auth_store *store = auth_store_open_defaults(&err);
    char name[32];
    for (uint32_t i = 1; i < LIMIT_USERS_MAX; i++) {
        snprintf(name, sizeof(name), "user%u", i);
        assert_true(auth_user_add(store, name, "pw", &err));
    }
    assert_int_equal(auth_users_count(store), LIMIT_USERS_MAX);
    assert_false(auth_user_add(store, "one-more", "pw", &err));
    assert_err(&err, "cannot add user 'one-more': the store holds the most users allowed (1024)");
    assert_true(check(store, "user1023", "pw"));
    auth_store_close(store);
}

static void test_store_without_dir_cannot_save(void **state)
{
    (void)state;
    auth_error err;
    auth_store *store = auth_store_open_defaults(&err);
    assert_false(auth_store_save(store, &err));
    assert_err(&err, "this store has no data directory");
    auth_store_close(store);
    assert_null(auth_store_open("/nonexistent/ringmq-test-dir", &err));
    assert_non_null(strstr(err.text, "No such file or directory"));
}

/* A users line that names a vhost the vhosts file lacks (a save cut between its two renames)
 * loses that permission but loads. */
static void test_load_drops_permission_on_missing_vhost(void **state)
{
    fixture *f = *state;
    auth_store *store = open_ok(f);
    char users[1024];
    read_file(f, "users", users, sizeof(users));
    auth_store_close(store);
    char *nl = strrchr(users, '\n');
    snprintf(nl, sizeof(users) - (size_t)(nl - users), "\tgone\t.*\t.*\t.*\n");
    write_file(f, "users", users);
    store = open_ok(f);
    assert_int_equal(auth_user_at(store, 0).permissions_count, 1);
    assert_true(can_access(store, "guest", "/"));
    assert_false(can_access(store, "guest", "gone"));
    auth_store_close(store);
}

static void test_load_rejects_malformed_files(void **state)
{
    fixture *f = *state;
    char hash[AUTH_HASH_TEXT_BYTES + 1], line[256];
    assert_true(auth_password_hash("pw", 2, hash));
    write_file(f, "vhosts", "# ringmq vhosts 1\n/\n");

    write_file(f, "users", "# ringmq users 2\n");
    open_fails(f, "users:1: expected the header '# ringmq users 1'");
    write_file(f, "users", "");
    open_fails(f, "users: empty file");
    snprintf(line, sizeof(line), "# ringmq users 1\nbob\t%s\t", hash);
    write_file(f, "users", line);
    open_fails(f, "users:2: last line has no newline");
    write_file(f, "users", "# ringmq users 1\nbob\tnot-a-hash\t\n");
    open_fails(f, "users:2: user 'bob': malformed password hash");
    snprintf(line, sizeof(line), "# ringmq users 1\nbob\t%s\n", hash);
    write_file(f, "users", line);
    open_fails(f, "users:2: expected name, password hash and tags");
    snprintf(line, sizeof(line), "# ringmq users 1\nbob\t%s\t\t/\t.*\t.*\n", hash);
    write_file(f, "users", line);
    open_fails(f, "user 'bob': permission needs vhost, configure, write and read");
    snprintf(line, sizeof(line), "# ringmq users 1\nbob\t%s\t\nbob\t%s\t\n", hash, hash);
    write_file(f, "users", line);
    open_fails(f, "users:3: user 'bob' already exists");
    snprintf(line, sizeof(line), "# ringmq users 1\nbob\t%s\t\t/\t\t\t\t/\t\t\t\n", hash);
    write_file(f, "users", line);
    open_fails(f, "user 'bob': vhost '/' listed twice");
    snprintf(line, sizeof(line), "# ringmq users 1\n\n");
    write_file(f, "users", line);
    open_fails(f, "users:2: expected name");

    snprintf(line, sizeof(line), "# ringmq users 1\nbob\t%s\tadministrator\t/\t.*\t.*\t.*\n", hash);
    write_file(f, "users", line);
    write_file(f, "vhosts", "# ringmq vhosts 1\n/\n/\n");
    open_fails(f, "vhosts:3: vhost '/' already exists");
    write_file(f, "vhosts", "/\n");
    open_fails(f, "vhosts:1: expected the header");
    char vhosts[128];
    path_in(f, "vhosts", vhosts, sizeof(vhosts));
    unlink(vhosts);
    open_fails(f, "is missing (but");
    write_file(f, "vhosts", "# ringmq vhosts 1\n/\n");
    auth_store *store = open_ok(f);
    assert_true(check(store, "bob", "pw"));
    assert_true(can_access(store, "bob", "/"));
    auth_store_close(store);
}

/* ---- SASL PLAIN ---- */

static auth_sasl_result plain(const char *response, size_t len, auth_credentials *out)
{
    return auth_sasl_plain_parse((const uint8_t *)response, len, out);
}

static void assert_credentials(const auth_credentials *c, const char *user, size_t user_len,
                               const char *pass, size_t pass_len)
{
    assert_int_equal(c->user_len, user_len);
    assert_memory_equal(c->user, user, user_len);
    assert_int_equal(c->pass_len, pass_len);
    assert_memory_equal(c->pass, pass, pass_len);
}

static void test_plain_good(void **state)
{
    (void)state;
    auth_credentials c;
    assert_int_equal(plain("\0guest\0guest", 12, &c), AUTH_SASL_OK);
    assert_credentials(&c, "guest", 5, "guest", 5);
    /* authzid is ignored. */
    assert_int_equal(plain("admin\0bob\0s3cr\xc3\xa9t", 17, &c), AUTH_SASL_OK);
    assert_credentials(&c, "bob", 3, "s3cr\xc3\xa9t", 7);
}

static void test_plain_empty_fields(void **state)
{
    (void)state;
    auth_credentials c;
    assert_int_equal(plain("\0\0pw", 4, &c), AUTH_SASL_OK);
    assert_credentials(&c, "", 0, "pw", 2);
    assert_int_equal(plain("\0user\0", 6, &c), AUTH_SASL_OK);
    assert_credentials(&c, "user", 4, "", 0);
    assert_int_equal(plain("\0\0", 2, &c), AUTH_SASL_OK);
    assert_credentials(&c, "", 0, "", 0);
}

static void test_plain_missing_separators(void **state)
{
    (void)state;
    auth_credentials c = {0};
    assert_int_equal(plain("", 0, &c), AUTH_SASL_MALFORMED);
    assert_int_equal(auth_sasl_plain_parse(NULL, 0, &c), AUTH_SASL_MALFORMED);
    assert_int_equal(plain("guestguest", 10, &c), AUTH_SASL_MALFORMED);
    assert_int_equal(plain("\0guestguest", 11, &c), AUTH_SASL_MALFORMED);
    assert_int_equal(plain("guest\0guest", 11, &c), AUTH_SASL_MALFORMED);
    assert_int_equal(plain("\0guest\0gu\0est", 14, &c), AUTH_SASL_MALFORMED);
    assert_int_equal(plain("\0\0\0", 3, &c), AUTH_SASL_MALFORMED);
    assert_null(c.user); /* untouched on failure */
}

static void test_plain_oversize(void **state)
{
    (void)state;
    static uint8_t buf[LIMIT_SASL_RESPONSE_BYTES_MAX + 1];
    auth_credentials c;
    memset(buf, 'x', sizeof(buf));
    /* user of LIMIT + 1 bytes */
    buf[0] = 0;
    buf[1 + LIMIT_USER_NAME_BYTES_MAX + 1] = 0;
    assert_int_equal(auth_sasl_plain_parse(buf, LIMIT_USER_NAME_BYTES_MAX + 5, &c),
                     AUTH_SASL_TOO_LONG);
    /* user exactly at the limit */
    buf[1 + LIMIT_USER_NAME_BYTES_MAX] = 0;
    buf[1 + LIMIT_USER_NAME_BYTES_MAX + 1] = 'x';
    assert_int_equal(auth_sasl_plain_parse(buf, LIMIT_USER_NAME_BYTES_MAX + 5, &c), AUTH_SASL_OK);
    assert_int_equal(c.user_len, LIMIT_USER_NAME_BYTES_MAX);
    /* password of LIMIT + 1 bytes */
    memset(buf, 'x', sizeof(buf));
    buf[0] = 0;
    buf[2] = 0;
    assert_int_equal(auth_sasl_plain_parse(buf, 3 + LIMIT_PASSWORD_BYTES_MAX + 1, &c),
                     AUTH_SASL_TOO_LONG);
    assert_int_equal(auth_sasl_plain_parse(buf, 3 + LIMIT_PASSWORD_BYTES_MAX, &c), AUTH_SASL_OK);
    /* authzid too long */
    memset(buf, 'x', sizeof(buf));
    buf[LIMIT_USER_NAME_BYTES_MAX + 1] = 0;
    buf[LIMIT_USER_NAME_BYTES_MAX + 3] = 0;
    assert_int_equal(auth_sasl_plain_parse(buf, LIMIT_USER_NAME_BYTES_MAX + 5, &c),
                     AUTH_SASL_TOO_LONG);
    /* the whole response */
    assert_int_equal(auth_sasl_plain_parse(buf, sizeof(buf), &c), AUTH_SASL_TOO_LONG);
}

/* ---- SASL AMQPLAIN ---- */

/* Appends one table entry: shortstr key, 'S', longstr value. */
static size_t amqplain_entry(uint8_t *buf, size_t at, const char *key, const char *value,
                             size_t value_len)
{
    size_t key_len = strlen(key);
    buf[at++] = (uint8_t)key_len;
    memcpy(buf + at, key, key_len);
    at += key_len;
    buf[at++] = 'S';
    buf[at++] = (uint8_t)(value_len >> 24);
    buf[at++] = (uint8_t)(value_len >> 16);
    buf[at++] = (uint8_t)(value_len >> 8);
    buf[at++] = (uint8_t)value_len;
    memcpy(buf + at, value, value_len);
    return at + value_len;
}

static void test_amqplain_good(void **state)
{
    (void)state;
    uint8_t buf[256];
    auth_credentials c;
    size_t len = amqplain_entry(buf, 0, "LOGIN", "guest", 5);
    len = amqplain_entry(buf, len, "PASSWORD", "gu\0st", 5);
    assert_int_equal(len, 11 + 5 + 14 + 5);
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_OK);
    assert_credentials(&c, "guest", 5, "gu\0st", 5);
    /* Any order; other longstr keys are skipped. */
    len = amqplain_entry(buf, 0, "PASSWORD", "pw", 2);
    len = amqplain_entry(buf, len, "X-EXTRA", "whatever", 8);
    len = amqplain_entry(buf, len, "LOGIN", "", 0);
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_OK);
    assert_credentials(&c, "", 0, "pw", 2);
}

static void test_amqplain_missing_fields(void **state)
{
    (void)state;
    uint8_t buf[256] = {0};
    auth_credentials c = {0};
    assert_int_equal(auth_sasl_amqplain_parse(buf, 0, &c), AUTH_SASL_MALFORMED);
    size_t len = amqplain_entry(buf, 0, "LOGIN", "guest", 5);
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_MALFORMED);
    len = amqplain_entry(buf, 0, "PASSWORD", "guest", 5);
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_MALFORMED);
    /* Keys are case-sensitive. */
    len = amqplain_entry(buf, 0, "login", "guest", 5);
    len = amqplain_entry(buf, len, "PASSWORD", "guest", 5);
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_MALFORMED);
    assert_null(c.user);
}

/* Every proper prefix of a good response is malformed, and so is trailing junk. */
static void test_amqplain_truncated(void **state)
{
    (void)state;
    uint8_t buf[256];
    auth_credentials c;
    size_t len = amqplain_entry(buf, 0, "LOGIN", "guest", 5);
    len = amqplain_entry(buf, len, "PASSWORD", "guest", 5);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(auth_sasl_amqplain_parse(buf, cut, &c), AUTH_SASL_MALFORMED);
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_OK);
    buf[len] = 3;
    assert_int_equal(auth_sasl_amqplain_parse(buf, len + 1, &c), AUTH_SASL_MALFORMED);
    /* With the 4-byte table length in front it is not a table body. */
    uint8_t framed[260] = {0, 0, 0, (uint8_t)len};
    memcpy(framed + 4, buf, len);
    assert_int_equal(auth_sasl_amqplain_parse(framed, len + 4, &c), AUTH_SASL_MALFORMED);
}

static void test_amqplain_malformed_entries(void **state)
{
    (void)state;
    uint8_t buf[256];
    auth_credentials c;
    size_t len = amqplain_entry(buf, 0, "LOGIN", "guest", 5);
    size_t login_len = len;
    len = amqplain_entry(buf, len, "PASSWORD", "guest", 5);
    /* Value types other than 'S'. */
    buf[login_len + 9] = 's';
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_MALFORMED);
    buf[login_len + 9] = 'x';
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_MALFORMED);
    buf[login_len + 9] = 'S';
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_OK);
    /* Value length past the end, including one that would overflow a 32-bit sum. */
    buf[login_len + 10] = 0xff;
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_MALFORMED);
    buf[login_len + 10] = 0;
    buf[login_len + 13] = 6;
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_MALFORMED);
    /* Empty key. */
    len = amqplain_entry(buf, 0, "", "x", 1);
    len = amqplain_entry(buf, len, "LOGIN", "guest", 5);
    len = amqplain_entry(buf, len, "PASSWORD", "guest", 5);
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_MALFORMED);
    /* Duplicate LOGIN. */
    len = amqplain_entry(buf, 0, "LOGIN", "guest", 5);
    len = amqplain_entry(buf, len, "LOGIN", "admin", 5);
    len = amqplain_entry(buf, len, "PASSWORD", "guest", 5);
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_MALFORMED);
    /* Key length past the end. */
    buf[0] = 200;
    assert_int_equal(auth_sasl_amqplain_parse(buf, 20, &c), AUTH_SASL_MALFORMED);
}

static void test_amqplain_oversize(void **state)
{
    (void)state;
    static uint8_t buf[2 * LIMIT_SASL_RESPONSE_BYTES_MAX];
    static char big[LIMIT_SASL_RESPONSE_BYTES_MAX];
    memset(big, 'x', sizeof(big));
    auth_credentials c;
    size_t len = amqplain_entry(buf, 0, "LOGIN", big, LIMIT_USER_NAME_BYTES_MAX + 1);
    len = amqplain_entry(buf, len, "PASSWORD", "pw", 2);
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_TOO_LONG);
    len = amqplain_entry(buf, 0, "LOGIN", big, LIMIT_USER_NAME_BYTES_MAX);
    len = amqplain_entry(buf, len, "PASSWORD", big, LIMIT_PASSWORD_BYTES_MAX);
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_OK);
    assert_int_equal(c.pass_len, LIMIT_PASSWORD_BYTES_MAX);
    len = amqplain_entry(buf, 0, "LOGIN", "u", 1);
    len = amqplain_entry(buf, len, "PASSWORD", big, LIMIT_PASSWORD_BYTES_MAX + 1);
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_TOO_LONG);
    len = amqplain_entry(buf, 0, "LOGIN", "u", 1);
    len = amqplain_entry(buf, len, "PASSWORD", "p", 1);
    len = amqplain_entry(buf, len, "PADDING", big, sizeof(big));
    assert_int_equal(auth_sasl_amqplain_parse(buf, len, &c), AUTH_SASL_TOO_LONG);
    assert_string_equal(auth_sasl_result_name(AUTH_SASL_TOO_LONG), "too long");
}

/* End to end: a PLAIN response checked against a store. */
static void test_plain_then_check(void **state)
{
    (void)state;
    auth_error err;
    auth_store *store = auth_store_open_defaults(&err);
    auth_credentials c;
    assert_int_equal(plain("\0guest\0guest", 12, &c), AUTH_SASL_OK);
    assert_true(auth_check_password(store, c.user, c.user_len, c.pass, c.pass_len));
    assert_int_equal(plain("\0guest\0guesT", 12, &c), AUTH_SASL_OK);
    assert_false(auth_check_password(store, c.user, c.user_len, c.pass, c.pass_len));
    assert_int_equal(plain("\0\0guest", 7, &c), AUTH_SASL_OK);
    assert_false(auth_check_password(store, c.user, c.user_len, c.pass, c.pass_len));
    auth_store_close(store);
}

#define DIR_TEST(fn) cmocka_unit_test_setup_teardown(fn, dir_setup, dir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_empty),
        cmocka_unit_test(test_sha256_abc),
        cmocka_unit_test(test_sha256_448_bits),
        cmocka_unit_test(test_sha256_896_bits),
        cmocka_unit_test(test_sha256_million_a),
        cmocka_unit_test(test_sha256_incremental_splits),
        cmocka_unit_test(test_hash_known_values),
        cmocka_unit_test(test_hash_verify_right_and_wrong),
        cmocka_unit_test(test_hash_salts_differ),
        cmocka_unit_test(test_hash_malformed_never_matches),
        DIR_TEST(test_store_creates_defaults),
        DIR_TEST(test_store_reopen_keeps_files),
        DIR_TEST(test_store_save_reload_round_trip),
        cmocka_unit_test(test_user_add_errors),
        cmocka_unit_test(test_user_delete),
        cmocka_unit_test(test_user_change_password),
        cmocka_unit_test(test_check_password_edges),
        cmocka_unit_test(test_vhost_access),
        cmocka_unit_test(test_vhost_add_delete),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_loopback_users),
        cmocka_unit_test(test_users_max),
        cmocka_unit_test(test_store_without_dir_cannot_save),
        DIR_TEST(test_load_drops_permission_on_missing_vhost),
        DIR_TEST(test_load_rejects_malformed_files),
        cmocka_unit_test(test_plain_good),
        cmocka_unit_test(test_plain_empty_fields),
        cmocka_unit_test(test_plain_missing_separators),
        cmocka_unit_test(test_plain_oversize),
        cmocka_unit_test(test_amqplain_good),
        cmocka_unit_test(test_amqplain_missing_fields),
        cmocka_unit_test(test_amqplain_truncated),
        cmocka_unit_test(test_amqplain_malformed_entries),
        cmocka_unit_test(test_amqplain_oversize),
        cmocka_unit_test(test_plain_then_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
