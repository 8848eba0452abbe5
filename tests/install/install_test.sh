#!/usr/bin/env bash
# `make install` gives a usable package: installs the build into a scratch prefix, then
# builds and runs a consumer through find_package(curlcache) (shared and static) and
# through pkg-config.
set -euo pipefail
build_dir=$1
source_dir=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
test -f "$scratch/prefix/include/curlcache/curlcache.h"
libdir=$(find "$scratch/prefix" -name libcurlcache.so -printf '%h\n' | head -n1)
test -n "$libdir"
test -f "$libdir/libcurlcache.a"

cmake -S "$source_dir/consumer" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
LD_LIBRARY_PATH=$libdir XDG_CACHE_HOME=$scratch "$scratch/consumer/consumer_shared"
XDG_CACHE_HOME=$scratch "$scratch/consumer/consumer_static"

export PKG_CONFIG_PATH=$libdir/pkgconfig
# shellcheck disable=SC2046
cc -o "$scratch/consumer_pc" "$source_dir/consumer/consumer.c" $(pkg-config --cflags --libs curlcache)
LD_LIBRARY_PATH=$libdir XDG_CACHE_HOME=$scratch "$scratch/consumer_pc"
echo "install: find_package (shared, static) and pkg-config consumers work"
