//! The soak run (`make soak DURATION=10m`; not part of `make test`): a child process (this
//! test binary, re-executed) runs puts, gets, range reads, deletes and writers from 4 threads
//! on one cache file, checking every value it reads, while read and write errors are injected
//! on parts of the file (dio::fault); the parent kills it with SIGKILL every 20 to 60 s,
//! damages a few blocks of the file, and starts the next round on the same file. At the end
//! the parent reopens the cache and checks every key, and prints a report: operations, kills,
//! values checked, misses by cause, and wrong values, which must be 0.
//!
//! What a read may return: each thread owns a quarter of the keys, so it knows the state it
//! last gave each key this round; a value read must be that one (or a miss: eviction, damage,
//! injected errors). A key not touched this round may hold what the journal says was durable
//! at the child's last successful flush, or anything put after it; never an older value, nor
//! one deleted before that flush. Every value names its key and version and is checked whole.

mod common;

use common::{value_of, version_in, Rng};
use dcache::fault::{self, Fault};
use dcache::{Cache, CacheOptions, ErrorKind, Fetched};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const THREADS: u64 = 4;
const KEYS: u64 = 4000;
const CAPACITY: u64 = 256 << 20;

fn key(k: u64) -> Vec<u8> {
    format!("soak/{k}").into_bytes()
}

/// What a key is known to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    /// This version, of this length.
    Value(u64, usize),
    /// Deleted at this version.
    Deleted(u64),
    /// A put or delete failed after this version: that version, a later one, or nothing.
    AtLeast(u64),
}

impl Known {
    /// Whether version `v` may be read, where this is what the key held last.
    fn exact_allows(self, v: u64, len: usize) -> bool {
        match self {
            Known::Value(want, want_len) => v == want && len == want_len,
            Known::Deleted(_) => false,
            Known::AtLeast(floor) => v >= floor,
        }
    }

    /// Whether version `v` may be read, where this is what was durable at the last flush.
    fn floor_allows(self, v: u64) -> bool {
        match self {
            Known::Value(floor, _) | Known::AtLeast(floor) => v >= floor,
            Known::Deleted(at) => v > at,
        }
    }

    fn encode(self) -> String {
        match self {
            Known::Value(v, len) => format!("v {v} {len}"),
            Known::Deleted(v) => format!("d {v}"),
            Known::AtLeast(v) => format!("a {v}"),
        }
    }

    fn decode(s: &str) -> Option<Known> {
        let mut f = s.split(' ');
        let (kind, v) = (f.next()?, f.next()?.parse().ok()?);
        match kind {
            "v" => Some(Known::Value(v, f.next()?.parse().ok()?)),
            "d" => Some(Known::Deleted(v)),
            "a" => Some(Known::AtLeast(v)),
            _ => None,
        }
    }
}

/// The journal: each key's state at the last successful flush, written whole and renamed.
fn read_journal(path: &Path) -> HashMap<u64, Known> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let (k, rest) = l.split_once(' ')?;
            Some((k.parse().ok()?, Known::decode(rest)?))
        })
        .collect()
}

fn write_journal(path: &Path, states: &HashMap<u64, Known>) {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).unwrap();
    for (k, s) in states {
        writeln!(f, "{k} {}", s.encode()).unwrap();
    }
    f.sync_all().unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The child's counters, printed as one line the parent keeps the last of.
#[derive(Default)]
struct Counts {
    puts: AtomicU64,
    gets: AtomicU64,
    ranges: AtomicU64,
    deletes: AtomicU64,
    writers: AtomicU64,
    flushes: AtomicU64,
    flushes_failed: AtomicU64,
    checked: AtomicU64,
    misses: AtomicU64,
    io_errors: AtomicU64,
    other_errors: AtomicU64,
    faults_set: AtomicU64,
    wrong: AtomicU64,
}

const COUNT_NAMES: [&str; 13] = [
    "puts",
    "gets",
    "ranges",
    "deletes",
    "writers",
    "flushes",
    "flushes_failed",
    "checked",
    "misses",
    "io_errors",
    "other_errors",
    "faults_set",
    "wrong",
];

