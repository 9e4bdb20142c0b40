/*
 * Tests for core/config.c: defaults, every key of the INI file, size
 * suffixes, quoting, every error class with its exact "FILE:LINE: key"
 * prefix, cross-field validation, and the command line (flags over file in
 * any order, --help/--version, bad and unknown flags). The config struct is
 * large, so the tests share two static ones reset before each test.
 */
#include "core/config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static config cfg;
static config expected;
static config_error err;

static int setup(void **state)
{
    (void)state;
    config_defaults(&cfg);
    config_defaults(&expected);
    memset(&err, 0, sizeof(err));
    return 0;
}

static void assert_same_config(const config *a, const config *b)
{
    assert_string_equal(a->bind_address, b->bind_address);
    assert_int_equal(a->port, b->port);
    assert_int_equal(a->shards, b->shards);
    assert_memory_equal(a->shard_cpu, b->shard_cpu, sizeof(a->shard_cpu));
    assert_int_equal(a->placement_pins_count, b->placement_pins_count);
    for (uint32_t i = 0; i < a->placement_pins_count; i++) {
        assert_string_equal(a->placement_pins[i].vhost, b->placement_pins[i].vhost);
        assert_string_equal(a->placement_pins[i].queue, b->placement_pins[i].queue);
        assert_int_equal(a->placement_pins[i].shard, b->placement_pins[i].shard);
    }
    assert_string_equal(a->data_dir, b->data_dir);
    assert_string_equal(a->log_file, b->log_file);
    assert_int_equal(a->frame_max, b->frame_max);
    assert_int_equal(a->channel_max, b->channel_max);
    assert_int_equal(a->heartbeat_s, b->heartbeat_s);
    assert_int_equal(a->message_bytes_max, b->message_bytes_max);
    assert_int_equal(a->log_level, b->log_level);
}

static void load_ok(const char *text)
{
    bool ok = config_load_text(&cfg, text, "t.conf", &err);
    if (!ok) fail_msg("unexpected error: %s", err.text);
}

/* Loading fails with exactly this message, and cfg is left as it was. */
static void load_fails(const char *text, const char *message)
{
    config before;
    memcpy(&before, &cfg, sizeof(before));
    assert_false(config_load_text(&cfg, text, "t.conf", &err));
    assert_string_equal(err.text, message);
    assert_same_config(&cfg, &before);
}

/* argv from a NULL-terminated list of strings (getopt may permute it). */
static config_args_result parse_args(const char *first, ...)
{
    static char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    argv[argc++] = "ringmq";
    for (const char *arg = first; arg != NULL; arg = va_arg(ap, const char *)) {
        assert_true(argc < 31);
        argv[argc++] = (char *)arg;
    }
    va_end(ap);
    argv[argc] = NULL;
    return config_from_args(&cfg, argc, argv, &err);
}

/* Writes text to a fresh temporary file; the caller unlinks path. */
static void temp_file(char *path, size_t path_size, const char *text)
{
    snprintf(path, path_size, "/tmp/ringmq-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* ---- defaults and the shipped file -------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_string_equal(cfg.bind_address, "127.0.0.1");
    assert_int_equal(cfg.port, 5672);
    assert_int_equal(cfg.shards, cpus > LIMIT_SHARDS_MAX ? LIMIT_SHARDS_MAX : cpus);
    for (int i = 0; i < LIMIT_SHARDS_MAX; i++) assert_int_equal(cfg.shard_cpu[i], -1);
    assert_int_equal(cfg.placement_pins_count, 0);
    assert_string_equal(cfg.data_dir, "./ringmq-data");
    assert_string_equal(cfg.log_file, "");
    assert_int_equal(cfg.frame_max, 131072);
    assert_int_equal(cfg.channel_max, 2047);
    assert_int_equal(cfg.heartbeat_s, 60);
    assert_int_equal(cfg.message_bytes_max, 134217728);
    assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
    assert_true(config_validate(&cfg, &err));
}

static void test_shipped_config_loads_and_equals_defaults(void **state)
{
    (void)state;
    bool ok = config_load_file(&cfg, TOP_SRCDIR "/etc/ringmq.conf", &err);
    if (!ok) fail_msg("etc/ringmq.conf: %s", err.text);
    assert_same_config(&cfg, &expected);
    assert_true(config_validate(&cfg, &err));
}

/* The commented-out examples in the shipped file are valid too. */
static void test_shipped_config_examples_load(void **state)
{
    (void)state;
    load_ok("[shards]\ncount = 4\ncpus = 0-3\n"
            "[placement]\npin = / orders.high 1\npin = \"/\" \"invoices eu\" 2\n");
    assert_int_equal(cfg.placement_pins_count, 2);
    assert_true(config__validate_cpus(&cfg, 4, &err));
}

/* ---- every key ---------------------------------------------------------- */

static void test_server_keys(void **state)
{
    (void)state;
    load_ok("[server]\n"
            "bind = ::1\n"
            "port = 5673\n"
            "data_dir = /var/lib/ringmq\n"
            "log_level = debug\n"
            "log_file = /var/log/ringmq.log\n");
    assert_string_equal(cfg.bind_address, "::1");
    assert_int_equal(cfg.port, 5673);
    assert_string_equal(cfg.data_dir, "/var/lib/ringmq");
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
    assert_string_equal(cfg.log_file, "/var/log/ringmq.log");
}

static void test_log_levels(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        log_level level;
    } cases[] = {{"debug", LOG_LEVEL_DEBUG},  {"info", LOG_LEVEL_INFO},   {"warn", LOG_LEVEL_WARN},
                 {"warning", LOG_LEVEL_WARN}, {"error", LOG_LEVEL_ERROR}, {"NONE", LOG_LEVEL_NONE}};
    char text[128];
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        snprintf(text, sizeof(text), "[server]\nlog_level = %s\n", cases[i].name);
        load_ok(text);
        assert_int_equal(cfg.log_level, cases[i].level);
    }
    load_fails("[server]\nlog_level = loud\n",
               "t.conf:2: key 'log_level': 'loud' is not one of debug, info, warn, error, none");
}

