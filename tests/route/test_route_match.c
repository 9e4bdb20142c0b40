/* Unit tests for the publish matchers of route/: the topic trie against
 * RabbitMQ's own topic test cases and against a reference word matcher
 * over random keys and patterns, and headers matching (all, any, the
 * -with-x kinds, void, typed values).
 *
 * Word splitting, as RabbitMQ does it (rabbit_db_topic_exchange:
 * split_topic_key/1): split_topic_key(<<>>, [], []) -> [] is the first
 * clause, so the empty routing key has NO words, not one empty word.
 * Hence "#" matches "" (zero words), "" matches only "", and "*" does not
 * match "" (it needs exactly one word). Any non-empty key with n dots has
 * n + 1 words, empty ones included: "." is ["", ""], ".b" is ["", "b"],
 * so "*.b" matches ".b" and "a.*" matches "a." but not "a". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/route/route_util.h"

static route_error err;

static int setup(void **state)
{
    route_vhost *vh = route_vhost_create(B("/"));
    memset(&err, 0, sizeof(err));
    *state = vh;
    return 0;
}

static int teardown(void **state)
{
    route_vhost_destroy(*state);
    return 0;
}

/* Binds queue `q` (created if missing) to exchange x with key. */
static void bind_q(route_vhost *vh, const char *x, const char *q, const char *key, amqp_table args)
{
    if (route_queue_find(vh, B(q)) == NULL) util_queue(vh, q, route_vhost_queue_count(vh) + 1, 0);
    assert_true(util_bind(vh, x, q, false, key, args, &err));
}

/* --- topic ----------------------------------------------------------------- */

/* RabbitMQ's topic exchange test (rabbit_exchange_type_topic suite). */
static const struct {
    const char *key, *queue;
} rmq_bindings[] = {
    {"a.b.c", "t1"},   {"a.*.c", "t2"},   {"a.#.b", "t3"},         {"a.b.b.c", "t4"},
    {"#", "t5"},       {"#.#", "t6"},     {"#.b", "t7"},           {"*.*", "t8"},
    {"a.*", "t9"},     {"*.b.c", "t10"},  {"a.#", "t11"},          {"a.#.#", "t12"},
    {"b.b.c", "t13"},  {"a.b.b", "t14"},  {"a.b", "t15"},          {"b.c", "t16"},
    {"", "t17"},       {"*.*.*", "t18"},  {"vodka.martini", "t19"}, {"a.b.c", "t20"},
    {"*.#", "t21"},    {"#.*.#", "t22"},  {"*.#.#", "t23"},        {"#.#.#", "t24"},
    {"*", "t25"},      {"#.b.#", "t26"},
};

static void rmq_setup(route_vhost *vh)
{
    for (size_t i = 0; i < ARRAY_LEN(rmq_bindings); i++)
        bind_q(vh, "amq.topic", rmq_bindings[i].queue, rmq_bindings[i].key, NO_ARGS);
    /* t27 twice with different arguments: two bindings, one queue. */
    uint8_t b1[32], b2[32];
    amqp_table_builder b;
    amqp_table t1, t2;
    amqp_table_builder_init(&b, b1, sizeof(b1));
    amqp_table_add_cstr(&b, "foo", "bar");
    assert_true(amqp_table_builder_finish(&b, &t1));
    amqp_table_builder_init(&b, b2, sizeof(b2));
    amqp_table_add_cstr(&b, "foo", "baz");
    assert_true(amqp_table_builder_finish(&b, &t2));
    bind_q(vh, "amq.topic", "t27", "args-test", t1);
    bind_q(vh, "amq.topic", "t27", "args-test", t2);
    assert_true(util_unbind(vh, "amq.topic", "t27", false, "args-test", t2, &err));
    bind_q(vh, "amq.topic", "t27", "args-test", t2);
}

