#!/usr/bin/env python3
"""Hit throughput and latency for 64 KiB objects, in one run, with wrk:

  1. traffic_server + dcache_ats.so (ATS cache off), dcache with --io-mode=auto
  2. the same with --io-mode=buffered (page cache), for reference
  3. traffic_server's own disk cache: RAM cache size 0, a storage file of the same size
  4. the origin direct (the Python test origin)

Each target is filled (every URL fetched until it is a hit), then traffic_server is
restarted, so that hits are read from the cache file and not from memory: dcache serves
reads of the region it is still filling from its write buffer, and the restart empties it.
Then wrk runs; the origin's request count must not move during a cache run, and dcache's
bytes_read shows the device reads. Rounds alternate the targets so drift on a noisy machine
hits them alike. Results: a table on stdout and build/ats/bench.json.

  python3 bench.py --plugin build/ats/dcache_ats.so [--seconds 10] [--connections 32]

--baseline OTHER.so adds a second build of the plugin (say, the one before a change) as one
more target in the same rounds, and prints the ratio of the medians of their req/s.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "tests"))
from atsenv import Ats, Client, Origin, mkroot  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench"))
import wrk  # noqa: E402
from wrk import proc_cpu_seconds  # noqa: E402

LUA = """
paths = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""
PLUGIN = "dcache plugin (io-mode=auto)"
BASELINE = "dcache plugin, baseline build (auto)"


def run_wrk(port, lua, args):
    return wrk.run_wrk("http://127.0.0.1:%d/" % port, lua, args.seconds, args.threads, args.connections)