static void test_amqp_keys(void **state)
{
    (void)state;
    load_ok("[amqp]\nframe_max = 4096\nchannel_max = 65535\nheartbeat = 0\n"
            "max_message_size = 1\n");
    assert_int_equal(cfg.frame_max, 4096);
    assert_int_equal(cfg.channel_max, 65535);
    assert_int_equal(cfg.heartbeat_s, 0);
    assert_int_equal(cfg.message_bytes_max, 1);
}

static void test_amqp_upper_bounds(void **state)
{
    (void)state;
    load_ok("[amqp]\nframe_max = 1048576\nchannel_max = 1\nheartbeat = 65535\n"
            "max_message_size = 536870912\n");
    assert_int_equal(cfg.frame_max, LIMIT_FRAME_BYTES_MAX);
    assert_int_equal(cfg.channel_max, 1);
    assert_int_equal(cfg.heartbeat_s, 65535);
    assert_int_equal(cfg.message_bytes_max, LIMIT_MESSAGE_BYTES_MAX);
}

static void test_size_suffixes(void **state)
{
    (void)state;
    load_ok("[amqp]\nframe_max = 128K\nmax_message_size = 16M\n");
    assert_int_equal(cfg.frame_max, 131072);
    assert_int_equal(cfg.message_bytes_max, 16u << 20);
    setup(NULL);
    load_ok("[amqp]\nframe_max = 1 MiB\nmax_message_size = 64kib\n");
    assert_int_equal(cfg.frame_max, 1u << 20);
    assert_int_equal(cfg.message_bytes_max, 64u << 10);
    load_fails("[amqp]\nmax_message_size = 0G\n",
               "t.conf:2: key 'max_message_size': '0G' is out of range 1..536870912 bytes");
}

static void test_storage_keys(void **state)
{
    (void)state;
    assert_int_equal(cfg.segment_bytes, 64u << 20);
    assert_true(cfg.direct_io);
    load_ok("[storage]\nsegment_size = 1M\ndirect_io = false\n");
    assert_int_equal(cfg.segment_bytes, 1u << 20);
    assert_false(cfg.direct_io);
    setup(NULL);
    load_fails("[storage]\nsegment_size = 65537\n",
               "t.conf:2: key 'segment_size': '65537' is not a multiple of 4096 bytes");
    setup(NULL);
    load_fails("[storage]\nsegment_size = 4K\n",
               "t.conf:2: key 'segment_size': '4K' is out of range 65536..4294967296 bytes");
    setup(NULL);
    load_fails("[storage]\ndirect_io = maybe\n",
               "t.conf:2: key 'direct_io': 'maybe' is not true or false");
    setup(NULL);
    assert_int_equal(cfg.queue_memory_bytes, 32u << 20);
    load_ok("[storage]\nqueue_memory_bytes = 64K\n");
    assert_int_equal(cfg.queue_memory_bytes, 64u << 10);
    setup(NULL);
    load_fails("[storage]\nqueue_memory_bytes = 1K\n",
               "t.conf:2: key 'queue_memory_bytes': '1K' is out of range 4096..1099511627776 bytes");
}

