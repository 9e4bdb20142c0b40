/* Unit tests for route/: the vhost, exchanges (predeclared, declare and its
 * RabbitMQ reply texts, delete, auto-delete), the queue directory, bindings,
 * the default exchange, exchange-to-exchange routing, alternate exchanges,
 * deduplication, grouping by shard, and the hash map underneath. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "route/route_map.h"
#include "tests/route/route_util.h"

static route_error err;

static int setup(void **state)
{
    route_vhost *vh = route_vhost_create(B("/"));
    util_queue(vh, "q1", 1, 0);
    util_queue(vh, "q2", 2, 1);
    util_queue(vh, "q3", 3, 2);
    memset(&err, 0, sizeof(err));
    *state = vh;
    return 0;
}

static int teardown(void **state)
{
    route_vhost_destroy(*state);
    return 0;
}

/* An arguments table with one longstr entry (static storage). */
static amqp_table args_str(const char *key, const char *value)
{
    static uint8_t buf[8][512];
    static int next;
    uint8_t *p = buf[next++ % 8];
    amqp_table_builder b;
    amqp_table_builder_init(&b, p, 512);
    amqp_table_add_cstr(&b, key, value);
    amqp_table t;
    assert_true(amqp_table_builder_finish(&b, &t));
    return t;
}

static void expect_error(uint16_t code, const char *text)
{
    assert_int_equal(err.reply_code, code);
    assert_string_equal(err.text, text);
}

/* --- predeclared and declare ------------------------------------------- */

static void test_predeclared(void **state)
{
    route_vhost *vh = *state;
    const char *names[] = {"", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"};
    route_exchange_type types[] = {ROUTE_EXCHANGE_DIRECT, ROUTE_EXCHANGE_DIRECT,
                                   ROUTE_EXCHANGE_FANOUT, ROUTE_EXCHANGE_TOPIC,
                                   ROUTE_EXCHANGE_HEADERS, ROUTE_EXCHANGE_HEADERS};
    for (size_t i = 0; i < 6; i++) {
        route_exchange *x = route_exchange_find(vh, B(names[i]));
        assert_non_null(x);
        const route_exchange_info *info = route_exchange_info_of(x);
        assert_int_equal(info->type, types[i]);
        assert_true(info->durable);
        assert_false(info->auto_delete);
        assert_false(info->internal);
    }
    assert_int_equal(route_vhost_exchange_count(vh), 6);
    assert_int_equal(route_vhost_queue_count(vh), 3);
}

static void test_declare_new_and_redeclare(void **state)
{
    route_vhost *vh = *state;
    route_exchange_spec s = {.name = B("x"), .type = B("topic"), .durable = true};
    route_exchange *x = NULL, *y = NULL;
    bool created = false;
    assert_true(route_exchange_declare(vh, &s, &x, &created, &err));
    assert_true(created);
    assert_non_null(x);
    assert_true(route_exchange_declare(vh, &s, &y, &created, &err));
    assert_false(created);
    assert_ptr_equal(x, y);
    assert_ptr_equal(route_exchange_find(vh, B("x")), x);
    assert_string_equal(route_exchange_type_name(route_exchange_info_of(x)->type), "topic");
}

static void test_declare_inequivalent_durable(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "x", "direct", true, false, NO_ARGS, &err));
    assert_false(util_declare(vh, "x", "direct", false, false, NO_ARGS, &err));
    expect_error(406, "inequivalent arg 'durable' for exchange 'x' in vhost '/': received 'false' "
                      "but current is 'true'");
}

static void test_declare_inequivalent_type(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "x", "direct", false, false, NO_ARGS, &err));
    assert_false(util_declare(vh, "x", "fanout", false, false, NO_ARGS, &err));
    expect_error(406, "inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' "
                      "but current is 'direct'");
}

static void test_declare_inequivalent_auto_delete(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "x", "direct", false, true, NO_ARGS, &err));
    assert_false(util_declare(vh, "x", "direct", false, false, NO_ARGS, &err));
    expect_error(406, "inequivalent arg 'auto_delete' for exchange 'x' in vhost '/': received "
                      "'false' but current is 'true'");
}

static void test_declare_inequivalent_internal(void **state)
{
    route_vhost *vh = *state;
    route_exchange_spec s = {.name = B("x"), .type = B("direct"), .internal = true};
    assert_true(route_exchange_declare(vh, &s, NULL, NULL, &err));
    s.internal = false;
    assert_false(route_exchange_declare(vh, &s, NULL, NULL, &err));
    expect_error(406, "inequivalent arg 'internal' for exchange 'x' in vhost '/': received "
                      "'false' but current is 'true'");
}

