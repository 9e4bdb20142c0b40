/*
 * Configuration loading. Three layers are applied in order onto one config:
 * config_defaults(), the INI file named by --config, then the other flags.
 * Each value goes through one setter shared by its file key and its flag, so
 * both report the same reason ("'abc' is not a number in 1..65535") and differ
 * only in the prefix ("FILE:LINE: key 'port': " or "--port: ").
 *
 * Invariants: a file load applies the whole file or leaves cfg unchanged (it
 * parses onto a copy); a setter never leaves a field out of its range, so
 * config_validate only checks relations between fields and the machine.
 * Everything here runs once at start-up, so allocation is fine.
 */
#ifdef HAVE_CONFIG_H
#include <config.h> /* the build's config.h (PACKAGE_VERSION), not core/config.h */
#endif

#include "core/config.h"

#include "core/assert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* Why a value was refused; the caller adds where it came from. */
typedef struct {
    char text[256];
} config_reason;

typedef bool config_setter(config *cfg, const char *value, config_reason *why);

typedef enum {
    CONFIG_KEY_BIND,
    CONFIG_KEY_PORT,
    CONFIG_KEY_DATA_DIR,
    CONFIG_KEY_LOG_LEVEL,
    CONFIG_KEY_LOG_FILE,
    CONFIG_KEY_SHARDS,
    CONFIG_KEY_CPUS,
    CONFIG_KEY_FRAME_MAX,
    CONFIG_KEY_CHANNEL_MAX,
    CONFIG_KEY_HEARTBEAT,
    CONFIG_KEY_MESSAGE_SIZE,
    CONFIG_KEY_SEGMENT_SIZE,
    CONFIG_KEY_DIRECT_IO,
    CONFIG_KEY_QUEUE_MEMORY,
    CONFIG_KEY_COUNT,
} config_key_id;

typedef struct {
    const char *section;
    const char *key;
    const char *flag; /* long option without the dashes */
    const char *flag_arg;
    config_setter *set;
} config_key;

static const char *const config_sections[] = {"server", "shards", "placement", "amqp", "storage"};

static bool config_fail(config_reason *why, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool config_fail(config_reason *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->text, sizeof(why->text), fmt, ap);
    va_end(ap);
    return false;
}

static void config_error_set(config_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void config_error_set(config_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof(err->text), fmt, ap);
    va_end(ap);
}

/* ---- value parsers ------------------------------------------------------ */

/* Reads decimal digits at *cursor; false when there are none or they overflow. */
static bool config_scan_u64(const char **cursor, uint64_t *out)
{
    const char *p = *cursor;
    uint64_t value = 0;
    while (*p >= '0' && *p <= '9') {
        if (__builtin_mul_overflow(value, 10u, &value)) return false;
        if (__builtin_add_overflow(value, (uint64_t)(*p - '0'), &value)) return false;
        p++;
    }
    if (p == *cursor) return false;
    *cursor = p;
    *out = value;
    return true;
}

static bool config_number(const char *text, uint64_t min, uint64_t max, uint64_t *out,
                          config_reason *why)
{
    ASSERT(min <= max);
    const char *p = text;
    uint64_t value = 0;
    bool digits = config_scan_u64(&p, &value);
    if (!digits && *p >= '0' && *p <= '9') {
        return config_fail(why, "'%.64s' is out of range %llu..%llu", text, (unsigned long long)min,
                           (unsigned long long)max);
    }
    if (!digits || *p != '\0') {
        return config_fail(why, "'%.64s' is not a number in %llu..%llu", text,
                           (unsigned long long)min, (unsigned long long)max);
    }
    if (value < min || value > max) {
        return config_fail(why, "'%.64s' is out of range %llu..%llu", text, (unsigned long long)min,
                           (unsigned long long)max);
    }
    *out = value;
    return true;
}

/* A byte count: digits, optional spaces, optional K/KiB, M/MiB or G/GiB (powers of 1024). */
static bool config_size(const char *text, uint64_t min, uint64_t max, uint64_t *out,
                        config_reason *why)
{
    static const struct {
        const char *suffix;
        uint64_t scale;
    } suffixes[] = {
        {"", 1},
        {"K", 1ull << 10},
        {"KiB", 1ull << 10},
        {"M", 1ull << 20},
        {"MiB", 1ull << 20},
        {"G", 1ull << 30},
        {"GiB", 1ull << 30},
    };
    ASSERT(min <= max);
    const char *p = text;
    uint64_t value = 0;
    bool digits = config_scan_u64(&p, &value);
    while (*p == ' ' || *p == '\t') p++;
    uint64_t scale = 0;
    bool overflow = !digits && text[0] >= '0' && text[0] <= '9';
    for (size_t i = 0; i < ARRAY_LEN(suffixes) && digits; i++) {
        if (strcasecmp(p, suffixes[i].suffix) == 0) scale = suffixes[i].scale;
    }
    if (scale == 0 && !overflow) {
        return config_fail(why, "'%.64s' is not a size in %llu..%llu bytes (suffixes K, M, G)",
                           text, (unsigned long long)min, (unsigned long long)max);
    }
    uint64_t bytes = 0;
    if (overflow || __builtin_mul_overflow(value, scale, &bytes) || bytes < min || bytes > max) {
        return config_fail(why, "'%.64s' is out of range %llu..%llu bytes", text,
                           (unsigned long long)min, (unsigned long long)max);
    }
    *out = bytes;
    return true;
}

