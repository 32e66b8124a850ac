//! The Prometheus and JSON expositions of a cache's stats, read back with a Prometheus client
//! library's parser (prometheus-parse): every metric has its HELP and TYPE, every number
//! matches `Cache::stats`, and counters and histograms move as operations happen.

use dcache::{Cache, CacheOptions, Stats, LATENCY_BUCKETS};
use prometheus_parse::{Scrape, Value};
use std::collections::{BTreeMap, BTreeSet};

fn open(dir: &tempfile::TempDir) -> Cache {
    let opts = CacheOptions::new().create(true).capacity(32 << 20);
    Cache::open(&dir.path().join("cache.dc"), &opts).unwrap()
}

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The plain samples by name (with their labels rendered), the histograms by operation.
struct Parsed {
    values: BTreeMap<String, f64>,
    histograms: BTreeMap<String, Vec<(f64, f64)>>,
    scrape: Scrape,
}

fn read(text: &str) -> Parsed {
    let scrape = parse(text);
    let mut values = BTreeMap::new();
    let mut histograms = BTreeMap::new();
    for s in &scrape.samples {
        match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
                let op = s.labels.get("operation").map(|o| format!("{{{o}}}"));
                values.insert(format!("{}{}", s.metric, op.unwrap_or_default()), *v);
            }
            Value::Histogram(buckets) => {
                let op = s.labels.get("operation").unwrap().to_string();
                let b = buckets.iter().map(|b| (b.less_than, b.count)).collect();
                histograms.insert(op, b);
            }
            other => panic!("{}: unexpected {other:?}", s.metric),
        }
    }
    Parsed {
        values,
        histograms,
        scrape,
    }
}

#[test]
fn every_metric_is_named_documented_and_matches_the_stats() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    for i in 0..20u32 {
        cache.put(&i.to_be_bytes(), &[i as u8; 5000], 0).unwrap();
    }
    let mut buf = vec![0u8; 8192];
    for i in 0..30u32 {
        let _ = cache.get(&i.to_be_bytes(), &mut buf);
    }
    cache.flush().unwrap();
    let s = cache.stats();
    let text = s.to_prometheus();
    let p = read(&text);

    let kinds: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split_once(' ').unwrap())
        .collect();
    for (name, kind) in &kinds {
        assert!(name.starts_with("dcache_"), "{name}");
        assert!(p.scrape.docs.contains_key(*name), "{name} has no HELP");
        assert!(!p.scrape.docs[*name].is_empty(), "{name}'s HELP is empty");
        match *kind {
            "counter" => assert!(name.ends_with("_total"), "{name}"),
            "gauge" => assert!(!name.ends_with("_total"), "{name}"),
            "histogram" => assert!(name.ends_with("_seconds"), "{name}"),
            k => panic!("{name}: type {k}"),
        }
    }
    // Each metric family appears once, with its HELP and TYPE before its samples.
    assert_eq!(
        text.lines().filter(|l| l.starts_with("# TYPE ")).count(),
        kinds.len()
    );

    let v = |name: &str| {
        p.values
            .get(name)
            .copied()
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(v("dcache_hits_total"), s.hits as f64);
    assert_eq!(v("dcache_hits_total"), 20.0);
    assert_eq!(v("dcache_misses_total"), 10.0);
    assert_eq!(v("dcache_puts_total"), 20.0);
    assert_eq!(v("dcache_entries"), 20.0);
    assert_eq!(v("dcache_capacity_bytes"), (32 << 20) as f64);
    assert_eq!(v("dcache_used_bytes"), s.used_bytes as f64);
    assert_eq!(v("dcache_bytes_written_total"), s.bytes_written as f64);
    assert_eq!(v("dcache_bytes_read_total"), s.bytes_read as f64);
    assert_eq!(v("dcache_index_bytes"), s.index_bytes as f64);
    assert_eq!(v("dcache_recovery_seconds"), s.recovery.micros as f64 / 1e6);
    assert_eq!(
        v("dcache_recovery_was_clean"),
        s.recovery.was_clean as u64 as f64
    );
    assert!(s.bytes_written > 0);

    let info = p
        .scrape
        .samples
        .iter()
        .find(|s| s.metric == "dcache_info")
        .unwrap();
    let mode = if s.direct_io { "direct" } else { "buffered" };
    assert_eq!(info.labels.get("io_mode"), Some(mode));
    assert_eq!(
        info.labels.get("alignment"),
        Some(s.alignment.to_string().as_str())
    );

    for (op, h, n) in [
        ("get", &s.get_latency, 30),
        ("put", &s.put_latency, 20),
        ("flush", &s.flush_latency, 1),
    ] {
        assert_eq!(h.count(), n, "{op}");
        let buckets = &p.histograms[op];
        assert_eq!(buckets.len(), LATENCY_BUCKETS + 1);
        assert!(buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, n as f64));
        let count = format!("dcache_operation_duration_seconds_count{{{op}}}");
        let sum = format!("dcache_operation_duration_seconds_sum{{{op}}}");
        assert_eq!(v(&count), n as f64);
        assert_eq!(v(&sum), h.sum_nanos as f64 / 1e9);
        assert!(h.sum_nanos > 0);
    }
}

