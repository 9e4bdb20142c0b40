/*
 * amqp-perf's command line: a sub-command (LavinMQ's lavinmqperf names)
 * then RabbitMQ PerfTest's flags, short ("-x 2", "-x2") or long
 * ("--producers 2", "--producers=2"), plus the tool's own (--verify,
 * --json, --csv, --plot, --count, --port). Parsing fills a perf_opts and
 * checks the combinations; nothing here touches the network.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/assert.h"
#include "net/amqp_table.h"
#include "tools/amqp-perf/perf.h"

typedef enum opt_id {
    O_URI, O_PRODUCERS, O_CONSUMERS, O_SIZE, O_QUEUE, O_EXCHANGE, O_TYPE, O_KEY, O_TIME,
    O_PMESSAGES, O_CMESSAGES, O_RATE, O_CRATE, O_CONFIRM, O_QOS, O_AUTOACK, O_MULTIACK, O_FLAG,
    O_PREDECLARED, O_QPATTERN, O_QFROM, O_QTO, O_QARGS, O_AUTODELETE, O_ID, O_VERIFY, O_JSON,
    O_CSV, O_PLOT, O_COUNT, O_PORT, O_BIND, O_HELP,
} opt_id;

typedef struct opt_def {
    const char *short_name; /* NULL: long only */
    const char *long_name;
    bool has_arg;
    opt_id id;
} opt_def;

static const opt_def opt_table[] = {
    {"-h", "--uri", true, O_URI},
    {"-x", "--producers", true, O_PRODUCERS},
    {"-y", "--consumers", true, O_CONSUMERS},
    {"-s", "--size", true, O_SIZE},
    {"-u", "--queue", true, O_QUEUE},
    {"-e", "--exchange", true, O_EXCHANGE},
    {"-t", "--type", true, O_TYPE},
    {"-k", "--routing-key", true, O_KEY},
    {"-z", "--time", true, O_TIME},
    {"-C", "--pmessages", true, O_PMESSAGES},
    {"-D", "--cmessages", true, O_CMESSAGES},
    {"-r", "--rate", true, O_RATE},
    {"-R", "--consumer-rate", true, O_CRATE},
    {"-c", "--confirm", true, O_CONFIRM},
    {"-q", "--qos", true, O_QOS},
    {"-a", "--autoack", false, O_AUTOACK},
    {"-A", "--multi-ack-every", true, O_MULTIACK},
    {"-f", "--flag", true, O_FLAG},
    {"-p", "--predeclared", false, O_PREDECLARED},
    {NULL, "--queue-pattern", true, O_QPATTERN},
    {NULL, "--queue-pattern-from", true, O_QFROM},
    {NULL, "--queue-pattern-to", true, O_QTO},
    {"-Q", "--queue-args", true, O_QARGS},
    {"-ad", "--auto-delete", true, O_AUTODELETE},
    {"-id", "--id", true, O_ID},
    {NULL, "--verify", false, O_VERIFY},
    {NULL, "--json", false, O_JSON},
    {NULL, "--csv", true, O_CSV},
    {NULL, "--plot", true, O_PLOT},
    {NULL, "--count", true, O_COUNT},
    {NULL, "--port", true, O_PORT},
    {NULL, "--bind", true, O_BIND},
    {"-?", "--help", false, O_HELP},
};

static const char *const cmd_names[] = {
    [PERF_CMD_THROUGHPUT] = "throughput",
    [PERF_CMD_QUEUE_COUNT] = "queue-count",
    [PERF_CMD_CONNECTION_COUNT] = "connection-count",
    [PERF_CMD_QUEUE_CHURN] = "queue-churn",
    [PERF_CMD_CONNECTION_CHURN] = "connection-churn",
    [PERF_CMD_BIND_CHURN] = "bind-churn",
    [PERF_CMD_CONSUMER_CHURN] = "consumer-churn",
    [PERF_CMD_SINK] = "sink",
};

