# dcache: build, test, install. `make` builds both libraries; `make test` runs every test;
# `make install PREFIX=... DESTDIR=...` installs them with the header and a pkg-config file.

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR    ?=
CARGO      ?= cargo

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR   := $(word 1,$(subst ., ,$(VERSION)))

BUILD_DIR := target/release
SHARED    := $(BUILD_DIR)/libdcache.so
STATIC    := $(BUILD_DIR)/libdcache.a

# What the Makefile fragments (c-tests/, examples/) build against.
DCACHE_CFLAGS        := -I$(CURDIR)/include
DCACHE_LDLIBS        := -L$(CURDIR)/$(BUILD_DIR) -ldcache -Wl,-rpath,$(CURDIR)/$(BUILD_DIR)
DCACHE_STATIC_LDLIBS := $(CURDIR)/$(STATIC) -lpthread -ldl -lm

.PHONY: all lib header test test-lint test-rust test-exports test-install test-abi install uninstall clean fuzz soak

all: lib

# Both libraries and the command-line tool. The soname link lets programs linked against
# the build tree run from it.
lib:
	$(CARGO) build --release --lib --bins --features cli
	ln -sf libdcache.so $(BUILD_DIR)/libdcache.so.$(MAJOR)

# Regenerates the committed header from src/ffi.
header:
	DCACHE_WRITE_HEADER=1 $(CARGO) build --release --lib

# The code stays formatted and clippy-clean, tests and the command-line tool included, and
# the Rust API's documentation builds without a warning (every public item documented).
test-lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets --features fault-injection,cli,tokio,fuzzing -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --features tokio
	@echo "test-lint: 3 passed, 0 failed"

# Rust unit and integration tests, including the check that include/dcache.h is current.
# The fuzz targets (tests/fuzz.rs) replay their corpus and mutate for 15 s each, in parallel.
test-rust:
	DCACHE_FUZZ_SECONDS=15 $(CARGO) test --release --features fault-injection,cli,tokio,fuzzing

# DURATION (s, m or h) in seconds, or $(1) without one.
seconds_of = $(shell echo '$(or $(DURATION),$(1))' | awk '/h$$/ {print $$0*3600; next} /m$$/ {print $$0*60; next} {print $$0+0}')

# The fuzz targets for longer: make fuzz DURATION=10m (each target runs that long, the three
# at once; default 5m). A finding is written to target/fuzz-findings/ and fails the run.
fuzz:
	DCACHE_FUZZ_SECONDS=$(call seconds_of,5m) $(CARGO) test --release --features fuzzing \
	  --test fuzz -- --nocapture

# The soak run (tests/soak.rs; not in make test): make soak DURATION=10m (the default).
soak:
	DCACHE_SOAK_SECONDS=$(call seconds_of,10m) $(CARGO) test --release --features fault-injection \
	  --test soak -- --ignored --exact soak --nocapture

# The shared library exports only dcache_* symbols and carries its soname.
test-exports: lib
	@bad=$$(nm -D --defined-only $(SHARED) | awk '{print $$3}' | grep -v '^dcache_' || true); \
	if [ -n "$$bad" ]; then echo "FAIL: symbols outside dcache_*: $$bad"; exit 1; fi
	@readelf -d $(SHARED) | grep -q 'SONAME.*libdcache.so.$(MAJOR)' || { echo "FAIL: soname"; exit 1; }
	@echo "test-exports: 2 passed, 0 failed"

# Installs into a staging directory, then builds and runs a C program with pkg-config
# against the installed copy only.
STAGE := $(CURDIR)/build/stage
test-install: lib
	rm -rf $(STAGE)
	$(MAKE) --no-print-directory install DESTDIR=$(STAGE) PREFIX=/usr/local
	cc -std=c99 -Wall -Wextra -Werror -o build/installed-check tests/install/installed_check.c \
	  $$(PKG_CONFIG_SYSROOT_DIR=$(STAGE) PKG_CONFIG_LIBDIR=$(STAGE)/usr/local/lib/pkgconfig pkg-config --cflags --libs dcache)
	LD_LIBRARY_PATH=$(STAGE)/usr/local/lib ./build/installed-check
	@! ldd build/installed-check | grep -q '$(CURDIR)/target' || { echo "FAIL: linked against the build tree"; exit 1; }
	@echo "test-install: 1 passed, 0 failed"

