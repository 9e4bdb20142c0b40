/*
 * Logging: one line per event, "timestamp level [shard] message", to stderr
 * or a log file. The level filter is a global read on every call; the shard
 * id is thread-local so each shard's lines say where they come from.
 */
#ifndef RINGMQ_CORE_LOG_H
#define RINGMQ_CORE_LOG_H

#include <stdbool.h>

typedef enum {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
    LOG_LEVEL_NONE = 4,
} log_level;

/* Parses "debug", "info", "warn"/"warning", "error", "none". */
bool log_level_parse(const char *name, log_level *out);
const char *log_level_name(log_level level);

void log_set_level(log_level level);
log_level log_get_level(void);
/* Shard id shown in each line of the calling thread; -1 for the main thread. */
void log_set_shard(int shard_id);
/* Log to this file (append); NULL means stderr. Returns false on error. */
bool log_open(const char *path);
/* Reopen the current log file (SIGHUP, log rotation). */
bool log_reopen(void);

void log_write(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_DEBUG(...)                                                                             \
    do {                                                                                           \
        if (log_get_level() <= LOG_LEVEL_DEBUG) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__);           \
    } while (0)
#define LOG_INFO(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_WARN(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_ERROR(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
