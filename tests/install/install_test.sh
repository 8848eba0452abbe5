#!/usr/bin/env bash
# `make install` gives a usable, relocatable install and `make uninstall` takes it back.
#   install_test.sh BUILD_DIR
# 1. Installs the build into a scratch prefix (cmake --install --prefix).
# 2. The installed command starts with no LD_LIBRARY_PATH, also after the whole prefix has
#    moved (RUNPATH $ORIGIN/../lib), and `curlcache run` preloads the installed shim;
#    share/doc/curlcache holds the licence and the example config, which the installed
#    command reads without complaint.
# 3. A C program (consumer/, a LANGUAGES C project) builds and runs four ways: find_package
#    shared, find_package static, pkg-config, pkg-config --static. The shared ones see only
#    libcurl's development files (sqlite3, xxhash and hiredis hidden from pkg-config): the
#    shared library needs no more. The static ones are linked with the C compiler and
#    contain the archive (no libcurlcache.so.0 needed).
# 4. The uninstall target removes every installed file.
# The build tree's install_manifest.txt (which cmake --install overwrites) is put back.
set -euo pipefail
build_dir=$(cd "$1" && pwd)
source_dir=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scratch_install.sh
source "$source_dir/scratch_install.sh"
fail() {
  echo "install: $*" >&2
  exit 1
}
export XDG_CACHE_HOME=$scratch/cache XDG_CONFIG_HOME=$scratch/config
unset LD_LIBRARY_PATH