static void test_declare_inequivalent_alternate(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "x", "direct", false, false, args_str("alternate-exchange", "a"),
                             &err));
    assert_false(util_declare(vh, "x", "direct", false, false,
                              args_str("alternate-exchange", "b"), &err));
    expect_error(406, "inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': "
                      "received the value 'b' of type 'longstr' but current is the value 'a' of "
                      "type 'longstr'");
    assert_false(util_declare(vh, "x", "direct", false, false, NO_ARGS, &err));
    expect_error(406, "inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': "
                      "received none but current is the value 'a' of type 'longstr'");
    /* The same alternate exchange is equivalent; other arguments are not compared. */
    assert_true(util_declare(vh, "x", "direct", false, false, args_str("alternate-exchange", "a"),
                             &err));
    assert_true(util_declare(vh, "y", "direct", false, false, args_str("x-foo", "1"), &err));
    assert_true(util_declare(vh, "y", "direct", false, false, args_str("x-foo", "2"), &err));
}

static void test_declare_alternate_bad_type(void **state)
{
    route_vhost *vh = *state;
    uint8_t buf[64];
    amqp_table_builder b;
    amqp_table_builder_init(&b, buf, sizeof(buf));
    amqp_table_add_int32(&b, "alternate-exchange", 5);
    amqp_table t;
    assert_true(amqp_table_builder_finish(&b, &t));
    assert_false(util_declare(vh, "x", "direct", false, false, t, &err));
    expect_error(406, "invalid type 'signedint' for arg 'alternate-exchange' in exchange 'x' in "
                      "vhost '/'");
    assert_null(route_exchange_find(vh, B("x")));
}

static void test_declare_unknown_type(void **state)
{
    route_vhost *vh = *state;
    assert_false(util_declare(vh, "x", "bogus", false, false, NO_ARGS, &err));
    expect_error(503, "unknown exchange type 'bogus'");
    assert_null(route_exchange_find(vh, B("x")));
}

static void test_declare_reserved_prefix(void **state)
{
    route_vhost *vh = *state;
    assert_false(util_declare(vh, "amq.x", "direct", false, false, NO_ARGS, &err));
    expect_error(403, "exchange name 'amq.x' contains reserved prefix 'amq.*'");
    /* An existing amq. exchange redeclared equivalently is fine, as in RabbitMQ. */
    assert_true(util_declare(vh, "amq.direct", "direct", true, false, NO_ARGS, &err));
    assert_false(util_declare(vh, "amq.direct", "fanout", true, false, NO_ARGS, &err));
    assert_int_equal(err.reply_code, 406);
    /* Passive: no prefix check, only existence. */
    route_exchange_spec s = {.name = B("amq.nope"), .passive = true};
    assert_false(route_exchange_declare(vh, &s, NULL, NULL, &err));
    expect_error(404, "no exchange 'amq.nope' in vhost '/'");
}

static void test_declare_default_refused(void **state)
{
    route_vhost *vh = *state;
    assert_false(util_declare(vh, "", "direct", true, false, NO_ARGS, &err));
    expect_error(403, "operation not permitted on the default exchange");
    route_exchange_spec s = {.name = B(""), .passive = true};
    assert_false(route_exchange_declare(vh, &s, NULL, NULL, &err));
    assert_int_equal(err.reply_code, 403);
}

static void test_declare_passive(void **state)
{
    route_vhost *vh = *state;
    route_exchange_spec s = {.name = B("x"), .type = B("ignored"), .passive = true};
    assert_false(route_exchange_declare(vh, &s, NULL, NULL, &err));
    expect_error(404, "no exchange 'x' in vhost '/'");
    assert_true(util_declare(vh, "x", "fanout", false, false, NO_ARGS, &err));
    route_exchange *x = NULL;
    bool created = true;
    assert_true(route_exchange_declare(vh, &s, &x, &created, &err));
    assert_false(created);
    assert_ptr_equal(x, route_exchange_find(vh, B("x")));
}

static void test_declare_keeps_arguments(void **state)
{
    route_vhost *vh = *state;
    amqp_table a = args_str("alternate-exchange", "ae");
    assert_true(util_declare(vh, "x", "direct", false, false, a, &err));
    const route_exchange_info *i = route_exchange_info_of(route_exchange_find(vh, B("x")));
    assert_int_equal(i->arguments.len, a.len);
    assert_memory_equal(i->arguments.data, a.data, a.len);
    assert_true(amqp_bytes_equal(i->alternate_exchange, B("ae")));
    assert_ptr_not_equal(i->arguments.data, a.data); /* a copy */
}

static void test_lookup_not_found(void **state)
{
    route_vhost *vh = route_vhost_create(B("prod"));
    route_exchange *x = (route_exchange *)1;
    assert_false(route_exchange_lookup(vh, B("nope"), &x, &err));
    assert_null(x);
    expect_error(404, "no exchange 'nope' in vhost 'prod'");
    assert_true(route_exchange_lookup(vh, B("amq.topic"), &x, &err));
    assert_non_null(x);
    route_vhost_destroy(vh);
    (void)state;
}

