/*
 * Channel transactions (see net/tx.h). The pending work is an array of
 * entries in arrival order; a kept publish holds one reference to its
 * message until commit or rollback.
 */
#include "net/tx.h"

#include "core/assert.h"
#include "net/session_internal.h"

#include <mimalloc.h>

struct channel_tx_entry {
    store_msg *msg; /* a publish, or NULL for a settle */
    bool mandatory;
    bool multiple;
    uint8_t how;
    uint32_t method;
    uint64_t tag;
};

static struct channel_tx_entry *tx_push(conn *c, session_channel *ch)
{
    if (ch->tx_count == ch->tx_capacity) {
        uint32_t capacity = ch->tx_capacity ? ch->tx_capacity * 2 : 16;
        struct channel_tx_entry *e = mi_heap_realloc(c->shard->heap, ch->tx, capacity * sizeof(*e));
        if (e == NULL) return NULL;
        ch->tx = e;
        ch->tx_capacity = capacity;
    }
    return &ch->tx[ch->tx_count++];
}

void tx_add_publish(conn *c, session_channel *ch, store_msg *msg, bool mandatory)
{
    ASSERT(ch->tx_mode);
    struct channel_tx_entry *e = tx_push(c, ch);
    if (e == NULL) {
        store_msg_unref(msg);
        return conn_abort(c);
    }
    *e = (struct channel_tx_entry){.msg = msg, .mandatory = mandatory};
}

void tx_add_settle(conn *c, session_channel *ch, uint32_t method, uint64_t tag, bool multiple,
                   queues_settle how)
{
    ASSERT(ch->tx_mode);
    struct channel_tx_entry *e = tx_push(c, ch);
    if (e == NULL) return conn_abort(c);
    *e = (struct channel_tx_entry){.method = method, .tag = tag, .multiple = multiple, .how = (uint8_t)how};
}

static void tx_drop(session_channel *ch)
{
    for (uint32_t i = 0; i < ch->tx_count; i++)
        if (ch->tx[i].msg != NULL) store_msg_unref(ch->tx[i].msg);
    ch->tx_count = 0;
}

void tx_free(session_channel *ch)
{
    tx_drop(ch);
    mi_free(ch->tx);
    ch->tx = NULL;
    ch->tx_capacity = 0;
}

static void tx_commit(conn *c, session_channel *ch)
{
    /* Entries are taken one by one: a failing one may close the channel. */
    uint32_t n = ch->tx_count;
    for (uint32_t i = 0; i < n && ch->phase == CHANNEL_OPEN; i++) {
        struct channel_tx_entry e = ch->tx[i];
        ch->tx[i].msg = NULL;
        if (e.msg != NULL) {
            publish_commit(c, ch, e.msg, e.mandatory);
            store_msg_unref(e.msg);
        } else {
            consume_settle_now(c, ch, e.method, e.tag, e.multiple, (queues_settle)e.how);
        }
    }
    tx_drop(ch);
}

bool tx_method(conn *c, session_channel *ch, const amqp_method *m)
{
    amqp_method reply = {.id = 0};
    switch (m->id) {
    case AMQP_TX_SELECT:
        if (ch->confirm_mode) {
            session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, m->id,
                                  "cannot switch from confirm to tx mode");
            return true;
        }
        ch->tx_mode = true;
        reply.id = AMQP_TX_SELECT_OK;
        break;
    case AMQP_TX_COMMIT:
    case AMQP_TX_ROLLBACK:
        if (!ch->tx_mode) {
            session_close_channel(c, ch, AMQP_REPLY_PRECONDITION_FAILED, m->id,
                                  "channel is not transactional");
            return true;
        }
        if (m->id == AMQP_TX_COMMIT) {
            tx_commit(c, ch);
            reply.id = AMQP_TX_COMMIT_OK;
        } else {
            tx_drop(ch);
            reply.id = AMQP_TX_ROLLBACK_OK;
        }
        if (ch->phase != CHANNEL_OPEN) return true;
        break;
    default:
        return false;
    }
    session_send_method(c, ch->id, &reply);
    return true;
}
