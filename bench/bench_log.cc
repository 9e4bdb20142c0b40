// Benchmarks for the segment log (store/log): the cost of appending a message record with a
// 16-byte body (with the group-commit bookkeeping, flush descriptions completed as if the writes
// had succeeded, so no I/O is measured), and the throughput of flush_sync (pwrite + fdatasync) for
// batches of 1, 64 and 1024 such records, buffered and with O_DIRECT. Every record is acked after
// it is written so dead segments are deleted and the disk use stays at a segment or two. The log
// directory is a fresh one under $RINGMQ_BENCH_DIR (default /tmp), removed at the end.
#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ftw.h>
#include <vector>

extern "C" {
#include "core/limits.h"
#include "store/log.h"
}

namespace
{

bool replay_none(void *, const store_log_msg_view *, uint16_t)
{
    return false;
}

int rm_entry(const char *path, const struct stat *, int, struct FTW *)
{
    return remove(path);
}

struct LogDir {
    char path[256];
    store_log *log = nullptr;

    explicit LogDir(bool direct_io)
    {
        const char *base = getenv("RINGMQ_BENCH_DIR");
        snprintf(path, sizeof(path), "%s/ringmq-bench-log-XXXXXX", base ? base : "/tmp");
        if (mkdtemp(path) == nullptr) abort();
        store_log_config cfg{};
        cfg.dir = path;
        cfg.segment_bytes = LIMIT_SEGMENT_BYTES_DEFAULT;
        cfg.direct_io = direct_io;
        log = store_log_open(&cfg, replay_none, nullptr, nullptr);
        if (log == nullptr) abort();
    }
    ~LogDir()
    {
        store_log_close(log);
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
};

const uint64_t queue_id = 42;
char body[16] = "0123456789abcde";

store_log_pos append_one(store_log *log)
{
    struct iovec iov = {body, sizeof(body)};
    store_log_pos pos;
    uint64_t seq;
    if (!store_log_append_msg(log, &queue_id, 1, &iov, 1, true, &pos, &seq)) abort();
    return pos;
}

// A flush described and completed without I/O: the log's own cost per flush.
void flush_pretend(store_log *log)
{
    store_log_io io;
    if (!store_log_flush_begin(log, &io)) return;
    int results[STORE_LOG_IO_OPS_MAX], syncs[STORE_LOG_IO_OPS_MAX] = {};
    for (uint32_t i = 0; i < io.op_count; i++) results[i] = static_cast<int>(io.ops[i].bytes);
    if (store_log_flush_end(log, &io, results, syncs) != 0) abort();
}

void BM_AppendAck16(benchmark::State &state)
{
    LogDir d(false);
    const int64_t per_flush = state.range(0);
    std::vector<store_log_pos> pending;
    for (auto _ : state) {
        pending.push_back(append_one(d.log));
        if (static_cast<int64_t>(pending.size()) == per_flush) {
            flush_pretend(d.log);
            for (const store_log_pos &p : pending) store_log_ack(d.log, p, 0);
            pending.clear();
        }
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AppendAck16)->Arg(64)->Arg(1024);

void BM_FlushSync16(benchmark::State &state)
{
    LogDir d(state.range(1) != 0);
    const int64_t batch = state.range(0);
    std::vector<store_log_pos> pending;
    for (auto _ : state) {
        for (int64_t i = 0; i < batch; i++) pending.push_back(append_one(d.log));
        if (store_log_flush_sync(d.log) != 0) abort();
        for (const store_log_pos &p : pending) store_log_ack(d.log, p, 0);
        pending.clear();
    }
    state.SetItemsProcessed(state.iterations() * batch);
    store_log_stats st;
    store_log_stats_get(d.log, &st);
    state.counters["syncs"] = static_cast<double>(st.syncs);
}
BENCHMARK(BM_FlushSync16)
    ->ArgsProduct({{1, 64, 1024}, {0, 1}})
    ->ArgNames({"batch", "direct"})
    ->UseRealTime(); // the time is the disk's

} // namespace

BENCHMARK_MAIN();
