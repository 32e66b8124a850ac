//! [`DiskStorage`]: Pingora's cache storage on a dcache file or block device.
//!
//! Reads await dcache's completion queue (one [`AsyncReader`] per executor thread), so a hit
//! never blocks an executor thread on the device. Writes (a fill's commit, a metadata update,
//! a purge) go to tokio's blocking pool: a put may wait for the cache's writer.

use crate::record::{self, Record};
use async_trait::async_trait;
use bytes::Bytes;
use dcache::{AsyncReader, Cache, CacheOptions, ErrorKind};
use pingora_cache::key::{CacheHashKey, CacheKey};
use pingora_cache::storage::{
    HandleHit, HandleMiss, HitHandler, MissFinishType, MissHandler, PurgeOutcome, PurgeTarget,
    PurgeType, Storage,
};
use pingora_cache::trace::SpanHandle;
use pingora_cache::CacheMeta;
use pingora_error::{Error, ErrorType, Result};
use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How a [`DiskStorage`] reads, stores and flushes.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// Bodies up to this size are stored in the response's record and read with it, in one
    /// read; larger ones are entries of their own, streamed in `chunk` pieces.
    pub inline_max: usize,
    /// A body stored apart and asked for whole is read in one read up to this size (then
    /// sent in `chunk` pieces from memory); a larger one, or a range of one, is read in
    /// `chunk` pieces, the next read while the one before is sent.
    pub whole_read_max: usize,
    /// The size of each piece of a body stored apart.
    pub chunk: usize,
    /// Reads in flight per executor thread.
    pub queue_depth: u32,
    /// How often fills, updates and purges are made durable (a purge is flushed at once).
    pub flush_interval: Duration,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            inline_max: 256 << 10,
            whole_read_max: 4 << 20,
            chunk: 256 << 10,
            queue_depth: 64,
            flush_interval: Duration::from_secs(1),
        }
    }
}

/// Pingora's cache storage on dcache. Pingora wants it `'static`: open it once and leak it
/// (`Box::leak`), or keep it in a `static`.
pub struct DiskStorage {
    cache: Arc<Cache>,
    options: StorageOptions,
    fill_ids: FillIds,
    flusher: Flusher,
    counters: Counters,
}

/// The storage's counters, one table for the struct and its Prometheus metrics.
macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $name:ident, )*) => {
        /// Counts of what the storage did (`DiskStorage::prometheus_text` exports them).
        #[derive(Debug, Default)]
        pub struct Counters {
            $( $(#[doc = $doc])* pub $name: AtomicU64, )*
        }

        impl Counters {
            /// Each counter as `dcache_pingora_NAME_total`, in Prometheus text.
            fn prometheus_text(&self) -> String {
                let mut out = String::new();
                $(
                    let help = [$($doc.trim()),*].join(" ");
                    let name = concat!("dcache_pingora_", stringify!($name), "_total");
                    out += &format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                                    self.$name.load(Relaxed));
                )*
                out
            }
        }
    };
}

counters! {
    /// Lookups answered with a hit.
    hits,
    /// Lookups answered with a miss.
    misses,
    /// Records dropped as unreadable: malformed, unreadable metadata, or a body gone or of
    /// another size (each is then a miss).
    dropped,
    /// Fills stored.
    fills,
    /// Fills not stored (refused by the cache, or failed).
    fills_not_stored,
}

impl DiskStorage {
    /// Opens (or creates, as `cache_options` say) the cache at `path`.
    pub fn open(
        path: &Path,
        cache_options: &CacheOptions,
        options: StorageOptions,
    ) -> dcache::Result<DiskStorage> {
        let cache = Arc::new(Cache::open(path, cache_options)?);
        let flusher = Flusher::start(cache.clone(), options.flush_interval);
        Ok(DiskStorage {
            cache,
            options,
            fill_ids: FillIds::new(),
            flusher,
            counters: Counters::default(),
        })
    }