impl Counts {
    fn all(&self) -> [&AtomicU64; 13] {
        [
            &self.puts,
            &self.gets,
            &self.ranges,
            &self.deletes,
            &self.writers,
            &self.flushes,
            &self.flushes_failed,
            &self.checked,
            &self.misses,
            &self.io_errors,
            &self.other_errors,
            &self.faults_set,
            &self.wrong,
        ]
    }

    fn line(&self, cache: &Cache) -> String {
        let s = cache.stats();
        let mut out = String::from("COUNTS");
        for (name, c) in COUNT_NAMES.iter().zip(self.all()) {
            out += &format!(" {name}={}", c.load(Relaxed));
        }
        out += &format!(
            " evictions={} checksum_failures={} expirations={} write_entries_dropped={} \
             recovery_entries_dropped={} recovery_regions_lost={}",
            s.evictions,
            s.checksum_failures,
            s.expirations,
            s.write_entries_dropped,
            s.recovery.entries_dropped,
            s.recovery_regions_lost
        );
        out
    }
}

/// One thread's keys and what it knows of them.
struct Worker<'a> {
    cache: &'a Cache,
    counts: &'a Counts,
    /// What this thread set this round (shared with the flusher, which journals it).
    known: &'a Mutex<HashMap<u64, Known>>,
    floor: &'a HashMap<u64, Known>,
    next_version: &'a AtomicU64,
    rng: Rng,
    thread: u64,
}

