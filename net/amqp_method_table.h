/*
 * The AMQP 0-9-1 method table, written once (RabbitMQ's protocol with its
 * extensions: exchange.bind/unbind, basic.nack, confirm.select,
 * connection.blocked/unblocked, connection.update-secret). Everything else is
 * generated from it with X-macros in net/amqp_method.h and net/amqp_method.c:
 * the argument structs, the method id enum, names, the sync/content flags, the
 * encoder and the decoder.
 *
 * AMQP_METHOD_LIST(X) calls
 *     X(ENUM, name, "class.method", class_id, method_id, synchronous, content)
 * per method; AMQP_ARGS_<name>(F) calls F(type, field) per argument in wire
 * order. Types: bit octet short long longlong shortstr longstr table
 * timestamp. Consecutive bits share an octet (least significant bit first);
 * any other type ends the run.
 *
 * "synchronous" follows the spec's flag: the request expects a reply method.
 */
#ifndef RINGMQ_NET_AMQP_METHOD_TABLE_H
#define RINGMQ_NET_AMQP_METHOD_TABLE_H

/* clang-format off */
#define AMQP_METHOD_LIST(X) \
    X(CONNECTION_START,          connection_start,          "connection.start",          10, 10, 1, 0) \
    X(CONNECTION_START_OK,       connection_start_ok,       "connection.start-ok",       10, 11, 0, 0) \
    X(CONNECTION_SECURE,         connection_secure,         "connection.secure",         10, 20, 1, 0) \
    X(CONNECTION_SECURE_OK,      connection_secure_ok,      "connection.secure-ok",      10, 21, 0, 0) \
    X(CONNECTION_TUNE,           connection_tune,           "connection.tune",           10, 30, 1, 0) \
    X(CONNECTION_TUNE_OK,        connection_tune_ok,        "connection.tune-ok",        10, 31, 0, 0) \
    X(CONNECTION_OPEN,           connection_open,           "connection.open",           10, 40, 1, 0) \
    X(CONNECTION_OPEN_OK,        connection_open_ok,        "connection.open-ok",        10, 41, 0, 0) \
    X(CONNECTION_CLOSE,          connection_close,          "connection.close",          10, 50, 1, 0) \
    X(CONNECTION_CLOSE_OK,       connection_close_ok,       "connection.close-ok",       10, 51, 0, 0) \
    X(CONNECTION_BLOCKED,        connection_blocked,        "connection.blocked",        10, 60, 0, 0) \
    X(CONNECTION_UNBLOCKED,      connection_unblocked,      "connection.unblocked",      10, 61, 0, 0) \
    X(CONNECTION_UPDATE_SECRET,  connection_update_secret,  "connection.update-secret",  10, 70, 1, 0) \
    X(CONNECTION_UPDATE_SECRET_OK, connection_update_secret_ok, "connection.update-secret-ok", 10, 71, 0, 0) \
    X(CHANNEL_OPEN,              channel_open,              "channel.open",              20, 10, 1, 0) \
    X(CHANNEL_OPEN_OK,           channel_open_ok,           "channel.open-ok",           20, 11, 0, 0) \
    X(CHANNEL_FLOW,              channel_flow,              "channel.flow",              20, 20, 1, 0) \
    X(CHANNEL_FLOW_OK,           channel_flow_ok,           "channel.flow-ok",           20, 21, 0, 0) \
    X(CHANNEL_CLOSE,             channel_close,             "channel.close",             20, 40, 1, 0) \
    X(CHANNEL_CLOSE_OK,          channel_close_ok,          "channel.close-ok",          20, 41, 0, 0) \
    X(ACCESS_REQUEST,            access_request,            "access.request",            30, 10, 1, 0) \
    X(ACCESS_REQUEST_OK,         access_request_ok,         "access.request-ok",         30, 11, 0, 0) \
    X(EXCHANGE_DECLARE,          exchange_declare,          "exchange.declare",          40, 10, 1, 0) \
    X(EXCHANGE_DECLARE_OK,       exchange_declare_ok,       "exchange.declare-ok",       40, 11, 0, 0) \
    X(EXCHANGE_DELETE,           exchange_delete,           "exchange.delete",           40, 20, 1, 0) \
    X(EXCHANGE_DELETE_OK,        exchange_delete_ok,        "exchange.delete-ok",        40, 21, 0, 0) \
    X(EXCHANGE_BIND,             exchange_bind,             "exchange.bind",             40, 30, 1, 0) \
    X(EXCHANGE_BIND_OK,          exchange_bind_ok,          "exchange.bind-ok",          40, 31, 0, 0) \
    X(EXCHANGE_UNBIND,           exchange_unbind,           "exchange.unbind",           40, 40, 1, 0) \
    X(EXCHANGE_UNBIND_OK,        exchange_unbind_ok,        "exchange.unbind-ok",        40, 51, 0, 0) \
    X(QUEUE_DECLARE,             queue_declare,             "queue.declare",             50, 10, 1, 0) \
    X(QUEUE_DECLARE_OK,          queue_declare_ok,          "queue.declare-ok",          50, 11, 0, 0) \
    X(QUEUE_BIND,                queue_bind,                "queue.bind",                50, 20, 1, 0) \
    X(QUEUE_BIND_OK,             queue_bind_ok,             "queue.bind-ok",             50, 21, 0, 0) \
    X(QUEUE_PURGE,               queue_purge,               "queue.purge",               50, 30, 1, 0) \
    X(QUEUE_PURGE_OK,            queue_purge_ok,            "queue.purge-ok",            50, 31, 0, 0) \
    X(QUEUE_DELETE,              queue_delete,              "queue.delete",              50, 40, 1, 0) \
    X(QUEUE_DELETE_OK,           queue_delete_ok,           "queue.delete-ok",           50, 41, 0, 0) \
    X(QUEUE_UNBIND,              queue_unbind,              "queue.unbind",              50, 50, 1, 0) \
    X(QUEUE_UNBIND_OK,           queue_unbind_ok,           "queue.unbind-ok",           50, 51, 0, 0) \
    X(BASIC_QOS,                 basic_qos,                 "basic.qos",                 60, 10, 1, 0) \
    X(BASIC_QOS_OK,              basic_qos_ok,              "basic.qos-ok",              60, 11, 0, 0) \
    X(BASIC_CONSUME,             basic_consume,             "basic.consume",             60, 20, 1, 0) \
    X(BASIC_CONSUME_OK,          basic_consume_ok,          "basic.consume-ok",          60, 21, 0, 0) \
    X(BASIC_CANCEL,              basic_cancel,              "basic.cancel",              60, 30, 1, 0) \
    X(BASIC_CANCEL_OK,           basic_cancel_ok,           "basic.cancel-ok",           60, 31, 0, 0) \
    X(BASIC_PUBLISH,             basic_publish,             "basic.publish",             60, 40, 0, 1) \
    X(BASIC_RETURN,              basic_return,              "basic.return",              60, 50, 0, 1) \
    X(BASIC_DELIVER,             basic_deliver,             "basic.deliver",             60, 60, 0, 1) \
    X(BASIC_GET,                 basic_get,                 "basic.get",                 60, 70, 1, 0) \
    X(BASIC_GET_OK,              basic_get_ok,              "basic.get-ok",              60, 71, 0, 1) \
    X(BASIC_GET_EMPTY,           basic_get_empty,           "basic.get-empty",           60, 72, 0, 0) \
    X(BASIC_ACK,                 basic_ack,                 "basic.ack",                 60, 80, 0, 0) \
    X(BASIC_REJECT,              basic_reject,              "basic.reject",              60, 90, 0, 0) \
    X(BASIC_RECOVER_ASYNC,       basic_recover_async,       "basic.recover-async",       60, 100, 0, 0) \
    X(BASIC_RECOVER,             basic_recover,             "basic.recover",             60, 110, 1, 0) \
    X(BASIC_RECOVER_OK,          basic_recover_ok,          "basic.recover-ok",          60, 111, 0, 0) \
    X(BASIC_NACK,                basic_nack,                "basic.nack",                60, 120, 0, 0) \
    X(CONFIRM_SELECT,            confirm_select,            "confirm.select",            85, 10, 1, 0) \
    X(CONFIRM_SELECT_OK,         confirm_select_ok,         "confirm.select-ok",         85, 11, 0, 0) \
    X(TX_SELECT,                 tx_select,                 "tx.select",                 90, 10, 1, 0) \
    X(TX_SELECT_OK,              tx_select_ok,              "tx.select-ok",              90, 11, 0, 0) \
    X(TX_COMMIT,                 tx_commit,                 "tx.commit",                 90, 20, 1, 0) \
    X(TX_COMMIT_OK,              tx_commit_ok,              "tx.commit-ok",              90, 21, 0, 0) \
    X(TX_ROLLBACK,               tx_rollback,               "tx.rollback",               90, 30, 1, 0) \
    X(TX_ROLLBACK_OK,            tx_rollback_ok,            "tx.rollback-ok",            90, 31, 0, 0)