    /// The cache underneath (for its stats, say).
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// What the storage has done so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The cache's metrics (`dcache::Stats::to_prometheus`) and the storage's counters, in
    /// Prometheus text.
    pub fn prometheus_text(&self) -> String {
        self.cache.stats().to_prometheus() + &self.counters.prometheus_text()
    }

    /// The largest body a fill can store: set it as Pingora's `max_file_size_bytes`, so that
    /// larger responses are passed through without being gathered.
    pub fn max_body_size(&self) -> usize {
        // Room for the record's metadata when the body is inline.
        let max = self.cache.max_value_size().saturating_sub(64 << 10);
        usize::try_from(max).unwrap_or(usize::MAX)
    }

    /// Stops the flushes and closes the cache: everything stored so far is durable.
    pub fn close(&self) -> dcache::Result<()> {
        self.flusher.stop();
        self.cache.close()
    }

    /// This thread's reader, made on first use within the thread's tokio runtime.
    fn reader(&'static self) -> Result<Arc<AsyncReader>> {
        thread_local! {
            static READERS: RefCell<HashMap<usize, Arc<AsyncReader>>> = RefCell::new(HashMap::new());
        }
        let id = self as *const DiskStorage as usize;
        READERS.with(|readers| {
            if let Some(reader) = readers.borrow().get(&id) {
                return Ok(reader.clone());
            }
            let reader = Arc::new(
                self.cache
                    .async_reader(self.options.queue_depth)
                    .map_err(|e| internal("making a dcache reader", e))?,
            );
            readers.borrow_mut().insert(id, reader.clone());
            Ok(reader)
        })
    }

    /// The record under `key`, or `None` for a miss. A record that cannot be read is dropped
    /// and counted: the request goes to the origin and its fill replaces it.
    async fn read_record(&'static self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.reader()?.get(key).await {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => {
                log_dropped(key, &e);
                self.drop_entry(key.to_vec()).await;
                Ok(None)
            }
        }
    }

    async fn drop_entry(&'static self, key: Vec<u8>) {
        self.counters.dropped.fetch_add(1, Relaxed);
        let _ = self.blocking(move |cache| cache.delete(&key)).await;
    }

    /// Runs `f` on tokio's blocking pool: puts and deletes may wait for the cache's writer.
    async fn blocking<T: Send + 'static>(
        &'static self,
        f: impl FnOnce(&Cache) -> dcache::Result<T> + Send + 'static,
    ) -> dcache::Result<T> {
        let cache = self.cache.clone();
        match tokio::task::spawn_blocking(move || f(&cache)).await {
            Ok(result) => result,
            Err(e) => Err(dcache::Error::new(
                ErrorKind::Internal,
                format!("a blocking cache call did not finish: {e}"),
            )),
        }
    }
}

impl Drop for DiskStorage {
    fn drop(&mut self) {
        self.flusher.stop();
    }
}

/// Which fill a hit's metadata came from: put in the `CacheMeta` a lookup returns, and
/// carried by Pingora into the metadata it passes to `update_meta` after a revalidation, so
/// that the update keeps the body of the response it revalidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillRef(pub u128);

fn meta_of(record: &Record<'_>) -> Result<CacheMeta> {
    let mut meta = CacheMeta::deserialize(record.internal_meta, record.header_meta)?;
    meta.extensions_mut().insert(FillRef(record.fill_id));
    Ok(meta)
}