static void test_topic_rabbitmq_suite(void **state)
{
    route_vhost *vh = *state;
    rmq_setup(vh);
    assert_string_equal(util_route(vh, "amq.topic", "a.b.c"),
                        "t1,t10,t11,t12,t18,t2,t20,t21,t22,t23,t24,t26,t5,t6");
    assert_string_equal(util_route(vh, "amq.topic", "a.b"),
                        "t11,t12,t15,t21,t22,t23,t24,t26,t3,t5,t6,t7,t8,t9");
    assert_string_equal(util_route(vh, "amq.topic", "a.b.b"),
                        "t11,t12,t14,t18,t21,t22,t23,t24,t26,t3,t5,t6,t7");
    assert_string_equal(util_route(vh, "amq.topic", ""), "t17,t24,t5,t6");
    assert_string_equal(util_route(vh, "amq.topic", "b.c.c"), "t18,t21,t22,t23,t24,t26,t5,t6");
    assert_string_equal(util_route(vh, "amq.topic", "a.a.a.a.a"), "t11,t12,t21,t22,t23,t24,t5,t6");
    assert_string_equal(util_route(vh, "amq.topic", "vodka.gin"), "t21,t22,t23,t24,t5,t6,t8");
    assert_string_equal(util_route(vh, "amq.topic", "vodka.martini"),
                        "t19,t21,t22,t23,t24,t5,t6,t8");
    assert_string_equal(util_route(vh, "amq.topic", "b.b.c"),
                        "t10,t13,t18,t21,t22,t23,t24,t26,t5,t6");
    assert_string_equal(util_route(vh, "amq.topic", "nothing.here.at.all"),
                        "t21,t22,t23,t24,t5,t6");
    assert_string_equal(util_route(vh, "amq.topic", "oneword"), "t21,t22,t23,t24,t25,t5,t6");
    assert_string_equal(util_route(vh, "amq.topic", "args-test"),
                        "t21,t22,t23,t24,t25,t27,t5,t6");
}

static void test_topic_rabbitmq_suite_after_removal(void **state)
{
    route_vhost *vh = *state;
    rmq_setup(vh);
    const char *gone[][2] = {{"a.b.c", "t1"}, {"#", "t5"}, {"a.#", "t11"},
                             {"vodka.martini", "t19"}, {"*.#", "t21"}};
    for (size_t i = 0; i < ARRAY_LEN(gone); i++)
        assert_true(util_unbind(vh, "amq.topic", gone[i][1], false, gone[i][0], NO_ARGS, &err));
    uint8_t b2[32];
    amqp_table_builder b;
    amqp_table t2;
    amqp_table_builder_init(&b, b2, sizeof(b2));
    amqp_table_add_cstr(&b, "foo", "baz");
    assert_true(amqp_table_builder_finish(&b, &t2));
    assert_true(util_unbind(vh, "amq.topic", "t27", false, "args-test", t2, &err));
    assert_string_equal(util_route(vh, "amq.topic", "a.b.c"),
                        "t10,t12,t18,t2,t20,t22,t23,t24,t26,t6");
    assert_string_equal(util_route(vh, "amq.topic", "a.b"),
                        "t12,t15,t22,t23,t24,t26,t3,t6,t7,t8,t9");
    assert_string_equal(util_route(vh, "amq.topic", "a.b.b"),
                        "t12,t14,t18,t22,t23,t24,t26,t3,t6,t7");
    assert_string_equal(util_route(vh, "amq.topic", ""), "t17,t24,t6");
    assert_string_equal(util_route(vh, "amq.topic", "b.c.c"), "t18,t22,t23,t24,t26,t6");
    assert_string_equal(util_route(vh, "amq.topic", "a.a.a.a.a"), "t12,t22,t23,t24,t6");
    assert_string_equal(util_route(vh, "amq.topic", "vodka.gin"), "t22,t23,t24,t6,t8");
    assert_string_equal(util_route(vh, "amq.topic", "vodka.martini"), "t22,t23,t24,t6,t8");
    assert_string_equal(util_route(vh, "amq.topic", "b.b.c"), "t10,t13,t18,t22,t23,t24,t26,t6");
    assert_string_equal(util_route(vh, "amq.topic", "nothing.here.at.all"), "t22,t23,t24,t6");
    assert_string_equal(util_route(vh, "amq.topic", "oneword"), "t22,t23,t24,t25,t6");
    assert_string_equal(util_route(vh, "amq.topic", "args-test"), "t22,t23,t24,t25,t27,t6");
}

