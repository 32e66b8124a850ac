//! Sizes and counters. The fields come from one table, `stats_fields.in`, which the C
//! interface's `dcache_stats` and the Prometheus and JSON expositions (`metrics`) are also
//! made from. Counters are updated with relaxed atomics on the hot paths.

use super::metrics::{Histogram, Latencies, MetricKind, TableMetric};
use super::recovery::RecoveryReport;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! stats_fields {
    (
        sizes { $( $(#[doc = $size_doc:literal])* $size:ident => $size_kind:ident $size_metric:literal, )* }
        counters { $( $(#[doc = $counter_doc:literal])* $counter:ident => $counter_kind:ident $counter_metric:literal, )* }
        later_counters { $( $(#[doc = $later_doc:literal])* $later:ident => $later_kind:ident $later_metric:literal, )* }
    ) => {
        /// The counters, one atomic each, and the latency histograms.
        #[derive(Default)]
        pub(crate) struct Counters {
            $( $(#[doc = $counter_doc])* pub $counter: AtomicU64, )*
            $( $(#[doc = $later_doc])* pub $later: AtomicU64, )*
            /// How long gets, puts and flushes take.
            pub latency: Latencies,
        }

        /// A snapshot of a cache's counters, sizes and latency histograms
        /// ([`Cache::stats`](crate::Cache::stats)); [`Stats::to_prometheus`] and
        /// [`Stats::to_json`] render it for a monitoring system.
        ///
        /// ```
        /// # let path = std::env::temp_dir().join(format!("dcache-doc-stats-{}", std::process::id()));
        /// # let cache = dcache::Cache::open(&path, &dcache::CacheOptions::new().create(true).capacity(16 << 20)).unwrap();
        /// let before = cache.stats();
        /// cache.put(b"k", b"v", 0).unwrap();
        /// let mut buf = [0u8; 1];
        /// let _ = cache.get(b"absent", &mut buf);
        /// let after = cache.stats();
        /// assert_eq!((after.puts - before.puts, after.misses - before.misses), (1, 1));
        /// assert_eq!(after.get_latency.count() - before.get_latency.count(), 1);
        /// # drop(cache); std::fs::remove_file(&path).unwrap();
        /// ```
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Stats {
            /// O_DIRECT is in effect.
            pub direct_io: bool,
            /// The alignment in bytes.
            pub alignment: u32,
            $( $(#[doc = $size_doc])* pub $size: u64, )*
            $( $(#[doc = $counter_doc])* pub $counter: u64, )*
            $( $(#[doc = $later_doc])* pub $later: u64, )*
            /// Bytes of memory the in-memory index occupies.
            pub index_bytes: u64,
            /// How this handle's open found the cache.
            pub recovery: RecoveryReport,
            /// Gets and range reads, from the call (or a queued read's submit) to its result,
            /// hits and misses alike.
            pub get_latency: Histogram,
            /// Puts and writer commits, to the value's being visible to gets.
            pub put_latency: Histogram,
            /// Flushes, to the puts before them being durable.
            pub flush_latency: Histogram,
        }

        impl Counters {
            /// Copies every counter and histogram into `stats`.
            pub(crate) fn load_into(&self, stats: &mut Stats) {
                $( stats.$counter = self.$counter.load(Relaxed); )*
                $( stats.$later = self.$later.load(Relaxed); )*
                stats.get_latency = self.latency.get.snapshot();
                stats.put_latency = self.latency.put.snapshot();
                stats.flush_latency = self.latency.flush.snapshot();
            }
        }

        impl Stats {
            /// The fields of the table, in its order, as metrics.
            pub(crate) fn table_metrics(&self) -> Vec<TableMetric> {
                vec![
                    $( TableMetric::new(stringify!($size), $size_metric, MetricKind::$size_kind, &[$($size_doc),*], self.$size), )*
                    $( TableMetric::new(stringify!($counter), $counter_metric, MetricKind::$counter_kind, &[$($counter_doc),*], self.$counter), )*
                    $( TableMetric::new(stringify!($later), $later_metric, MetricKind::$later_kind, &[$($later_doc),*], self.$later), )*
                ]
            }
        }
    };
}

include!("stats_fields.in");
