/*
 * Message allocation and reference counting (see store/msg.h). One mimalloc block per message:
 * the 64-byte header and the variable bytes behind it. The reference count is a plain integer:
 * a message lives on one shard's thread, so nothing here is atomic. Invariant: refs >= 1 for as
 * long as anyone can reach the message; the unref that takes it to zero frees it.
 */
#include "store/msg.h"

#include <string.h>

#include "core/limits.h"

STATIC_ASSERT(LIMIT_NAME_BYTES_MAX <= UINT8_MAX, "exchange length fits the header byte");
STATIC_ASSERT(LIMIT_SHORTSTR_BYTES_MAX <= UINT8_MAX, "routing key length fits the header byte");
STATIC_ASSERT(LIMIT_MESSAGE_BYTES_MAX <= UINT32_MAX, "body size fits the header word");
STATIC_ASSERT(LIMIT_SHARDS_MAX <= UINT16_MAX, "publisher shard fits the header field");

store_msg *store_msg_new(mi_heap_t *heap, const store_msg_params *params)
{
    ASSERT(params != NULL);
    ASSERT(params->exchange_bytes <= LIMIT_NAME_BYTES_MAX);
    ASSERT(params->routing_key_bytes <= LIMIT_SHORTSTR_BYTES_MAX);
    ASSERT(params->body_bytes <= LIMIT_MESSAGE_BYTES_MAX);
    ASSERT(params->props_bytes <= UINT32_MAX);
    ASSERT(params->exchange != NULL || params->exchange_bytes == 0);
    ASSERT(params->routing_key != NULL || params->routing_key_bytes == 0);
    ASSERT(params->props != NULL || params->props_bytes == 0);
    ASSERT(params->publisher_shard < LIMIT_SHARDS_MAX);

    size_t total_bytes = sizeof(store_msg) + params->exchange_bytes + params->routing_key_bytes +
                         params->props_bytes + params->body_bytes;
    store_msg *msg = heap != NULL ? mi_heap_malloc(heap, total_bytes) : mi_malloc(total_bytes);
    if (msg == NULL) return NULL;

    *msg = (store_msg){
        .refs = 1,
        .props_bytes = (uint32_t)params->props_bytes,
        .body_bytes = (uint32_t)params->body_bytes,
        .flags = (uint16_t)((params->persistent ? STORE_MSG_PERSISTENT : 0u) |
                            (params->has_expiration ? STORE_MSG_HAS_EXPIRATION : 0u)),
        .publisher_shard = params->publisher_shard,
        .priority = params->priority,
        .exchange_bytes = (uint8_t)params->exchange_bytes,
        .routing_key_bytes = (uint8_t)params->routing_key_bytes,
        .publish_seq = params->publish_seq,
        .expiration_ms = params->has_expiration ? params->expiration_ms : 0,
        .arrival_ms = params->arrival_ms,
    };
    uint8_t *at = msg->data;
    if (params->exchange_bytes > 0) memcpy(at, params->exchange, params->exchange_bytes);
    at += params->exchange_bytes;
    if (params->routing_key_bytes > 0) memcpy(at, params->routing_key, params->routing_key_bytes);
    at += params->routing_key_bytes;
    if (params->props_bytes > 0) memcpy(at, params->props, params->props_bytes);
    at += params->props_bytes;
    if (params->body != NULL && params->body_bytes > 0)
        memcpy(at, params->body, params->body_bytes);
    ASSERT(at == store_msg_body_mut(msg));
    return msg;
}

store_msg *store_msg_ref(store_msg *msg)
{
    ASSERT(msg != NULL);
    ASSERT(msg->refs >= 1);
    ASSERT(msg->refs < UINT32_MAX);
    msg->refs++;
    return msg;
}

static _Thread_local store_msg_release_fn *msg_release_hook;

void store_msg_set_release_hook(store_msg_release_fn *fn)
{
    msg_release_hook = fn;
}

bool store_msg_release_hooked(void)
{
    return msg_release_hook != NULL;
}

void store_msg_release_slot(const store_msg_slot *slot)
{
    ASSERT(slot != NULL);
    if (msg_release_hook == NULL) return;
    /* The hook reads the log fields only: a header without bytes stands for the copy. */
    store_msg stand_in = {.refs = 0,
                          .log_segment = slot->segment,
                          .log_offset = slot->offset,
                          .log_slot = slot->slot,
                          .log_queues = 1};
    msg_release_hook(&stand_in);
    ASSERT(stand_in.log_queues == 1);
}

void store_msg_unref(store_msg *msg)
{
    ASSERT(msg != NULL);
    ASSERT(msg->refs >= 1);
    msg->refs--;
    if (msg->refs == 0) {
        if (msg->log_queues > 0 && msg_release_hook != NULL) msg_release_hook(msg);
        mi_free(msg);
    }
}

uint32_t store_msg_wire_bytes(const store_msg *msg)
{
    ASSERT(msg != NULL);
    return (uint32_t)sizeof(store_msg_wire) + msg->exchange_bytes + msg->routing_key_bytes +
           msg->props_bytes + msg->body_bytes;
}

void store_msg_wire_write(uint8_t *out, const store_msg *msg)
{
    ASSERT(out != NULL && msg != NULL);
    store_msg_wire w = {
        .props_bytes = msg->props_bytes,
        .body_bytes = msg->body_bytes,
        .flags = (uint16_t)(msg->flags & (STORE_MSG_PERSISTENT | STORE_MSG_HAS_EXPIRATION)),
        .priority = msg->priority,
        .exchange_bytes = msg->exchange_bytes,
        .routing_key_bytes = msg->routing_key_bytes,
        .expiration_ms = msg->expiration_ms,
    };
    memcpy(out, &w, sizeof(w));
    memcpy(out + sizeof(w), msg->data,
           (size_t)msg->exchange_bytes + msg->routing_key_bytes + msg->props_bytes + msg->body_bytes);
}

bool store_msg_wire_read(const uint8_t *in, size_t avail, store_msg_params *params)
{
    ASSERT(in != NULL && params != NULL);
    store_msg_wire w;
    if (avail < sizeof(w)) return false;
    memcpy(&w, in, sizeof(w));
    uint64_t total = (uint64_t)sizeof(w) + w.exchange_bytes + w.routing_key_bytes + w.props_bytes +
                     w.body_bytes;
    if (total > avail || w.body_bytes > LIMIT_MESSAGE_BYTES_MAX) return false;
    const uint8_t *b = in + sizeof(w);
    memset(params, 0, sizeof(*params));
    params->exchange = b;
    params->exchange_bytes = w.exchange_bytes;
    b += w.exchange_bytes;
    params->routing_key = b;
    params->routing_key_bytes = w.routing_key_bytes;
    b += w.routing_key_bytes;
    params->props = b;
    params->props_bytes = w.props_bytes;
    b += w.props_bytes;
    params->body = b;
    params->body_bytes = w.body_bytes;
    params->persistent = (w.flags & STORE_MSG_PERSISTENT) != 0;
    params->has_expiration = (w.flags & STORE_MSG_HAS_EXPIRATION) != 0;
    params->expiration_ms = params->has_expiration ? w.expiration_ms : 0;
    params->priority = w.priority;
    return true;
}
