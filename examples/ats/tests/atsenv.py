"""Private Traffic Server instances and a test origin on 127.0.0.1, for tests and benchmarks.

Everything a test starts is stopped by PID (Origin.stop, Ats.stop), also on failure: use the
objects as context managers or call stop() in a finally block.
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TRAFFIC_SERVER = shutil.which("traffic_server") or "/usr/bin/traffic_server"


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Origin:
    def __init__(self, log_path=None):
        self.proc = None
        self.port = None
        self.log_path = log_path

    def start(self):
        err = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "origin.py"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        if err is not subprocess.DEVNULL:
            err.close()
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError("origin did not start: %r" % line)
        self.port = int(line.split()[1])
        return self

    def _get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.read()
        finally:
            c.close()

    def count(self, url):
        return int(self._get("/__count?u=" + urllib.parse.quote(url, safe="")))

    def total(self):
        return int(self._get("/__total"))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


RECORDS = """\
CONFIG proxy.config.admin.user_id STRING #-1
CONFIG proxy.config.crash_log_helper STRING NULL
CONFIG proxy.config.http.server_ports STRING {port}:ip-in=127.0.0.1
CONFIG proxy.config.http.cache.http INT {cache_http}
CONFIG proxy.config.url_remap.remap_required INT 1
CONFIG proxy.config.reverse_proxy.enabled INT 1
CONFIG proxy.config.exec_thread.autoconfig INT 0
CONFIG proxy.config.exec_thread.limit INT {net_threads}
CONFIG proxy.config.accept_threads INT 1
CONFIG proxy.config.task_threads INT {task_threads}
CONFIG proxy.config.http.insert_response_via_str INT 0
CONFIG proxy.config.log.logging_enabled INT {logging}
CONFIG proxy.config.log.max_secs_per_buffer INT 1
CONFIG proxy.config.diags.debug.enabled INT {debug}
CONFIG proxy.config.diags.debug.tags STRING {debug_tags}
CONFIG proxy.config.http.keep_alive_no_activity_timeout_in INT 30
CONFIG proxy.config.http.transaction_no_activity_timeout_in INT 30
CONFIG proxy.config.http.transaction_no_activity_timeout_out INT 30
CONFIG proxy.config.cache.ram_cache.size INT {ram_cache}
CONFIG proxy.config.http.cache.required_headers INT 2
CONFIG proxy.config.net.connections_throttle INT 10000
{extra}
"""

IP_ALLOW = """\
ip_allow:
  - apply: in
    ip_addrs: [127.0.0.1, "::1"]
    action: allow
    methods: ALL
  - apply: in
    ip_addrs: [0/0, "::/0"]
    action: deny