void perf_usage(FILE *out)
{
    fputs("usage: amqp-perf [throughput|queue-count|connection-count|queue-churn|\n"
          "                  connection-churn|bind-churn|consumer-churn|sink] [options]\n"
          "  -h URI     broker (amqp://user:pass@host:port/vhost), repeatable\n"
          "  -x N       producers (1)          -y N   consumers (1)\n"
          "  -s BYTES   message size (16)      -z S   seconds to run\n"
          "  -u NAME    queue (server-named)   -e NAME exchange (direct)\n"
          "  -t TYPE    exchange type (direct) -k KEY routing key\n"
          "  -C N       messages per producer  -D N   messages per consumer\n"
          "  -r RATE    msgs/s per producer    -R RATE msgs/s per consumer\n"
          "  -c N       confirm window         -q N   prefetch\n"
          "  -a         auto-ack               -A N   multi-ack every N\n"
          "  -f FLAG    persistent|mandatory   -p     predeclared\n"
          "  -Q K=V,..  queue arguments        -ad BOOL auto-delete (true)\n"
          "  --queue-pattern P --queue-pattern-from N --queue-pattern-to M\n"
          "  --id ID  --verify  --json  --csv FILE  --plot FILE.svg  --count N\n"
          "  sink: --port N [--bind ADDR] [-s BYTES]\n",
          out);
}

static int opt_bad(const char *what, const char *value)
{
    fprintf(stderr, "amqp-perf: %s: %s\n", what, value);
    return 2;
}

static bool opt_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != 0 || s[0] == '-') return false;
    *out = v;
    return true;
}

static bool opt_u32(const char *s, uint32_t *out, uint32_t max)
{
    uint64_t v;
    if (!opt_u64(s, &v) || v > max) return false;
    *out = (uint32_t)v;
    return true;
}

static bool opt_double(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != 0 || v < 0) return false;
    *out = v;
    return true;
}

static bool opt_bool(const char *s, bool *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) *out = true;
    else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) *out = false;
    else return false;
    return true;
}

static bool opt_copy(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n >= PERF_NAME_BYTES_MAX || n > 255) return false;
    memcpy(dst, src, n + 1);
    return true;
}

/* "%41" -> 'A'; returns false on a bad escape. */
static bool uri_decode(char *dst, const char *src, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (j + 1 >= PERF_NAME_BYTES_MAX) return false;
        if (src[i] == '%') {
            if (i + 2 >= n) return false;
            if (!isxdigit((unsigned char)src[i + 1]) || !isxdigit((unsigned char)src[i + 2]))
                return false;
            char hex[3] = {src[i + 1], src[i + 2], 0};
            dst[j++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            dst[j++] = src[i];
        }
    }
    dst[j] = 0;
    return true;
}

int perf_uri_parse(perf_uri *u, const char *text)
{
    memset(u, 0, sizeof *u);
    strcpy(u->user, "guest");
    strcpy(u->pass, "guest");
    strcpy(u->vhost, "/");
    u->port = 5672;
    if (strncmp(text, "amqp://", 7) != 0) return -1;
    const char *p = text + 7, *slash = strchr(p, '/');
    const char *end = slash != NULL ? slash : p + strlen(p);
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *uend = colon != NULL ? colon : at;
        if (!uri_decode(u->user, p, (size_t)(uend - p))) return -1;
        if (colon != NULL && !uri_decode(u->pass, colon + 1, (size_t)(at - colon - 1))) return -1;
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *hend = colon != NULL ? colon : end;
    if (hend == p || (size_t)(hend - p) >= sizeof u->host) return -1;
    memcpy(u->host, p, (size_t)(hend - p));
    if (colon != NULL) {
        char port[8] = {0};
        uint32_t v;
        if ((size_t)(end - colon - 1) >= sizeof port) return -1;
        memcpy(port, colon + 1, (size_t)(end - colon - 1));
        if (!opt_u32(port, &v, 65535) || v == 0) return -1;
        u->port = (uint16_t)v;
    }
    if (slash != NULL && slash[1] != 0 && !uri_decode(u->vhost, slash + 1, strlen(slash + 1)))
        return -1;
    return 0;
}

/* -Q "x-max-length=10,x-queue-type=quorum": integers as long, true/false
 * as booleans, anything else as a string. */
static bool opt_queue_args(perf_opts *o, const char *text)
{
    char buf[PERF_ARGS_BYTES_MAX], *save = NULL;
    if (strlen(text) >= sizeof buf) return false;
    strcpy(buf, text);
    amqp_table_builder b;
    amqp_table_builder_init(&b, o->queue_args, sizeof o->queue_args);
    for (char *kv = strtok_r(buf, ",", &save); kv != NULL; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (eq == NULL || eq == kv) return false;
        *eq = 0;
        const char *v = eq + 1;
        uint64_t n;
        bool flag;
        if (opt_u64(v, &n) && n <= INT64_MAX) amqp_table_add_int64(&b, kv, (int64_t)n);
        else if (opt_bool(v, &flag) && !isdigit((unsigned char)v[0])) amqp_table_add_bool(&b, kv, flag);
        else amqp_table_add_cstr(&b, kv, v);
    }
    amqp_table t;
    if (!amqp_table_builder_finish(&b, &t)) return false;
    o->queue_args_len = t.len;
    return true;
}

