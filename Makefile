# A thin wrapper around the one CMake build. Every target first makes sure the Debian
# packages are there (scripts/install-deps.sh is a fast no-op when they are).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps configure build test check-asan run bench install uninstall package clean format

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
	rm -rf $(BUILD) $(ASAN_BUILD)
