# A thin wrapper around the one CMake build. Every target first makes sure the Debian
# packages are there (scripts/install-deps.sh is a fast no-op when they are).
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps configure build test check-asan fuzz-build fuzz fuzz-ci run bench install uninstall package clean format

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	@$(MAKE) --no-print-directory deps
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)

configure: $(BUILD)/CMakeCache.txt

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
check-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCURLCACHE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -LE no-asan

# libFuzzer targets (tests/fuzz/README.md): clang, ASan + UBSan, a build of their own in which
# only the fuzz targets and the engine they link are built. -O1 with assertions on.
FUZZ_CC        ?= clang-19
FUZZ_CXX       ?= clang++-19
FUZZ_SECONDS   ?= 600
FUZZ_CI_SECONDS ?= 40
FUZZ_TARGETS   ?=
fuzz-build: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=$(FUZZ_CC) -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) \
	  -DCURLCACHE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" $(CMAKE_ARGS)
	cmake --build $(FUZZ_BUILD) --target fuzz-targets -j $(JOBS)

# Each target FUZZ_SECONDS (default 10 minutes); FUZZ_TARGETS="key har" picks some.
fuzz: fuzz-build
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The bounded run CI does: every target FUZZ_CI_SECONDS; any crash, leak or UB fails.
fuzz-ci: fuzz-build
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_CI_SECONDS) $(FUZZ_TARGETS)

run:
	@echo "make run: the first build takes a few minutes (later runs start at once)"
	@$(MAKE) --no-print-directory build
	@bash scripts/demo.sh $(BUILD)

bench: build
	cmake --build $(BUILD) --target bench-all

install: build
	cmake --install $(BUILD)

# Removes what the last `make install` from $(BUILD) wrote (its install_manifest.txt).
uninstall:
	cmake --build $(BUILD) --target uninstall

# A Debian package (cpack) in $(BUILD): curlcache_<version>_<arch>.deb.
package: build
	cmake --build $(BUILD) --target package

format:
	clang-format -i $$(git ls-files '*.c' '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
