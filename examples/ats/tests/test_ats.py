#!/usr/bin/env python3
"""End-to-end tests of dcache_ats.so in a private Traffic Server on 127.0.0.1.

Each test starts its own origin (origin.py) and traffic_server (own runroot in a temp dir,
free ports), and stops both by PID in a finally block. Prints one line per test and a
closing "N passed, N failed"; exits non-zero on any failure.

  python3 test_ats.py --plugin build/ats/dcache_ats.so [-k NAME] [--keep]
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.parse
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atsenv import Ats, Client, Origin, mkroot  # noqa: E402

PLUGIN = None
KEEP = False
CAPACITY = "256M"


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


class Env:
    """An origin and a traffic_server with the plugin, stopped by PID on exit."""

    def __init__(self, name, plugin_args="", **ats_options):
        self.root = mkroot("dcache-ats-%s-" % name)
        self.cache_path = os.path.join(self.root, "cache.dc")
        self.plugin_args = plugin_args
        self.ats_options = ats_options
        self.origin = None
        self.ats = None

    def plugin_line(self):
        return "%s --path=%s --capacity=%s --io-mode=auto --max-object-size=16M %s" % (
            PLUGIN, self.cache_path, CAPACITY, self.plugin_args)

    def __enter__(self):
        try:
            self.origin = Origin(os.path.join(self.root, "origin.log")).start()
            self.ats = Ats(self.root, self.origin.port, [self.plugin_line()], **self.ats_options)
            self.ats.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self, failed=False):
        try:
            if self.ats is not None:
                self.ats.stop()
        finally:
            if self.origin is not None:
                self.origin.stop()
        if failed:
            sys.stdout.write("    --- diags.log (tail) ---\n")
            for line in (self.ats.diags if self.ats else "").splitlines()[-15:]:
                sys.stdout.write("    " + line + "\n")
            sys.stdout.write("    (kept %s)\n" % self.root)
        elif not KEEP:
            shutil.rmtree(self.root, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb):
        self.close(failed=exc_type is not None)
        return False

    def client(self):
        return Client(self.ats.port)

    def stats(self):
        s, h, b = self.client().request("GET", "/_dcache_stats")
        check(s == 200, "stats URL answered %d" % s)
        return json.loads(b)

    def restart(self, kill=False):
        if kill:
            self.ats.kill()
        else:
            rc = self.ats.stop()
            check(rc == 0, "traffic_server exited with %s on SIGTERM" % rc)
        self.ats.start()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def verify_body(url, status, h, body, expect_status=200):
    check(status == expect_status, "%s: status %d, expected %d" % (url, status, expect_status))
    check("x-body-sha256" in h, "%s: no X-Body-SHA256" % url)
    check(int(h.get("content-length", -1)) == len(body),
          "%s: Content-Length %s but %d bytes" % (url, h.get("content-length"), len(body)))
    check(sha(body) == h["x-body-sha256"], "%s: body does not match its checksum header" % url)


def get(c, url, headers=None, method="GET"):
    return c.request(method, url, headers)


def check_expires(env, c, url, cache_control):
    """`url`, whose origin sends `cache_control` (a 2 s lifetime), is stored, a hit at once,
    and a miss after 3 s."""
    s, h, b = get(c, url)
    verify_body(url, s, h, b)
    check(h.get("cache-control") == cache_control, "%s: the origin's Cache-Control %r" % (url, h.get("cache-control")))
    s, h, b = get(c, url)
    check(h.get("x-dcache") == "hit", "%s: no hit at once" % cache_control)
    time.sleep(3.1)
    s, h, b = get(c, url)
    verify_body(url, s, h, b)
    check(h.get("x-dcache") != "hit", "%s: still a hit after 3 s" % cache_control)
    check(env.origin.count(url) == 2, "%s: origin saw %d requests" % (cache_control, env.origin.count(url)))


# ------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------

def staged_plugin():
    """A copy of the plugin and of the libdcache it links, in a new directory that any user
    can read, as an installed plugin would be: traffic_server drops to its own user (the
    `trafficserver` user of Debian's records.config), which may not read the build tree (a
    checkout in a 0700 directory). Returns (directory, plugin path)."""
    import subprocess
    out = subprocess.run(["ldd", PLUGIN], capture_output=True, text=True, check=True).stdout
    libs = [l.split("=>") for l in out.splitlines() if "libdcache" in l and "=>" in l]
    check(len(libs) == 1 and "/" in libs[0][1],
          "ldd does not resolve the plugin's libdcache:\n%s" % out)
    soname, lib = libs[0][0].strip(), libs[0][1].split("(")[0].strip()
    stage = tempfile.mkdtemp(prefix="dcache-ats-plugin-", dir="/tmp")
    os.chmod(stage, 0o755)
    plugin = os.path.join(stage, os.path.basename(PLUGIN))
    for src, dst in ((PLUGIN, plugin), (lib, os.path.join(stage, soname))):
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o755)
    return stage, plugin


def test_plugin_loads():
    """traffic_server's own preflight, with Debian's configuration (as root, it drops to the
    trafficserver user): dlopen and TSPluginInit (undefined symbols are fatal)."""
    import subprocess
    stage, plugin = staged_plugin()
    try:
        env = dict(os.environ, LD_LIBRARY_PATH=stage)
        env.pop("TS_RUNROOT", None)
        if os.geteuid() != 0:
            # Not root: no drop to another user, and Debian's state and log directories are
            # not ours to use.
            env.update(PROXY_CONFIG_LOCAL_STATE_DIR=stage, PROXY_CONFIG_LOG_LOGFILE_DIR=stage)
        r = subprocess.run(["traffic_server", "-C", "verify_global_plugin %s" % plugin],
                           capture_output=True, text=True, timeout=60, cwd=stage, env=env)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    check(r.returncode == 0 and "Success" in (r.stdout + r.stderr),
          "verify_global_plugin failed (%d): %s" % (r.returncode, (r.stdout + r.stderr)[-500:]))
    return "verify_global_plugin: Success"


def test_fill_and_hit():
    """A miss then a hit for 0 B, 1 B, 100 KB and 10 MB; hits byte-exact; one origin request."""
    with Env("fill") as env:
        c = env.client()
        for size in (0, 1, 100 * 1000, 10 * 1000 * 1000):
            url = "/o/%d/fill" % size
            s, h, miss_body = get(c, url)
            verify_body(url, s, h, miss_body)
            check(h.get("x-dcache") != "hit", "%s: first request was a hit" % url)
            check(len(miss_body) == size, "%s: %d bytes" % (url, len(miss_body)))
            s, h, hit_body = get(c, url)
            verify_body(url, s, h, hit_body)
            check(h.get("x-dcache") == "hit", "%s: second request not a hit (%r)" % (url, h))
            check(hit_body == miss_body, "%s: hit body differs from the origin's" % url)
            check("age" in h and int(h["age"]) >= 0, "%s: no Age on a hit" % url)
            check(h.get("cache-control") == "max-age=3600", "%s: stored headers lost" % url)
            check(env.origin.count(url) == 1, "%s: origin saw %d requests" % (url, env.origin.count(url)))
        st = env.stats()
        check(st["hits"] >= 4 and st["stores"] >= 4, "stats %r" % st)
        d = st.get("dcache", {})
        check(d.get("hits", 0) >= 4 and d.get("reinserted") == 0 and d.get("reinserted_bytes") == 0,
              "the library's counters on the stats page, reinsertions among them: %r" % d)
        return "hits %d, stores %d, direct_io %d" % (st["hits"], st["stores"], st["dcache"]["direct_io"])


def test_admission():
    """--admission=filtered: a first miss passes through unstored (counted as declined), the
    second is stored, the third is a hit; every body byte-exact."""
    with Env("admission", plugin_args="--admission=filtered") as env:
        c = env.client()
        url = "/o/%d/admit" % (100 * 1000)
        bodies = []
        for i in range(3):
            s, h, body = get(c, url)
            verify_body(url, s, h, body)
            bodies.append(body)
            check((h.get("x-dcache") == "hit") == (i == 2), "%s: request %d: %r" % (url, i + 1, h))
        check(bodies[0] == bodies[1] == bodies[2], "%s: bodies differ" % url)
        check(env.origin.count(url) == 2, "%s: origin saw %d requests" % (url, env.origin.count(url)))
        st = env.stats()
        d = st.get("dcache", {})
        check(st["declined"] == 1 and st["stores"] == 1 and d.get("declined") == 1
              and d.get("admission_bytes", 0) > 0, "stats %r" % st)
        return "declined %d, stores %d, hits %d" % (st["declined"], st["stores"], st["hits"])


def test_write_budget():
    """--write-budget=1 (a byte a second): no fill fits, every response passes through whole
    and unstored, counted as declined."""
    with Env("budget", plugin_args="--admission=filtered --write-budget=1") as env:
        c = env.client()
        url = "/o/%d/budget" % (50 * 1000)
        for i in range(3):
            s, h, body = get(c, url)
            verify_body(url, s, h, body)
            check(h.get("x-dcache") != "hit", "%s: request %d was a hit" % (url, i + 1))
        st = env.stats()
        check(st["declined"] == 3 and st["stores"] == 0, "stats %r" % st)
        return "declined %d, stores %d" % (st["declined"], st["stores"])


def test_range_and_head():
    """Random single ranges on a hit (206 + Content-Range), 416 when unsatisfiable, HEAD."""
    rnd = random.Random(6)
    with Env("range") as env:
        c = env.client()
        done = 0
        for size in (1000, 300 * 1024, 3 * 1024 * 1024):
            url = "/o/%d/range" % size
            s, h, full = get(c, url)
            verify_body(url, s, h, full)
            s, h, _ = get(c, url)
            check(h.get("x-dcache") == "hit", "%s: not a hit" % url)
            specs = []
            for _ in range(12):
                a = rnd.randrange(size)
                b = rnd.randrange(a, size)
                specs.append(("bytes=%d-%d" % (a, b), a, b))
            specs.append(("bytes=%d-" % (size - 7), size - 7, size - 1))
            specs.append(("bytes=-%d" % 10, size - 10, size - 1))
            specs.append(("bytes=-%d" % (size * 2), 0, size - 1))
            specs.append(("bytes=0-%d" % (size * 5), 0, size - 1))
            specs.append(("bytes=%d-%d" % (size - 1, size - 1), size - 1, size - 1))
            for spec, a, b in specs:
                s, h, part = get(c, url, {"Range": spec})
                check(s == 206, "%s %s: status %d" % (url, spec, s))
                check(h.get("x-dcache") == "hit", "%s %s: not served from dcache" % (url, spec))
                check(h.get("content-range") == "bytes %d-%d/%d" % (a, b, size),
                      "%s %s: Content-Range %r" % (url, spec, h.get("content-range")))
                check(part == full[a:b + 1], "%s %s: wrong bytes" % (url, spec))
                done += 1
            for spec in ("bytes=%d-" % size, "bytes=%d-%d" % (size + 10, size + 20), "bytes=-0"):
                s, h, part = get(c, url, {"Range": spec})
                check(s == 416, "%s %s: status %d, expected 416" % (url, spec, s))
                check(h.get("content-range") == "bytes */%d" % size,
                      "%s %s: Content-Range %r" % (url, spec, h.get("content-range")))
            # HEAD on a hit: the stored headers, no body
            s, h, body = get(c, url, method="HEAD")
            check(s == 200 and body == b"", "%s HEAD: %d, %d bytes" % (url, s, len(body)))
            check(h.get("x-dcache") == "hit", "%s HEAD: not a hit" % url)
            check(int(h.get("content-length", -1)) == size, "%s HEAD: Content-Length %r" % (url, h.get("content-length")))
            check(h.get("x-body-sha256") == sha(full), "%s HEAD: checksum header" % url)
            check(env.origin.count(url) == 1, "%s: origin saw %d requests" % (url, env.origin.count(url)))
        return "%d ranges checked" % done


def test_replaced_while_streaming():
    """A large hit whose value is replaced while it is being sent is cut short, never
    finished with the new version's bytes: its chunks (read on the queue) check the fill id."""
    with Env("replaced") as env:
        c = env.client()
        url = "/o/%d/replaced" % (12 << 20)
        get(c, url)
        s, h, full = get(c, url)
        check(h.get("x-dcache") == "hit", "not a hit")
        # a slow client: the headers and a little of the body, then a pause
        sock = socket.create_connection(("127.0.0.1", env.ats.port), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (url.encode(), env.ats.port))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        time.sleep(0.5)  # the first chunks are read and buffered; the next wait for the client
        # another version replaces it: PURGE, then a miss that stores the origin's next response
        s, _, _ = get(c, url, method="PURGE")
        check(s == 200, "PURGE answered %d" % s)
        s, h, b = get(c, url)
        verify_body(url, s, h, b)
        check(h.get("x-dcache") != "hit", "the refetch after the PURGE was a hit")
        got = len(head.split(b"\r\n\r\n", 1)[1])
        while True:
            try:
                d = sock.recv(1 << 20)
            except OSError:
                break
            if not d:
                break
            got += len(d)
        sock.close()
        check(got < len(full), "the response went on to its end (%d bytes) across a replaced value" % got)
        st = env.stats()
        check(st["hit_errors"] >= 1, "no hit error counted: %r" % st["hit_errors"])
        check(st["queue_chunks"] > 0, "the chunks were not read on the queue")
        return "cut at %d of %d bytes" % (got, len(full))


