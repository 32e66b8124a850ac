# examples/bindings.mk: the demo and the language bindings' tests. Included by the top-level
# Makefile, which defines DCACHE_CFLAGS, DCACHE_LDLIBS, DCACHE_STATIC_LDLIBS and `lib`.
#
#   make demo            build examples/c/demo.c into build/demo and run it (run it twice:
#                        the second run finds the first run's objects)
#   make test-cpp        C++17 wrapper test under ASan + UBSan, then the C++ example
#   make test-go         go test -race in examples/go (skipped if go is not installed)
#   make bench-go        the Go Queue (32 reads in flight) against blocking Get, one goroutine
#   make test-python     unittest in examples/python (skipped if python3 is not installed)
#   make test-demo       the demo twice on a fresh cache: the second run must find every object
#   make test-bindings   all of the above
#
# Everything is written under build/. Test scratch files go to build/tmp (TMPDIR), on the
# same file system as the work tree, so O_DIRECT behaves as it does for real files there.

BINDINGS_OUT  := $(CURDIR)/build
BINDINGS_TMP  := $(BINDINGS_OUT)/tmp
DEMO_CACHE    ?= build/demo.dcache
GO            ?= go
PYTHON        ?= $(TEST_PYTHON)

BINDINGS_CFLAGS   := -std=c11 -O2 -g -Wall -Wextra -Werror
BINDINGS_CXXFLAGS := -std=c++17 -O2 -g -Wall -Wextra -Werror
CPP_TEST_FLAGS    := -std=c++17 -O1 -g -Wall -Wextra -Werror -fno-omit-frame-pointer \
                     -fsanitize=address,undefined -fno-sanitize-recover=undefined

.PHONY: demo demo-bin test-cpp test-go bench-go test-python test-demo test-bindings

# Always rebuilt (a second's work), so it never runs against stale flags or headers.
demo-bin: lib
	@mkdir -p build
	$(CC) $(BINDINGS_CFLAGS) $(DCACHE_CFLAGS) -o build/demo examples/c/demo.c $(DCACHE_LDLIBS)

demo: demo-bin
	./build/demo $(DEMO_CACHE)

test-demo: demo-bin
	@rm -f build/test-demo.dcache
	./build/demo build/test-demo.dcache > build/test-demo.1.out
	./build/demo build/test-demo.dcache > build/test-demo.2.out
	@cat build/test-demo.2.out
	@grep -q 'no earlier run found' build/test-demo.1.out || { echo "FAIL: first run saw an earlier run"; exit 1; }
	@grep -Eq 'run #1 stored ([0-9]+) objects; found \1 of them' build/test-demo.2.out \
	  || { echo "FAIL: the second run did not find every object of the first"; exit 1; }
	@! cat build/test-demo.1.out build/test-demo.2.out | grep -Ev \
	  '^(dcache .* demo|(cache|reopen|I/O mode|previous|streamed|this run|throughput|stats|done): | {12})' \
	  || { echo "FAIL: lines above on stdout are not the demo's"; exit 1; }
	@rm -f build/test-demo.dcache
	@echo "test-demo: 3 passed, 0 failed"

test-cpp: lib
	@mkdir -p build $(BINDINGS_TMP)
	$(CXX) $(CPP_TEST_FLAGS) $(DCACHE_CFLAGS) -o build/cpp_wrapper_test \
	  c-tests/cpp_wrapper_test.cpp $(DCACHE_LDLIBS) -pthread
	rm -rf $(BINDINGS_TMP)/cpp && \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  ./build/cpp_wrapper_test $(BINDINGS_TMP)/cpp
	$(CXX) $(BINDINGS_CXXFLAGS) $(DCACHE_CFLAGS) -o build/cpp_example examples/cpp/example.cpp \
	  $(DCACHE_STATIC_LDLIBS) -pthread
	rm -f build/cpp_example.dcache && ./build/cpp_example build/cpp_example.dcache

GO_ENV := TMPDIR=$(BINDINGS_TMP) GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPROXY=off \
          GOCACHE=$(BINDINGS_OUT)/go-cache GOPATH=$(BINDINGS_OUT)/go-path

test-go: lib
	@if command -v $(GO) >/dev/null 2>&1; then \
	  mkdir -p $(BINDINGS_TMP) && cd examples/go && \
	  $(GO_ENV) $(GO) test -race -count=1 -v ./... ; \
	else \
	  echo "SKIP: go not installed (apt-get install golang-go)"; \
	fi

# 4 KiB gets of values on the device from one goroutine: blocking Get against a Queue with 32
# in flight, in one run, and their ratio.
bench-go: lib
	@mkdir -p $(BINDINGS_TMP)
	cd examples/go && $(GO_ENV) $(GO) test -count=1 -run '^$$' -bench Queue -benchtime 3s . \
	  | tee $(BINDINGS_OUT)/bench-go.txt
	@awk '/Queue\/blocking/ {b=$$3} /Queue\/async32/ {a=$$3} \
	  END {if (a && b) printf "async32 over blocking, reads per second: %.2fx\n", b/a; else exit 1}' \
	  $(BINDINGS_OUT)/bench-go.txt

test-python: lib $(TEST_PYTHON)
	@if command -v $(PYTHON) >/dev/null 2>&1; then \
	  mkdir -p $(BINDINGS_TMP) && \
	  TMPDIR=$(BINDINGS_TMP) PYTHONDONTWRITEBYTECODE=1 \
	  $(PYTHON) -m unittest discover -s examples/python -v; \
	else \
	  echo "SKIP: python3 not installed"; \
	fi

test-bindings: test-cpp test-go test-python test-demo
