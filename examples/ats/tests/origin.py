#!/usr/bin/env python3
"""A small HTTP/1.1 origin for the dcache_ats tests and benchmark.

Every object is named by its URL. The path /o/<size>/<name> serves <size> bytes of
pseudo-random data seeded by the whole URL (path and query), so the same URL always gives
the same body and different URLs give different bodies. Response headers:

  Content-Length, X-Body-SHA256 (hex SHA-256 of the full body), X-Origin-Count (how many
  requests this URL had, this one included), Cache-Control (default "max-age=3600").

Query parameters shape the response:
  cc=VALUE       Cache-Control value ("" = no Cache-Control header at all)
  expires=N      add Expires: now + N seconds (N may be negative)
  cookie=1       add Set-Cookie
  trunc=N        advertise the full Content-Length but send only N body bytes, then close
  slow=MS        sleep MS milliseconds between 64 KiB pieces of the body
  vary=NAME      add Vary: NAME
  etag=TAG       add ETag: TAG (e.g. "v1" or W/"v1", quotes included), and answer a GET whose
                 If-None-Match lists it (weakly) with 304 Not Modified

A single Range: bytes=... on a GET is honoured (206 / 416). HEAD is answered with the
headers of the GET. Control endpoints (not counted):
  GET /__count?u=<url-path-and-query>  -> the request count of that URL, as text
  GET /__counts                        -> JSON {url: count}
  GET /__total                         -> total number of counted requests

Usage: origin.py [--port N]   (0 = any free port; prints "PORT <n>" on stdout when ready)
"""

import argparse
import hashlib
import json
import random
import socket
import sys
import threading
import time
import urllib.parse
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_lock = threading.Lock()
_counts = {}
_total = [0]
_bodies = {}            # url -> (body, sha); bounded by _BODY_CACHE_BYTES
_body_bytes = [0]
_BODY_CACHE_BYTES = 512 << 20


def body_for(url, size):
    with _lock:
        hit = _bodies.get(url)
    if hit is not None and len(hit[0]) == size:
        return hit
    seed = int.from_bytes(hashlib.sha256(url.encode()).digest()[:8], "little")
    body = random.Random(seed).randbytes(size)
    sha = hashlib.sha256(body).hexdigest()
    with _lock:
        if _body_bytes[0] + size > _BODY_CACHE_BYTES:
            _bodies.clear()
            _body_bytes[0] = 0
        _bodies[url] = (body, sha)
        _body_bytes[0] += size
    return body, sha


def parse_range(value, size):
    """Returns None (ignore the header), 'unsat', or (first, last) inclusive."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    spec = value[6:].strip()
    if "-" not in spec:
        return None
    a, b = spec.split("-", 1)
    a, b = a.strip(), b.strip()
    try:
        if a == "":
            n = int(b)
            if n <= 0 or size == 0:
                return "unsat"
            return (max(0, size - n), size - 1)
        first = int(a)
        last = int(b) if b else size - 1
    except ValueError:
        return None
    if last < first:
        return None
    if first >= size:
        return "unsat"
    return (first, min(last, size - 1))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 256 * 1024          # buffered writes: headers and body leave in few segments
    server_version = "dcache-test-origin/1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send_simple(self, code, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = self.path
        parsed = urllib.parse.urlsplit(url)
        path = parsed.path
        q = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        if path == "/__count":
            with _lock:
                n = _counts.get(q.get("u", ""), 0)
            return self._send_simple(200, str(n))
        if path == "/__counts":
            with _lock:
                data = json.dumps(_counts)
            return self._send_simple(200, data, "application/json")
        if path == "/__total":
            with _lock:
                n = _total[0]
            return self._send_simple(200, str(n))
        if path == "/__ready":
            return self._send_simple(200, "ok")

        with _lock:
            n = _counts.get(url, 0) + 1
            _counts[url] = n
            _total[0] += 1

        parts = path.split("/")
        if len(parts) < 3 or parts[1] != "o":
            return self._send_simple(404, "not found")
        try:
            size = int(parts[2])
        except ValueError:
            return self._send_simple(400, "bad size")
        body, sha = body_for(url, size)

        status, first, last = 200, 0, size - 1
        rng = parse_range(self.headers.get("Range"), size) if self.command == "GET" else None
        if rng == "unsat":
            self.send_response(416)
            self.send_header("Content-Range", "bytes */%d" % size)
            self.send_header("Content-Length", "0")
            self.send_header("X-Origin-Count", str(n))
            self.end_headers()
            return
        if rng is not None:
            status, (first, last) = 206, rng

        etag = q.get("etag")
        if etag and self.command == "GET" and _none_match(self.headers.get("If-None-Match"), etag):
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("X-Origin-Count", str(n))
            cc = q.get("cc", "max-age=3600")
            if cc:
                self.send_header("Cache-Control", cc)
            self.end_headers()
            return

        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(last - first + 1 if size else 0))
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (first, last, size))
        self.send_header("X-Body-SHA256", sha)
        self.send_header("X-Body-Length", str(size))
        self.send_header("X-Origin-Count", str(n))
        self.send_header("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
        cc = q.get("cc", "max-age=3600")
        if cc:
            self.send_header("Cache-Control", cc)
        if "expires" in q:
            self.send_header("Expires", formatdate(time.time() + int(q["expires"]), usegmt=True))
        if q.get("cookie") == "1":
            self.send_header("Set-Cookie", "session=abc; Path=/")
        if "vary" in q:
            self.send_header("Vary", q["vary"])
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        if self.command == "HEAD":
            return
        payload = memoryview(body)[first:last + 1] if size else memoryview(b"")
        if "trunc" in q:
            payload = payload[: int(q["trunc"])]
            self.wfile.write(payload)
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        slow = int(q.get("slow", "0"))
        if slow:
            for off in range(0, len(payload), 65536):
                self.wfile.write(payload[off:off + 65536])
                self.wfile.flush()
                time.sleep(slow / 1000.0)
        else:
            self.wfile.write(payload)


def _none_match(value, etag):
    """If-None-Match `value` lists `etag`, by weak comparison (W/ ignored)."""
    if not value:
        return False
    strip = lambda t: t.strip()[2:] if t.strip().startswith("W/") else t.strip()
    return any(strip(t) == strip(etag) for t in value.split(","))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