impl Worker<'_> {
    fn wrong(&self, what: String) {
        self.counts.wrong.fetch_add(1, Relaxed);
        println!("WRONG {what}");
    }

    fn error(&self, e: &dcache::Error) {
        match e.kind() {
            ErrorKind::NotFound => self.counts.misses.fetch_add(1, Relaxed),
            ErrorKind::Io => self.counts.io_errors.fetch_add(1, Relaxed),
            _ => self.counts.other_errors.fetch_add(1, Relaxed),
        };
    }

    /// Checks a value read for key `k`.
    fn check(&self, k: u64, v: &[u8]) {
        self.counts.checked.fetch_add(1, Relaxed);
        let name = key(k);
        let Some(version) = version_in(&name, v) else {
            return self.wrong(format!(
                "key {k}: {} bytes that are no version of it",
                v.len()
            ));
        };
        let known = self.known.lock().unwrap().get(&k).copied();
        let ok = match known {
            Some(state) => state.exact_allows(version, v.len()),
            None => self.floor.get(&k).is_none_or(|f| f.floor_allows(version)),
        };
        if !ok {
            let floor = self.floor.get(&k);
            self.wrong(format!(
                "key {k}: version {version} ({} bytes); this round {known:?}, durable {floor:?}",
                v.len()
            ));
        }
    }

    fn set(&self, k: u64, state: Known) {
        self.known.lock().unwrap().insert(k, state);
    }

    /// After a failed put or delete: what the key held, or what was tried.
    fn uncertain(&self, k: u64) {
        let mut known = self.known.lock().unwrap();
        let floor = match known.get(&k).or(self.floor.get(&k)) {
            Some(Known::Value(v, _) | Known::Deleted(v) | Known::AtLeast(v)) => *v,
            None => 0,
        };
        known.insert(k, Known::AtLeast(floor));
    }

    fn step(&mut self, buf: &mut [u8]) {
        let k = self.rng.below(KEYS / THREADS) * THREADS + self.thread;
        let name = key(k);
        let op = self.rng.below(100);
        let len = match self.rng.below(10) {
            0 => 100_000 + self.rng.below(300_000) as usize,
            1..=3 => 4096 + self.rng.below(60_000) as usize,
            _ => 16 + self.rng.below(4000) as usize,
        };
        match op {
            0..=39 => {
                let version = self.next_version.fetch_add(1, Relaxed);
                self.counts.puts.fetch_add(1, Relaxed);
                match self.cache.put(&name, &value_of(&name, version, len), 0) {
                    Ok(()) => self.set(k, Known::Value(version, len.max(16))),
                    Err(e) => {
                        self.error(&e);
                        self.uncertain(k);
                    }
                }
            }
            40..=49 => {
                let version = self.next_version.fetch_add(1, Relaxed);
                self.counts.writers.fetch_add(1, Relaxed);
                let value = value_of(&name, version, len);
                let stored = self.cache.writer(&name, 0).and_then(|mut w| {
                    for piece in value.chunks(1 + self.rng.below(70_000) as usize) {
                        w.write(piece)?;
                    }
                    w.commit()
                });
                match stored {
                    Ok(()) => self.set(k, Known::Value(version, value.len())),
                    Err(e) => {
                        self.error(&e);
                        self.uncertain(k);
                    }
                }
            }
            50..=54 => {
                let version = self.next_version.fetch_add(1, Relaxed);
                self.counts.deletes.fetch_add(1, Relaxed);
                match self.cache.delete(&name) {
                    Ok(()) => self.set(k, Known::Deleted(version)),
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        self.set(k, Known::Deleted(version))
                    }
                    Err(e) => {
                        self.error(&e);
                        self.uncertain(k);
                    }
                }
            }
            55..=84 => {
                self.counts.gets.fetch_add(1, Relaxed);
                match self.cache.get(&name, buf) {
                    Ok(Fetched::Copied(n)) => self.check(k, &buf[..n]),
                    Ok(Fetched::TooSmall(n)) => self.wrong(format!("key {k}: {n} bytes")),
                    Err(e) => self.error(&e),
                }
            }
            _ => {
                self.counts.ranges.fetch_add(1, Relaxed);
                let known = self.known.lock().unwrap().get(&k).copied();
                let Some(Known::Value(version, len)) = known else {
                    return;
                };
                let offset = self.rng.below(len as u64);
                let n = (1 + self.rng.below(200_000) as usize).min(buf.len());
                match self.cache.get_range(&name, offset, &mut buf[..n]) {
                    Ok(got) => {
                        self.counts.checked.fetch_add(1, Relaxed);
                        let want = value_of(&name, version, len);
                        let end = (offset as usize + got).min(len);
                        if buf[..got] != want[offset as usize..end] {
                            self.wrong(format!(
                                "key {k}: range {offset}+{got} of version {version} differs"
                            ));
                        }
                    }
                    Err(e) => self.error(&e),
                }
            }
        }
    }
}