/* --- delete -------------------------------------------------------------- */

static void test_delete_refusals(void **state)
{
    route_vhost *vh = *state;
    bool deleted = true;
    assert_false(route_exchange_delete(vh, B(""), false, &deleted, &err));
    expect_error(403, "operation not permitted on the default exchange");
    assert_false(route_exchange_delete(vh, B("amq.direct"), false, &deleted, &err));
    expect_error(403, "deletion of system exchange 'amq.direct' in vhost '/' not allowed");
    assert_non_null(route_exchange_find(vh, B("amq.direct")));
}

static void test_delete_missing_ok(void **state)
{
    route_vhost *vh = *state;
    bool deleted = true;
    assert_true(route_exchange_delete(vh, B("nope"), true, &deleted, &err));
    assert_false(deleted);
}

static void test_delete_if_unused(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "x", "direct", false, false, NO_ARGS, &err));
    assert_true(util_bind(vh, "x", "q1", false, "k", NO_ARGS, &err));
    bool deleted = false;
    assert_false(route_exchange_delete(vh, B("x"), true, &deleted, &err));
    expect_error(406, "exchange 'x' in vhost '/' in use");
    /* Bound only as a destination: still unused as a source. */
    assert_true(util_declare(vh, "y", "fanout", false, false, NO_ARGS, &err));
    assert_true(util_bind(vh, "x", "y", true, "k", NO_ARGS, &err));
    assert_true(route_exchange_delete(vh, B("y"), true, &deleted, &err));
    assert_true(deleted);
    assert_int_equal(route_exchange_source_count(route_exchange_find(vh, B("x"))), 1);
    assert_true(route_exchange_delete(vh, B("x"), false, &deleted, &err));
    assert_true(deleted);
    assert_null(route_exchange_find(vh, B("x")));
    assert_int_equal(route_queue_binding_count(route_queue_find(vh, B("q1"))), 0);
    assert_int_equal(route_vhost_binding_count(vh), 0);
}

static int deleted_count;
static char deleted_names[8][64];

static void on_deleted(void *ctx, const route_exchange_info *x)
{
    assert_ptr_equal(ctx, &deleted_count);
    snprintf(deleted_names[deleted_count++ % 8], 64, "%.*s", (int)x->name.len,
             (const char *)x->name.data);
}

static void test_auto_delete_on_unbind(void **state)
{
    route_vhost *vh = *state;
    deleted_count = 0;
    route_vhost_set_deleted_hook(vh, on_deleted, &deleted_count);
    assert_true(util_declare(vh, "ad", "direct", false, true, NO_ARGS, &err));
    assert_true(util_bind(vh, "ad", "q1", false, "a", NO_ARGS, &err));
    assert_true(util_bind(vh, "ad", "q2", false, "b", NO_ARGS, &err));
    assert_true(util_unbind(vh, "ad", "q1", false, "a", NO_ARGS, &err));
    assert_non_null(route_exchange_find(vh, B("ad")));
    assert_int_equal(deleted_count, 0);
    assert_true(util_unbind(vh, "ad", "q2", false, "b", NO_ARGS, &err));
    assert_null(route_exchange_find(vh, B("ad")));
    assert_int_equal(deleted_count, 1);
    assert_string_equal(deleted_names[0], "ad");
}

static void test_auto_delete_not_before_first_binding(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "ad", "fanout", false, true, NO_ARGS, &err));
    /* Unbinding a missing binding removes nothing and deletes nothing. */
    assert_true(util_unbind(vh, "ad", "q1", false, "", NO_ARGS, &err));
    assert_non_null(route_exchange_find(vh, B("ad")));
}

static void test_auto_delete_on_queue_remove(void **state)
{
    route_vhost *vh = *state;
    deleted_count = 0;
    route_vhost_set_deleted_hook(vh, on_deleted, &deleted_count);
    assert_true(util_declare(vh, "ad1", "fanout", false, true, NO_ARGS, &err));
    assert_true(util_declare(vh, "ad2", "fanout", false, true, NO_ARGS, &err));
    assert_true(util_declare(vh, "keep", "fanout", false, false, NO_ARGS, &err));
    assert_true(util_bind(vh, "ad1", "ad2", true, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "ad2", "q1", false, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "keep", "q1", false, "", NO_ARGS, &err));
    /* Removing q1 empties ad2, whose deletion empties ad1: a cascade. */
    route_queue_remove(vh, route_queue_find(vh, B("q1")));
    assert_null(route_queue_find(vh, B("q1")));
    assert_null(route_exchange_find(vh, B("ad1")));
    assert_null(route_exchange_find(vh, B("ad2")));
    assert_non_null(route_exchange_find(vh, B("keep")));
    assert_int_equal(deleted_count, 2);
    assert_int_equal(route_vhost_binding_count(vh), 0);
}