def test_not_cached_and_expiry():
    """no-store, private, Set-Cookie and no lifetime are not cached; max-age=2 expires."""
    with Env("nocache") as env:
        c = env.client()
        for q in ("cc=no-store", "cc=private,max-age=60", "cookie=1", "cc=", "cc=no-cache"):
            url = "/o/5000/nc?" + q
            for i in range(2):
                s, h, b = get(c, url)
                verify_body(url, s, h, b)
                check(h.get("x-dcache") != "hit", "%s: served from dcache" % url)
            check(env.origin.count(url) == 2, "%s: origin saw %d requests, expected 2" % (url, env.origin.count(url)))
        # a URL longer than a dcache key (4096 bytes) is passed through; its PURGE finds nothing
        url = "/o/300/long?pad=" + "x" * 5000
        for i in range(2):
            s, h, b = get(c, url)
            verify_body(url, s, h, b)
        check(env.origin.count(url) == 2, "long URL: origin saw %d requests, expected 2" % env.origin.count(url))
        s, h, b = get(c, url, method="PURGE")
        check(s == 404, "PURGE of a long URL: %d" % s)
        # Expires alone gives a lifetime
        url = "/o/5000/exp?cc=&expires=60"
        get(c, url)
        s, h, b = get(c, url)
        check(h.get("x-dcache") == "hit", "%s: Expires-only response not cached" % url)
        # A HEAD miss and a Range miss are passed through and do not store
        url = "/o/5000/headmiss"
        s, h, b = get(c, url, method="HEAD")
        check(s == 200 and b == b"", "HEAD miss: %d" % s)
        s, h, b = get(c, url, {"Range": "bytes=0-9"})
        check(s == 206 and len(b) == 10, "Range miss: %d, %d bytes" % (s, len(b)))
        s, h, b = get(c, url)
        check(h.get("x-dcache") != "hit", "%s: stored by a HEAD or Range miss" % url)
        check_expires(env, c, "/o/5000/short?cc=max-age%3D2", "max-age=2")
        # a body cut short by the origin is not stored
        url = "/o/200000/trunc?trunc=1000"
        for i in range(2):
            raw = http.client.HTTPConnection("127.0.0.1", env.ats.port, timeout=20)
            try:
                raw.request("GET", url)
                r = raw.getresponse()
                body = r.read()
                raise Fail("%s: a truncated body was answered whole (%d bytes)" % (url, len(body)))
            except (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError):
                pass
            finally:
                raw.close()
        check(env.origin.count(url) == 2, "%s: origin saw %d requests, expected 2" % (url, env.origin.count(url)))
        st = env.stats()
        check(st["aborts"] >= 1, "no abort counted for the truncated body: %r" % st)
        return "aborts %d, not cacheable %d" % (st["aborts"], st["not_cacheable"])


