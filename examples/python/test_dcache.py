"""Tests for the ctypes binding (dcache.py). Run from the repository root:

    python3 -m unittest discover -s examples/python -v
"""

import ctypes
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dcache  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.normpath(os.path.join(HERE, "..", "..", "include", "dcache.h"))
MiB = 1 << 20


def read_header():
    with open(HEADER) as f:
        return f.read()


def pattern(n, seed):
    return random.Random(seed).randbytes(n)


class TempDirCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dcache-py-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def new_cache(self, name="c.dcache", **kw):
        kw.setdefault("flags", dcache.OPEN_CREATE)
        kw.setdefault("capacity", 32 * MiB)
        c = dcache.Cache(self.path(name), **kw)
        self.addCleanup(c.close)
        return c


class TestAsync(TempDirCase):
    """Gets awaited on an asyncio loop, many in flight from one thread."""

    def filled(self, n=300):
        sizes = [1, 100, 4096, 65536, 65537, 300000]
        values = {b"a%d" % i: pattern(sizes[i % 6] + i, i) for i in range(n)}
        c = self.new_cache(capacity=256 * MiB)
        for k, v in values.items():
            c.put(k, v)
        c.close()  # reopened: the reads go to the device, not the write buffer
        c = dcache.Cache(self.path("c.dcache"))
        self.addCleanup(c.close)
        return c, values

    def test_a_thousand_gets_in_flight(self):
        import asyncio
        c, values = self.filled()
        names = list(values)
        keys = [names[i % len(names)] for i in range(1000)] + [b"missing%d" % i for i in range(20)]

        async def main():
            got = await asyncio.gather(*(c.get_async(k) for k in keys))
            async with dcache.AsyncQueue(c, depth=16) as q:
                ranges = await asyncio.gather(*(q.get_range(k, min(10, len(values[k])), 100)
                                                for k in names[:60]))
                absent = await q.get(b"nothing here", default=b"-")
            return got, ranges, absent

        got, ranges, absent = asyncio.run(main())
        for k, v in zip(keys, got):
            self.assertEqual(v, values.get(k), k)
        for k, r in zip(names[:60], ranges):
            at = min(10, len(values[k]))
            self.assertEqual(r, values[k][at:at + 100], k)
        self.assertEqual(absent, b"-")

    def test_close_with_reads_in_flight(self):
        import asyncio
        c, values = self.filled(60)

        async def main():
            q = dcache.AsyncQueue(c, depth=8)
            tasks = [asyncio.ensure_future(q.get(k)) for k in list(values) * 3]
            await asyncio.sleep(0)
            q.close()
            done = await asyncio.gather(*tasks, return_exceptions=True)
            with self.assertRaises(dcache.ClosedError):
                await q.get(b"a1")
            return done

        for k, r in zip(list(values) * 3, asyncio.run(main())):
            if not isinstance(r, dcache.ClosedError):
                self.assertEqual(r, values[k])