static void test_auto_delete_cycle(void **state)
{
    route_vhost *vh = *state;
    deleted_count = 0;
    route_vhost_set_deleted_hook(vh, on_deleted, &deleted_count);
    assert_true(util_declare(vh, "a", "fanout", false, true, NO_ARGS, &err));
    assert_true(util_declare(vh, "b", "fanout", false, true, NO_ARGS, &err));
    assert_true(util_bind(vh, "a", "b", true, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "b", "a", true, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "a", "a", true, "self", NO_ARGS, &err));
    bool deleted = false;
    assert_true(route_exchange_delete(vh, B("b"), false, &deleted, &err));
    assert_true(deleted);
    /* a still has its self-binding. */
    assert_non_null(route_exchange_find(vh, B("a")));
    assert_true(util_unbind(vh, "a", "a", true, "self", NO_ARGS, &err));
    assert_null(route_exchange_find(vh, B("a")));
    assert_int_equal(deleted_count, 1);
}

static void test_delete_exchange_cascades_sources(void **state)
{
    route_vhost *vh = *state;
    deleted_count = 0;
    route_vhost_set_deleted_hook(vh, on_deleted, &deleted_count);
    assert_true(util_declare(vh, "src", "fanout", false, true, NO_ARGS, &err));
    assert_true(util_declare(vh, "dst", "fanout", false, false, NO_ARGS, &err));
    assert_true(util_bind(vh, "src", "dst", true, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "dst", "q1", false, "", NO_ARGS, &err));
    bool deleted = false;
    assert_true(route_exchange_delete(vh, B("dst"), false, &deleted, &err));
    assert_null(route_exchange_find(vh, B("src")));
    assert_int_equal(deleted_count, 1);
    assert_string_equal(deleted_names[0], "src");
    assert_int_equal(route_queue_binding_count(route_queue_find(vh, B("q1"))), 0);
}

/* --- queues and bindings ------------------------------------------------- */

static void test_queue_directory(void **state)
{
    route_vhost *vh = *state;
    route_queue_spec s = {.name = B("excl"), .queue_id = 77, .shard = 3, .durable = true,
                          .exclusive = true, .auto_delete = true, .owner_conn_id = 9,
                          .arguments = args_str("x-queue-type", "classic")};
    route_queue *q = route_queue_add(vh, &s);
    assert_non_null(q);
    assert_null(route_queue_add(vh, &s)); /* name taken */
    const route_queue_info *i = route_queue_info_of(q);
    assert_int_equal(i->queue_id, 77);
    assert_int_equal(i->shard, 3);
    assert_true(i->durable && i->exclusive && i->auto_delete);
    assert_int_equal(i->owner_conn_id, 9);
    assert_memory_equal(i->arguments.data, s.arguments.data, s.arguments.len);
    assert_ptr_equal(route_queue_find(vh, B("excl")), q);
    route_queue_remove(vh, q);
    assert_null(route_queue_find(vh, B("excl")));
    assert_int_equal(route_vhost_queue_count(vh), 3);
}

static void test_bind_idempotent(void **state)
{
    route_vhost *vh = *state;
    route_binding_spec s = util_spec("amq.direct", "q1", false, "k", NO_ARGS);
    bool created = false;
    assert_true(route_binding_add(vh, &s, &created, &err));
    assert_true(created);
    assert_true(route_binding_add(vh, &s, &created, &err));
    assert_false(created);
    assert_true(route_binding_exists(vh, &s));
    assert_int_equal(route_exchange_source_count(route_exchange_find(vh, B("amq.direct"))), 1);
    assert_int_equal(route_queue_binding_count(route_queue_find(vh, B("q1"))), 1);
    /* Another key, other arguments: distinct bindings. */
    s.routing_key = B("k2");
    assert_true(route_binding_add(vh, &s, &created, &err));
    assert_true(created);
    s.arguments = args_str("a", "1");
    assert_true(route_binding_add(vh, &s, &created, &err));
    assert_true(created);
    assert_int_equal(route_vhost_binding_count(vh), 3);
}