/* One binding, then each key routed: "1" when it matches, "0" when not. */
static void topic_expect(route_vhost *vh, const char *pattern, const char *const *keys,
                         const char *expect)
{
    bind_q(vh, "amq.topic", "q", pattern, NO_ARGS);
    for (size_t i = 0; expect[i] != '\0'; i++) {
        const char *got = util_route(vh, "amq.topic", keys[i]);
        if ((expect[i] == '1') != (strcmp(got, "q") == 0))
            fail_msg("pattern '%s' key '%s': expected %c", pattern, keys[i], expect[i]);
    }
    assert_true(util_unbind(vh, "amq.topic", "q", false, pattern, NO_ARGS, &err));
}

static void test_topic_empty_key_and_words(void **state)
{
    route_vhost *vh = *state;
    const char *keys[] = {"", ".", "a", "a.", ".b", "a..b", "a.b", "a.b.c"};
    topic_expect(vh, "#", keys, "11111111");
    topic_expect(vh, "*", keys, "00100000");
    topic_expect(vh, "", keys, "10000000");
    topic_expect(vh, "*.*", keys, "01011010");
    topic_expect(vh, "a.*", keys, "00010010");
    topic_expect(vh, "*.b", keys, "00001010");
    topic_expect(vh, ".", keys, "01000000");
    topic_expect(vh, "a..b", keys, "00000100");
    topic_expect(vh, "a.*.b", keys, "00000100");
    topic_expect(vh, "#.", keys, "01010000");
}

static void test_topic_hash_patterns(void **state)
{
    route_vhost *vh = *state;
    const char *keys[] = {"a.b", "a.x.y.b", "a", "b", "a.b.c", "x.a.y", "", "a.a"};
    topic_expect(vh, "a.#.b", keys, "11000000");
    topic_expect(vh, "#.#", keys, "11111111");
    topic_expect(vh, "#.a.#", keys, "11101101");
    topic_expect(vh, "a.#", keys, "11101001");
    topic_expect(vh, "#.b", keys, "11010000");
    topic_expect(vh, "#.*", keys, "11111101");
    topic_expect(vh, "*.#.*", keys, "11001101");
    topic_expect(vh, "a.*.#", keys, "11001001");
}

static void test_topic_star_literal_words(void **state)
{
    route_vhost *vh = *state;
    /* Only whole words are wildcards: "a*" and "#b" are literals. */
    const char *keys[] = {"a*", "ab", "#b", "xb", "*", "#"};
    topic_expect(vh, "a*", keys, "100000");
    topic_expect(vh, "#b", keys, "001000");
    topic_expect(vh, "*", keys, "111111");
    topic_expect(vh, "#", keys, "111111");
}

static void test_topic_prune_and_rebind(void **state)
{
    route_vhost *vh = *state;
    bind_q(vh, "amq.topic", "q1", "a.b.c", NO_ARGS);
    bind_q(vh, "amq.topic", "q2", "a.b", NO_ARGS);
    assert_true(util_unbind(vh, "amq.topic", "q1", false, "a.b.c", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "amq.topic", "a.b.c"), "");
    assert_string_equal(util_route(vh, "amq.topic", "a.b"), "q2");
    assert_true(util_unbind(vh, "amq.topic", "q2", false, "a.b", NO_ARGS, &err));
    bind_q(vh, "amq.topic", "q1", "a.b.c", NO_ARGS);
    assert_string_equal(util_route(vh, "amq.topic", "a.b.c"), "q1");
    assert_string_equal(util_route(vh, "amq.topic", "a.b"), "");
}

