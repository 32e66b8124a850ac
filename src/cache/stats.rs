//! Sizes and counters. The fields come from one table, `stats_fields.in`, which the C
//! interface's `dcache_stats` is also made from. Counters are updated with relaxed atomics on
//! the hot paths.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! stats_fields {
    (
        sizes { $( $(#[doc = $size_doc:literal])* $size:ident, )* }
        counters { $( $(#[doc = $counter_doc:literal])* $counter:ident, )* }
        later_counters { $( $(#[doc = $later_doc:literal])* $later:ident, )* }
    ) => {
        /// The counters, one atomic each.
        #[derive(Default)]
        pub(crate) struct Counters {
            $( $(#[doc = $counter_doc])* pub $counter: AtomicU64, )*
            $( $(#[doc = $later_doc])* pub $later: AtomicU64, )*
        }

        /// A snapshot of a cache's counters and sizes ([`Cache::stats`](crate::Cache::stats)).
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
        }

        impl Counters {
            /// Copies every counter into `stats`.
            pub(crate) fn load_into(&self, stats: &mut Stats) {
                $( stats.$counter = self.$counter.load(Relaxed); )*
                $( stats.$later = self.$later.load(Relaxed); )*
            }
        }
    };
}

include!("stats_fields.in");