def test_conditional_and_rfc_edges():
    """RFC 9110/9111 on hits: If-None-Match (strong, weak, lists, *) and If-Modified-Since
    answered 304 from the stored validators; a last-byte-pos too large for 64 bits is "to the
    end"; a quoted max-age is understood."""
    with Env("conditional") as env:
        c = env.client()
        cases = 0
        for etag in ('"v1"', 'W/"w1"'):
            url = "/o/5000/cond?etag=" + urllib.parse.quote(etag)
            s, h, full = get(c, url)
            verify_body(url, s, h, full)
            bare = etag[2:] if etag.startswith("W/") else etag
            for inm, want in ((etag, 304), (bare, 304), ("W/" + bare, 304), ('"x", ' + etag, 304),
                              ("*", 304), ('"other"', 200), ('"v1, W/"w1"', 200)):
                for method in ("GET", "HEAD"):
                    s, h, body = get(c, url, {"If-None-Match": inm}, method=method)
                    check(s == want, "%s %s If-None-Match %s: %d, expected %d" % (method, url, inm, s, want))
                    check(h.get("x-dcache") == "hit", "%s If-None-Match %s: not from dcache" % (url, inm))
                    if want == 304:
                        check(body == b"", "%s: a 304 with a body" % url)
                        check(h.get("etag") == etag, "%s: 304 ETag %r" % (url, h.get("etag")))
                        check(h.get("cache-control") == "max-age=3600", "%s: 304 without Cache-Control" % url)
                        check(h.get("last-modified") == "Mon, 01 Jan 2024 00:00:00 GMT", "%s: 304 Last-Modified" % url)
                    elif method == "GET":
                        verify_body(url, s, h, body)
                        check(body == full, "%s: another body" % url)
                    cases += 1
            # A 304 takes precedence over a Range
            s, h, body = get(c, url, {"If-None-Match": etag, "Range": "bytes=0-9"})
            check(s == 304 and body == b"", "%s: Range + matching If-None-Match: %d" % (url, s))
            check(env.origin.count(url) == 1, "%s: origin saw %d requests" % (url, env.origin.count(url)))
        # If-Modified-Since against the stored Last-Modified (Mon, 01 Jan 2024 00:00:00 GMT)
        url = "/o/7000/ims"
        s, h, full = get(c, url)
        for ims, want in (("Mon, 01 Jan 2024 00:00:00 GMT", 304), ("Tue, 02 Jan 2024 00:00:00 GMT", 304),
                          ("Sun, 31 Dec 2023 23:59:59 GMT", 200), ("Sunday, 07-Jan-24 00:00:00 GMT", 304),
                          ("not a date", 200)):
            s, h, body = get(c, url, {"If-Modified-Since": ims})
            check(s == want, "%s If-Modified-Since %s: %d, expected %d" % (url, ims, s, want))
            if want == 200:
                verify_body(url, s, h, body)
            cases += 1
        # If-None-Match decides when both are present
        url2 = "/o/7000/both?etag=%22b%22"
        get(c, url2)
        s, h, body = get(c, url2, {"If-None-Match": '"nope"', "If-Modified-Since": "Tue, 02 Jan 2024 00:00:00 GMT"})
        check(s == 200, "If-None-Match not matching + If-Modified-Since later: %d" % s)
        verify_body(url2, s, h, body)
        # Byte positions too large for 64 bits
        for spec, want in (("bytes=0-99999999999999999999", (206, 0, 6999)),
                           ("bytes=-99999999999999999999", (206, 0, 6999)),
                           ("bytes=99999999999999999999-", (416, None, None))):
            s, h, part = get(c, url, {"Range": spec})
            check(s == want[0], "%s %s: %d, expected %d" % (url, spec, s, want[0]))
            if s == 206:
                check(h.get("content-range") == "bytes 0-6999/7000", "%s: Content-Range %r" % (spec, h.get("content-range")))
                check(part == full, "%s: wrong bytes" % spec)
            cases += 1
        # A quoted max-age: stored, a hit, then expired
        check_expires(env, c, '/o/5000/quoted?cc=max-age%3D%222%22', 'max-age="2"')
        return "%d conditional and range cases" % cases


