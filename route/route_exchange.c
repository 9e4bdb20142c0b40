/*
 * Exchanges of the routing replica: exchange.declare with RabbitMQ's checks
 * and equivalence rules (rabbit_channel, rabbit_exchange, rabbit_misc),
 * exchange.delete, and auto-delete. The vhost owns every exchange; an
 * exchange owns a copy of its declared arguments and its topic trie.
 * Invariants: a name maps to at most one exchange; an exchange being deleted
 * is marked dying so that a cascade through a cycle of exchange-to-exchange
 * bindings never deletes it twice.
 */
#include "route/route_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

static const char *const exchange_type_names[] = {
    [ROUTE_EXCHANGE_DIRECT] = "direct",
    [ROUTE_EXCHANGE_FANOUT] = "fanout",
    [ROUTE_EXCHANGE_TOPIC] = "topic",
    [ROUTE_EXCHANGE_HEADERS] = "headers",
};

bool route_exchange_type_parse(amqp_bytes name, route_exchange_type *out)
{
    ASSERT(out != NULL);
    for (int t = ROUTE_EXCHANGE_DIRECT; t <= ROUTE_EXCHANGE_HEADERS; t++) {
        if (amqp_bytes_equal(name, amqp_cstr(exchange_type_names[t]))) {
            *out = (route_exchange_type)t;
            return true;
        }
    }
    return false;
}

const char *route_exchange_type_name(route_exchange_type type)
{
    ASSERT(type >= ROUTE_EXCHANGE_DIRECT && type <= ROUTE_EXCHANGE_HEADERS);
    return exchange_type_names[type];
}

route_exchange *route__exchange_new(route_vhost *vh, amqp_bytes name)
{
    ASSERT(vh != NULL);
    ASSERT(name.len <= LIMIT_NAME_BYTES_MAX);
    route_exchange *x = calloc(1, sizeof(*x));
    ASSERT(x != NULL);
    memcpy(x->name_buf, name.data, name.len);
    x->info.name = (amqp_bytes){x->name_buf, name.len};
    return x;
}

/* Publishes visit each exchange at most once: one worklist slot each. */
static void exchange_worklist_reserve(route_vhost *vh)
{
    if (vh->exchanges.count <= vh->worklist_cap) return;
    uint32_t cap = vh->worklist_cap == 0 ? 16u : vh->worklist_cap * 2u;
    ASSERT(cap >= vh->exchanges.count);
    vh->worklist = realloc(vh->worklist, cap * sizeof(*vh->worklist));
    ASSERT(vh->worklist != NULL);
    vh->worklist_cap = cap;
}

void route__exchange_insert(route_vhost *vh, route_exchange *x)
{
    ASSERT(route_exchange_find(vh, x->info.name) == NULL);
    ASSERT(x->info.type >= ROUTE_EXCHANGE_DIRECT && x->info.type <= ROUTE_EXCHANGE_HEADERS);
    if (x->info.type == ROUTE_EXCHANGE_TOPIC) route__topic_init(vh, x);
    route_map_insert(&vh->exchanges, route_hash_bytes(x->info.name), x);
    exchange_worklist_reserve(vh);
}

route_exchange *route_exchange_find(const route_vhost *vh, amqp_bytes name)
{
    ASSERT(vh != NULL);
    if (name.len > LIMIT_NAME_BYTES_MAX) return NULL;
    route_map_iter it;
    for (route_exchange *x = route_map_first(&vh->exchanges, route_hash_bytes(name), &it);
         x != NULL; x = route_map_next(&it)) {
        if (amqp_bytes_equal(x->info.name, name)) return x;
    }
    return NULL;
}

bool route_exchange_lookup(const route_vhost *vh, amqp_bytes name, route_exchange **out,
                           route_error *err)
{
    ASSERT(out != NULL);
    *out = route_exchange_find(vh, name);
    if (*out != NULL) return true;
    return route__fail(err, AMQP_REPLY_NOT_FOUND, "no exchange '%.*s' in vhost '%.*s'",
                       ROUTE_BYTES_FMT(name), ROUTE_BYTES_FMT(vh->name));
}

