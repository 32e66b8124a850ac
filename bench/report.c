/* bench/report.c: see report.h. */
#define _GNU_SOURCE
#include "report.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

#define MAX_FIGURES 320
#define MAX_NOTES 24
#define MAX_META 16
#define TEXT 112

typedef struct figure {
    char group[TEXT], key[64], label[TEXT], unit[16], mode[24];
    double value;
} figure;

static figure figures[MAX_FIGURES];
static size_t n_figures;
static char notes[MAX_NOTES][2 * TEXT];
static size_t n_notes;
static char meta[MAX_META][2][TEXT];
static size_t n_meta;

/* ---- the cache-to-roofline ratios and the targets of the issue --------------------------- */
typedef struct ratio_def {
    const char *key, *label, *num, *den;
} ratio_def;

static const ratio_def ratios[] = {
    {"ratio.put64k", "64 KiB puts / raw sequential write (MB/s)", "cache.put64k.mbps",
     "raw.seqwrite.mbps"},
    {"ratio.put1m", "1 MiB puts / raw sequential write (MB/s)", "cache.put1m.mbps",
     "raw.seqwrite.mbps"},
    {"ratio.put4k", "4 KiB puts / raw sequential write (MB/s)", "cache.put4k.mbps",
     "raw.seqwrite.mbps"},
    {"ratio.get64k.t1", "64 KiB gets, 1 thread / raw 64 KiB reads, 1 thread (MB/s)",
     "cache.get64k.t1.mbps", "raw.r64k.t1.mbps"},
    {"ratio.get64k.t1.samefile", "  the same gets / raw 64 KiB reads of the cache's own file",
     "cache.get64k.t1.mbps", "raw.r64k.cachefile.t1.mbps"},
    {"ratio.get64k.t4", "64 KiB gets, 4 threads / raw 64 KiB reads, 4 threads (MB/s)",
     "cache.get64k.t4.mbps", "raw.r64k.t4.mbps"},
    {"ratio.get4k", "4 KiB gets / raw 4 KiB reads, 1 thread (ops/s)", "cache.get4k.t1.ops",
     "raw.r4k.t1.ops"},
    {"ratio.queue.d1.p50", "64 KiB gets through the queue at depth 1 / dcache_get (p50)",
     "cache.queue64k.d1.p50_us", "cache.get64k.t1.p50_us"},
    {"ratio.queue64k.d1", "64 KiB queued gets / raw io_uring reads, depth 1 (MB/s)",
     "cache.queue64k.d1.mbps", "raw.uring64k.d1.mbps"},
    {"ratio.queue64k.d8", "64 KiB queued gets / raw io_uring reads, depth 8 (MB/s)",
     "cache.queue64k.d8.mbps", "raw.uring64k.d8.mbps"},
    {"ratio.queue64k.d32", "64 KiB queued gets / raw io_uring reads, depth 32 (MB/s)",
     "cache.queue64k.d32.mbps", "raw.uring64k.d32.mbps"},
    {"ratio.queue64k.d32.entryshape",
     "  the same / raw io_uring reads shaped as the entries, depth 32 (ops/s)",
     "cache.queue64k.d32.ops", "raw.uring64k.entryshape.d32.ops"},
    {"ratio.queue4k.d1", "4 KiB queued gets / raw io_uring reads, depth 1 (ops/s)",
     "cache.queue4k.d1.ops", "raw.uring4k.d1.ops"},
    {"ratio.queue4k.d8", "4 KiB queued gets / raw io_uring reads, depth 8 (ops/s)",
     "cache.queue4k.d8.ops", "raw.uring4k.d8.ops"},
    {"ratio.queue4k.d32", "4 KiB queued gets / raw io_uring reads, depth 32 (ops/s)",
     "cache.queue4k.d32.ops", "raw.uring4k.d32.ops"},
    {"ratio.queue4k.d32.entryshape",
     "  the same / raw io_uring reads shaped as the entries, depth 32 (ops/s)",
     "cache.queue4k.d32.ops", "raw.uring4k.entryshape.d32.ops"},
    {"ratio.p99_writer", "64 KiB get p99 beside a writer / alone", "cache.mixed.p99_us",
     "cache.get64k.t1.p99_us"},
    {"ratio.raw_p99_writer", "  the disk's own: raw 64 KiB read p99 beside a writer / alone",
     "raw.mixed.p99_us", "raw.r64k.t1.p99_us"},
    {"ratio.file.w1m", "file layer: 1 MiB aligned pwrite / raw 1 MiB pwrite (MB/s)",
     "file.w1m.mbps", "raw.file.w1m.mbps"},
    {"ratio.file.w64k1", "file layer: 64 KiB+1 unaligned pwrite / raw 64 KiB pwrite (MB/s)",
     "file.w64k1.mbps", "raw.file.w64k.mbps"},
    {"ratio.file.r1m", "file layer: 1 MiB aligned pread / raw 1 MiB pread (MB/s)",
     "file.r1m.mbps", "raw.file.r1m.mbps"},
    {"ratio.file.r64k1", "file layer: 64 KiB+1 unaligned pread / raw 64 KiB pread (MB/s)",
     "file.r64k1.mbps", "raw.file.r64k.mbps"},
};

