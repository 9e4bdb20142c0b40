// Benchmarks for the cross-core mailbox (core/mbox): the cost of one record through a ring on
// one thread, and round trips between two threads pinned to CPUs 0 and 1, first spinning, then
// with the real sleep protocol (sleeping flag + eventfd standing in for IORING_OP_MSG_RING), where
// the figure that matters is how many messages each wake-up carries.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

// core/assert.h spells static assertions the C11 way; C++ names the same thing static_assert.
#define _Static_assert static_assert
extern "C" {
#include "core/limits.h"
#include "core/mbox.h"
}
#undef _Static_assert

namespace
{

constexpr uint16_t kKindData = 1;
constexpr uint16_t kKindStop = 2;

void pin_to_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set); // best effort on small machines
}

void eventfd_signal(int fd)
{
    uint64_t one = 1;
    if (write(fd, &one, sizeof(one)) != static_cast<ssize_t>(sizeof(one))) abort();
}

void eventfd_block(int fd)
{
    uint64_t count;
    if (read(fd, &count, sizeof(count)) != static_cast<ssize_t>(sizeof(count))) abort();
}

void set_per_message(benchmark::State &state, uint64_t messages)
{
    // Time per message, printed in seconds with an SI prefix (e.g. "12.3n").
    state.counters["per_msg"] = benchmark::Counter(
        static_cast<double>(messages), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// One thread: `batch` records of `payload` bytes pushed and published as one turn, then drained
// and released as one turn. Arguments: payload bytes, records per turn.
void BM_mbox_push_pop(benchmark::State &state)
{
    pin_to_cpu(0);
    const uint32_t payload_bytes = static_cast<uint32_t>(state.range(0));
    const uint32_t batch = static_cast<uint32_t>(state.range(1));
    mbox_mesh *mesh = mbox_mesh_create(2, LIMIT_MBOX_RING_BYTES);
    mbox_ring *ring = mbox_mesh_ring(mesh, 0, 1);
    uint8_t source[LIMIT_MBOX_PAYLOAD_BYTES_MAX];
    memset(source, 0x5a, sizeof(source));
    uint64_t sum = 0;
    for (auto _ : state) {
        for (uint32_t i = 0; i < batch; i++) {
            if (!mbox_push(ring, kKindData, source, payload_bytes)) abort();
        }
        mbox_publish(ring);
        for (uint32_t i = 0; i < batch; i++) {
            const mbox_record *record = mbox_peek(ring);
            const uint8_t *payload = static_cast<const uint8_t *>(mbox_record_payload(record));
            sum += record->payload_bytes + (payload_bytes > 0 ? payload[payload_bytes - 1] : 0);
            mbox_pop(ring);
        }
        mbox_release(ring);
    }
    benchmark::DoNotOptimize(sum);
    set_per_message(state, state.iterations() * batch);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch * payload_bytes));
    mbox_mesh_destroy(mesh);
}
BENCHMARK(BM_mbox_push_pop)->ArgNames({"bytes", "batch"})->ArgsProduct({{16, 256}, {1, 64}});

// The echo shard (shard 1, CPU 1): returns every data record to shard 0 with the same payload.
struct echo_ctx {
    mbox_mesh *mesh;
    bool sleep;     // use the sleep protocol, else spin
    int eventfd[2]; // per shard: what a wake-up writes to
    std::atomic<uint64_t> wakes_sent{0};
};

struct echo_turn {
    mbox_ring *back;
    bool stop;
};

void echo_one(void *arg, const mbox_record *record)
{
    echo_turn *turn = static_cast<echo_turn *>(arg);
    if (record->kind == kKindStop) {
        turn->stop = true;
        return;
    }
    const uint32_t payload_bytes = record->payload_bytes;
    if (!mbox_push(turn->back, kKindData, mbox_record_payload(record), payload_bytes)) abort();
}