/// Every field of the table is in both expositions.
#[test]
fn the_json_holds_every_field_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    cache.put(b"k", b"value", 0).unwrap();
    let s = cache.stats();
    let json = s.to_json();
    let fields: BTreeSet<&str> = [
        "capacity",
        "used_bytes",
        "entries",
        "hits",
        "misses",
        "puts",
        "deletes",
        "evictions",
        "expirations",
        "bytes_written",
        "bytes_read",
        "checksum_failures",
        "io_errors",
        "reinserted",
        "reinserted_bytes",
        "promoted",
        "promoted_bytes",
        "ghost_hits",
        "ghost_bytes",
        "declined",
        "admission_bytes",
        "write_entries_dropped",
        "recovery_regions_lost",
        "index_bytes",
        "recovery_bytes_read",
        "recovery_micros",
        "recovery_entries_dropped",
        "recovery_was_clean",
        "direct_io",
        "alignment",
    ]
    .into();
    for f in &fields {
        assert!(
            json.contains(&format!("\"{f}\":")),
            "{f} missing from {json}"
        );
    }
    assert!(json.contains(&format!("\"puts\":{},", s.puts)));
    assert!(json.contains(&format!("\"used_bytes\":{},", s.used_bytes)));
    assert!(json.contains("\"latency\":{\"get\":{\"upper_bounds_nanos\":[256,512,"));
}

#[test]
fn counters_and_histograms_move_as_operations_happen() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(&dir);
    let scrape = |c: &Cache| read(&c.stats().to_prometheus());
    let before = scrape(&cache);
    cache.put(b"a", &[1u8; 100_000], 0).unwrap();
    let mut w = cache.writer(b"b", 0).unwrap();
    w.write(b"streamed").unwrap();
    w.commit().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    cache.get(b"a", &mut buf).unwrap();
    cache.get_range(b"a", 10, &mut buf[..100]).unwrap();
    let _ = cache.get(b"missing", &mut buf);
    cache.delete(b"b").unwrap();
    let q = cache.queue(4).unwrap();
    // SAFETY: `buf` outlives the read, which is reaped below before it is touched.
    unsafe {
        q.submit(b"a", None, buf.as_mut_ptr(), buf.len(), 7)
            .unwrap()
    };
    let mut done = [dcache::Completion {
        user_data: 0,
        outcome: dcache::Outcome::Read(0),
    }; 1];
    assert_eq!(q.reap(&mut done, 1).unwrap(), 1);
    cache.flush().unwrap();
    let after = scrape(&cache);
    let delta = |name: &str| after.values[name] - before.values[name];
    assert_eq!(delta("dcache_puts_total"), 2.0);
    assert_eq!(delta("dcache_hits_total"), 3.0);
    assert_eq!(delta("dcache_misses_total"), 1.0);
    assert_eq!(delta("dcache_deletes_total"), 1.0);
    assert_eq!(delta("dcache_operation_duration_seconds_count{get}"), 4.0);
    assert_eq!(delta("dcache_operation_duration_seconds_count{put}"), 2.0);
    assert_eq!(delta("dcache_operation_duration_seconds_count{flush}"), 1.0);
    assert!(delta("dcache_operation_duration_seconds_sum{get}") > 0.0);
    assert!(after.values["dcache_bytes_written_total"] > 100_000.0);
}

/// A Stats of zeros still renders to something a parser takes.
#[test]
fn an_empty_snapshot_renders() {
    let p = read(&Stats::default().to_prometheus());
    assert_eq!(p.values["dcache_hits_total"], 0.0);
    assert_eq!(p.histograms["get"].last().unwrap().1, 0.0);
}

/// The textfile holds what `Stats::to_prometheus` says, replaced whole at each write (no
/// temporary file left behind), and its last write at close shows the last operations.
#[test]
fn the_textfile_holds_the_same_text_and_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let textfile = dir.path().join("metrics").join("dcache.prom");
    let opts = CacheOptions::new()
        .create(true)
        .capacity(32 << 20)
        .metrics_textfile(&textfile)
        .metrics_interval(std::time::Duration::from_millis(20));
    let path = dir.path().join("cache.dc");
    let missing_dir = Cache::open(&path, &opts).unwrap_err();
    assert!(
        missing_dir.to_string().contains("dcache.prom"),
        "{missing_dir}"
    );
    std::fs::create_dir(textfile.parent().unwrap()).unwrap();
    let too_often = opts
        .clone()
        .metrics_interval(std::time::Duration::from_millis(1));
    let e = Cache::open(&path, &too_often).unwrap_err();
    assert_eq!(e.kind(), dcache::ErrorKind::InvalidArgument);

    let cache = Cache::open(&path, &opts).unwrap();
    for i in 0..10u32 {
        cache.put(&i.to_be_bytes(), b"value", 0).unwrap();
    }
    let want = cache.stats().to_prometheus();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_to_string(&textfile).unwrap() != want {
        assert!(
            std::time::Instant::now() < deadline,
            "the textfile never caught up"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    read(&want);
    cache.put(b"last", b"value", 0).unwrap();
    cache.close().unwrap();
    let last = read(&std::fs::read_to_string(&textfile).unwrap());
    assert_eq!(last.values["dcache_puts_total"], 11.0);
    let names: Vec<_> = std::fs::read_dir(textfile.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["dcache.prom"]);
}