const route_exchange_info *route_exchange_info_of(const route_exchange *x) { return &x->info; }
uint32_t route_exchange_source_count(const route_exchange *x) { return x->src_count; }
uint32_t route_exchange_destination_count(const route_exchange *x) { return x->dst_count; }

/* --- equivalence ------------------------------------------------------- */

/* rabbit_misc:val/1 of a table lookup: "none" or "the value 'v' of type 't'".
 * Values print as Erlang's ~tp would for the common scalar types. */
static void equivalence_val(const amqp_field *f, char *out, size_t cap)
{
    ASSERT(out != NULL && cap >= 64);
    if (f == NULL) {
        snprintf(out, cap, "none");
        return;
    }
    char v[LIMIT_ROUTE_ERROR_TEXT_BYTES];
    switch (f->type) {
    case AMQP_FIELD_LONGSTR:
    case AMQP_FIELD_BYTES:
        snprintf(v, sizeof(v), "%.*s", ROUTE_BYTES_FMT(f->v.bytes));
        break;
    case AMQP_FIELD_BOOL: snprintf(v, sizeof(v), "%s", f->v.boolean ? "true" : "false"); break;
    case AMQP_FIELD_INT8: snprintf(v, sizeof(v), "%d", f->v.i8); break;
    case AMQP_FIELD_UINT8: snprintf(v, sizeof(v), "%u", f->v.u8); break;
    case AMQP_FIELD_INT16: snprintf(v, sizeof(v), "%d", f->v.i16); break;
    case AMQP_FIELD_UINT16: snprintf(v, sizeof(v), "%u", f->v.u16); break;
    case AMQP_FIELD_INT32: snprintf(v, sizeof(v), "%" PRId32, f->v.i32); break;
    case AMQP_FIELD_UINT32: snprintf(v, sizeof(v), "%" PRIu32, f->v.u32); break;
    case AMQP_FIELD_INT64: snprintf(v, sizeof(v), "%" PRId64, f->v.i64); break;
    case AMQP_FIELD_TIMESTAMP: snprintf(v, sizeof(v), "%" PRIu64, f->v.timestamp_s); break;
    case AMQP_FIELD_FLOAT: snprintf(v, sizeof(v), "%g", (double)f->v.f32); break;
    case AMQP_FIELD_DOUBLE: snprintf(v, sizeof(v), "%g", f->v.f64); break;
    case AMQP_FIELD_DECIMAL:
        snprintf(v, sizeof(v), "{%u,%" PRIu32 "}", f->v.decimal.scale, f->v.decimal.value);
        break;
    case AMQP_FIELD_VOID: snprintf(v, sizeof(v), "undefined"); break;
    default: snprintf(v, sizeof(v), "[...]"); break;
    }
    snprintf(out, cap, "the value '%.200s' of type '%s'", v, amqp_field_type_name(f->type));
}

/* rabbit_misc:type_class/1: integers compare as one class, floats as one. */
static int field_type_class(uint8_t type)
{
    switch (type) {
    case AMQP_FIELD_INT8:
    case AMQP_FIELD_UINT8:
    case AMQP_FIELD_INT16:
    case AMQP_FIELD_UINT16:
    case AMQP_FIELD_INT32:
    case AMQP_FIELD_UINT32:
    case AMQP_FIELD_INT64:
    case AMQP_FIELD_DECIMAL: return 'i';
    case AMQP_FIELD_FLOAT:
    case AMQP_FIELD_DOUBLE: return 'f';
    default: return type;
    }
}

/* rabbit_exchange:assert_args_equivalence: the only argument compared is
 * "alternate-exchange" (rabbit_misc:assert_args_equivalence1). */
static bool exchange_args_equivalent(const route_vhost *vh, const route_exchange *x,
                                     amqp_table requested, route_error *err)
{
    amqp_bytes key = amqp_cstr("alternate-exchange");
    amqp_field cur, req;
    bool has_cur = amqp_table_get(x->info.arguments, key, &cur);
    bool has_req = amqp_table_get(requested, key, &req);
    if (!has_cur && !has_req) return true;
    if (has_cur && has_req && field_type_class(cur.type) == field_type_class(req.type) &&
        route__field_equal(&cur, &req))
        return true;
    char cur_text[LIMIT_ROUTE_ERROR_TEXT_BYTES], req_text[LIMIT_ROUTE_ERROR_TEXT_BYTES];
    equivalence_val(has_req ? &req : NULL, req_text, sizeof(req_text));
    equivalence_val(has_cur ? &cur : NULL, cur_text, sizeof(cur_text));
    return route__fail(err, AMQP_REPLY_PRECONDITION_FAILED,
                       "inequivalent arg 'alternate-exchange' for exchange '%.*s' in vhost "
                       "'%.*s': received %s but current is %s",
                       ROUTE_BYTES_FMT(x->info.name), ROUTE_BYTES_FMT(vh->name), req_text,
                       cur_text);
}

