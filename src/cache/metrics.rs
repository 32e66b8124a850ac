//! Latency histograms, and the two expositions of [`Stats`]: Prometheus text (format 0.0.4,
//! what node_exporter's textfile collector and every scraper read) and JSON with the field
//! names of the C `dcache_stats`.
//!
//! A histogram is an array of atomic counters over log-scale buckets (powers of two of
//! nanoseconds), striped by thread: recording is a `leading_zeros` and two relaxed additions,
//! without a lock or an allocation, so that gets can be timed on their hot path.

use super::stats::Stats;
use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Instant;

/// Finite buckets of a latency histogram: upper bounds 2^8 ns (256 ns) to 2^34 ns (17.2 s),
/// doubling; one more bucket counts what took longer.
pub const LATENCY_BUCKETS: usize = 27;
const FIRST_BOUND_LOG2: u32 = 8;

/// A point in time to measure an operation from ([`LatencyHistogram::record_elapsed`]): the
/// CPU's time-stamp counter where the kernel keeps time by it (a third of the cost of a
/// clock_gettime), else the monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Stamp(u64);

/// How stamps become nanoseconds, chosen once per process.
struct StampClock {
    /// Nanoseconds per tick of the time-stamp counter, times 2^32; None: stamps are
    /// nanoseconds since `epoch`.
    tsc_ns_per_tick_q32: Option<u64>,
    epoch: Instant,
}

static STAMP_CLOCK: OnceLock<StampClock> = OnceLock::new();

impl StampClock {
    fn get() -> &'static StampClock {
        STAMP_CLOCK.get_or_init(|| StampClock {
            tsc_ns_per_tick_q32: calibrate_tsc(),
            epoch: Instant::now(),
        })
    }
}

/// The time-stamp counter's nanoseconds per tick (times 2^32), measured against the
/// monotonic clock over 2 ms, if the kernel's clocksource is the TSC: it then runs at a
/// constant rate and agrees between CPUs.
#[cfg(target_arch = "x86_64")]
fn calibrate_tsc() -> Option<u64> {
    let source = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
    if std::fs::read_to_string(source).ok()?.trim() != "tsc" {
        return None;
    }
    let (t0, c0) = (Instant::now(), tsc());
    while t0.elapsed().as_micros() < 2000 {
        std::hint::spin_loop();
    }
    let (nanos, ticks) = (t0.elapsed().as_nanos(), tsc().wrapping_sub(c0));
    (ticks > 0).then(|| ((nanos << 32) / ticks as u128) as u64)
}

#[cfg(not(target_arch = "x86_64"))]
fn calibrate_tsc() -> Option<u64> {
    None
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn tsc() -> u64 {
    // SAFETY: RDTSC has no preconditions on x86_64.
    unsafe { std::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn tsc() -> u64 {
    unreachable!("the TSC clock is chosen on x86_64 only")
}

impl Stamp {
    /// Now.
    #[inline]
    pub fn now() -> Stamp {
        let clock = StampClock::get();
        match clock.tsc_ns_per_tick_q32 {
            Some(_) => Stamp(tsc()),
            None => Stamp(clock.epoch.elapsed().as_nanos() as u64),
        }
    }

    /// Nanoseconds from this stamp to now (0 if the clock went back).
    #[inline]
    pub fn elapsed_nanos(self) -> u64 {
        let clock = StampClock::get();
        match clock.tsc_ns_per_tick_q32 {
            Some(q32) => {
                let ticks = tsc().saturating_sub(self.0) as u128;
                u64::try_from((ticks * q32 as u128) >> 32).unwrap_or(u64::MAX)
            }
            None => (clock.epoch.elapsed().as_nanos() as u64).saturating_sub(self.0),
        }
    }
}

/// Threads record into stripes of their own (most of the time), so that two threads timing
/// gets do not pass the histogram's cache lines back and forth.
const STRIPES: usize = 8;

#[repr(align(64))]
#[derive(Default)]
struct Stripe {
    counts: [AtomicU64; LATENCY_BUCKETS + 1],
    sum_nanos: AtomicU64,
}

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

/// This thread's stripe, given out round robin at its first record.
#[inline]
fn stripe_of_thread() -> usize {
    STRIPE.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT_STRIPE.fetch_add(1, Relaxed) % STRIPES);
        }
        s.get()
    })
}

