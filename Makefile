# Thin wrapper over CMake presets. The two commands a newcomer needs:
#   make demo   -- install missing Debian packages, build, run a live demo fleet
#   make test   -- install missing Debian packages, build, run the whole test suite
PRESET ?= default
JOBS ?= $(shell nproc)
BUILD_DIR = $(if $(filter default,$(PRESET)),build,build-$(PRESET))

.PHONY: all deps configure build demo test test-asan test-tsan format tidy clean

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

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

tidy: configure
	@git ls-files '*.cc' | grep -v '^tests/' | xargs clang-tidy -p $(BUILD_DIR) --quiet

clean:
	@rm -rf build build-asan build-tsan