static void opts_defaults(perf_opts *o)
{
    memset(o, 0, sizeof *o);
    o->producers = 1;
    o->consumers = 1;
    o->size_bytes = PERF_STAMP_BYTES;
    strcpy(o->exchange, "direct");
    strcpy(o->exchange_type, "direct");
    o->auto_delete = true;
    snprintf(o->id, sizeof o->id, "perf-%d", (int)getpid());
    o->sink_port = 5672;
    strcpy(o->sink_bind, "127.0.0.1");
}

static int opt_apply_number(perf_opts *o, opt_id id, const char *v)
{
    bool ok = true;
    switch (id) {
    case O_PRODUCERS: ok = opt_u32(v, &o->producers, PERF_THREADS_MAX); break;
    case O_CONSUMERS: ok = opt_u32(v, &o->consumers, PERF_THREADS_MAX); break;
    case O_SIZE: ok = opt_u32(v, &o->size_bytes, PERF_MESSAGE_BYTES_MAX); break;
    case O_TIME: ok = opt_double(v, &o->time_s); break;
    case O_PMESSAGES: ok = opt_u64(v, &o->pmessages); break;
    case O_CMESSAGES: ok = opt_u64(v, &o->cmessages); break;
    case O_RATE: ok = opt_double(v, &o->rate_per_s); break;
    case O_CRATE: ok = opt_double(v, &o->consumer_rate_per_s); break;
    case O_CONFIRM: ok = opt_u32(v, &o->confirm_window, 1u << 24); break;
    case O_QOS: ok = opt_u32(v, &o->prefetch, 65535); break;
    case O_MULTIACK: ok = opt_u32(v, &o->multi_ack_every, 1u << 24); break;
    case O_QFROM: ok = opt_u32(v, &o->queue_pattern_from, UINT32_MAX); break;
    case O_QTO: ok = opt_u32(v, &o->queue_pattern_to, UINT32_MAX); break;
    case O_COUNT: ok = opt_u64(v, &o->count); break;
    case O_PORT: {
        uint32_t port = 0;
        ok = opt_u32(v, &port, 65535);
        o->sink_port = (uint16_t)port;
        break;
    }
    default: UNREACHABLE();
    }
    return ok ? 0 : opt_bad("bad number", v);
}

static int opt_apply(perf_opts *o, opt_id id, const char *v)
{
    switch (id) {
    case O_URI:
        if (o->uri_count == PERF_URIS_MAX) return opt_bad("too many -h", v);
        if (perf_uri_parse(&o->uris[o->uri_count], v) != 0) return opt_bad("bad URI", v);
        o->uri_count++;
        return 0;
    case O_QUEUE: return opt_copy(o->queue, v) ? 0 : opt_bad("name too long", v);
    case O_EXCHANGE: return opt_copy(o->exchange, v) ? 0 : opt_bad("name too long", v);
    case O_TYPE: return opt_copy(o->exchange_type, v) ? 0 : opt_bad("name too long", v);
    case O_KEY: return opt_copy(o->routing_key, v) ? 0 : opt_bad("key too long", v);
    case O_QPATTERN: return opt_copy(o->queue_pattern, v) ? 0 : opt_bad("pattern too long", v);
    case O_ID: return opt_copy(o->id, v) ? 0 : opt_bad("id too long", v);
    case O_QARGS: return opt_queue_args(o, v) ? 0 : opt_bad("bad queue arguments", v);
    case O_AUTODELETE: return opt_bool(v, &o->auto_delete) ? 0 : opt_bad("not true/false", v);
    case O_AUTOACK: o->auto_ack = true; return 0;
    case O_PREDECLARED: o->predeclared = true; return 0;
    case O_VERIFY: o->verify = true; return 0;
    case O_JSON: o->json = true; return 0;
    case O_CSV: o->csv_path = v; return 0;
    case O_PLOT: o->plot_path = v; return 0;
    case O_BIND: return opt_copy(o->sink_bind, v) ? 0 : opt_bad("address too long", v);
    case O_FLAG:
        if (strcmp(v, "persistent") == 0) o->persistent = true;
        else if (strcmp(v, "mandatory") == 0) o->mandatory = true;
        else return opt_bad("unknown flag (persistent, mandatory)", v);
        return 0;
    case O_HELP: return 1;
    default: return opt_apply_number(o, id, v);
    }
}

