#!/usr/bin/env python3
"""make bench-policy: dcache judged as a cache, beside libCacheSim's policies, in one run.

For each trace shape (`dcache gen-trace`: zipf, drift, scan; their parameters are fixed in
src/bin/dcache/trace.rs and listed in the README) and each capacity (5% and 10% of the
trace's footprint), it replays the trace through dcache (`dcache replay --json`, a real cache
file of exactly that many bytes, O_DIRECT where the file system takes it) and through
libCacheSim's FIFO, LRU, SIEVE, S3-FIFO, ARC, W-TinyLFU and BeladySize (offline: it reads each
request's next access) at the same byte capacity, and prints one table.

  python3 policy.py --dcache target/release/dcache --out build/policy [--requests N]
"""

import argparse
import json
import os
import subprocess
import sys
import time

import libcachesim as lcs

SHAPES = ("zipf", "drift", "scan")
FRACTIONS = (0.05, 0.10)
# The paced run of the write budget: bytes per second, and requests per second.
BUDGET = 20 << 20
RATE = 20_000
PEERS = (("FIFO", lcs.FIFO), ("LRU", lcs.LRU), ("SIEVE", lcs.Sieve), ("S3-FIFO", lcs.S3FIFO),
         ("ARC", lcs.ARC), ("W-TinyLFU", lcs.WTinyLFU), ("BeladySize", lcs.BeladySize))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def peer(policy, trace, capacity):
    reader = lcs.TraceReader(trace, lcs.TraceType.ORACLE_GENERAL_TRACE)
    return policy(cache_size=capacity).process_trace(reader)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dcache", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--requests", type=int, default=400_000)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    started = time.time()
    rows = []
    for shape in SHAPES:
        trace = os.path.join(args.out, "%s.oracleGeneral" % shape)
        summary = run_json([args.dcache, "gen-trace", shape, "-o", trace, "--requests",
                            str(args.requests), "--json"])
        for fraction in FRACTIONS:
            capacity = int(summary["footprint_bytes"] * fraction) // (1 << 20) << 20
            cache = os.path.join(args.out, "replay.dcache")
            if os.path.exists(cache):
                os.remove(cache)
            replay = [args.dcache, "replay", trace, "--capacity", str(capacity), "--cache", cache,
                      "--json"]
            d = run_json(replay)
            filtered = run_json(replay + ["--admission", "filtered"])
            peers = {name: peer(policy, trace, capacity) for name, policy in PEERS}
            rows.append({"shape": shape, "fraction": fraction, "capacity": capacity,
                         "trace": summary, "dcache": d, "filtered": filtered,
                         "peers": {k: {"miss_ratio": v[0], "byte_miss_ratio": v[1]}
                                   for k, v in peers.items()}})
            print("  %s at %d%%: done" % (shape, fraction * 100), file=sys.stderr)
    # The write budget against wall-clock time: the first shape at its first capacity, paced.
    first = rows[0]
    trace = os.path.join(args.out, "%s.oracleGeneral" % first["shape"])
    cache = os.path.join(args.out, "replay.dcache")
    if os.path.exists(cache):
        os.remove(cache)
    budgeted = run_json([args.dcache, "replay", trace, "--capacity", str(first["capacity"]),
                         "--cache", cache, "--json", "--admission", "filtered",
                         "--write-budget", str(BUDGET), "--rate", str(RATE)])
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"rows": rows, "budgeted": budgeted}, f, indent=1)
    print_table(rows, budgeted, first, time.time() - started)
    wrong = sum(r[k]["wrong_values"] for r in rows for k in ("dcache", "filtered"))
    wrong += budgeted["wrong_values"]
    return 1 if wrong else 0


