//! A disk cache for Pingora: [`DiskStorage`] implements `pingora_cache::Storage` on dcache,
//! and [`CachingProxy`] is a proxy that caches in it (the `dcache-proxy` binary).
//!
//! ```no_run
//! use dcache_pingora::{DiskStorage, StorageOptions};
//! let storage: &'static DiskStorage = Box::leak(Box::new(
//!     DiskStorage::open(
//!         "/var/cache/proxy.dcache".as_ref(),
//!         &dcache::CacheOptions::new().create(true).capacity(8 << 30),
//!         StorageOptions::default(),
//!     )
//!     .unwrap(),
//! ));
//! // In ProxyHttp::request_cache_filter:
//! //     session.cache.enable(storage, None, None, Some(lock), None);
//! //     session.cache.set_max_file_size_bytes(storage.max_body_size());
//! ```

pub mod metrics;
pub mod origin;
pub mod proxy;
pub mod record;
pub mod storage;

pub use metrics::MetricsService;
pub use proxy::{CachingProxy, CACHE_STATUS};
pub use storage::{Counters, DiskStorage, FillRef, StorageOptions};
