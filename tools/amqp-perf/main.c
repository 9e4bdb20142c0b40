/*
 * amqp-perf: the AMQP 0-9-1 load tool bundled with ringmq, for any broker
 * (ringmq, RabbitMQ). The first argument picks the sub-command; the rest
 * are RabbitMQ PerfTest's flags (tools/amqp-perf/opts.c). Exit status: 0,
 * 1 when the run failed (a connection error, --verify not satisfied), 2 on
 * a usage error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/amqp-perf/perf.h"

int main(int argc, char **argv)
{
    perf_opts *o = calloc(1, sizeof *o);
    bool help;
    if (o == NULL) return 1;
    int rc = perf_opts_parse(o, argc, argv, &help);
    if (help || rc != 0) {
        perf_usage(help ? stdout : stderr);
        free(o);
        return help ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN);
    switch (o->cmd) {
    case PERF_CMD_THROUGHPUT: rc = perf_throughput(o); break;
    case PERF_CMD_SINK: rc = perf_sink(o); break;
    default: rc = perf_churn(o); break;
    }
    free(o);
    return rc;
}
