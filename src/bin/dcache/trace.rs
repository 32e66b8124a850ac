//! Request traces: libCacheSim's `oracleGeneral` binary format and a `time,id,size` CSV, read
//! record by record with the record's number in every error; and the generator of the three
//! synthetic shapes the cache policy is judged on.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// One request of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub time: u32,
    pub id: u64,
    pub size: u32,
    /// The index of the next request for the same object, -1 if none (`oracleGeneral` only;
    /// -1 in a CSV).
    pub next: i64,
}

/// An `oracleGeneral` record: u32 time, u64 id, u32 size, i64 next access, little-endian.
pub const ORACLE_RECORD_LEN: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    /// libCacheSim's oracleGeneral: 24-byte little-endian records.
    Oracle,
    /// Lines of `time,id,size` (a first line `time,id,size` is a header).
    Csv,
}

impl TraceFormat {
    /// CSV for a `.csv` file, oracleGeneral for anything else.
    pub fn of_path(path: &Path) -> TraceFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => TraceFormat::Csv,
            _ => TraceFormat::Oracle,
        }
    }
}

/// Reads a trace one request at a time; an error names the record (counted from 1).
pub struct TraceReader {
    input: Box<dyn BufRead>,
    format: TraceFormat,
    /// Records read so far.
    record: u64,
    /// CSV lines read so far (a header line is one, and not a record).
    line: u64,
    /// Bytes of the trace read so far.
    consumed: u64,
}

impl TraceReader {
    pub fn open(path: &Path, format: TraceFormat) -> Result<TraceReader, String> {
        let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TraceReader::new(
            Box::new(BufReader::with_capacity(1 << 20, file)),
            format,
        ))
    }

    pub fn new(input: Box<dyn BufRead>, format: TraceFormat) -> TraceReader {
        TraceReader {
            input,
            format,
            record: 0,
            line: 0,
            consumed: 0,
        }
    }

    /// Bytes of the trace read so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next request, None at the end of the trace.
    pub fn next_request(&mut self) -> Result<Option<Request>, String> {
        let request = match self.format {
            TraceFormat::Oracle => self.next_oracle()?,
            TraceFormat::Csv => self.next_csv()?,
        };
        match request {
            Some(r) if r.size == 0 => Err(format!("record {} has size 0", self.record)),
            other => Ok(other),
        }
    }

    fn next_oracle(&mut self) -> Result<Option<Request>, String> {
        let mut b = [0u8; ORACLE_RECORD_LEN];
        let mut got = 0;
        while got < b.len() {
            match self.input.read(&mut b[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("record {}: {e}", self.record + 1)),
            }
        }
        if got == 0 {
            return Ok(None);
        }
        self.record += 1;
        self.consumed += got as u64;
        if got < b.len() {
            return Err(format!(
                "record {} is truncated: {got} of {ORACLE_RECORD_LEN} bytes",
                self.record
            ));
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        Ok(Some(Request {
            time: u32_at(0),
            id: u64_at(4),
            size: u32_at(12),
            next: u64_at(16) as i64,
        }))
    }

    fn next_csv(&mut self) -> Result<Option<Request>, String> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .input
                .read_line(&mut line)
                .map_err(|e| format!("record {}: {e}", self.record + 1))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            self.consumed += n as u64;
            let text = line.trim_end_matches(['\n', '\r']);
            if self.line == 1 && text.replace(' ', "") == "time,id,size" {
                continue;
            }
            self.record += 1;
            return parse_csv(text).map(Some).ok_or_else(|| {
                format!(
                    "record {} (line {}) is not `time,id,size`: {text:?}",
                    self.record, self.line
                )
            });
        }
    }
}

fn parse_csv(text: &str) -> Option<Request> {
    let mut fields = text.split(',').map(str::trim);
    let time = fields.next()?.parse().ok()?;
    let id = fields.next()?.parse().ok()?;
    let size = fields.next()?.parse().ok()?;
    fields.next().is_none().then_some(Request {
        time,
        id,
        size,
        next: -1,
    })
}

/// Writes requests in the format given.
pub fn write_trace(path: &Path, format: TraceFormat, requests: &[Request]) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    if format == TraceFormat::Csv {
        writeln!(out, "time,id,size")?;
    }
    for r in requests {
        match format {
            TraceFormat::Oracle => {
                out.write_all(&r.time.to_le_bytes())?;
                out.write_all(&r.id.to_le_bytes())?;
                out.write_all(&r.size.to_le_bytes())?;
                out.write_all(&r.next.to_le_bytes())?;
            }
            TraceFormat::Csv => writeln!(out, "{},{},{}", r.time, r.id, r.size)?,
        }
    }
    out.flush()
}