/// The child: runs only when re-executed by `soak`.
#[test]
fn soak_child_process() {
    let (Ok(path), Ok(journal), Ok(round)) = (
        std::env::var("DCACHE_SOAK_PATH"),
        std::env::var("DCACHE_SOAK_JOURNAL"),
        std::env::var("DCACHE_SOAK_ROUND"),
    ) else {
        return;
    };
    let (path, journal) = (PathBuf::from(path), PathBuf::from(journal));
    let round: u64 = round.parse().unwrap();
    let floor = read_journal(&journal);
    let opts = CacheOptions::new().create(true).capacity(CAPACITY);
    let cache = Cache::open(&path, &opts).unwrap();
    let counts = Counts::default();
    let known: Vec<Mutex<HashMap<u64, Known>>> =
        (0..THREADS).map(|_| Mutex::new(HashMap::new())).collect();
    let next_version = AtomicU64::new((round + 1) << 40);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (cache, counts, known, floor, next_version, stop) = (
                &cache,
                &counts,
                &known[t as usize],
                &floor,
                &next_version,
                &stop,
            );
            s.spawn(move || {
                let mut w = Worker {
                    cache,
                    counts,
                    known,
                    floor,
                    next_version,
                    rng: Rng(((round << 8 | t).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1),
                    thread: t,
                };
                let mut buf = vec![0u8; 1 << 20];
                while !stop.load(Relaxed) {
                    w.step(&mut buf);
                }
            });
        }
        // The flusher: journals what was set before each successful flush; and the chaos: a
        // read or write error on a part of the file now and then, for a moment.
        let mut rng = Rng(round * 7 + 3);
        let faults_on = std::env::var("DCACHE_SOAK_FAULTS").map_or(true, |v| v != "0");
        let mut last_report = Instant::now();
        let mut fault_until: Option<Instant> = None;
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let mut states = floor.clone();
            for k in &known {
                states.extend(k.lock().unwrap().iter().map(|(k, s)| (*k, *s)));
            }
            counts.flushes.fetch_add(1, Relaxed);
            match cache.flush() {
                Ok(()) => write_journal(&journal, &states),
                Err(_) => {
                    counts.flushes_failed.fetch_add(1, Relaxed);
                }
            }
            match fault_until {
                Some(t) if Instant::now() >= t => {
                    fault::clear(&path).unwrap();
                    fault_until = None;
                }
                None if faults_on && rng.below(15) == 0 => {
                    let start = (1 << 20) + rng.below(CAPACITY - (2 << 20));
                    let bytes = start..start + (1 << 20);
                    let f = match rng.below(2) {
                        0 => Fault::unreadable(bytes),
                        _ => Fault::unwritable(bytes, libc::EIO),
                    };
                    fault::set(&path, vec![f]).unwrap();
                    counts.faults_set.fetch_add(1, Relaxed);
                    fault_until = Some(Instant::now() + Duration::from_millis(300));
                }
                _ => {}
            }
            if last_report.elapsed() > Duration::from_millis(500) {
                println!("{}", counts.line(&cache));
                std::io::stdout().flush().unwrap();
                last_report = Instant::now();
            }
            if stop.load(Relaxed) {
                break;
            }
        }
    });
}

fn duration() -> Duration {
    let text = std::env::var("DCACHE_SOAK_SECONDS").unwrap_or_else(|_| "600".into());
    Duration::from_secs_f64(text.parse().expect("DCACHE_SOAK_SECONDS: seconds"))
}

/// Sums the child's COUNTS lines (the last of each round) into `total`.
fn add_counts(total: &mut Vec<(String, u64)>, line: &str) {
    for field in line.split(' ').skip(1) {
        let (name, v) = field.split_once('=').unwrap();
        let v: u64 = v.parse().unwrap();
        match total.iter_mut().find(|(n, _)| n == name) {
            Some((_, t)) => *t += v,
            None => total.push((name.to_string(), v)),
        }
    }
}

