// Benchmarks for the in-memory queue structure (store/queue): the per-message cost of the hot
// cycle push -> dispatch -> ack (with and without the message allocation, with one or 64
// messages per turn, with an unlimited and a prefetch-limited consumer), the cost of a requeue
// (reject with requeue, then the redelivery), basic.get, and a backlog filled and drained, which
// exercises the ring's growth and shrinking. Everything runs on one thread on one mimalloc heap,
// as on a shard.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include <mimalloc.h>

extern "C" {
#include "store/msg.h"
#include "store/queue.h"
}

namespace
{

struct Deliveries {
    std::vector<uint64_t> ids;
};

void record_delivery(void *ctx, const store_consumer *, store_msg *, uint64_t delivery_id, bool)
{
    static_cast<Deliveries *>(ctx)->ids.push_back(delivery_id);
}

store_msg *make_msg(mi_heap_t *heap, uint64_t n)
{
    static const char body[64] = "0123456789012345678901234567890123456789012345678901234567890";
    store_msg_params p{};
    p.exchange = "amq.direct";
    p.exchange_bytes = 10;
    p.routing_key = "bench.queue";
    p.routing_key_bytes = 11;
    p.body = body;
    p.body_bytes = sizeof(body);
    p.publish_seq = n;
    store_msg *m = store_msg_new(heap, &p);
    if (m == nullptr) abort();
    return m;
}

struct Fixture {
    mi_heap_t *heap = mi_heap_new();
    store_queue *q = store_queue_new(heap, "/", 1, "bench", 5, nullptr);
    uint64_t consumer = 0;
    Deliveries d;

    explicit Fixture(uint32_t credit)
    {
        store_consumer_params p{};
        p.tag = "ctag";
        p.tag_bytes = 4;
        p.credit = credit;
        store_reply reply;
        consumer = store_queue_consumer_add(q, &p, &reply);
        if (consumer == 0) abort();
        d.ids.reserve(1 << 16);
    }
    ~Fixture()
    {
        store_queue_delete(q);
        mi_heap_destroy(heap);
    }
};

// Arg 0: messages per turn. Arg 1: 1 = allocate (and free) each message, 0 = push one shared
// message (the structure alone). Arg 2: prefetch credit (0 = unlimited), returned on each ack.
void BM_PushDispatchAck(benchmark::State &state)
{
    const uint32_t batch = static_cast<uint32_t>(state.range(0));
    const bool alloc = state.range(1) != 0;
    const uint32_t prefetch = static_cast<uint32_t>(state.range(2));
    Fixture f(prefetch == 0 ? STORE_CREDIT_UNLIMITED : prefetch);
    store_msg *shared = make_msg(f.heap, 0);
    uint64_t n = 0;
    for (auto _ : state) {
        for (uint32_t i = 0; i < batch; i++) {
            store_msg *m = alloc ? make_msg(f.heap, n++) : shared;
            store_queue_push(f.q, m);
            if (alloc) store_msg_unref(m);
        }
        f.d.ids.clear();
        while (f.d.ids.size() < batch) {
            size_t before = f.d.ids.size();
            store_queue_dispatch(f.q, record_delivery, &f.d, batch);
            for (size_t i = before; i < f.d.ids.size(); i++) {
                store_queue_ack(f.q, f.d.ids[i]);
                if (prefetch != 0) store_queue_credit(f.q, f.consumer, 1);
            }
        }
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * batch);
    store_msg_unref(shared);
}
BENCHMARK(BM_PushDispatchAck)
    ->ArgNames({"batch", "alloc", "prefetch"})
    ->Args({1, 0, 0})
    ->Args({64, 0, 0})
    ->Args({1, 1, 0})
    ->Args({64, 1, 0})
    ->Args({64, 0, 64})
    ->Args({64, 1, 64});

// Arg 0: unacked messages requeued per turn (in a scrambled order), then redelivered and kept
// unacked for the next turn. The figure is per message: reject+requeue, heap pop, new delivery.
void BM_RequeueRedeliver(benchmark::State &state)
{
    const uint32_t batch = static_cast<uint32_t>(state.range(0));
    Fixture f(STORE_CREDIT_UNLIMITED);
    for (uint32_t i = 0; i < batch; i++) {
        store_msg *m = make_msg(f.heap, i);
        store_queue_push(f.q, m);
        store_msg_unref(m);
    }
    store_queue_dispatch(f.q, record_delivery, &f.d, batch);
    std::vector<uint64_t> ids(f.d.ids);
    const uint32_t stride = 7919; // prime: a permutation of the batch
    for (auto _ : state) {
        for (uint32_t i = 0; i < batch; i++) {
            store_queue_reject(f.q, ids[(static_cast<uint64_t>(i) * stride) % batch], true);
        }
        f.d.ids.clear();
        store_queue_dispatch(f.q, record_delivery, &f.d, batch);
        ids.swap(f.d.ids);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * batch);
}
BENCHMARK(BM_RequeueRedeliver)->ArgName("batch")->Arg(64)->Arg(4096)->Arg(65536);

// basic.get with ack: push one, get it, ack it.
void BM_GetAck(benchmark::State &state)
{
    Fixture f(0);
    store_msg *shared = make_msg(f.heap, 0);
    store_owner owner{0, 1, 1};
    for (auto _ : state) {
        store_queue_push(f.q, shared);
        store_get g;
        store_queue_get(f.q, &owner, false, &g);
        store_msg_unref(g.msg);
        store_queue_ack(f.q, g.delivery_id);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
    store_msg_unref(shared);
}
BENCHMARK(BM_GetAck);

// A backlog of Arg 0 messages pushed, then drained by a no_ack basic.get (ring growth and
// shrink included). Reports the heap's bytes per backlog message at the peak.
void BM_BacklogFillDrain(benchmark::State &state)
{
    const uint64_t backlog = static_cast<uint64_t>(state.range(0));
    Fixture f(0);
    store_msg *shared = make_msg(f.heap, 0);
    store_owner owner{0, 1, 1};
    for (auto _ : state) {
        for (uint64_t i = 0; i < backlog; i++) store_queue_push(f.q, shared);
        store_get g;
        while (store_queue_get(f.q, &owner, true, &g)) store_msg_unref(g.msg);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * backlog));
    store_msg_unref(shared);
}
BENCHMARK(BM_BacklogFillDrain)->ArgName("backlog")->Arg(1 << 10)->Arg(1 << 20);

} // namespace

BENCHMARK_MAIN();