def test_request_no_cache():
    """A request's Cache-Control: no-cache (or Pragma: no-cache alone) is served from the cache
    only after the origin validates the stored response with a conditional request."""
    with Env("reqnocache") as env:
        c = env.client()
        url = "/o/20000/revalidate?etag=%22r1%22"
        s, h, full = get(c, url)
        verify_body(url, s, h, full)
        for headers in ({"Cache-Control": "no-cache"}, {"Pragma": "no-cache"},
                        {"Cache-Control": "max-age=0, no-cache"}, {"Cache-Control": "no-cache", "Range": "bytes=5-9"}):
            before = env.origin.count(url)
            s, h, b = get(c, url, headers)
            check(h.get("x-dcache") == "hit", "%s %r: not served from dcache after a 304" % (url, headers))
            if "Range" in headers:
                check(s == 206 and b == full[5:10], "%s %r: %d" % (url, headers, s))
            else:
                verify_body(url, s, h, b)
                check(b == full, "%s %r: another body" % (url, headers))
            check(env.origin.count(url) == before + 1, "%s %r: origin saw %d requests, expected one conditional"
                  % (url, headers, env.origin.count(url) - before))
        # The client's own validator still applies after the revalidation.
        s, h, b = get(c, url, {"Cache-Control": "no-cache", "If-None-Match": '"r1"'})
        check(s == 304 and b == b"", "no-cache + matching If-None-Match: %d" % s)
        # Pragma beside a Cache-Control without no-cache: the cache answers alone.
        before = env.origin.count(url)
        s, h, b = get(c, url, {"Pragma": "no-cache", "Cache-Control": "max-age=600"})
        check(h.get("x-dcache") == "hit" and env.origin.count(url) == before, "Pragma with Cache-Control went to the origin")
        # Only Last-Modified stored, and the origin answers 200 to If-Modified-Since: the new
        # response is served and replaces the stored one.
        url = "/o/20000/changed"
        get(c, url)
        before = env.origin.count(url)
        s, h, b = get(c, url, {"Cache-Control": "no-cache"})
        verify_body(url, s, h, b)
        check(h.get("x-dcache") != "hit", "%s: served from dcache though the origin answered 200" % url)
        check(env.origin.count(url) == before + 2, "%s: origin saw %d requests" % (url, env.origin.count(url) - before))
        s, h, b = get(c, url)
        verify_body(url, s, h, b)
        check(h.get("x-dcache") == "hit", "%s: the new response was not stored" % url)
        st = env.stats()
        check(st["revalidated"] == 5, "revalidated %r" % st.get("revalidated"))
        return "revalidated %d, origin 304s served the stored body" % st["revalidated"]


