#!/usr/bin/env python3
"""make test-replay: `dcache replay` counts what a C program replaying the same trace through
dcache_get / dcache_put counts (within a tolerance, see TOLERANCE), on each trace shape, and
never sees a wrong value.

  python3 test_replay.py --dcache target/release/dcache --replay-c build/policy/replay_c --dir D
"""

import argparse
import json
import os
import subprocess
import sys


# Two replays of one trace do not count exactly the same misses: the ghosts and the admission
# tables place keys by the key's hash, which each new cache seeds with its own random id, so
# two caches forget different keys when two share a slot. Ten `dcache replay` runs of the
# zipf trace below spread from 0.616 to 0.625 (2026-12-07): 0.01 failed now and then.
TOLERANCE = 0.02


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dcache", required=True)
    ap.add_argument("--replay-c", required=True)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    passed = failed = 0
    capacity = 16 << 20
    for shape in ("zipf", "drift", "scan"):
        trace = os.path.join(args.dir, "%s.oracleGeneral" % shape)
        subprocess.run([args.dcache, "gen-trace", shape, "-o", trace, "--requests", "60000"],
                       check=True, capture_output=True)
        cache = os.path.join(args.dir, "replay.dcache")
        ours = json.loads(subprocess.run(
            [args.dcache, "replay", trace, "--capacity", str(capacity), "--cache", cache,
             "--json"], check=True, capture_output=True, text=True).stdout)
        theirs = json.loads(subprocess.run(
            [args.replay_c, trace, str(capacity), cache], check=True, capture_output=True,
            text=True).stdout)
        checks = [
            ("same requests", ours["requests"] == theirs["requests"] == 60000),
            ("the same miss ratio within %g" % TOLERANCE,
             abs(ours["miss_ratio"] - theirs["miss_ratio"]) < TOLERANCE),
            ("the same byte miss ratio within %g" % TOLERANCE,
             abs(ours["byte_miss_ratio"] - theirs["byte_miss_ratio"]) < TOLERANCE),
            ("hits happen", 0 < ours["misses"] < ours["requests"]),
            ("no wrong value", ours["wrong_values"] == 0 and theirs["wrong_values"] == 0),
        ]
        for what, ok in checks:
            if ok:
                passed += 1
            else:
                failed += 1
                print("FAIL %s: %s: dcache replay %s, C %s" % (shape, what, ours, theirs))
        print("%-5s miss ratio %.4f (dcache replay) %.4f (C), %d requests/s" % (
            shape, ours["miss_ratio"], theirs["miss_ratio"], ours["requests_per_second"]))
        os.remove(trace)
    print("test-replay: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
