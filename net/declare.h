/*
 * Answers that reach a connection's channels from other shards: topology
 * changes (route/topo.c) and queue operations (store/queues.c, whose answer
 * functions are declared there and implemented in net/declare.c and
 * net/consume.c).
 */
#ifndef RINGMQ_NET_DECLARE_H
#define RINGMQ_NET_DECLARE_H

#include "route/topo.h"

void declare_topo_done(shard *s, uint64_t cookie, const topo_reply *reply);

#endif
