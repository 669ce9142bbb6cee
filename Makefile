# Thin wrapper over CMake; see README.md. `make run` and `make test` install what is missing.
BUILD      ?= build
ASAN_BUILD ?= build/asan
FUZZ_BUILD ?= build/fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
PORT       ?= 7880
FUZZ_TIME  ?= 60

.PHONY: all bootstrap build asan run test test-fast bench fuzz soak format format-check clean

all: build

bootstrap:
	@scripts/bootstrap

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DVS_SANITIZE=ON

asan: $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: bootstrap build
	$(BUILD)/volli-signal --port $(PORT) --data-dir ./data

# Every test, twice: the release build and the ASan+UBSan build.
test: bootstrap build asan
	@scripts/run-tests $(BUILD) $(ASAN_BUILD)

# The release build only, for quick iterations.
test-fast: build
	@scripts/run-tests $(BUILD)

# Benchmark against the PeerJS server and a Node ws relay, about 15 minutes: bench/RESULTS.md
# and bench/plots/. QUICK=1: one run each at smaller sizes, written under bench/out/quick/.
bench: bootstrap
	@QUICK=$(QUICK) bench/run.sh

$(FUZZ_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DVS_FUZZ=ON -DVS_SANITIZE=ON

# Runs each libFuzzer target for FUZZ_TIME seconds over a copy of its corpus.
fuzz: bootstrap $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@scripts/fuzz $(FUZZ_BUILD) $(FUZZ_TIME)

# Ten minutes of mixed load on the release build (memory flat, no fd growth), then on the
# ASan+UBSan build (LeakSanitizer clean at exit). SOAK_SECONDS=60 make soak for a shorter run.
SOAK_SECONDS ?= 600
soak: bootstrap build asan
	SOAK_SECONDS=$(SOAK_SECONDS) VOLLI_SANITIZED=0 VOLLI_BIN=$(CURDIR)/$(BUILD)/volli-signal \
	  node --test --test-reporter=spec tests/integration/78-soak.test.mjs
	SOAK_SECONDS=$(SOAK_SECONDS) VOLLI_SANITIZED=1 VOLLI_BIN=$(CURDIR)/$(ASAN_BUILD)/volli-signal \
	  node --test --test-reporter=spec tests/integration/78-soak.test.mjs

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