void *echo_main(void *arg)
{
    echo_ctx *ctx = static_cast<echo_ctx *>(arg);
    pin_to_cpu(1);
    mbox_ring *in = mbox_mesh_ring(ctx->mesh, 0, 1);
    echo_turn turn = {mbox_mesh_ring(ctx->mesh, 1, 0), false};
    uint64_t wakes = 0;
    while (!turn.stop) {
        uint32_t records = mbox_drain(in, echo_one, &turn, LIMIT_MBOX_DRAIN_RECORDS_MAX);
        mbox_release(in);
        if (mbox_publish(turn.back)) {
            wakes++;
            eventfd_signal(ctx->eventfd[0]);
        }
        if (records == 0 && ctx->sleep && mbox_sleep_prepare(ctx->mesh, 1)) {
            eventfd_block(ctx->eventfd[1]);
            mbox_sleep_end(ctx->mesh, 1);
        }
    }
    ctx->wakes_sent.store(wakes);
    return nullptr;
}

// Shard 0 (CPU 0) sends `batch` 16-byte records in one turn, then waits for all of them to
// come back; with sleep, both sides sleep when their inbound ring is empty.
void pingpong(benchmark::State &state, bool sleep)
{
    pin_to_cpu(0);
    const uint32_t batch = static_cast<uint32_t>(state.range(0));
    const uint32_t payload_bytes = 16;
    echo_ctx ctx;
    ctx.mesh = mbox_mesh_create(2, LIMIT_MBOX_RING_BYTES);
    ctx.sleep = sleep;
    ctx.eventfd[0] = eventfd(0, EFD_CLOEXEC);
    ctx.eventfd[1] = eventfd(0, EFD_CLOEXEC);
    mbox_ring *out = mbox_mesh_ring(ctx.mesh, 0, 1);
    mbox_ring *in = mbox_mesh_ring(ctx.mesh, 1, 0);
    pthread_t echo;
    pthread_create(&echo, nullptr, echo_main, &ctx);
    uint8_t source[16] = {1};
    uint64_t wakes = 0, sleeps = 0, seq = 0;
    for (auto _ : state) {
        for (uint32_t i = 0; i < batch; i++) {
            memcpy(source, &seq, sizeof(seq));
            seq++;
            if (!mbox_push(out, kKindData, source, payload_bytes)) abort();
        }
        if (mbox_publish(out)) wakes++, eventfd_signal(ctx.eventfd[1]);
        uint32_t returned = 0;
        while (returned < batch) {
            const mbox_record *record = mbox_peek(in);
            if (record != nullptr) {
                mbox_pop(in);
                returned++;
                continue;
            }
            mbox_release(in);
            if (sleep && mbox_sleep_prepare(ctx.mesh, 0)) {
                sleeps++;
                eventfd_block(ctx.eventfd[0]);
                mbox_sleep_end(ctx.mesh, 0);
            }
        }
        mbox_release(in);
    }
    if (!mbox_push(out, kKindStop, nullptr, 0)) abort();
    if (mbox_publish(out)) eventfd_signal(ctx.eventfd[1]);
    pthread_join(echo, nullptr);
    wakes += ctx.wakes_sent.load();
    const uint64_t messages = 2 * state.iterations() * batch; // both directions
    set_per_message(state, state.iterations() * batch);       // per round trip
    state.counters["msgs_per_wake"] = wakes ? static_cast<double>(messages) / wakes : 0.0;
    state.counters["wakes"] = static_cast<double>(wakes);
    benchmark::DoNotOptimize(sleeps);
    close(ctx.eventfd[0]);
    close(ctx.eventfd[1]);
    mbox_mesh_destroy(ctx.mesh);
}

void BM_mbox_pingpong_spin(benchmark::State &state)
{
    pingpong(state, false);
}
void BM_mbox_pingpong_wake(benchmark::State &state)
{
    pingpong(state, true);
}
BENCHMARK(BM_mbox_pingpong_spin)->ArgName("batch")->Arg(1)->Arg(64)->UseRealTime();
BENCHMARK(BM_mbox_pingpong_wake)
    ->ArgName("batch")
    ->Arg(1)
    ->Arg(16)
    ->Arg(64)
    ->Arg(256)
    ->UseRealTime();

} // namespace

BENCHMARK_MAIN();
