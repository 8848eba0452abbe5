#!/usr/bin/env bash
# `make package` gives a Debian package that installs, works and goes away cleanly.
#   deb_test.sh BUILD_DIR CPACK VERSION
# Packs the already-built tree with cpack (no rebuild) into a scratch folder, checks the
# control fields, installs the package with dpkg -i, then: the command runs with no
# LD_LIBRARY_PATH, ldconfig knows libcurlcache.so.0 (its trigger), a C program builds against
# the installed curlcache.pc and runs, man finds the manual pages (and the shell completion
# is there), and every library the installed files load comes
# from a package named in Depends; `curlcache run` preloads the installed shim. Then
# dpkg -r removes it and every file it brought.
# Needs root and dpkg (CI runs as root on Debian 12): skips (77) otherwise, and when a
# curlcache package or one of its files is already on this machine (a real install is never
# touched). The package is purged at exit even when a check fails.
# (ldconfig -p is read whole before grep: grep -q quitting early would fail the pipe.)
set -euo pipefail
build_dir=$(cd "$1" && pwd)
cpack=$2
version=$3
source_dir=$(cd "$(dirname "$0")" && pwd)

skip() {
  echo "deb: skipped: $*"
  exit 77
}
fail() {
  echo "deb: $*" >&2
  exit 1
}
[ "$(id -u)" -eq 0 ] || skip "dpkg -i needs root"
for tool in dpkg dpkg-deb dpkg-query flock ldconfig; do
  command -v "$tool" >/dev/null || skip "$tool is missing"
done

# Other build trees' test runs on this machine may do the same at the same time, and dpkg
# refuses to run twice: one at a time, on a lock taken on dpkg's own folder (no new file).
exec 9</var/lib/dpkg
flock -w 300 9 || fail "another run holds the lock on /var/lib/dpkg"
if dpkg-query -W curlcache >/dev/null 2>&1; then
  skip "a curlcache package is already installed"
fi

scratch=$(mktemp -d)
manifest=$build_dir/install_manifest.txt
if [ -f "$manifest" ]; then
  cp -p "$manifest" "$scratch/manifest.saved"
fi
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then
    dpkg -P curlcache >/dev/null 2>&1 || true
  fi
  if [ -f "$scratch/manifest.saved" ]; then
    cp -p "$scratch/manifest.saved" "$manifest"
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE # cleans up on a signal too
unset LD_LIBRARY_PATH PKG_CONFIG_PATH
export XDG_CACHE_HOME=$scratch/cache

# Pack.
"$cpack" -G DEB --config "$build_dir/CPackConfig.cmake" -B "$scratch/pkg" >"$scratch/cpack.log" 2>&1 ||
  fail "cpack: $(cat "$scratch/cpack.log")"
# cpack installs the tree for itself, which rewrote the tree's install_manifest.txt: the
# one `make uninstall` reads must be the last `make install`'s, as before.
if [ -f "$scratch/manifest.saved" ]; then
  cmp -s "$manifest" "$scratch/manifest.saved" || fail "cpack changed $manifest"
elif [ -e "$manifest" ]; then
  fail "cpack left $manifest"