static void test_bind_args_order_ignored(void **state)
{
    route_vhost *vh = *state;
    uint8_t b1[64], b2[64];
    amqp_table_builder b;
    amqp_table t1, t2;
    amqp_table_builder_init(&b, b1, sizeof(b1));
    amqp_table_add_cstr(&b, "a", "1");
    amqp_table_add_cstr(&b, "b", "2");
    assert_true(amqp_table_builder_finish(&b, &t1));
    amqp_table_builder_init(&b, b2, sizeof(b2));
    amqp_table_add_cstr(&b, "b", "2");
    amqp_table_add_cstr(&b, "a", "1");
    assert_true(amqp_table_builder_finish(&b, &t2));
    route_binding_spec s = util_spec("amq.headers", "q1", false, "", t1);
    bool created = false;
    assert_true(route_binding_add(vh, &s, &created, &err));
    assert_true(created);
    s.arguments = t2;
    assert_true(route_binding_add(vh, &s, &created, &err));
    assert_false(created);
    assert_true(route_binding_exists(vh, &s));
    bool removed = false;
    assert_true(route_binding_remove(vh, &s, &removed, &err));
    assert_true(removed);
    assert_int_equal(route_vhost_binding_count(vh), 0);
}

static void test_bind_default_refused(void **state)
{
    route_vhost *vh = *state;
    assert_false(util_bind(vh, "", "q1", false, "q1", NO_ARGS, &err));
    expect_error(403, "operation not permitted on the default exchange");
    assert_false(util_unbind(vh, "", "q1", false, "q1", NO_ARGS, &err));
    expect_error(403, "operation not permitted on the default exchange");
    assert_false(util_bind(vh, "amq.fanout", "", true, "", NO_ARGS, &err));
    assert_int_equal(err.reply_code, 403);
}

static void test_bind_missing(void **state)
{
    route_vhost *vh = *state;
    assert_false(util_bind(vh, "nope", "q1", false, "", NO_ARGS, &err));
    expect_error(404, "no exchange 'nope' in vhost '/'");
    assert_false(util_bind(vh, "amq.direct", "nq", false, "", NO_ARGS, &err));
    expect_error(404, "no queue 'nq' in vhost '/'");
    assert_false(util_bind(vh, "amq.direct", "nx", true, "", NO_ARGS, &err));
    expect_error(404, "no exchange 'nx' in vhost '/'");
    /* Source checked first. */
    assert_false(util_bind(vh, "nope", "nq", false, "", NO_ARGS, &err));
    expect_error(404, "no exchange 'nope' in vhost '/'");
}

static void test_unbind_missing_binding_ok(void **state)
{
    route_vhost *vh = *state;
    route_binding_spec s = util_spec("amq.direct", "q1", false, "k", NO_ARGS);
    bool removed = true;
    assert_true(route_binding_remove(vh, &s, &removed, &err));
    assert_false(removed);
    s.destination = B("missing");
    assert_false(route_binding_remove(vh, &s, &removed, &err));
    expect_error(404, "no queue 'missing' in vhost '/'");
    assert_false(route_binding_exists(vh, &s));
}

static void test_bind_exclusive_queue(void **state)
{
    route_vhost *vh = *state;
    route_queue_spec qs = {.name = B("ex"), .queue_id = 5, .exclusive = true, .owner_conn_id = 42};
    assert_non_null(route_queue_add(vh, &qs));
    route_binding_spec s = util_spec("amq.direct", "ex", false, "k", NO_ARGS);
    s.conn_id = 7;
    assert_false(route_binding_add(vh, &s, NULL, &err));
    expect_error(405, "cannot obtain exclusive access to locked queue 'ex' in vhost '/'. It could "
                      "be originally declared on another connection or the exclusive property "
                      "value does not match that of the original declaration.");
    s.conn_id = 42;
    assert_true(route_binding_add(vh, &s, NULL, &err));
    s.conn_id = ROUTE_CONN_ANY;
    assert_true(route_binding_exists(vh, &s));
}

static void test_bind_headers_xmatch_invalid(void **state)
{
    route_vhost *vh = *state;
    assert_false(util_bind(vh, "amq.headers", "q1", false, "", args_str("x-match", "some"), &err));
    expect_error(406, "Invalid x-match field value <<\"some\">>; expected all, any, all-with-x, or "
                      "any-with-x");
    uint8_t buf[64];
    amqp_table_builder b;
    amqp_table_builder_init(&b, buf, sizeof(buf));
    amqp_table_add_int32(&b, "x-match", 1);
    amqp_table t;
    assert_true(amqp_table_builder_finish(&b, &t));
    assert_false(util_bind(vh, "amq.headers", "q1", false, "", t, &err));
    expect_error(406, "Invalid x-match field type signedint (value 1); expected longstr");
    /* Other exchange types do not look at x-match. */
    assert_true(util_bind(vh, "amq.direct", "q1", false, "", args_str("x-match", "some"), &err));
}

/* --- routing: direct, fanout, default ------------------------------------ */