static bool exchange_field_fail(const route_vhost *vh, const route_exchange *x, const char *key,
                                const char *received, const char *current, route_error *err)
{
    return route__fail(err, AMQP_REPLY_PRECONDITION_FAILED,
                       "inequivalent arg '%s' for exchange '%.*s' in vhost '%.*s': received "
                       "'%s' but current is '%s'",
                       key, ROUTE_BYTES_FMT(x->info.name), ROUTE_BYTES_FMT(vh->name), received,
                       current);
}

#define BOOL_TEXT(b) ((b) ? "true" : "false")

/* rabbit_exchange:assert_equivalence: type, durable, auto_delete, internal,
 * then the arguments, in that order. */
static bool exchange_equivalent(const route_vhost *vh, const route_exchange *x,
                                route_exchange_type type, const route_exchange_spec *spec,
                                route_error *err)
{
    ASSERT(x != NULL && spec != NULL);
    const route_exchange_info *i = &x->info;
    if (i->type != type)
        return exchange_field_fail(vh, x, "type", route_exchange_type_name(type),
                                   route_exchange_type_name(i->type), err);
    if (i->durable != spec->durable)
        return exchange_field_fail(vh, x, "durable", BOOL_TEXT(spec->durable),
                                   BOOL_TEXT(i->durable), err);
    if (i->auto_delete != spec->auto_delete)
        return exchange_field_fail(vh, x, "auto_delete", BOOL_TEXT(spec->auto_delete),
                                   BOOL_TEXT(i->auto_delete), err);
    if (i->internal != spec->internal)
        return exchange_field_fail(vh, x, "internal", BOOL_TEXT(spec->internal),
                                   BOOL_TEXT(i->internal), err);
    return exchange_args_equivalent(vh, x, spec->arguments, err);
}

/* --- declare and delete ------------------------------------------------ */

static bool name_is_reserved(amqp_bytes name)
{
    return name.len >= 4 && memcmp(name.data, "amq.", 4) == 0;
}

static bool exchange_refuse_default(route_error *err)
{
    return route__fail(err, AMQP_REPLY_ACCESS_REFUSED,
                       "operation not permitted on the default exchange");
}

/* A new exchange: copies the arguments and points the alternate exchange
 * name into the copy. The "alternate-exchange" argument must be a longstr
 * (rabbit_misc:r_arg); a name longer than a shortstr can name nothing. */
static bool exchange_create(route_vhost *vh, const route_exchange_spec *spec,
                            route_exchange_type type, route_exchange **out, route_error *err)
{
    amqp_field ae;
    bool has_ae = amqp_table_get(spec->arguments, amqp_cstr("alternate-exchange"), &ae);
    if (has_ae && ae.type != AMQP_FIELD_LONGSTR)
        return route__fail(err, AMQP_REPLY_PRECONDITION_FAILED,
                           "invalid type '%s' for arg 'alternate-exchange' in exchange '%.*s' in "
                           "vhost '%.*s'",
                           amqp_field_type_name(ae.type), ROUTE_BYTES_FMT(spec->name),
                           ROUTE_BYTES_FMT(vh->name));
    route_exchange *x = route__exchange_new(vh, spec->name);
    x->info.type = type;
    x->info.durable = spec->durable;
    x->info.auto_delete = spec->auto_delete;
    x->info.internal = spec->internal;
    if (spec->arguments.len > 0) {
        x->args = malloc(spec->arguments.len);
        ASSERT(x->args != NULL);
        memcpy(x->args, spec->arguments.data, spec->arguments.len);
    }
    x->info.arguments = (amqp_table){x->args, spec->arguments.len};
    if (has_ae && amqp_table_get(x->info.arguments, amqp_cstr("alternate-exchange"), &ae) &&
        ae.v.bytes.len <= LIMIT_NAME_BYTES_MAX)
        x->info.alternate_exchange = ae.v.bytes;
    route__exchange_insert(vh, x);
    *out = x;
    return true;
}