#[test]
#[ignore = "the soak run: make soak DURATION=10m"]
fn soak() {
    let dir = tempfile::tempdir_in(Path::new(env!("CARGO_MANIFEST_DIR")).join("target")).unwrap();
    let path = dir.path().join("soak.dc");
    let journal = dir.path().join("journal");
    let deadline = Instant::now() + duration();
    let (kill_min, kill_max) = (
        std::env::var("DCACHE_SOAK_KILL_MIN").map_or(20, |s| s.parse().unwrap()),
        std::env::var("DCACHE_SOAK_KILL_MAX").map_or(60, |s| s.parse().unwrap()),
    );
    let mut rng = Rng(std::process::id() as u64 | 1);
    let mut total = Vec::new();
    let mut wrong_lines = Vec::new();
    let (mut kills, mut damaged_blocks) = (0u64, 0u64);
    let mut round = 0u64;
    while Instant::now() < deadline {
        round += 1;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "soak_child_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("DCACHE_SOAK_PATH", &path)
            .env("DCACHE_SOAK_JOURNAL", &journal)
            .env("DCACHE_SOAK_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut last, mut wrong) = (None, Vec::new());
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.starts_with("COUNTS") {
                    last = Some(line);
                } else if line.starts_with("WRONG") {
                    wrong.push(line);
                }
            }
            (last, wrong)
        });
        let left = deadline.saturating_duration_since(Instant::now());
        let run = Duration::from_secs(kill_min + rng.below(kill_max - kill_min + 1)).min(left);
        std::thread::sleep(run.max(Duration::from_secs(2)));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        let (last, wrong) = reader.join().unwrap();
        if let Some(line) = &last {
            add_counts(&mut total, line);
        }
        println!(
            "round {round}: {} s, then SIGKILL; {}",
            run.as_secs(),
            last.unwrap_or_default()
        );
        wrong_lines.extend(wrong);
        // A few blocks damaged, as a bad disk would, before the next open.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let blocks = std::env::var("DCACHE_SOAK_DAMAGE_BLOCKS").map_or(3, |s| s.parse().unwrap());
        for _ in 0..blocks {
            use std::os::unix::fs::FileExt;
            let at = ((1 << 20) + rng.below(CAPACITY - (2 << 20))) & !4095;
            let junk: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
            f.write_all_at(&junk, at).unwrap();
            damaged_blocks += 1;
        }
    }
    // Every key, read by a new open after the last kill, against the journal.
    let floor = read_journal(&journal);
    let cache = Cache::open(&path, &CacheOptions::new()).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let (mut checked, mut misses) = (0u64, 0u64);
    for k in 0..KEYS {
        match cache.get(&key(k), &mut buf) {
            Ok(Fetched::Copied(n)) => {
                checked += 1;
                let version = version_in(&key(k), &buf[..n]);
                let ok = version.is_some_and(|v| floor.get(&k).is_none_or(|f| f.floor_allows(v)));
                if !ok {
                    wrong_lines.push(format!(
                        "WRONG final read of key {k}: version {version:?}, durable {:?}",
                        floor.get(&k)
                    ));
                }
            }
            Ok(Fetched::TooSmall(n)) => wrong_lines.push(format!("WRONG key {k}: {n} bytes")),
            Err(_) => misses += 1,
        }
    }
    let r = cache.recovery();
    drop(cache);

    println!("\nsoak report ({} s, {round} rounds)", duration().as_secs());
    println!("  kills (SIGKILL): {kills}; blocks damaged between rounds: {damaged_blocks}");
    for (name, v) in &total {
        println!("  {name}: {v}");
    }
    println!("  final check after the last kill: {checked} values checked, {misses} misses; recovery dropped {} entries, scanned {} regions", r.entries_dropped, r.regions_scanned);
    let wrong = wrong_lines.len();
    println!("  wrong values: {wrong}");
    for line in wrong_lines.iter().take(20) {
        println!("  {line}");
    }
    assert_eq!(wrong, 0, "wrong values were read");
}

/// The checks themselves refuse what the contract forbids, so that the soak can fail.
#[test]
fn the_checks_refuse_what_the_contract_forbids() {
    assert!(Known::Value(5, 100).exact_allows(5, 100));
    assert!(
        !Known::Value(5, 100).exact_allows(4, 100),
        "an older version this round"
    );
    assert!(!Known::Value(5, 100).exact_allows(5, 99), "another length");
    assert!(!Known::Deleted(5).exact_allows(3, 10), "a deleted key read");
    assert!(Known::AtLeast(5).exact_allows(6, 1) && !Known::AtLeast(5).exact_allows(4, 1));
    assert!(
        !Known::Value(5, 10).floor_allows(4),
        "older than the durable version"
    );
    assert!(
        Known::Value(5, 10).floor_allows(7),
        "a later, unflushed put survived"
    );
    assert!(
        !Known::Deleted(5).floor_allows(5),
        "a flushed delete came undone"
    );
    for k in [Known::Value(1, 2), Known::Deleted(3), Known::AtLeast(4)] {
        assert_eq!(Known::decode(&k.encode()), Some(k));
    }
    let v = value_of(b"soak/1", 9, 1000);
    assert_eq!(version_in(b"soak/1", &v), Some(9));
    assert_eq!(version_in(b"soak/2", &v), None, "another key's value");
    let mut flipped = v.clone();
    flipped[500] ^= 1;
    assert_eq!(version_in(b"soak/1", &flipped), None, "a damaged value");
}