static bool config_copy(char *dst, size_t dst_size, const char *value, config_reason *why)
{
    size_t len = strlen(value);
    if (len >= dst_size) return config_fail(why, "longer than %zu bytes", dst_size - 1);
    memcpy(dst, value, len + 1);
    return true;
}

/*
 * One token at *cursor: a run of non-blank characters, or a "quoted string"
 * in which \" and \\ stand for " and \. Returns 1 with the token in out, 0 at
 * the end of the text, -1 with why filled on a malformed or too long token.
 */
static int config_token(const char **cursor, char *out, size_t out_size, config_reason *why)
{
    ASSERT(out_size > 0);
    const char *p = *cursor;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\0') return 0;
    size_t len = 0;
    bool quoted = *p == '"';
    if (quoted) p++;
    for (;; p++) {
        char c = *p;
        if (quoted && c == '\0') {
            config_fail(why, "unterminated quoted string");
            return -1;
        }
        if (quoted && c == '"') {
            p++;
            break;
        }
        if (!quoted && (c == '\0' || c == ' ' || c == '\t')) break;
        if (quoted && c == '\\') {
            c = *++p;
            if (c != '"' && c != '\\') {
                config_fail(why, "only \\\" and \\\\ may follow '\\' in a quoted string");
                return -1;
            }
        }
        if (len + 1 >= out_size) {
            config_fail(why, "longer than %zu bytes", out_size - 1);
            return -1;
        }
        out[len++] = c;
    }
    if (quoted && *p != '\0' && *p != ' ' && *p != '\t') {
        config_fail(why, "text right after the closing quote");
        return -1;
    }
    out[len] = '\0';
    *cursor = p;
    return 1;
}

/* A whole value: as written, or one quoted string that must span all of it. */
static bool config_unquote(const char *value, char *out, size_t out_size, config_reason *why)
{
    if (value[0] != '"') return config_copy(out, out_size, value, why);
    const char *p = value;
    if (config_token(&p, out, out_size, why) < 0) return false;
    if (*p != '\0') return config_fail(why, "text after the closing quote");
    return true;
}

/* ---- setters: one per key, shared by the file and the flags ------------ */

static bool config_set_bind(config *cfg, const char *value, config_reason *why)
{
    unsigned char addr[sizeof(struct in6_addr)];
    bool ok = strlen(value) < sizeof(cfg->bind_address) &&
              (inet_pton(AF_INET, value, addr) == 1 || inet_pton(AF_INET6, value, addr) == 1);
    if (!ok) return config_fail(why, "'%.64s' is not an IPv4 or IPv6 address", value);
    snprintf(cfg->bind_address, sizeof(cfg->bind_address), "%s", value);
    return true;
}

static bool config_set_port(config *cfg, const char *value, config_reason *why)
{
    uint64_t port = 0;
    if (!config_number(value, 1, UINT16_MAX, &port, why)) return false;
    cfg->port = (uint16_t)port;
    return true;
}

static bool config_set_data_dir(config *cfg, const char *value, config_reason *why)
{
    if (value[0] == '\0') return config_fail(why, "empty path");
    return config_copy(cfg->data_dir, sizeof(cfg->data_dir), value, why);
}

static bool config_set_log_level(config *cfg, const char *value, config_reason *why)
{
    if (!log_level_parse(value, &cfg->log_level)) {
        return config_fail(why, "'%.64s' is not one of debug, info, warn, error, none", value);
    }
    return true;
}

/* Empty means stderr. */
static bool config_set_log_file(config *cfg, const char *value, config_reason *why)
{
    return config_copy(cfg->log_file, sizeof(cfg->log_file), value, why);
}

static uint32_t config_shards_auto(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    if (cpus > LIMIT_SHARDS_MAX) cpus = LIMIT_SHARDS_MAX;
    return (uint32_t)cpus;
}

static bool config_set_shards(config *cfg, const char *value, config_reason *why)
{
    uint64_t count = 0;
    if (strcmp(value, "auto") == 0) {
        cfg->shards = config_shards_auto();
        return true;
    }
    if (!config_number(value, 1, LIMIT_SHARDS_MAX, &count, why)) {
        return config_fail(why, "'%.64s' is not 'auto' or a number in 1..%u", value,
                           LIMIT_SHARDS_MAX);
    }
    cfg->shards = (uint32_t)count;
    return true;
}

