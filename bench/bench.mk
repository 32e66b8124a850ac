# bench/bench.mk: the benchmark of libdcache, included by the top-level Makefile.
#
#   make bench                                   build build/bench and run it
#   make bench BENCH_ARGS="--json build/bench.json"
#   make bench BENCH_ARGS="--quick --dir /some/dir"
#   make bench-build                             build only
#   make bench-metrics                           what timing one operation in a latency
#                                                histogram costs (benches/latency_histogram.rs)
#
# The test files go to a new directory under build/ (the working tree's file system, not
# /tmp, which may be tmpfs) unless --dir is given. A full run takes about a minute.
# Uses DCACHE_CFLAGS, DCACHE_LDLIBS and the phony target `lib` from the top-level Makefile.

BENCH_SRC    := bench
BENCH_BIN    := $(CURDIR)/build/bench
BENCH_CC     ?= $(CC)
BENCH_ARGS   ?=
BENCH_CFLAGS := -std=c11 -O2 -Wall -Wextra -Werror -pthread $(DCACHE_CFLAGS) \
                -DBENCH_DEFAULT_PARENT='"$(CURDIR)/build"'
BENCH_SOURCES := $(wildcard $(BENCH_SRC)/*.c)
BENCH_HEADERS := $(wildcard $(BENCH_SRC)/*.h)
BENCH_LIBDEPS := $(wildcard $(CURDIR)/include/dcache.h $(CURDIR)/target/release/libdcache.so)

.PHONY: bench bench-build bench-bin bench-metrics

bench-metrics:
	cargo bench --bench latency_histogram

# `lib` first, then a second make, so that the library exists when the rule below reads it
# as a prerequisite.
bench: lib
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) bench-bin
	$(BENCH_BIN) $(BENCH_ARGS)

bench-build: lib
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) bench-bin

bench-bin: $(BENCH_BIN)

$(BENCH_BIN): $(BENCH_SOURCES) $(BENCH_HEADERS) $(BENCH_LIBDEPS) $(BENCH_SRC)/bench.mk
	@mkdir -p $(dir $@)
	$(BENCH_CC) $(BENCH_CFLAGS) $(BENCH_SOURCES) -o $@ $(DCACHE_LDLIBS) -luring