fi
debs=("$scratch"/pkg/*.deb)
if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
  fail "cpack made no single .deb"
fi
deb=${debs[0]}

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = curlcache ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), the project says $version"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
depends=$(field Depends)
# Package names only: "libcurl4 (>= 7), a | b" -> libcurl4 a b
read -ra depends_names <<<"$(echo "$depends" | sed -e 's/([^)]*)//g' -e 's/[,|]/ /g')"
for name in libcurl4 libsqlite3-0 libxxhash0; do
  [[ " ${depends_names[*]} " == *" $name "* ]] || fail "Depends lacks $name: $depends"
done

# Files already on this machine would be taken over by dpkg, then deleted by dpkg -r.
dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's|^\./|/|; /[^/]$/p' >"$scratch/files"
while read -r path; do
  if [ -e "$path" ] || [ -L "$path" ]; then
    skip "$path already exists (installed by other means?)"
  fi
done <"$scratch/files"
grep -qx /usr/bin/curlcache "$scratch/files" || fail "the package has no /usr/bin/curlcache"
if ldconfig -p >"$scratch/ld.cache" && grep -q 'libcurlcache\.so\.0 ' "$scratch/ld.cache"; then
  skip "ldconfig already knows a libcurlcache.so.0 (installed by other means?)"
fi

# Install.
installed=1
dpkg -i "$deb" >"$scratch/dpkg-i.log" 2>&1 || fail "dpkg -i: $(cat "$scratch/dpkg-i.log")"
[ "$(dpkg-query -W -f='${Status}' curlcache)" = "install ok installed" ] || fail "not installed"
/usr/bin/curlcache --version >/dev/null || fail "the installed command does not start"
# The manual pages and shell completion are where man and the shells look for them.
for path in /usr/share/man/man1/curlcache.1 /usr/share/man/man5/curlcache.toml.5 \
  /usr/share/man/man3/libcurlcache.3 /usr/share/bash-completion/completions/curlcache \
  /usr/share/zsh/vendor-completions/_curlcache; do
  grep -qx "$path" "$scratch/files" || fail "the package has no $path"
done
[ "$(man -w curlcache.toml)" = /usr/share/man/man5/curlcache.toml.5 ] ||
  fail "man -w curlcache.toml does not find the installed page"
# shellcheck disable=SC2016
shim=$(/usr/bin/curlcache run -- sh -c 'echo "$LD_PRELOAD"') || fail "curlcache run fails"
[ "$(readlink -f "$shim")" = /usr/lib/libcurlcache-preload.so ] || fail "curlcache run preloads '$shim'"
ldconfig -p >"$scratch/ld.cache"
grep -q 'libcurlcache\.so\.0 ' "$scratch/ld.cache" || fail "ldconfig does not know libcurlcache.so.0"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$scratch/consumer" "$source_dir/consumer/consumer.c" \
  $(pkg-config --cflags --libs curlcache) || fail "cannot build against the installed package"
"$scratch/consumer" >/dev/null || fail "a program linked to the installed library fails"

# Every shared library the installed programs and libraries name (NEEDED; what those load
# in turn is their packages' business) belongs to a package in Depends, or to curlcache.
# (Debian 12 merged /lib into /usr/lib, and dpkg knows each file by one of the two names.)
owner() {
  local path=$1 real out
  real=$(readlink -f "$path")
  for candidate in "$path" "$real" "${real#/usr}" "/usr$real"; do
    if out=$(dpkg-query -S "$candidate" 2>/dev/null); then
      out=${out%%$'\n'*}
      echo "${out%%:*}"
      return 0
    fi
  done
  return 1
}
needed() {
  readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' | tr '\n' ' '
}
while read -r path; do
  case $path in
    /usr/bin/* | *.so | *.so.*) ;;
    *) continue ;;
  esac
  [ -L "$path" ] && continue
  while read -r lib; do
    pkg=$(owner "$lib") || fail "$path loads $lib, which no package owns"
    [ "$pkg" = curlcache ] && continue
    [[ " ${depends_names[*]} " == *" $pkg "* ]] || fail "$path loads $lib from $pkg, not in Depends: $depends"
  done < <(ldd "$path" | awk -v needed=" $(needed "$path") " \
    '$2 == "=>" && $3 ~ /^\// && index(needed, " " $1 " ") { print $3 }')
done <"$scratch/files"

# Remove.
dpkg -r curlcache >"$scratch/dpkg-r.log" 2>&1 || fail "dpkg -r: $(cat "$scratch/dpkg-r.log")"
if dpkg-query -W -f='${Status}' curlcache 2>/dev/null | grep -q ' installed$'; then
  fail "still installed after dpkg -r"
fi
while read -r path; do
  if [ -e "$path" ] || [ -L "$path" ]; then
    fail "dpkg -r left $path"
  fi
done <"$scratch/files"
ldconfig -p >"$scratch/ld.cache"
! grep -q 'libcurlcache\.so\.0 ' "$scratch/ld.cache" || fail "ldconfig still lists libcurlcache.so.0"
echo "deb: $(basename "$deb") installs (command, ldconfig, a C program, Depends complete)" \
  "and removes cleanly"