# The access log format of examples/ats/README.md: Traffic Server's cache result code (crc)
# says TCP_MISS for every response the plugin serves, so the last field, the X-Dcache header
# the plugin puts on its hits, is what tells hits.
ACCESS_LOG_YAML = """\
logging:
  formats:
    - name: dcache
      format: '%<chi> %<cqhm> %<cqu> %<pssc> %<crc> %<{X-Dcache}psh>'
  logs:
    - filename: dcache_access
      format: dcache
      mode: ascii
"""


def test_access_log():
    """An operator reads hits from the access log: the documented format marks each."""
    with Env("log", logging_yaml=ACCESS_LOG_YAML) as env:
        c = env.client()
        url = "/o/3000/logged"
        sent = [("GET", url, None, "-"), ("GET", url, None, "hit"), ("GET", url, {"Range": "bytes=0-9"}, "hit"),
                ("HEAD", url, None, "hit"), ("GET", "/o/3000/unlogged?cc=no-store", None, "-")]
        for method, u, headers, _ in sent:
            get(c, u, headers, method=method)
        path = os.path.join(env.root, "log", "dcache_access.log")
        deadline = time.time() + 15
        lines = []
        while time.time() < deadline:
            try:
                with open(path) as f:
                    lines = [l.split() for l in f if "/o/3000/" in l]
            except OSError:
                pass
            if len(lines) >= len(sent):
                break
            time.sleep(0.2)
        check(len(lines) == len(sent), "access log: %d of %d lines" % (len(lines), len(sent)))
        for (method, u, _, want), fields in zip(sent, lines):
            check(fields[1] == method and u in fields[2], "access log line %r for %s %s" % (fields, method, u))
            check(fields[-1] == want, "access log: %s %s marked %r, expected %r" % (method, u, fields[-1], want))
        return "%d lines, hits marked by %%<{X-Dcache}psh> (crc %s)" % (len(lines), lines[1][4])


