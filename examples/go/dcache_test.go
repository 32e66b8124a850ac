package dcache

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func openTemp(t *testing.T, name string, opts *Options) *Cache {
	t.Helper()
	if opts == nil {
		opts = &Options{Flags: OpenCreate, Capacity: 32 << 20}
	}
	c, err := Open(filepath.Join(t.TempDir(), name), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func pattern(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func wantCode(t *testing.T, err error, sentinel *Error) *Error {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("want %v, got %v", sentinel.Code, err)
	}
	var de *Error
	if !errors.As(err, &de) {
		t.Fatalf("errors.As(*Error) failed for %v", err)
	}
	return de
}

func TestVersion(t *testing.T) {
	v := Version()
	if strings.Count(v, ".") != 2 {
		t.Fatalf("Version() = %q", v)
	}
	var ma, mi, pa uint32
	if _, err := fmt.Sscanf(v, "%d.%d.%d", &ma, &mi, &pa); err != nil {
		t.Fatal(err)
	}
	if VersionNumber() != ma*10000+mi*100+pa {
		t.Fatalf("VersionNumber() = %d for %s", VersionNumber(), v)
	}
	if CodeNotFound.String() == "" || Code(0xFFFFFFFF).String() == "" {
		t.Fatal("empty strerror text")
	}
}

func TestRoundTrip(t *testing.T) {
	c := openTemp(t, "rt.dcache", nil)
	sizes := []int{0, 1, 511, 512, 513, 4095, 4096, 4097, 65535, 65536, 65537, 1 << 20}
	for i, n := range sizes {
		key := []byte(fmt.Sprintf("size-%d", n))
		val := pattern(n, int64(i))
		if err := c.Put(key, val); err != nil {
			t.Fatalf("Put %d: %v", n, err)
		}
		got, err := c.Get(key)
		if err != nil || !bytes.Equal(got, val) {
			t.Fatalf("Get %d: err %v, equal %v", n, err, bytes.Equal(got, val))
		}
		sz, err := c.ValueSize(key)
		if err != nil || sz != uint64(n) {
			t.Fatalf("ValueSize %d: %d, %v", n, sz, err)
		}
	}
	// binary key with NULs; nil and empty values
	bk := []byte{0, 1, 0, 2}
	if err := c.Put(bk, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(bk); err != nil || len(got) != 0 || got == nil {
		t.Fatalf("empty value: %v %v", got, err)
	}
	if err := c.Put(bk, []byte{}); err != nil {
		t.Fatal(err)
	}
	// overwrite
	_ = c.Put([]byte("k"), []byte("short"))
	_ = c.Put([]byte("k"), bytes.Repeat([]byte("L"), 100000))
	if got, _ := c.Get([]byte("k")); len(got) != 100000 {
		t.Fatalf("overwrite: %d bytes", len(got))
	}
	// the input slice may be reused right after Put: the cache holds its own copy
	buf := []byte("original")
	_ = c.Put([]byte("copy"), buf)
	copy(buf, "XXXXXXXX")
	if got, _ := c.Get([]byte("copy")); string(got) != "original" {
		t.Fatalf("got %q", got)
	}
	// a sub-slice of a larger array is passed exactly
	big := []byte("0123456789")
	_ = c.Put(big[2:4], big[5:8])
	if got, _ := c.Get([]byte("23")); string(got) != "567" {
		t.Fatalf("sub-slice: %q", got)
	}
}

func TestGetIntoAndRange(t *testing.T) {
	c := openTemp(t, "range.dcache", nil)
	val := pattern(300000, 7)
	key := []byte("big")
	if err := c.Put(key, val); err != nil {
		t.Fatal(err)
	}
	small := make([]byte, 10)
	n, err := c.GetInto(key, small)
	wantCode(t, err, ErrBufferTooSmall)
	if n != len(val) {
		t.Fatalf("needed %d, want %d", n, len(val))
	}
	full := make([]byte, n)
	if n, err = c.GetInto(key, full); err != nil || n != len(val) || !bytes.Equal(full, val) {
		t.Fatalf("GetInto: %d %v", n, err)
	}
	r, err := c.GetRange(key, 12345, 1000)
	if err != nil || !bytes.Equal(r, val[12345:13345]) {
		t.Fatalf("GetRange: %v", err)
	}
	r, err = c.GetRange(key, uint64(len(val)-10), 100)
	if err != nil || !bytes.Equal(r, val[len(val)-10:]) {
		t.Fatalf("GetRange at end: %d bytes, %v", len(r), err)
	}
	r, err = c.GetRange(key, uint64(len(val)), 100)
	if err != nil || len(r) != 0 {
		t.Fatalf("GetRange at size: %d bytes, %v", len(r), err)
	}
	r, err = c.GetRange(key, 1000, 1<<40) // to the end, without a 1 TiB buffer
	if err != nil || !bytes.Equal(r, val[1000:]) {
		t.Fatalf("GetRange to end: %d bytes, %v", len(r), err)
	}
	_, err = c.GetRange(key, uint64(len(val)+1), 1)
	de := wantCode(t, err, ErrRange)
	if de.Op != "dcache_get_range" {
		t.Fatalf("Op = %q", de.Op)
	}
	rb := make([]byte, 5)
	if n, err := c.ReadRangeInto(key, 7, rb); err != nil || n != 5 || !bytes.Equal(rb, val[7:12]) {
		t.Fatalf("ReadRangeInto: %d %v", n, err)
	}
	if n, err := c.ReadRangeInto(key, 7, nil); err != nil || n != 0 {
		t.Fatalf("ReadRangeInto(nil): %d %v", n, err)
	}
}

func TestMiss(t *testing.T) {
	c := openTemp(t, "miss.dcache", nil)
	_, err := c.Get([]byte("absent"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get miss: %v", err)
	}
	if errors.Is(err, ErrIO) {
		t.Fatal("a miss must not match ErrIO")
	}
	_, err = c.ValueSize([]byte("absent"))
	wantCode(t, err, ErrNotFound)
	_, err = c.GetRange([]byte("absent"), 0, 10)
	wantCode(t, err, ErrNotFound)
	_, err = c.GetInto([]byte("absent"), make([]byte, 10))
	wantCode(t, err, ErrNotFound)
	_ = c.Put([]byte("gone"), []byte("x"))
	if err := c.Delete([]byte("gone")); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get([]byte("gone"))
	wantCode(t, err, ErrNotFound)
	if err := c.Delete([]byte("never-there")); err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete absent: %v", err)
	}
	s, err := c.Stats()
	if err != nil || s.Misses < 3 {
		t.Fatalf("Stats misses %d, %v", s.Misses, err)
	}
}

func TestAdmissionDeclinesAFirstMiss(t *testing.T) {
	c := openTemp(t, "a.dcache", &Options{Flags: OpenCreate, Capacity: 32 << 20, Admission: AdmitFiltered})
	if err := c.Put([]byte("k"), make([]byte, 40000)); !errors.Is(err, ErrDeclined) {
		t.Fatalf("first put: %v, want ErrDeclined", err)
	}
	if err := c.Put([]byte("k"), make([]byte, 40000)); err != nil {
		t.Fatalf("second put: %v", err)
	}
	s, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Declined != 1 || s.AdmissionBytes == 0 {
		t.Fatalf("stats: declined %d, admission bytes %d", s.Declined, s.AdmissionBytes)
	}
}

func TestWriteBudgetDeclinesWhatPassesIt(t *testing.T) {
	c := openTemp(t, "b.dcache", &Options{Flags: OpenCreate, Capacity: 32 << 20, Admission: AdmitFiltered, WriteBudget: 1})
	for i := 0; i < 2; i++ {
		if err := c.Put([]byte("k"), make([]byte, 1000)); !errors.Is(err, ErrDeclined) {
			t.Fatalf("put %d: %v, want ErrDeclined", i+1, err)
		}
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "does-not-exist.dcache")
	_, err := Open(missing, nil)
	de := wantCode(t, err, ErrIO)
	if !strings.Contains(de.Message, "does-not-exist.dcache") || de.Op != "dcache_open" {
		t.Fatalf("message %q op %q", de.Message, de.Op)
	}
	if !strings.Contains(err.Error(), de.Message) || !strings.Contains(err.Error(), CodeIOError.String()) {
		t.Fatalf("Error() = %q", err.Error())
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatal("a failed open created the file")
	}
	_, err = Open(filepath.Join(dir, "nocap.dcache"), &Options{Flags: OpenCreate})
	wantCode(t, err, ErrInvalidArgument)
	_, err = Open(filepath.Join(dir, "badmode.dcache"), &Options{Flags: OpenCreate, Capacity: 32 << 20, IOMode: 99})
	wantCode(t, err, ErrInvalidArgument)

	p := filepath.Join(dir, "e.dcache")
	c, err := Open(p, &Options{Flags: OpenCreate, Capacity: 32 << 20, MaxValueSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Put(nil, []byte("v")), ErrInvalidArgument)
	wantCode(t, c.Put([]byte{}, []byte("v")), ErrInvalidArgument)
	de = wantCode(t, c.Put(bytes.Repeat([]byte("k"), 4097), []byte("v")), ErrTooLarge)
	if de.Message == "" {
		t.Fatal("no message for an oversized key")
	}
	if err := c.Put(bytes.Repeat([]byte("k"), 4096), []byte("v")); err != nil {
		t.Fatalf("4096-byte key: %v", err)
	}
	wantCode(t, c.Put([]byte("big"), make([]byte, 1<<20+1)), ErrTooLarge)

	_, err = Open(p, nil)
	de = wantCode(t, err, ErrLocked)
	if de.Message == "" {
		t.Fatal("no message for LOCKED")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Put([]byte("k"), nil); err != ErrClosed {
		t.Fatalf("Put after Close: %v", err)
	}
	if _, err := c.Get([]byte("k")); err != ErrClosed {
		t.Fatalf("Get after Close: %v", err)
	}

	ro, err := Open(p, &Options{Flags: OpenReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, ro.Put([]byte("x"), []byte("y")), ErrReadOnly)
	if v, err := ro.Get(bytes.Repeat([]byte("k"), 4096)); err != nil || string(v) != "v" {
		t.Fatalf("read-only Get: %q %v", v, err)
	}
	ro.Close()

	junk := filepath.Join(dir, "junk.bin")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("J"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(junk, &Options{Flags: OpenCreate, Capacity: 32 << 20})
	wantCode(t, err, ErrNotACache)
	f, err := Open(junk, &Options{Flags: OpenCreate | OpenFormat, Capacity: 32 << 20})
	if err != nil {
		t.Fatalf("FORMAT: %v", err)
	}
	f.Close()
}

func TestPersistence(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.dcache")
	c, err := Open(p, &Options{Flags: OpenCreate, Capacity: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		_ = c.Put([]byte(fmt.Sprint("key", i)), pattern(i*37, int64(i)))
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 100; i++ {
		got, err := c.Get([]byte(fmt.Sprint("key", i)))
		if err != nil || !bytes.Equal(got, pattern(i*37, int64(i))) {
			t.Fatalf("key%d after reopen: %v", i, err)
		}
	}
	if s, err := c.Stats(); err != nil || !s.RecoveryWasClean || s.RecoveryEntriesDropped != 0 || s.IndexBytes == 0 {
		t.Fatalf("recovery stats after a clean close: %+v %v", s, err)
	}
}

func TestWriter(t *testing.T) {
	c := openTemp(t, "w.dcache", nil)
	val := pattern(200000, 3)
	w, err := c.NewWriter([]byte("stream"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(val); off += 7777 {
		end := off + 7777
		if end > len(val) {
			end = len(val)
		}
		if n, err := w.Write(val[off:end]); err != nil || n != end-off {
			t.Fatalf("Write: %d %v", n, err)
		}
	}
	if _, err := w.Write(nil); err != nil {
		t.Fatalf("empty Write: %v", err)
	}
	if _, err := c.Get([]byte("stream")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("visible before commit: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != ErrClosed {
		t.Fatalf("second Commit: %v", err)
	}
	if got, err := c.Get([]byte("stream")); err != nil || !bytes.Equal(got, val) {
		t.Fatalf("after commit: %v", err)
	}
	// io.Copy into a writer
	w, _ = c.NewWriter([]byte("copied"), 0)
	if _, err := io.Copy(w, bytes.NewReader(val[:50000])); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get([]byte("copied")); !bytes.Equal(got, val[:50000]) {
		t.Fatal("io.Copy value differs")
	}
	// abort keeps the old value
	_ = c.Put([]byte("kept"), []byte("old"))
	w, _ = c.NewWriter([]byte("kept"), 0)
	_, _ = w.Write([]byte("new"))
	w.Abort()
	w.Abort()
	if got, _ := c.Get([]byte("kept")); string(got) != "old" {
		t.Fatalf("after abort: %q", got)
	}
	if _, err := w.Write([]byte("x")); err != ErrClosed {
		t.Fatalf("Write after Abort: %v", err)
	}
	_, err = c.NewWriter(nil, 0)
	wantCode(t, err, ErrInvalidArgument)
	// closing the cache aborts open writers; they report ErrClosed afterwards
	w, _ = c.NewWriter([]byte("orphan"), 0)
	_, _ = w.Write([]byte("data"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != ErrClosed {
		t.Fatalf("Commit after cache Close: %v", err)
	}
}

func TestStatsAndMode(t *testing.T) {
	c := openTemp(t, "s.dcache", nil)
	s0, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s0.DirectIO != c.IsDirectIO() || s0.Alignment != c.Alignment() || s0.Capacity == 0 {
		t.Fatalf("stats %+v vs IsDirectIO %v Alignment %d", s0, c.IsDirectIO(), c.Alignment())
	}
	if a := c.Alignment(); a < 512 || a&(a-1) != 0 {
		t.Fatalf("alignment %d", a)
	}
	for i := 0; i < 10; i++ {
		_ = c.Put([]byte(fmt.Sprint("s", i)), make([]byte, 1000))
	}
	_, _ = c.Get([]byte("s1"))
	if err := c.Flush(); err != nil { // puts are buffered: bytes reach the device by the flush
		t.Fatal(err)
	}
	s1, _ := c.Stats()
	if s1.Puts < s0.Puts+10 || s1.Hits < s0.Hits+1 || s1.Entries != s0.Entries+10 || s1.BytesWritten < s0.BytesWritten+10000 {
		t.Fatalf("stats did not move: %+v -> %+v", s0, s1)
	}
	t.Logf("I/O mode: direct=%v alignment=%d", c.IsDirectIO(), c.Alignment())

	b := openTemp(t, "b.dcache", &Options{Flags: OpenCreate, Capacity: 32 << 20, IOMode: IOBuffered})
	if b.IsDirectIO() {
		t.Fatal("IOBuffered gave direct I/O")
	}
}

// Many goroutines on one Cache: puts, gets, deletes, range reads, and failures whose
// messages must each belong to their own call.
//
// The cache holds everything the test writes (about 25 MB): in a smaller one, FIFO eviction
// can rightly drop a goroutine's key between its put and its get while the scheduler keeps it
// waiting, and the test would fail for no fault. With no eviction, every miss is a bug.
func TestConcurrent(t *testing.T) {
	c := openTemp(t, "conc.dcache", &Options{Flags: OpenCreate, Capacity: 128 << 20})
	dir := t.TempDir()
	const goroutines = 32
	const ops = 150
	var wg sync.WaitGroup
	var failures atomic.Int64
	fail := func(format string, args ...any) {
		failures.Add(1)
		t.Errorf(format, args...)
	}
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < ops; i++ {
				key := []byte(fmt.Sprintf("g%d-k%d", g, i%20))
				val := pattern(1+(g*131+i*17)%9000, int64(g*100000+i))
				if err := c.Put(key, val); err != nil {
					fail("Put: %v", err)
					return
				}
				got, err := c.Get(key)
				if err != nil || !bytes.Equal(got, val) {
					fail("Get %s: %v", key, err)
					return
				}
				if r, err := c.GetRange(key, 0, 1); err != nil || len(r) != 1 || r[0] != val[0] {
					fail("GetRange %s: %v", key, err)
				}
				// a key everyone races on: any whole value is fine
				shared := bytes.Repeat([]byte{byte('a' + g%26)}, 1+g*50)
				_ = c.Put([]byte("shared"), shared)
				if v, err := c.Get([]byte("shared")); err == nil {
					if len(v) == 0 || len(bytes.Trim(v, string(v[:1]))) != 0 {
						fail("torn shared value")
					}
				}
				switch i % 3 {
				case 0: // an I/O error whose message names this goroutine's path
					p := filepath.Join(dir, fmt.Sprintf("missing-g%d-i%d.dcache", g, i))
					_, err := Open(p, nil)
					var de *Error
					if !errors.As(err, &de) || de.Code != CodeIOError || !strings.Contains(de.Message, filepath.Base(p)) {
						fail("goroutine %d: Open(%s) error %v does not name its own path", g, p, err)
					}
				case 1: // an oversized key
					err := c.Put(bytes.Repeat([]byte("x"), 4097+g), nil)
					var de *Error
					if !errors.As(err, &de) || de.Code != CodeTooLarge || strings.Contains(de.Message, "missing-g") {
						fail("goroutine %d: oversized key error %v", g, err)
					}
				case 2:
					if err := c.Delete(key); err != nil {
						fail("Delete: %v", err)
					}
					if _, err := c.Get(key); !errors.Is(err, ErrNotFound) {
						fail("Get after Delete: %v", err)
					}
				}
			}
		}(g)
	}
	wg.Wait()
	s, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if failures.Load() != 0 || s.Evictions != 0 || s.ChecksumFailures != 0 {
		t.Fatalf("%d failures; stats %+v", failures.Load(), s)
	}
}

// Close while other goroutines are mid-use: they finish or get ErrClosed, never crash.
func TestConcurrentClose(t *testing.T) {
	c, err := Open(filepath.Join(t.TempDir(), "cc.dcache"), &Options{Flags: OpenCreate, Capacity: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			<-start
			for i := 0; ; i++ {
				err := c.Put([]byte(fmt.Sprint(g, "-", i)), []byte("v"))
				if err == ErrClosed {
					return
				}
				if err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				if _, err := c.Get([]byte(fmt.Sprint(g, "-", i))); err != nil && err != ErrClosed {
					t.Errorf("Get: %v", err)
					return
				}
			}
		}(g)
	}
	close(start)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.bin")
	f, err := OpenFile(p, &FileOptions{Flags: FileCreate | FileTruncate})
	if err != nil {
		t.Fatal(err)
	}
	if a := f.Alignment(); a < 512 || a&(a-1) != 0 {
		t.Fatalf("alignment %d", a)
	}
	t.Logf("file I/O mode: direct=%v alignment=%d", f.IsDirectIO(), f.Alignment())
	a := pattern(10000, 1)
	b := pattern(777, 2)
	if err := f.Pwrite(a, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := f.WriteAt(b, 4000); err != nil || n != len(b) {
		t.Fatal(err)
	}
	if err := f.Pwrite([]byte("tail"), 12345); err != nil {
		t.Fatal(err)
	}
	if err := f.Pwrite(nil, 3); err != nil {
		t.Fatalf("empty Pwrite: %v", err)
	}
	want := make([]byte, 12349)
	copy(want, a)
	copy(want[4000:], b)
	copy(want[12345:], "tail")
	if sz, err := f.Size(); err != nil || sz != 12349 {
		t.Fatalf("Size %d %v", sz, err)
	}
	got := make([]byte, 20000)
	n, err := f.Pread(got, 0)
	if err != nil || n != 12349 || !bytes.Equal(got[:n], want) {
		t.Fatalf("Pread: %d %v", n, err)
	}
	n, err = f.ReadAt(got, 0)
	if err != io.EOF || n != 12349 {
		t.Fatalf("ReadAt short: %d %v", n, err)
	}
	mid := make([]byte, 1000)
	if n, err := f.ReadAt(mid, 3999); err != nil || n != 1000 || !bytes.Equal(mid, want[3999:4999]) {
		t.Fatalf("ReadAt: %d %v", n, err)
	}
	if n, err := f.Pread(mid, 1<<30); err != nil || n != 0 {
		t.Fatalf("Pread past EOF: %d %v", n, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// concurrent writers on disjoint 100-byte pieces sharing aligned blocks
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			piece := bytes.Repeat([]byte{byte('A' + g)}, 100)
			for i := 0; i < 40; i++ {
				if err := f.Pwrite(piece, uint64(20000+(i*8+g)*100)); err != nil {
					t.Errorf("Pwrite: %v", err)
				}
			}
		}(g)
	}
	wg.Wait()
	region := make([]byte, 40*8*100)
	if _, err := f.Pread(region, 20000); err != nil {
		t.Fatal(err)
	}
	for i, c := range region {
		if c != byte('A'+(i/100)%8) {
			t.Fatalf("lost update at %d: %q", i, c)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Size(); err != ErrClosed {
		t.Fatalf("Size after Close: %v", err)
	}

	ro, err := OpenFile(p, &FileOptions{Flags: FileReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, ro.Pwrite([]byte("x"), 0), ErrReadOnly)
	ro.Close()

	_, err = OpenFile(filepath.Join(dir, "nope.bin"), nil)
	de := wantCode(t, err, ErrIO)
	if !strings.Contains(de.Message, "nope.bin") {
		t.Fatalf("message %q", de.Message)
	}

	w := filepath.Join(dir, "whole.bin")
	data := pattern(100003, 9)
	if err := WriteFile(w, data, nil); err != nil {
		t.Fatal(err)
	}
	if back, err := ReadFile(w, nil); err != nil || !bytes.Equal(back, data) {
		t.Fatalf("ReadFile: %v", err)
	}
	if err := WriteFile(w, nil, nil); err != nil {
		t.Fatal(err)
	}
	if back, err := ReadFile(w, nil); err != nil || len(back) != 0 {
		t.Fatalf("empty ReadFile: %d %v", len(back), err)
	}
	_, err = ReadFile(filepath.Join(dir, "missing.bin"), nil)
	wantCode(t, err, ErrIO)
}
