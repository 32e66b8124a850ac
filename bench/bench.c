/* bench/bench.c: the dcache benchmark.
 *
 *   bench [--dir DIR] [--json FILE] [--quick]
 *
 * Measures, in one run and on files in DIR (default: a new directory under the working
 * tree's build/, so on the file system of the working tree, never /tmp):
 *   - the roofline: raw O_DIRECT pwrite/pread on one 1 GiB file (raw.c), and the cache
 *     through the C interface: puts per value size, gets at 1 and 4 threads with latency
 *     percentiles, gets beside a writer, CPU per GB, page-cache residency in direct and
 *     buffered mode (throughput.c; raw and cache reads alternate in short slices);
 *   - index memory per entry and reopen times after a clean close and after kill -9
 *     (cache_recovery.c);
 * then prints every figure with its unit and I/O mode, the cache figures as ratios to their
 * roofline, and the targets with PASS/MISS (report.c). Every run goes through one driver
 * (driver.c). Exit status: 0 whether targets pass or not, 1 on an error (a failed call, a
 * value that did not read back byte for byte), 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "phases.h"
#include "report.h"

#ifndef BENCH_DEFAULT_PARENT
#define BENCH_DEFAULT_PARENT "build"
#endif

typedef struct options {
    const char *dir, *json;
    bool quick;
} options;

/* ---- shared by the phases ------------------------------------------------------------- */
const char *bench_path(const bench_config *cfg, const char *name, char *buf)
{
    int n = snprintf(buf, PATH_MAX, "%s/%s", cfg->dir, name);
    if (n < 0 || n >= PATH_MAX)
        buf[0] = '\0'; /* cannot happen: dir leaves room for the names in phases.h */
    return buf;
}

void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("-- ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int record_one(const char *group, const char *key, const char *suffix,
                      const char *label, const char *what, double value, const char *unit,
                      const char *mode)
{
    char k[96], l[160];
    snprintf(k, sizeof k, "%s.%s", key, suffix);
    snprintf(l, sizeof l, "%s%s", label, what);
    return fig_set(group, k, l, value, unit, mode);
}

int record_run(const char *group, const char *key, const char *label, const run_result *r,
               const char *mode, unsigned what)
{
    int rc = 0;
    if (what & REC_MBPS)
        rc |= record_one(group, key, "mbps", label, "", result_mbps(r), "MB/s", mode);
    if (what & REC_OPS)
        rc |= record_one(group, key, "ops", label, "", result_ops_per_sec(r), "ops/s", mode);
    if (what & REC_LAT) {
        rc |= record_one(group, key, "p50_us", label, ": p50", r->lat.p50_us, "us", mode);
        rc |= record_one(group, key, "p99_us", label, ": p99", r->lat.p99_us, "us", mode);
        rc |= record_one(group, key, "p999_us", label, ": p99.9", r->lat.p999_us, "us", mode);
    }
    if (what & REC_CPU) {
        rc |= record_one(group, key, "cpu_s_per_gb", label, ": CPU per GB moved",
                         result_cpu_per_gb(r), "s/GB", mode);
        rc |= record_one(group, key, "cpu_us_per_op", label, ": CPU per operation",
                         r->ops ? r->cpu_seconds / (double)r->ops * 1e6 : 0, "us", mode);
    }
    return rc ? -1 : 0;
}

/* ---- arguments and configuration ------------------------------------------------------ */
static void usage(FILE *out)
{
    fprintf(out, "usage: bench [--dir DIR] [--json FILE] [--quick]\n"
                 "  --dir DIR    where the test files go (default: a new directory under\n"
                 "               %s, removed at the end)\n"
                 "  --json FILE  also write every figure, ratio and target as JSON\n"
                 "  --quick      shorter timed tests and fills (a smoke test)\n",
            BENCH_DEFAULT_PARENT);
}

