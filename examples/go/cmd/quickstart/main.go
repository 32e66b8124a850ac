// Command quickstart is the Go quick start of docs/QUICKSTART.md.
//
//	cd examples/go && go run ./cmd/quickstart [PATH]
package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"dcache.example/dcache"
)

func main() {
	path := "quickstart.dcache"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	if err := run(path, os.Stdout); err != nil {
		log.Fatal(err) // e.g. "dcache: dcache_open: cache is locked by another handle or process: ..."
	}
}

func run(path string, out io.Writer) error {
	// Create the cache file on first use (64 MiB); later runs reopen it.
	c, err := dcache.Open(path, &dcache.Options{Flags: dcache.OpenCreate, Capacity: 64 << 20})
	if err != nil {
		return err // a *dcache.Error: Code, Op, Message
	}
	defer c.Close()
	fmt.Fprintf(out, "dcache %s, direct I/O: %v, alignment %d\n", dcache.Version(), c.IsDirectIO(), c.Alignment())

	if err := c.Put([]byte("greeting"), []byte("hello, disk")); err != nil {
		return err
	}
	v, err := c.Get([]byte("greeting"))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "greeting = %s\n", v)

	if _, err := c.Get([]byte("no-such-key")); errors.Is(err, dcache.ErrNotFound) {
		fmt.Fprintln(out, "no-such-key: miss")
	}

	// Errors carry the library's code and detailed message.
	var de *dcache.Error
	if err := c.Put(make([]byte, 5000), nil); errors.As(err, &de) {
		fmt.Fprintf(out, "expected error: code %d (%v): %s\n", de.Code, de.Code, de.Message)
	}

	if err := c.Flush(); err != nil { // everything put so far is durable
		return err
	}
	s, err := c.Stats()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "entries %d, puts %d, hits %d, misses %d\n", s.Entries, s.Puts, s.Hits, s.Misses)
	return c.Close()
}