static void test_topic_two_exchanges_isolated(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "t2", "topic", false, false, NO_ARGS, &err));
    bind_q(vh, "amq.topic", "q1", "a.*", NO_ARGS);
    bind_q(vh, "t2", "q2", "a.#", NO_ARGS);
    assert_string_equal(util_route(vh, "amq.topic", "a.b"), "q1");
    assert_string_equal(util_route(vh, "t2", "a.b"), "q2");
    assert_string_equal(util_route(vh, "t2", "a"), "q2");
    assert_true(route_exchange_delete(vh, B("t2"), false, NULL, &err));
    assert_string_equal(util_route(vh, "amq.topic", "a.b"), "q1");
}

static void test_topic_long_key(void **state)
{
    route_vhost *vh = *state;
    char key[256];
    memset(key, '.', 255);
    key[255] = '\0'; /* 256 empty words */
    bind_q(vh, "amq.topic", "q1", "#.#.#.#", NO_ARGS);
    bind_q(vh, "amq.topic", "q2", "*.#", NO_ARGS);
    bind_q(vh, "amq.topic", "q3", "#.a", NO_ARGS);
    assert_string_equal(util_route(vh, "amq.topic", key), "q1,q2");
}

/* --- topic against a reference matcher ------------------------------------- */

/* A direct recursive reading of the topic rules over split words. */
static bool ref_match(const amqp_bytes *p, uint32_t pn, const amqp_bytes *k, uint32_t kn)
{
    if (pn == 0) return kn == 0;
    if (amqp_bytes_equal(p[0], B("#"))) {
        for (uint32_t skip = 0; skip <= kn; skip++)
            if (ref_match(p + 1, pn - 1, k + skip, kn - skip)) return true;
        return false;
    }
    if (kn == 0) return false;
    if (!amqp_bytes_equal(p[0], B("*")) && !amqp_bytes_equal(p[0], k[0])) return false;
    return ref_match(p + 1, pn - 1, k + 1, kn - 1);
}

static uint32_t ref_split(const char *s, amqp_bytes *w)
{
    uint32_t n = 0;
    if (*s == '\0') return 0;
    const char *start = s;
    for (;; s++) {
        if (*s == '.' || *s == '\0') {
            w[n++] = (amqp_bytes){(const uint8_t *)start, (uint32_t)(s - start)};
            if (*s == '\0') return n;
            start = s + 1;
        }
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void random_key(char *out, bool pattern)
{
    static const char *const words[] = {"a", "b", "c", "", "*", "#"};
    uint32_t n = rng(pattern ? 6 : 7);
    out[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0) strcat(out, ".");
        /* Keys mostly avoid the wildcard words, patterns favour them. */
        strcat(out, words[rng(pattern ? 6 : (rng(8) == 0 ? 6 : 4))]);
    }
}

#define RANDOM_PATTERNS 300

static void check_random_keys(route_vhost *vh, char patterns[][64], const bool *bound, int keys)
{
    for (int k = 0; k < keys; k++) {
        char key[64], expect[8192] = "", name[16];
        random_key(key, false);
        amqp_bytes kw[64], pw[64];
        uint32_t kn = ref_split(key, kw);
        /* Expected queue names, sorted as strings: q000..q299. */
        for (int i = 0; i < RANDOM_PATTERNS; i++) {
            if (!bound[i]) continue;
            uint32_t pn = ref_split(patterns[i], pw);
            if (!ref_match(pw, pn, kw, kn)) continue;
            snprintf(name, sizeof(name), "q%03d", i);
            if (expect[0] != '\0') strcat(expect, ",");
            strcat(expect, name);
        }
        const char *got = util_route(vh, "amq.topic", key);
        if (strcmp(got, expect) != 0)
            fail_msg("key '%s': trie '%s' reference '%s'", key, got, expect);
    }
}

static void test_topic_random_against_reference(void **state)
{
    route_vhost *vh = *state;
    static char patterns[RANDOM_PATTERNS][64];
    static bool bound[RANDOM_PATTERNS];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < RANDOM_PATTERNS; i++) {
            char name[16];
            snprintf(name, sizeof(name), "q%03d", i);
            if (bound[i]) assert_true(util_unbind(vh, "amq.topic", name, false, patterns[i], NO_ARGS, &err));
            bound[i] = rng(4) != 0;
            random_key(patterns[i], true);
            if (bound[i]) bind_q(vh, "amq.topic", name, patterns[i], NO_ARGS);
        }
        check_random_keys(vh, patterns, bound, 2000);
    }
    /* Unbind everything: the trie must shrink back to its root. */
    for (int i = 0; i < RANDOM_PATTERNS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "q%03d", i);
        if (bound[i]) assert_true(util_unbind(vh, "amq.topic", name, false, patterns[i], NO_ARGS, &err));
        bound[i] = false;
    }
    assert_int_equal(route_exchange_source_count(route_exchange_find(vh, B("amq.topic"))), 0);
    check_random_keys(vh, patterns, bound, 100);
}