"""


class Ats:
    """A traffic_server with its own runroot under `root` (a directory it may fill)."""

    def __init__(self, root, origin_port, plugin_lines=(), cache_http=0, storage_line="",
                 net_threads=2, task_threads=2, ram_cache=-1, debug_tags="", extra="", logging_yaml=""):
        self.root = root
        self.origin_port = origin_port
        self.plugin_lines = list(plugin_lines)
        self.cache_http = cache_http
        self.storage_line = storage_line
        self.net_threads = net_threads
        self.task_threads = task_threads
        self.ram_cache = ram_cache
        self.debug_tags = debug_tags
        self.extra = extra
        self.logging_yaml = logging_yaml  # access logs as this logging.yaml says; none if empty
        self.proc = None
        self.port = None
        for d in ("etc", "run", "log", "cache", "var"):
            os.makedirs(os.path.join(root, d), exist_ok=True)

    def _write(self, rel, text):
        with open(os.path.join(self.root, rel), "w") as f:
            f.write(text)

    def _configure(self):
        r = self.root
        self._write("runroot.yaml", "\n".join([
            "prefix: %s" % r, "exec_prefix: /usr", "bindir: /usr/bin", "sbindir: /usr/sbin",
            "sysconfdir: %s/etc" % r, "datadir: %s/var" % r, "includedir: /usr/include",
            "libdir: /usr/lib/trafficserver", "libexecdir: /usr/lib/trafficserver/modules",
            "localstatedir: %s/var" % r, "runtimedir: %s/run" % r, "logdir: %s/log" % r,
            "cachedir: %s/cache" % r, ""]))
        self._write("etc/records.config", RECORDS.format(
            port=self.port, cache_http=self.cache_http, net_threads=self.net_threads,
            task_threads=self.task_threads, debug=1 if self.debug_tags else 0,
            debug_tags=self.debug_tags or "dcache_ats", ram_cache=self.ram_cache,
            extra=self.extra, logging=3 if self.logging_yaml else 0))
        if self.logging_yaml:
            self._write("etc/logging.yaml", self.logging_yaml)
        self._write("etc/remap.config", "map http://127.0.0.1:%d/ http://127.0.0.1:%d/\n"
                    % (self.port, self.origin_port))
        self._write("etc/plugin.config", "".join(l + "\n" for l in self.plugin_lines))
        self._write("etc/storage.config", self.storage_line + "\n" if self.storage_line else "")
        self._write("etc/ip_allow.yaml", IP_ALLOW)
        for name in ("cache.config", "parent.config", "hosting.config", "volume.config",
                     "ssl_multicert.config", "logging.yaml", "sni.yaml", "strategies.yaml"):
            p = os.path.join(r, "etc", name)
            if not os.path.exists(p):
                self._write("etc/" + name, "")

    @property
    def diags(self):
        try:
            with open(os.path.join(self.root, "log", "diags.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @property
    def traffic_out(self):
        try:
            with open(os.path.join(self.root, "traffic.out"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self, timeout=20.0, port=None):
        """Starts traffic_server; tries other ports if the chosen one is taken."""
        for attempt in range(5):
            self.port = port or self.port or free_port()
            self._configure()
            try:
                os.remove(os.path.join(self.root, "log", "diags.log"))
            except OSError:
                pass
            out = open(os.path.join(self.root, "traffic.out"), "ab")
            env = dict(os.environ, TS_RUNROOT=os.path.join(self.root, "runroot.yaml"))
            self.proc = subprocess.Popen([TRAFFIC_SERVER], stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL, env=env, cwd=self.root)
            out.close()
            deadline = time.time() + timeout
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError("traffic_server exited with %s:\n%s\n%s" % (
                        self.proc.returncode, self.traffic_out[-3000:], self.diags[-3000:]))
                if "Could not bind" in self.diags:
                    break
                if self._probe():
                    return self
                time.sleep(0.05)
            else:
                self.kill()
                raise RuntimeError("traffic_server not ready in %.0f s:\n%s" % (
                    timeout, self.diags[-3000:]))
            self.stop()       # port taken: choose another
            self.port = None
            port = None
        raise RuntimeError("could not find a free port for traffic_server")

    def _probe(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
        except OSError:
            return False
        try:
            s.sendall(b"GET /__ready HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
                      % self.port)
            s.settimeout(5)
            data = s.recv(64)
            return data.startswith(b"HTTP/")
        except OSError:
            return False
        finally:
            s.close()

    def stop(self, timeout=30.0):
        """SIGTERM and wait: the clean stop (the plugin's shutdown hook closes the cache)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def kill(self):
        """SIGKILL: the crash."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Client:
    """A keep-alive HTTP/1.1 client to one host:port that reconnects when needed."""

    def __init__(self, port, timeout=30):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, headers=None):
        """Returns (status, headers dict (lower-case names), body bytes)."""
        hdrs = {"Host": "127.0.0.1:%d" % self.port}
        hdrs.update(headers or {})
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=self.timeout)
            try:
                self.conn.request(method, path, headers=hdrs)
                r = self.conn.getresponse()
                body = r.read()
                h = {k.lower(): v for k, v in r.getheaders()}
                if r.will_close:
                    self.close()
                return r.status, h, body
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def mkroot(prefix="dcache-ats-"):
    return tempfile.mkdtemp(prefix=prefix)
