# ledgerd - one plain Makefile.
#   make            build/ledgerd
#   make check      unit tests under ASan/UBSan, then the API, concurrency
#                   and crash tests against a private PostgreSQL cluster
#   make format     clang-format every C file

CC      ?= cc
PG_INC  := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu17 $(WARN) -D_GNU_SOURCE -pthread -Isrc -I$(PG_INC)
LDLIBS  := -lpq -lmicrohttpd -ljansson -lpthread

BUILD   := build
CORE    := $(wildcard src/core/*.c)
STORE   := $(wildcard src/store/*.c)
ENGINE  := $(wildcard src/engine/*.c)
HTTP    := $(wildcard src/http/*.c)
UTIL    := $(wildcard src/util/*.c)
MAIN    := $(wildcard src/ledgerd/*.c)
SERVER  := $(CORE) $(UTIL) $(STORE) $(ENGINE) $(HTTP) $(MAIN)
HEADERS := $(wildcard src/*/*.h src/*/*.def)

SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
UNIT    := $(wildcard tests/unit/*.c)

.PHONY: all check unit api format clean

all: $(BUILD)/ledgerd

$(BUILD)/ledgerd: $(SERVER) $(HEADERS) | $(BUILD)
	$(CC) $(CFLAGS) -o $@ $(SERVER) $(LDLIBS)

$(BUILD)/unit-tests: $(CORE) $(UNIT) $(HEADERS) | $(BUILD)
	$(CC) $(CFLAGS) -O1 $(SAN) -Itests/unit -o $@ $(CORE) $(UNIT) -lcmocka

$(BUILD):
	mkdir -p $@

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

api: $(BUILD)/ledgerd
	python3 tests/api/run.py --ledgerd $(BUILD)/ledgerd

check: unit api

format:
	clang-format -i $(wildcard src/*/*.c src/*/*.h tests/unit/*.c)

clean:
	rm -rf $(BUILD)
