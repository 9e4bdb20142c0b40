/*
 * amqp-perf's output: the per-second progress line, the final summary, the
 * summary as one JSON object, the per-second series as CSV and as an SVG
 * drawing (throughput over time above, p99 latency below), written by hand.
 * Pure formatting: nothing here reads counters of running threads.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/assert.h"
#include "tools/amqp-perf/perf.h"

enum { SVG_W = 900, SVG_H = 560, SVG_LEFT = 80, SVG_RIGHT = 20, SVG_PANEL_H = 200 };

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

void perf_report_progress(FILE *out, const perf_opts *o, const perf_sample *s)
{
    fprintf(out, "id: %s, time %.3f s, sent: %llu msg/s", o->id, s->t_s,
            (unsigned long long)s->published);
    if (o->confirm_window > 0)
        fprintf(out, ", confirmed: %llu msg/s, nacked: %llu msg/s", (unsigned long long)s->confirmed,
                (unsigned long long)s->nacked);
    if (o->mandatory) fprintf(out, ", returned: %llu msg/s", (unsigned long long)s->returned);
    fprintf(out, ", received: %llu msg/s", (unsigned long long)s->consumed);
    if (s->consumed > 0)
        fprintf(out, ", latency p50/p99: %.0f/%.0f us", us(s->latency_p50_ns), us(s->latency_p99_ns));
    if (s->confirmed + s->nacked > 0)
        fprintf(out, ", confirm latency p50/p99: %.0f/%.0f us", us(s->confirm_p50_ns),
                us(s->confirm_p99_ns));
    fputc('\n', out);
    fflush(out);
}

static const double report_pcts[] = {50, 75, 95, 99, 99.9};
static const char *const report_pct_names[] = {"p50", "p75", "p95", "p99", "p99_9"};

static void report_hist_line(FILE *out, const char *what, const perf_hist *h)
{
    fprintf(out, "  %-10s", what);
    for (size_t i = 0; i < ARRAY_LEN(report_pcts); i++)
        fprintf(out, " %s %.0f us", report_pct_names[i], us(perf_hist_percentile(h, report_pcts[i])));
    fprintf(out, " max %.0f us (%llu samples)\n", us(h->max_ns), (unsigned long long)h->total);
}

static double rate(uint64_t n, double s)
{
    return s > 0 ? (double)n / s : 0;
}

void perf_report_summary(FILE *out, const perf_opts *o, const perf_totals *t)
{
    fprintf(out, "summary: id %s, %.3f s, %u producers, %u consumers, %u bytes\n", o->id,
            t->elapsed_s, o->producers, o->consumers, o->size_bytes);
    const struct {
        const char *name;
        uint64_t n;
    } rows[] = {{"published", t->published}, {"confirmed", t->confirmed}, {"nacked", t->nacked},
                {"returned", t->returned},   {"consumed", t->consumed}};
    for (size_t i = 0; i < ARRAY_LEN(rows); i++)
        fprintf(out, "  %-10s %12llu  %12.0f msg/s\n", rows[i].name, (unsigned long long)rows[i].n,
                rate(rows[i].n, t->elapsed_s));
    if (t->foreign > 0)
        fprintf(out, "  %-10s %12llu  (not from this run)\n", "foreign", (unsigned long long)t->foreign);
    if (t->latency.total > 0) report_hist_line(out, "latency", &t->latency);
    if (t->confirm_latency.total > 0) report_hist_line(out, "confirm", &t->confirm_latency);
    if (t->verified) fprintf(out, "  verify     %s\n", t->verify_ok ? "ok" : "FAILED");
    fflush(out);
}

void perf_json_string(FILE *out, const char *s)
{
    for (; *s != 0; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
        else if (ch < 0x20) fprintf(out, "\\u%04x", ch);
        else fputc(ch, out);
    }
}

static void report_json_hist(FILE *out, const char *name, const perf_hist *h)
{
    fprintf(out, ", \"%s\": {", name);
    for (size_t i = 0; i < ARRAY_LEN(report_pcts); i++)
        fprintf(out, "\"%s\": %.3f, ", report_pct_names[i], us(perf_hist_percentile(h, report_pcts[i])));
    fprintf(out, "\"max\": %.3f, \"count\": %llu}", us(h->max_ns), (unsigned long long)h->total);
}

void perf_report_json(FILE *out, const perf_opts *o, const perf_totals *t)
{
    fputs("{\"id\": \"", out);
    perf_json_string(out, o->id);
    fprintf(out, "\", \"scenario\": \"throughput\", \"elapsed_s\": %.3f", t->elapsed_s);
    fprintf(out, ", \"publish_elapsed_s\": %.3f", t->publish_elapsed_s);
    fprintf(out, ", \"producers\": %u, \"consumers\": %u, \"size_bytes\": %u", o->producers,
            o->consumers, o->size_bytes);
    fprintf(out, ", \"published\": %llu, \"confirmed\": %llu, \"nacked\": %llu",
            (unsigned long long)t->published, (unsigned long long)t->confirmed,
            (unsigned long long)t->nacked);
    fprintf(out, ", \"returned\": %llu, \"consumed\": %llu, \"foreign\": %llu",
            (unsigned long long)t->returned, (unsigned long long)t->consumed,
            (unsigned long long)t->foreign);
    fprintf(out, ", \"publish_rate\": %.1f, \"confirm_rate\": %.1f, \"consume_rate\": %.1f",
            rate(t->published, t->elapsed_s), rate(t->confirmed, t->elapsed_s),
            rate(t->consumed, t->elapsed_s));
    report_json_hist(out, "latency_us", &t->latency);
    report_json_hist(out, "confirm_latency_us", &t->confirm_latency);
    fprintf(out, ", \"verify\": %s}\n", !t->verified ? "null" : t->verify_ok ? "true" : "false");
    fflush(out);
}

int perf_report_csv(const char *path, const perf_sample *s, uint32_t n)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "amqp-perf: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("time_s,published,confirmed,nacked,returned,consumed,latency_p50_us,latency_p99_us,"
          "confirm_p50_us,confirm_p99_us\n",
          f);
    for (uint32_t i = 0; i < n; i++)
        fprintf(f, "%.3f,%llu,%llu,%llu,%llu,%llu,%.1f,%.1f,%.1f,%.1f\n", s[i].t_s,
                (unsigned long long)s[i].published, (unsigned long long)s[i].confirmed,
                (unsigned long long)s[i].nacked, (unsigned long long)s[i].returned,
                (unsigned long long)s[i].consumed, us(s[i].latency_p50_ns), us(s[i].latency_p99_ns),
                us(s[i].confirm_p50_ns), us(s[i].confirm_p99_ns));
    return fclose(f) == 0 ? 0 : -1;
}

/* 1, 2 or 5 times a power of ten, at least v. */
static double svg_nice(double v)
{
    double p = 1;
    while (p * 10 <= v) p *= 10;
    while (p > v && p > 1e-9) p /= 10;
    if (v <= p) return p > 0 ? p : 1;
    if (v <= 2 * p) return 2 * p;
    if (v <= 5 * p) return 5 * p;
    return 10 * p;
}

