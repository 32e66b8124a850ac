//! Sizes and counters. The fields come from one table, `stats_fields.in`, which the C
//! interface's `dcache_stats` is also made from. Counters are updated with relaxed atomics on
//! the hot paths.

use super::Shared;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! stats_fields {
    (
        sizes { $( $(#[doc = $size_doc:literal])* $size:ident, )* }
        counters { $( $(#[doc = $counter_doc:literal])* $counter:ident, )* }
    ) => {
        /// The counters, one atomic each.
        #[derive(Default)]
        pub(crate) struct Counters {
            $( $(#[doc = $counter_doc])* pub $counter: AtomicU64, )*
        }

        /// A snapshot of a cache's counters and sizes.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Stats {
            /// O_DIRECT is in effect.
            pub direct_io: bool,
            /// The alignment in bytes.
            pub alignment: u32,
            $( $(#[doc = $size_doc])* pub $size: u64, )*
            $( $(#[doc = $counter_doc])* pub $counter: u64, )*
        }

        impl Counters {
            /// Copies every counter into `stats`.
            fn load_into(&self, stats: &mut Stats) {
                $( stats.$counter = self.$counter.load(Relaxed); )*
            }
        }
    };
}

include!("stats_fields.in");

impl Shared {
    pub(crate) fn stats(&self) -> Stats {
        let mut s = Stats {
            direct_io: self.dev.is_direct(),
            alignment: self.geometry.alignment,
            capacity: self.geometry.capacity,
            used_bytes: self.used_bytes.load(Relaxed).min(self.geometry.capacity),
            entries: self.index.len() as u64,
            ..Stats::default()
        };
        self.stats.load_into(&mut s);
        s
    }
}
