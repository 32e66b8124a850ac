# c-tests/c-tests.mk: the C test suite of libdcache, included by the top-level Makefile.
#
#   make test-c        build every test with ASan+UBSan into build/c-tests/ and run it (the
#                      root-only ones print SKIP when not root), then run one plain binary
#                      of the main functional tests under valgrind
#   make test-c-root   only the root-only tests (loop devices, ramfs)
#
# Uses DCACHE_CFLAGS, DCACHE_STATIC_LDLIBS, DCACHE_LDLIBS and the phony target `lib` from the
# top-level Makefile. Environment: DCACHE_TEST_SEED=N repeats a run's random choices;
# DCACHE_TEST_KEEP=1 keeps the work directories; CT_TESTS="a b" runs a subset.

CT_SRC := c-tests
CT_OUT := $(CURDIR)/build/c-tests
CT_TMP := $(CURDIR)/build/tmp
CT_CC  ?= gcc
CT_CXX ?= g++

# Ordinary tests (any user) and root-only tests (SKIP when not root).
CT_TESTS ?= version file_args file_flags file_whole file_random file_edges file_threads \
            cache_codes cache_roundtrip cache_ttl cache_update cache_writer cache_range \
            cache_reopen cache_stats cache_evict cache_threads cache_safety cache_corrupt \
            cache_crash cache_reinsert cache_queue
CT_ROOT_TESTS ?= ramfs file_loop4k cache_loop4k
# The main functional tests, linked into one plain (no sanitizer) binary run under valgrind.
CT_VALGRIND_TESTS ?= version file_args file_flags file_whole file_random cache_codes \
            cache_roundtrip cache_update cache_writer cache_range cache_reopen cache_stats \
            cache_queue

CT_SAN    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CT_CFLAGS := -std=c11 -Wall -Wextra -Werror -g $(CT_SAN) -D_GNU_SOURCE $(DCACHE_CFLAGS) -I$(CT_SRC)
CT_PLAIN_CFLAGS := -std=c11 -Wall -Wextra -Werror -g -O1 -D_GNU_SOURCE -DDC_COMBINED \
            $(DCACHE_CFLAGS) -I$(CT_SRC) -I$(CT_OUT)/plain

CT_LIBDEPS := $(wildcard $(CURDIR)/include/dcache.h $(CURDIR)/target/release/libdcache.a \
                         $(CURDIR)/target/release/libdcache.so)
CT_BINS := $(addprefix $(CT_OUT)/test_,$(CT_TESTS) $(CT_ROOT_TESTS)) \
           $(CT_OUT)/header_c99 $(CT_OUT)/header_cxx
CT_ROOT_BINS := $(addprefix $(CT_OUT)/test_,$(CT_ROOT_TESTS))
CT_PLAIN := $(CT_OUT)/functional_plain
# The helpers every test links, one for each thing they serve (see common.h).
CT_HELPERS := harness values process devices library
CT_HEADERS := $(CT_SRC)/common.h $(addprefix $(CT_SRC)/,$(addsuffix .h,$(CT_HELPERS)))
CT_HELPER_OBJS := $(addprefix $(CT_OUT)/,$(addsuffix .o,$(CT_HELPERS)))
CT_PLAIN_OBJS := $(addprefix $(CT_OUT)/plain/test_,$(addsuffix .o,$(CT_VALGRIND_TESTS))) \
                 $(addprefix $(CT_OUT)/plain/,$(addsuffix .o,$(CT_HELPERS))) \
                 $(CT_OUT)/plain/combined_main.o

CT_ENV := DCACHE_TEST_TMPDIR=$(CT_TMP) \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/$(CT_SRC)/lsan.supp:print_suppressions=0
CT_VALGRIND := valgrind -q --error-exitcode=1 --leak-check=full \
  --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect

.PHONY: test-c test-c-root ct-build ct-build-root ct-build-plain ct-run ct-run-root ct-valgrind

# `lib` first, then a second make so that the library files exist when the rules below read
# them as prerequisites (and `make -j` cannot link a test before the library is built).
# The sanitizer run and the valgrind run both happen; the target fails if either did.
test-c: lib
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) ct-build ct-build-plain
	@st=0; \
	$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) ct-run || st=1; \
	$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) ct-valgrind || st=1; \
	if [ $$st = 0 ]; then echo "==> test-c: all passed"; else echo "==> test-c: FAILED"; fi; \
	exit $$st