/// The shapes of traffic the cache policy is judged on. Their parameters are fixed here, so
/// that every policy change is judged on the same traces (see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// Static Zipf popularity (alpha 0.9) over 100,000 objects.
    Zipf,
    /// Popularity that drifts (new objects enter at the top and cool down), with one-hit
    /// wonders: 30% of requests are for objects requested once.
    Drift,
    /// Static Zipf popularity with a scan of 10,000 cold objects every 40,000 requests.
    Scan,
}

/// The fixed parameters of the shapes.
pub const OBJECTS: u64 = 100_000;
pub const ZIPF_ALPHA: f64 = 0.9;
/// Object sizes: lognormal, median 16 KiB, sigma 1.0, clamped to [256 B, 1 MiB].
pub const SIZE_MEDIAN: f64 = 16384.0;
pub const SIZE_SIGMA: f64 = 1.0;
pub const SIZE_MIN: u32 = 256;
pub const SIZE_MAX: u32 = 1 << 20;
/// Drift: the ranking slides by one object every this many requests.
pub const DRIFT_EVERY: u64 = 4;
pub const ONE_HIT_SHARE: f64 = 0.3;
/// Scan: this many cold objects, read in order, every `SCAN_PERIOD` requests.
pub const SCAN_OBJECTS: u64 = 10_000;
pub const SCAN_PERIOD: u64 = 40_000;

/// Ids of one-hit wonders and of scanned objects start here, apart from the popular ones.
const ONE_HIT_BASE: u64 = 1 << 40;
const COLD_BASE: u64 = 1 << 41;

/// SplitMix64: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// Ranks 0.. drawn with probability proportional to 1 / (rank + 1)^alpha.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: u64, alpha: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n as usize);
        let mut sum = 0.0;
        for r in 0..n {
            sum += 1.0 / ((r + 1) as f64).powf(alpha);
            cdf.push(sum);
        }
        cdf.iter_mut().for_each(|c| *c /= sum);
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1) as u64
    }
}

/// An object's size: lognormal, from its id and the seed alone, so it never changes.
fn size_of(id: u64, seed: u64) -> u32 {
    let mut rng = Rng(id ^ seed.rotate_left(17));
    let (u1, u2) = (rng.unit(), rng.unit());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    let size = (SIZE_MEDIAN.ln() + SIZE_SIGMA * z).exp();
    (size as u32).clamp(SIZE_MIN, SIZE_MAX)
}

/// `n` requests of `shape`, with their next-access indexes filled in.
pub fn generate(shape: Shape, n: u64, seed: u64) -> Vec<Request> {
    let zipf = Zipf::new(OBJECTS, ZIPF_ALPHA);
    let mut rng = Rng(seed);
    let mut one_hits = 0u64;
    let mut requests = Vec::with_capacity(n as usize);
    let mut i = 0u64;
    while i < n {
        let ids: Vec<u64> = match shape {
            Shape::Zipf => vec![zipf.sample(&mut rng)],
            Shape::Drift if rng.unit() < ONE_HIT_SHARE => {
                one_hits += 1;
                vec![ONE_HIT_BASE + one_hits]
            }
            // The object of rank r now: new ids enter at rank 0 and slide down.
            Shape::Drift => vec![i / DRIFT_EVERY + OBJECTS - 1 - zipf.sample(&mut rng)],
            Shape::Scan if i > 0 && i.is_multiple_of(SCAN_PERIOD) => {
                (0..SCAN_OBJECTS).map(|k| COLD_BASE + k).collect()
            }
            Shape::Scan => vec![zipf.sample(&mut rng)],
        };
        for id in ids.into_iter().take((n - i) as usize) {
            requests.push(Request {
                time: i as u32,
                id,
                size: size_of(id, seed),
                next: -1,
            });
            i += 1;
        }
    }
    fill_next_access(&mut requests);
    requests
}

/// Sets each request's `next` to the index of the next request for the same object.
fn fill_next_access(requests: &mut [Request]) {
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for i in (0..requests.len()).rev() {
        requests[i].next = seen.insert(requests[i].id, i).map_or(-1, |n| n as i64);
    }
}

/// What a trace holds: its requests, its objects, and the bytes of its objects (its
/// footprint, what a cache that missed nothing but the first request would hold).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub requests: u64,
    pub objects: u64,
    pub footprint_bytes: u64,
    pub requested_bytes: u64,
}

pub fn summarize(requests: &[Request]) -> Summary {
    let mut sizes: HashMap<u64, u32> = HashMap::new();
    let mut s = Summary::default();
    for r in requests {
        s.requests += 1;
        s.requested_bytes += r.size as u64;
        sizes.insert(r.id, r.size);
    }
    s.objects = sizes.len() as u64;
    s.footprint_bytes = sizes.values().map(|&v| v as u64).sum();
    s
}