static void test_default_exchange(void **state)
{
    route_vhost *vh = *state;
    assert_string_equal(util_route(vh, "", "q2"), "q2");
    assert_string_equal(util_route(vh, "", "nope"), "");
    assert_string_equal(util_route(vh, "", ""), "");
    assert_int_equal(route_exchange_source_count(route_exchange_find(vh, B(""))), 0);
}

static void test_direct(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_bind(vh, "amq.direct", "q1", false, "a", NO_ARGS, &err));
    assert_true(util_bind(vh, "amq.direct", "q2", false, "a", NO_ARGS, &err));
    assert_true(util_bind(vh, "amq.direct", "q3", false, "b", NO_ARGS, &err));
    assert_true(util_bind(vh, "amq.direct", "q3", false, "", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "amq.direct", "a"), "q1,q2");
    assert_string_equal(util_route(vh, "amq.direct", "b"), "q3");
    assert_string_equal(util_route(vh, "amq.direct", ""), "q3");
    assert_string_equal(util_route(vh, "amq.direct", "c"), "");
    assert_string_equal(util_route(vh, "amq.direct", "A"), "");
    assert_true(util_unbind(vh, "amq.direct", "q1", false, "a", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "amq.direct", "a"), "q2");
}

static void test_direct_same_key_two_exchanges(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "d2", "direct", false, false, NO_ARGS, &err));
    assert_true(util_bind(vh, "amq.direct", "q1", false, "k", NO_ARGS, &err));
    assert_true(util_bind(vh, "d2", "q2", false, "k", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "amq.direct", "k"), "q1");
    assert_string_equal(util_route(vh, "d2", "k"), "q2");
}

static void test_direct_dedup_args(void **state)
{
    route_vhost *vh = *state;
    /* Two bindings, same key and queue, different arguments: delivered once. */
    assert_true(util_bind(vh, "amq.direct", "q1", false, "k", NO_ARGS, &err));
    assert_true(util_bind(vh, "amq.direct", "q1", false, "k", args_str("a", "b"), &err));
    assert_string_equal(util_route(vh, "amq.direct", "k"), "q1");
}

static void test_fanout(void **state)
{
    route_vhost *vh = *state;
    assert_string_equal(util_route(vh, "amq.fanout", "x"), "");
    assert_true(util_bind(vh, "amq.fanout", "q1", false, "ignored", NO_ARGS, &err));
    assert_true(util_bind(vh, "amq.fanout", "q2", false, "", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "amq.fanout", "anything"), "q1,q2");
    assert_string_equal(util_route(vh, "amq.fanout", ""), "q1,q2");
}

/* --- exchange-to-exchange and alternate exchanges ------------------------- */

static void test_e2e_chain(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "x1", "topic", false, false, NO_ARGS, &err));
    assert_true(util_declare(vh, "x2", "direct", false, false, NO_ARGS, &err));
    assert_true(util_declare(vh, "x3", "fanout", false, false, NO_ARGS, &err));
    assert_true(util_bind(vh, "x1", "x2", true, "a.*", NO_ARGS, &err));
    assert_true(util_bind(vh, "x2", "x3", true, "a.b", NO_ARGS, &err));
    assert_true(util_bind(vh, "x3", "q3", false, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "x2", "q2", false, "a.c", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "x1", "a.b"), "q3");
    assert_string_equal(util_route(vh, "x1", "a.c"), "q2");
    assert_string_equal(util_route(vh, "x1", "b.b"), "");
    assert_int_equal(route_exchange_destination_count(route_exchange_find(vh, B("x2"))), 1);
}

static void test_e2e_cycle(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "a", "fanout", false, false, NO_ARGS, &err));
    assert_true(util_declare(vh, "b", "fanout", false, false, NO_ARGS, &err));
    assert_true(util_bind(vh, "a", "b", true, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "b", "a", true, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "a", "a", true, "", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "a", "k"), "");
    assert_true(util_bind(vh, "b", "q1", false, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "a", "q2", false, "", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "a", "k"), "q1,q2");
    assert_string_equal(util_route(vh, "b", "k"), "q1,q2");
}

static void test_e2e_diamond_dedup(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "top", "fanout", false, false, NO_ARGS, &err));
    assert_true(util_declare(vh, "l", "fanout", false, false, NO_ARGS, &err));
    assert_true(util_declare(vh, "r", "fanout", false, false, NO_ARGS, &err));
    assert_true(util_bind(vh, "top", "l", true, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "top", "r", true, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "l", "q1", false, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "r", "q1", false, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "top", "q1", false, "", NO_ARGS, &err));
    route_result r;
    const route_queue_info *buf[8];
    route_result_init(&r, buf, 8);
    assert_true(route_publish(vh, route_exchange_find(vh, B("top")), B(""), NO_ARGS, &r));
    assert_int_equal(r.count, 1);
    assert_int_equal(r.queues[0]->queue_id, 1);
}