bool route_exchange_declare(route_vhost *vh, const route_exchange_spec *spec, route_exchange **out,
                            bool *created, route_error *err)
{
    ASSERT(vh != NULL && spec != NULL);
    ASSERT(spec->name.len <= LIMIT_NAME_BYTES_MAX);
    route_exchange *x_local = NULL;
    bool created_local = false;
    if (out == NULL) out = &x_local;
    if (created == NULL) created = &created_local;
    *out = NULL;
    *created = false;
    if (spec->passive) {
        if (spec->name.len == 0) return exchange_refuse_default(err);
        return route_exchange_lookup(vh, spec->name, out, err);
    }
    route_exchange_type type;
    if (!route_exchange_type_parse(spec->type, &type))
        return route__fail(err, AMQP_REPLY_COMMAND_INVALID, "unknown exchange type '%.*s'",
                           ROUTE_BYTES_FMT(spec->type));
    if (spec->name.len == 0) return exchange_refuse_default(err);
    route_exchange *x = route_exchange_find(vh, spec->name);
    if (x != NULL) {
        if (!exchange_equivalent(vh, x, type, spec, err)) return false;
        *out = x;
        return true;
    }
    if (name_is_reserved(spec->name))
        return route__fail(err, AMQP_REPLY_ACCESS_REFUSED,
                           "exchange name '%.*s' contains reserved prefix 'amq.*'",
                           ROUTE_BYTES_FMT(spec->name));
    if (!exchange_create(vh, spec, type, out, err)) return false;
    ASSERT(*out != NULL && route_exchange_find(vh, spec->name) == *out);
    *created = true;
    return true;
}

bool route_exchange_delete(route_vhost *vh, amqp_bytes name, bool if_unused, bool *deleted,
                           route_error *err)
{
    ASSERT(vh != NULL);
    bool deleted_local = false;
    if (deleted == NULL) deleted = &deleted_local;
    *deleted = false;
    if (name.len == 0) return exchange_refuse_default(err);
    if (name_is_reserved(name))
        return route__fail(err, AMQP_REPLY_ACCESS_REFUSED,
                           "deletion of system exchange '%.*s' in vhost '%.*s' not allowed",
                           ROUTE_BYTES_FMT(name), ROUTE_BYTES_FMT(vh->name));
    route_exchange *x = route_exchange_find(vh, name);
    if (x == NULL) return true; /* RabbitMQ: deleting a missing exchange is ok */
    ASSERT(!x->is_default && !x->dying);
    if (if_unused && x->src_count > 0)
        return route__fail(err, AMQP_REPLY_PRECONDITION_FAILED,
                           "exchange '%.*s' in vhost '%.*s' in use", ROUTE_BYTES_FMT(name),
                           ROUTE_BYTES_FMT(vh->name));
    route__exchange_free(vh, x, false);
    *deleted = true;
    return true;
}

void route__exchange_free(route_vhost *vh, route_exchange *x, bool notify)
{
    ASSERT(vh != NULL && x != NULL);
    ASSERT(!x->dying);
    x->dying = true;
    route__bindings_drop_for_exchange(vh, x);
    ASSERT(x->src_count == 0 && x->dst_count == 0);
    if (x->info.type == ROUTE_EXCHANGE_TOPIC) route__topic_fini(vh, x);
    bool removed = route_map_remove(&vh->exchanges, route_hash_bytes(x->info.name), x);
    ASSERT(removed);
    if (notify && vh->deleted_fn != NULL) vh->deleted_fn(vh->deleted_ctx, &x->info);
    if (x == vh->default_x) vh->default_x = NULL;
    free(x->args);
    free(x);
}

void route__maybe_auto_delete(route_vhost *vh, route_exchange *x)
{
    ASSERT(vh != NULL && x != NULL);
    if (!x->info.auto_delete || x->dying || x->src_count > 0) return;
    ASSERT(!x->is_default);
    route__exchange_free(vh, x, true);
}