/* "0,1,2,3", "0-3" or a mix ("0-3, 8-11"): shard i goes to the i-th CPU listed;
 * shards past the list are not pinned. */
static bool config_set_cpus(config *cfg, const char *value, config_reason *why)
{
    int32_t cpus[LIMIT_SHARDS_MAX];
    uint32_t count = 0;
    const char *p = value;
    for (;;) {
        uint64_t first = 0, last = 0;
        while (*p == ' ' || *p == '\t') p++;
        bool ok = config_scan_u64(&p, &first);
        last = first;
        while (*p == ' ' || *p == '\t') p++;
        if (ok && *p == '-') {
            p++;
            while (*p == ' ' || *p == '\t') p++;
            ok = config_scan_u64(&p, &last) && first <= last;
            while (*p == ' ' || *p == '\t') p++;
        }
        if (!ok || (*p != ',' && *p != '\0')) {
            return config_fail(why, "'%.64s' is not a CPU list like 0,1,2,3 or 0-3", value);
        }
        if (last >= LIMIT_CPUS_MAX) {
            return config_fail(why, "CPU %llu is out of range 0..%u", (unsigned long long)last,
                               LIMIT_CPUS_MAX - 1);
        }
        for (uint64_t cpu = first; cpu <= last; cpu++) {
            if (count == LIMIT_SHARDS_MAX) {
                return config_fail(why, "more than %u CPUs (one per shard)", LIMIT_SHARDS_MAX);
            }
            cpus[count++] = (int32_t)cpu;
        }
        if (*p++ == '\0') break;
    }
    ASSERT(count >= 1 && count <= LIMIT_SHARDS_MAX);
    for (uint32_t i = 0; i < LIMIT_SHARDS_MAX; i++) cfg->shard_cpu[i] = i < count ? cpus[i] : -1;
    return true;
}

static bool config_set_frame_max(config *cfg, const char *value, config_reason *why)
{
    uint64_t bytes = 0;
    if (!config_size(value, LIMIT_FRAME_BYTES_MIN, LIMIT_FRAME_BYTES_MAX, &bytes, why)) {
        return false;
    }
    cfg->frame_max = (uint32_t)bytes;
    return true;
}

static bool config_set_channel_max(config *cfg, const char *value, config_reason *why)
{
    uint64_t channels = 0;
    if (!config_number(value, 1, LIMIT_CONFIG_CHANNELS_MAX, &channels, why)) return false;
    cfg->channel_max = (uint16_t)channels;
    return true;
}

static bool config_set_heartbeat(config *cfg, const char *value, config_reason *why)
{
    uint64_t seconds = 0;
    if (!config_number(value, 0, LIMIT_HEARTBEAT_S_MAX, &seconds, why)) return false;
    cfg->heartbeat_s = (uint16_t)seconds;
    return true;
}

static bool config_set_message_size(config *cfg, const char *value, config_reason *why)
{
    uint64_t bytes = 0;
    if (!config_size(value, 1, LIMIT_MESSAGE_BYTES_MAX, &bytes, why)) return false;
    cfg->message_bytes_max = (uint32_t)bytes;
    return true;
}

static bool config_set_segment_size(config *cfg, const char *value, config_reason *why)
{
    uint64_t bytes = 0;
    if (!config_size(value, LIMIT_SEGMENT_BYTES_MIN, LIMIT_SEGMENT_BYTES_MAX, &bytes, why)) return false;
    if (bytes % 4096u != 0) return config_fail(why, "'%.64s' is not a multiple of 4096 bytes", value);
    cfg->segment_bytes = bytes;
    return true;
}

static bool config_set_direct_io(config *cfg, const char *value, config_reason *why)
{
    if (strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0) cfg->direct_io = true;
    else if (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0) cfg->direct_io = false;
    else return config_fail(why, "'%.64s' is not true or false", value);
    return true;
}

static bool config_set_queue_memory(config *cfg, const char *value, config_reason *why)
{
    uint64_t bytes = 0;
    if (!config_size(value, LIMIT_QUEUE_MEMORY_BYTES_MIN, LIMIT_QUEUE_MEMORY_BYTES_MAX, &bytes, why))
        return false;
    cfg->queue_memory_bytes = bytes;
    return true;
}