/* connection (10) */
#define AMQP_ARGS_connection_start(F) \
    F(octet, version_major) F(octet, version_minor) F(table, server_properties) \
    F(longstr, mechanisms) F(longstr, locales)
#define AMQP_ARGS_connection_start_ok(F) \
    F(table, client_properties) F(shortstr, mechanism) F(longstr, response) F(shortstr, locale)
#define AMQP_ARGS_connection_secure(F) F(longstr, challenge)
#define AMQP_ARGS_connection_secure_ok(F) F(longstr, response)
#define AMQP_ARGS_connection_tune(F) F(short, channel_max) F(long, frame_max) F(short, heartbeat)
#define AMQP_ARGS_connection_tune_ok(F) F(short, channel_max) F(long, frame_max) F(short, heartbeat)
#define AMQP_ARGS_connection_open(F) F(shortstr, virtual_host) F(shortstr, capabilities) F(bit, insist)
#define AMQP_ARGS_connection_open_ok(F) F(shortstr, known_hosts)
#define AMQP_ARGS_connection_close(F) \
    F(short, reply_code) F(shortstr, reply_text) F(short, class_id) F(short, method_id)
#define AMQP_ARGS_connection_close_ok(F)
#define AMQP_ARGS_connection_blocked(F) F(shortstr, reason)
#define AMQP_ARGS_connection_unblocked(F)
#define AMQP_ARGS_connection_update_secret(F) F(longstr, new_secret) F(shortstr, reason)
#define AMQP_ARGS_connection_update_secret_ok(F)