def prometheus_samples(text):
    """{(name, labels): value} of a Prometheus text, read by the client library's parser."""
    from prometheus_client.parser import text_string_to_metric_families
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_metrics():
    """The stats URL with ?format=prometheus: the library's metrics, with the same names and
    values as the textfile the library writes, and the plugin's counters; they move with
    requests. The JSON page carries the library's JSON."""
    env = Env("metrics")
    textfile = os.path.join(env.root, "dcache.prom")
    # No periodic flush: the library's numbers stand still between requests.
    env.plugin_args = "--metrics-textfile=%s --metrics-interval=50 --flush-interval=0" % textfile
    with env:
        c = env.client()
        url = "/o/5000/metrics"
        for _ in range(3):
            get(c, url)

        def scrape():
            s, h, b = c.request("GET", "/_dcache_stats?format=prometheus")
            check(s == 200 and h.get("content-type", "").startswith("text/plain; version=0.0.4"),
                  "prometheus stats: %d %r" % (s, h))
            return prometheus_samples(b.decode())
        deadline = time.time() + 10
        while True:
            plugin = scrape()
            with open(textfile) as f:
                library = prometheus_samples(f.read())
            ours = {k: v for k, v in plugin.items() if not k[0].startswith("dcache_ats_")}
            if ours == library:
                break
            check(time.time() < deadline, "the plugin's and the textfile's metrics differ: %r" % sorted(
                set(ours.items()) ^ set(library.items()))[:6])
            time.sleep(0.1)
        check(plugin[("dcache_ats_hits_total", ())] == 2 and plugin[("dcache_ats_stores_total", ())] == 1,
              "plugin counters %r" % {k: v for k, v in plugin.items() if k[0].startswith("dcache_ats_")})
        gets = ("dcache_operation_duration_seconds_count", (("operation", "get"),))
        check(plugin[("dcache_puts_total", ())] == 1 and plugin[gets] >= 2, "library counters")
        time.sleep(0.2)  # past the 100 ms in which a hit may share the last read: this one reads
        get(c, url)
        after = scrape()
        check(after[("dcache_ats_hits_total", ())] == 3, "a hit did not move dcache_ats_hits_total")
        check(after[("dcache_hits_total", ())] > plugin[("dcache_hits_total", ())], "dcache_hits_total")
        check(after[gets] > plugin[gets], "the get histogram did not move")
        d = env.stats()["dcache"]
        check(d["hits"] == after[("dcache_hits_total", ())] and d["latency"]["get"]["count"] == after[gets],
              "the JSON page and the Prometheus text disagree: %r" % d)
        return "%d samples; textfile identical to the plugin's library metrics" % len(after)


def test_purge():
    """PURGE deletes: 200 when it was there, 404 when not; the next GET goes to the origin."""
    with Env("purge") as env:
        c = env.client()
        url = "/o/40000/purge"
        get(c, url)
        s, h, b = get(c, url)
        check(h.get("x-dcache") == "hit", "not a hit before PURGE")
        s, h, b = get(c, url, method="PURGE")
        check(s == 200, "PURGE of a cached URL: %d %r" % (s, b))
        s, h, b = get(c, url, method="PURGE")
        check(s == 404, "second PURGE: %d" % s)
        s, h, b = get(c, url)
        verify_body(url, s, h, b)
        check(h.get("x-dcache") != "hit", "hit after PURGE")
        check(env.origin.count(url) == 2, "origin saw %d requests" % env.origin.count(url))
        s, h, b = get(c, url)
        check(h.get("x-dcache") == "hit", "not stored again after PURGE")
        s, h, b = get(c, "/o/10/never", method="PURGE")
        check(s == 404, "PURGE of an unknown URL: %d" % s)
        check(env.origin.count("/o/10/never") == 0, "PURGE went to the origin")
        st = env.stats()
        check(st["purges"] == 1, "purges %r" % st["purges"])
        return "purges %d" % st["purges"]