static const config_key config_keys[CONFIG_KEY_COUNT] = {
    [CONFIG_KEY_BIND] = {"server", "bind", "bind", "ADDR", config_set_bind},
    [CONFIG_KEY_PORT] = {"server", "port", "port", "N", config_set_port},
    [CONFIG_KEY_DATA_DIR] = {"server", "data_dir", "data-dir", "DIR", config_set_data_dir},
    [CONFIG_KEY_LOG_LEVEL] = {"server", "log_level", "log-level", "L", config_set_log_level},
    [CONFIG_KEY_LOG_FILE] = {"server", "log_file", "log-file", "FILE", config_set_log_file},
    [CONFIG_KEY_SHARDS] = {"shards", "count", "shards", "N", config_set_shards},
    [CONFIG_KEY_CPUS] = {"shards", "cpus", "cpus", "LIST", config_set_cpus},
    [CONFIG_KEY_FRAME_MAX] = {"amqp", "frame_max", "frame-max", "BYTES", config_set_frame_max},
    [CONFIG_KEY_CHANNEL_MAX] = {"amqp", "channel_max", "channel-max", "N", config_set_channel_max},
    [CONFIG_KEY_HEARTBEAT] = {"amqp", "heartbeat", "heartbeat", "S", config_set_heartbeat},
    [CONFIG_KEY_MESSAGE_SIZE] = {"amqp", "max_message_size", "max-message-size", "BYTES",
                                 config_set_message_size},
    [CONFIG_KEY_SEGMENT_SIZE] = {"storage", "segment_size", "segment-size", "BYTES",
                                 config_set_segment_size},
    [CONFIG_KEY_DIRECT_IO] = {"storage", "direct_io", "direct-io", "BOOL", config_set_direct_io},
    [CONFIG_KEY_QUEUE_MEMORY] = {"storage", "queue_memory_bytes", "queue-memory-bytes", "BYTES",
                                 config_set_queue_memory},
};

void config_defaults(config *cfg)
{
    ASSERT(cfg != NULL);
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->bind_address, sizeof(cfg->bind_address), "%s", "127.0.0.1");
    cfg->port = 5672;
    cfg->shards = config_shards_auto();
    for (uint32_t i = 0; i < LIMIT_SHARDS_MAX; i++) cfg->shard_cpu[i] = -1;
    cfg->placement_pins_count = 0;
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", "./ringmq-data");
    cfg->log_file[0] = '\0';
    cfg->frame_max = LIMIT_FRAME_BYTES_DEFAULT;
    cfg->channel_max = LIMIT_CHANNELS_DEFAULT;
    cfg->heartbeat_s = LIMIT_HEARTBEAT_S_DEFAULT;
    cfg->segment_bytes = LIMIT_SEGMENT_BYTES_DEFAULT;
    cfg->direct_io = true;
    cfg->queue_memory_bytes = LIMIT_QUEUE_MEMORY_BYTES_DEFAULT;
    cfg->message_bytes_max = LIMIT_MESSAGE_BYTES_DEFAULT;
    cfg->log_level = LOG_LEVEL_INFO;
    ASSERT(cfg->shards >= 1 && cfg->shards <= LIMIT_SHARDS_MAX);
}

/* ---- the INI file ------------------------------------------------------- */

typedef struct {
    config *cfg; /* the working copy */
    const char *path;
    config_error *err;
    uint32_t line;
    int section;                         /* index in config_sections; -1 before any header */
    uint32_t key_line[CONFIG_KEY_COUNT]; /* line each key was set on; 0 = not yet */
    uint32_t cpu_line[LIMIT_SHARDS_MAX]; /* line of cpu.N for shard N; 0 = not yet */
    uint32_t cpu_line_first;             /* first cpu.N line, for the clash with cpus */
    char value[LIMIT_CONFIG_LINE_BYTES_MAX + 1]; /* unquoted value */
} config_ini;

static bool config_ini_fail(config_ini *ini, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "FILE:LINE: key 'k': reason", or "FILE:LINE: reason" when no key is known. */
static bool config_ini_fail(config_ini *ini, const char *key, const char *fmt, ...)
{
    char reason[sizeof(ini->err->text)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (key != NULL) {
        config_error_set(ini->err, "%.200s:%u: key '%.64s': %s", ini->path, ini->line, key, reason);
    } else {
        config_error_set(ini->err, "%.200s:%u: %s", ini->path, ini->line, reason);
    }
    return false;
}

static char *config_trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) s[--len] = '\0';
    return s;
}

static bool config_ini_section(config_ini *ini, char *header)
{
    ASSERT(header[0] == '[');
    size_t len = strlen(header);
    if (header[len - 1] != ']') {
        return config_ini_fail(ini, NULL, "section header '%.64s' does not end with ']'", header);
    }
    header[len - 1] = '\0';
    const char *name = config_trim(header + 1);
    for (size_t i = 0; i < ARRAY_LEN(config_sections); i++) {
        if (strcmp(name, config_sections[i]) == 0) {
            ini->section = (int)i;
            return true;
        }
    }
    return config_ini_fail(
        ini, NULL, "unknown section '[%.64s]' (known: server, shards, placement, amqp)", name);
}

