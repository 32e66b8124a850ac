//! Fuzz targets on the stable toolchain (the `fuzzing` feature): structured input from
//! `arbitrary`, a mutation loop, and behaviour as feedback: an input whose outcome has a
//! signature not seen before joins the corpus of the run.
//!
//! - `decode`: every on-disk decoder (superblock, entry header, region trailer and summary)
//!   on raw bytes, its invariants checked (`dcache::fuzzing`);
//! - `image`: a real cache image, damaged (raw bytes, or fields behind recomputed checksums),
//!   then opened: the open fails cleanly or every get is a miss or the right bytes, and the
//!   cache still takes puts;
//! - `api`: a sequence of calls, across a clean reopen and a simulated crash, checked against
//!   a model of the contract (a get returns the latest value; after a crash, the latest
//!   flushed one, a later one, or a miss; never anything else).
//!
//! Each target first replays its corpus in `fuzz/corpus/<target>/` (seeds and every finding
//! turned into a regression case), then mutates for `DCACHE_FUZZ_SECONDS` (default 10; `make
//! fuzz DURATION=...` runs longer). A failing input is written to `target/fuzz-findings/` and
//! fails the test; `DCACHE_FUZZ_SEED` repeats a run; a run over `DCACHE_FUZZ_HANG_SECONDS`
//! (60) writes its input there and aborts.

mod common;

use arbitrary::{Arbitrary, Unstructured};
use common::{value_of, version_in, Rng};
use dcache::fuzzing::{self, ImageLayout, Seal};
use dcache::{Cache, CacheOptions, ErrorKind, Fetched, IoMode};
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a run of a target on one input says: a signature of the outcome (inputs with new
/// ones are kept), or an error for a broken contract.
type Outcome = Result<u64, String>;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target)
}

const INTERESTING: [u64; 10] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    u64::MAX,
];

/// One to eight of: a bit flipped, a byte set, an interesting little-endian number written,
/// bytes inserted, removed or copied, or a piece of another input spliced in.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.index(8) {
        let len = input.len();
        match rng.index(7) {
            0 if len > 0 => {
                let at = rng.index(len);
                input[at] ^= 1 << rng.index(8);
            }
            1 if len > 0 => {
                let at = rng.index(len);
                input[at] = rng.next() as u8;
            }
            2 if len > 0 => {
                let v = INTERESTING[rng.index(INTERESTING.len())].to_le_bytes();
                let n = [1, 2, 4, 8][rng.index(4)];
                let at = rng.index(len);
                let n = n.min(len - at);
                input[at..at + n].copy_from_slice(&v[..n]);
            }
            3 => {
                let at = rng.index(len + 1);
                let bytes: Vec<u8> = (0..1 + rng.index(16)).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            4 if len > 1 => {
                let at = rng.index(len);
                let n = 1 + rng.index((len - at).min(32));
                input.drain(at..at + n);
            }
            5 if len > 1 => {
                let from = rng.index(len);
                let n = 1 + rng.index((len - from).min(64));
                let piece = input[from..from + n].to_vec();
                let at = rng.index(len);
                input.splice(at..at, piece);
            }
            _ if !other.is_empty() => {
                let from = rng.index(other.len());
                let n = 1 + rng.index((other.len() - from).min(256));
                let at = rng.index(len + 1);
                let end = (at + n).min(len);
                input.splice(at..end, other[from..from + n].iter().copied());
            }
            _ => input.push(rng.next() as u8),
        }
    }
    input.truncate(1 << 16);
}

