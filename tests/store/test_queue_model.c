/*
 * Randomised test of store/queue against a reference model made of plain arrays: thousands of
 * random pushes, dispatches with random budgets, basic.gets, acks, rejects (requeue or drop),
 * requeues by consumer and by owner, purges, consumers coming and going, credit and the active
 * flag. After every operation the queue must agree with the model on which message comes next
 * (the smallest sequence ready), its redelivered flag, the delivery ids, the counts, and on the
 * consumer chosen: active, with credit, of the highest priority among those. Dispatch must stop
 * only at its budget, an empty queue, or when no consumer can take a message.
 *
 * The same runs again with paging (store/spill.c) and a tiny in-memory window (8 messages, or
 * 700 bytes), in small spill files under a fresh /tmp directory: the queue must behave exactly
 * the same, its head must always be the model's, and most of a backlog must be paged out.
 */
#include "tests/store/store_util.h"

#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/spill.h"

#define MODEL_MSGS_MAX      4096
#define MODEL_CONSUMERS_MAX 8
#define MODEL_OWNERS        4

typedef struct model_msg {
    uint64_t n;
    uint64_t seq;
    uint64_t delivery_id;
    uint64_t consumer_id;
    uint32_t owner;
    bool redelivered;
} model_msg;

typedef struct model_consumer {
    uint64_t id;
    int32_t priority;
    uint32_t credit;
    uint32_t owner;
    bool no_ack;
    bool active;
} model_consumer;

typedef struct model {
    model_msg ready[MODEL_MSGS_MAX]; /* sorted by seq */
    size_t ready_count;
    model_msg unacked[MODEL_MSGS_MAX];
    size_t unacked_count;
    model_consumer consumers[MODEL_CONSUMERS_MAX];
    size_t consumer_count;
    uint64_t past_consumer_ids[64];
    size_t past_count;
    uint64_t seq_next;
    uint64_t n_next;
    uint64_t delivery_id_next;
    uint64_t rng;
    mi_heap_t *heap;
    store_queue *q;
    const store_queue_paging *paging; /* NULL: in memory only */
    uint64_t spilled_max;             /* most messages seen paged out at once */
} model;

static model M;

