#!/usr/bin/env python3
"""A simulator of eviction policies on dcache's log, to choose a design before building it.

It models what the engine cannot avoid: space is freed a whole region at a time, regions are
written whole at the head of a log, an entry takes its header and padding (512-byte units),
and a region's survivors are written again (bytes counted). It does not model I/O. Two
designs:

- `fifo-reinsert`: today's engine: one ring of regions; at a reclaim, the entries read since
  written are written again at the head, up to half a region.
- `two-ring`: a probationary ring for new entries and a main ring. Reclaiming a probationary
  region moves the entries read since written to the main ring and drops the rest into a
  ghost (keys only, bounded); a put of a key found in the ghost goes to the main ring.
  Reclaiming a main region reinserts what was read, up to half a region. The probationary
  ring holds a fixed share of the regions (`--share`).

  python3 logsim.py TRACE --capacity BYTES [--design two-ring] [--share 0.1]

Prints the object miss ratio, the byte miss ratio and bytes written per missed byte. Its
`fifo-reinsert` gives what `dcache replay` measures within 0.002 (zipf at 5%: 0.5263 against
0.5252), so it is a fair place to try a design first.

On the bench-policy traces, `--design two-ring --share 0.1 --keep-reads --cap 0.9
--ghost-per 65536` comes within 1.03x of the better of LRU and S3-FIFO at 5% and 10% of
every footprint, writing at most 1.36 bytes per missed byte (the closing note of the session
that wrote this has the figures).
"""

import argparse
import collections
import struct
import sys

UNIT = 512
HEADER = 64
KEY = 8
CHUNK = 64 << 10