static void test_size_errors(void **state)
{
    (void)state;
    load_fails("[amqp]\nmax_message_size = 1G\n",
               "t.conf:2: key 'max_message_size': '1G' is out of range 1..536870912 bytes");
    load_fails("[amqp]\nframe_max = 4095\n",
               "t.conf:2: key 'frame_max': '4095' is out of range 4096..1048576 bytes");
    load_fails("[amqp]\nframe_max = 2M\n",
               "t.conf:2: key 'frame_max': '2M' is out of range 4096..1048576 bytes");
    load_fails("[amqp]\nframe_max = 128KB\n",
               "t.conf:2: key 'frame_max': '128KB' is not a size in 4096..1048576 bytes "
               "(suffixes K, M, G)");
    load_fails("[amqp]\nframe_max = K\n",
               "t.conf:2: key 'frame_max': 'K' is not a size in 4096..1048576 bytes "
               "(suffixes K, M, G)");
    load_fails("[amqp]\nmax_message_size = 99999999999999999999G\n",
               "t.conf:2: key 'max_message_size': '99999999999999999999G' is out of range "
               "1..536870912 bytes");
    load_fails("[amqp]\nmax_message_size = 17179869184G\n",
               "t.conf:2: key 'max_message_size': '17179869184G' is out of range "
               "1..536870912 bytes");
}

static void test_shards_count(void **state)
{
    (void)state;
    load_ok("[shards]\ncount = 3\n");
    assert_int_equal(cfg.shards, 3);
    setup(NULL);
    load_ok("[shards]\ncount = 64\n");
    assert_int_equal(cfg.shards, 64);
    setup(NULL);
    cfg.shards = 5;
    load_ok("[shards]\ncount = auto\n");
    assert_int_equal(cfg.shards, expected.shards);
    load_fails("[shards]\ncount = 65\n",
               "t.conf:2: key 'count': '65' is not 'auto' or a number in 1..64");
    load_fails("[shards]\ncount = 0\n",
               "t.conf:2: key 'count': '0' is not 'auto' or a number in 1..64");
}

static void test_cpus_list_forms(void **state)
{
    (void)state;
    load_ok("[shards]\ncpus = 0,1,2,3\n");
    for (int i = 0; i < 4; i++) assert_int_equal(cfg.shard_cpu[i], i);
    assert_int_equal(cfg.shard_cpu[4], -1);
    setup(NULL);
    load_ok("[shards]\ncpus = 4-7\n");
    for (int i = 0; i < 4; i++) assert_int_equal(cfg.shard_cpu[i], 4 + i);
    assert_int_equal(cfg.shard_cpu[4], -1);
    setup(NULL);
    load_ok("[shards]\ncpus = 0-1, 8 , 10 - 11\n");
    static const int32_t want[] = {0, 1, 8, 10, 11, -1};
    for (size_t i = 0; i < ARRAY_LEN(want); i++) assert_int_equal(cfg.shard_cpu[i], want[i]);
}

static void test_cpus_list_errors(void **state)
{
    (void)state;
    load_fails("[shards]\ncpus = 3-1\n",
               "t.conf:2: key 'cpus': '3-1' is not a CPU list like 0,1,2,3 or 0-3");
    load_fails("[shards]\ncpus = 0,,1\n",
               "t.conf:2: key 'cpus': '0,,1' is not a CPU list like 0,1,2,3 or 0-3");
    load_fails("[shards]\ncpus = 0,1,\n",
               "t.conf:2: key 'cpus': '0,1,' is not a CPU list like 0,1,2,3 or 0-3");
    load_fails("[shards]\ncpus =\n",
               "t.conf:2: key 'cpus': '' is not a CPU list like 0,1,2,3 or 0-3");
    load_fails("[shards]\ncpus = 1024\n", "t.conf:2: key 'cpus': CPU 1024 is out of range 0..1023");
    load_fails("[shards]\ncpus = 0-64\n",
               "t.conf:2: key 'cpus': more than 64 CPUs (one per shard)");
}

static void test_cpu_per_shard(void **state)
{
    (void)state;
    load_ok("[shards]\ncount = 2\ncpu.0 = 3\ncpu.1 = 1023\n");
    assert_int_equal(cfg.shard_cpu[0], 3);
    assert_int_equal(cfg.shard_cpu[1], 1023);
    assert_int_equal(cfg.shard_cpu[2], -1);
    load_fails("[shards]\ncpu.0 = 1024\n", "t.conf:2: key 'cpu.0': '1024' is out of range 0..1023");
    load_fails("[shards]\ncpu.64 = 1\n", "t.conf:2: key 'cpu.64': shard 64 is out of range 0..63");
    load_fails("[shards]\ncpu.x = 1\n",
               "t.conf:2: key 'cpu.x': unknown key in [shards] (expected cpu.N, N a number)");
    load_fails("[shards]\ncpu.1 = 1\ncpu.01 = 2\n",
               "t.conf:3: key 'cpu.01': duplicate key (shard 1 first pinned on line 2)");
}