/* --- headers ----------------------------------------------------------------- */

/* Table helper: entries given as (key, field) pairs, written to storage. */
typedef struct kv {
    const char *key;
    amqp_field value;
} kv;

static amqp_table table_of(uint8_t *buf, size_t cap, const kv *e, size_t n)
{
    amqp_table_builder b;
    amqp_table_builder_init(&b, buf, cap);
    for (size_t i = 0; i < n; i++) amqp_table_add(&b, e[i].key, &e[i].value);
    amqp_table t;
    assert_true(amqp_table_builder_finish(&b, &t));
    return t;
}

#define STR(s) ((amqp_field){.type = AMQP_FIELD_LONGSTR, .v.bytes = {(const uint8_t *)(s), sizeof(s) - 1}})
#define BIN(s) ((amqp_field){.type = AMQP_FIELD_BYTES, .v.bytes = {(const uint8_t *)(s), sizeof(s) - 1}})
#define I32(x) ((amqp_field){.type = AMQP_FIELD_INT32, .v.i32 = (x)})
#define I64(x) ((amqp_field){.type = AMQP_FIELD_INT64, .v.i64 = (x)})
#define U8(x) ((amqp_field){.type = AMQP_FIELD_UINT8, .v.u8 = (x)})
#define DBL(x) ((amqp_field){.type = AMQP_FIELD_DOUBLE, .v.f64 = (x)})
#define BOOL(x) ((amqp_field){.type = AMQP_FIELD_BOOL, .v.boolean = (x)})
#define VOID_ ((amqp_field){.type = AMQP_FIELD_VOID})

static uint8_t hbuf[4][4096];

static void hbind(route_vhost *vh, const char *q, const kv *e, size_t n)
{
    bind_q(vh, "amq.headers", q, "", table_of(hbuf[0], sizeof(hbuf[0]), e, n));
}

static const char *hroute(route_vhost *vh, const kv *e, size_t n)
{
    return util_route_h(vh, "amq.headers", "ignored", table_of(hbuf[1], sizeof(hbuf[1]), e, n));
}

static void test_headers_all_default(void **state)
{
    route_vhost *vh = *state;
    kv pat[] = {{"a", STR("1")}, {"b", STR("2")}};
    hbind(vh, "q", pat, 2);
    kv both[] = {{"b", STR("2")}, {"a", STR("1")}, {"c", STR("x")}};
    kv one[] = {{"a", STR("1")}};
    kv wrong[] = {{"a", STR("1")}, {"b", STR("3")}};
    assert_string_equal(hroute(vh, both, 3), "q");
    assert_string_equal(hroute(vh, one, 1), "");
    assert_string_equal(hroute(vh, wrong, 2), "");
    assert_string_equal(util_route_h(vh, "amq.headers", "", NO_ARGS), "");
}

