"""wrk as the load generator of the HTTP benchmarks (examples/ats/bench.py,
examples/pingora/bench.py): runs it, reads its summary, and the CPU time of the server."""

import os
import re
import subprocess


def parse_wrk(out):
    """Requests/s, latency percentiles (ms), MB/s, request and error counts from wrk --latency."""
    def num(pat, scale=None):
        m = re.search(pat, out)
        if not m:
            return None
        v = float(m.group(1))
        if scale:
            unit = m.group(2)
            v *= scale.get(unit, 1.0)
        return v
    lat_units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    res = {
        "rps": num(r"Requests/sec:\s+([\d.]+)"),
        "avg_ms": num(r"Latency\s+([\d.]+)(us|ms|s)", lat_units),
    }
    for p in ("50", "75", "90", "99"):
        res["p%s_ms" % p] = num(r"\s%s%%\s+([\d.]+)(us|ms|s)" % p, lat_units)
    m = re.search(r"Transfer/sec:\s+([\d.]+)(KB|MB|GB)", out)
    if m:
        res["mb_s"] = float(m.group(1)) * {"KB": 1 / 1024.0, "MB": 1.0, "GB": 1024.0}[m.group(2)]
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    res["socket_errors"] = m.group(1).strip() if m else ""
    return res


def proc_cpu_seconds(pid):
    """user + system CPU time of a process, all its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url, lua, seconds, threads, connections):
    """wrk with --latency and the script `lua` against `url`: (parsed, output, command line)."""
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", "%ds" % seconds,
           "--latency", "-s", lua, url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    return parse_wrk(out), out, " ".join(cmd)


def save_report(doc, path):
    """Writes a benchmark's results as JSON at `path` and says where."""
    import json
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    print("\nwritten %s" % path)