static void test_alternate_exchange(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "main", "direct", false, false,
                             args_str("alternate-exchange", "ae"), &err));
    assert_true(util_bind(vh, "main", "q1", false, "known", NO_ARGS, &err));
    /* The AE does not exist yet: unroutable is just unroutable. */
    assert_string_equal(util_route(vh, "main", "other"), "");
    assert_true(util_declare(vh, "ae", "fanout", false, false, NO_ARGS, &err));
    assert_true(util_bind(vh, "ae", "q2", false, "", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "main", "other"), "q2");
    assert_string_equal(util_route(vh, "main", "known"), "q1");
}

static void test_alternate_exchange_cycle(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "a", "direct", false, false, args_str("alternate-exchange", "b"),
                             &err));
    assert_true(util_declare(vh, "b", "direct", false, false, args_str("alternate-exchange", "a"),
                             &err));
    assert_true(util_declare(vh, "c", "direct", false, false, args_str("alternate-exchange", "c"),
                             &err));
    assert_string_equal(util_route(vh, "a", "k"), "");
    assert_string_equal(util_route(vh, "c", "k"), "");
    assert_true(util_bind(vh, "b", "q3", false, "k", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "a", "k"), "q3");
    assert_string_equal(util_route(vh, "a", "z"), "");
}

/* RabbitMQ applies an alternate exchange per exchange: when that exchange's
 * own bindings match nothing, whatever the rest of the graph does. */
static void test_alternate_exchange_per_exchange(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "ae", "fanout", false, false, NO_ARGS, &err));
    assert_true(util_bind(vh, "ae", "q3", false, "", NO_ARGS, &err));
    assert_true(util_declare(vh, "inner", "direct", false, false,
                             args_str("alternate-exchange", "ae"), &err));
    assert_true(util_declare(vh, "outer", "fanout", false, false,
                             args_str("alternate-exchange", "ae"), &err));
    assert_true(util_bind(vh, "outer", "inner", true, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "outer", "q1", false, "", NO_ARGS, &err));
    /* outer matched (q1, inner); inner matched nothing: inner's AE adds q3. */
    assert_string_equal(util_route(vh, "outer", "k"), "q1,q3");
    assert_true(util_bind(vh, "inner", "q2", false, "k", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "outer", "k"), "q1,q2");
    /* outer matching only an exchange that routes nowhere is still a match. */
    assert_true(util_unbind(vh, "outer", "q1", false, "", NO_ARGS, &err));
    assert_true(util_unbind(vh, "inner", "q2", false, "k", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "outer", "k"), "q3");
}

static void test_alternate_exchange_after_delete(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_declare(vh, "main", "topic", false, false,
                             args_str("alternate-exchange", "ae"), &err));
    assert_true(util_declare(vh, "ae", "fanout", false, false, NO_ARGS, &err));
    assert_true(util_bind(vh, "ae", "q1", false, "", NO_ARGS, &err));
    assert_string_equal(util_route(vh, "main", "x"), "q1");
    assert_true(route_exchange_delete(vh, B("ae"), false, NULL, &err));
    assert_string_equal(util_route(vh, "main", "x"), "");
}

/* --- results ------------------------------------------------------------- */

static void test_overflow(void **state)
{
    route_vhost *vh = *state;
    assert_true(util_bind(vh, "amq.fanout", "q1", false, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "amq.fanout", "q2", false, "", NO_ARGS, &err));
    assert_true(util_bind(vh, "amq.fanout", "q3", false, "", NO_ARGS, &err));
    const route_queue_info *buf[2];
    route_result r;
    route_result_init(&r, buf, 2);
    assert_false(route_publish(vh, route_exchange_find(vh, B("amq.fanout")), B(""), NO_ARGS, &r));
    assert_true(r.overflow);
    assert_int_equal(r.count, 2);
    const route_queue_info *big[4];
    route_result_init(&r, big, 4);
    assert_true(route_publish(vh, route_exchange_find(vh, B("amq.fanout")), B(""), NO_ARGS, &r));
    assert_false(r.overflow);
    assert_int_equal(r.count, 3);
}

