/*
 * The process: N shards started from the config, signals handled on the main
 * thread (SIGTERM/SIGINT stop every shard, SIGHUP reopens the log file,
 * SIGUSR1/SIGUSR2 raise/clear the test resource alarm), and the state the
 * shards share read-mostly: the config, the user store and the alarm flag.
 */
#ifndef RINGMQ_CORE_RUNTIME_H
#define RINGMQ_CORE_RUNTIME_H

#include "core/config.h"
#include "core/shard.h"

#include <stdatomic.h>

struct runtime {
    const config *cfg;
    auth_store *auth;
    uint32_t shard_count;
    shard *shards;
    mbox_mesh *mesh;
    struct store_defs *defs;       /* definitions journal: read by every shard at start, then
                                      written by shard 0 (the topology sequencer) only */
    pthread_barrier_t rings_ready; /* every shard's ring_fd is published */
    _Atomic bool alarm;            /* the test hook's resource alarm is raised: block publishers */
    _Atomic uint64_t disk_alarm;   /* bit i: shard i's segment log found the disk full */
    _Atomic uint32_t alarm_epoch;  /* bumped on every change, so shards notice */
    _Atomic uint32_t stop_closed;  /* stopping shards whose connections are all closed */
    _Atomic uint32_t stop_exited;  /* shards other than the sequencer that left their loop */
};

/* Runs the broker until SIGTERM/SIGINT; returns the process exit status. */
int runtime_run(const config *cfg);

/* Any thread: wake a shard that may be sleeping in io_uring_enter. */
void runtime_wake_shard(runtime *rt, struct io_uring *from, uint32_t shard_id);
/* A shard's thread: raise or clear its disk alarm; every shard blocks or unblocks publishers. */
void runtime_disk_alarm(runtime *rt, struct io_uring *from, uint32_t shard_id, bool full);

#endif