/* cpu.N = CPU: pins shard N. */
static bool config_ini_cpu(config_ini *ini, const char *key, const char *raw)
{
    config_reason why;
    ASSERT(strncmp(key, "cpu.", 4) == 0);
    const char *p = key + strlen("cpu.");
    uint64_t shard = 0, cpu = 0;
    if (!config_scan_u64(&p, &shard) || *p != '\0') {
        return config_ini_fail(ini, key, "unknown key in [shards] (expected cpu.N, N a number)");
    }
    if (shard >= LIMIT_SHARDS_MAX) {
        return config_ini_fail(ini, key, "shard %llu is out of range 0..%u",
                               (unsigned long long)shard, LIMIT_SHARDS_MAX - 1);
    }
    if (ini->cpu_line[shard] != 0) {
        return config_ini_fail(ini, key, "duplicate key (shard %llu first pinned on line %u)",
                               (unsigned long long)shard, ini->cpu_line[shard]);
    }
    if (ini->key_line[CONFIG_KEY_CPUS] != 0) {
        return config_ini_fail(ini, key, "cannot be combined with 'cpus' (line %u)",
                               ini->key_line[CONFIG_KEY_CPUS]);
    }
    if (!config_unquote(raw, ini->value, sizeof(ini->value), &why) ||
        !config_number(ini->value, 0, LIMIT_CPUS_MAX - 1, &cpu, &why)) {
        return config_ini_fail(ini, key, "%s", why.text);
    }
    ASSERT(shard < LIMIT_SHARDS_MAX && cpu < LIMIT_CPUS_MAX);
    ini->cpu_line[shard] = ini->line;
    if (ini->cpu_line_first == 0) ini->cpu_line_first = ini->line;
    ini->cfg->shard_cpu[shard] = (int32_t)cpu;
    return true;
}

/* pin = VHOST QUEUE SHARD, each name bare or "quoted" (for spaces). */
static bool config_ini_pin(config_ini *ini, const char *key, const char *raw)
{
    config *cfg = ini->cfg;
    config_placement_pin pin;
    char shard_text[32];
    config_reason why;
    const char *p = raw;
    int tokens[4];
    ASSERT(cfg->placement_pins_count <= LIMIT_PLACEMENT_PINS_MAX);
    tokens[0] = config_token(&p, pin.vhost, sizeof(pin.vhost), &why);
    tokens[1] = tokens[0] == 1 ? config_token(&p, pin.queue, sizeof(pin.queue), &why) : 0;
    tokens[2] = tokens[1] == 1 ? config_token(&p, shard_text, sizeof(shard_text), &why) : 0;
    tokens[3] = tokens[2] == 1 ? config_token(&p, ini->value, sizeof(ini->value), &why) : 0;
    for (int i = 0; i < 3; i++) {
        if (tokens[i] < 0) return config_ini_fail(ini, key, "%s", why.text);
    }
    if (tokens[2] != 1 || tokens[3] != 0) {
        return config_ini_fail(ini, key, "expected 'VHOST QUEUE SHARD', e.g. pin = / orders 1");
    }
    if (pin.vhost[0] == '\0' || pin.queue[0] == '\0') {
        return config_ini_fail(ini, key, "empty vhost or queue name");
    }
    uint64_t shard = 0;
    if (!config_number(shard_text, 0, LIMIT_SHARDS_MAX - 1, &shard, &why)) {
        return config_ini_fail(ini, key, "shard %s", why.text);
    }
    pin.shard = (uint32_t)shard;
    for (uint32_t i = 0; i < cfg->placement_pins_count; i++) {
        const config_placement_pin *other = &cfg->placement_pins[i];
        if (strcmp(other->vhost, pin.vhost) == 0 && strcmp(other->queue, pin.queue) == 0) {
            return config_ini_fail(ini, key, "queue '%.64s' in vhost '%.64s' is already pinned",
                                   pin.queue, pin.vhost);
        }
    }
    if (cfg->placement_pins_count == LIMIT_PLACEMENT_PINS_MAX) {
        return config_ini_fail(ini, key, "more than %u pins", LIMIT_PLACEMENT_PINS_MAX);
    }
    ASSERT(pin.shard < LIMIT_SHARDS_MAX);
    cfg->placement_pins[cfg->placement_pins_count++] = pin;
    return true;
}