static void test_cpus_and_cpu_n_do_not_mix(void **state)
{
    (void)state;
    load_fails("[shards]\ncpus = 0-3\ncpu.1 = 5\n",
               "t.conf:3: key 'cpu.1': cannot be combined with 'cpus' (line 2)");
    load_fails("[shards]\ncpu.1 = 5\n\ncpus = 0-3\n",
               "t.conf:4: key 'cpus': cannot be combined with cpu.N (line 2)");
}

static void test_placement_pins(void **state)
{
    (void)state;
    load_ok("[placement]\n"
            "pin = / orders.high 1\n"
            "pin =   \"/\"   \"invoices eu\"   2  \n"
            "pin = /staging \"say \\\"hi\\\" \\\\o/\" 0\n");
    assert_int_equal(cfg.placement_pins_count, 3);
    assert_string_equal(cfg.placement_pins[0].vhost, "/");
    assert_string_equal(cfg.placement_pins[0].queue, "orders.high");
    assert_int_equal(cfg.placement_pins[0].shard, 1);
    assert_string_equal(cfg.placement_pins[1].queue, "invoices eu");
    assert_int_equal(cfg.placement_pins[1].shard, 2);
    assert_string_equal(cfg.placement_pins[2].vhost, "/staging");
    assert_string_equal(cfg.placement_pins[2].queue, "say \"hi\" \\o/");
    /* The same queue name in another vhost is another queue. */
    load_ok("[placement]\npin = /other orders.high 3\n");
    assert_int_equal(cfg.placement_pins_count, 4);
}

static void test_placement_errors(void **state)
{
    (void)state;
    const char *usage = "expected 'VHOST QUEUE SHARD', e.g. pin = / orders 1";
    char want[256];
    snprintf(want, sizeof(want), "t.conf:2: key 'pin': %s", usage);
    load_fails("[placement]\npin = / orders\n", want);
    load_fails("[placement]\npin = / orders 1 2\n", want);
    load_fails("[placement]\npin = / \"orders 1\n",
               "t.conf:2: key 'pin': unterminated quoted string");
    load_fails("[placement]\npin = / \"a\"b 1\n",
               "t.conf:2: key 'pin': text right after the closing quote");
    load_fails("[placement]\npin = / \"\" 1\n", "t.conf:2: key 'pin': empty vhost or queue name");
    load_fails("[placement]\npin = / orders one\n",
               "t.conf:2: key 'pin': shard 'one' is not a number in 0..63");
    load_fails("[placement]\npin = / orders 1\npin = / orders 2\n",
               "t.conf:3: key 'pin': queue 'orders' in vhost '/' is already pinned");
    char text[600];
    char name[300];
    memset(name, 'q', 256);
    name[256] = '\0';
    snprintf(text, sizeof(text), "[placement]\npin = / %s 1\n", name);
    load_fails(text, "t.conf:2: key 'pin': longer than 255 bytes");
}

static void test_placement_pin_limit(void **state)
{
    (void)state;
    size_t size = (LIMIT_PLACEMENT_PINS_MAX + 2) * 32;
    char *text = malloc(size);
    assert_non_null(text);
    size_t used = (size_t)snprintf(text, size, "[placement]\n");
    for (uint32_t i = 0; i <= LIMIT_PLACEMENT_PINS_MAX; i++) {
        used += (size_t)snprintf(text + used, size - used, "pin = / q%u 0\n", i);
    }
    load_fails(text, "t.conf:1026: key 'pin': more than 1024 pins");
    free(text);
}

/* ---- syntax ------------------------------------------------------------- */

static void test_comments_blanks_whitespace_crlf(void **state)
{
    (void)state;
    load_ok("# comment\n"
            "; another\n"
            "\n"
            "   \t\n"
            "  [ server ]  \r\n"
            "\t port\t=\t6000 \r\n"
            "   # indented comment\n"
            "data_dir = /a/b=c#d\n"
            "[amqp]\n"
            "[server]\n"
            "log_level = error"); /* no final newline */
    assert_int_equal(cfg.port, 6000);
    assert_string_equal(cfg.data_dir, "/a/b=c#d");
    assert_int_equal(cfg.log_level, LOG_LEVEL_ERROR);
}

static void test_quoted_values(void **state)
{
    (void)state;
    load_ok("[server]\ndata_dir = \" /srv/my data \"\nlog_file = \"\"\nport = \"5680\"\n");
    assert_string_equal(cfg.data_dir, " /srv/my data ");
    assert_string_equal(cfg.log_file, "");
    assert_int_equal(cfg.port, 5680);
    setup(NULL);
    load_ok("[server]\ndata_dir = my data dir\n");
    assert_string_equal(cfg.data_dir, "my data dir");
    load_fails("[server]\ndata_dir = \"abc\n",
               "t.conf:2: key 'data_dir': unterminated quoted string");
    load_fails("[server]\ndata_dir = \"abc\" def\n",
               "t.conf:2: key 'data_dir': text after the closing quote");
    load_fails("[server]\ndata_dir = \"a\\nb\"\n",
               "t.conf:2: key 'data_dir': only \\\" and \\\\ may follow '\\' in a quoted string");
}