class TestMetrics(TempDirCase):
    """dcache_stats_format, read with the Prometheus client library's parser and json."""

    # Prometheus names that are not the field's name + _total (counters) or as is (gauges).
    RENAMED = {"capacity": "dcache_capacity_bytes", "recovery_micros": "dcache_recovery_seconds"}

    def busy_cache(self):
        c = self.new_cache()
        for i in range(12):
            c.put(b"m%d" % i, pattern(3000, i))
        for i in range(15):
            c.get(b"m%d" % i)
        c.delete(b"m0")
        c.flush()
        return c

    def test_prometheus_text_parses_and_matches_the_stats(self):
        from prometheus_client.parser import text_string_to_metric_families
        c = self.busy_cache()
        stats = c.stats()
        text = c.metrics(dcache.STATS_PROMETHEUS)
        families = {f.name: f for f in text_string_to_metric_families(text)}
        samples = {(s.name, s.labels.get("operation")): s.value
                   for f in families.values() for s in f.samples}
        for f in families.values():
            self.assertTrue(f.name.startswith("dcache_"), f.name)
            self.assertTrue(f.documentation, f.name)
            self.assertIn(f.type, ("counter", "gauge", "histogram"), f.name)
        for field, value in stats.items():
            if field in ("direct_io", "alignment"):
                continue
            name = self.RENAMED.get(field, "dcache_" + field)
            kind = families[name].type if name in families else "counter"
            got = samples[(name + "_total" if kind == "counter" else name, None)]
            want = value / 1e6 if field == "recovery_micros" else float(value)
            self.assertEqual(got, want, field)
        info = families["dcache_info"].samples[0].labels
        self.assertEqual(info["io_mode"], "direct" if stats["direct_io"] else "buffered")
        self.assertEqual(int(info["alignment"]), stats["alignment"])
        for op, n in (("get", 15), ("put", 12), ("flush", 1)):
            self.assertEqual(samples[("dcache_operation_duration_seconds_count", op)], n)
            self.assertGreater(samples[("dcache_operation_duration_seconds_sum", op)], 0)
            self.assertEqual(samples[("dcache_operation_duration_seconds_bucket", op)], n)  # +Inf
        self.assertEqual(stats["hits"], 12)
        self.assertEqual(stats["misses"], 3)

    def test_json_matches_the_c_struct(self):
        c = self.busy_cache()
        stats = c.stats()
        doc = json.loads(c.metrics(dcache.STATS_JSON))
        for field, value in stats.items():
            self.assertEqual(doc[field], int(value), field)
        for op, n in (("get", 15), ("put", 12), ("flush", 1)):
            h = doc["latency"][op]
            self.assertEqual(sum(h["counts"]), n)
            self.assertEqual(h["count"], n)
            self.assertEqual(len(h["counts"]), len(h["upper_bounds_nanos"]))
            self.assertIsNone(h["upper_bounds_nanos"][-1])

    def test_counters_move_between_two_renderings(self):
        from prometheus_client.parser import text_string_to_metric_families

        def value(c, name):
            for f in text_string_to_metric_families(c.metrics()):
                for s in f.samples:
                    if s.name == name and s.labels.get("operation") in (None, "get"):
                        return s.value
            raise KeyError(name)
        c = self.new_cache()
        before = [value(c, n) for n in ("dcache_puts_total", "dcache_hits_total",
                                        "dcache_operation_duration_seconds_count")]
        c.put(b"x", b"y")
        c.get(b"x")
        c.get(b"x")
        after = [value(c, n) for n in ("dcache_puts_total", "dcache_hits_total",
                                       "dcache_operation_duration_seconds_count")]
        self.assertEqual([a - b for a, b in zip(after, before)], [1, 2, 2])

    def test_the_textfile_holds_what_dcache_stats_format_says(self):
        textfile = self.path("dcache.prom")
        c = self.new_cache(metrics_textfile=textfile, metrics_interval_ms=20)
        for i in range(5):
            c.put(b"t%d" % i, b"v")
            c.get(b"t%d" % i)
        want = c.metrics()
        deadline = time.monotonic() + 5
        while open(textfile).read() != want:
            self.assertLess(time.monotonic(), deadline, "the textfile never caught up")
            time.sleep(0.01)
        with self.assertRaises(dcache.DcacheError) as e:
            self.new_cache("other.dcache", metrics_textfile=self.path("no/such/dir.prom"))
        self.assertIn("dir.prom", str(e.exception))

    def test_the_buffer_contract(self):
        c = self.new_cache()
        n = ctypes.c_size_t(0)
        h = c._h.acquire()
        try:
            small = ctypes.create_string_buffer(b"untouched", 16)
            r = dcache._stats_format(h, dcache.STATS_JSON, small, 16, ctypes.byref(n))
            self.assertEqual(r, dcache.BUFFER_TOO_SMALL)
            self.assertGreater(n.value, 100)
            self.assertEqual(small.value, b"untouched")
            exact = ctypes.create_string_buffer(n.value)
            self.assertEqual(dcache._stats_format(h, dcache.STATS_JSON, exact, n.value,
                                                  ctypes.byref(n)), dcache.OK)
            self.assertEqual(len(exact.value) + 1, n.value)
            self.assertEqual(dcache._stats_format(h, 99, exact, n.value, ctypes.byref(n)),
                             dcache.INVALID_ARGUMENT)
            self.assertIn(b"format", dcache._last_error_message())
            self.assertEqual(dcache._stats_format(h, dcache.STATS_JSON, exact, n.value, None),
                             dcache.INVALID_ARGUMENT)
        finally:
            c._h.release()


