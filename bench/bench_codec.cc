// Benchmarks for the AMQP 0-9-1 codec (net/amqp_*.c), the work the receive and send paths do per
// message: splitting a buffer of frames, decoding a publish (method, content header, body slice),
// writing a basic.deliver frame, reading a client-properties field table, and the property
// extraction of a content header (the broker's view against the full decode). Inputs are built
// once with the codec's own writers; every loop only reads them.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

// core/assert.h spells static assertions the C11 way; C++ names the same thing static_assert.
#define _Static_assert static_assert
extern "C" {
#include "core/limits.h"
#include "net/amqp_frame.h"
#include "net/amqp_method.h"
#include "net/amqp_props.h"
#include "net/amqp_table.h"
}
#undef _Static_assert

namespace
{

constexpr uint32_t kFrameMax = LIMIT_FRAME_BYTES_DEFAULT;
constexpr uint16_t kChannel = 1;

void check(bool ok, const char *what)
{
    if (!ok) {
        std::fprintf(stderr, "bench_codec: %s\n", what);
        std::abort();
    }
}

amqp_bytes bytes_of(const char *s) { return amqp_cstr(s); }

// A 10-entry client-properties table as a typical client library sends it (capabilities nested).
std::vector<uint8_t> client_properties()
{
    std::vector<uint8_t> buf(1024);
    amqp_table_builder b;
    amqp_table_builder_init(&b, buf.data(), buf.size());
    amqp_table_add_cstr(&b, "product", "pika");
    amqp_table_add_cstr(&b, "platform", "Python 3.11.2");
    amqp_table_add_cstr(&b, "version", "1.3.2");
    amqp_table_add_cstr(&b, "information", "See https://pika.readthedocs.io");
    amqp_table_add_cstr(&b, "copyright", "Copyright (c) 2009-2022 Tony Garnock-Jones");
    amqp_table_open_table(&b, "capabilities");
    amqp_table_add_bool(&b, "authentication_failure_close", true);
    amqp_table_add_bool(&b, "basic.nack", true);
    amqp_table_add_bool(&b, "connection.blocked", true);
    amqp_table_add_bool(&b, "consumer_cancel_notify", true);
    amqp_table_add_bool(&b, "publisher_confirms", true);
    amqp_table_close(&b);
    amqp_table_add_cstr(&b, "connection_name", "orders-worker-7");
    amqp_table_add_int32(&b, "x-priority", 5);
    amqp_table_add_int64(&b, "x-started-at", 1700000000);
    amqp_table_add_bool(&b, "x-durable-consumer", false);
    amqp_table t;
    check(amqp_table_builder_finish(&b, &t), "client properties do not fit");
    // As on the wire: 4-byte length, then the entries.
    std::vector<uint8_t> wire(4 + t.len);
    wire[0] = static_cast<uint8_t>(t.len >> 24);
    wire[1] = static_cast<uint8_t>(t.len >> 16);
    wire[2] = static_cast<uint8_t>(t.len >> 8);
    wire[3] = static_cast<uint8_t>(t.len);
    std::memcpy(wire.data() + 4, t.data, t.len);
    return wire;
}

// Typical publisher properties: content type, persistent, a correlation id and reply-to, a
// timestamp and a two-entry headers table. Returns flags word + property list.
std::vector<uint8_t> typical_props(std::vector<uint8_t> &headers_buf)
{
    headers_buf.assign(256, 0);
    amqp_table_builder b;
    amqp_table_builder_init(&b, headers_buf.data(), headers_buf.size());
    amqp_table_add_cstr(&b, "x-tenant", "acme");
    amqp_table_add_int32(&b, "x-retries", 2);
    amqp_table headers;
    check(amqp_table_builder_finish(&b, &headers), "headers do not fit");

    amqp_basic_props p;
    std::memset(&p, 0, sizeof(p));
    p.flags = AMQP_PROP_CONTENT_TYPE | AMQP_PROP_HEADERS | AMQP_PROP_DELIVERY_MODE |
              AMQP_PROP_CORRELATION_ID | AMQP_PROP_REPLY_TO | AMQP_PROP_TIMESTAMP;
    p.content_type = bytes_of("application/json");
    p.headers = headers;
    p.delivery_mode = 2;
    p.correlation_id = bytes_of("3f2c9a41-5b7e-4c1d-9a0e-1d2f3a4b5c6d");
    p.reply_to = bytes_of("amq.rabbitmq.reply-to");
    p.timestamp = 1700000000;
    std::vector<uint8_t> raw(amqp_props_size(&p));
    amqp_error err;
    check(amqp_props_encode(&p, raw.data(), raw.size(), &err) == static_cast<ssize_t>(raw.size()),
          "props encode");
    return raw;
}

// basic.publish + content header (delivery_mode only) + 16-byte body: three frames.
std::vector<uint8_t> publish_frames(uint16_t channel)
{
    std::vector<uint8_t> out(256);
    amqp_method m;
    std::memset(&m, 0, sizeof(m));
    m.id = AMQP_BASIC_PUBLISH;
    m.a.basic_publish.exchange = bytes_of("amq.direct");
    m.a.basic_publish.routing_key = bytes_of("orders.created");
    amqp_error err;
    ssize_t n = amqp_frame_write_method(out.data(), out.size(), channel, &m, &err);
    check(n > 0, "publish frame");
    static const uint8_t props_raw[] = {0x10, 0x00, 2}; // delivery-mode 2
    static const uint8_t body[16] = {'{', '"', 'i', 'd', '"', ':', '4', '2', '}', ' ',
                                     ' ', ' ', ' ', ' ', ' ', '\n'};
    ssize_t c = amqp_frame_write_content(out.data() + n, out.size() - n, channel, kFrameMax,
                                         AMQP_BASIC_CLASS_ID, {props_raw, sizeof(props_raw)}, body,
                                         sizeof(body), &err);
    check(c > 0, "content frames");
    out.resize(static_cast<size_t>(n + c));
    return out;
}

// Frame splitting: a 64 KiB-ish receive buffer of publishes (3 frames each) and heartbeats.
void BM_FrameSplit(benchmark::State &state)
{
    std::vector<uint8_t> buf;
    for (int i = 0; i < 512; i++) {
        std::vector<uint8_t> p = publish_frames(static_cast<uint16_t>(1 + i % 8));
        buf.insert(buf.end(), p.begin(), p.end());
        if (i % 64 == 0) {
            uint8_t hb[8];
            check(amqp_frame_write_heartbeat(hb, sizeof(hb), nullptr) == 8, "heartbeat");
            buf.insert(buf.end(), hb, hb + 8);
        }
    }
    uint64_t frames = 0;
    for (auto _ : state) {
        size_t off = 0;
        amqp_frame f;
        amqp_error err;
        ssize_t n;
        while ((n = amqp_frame_parse(buf.data() + off, buf.size() - off, kFrameMax, &f, &err)) >
               0) {
            benchmark::DoNotOptimize(f.payload);
            off += static_cast<size_t>(n);
            frames++;
        }
        check(off == buf.size(), "frame split");
    }
    state.SetItemsProcessed(static_cast<int64_t>(frames));
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buf.size()));
}
BENCHMARK(BM_FrameSplit);

