/*
 * Logger. Each line is formatted into a stack buffer and written with one
 * write(2) so lines from different shards never interleave. The file
 * descriptor is swapped atomically on reopen; the old one is closed after.
 */
#include "core/log.h"

#include "core/assert.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum { LOG_LINE_BYTES_MAX = 2048, LOG_PATH_BYTES_MAX = 4096 };

static _Atomic int log_level_current = LOG_LEVEL_INFO;
static _Atomic int log_fd = STDERR_FILENO;
static char log_path[LOG_PATH_BYTES_MAX];
static _Thread_local int log_shard_id = -1;

static const char *const log_level_names[] = {"debug", "info", "warn", "error", "none"};

bool log_level_parse(const char *name, log_level *out)
{
    ASSERT(name != NULL && out != NULL);
    for (int i = 0; i <= LOG_LEVEL_NONE; i++) {
        if (strcasecmp(name, log_level_names[i]) == 0) {
            *out = (log_level)i;
            return true;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return true;
    }
    return false;
}

const char *log_level_name(log_level level)
{
    ASSERT(level >= LOG_LEVEL_DEBUG && level <= LOG_LEVEL_NONE);
    return log_level_names[level];
}

void log_set_level(log_level level) { atomic_store(&log_level_current, (int)level); }
log_level log_get_level(void) { return (log_level)atomic_load(&log_level_current); }
void log_set_shard(int shard_id) { log_shard_id = shard_id; }

bool log_open(const char *path)
{
    if (path == NULL || path[0] == '\0') {
        int old = atomic_exchange(&log_fd, STDERR_FILENO);
        if (old != STDERR_FILENO) close(old);
        log_path[0] = '\0';
        return true;
    }
    if (strlen(path) >= sizeof(log_path)) return false;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return false;
    snprintf(log_path, sizeof(log_path), "%s", path);
    int old = atomic_exchange(&log_fd, fd);
    if (old != STDERR_FILENO) close(old);
    return true;
}

bool log_reopen(void)
{
    if (log_path[0] == '\0') return true;
    char path[LOG_PATH_BYTES_MAX];
    snprintf(path, sizeof(path), "%s", log_path);
    return log_open(path);
}

void log_write(log_level level, const char *fmt, ...)
{
    if (level < log_get_level()) return;
    char line[LOG_LINE_BYTES_MAX];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, now.tv_nsec / 1000, log_level_names[level]);
    if (log_shard_id >= 0)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "[shard %d] ", log_shard_id);
    else
        n += snprintf(line + n, sizeof(line) - (size_t)n, "[main] ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2) len = sizeof(line) - 2;
    line[len++] = '\n';
    int saved = errno;
    ssize_t w = write(atomic_load(&log_fd), line, len);
    (void)w; /* A failed log write has nowhere to be reported. */
    errno = saved;
}
