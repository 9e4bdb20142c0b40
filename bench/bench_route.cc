// Benchmarks for the routing replica (route/): the cost of one publish's match on the hot path.
// Direct lookup among 10k bindings, topic match among 10k bindings (a mix of literal, "*" and "#"
// patterns over a two-level namespace), and fanout to 4 queues. Each iteration routes one message
// into a caller-provided result array, as the broker does; nothing is allocated per publish.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

// core/assert.h spells static assertions the C11 way; C++ names the same thing static_assert.
#define _Static_assert static_assert
extern "C" {
#include "core/limits.h"
#include "route/route.h"
}
#undef _Static_assert

namespace {

amqp_bytes bytes_of(const std::string &s)
{
    return amqp_bytes{reinterpret_cast<const uint8_t *>(s.data()), static_cast<uint32_t>(s.size())};
}

void add_queue(route_vhost *vh, const std::string &name, uint64_t id)
{
    route_queue_spec spec{};
    spec.name = bytes_of(name);
    spec.queue_id = id;
    spec.shard = static_cast<uint32_t>(id % 4);
    if (route_queue_add(vh, &spec) == nullptr) abort();
}

void bind(route_vhost *vh, const char *exchange, const std::string &queue, const std::string &key)
{
    route_binding_spec spec{};
    spec.source = amqp_cstr(exchange);
    spec.destination = bytes_of(queue);
    spec.routing_key = bytes_of(key);
    spec.conn_id = ROUTE_CONN_ANY;
    route_error err;
    if (!route_binding_add(vh, &spec, nullptr, &err)) abort();
}

struct result_buffer {
    std::vector<const route_queue_info *> buf = std::vector<const route_queue_info *>(LIMIT_ROUTE_QUEUES_MAX);
    route_result r{};
    result_buffer() { route_result_init(&r, buf.data(), static_cast<uint32_t>(buf.size())); }
};

void BM_direct_10k(benchmark::State &state)
{
    route_vhost *vh = route_vhost_create(amqp_cstr("/"));
    std::vector<std::string> keys;
    for (int i = 0; i < 10000; i++) {
        std::string q = "q" + std::to_string(i);
        add_queue(vh, q, static_cast<uint64_t>(i));
        keys.push_back("orders.key." + std::to_string(i));
        bind(vh, "amq.direct", q, keys.back());
    }
    route_exchange *x = route_exchange_find(vh, amqp_cstr("amq.direct"));
    result_buffer rb;
    size_t i = 0;
    uint64_t matched = 0;
    for (auto _ : state) {
        route_publish(vh, x, bytes_of(keys[i]), amqp_table{nullptr, 0}, &rb.r);
        matched += rb.r.count;
        i = (i + 7919) % keys.size();
    }
    state.counters["queues_per_msg"] = static_cast<double>(matched) / static_cast<double>(state.iterations());
    route_vhost_destroy(vh);
}
BENCHMARK(BM_direct_10k);

// 10k topic bindings over "region<r>.sym<s>.<event>": 80% literal, 10% "*", 10% "#".
void BM_topic_10k(benchmark::State &state)
{
    route_vhost *vh = route_vhost_create(amqp_cstr("/"));
    for (int i = 0; i < 10000; i++) {
        std::string q = "q" + std::to_string(i);
        add_queue(vh, q, static_cast<uint64_t>(i));
        std::string region = "region" + std::to_string(i % 10);
        std::string sym = "sym" + std::to_string(i % 1000);
        std::string key;
        switch (i % 10) {
        case 0: key = region + ".#"; break;
        case 1: key = region + ".*.trade"; break;
        default: key = region + "." + sym + ".trade"; break;
        }
        bind(vh, "amq.topic", q, key);
    }
    std::vector<std::string> keys;
    for (int i = 0; i < 1000; i++)
        keys.push_back("region" + std::to_string(i % 10) + ".sym" + std::to_string((i * 37) % 1000) + ".trade");
    route_exchange *x = route_exchange_find(vh, amqp_cstr("amq.topic"));
    result_buffer rb;
    size_t i = 0;
    uint64_t matched = 0;
    for (auto _ : state) {
        route_publish(vh, x, bytes_of(keys[i]), amqp_table{nullptr, 0}, &rb.r);
        matched += rb.r.count;
        i = (i + 1) % keys.size();
    }
    state.counters["queues_per_msg"] = static_cast<double>(matched) / static_cast<double>(state.iterations());
    route_vhost_destroy(vh);
}
BENCHMARK(BM_topic_10k);

void BM_fanout_4(benchmark::State &state)
{
    route_vhost *vh = route_vhost_create(amqp_cstr("/"));
    for (int i = 0; i < 4; i++) {
        std::string q = "q" + std::to_string(i);
        add_queue(vh, q, static_cast<uint64_t>(i));
        bind(vh, "amq.fanout", q, "");
    }
    route_exchange *x = route_exchange_find(vh, amqp_cstr("amq.fanout"));
    result_buffer rb;
    std::string key = "any";
    uint64_t matched = 0;
    for (auto _ : state) {
        route_publish(vh, x, bytes_of(key), amqp_table{nullptr, 0}, &rb.r);
        matched += rb.r.count;
    }
    state.counters["queues_per_msg"] = static_cast<double>(matched) / static_cast<double>(state.iterations());
    route_vhost_destroy(vh);
}
BENCHMARK(BM_fanout_4);

} // namespace

BENCHMARK_MAIN();