def warm(port, paths, origin, want_hit):
    c = Client(port)
    for _ in range(4):
        before = origin.total()
        for p in paths:
            s, h, b = c.request("GET", p)
            if s != 200 or len(b) != 65536:
                raise RuntimeError("warm-up %s: %d, %d bytes" % (p, s, len(b)))
        if origin.total() == before and all(want_hit(c.request("GET", p)[1]) for p in paths[:5]):
            c.close()
            return
    c.close()
    raise RuntimeError("port %d: objects do not become hits" % port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--objects", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--capacity", default="256M")
    ap.add_argument("--baseline", help="another build of the plugin to run beside it, same settings")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "ats", "bench.json"))
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("SKIP: wrk is not installed (apt-get install wrk)")
        return 0
    plugin = os.path.abspath(args.plugin)
    root = mkroot("dcache-ats-bench-")
    paths = ["/o/65536/bench%d" % i for i in range(args.objects)]
    lua = os.path.join(root, "paths.lua")
    with open(lua, "w") as f:
        f.write(LUA % ", ".join('"%s"' % p for p in paths))

    origin = Origin(os.path.join(root, "origin.log")).start()
    servers = {}
    results = {}
    config = {}
    try:
        def plugin_line(so, sub, mode):
            return "%s --path=%s/%s/cache.dc --capacity=%s --io-mode=%s --max-object-size=16M" % (
                so, root, sub, args.capacity, mode)

        specs = [
            (PLUGIN, "dc", dict(plugin_lines=[plugin_line(plugin, "dc", "auto")])),
            ("dcache plugin (io-mode=buffered)", "dcb", dict(plugin_lines=[plugin_line(plugin, "dcb", "buffered")])),
            ("ATS disk cache (RAM cache 0)", "ats", dict(cache_http=1, ram_cache=0,
                                                          storage_line="%s/ats/cache %s" % (root, args.capacity))),
        ]
        if args.baseline:
            specs.insert(1, (BASELINE, "base", dict(plugin_lines=[plugin_line(os.path.abspath(args.baseline), "base",
                                                                             "auto")])))
        for name, sub, kw in specs:
            d = os.path.join(root, sub)
            os.makedirs(os.path.join(d, "cache"), exist_ok=True)
            a = Ats(d, origin.port, **kw)
            a.start()
            servers[name] = a
            config[name] = {"plugin.config": kw.get("plugin_lines", []),
                            "storage.config": kw.get("storage_line", ""),
                            "proxy.config.http.cache.http": kw.get("cache_http", 0),
                            "proxy.config.cache.ram_cache.size": kw.get("ram_cache", -1)}
        def is_hit(name):
            return (lambda h: h.get("x-dcache") == "hit") if "dcache" in name else (lambda h: "age" in h)

        for name, a in servers.items():
            warm(a.port, paths, origin, is_hit(name))
            a.stop()                      # flushes dcache's buffer / ATS's directory
            a.start(port=a.port)
            warm(a.port, paths, origin, is_hit(name))
            if "dcache" in name:
                st = json.loads(Client(a.port).request("GET", "/_dcache_stats")[2])
                config[name]["direct_io"] = st["dcache"]["direct_io"]

        def dcache_read(a):
            try:
                return json.loads(Client(a.port).request("GET", "/_dcache_stats")[2])["dcache"]["bytes_read"]
            except Exception:
                return None
        targets = list(servers.items()) + [("origin direct (Python http.server)", None)]
        for rnd in range(args.rounds):
            for name, a in targets:
                port = a.port if a else origin.port
                before = origin.total()
                read0 = dcache_read(a) if a and "dcache" in name else None
                pid = a.proc.pid if a else origin.proc.pid
                cpu0 = proc_cpu_seconds(pid)
                res, out, cmd = run_wrk(port, lua, args)
                cpu1 = proc_cpu_seconds(pid)
                if a is None:
                    # requests wrk left in flight still reach the origin's count after it exits;
                    # let them land so they are not charged to the next target
                    time.sleep(1)
                if res.get("requests"):
                    res["server_cpu_us_per_request"] = (cpu1 - cpu0) / res["requests"] * 1e6
                res["origin_requests_during_run"] = origin.total() - before
                if read0 is not None:
                    res["dcache_device_read_mb"] = (dcache_read(a) - read0) / 1e6
                results.setdefault(name, []).append(res)
                config.setdefault(name, {})["wrk"] = cmd
                print("round %d  %-36s %9.0f req/s  %7.1f MB/s  p50 %6.2f ms  p99 %6.2f ms  cpu %5.1f us/req  origin+%d%s%s" % (
                    rnd + 1, name, res["rps"] or 0, res.get("mb_s") or 0, res["p50_ms"] or 0, res["p99_ms"] or 0,
                    res.get("server_cpu_us_per_request") or 0,
                    res["origin_requests_during_run"],
                    ("  device reads %.0f MB" % res["dcache_device_read_mb"]) if "dcache_device_read_mb" in res else "",
                    ("  non-2xx %d" % res["non2xx"]) if res["non2xx"] else ""), flush=True)
    finally:
        for a in servers.values():
            a.stop()
        origin.stop()

    print()
    print("%-36s %10s %9s %8s %8s %8s %12s" % ("64 KiB hits, mean of rounds", "req/s", "MB/s", "p50 ms", "p90 ms", "p99 ms",
                                               "cpu us/req"))
    summary = {}
    for name, runs in results.items():
        keys = ("rps", "mb_s", "p50_ms", "p90_ms", "p99_ms", "server_cpu_us_per_request")
        mean = {k: sum((r.get(k) or 0) for r in runs) / len(runs) for k in keys}
        summary[name] = mean
        print("%-36s %10.0f %9.1f %8.2f %8.2f %8.2f %12.1f" % (name, mean["rps"], mean["mb_s"], mean["p50_ms"], mean["p90_ms"],
                                                                mean["p99_ms"], mean["server_cpu_us_per_request"]))
    if args.baseline:
        rps = {n: statistics.median(r["rps"] or 0 for r in results[n]) for n in (PLUGIN, BASELINE)}
        summary["plugin_over_baseline_median_rps"] = rps[PLUGIN] / rps[BASELINE]
        print("\nmedian req/s: plugin %.0f, baseline %.0f, ratio %.3f" % (rps[PLUGIN], rps[BASELINE],
                                                                         summary["plugin_over_baseline_median_rps"]))
    version = subprocess.run(["traffic_server", "-V"], capture_output=True, text=True).stdout.splitlines()
    doc = {"objects": args.objects, "object_size": 65536, "seconds": args.seconds, "connections": args.connections,
           "wrk_threads": args.threads, "rounds": args.rounds, "traffic_server": version[0] if version else "",
           "nproc": os.cpu_count(), "summary": summary, "runs": results, "config": config}
    wrk.save_report(doc, args.out)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
