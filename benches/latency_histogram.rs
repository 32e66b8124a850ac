//! What recording one operation in a latency histogram costs (`make bench-metrics`, or
//! `cargo bench --bench latency_histogram`), beside what it is made of: a relaxed atomic add
//! (what each counter costs already) and clock reads: `Instant::now()` for reference, and the
//! `Stamp` the cache times operations with (two per timed operation).
//! The target: under 50 ns per recorded operation, both stamps included.

use dcache::{LatencyHistogram, Stamp};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

const OPS: u64 = 20_000_000;
const TARGET_NS: f64 = 50.0;

/// Nanoseconds per call of `f`, the best of three runs of `OPS` calls.
fn ns_per_op(mut f: impl FnMut(u64)) -> f64 {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            for i in 0..OPS {
                f(i);
            }
            start.elapsed().as_nanos() as f64 / OPS as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// `ns_per_op` of `f` on `threads` threads at once, all recording into the same histogram.
fn ns_per_op_on_threads(threads: usize, h: &LatencyHistogram) -> f64 {
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| ns_per_op(|i| h.record(black_box(i & 0xffff_ffff)))))
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap())
            .fold(0.0, f64::max)
    })
}

fn main() {
    let counter = AtomicU64::new(0);
    let h = LatencyHistogram::default();
    let add = ns_per_op(|i| {
        counter.fetch_add(black_box(i), Relaxed);
    });
    let clock = ns_per_op(|_| {
        black_box(Instant::now());
    });
    let stamp = ns_per_op(|_| {
        black_box(Stamp::now());
    });
    let record = ns_per_op(|i| h.record(black_box(i.wrapping_mul(2654435761) & 0xff_ffff)));
    let timed = ns_per_op(|_| h.record_elapsed(black_box(Stamp::now())));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let contended = ns_per_op_on_threads(threads, &h);

    println!("latency histogram, {OPS} operations per run, best of 3 runs");
    println!("{:<58} {:>8}", "what", "ns/op");
    let rows = [
        ("reference: one relaxed fetch_add (a counter)", add, false),
        ("reference: Instant::now() (clock_gettime)", clock, false),
        (
            "Stamp::now() (the TSC where the kernel trusts it)",
            stamp,
            false,
        ),
        ("record(nanos): the bucket, two relaxed adds", record, true),
        (
            "a timed operation: Stamp::now() + record_elapsed()",
            timed,
            true,
        ),
        (
            "record(), every thread into one histogram (slowest)",
            contended,
            true,
        ),
    ];
    for (what, ns, _) in rows {
        println!("{what:<58} {ns:>8.1}");
    }
    println!("({threads} threads in the contended row)");
    let ok = rows.iter().filter(|r| r.2).all(|r| r.1 < TARGET_NS);
    println!(
        "target: under {TARGET_NS} ns per recorded operation: {}",
        if ok { "met" } else { "NOT met" }
    );
    let _ = h.snapshot().count();
}