fn seconds() -> f64 {
    std::env::var("DCACHE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0)
}

fn findings_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("fuzz-findings");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Aborts the process, after writing the input to the findings, if one run of a target takes
/// longer than DCACHE_FUZZ_HANG_SECONDS (default 60): a hang is a finding too, and a run that
/// never returns could not report itself.
struct Watchdog {
    current: Arc<Mutex<(Option<Instant>, Vec<u8>)>>,
}

impl Watchdog {
    fn start(name: &'static str) -> Watchdog {
        let limit = std::env::var("DCACHE_FUZZ_HANG_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60.0);
        let current: Arc<Mutex<(Option<Instant>, Vec<u8>)>> = Arc::default();
        let watched = Arc::downgrade(&current);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let Some(current) = watched.upgrade() else {
                return;
            };
            let now = current.lock().unwrap();
            if now.0.is_some_and(|t| t.elapsed().as_secs_f64() > limit) {
                let file = findings_dir().join(format!(
                    "{name}-hang-{:016x}",
                    xxhash_rust::xxh3::xxh3_64(&now.1)
                ));
                std::fs::write(&file, &now.1).unwrap();
                eprintln!(
                    "fuzz {name}: one run took over {limit} s: {}",
                    file.display()
                );
                std::process::abort();
            }
        });
        Watchdog { current }
    }

    fn watch<T>(&self, input: &[u8], run: impl FnOnce() -> T) -> T {
        *self.current.lock().unwrap() = (Some(Instant::now()), input.to_vec());
        let out = run();
        self.current.lock().unwrap().0 = None;
        out
    }
}

/// Replays the corpus, then mutates for the time given; panics with the findings.
fn fuzz(name: &'static str, seeds: Vec<Vec<u8>>, target: impl Fn(&[u8]) -> Outcome) {
    let watchdog = Watchdog::start(name);
    let run = |input: &[u8]| -> Outcome {
        match watchdog.watch(input, || catch_unwind(AssertUnwindSafe(|| target(input)))) {
            Ok(outcome) => outcome,
            Err(panic) => Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into())),
        }
    };
    let mut corpus = seeds;
    if let Ok(dir) = std::fs::read_dir(corpus_dir(name)) {
        let mut files: Vec<_> = dir.map(|e| e.unwrap().path()).collect();
        files.sort();
        corpus.extend(files.iter().map(|f| std::fs::read(f).unwrap()));
    }
    let mut findings = Vec::new();
    let mut seen = HashSet::new();
    let report = |input: &[u8], why: String, findings: &mut Vec<String>| {
        let file =
            findings_dir().join(format!("{name}-{:016x}", xxhash_rust::xxh3::xxh3_64(input)));
        std::fs::write(&file, input).unwrap();
        findings.push(format!("{}: {why}", file.display()));
    };
    for input in &corpus {
        match run(input) {
            Ok(sig) => {
                seen.insert(sig);
            }
            Err(why) => report(input, why, &mut findings),
        }
    }
    let replayed = corpus.len();
    let seed = std::env::var("DCACHE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(0, |d| d.as_nanos() as u64) ^ xxhash_rust::xxh3::xxh3_64(name.as_bytes())
        });
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds());
    let mut runs = 0u64;
    while Instant::now() < deadline && findings.len() < 5 {
        let mut input = corpus[rng.index(corpus.len())].clone();
        let other = corpus[rng.index(corpus.len())].clone();
        mutate(&mut rng, &mut input, &other);
        runs += 1;
        match run(&input) {
            Ok(sig) => {
                if seen.insert(sig) && corpus.len() < 4096 {
                    corpus.push(input);
                }
            }
            Err(why) => report(&input, why, &mut findings),
        }
    }
    println!(
        "fuzz {name}: {replayed} corpus inputs replayed, {runs} mutated runs (seed {seed}), \
         {} outcomes seen, corpus {} at the end, {} findings",
        seen.len(),
        corpus.len(),
        findings.len()
    );
    assert!(findings.is_empty(), "fuzz {name}:\n{}", findings.join("\n"));
}

fn sig(parts: &[u64]) -> u64 {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.to_le_bytes()).collect();
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

// ---- images ---------------------------------------------------------------------------

const KEYS: usize = 60;

fn key(i: usize) -> Vec<u8> {
    format!("key/{i}").into_bytes()
}

/// The versions of each key the base images were built from: version v of key i has
/// `value_len(i, v)` bytes.
fn value_len(i: usize, v: u64) -> usize {
    16 + (i * 7919 + v as usize * 104_729) % 150_000
}