/// A latency histogram that threads record into: what the cache times its gets, puts and
/// flushes with, usable for a caller's own operations too. Recording takes no lock and
/// allocates nothing (`make bench-metrics` shows its cost).
///
/// ```
/// let h = dcache::LatencyHistogram::default();
/// let start = dcache::Stamp::now();
/// h.record_elapsed(start);
/// h.record(300); // nanoseconds
/// assert_eq!(h.snapshot().count(), 2);
/// ```
#[derive(Default)]
pub struct LatencyHistogram {
    stripes: [Stripe; STRIPES],
}

impl LatencyHistogram {
    /// Counts one operation of `nanos` nanoseconds.
    #[inline]
    pub fn record(&self, nanos: u64) {
        let stripe = &self.stripes[stripe_of_thread()];
        stripe.counts[bucket_of(nanos)].fetch_add(1, Relaxed);
        stripe.sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// Runs `op` and counts how long it took.
    #[inline]
    pub fn time<T>(&self, op: impl FnOnce() -> T) -> T {
        let start = Stamp::now();
        let out = op();
        self.record_elapsed(start);
        out
    }

    /// Counts one operation that started at `start` and ends now.
    #[inline]
    pub fn record_elapsed(&self, start: Stamp) {
        self.record(start.elapsed_nanos());
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Histogram {
        let mut h = Histogram::default();
        for stripe in &self.stripes {
            for (total, n) in h.counts.iter_mut().zip(&stripe.counts) {
                *total += n.load(Relaxed);
            }
            h.sum_nanos += stripe.sum_nanos.load(Relaxed);
        }
        h
    }
}

/// The bucket of an operation of `nanos`: the first whose upper bound is at least `nanos`.
#[inline]
fn bucket_of(nanos: u64) -> usize {
    let log2_ceil = u64::BITS - nanos.saturating_sub(1).leading_zeros();
    (log2_ceil.saturating_sub(FIRST_BOUND_LOG2) as usize).min(LATENCY_BUCKETS)
}

/// The histograms a cache keeps.
#[derive(Default)]
pub(crate) struct Latencies {
    pub get: LatencyHistogram,
    pub put: LatencyHistogram,
    pub flush: LatencyHistogram,
}

/// A snapshot of a latency histogram.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Operations per bucket, not cumulative: bucket `i` holds those that took more than
    /// bucket `i - 1`'s [`upper_bound_nanos`](Histogram::upper_bound_nanos) and at most its
    /// own; the last bucket has no bound.
    pub counts: [u64; LATENCY_BUCKETS + 1],
    /// The time all of them took, in nanoseconds.
    pub sum_nanos: u64,
}

impl Histogram {
    /// Operations recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Bucket `i`'s upper bound in nanoseconds; None for the last bucket (and past it).
    pub fn upper_bound_nanos(i: usize) -> Option<u64> {
        (i < LATENCY_BUCKETS).then(|| 1u64 << (FIRST_BOUND_LOG2 as usize + i))
    }

    /// Prometheus's `le` label of bucket `i`, in seconds.
    fn le(i: usize) -> String {
        match Histogram::upper_bound_nanos(i) {
            Some(n) => format!("{}", n as f64 / 1e9),
            None => "+Inf".to_string(),
        }
    }

    /// The cumulative counts Prometheus's buckets hold.
    fn cumulative(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts.iter().enumerate().scan(0u64, |total, (i, n)| {
            *total += n;
            Some((i, *total))
        })
    }
}

/// Prometheus's type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricKind {
    /// Only grows while the cache is open.
    Counter,
    /// A size or an amount that may go either way.
    Gauge,
}