# A program built against the 0.1.0 header (kept in tests/abi/) runs against today's shared
# library, under ASan and UBSan and then under valgrind: appended struct fields must not break it.
ABI_OUT := $(CURDIR)/build/abi
test-abi: lib
	@mkdir -p $(ABI_OUT)/tmp
	cc -std=c99 -Wall -Wextra -Werror -g -fsanitize=address,undefined -fno-sanitize-recover=all \
	  -o $(ABI_OUT)/abi_0_1_0 tests/abi/abi_0_1_0.c $(DCACHE_LDLIBS)
	cc -std=c99 -Wall -Wextra -Werror -g -O1 -o $(ABI_OUT)/abi_0_1_0_plain tests/abi/abi_0_1_0.c \
	  $(DCACHE_LDLIBS)
	$(ABI_OUT)/abi_0_1_0 $(ABI_OUT)/tmp
	@if command -v valgrind >/dev/null; then \
	  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	    $(ABI_OUT)/abi_0_1_0_plain $(ABI_OUT)/tmp; \
	else echo "SKIP: valgrind not installed (apt-get install valgrind)"; fi

install: lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR)
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libdcache.a
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/libdcache.so.$(VERSION)
	ln -sf libdcache.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libdcache.so.$(MAJOR)
	ln -sf libdcache.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libdcache.so
	install -m 644 include/dcache.h $(DESTDIR)$(INCLUDEDIR)/dcache.h
	[ ! -f include/dcache.hpp ] || install -m 644 include/dcache.hpp $(DESTDIR)$(INCLUDEDIR)/dcache.hpp
	install -m 755 $(BUILD_DIR)/dcache $(DESTDIR)$(BINDIR)/dcache
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' dcache.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/dcache.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libdcache.a $(DESTDIR)$(LIBDIR)/libdcache.so* \
	      $(DESTDIR)$(INCLUDEDIR)/dcache.h $(DESTDIR)$(INCLUDEDIR)/dcache.hpp \
	      $(DESTDIR)$(PKGCONFIGDIR)/dcache.pc $(DESTDIR)$(BINDIR)/dcache

clean:
	$(CARGO) clean
	rm -rf build

# The Python the tests run with: a virtualenv under build/ with the Prometheus client
# library, whose parser reads the metrics the tests check.
TEST_VENV   := $(CURDIR)/build/test-venv
TEST_PYTHON := $(TEST_VENV)/bin/python

$(TEST_PYTHON):
	python3 -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/pip install --quiet prometheus-client==0.21.1

# Tests, examples and benchmarks that live beside their code.
FRAGMENTS := $(wildcard c-tests/c-tests.mk examples/bindings.mk examples/ats/ats.mk bench/bench.mk \
  bench/policy/policy.mk examples/rust/rust.mk examples/pingora/pingora.mk)
include $(FRAGMENTS)

TEST_TARGETS := test-lint test-rust test-exports test-install test-abi \
  $(if $(wildcard examples/rust/rust.mk),test-rust-api) \
  $(if $(wildcard bench/policy/policy.mk),test-replay) \
  $(if $(wildcard c-tests/c-tests.mk),test-c) \
  $(if $(wildcard examples/bindings.mk),test-bindings) \
  $(if $(wildcard examples/ats/ats.mk),test-ats) \
  $(if $(wildcard examples/pingora/pingora.mk),test-pingora)

test: lib
	@for t in $(TEST_TARGETS); do \
	  echo "==> make $$t"; \
	  $(MAKE) --no-print-directory $$t || exit 1; \
	done
	@echo "==> all test targets passed: $(TEST_TARGETS)"