/// Two images of an 8 MiB cache that held versions 1..=3 of `KEYS` keys (some sealed regions,
/// some deletes): one closed cleanly, one copied while open (a crash).
fn base_images(dir: &Path) -> [Vec<u8>; 2] {
    let path = dir.join("base.dc");
    let opts = CacheOptions::new().create(true).capacity(8 << 20);
    let cache = Cache::open(&path, &opts).unwrap();
    for v in 1..=3u64 {
        for i in 0..KEYS {
            let k = key(i);
            cache.put(&k, &value_of(&k, v, value_len(i, v)), 0).unwrap();
            if (i + v as usize).is_multiple_of(11) {
                cache.delete(&k).unwrap();
            }
        }
        cache.flush().unwrap();
    }
    let crashed = std::fs::read(&path).unwrap();
    cache.close().unwrap();
    drop(cache);
    let clean = std::fs::read(&path).unwrap();
    [clean, crashed]
}

/// One change to an image.
#[derive(Arbitrary, Debug)]
enum Damage {
    /// Bytes written anywhere (checksums then catch it).
    Raw { offset: u32, bytes: Vec<u8> },
    /// A number written into a structure, whose checksum is then recomputed.
    Field {
        place: Place,
        at: u8,
        width: u8,
        value: u64,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Place {
    Superblock,
    Trailer { region: u8 },
    Summary { region: u8, record: u16 },
    Entry { region: u8, unit: u16 },
}

#[derive(Arbitrary, Debug)]
struct ImageInput {
    crashed: bool,
    damages: Vec<Damage>,
}

fn write_le(image: &mut [u8], at: usize, width: u8, value: u64) {
    let n = [1, 2, 4, 8][width as usize % 4];
    if let Some(dst) = image.get_mut(at..at + n) {
        dst.copy_from_slice(&value.to_le_bytes()[..n]);
    }
}

fn damage(image: &mut [u8], layout: &ImageLayout, d: &Damage) {
    let len = image.len();
    match d {
        Damage::Raw { offset, bytes } => {
            let at = *offset as usize % len;
            let n = bytes.len().min(len - at);
            image[at..at + n].copy_from_slice(&bytes[..n]);
        }
        Damage::Field {
            place,
            at,
            width,
            value,
        } => {
            let region = |r: u8| r as u32 % layout.region_count;
            let (offset, seal) = match *place {
                Place::Superblock => (0, Seal::Superblock),
                Place::Trailer { region: r } => {
                    (layout.trailer_offset(region(r)), Seal::Trailer(region(r)))
                }
                Place::Summary { region: r, record } => {
                    let t = layout.trailer_offset(region(r));
                    let back = (record as u64 + 1) * 24;
                    (t.saturating_sub(back), Seal::Summary(region(r)))
                }
                Place::Entry { region: r, unit } => {
                    let units = layout.region_size / layout.unit;
                    let o = layout.unit_offset(region(r), unit as u64 % units);
                    (o, Seal::Entry(o))
                }
            };
            write_le(image, offset as usize + (*at as usize % 64), *width, *value);
            fuzzing::reseal(image, layout, seal);
        }
    }
}

/// Opens the damaged image: a clean refusal, or a cache whose every get is a miss or a
/// version that was put for the key, that verifies without panicking, and takes a put.
fn image_target(dir: &Path, bases: &[Vec<u8>; 2], data: &[u8]) -> Outcome {
    let Ok(input) = ImageInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return Ok(0);
    };
    let mut image = bases[input.crashed as usize].clone();
    let layout = ImageLayout::of(&image).expect("the base image's layout");
    for d in input.damages.iter().take(16) {
        damage(&mut image, &layout, d);
    }
    let path = dir.join(format!("image-{:?}.dc", std::thread::current().id()));
    std::fs::write(&path, &image).unwrap();
    let opts = CacheOptions::new().io_mode(IoMode::Buffered);
    let cache = match Cache::open(&path, &opts) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Ok(sig(&[1, e.kind() as u64]));
        }
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut hits = 0u64;
    for i in 0..KEYS {
        let k = key(i);
        match cache.get(&k, &mut buf) {
            Ok(Fetched::Copied(n)) => {
                let v = version_in(&k, &buf[..n])
                    .ok_or_else(|| format!("key {i}: {n} bytes that are no version of it"))?;
                if !(1..=3).contains(&v) || n != value_len(i, v) {
                    return Err(format!("key {i}: version {v} of {n} bytes was never put"));
                }
                hits += 1;
            }
            Ok(Fetched::TooSmall(n)) => return Err(format!("key {i}: a value of {n} bytes")),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("key {i}: {e}")),
        }
    }
    let verified = cache
        .verify_all(|_, _| {})
        .map(|r| r.damaged)
        .unwrap_or(u64::MAX);
    let r = cache.recovery();
    let fresh = b"after/damage";
    let value = value_of(fresh, 9, 5000);
    if cache.put(fresh, &value, 0).is_ok() {
        match cache.get(fresh, &mut buf) {
            Ok(Fetched::Copied(n)) if buf[..n] == value[..] => {}
            other => return Err(format!("a put after the open read back as {other:?}")),
        }
    }
    drop(cache);
    let _ = std::fs::remove_file(&path);
    Ok(sig(&[
        2,
        hits.min(KEYS as u64) / 8,
        r.was_clean as u64,
        r.regions_scanned.min(3) as u64,
        (r.entries_dropped > 0) as u64,
        r.regions_lost.min(2) as u64,
        verified.min(2),
    ]))
}

