//! `dcache replay`: a trace of requests played through the cache as a proxy would use it: a get
//! per request, and on a miss a put of a value of the recorded size. Every value describes its
//! object, so every hit is checked byte for byte.

use crate::trace::{TraceFormat, TraceReader};
use dcache::{Admission, Cache, CacheOptions, Fetched};
use dcache::{AlignedBuf, IoMode};
use dcache::{Error, ErrorKind};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a replay found.
#[derive(Debug, Default, Clone)]
pub struct ReplayReport {
    pub requests: u64,
    pub hits: u64,
    pub misses: u64,
    pub requested_bytes: u64,
    pub missed_bytes: u64,
    /// Requests for objects larger than the cache's value limit: misses, never stored.
    pub too_large: u64,
    /// Hits whose bytes were not the object's: must be 0.
    pub wrong_values: u64,
    pub puts: u64,
    /// Entries of the main ring kept, written again, when their region was reclaimed, and
    /// their bytes.
    pub reinserted: u64,
    pub reinserted_bytes: u64,
    /// Entries moved from probation to the main ring, and their bytes.
    pub promoted: u64,
    pub promoted_bytes: u64,
    /// Puts sent to the main ring by the ghost, and the ghost's memory.
    pub ghost_hits: u64,
    pub ghost_bytes: u64,
    /// Whether puts went through the admission filter, the puts it declined, and its memory.
    pub filtered: bool,
    pub declined: u64,
    pub admission_bytes: u64,
    /// Bytes per second the cache was given (0: none).
    pub write_budget: u64,
    pub device_bytes_written: u64,
    pub capacity: u64,
    pub max_value_size: u64,
    pub direct_io: bool,
    pub seconds: f64,
    /// Time spent inside gets and puts, of `seconds`.
    pub cache_seconds: f64,
}

impl ReplayReport {
    pub fn miss_ratio(&self) -> f64 {
        ratio(self.misses, self.requests)
    }

    pub fn byte_miss_ratio(&self) -> f64 {
        ratio(self.missed_bytes, self.requested_bytes)
    }

    /// Bytes written to the device for each byte that missed.
    pub fn write_amplification(&self) -> f64 {
        ratio(self.device_bytes_written, self.missed_bytes)
    }

    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }

    pub fn to_json(&self) -> String {
        let fields: [(&str, String); 29] = [
            ("requests", self.requests.to_string()),
            ("hits", self.hits.to_string()),
            ("misses", self.misses.to_string()),
            ("miss_ratio", format!("{:.6}", self.miss_ratio())),
            ("byte_miss_ratio", format!("{:.6}", self.byte_miss_ratio())),
            ("requested_bytes", self.requested_bytes.to_string()),
            ("missed_bytes", self.missed_bytes.to_string()),
            (
                "device_bytes_written",
                self.device_bytes_written.to_string(),
            ),
            (
                "written_per_missed_byte",
                format!("{:.4}", self.write_amplification()),
            ),
            ("too_large", self.too_large.to_string()),
            ("wrong_values", self.wrong_values.to_string()),
            ("puts", self.puts.to_string()),
            ("reinserted", self.reinserted.to_string()),
            ("reinserted_bytes", self.reinserted_bytes.to_string()),
            ("promoted", self.promoted.to_string()),
            ("promoted_bytes", self.promoted_bytes.to_string()),
            ("ghost_hits", self.ghost_hits.to_string()),
            ("ghost_bytes", self.ghost_bytes.to_string()),
            (
                "admission",
                format!("\"{}\"", admission_name(self.filtered)),
            ),
            ("declined", self.declined.to_string()),
            ("admission_bytes", self.admission_bytes.to_string()),
            ("write_budget", self.write_budget.to_string()),
            (
                "device_bytes_per_second",
                format!(
                    "{:.0}",
                    self.device_bytes_written as f64 / self.seconds.max(1e-9)
                ),
            ),
            ("capacity", self.capacity.to_string()),
            ("max_value_size", self.max_value_size.to_string()),
            ("io_mode", format!("\"{}\"", io_mode_name(self.direct_io))),
            ("seconds", format!("{:.3}", self.seconds)),
            ("cache_seconds", format!("{:.3}", self.cache_seconds)),
            (
                "requests_per_second",
                format!("{:.0}", self.requests_per_second()),
            ),
        ];
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("  \"{k}\": {v}"))
            .collect();
        format!("{{\n{}\n}}", body.join(",\n"))
    }

    pub fn to_text(&self) -> String {
        format!(
            "requests:             {}\n\
             miss ratio:           {:.4} ({} misses)\n\
             byte miss ratio:      {:.4}\n\
             written per missed byte: {:.3} ({} bytes to the device)\n\
             promoted:             {} entries, {} bytes\n\
             reinserted:           {} entries, {} bytes\n\
             ghost:                {} hits, {} bytes of memory\n\
             admission:            {}, {} puts declined, {} bytes of memory\n\
             too large to store:   {}\n\
             wrong values:         {}\n\
             capacity:             {} bytes, values up to {} bytes, I/O {}\n\
             replay:               {:.0} requests/s ({:.1} s, {:.0}% of it in gets and puts)",
            self.requests,
            self.miss_ratio(),
            self.misses,
            self.byte_miss_ratio(),
            self.write_amplification(),
            self.device_bytes_written,
            self.promoted,
            self.promoted_bytes,
            self.reinserted,
            self.reinserted_bytes,
            self.ghost_hits,
            self.ghost_bytes,
            admission_name(self.filtered),
            self.declined,
            self.admission_bytes,
            self.too_large,
            self.wrong_values,
            self.capacity,
            self.max_value_size,
            io_mode_name(self.direct_io),
            self.requests_per_second(),
            self.seconds,
            100.0 * self.cache_seconds / self.seconds.max(1e-9),
        )
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn admission_name(filtered: bool) -> &'static str {
    match filtered {
        true => "filtered",
        false => "all",
    }
}