# 1. Install.
prefix=$scratch/prefix
cmake --install "$build_dir" --prefix "$prefix" >"$scratch/install.log"
test -f "$prefix/include/curlcache/curlcache.h" || fail "no header"
libdir=$(find "$prefix" -name libcurlcache.so -printf '%h\n' | head -n1)
test -n "$libdir" || fail "no libcurlcache.so"
test -f "$libdir/libcurlcache.a" || fail "no libcurlcache.a"
libdir_rel=${libdir#"$prefix"/}

# 2. The command (and `curlcache run`'s shim) works from any prefix; the docs are there.
"$prefix/bin/curlcache" --version >/dev/null || fail "the installed command does not start"
grep -q "RUNPATH.*\[\$ORIGIN/../$libdir_rel\]" <<<"$(readelf -d "$prefix/bin/curlcache")" ||
  fail "the installed command's RUNPATH is not \$ORIGIN/../$libdir_rel"
mv "$prefix" "$scratch/moved"
"$scratch/moved/bin/curlcache" --version >/dev/null || fail "the command does not start from a moved prefix"
# `curlcache run` finds the installed shim next to itself, wherever the prefix went.
# shellcheck disable=SC2016
shim=$("$scratch/moved/bin/curlcache" run -- sh -c 'echo "$LD_PRELOAD"')
[ "$(readlink -f "$shim")" = "$(readlink -f "$scratch/moved/$libdir_rel/libcurlcache-preload.so")" ] ||
  fail "curlcache run from a moved prefix preloads '$shim'"
# On x86-64 the preloaded library is a stub that loads libcurlcache-engine.so from its own
# folder at the first libcurl call (shim/README.md): it must be installed beside it, and a
# libcurl call under the moved install must find it (no "cannot load the engine" warning).
# The build's own setting decides, so that a split build missing its engine fails here.
split=$(sed -n 's/^CURLCACHE_SHIM_SPLIT:BOOL=//p' "$build_dir/CMakeCache.txt")
[ -n "$split" ] || fail "CURLCACHE_SHIM_SPLIT not found in $build_dir/CMakeCache.txt"
if [ "$split" = ON ]; then
  test -f "$scratch/moved/$libdir_rel/libcurlcache-engine.so" || fail "no libcurlcache-engine.so beside the shim"
  "$scratch/moved/bin/curlcache" run -- curl -s -o /dev/null "file://$source_dir/install_test.sh" \
    2>"$scratch/engine.err" || fail "curl under the installed shim failed: $(cat "$scratch/engine.err")"
  ! grep -q "cannot load the engine" "$scratch/engine.err" ||
    fail "the installed shim cannot load its engine: $(cat "$scratch/engine.err")"
fi
mv "$scratch/moved" "$prefix"
docdir=$prefix/share/doc/curlcache
cmp "$docdir/curlcache.example.toml" "$source_dir/../../config/curlcache.example.toml" ||
  fail "share/doc/curlcache/curlcache.example.toml differs from config/"
cmp "$docdir/LICENSE" "$source_dir/../../LICENSE" || fail "share/doc/curlcache/LICENSE differs"
"$prefix/bin/curlcache" config --check "$docdir/curlcache.example.toml" >"$scratch/config.out" 2>&1 ||
  fail "the installed command refuses the example config: $(cat "$scratch/config.out")"

# 3. Consumers. Only libcurl's .pc file is visible to the shared builds.
mkdir "$scratch/pc-curl-only"
ln -s "$(pkg-config --variable=pcfiledir libcurl)/libcurl.pc" "$scratch/pc-curl-only/"
curl_only=(env PKG_CONFIG_LIBDIR="$scratch/pc-curl-only" PKG_CONFIG_PATH="$libdir/pkgconfig")
needs_shared_lib() { grep -q 'NEEDED.*\[libcurlcache\.so\.0\]' <<<"$(readelf -d "$1")"; }

# find_package, shared.
"${curl_only[@]}" cmake -S "$source_dir/consumer" -B "$scratch/fp-shared" \
  -DCMAKE_PREFIX_PATH="$prefix" >"$scratch/fp-shared.log" || fail "find_package shared: $(cat "$scratch/fp-shared.log")"
! grep -q '^CMAKE_CXX_COMPILER:' "$scratch/fp-shared/CMakeCache.txt" || fail "the consumer enables C++"
cmake --build "$scratch/fp-shared" >/dev/null
needs_shared_lib "$scratch/fp-shared/consumer" || fail "find_package shared: not linked to libcurlcache.so.0"
"$scratch/fp-shared/consumer" >/dev/null

# find_package, static: asking for the component without the libraries it needs is a clear
# configure error; with them it links with the C linker alone.
if "${curl_only[@]}" cmake -S "$source_dir/consumer" -B "$scratch/fp-static-missing" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCONSUMER_STATIC=ON >"$scratch/fp-static-missing.log" 2>&1; then
  fail "find_package(curlcache COMPONENTS static) succeeds without sqlite3's development files"
fi
grep -q "sqlite3" "$scratch/fp-static-missing.log" || fail "the static component's error names nothing missing"
cmake -S "$source_dir/consumer" -B "$scratch/fp-static" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCONSUMER_STATIC=ON >"$scratch/fp-static.log" || fail "find_package static: $(cat "$scratch/fp-static.log")"
! grep -q '^CMAKE_CXX_COMPILER:' "$scratch/fp-static/CMakeCache.txt" || fail "the consumer enables C++"
cmake --build "$scratch/fp-static" >/dev/null
! needs_shared_lib "$scratch/fp-static/consumer" || fail "find_package static: linked to libcurlcache.so.0"
"$scratch/fp-static/consumer" >/dev/null

# pkg-config, shared.
cc_flags=(-std=c11 -Wall -Wextra -Werror)
# shellcheck disable=SC2046
cc "${cc_flags[@]}" -o "$scratch/pc-shared" "$source_dir/consumer/consumer.c" \
  $("${curl_only[@]}" pkg-config --cflags --libs curlcache)
needs_shared_lib "$scratch/pc-shared" || fail "pkg-config shared: not linked to libcurlcache.so.0"
LD_LIBRARY_PATH=$libdir "$scratch/pc-shared" >/dev/null

# pkg-config --static. The flags come from curlcache.pc (Libs.private) plus, through
# Requires, libcurl's own Libs.private. Debian's libcurl names there libraries whose -dev
# packages libcurl4-openssl-dev does not pull in (nghttp2, rtmp, ssh2, ...), so where they
# are missing libcurl stands in with its private list emptied: what is tested is that
# curlcache's own list is complete. -l:libcurlcache.a picks the archive although the .so
# sits next to it, as a program that links only curlcache statically does.
static_pc_path=$libdir/pkgconfig
printf 'int main(void) { return 0; }\n' >"$scratch/probe.c"
# shellcheck disable=SC2046
if ! cc -o "$scratch/probe" "$scratch/probe.c" $(pkg-config --static --libs libcurl) 2>/dev/null; then
  mkdir "$scratch/pc-curl-dynamic"
  sed '/^Libs\.private:/d' "$(pkg-config --variable=pcfiledir libcurl)/libcurl.pc" \
    >"$scratch/pc-curl-dynamic/libcurl.pc"
  static_pc_path=$static_pc_path:$scratch/pc-curl-dynamic
fi
read -ra static_flags <<<"$(PKG_CONFIG_PATH=$static_pc_path pkg-config --static --cflags --libs curlcache)"
for i in "${!static_flags[@]}"; do
  if [ "${static_flags[$i]}" = -lcurlcache ]; then
    static_flags[i]=-l:libcurlcache.a
  fi
done
cc "${cc_flags[@]}" -o "$scratch/pc-static" "$source_dir/consumer/consumer.c" "${static_flags[@]}"
! needs_shared_lib "$scratch/pc-static" || fail "pkg-config --static: linked to libcurlcache.so.0"
"$scratch/pc-static" >/dev/null

# 4. Uninstall.
cmake --build "$build_dir" --target uninstall >"$scratch/uninstall.log" ||
  fail "uninstall: $(cat "$scratch/uninstall.log")"
left=$(find "$prefix" ! -type d)
test -z "$left" || fail "uninstall left: $left"
for dir in include/curlcache "$libdir_rel/cmake/curlcache" share/doc/curlcache; do
  test ! -e "$prefix/$dir" || fail "uninstall left the folder $dir"
done
echo "install: relocatable command, docs, four C consumers (find_package and pkg-config," \
  "shared and static) and uninstall work"
