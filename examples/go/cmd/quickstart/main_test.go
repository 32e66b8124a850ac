package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// The quick start runs, twice on the same file (create, then reopen).
func TestQuickstart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "quickstart.dcache")
	for n := 1; n <= 2; n++ {
		var out bytes.Buffer
		if err := run(path, &out); err != nil {
			t.Fatalf("run %d: %v", n, err)
		}
		for _, want := range []string{"greeting = hello, disk", "no-such-key: miss", "expected error: code 4", "entries 1,"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("run %d: output lacks %q:\n%s", n, want, out.String())
			}
		}
	}
}
