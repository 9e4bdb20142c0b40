/* Helpers shared by the route/ unit tests: declare, bind and publish with
 * C strings, and the result of a publish as a sorted "q1,q2" string. */
#ifndef RINGMQ_TESTS_ROUTE_UTIL_H
#define RINGMQ_TESTS_ROUTE_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/amqp_table.h"
#include "route/route.h"

#define B(s) amqp_cstr(s)
#define NO_ARGS ((amqp_table){NULL, 0})

static inline bool util_declare(route_vhost *vh, const char *name, const char *type, bool durable,
                                bool auto_delete, amqp_table args, route_error *err)
{
    route_exchange_spec s = {.name = B(name), .type = B(type), .durable = durable,
                             .auto_delete = auto_delete, .arguments = args};
    return route_exchange_declare(vh, &s, NULL, NULL, err);
}

static inline route_queue *util_queue(route_vhost *vh, const char *name, uint64_t id,
                                      uint32_t shard)
{
    route_queue_spec s = {.name = B(name), .queue_id = id, .shard = shard};
    return route_queue_add(vh, &s);
}

static inline route_binding_spec util_spec(const char *src, const char *dst, bool dst_x,
                                           const char *key, amqp_table args)
{
    route_binding_spec s = {.source = B(src), .destination = B(dst),
                            .destination_is_exchange = dst_x, .routing_key = B(key),
                            .arguments = args, .conn_id = ROUTE_CONN_ANY};
    return s;
}

static inline bool util_bind(route_vhost *vh, const char *src, const char *dst, bool dst_x,
                             const char *key, amqp_table args, route_error *err)
{
    route_binding_spec s = util_spec(src, dst, dst_x, key, args);
    return route_binding_add(vh, &s, NULL, err);
}

static inline bool util_unbind(route_vhost *vh, const char *src, const char *dst, bool dst_x,
                               const char *key, amqp_table args, route_error *err)
{
    route_binding_spec s = util_spec(src, dst, dst_x, key, args);
    return route_binding_remove(vh, &s, NULL, err);
}

static inline int util_name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Publishes and writes the destination queue names, sorted, comma-joined. */
static inline const char *util_route_h(route_vhost *vh, const char *x_name, const char *key,
                                       amqp_table headers)
{
    static char out[65536];
    static const route_queue_info *buf[4096];
    static char names[4096][256];
    static const char *ptrs[4096];
    route_exchange *x = route_exchange_find(vh, B(x_name));
    if (x == NULL) return "<no exchange>";
    route_result r;
    route_result_init(&r, buf, 4096);
    if (!route_publish(vh, x, B(key), headers, &r)) return "<overflow>";
    for (uint32_t i = 0; i < r.count; i++) {
        snprintf(names[i], sizeof(names[i]), "%.*s", (int)r.queues[i]->name.len,
                 (const char *)r.queues[i]->name.data);
        ptrs[i] = names[i];
    }
    qsort(ptrs, r.count, sizeof(ptrs[0]), util_name_cmp);
    out[0] = '\0';
    for (uint32_t i = 0; i < r.count; i++) {
        if (i > 0) strcat(out, ",");
        strcat(out, ptrs[i]);
    }
    return out;
}

static inline const char *util_route(route_vhost *vh, const char *x_name, const char *key)
{
    return util_route_h(vh, x_name, key, NO_ARGS);
}

#endif
