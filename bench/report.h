/* bench/report.h: the figures a run measures, and how they are shown.
 *
 * Phases record figures under stable keys ("raw.r64k.t1.mbps", "cache.get64k.t4.p99_us"),
 * each with a label, a unit and the I/O mode in effect. At the end the report prints every
 * figure, the cache-to-roofline ratios and the targets with PASS/MISS, and can write the same
 * as JSON.
 */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#define MODE_RAW "raw O_DIRECT"

/* Records a figure (a later one with the same key replaces it). `group` is the heading it
 * is printed under; strings are copied. Returns 0 or -1 (too many figures). */
int fig_set(const char *group, const char *key, const char *label, double value,
            const char *unit, const char *mode);
bool fig_get(const char *key, double *value, const char **mode);

void report_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void report_meta(const char *name, const char *value);   /* shown at the top, and in JSON */

/* Computes the ratios (as figures of group "ratio") from the figures present. */
void report_compute_ratios(void);
void report_print(FILE *out);
int report_write_json(const char *path, double elapsed_sec, const char *error);

#endif
