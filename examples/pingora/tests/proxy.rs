//! The proxy binary, as a client sees it: every body checked byte for byte against the origin's.

mod common;

use common::{fetch, try_fetch, Bench};
use reqwest::StatusCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

const FRESH: &str = "cc=max-age%3D3600";

fn target(name: &str, size: usize, extra: &str) -> String {
    format!("/{name}?size={size}&{extra}")
}

#[test]
fn miss_fill_then_hit_byte_exact() {
    let bench = Bench::new();
    // Inline up to 256 KiB, a body of its own past it, and several of its pieces.
    for size in [1, 4095, 65536, 262144, 262145, 1_000_000, 3 << 20] {
        let t = target("obj", size, FRESH);
        let miss = bench.get(&t);
        assert_eq!(miss.cache_status, "miss", "{t}");
        miss.check(&t);
        let hit = bench.get(&t);
        assert_eq!(hit.cache_status, "hit", "{t}");
        hit.check(&t);
        let head = bench.request("HEAD", &t, &[]);
        assert_eq!(
            (head.status, head.cache_status.as_str()),
            (StatusCode::OK, "hit")
        );
        assert!(head.body.is_empty());
        assert_eq!(bench.origin.served(&t).full, 1, "{t}: the origin saw a hit");
    }
    let counters = bench.proxy().log_text();
    assert!(!counters.contains("dropping"), "{counters}");
}

#[test]
fn ranges_are_served_from_hits() {
    let bench = Bench::new();
    for size in [100_000, 1_000_000] {
        let t = target("ranged", size, FRESH);
        bench.get(&t).check(&t);
        for range in [
            "bytes=0-0",
            "bytes=100-199",
            "bytes=-500",
            "bytes=99990-",
            "bytes=5000-999999999",
            "bytes=262100-262200",
            "bytes=262144-524288",
        ] {
            let first: u64 = range[6..].split('-').next().unwrap().parse().unwrap_or(0);
            let r = bench.request("GET", &t, &[("range", range)]);
            if first >= size as u64 {
                assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{t} {range}");
                continue;
            }
            assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{t} {range}");
            assert_eq!(r.cache_status, "hit", "{t} {range}");
            r.check(&t);
        }
        let past = bench.request("GET", &t, &[("range", "bytes=2000000-")]);
        assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE, "{t}");
        assert_eq!(bench.origin.served(&t).full, 1, "{t}");
    }
    // A range asked of a miss: the client gets its range. (Pingora 0.9 asks the origin for the
    // whole body, but stops the fill if the client's range is sent before the body is all in:
    // the next request may be a miss.)
    let t = target("ranged-miss", 500_000, FRESH);
    let r = bench.request("GET", &t, &[("range", "bytes=300000-300099")]);
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    r.check(&t);
    bench.get(&t).check(&t);
    let whole = bench.get(&t);
    assert_eq!(whole.cache_status, "hit");
    whole.check(&t);
}

#[test]
fn purge_removes_the_response() {
    let bench = Bench::new();
    for size in [10_000, 700_000] {
        let t = target("purged", size, FRESH);
        assert_eq!(bench.get(&t).check(&t), 0);
        assert_eq!(bench.get(&t).cache_status, "hit");
        let purge = bench.request("PURGE", &t, &[]);
        assert_eq!(purge.status, StatusCode::OK, "{t}");
        bench.origin.bump(&t);
        let after = bench.get(&t);
        assert_eq!(after.cache_status, "miss", "{t}");
        assert_eq!(after.check(&t), 1, "{t}: the purged generation came back");
        assert_eq!(bench.get(&t).check(&t), 1);
        assert_eq!(bench.origin.served(&t).full, 2);
    }
    let absent = bench.request("PURGE", &target("never", 10, FRESH), &[]);
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
}

#[test]
fn purge_survives_kill9() {
    let mut bench = Bench::new();
    let t = target("purged-then-killed", 50_000, FRESH);
    bench.get(&t).check(&t);
    std::thread::sleep(Duration::from_millis(1500)); // flushed
    assert_eq!(bench.request("PURGE", &t, &[]).status, StatusCode::OK);
    bench.origin.bump(&t);
    bench.restart(true);
    let after = bench.get(&t);
    assert_eq!(after.cache_status, "miss");
    assert_eq!(after.check(&t), 1);
}

