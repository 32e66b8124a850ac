package dcache

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The Go lists (codes, sentinels, stats fields) cover what include/dcache.h declares: a code or
// stats field added to the library and forgotten here fails this test.

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The result codes of the header: the defines that follow the dcache_result typedef.
func headerResultCodes(t *testing.T, header string) map[string]uint32 {
	t.Helper()
	start := strings.Index(header, "typedef uint32_t dcache_result;")
	end := strings.Index(header, "extern \"C\" {")
	if start < 0 || end < start {
		t.Fatal("the header's layout changed: no dcache_result typedef before extern \"C\"")
	}
	codes := map[string]uint32{}
	re := regexp.MustCompile(`(?m)^#define DCACHE_(\w+) (\d+)$`)
	for _, m := range re.FindAllStringSubmatch(header[start:end], -1) {
		v, _ := strconv.ParseUint(m[2], 10, 32)
		codes[m[1]] = uint32(v)
	}
	return codes
}

func TestCodesMatchHeader(t *testing.T) {
	codes := headerResultCodes(t, readFile(t, "../../include/dcache.h"))
	// The library knows codes 0..n-1: each has a text of its own.
	unknown := Code(0xFFFFFFFF).String()
	known := 0
	for Code(known).String() != unknown {
		known++
	}
	if len(codes) != known || known < 15 {
		t.Fatalf("the header declares %d result codes and the library knows %d", len(codes), known)
	}
	src := readFile(t, "errors.go")
	for name, value := range codes {
		if value >= uint32(known) {
			t.Errorf("DCACHE_%s = %d has no text in the library", name, value)
		}
		decl := regexp.MustCompile(`(?m)^\s*Code(\w+)\s+Code = C\.DCACHE_` + name + `\b`).FindStringSubmatch(src)
		if decl == nil {
			t.Errorf("errors.go declares no Code for DCACHE_%s", name)
			continue
		}
		if name != "OK" && !regexp.MustCompile(`Err\w+\s*= &Error\{Code: Code`+decl[1]+`\}`).MatchString(src) {
			t.Errorf("errors.go has no sentinel for Code%s", decl[1])
		}
	}
}

func TestStatsMatchHeader(t *testing.T) {
	header := readFile(t, "../../include/dcache.h")
	body := regexp.MustCompile(`(?s)typedef struct dcache_stats \{(.*?)\} dcache_stats;`).FindStringSubmatch(header)
	if body == nil {
		t.Fatal("no dcache_stats in the header")
	}
	fields := regexp.MustCompile(`(?m)^\s*uint(?:32|64)_t (\w+);`).FindAllStringSubmatch(body[1], -1)
	if len(fields) < 20 {
		t.Fatalf("only %d fields found in dcache_stats", len(fields))
	}
	src := readFile(t, "dcache.go")
	for _, f := range fields {
		if f[1] != "struct_size" && !strings.Contains(src, "s."+f[1]+")") && !strings.Contains(src, "s."+f[1]+" ") {
			t.Errorf("Cache.Stats does not copy dcache_stats.%s", f[1])
		}
	}
}