static uint64_t rnd(void)
{
    uint64_t x = (M.rng += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint32_t rnd_below(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

static store_owner owner_of(uint32_t i)
{
    return util_owner(i / 2, 10 + i / 2, i % 2);
}

static void model_ready_insert(model_msg msg)
{
    assert_true(M.ready_count < MODEL_MSGS_MAX);
    size_t i = M.ready_count;
    while (i > 0 && M.ready[i - 1].seq > msg.seq) {
        M.ready[i] = M.ready[i - 1];
        i--;
    }
    M.ready[i] = msg;
    M.ready_count++;
}

static model_msg model_ready_pop(void)
{
    assert_true(M.ready_count > 0);
    model_msg msg = M.ready[0];
    memmove(&M.ready[0], &M.ready[1], (M.ready_count - 1) * sizeof(M.ready[0]));
    M.ready_count--;
    return msg;
}

static model_msg model_unacked_take(size_t i)
{
    model_msg msg = M.unacked[i];
    M.unacked[i] = M.unacked[--M.unacked_count];
    return msg;
}

static model_consumer *model_consumer_find(uint64_t id)
{
    for (size_t i = 0; i < M.consumer_count; i++) {
        if (M.consumers[i].id == id) return &M.consumers[i];
    }
    return NULL;
}

static bool model_any_eligible(int32_t *priority_out)
{
    bool any = false;
    for (size_t i = 0; i < M.consumer_count; i++) {
        model_consumer *c = &M.consumers[i];
        if (!c->active || c->credit == 0) continue;
        if (!any || c->priority > *priority_out) *priority_out = c->priority;
        any = true;
    }
    return any;
}

static void check_counts(void)
{
    assert_int_equal(store_queue_ready_count(M.q), M.ready_count);
    uint64_t spilled = store_queue_spilled_count(M.q);
    assert_true(spilled <= M.ready_count);
    if (spilled > M.spilled_max) M.spilled_max = spilled;
    const store_msg *head = store_queue_peek(M.q);
    assert_true((head != NULL) == (M.ready_count > 0));
    if (head != NULL) assert_int_equal(head->publish_seq, M.ready[0].n);
    assert_int_equal(store_queue_unacked_count(M.q), M.unacked_count);
    assert_int_equal(store_queue_consumer_count(M.q), M.consumer_count);
    int32_t priority;
    assert_int_equal(store_queue_dispatchable(M.q),
                     M.ready_count > 0 && model_any_eligible(&priority));
}

static void op_push(void)
{
    if (M.ready_count + M.unacked_count >= MODEL_MSGS_MAX - 1) return;
    store_msg *m = util_msg(M.heap, M.n_next);
    assert_int_equal(store_queue_push(M.q, m), M.seq_next);
    store_msg_unref(m);
    model_ready_insert((model_msg){.n = M.n_next, .seq = M.seq_next});
    M.n_next++;
    M.seq_next++;
}

static void model_deliver(void *ctx, const store_consumer *consumer, store_msg *msg,
                          uint64_t delivery_id, bool redelivered)
{
    uint32_t *delivered = ctx;
    (*delivered)++;
    int32_t top;
    assert_true(model_any_eligible(&top));
    model_consumer *c = model_consumer_find(consumer->id);
    assert_non_null(c);
    assert_true(c->active && c->credit > 0);
    assert_int_equal(c->priority, top);
    model_msg next = model_ready_pop();
    assert_int_equal(msg->publish_seq, next.n);
    assert_int_equal(redelivered, next.redelivered);
    if (c->credit != STORE_CREDIT_UNLIMITED) c->credit--;
    assert_int_equal(consumer->credit, c->credit);
    if (c->no_ack) {
        assert_int_equal(delivery_id, 0);
        return;
    }
    assert_int_equal(delivery_id, M.delivery_id_next++);
    next.delivery_id = delivery_id;
    next.consumer_id = c->id;
    next.owner = c->owner;
    M.unacked[M.unacked_count++] = next;
}

static void op_dispatch(void)
{
    uint32_t budget = rnd_below(12);
    uint32_t delivered = 0;
    uint32_t n = store_queue_dispatch(M.q, model_deliver, &delivered, budget);
    assert_int_equal(n, delivered);
    int32_t priority;
    if (n < budget) assert_true(M.ready_count == 0 || !model_any_eligible(&priority));
}

static void op_get(void)
{
    bool no_ack = rnd_below(3) == 0;
    uint32_t owner = rnd_below(MODEL_OWNERS);
    store_owner o = owner_of(owner);
    store_get g;
    bool got = store_queue_get(M.q, &o, no_ack, &g);
    assert_int_equal(got, M.ready_count > 0);
    if (!got) return;
    model_msg next = model_ready_pop();
    assert_int_equal(g.msg->publish_seq, next.n);
    assert_int_equal(g.redelivered, next.redelivered);
    assert_int_equal(g.ready_count, M.ready_count);
    store_msg_unref(g.msg);
    if (no_ack) {
        assert_int_equal(g.delivery_id, 0);
        return;
    }
    assert_int_equal(g.delivery_id, M.delivery_id_next++);
    next.delivery_id = g.delivery_id;
    next.consumer_id = 0;
    next.owner = owner;
    M.unacked[M.unacked_count++] = next;
}

static void op_settle(void)
{
    if (M.unacked_count == 0) {
        assert_false(store_queue_ack(M.q, M.delivery_id_next - 1)); /* 0 before any delivery */
        return;
    }
    model_msg msg = model_unacked_take(rnd_below((uint32_t)M.unacked_count));
    switch (rnd_below(3)) {
    case 0:
        assert_true(store_queue_ack(M.q, msg.delivery_id));
        break;
    case 1:
        assert_true(store_queue_reject(M.q, msg.delivery_id, false));
        break;
    default:
        assert_true(store_queue_reject(M.q, msg.delivery_id, true));
        msg.redelivered = true;
        model_ready_insert(msg);
    }
    assert_false(store_queue_ack(M.q, msg.delivery_id));
}

/* Requeues every model unacked entry that keep() rejects, in the model. */
static uint64_t model_requeue_where(bool (*match)(const model_msg *, uint64_t, uint32_t),
                                    uint64_t id, uint32_t owner)
{
    uint64_t n = 0;
    for (size_t i = 0; i < M.unacked_count;) {
        if (!match(&M.unacked[i], id, owner)) {
            i++;
            continue;
        }
        model_msg msg = model_unacked_take(i);
        msg.redelivered = true;
        model_ready_insert(msg);
        n++;
    }
    return n;
}

static bool match_consumer(const model_msg *m, uint64_t id, uint32_t owner)
{
    (void)owner;
    return m->consumer_id == id;
}

static bool match_channel(const model_msg *m, uint64_t id, uint32_t owner)
{
    (void)id;
    return m->owner == owner;
}

static bool match_connection(const model_msg *m, uint64_t id, uint32_t owner)
{
    (void)id;
    return m->owner / 2 == owner / 2;
}

static uint64_t random_consumer_id(void)
{
    if (M.consumer_count > 0 && rnd_below(4) != 0) {
        return M.consumers[rnd_below((uint32_t)M.consumer_count)].id;
    }
    if (M.past_count > 0) return M.past_consumer_ids[rnd_below((uint32_t)M.past_count)];
    return 0x77700000001ull; /* never issued */
}

static void op_requeue(void)
{
    uint32_t owner = rnd_below(MODEL_OWNERS);
    store_owner o = owner_of(owner);
    switch (rnd_below(3)) {
    case 0: {
        uint64_t id = random_consumer_id();
        uint64_t n = model_requeue_where(match_consumer, id, 0);
        assert_int_equal(store_queue_requeue_consumer(M.q, id), n);
        break;
    }
    case 1:
        assert_int_equal(store_queue_requeue_owner(M.q, &o, STORE_OWNER_CHANNEL),
                         model_requeue_where(match_channel, 0, owner));
        break;
    default:
        assert_int_equal(store_queue_requeue_owner(M.q, &o, STORE_OWNER_CONNECTION),
                         model_requeue_where(match_connection, 0, owner));
    }
}

static void op_purge(void)
{
    assert_int_equal(store_queue_purge(M.q), M.ready_count);
    M.ready_count = 0;
}

static void model_consumer_forget(size_t i)
{
    if (M.past_count < ARRAY_LEN(M.past_consumer_ids)) {
        M.past_consumer_ids[M.past_count++] = M.consumers[i].id;
    }
    M.consumers[i] = M.consumers[--M.consumer_count];
}

static void op_consumer_add(void)
{
    if (M.consumer_count == MODEL_CONSUMERS_MAX) return;
    static const uint32_t credits[] = {0, 1, 2, 5, STORE_CREDIT_UNLIMITED};
    model_consumer c = {
        .priority = (int32_t)rnd_below(3) - 1,
        .credit = credits[rnd_below(ARRAY_LEN(credits))],
        .owner = rnd_below(MODEL_OWNERS),
        .no_ack = rnd_below(5) == 0,
        .active = rnd_below(6) != 0,
    };
    store_consumer_params p = {.tag = "ctag",
                               .tag_bytes = 4,
                               .owner = owner_of(c.owner),
                               .priority = c.priority,
                               .credit = c.credit,
                               .no_ack = c.no_ack,
                               .inactive = !c.active};
    store_reply reply;
    c.id = store_queue_consumer_add(M.q, &p, &reply);
    assert_int_not_equal(c.id, 0);
    M.consumers[M.consumer_count++] = c;
}

static void op_consumer_remove(void)
{
    if (M.consumer_count == 0) return;
    size_t i = rnd_below((uint32_t)M.consumer_count);
    uint64_t id = M.consumers[i].id;
    bool requeue = rnd_below(2) == 0;
    bool last;
    assert_true(store_queue_consumer_remove(M.q, id, requeue, &last));
    model_consumer_forget(i);
    assert_int_equal(last, M.consumer_count == 0);
    if (requeue) model_requeue_where(match_consumer, id, 0);
    assert_false(store_queue_consumer_remove(M.q, id, requeue, &last));
}

static void op_consumer_remove_owner(void)
{
    uint32_t owner = rnd_below(MODEL_OWNERS);
    store_owner o = owner_of(owner);
    uint32_t removed = 0;
    for (size_t i = 0; i < M.consumer_count;) {
        if (M.consumers[i].owner != owner) {
            i++;
            continue;
        }
        model_consumer_forget(i);
        removed++;
    }
    bool last;
    assert_int_equal(store_queue_consumer_remove_owner(M.q, &o, STORE_OWNER_CHANNEL, &last),
                     removed);
    assert_int_equal(last, removed > 0 && M.consumer_count == 0);
}

static void op_consumer_tweak(void)
{
    if (M.consumer_count == 0) return;
    model_consumer *c = &M.consumers[rnd_below((uint32_t)M.consumer_count)];
    if (rnd_below(4) == 0) {
        c->active = !c->active;
        assert_true(store_queue_consumer_set_active(M.q, c->id, c->active));
        return;
    }
    uint32_t credit = 1 + rnd_below(4);
    assert_true(store_queue_credit(M.q, c->id, credit));
    if (c->credit != STORE_CREDIT_UNLIMITED) c->credit += credit;
    assert_int_equal(store_queue_consumer(M.q, c->id)->credit, c->credit);
}

static store_queue *model_queue(mi_heap_t *heap, const store_queue_paging *paging)
{
    M.paging = paging;
    store_queue *q = store_queue_new(heap, "/", 1, "q", 1, paging);
    assert_non_null(q);
    return q;
}

static void run_model_paged(mi_heap_t *heap, uint64_t seed, uint32_t ops,
                            const store_queue_paging *paging)
{
    memset(&M, 0, sizeof(M));
    M.rng = seed;
    M.heap = heap;
    M.delivery_id_next = 1;
    M.q = model_queue(heap, paging);
    for (uint32_t op = 0; op < ops; op++) {
        uint32_t r = rnd_below(100);
        if (r < 30)
            op_push();
        else if (r < 48)
            op_dispatch();
        else if (r < 56)
            op_get();
        else if (r < 76)
            op_settle();
        else if (r < 80)
            op_requeue();
        else if (r < 81)
            op_purge();
        else if (r < 86)
            op_consumer_add();
        else if (r < 89)
            op_consumer_remove();
        else if (r < 90)
            op_consumer_remove_owner();
        else
            op_consumer_tweak();
        check_counts();
    }
    assert_int_equal(store_queue_delete(M.q), M.ready_count);
}

static void run_model(mi_heap_t *heap, uint64_t seed, uint32_t ops)
{
    run_model_paged(heap, seed, ops, NULL);
}

static void test_model_seed_1(void **state)
{
    run_model(*state, 1, 20000);
}
static void test_model_seed_2(void **state)
{
    run_model(*state, 0xfeedface, 20000);
}
static void test_model_seed_3(void **state)
{
    run_model(*state, 20240601, 50000);
}

/* A push-heavy run that builds backlogs of thousands before the consumers catch up. */
static void run_backlog(mi_heap_t *heap, const store_queue_paging *paging)
{
    memset(&M, 0, sizeof(M));
    M.rng = 99;
    M.heap = heap;
    M.delivery_id_next = 1;
    M.q = model_queue(heap, paging);
    for (int i = 0; i < 3; i++) op_consumer_add();
    for (uint32_t op = 0; op < 30000; op++) {
        uint32_t phase = (op / 3000) % 2;
        uint32_t r = rnd_below(100);
        if (r < (phase == 0 ? 70u : 10u))
            op_push();
        else if (r < 60)
            op_dispatch();
        else if (r < 85)
            op_settle();
        else if (r < 88)
            op_requeue();
        else if (r < 90)
            op_consumer_add();
        else if (r < 91)
            op_consumer_remove();
        else
            op_consumer_tweak();
        check_counts();
    }
    store_queue_delete(M.q);
}

static void test_model_backlog(void **state)
{
    run_backlog(*state, NULL);
}

/* ---- the same with paging ---- */

typedef struct paged_state {
    mi_heap_t *heap;
    char dir[64];
    int dir_fd;
} paged_state;

static int paged_setup(void **state)
{
    static paged_state ps;
    ps.heap = mi_heap_new();
    snprintf(ps.dir, sizeof(ps.dir), "/tmp/ringmq-test-model-XXXXXX");
    if (ps.heap == NULL || mkdtemp(ps.dir) == NULL) return -1;
    ps.dir_fd = store_spill_dir_open(ps.dir, 0);
    *state = &ps;
    return ps.dir_fd >= 0 ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int paged_teardown(void **state)
{
    paged_state *ps = *state;
    void *heap = ps->heap;
    close(ps->dir_fd);
    int rc = nftw(ps->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return util_heap_teardown(&heap) == 0 && rc == 0 ? 0 : -1;
}

static store_queue_paging paging_of(const paged_state *ps, uint64_t messages, uint64_t bytes)
{
    return (store_queue_paging){.dir_fd = ps->dir_fd,
                                .queue_id = 77,
                                .chunk_bytes = 4096,
                                .memory_messages_max = messages,
                                .memory_bytes_max = bytes};
}

static void test_paged_model_by_count(void **state)
{
    paged_state *ps = *state;
    store_queue_paging paging = paging_of(ps, 8, UINT64_MAX);
    run_model_paged(ps->heap, 1, 20000, &paging);
    run_model_paged(ps->heap, 0xfeedface, 20000, &paging);
    assert_true(M.spilled_max > 0);
}

static void test_paged_model_by_bytes(void **state)
{
    paged_state *ps = *state;
    store_queue_paging paging = paging_of(ps, 1u << 20, 700); /* ~8 messages of ~85 bytes */
    run_model_paged(ps->heap, 20240601, 50000, &paging);
    assert_true(M.spilled_max > 0);
}

static void test_paged_backlog(void **state)
{
    paged_state *ps = *state;
    store_queue_paging paging = paging_of(ps, 16, UINT64_MAX);
    run_backlog(ps->heap, &paging);
    assert_true(M.spilled_max > 1000); /* the backlog of thousands lives on disk */
}

#define T(f) cmocka_unit_test_setup_teardown(f, util_heap_setup, util_heap_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_model_seed_1),
        T(test_model_seed_2),
        T(test_model_seed_3),
        T(test_model_backlog),
        cmocka_unit_test_setup_teardown(test_paged_model_by_count, paged_setup, paged_teardown),
        cmocka_unit_test_setup_teardown(test_paged_model_by_bytes, paged_setup, paged_teardown),
        cmocka_unit_test_setup_teardown(test_paged_backlog, paged_setup, paged_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