/* Finds argv[*i] in the table; *value is its argument (attached or next). */
static int opt_lookup(int argc, char **argv, int *i, const opt_def **def, const char **value)
{
    const char *a = argv[*i];
    const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
    size_t alen = eq != NULL ? (size_t)(eq - a) : strlen(a);
    const opt_def *attached = NULL;
    *def = NULL;
    *value = eq != NULL ? eq + 1 : NULL;
    for (size_t k = 0; k < ARRAY_LEN(opt_table) && *def == NULL; k++) {
        const opt_def *d = &opt_table[k];
        if (strlen(d->long_name) == alen && strncmp(d->long_name, a, alen) == 0) *def = d;
        else if (d->short_name != NULL && strcmp(d->short_name, a) == 0) *def = d;
        else if (d->short_name != NULL && d->has_arg && strlen(d->short_name) == 2 &&
                 strncmp(d->short_name, a, 2) == 0 && a[2] != 0)
            attached = d;
    }
    if (*def == NULL && attached != NULL) {
        *def = attached;
        *value = a + 2;
    }
    if (*def == NULL) return opt_bad("unknown option", a);
    if ((*def)->has_arg && *value == NULL) {
        if (*i + 1 >= argc) return opt_bad("missing value for", a);
        *value = argv[++*i];
    }
    if (!(*def)->has_arg && *value != NULL) return opt_bad("takes no value", a);
    return 0;
}

static int opts_check(perf_opts *o)
{
    if (o->uri_count == 0) perf_uri_parse(&o->uris[o->uri_count++], "amqp://guest:guest@localhost:5672");
    if (o->verify && (o->pmessages == 0 || o->consumers == 0 || o->producers == 0))
        return opt_bad("--verify", "needs -C, producers and consumers");
    if (o->verify && o->size_bytes < PERF_STAMP_BYTES)
        return opt_bad("--verify", "needs -s 16 or more");
    if (o->verify && o->mandatory) return opt_bad("--verify", "does not combine with mandatory");
    if (o->queue_pattern[0] != 0) {
        if (strstr(o->queue_pattern, "%d") == NULL) return opt_bad("--queue-pattern", "needs %d");
        if (o->queue_pattern_to < o->queue_pattern_from ||
            o->queue_pattern_to - o->queue_pattern_from >= PERF_QUEUES_MAX)
            return opt_bad("--queue-pattern-from/-to", "empty or too wide a range");
        if (o->queue[0] != 0) return opt_bad("--queue-pattern", "does not combine with -u");
    }
    if (o->exchange[0] == 0 && o->queue[0] == 0 && o->queue_pattern[0] == 0 && o->consumers > 0)
        return opt_bad("-e \"\"", "the default exchange needs -u or --queue-pattern");
    if (o->auto_ack && o->multi_ack_every > 0) return opt_bad("-A", "does not combine with -a");
    if (o->prefetch > 0 && o->multi_ack_every > o->prefetch) o->multi_ack_every = o->prefetch;
    if (o->routing_key[0] == 0 && o->queue[0] != 0) strcpy(o->routing_key, o->queue);
    if (o->routing_key[0] == 0) snprintf(o->routing_key, sizeof o->routing_key, "%s", o->id);
    return 0;
}

int perf_opts_parse(perf_opts *o, int argc, char **argv, bool *help)
{
    opts_defaults(o);
    *help = false;
    int i = 1;
    if (argc > 1 && argv[1][0] != '-') {
        size_t k = 0;
        while (k < ARRAY_LEN(cmd_names) && strcmp(cmd_names[k], argv[1]) != 0) k++;
        if (k == ARRAY_LEN(cmd_names)) return opt_bad("unknown sub-command", argv[1]);
        o->cmd = (perf_cmd)k;
        i = 2;
    }
    for (; i < argc; i++) {
        const opt_def *d;
        const char *v;
        if (opt_lookup(argc, argv, &i, &d, &v) != 0) return 2;
        int rc = opt_apply(o, d->id, v);
        if (rc == 1) {
            *help = true;
            return 1;
        }
        if (rc != 0) return rc;
    }
    return opts_check(o);
}

const char *perf_cmd_name(perf_cmd cmd)
{
    ASSERT((size_t)cmd < ARRAY_LEN(cmd_names));
    return cmd_names[cmd];
}