static void test_empty_text_changes_nothing(void **state)
{
    (void)state;
    load_ok("");
    load_ok("\n\n# nothing\n");
    assert_same_config(&cfg, &expected);
}

static void test_unknown_section(void **state)
{
    (void)state;
    load_fails("[server]\nport = 1\n\n[sever]\n",
               "t.conf:4: unknown section '[sever]' (known: server, shards, placement, amqp)");
    load_fails("[server\n", "t.conf:1: section header '[server' does not end with ']'");
}

static void test_unknown_key(void **state)
{
    (void)state;
    load_fails("[server]\nprot = 5672\n", "t.conf:2: key 'prot': unknown key in [server]");
    /* A real key in the wrong section is unknown there. */
    load_fails("[amqp]\nport = 5672\n", "t.conf:2: key 'port': unknown key in [amqp]");
    load_fails("[placement]\npins = / a 1\n", "t.conf:2: key 'pins': unknown key in [placement]");
    load_fails("[server]\nPort = 1\n", "t.conf:2: key 'Port': unknown key in [server]");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    load_fails("[server]\nport = 1\n[amqp]\nheartbeat = 5\n[server]\nport = 2\n",
               "t.conf:6: key 'port': duplicate key (first set on line 2)");
}

static void test_malformed_lines(void **state)
{
    (void)state;
    load_fails("[server]\nport 5672\n",
               "t.conf:2: expected '[section]' or 'key = value', got 'port 5672'");
    load_fails("[server]\n = 5672\n", "t.conf:2: no key before '='");
    load_fails("port = 5672\n",
               "t.conf:1: key 'port': outside any section (add a [section] header above it)");
}

static void test_bad_numbers(void **state)
{
    (void)state;
    load_fails("[server]\nport = abc\n", "t.conf:2: key 'port': 'abc' is not a number in 1..65535");
    load_fails("[server]\nport = -1\n", "t.conf:2: key 'port': '-1' is not a number in 1..65535");
    load_fails("[server]\nport = 0x10\n",
               "t.conf:2: key 'port': '0x10' is not a number in 1..65535");
    load_fails("[server]\nport = 5672 # amqp\n",
               "t.conf:2: key 'port': '5672 # amqp' is not a number in 1..65535");
    load_fails("[server]\nport =\n", "t.conf:2: key 'port': '' is not a number in 1..65535");
    load_fails("[amqp]\nheartbeat = 1.5\n",
               "t.conf:2: key 'heartbeat': '1.5' is not a number in 0..65535");
}

static void test_out_of_range(void **state)
{
    (void)state;
    load_fails("[server]\nport = 0\n", "t.conf:2: key 'port': '0' is out of range 1..65535");
    load_fails("[server]\nport = 65536\n",
               "t.conf:2: key 'port': '65536' is out of range 1..65535");
    load_fails("[server]\nport = 99999999999999999999999\n",
               "t.conf:2: key 'port': '99999999999999999999999' is out of range 1..65535");
    load_fails("[amqp]\nchannel_max = 0\n",
               "t.conf:2: key 'channel_max': '0' is out of range 1..65535");
    load_fails("[amqp]\nheartbeat = 65536\n",
               "t.conf:2: key 'heartbeat': '65536' is out of range 0..65535");
}

static void test_bad_bind(void **state)
{
    (void)state;
    load_ok("[server]\nbind = 0.0.0.0\n");
    assert_string_equal(cfg.bind_address, "0.0.0.0");
    load_ok("[server]\nbind = \"::\"\n");
    assert_string_equal(cfg.bind_address, "::");
    load_fails("[server]\nbind = localhost\n",
               "t.conf:2: key 'bind': 'localhost' is not an IPv4 or IPv6 address");
    load_fails("[server]\nbind = 256.1.1.1\n",
               "t.conf:2: key 'bind': '256.1.1.1' is not an IPv4 or IPv6 address");
}