static void test_headers_any(void **state)
{
    route_vhost *vh = *state;
    kv pat[] = {{"x-match", STR("any")}, {"a", STR("1")}, {"b", STR("2")}};
    hbind(vh, "q", pat, 3);
    kv one[] = {{"b", STR("2")}};
    kv none[] = {{"a", STR("2")}, {"b", STR("1")}};
    assert_string_equal(hroute(vh, one, 1), "q");
    assert_string_equal(hroute(vh, none, 2), "");
    assert_string_equal(util_route_h(vh, "amq.headers", "", NO_ARGS), "");
}

static void test_headers_empty_binding(void **state)
{
    route_vhost *vh = *state;
    hbind(vh, "all", NULL, 0);
    kv any[] = {{"x-match", STR("any")}};
    hbind(vh, "any", any, 1);
    kv h[] = {{"a", STR("1")}};
    /* all over nothing is true; any over nothing is false (RabbitMQ). */
    assert_string_equal(hroute(vh, h, 1), "all");
    assert_string_equal(util_route_h(vh, "amq.headers", "", NO_ARGS), "all");
}

static void test_headers_x_args_ignored(void **state)
{
    route_vhost *vh = *state;
    kv pat[] = {{"x-match", STR("all")}, {"x-foo", STR("bar")}, {"a", STR("1")}};
    hbind(vh, "q", pat, 3);
    kv h[] = {{"a", STR("1")}};
    assert_string_equal(hroute(vh, h, 1), "q");
    kv pat_any[] = {{"x-match", STR("any")}, {"x-foo", STR("bar")}};
    hbind(vh, "q2", pat_any, 2);
    kv hx[] = {{"x-foo", STR("bar")}};
    assert_string_equal(hroute(vh, hx, 1), "");
}

static void test_headers_with_x(void **state)
{
    route_vhost *vh = *state;
    kv all[] = {{"x-match", STR("all-with-x")}, {"x-foo", STR("bar")}, {"a", STR("1")}};
    kv any[] = {{"x-match", STR("any-with-x")}, {"x-foo", STR("bar")}, {"b", STR("2")}};
    hbind(vh, "qall", all, 3);
    hbind(vh, "qany", any, 3);
    kv h1[] = {{"a", STR("1")}};
    kv h2[] = {{"a", STR("1")}, {"x-foo", STR("bar")}};
    kv h3[] = {{"x-foo", STR("bar")}};
    assert_string_equal(hroute(vh, h1, 1), "");
    assert_string_equal(hroute(vh, h2, 2), "qall,qany");
    assert_string_equal(hroute(vh, h3, 1), "qany");
    /* x-match itself never has to appear in the headers. */
    kv h4[] = {{"x-match", STR("nothing")}, {"b", STR("2")}};
    assert_string_equal(hroute(vh, h4, 2), "qany");
}

static void test_headers_void_presence(void **state)
{
    route_vhost *vh = *state;
    kv pat[] = {{"a", VOID_}};
    hbind(vh, "q", pat, 1);
    kv h1[] = {{"a", I32(5)}};
    kv h2[] = {{"a", STR("anything")}};
    kv h3[] = {{"b", STR("1")}};
    assert_string_equal(hroute(vh, h1, 1), "q");
    assert_string_equal(hroute(vh, h2, 1), "q");
    assert_string_equal(hroute(vh, h3, 1), "");
}