/* channel (20) */
#define AMQP_ARGS_channel_open(F) F(shortstr, out_of_band)
#define AMQP_ARGS_channel_open_ok(F) F(longstr, channel_id)
#define AMQP_ARGS_channel_flow(F) F(bit, active)
#define AMQP_ARGS_channel_flow_ok(F) F(bit, active)
#define AMQP_ARGS_channel_close(F) \
    F(short, reply_code) F(shortstr, reply_text) F(short, class_id) F(short, method_id)
#define AMQP_ARGS_channel_close_ok(F)

/* access (30), deprecated but still sent by old clients */
#define AMQP_ARGS_access_request(F) \
    F(shortstr, realm) F(bit, exclusive) F(bit, passive) F(bit, active) F(bit, write) F(bit, read)
#define AMQP_ARGS_access_request_ok(F) F(short, ticket)

/* exchange (40) */
#define AMQP_ARGS_exchange_declare(F) \
    F(short, ticket) F(shortstr, exchange) F(shortstr, type) F(bit, passive) F(bit, durable) \
    F(bit, auto_delete) F(bit, internal) F(bit, nowait) F(table, arguments)
#define AMQP_ARGS_exchange_declare_ok(F)
#define AMQP_ARGS_exchange_delete(F) \
    F(short, ticket) F(shortstr, exchange) F(bit, if_unused) F(bit, nowait)
#define AMQP_ARGS_exchange_delete_ok(F)
#define AMQP_ARGS_exchange_bind(F) \
    F(short, ticket) F(shortstr, destination) F(shortstr, source) F(shortstr, routing_key) \
    F(bit, nowait) F(table, arguments)
#define AMQP_ARGS_exchange_bind_ok(F)
#define AMQP_ARGS_exchange_unbind(F) \
    F(short, ticket) F(shortstr, destination) F(shortstr, source) F(shortstr, routing_key) \
    F(bit, nowait) F(table, arguments)
#define AMQP_ARGS_exchange_unbind_ok(F)

