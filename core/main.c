/*
 * ringmq entry point: configuration (defaults, file, flags), logging, then
 * the shard runtime. Nothing starts unless the whole configuration is valid.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "core/config.h"
#include "core/log.h"
#include "core/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
    static config cfg; /* large (placement pins): not on the stack */
    config_error err;
    switch (config_from_args(&cfg, argc, argv, &err)) {
    case CONFIG_ARGS_EXIT:
        return 0;
    case CONFIG_ARGS_ERROR:
        fprintf(stderr, "ringmq: %s\n", err.text);
        return 2;
    case CONFIG_ARGS_RUN:
        break;
    }
    log_set_level(cfg.log_level);
    if (cfg.log_file[0] != '\0' && !log_open(cfg.log_file)) {
        fprintf(stderr, "ringmq: cannot open log file %s\n", cfg.log_file);
        return 1;
    }
    if (mkdir(cfg.data_dir, 0750) != 0 && errno != EEXIST) {
        LOG_ERROR("cannot create data directory %s: %m", cfg.data_dir);
        return 1;
    }
    /* Every connection is a file descriptor: take the hard limit, as brokers are run. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) LOG_WARN("cannot raise the file limit: %m");
    }
    return runtime_run(&cfg);
}
