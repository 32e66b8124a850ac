#!/usr/bin/env python3
"""Hits through the real proxy, in one run, with wrk as the load:

  1. dcache-proxy on dcache (DiskStorage), O_DIRECT unless --io-mode says otherwise
  2. the same proxy on Pingora's MemCache, with an LRU of a quarter of the working set
  3. the same on MemCache with room for the whole working set (the in-memory ceiling)
  4. the origin alone (dcache-test-origin)

for 64 KiB and 1 MiB objects, each shape a working set four times the memory MemCache may
use, requests spread uniformly at random over it. Before the load, every object is fetched
through each proxy and checked byte for byte (dcache-test-origin check), and the dcache proxy
is restarted, so that its hits are read from the device, not from the region it was filling;
after the load, every object is fetched and checked again. Rounds alternate the targets, so
that drift on a noisy machine hits them alike. Server CPU is the proxy's (or origin's) user +
system time over the run, per request. Results: a table on stdout, build/pingora/bench.json.

  python3 bench.py --bin build/pingora/target/release [--seconds 10] [--rounds 2]
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import wrk  # noqa: E402

# Uniform random paths per wrk thread; counts the responses the proxy says were hits.
LUA = """
paths = {%s}
local threads = {}
local id = 0
setup = function(thread)
  id = id + 1
  thread:set("id", id)
  table.insert(threads, thread)
end
init = function(args)
  math.randomseed(7919 * wrk.thread:get("id"))
  hits = 0
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
response = function(status, headers, body)
  if headers["x-cache-status"] == "hit" then
    hits = hits + 1
  end
end
done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("hits")
  end
  io.write(string.format("proxy hits: %%d\\n", total))
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not start" % what)


class Server:
    """A process listening on a port of 127.0.0.1, stopped with SIGTERM."""

    def __init__(self, name, argv, port, log):
        self.name, self.argv, self.port, self.log = name, argv, port, log
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=open(self.log, "a"))
        wait_port(self.port, self.proc, self.name)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def addr(self):
        return "127.0.0.1:%d" % self.port