typedef struct target_def {
    const char *label, *key, *op;
    double threshold;
    const char *need_mode;   /* NULL = any */
} target_def;

static const target_def targets[] = {
    {"64 KiB puts >= 0.9x raw sequential write", "ratio.put64k", ">=", 0.9, NULL},
    {"1 MiB puts >= 0.9x raw sequential write", "ratio.put1m", ">=", 0.9, NULL},
    {"4 KiB puts >= 0.5x raw sequential write", "ratio.put4k", ">=", 0.5, NULL},
    {"64 KiB gets, 1 thread >= 0.9x raw", "ratio.get64k.t1", ">=", 0.9, NULL},
    {"64 KiB gets, 4 threads >= 0.85x raw", "ratio.get64k.t4", ">=", 0.85, NULL},
    {"4 KiB gets >= 0.8x raw 4 KiB ops", "ratio.get4k", ">=", 0.8, NULL},
    {"queue p50 at depth 1 <= 1.05x dcache_get p50", "ratio.queue.d1.p50", "<=", 1.05, NULL},
    {"64 KiB queued gets, depth 32 >= 0.9x raw io_uring", "ratio.queue64k.d32", ">=", 0.9, NULL},
    {"4 KiB queued gets, depth 32 >= 0.8x raw io_uring", "ratio.queue4k.d32", ">=", 0.8, NULL},
    {"get p99 with writer <= 2x p99 without", "ratio.p99_writer", "<=", 2.0, NULL},
    {"page-cache residency, direct mode <= 1 %", "cache.residency.direct.pct", "<=", 1.0,
     "direct"},
    {"index memory <= 16 bytes/entry", "cache.index.bytes_per_entry", "<=", 16.0, NULL},
    {"clean reopen of 1M entries <= 1 s", "cache.reopen.clean.sec", "<=", 1.0, NULL},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- storage ---------------------------------------------------------------------------- */
static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static figure *find_figure(const char *key)
{
    for (size_t i = 0; i < n_figures; i++)
        if (strcmp(figures[i].key, key) == 0)
            return &figures[i];
    return NULL;
}

int fig_set(const char *group, const char *key, const char *label, double value,
            const char *unit, const char *mode)
{
    figure *f = find_figure(key);
    if (!f) {
        if (n_figures == MAX_FIGURES)
            return bench_fail("too many figures (raise MAX_FIGURES)");
        f = &figures[n_figures++];
    }
    copy_text(f->group, sizeof f->group, group);
    copy_text(f->key, sizeof f->key, key);
    copy_text(f->label, sizeof f->label, label);
    copy_text(f->unit, sizeof f->unit, unit);
    copy_text(f->mode, sizeof f->mode, mode);
    f->value = value;
    return 0;
}

bool fig_get(const char *key, double *value, const char **mode)
{
    const figure *f = find_figure(key);
    if (!f)
        return false;
    if (value)
        *value = f->value;
    if (mode)
        *mode = f->mode;
    return true;
}

void report_note(const char *fmt, ...)
{
    if (n_notes == MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(notes[n_notes++], sizeof notes[0], fmt, ap);
    va_end(ap);
}

void report_meta(const char *name, const char *value)
{
    if (n_meta == MAX_META)
        return;
    copy_text(meta[n_meta][0], TEXT, name);
    copy_text(meta[n_meta][1], TEXT, value);
    n_meta++;
}

void report_compute_ratios(void)
{
    for (size_t i = 0; i < COUNT(ratios); i++) {
        double num, den;
        const char *mode;
        if (!fig_get(ratios[i].num, &num, &mode) || !fig_get(ratios[i].den, &den, NULL) ||
            den <= 0)
            continue;
        fig_set("ratio", ratios[i].key, ratios[i].label, num / den, "x", mode);
    }
}

/* ---- text ------------------------------------------------------------------------------- */
static void format_value(char *buf, size_t cap, double v, const char *unit)
{
    double a = v < 0 ? -v : v;
    bool whole = strcmp(unit, "count") == 0 || strcmp(unit, "flag") == 0;
    if (a >= 1000 || whole)
        snprintf(buf, cap, "%.0f", v);
    else if (a >= 10)
        snprintf(buf, cap, "%.1f", v);
    else
        snprintf(buf, cap, "%.3f", v);
}

static const char *group_title(const char *group)
{
    if (strcmp(group, "ratio") == 0)
        return "cache figures as ratios to their roofline (same run)";
    return group;
}

/* Prints the figures of one group, in the order they were recorded. */
static void print_group(FILE *out, const char *group)
{
    fprintf(out, "\n== %s ==\n", group_title(group));
    fprintf(out, "  %-64s %14s  %-7s %s\n", "figure", "value", "unit", "I/O mode");
    for (size_t i = 0; i < n_figures; i++) {
        if (strcmp(figures[i].group, group) != 0)
            continue;
        char v[32];
        format_value(v, sizeof v, figures[i].value, figures[i].unit);
        fprintf(out, "  %-64s %14s  %-7s %s\n", figures[i].label, v, figures[i].unit,
                figures[i].mode);
    }
}

static bool group_seen_before(size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(figures[j].group, figures[i].group) == 0)
            return true;
    return false;
}

/* "PASS", "MISS" or "n/a" for a target, with the value found. */
static const char *target_verdict(const target_def *t, double *value, const char **mode)
{
    if (!fig_get(t->key, value, mode))
        return "n/a";
    if (t->need_mode && strcmp(*mode, t->need_mode) != 0)
        return "MISS";
    bool pass = strcmp(t->op, ">=") == 0 ? *value >= t->threshold : *value <= t->threshold;
    return pass ? "PASS" : "MISS";
}

static void print_targets(FILE *out)
{
    fprintf(out, "\n== targets ==\n");
    for (size_t i = 0; i < COUNT(targets); i++) {
        double v = 0;
        const char *mode = "";
        const char *verdict = target_verdict(&targets[i], &v, &mode);
        char vs[32] = "-";
        if (strcmp(verdict, "n/a") != 0)
            format_value(vs, sizeof vs, v, "");
        fprintf(out, "  %-4s  %-46s measured %10s  (%s)%s\n", verdict, targets[i].label, vs,
                mode, targets[i].need_mode && strcmp(verdict, "n/a") != 0 &&
                                  strcmp(mode, targets[i].need_mode) != 0
                              ? "  <- wrong I/O mode"
                              : "");
    }
}

void report_print(FILE *out)
{
    fprintf(out, "\n==================== dcache benchmark ====================\n");
    for (size_t i = 0; i < n_meta; i++)
        fprintf(out, "  %-22s %s\n", meta[i][0], meta[i][1]);
    for (size_t i = 0; i < n_figures; i++)
        if (!group_seen_before(i))
            print_group(out, figures[i].group);
    print_targets(out);
    if (n_notes)
        fprintf(out, "\n== notes ==\n");
    for (size_t i = 0; i < n_notes; i++)
        fprintf(out, "  - %s\n", notes[i]);
    fflush(out);
}

/* ---- JSON ------------------------------------------------------------------------------- */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double v)
{
    if (v == (double)(int64_t)v && (v < 0 ? -v : v) < 1e15)
        fprintf(f, "%lld", (long long)v);
    else
        fprintf(f, "%.6g", v);
}