// ---- the API against a model ----------------------------------------------------------

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Call {
    Put { key: u8, len: u16, big: bool },
    Get { key: u8 },
    Range { key: u8, offset: u32, len: u16 },
    Delete { key: u8 },
    Writer { key: u8, len: u16, pieces: u8 },
    Flush,
    Reopen,
    Crash,
}

/// A key's state: absent (None), or a version of a length.
type State = Option<(u64, usize)>;

/// What a key may read as: exactly its latest state, or after a crash any of several: its
/// durable states, and those set since (which may or may not have reached the device).
#[derive(Clone, Debug)]
struct KeyModel {
    /// The states a get may find; a miss is always allowed (eviction).
    allowed: Vec<State>,
    /// The states the key may have on the device as of the last flush.
    durable: Vec<State>,
    /// States set since the last flush.
    since_flush: Vec<State>,
}

impl Default for KeyModel {
    fn default() -> KeyModel {
        KeyModel {
            allowed: vec![None],
            durable: vec![None],
            since_flush: Vec::new(),
        }
    }
}

impl KeyModel {
    fn set(&mut self, state: State) {
        self.allowed = vec![state];
        self.since_flush.push(state);
    }

    fn flushed(&mut self) {
        self.durable = self.allowed.clone();
        self.since_flush.clear();
    }

    fn crashed(&mut self) {
        for s in self.durable.iter().chain(&self.since_flush) {
            if !self.allowed.contains(s) {
                self.allowed.push(*s);
            }
        }
    }
}