static bool config_ini_key(config_ini *ini, const char *key, const char *raw)
{
    ASSERT(ini->section >= 0 && (size_t)ini->section < ARRAY_LEN(config_sections));
    const char *section = config_sections[ini->section];
    if (strcmp(section, "placement") == 0 && strcmp(key, "pin") == 0) {
        return config_ini_pin(ini, key, raw);
    }
    if (strcmp(section, "shards") == 0 && strncmp(key, "cpu.", 4) == 0) {
        return config_ini_cpu(ini, key, raw);
    }
    int id = -1;
    for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
        if (strcmp(section, config_keys[i].section) == 0 && strcmp(key, config_keys[i].key) == 0) {
            id = i;
        }
    }
    if (id < 0) return config_ini_fail(ini, key, "unknown key in [%s]", section);
    ASSERT(id < CONFIG_KEY_COUNT && config_keys[id].set != NULL);
    if (ini->key_line[id] != 0) {
        return config_ini_fail(ini, key, "duplicate key (first set on line %u)", ini->key_line[id]);
    }
    if (id == CONFIG_KEY_CPUS && ini->cpu_line_first != 0) {
        return config_ini_fail(ini, key, "cannot be combined with cpu.N (line %u)",
                               ini->cpu_line_first);
    }
    config_reason why;
    if (!config_unquote(raw, ini->value, sizeof(ini->value), &why) ||
        !config_keys[id].set(ini->cfg, ini->value, &why)) {
        return config_ini_fail(ini, key, "%s", why.text);
    }
    ini->key_line[id] = ini->line;
    return true;
}

static bool config_ini_line(config_ini *ini, char *line)
{
    char *s = config_trim(line);
    if (s[0] == '\0' || s[0] == '#' || s[0] == ';') return true;
    if (s[0] == '[') return config_ini_section(ini, s);
    char *eq = strchr(s, '=');
    if (eq == NULL) {
        return config_ini_fail(ini, NULL, "expected '[section]' or 'key = value', got '%.64s'", s);
    }
    *eq = '\0';
    const char *key = config_trim(s);
    const char *raw = config_trim(eq + 1);
    if (key[0] == '\0') return config_ini_fail(ini, NULL, "no key before '='");
    if (ini->section < 0) {
        return config_ini_fail(ini, key, "outside any section (add a [section] header above it)");
    }
    return config_ini_key(ini, key, raw);
}

/* Runs every line of text through config_ini_line, stopping at the first error. */
static bool config_ini_parse(config_ini *ini, const char *text)
{
    char line[LIMIT_CONFIG_LINE_BYTES_MAX + 1];
    const char *p = text;
    ASSERT(ini->cfg != NULL && ini->section == -1);
    while (*p != '\0') {
        const char *newline = strchr(p, '\n');
        size_t len = newline != NULL ? (size_t)(newline - p) : strlen(p);
        size_t content = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
        ini->line++;
        ASSERT(ini->line != 0); /* a 1 MiB file has far fewer than 2^32 lines */
        if (content > LIMIT_CONFIG_LINE_BYTES_MAX) {
            return config_ini_fail(ini, NULL, "line longer than %u bytes",
                                   LIMIT_CONFIG_LINE_BYTES_MAX);
        }
        memcpy(line, p, content);
        line[content] = '\0';
        if (!config_ini_line(ini, line)) return false;
        p += len + (newline != NULL ? 1 : 0);
    }
    return true;
}

bool config_load_text(config *cfg, const char *text, const char *path, config_error *err)
{
    ASSERT(cfg != NULL && text != NULL && path != NULL && err != NULL);
    config_ini *ini = calloc(1, sizeof(*ini));
    config *work = malloc(sizeof(*work));
    bool ok = ini != NULL && work != NULL;
    if (!ok) {
        config_error_set(err, "%.200s: out of memory", path);
    } else {
        memcpy(work, cfg, sizeof(*work));
        ini->cfg = work;
        ini->path = path;
        ini->err = err;
        ini->section = -1;
        ok = config_ini_parse(ini, text);
        ASSERT(ok || err->text[0] != '\0');
        if (ok) memcpy(cfg, work, sizeof(*cfg));
    }
    free(work);
    free(ini);
    return ok;
}

bool config_load_file(config *cfg, const char *path, config_error *err)
{
    ASSERT(cfg != NULL && path != NULL && err != NULL);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        config_error_set(err, "%.200s: cannot open: %s", path, strerror(errno));
        return false;
    }
    /* Read up to one byte past the limit to tell "too large" from "exactly the limit". */
    char *text = malloc(LIMIT_CONFIG_FILE_BYTES_MAX + 2);
    size_t size = 0;
    bool ok = text != NULL;
    if (!ok) config_error_set(err, "%.200s: out of memory", path);
    while (ok && size <= LIMIT_CONFIG_FILE_BYTES_MAX) {
        ssize_t n = read(fd, text + size, LIMIT_CONFIG_FILE_BYTES_MAX + 1 - size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            config_error_set(err, "%.200s: cannot read: %s", path, strerror(errno));
            ok = false;
        }
        if (n <= 0) break;
        size += (size_t)n;
    }
    close(fd);
    if (ok && size > LIMIT_CONFIG_FILE_BYTES_MAX) {
        config_error_set(err, "%.200s: larger than %u bytes", path, LIMIT_CONFIG_FILE_BYTES_MAX);
        ok = false;
    }
    if (ok && memchr(text, '\0', size) != NULL) {
        config_error_set(err, "%.200s: contains a NUL byte (not a text file?)", path);
        ok = false;
    }
    if (ok) {
        text[size] = '\0';
        ok = config_load_text(cfg, text, path, err);
    }
    free(text);
    return ok;
}