def print_table(rows, budgeted, first, seconds):
    names = [n for n, _ in PEERS]
    print("== miss ratio (object / byte), same trace, same byte capacity ==")
    head = "%-6s %4s %8s | %-13s" % ("shape", "cap", "MiB", "dcache") + "".join(
        " %-13s" % n for n in names) + " | dcache / LRU      | dcache / best of LRU, S3-FIFO"
    print(head)
    for r in rows:
        d = r["dcache"]
        cells = " %.3f / %.3f" % (d["miss_ratio"], d["byte_miss_ratio"])
        peer_cells = "".join(" %.3f / %.3f" % (r["peers"][n]["miss_ratio"],
                                               r["peers"][n]["byte_miss_ratio"]) for n in names)
        best = min(r["peers"]["LRU"]["miss_ratio"], r["peers"]["S3-FIFO"]["miss_ratio"])
        best_b = min(r["peers"]["LRU"]["byte_miss_ratio"], r["peers"]["S3-FIFO"]["byte_miss_ratio"])
        lru = r["peers"]["LRU"]
        print("%-6s %3d%% %8d |%s%s | %.3fx / %.3fx | %.2fx / %.2fx" % (
            r["shape"], round(r["fraction"] * 100), r["capacity"] >> 20, cells, peer_cells,
            d["miss_ratio"] / lru["miss_ratio"], d["byte_miss_ratio"] / lru["byte_miss_ratio"],
            d["miss_ratio"] / best, d["byte_miss_ratio"] / best_b))
    print()
    print("== dcache ==")
    print("%-6s %4s %16s %10s %12s %10s %12s %10s %10s %8s %12s %8s" % (
        "shape", "cap", "written/missed B", "promoted", "promoted MiB", "reinserted",
        "reinserted MiB", "ghost hits", "too large", "wrong", "requests/s", "I/O"))
    for r in rows:
        d = r["dcache"]
        print("%-6s %3d%% %16.3f %10d %12.1f %10d %14.1f %10d %10d %8d %12.0f %8s" % (
            r["shape"], round(r["fraction"] * 100), d["written_per_missed_byte"], d["promoted"],
            d["promoted_bytes"] / 2**20, d["reinserted"], d["reinserted_bytes"] / 2**20,
            d["ghost_hits"], d["too_large"], d["wrong_values"], d["requests_per_second"],
            d["io_mode"]))
    print()
    print("== dcache with --admission filtered (DCACHE_ADMIT_FILTERED), no budget ==")
    print("%-6s %4s %14s %16s %14s %16s %10s %8s" % (
        "shape", "cap", "miss (obj/B)", "/ best LRU,S3F", "/ W-TinyLFU", "written/missed B",
        "declined", "wrong"))
    for r in rows:
        f = r["filtered"]
        best = min(r["peers"]["LRU"]["miss_ratio"], r["peers"]["S3-FIFO"]["miss_ratio"])
        print("%-6s %3d%% %6.3f / %.3f %15.3fx %13.3fx %16.3f %10d %8d" % (
            r["shape"], round(r["fraction"] * 100), f["miss_ratio"], f["byte_miss_ratio"],
            f["miss_ratio"] / best, f["miss_ratio"] / r["peers"]["W-TinyLFU"]["miss_ratio"],
            f["written_per_missed_byte"], f["declined"], f["wrong_values"]))
    print()
    b = budgeted
    print("== write budget: %s at %d%%, filtered, %d requests/s, budget %.1f MB/s ==" % (
        first["shape"], round(first["fraction"] * 100), RATE, b["write_budget"] / 1e6))
    print("written %.1f MB/s over %.1f s (%.3fx the budget), miss ratio %.3f, declined %d, "
          "wrong %d" % (b["device_bytes_per_second"] / 1e6, b["seconds"],
                        b["device_bytes_per_second"] / b["write_budget"], b["miss_ratio"],
                        b["declined"], b["wrong_values"]))
    print()
    t = rows[0]["trace"]
    print("traces: %d requests each; zipf: %d objects, footprint %.0f MiB (see the README for "
          "every shape's parameters)" % (t["requests"], t["objects"], t["footprint_bytes"] / 2**20))
    print("elapsed: %.0f s" % seconds)


if __name__ == "__main__":
    sys.exit(main())
