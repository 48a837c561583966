# SPDX-License-Identifier: MIT
# keel: one GNU Makefile. `make` builds build/keel; see `make help`.

CC      ?= gcc
PKGS    := openssl libpq
BUILD   ?= build
SAN     ?=
CSTD    := -std=c17 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wmissing-prototypes \
           -Wstrict-prototypes -Wvla -Wno-format-nonliteral
OPT     ?= -O2 -g
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  += $(CSTD) $(WARN) $(OPT) $(PKG_CFLAGS) -Isrc -MMD -MP -pthread $(SAN)
LDLIBS  += $(PKG_LIBS) -pthread -lm

ifeq ($(V),1)
Q :=
else
Q := @
endif

SRCS     := $(sort $(wildcard src/*/*.c))
MAIN_SRC := src/cli/main.c
LIB_SRCS := $(filter-out $(MAIN_SRC),$(SRCS))
OBJS     := $(SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)

UNIT_SRCS := $(sort $(wildcard tests/unit/*/*.c))
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)

FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(notdir $(FUZZ_SRCS:.c=))
FUZZ_TIME ?= 30

.PHONY: all test unit system fuzz fuzz-replay san cov bench fmt lint clean help

all: $(BUILD)/keel

$(BUILD)/keel: $(OBJS)
	@echo "  LD    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# Unit tests may #include the .c they test; they link with every other object.
$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@echo "  UNIT  $@"
	$(Q)$(CC) $(CFLAGS) -Wno-missing-prototypes -o $@ $< \
	    $(filter-out $(BUILD)/src/$(subst /test_,/,$*).o,$(LIB_OBJS)) \
	    $(LDLIBS) -lcriterion

unit: $(UNIT_BINS)
	@scripts/run-unit.sh $(UNIT_BINS)

system: $(BUILD)/keel
	@/usr/bin/python3 -m pytest -q tests/system

# Corpus replay under gcc: each fuzz target linked with a replay main().
$(BUILD)/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/replay_main.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@echo "  FUZZR $@"
	$(Q)$(CC) $(CFLAGS) -Wno-missing-prototypes -o $@ $< tests/fuzz/replay_main.c \
	    $(LIB_OBJS) $(LDLIBS)

fuzz-replay: $(FUZZ_NAMES:%=$(BUILD)/fuzz-replay/%)
	@for t in $(FUZZ_NAMES); do $(BUILD)/fuzz-replay/$$t tests/fuzz/corpus/$${t#fuzz_} || exit 1; done

# libFuzzer builds with clang, in their own tree.
FUZZ_BUILD := build-fuzz
FUZZ_CFLAGS := $(CSTD) -g -O1 -Isrc $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined -pthread
FUZZ_LIB_SRCS := $(LIB_SRCS)
$(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_LIB_SRCS)
	@mkdir -p $(dir $@)
	@echo "  FUZZ  $@"
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_SRCS) $(LDLIBS)

fuzz: $(FUZZ_NAMES:%=$(FUZZ_BUILD)/%)
	@for t in $(FUZZ_NAMES); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	    echo "fuzz: $$t for $(FUZZ_TIME)s"; \
	    $(FUZZ_BUILD)/$$t -max_total_time=$(FUZZ_TIME) -print_final_stats=0 -close_fd_mask=3 \
	        $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$${t#fuzz_} >$(FUZZ_BUILD)/$$t.log 2>&1 \
	        || { tail -50 $(FUZZ_BUILD)/$$t.log; exit 1; }; \
	done

test:
	@scripts/test.sh

SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
san:
	$(MAKE) BUILD=build-san SAN="$(SAN_FLAGS)" OPT="-O1 -g" all unit
	KEEL_BIN=$(CURDIR)/build-san/keel /usr/bin/python3 -m pytest -q tests/system

bench: $(BUILD)/keel
	@bench/run.sh

fmt:
	clang-format -i $(SRCS) $(wildcard src/*/*.h) $(wildcard tests/unit/*/*.c tests/fuzz/*.c)

lint:
	@scripts/checksrc.sh
	@clang-format --dry-run -Werror $(SRCS) $(wildcard src/*/*.h) >/dev/null

clean:
	rm -rf build build-san build-fuzz

help:
	@echo "targets: all test unit system fuzz fuzz-replay san bench fmt clean"

-include $(OBJS:.o=.d)
