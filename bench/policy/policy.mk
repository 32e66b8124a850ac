# bench/policy/policy.mk: dcache judged as a cache. Included by the top-level Makefile.
#
#   make test-replay    `dcache replay` against a C replayer on small traces of each shape:
#                       the same misses, no wrong value (part of make test)
#   make bench-policy   the three trace shapes replayed through dcache at 5% and 10% of each
#                       footprint, beside libCacheSim's policies (installed from PyPI into a
#                       virtualenv under build/), in one table
#
# Uses DCACHE_CFLAGS, DCACHE_LDLIBS and the phony target `lib` from the top-level Makefile.

POLICY_OUT    := $(CURDIR)/build/policy
POLICY_VENV   := $(CURDIR)/build/policy-venv
POLICY_PYTHON ?= python3
POLICY_ARGS   ?=
DCACHE_BIN    := $(CURDIR)/$(BUILD_DIR)/dcache

.PHONY: test-replay bench-policy policy-replay-c policy-venv

policy-replay-c: lib
	@mkdir -p $(POLICY_OUT)
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror $(DCACHE_CFLAGS) -o $(POLICY_OUT)/replay_c \
	  bench/policy/replay.c $(DCACHE_LDLIBS)

test-replay: policy-replay-c
	$(POLICY_PYTHON) bench/policy/test_replay.py --dcache $(DCACHE_BIN) \
	  --replay-c $(POLICY_OUT)/replay_c --dir $(POLICY_OUT)/test

# The virtualenv is made once; libcachesim comes from PyPI as a prebuilt wheel.
$(POLICY_VENV)/bin/python:
	$(POLICY_PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/pip install --quiet libcachesim==0.3.5

bench-policy: lib $(POLICY_VENV)/bin/python
	$(POLICY_VENV)/bin/python bench/policy/policy.py --dcache $(DCACHE_BIN) \
	  --out $(POLICY_OUT) $(POLICY_ARGS)