fn api_target(dir: &Path, data: &[u8]) -> Outcome {
    let Ok(calls) = Vec::<Call>::arbitrary_take_rest(Unstructured::new(data)) else {
        return Ok(0);
    };
    let base = dir.join(format!("api-{:?}", std::thread::current().id()));
    let path = base.with_extension("dc");
    let _ = std::fs::remove_file(&path);
    let open = |p: &Path| Cache::open(p, &CacheOptions::new().create(true).capacity(8 << 20));
    let mut cache = Some(open(&path).map_err(|e| format!("open: {e}"))?);
    let mut path = path;
    let mut model: HashMap<u8, KeyModel> = HashMap::new();
    let mut version = 0u64;
    let mut seen = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let name = |k: u8| format!("k{}", k % 16).into_bytes();
    for (step, call) in calls.iter().take(80).enumerate() {
        let c = cache.as_ref().unwrap();
        let check = |k: u8,
                     got: Option<&[u8]>,
                     model: &HashMap<u8, KeyModel>|
         -> Result<(), String> {
            let Some(got) = got else { return Ok(()) };
            let m = model.get(&(k % 16)).cloned().unwrap_or_default();
            let v = version_in(&name(k), got);
            let ok = m.allowed.iter().any(|s| matches!((s, v), (Some((want, len)), Some(have)) if *want == have && *len == got.len()));
            match ok {
                true => Ok(()),
                false => Err(format!(
                    "step {step}: key {} read version {v:?} ({} bytes); allowed {:?}",
                    k % 16,
                    got.len(),
                    m.allowed
                )),
            }
        };
        let kind = match *call {
            Call::Put { key, len, big } => {
                version += 1;
                let len = if big {
                    100_000 + len as usize * 4
                } else {
                    16 + len as usize
                };
                let k = name(key);
                match c.put(&k, &value_of(&k, version, len), 0) {
                    Ok(()) => model.entry(key % 16).or_default().set(Some((version, len))),
                    Err(e) => return Err(format!("step {step}: put: {e}")),
                }
                1
            }
            Call::Writer { key, len, pieces } => {
                version += 1;
                let len = 16 + len as usize * 3;
                let k = name(key);
                let value = value_of(&k, version, len);
                let mut w = c
                    .writer(&k, 0)
                    .map_err(|e| format!("step {step}: writer: {e}"))?;
                let piece = len / (1 + pieces as usize % 5) + 1;
                for part in value.chunks(piece) {
                    w.write(part)
                        .map_err(|e| format!("step {step}: write: {e}"))?;
                }
                w.commit()
                    .map_err(|e| format!("step {step}: commit: {e}"))?;
                model.entry(key % 16).or_default().set(Some((version, len)));
                2
            }
            Call::Get { key } => match c.get(&name(key), &mut buf) {
                Ok(Fetched::Copied(n)) => {
                    check(key, Some(&buf[..n]), &model)?;
                    3
                }
                Ok(Fetched::TooSmall(n)) => return Err(format!("step {step}: {n} bytes")),
                Err(e) if e.kind() == ErrorKind::NotFound => 4,
                Err(e) => return Err(format!("step {step}: get: {e}")),
            },
            Call::Range { key, offset, len } => {
                let k = name(key);
                let mut whole = vec![0u8; 1 << 20];
                let size = match c.get(&k, &mut whole) {
                    Ok(Fetched::Copied(n)) => n,
                    _ => 0,
                };
                let offset = if size == 0 {
                    offset as u64
                } else {
                    offset as u64 % (size as u64 + 1)
                };
                let mut part = vec![0u8; len as usize];
                match c.get_range(&k, offset, &mut part) {
                    Ok(n) => {
                        // The range must be the same bytes as the whole value read just before,
                        // unless the key changed in between (it cannot: one thread).
                        if size > 0 && whole[offset as usize..offset as usize + n] != part[..n] {
                            return Err(format!(
                                "step {step}: range {offset}+{n} of key {} differs from its value",
                                key % 16
                            ));
                        }
                        if size > 0 {
                            check(key, Some(&whole[..size]), &model)?;
                        }
                        5
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Range) => 6,
                    Err(e) => return Err(format!("step {step}: range: {e}")),
                }
            }
            Call::Delete { key } => {
                match c.delete(&name(key)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("step {step}: delete: {e}")),
                }
                model.entry(key % 16).or_default().set(None);
                7
            }
            Call::Flush => {
                c.flush().map_err(|e| format!("step {step}: flush: {e}"))?;
                model.values_mut().for_each(KeyModel::flushed);
                8
            }
            Call::Reopen => {
                cache
                    .take()
                    .unwrap()
                    .close()
                    .map_err(|e| format!("step {step}: close: {e}"))?;
                model.values_mut().for_each(KeyModel::flushed);
                cache = Some(open(&path).map_err(|e| format!("step {step}: reopen: {e}"))?);
                9
            }
            Call::Crash => {
                // What the device holds now is what a reopen after a kill finds.
                let image = base.with_extension(format!("crash{step}.dc"));
                std::fs::copy(&path, &image).unwrap();
                drop(cache.take());
                let _ = std::fs::remove_file(&path);
                path = image;
                model.values_mut().for_each(KeyModel::crashed);
                cache =
                    Some(open(&path).map_err(|e| format!("step {step}: open after a crash: {e}"))?);
                10
            }
        };
        seen |= 1 << kind;
    }
    drop(cache);
    let _ = std::fs::remove_file(&path);
    Ok(seen)
}

// ---- the targets ----------------------------------------------------------------------

/// Seeds for `decode`, from a real cache: a selector byte (which decoder; whether to
/// recompute the checksum first), the cache id, then the bytes.
fn decode_seeds(bases: &[Vec<u8>; 2]) -> Vec<Vec<u8>> {
    let image = &bases[0];
    let layout = ImageLayout::of(image).unwrap();
    let id = layout.cache_id.to_le_bytes();
    let tail_end = layout.trailer_offset(0) as usize + layout.unit as usize;
    let entry = layout.unit_offset(0, 0) as usize;
    let trailer = layout.trailer_offset(0) as usize;
    vec![
        [&[0u8][..], &id, &image[..4096]].concat(),
        [&[1u8][..], &id, &image[entry..entry + 4096]].concat(),
        [&[2u8][..], &id, &image[tail_end - 8192..trailer + 64]].concat(),
    ]
}