/* ---- validation --------------------------------------------------------- */

static bool config_validate_fields(const config *cfg, config_error *err)
{
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, cfg->bind_address, addr) != 1 &&
        inet_pton(AF_INET6, cfg->bind_address, addr) != 1) {
        config_error_set(err, "key 'bind': '%.64s' is not an IPv4 or IPv6 address",
                         cfg->bind_address);
        return false;
    }
    const char *bad = NULL;
    if (cfg->port == 0) bad = "port";
    if (cfg->data_dir[0] == '\0') bad = "data_dir";
    if (cfg->frame_max < LIMIT_FRAME_BYTES_MIN || cfg->frame_max > LIMIT_FRAME_BYTES_MAX) {
        bad = "frame_max";
    }
    if (cfg->channel_max == 0) bad = "channel_max";
    if (cfg->message_bytes_max == 0 || cfg->message_bytes_max > LIMIT_MESSAGE_BYTES_MAX) {
        bad = "max_message_size";
    }
    if (cfg->shards < 1 || cfg->shards > LIMIT_SHARDS_MAX) bad = "count";
    if (cfg->log_level < LOG_LEVEL_DEBUG || cfg->log_level > LOG_LEVEL_NONE) bad = "log_level";
    if (bad != NULL) {
        config_error_set(err, "key '%s': value out of range", bad);
        return false;
    }
    return true;
}

static bool config_validate_shard_cpus(const config *cfg, long cpus_count, config_error *err)
{
    ASSERT(cpus_count >= 1);
    for (uint32_t shard = 0; shard < LIMIT_SHARDS_MAX; shard++) {
        int32_t cpu = cfg->shard_cpu[shard];
        if (cpu == -1) continue;
        if (shard >= cfg->shards) {
            config_error_set(err,
                             "key 'cpu.%u': shard %u does not exist: [shards] count is %u "
                             "(shards 0..%u)",
                             shard, shard, cfg->shards, cfg->shards - 1);
            return false;
        }
        if (cpu < 0 || cpu >= cpus_count) {
            config_error_set(err,
                             "key 'cpu.%u': CPU %d does not exist: this machine has %ld "
                             "CPUs (0..%ld)",
                             shard, cpu, cpus_count, cpus_count - 1);
            return false;
        }
        for (uint32_t other = 0; other < shard; other++) {
            if (cfg->shard_cpu[other] == cpu) {
                config_error_set(err, "key 'cpu.%u': CPU %d is already taken by shard %u", shard,
                                 cpu, other);
                return false;
            }
        }
    }
    return true;
}

bool config__validate_cpus(const config *cfg, long cpus_count, config_error *err)
{
    ASSERT(cfg != NULL && err != NULL);
    if (!config_validate_fields(cfg, err)) return false;
    if (!config_validate_shard_cpus(cfg, cpus_count, err)) return false;
    ASSERT(cfg->placement_pins_count <= LIMIT_PLACEMENT_PINS_MAX);
    for (uint32_t i = 0; i < cfg->placement_pins_count; i++) {
        const config_placement_pin *pin = &cfg->placement_pins[i];
        if (pin->shard >= cfg->shards) {
            config_error_set(err,
                             "key 'pin': queue '%.64s' in vhost '%.64s' is pinned to shard %u, "
                             "but [shards] count is %u (shards 0..%u)",
                             pin->queue, pin->vhost, pin->shard, cfg->shards, cfg->shards - 1);
            return false;
        }
    }
    return true;
}

bool config_validate(const config *cfg, config_error *err)
{
    long cpus_count = sysconf(_SC_NPROCESSORS_CONF);
    if (cpus_count < 1) cpus_count = 1;
    return config__validate_cpus(cfg, cpus_count, err);
}

/* ---- the command line --------------------------------------------------- */

enum {
    CONFIG_OPT_KEY_BASE = 256, /* getopt value of config_keys[i]'s flag: base + i */
    CONFIG_OPTIONS_COUNT = CONFIG_KEY_COUNT + 4,
};

static void config_options_build(struct option *options)
{
    for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
        options[i] =
            (struct option){config_keys[i].flag, required_argument, NULL, CONFIG_OPT_KEY_BASE + i};
    }
    options[CONFIG_KEY_COUNT + 0] = (struct option){"config", required_argument, NULL, 'c'};
    options[CONFIG_KEY_COUNT + 1] = (struct option){"help", no_argument, NULL, 'h'};
    options[CONFIG_KEY_COUNT + 2] = (struct option){"version", no_argument, NULL, 'V'};
    options[CONFIG_KEY_COUNT + 3] = (struct option){NULL, 0, NULL, 0};
}