static void test_headers_typed_values(void **state)
{
    route_vhost *vh = *state;
    kv pi[] = {{"n", I32(1)}};
    kv ps[] = {{"s", STR("abc")}};
    kv pb[] = {{"t", BOOL(true)}};
    kv pd[] = {{"d", DBL(2.5)}};
    hbind(vh, "qi", pi, 1);
    hbind(vh, "qs", ps, 1);
    hbind(vh, "qb", pb, 1);
    hbind(vh, "qd", pd, 1);
    /* Integers compare by value whatever their wire type, floats too. */
    kv h1[] = {{"n", I64(1)}};
    kv h2[] = {{"n", U8(1)}};
    kv h3[] = {{"n", DBL(1.0)}};
    kv h4[] = {{"n", I32(2)}};
    kv h5[] = {{"n", STR("1")}};
    assert_string_equal(hroute(vh, h1, 1), "qi");
    assert_string_equal(hroute(vh, h2, 1), "qi");
    assert_string_equal(hroute(vh, h3, 1), "qi");
    assert_string_equal(hroute(vh, h4, 1), "");
    assert_string_equal(hroute(vh, h5, 1), "");
    /* Longstr and byte array are both binaries to RabbitMQ. */
    kv h6[] = {{"s", BIN("abc")}};
    kv h7[] = {{"s", STR("abd")}};
    assert_string_equal(hroute(vh, h6, 1), "qs");
    assert_string_equal(hroute(vh, h7, 1), "");
    kv h8[] = {{"t", BOOL(true)}};
    kv h9[] = {{"t", I32(1)}};
    assert_string_equal(hroute(vh, h8, 1), "qb");
    assert_string_equal(hroute(vh, h9, 1), "");
    kv h10[] = {{"d", DBL(2.5)}};
    kv h11[] = {{"d", ((amqp_field){.type = AMQP_FIELD_FLOAT, .v.f32 = 2.5f})}};
    assert_string_equal(hroute(vh, h10, 1), "qd");
    assert_string_equal(hroute(vh, h11, 1), "qd");
}

static void test_headers_many_headers(void **state)
{
    route_vhost *vh = *state;
    kv pat[] = {{"k150", STR("v")}, {"k299", STR("v")}};
    hbind(vh, "q", pat, 2);
    static kv h[300];
    static char names[300][8];
    for (int i = 0; i < 300; i++) {
        snprintf(names[i], sizeof(names[i]), "k%d", 299 - i);
        h[i].key = names[i];
        h[i].value = STR("v");
    }
    /* 300 headers: more than are sorted on the stack, matched by lookup. */
    static uint8_t big[8192];
    amqp_table t = table_of(big, sizeof(big), h, 300);
    assert_string_equal(util_route_h(vh, "amq.headers", "", t), "q");
    t = table_of(big, sizeof(big), h + 1, 200); /* k298 .. k99 */
    assert_string_equal(util_route_h(vh, "amq.headers", "", t), "");
}

static void test_headers_via_e2e(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "h2", "headers", false, false, NO_ARGS, &err));
    kv pat[] = {{"a", STR("1")}};
    assert_true(util_bind(vh, "amq.headers", "h2", true, "", table_of(hbuf[2], 4096, pat, 1), &err));
    util_queue(vh, "q", 99, 0);
    kv pat2[] = {{"b", STR("2")}};
    assert_true(util_bind(vh, "h2", "q", false, "", table_of(hbuf[3], 4096, pat2, 1), &err));
    kv h[] = {{"a", STR("1")}, {"b", STR("2")}};
    assert_string_equal(hroute(vh, h, 2), "q");
    kv h2[] = {{"b", STR("2")}};
    assert_string_equal(hroute(vh, h2, 1), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_topic_rabbitmq_suite),
        T(test_topic_rabbitmq_suite_after_removal),
        T(test_topic_empty_key_and_words),
        T(test_topic_hash_patterns),
        T(test_topic_star_literal_words),
        T(test_topic_prune_and_rebind),
        T(test_topic_two_exchanges_isolated),
        T(test_topic_long_key),
        T(test_topic_random_against_reference),
        T(test_headers_all_default),
        T(test_headers_any),
        T(test_headers_empty_binding),
        T(test_headers_x_args_ignored),
        T(test_headers_with_x),
        T(test_headers_void_presence),
        T(test_headers_typed_values),
        T(test_headers_many_headers),
        T(test_headers_via_e2e),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