#[test]
fn no_store_and_private_are_not_stored() {
    let bench = Bench::new();
    for cc in [
        "cc=no-store",
        "cc=private%2C%20max-age%3D60",
        "cc=max-age%3D60%2C%20no-store",
    ] {
        let t = target("uncached", 20_000, cc);
        for _ in 0..3 {
            let r = bench.get(&t);
            assert_ne!(r.cache_status, "hit", "{t}");
            r.check(&t);
        }
        assert_eq!(bench.origin.served(&t).full, 3, "{t}");
    }
    // Without any lifetime from the origin, nothing is stored either.
    let t = "/no-lifetime?size=100";
    bench.get(t).check(t);
    bench.get(t).check(t);
    assert_eq!(bench.origin.served(t).full, 2);
}

#[test]
fn max_age_expiry_goes_back_to_the_origin() {
    let bench = Bench::new();
    for size in [5_000, 400_000] {
        let t = target("expiring", size, "cc=max-age%3D1");
        assert_eq!(bench.get(&t).check(&t), 0);
        assert_eq!(bench.get(&t).cache_status, "hit");
        bench.origin.bump(&t);
        std::thread::sleep(Duration::from_millis(2100));
        let expired = bench.get(&t);
        assert_eq!(expired.cache_status, "expired", "{t}");
        assert_eq!(expired.check(&t), 1, "{t}: a stale body after max-age");
        let hit = bench.get(&t);
        assert_eq!(hit.cache_status, "hit");
        assert_eq!(hit.check(&t), 1);
        assert_eq!(bench.origin.served(&t).full, 2);
    }
}

#[test]
fn revalidation_keeps_the_stored_body() {
    let mut bench = Bench::new();
    for size in [5_000, 400_000] {
        let t = target("revalidated", size, "cc=max-age%3D1&etag=1");
        bench.get(&t).check(&t);
        std::thread::sleep(Duration::from_millis(2100));
        // The origin answers 304: the stored body is served, and its metadata updated.
        let revalidated = bench.get(&t);
        assert_eq!(revalidated.cache_status, "revalidated", "{t}");
        assert_eq!(revalidated.check(&t), 0);
        let served = bench.origin.served(&t);
        assert_eq!((served.full, served.not_modified), (1, 1), "{t}");
        let hit = bench.get(&t);
        assert_eq!(
            hit.cache_status, "hit",
            "{t}: the updated metadata was not stored"
        );
        hit.check(&t);
    }
    // The update is on disk: after a restart the body is still served with its new lifetime.
    std::thread::sleep(Duration::from_millis(1500));
    bench.restart(false);
    let t = target("revalidated", 400_000, "cc=max-age%3D1&etag=1");
    bench.get(&t).check(&t);
}

#[test]
fn request_no_cache_revalidates_first() {
    let bench = Bench::new();
    let t = target("asked-fresh", 30_000, "cc=max-age%3D3600&etag=1");
    bench.get(&t).check(&t);
    for header in [("cache-control", "no-cache"), ("pragma", "no-cache")] {
        let r = bench.request("GET", &t, &[header]);
        assert_eq!(r.cache_status, "revalidated", "{header:?}");
        r.check(&t);
    }
    assert_eq!(bench.origin.served(&t).not_modified, 2);
    // Changed at the origin: a no-cache request gets the new body, and it is stored.
    bench.origin.bump(&t);
    let r = bench.request("GET", &t, &[("cache-control", "no-cache")]);
    assert_eq!(r.check(&t), 1);
    assert_eq!(bench.get(&t).check(&t), 1);
}

