# The Pingora cache backend and its proxy (included by the top-level Makefile). A crate of its
# own, outside the library's workspace: the library's builds and tests never build Pingora.
# Pingora's zlib-ng is built by cmake (Debian's cmake package). From cold, the build takes
# about 4 minutes on 2 cores; the tests about 15 seconds.

PINGORA_DIR := examples/pingora
PINGORA_ENV := CARGO_TARGET_DIR=$(CURDIR)/build/pingora/target

.PHONY: test-pingora pingora-proxy bench-pingora
pingora-proxy:
	cd $(PINGORA_DIR) && $(PINGORA_ENV) $(CARGO) build --release --bins

# fmt and clippy as for the library; then the tests: the real proxy binary, a real origin, and
# reqwest as the client.
test-pingora:
	@if ! command -v cmake >/dev/null; then \
	  echo "SKIP: test-pingora: Pingora's zlib-ng needs cmake (apt-get install cmake)"; exit 0; fi; \
	set -ex; cd $(PINGORA_DIR); \
	$(CARGO) fmt --check; \
	$(PINGORA_ENV) $(CARGO) clippy --release --all-targets -- -D warnings; \
	$(PINGORA_ENV) $(CARGO) test --release

# Hits through the real proxy: dcache vs Pingora's MemCache vs the origin, with wrk (about 4
# minutes). BENCH_ARGS passes options to bench.py (--seconds, --rounds, --io-mode, --shapes).
bench-pingora: pingora-proxy
	python3 $(PINGORA_DIR)/bench.py --bin $(CURDIR)/build/pingora/target/release $(BENCH_ARGS)
