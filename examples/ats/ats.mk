# examples/ats/ats.mk: the Traffic Server plugin over libdcache (issue 6).
# Included by the top-level Makefile, which defines DCACHE_CFLAGS, DCACHE_LDLIBS and `lib`.
#
#   make ats        build build/ats/dcache_ats.so (SKIP when /usr/include/ts/ts.h is missing)
#   make test-ats   end-to-end tests against a private traffic_server on 127.0.0.1
#   make bench-ats  64 KiB hits, one hot URL and 1024 URLs: dcache plugin vs ATS's own cache
#                   (BASELINE=other.so runs another build of the plugin beside it)

ATS_SRC_DIR   := $(CURDIR)/examples/ats
ATS_BUILD_DIR := $(CURDIR)/build/ats
ATS_PLUGIN    := $(ATS_BUILD_DIR)/dcache_ats.so
ATS_TS_H      := /usr/include/ts/ts.h
ATS_CC        ?= $(CC)
ATS_CFLAGS    ?= -std=gnu11 -O2 -g -pthread -fPIC -Wall -Wextra -Werror -Wno-unused-parameter
ATS_PYTHON    ?= $(TEST_PYTHON)
ATS_HAVE_TS_H := $(wildcard $(ATS_TS_H))
ATS_HAVE_TS   := $(shell command -v traffic_server 2>/dev/null)

.PHONY: ats test-ats bench-ats

ifneq ($(ATS_HAVE_TS_H),)
ats: lib
	@mkdir -p $(ATS_BUILD_DIR)
	$(ATS_CC) $(ATS_CFLAGS) $(DCACHE_CFLAGS) -shared -o $(ATS_PLUGIN) $(ATS_SRC_DIR)/dcache_ats.c $(DCACHE_LDLIBS)
else
ats:
	@echo "SKIP: $(ATS_TS_H) not found (apt-get install trafficserver-dev): dcache_ats.so not built"
endif

ifeq ($(and $(ATS_HAVE_TS_H),$(ATS_HAVE_TS)),)
test-ats:
	@echo "SKIP: trafficserver and trafficserver-dev are needed for the ATS plugin tests (apt-get install trafficserver trafficserver-dev)"

bench-ats:
	@echo "SKIP: trafficserver and trafficserver-dev are needed for the ATS benchmark"
else
test-ats: ats $(TEST_PYTHON)
	$(ATS_PYTHON) $(ATS_SRC_DIR)/tests/test_ats.py --plugin $(ATS_PLUGIN)

bench-ats: ats $(TEST_PYTHON)
	$(ATS_PYTHON) $(ATS_SRC_DIR)/bench.py --plugin $(ATS_PLUGIN) $(if $(BASELINE),--baseline $(BASELINE))
endif
