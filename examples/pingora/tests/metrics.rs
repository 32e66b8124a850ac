//! The proxy's metrics: `GET /metrics` on its metrics port and the textfile it writes, read with
//! a Prometheus client library's parser. They hold the cache's metrics and the storage's
//! counters, move with requests, and the port and the textfile agree.

mod common;

use common::Bench;
use prometheus_parse::{Scrape, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// `{name{labels}: value}` of a Prometheus text (a histogram's buckets as `name_bucket{le}`).
fn samples(text: &str) -> BTreeMap<String, f64> {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let mut out = BTreeMap::new();
    for s in scrape.samples {
        match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
                out.insert(format!("{}{{{}}}", s.metric, s.labels), v);
            }
            Value::Histogram(buckets) => {
                for b in buckets {
                    out.insert(
                        format!("{}_bucket{{{},le={}}}", s.metric, s.labels, b.less_than),
                        b.count,
                    );
                }
            }
            other => panic!("{}: {other:?}", s.metric),
        }
    }
    out
}

fn scrape(bench: &Bench) -> (reqwest::StatusCode, String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("http://{}/metrics", bench.proxy().metrics);
    loop {
        match bench.client.get(&url).send() {
            Ok(r) => {
                let status = r.status();
                let ct = r.headers()["content-type"].to_str().unwrap().to_string();
                return (status, ct, r.text().unwrap());
            }
            Err(e) => assert!(Instant::now() < deadline, "the metrics port: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_metrics_port_and_textfile_agree_and_move_with_requests() {
    let bench = Bench::new();
    let t = "/metered?size=70000&cc=max-age%3D3600";
    bench.get(t).check(t);
    let (status, content_type, text) = scrape(&bench);
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let before = samples(&text);
    for name in [
        "dcache_hits_total{}",
        "dcache_pingora_hits_total{}",
        "dcache_pingora_fills_total{}",
    ] {
        assert!(before.contains_key(name), "{name} missing from {text}");
    }
    assert_eq!(before["dcache_pingora_fills_total{}"], 1.0);

    for _ in 0..3 {
        assert_eq!(bench.get(t).cache_status, "hit");
    }
    let after = samples(&scrape(&bench).2);
    let delta = |name: &str| after[name] - before[name];
    assert_eq!(delta("dcache_pingora_hits_total{}"), 3.0);
    assert!(delta("dcache_hits_total{}") >= 3.0);
    assert!(delta("dcache_operation_duration_seconds_count{operation=\"get\"}") >= 3.0);

    // The textfile is the same text as the cache's part of the port's, when neither moved in
    // between (the storage flushes every second; the textfile is written every 50 ms).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let port: BTreeMap<_, _> = samples(&scrape(&bench).2)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("dcache_pingora_"))
            .collect();
        let file = samples(&std::fs::read_to_string(&bench.proxy().textfile).unwrap());
        if port == file {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the port and the textfile never agreed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let other = bench
        .client
        .get(format!("http://{}/other", bench.proxy().metrics))
        .send()
        .unwrap();
    assert_eq!(other.status(), 404);
}