test-c-root: lib
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) ct-build-root
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) ct-run-root

ct-build: $(CT_BINS)
ct-build-root: $(CT_ROOT_BINS)
ct-build-plain: $(CT_PLAIN)

ct-run:
	@$(CT_ENV) $(CT_SRC)/run-tests.sh $(CT_OUT) $(CT_TMP) \
	  header_c99 header_cxx $(addprefix test_,$(CT_TESTS) $(CT_ROOT_TESTS))

ct-run-root:
	@$(CT_ENV) $(CT_SRC)/run-tests.sh $(CT_OUT) $(CT_TMP) $(addprefix test_,$(CT_ROOT_TESTS))

ct-valgrind: $(CT_PLAIN)
	@echo "==> valgrind $(notdir $(CT_PLAIN)): $(CT_VALGRIND_TESTS)"
	@mkdir -p $(CT_TMP)
	@DCACHE_TEST_TMPDIR=$(CT_TMP) timeout -s TERM 1800 $(CT_VALGRIND) $(CT_PLAIN)

$(CT_OUT) $(CT_OUT)/plain:
	@mkdir -p $@

# ---- sanitizer builds: one binary per test ---------------------------------------------------
$(CT_HELPER_OBJS): $(CT_OUT)/%.o: $(CT_SRC)/%.c $(CT_HEADERS) $(CT_LIBDEPS) | $(CT_OUT)
	$(CT_CC) $(CT_CFLAGS) -c $< -o $@

$(CT_OUT)/test_%: $(CT_SRC)/test_%.c $(CT_HELPER_OBJS) $(CT_HEADERS) $(CT_LIBDEPS) | $(CT_OUT)
	$(CT_CC) $(CT_CFLAGS) $< $(CT_HELPER_OBJS) -o $@ $(DCACHE_STATIC_LDLIBS)

# header hygiene: dcache.h included twice, strict C99 and C++11, linked and run
$(CT_OUT)/header_c99: $(CT_SRC)/header_c99.c $(CT_SRC)/header_api.inc $(CT_LIBDEPS) | $(CT_OUT)
	$(CT_CC) -std=c99 -Wall -Wextra -Wpedantic -Werror -g $(CT_SAN) $(DCACHE_CFLAGS) $< -o $@ $(DCACHE_STATIC_LDLIBS)

$(CT_OUT)/header_cxx: $(CT_SRC)/header_cxx.cpp $(CT_SRC)/header_api.inc $(CT_LIBDEPS) | $(CT_OUT)
	$(CT_CXX) -std=c++11 -Wall -Wextra -Wpedantic -Werror -g $(CT_SAN) $(DCACHE_CFLAGS) $< -o $@ $(DCACHE_STATIC_LDLIBS)

# ---- the plain binary for valgrind: the functional tests as functions, one main ---------------
# rewritten only when the list changes (CT_VALGRIND_TESTS may come from the command line)
$(CT_OUT)/plain/tests.def: ct-force | $(CT_OUT)/plain
	@printf 'T(%s)\n' $(CT_VALGRIND_TESTS) > $@.tmp; cmp -s $@.tmp $@ || cp $@.tmp $@; rm -f $@.tmp

.PHONY: ct-force
ct-force:

$(CT_OUT)/plain/combined_main.o: $(CT_SRC)/combined_main.c $(CT_OUT)/plain/tests.def $(CT_HEADERS) $(CT_LIBDEPS)
	$(CT_CC) $(CT_PLAIN_CFLAGS) -c $< -o $@

$(CT_OUT)/plain/%.o: $(CT_SRC)/%.c $(CT_HEADERS) $(CT_LIBDEPS) | $(CT_OUT)/plain
	$(CT_CC) $(CT_PLAIN_CFLAGS) -c $< -o $@

$(CT_PLAIN): $(CT_PLAIN_OBJS)
	$(CT_CC) -g $^ -o $@ $(DCACHE_STATIC_LDLIBS)
