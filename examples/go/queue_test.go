package dcache

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

// filledCache puts n values (sizes from 1 byte to 300 KB, some past the first read's 64 KiB)
// into a new cache file, and reopens it so that reads go to the device, not the write buffer.
func filledCache(tb testing.TB, n int, size func(i int) int) (*Cache, [][]byte) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "q.dcache")
	c, err := Open(path, &Options{Flags: OpenCreate, Capacity: 256 << 20})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	values := make([][]byte, n)
	for i := range values {
		values[i] = pattern(size(i), int64(i))
		if err := c.Put([]byte(fmt.Sprintf("q/%d", i)), values[i]); err != nil {
			tb.Fatalf("Put: %v", err)
		}
	}
	if err := c.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
	if c, err = Open(path, nil); err != nil {
		tb.Fatalf("reopen: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c, values
}

func mixedSize(i int) int { return []int{1, 100, 4096, 65536, 65537, 300_000}[i%6] + i }

// Hundreds of gets in flight from one goroutine, every byte checked, misses among them.
func TestQueueManyReadsInFlight(t *testing.T) {
	c, values := filledCache(t, 300, mixedSize)
	q, err := c.OpenQueue(64)
	if err != nil {
		t.Fatalf("OpenQueue: %v", err)
	}
	defer q.Close()
	const rounds = 3
	replies := make([]<-chan Result, 0, rounds*len(values)+50)
	for r := 0; r < rounds; r++ {
		for i := range values {
			replies = append(replies, q.GetAsync([]byte(fmt.Sprintf("q/%d", i))))
		}
	}
	for i := 0; i < 50; i++ {
		replies = append(replies, q.GetAsync([]byte(fmt.Sprintf("absent/%d", i))))
	}
	for n, reply := range replies {
		res := <-reply
		if n >= rounds*len(values) {
			if !errors.Is(res.Err, ErrNotFound) {
				t.Fatalf("read %d of an absent key: %v", n, res.Err)
			}
			continue
		}
		i := n % len(values)
		if res.Err != nil || !bytes.Equal(res.Value, values[i]) {
			t.Fatalf("key q/%d: err %v, %d bytes, want %d", i, res.Err, len(res.Value), len(values[i]))
		}
	}
	// Ranges, and the blocking form, through the same queue.
	for i := 0; i < 60; i++ {
		v := values[i]
		off := uint64(len(v) / 3)
		res := <-q.GetRangeAsync([]byte(fmt.Sprintf("q/%d", i)), off, 1000)
		end := int(off) + 1000
		if end > len(v) {
			end = len(v)
		}
		if res.Err != nil || !bytes.Equal(res.Value, v[off:end]) {
			t.Fatalf("range of q/%d: %v", i, res.Err)
		}
		got, err := q.Get([]byte(fmt.Sprintf("q/%d", i)))
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("Get q/%d: %v", i, err)
		}
	}
}

// Close with reads in flight: every reply comes, a value or ErrClosed; later reads get
// ErrClosed; the queue outlives its cache.
func TestQueueCloseWithReadsInFlight(t *testing.T) {
	c, values := filledCache(t, 100, mixedSize)
	q, err := c.OpenQueue(32)
	if err != nil {
		t.Fatalf("OpenQueue: %v", err)
	}
	replies := make(chan (<-chan Result), 400)
	go func() {
		for r := 0; r < 4; r++ {
			for i := range values {
				replies <- q.GetAsync([]byte(fmt.Sprintf("q/%d", i)))
			}
		}
		close(replies)
	}()
	_ = c.Close()
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	n := 0
	for reply := range replies {
		res := <-reply
		if res.Err == nil {
			if !bytes.Equal(res.Value, values[n%len(values)]) {
				t.Fatalf("read %d: wrong bytes", n)
			}
		}
		n++
	}
	if res := <-q.GetAsync([]byte("q/1")); !errors.Is(res.Err, ErrClosed) {
		t.Fatalf("a read after Close: %v", res.Err)
	}
	if q.Close() != nil {
		t.Fatalf("a second Close failed")
	}
}

// BenchmarkQueue: 4 KiB gets of values on the device (O_DIRECT where the file system takes
// it), from one goroutine: blocking Gets one after the other, and gets through a Queue with 32
// in flight. make bench-go prints the two and their ratio.
func BenchmarkQueue(b *testing.B) {
	const n = 4096
	c, values := filledCache(b, n, func(int) int { return 4096 })
	direct := 0.0
	if c.IsDirectIO() {
		direct = 1
	}
	key := func(i int) []byte { return []byte(fmt.Sprintf("q/%d", (i*7919)%n)) }
	b.Run("blocking", func(b *testing.B) {
		b.ReportMetric(direct, "direct_io")
		for i := 0; i < b.N; i++ {
			v, err := c.Get(key(i))
			if err != nil || len(v) != len(values[0]) {
				b.Fatalf("Get: %v", err)
			}
		}
	})
	b.Run("async32", func(b *testing.B) {
		q, err := c.OpenQueue(32)
		if err != nil {
			b.Fatalf("OpenQueue: %v", err)
		}
		defer q.Close()
		b.ReportMetric(direct, "direct_io")
		window := make([]<-chan Result, 0, 32)
		for i := 0; i < b.N; i++ {
			if len(window) == 32 {
				if res := <-window[0]; res.Err != nil {
					b.Fatalf("GetAsync: %v", res.Err)
				}
				window = window[1:]
			}
			window = append(window, q.GetAsync(key(i)))
		}
		for _, r := range window {
			if res := <-r; res.Err != nil {
				b.Fatalf("GetAsync: %v", res.Err)
			}
		}
	})
}