/// One number of a `Stats`, named for both expositions.
pub(crate) struct TableMetric {
    /// The field's name in `Stats`, `dcache_stats` and the JSON.
    field: &'static str,
    /// The Prometheus metric's name.
    metric: &'static str,
    kind: MetricKind,
    help: String,
    value: u64,
    /// What the value is multiplied by in Prometheus (microseconds to seconds, say).
    scale: f64,
}

impl TableMetric {
    pub fn new(
        field: &'static str,
        metric: &'static str,
        kind: MetricKind,
        docs: &[&str],
        value: u64,
    ) -> TableMetric {
        let help = docs.iter().map(|d| d.trim()).collect::<Vec<_>>().join(" ");
        TableMetric {
            field,
            metric,
            kind,
            help,
            value,
            scale: 1.0,
        }
    }

    fn scaled(mut self, scale: f64) -> TableMetric {
        self.scale = scale;
        self
    }
}

/// The `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}").unwrap();
}

const DURATION_METRIC: &str = "dcache_operation_duration_seconds";

impl Stats {
    /// Every number, in the order of `dcache_stats`'s fields but the first three.
    fn metrics(&self) -> Vec<TableMetric> {
        use MetricKind::Gauge;
        let r = &self.recovery;
        let mut all = self.table_metrics();
        all.extend([
            TableMetric::new(
                "index_bytes",
                "dcache_index_bytes",
                Gauge,
                &["Bytes of memory the in-memory index occupies."],
                self.index_bytes,
            ),
            TableMetric::new(
                "recovery_bytes_read",
                "dcache_recovery_bytes_read",
                Gauge,
                &["What this handle's open read from the device to rebuild the index, in bytes."],
                r.bytes_read,
            ),
            TableMetric::new(
                "recovery_micros",
                "dcache_recovery_seconds",
                Gauge,
                &["How long this handle's open took to rebuild the index."],
                r.micros,
            )
            .scaled(1e-6),
            TableMetric::new(
                "recovery_entries_dropped",
                "dcache_recovery_entries_dropped",
                Gauge,
                &["Entries this handle's open dropped as torn or corrupt."],
                r.entries_dropped,
            ),
            TableMetric::new(
                "recovery_was_clean",
                "dcache_recovery_was_clean",
                Gauge,
                &["1 when the previous user had closed the cache cleanly."],
                r.was_clean as u64,
            ),
        ]);
        all
    }

    /// The histograms, by the `operation` label they carry.
    fn operations(&self) -> [(&'static str, &Histogram); 3] {
        [
            ("get", &self.get_latency),
            ("put", &self.put_latency),
            ("flush", &self.flush_latency),
        ]
    }

    fn io_mode(&self) -> &'static str {
        match self.direct_io {
            true => "direct",
            false => "buffered",
        }
    }