def entry_len(size):
    header = HEADER + KEY + 4 * ((size + CHUNK - 1) // CHUNK)
    if size >= CHUNK:
        header = (header + UNIT - 1) // UNIT * UNIT
    return (header + size + UNIT - 1) // UNIT * UNIT


REGION_DIV = 8


def geometry(capacity):
    region = 1 << ((capacity // REGION_DIV).bit_length() - 1)
    region = min(max(region, 1 << 20), 32 << 20)
    count = (capacity - 8192) // region
    return region, count


def read_trace(path):
    with open(path, "rb") as f:
        data = f.read()
    return [(i, s) for _, i, s, _ in struct.iter_unpack("<IQIq", data)]


class Region:
    __slots__ = ("ring", "entries", "fill")

    def __init__(self):
        self.ring = None
        self.entries = []   # keys, in log order
        self.fill = 0


def read(index, key):
    """A get: whether `index` holds `key`, counting the read (up to 3, as the engine does)."""
    e = index.get(key)
    if e is None:
        return False
    e[2] = min(3, e[2] + 1)
    return True


class Ghost:
    """Keys recently dropped, without values: a FIFO of `max_keys`, or (`direct`) a
    direct-mapped table of that many slots, as the engine keeps."""

    def __init__(self, max_keys, direct=False):
        self.max_keys = max_keys
        self.direct = direct
        self.keys = [None] * max_keys if direct else collections.OrderedDict()

    def count(self):
        return self.max_keys if self.direct else len(self.keys)

    def add(self, key):
        if self.direct:
            self.keys[hash((key, 7)) % self.max_keys] = key
            return
        self.keys[key] = True
        if len(self.keys) > self.max_keys:
            self.keys.popitem(last=False)

    def take(self, key):
        if self.direct:
            i = hash((key, 7)) % self.max_keys
            if self.keys[i] == key:
                self.keys[i] = None
                return True
            return False
        return self.keys.pop(key, None) is not None


class Log:
    def __init__(self, capacity, design, share, keep_reads=False, cap=0.5, ghost_per=16384):
        self.region_size, count = geometry(capacity)
        self.room = self.region_size * 99 // 100   # the summary and trailer
        self.free = collections.deque(Region() for _ in range(count))
        self.rings = {"main": collections.deque(), "prob": collections.deque()}
        self.head = {"main": None, "prob": None}
        self.two = design == "two-ring"
        self.count = count
        self.share = share
        self.keep_reads = keep_reads
        self.cap = cap
        self.index = {}      # key -> [region, size, reads]
        self.ghost_max = max(1, capacity // ghost_per)
        self.ghost = Ghost(self.ghost_max)
        self.written = 0
        self.prob_regions = 0
        self.no_cascade = False
        self.adapt = False
        self.p = 0.1 * capacity
        self.capacity = capacity
        self.main_ghost = Ghost(self.ghost_max)

    def target_prob(self):
        if self.adapt:
            return max(1, round(self.p / self.region_size))
        if self.prob_regions:
            return self.prob_regions - 1   # the ring's head is not counted
        return max(1, round(self.share * self.count))

    def write(self, ring, key, size):
        n = entry_len(size)
        r = self.head[ring]
        if r is None or r.fill + n > self.room:
            r = self.new_region(ring)
        r.entries.append(key)
        r.fill += n
        self.written += n
        self.index[key] = [r, size, 0]

    def new_region(self, ring):
        survivors = [] if self.free else self.reclaim(self.victim())
        r = self.free.popleft()
        r.ring, r.entries, r.fill = ring, [], 0
        self.rings[ring].append(r)
        self.head[ring] = r
        # Survivors go to the main ring: into this new region when it is the main ring's.
        for key, size, reads in survivors:
            h = self.head["main"]
            if self.no_cascade and (h is None or h.fill + entry_len(size) > self.room):
                self.ghost.add(key)
                continue
            self.write("main", key, size)
            self.index[key][2] = reads
        return self.head[ring]

    def victim(self):
        prob, main = self.rings["prob"], self.rings["main"]
        prob_old = [r for r in prob if r is not self.head["prob"]]
        main_old = [r for r in main if r is not self.head["main"]]
        if prob_old and (len(prob) > self.target_prob() or not main_old):
            return prob_old[0]
        return main_old[0] if main_old else prob_old[0]

    def reclaim(self, region):
        self.rings[region.ring].remove(region)
        keep, budget = [], int(self.region_size * self.cap)
        for key in region.entries:
            e = self.index.get(key)
            if e is None or e[0] is not region:
                continue
            del self.index[key]
            if e[2] > 0 and budget >= entry_len(e[1]):
                budget -= entry_len(e[1])
                keep.append((key, e[1], e[2] - 1 if self.keep_reads else 0))
            elif region.ring == "prob":
                self.ghost.add(key)
            elif self.adapt:
                self.main_ghost.add(key)
        self.free.append(region)
        return keep

    def get(self, key):
        return read(self.index, key)

    def put(self, key, size):
        if not self.two:
            return self.write("main", key, size)
        if self.ghost.take(key):
            if self.adapt:
                d = max(1.0, self.main_ghost.count() / max(1, self.ghost.count()))
                self.p = min(self.capacity * self.adapt_max, self.p + d * size)
            return self.write("main", key, size)
        if self.adapt and self.main_ghost.take(key):
            d = max(1.0, self.ghost.count() / max(1, self.main_ghost.count()))
            self.p = max(self.capacity * self.adapt_min, self.p - d * size)
            return self.write("main", key, size)
        self.write("prob", key, size)


class Rings:
    """`rings`: the engine's design. A probationary ring of `prob_regions` regions and a main
    ring of the rest, each a circle written in order. Reclaiming a probationary region moves
    its entries read since written (up to `cap` of a region) to the main ring, the others to
    the ghost; the main ring may move on at most `moves` times to make room for them, and
    what still does not fit is dropped. Reclaiming a main region writes its read entries
    again (up to `cap`), each keeping its reads less one."""

    def __init__(self, capacity, prob_regions, cap, ghost_per, moves, direct_ghost):
        self.region_size, count = geometry(capacity)
        self.room = self.region_size * 99 // 100
        self.count = {"prob": prob_regions, "main": count - prob_regions}
        self.regions = {k: [[] for _ in range(n)] for k, n in self.count.items()}
        self.at = {"prob": 0, "main": 0}
        self.fill = {"prob": 0, "main": 0}
        self.cap = cap
        self.moves = moves
        self.index = {}
        self.ghost_max = max(1, capacity // ghost_per)
        self.ghost = Ghost(self.ghost_max, direct_ghost)
        self.written = 0
        self.share = prob_regions / count

    def fits(self, ring, size):
        return self.fill[ring] + entry_len(size) <= self.room

    def append(self, ring, key, size, reads=0):
        n = entry_len(size)
        self.regions[ring][self.at[ring]].append(key)
        self.fill[ring] += n
        self.written += n
        self.index[key] = [(ring, self.at[ring]), size, reads]

    def take_old(self, ring):
        """Moves the ring on; returns the survivors of the region it reclaims."""
        self.at[ring] = (self.at[ring] + 1) % self.count[ring]
        self.fill[ring] = 0
        old, self.regions[ring][self.at[ring]] = self.regions[ring][self.at[ring]], []
        keep, budget = [], int(self.region_size * self.cap)
        for key in old:
            e = self.index.get(key)
            if e is None or e[0] != (ring, self.at[ring]):
                continue
            del self.index[key]
            if e[2] > 0 and budget >= entry_len(e[1]):
                budget -= entry_len(e[1])
                keep.append((key, e[1], e[2] - 1))
            elif ring == "prob":
                self.ghost.add(key)
        return keep

    def move_main(self):
        for key, size, reads in self.take_old("main"):
            if self.fits("main", size):
                self.append("main", key, size, reads)

    def write(self, ring, key, size):
        if not self.fits(ring, size):
            if ring == "main":
                self.move_main()
            else:
                promoted = self.take_old("prob")
                moves = 0
                for k, s, r in promoted:
                    while not self.fits("main", s) and moves < self.moves:
                        self.move_main()
                        moves += 1
                    if self.fits("main", s):
                        self.append("main", k, s, r)
                    else:
                        self.ghost.add(k)
        self.append(ring, key, size)

    def get(self, key):
        return read(self.index, key)

    def put(self, key, size):
        self.write("main" if self.ghost.take(key) else "prob", key, size)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--capacity", type=int, required=True)
    ap.add_argument("--design", choices=("fifo-reinsert", "two-ring", "rings"), default="fifo-reinsert")
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--keep-reads", action="store_true",
                    help="a survivor keeps its reads less one (S3-FIFO's main queue), not 0")
    ap.add_argument("--cap", type=float, default=0.5,
                    help="the share of a region that may be reinserted at a reclaim")
    ap.add_argument("--ghost-per", type=int, default=16384,
                    help="the ghost holds a key for this many bytes of capacity")
    ap.add_argument("--prob-regions", type=int, default=0,
                    help="a fixed probationary ring of this many regions (0: --share)")
    ap.add_argument("--moves", type=int, default=1,
                    help="rings: how often the main ring may move on for one batch of promotions")
    ap.add_argument("--direct-ghost", action="store_true",
                    help="rings: a direct-mapped ghost (a slot per key hash) instead of a FIFO")
    ap.add_argument("--no-cascade", action="store_true",
                    help="two-ring: survivors that do not fit the main ring's head are dropped")
    ap.add_argument("--adapt", action="store_true",
                    help="two-ring: ARC's rule moves the probation target: a ghost hit grows it, "
                    "a hit in a ghost of keys dropped from main shrinks it")
    ap.add_argument("--adapt-min", type=float, default=0.02)
    ap.add_argument("--adapt-max", type=float, default=0.5)
    ap.add_argument("--region-div", type=int, default=8,
                    help="regions of capacity / this, rounded down to a power of two")
    args = ap.parse_args()
    global REGION_DIV
    REGION_DIV = args.region_div
    if args.design == "rings":
        log = Rings(args.capacity, args.prob_regions, args.cap, args.ghost_per, args.moves,
                    args.direct_ghost)
    else:
        log = Log(args.capacity, args.design, args.share, args.keep_reads, args.cap,
                  args.ghost_per)
        log.prob_regions = args.prob_regions
        log.no_cascade = args.no_cascade
        log.adapt = args.adapt
        log.adapt_min, log.adapt_max = args.adapt_min, args.adapt_max
        log.ghost = Ghost(log.ghost_max, args.direct_ghost)
    misses = miss_bytes = total_bytes = 0
    trace = read_trace(args.trace)
    for key, size in trace:
        total_bytes += size
        if log.get(key):
            continue
        misses += 1
        miss_bytes += size
        log.put(key, size)
    print("%s, share %.2f: miss ratio %.4f, byte miss ratio %.4f, written per missed byte %.3f"
          % (args.design, log.share, misses / len(trace), miss_bytes / total_bytes,
             log.written / max(miss_bytes, 1)))


if __name__ == "__main__":
    sys.exit(main())
