# The crate as a Rust user sees it (included by the top-level Makefile).
#
# test-rust-api: examples/rust/hello, a program outside the crate with default features,
# builds and runs, and so does examples/rust/tokio-gets (feature tokio: gets awaited); its dependency tree holds no clap or indicatif; a program that names the
# crate's insides (dcache::dio::sys, dcache::ffi, dcache::cache::Geometry) does not build,
# refused as private; and `cargo package` builds the crate from what it would publish.

RUST_API_OUT := $(CURDIR)/build/rust-api
RUST_API_ENV := CARGO_TARGET_DIR=$(RUST_API_OUT)/target

.PHONY: test-rust-api
test-rust-api:
	@mkdir -p $(RUST_API_OUT)/private/src
	cd examples/rust/hello && $(RUST_API_ENV) $(CARGO) run -q -- $(RUST_API_OUT)/hello.dcache \
	  | tee $(RUST_API_OUT)/hello.out
	grep -qx 'greeting = hello, disk' $(RUST_API_OUT)/hello.out
	cd examples/rust/tokio-gets && $(RUST_API_ENV) $(CARGO) run -q -- \
	  $(RUST_API_OUT)/tokio.dcache | tee $(RUST_API_OUT)/tokio.out
	grep -qx '100 gets awaited, 6553600 bytes, none blocked the executor' $(RUST_API_OUT)/tokio.out
	cd examples/rust/hello && $(CARGO) tree -q -e normal > $(RUST_API_OUT)/tree.txt
	@! grep -E '^\W*(clap|indicatif) ' $(RUST_API_OUT)/tree.txt || \
	  { echo "FAIL: a library build brings the CLI's dependencies"; exit 1; }
	printf '%s\n' '[package]' 'name = "dcache-private-check"' 'version = "0.0.0"' \
	  'edition = "2021"' '[dependencies]' 'dcache = { path = "$(CURDIR)" }' '[workspace]' \
	  > $(RUST_API_OUT)/private/Cargo.toml
	printf '%s\n' 'use dcache::dio::sys as _;' 'use dcache::ffi as _;' \
	  'use dcache::cache::Geometry as _;' 'fn main() {}' > $(RUST_API_OUT)/private/src/main.rs
	@cd $(RUST_API_OUT)/private && if $(RUST_API_ENV) $(CARGO) build -q 2> errors.txt; then \
	  echo "FAIL: the crate's insides can be named"; exit 1; fi
	@n=$$(grep -c 'error\[E0603\]: module `\(dio\|ffi\|cache\)` is private' $(RUST_API_OUT)/private/errors.txt); \
	  [ "$$n" -eq 3 ] || { cat $(RUST_API_OUT)/private/errors.txt; \
	  echo "FAIL: expected 3 private-module errors, got $$n"; exit 1; }
	$(RUST_API_ENV) $(CARGO) package -q --allow-dirty
	@echo "test-rust-api: 5 passed, 0 failed"