// The receive path of one message: parse each of the three frames, decode the method, decode the
// content header (the broker's view), take the body as a slice.
void BM_DecodePublish(benchmark::State &state)
{
    std::vector<uint8_t> buf = publish_frames(kChannel);
    const uint8_t *p = buf.data();
    const size_t len = buf.size();
    for (auto _ : state) {
        amqp_frame f;
        amqp_error err;
        amqp_method m;
        amqp_content_header h;
        size_t off = 0;
        ssize_t n = amqp_frame_parse(p, len, kFrameMax, &f, &err);
        bool ok = n > 0 && amqp_method_decode(f.payload, f.payload_len, &m, &err);
        off += static_cast<size_t>(n);
        n = amqp_frame_parse(p + off, len - off, kFrameMax, &f, &err);
        ok = ok && n > 0 && amqp_content_header_decode(f.payload, f.payload_len, &h, &err);
        off += static_cast<size_t>(n);
        n = amqp_frame_parse(p + off, len - off, kFrameMax, &f, &err);
        ok = ok && n > 0 && f.type == AMQP_FRAME_BODY && f.payload_len == h.body_size;
        amqp_bytes body = {f.payload, f.payload_len};
        benchmark::DoNotOptimize(m);
        benchmark::DoNotOptimize(h);
        benchmark::DoNotOptimize(body);
        if (!ok) state.SkipWithError("decode failed");
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodePublish);

// The send path's method frame: basic.deliver into an output buffer.
void BM_EncodeDeliver(benchmark::State &state)
{
    uint8_t out[512];
    amqp_method m;
    std::memset(&m, 0, sizeof(m));
    m.id = AMQP_BASIC_DELIVER;
    m.a.basic_deliver.consumer_tag = bytes_of("amq.ctag-Xq3vR7bY2kLmN9pQ0sTuVw");
    m.a.basic_deliver.exchange = bytes_of("amq.direct");
    m.a.basic_deliver.routing_key = bytes_of("orders.created");
    uint64_t tag = 0;
    for (auto _ : state) {
        m.a.basic_deliver.delivery_tag = ++tag;
        amqp_error err;
        ssize_t n = amqp_frame_write_method(out, sizeof(out), kChannel, &m, &err);
        benchmark::DoNotOptimize(n);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeDeliver);

// Field table: read (validate) a 10-entry client-properties table.
void BM_TableRead(benchmark::State &state)
{
    std::vector<uint8_t> wire = client_properties();
    for (auto _ : state) {
        amqp_table t;
        size_t n = amqp_table_read(wire.data(), wire.size(), &t, nullptr);
        benchmark::DoNotOptimize(n);
        benchmark::DoNotOptimize(t);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_TableRead);

// Field table: read it, then walk every entry (and the nested capabilities) with the iterator.
void BM_TableReadWalk(benchmark::State &state)
{
    std::vector<uint8_t> wire = client_properties();
    for (auto _ : state) {
        amqp_table t;
        check(amqp_table_read(wire.data(), wire.size(), &t, nullptr) == wire.size(), "table read");
        amqp_table_iter it, inner;
        amqp_bytes key;
        amqp_field v;
        uint32_t seen = 0;
        amqp_table_iter_init(&it, t);
        while (amqp_table_iter_next(&it, &key, &v)) {
            seen++;
            if (v.type != AMQP_FIELD_TABLE) continue;
            amqp_table_iter_init(&inner, v.v.table);
            while (amqp_table_iter_next(&inner, &key, &v)) seen++;
        }
        benchmark::DoNotOptimize(seen);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TableReadWalk);

// Property extraction from a content header with typical publisher properties: the broker's
// view (validates everything, keeps slices of the few fields it needs) ...
void BM_PropsExtract(benchmark::State &state)
{
    std::vector<uint8_t> headers_buf;
    std::vector<uint8_t> raw = typical_props(headers_buf);
    std::vector<uint8_t> payload(12 + raw.size(), 0);
    payload[1] = AMQP_BASIC_CLASS_ID;
    payload[11] = 16; // body size
    std::memcpy(payload.data() + 12, raw.data(), raw.size());
    for (auto _ : state) {
        amqp_content_header h;
        bool ok = amqp_content_header_decode(payload.data(), payload.size(), &h, nullptr);
        benchmark::DoNotOptimize(ok);
        benchmark::DoNotOptimize(h);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PropsExtract);

// ... and the full decode of all 14 properties that tools use.
void BM_PropsDecodeFull(benchmark::State &state)
{
    std::vector<uint8_t> headers_buf;
    std::vector<uint8_t> raw = typical_props(headers_buf);
    for (auto _ : state) {
        amqp_basic_props p;
        bool ok = amqp_props_decode(raw.data(), raw.size(), &p, nullptr);
        benchmark::DoNotOptimize(ok);
        benchmark::DoNotOptimize(p);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PropsDecodeFull);

} // namespace

BENCHMARK_MAIN();