static void test_group_by_shard(void **state)
{
    route_vhost *vh = *state;
    util_queue(vh, "q4", 4, 2);
    util_queue(vh, "q5", 5, 0);
    const char *qs[] = {"q1", "q2", "q3", "q4", "q5"};
    for (int i = 0; i < 5; i++)
        assert_true(util_bind(vh, "amq.fanout", qs[i], false, "", NO_ARGS, &err));
    const route_queue_info *buf[8], *sorted[8];
    route_result r;
    route_result_init(&r, buf, 8);
    assert_true(route_publish(vh, route_exchange_find(vh, B("amq.fanout")), B(""), NO_ARGS, &r));
    assert_int_equal(r.count, 5);
    uint32_t offsets[5];
    route_result_group_by_shard(&r, 4, sorted, offsets);
    assert_int_equal(offsets[0], 0);
    assert_int_equal(offsets[1], 2); /* shard 0: q1, q5 */
    assert_int_equal(offsets[2], 3); /* shard 1: q2 */
    assert_int_equal(offsets[3], 5); /* shard 2: q3, q4 */
    assert_int_equal(offsets[4], 5); /* shard 3: none */
    for (uint32_t s = 0; s < 4; s++)
        for (uint32_t i = offsets[s]; i < offsets[s + 1]; i++) assert_int_equal(sorted[i]->shard, s);
}

static void test_vhost_destroy_with_everything(void **state)
{
    (void)state;
    route_vhost *vh = route_vhost_create(B("v"));
    util_queue(vh, "q", 1, 0);
    assert_true(util_declare(vh, "t", "topic", true, true, NO_ARGS, &err));
    assert_true(util_declare(vh, "h", "headers", true, false, NO_ARGS, &err));
    assert_true(util_bind(vh, "t", "q", false, "a.#.b", NO_ARGS, &err));
    assert_true(util_bind(vh, "t", "h", true, "#", NO_ARGS, &err));
    assert_true(util_bind(vh, "h", "t", true, "", args_str("x-match", "any"), &err));
    assert_true(util_bind(vh, "amq.direct", "q", false, "k", NO_ARGS, &err));
    route_vhost_destroy(vh); /* ASan checks that everything is freed */
}

/* --- the hash map -------------------------------------------------------- */

static void test_map_collisions_and_removal(void **state)
{
    (void)state;
    route_map m;
    route_map_init(&m);
    static int values[1000];
    /* Few distinct hashes, many values: long clusters, shifts on removal. */
    for (int i = 0; i < 1000; i++) route_map_insert(&m, (uint64_t)(i % 7) * 16u, &values[i]);
    assert_int_equal(m.count, 1000);
    for (int i = 0; i < 1000; i += 2) assert_true(route_map_remove(&m, (uint64_t)(i % 7) * 16u, &values[i]));
    assert_false(route_map_remove(&m, 0, &values[0]));
    for (uint64_t h = 0; h < 7; h++) {
        route_map_iter it;
        int n = 0;
        for (int *v = route_map_first(&m, h * 16u, &it); v != NULL; v = route_map_next(&it)) {
            int i = (int)(v - values);
            assert_int_equal(i % 2, 1);
            assert_int_equal((uint64_t)(i % 7), h);
            n++;
        }
        int expect = 0;
        for (int i = 1; i < 1000; i += 2) expect += (uint64_t)(i % 7) == h;
        assert_int_equal(n, expect);
    }
    route_map_iter it;
    assert_null(route_map_first(&m, 12345, &it));
    route_map_free(&m);
    assert_null(route_map_first(&m, 0, &it));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_predeclared),
        T(test_declare_new_and_redeclare),
        T(test_declare_inequivalent_durable),
        T(test_declare_inequivalent_type),
        T(test_declare_inequivalent_auto_delete),
        T(test_declare_inequivalent_internal),
        T(test_declare_inequivalent_alternate),
        T(test_declare_alternate_bad_type),
        T(test_declare_unknown_type),
        T(test_declare_reserved_prefix),
        T(test_declare_default_refused),
        T(test_declare_passive),
        T(test_declare_keeps_arguments),
        T(test_lookup_not_found),
        T(test_delete_refusals),
        T(test_delete_missing_ok),
        T(test_delete_if_unused),
        T(test_auto_delete_on_unbind),
        T(test_auto_delete_not_before_first_binding),
        T(test_auto_delete_on_queue_remove),
        T(test_auto_delete_cycle),
        T(test_delete_exchange_cascades_sources),
        T(test_queue_directory),
        T(test_bind_idempotent),
        T(test_bind_args_order_ignored),
        T(test_bind_default_refused),
        T(test_bind_missing),
        T(test_unbind_missing_binding_ok),
        T(test_bind_exclusive_queue),
        T(test_bind_headers_xmatch_invalid),
        T(test_default_exchange),
        T(test_direct),
        T(test_direct_same_key_two_exchanges),
        T(test_direct_dedup_args),
        T(test_fanout),
        T(test_e2e_chain),
        T(test_e2e_cycle),
        T(test_e2e_diamond_dedup),
        T(test_alternate_exchange),
        T(test_alternate_exchange_cycle),
        T(test_alternate_exchange_per_exchange),
        T(test_alternate_exchange_after_delete),
        T(test_overflow),
        T(test_group_by_shard),
        T(test_vhost_destroy_with_everything),
        T(test_map_collisions_and_removal),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
