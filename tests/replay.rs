//! `dcache replay` and `dcache gen-trace`, run as a user runs them, on hand-made traces whose
//! hits and misses are known in advance.

mod common;
use std::path::Path;
use std::process::Command;

fn dcache(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dcache"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn oracle(requests: &[(u64, u32)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (i, &(id, size)) in requests.iter().enumerate() {
        b.extend_from_slice(&(i as u32).to_le_bytes());
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
    }
    b
}

fn csv(requests: &[(u64, u32)]) -> String {
    let mut s = String::from("time,id,size\n");
    for (i, &(id, size)) in requests.iter().enumerate() {
        s += &format!("{i},{id},{size}\n");
    }
    s
}

/// A field of the replay's JSON report.
fn field(json: &str, name: &str) -> f64 {
    let at = json
        .find(&format!("\"{name}\": "))
        .unwrap_or_else(|| panic!("{name} in {json}"));
    let rest = &json[at + name.len() + 4..];
    let end = rest.find([',', '\n', '}']).unwrap();
    rest[..end].trim_matches('"').parse().unwrap()
}

fn replay(dir: &Path, trace: &Path) -> (i32, String, String) {
    let cache = dir.join("replay.dcache");
    dcache(&[
        "replay",
        trace.to_str().unwrap(),
        "--capacity",
        "8M",
        "--cache",
        cache.to_str().unwrap(),
        "--json",
    ])
}

/// 1, 2, 3, 4 and 5 miss the first time and hit after; object 9 (2 MiB) is over an 8 MiB
/// cache's value limit: both its requests miss and it is never stored.
const KNOWN: [(u64, u32); 12] = [
    (1, 1000),
    (2, 70_000),
    (1, 1000),
    (3, 5),
    (9, 2 << 20),
    (2, 70_000),
    (1, 1000),
    (4, 300_000),
    (4, 300_000),
    (9, 2 << 20),
    (5, 64),
    (1, 1000),
];

fn check_known(json: &str) {
    assert_eq!(field(json, "requests"), 12.0);
    assert_eq!(field(json, "misses"), 7.0, "{json}");
    assert_eq!(field(json, "hits"), 5.0);
    assert_eq!(field(json, "too_large"), 2.0);
    assert_eq!(field(json, "wrong_values"), 0.0);
    assert_eq!(field(json, "puts"), 5.0);
    let requested: u64 = KNOWN.iter().map(|r| r.1 as u64).sum();
    let missed = 1000 + 70_000 + 5 + 2 * (2 << 20) + 300_000 + 64;
    let want = missed as f64 / requested as f64;
    assert!(
        (field(json, "byte_miss_ratio") - want).abs() < 1e-6,
        "{json}"
    );
    assert!(field(json, "written_per_missed_byte") > 0.0);
    assert!(field(json, "requests_per_second") > 0.0);
}

#[test]
fn a_known_trace_gives_the_known_hits_and_misses_in_both_formats() {
    let dir = common::scratch();
    let bin = dir.path().join("known.oracleGeneral");
    std::fs::write(&bin, oracle(&KNOWN)).unwrap();
    let (code, out, err) = replay(dir.path(), &bin);
    assert_eq!(code, 0, "{err}");
    check_known(&out);
    let text = dir.path().join("known.csv");
    std::fs::write(&text, csv(&KNOWN)).unwrap();
    let (code, out, err) = replay(dir.path(), &text);
    assert_eq!(code, 0, "{err}");
    check_known(&out);
    assert!(
        !dir.path().join("replay.dcache").exists(),
        "the cache file is removed"
    );
}

#[test]
fn bad_input_stops_the_replay_and_names_the_record() {
    let dir = common::scratch();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "truncated.oracleGeneral",
            oracle(&KNOWN[..3])[..3 * 24 - 5].to_vec(),
            "record 3 is truncated",
        ),
        (
            "zero.oracleGeneral",
            oracle(&[(1, 10), (2, 0)]),
            "record 2 has size 0",
        ),
        (
            "bad.csv",
            b"time,id,size\n0,1,10\n1,x,10\n".to_vec(),
            "record 2 (line 3)",
        ),
        ("short.csv", b"0,1,10\n1,2\n".to_vec(), "record 2 (line 2)"),
    ];
    for (name, bytes, message) in cases {
        let trace = dir.path().join(name);
        std::fs::write(&trace, bytes).unwrap();
        let (code, _, err) = replay(dir.path(), &trace);
        assert_eq!(code, 1, "{name}");
        assert!(err.contains(message), "{name}: {err}");
    }
}

#[test]
fn generated_traces_have_their_shapes_and_next_accesses() {
    let dir = common::scratch();
    // The share of requests that are for an object asked only once.
    let mut one_hit_share = std::collections::HashMap::new();
    for shape in ["zipf", "drift", "scan"] {
        let trace = dir.path().join(format!("{shape}.oracleGeneral"));
        let (code, out, err) = dcache(&[
            "gen-trace",
            shape,
            "-o",
            trace.to_str().unwrap(),
            "--requests",
            "50000",
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let b = std::fs::read(&trace).unwrap();
        assert_eq!(b.len(), 50_000 * 24);
        let rec = |i: usize| {
            let r = &b[i * 24..i * 24 + 24];
            let id = u64::from_le_bytes(r[4..12].try_into().unwrap());
            let size = u32::from_le_bytes(r[12..16].try_into().unwrap());
            let next = i64::from_le_bytes(r[16..24].try_into().unwrap());
            (id, size, next)
        };
        // Each next access points at the next request for the same object, and nothing
        // between them asks for it.
        let mut last = std::collections::HashMap::new();
        for i in (0..50_000).rev() {
            let (id, size, next) = rec(i);
            assert!((256..=1 << 20).contains(&size), "{shape}: size {size}");
            assert_eq!(
                next,
                last.insert(id, i as i64).unwrap_or(-1),
                "{shape}: record {i}"
            );
        }
        let mut counts = std::collections::HashMap::new();
        for i in 0..50_000 {
            *counts.entry(rec(i).0).or_insert(0u32) += 1;
        }
        let objects = field(&out, "objects") as usize;
        assert_eq!(objects, last.len());
        let once = counts.values().filter(|&&n| n == 1).count();
        one_hit_share.insert(shape, once as f64 / 50_000.0);
        if shape == "scan" {
            // 10,000 cold objects in order from request 40,000 on.
            assert_eq!(rec(40_001).0, rec(40_000).0 + 1);
            assert_eq!(rec(49_999).0, rec(40_000).0 + 9_999);
        }
    }
    // Drift adds one-hit wonders (30% of its requests) to the tail's.
    assert!(
        one_hit_share["drift"] > one_hit_share["zipf"] + 0.2,
        "{one_hit_share:?}"
    );
    // A scan is 10,000 requests for objects asked once in 50,000 requests.
    assert!(
        one_hit_share["scan"] > one_hit_share["zipf"] + 0.1,
        "{one_hit_share:?}"
    );
}