static void json_figures(FILE *f)
{
    fprintf(f, "  \"figures\": {");
    for (size_t i = 0; i < n_figures; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        json_string(f, figures[i].key);
        fprintf(f, ": {\"value\": ");
        json_number(f, figures[i].value);
        fprintf(f, ", \"unit\": ");
        json_string(f, figures[i].unit);
        fprintf(f, ", \"io_mode\": ");
        json_string(f, figures[i].mode);
        fprintf(f, ", \"group\": ");
        json_string(f, figures[i].group);
        fprintf(f, ", \"label\": ");
        json_string(f, figures[i].label);
        fprintf(f, "}");
    }
    fprintf(f, "\n  },\n");
}

static void json_targets(FILE *f)
{
    fprintf(f, "  \"targets\": [");
    for (size_t i = 0; i < COUNT(targets); i++) {
        double v = 0;
        const char *mode = "";
        const char *verdict = target_verdict(&targets[i], &v, &mode);
        fprintf(f, "%s\n    {\"target\": ", i ? "," : "");
        json_string(f, targets[i].label);
        fprintf(f, ", \"key\": ");
        json_string(f, targets[i].key);
        fprintf(f, ", \"op\": ");
        json_string(f, targets[i].op);
        fprintf(f, ", \"threshold\": ");
        json_number(f, targets[i].threshold);
        fprintf(f, ", \"value\": ");
        if (strcmp(verdict, "n/a") == 0)
            fprintf(f, "null");
        else
            json_number(f, v);
        fprintf(f, ", \"result\": ");
        json_string(f, verdict);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ],\n");
}

static void json_meta_and_notes(FILE *f)
{
    fprintf(f, "  \"meta\": {");
    for (size_t i = 0; i < n_meta; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        json_string(f, meta[i][0]);
        fprintf(f, ": ");
        json_string(f, meta[i][1]);
    }
    fprintf(f, "\n  },\n  \"notes\": [");
    for (size_t i = 0; i < n_notes; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        json_string(f, notes[i]);
    }
    fprintf(f, "\n  ],\n");
}

int report_write_json(const char *path, double elapsed_sec, const char *error)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return sys_fail(path);
    fprintf(f, "{\n");
    json_meta_and_notes(f);
    json_figures(f);
    json_targets(f);
    fprintf(f, "  \"elapsed_seconds\": ");
    json_number(f, elapsed_sec);
    fprintf(f, ",\n  \"error\": ");
    if (error)
        json_string(f, error);
    else
        fprintf(f, "null");
    fprintf(f, "\n}\n");
    if (fclose(f) != 0)
        return sys_fail(path);
    return 0;
}
