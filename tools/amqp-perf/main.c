/*
 * amqp-perf: the bundled AMQP 0-9-1 load tool. This is the entry point; the
 * scenarios arrive with their own issue. For now it prints usage.
 */
#include <stdio.h>
#include <string.h>

static void amqp_perf_usage(FILE *out)
{
    fputs("usage: amqp-perf [throughput|queue-count|connection-count|queue-churn|\n"
          "                  connection-churn|bind-churn|consumer-churn] [options]\n"
          "  -h URI   broker URI (amqp://user:pass@host:port/vhost)\n"
          "  -x N     producers        -y N  consumers\n"
          "  -s BYTES message size     -z S  seconds to run\n"
          "(not implemented yet: only this help is available)\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0)) {
        amqp_perf_usage(stdout);
        return 0;
    }
    amqp_perf_usage(stderr);
    return 2;
}
