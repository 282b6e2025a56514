# Thin wrapper over CMake presets. The two commands a newcomer needs:
#   make demo   -- install missing Debian packages, build, run a live demo fleet
#   make test   -- install missing Debian packages, build, run the whole test suite
PRESET ?= default
JOBS ?= $(shell nproc)
BUILD_DIR = $(if $(filter default,$(PRESET)),build,build-$(PRESET))

.PHONY: all deps configure build demo test test-asan test-tsan bench loadgen fuzz format tidy clean

all: build

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build --preset $(PRESET) -j $(JOBS)

demo: build
	@./scripts/demo.sh

test: build
	@ctest --preset $(PRESET) -j $(JOBS)

test-asan:
	@$(MAKE) test PRESET=asan

test-tsan:
	@$(MAKE) test PRESET=tsan

# Benchmarks: agent overhead (BENCH_SECONDS, default 120). Figures: docs/performance.md.
BENCH_SECONDS ?= 120
bench: build
	@./bench/agent_overhead.sh $(BENCH_SECONDS)

# Control-plane ingest and fan-out under load, next to a bare gRPC server in the same run
# (`switchboard-loadgen bench --help`; figures: docs/performance.md).
LOADGEN_ARGS ?= --agents 1000 --subscribers 100 --duration 20s
loadgen: build
	@$(BUILD_DIR)/bin/switchboard-loadgen bench $(LOADGEN_ARGS)

# Fuzzing: each target runs FUZZ_SECONDS (default 60) from its seed corpus
# (tests/fuzz/corpus/NAME); every parser of input from outside has one. Undefined
# behaviour stops a run like a crash (UBSan would otherwise report it and go on).
# FUZZ_SEED fixes libFuzzer's seed (CI sets it, so that a failure there reproduces with
# the same command on a clean clone); unset, every run draws a new one and explores.
FUZZ_SECONDS ?= 60
FUZZ_SEED ?=
FUZZ_TARGETS = prometheus_text probes nvidia_smi agent_messages pool_config retention_tiers token_file \
  inference_request cli_values haproxy_state
fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t && cp -n tests/fuzz/corpus/$$t/* build-fuzz/corpus/$$t/ ; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS)s"; \
	  if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 build-fuzz/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) $(if $(FUZZ_SEED),-seed=$(FUZZ_SEED)) -max_len=65536 -print_final_stats=1 \
	      build-fuzz/corpus/$$t > build-fuzz/fuzz_$$t.log 2>&1; then \
	    tail -n 40 build-fuzz/fuzz_$$t.log; exit 1; \
	  fi; \
	  grep -E "^stat::(number_of_executed_units|peak_rss_mb)" build-fuzz/fuzz_$$t.log; \
	done

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

tidy: configure
	@git ls-files '*.cc' | grep -v '^tests/' | xargs clang-tidy -p $(BUILD_DIR) --quiet --extra-arg=-Wno-unknown-warning-option

clean:
	@rm -rf build build-asan build-tsan