def check_all(checker, server, targets):
    out = subprocess.run([checker, "check", server.addr()], input="\n".join(targets), text=True,
                         capture_output=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError("%s: %s" % (server.name, out.stderr.strip()))
    return int(out.stdout.split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the directory of dcache-proxy and dcache-test-origin")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="wrk's threads")
    ap.add_argument("--proxy-threads", type=int, default=2)
    ap.add_argument("--io-mode", default="direct")
    ap.add_argument("--shapes", default="65536x4096,1048576x512", help="SIZExCOUNT,...")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "pingora", "bench.json"))
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("SKIP: wrk is not installed (apt-get install wrk)")
        return 0
    proxy_bin = os.path.join(args.bin, "dcache-proxy")
    checker = os.path.join(args.bin, "dcache-test-origin")
    root = tempfile.mkdtemp(prefix="dcache-pingora-bench-", dir=os.path.join(ROOT, "build"))
    origin_port = free_port()
    origin = Server("origin", [checker, "127.0.0.1:%d" % origin_port], origin_port, os.path.join(root, "origin.log"))
    origin.start()
    doc = {"seconds": args.seconds, "rounds": args.rounds, "connections": args.connections,
           "wrk_threads": args.threads, "proxy_threads": args.proxy_threads, "io_mode": args.io_mode,
           "nproc": os.cpu_count(), "shapes": {}}
    servers = []
    try:
        for shape in args.shapes.split(","):
            size, count = (int(x) for x in shape.split("x"))
            working_set = size * count
            memory_limit = working_set // 4
            targets = ["/s%d/o%d?size=%d&cc=max-age%%3D86400" % (size, i, size) for i in range(count)]
            lua = os.path.join(root, "paths-%d.lua" % size)
            with open(lua, "w") as f:
                f.write(LUA % ", ".join('"%s"' % t for t in targets))

            def proxy(name, *extra):
                port = free_port()
                argv = [proxy_bin, "--listen", "127.0.0.1:%d" % port, "--origin", origin.addr(),
                        "--threads", str(args.proxy_threads)] + list(extra)
                return Server(name, argv, port, os.path.join(root, "%s-%d.log" % (name.split()[0], size)))

            disk = proxy("dcache", "--cache", os.path.join(root, "cache-%d.dcache" % size),
                         "--capacity", str(max(2 * working_set, 256 << 20)), "--io-mode", args.io_mode)
            memory = proxy("MemCache", "--storage", "memory", "--memory-limit", str(memory_limit))
            # For reference, the ceiling: MemCache with room for the whole working set.
            ceiling = proxy("MemCache-all", "--storage", "memory", "--memory-limit", str(2 * working_set))
            shape_servers = [disk, memory, ceiling]
            servers.extend(shape_servers)
            for s in shape_servers:
                s.start()
                check_all(checker, s, targets)  # the fills
            disk.stop()  # the hits that follow come from the device
            disk.start()
            checked = check_all(checker, disk, targets)
            with open(disk.log) as f:
                disk_io = "O_DIRECT" if "O_DIRECT" in f.read() else "buffered"

            results = {}
            for rnd in range(args.rounds):
                for s in (disk, memory, ceiling, origin):
                    cpu0 = wrk.proc_cpu_seconds(s.proc.pid)
                    res, out, cmd = wrk.run_wrk("http://%s/" % s.addr(), lua, args.seconds, args.threads,
                                                args.connections)
                    cpu1 = wrk.proc_cpu_seconds(s.proc.pid)
                    hits = [line for line in out.splitlines() if line.startswith("proxy hits:")]
                    res["hits"] = int(hits[0].split()[-1]) if hits else 0
                    if res.get("requests"):
                        res["cpu_us_per_request"] = (cpu1 - cpu0) / res["requests"] * 1e6
                        res["hit_ratio"] = res["hits"] / res["requests"]
                    results.setdefault(s.name, []).append(res)
                    print("%4d KiB round %d  %-12s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %6.1f us/req  hits %5.1f%%%s" % (
                        size >> 10, rnd + 1, s.name, res["rps"] or 0, res["p50_ms"] or 0, res["p99_ms"] or 0,
                        res.get("cpu_us_per_request") or 0, 100 * (res.get("hit_ratio") or 0),
                        ("  non-2xx %d" % res["non2xx"]) if res["non2xx"] else ""), flush=True)
            for s in shape_servers:
                checked += check_all(checker, s, targets)
            for s in shape_servers:
                s.stop()
            summary = {}
            for name, runs in results.items():
                keys = ("rps", "p50_ms", "p99_ms", "cpu_us_per_request", "hit_ratio")
                summary[name] = {k: sum((r.get(k) or 0) for r in runs) / len(runs) for k in keys}
            doc["shapes"]["%d" % size] = {"objects": count, "working_set": working_set,
                                           "memcache_limit": memory_limit, "dcache_io": disk_io,
                                           "bodies_checked": checked, "summary": summary, "runs": results}
    finally:
        for s in servers + [origin]:
            s.stop()

    print()
    print("%-8s %-12s %10s %8s %8s %12s %6s %9s" % ("object", "storage", "req/s", "p50 ms", "p99 ms",
                                                  "cpu us/req", "hits", "vs Mem"))
    for size, shape in doc["shapes"].items():
        mem_rps = shape["summary"]["MemCache"]["rps"] or 1
        for name, m in shape["summary"].items():
            print("%-8s %-12s %10.0f %8.2f %8.2f %12.1f %5.0f%% %8.2fx" % (
                "%d KiB" % (int(size) >> 10), name, m["rps"], m["p50_ms"], m["p99_ms"], m["cpu_us_per_request"],
                100 * m["hit_ratio"], m["rps"] / mem_rps))
        print("%-8s working set %d MiB, MemCache limit %d MiB, dcache %s, %d bodies checked byte for byte" % (
            "", shape["working_set"] >> 20, shape["memcache_limit"] >> 20, shape["dcache_io"],
            shape["bodies_checked"]))
    wrk.save_report(doc, args.out)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