fn io_mode_name(direct: bool) -> &'static str {
    if direct {
        "direct"
    } else {
        "buffered"
    }
}

/// The value stored for object `id`: `len` bytes that say which object they are.
pub fn fill_value(id: u64, out: &mut [u8]) {
    let seed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD6E8_FEB8_6659_FD93;
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let word = (seed ^ (i as u64).wrapping_mul(0xA076_1D64_78BD_642F)).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// The trace's key for an object: its id as 8 little-endian bytes.
pub fn key_of(id: u64) -> [u8; 8] {
    id.to_le_bytes()
}

/// The cache's size and policy settings, and the pace of the replay.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub capacity: u64,
    pub admission: Admission,
    /// Bytes per second (0: none).
    pub write_budget: u64,
    /// Requests per second (0: as fast as it goes).
    pub rate: u64,
}

pub struct ReplayOptions<'a> {
    pub trace: &'a Path,
    pub format: TraceFormat,
    pub cache: &'a Path,
    pub limits: Limits,
    pub io_mode: IoMode,
    /// Say on stderr how far it is (on a terminal).
    pub progress: bool,
}

/// Replays the trace against a new cache at `opts.cache` (which must not exist; it is removed
/// at the end). Bad input stops the replay with an error naming the record.
pub fn replay(opts: &ReplayOptions<'_>) -> Result<ReplayReport, Error> {
    if opts.cache.exists() {
        return Err(Error::invalid(format!(
            "{} exists: the replay makes a new cache there",
            opts.cache.display()
        )));
    }
    let mut reader = TraceReader::open(opts.trace, opts.format).map_err(Error::invalid)?;
    let cache = Cache::open(
        opts.cache,
        &CacheOptions::new()
            .io_mode(opts.io_mode)
            .create(true)
            .capacity(opts.limits.capacity)
            .admission(opts.limits.admission)
            .write_budget(opts.limits.write_budget),
    )?;
    let result = play(&cache, &mut reader, opts);
    let closed = cache.close();
    drop(cache);
    let _ = std::fs::remove_file(opts.cache);
    let report = result?;
    closed?;
    Ok(report)
}

fn progress_bar(opts: &ReplayOptions<'_>) -> ProgressBar {
    if !opts.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let total = std::fs::metadata(opts.trace).map_or(0, |m| m.len());
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("replay {wide_bar} {percent}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn play(
    cache: &Cache,
    reader: &mut TraceReader,
    opts: &ReplayOptions<'_>,
) -> Result<ReplayReport, Error> {
    let max = cache.max_value_size();
    let mut r = ReplayReport {
        capacity: opts.limits.capacity,
        max_value_size: max,
        direct_io: cache.is_direct_io(),
        filtered: opts.limits.admission == Admission::Filtered,
        write_budget: opts.limits.write_budget,
        ..Default::default()
    };
    // Aligned, so that large values are read straight into it, as a careful caller would.
    let mut got = AlignedBuf::new(max as usize, 4096)?;
    let mut want = vec![0u8; max as usize];
    let bar = progress_bar(opts);
    let started = Instant::now();
    let mut in_cache = Duration::ZERO;
    while let Some(req) = reader.next_request().map_err(Error::invalid)? {
        if opts.limits.rate > 0 {
            let due = Duration::from_secs_f64(r.requests as f64 / opts.limits.rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let key = key_of(req.id);
        r.requests += 1;
        r.requested_bytes += req.size as u64;
        let t = Instant::now();
        let fetched = cache.get(&key, got.as_mut_slice());
        in_cache += t.elapsed();
        match fetched {
            Ok(Fetched::Copied(n)) => {
                r.hits += 1;
                fill_value(req.id, &mut want[..n]);
                if got.as_slice()[..n] != want[..n] {
                    r.wrong_values += 1;
                    eprintln!(
                        "dcache replay: request {}: object {} came back with wrong bytes",
                        r.requests, req.id
                    );
                }
            }
            Ok(Fetched::TooSmall(n)) => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("a value of {n} bytes is over the value limit of {max}"),
                ))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                r.misses += 1;
                r.missed_bytes += req.size as u64;
                if req.size as u64 > max {
                    r.too_large += 1;
                    continue;
                }
                let value = &mut want[..req.size as usize];
                fill_value(req.id, value);
                let t = Instant::now();
                let stored = cache.put(&key, value, 0);
                in_cache += t.elapsed();
                match stored {
                    Ok(()) => r.puts += 1,
                    Err(e) if e.kind() == ErrorKind::Declined => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e.context(format!("request {}", r.requests))),
        }
        if r.requests.is_multiple_of(4096) {
            bar.set_position(reader.consumed());
            bar.set_message(format!(
                "{} requests, miss ratio {:.3}",
                r.requests,
                r.miss_ratio()
            ));
        }
    }
    bar.finish_and_clear();
    r.seconds = started.elapsed().as_secs_f64();
    r.cache_seconds = in_cache.as_secs_f64();
    // What is still in the region buffer counts too: it reaches the device at the latest
    // when the cache closes.
    cache.flush()?;
    let stats = cache.stats();
    r.device_bytes_written = stats.bytes_written;
    r.reinserted = stats.reinserted;
    r.reinserted_bytes = stats.reinserted_bytes;
    r.promoted = stats.promoted;
    r.promoted_bytes = stats.promoted_bytes;
    r.ghost_hits = stats.ghost_hits;
    r.ghost_bytes = stats.ghost_bytes;
    r.declined = stats.declined;
    r.admission_bytes = stats.admission_bytes;
    Ok(r)
}