#[async_trait]
impl Storage for DiskStorage {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let record_key = record::record_key(&key.combined());
        let hit = self.lookup_record(record_key).await?;
        let counter = match hit {
            Some(_) => &self.counters.hits,
            None => &self.counters.misses,
        };
        counter.fetch_add(1, Relaxed);
        Ok(hit)
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let (internal, header) = meta.serialize()?;
        let fill_id = self.fill_ids.next();
        let mut value = Vec::new();
        record::begin(&mut value, fill_id, &internal, &header);
        Ok(Box::new(DiskFill {
            storage: self,
            record_key: record::record_key(&key.combined()),
            fill_id,
            meta_len: value.len(),
            value,
            too_large: false,
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let record_key = record::record_key(&target.key().combined());
        let body_key = match self.read_record(&record_key).await? {
            None => return Ok(PurgeOutcome::NotFound),
            Some(bytes) => match record::decode(&bytes) {
                Ok(r) if r.inline_body.is_none() => Some(record::body_key(r.fill_id)),
                _ => None,
            },
        };
        // An invalidation is made durable before it is answered: a crash right after it must
        // not bring the purged response back.
        let durable = matches!(purge_type, PurgeType::Invalidation);
        let deleted = self
            .blocking(move |cache| {
                let deleted = cache.delete(&record_key);
                if let Some(body_key) = body_key {
                    let _ = cache.delete(&body_key);
                }
                if durable {
                    cache.flush()?;
                }
                deleted
            })
            .await;
        match deleted {
            Ok(()) => Ok(PurgeOutcome::Purged(None)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(PurgeOutcome::NotFound),
            Err(e) => Err(internal("purging from dcache", e)),
        }
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        // Only metadata that came from a lookup names its body.
        let Some(&FillRef(fill_id)) = meta.extensions().get::<FillRef>() else {
            return Ok(false);
        };
        let record_key = record::record_key(&key.combined());
        let Some(bytes) = self.read_record(&record_key).await? else {
            return Ok(false);
        };
        let Ok(stored) = record::decode(&bytes) else {
            return Ok(false);
        };
        if stored.fill_id != fill_id {
            // Another fill replaced the response revalidated: keep the newer one.
            return Ok(false);
        }
        let (internal_meta, header_meta) = meta.serialize()?;
        let mut value = Vec::new();
        record::begin(&mut value, fill_id, &internal_meta, &header_meta);
        if let Some(body) = stored.inline_body {
            value.extend_from_slice(body);
        }
        record::set_body(&mut value, stored.body_len, stored.inline_body.is_some());
        self.blocking(move |cache| cache.put(&record_key, &value, 0))
            .await
            .map_err(|e| internal("updating metadata in dcache", e))?;
        Ok(true)
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

impl DiskStorage {
    async fn lookup_record(
        &'static self,
        record_key: Vec<u8>,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let Some(bytes) = self.read_record(&record_key).await? else {
            return Ok(None);
        };
        let facts = record::decode(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let meta = meta_of(&r).map_err(|e| e.to_string())?;
                Ok((meta, r.fill_id, r.body_len, r.inline_body.is_some()))
            });
        let (meta, fill_id, body_len, inline) = match facts {
            Ok(facts) => facts,
            Err(why) => {
                log_dropped(&record_key, &why);
                self.drop_entry(record_key).await;
                return Ok(None);
            }
        };
        let body = if inline {
            let body_at = bytes.len() - body_len as usize;
            BodyBytes::Inline(Bytes::from(bytes).slice(body_at..))
        } else {
            let body_key = record::body_key(fill_id);
            // From memory (the index; no read of the device): a body lost in a crash or
            // evicted makes the record a miss. Its key is this fill's alone, so a body there
            // is this response's; a later read that finds it gone cuts the response short.
            if !self.cache.contains(&body_key) {
                log_dropped(&record_key, &"its body is gone");
                self.drop_entry(record_key).await;
                return Ok(None);
            }
            BodyBytes::Apart(body_key.into())
        };
        let hit = DiskHit {
            storage: self,
            body,
            body_len,
            next: 0,
            end: body_len,
            ahead: None,
        };
        Ok(Some((meta, Box::new(hit))))
    }
}

enum BodyBytes {
    /// The whole body, read with the record (or read whole afterwards).
    Inline(Bytes),
    /// The key of the body's own entry, read in chunks.
    Apart(Arc<[u8]>),
}

/// A hit: the body streamed from the record or from its own entry.
struct DiskHit {
    storage: &'static DiskStorage,
    body: BodyBytes,
    body_len: u64,
    /// The next byte to send, and the end (exclusive) of what is asked for.
    next: u64,
    end: u64,
    /// The read of the piece after the one being sent, in flight meanwhile.
    ahead: Option<Piece>,
}

/// A read of `len` bytes from `at` of a body stored apart, on a task of its own so that it
/// goes on while the hit sends the piece before it.
struct Piece {
    at: u64,
    len: usize,
    read: tokio::task::JoinHandle<dcache::Result<Vec<u8>>>,
}

impl DiskHit {
    fn start_piece(&self, key: Arc<[u8]>, at: u64) -> Result<Piece> {
        let len = (self.end - at).min(self.storage.options.chunk as u64) as usize;
        let reader = self.storage.reader()?;
        let read = tokio::spawn(async move { reader.get_range(&key, at, len).await });
        Ok(Piece { at, len, read })
    }
}

#[async_trait]
impl HandleHit for DiskHit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        if self.next >= self.end {
            return Ok(None);
        }
        if let BodyBytes::Apart(key) = &self.body {
            let whole = self.next == 0 && self.end == self.body_len;
            if whole && self.body_len <= self.storage.options.whole_read_max as u64 {
                // One read of the entry (the ring reads entries whole), not one per piece.
                let key = key.clone();
                let body = self
                    .storage
                    .reader()?
                    .get(&key)
                    .await
                    .map_err(|e| internal("reading a body from dcache", e))?;
                if body.len() as u64 != self.body_len {
                    return Error::e_explain(
                        ErrorType::InternalError,
                        format!(
                            "a body of {} bytes where {} were stored",
                            body.len(),
                            self.body_len
                        ),
                    );
                }
                self.body = BodyBytes::Inline(Bytes::from(body));
            }
        }
        let piece = match &self.body {
            BodyBytes::Inline(body) => {
                let end = self.end.min(self.next + self.storage.options.chunk as u64);
                body.slice(self.next as usize..end as usize)
            }
            BodyBytes::Apart(key) => {
                let key = key.clone();
                let piece = match self.ahead.take() {
                    Some(piece) if piece.at == self.next => piece,
                    _ => self.start_piece(key.clone(), self.next)?,
                };
                let after = self.next + piece.len as u64;
                if after < self.end {
                    self.ahead = Some(self.start_piece(key, after)?);
                }
                let bytes = piece
                    .read
                    .await
                    .map_err(|e| internal("a body read's task", e))?
                    .map_err(|e| internal("reading a body from dcache", e))?;
                if bytes.len() != piece.len {
                    return Error::e_explain(
                        ErrorType::InternalError,
                        format!("a body read gave {} bytes of {}", bytes.len(), piece.len),
                    );
                }
                Bytes::from(bytes)
            }
        };
        self.next += piece.len() as u64;
        Ok(Some(piece))
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let start = start as u64;
        if start >= self.body_len {
            return Error::e_explain(
                ErrorType::InternalError,
                format!("seek to {start} past a body of {}", self.body_len),
            );
        }
        self.next = start;
        self.end = end.map_or(self.body_len, |end| (end as u64).min(self.body_len));
        // A read ahead of the old position is of no use (its task frees its buffer).
        self.ahead = None;
        Ok(())
    }

    fn get_eviction_weight(&self) -> usize {
        self.body_len as usize
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

/// A fill: the body gathered after the record's metadata, then stored at `finish`. Nothing is
/// visible before, and a fill dropped unfinished stores nothing.
struct DiskFill {
    storage: &'static DiskStorage,
    record_key: Vec<u8>,
    fill_id: u128,
    /// The record's header and metadata, then the body.
    value: Vec<u8>,
    meta_len: usize,
    too_large: bool,
}

#[async_trait]
impl HandleMiss for DiskFill {
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        let body_len = self.value.len() - self.meta_len + data.len();
        if self.too_large || body_len > self.storage.max_body_size() {
            self.too_large = true;
            self.value.truncate(self.meta_len);
            return Error::e_explain(
                ErrorType::InternalError,
                format!(
                    "a body past {} bytes cannot be stored",
                    self.storage.max_body_size()
                ),
            );
        }
        self.value.extend_from_slice(&data);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        let DiskFill {
            storage,
            record_key,
            fill_id,
            mut value,
            meta_len,
            too_large,
        } = *self;
        if too_large {
            storage.counters.fills_not_stored.fetch_add(1, Relaxed);
            return Error::e_explain(ErrorType::InternalError, "the body was too large to store");
        }
        let body_len = value.len() - meta_len;
        let inline = body_len <= storage.options.inline_max;
        record::set_body(&mut value, body_len as u64, inline);
        let stored = storage
            .blocking(move |cache| {
                if !inline {
                    // The body first: a record never names a body that was not stored.
                    cache.put(&record::body_key(fill_id), &value[meta_len..], 0)?;
                    value.truncate(meta_len);
                }
                cache.put(&record_key, &value, 0)
            })
            .await;
        match stored {
            Ok(()) => {
                storage.counters.fills.fetch_add(1, Relaxed);
                Ok(MissFinishType::Created(body_len))
            }
            Err(e) => {
                storage.counters.fills_not_stored.fetch_add(1, Relaxed);
                if e.kind() == ErrorKind::Declined {
                    // The cache's admission policy chose not to keep it: not a failure.
                    Ok(MissFinishType::Created(0))
                } else {
                    Err(internal("storing a fill in dcache", e))
                }
            }
        }
    }
}

/// Fill ids: a random base read once, plus a count, so no two fills, in this run or any
/// other, name the same body.
struct FillIds {
    base: u128,
    count: AtomicU64,
}

impl FillIds {
    fn new() -> FillIds {
        let mut seed = [0u8; 16];
        let random = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed));
        if random.is_err() {
            // Without /dev/urandom: the time and the process, which differ between runs.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            seed = (now ^ (u128::from(std::process::id()) << 96)).to_le_bytes();
        }
        FillIds {
            base: u128::from_le_bytes(seed) & !u128::from(u64::MAX),
            count: AtomicU64::new(0),
        }
    }

    fn next(&self) -> u128 {
        self.base | u128::from(self.count.fetch_add(1, Relaxed))
    }
}

/// Flushes the cache every interval until stopped.
struct Flusher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    stopped: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Flusher {
    fn start(cache: Arc<Cache>, interval: Duration) -> Flusher {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name("dcache-flush".into())
            .spawn(move || {
                let (lock, cvar) = &*signal;
                let mut stopped = lock.lock().unwrap();
                while !*stopped {
                    stopped = cvar.wait_timeout(stopped, interval).unwrap().0;
                    if let Err(e) = cache.flush() {
                        eprintln!("dcache-pingora: flush failed: {e}");
                    }
                }
            })
            .expect("starting the flush thread");
        Flusher {
            stop,
            stopped: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
        }
    }

    fn stop(&self) {
        if self.stopped.swap(true, Relaxed) {
            return;
        }
        *self.stop.0.lock().unwrap() = true;
        self.stop.1.notify_all();
        if let Some(thread) = self.thread.lock().unwrap().take() {
            let _ = thread.join();
        }
    }
}

fn internal(
    context: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Box<Error> {
    Error::because(ErrorType::InternalError, context, e)
}

fn log_dropped(key: &[u8], why: &dyn std::fmt::Display) {
    eprintln!(
        "dcache-pingora: dropping {} as a miss: {why}",
        String::from_utf8_lossy(key)
    );
}