typedef struct svg_series {
    size_t field; /* offsetof a uint64_t in perf_sample */
    double scale; /* divides the value */
    const char *name, *color;
} svg_series;

static double svg_value(const perf_sample *s, const svg_series *k)
{
    uint64_t v;
    memcpy(&v, (const char *)s + k->field, sizeof v);
    return (double)v / k->scale;
}

static void svg_panel(FILE *f, int top, const char *title, const perf_sample *s, uint32_t n,
                      const svg_series *ks, size_t nk)
{
    const int plot_w = SVG_W - SVG_LEFT - SVG_RIGHT;
    double xmax = n > 0 ? s[n - 1].t_s : 1, ymax = 0;
    for (uint32_t i = 0; i < n; i++)
        for (size_t k = 0; k < nk; k++)
            if (svg_value(&s[i], &ks[k]) > ymax) ymax = svg_value(&s[i], &ks[k]);
    ymax = svg_nice(ymax > 0 ? ymax : 1);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\">%s</text>\n", SVG_LEFT, top - 8, title);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n",
            SVG_LEFT, top, plot_w, SVG_PANEL_H);
    for (int g = 0; g <= 4; g++) {
        double y = top + SVG_PANEL_H - SVG_PANEL_H * g / 4.0;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", SVG_LEFT,
                y, SVG_LEFT + plot_w, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.6g</text>\n",
                SVG_LEFT - 4, y + 4, ymax * g / 4.0);
    }
    for (int g = 0; g <= 10; g++)
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%.3g</text>\n",
                SVG_LEFT + plot_w * g / 10.0, top + SVG_PANEL_H + 14, xmax * g / 10.0);
    for (size_t k = 0; k < nk; k++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", ks[k].color);
        for (uint32_t i = 0; i < n; i++)
            fprintf(f, "%.1f,%.1f ", SVG_LEFT + plot_w * s[i].t_s / xmax,
                    top + SVG_PANEL_H - SVG_PANEL_H * svg_value(&s[i], &ks[k]) / ymax);
        fputs("\"/>\n", f);
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"%s\">%s</text>\n",
                SVG_LEFT + 300 + 150 * (int)k, top - 8, ks[k].color, ks[k].name);
    }
}

int perf_report_svg(const char *path, const perf_opts *o, const perf_sample *s, uint32_t n)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "amqp-perf: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            SVG_W, SVG_H);
    fputs("<text x=\"10\" y=\"20\" font-size=\"15\">amqp-perf ", f);
    for (const char *c = o->id; *c != 0; c++) {
        if (*c == '<') fputs("&lt;", f);
        else if (*c == '>') fputs("&gt;", f);
        else if (*c == '&') fputs("&amp;", f);
        else fputc(*c, f);
    }
    fputs("</text>\n", f);
    const svg_series rates[] = {
        {offsetof(perf_sample, published), 1, "published", "#1f77b4"},
        {offsetof(perf_sample, consumed), 1, "consumed", "#2ca02c"},
        {offsetof(perf_sample, confirmed), 1, "confirmed", "#ff7f0e"},
    };
    const svg_series lats[] = {
        {offsetof(perf_sample, latency_p99_ns), 1000, "latency p99", "#d62728"},
        {offsetof(perf_sample, confirm_p99_ns), 1000, "confirm p99", "#9467bd"},
    };
    svg_panel(f, 60, "msg/s", s, n, rates, o->confirm_window > 0 ? 3 : 2);
    svg_panel(f, 60 + SVG_PANEL_H + 60, "p99 latency, us (x: seconds)", s, n, lats,
              o->confirm_window > 0 ? 2 : 1);
    fputs("</svg>\n", f);
    return fclose(f) == 0 ? 0 : -1;
}
