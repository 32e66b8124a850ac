#!/usr/bin/env python3
"""Hits, in one run, with wrk: the dcache plugin against Traffic Server's own cache, for three
shapes of load: one hot 64 KiB URL, 1024 URLs of 64 KiB in turn, and 128 URLs of 1 MiB in
turn (--large-objects 0 leaves that shape out).

Targets (each its own traffic_server on loopback, 2 net threads):
  - traffic_server + dcache_ats.so (ATS cache off), dcache with --io-mode=auto
  - traffic_server's own disk cache: RAM cache size 0, a storage file of the same size
  - with --baseline OTHER.so: another build of the plugin (say, the one before a change)
  - with --buffered: the plugin with --io-mode=buffered (page cache)

Each target is filled (every URL fetched until it is a hit), then traffic_server is
restarted, so that hits are read from the cache file and not from memory: dcache serves
reads of the region it is still filling from its write buffer, and the restart empties it.
Then wrk runs each shape against each target, in rounds that alternate them so drift on a
noisy machine hits them alike. The origin's request count must not move during a run; after
the runs every URL is fetched from every target and its body compared byte for byte with the
origin's. Reported per shape: req/s, p50/p99 latency and the server's CPU time per hit
(user + system of the traffic_server process over the run, divided by the requests), and the
plugin's ratios to Traffic Server's own cache. Results: a table on stdout and
build/ats/bench.json.

  python3 bench.py --plugin build/ats/dcache_ats.so [--seconds 10] [--connections 32]
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
from origin import body_for  # noqa: E402
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
BUFFERED = "dcache plugin (io-mode=buffered)"
ATS = "ATS disk cache (RAM cache 0)"
SIZE = 65536
LARGE = 1 << 20
# What the issue asks of the plugin against Traffic Server's own cache, in every shape.
TARGETS = (("rps", ">=", 1.0), ("server_cpu_us_per_request", "<=", 1.0))


def size_of(path):
    return int(path.split("/")[2])


def warm(port, paths, origin, want_hit):
    c = Client(port)
    for _ in range(4):
        before = origin.total()
        for p in paths:
            s, h, b = c.request("GET", p)
            if s != 200 or len(b) != size_of(p):
                raise RuntimeError("warm-up %s: %d, %d bytes" % (p, s, len(b)))
        if origin.total() == before and all(want_hit(c.request("GET", p)[1]) for p in paths[:5]):
            c.close()
            return
    c.close()
    raise RuntimeError("port %d: objects do not become hits" % port)


def peak_rss_mb(pid):
    """The process's peak resident memory so far (VmHWM), in MB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return None