static void config_usage(void)
{
    printf("Usage: ringmq [OPTION]...\n"
           "AMQP 0-9-1 broker. Settings come from the defaults, then --config FILE,\n"
           "then the other options (which win, whatever their order).\n\n"
           "  -c, --config FILE             read this INI file (none is read by default;\n"
           "                                the installed sample is %s/ringmq.conf)\n",
#ifdef RINGMQ_SYSCONFDIR
           RINGMQ_SYSCONFDIR
#else
           "/etc"
#endif
    );
    for (int i = 0; i < CONFIG_KEY_COUNT; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s %s", config_keys[i].flag, config_keys[i].flag_arg);
        printf("      %-24s  [%s] %s\n", left, config_keys[i].section, config_keys[i].key);
    }
    printf("  -h, --help                    show this help and exit\n"
           "  -V, --version                 show the version and exit\n\n"
           "Sizes take K, M or G (powers of 1024). See docs/configuration.md.\n");
}

/* "--name" of the option getopt just refused, without any "=value". */
static void config_args_bad_name(char **argv, char *out, size_t out_size)
{
    const char *arg = optind >= 1 ? argv[optind - 1] : NULL;
    if (arg != NULL && strncmp(arg, "--", 2) == 0) {
        snprintf(out, out_size, "%.*s", (int)strcspn(arg, "="), arg);
    } else {
        snprintf(out, out_size, "-%c", optopt != 0 ? optopt : '?');
    }
}

/*
 * Pass one: checks the syntax of every argument and finds --config, --help
 * and --version, so that the file can be loaded before any flag is applied.
 */
static config_args_result config_args_scan(int argc, char **argv, const struct option *options,
                                           const char **config_path, config_error *err)
{
    bool help = false, version = false;
    char name[64];
    optind = 0;
    for (;;) {
        int opt = getopt_long(argc, argv, "+:c:hV", options, NULL);
        if (opt == -1) break;
        switch (opt) {
        case 'c':
            *config_path = optarg;
            break;
        case 'h':
            help = true;
            break;
        case 'V':
            version = true;
            break;
        case ':':
            config_args_bad_name(argv, name, sizeof(name));
            config_error_set(err, "%s: missing value", name);
            return CONFIG_ARGS_ERROR;
        case '?':
            config_args_bad_name(argv, name, sizeof(name));
            config_error_set(err, "unknown option '%s' (see --help)", name);
            return CONFIG_ARGS_ERROR;
        default:
            ASSERT(opt >= CONFIG_OPT_KEY_BASE && opt < CONFIG_OPT_KEY_BASE + CONFIG_KEY_COUNT);
        }
    }
    if (optind < argc) {
        config_error_set(err, "unexpected argument '%.64s' (see --help)", argv[optind]);
        return CONFIG_ARGS_ERROR;
    }
    if (help) config_usage();
    if (version && !help) printf("ringmq %s\n", PACKAGE_VERSION);
    return help || version ? CONFIG_ARGS_EXIT : CONFIG_ARGS_RUN;
}

/* Pass two: applies every value flag in order (a repeated flag: the last wins). */
static bool config_args_apply(config *cfg, int argc, char **argv, const struct option *options,
                              config_error *err)
{
    optind = 0;
    for (;;) {
        int opt = getopt_long(argc, argv, "+:c:hV", options, NULL);
        if (opt == -1) break;
        if (opt < CONFIG_OPT_KEY_BASE) continue;
        int id = opt - CONFIG_OPT_KEY_BASE;
        ASSERT(id < CONFIG_KEY_COUNT && optarg != NULL);
        config_reason why;
        if (!config_keys[id].set(cfg, optarg, &why)) {
            config_error_set(err, "--%s: %s", config_keys[id].flag, why.text);
            return false;
        }
    }
    return true;
}

config_args_result config_from_args(config *cfg, int argc, char **argv, config_error *err)
{
    ASSERT(cfg != NULL && err != NULL && argv != NULL);
    ASSERT(argc >= 1);
    struct option options[CONFIG_OPTIONS_COUNT];
    const char *config_path = NULL;
    config_options_build(options);
    err->text[0] = '\0';
    int opterr_saved = opterr;
    opterr = 0; /* we print one message of our own */
    config_args_result result = config_args_scan(argc, argv, options, &config_path, err);
    if (result == CONFIG_ARGS_RUN) {
        config_defaults(cfg);
        bool ok = (config_path == NULL || config_load_file(cfg, config_path, err)) &&
                  config_args_apply(cfg, argc, argv, options, err) && config_validate(cfg, err);
        if (!ok) result = CONFIG_ARGS_ERROR;
    }
    opterr = opterr_saved;
    ASSERT(result != CONFIG_ARGS_ERROR || err->text[0] != '\0');
    return result;
}