/// Runs a decoder on the input; with the selector's bit 2, after recomputing the checksum the
/// decoder checks, so that it meets values that pass it.
fn decode_target(data: &[u8], image_len: u64) -> Outcome {
    if data.len() < 9 {
        return Ok(0);
    }
    let (which, cache_id) = (data[0], u64::from_le_bytes(data[1..9].try_into().unwrap()));
    let mut bytes = data[9..].to_vec();
    let layout = ImageLayout {
        cache_id,
        unit: 64,
        region_size: bytes.len() as u64,
        region_count: 1,
        data_start: 0,
    };
    if which & 4 != 0 && bytes.len() >= 160 {
        let seal = match which % 3 {
            0 => Seal::Superblock,
            1 => Seal::Entry(0),
            _ => Seal::Trailer(0),
        };
        fuzzing::reseal(&mut bytes, &layout, seal);
    }
    let valid = match which % 3 {
        0 => fuzzing::decode_superblock(&bytes, image_len),
        1 => fuzzing::decode_entry_header(&bytes, cache_id, 1 << 20, which >> 3),
        _ => fuzzing::decode_region_tail(&bytes, cache_id, image_len, which >> 3),
    };
    Ok(sig(&[(which % 3) as u64, valid as u64]))
}

/// With DCACHE_FUZZ_WRITE_SEEDS=1, the seeds of a target go into its corpus directory.
fn save_seeds(target: &str, seeds: &[Vec<u8>]) {
    if std::env::var_os("DCACHE_FUZZ_WRITE_SEEDS").is_some() {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed).unwrap();
        }
    }
}

fn with_bases<T>(f: impl FnOnce(&Path, &[Vec<u8>; 2]) -> T) -> T {
    let dir = common::scratch();
    let bases = base_images(dir.path());
    f(dir.path(), &bases)
}

#[test]
fn fuzz_decode() {
    with_bases(|_, bases| {
        let len = bases[0].len() as u64;
        let seeds = decode_seeds(bases);
        save_seeds("decode", &seeds);
        fuzz("decode", seeds, |d| decode_target(d, len));
    });
}

#[test]
fn fuzz_image() {
    with_bases(|dir, bases| {
        let seeds = vec![vec![0u8; 4], vec![1u8; 64], (0..255).collect()];
        save_seeds("image", &seeds);
        fuzz("image", seeds, |d| image_target(dir, bases, d));
    });
}

#[test]
fn fuzz_api() {
    let dir = common::scratch();
    let seeds: Vec<Vec<u8>> = vec![
        (0..=255).collect(),
        vec![7u8; 300],
        (0..600).map(|i| (i * 37 % 251) as u8).collect(),
    ];
    save_seeds("api", &seeds);
    fuzz("api", seeds, |d| api_target(dir.path(), d));
}

/// The model itself: it refuses what the contract forbids, so that `fuzz_api` can fail.
#[test]
fn the_model_refuses_what_the_contract_forbids() {
    let (v1, v2, v3) = (Some((1, 10)), Some((2, 10)), Some((3, 10)));
    let mut m = KeyModel::default();
    m.set(v1);
    m.flushed();
    m.set(v2);
    assert_eq!(m.allowed, [v2], "before a crash, only the latest");
    m.crashed();
    assert!(m.allowed.contains(&v1) && m.allowed.contains(&v2));
    let mut m = KeyModel::default();
    m.set(v1);
    m.set(v2);
    m.flushed();
    m.set(v3);
    m.crashed();
    assert!(
        !m.allowed.contains(&v1),
        "a value older than the flushed one came back"
    );
    assert!(
        !m.allowed.contains(&None),
        "a flushed put vanished (a miss is checked apart)"
    );
    let mut m = KeyModel::default();
    m.set(v1);
    m.set(None);
    m.flushed();
    m.crashed();
    assert_eq!(m.allowed, [None], "a flushed delete came undone");
}