class TestHeader(unittest.TestCase):
    """The constants and struct layouts in dcache.py match include/dcache.h."""

    @unittest.skipUnless(os.path.exists(HEADER), "include/dcache.h not present")
    def test_constants_match_header(self):
        text = read_header()
        defines = dict(re.findall(r"^#define DCACHE_(\w+) (\d+)\s*$", text, re.M))
        checked = 0
        for name, value in defines.items():
            if name.startswith("VERSION") or name == "MAX_KEY_LEN":
                continue
            self.assertTrue(hasattr(dcache, name), "dcache.py lacks %s" % name)
            self.assertEqual(getattr(dcache, name), int(value), name)
            checked += 1
        self.assertGreaterEqual(checked, 30)

    @unittest.skipUnless(os.path.exists(HEADER), "include/dcache.h not present")
    def test_struct_fields_match_header(self):
        text = read_header()
        for cname, fields in (("dcache_options", dcache._Options._fields_),
                              ("dcache_file_options", dcache._FileOptions._fields_),
                              ("dcache_stats", dcache._STAT_FIELDS)):
            body = re.search(r"typedef struct %s \{(.*?)\} %s;" % (cname, cname), text, re.S)
            self.assertIsNotNone(body, cname)
            header_fields = re.findall(r"^\s*(uint32_t |uint64_t |const char \*)(\w+);",
                                       body.group(1), re.M)
            ctype = {ctypes.c_uint32: "uint32_t ", ctypes.c_uint64: "uint64_t ",
                     ctypes.c_char_p: "const char *"}
            ours = [(ctype[t], n) for n, t in fields]
            self.assertEqual(ours, header_fields, cname)

    def test_struct_sizes_match_library(self):
        o = dcache._OptionsBuf()
        dcache._options_init(ctypes.byref(o))
        self.assertEqual(o.o.struct_size, ctypes.sizeof(dcache._Options))
        self.assertEqual(o.o.io_mode, dcache.IO_AUTO)
        f = dcache._FileOptionsBuf()
        dcache._file_options_init(ctypes.byref(f))
        self.assertEqual(f.o.struct_size, ctypes.sizeof(dcache._FileOptions))

    def test_version(self):
        v = dcache.version()
        major, minor, patch = (int(x) for x in v.split("."))
        self.assertEqual(dcache.version_number(), major * 10000 + minor * 100 + patch)
        if os.path.exists(HEADER):
            m = re.search(r'#define DCACHE_VERSION_STRING "([^"]+)"', read_header())
            self.assertEqual(m.group(1), v)

    def test_strerror(self):
        self.assertTrue(dcache.strerror(dcache.NOT_FOUND))
        self.assertTrue(dcache.strerror(0xFFFFFFFF))

    def test_every_function_declares_types(self):
        # every dcache_* function the module uses has argtypes and restype set
        fns = [v for k, v in vars(dcache).items()
               if k.startswith("_") and isinstance(v, ctypes._CFuncPtr)]
        self.assertGreaterEqual(len(fns), 30)
        # c_int is ctypes's default restype, and also c_int32: allowed where the header says int32_t
        returns_int = set(re.findall(r"^int32_t (dcache_\w+)\(", read_header(), re.M)) \
            if os.path.exists(HEADER) else set()
        for fn in fns:
            self.assertIsNotNone(fn.argtypes, fn.__name__)
            if fn.__name__ not in returns_int:
                self.assertIsNot(fn.restype, ctypes.c_int, fn.__name__)


