/*
 * Broker configuration: defaults, then the INI file, then command-line flags,
 * in that order, each overriding the one before. Validation is complete before
 * the broker starts: on any error the caller gets one message naming the file,
 * line and key (or the flag) and nothing is started.
 */
#ifndef RINGMQ_CORE_CONFIG_H
#define RINGMQ_CORE_CONFIG_H

#include "core/limits.h"
#include "core/log.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char vhost[LIMIT_NAME_BYTES_MAX + 1];
    char queue[LIMIT_NAME_BYTES_MAX + 1];
    uint32_t shard;
} config_placement_pin;

typedef struct {
    char bind_address[64];          /* IPv4 or IPv6 literal, default 127.0.0.1 */
    uint16_t port;                  /* default 5672 */
    uint32_t shards;                /* default: online CPUs, at most LIMIT_SHARDS_MAX */
    int32_t shard_cpu[LIMIT_SHARDS_MAX]; /* CPU for shard i; -1 = not pinned */
    uint32_t placement_pins_count;
    config_placement_pin placement_pins[LIMIT_PLACEMENT_PINS_MAX];
    char data_dir[LIMIT_PATH_BYTES_MAX];
    char log_file[LIMIT_PATH_BYTES_MAX]; /* empty = stderr */
    uint32_t frame_max;              /* bytes */
    uint16_t channel_max;
    uint16_t heartbeat_s;            /* seconds, 0 disables */
    uint32_t message_bytes_max;      /* bytes */
    uint64_t segment_bytes;          /* segment log file size, bytes (multiple of 4096) */
    bool direct_io;                  /* O_DIRECT for the segment log where the filesystem allows */
    uint64_t queue_memory_bytes;     /* a queue's in-memory window before it pages out, bytes */
    log_level log_level;
} config;

/* Error text buffer: "FILE:LINE: key 'k': reason" or "--flag: reason". */
typedef struct {
    char text[512];
} config_error;

void config_defaults(config *cfg);
/* Parse an INI file onto cfg. Returns false and fills err on any error;
 * cfg is then unchanged. */
bool config_load_file(config *cfg, const char *path, config_error *err);
/* Parse INI text (path used in messages). Pure: used by tests and fuzzing. */
bool config_load_text(config *cfg, const char *text, const char *path, config_error *err);
/* Final cross-field checks (CPU per shard, pins within shard count). */
bool config_validate(const config *cfg, config_error *err);
/* config_validate against a given number of configured CPUs (tests). */
bool config__validate_cpus(const config *cfg, long cpus_count, config_error *err);

typedef enum {
    CONFIG_ARGS_RUN,   /* start the broker */
    CONFIG_ARGS_EXIT,  /* --help or --version printed; exit 0 */
    CONFIG_ARGS_ERROR, /* err filled; exit non-zero */
} config_args_result;

/*
 * Full start-up configuration from argv: defaults, then --config FILE, then
 * the other flags whatever their order, then config_validate. No file is read
 * unless --config names one. Prints --help/--version output to stdout.
 */
config_args_result config_from_args(config *cfg, int argc, char **argv, config_error *err);

#endif
