// The segment log's recovery: store_log_open over a log of RINGMQ_BENCH_RECOVERY_MIB MiB (default
// 256) of 1 KiB message records, all live, with a replay callback that only counts (so what is
// measured is reading, checksumming and slot bookkeeping: the broker's start-up time for such a
// log before its queues take the messages). The log is written once, by the log itself, under
// $RINGMQ_BENCH_DIR (default /tmp), and removed at the end. With RINGMQ_BENCH_DROP_CACHES=1 (root)
// the page cache is dropped before every open, so the figure is a cold start from the disk.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ftw.h>
#include <unistd.h>

extern "C" {
#include "core/limits.h"
#include "store/log.h"
}

namespace
{

struct Counts {
    uint64_t slots = 0;
};

bool replay_count(void *ctx, const store_log_msg_view *, uint16_t)
{
    static_cast<Counts *>(ctx)->slots++;
    return true; /* keep every slot live: the next open sees the same log */
}

int rm_entry(const char *path, const struct stat *, int, struct FTW *)
{
    return remove(path);
}

uint64_t env_u64(const char *name, uint64_t fallback)
{
    const char *v = getenv(name);
    return v != nullptr ? strtoull(v, nullptr, 10) : fallback;
}

void drop_caches()
{
    sync();
    FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
    if (f == nullptr) return; /* not root: a warm-cache figure */
    fputs("3\n", f);
    fclose(f);
}

void BM_RecoveryOpen(benchmark::State &state)
{
    const uint64_t total_bytes = env_u64("RINGMQ_BENCH_RECOVERY_MIB", 256) << 20;
    const bool cold = env_u64("RINGMQ_BENCH_DROP_CACHES", 0) != 0;
    char path[256];
    const char *base = getenv("RINGMQ_BENCH_DIR");
    snprintf(path, sizeof(path), "%s/ringmq-bench-recovery-XXXXXX", base ? base : "/tmp");
    if (mkdtemp(path) == nullptr) abort();
    store_log_config cfg{};
    cfg.dir = path;
    cfg.segment_bytes = LIMIT_SEGMENT_BYTES_DEFAULT;
    cfg.direct_io = true;
    Counts counts;
    store_log *log = store_log_open(&cfg, replay_count, &counts, nullptr);
    if (log == nullptr) abort();
    static char body[1024];
    const uint64_t queue_id = 7;
    uint64_t written = 0, records = 0;
    while (written < total_bytes) {
        for (int i = 0; i < 1024; i++) {
            struct iovec iov = {body, sizeof(body)};
            store_log_pos pos;
            uint64_t seq;
            if (!store_log_append_msg(log, &queue_id, 1, &iov, 1, true, &pos, &seq)) abort();
            records++;
            written += sizeof(body) + 40;
        }
        if (store_log_flush_sync(log) != 0) abort();
    }
    store_log_close(log);

    store_log_open_stats st{};
    for (auto _ : state) {
        state.PauseTiming();
        if (cold) drop_caches();
        counts.slots = 0;
        state.ResumeTiming();
        log = store_log_open(&cfg, replay_count, &counts, &st);
        if (log == nullptr) abort();
        state.PauseTiming();
        store_log_close(log);
        if (counts.slots != records) abort();
        state.ResumeTiming();
    }
    state.counters["records"] = static_cast<double>(records);
    state.counters["log_MiB"] = static_cast<double>(st.bytes_read >> 20);
    state.counters["segments"] = static_cast<double>(st.segments);
    state.SetBytesProcessed(static_cast<int64_t>(st.bytes_read) * state.iterations());
    state.SetItemsProcessed(static_cast<int64_t>(records) * state.iterations());
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

BENCHMARK(BM_RecoveryOpen)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1)->Repetitions(3);

} // namespace

BENCHMARK_MAIN();