/* queue (50) */
#define AMQP_ARGS_queue_declare(F) \
    F(short, ticket) F(shortstr, queue) F(bit, passive) F(bit, durable) F(bit, exclusive) \
    F(bit, auto_delete) F(bit, nowait) F(table, arguments)
#define AMQP_ARGS_queue_declare_ok(F) \
    F(shortstr, queue) F(long, message_count) F(long, consumer_count)
#define AMQP_ARGS_queue_bind(F) \
    F(short, ticket) F(shortstr, queue) F(shortstr, exchange) F(shortstr, routing_key) \
    F(bit, nowait) F(table, arguments)
#define AMQP_ARGS_queue_bind_ok(F)
#define AMQP_ARGS_queue_purge(F) F(short, ticket) F(shortstr, queue) F(bit, nowait)
#define AMQP_ARGS_queue_purge_ok(F) F(long, message_count)
#define AMQP_ARGS_queue_delete(F) \
    F(short, ticket) F(shortstr, queue) F(bit, if_unused) F(bit, if_empty) F(bit, nowait)
#define AMQP_ARGS_queue_delete_ok(F) F(long, message_count)
#define AMQP_ARGS_queue_unbind(F) \
    F(short, ticket) F(shortstr, queue) F(shortstr, exchange) F(shortstr, routing_key) \
    F(table, arguments)
#define AMQP_ARGS_queue_unbind_ok(F)

/* basic (60) */
#define AMQP_ARGS_basic_qos(F) F(long, prefetch_size) F(short, prefetch_count) F(bit, global)
#define AMQP_ARGS_basic_qos_ok(F)
#define AMQP_ARGS_basic_consume(F) \
    F(short, ticket) F(shortstr, queue) F(shortstr, consumer_tag) F(bit, no_local) \
    F(bit, no_ack) F(bit, exclusive) F(bit, nowait) F(table, arguments)
#define AMQP_ARGS_basic_consume_ok(F) F(shortstr, consumer_tag)
#define AMQP_ARGS_basic_cancel(F) F(shortstr, consumer_tag) F(bit, nowait)
#define AMQP_ARGS_basic_cancel_ok(F) F(shortstr, consumer_tag)
#define AMQP_ARGS_basic_publish(F) \
    F(short, ticket) F(shortstr, exchange) F(shortstr, routing_key) F(bit, mandatory) \
    F(bit, immediate)
#define AMQP_ARGS_basic_return(F) \
    F(short, reply_code) F(shortstr, reply_text) F(shortstr, exchange) F(shortstr, routing_key)
#define AMQP_ARGS_basic_deliver(F) \
    F(shortstr, consumer_tag) F(longlong, delivery_tag) F(bit, redelivered) \
    F(shortstr, exchange) F(shortstr, routing_key)
#define AMQP_ARGS_basic_get(F) F(short, ticket) F(shortstr, queue) F(bit, no_ack)
#define AMQP_ARGS_basic_get_ok(F) \
    F(longlong, delivery_tag) F(bit, redelivered) F(shortstr, exchange) \
    F(shortstr, routing_key) F(long, message_count)
#define AMQP_ARGS_basic_get_empty(F) F(shortstr, cluster_id)
#define AMQP_ARGS_basic_ack(F) F(longlong, delivery_tag) F(bit, multiple)
#define AMQP_ARGS_basic_reject(F) F(longlong, delivery_tag) F(bit, requeue)
#define AMQP_ARGS_basic_recover_async(F) F(bit, requeue)
#define AMQP_ARGS_basic_recover(F) F(bit, requeue)
#define AMQP_ARGS_basic_recover_ok(F)
#define AMQP_ARGS_basic_nack(F) F(longlong, delivery_tag) F(bit, multiple) F(bit, requeue)

/* confirm (85) */
#define AMQP_ARGS_confirm_select(F) F(bit, nowait)
#define AMQP_ARGS_confirm_select_ok(F)

/* tx (90) */
#define AMQP_ARGS_tx_select(F)
#define AMQP_ARGS_tx_select_ok(F)
#define AMQP_ARGS_tx_commit(F)
#define AMQP_ARGS_tx_commit_ok(F)
#define AMQP_ARGS_tx_rollback(F)
#define AMQP_ARGS_tx_rollback_ok(F)
/* clang-format on */

#endif