/* 0 to run, 1 after --help, -1 on a bad argument. */
static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quick") == 0) {
            o->quick = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if ((strcmp(a, "--dir") == 0 || strcmp(a, "--json") == 0) && i + 1 < argc) {
            *(strcmp(a, "--dir") == 0 ? &o->dir : &o->json) = argv[++i];
        } else {
            fprintf(stderr, "bench: bad argument '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

static void configure(bench_config *cfg, bool quick)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->quick = quick;
    cfg->rounds = quick ? 1 : 4;
    cfg->slice_sec = quick ? 1.0 : 1.5;
    cfg->raw_file_bytes = GIB;
    cfg->cache_capacity = GIB;
    cfg->put_class_bytes = quick ? 256 * MIB : 600 * MIB;
    cfg->index_entries = 1000000;
    cfg->crash_entries = quick ? 20000 : 100000;
    cfg->buffered_capacity = 256 * MIB;
    cfg->buffered_bytes = quick ? 96 * MIB : 150 * MIB;
    cfg->verify_samples = 1000;
}

/* Uses --dir, or creates a directory under BENCH_DEFAULT_PARENT (*created = true). */
static int prepare_dir(bench_config *cfg, const options *o, bool *created)
{
    *created = false;
    if (o->dir) {
        if (mkdir(o->dir, 0755) != 0 && errno != EEXIST)
            return sys_fail(o->dir);
        if ((size_t)snprintf(cfg->dir, sizeof cfg->dir, "%s", o->dir) >= sizeof cfg->dir)
            return bench_fail("--dir: path too long");
        return 0;
    }
    if (mkdir(BENCH_DEFAULT_PARENT, 0755) != 0 && errno != EEXIST)
        return sys_fail(BENCH_DEFAULT_PARENT);
    snprintf(cfg->dir, sizeof cfg->dir, "%s/bench.XXXXXX", BENCH_DEFAULT_PARENT);
    if (!mkdtemp(cfg->dir))
        return sys_fail("mkdtemp");
    *created = true;
    return 0;
}

static void remove_files(const bench_config *cfg, bool created)
{
    static const char *const files[] = {FILE_RAW,   FILE_PUT4K,  FILE_PUT64K,
                                        FILE_PUT1M, FILE_INDEX, FILE_BUFFERED};
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        remove_if_present(bench_path(cfg, files[i], path));
    if (created && rmdir(cfg->dir) != 0)
        sys_fail(cfg->dir);
}

/* The 1-minute load average: other work on the machine shows in every figure. */
static void record_load(const char *name)
{
    double load[1];
    char buf[32];
    if (getloadavg(load, 1) == 1) {
        snprintf(buf, sizeof buf, "%.2f", load[0]);
        report_meta(name, buf);
    }
}

static void record_meta(const bench_config *cfg)
{
    char buf[320], fs[32];
    struct utsname u;
    snprintf(buf, sizeof buf, "%s (header %s)", dcache_version(), DCACHE_VERSION_STRING);
    report_meta("dcache version", buf);
    report_meta("directory", cfg->dir);
    report_meta("file system", fs_name(cfg->dir, fs));
    if (uname(&u) == 0) {
        snprintf(buf, sizeof buf, "%s %s %s", u.sysname, u.release, u.machine);
        report_meta("kernel", buf);
    }
    snprintf(buf, sizeof buf, "%ld", sysconf(_SC_NPROCESSORS_ONLN));
    report_meta("CPUs online", buf);
    snprintf(buf, sizeof buf, "%s: %u round(s), read slices of %.1f s",
             cfg->quick ? "quick" : "full", cfg->rounds, cfg->slice_sec);
    report_meta("run", buf);
    record_load("load average at start");
}

static void record_method_notes(const bench_config *cfg)
{
    report_note("MB = 10^6 bytes, MiB = 2^20; latency = one call timed with "
                "CLOCK_MONOTONIC, nearest-rank percentiles");
    report_note("CPU per GB = getrusage(RUSAGE_SELF) user+sys over the run (whole "
                "process) / 10^9 bytes moved");
    report_note("roofline file and cache files are created new (unlinked first): no page "
                "cache to drop, posix_fadvise not used");
    report_note("puts: %llu MiB per value size into a fresh %llu MiB cache (no eviction), "
                "1 thread", (unsigned long long)(cfg->put_class_bytes / MIB),
                (unsigned long long)(cfg->cache_capacity / MIB));
    report_note("raw and cache measurements alternate in %u round(s), so drift falls on both "
                "sides of a ratio: writes 1/%u of their bytes per slice, each slice ending with "
                "its fdatasync or dcache_flush (timed); reads %.1f s per slice",
                cfg->rounds, cfg->rounds, cfg->slice_sec);
    report_note("beside a writer: 1 reader (2 CPUs here); raw: 1 MiB O_DIRECT pwrites over the "
                "file; cache: 64 KiB puts re-putting the stored keys in order, same bytes");
    report_note("p99 'without' = the 1-thread get run of the same rounds; the raw ratio shows "
                "what the disk itself does to reads beside an unthrottled writer");
    report_note("each fill and reopen is checked: entry counts, and %u random gets plus the "
                "first and last key compared byte for byte", cfg->verify_samples);
}

/* ---- main ----------------------------------------------------------------------------- */
typedef struct phase {
    const char *name;
    int (*run)(const bench_config *cfg);
} phase;

static const phase phases[] = {
    {"file layer", phase_file_layer},
    {"throughput", phase_throughput},
    {"index and reopen", phase_recovery},
    {"buffered residency", phase_buffered_residency},
};

/* Runs the phases in order; the name of the one that failed, or NULL. */
static const char *run_phases(const bench_config *cfg)
{
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++)
        if (phases[i].run(cfg) != 0)
            return phases[i].name;
    return NULL;
}

int main(int argc, char **argv)
{
    options o;
    int a = parse_args(argc, argv, &o);
    if (a != 0)
        return a > 0 ? 0 : 2;
    static bench_config cfg;
    configure(&cfg, o.quick);
    double t0 = now_sec();
    bool created;
    if (prepare_dir(&cfg, &o, &created) != 0)
        return 1;
    if (pool_init(&cfg.pool, MIB) != 0) {
        remove_files(&cfg, created);
        return 1;
    }
    record_meta(&cfg);
    record_method_notes(&cfg);
    const char *failed = run_phases(&cfg);
    record_load("load average at end");
    remove_files(&cfg, created);
    pool_free(&cfg.pool);

    char error[128] = "";
    if (failed)
        snprintf(error, sizeof error, "phase '%s' failed: figures are partial", failed);
    double elapsed = now_sec() - t0;
    report_compute_ratios();
    report_print(stdout);
    printf("\nelapsed: %.1f s%s%s\n", elapsed, failed ? "\nERROR: " : "", error);
    int rc = failed ? 1 : 0;
    if (o.json && report_write_json(o.json, elapsed, failed ? error : NULL) != 0)
        rc = 1;
    return rc;
}