    /// The Prometheus text exposition (format 0.0.4): `# HELP` and `# TYPE` for each metric,
    /// `dcache_info` with the I/O mode and alignment as labels, and the latency histograms.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("dcache-doc-prom-{}", std::process::id()));
    /// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
    /// cache.put(b"k", b"v", 0).unwrap();
    /// let text = cache.stats().to_prometheus();
    /// assert!(text.contains("\ndcache_puts_total 1\n"));
    /// # drop(cache); std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        family(
            &mut out,
            "dcache_info",
            "gauge",
            "The cache's I/O mode (direct: O_DIRECT) and alignment in bytes, and the library's version.",
        );
        writeln!(
            out,
            "dcache_info{{io_mode=\"{}\",alignment=\"{}\",version=\"{}\"}} 1",
            self.io_mode(),
            self.alignment,
            env!("CARGO_PKG_VERSION")
        )
        .unwrap();
        for m in self.metrics() {
            let kind = match m.kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
            };
            family(&mut out, m.metric, kind, &m.help);
            match m.scale == 1.0 {
                true => writeln!(out, "{} {}", m.metric, m.value),
                false => writeln!(out, "{} {}", m.metric, m.value as f64 * m.scale),
            }
            .unwrap();
        }
        family(
            &mut out,
            DURATION_METRIC,
            "histogram",
            "How long gets (from the call or a queued read's submit to its result), puts (to the \
             value's being visible) and flushes (to durability) took.",
        );
        for (op, h) in self.operations() {
            for (i, total) in h.cumulative() {
                let le = Histogram::le(i);
                writeln!(
                    out,
                    "{DURATION_METRIC}_bucket{{operation=\"{op}\",le=\"{le}\"}} {total}"
                )
                .unwrap();
            }
            writeln!(
                out,
                "{DURATION_METRIC}_sum{{operation=\"{op}\"}} {}",
                h.sum_nanos as f64 / 1e9
            )
            .unwrap();
            writeln!(
                out,
                "{DURATION_METRIC}_count{{operation=\"{op}\"}} {}",
                h.count()
            )
            .unwrap();
        }
        out
    }

    /// JSON: every field of the C `dcache_stats` under its name and with its value
    /// (`direct_io` and `recovery_was_clean` as 0 or 1), `io_mode` and `version`, and
    /// `latency`: per operation, the buckets' upper bounds in nanoseconds (null for the last),
    /// their counts (not cumulative), `count` and `sum_nanos`.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("dcache-doc-json-{}", std::process::id()));
    /// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
    /// let json = cache.stats().to_json();
    /// assert!(json.starts_with('{') && json.contains("\"capacity\":16777216"));
    /// # drop(cache); std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(4 << 10);
        write!(
            out,
            "{{\"version\":\"{}\",\"io_mode\":\"{}\",\"direct_io\":{},\"alignment\":{}",
            env!("CARGO_PKG_VERSION"),
            self.io_mode(),
            self.direct_io as u32,
            self.alignment
        )
        .unwrap();
        for m in self.metrics() {
            write!(out, ",\"{}\":{}", m.field, m.value).unwrap();
        }
        let bounds: Vec<String> = (0..=LATENCY_BUCKETS)
            .map(|i| Histogram::upper_bound_nanos(i).map_or("null".into(), |n| n.to_string()))
            .collect();
        out.push_str(",\"latency\":{");
        for (n, (op, h)) in self.operations().into_iter().enumerate() {
            let counts: Vec<String> = h.counts.iter().map(u64::to_string).collect();
            write!(
                out,
                "{}\"{op}\":{{\"upper_bounds_nanos\":[{}],\"counts\":[{}],\"count\":{},\"sum_nanos\":{}}}",
                if n == 0 { "" } else { "," },
                bounds.join(","),
                counts.join(","),
                h.count(),
                h.sum_nanos
            )
            .unwrap();
        }
        out.push_str("}}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_what_their_bounds_say() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(256), 0);
        assert_eq!(bucket_of(257), 1);
        assert_eq!(bucket_of(512), 1);
        assert_eq!(bucket_of(513), 2);
        assert_eq!(bucket_of(1 << 34), LATENCY_BUCKETS - 1);
        assert_eq!(bucket_of((1 << 34) + 1), LATENCY_BUCKETS);
        assert_eq!(bucket_of(u64::MAX), LATENCY_BUCKETS);
        for n in [1u64, 300, 4096, 1_000_000, 3_000_000_000] {
            let i = bucket_of(n);
            assert!(n <= Histogram::upper_bound_nanos(i).unwrap());
            assert!(i == 0 || n > Histogram::upper_bound_nanos(i - 1).unwrap());
        }
    }

    #[test]
    fn a_snapshot_counts_what_was_recorded() {
        let h = LatencyHistogram::default();
        for n in [100, 200, 1000, 1 << 40] {
            h.record(n);
        }
        let s = h.snapshot();
        assert_eq!((s.count(), s.sum_nanos), (4, 1300 + (1 << 40)));
        assert_eq!(
            (s.counts[0], s.counts[2], s.counts[LATENCY_BUCKETS]),
            (2, 1, 1)
        );
    }
}