class TestCache(TempDirCase):
    def test_round_trip(self):
        c = self.new_cache()
        for i, n in enumerate([0, 1, 511, 512, 513, 4095, 4096, 4097, 65535, 65536, 65537, MiB]):
            key = b"size-%d" % n
            val = pattern(n, i)
            c.put(key, val)
            self.assertEqual(c.get(key), val, n)
            self.assertEqual(c.value_size(key), n)
        # key and value types
        c.put("text-key", "text value")
        self.assertEqual(c.get("text-key"), "text value".encode())
        self.assertEqual(c.get(b"text-key"), b"text value")
        c.put(bytearray(b"ba"), bytearray(b"bytearray value"))
        self.assertEqual(c.get(b"ba"), b"bytearray value")
        big = bytearray(b"0123456789")
        c.put(memoryview(big)[2:4], memoryview(big)[5:8])
        self.assertEqual(c.get(b"23"), b"567")
        c.put(b"ro-mv", memoryview(b"read-only view"))
        self.assertEqual(c.get(b"ro-mv"), b"read-only view")
        c.put(b"\x00bin\x00", b"\x00\x01\x00")
        self.assertEqual(c.get(b"\x00bin\x00"), b"\x00\x01\x00")
        self.assertIsNone(c.get(b"\x00bin"))
        # empty values
        c.put(b"empty", b"")
        self.assertEqual(c.get(b"empty"), b"")
        c.put(b"none", None)
        self.assertEqual(c.get(b"none"), b"")
        # overwrite grows and shrinks
        c.put(b"k", b"a")
        c.put(b"k", b"L" * 200000)
        self.assertEqual(c.get(b"k"), b"L" * 200000)
        c.put(b"k", b"b")
        self.assertEqual(c.get(b"k"), b"b")
        # mapping-style access
        c["m"] = b"mapped"
        self.assertEqual(c["m"], b"mapped")
        self.assertIn("m", c)
        del c["m"]
        self.assertNotIn("m", c)
        with self.assertRaises(KeyError):
            c["m"]

    def test_miss(self):
        c = self.new_cache()
        self.assertIsNone(c.get(b"absent"))
        self.assertEqual(c.get(b"absent", b"dflt"), b"dflt")
        self.assertIsNone(c.value_size(b"absent"))
        self.assertIsNone(c.get_range(b"absent", 0, 10))
        self.assertIsNone(c.get_range(b"absent", 0, 1 << 40))
        self.assertIsNone(c.get_into(b"absent", bytearray(10)))
        self.assertFalse(c.delete(b"absent"))
        c.put(b"gone", b"x")
        self.assertIn(b"gone", c)
        self.assertNotIn(b"absent", c)
        self.assertTrue(c.delete(b"gone"))
        self.assertNotIn(b"gone", c)
        self.assertIsNone(c.get(b"gone"))
        with self.assertRaises(dcache.NotFoundError) as cm:
            del c["gone"]
        self.assertEqual(cm.exception.code, dcache.NOT_FOUND)
        self.assertGreaterEqual(c.stats()["misses"], 2)

    def test_get_range_and_into(self):
        c = self.new_cache()
        val = pattern(300000, 5)
        c.put(b"big", val)
        self.assertEqual(c.get_range(b"big", 12345, 1000), val[12345:13345])
        self.assertEqual(c.get_range(b"big", len(val) - 10, 100), val[-10:])
        self.assertEqual(c.get_range(b"big", len(val), 100), b"")
        self.assertEqual(c.get_range(b"big", 1000, 1 << 40), val[1000:])
        self.assertEqual(c.get_range(b"big", 0, 0), b"")
        with self.assertRaises(dcache.RangeError) as cm:
            c.get_range(b"big", len(val) + 1, 1)
        self.assertEqual(cm.exception.code, dcache.RANGE)
        self.assertEqual(cm.exception.function, "dcache_get_range")
        buf = bytearray(len(val) + 10)
        self.assertEqual(c.get_into(b"big", buf), len(val))
        self.assertEqual(bytes(buf[:len(val)]), val)
        with self.assertRaises(dcache.BufferTooSmallError) as cm:
            c.get_into(b"big", bytearray(10))
        self.assertEqual(cm.exception.needed, len(val))
        with self.assertRaises(TypeError):
            c.get_into(b"big", b"read-only")

    def test_admission_declines_a_first_miss(self):
        c = self.new_cache(admission=dcache.ADMIT_FILTERED)
        with self.assertRaises(dcache.DeclinedError):
            c.put(b"k", b"1" * 40000)   # over the size stored at a first miss
        self.assertIsNone(c.get(b"k"))
        c.put(b"k", b"2" * 40000)
        self.assertEqual(c.get(b"k"), b"2" * 40000)
        s = c.stats()
        self.assertEqual(s["declined"], 1)
        self.assertGreater(s["admission_bytes"], 0)

    def test_write_budget_declines_what_passes_it(self):
        c = self.new_cache(admission=dcache.ADMIT_FILTERED, write_budget=1)
        for _ in range(2):
            with self.assertRaises(dcache.DeclinedError):
                c.put(b"k", b"v" * 1000)
        self.assertIsNone(c.get(b"k"))
        self.assertEqual(c.stats()["declined"], 2)

    def test_errors(self):
        missing = self.path("does-not-exist.dcache")
        with self.assertRaises(dcache.DcacheIOError) as cm:
            dcache.Cache(missing)
        e = cm.exception
        self.assertEqual(e.code, dcache.IO_ERROR)
        self.assertIn("does-not-exist.dcache", e.message)
        self.assertEqual(e.function, "dcache_open")
        self.assertIn(e.message, str(e))
        self.assertIsInstance(e, OSError)
        self.assertIsInstance(e, dcache.DcacheError)
        self.assertFalse(os.path.exists(missing))

        with self.assertRaises(dcache.InvalidArgumentError):
            dcache.Cache(self.path("nocap"), flags=dcache.OPEN_CREATE)
        with self.assertRaises(dcache.InvalidArgumentError):
            dcache.Cache(self.path("badmode"), flags=dcache.OPEN_CREATE, capacity=32 * MiB,
                         io_mode=99)

        p = self.path("e.dcache")
        c = dcache.Cache(p, flags=dcache.OPEN_CREATE, capacity=32 * MiB, max_value_size=MiB)
        with self.assertRaises(dcache.InvalidArgumentError):
            c.put(b"", b"v")
        with self.assertRaises(TypeError):
            c.put(None, b"v")
        with self.assertRaises(dcache.TooLargeError) as cm:
            c.put(b"k" * 4097, b"v")
        self.assertTrue(cm.exception.message)
        self.assertIsInstance(cm.exception, ValueError)
        c.put(b"k" * 4096, b"max-key")
        self.assertEqual(c.get(b"k" * 4096), b"max-key")
        with self.assertRaises(dcache.TooLargeError):
            c.put(b"big", bytes(MiB + 1))
        self.assertIsNone(c.get(b"big"))

        with self.assertRaises(dcache.LockedError) as cm:
            dcache.Cache(p)
        self.assertTrue(cm.exception.message)
        c.close()
        c.close()  # twice is fine
        with self.assertRaises(dcache.ClosedError):
            c.get(b"k")
        with self.assertRaises(dcache.ClosedError):
            c.put(b"k", b"v")

        with dcache.Cache(p, flags=dcache.OPEN_READ_ONLY) as ro:
            self.assertEqual(ro.get(b"k" * 4096), b"max-key")
            with self.assertRaises(dcache.ReadOnlyError):
                ro.put(b"x", b"y")

        junk = self.path("junk.bin")
        with open(junk, "wb") as f:
            f.write(b"J" * MiB)
        with self.assertRaises(dcache.NotACacheError) as cm:
            dcache.Cache(junk, flags=dcache.OPEN_CREATE, capacity=32 * MiB)
        self.assertTrue(cm.exception.message)
        with dcache.Cache(junk, flags=dcache.OPEN_CREATE | dcache.OPEN_FORMAT,
                          capacity=32 * MiB) as fc:
            fc.put(b"k", b"v")
            self.assertEqual(fc.get(b"k"), b"v")

    def test_context_manager_and_persistence(self):
        p = self.path("p.dcache")
        with dcache.Cache(p, flags=dcache.OPEN_CREATE, capacity=32 * MiB) as c:
            for i in range(200):
                c.put(b"key%d" % i, pattern(i * 37, i))
            c.flush()
        self.assertTrue(c.closed)
        with dcache.Cache(p) as c:
            for i in range(200):
                self.assertEqual(c.get(b"key%d" % i), pattern(i * 37, i), i)
            s = c.stats()
            self.assertTrue(s["recovery_was_clean"])
            self.assertEqual(s["recovery_entries_dropped"], 0)

    def test_writer(self):
        c = self.new_cache()
        val = pattern(200000, 3)
        w = c.writer(b"stream")
        for off in range(0, len(val), 7777):
            self.assertEqual(w.write(val[off:off + 7777]), len(val[off:off + 7777]))
        w.write(b"")
        self.assertIsNone(c.get(b"stream"))
        w.commit()
        self.assertTrue(w.closed)
        with self.assertRaises(dcache.ClosedError):
            w.commit()
        self.assertEqual(c.get(b"stream"), val)

        with c.writer(b"ctx") as w:
            w.write(b"part1-")
            w.write(bytearray(b"part2"))
        self.assertEqual(c.get(b"ctx"), b"part1-part2")

        c.put(b"kept", b"old")
        with self.assertRaises(RuntimeError):
            with c.writer(b"kept") as w:
                w.write(b"new")
                raise RuntimeError("abort me")
        self.assertEqual(c.get(b"kept"), b"old")

        w = c.writer(b"kept")
        w.write(b"new")
        w.abort()
        w.abort()
        self.assertEqual(c.get(b"kept"), b"old")
        with self.assertRaises(dcache.ClosedError):
            w.write(b"x")

        w = c.writer(b"dropped")
        w.write(b"x")
        del w
        self.assertIsNone(c.get(b"dropped"))

        with c.writer(b"empty"):
            pass
        self.assertEqual(c.value_size(b"empty"), 0)

        with self.assertRaises(dcache.InvalidArgumentError):
            c.writer(b"")

    def test_stats_and_mode(self):
        c = self.new_cache()
        s0 = c.stats()
        self.assertEqual(s0["direct_io"], c.direct_io)
        self.assertEqual(s0["alignment"], c.alignment)
        self.assertGreater(s0["capacity"], 0)
        a = c.alignment
        self.assertTrue(a >= 512 and a & (a - 1) == 0, a)
        for i in range(10):
            c.put(b"s%d" % i, bytes(1000))
        c.get(b"s1")
        c.get(b"missing")
        c.delete(b"s2")
        c.flush()  # puts are buffered: bytes reach the device by the flush at the latest
        s1 = c.stats()
        self.assertGreaterEqual(s1["puts"], s0["puts"] + 10)
        self.assertGreaterEqual(s1["hits"], s0["hits"] + 1)
        self.assertGreaterEqual(s1["misses"], s0["misses"] + 1)
        self.assertGreaterEqual(s1["deletes"], s0["deletes"] + 1)
        self.assertEqual(s1["entries"], s0["entries"] + 9)
        self.assertGreaterEqual(s1["bytes_written"], s0["bytes_written"] + 10000)
        self.assertEqual(s1["checksum_failures"], 0)
        for key in ("used_bytes", "evictions", "expirations", "bytes_read", "io_errors",
                    "index_bytes", "recovery_micros", "recovery_entries_dropped"):
            self.assertIn(key, s1)
        self.assertGreater(s1["index_bytes"], 0)
        b = self.new_cache("b.dcache", io_mode=dcache.IO_BUFFERED)
        self.assertFalse(b.direct_io)

    def test_threads(self):
        c = self.new_cache()
        failures = []
        barrier = threading.Barrier(8)

        def worker(t):
            try:
                barrier.wait()
                for i in range(150):
                    key = b"t%d-k%d" % (t, i % 20)
                    val = pattern(1 + (t * 131 + i * 17) % 9000, t * 100000 + i)
                    c.put(key, val)
                    if c.get(key) != val:
                        failures.append("get %r" % key)
                    shared = bytes([97 + t]) * (1 + t * 50)
                    c.put(b"shared", shared)
                    got = c.get(b"shared")
                    if got is not None and (not got or got.strip(got[:1])):
                        failures.append("torn shared value")
                    if i % 3 == 0:
                        p = self.path("missing-t%d-i%d.dcache" % (t, i))
                        try:
                            dcache.Cache(p)
                            failures.append("opened a missing file")
                        except dcache.DcacheIOError as e:
                            if os.path.basename(p) not in e.message:
                                failures.append("message %r is not this thread's" % e.message)
                    elif i % 3 == 1:
                        try:
                            c.put(b"x" * (4097 + t), b"")
                            failures.append("oversized key accepted")
                        except dcache.TooLargeError as e:
                            if "missing-t" in e.message:
                                failures.append("message %r is not this thread's" % e.message)
                    else:
                        c.delete(key)
                        if c.get(key) is not None:
                            failures.append("get after delete")
            except Exception as e:  # pragma: no cover - reported below
                failures.append(repr(e))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(failures, [])

    def test_close_while_threads_use_it(self):
        c = dcache.Cache(self.path("cc.dcache"), flags=dcache.OPEN_CREATE, capacity=32 * MiB)
        errors = []
        started = threading.Barrier(5)

        def worker(t):
            started.wait()
            i = 0
            while True:
                try:
                    c.put(b"%d-%d" % (t, i), b"v")
                    c.get(b"%d-%d" % (t, i))
                except dcache.ClosedError:
                    return
                except Exception as e:
                    errors.append(repr(e))
                    return
                i += 1

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        started.wait()
        c.close()
        for th in threads:
            th.join()
        self.assertEqual(errors, [])

    def test_log_callback(self):
        seen = []
        dcache.set_log_callback(lambda level, msg: seen.append((level, msg)))
        try:
            # any open works; a warning appears only where O_DIRECT falls back, so just check
            # that installing and restoring the callback is safe
            with dcache.Cache(self.path("log.dcache"), flags=dcache.OPEN_CREATE,
                              capacity=32 * MiB) as c:
                c.put(b"k", b"v")
        finally:
            dcache.set_log_callback(None)
        for level, msg in seen:
            self.assertIn(level, (dcache.LOG_ERROR, dcache.LOG_WARN, dcache.LOG_INFO,
                                  dcache.LOG_DEBUG))
            self.assertIsInstance(msg, str)