def test_restart():
    """After a clean restart of traffic_server, objects are still hits."""
    with Env("restart") as env:
        c = env.client()
        urls = ["/o/%d/restart%d" % (size, i) for i, size in enumerate((0, 1, 4096, 65536, 300000, 5000000))]
        bodies = {}
        for url in urls:
            s, h, b = get(c, url)
            verify_body(url, s, h, b)
            bodies[url] = b
        c.close()
        env.restart()
        c = env.client()
        for url in urls:
            s, h, b = get(c, url)
            verify_body(url, s, h, b)
            check(h.get("x-dcache") == "hit", "%s: not a hit after a restart" % url)
            check(b == bodies[url], "%s: different bytes after a restart" % url)
            check(env.origin.count(url) == 1, "%s: origin saw %d requests" % (url, env.origin.count(url)))
        # a restart with another --capacity keeps the existing cache (and warns) rather than reformat
        c.close()
        env.ats.plugin_lines = [env.plugin_line().replace("--capacity=%s" % CAPACITY, "--capacity=128M")]
        env.restart()
        check("opening it with its own capacity" in env.ats.diags, "no warning about the other capacity")
        c = env.client()
        s, h, b = get(c, urls[-1])
        verify_body(urls[-1], s, h, b)
        check(h.get("x-dcache") == "hit", "not a hit after a restart with another --capacity")
        return "%d objects hit after restart, kept across a --capacity change" % len(urls)