static void test_bad_paths(void **state)
{
    (void)state;
    load_fails("[server]\ndata_dir = \"\"\n", "t.conf:2: key 'data_dir': empty path");
    /* A line cannot hold a path over the limit; a flag can. */
    char *path = malloc(LIMIT_PATH_BYTES_MAX + 1);
    assert_non_null(path);
    memset(path, 'd', LIMIT_PATH_BYTES_MAX);
    path[LIMIT_PATH_BYTES_MAX] = '\0';
    assert_int_equal(parse_args("--data-dir", path, NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text, "--data-dir: longer than 4095 bytes");
    path[LIMIT_PATH_BYTES_MAX - 1] = '\0';
    assert_int_equal(parse_args("--data-dir", path, NULL), CONFIG_ARGS_RUN);
    assert_int_equal(strlen(cfg.data_dir), LIMIT_PATH_BYTES_MAX - 1);
    free(path);
}

static void test_line_too_long(void **state)
{
    (void)state;
    char *text = malloc(LIMIT_CONFIG_LINE_BYTES_MAX + 16);
    assert_non_null(text);
    memset(text, '#', LIMIT_CONFIG_LINE_BYTES_MAX);
    strcpy(text + LIMIT_CONFIG_LINE_BYTES_MAX, "\n");
    load_ok(text); /* exactly the limit */
    strcpy(text + LIMIT_CONFIG_LINE_BYTES_MAX, "#\n");
    load_fails(text, "t.conf:1: line longer than 4096 bytes");
    free(text);
}

static void test_failed_load_changes_nothing(void **state)
{
    (void)state;
    /* load_fails checks that the good lines before the bad one were not applied. */
    load_fails("[server]\nport = 1\nbind = ::1\n[amqp]\nheartbeat = x\n",
               "t.conf:5: key 'heartbeat': 'x' is not a number in 0..65535");
    assert_int_equal(cfg.port, 5672);
}

/* ---- files -------------------------------------------------------------- */

static void test_load_file(void **state)
{
    (void)state;
    char path[64];
    temp_file(path, sizeof(path), "[server]\nport = 7000\n[amqp]\nheartbeat = 10\n");
    assert_true(config_load_file(&cfg, path, &err));
    assert_int_equal(cfg.port, 7000);
    assert_int_equal(cfg.heartbeat_s, 10);
    unlink(path);
}

static void test_load_file_error_names_path(void **state)
{
    (void)state;
    char path[64];
    char want[256];
    temp_file(path, sizeof(path), "[server]\n\nport = 70000\n");
    assert_false(config_load_file(&cfg, path, &err));
    snprintf(want, sizeof(want), "%s:3: key 'port': '70000' is out of range 1..65535", path);
    assert_string_equal(err.text, want);
    unlink(path);
    assert_false(config_load_file(&cfg, path, &err));
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    assert_string_equal(err.text, want);
}

static void test_load_file_rejects_nul(void **state)
{
    (void)state;
    char path[64];
    char want[256];
    temp_file(path, sizeof(path), "[server]\n");
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fwrite("port = 1\0\n", 1, 10, f);
    fclose(f);
    assert_false(config_load_file(&cfg, path, &err));
    snprintf(want, sizeof(want), "%s: contains a NUL byte (not a text file?)", path);
    assert_string_equal(err.text, want);
    unlink(path);
}

/* ---- validation --------------------------------------------------------- */

static void test_validate_cpu_shard_beyond_count(void **state)
{
    (void)state;
    load_ok("[shards]\ncount = 2\ncpus = 0-2\n");
    assert_false(config__validate_cpus(&cfg, 8, &err));
    assert_string_equal(err.text,
                        "key 'cpu.2': shard 2 does not exist: [shards] count is 2 (shards 0..1)");
    cfg.shards = 3;
    assert_true(config__validate_cpus(&cfg, 8, &err));
}

static void test_validate_cpu_beyond_machine(void **state)
{
    (void)state;
    load_ok("[shards]\ncount = 2\ncpu.0 = 0\ncpu.1 = 4\n");
    assert_false(config__validate_cpus(&cfg, 4, &err));
    assert_string_equal(err.text,
                        "key 'cpu.1': CPU 4 does not exist: this machine has 4 CPUs (0..3)");
    assert_true(config__validate_cpus(&cfg, 5, &err));
    /* The real machine: a CPU index far beyond any machine this runs on. */
    cfg.shard_cpu[1] = LIMIT_CPUS_MAX - 1;
    assert_false(config_validate(&cfg, &err));
}

static void test_validate_cpu_shared(void **state)
{
    (void)state;
    load_ok("[shards]\ncount = 3\ncpu.0 = 1\ncpu.2 = 1\n");
    assert_false(config__validate_cpus(&cfg, 4, &err));
    assert_string_equal(err.text, "key 'cpu.2': CPU 1 is already taken by shard 0");
}

static void test_validate_pin_beyond_count(void **state)
{
    (void)state;
    load_ok("[shards]\ncount = 2\n[placement]\npin = / a 0\npin = / \"b c\" 2\n");
    assert_false(config__validate_cpus(&cfg, 4, &err));
    assert_string_equal(err.text, "key 'pin': queue 'b c' in vhost '/' is pinned to shard 2, "
                                  "but [shards] count is 2 (shards 0..1)");
    cfg.shards = 3;
    assert_true(config__validate_cpus(&cfg, 4, &err));
}

static void test_validate_fields(void **state)
{
    (void)state;
    strcpy(cfg.bind_address, "nope");
    assert_false(config_validate(&cfg, &err));
    assert_string_equal(err.text, "key 'bind': 'nope' is not an IPv4 or IPv6 address");
    setup(NULL);
    cfg.frame_max = 100;
    assert_false(config_validate(&cfg, &err));
    assert_string_equal(err.text, "key 'frame_max': value out of range");
}

/* ---- command line ------------------------------------------------------- */

static void test_args_none_gives_defaults(void **state)
{
    (void)state;
    memset(&cfg, 0xab, sizeof(cfg));
    assert_int_equal(parse_args(NULL), CONFIG_ARGS_RUN);
    assert_same_config(&cfg, &expected);
}

static void test_args_every_flag(void **state)
{
    (void)state;
    assert_int_equal(parse_args("--bind", "::", "--port=5999", "--shards", "1", "--cpus", "0",
                                "--data-dir", "/tmp/d", "--log-level", "warn", "--log-file",
                                "/tmp/l.log", "--frame-max", "64K", "--channel-max", "10",
                                "--heartbeat", "0", "--max-message-size", "1M", NULL),
                     CONFIG_ARGS_RUN);
    assert_string_equal(cfg.bind_address, "::");
    assert_int_equal(cfg.port, 5999);
    assert_int_equal(cfg.shards, 1);
    assert_int_equal(cfg.shard_cpu[0], 0);
    assert_string_equal(cfg.data_dir, "/tmp/d");
    assert_int_equal(cfg.log_level, LOG_LEVEL_WARN);
    assert_string_equal(cfg.log_file, "/tmp/l.log");
    assert_int_equal(cfg.frame_max, 65536);
    assert_int_equal(cfg.channel_max, 10);
    assert_int_equal(cfg.heartbeat_s, 0);
    assert_int_equal(cfg.message_bytes_max, 1u << 20);
}

static void test_args_flags_override_file_in_any_order(void **state)
{
    (void)state;
    char path[64];
    temp_file(path, sizeof(path),
              "[server]\nport = 7000\nlog_level = debug\n[amqp]\nheartbeat = 10\n");
    /* Flag before --config. */
    assert_int_equal(parse_args("--port", "7001", "--config", path, NULL), CONFIG_ARGS_RUN);
    assert_int_equal(cfg.port, 7001);
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(cfg.heartbeat_s, 10);
    /* Flag after --config, short form, and a repeated flag (the last wins). */
    assert_int_equal(parse_args("-c", path, "--heartbeat", "5", "--heartbeat", "6", NULL),
                     CONFIG_ARGS_RUN);
    assert_int_equal(cfg.port, 7000);
    assert_int_equal(cfg.heartbeat_s, 6);
    unlink(path);
}

static void test_args_help_and_version(void **state)
{
    (void)state;
    assert_int_equal(parse_args("--help", NULL), CONFIG_ARGS_EXIT);
    assert_int_equal(parse_args("--port", "1", "-h", NULL), CONFIG_ARGS_EXIT);
    assert_int_equal(parse_args("--version", NULL), CONFIG_ARGS_EXIT);
    assert_int_equal(parse_args("-V", NULL), CONFIG_ARGS_EXIT);
}

static void test_args_bad_value(void **state)
{
    (void)state;
    assert_int_equal(parse_args("--port", "abc", NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text, "--port: 'abc' is not a number in 1..65535");
    assert_int_equal(parse_args("--frame-max=2M", NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text, "--frame-max: '2M' is out of range 4096..1048576 bytes");
    assert_int_equal(parse_args("--bind", "example.com", NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text, "--bind: 'example.com' is not an IPv4 or IPv6 address");
    assert_int_equal(parse_args("--shards", "many", NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text, "--shards: 'many' is not 'auto' or a number in 1..64");
    assert_int_equal(parse_args("--log-level", "chatty", NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text,
                        "--log-level: 'chatty' is not one of debug, info, warn, error, none");
}

static void test_args_unknown_missing_positional(void **state)
{
    (void)state;
    assert_int_equal(parse_args("--prot", "5672", NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text, "unknown option '--prot' (see --help)");
    assert_int_equal(parse_args("--prot=5672", NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text, "unknown option '--prot' (see --help)");
    assert_int_equal(parse_args("-x", NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text, "unknown option '-x' (see --help)");
    assert_int_equal(parse_args("--port", NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text, "--port: missing value");
    assert_int_equal(parse_args("--port", "1", "extra", NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text, "unexpected argument 'extra' (see --help)");
    assert_int_equal(parse_args("--", "--port", NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text, "unexpected argument '--port' (see --help)");
    /* A bad flag wins over --help: the command line is wrong either way. */
    assert_int_equal(parse_args("--help", "--nope", NULL), CONFIG_ARGS_ERROR);
}

static void test_args_config_errors(void **state)
{
    (void)state;
    char path[64];
    char want[256];
    temp_file(path, sizeof(path), "[server]\nport = 1\nport = 2\n");
    assert_int_equal(parse_args("--port", "9", "--config", path, NULL), CONFIG_ARGS_ERROR);
    snprintf(want, sizeof(want), "%s:3: key 'port': duplicate key (first set on line 2)", path);
    assert_string_equal(err.text, want);
    unlink(path);
    assert_int_equal(parse_args("--config", "/nonexistent/ringmq.conf", NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text,
                        "/nonexistent/ringmq.conf: cannot open: No such file or directory");
}

static void test_args_validate_after_merge(void **state)
{
    (void)state;
    char path[64];
    temp_file(path, sizeof(path), "[shards]\ncount = 2\n[placement]\npin = / q 1\n");
    assert_int_equal(parse_args("--config", path, NULL), CONFIG_ARGS_RUN);
    /* --shards shrinks the file's count below its pin. */
    assert_int_equal(parse_args("--shards", "1", "--config", path, NULL), CONFIG_ARGS_ERROR);
    assert_string_equal(err.text, "key 'pin': queue 'q' in vhost '/' is pinned to shard 1, but "
                                  "[shards] count is 1 (shards 0..0)");
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_shipped_config_loads_and_equals_defaults, setup),
        cmocka_unit_test_setup(test_shipped_config_examples_load, setup),
        cmocka_unit_test_setup(test_server_keys, setup),
        cmocka_unit_test_setup(test_log_levels, setup),
        cmocka_unit_test_setup(test_amqp_keys, setup),
        cmocka_unit_test_setup(test_amqp_upper_bounds, setup),
        cmocka_unit_test_setup(test_size_suffixes, setup),
        cmocka_unit_test_setup(test_storage_keys, setup),
        cmocka_unit_test_setup(test_size_errors, setup),
        cmocka_unit_test_setup(test_shards_count, setup),
        cmocka_unit_test_setup(test_cpus_list_forms, setup),
        cmocka_unit_test_setup(test_cpus_list_errors, setup),
        cmocka_unit_test_setup(test_cpu_per_shard, setup),
        cmocka_unit_test_setup(test_cpus_and_cpu_n_do_not_mix, setup),
        cmocka_unit_test_setup(test_placement_pins, setup),
        cmocka_unit_test_setup(test_placement_errors, setup),
        cmocka_unit_test_setup(test_placement_pin_limit, setup),
        cmocka_unit_test_setup(test_comments_blanks_whitespace_crlf, setup),
        cmocka_unit_test_setup(test_quoted_values, setup),
        cmocka_unit_test_setup(test_empty_text_changes_nothing, setup),
        cmocka_unit_test_setup(test_unknown_section, setup),
        cmocka_unit_test_setup(test_unknown_key, setup),
        cmocka_unit_test_setup(test_duplicate_key, setup),
        cmocka_unit_test_setup(test_malformed_lines, setup),
        cmocka_unit_test_setup(test_bad_numbers, setup),
        cmocka_unit_test_setup(test_out_of_range, setup),
        cmocka_unit_test_setup(test_bad_bind, setup),
        cmocka_unit_test_setup(test_bad_paths, setup),
        cmocka_unit_test_setup(test_line_too_long, setup),
        cmocka_unit_test_setup(test_failed_load_changes_nothing, setup),
        cmocka_unit_test_setup(test_load_file, setup),
        cmocka_unit_test_setup(test_load_file_error_names_path, setup),
        cmocka_unit_test_setup(test_load_file_rejects_nul, setup),
        cmocka_unit_test_setup(test_validate_cpu_shard_beyond_count, setup),
        cmocka_unit_test_setup(test_validate_cpu_beyond_machine, setup),
        cmocka_unit_test_setup(test_validate_cpu_shared, setup),
        cmocka_unit_test_setup(test_validate_pin_beyond_count, setup),
        cmocka_unit_test_setup(test_validate_fields, setup),
        cmocka_unit_test_setup(test_args_none_gives_defaults, setup),
        cmocka_unit_test_setup(test_args_every_flag, setup),
        cmocka_unit_test_setup(test_args_flags_override_file_in_any_order, setup),
        cmocka_unit_test_setup(test_args_help_and_version, setup),
        cmocka_unit_test_setup(test_args_bad_value, setup),
        cmocka_unit_test_setup(test_args_unknown_missing_positional, setup),
        cmocka_unit_test_setup(test_args_config_errors, setup),
        cmocka_unit_test_setup(test_args_validate_after_merge, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
