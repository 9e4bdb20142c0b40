/*
 * A log-linear latency histogram in the manner of HdrHistogram: values
 * below 2^SUB_BITS ns are exact, above that each power of two is split into
 * 2^SUB_BITS buckets, so a reported value is within 1/64 (1.6 %) of the
 * recorded one. Values past the last octave (2^42 ns, 73 minutes) land in the last
 * bucket. The owner thread records with plain stores published as relaxed
 * atomics; the sampler reads a consistent-enough copy while it runs.
 */
#include <string.h>

#include "core/assert.h"
#include "tools/amqp-perf/perf.h"

enum { SUB = 1 << PERF_HIST_SUB_BITS };

static uint32_t hist_index(uint64_t ns)
{
    if (ns < SUB) return (uint32_t)ns;
    uint32_t e = 63u - (uint32_t)__builtin_clzll(ns); /* >= SUB_BITS */
    uint32_t octave = e - PERF_HIST_SUB_BITS + 1;
    if (octave > PERF_HIST_OCTAVES) return PERF_HIST_BUCKETS - 1;
    uint32_t sub = (uint32_t)(ns >> (e - PERF_HIST_SUB_BITS)) - SUB;
    return (octave << PERF_HIST_SUB_BITS) + sub;
}

/* The middle of a bucket's range, ns. */
static uint64_t hist_value(uint32_t index)
{
    ASSERT(index < PERF_HIST_BUCKETS);
    if (index < SUB) return index;
    uint32_t octave = index >> PERF_HIST_SUB_BITS, sub = index & (SUB - 1);
    uint32_t shift = octave - 1;
    uint64_t low = (uint64_t)(SUB + sub) << shift;
    return low + (((uint64_t)1 << shift) >> 1);
}

void perf_hist_record(perf_hist *h, uint64_t ns)
{
    uint32_t i = hist_index(ns);
    ASSERT(i < PERF_HIST_BUCKETS);
    __atomic_store_n(&h->counts[i], h->counts[i] + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->total, h->total + 1, __ATOMIC_RELAXED);
    if (ns > h->max_ns) __atomic_store_n(&h->max_ns, ns, __ATOMIC_RELAXED);
}

void perf_hist_add(perf_hist *dst, const perf_hist *src)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < PERF_HIST_BUCKETS; i++) {
        uint64_t n = __atomic_load_n(&src->counts[i], __ATOMIC_RELAXED);
        dst->counts[i] += n;
        total += n;
    }
    dst->total += total; /* the sum of what was read, not src->total: consistent */
    uint64_t mx = __atomic_load_n(&src->max_ns, __ATOMIC_RELAXED);
    if (mx > dst->max_ns) dst->max_ns = mx;
}

void perf_hist_sub(perf_hist *dst, const perf_hist *a, const perf_hist *b)
{
    dst->total = 0;
    for (uint32_t i = 0; i < PERF_HIST_BUCKETS; i++) {
        ASSERT(a->counts[i] >= b->counts[i]);
        dst->counts[i] = a->counts[i] - b->counts[i];
        dst->total += dst->counts[i];
    }
    dst->max_ns = a->max_ns;
}

uint64_t perf_hist_percentile(const perf_hist *h, double p)
{
    ASSERT(p > 0 && p <= 100);
    if (h->total == 0) return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->total + 0.999999);
    if (rank == 0) rank = 1;
    if (rank > h->total) rank = h->total;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < PERF_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hist_value(i);
            return (h->max_ns != 0 && v > h->max_ns) ? h->max_ns : v;
        }
    }
    return h->max_ns;
}