class Load:
    """Client threads that GET random URLs and check every body against its checksum."""

    def __init__(self, port, urls, nthreads, seed=1):
        self.port = port
        self.urls = urls
        self.nthreads = nthreads
        self.seed = seed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.hits = 0
        self.errors = 0          # connection errors (expected while traffic_server is killed)
        self.bytes = 0
        self.wrong = []          # bodies that did not match: must stay empty
        self.threads = []

    def _run(self, n):
        rnd = random.Random(self.seed * 1000 + n)
        c = Client(self.port, timeout=20)
        while not self.stop.is_set():
            url = rnd.choice(self.urls)
            try:
                s, h, b = c.request("GET", url)
            except Exception:  # connection refused/reset during a crash
                c.close()
                with self.lock:
                    self.errors += 1
                time.sleep(0.01)
                continue
            good = (s == 200 and "x-body-sha256" in h and sha(b) == h["x-body-sha256"]
                    and int(h.get("content-length", -1)) == len(b))
            with self.lock:
                if good:
                    self.ok += 1
                    self.bytes += len(b)
                    if h.get("x-dcache") == "hit":
                        self.hits += 1
                elif s in (502, 503, 504):
                    self.errors += 1
                else:
                    self.wrong.append((url, s, len(b), h.get("x-dcache")))
        c.close()

    def start(self):
        for n in range(self.nthreads):
            t = threading.Thread(target=self._run, args=(n,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def clean_load(env, urls, nthreads, seconds, seed):
    """`nthreads` clients on `urls` for `seconds`: no wrong response, no connection error."""
    load = Load(env.ats.port, urls, nthreads, seed=seed).start()
    time.sleep(seconds)
    load.finish()
    check(not load.wrong, "wrong responses: %r" % load.wrong[:5])
    check(load.errors == 0, "%d connection errors" % load.errors)
    return load


def mixed_urls(n, tag):
    rnd = random.Random(n)
    sizes = [0, 1, 700, 4096, 16384, 65536, 100000, 262144, 300000, 1 << 20]
    return ["/o/%d/%s%d" % (rnd.choice(sizes), tag, i) for i in range(n)]


def test_crash():
    """kill -9 of traffic_server under load, then a restart: every body served is right."""
    with Env("crash", plugin_args="--flush-interval=1") as env:
        # enough URLs that fills are still running at the kill, and slow ones that are sure to be
        urls = mixed_urls(400, "crash") + ["/o/1048576/crashslow%d?slow=40" % i for i in range(24)]
        load = Load(env.ats.port, urls, 8).start()
        time.sleep(2.0)
        st = env.stats()
        env.ats.kill()                       # the crash, in the middle of fills and hits
        time.sleep(0.5)
        env.ats.start()
        time.sleep(2.0)
        load.finish()
        check(not load.wrong, "wrong bodies served: %r" % load.wrong[:5])
        # every URL once more, after the restart: hits or misses, never wrong
        c = env.client()
        hits = 0
        for url in urls:
            s, h, b = get(c, url)
            verify_body(url, s, h, b)
            hits += h.get("x-dcache") == "hit"
        check(env.ats.proc.poll() is None, "traffic_server died after the crash restart")
        check(hits > 0, "nothing was a hit after the restart")
        return "%d stores before the kill; %d good responses (%d hits) around it, %d connection errors; %d/%d hits after" % (
            st["stores"], load.ok, load.hits, load.errors, hits, len(urls))


def test_concurrency():
    """32 concurrent clients for 10 s over a few hundred URLs: every body correct."""
    with Env("conc") as env:
        urls = mixed_urls(300, "conc")
        load = clean_load(env, urls, 32, 10.0, seed=7)
        check(load.ok > 1000, "only %d responses in 10 s" % load.ok)
        check(load.hits > load.ok // 2, "only %d hits of %d" % (load.hits, load.ok))
        # each URL was fetched from the origin once: concurrent misses wait for the first fill
        counts = [env.origin.count(u) for u in set(urls)]
        check(max(counts) == 1, "a URL reached the origin %d times" % max(counts))
        st = env.stats()
        check(st["queue_lookups"] > st["worker_lookups"],
              "lookups on the queue %d, on the workers %d" % (st["queue_lookups"], st["worker_lookups"]))
        # a clean stop in the middle of the load: the shutdown hook closes the cache while
        # workers are busy; traffic_server must still exit 0
        load2 = Load(env.ats.port, urls + mixed_urls(100, "conc2"), 16, seed=8).start()
        time.sleep(1.0)
        rc = env.ats.stop()
        load2.finish()
        check(rc == 0, "traffic_server exited with %s when stopped under load" % rc)
        check(not load2.wrong, "wrong responses around the stop: %r" % load2.wrong[:5])
        return "%d responses (%d hits, %.0f MB) in 10 s, origin requests %d, collapsed %d, lookups on the queue %d, " \
            "on the workers %d; stop under load rc 0" % (load.ok, load.hits, load.bytes / 1e6, sum(counts), st["collapsed"],
                                                         st["queue_lookups"], st["worker_lookups"])


def test_shared_reads():
    """Hot URLs: requests on one thread share a read (in flight, or done within 100 ms in the
    same second); 16 clients on 3 URLs get every body right; a PURGE ends the sharing at once."""
    with Env("shared") as env:
        urls = ["/o/65536/hot%d" % i for i in range(3)] + ["/o/1000/hot3"]
        c = env.client()
        for u in urls:
            get(c, u)
        load = clean_load(env, urls, 16, 3.0, seed=11)
        st = env.stats()
        check(st["shared_lookups"] > 0, "no lookup shared a read: %r" % st)
        # on one connection: hits (sharing a read unless a second ended between them), a
        # PURGE, a miss that stores the origin's next response, and hits of that one: never
        # the bytes read before the PURGE (the origin numbers its responses: X-Origin-Count)
        url = urls[0]
        for i in range(5):
            for _ in range(2):
                s, h, b = get(c, url)
                verify_body(url, s, h, b)
                check(h.get("x-dcache") == "hit", "round %d: not a hit before the PURGE" % i)
            s, _, _ = get(c, url, method="PURGE")
            check(s == 200, "round %d: PURGE answered %d" % (i, s))
            s, h, b = get(c, url)
            verify_body(url, s, h, b)
            check(h.get("x-dcache") != "hit", "round %d: a hit right after the PURGE" % i)
            count = h.get("x-origin-count")
            for _ in range(2):
                s, h, b = get(c, url)
                verify_body(url, s, h, b)
                check(h.get("x-dcache") == "hit" and h.get("x-origin-count") == count,
                      "round %d: after the refill, a hit of response %s, not %s (a shared read outlived its "
                      "version)" % (i, h.get("x-origin-count"), count))
        return "%d responses (%d hits) on 4 URLs, %d lookups shared a read" % (load.ok, load.hits, st["shared_lookups"])


def test_lookups_on_workers():
    """--lookups=workers: 16 clients for 4 s with every lookup on the worker threads."""
    with Env("workers", plugin_args="--lookups=workers") as env:
        urls = mixed_urls(200, "wk")
        load = clean_load(env, urls, 16, 4.0, seed=9)
        check(load.hits > load.ok // 2, "only %d hits of %d" % (load.hits, load.ok))
        st = env.stats()
        check(st["queue_lookups"] == 0 and st["worker_lookups"] > 0 and st["queue_chunks"] == 0,
              "lookups on the queue %d, on the workers %d; chunks read on the queue %d" % (
                  st["queue_lookups"], st["worker_lookups"], st["queue_chunks"]))
        return "%d responses (%d hits), %d lookups on the workers" % (load.ok, load.hits, st["worker_lookups"])


TESTS = [test_plugin_loads, test_fill_and_hit, test_admission, test_write_budget, test_range_and_head, test_replaced_while_streaming, test_not_cached_and_expiry,
         test_conditional_and_rfc_edges, test_request_no_cache, test_access_log, test_metrics, test_purge,
         test_restart, test_crash, test_concurrency, test_shared_reads, test_lookups_on_workers]


def main():
    global PLUGIN, KEEP
    ap = argparse.ArgumentParser()
    ap.add_argument("--plugin", required=True)
    ap.add_argument("-k", dest="only", default="")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs")
    args = ap.parse_args()
    PLUGIN = os.path.abspath(args.plugin)
    KEEP = args.keep
    if not os.path.exists(PLUGIN):
        print("FAIL: %s not found" % PLUGIN)
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    t_all = time.time()
    for t in TESTS:
        if args.only and args.only not in t.__name__:
            continue
        t0 = time.time()
        try:
            note = t()
            passed += 1
            print("PASS %-28s %5.1fs  %s" % (t.__name__, time.time() - t0, note or ""), flush=True)
        except Exception as e:
            failed += 1
            print("FAIL %-28s %5.1fs  %s" % (t.__name__, time.time() - t0, e), flush=True)
            if not isinstance(e, Fail):
                traceback.print_exc(file=sys.stdout)
    print("total %.1fs" % (time.time() - t_all))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