def bodies_wrong(port, paths):
    """How many of `paths` come back from the server at `port` other than the origin's bytes."""
    c = Client(port)
    wrong = 0
    for p in paths:
        s, _, b = c.request("GET", p)
        if s != 200 or b != body_for(p, size_of(p))[0]:
            wrong += 1
    c.close()
    return wrong


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--objects", type=int, default=1024)
    ap.add_argument("--large-objects", type=int, default=128, help="objects of 1 MiB for the third shape")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--capacity", default="512M")
    ap.add_argument("--plugin-args", default="", help="more arguments for the plugin (both builds)")
    ap.add_argument("--baseline", help="another build of the plugin to run beside it, same settings")
    ap.add_argument("--buffered", action="store_true", help="also the plugin with --io-mode=buffered")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "ats", "bench.json"))
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("SKIP: wrk is not installed (apt-get install wrk)")
        return 0
    root = mkroot("dcache-ats-bench-")
    small = ["/o/%d/bench%d" % (SIZE, i) for i in range(args.objects)]
    large = ["/o/%d/large%d" % (LARGE, i) for i in range(args.large_objects)]
    paths = small + large
    shapes = [("one hot URL", small[:1]), ("%d x 64 KiB" % len(small), small)]
    if large:
        shapes.append(("%d x 1 MiB" % len(large), large))
    luas = {}
    for i, (shape, ps) in enumerate(shapes):
        luas[shape] = os.path.join(root, "paths%d.lua" % i)
        with open(luas[shape], "w") as f:
            f.write(LUA % ", ".join('"%s"' % p for p in ps))

    origin = Origin(os.path.join(root, "origin.log")).start()
    servers = {}
    results = {}
    config = {}
    wrong = {}
    peak_rss = {}
    try:
        def plugin_line(so, sub, mode):
            return "%s --path=%s/%s/cache.dc --capacity=%s --io-mode=%s --max-object-size=16M %s" % (
                os.path.abspath(so), root, sub, args.capacity, mode, args.plugin_args)

        specs = [(PLUGIN, "dc", dict(plugin_lines=[plugin_line(args.plugin, "dc", "auto")]))]
        if args.baseline:
            specs.append((BASELINE, "base", dict(plugin_lines=[plugin_line(args.baseline, "base", "auto")])))
        if args.buffered:
            specs.append((BUFFERED, "dcb", dict(plugin_lines=[plugin_line(args.plugin, "dcb", "buffered")])))
        specs.append((ATS, "ats", dict(cache_http=1, ram_cache=0, storage_line="%s/ats/cache %s" % (root, args.capacity))))
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
        for rnd in range(args.rounds):
            for shape, _ in shapes:
                for name, a in servers.items():
                    before = origin.total()
                    read0 = dcache_read(a) if "dcache" in name else None
                    cpu0 = proc_cpu_seconds(a.proc.pid)
                    res, out, cmd = wrk.run_wrk("http://127.0.0.1:%d/" % a.port, luas[shape], args.seconds,
                                                args.threads, args.connections)
                    cpu1 = proc_cpu_seconds(a.proc.pid)
                    if res.get("requests"):
                        res["server_cpu_us_per_request"] = (cpu1 - cpu0) / res["requests"] * 1e6
                    res["origin_requests_during_run"] = origin.total() - before
                    if read0 is not None:
                        res["dcache_device_read_mb"] = (dcache_read(a) - read0) / 1e6
                    results.setdefault(shape, {}).setdefault(name, []).append(res)
                    config[name]["wrk"] = cmd
                    print("round %d  %-13s %-36s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %6.1f us/hit  origin+%d%s%s" % (
                        rnd + 1, shape, name, res["rps"] or 0, res["p50_ms"] or 0, res["p99_ms"] or 0,
                        res.get("server_cpu_us_per_request") or 0, res["origin_requests_during_run"],
                        ("  device reads %.0f MB" % res["dcache_device_read_mb"]) if "dcache_device_read_mb" in res else "",
                        ("  non-2xx %d" % res["non2xx"]) if res["non2xx"] else ""), flush=True)
        for name, a in servers.items():
            wrong[name] = bodies_wrong(a.port, paths)
            peak_rss[name] = peak_rss_mb(a.proc.pid)
    finally:
        for a in servers.values():
            a.stop()
        origin.stop()

    keys = ("rps", "mb_s", "p50_ms", "p99_ms", "server_cpu_us_per_request")
    summary = {}
    failed = []
    for shape, by_name in results.items():
        print("\n%-38s %9s %8s %8s %8s %11s" % ("hits, %s (median)" % shape, "req/s", "MB/s", "p50 ms", "p99 ms",
                                                "cpu us/hit"))
        summary[shape] = {}
        for name, runs in by_name.items():
            med = {k: statistics.median((r.get(k) or 0) for r in runs) for k in keys}
            summary[shape][name] = med
            print("%-38s %9.0f %8.1f %8.2f %8.2f %11.1f" % (name, med["rps"], med["mb_s"], med["p50_ms"], med["p99_ms"],
                                                           med["server_cpu_us_per_request"]))
        ats = summary[shape][ATS]
        for name in (PLUGIN, BASELINE):
            if name not in summary[shape]:
                continue
            for k, op, limit in TARGETS:
                ratio = summary[shape][name][k] / ats[k] if ats[k] else float("inf")
                summary[shape]["%s / ATS %s" % (name, k)] = ratio
                met = ratio >= limit if op == ">=" else ratio <= limit
                if name == PLUGIN and not met:
                    failed.append("%s %s" % (shape, k))
                print("  %s / ATS, %-26s %6.2fx  (target %s %.1fx: %s)" % (
                    "plugin" if name == PLUGIN else "baseline", k, ratio, op, limit, "met" if met else "NOT met"))
    print("\nbodies compared byte for byte after the runs, %d URLs: %s" % (len(paths), ", ".join(
        "%s %d wrong" % (n, w) for n, w in wrong.items())))
    print("peak resident memory of each traffic_server (VmHWM, warm-up included): %s" % ", ".join(
        "%s %.0f MB" % (n, m) for n, m in peak_rss.items()))
    moved = [(s, n) for s, by in results.items() for n, runs in by.items() if any(r["origin_requests_during_run"] for r in runs)]
    if moved:
        print("origin requests during hit runs: %s" % moved)
    print("targets: %s" % ("all met" if not failed else "NOT met: " + ", ".join(failed)))
    version = subprocess.run(["traffic_server", "-V"], capture_output=True, text=True).stdout.splitlines()
    doc = {"objects": args.objects, "object_size": SIZE, "large_objects": args.large_objects, "large_object_size": LARGE, "seconds": args.seconds, "connections": args.connections,
           "wrk_threads": args.threads, "rounds": args.rounds, "traffic_server": version[0] if version else "",
           "nproc": os.cpu_count(), "summary": summary, "wrong_bodies": wrong, "peak_rss_mb": peak_rss, "runs": results, "config": config}
    wrk.save_report(doc, args.out)
    shutil.rmtree(root, ignore_errors=True)
    return 1 if any(wrong.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
