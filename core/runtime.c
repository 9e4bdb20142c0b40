/*
 * Process start and stop. The main thread owns no connections: it starts the
 * shards, waits until every shard has created its ring and listener (so that
 * ring fds are valid targets for IORING_OP_MSG_RING and the port is bound
 * before we say we are ready), then waits for signals with sigwaitinfo. All
 * signals are blocked in every thread, so delivery is synchronous here. It
 * also opens the definitions journal before the shards start, so that every
 * shard rebuilds the durable topology before it accepts a connection, and
 * closes it after they have stopped.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include "core/runtime.h"

#include "core/assert.h"
#include "core/auth.h"
#include "core/log.h"
#include "core/mbox.h"
#include "net/declare.h"
#include "net/reply_to.h"
#include "route/topo.h"
#include "store/defs.h"
#include "store/queues.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct io_uring runtime_wake_ring; /* main thread only */

void runtime_wake_shard(runtime *rt, struct io_uring *from, uint32_t shard_id)
{
    ASSERT(shard_id < rt->shard_count);
    if (from == NULL) from = &runtime_wake_ring;
    struct io_uring_sqe *sqe = io_uring_get_sqe(from);
    if (sqe == NULL) {
        io_uring_submit(from);
        sqe = io_uring_get_sqe(from);
    }
    ASSERT(sqe != NULL);
    io_uring_prep_msg_ring(sqe, rt->shards[shard_id].ring_fd, 0,
                           shard_user_data(SHARD_OP_WAKE, 0, 0), 0);
    io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
    io_uring_sqe_set_data64(sqe, shard_user_data(SHARD_OP_NONE, 0, 0)); /* a failure CQE is ignored */
    io_uring_submit(from);
}

static void runtime_drain_wake_ring(void)
{
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&runtime_wake_ring, &cqe) == 0) {
        if (cqe->res < 0) LOG_WARN("wake-up message failed: %s", strerror(-cqe->res));
        io_uring_cqe_seen(&runtime_wake_ring, cqe);
    }
}

static int runtime_wait_signals(runtime *rt, const sigset_t *set)
{
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(set, &info);
        if (sig < 0) {
            if (errno == EINTR) continue;
            LOG_ERROR("sigwaitinfo: %s", strerror(errno));
            return 1;
        }
        switch (sig) {
        case SIGTERM:
        case SIGINT:
            LOG_INFO("received %s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return 0;
        case SIGHUP:
            if (!log_reopen()) LOG_ERROR("cannot reopen the log file");
            LOG_INFO("received SIGHUP: log file reopened");
            break;
        case SIGUSR1:
        case SIGUSR2:
            atomic_store(&rt->alarm, sig == SIGUSR1);
            LOG_WARN("resource alarm %s (test hook)", sig == SIGUSR1 ? "raised" : "cleared");
            for (uint32_t i = 0; i < rt->shard_count; i++) runtime_wake_shard(rt, NULL, i);
            runtime_drain_wake_ring();
            break;
        default:
            break;
        }
    }
}

void runtime_disk_alarm(runtime *rt, struct io_uring *from, uint32_t shard_id, bool full)
{
    ASSERT(shard_id < rt->shard_count && shard_id < 64);
    uint64_t bit = 1ull << shard_id;
    uint64_t before = full ? atomic_fetch_or(&rt->disk_alarm, bit) : atomic_fetch_and(&rt->disk_alarm, ~bit);
    if (((before & bit) != 0) == full) return;
    LOG_WARN("disk alarm %s by shard %u", full ? "raised" : "cleared", shard_id);
    for (uint32_t i = 0; i < rt->shard_count; i++)
        if (i != shard_id) runtime_wake_shard(rt, from, i);
}

int runtime_run(const config *cfg)
{
    ASSERT(cfg->shards >= 1 && cfg->shards <= LIMIT_SHARDS_MAX);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    runtime rt;
    memset(&rt, 0, sizeof(rt));
    rt.cfg = cfg;
    rt.shard_count = cfg->shards;
    auth_error aerr;
    rt.auth = auth_store_open(cfg->data_dir, &aerr);
    if (rt.auth == NULL) {
        LOG_ERROR("cannot open the user store in %s: %s", cfg->data_dir, aerr.text);
        return 1;
    }
    /* Durable definitions: read once here; every shard applies them before it accepts. */
    store_defs_config dcfg = {.dir = cfg->data_dir};
    store_defs_error derr;
    rt.defs = store_defs_open(&dcfg, &derr);
    if (rt.defs == NULL) {
        LOG_ERROR("cannot open the definitions journal in %s: %s", cfg->data_dir, derr.text);
        return 1;
    }
    if (!topo_recover_prepare(rt.defs, cfg, rt.auth, rt.shard_count)) return 1;
    int rc = io_uring_queue_init(64, &runtime_wake_ring, 0);
    if (rc < 0) {
        LOG_ERROR("io_uring_queue_init: %s", strerror(-rc));
        return 1;
    }
    shard_mbox_register_builtin();
    topo_register();
    queues_register();
    reply_to_register();
    topo_set_callbacks(declare_topo_done, queues_on_topology);
    rt.mesh = mbox_mesh_create(rt.shard_count, LIMIT_MBOX_RING_BYTES);
    if (rt.mesh == NULL) {
        LOG_ERROR("cannot allocate the cross-core mailbox");
        return 1;
    }
    rt.shards = calloc(rt.shard_count, sizeof(shard));
    ASSERT(rt.shards != NULL);
    pthread_barrier_init(&rt.rings_ready, NULL, rt.shard_count + 1);
    for (uint32_t i = 0; i < rt.shard_count; i++) {
        shard *s = &rt.shards[i];
        s->id = i;
        s->cpu = cfg->shard_cpu[i];
        s->rt = &rt;
        s->cfg = cfg;
        s->auth = rt.auth;
        s->listen_fd = -1;
        s->mesh = rt.mesh;
        rc = pthread_create(&s->thread, NULL, shard_main, s);
        if (rc != 0) {
            LOG_ERROR("cannot start shard %u: %s", i, strerror(rc));
            exit(1);
        }
    }
    pthread_barrier_wait(&rt.rings_ready);
    LOG_INFO("ringmq %s listening on %s:%u with %u shard(s)", PACKAGE_VERSION, cfg->bind_address,
             cfg->port, rt.shard_count);

    int status = runtime_wait_signals(&rt, &set);
    for (uint32_t i = 0; i < rt.shard_count; i++) shard_request_stop(&rt.shards[i]);
    for (uint32_t i = 0; i < rt.shard_count; i++) pthread_join(rt.shards[i].thread, NULL);
    runtime_drain_wake_ring();
    io_uring_queue_exit(&runtime_wake_ring);
    pthread_barrier_destroy(&rt.rings_ready);
    free(rt.shards);
    mbox_mesh_destroy(rt.mesh);
    store_defs_close(rt.defs);
    auth_store_close(rt.auth);
    LOG_INFO("stopped");
    return status;
}