class TestFallback(TempDirCase):
    """On ramfs, which refuses O_DIRECT, IO_AUTO falls back to buffered I/O with one warning
    through the log callback. Needs root and mount(8); skipped otherwise."""

    def setUp(self):
        super().setUp()
        if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"):
            self.skipTest("needs root and mount(8) for a ramfs")
        self.mnt = self.path("ramfs")
        os.mkdir(self.mnt)
        r = subprocess.run(["mount", "-t", "ramfs", "ramfs", self.mnt],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            self.skipTest("cannot mount a ramfs here")
        self.addCleanup(subprocess.run, ["umount", self.mnt])

    def test_log_callback_sees_fallback_warning(self):
        seen = []
        dcache.set_log_callback(lambda level, msg: seen.append((level, msg)))
        try:
            p = os.path.join(self.mnt, "fallback.dcache")
            with dcache.Cache(p, flags=dcache.OPEN_CREATE, capacity=32 * MiB) as c:
                self.assertFalse(c.direct_io)
                self.assertFalse(c.stats()["direct_io"])
                c.put(b"k", b"v")
                self.assertEqual(c.get(b"k"), b"v")
            with self.assertRaises(dcache.UnsupportedError) as cm:
                dcache.Cache(p, io_mode=dcache.IO_DIRECT)
            self.assertTrue(cm.exception.message)
        finally:
            dcache.set_log_callback(None)
        warnings = [m for level, m in seen if level == dcache.LOG_WARN]
        self.assertTrue(any("fallback.dcache" in m for m in warnings), seen)


class TestFile(TempDirCase):
    def test_pread_pwrite(self):
        p = self.path("f.bin")
        with dcache.File(p, flags=dcache.FILE_CREATE | dcache.FILE_TRUNCATE) as f:
            a = f.alignment
            self.assertTrue(a >= 512 and a & (a - 1) == 0, a)
            self.assertIsInstance(f.direct_io, bool)
            self.assertEqual(f.size(), 0)
            va, vb = pattern(10000, 1), pattern(777, 2)
            self.assertEqual(f.pwrite(va, 0), 10000)
            f.pwrite(vb, 4000)
            f.pwrite(b"tail", 12345)
            f.pwrite(b"", 3)
            want = bytearray(12349)
            want[:10000] = va
            want[4000:4777] = vb
            want[12345:] = b"tail"
            self.assertEqual(f.size(), 12349)
            self.assertEqual(f.pread(20000, 0), bytes(want))
            self.assertEqual(f.pread(1000, 3999), bytes(want[3999:4999]))
            self.assertEqual(f.pread(10, 1 << 30), b"")
            self.assertEqual(f.pread(0, 0), b"")
            buf = bytearray(100)
            self.assertEqual(f.pread_into(buf, 4000), 100)
            self.assertEqual(bytes(buf), vb[:100])
            f.sync()

            # threads writing disjoint 100-byte pieces that share aligned blocks
            def writer(t):
                piece = bytes([65 + t]) * 100
                for i in range(40):
                    f.pwrite(piece, 20000 + (i * 8 + t) * 100)

            threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            region = f.pread(40 * 8 * 100, 20000)
            expect = b"".join(bytes([65 + (j % 8)]) * 100 for j in range(40 * 8))
            self.assertEqual(region, expect)
        self.assertTrue(f.closed)
        with self.assertRaises(dcache.ClosedError):
            f.size()

        with dcache.File(p, flags=dcache.FILE_READ_ONLY) as ro:
            with self.assertRaises(dcache.ReadOnlyError):
                ro.pwrite(b"x", 0)

        with self.assertRaises(dcache.DcacheIOError) as cm:
            dcache.File(self.path("nope.bin"))
        self.assertIn("nope.bin", cm.exception.message)

    def test_whole_files(self):
        p = self.path("whole.bin")
        data = pattern(100003, 9)
        dcache.write_file(p, data)
        self.assertEqual(dcache.read_file(p), data)
        dcache.write_file(p, b"")
        self.assertEqual(dcache.read_file(p), b"")
        dcache.write_file(p, bytearray(b"from a bytearray"))
        self.assertEqual(dcache.read_file(p), b"from a bytearray")
        with self.assertRaises(dcache.DcacheIOError) as cm:
            dcache.read_file(self.path("missing.bin"))
        self.assertIn("missing.bin", cm.exception.message)


if __name__ == "__main__":
    unittest.main()