#[test]
fn restart_keeps_hits() {
    let mut bench = Bench::new();
    let targets: Vec<String> = (0..24)
        .map(|i| target(&format!("kept{i}"), 1000 + i * 37_000, FRESH))
        .collect();
    for t in &targets {
        bench.get(t).check(t);
    }
    // A clean stop closes the cache.
    bench.restart(false);
    for t in &targets {
        let r = bench.get(t);
        assert_eq!(
            r.cache_status,
            "hit",
            "{t} after a restart: {}",
            bench.proxy().log_text()
        );
        r.check(t);
    }
    // A kill -9 after the flush interval keeps them too.
    std::thread::sleep(Duration::from_millis(1500));
    bench.restart(true);
    for t in &targets {
        let r = bench.get(t);
        assert_eq!(r.cache_status, "hit", "{t} after kill -9");
        r.check(t);
        assert_eq!(bench.origin.served(t).full, 1, "{t}");
    }
}

#[test]
fn kill9_during_fills_never_serves_wrong_bytes() {
    let mut bench = Bench::new();
    let targets: Arc<Vec<String>> = Arc::new(
        (0..24)
            .map(|i| {
                let size = [3_000, 70_000, 300_000, 900_000][i % 4];
                let trickle = if i % 2 == 0 { "&trickle_ms=15" } else { "" };
                target(&format!("filled{i}"), size, &format!("{FRESH}{trickle}"))
            })
            .collect(),
    );
    let checked = Arc::new(AtomicU64::new(0));
    for round in 0..4 {
        // Some targets change at the origin between rounds: a body of one generation must
        // never come with another's headers.
        for t in targets.iter().skip(round % 3).step_by(3) {
            bench.origin.bump(t);
        }
        let proxy_addr = bench.proxy().addr;
        let clients: Vec<_> = (0..12)
            .map(|c| {
                let (targets, checked) = (targets.clone(), checked.clone());
                std::thread::spawn(move || {
                    let client = common::client();
                    for i in 0..targets.len() {
                        let t = &targets[(c * 5 + i) % targets.len()];
                        let url = format!("http://{proxy_addr}{t}");
                        // Cut off by the kill: only what arrives whole is checked.
                        let Ok(r) = client.get(url).send() else {
                            return;
                        };
                        let status = r.status();
                        let headers = r.headers().clone();
                        let Ok(body) = r.bytes() else { return };
                        let fetched = common::Fetched {
                            status,
                            cache_status: String::new(),
                            headers,
                            body: body.to_vec(),
                        };
                        fetched.check(t);
                        checked.fetch_add(1, Relaxed);
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + 250 * round as u64));
        bench.restart(true);
        for client in clients {
            client.join().expect("a client saw wrong bytes");
        }
        for t in targets.iter() {
            let r = bench.get(t);
            r.check(t);
            checked.fetch_add(1, Relaxed);
        }
    }
    assert!(checked.load(Relaxed) >= 4 * 24);
}

#[test]
fn thirty_two_concurrent_clients() {
    let bench = Bench::new();
    let targets: Arc<Vec<String>> = Arc::new(
        (0..40)
            .map(|i| target(&format!("shared{i}"), 500 + i * 29_000, FRESH))
            .collect(),
    );
    let proxy = bench.proxy();
    std::thread::scope(|s| {
        for c in 0..32u64 {
            let targets = targets.clone();
            s.spawn(move || {
                let client = common::client();
                let mut seed = c * 7919 + 1;
                for _ in 0..30 {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let t = &targets[(seed >> 33) as usize % targets.len()];
                    let size = common::size_of(t) as u64;
                    let first = (seed >> 13) % size;
                    let range = format!("bytes={first}-{}", first + (seed >> 40) % 100_000);
                    let headers: &[(&str, &str)] = match seed % 3 {
                        0 => &[("range", range.as_str())],
                        _ => &[],
                    };
                    let r = try_fetch(&client, proxy, "GET", t, headers).unwrap();
                    r.check(t);
                }
            });
        }
    });
    // The cache lock lets one fill per target reach the origin; others wait for it.
    let full: u64 = targets.iter().map(|t| bench.origin.served(t).full).sum();
    assert!(
        full <= 2 * targets.len() as u64,
        "{full} origin fetches for 40 targets"
    );
    for t in targets.iter() {
        let r = fetch(&bench.client, proxy, "GET", t, &[]);
        assert_eq!(r.cache_status, "hit", "{t}");
        r.check(t);
    }
}
