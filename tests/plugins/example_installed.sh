#!/usr/bin/env bash
# The example backend plugin builds out of tree against an installed curlcache and passes
# the conformance group:
#   example_installed.sh BUILD_DIR EXAMPLE_SOURCE_DIR CONFORMANCE_TEST
# 1. cmake --install into a scratch prefix (the build tree's install_manifest.txt, which
#    that overwrites, is put back afterwards).
# 2. A copy of examples/backend/ (nothing else of the source tree) is configured with
#    CMAKE_PREFIX_PATH=prefix and built: it sees only the installed headers.
# 3. The conformance group runs over the plugin it built, loaded by backend = "plugin:...".
set -euo pipefail
build_dir=$(cd "$1" && pwd)
example_source=$(cd "$2" && pwd)
conformance=$3
# shellcheck source=../install/scratch_install.sh
source "$(dirname "$0")/../install/scratch_install.sh"
fail() {
  echo "example_installed: $*" >&2
  exit 1
}

prefix=$scratch/prefix
cmake --install "$build_dir" --prefix "$prefix" >"$scratch/install.log"
test -f "$prefix/include/curlcache/backend.h" || fail "curlcache/backend.h is not installed"

cp -r "$example_source" "$scratch/example"
cmake -S "$scratch/example" -B "$scratch/example-build" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$scratch/configure.log" 2>&1 || fail "configure: $(cat "$scratch/configure.log")"
cmake --build "$scratch/example-build" >"$scratch/build.log" 2>&1 ||
  fail "build: $(cat "$scratch/build.log")"
# The compiler saw the installed header, not the source tree's.
grep -rq "$prefix/include" "$scratch/example-build" || fail "the build did not use $prefix/include"
plugin=$scratch/example-build/libcurlcache-backend-example.so
test -f "$plugin" || fail "no $plugin"
# Its only exported function is the entry point.
exported=$(nm -D --defined-only "$plugin" | awk '$2 == "T" { print $3 }')
[ "$exported" = "curlcache_backend_plugin_entry" ] || fail "the plugin exports: $exported"

"$conformance" "$plugin"
