#!/usr/bin/env bash
# `make run`: shows curlcache at work on the unmodified curl program.
#
#   scripts/demo.sh BUILD_DIR
#
# Starts the local test origin (scripts/origin.py) on a free 127.0.0.1 port, then runs
#   curl -s -o /dev/null URL
# twice with LD_PRELOAD=BUILD_DIR/lib/libcurlcache-preload.so and the default SQLite cache.
# The first run is a MISS (curl talks to the origin, the shim stores the response); the
# second is a HIT (answered from the cache: the origin's request counter does not move).
# The origin waits 250 ms before each answer, standing in for a server far away.
# The cache lives in $XDG_CACHE_HOME when you set it, else in a scratch folder removed at
# the end. Nothing here touches the internet.
set -euo pipefail

build=${1:?usage: scripts/demo.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
shim=$(cd "$build" && pwd)/lib/libcurlcache-preload.so
if [ ! -f "$shim" ]; then
  echo "demo: $shim is missing: build the curlcache-preload target first" >&2
  exit 1
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/curlcache-demo.XXXXXX")
origin_pid=""
cleanup() {
  if [ -n "$origin_pid" ]; then
    kill "$origin_pid" 2>/dev/null || true
    wait "$origin_pid" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

if [ -n "${XDG_CACHE_HOME:-}" ]; then
  cache_home=$XDG_CACHE_HOME
  cache_note="your XDG_CACHE_HOME, kept after the demo"
else
  cache_home=$scratch/cache
  cache_note="a scratch XDG_CACHE_HOME, removed after the demo"
fi
mkdir -p "$cache_home"

# The origin prints its port once it accepts connections: read it from a FIFO, no sleeping.
mkfifo "$scratch/ready"
python3 "$here/origin.py" > "$scratch/ready" &
origin_pid=$!
read -r port < "$scratch/ready"
base=http://127.0.0.1:$port
url=$base/slow/250

# Control requests never go through the shim.
count() { env -u LD_PRELOAD curl -s --noproxy '*' "$base/__count"; }

now_ns() { date +%s%N; }

# Runs curl through the shim and prints one line about it: MISS or HIT (from the origin's
# request counter, not assumed), the wall time, curl's status and the counter.
runs_ok=0
through_shim() {
  local label=$1 before after t0 t1 out rc=0 verdict
  before=$(count)
  t0=$(now_ns)
  out=$(env -u CURLCACHE_CONFIG XDG_CACHE_HOME="$cache_home" LD_PRELOAD="$shim" \
        curl -s --noproxy '*' -o /dev/null -w 'HTTP %{http_code}, %{size_download} bytes' \
        "$url") || rc=$?
  t1=$(now_ns)
  after=$(count)
  last_ms=$(( (t1 - t0) / 1000000 ))
  if [ "$rc" -ne 0 ]; then
    verdict="FAILED (curl exit code $rc)"
  elif [ "$after" -gt "$before" ]; then
    verdict="MISS"; runs_ok=$((runs_ok + 1))
  else
    verdict="HIT "; runs_ok=$((runs_ok + 1))
  fi
  printf '%s: %s  %5d ms  (%s)  origin requests so far: %d\n' \
    "$label" "$verdict" "$last_ms" "$out" "$after"
}

echo "curlcache demo"
echo "  program: curl -s -o /dev/null $url"
echo "  shim:    LD_PRELOAD=$shim"
echo "  cache:   SQLite (the default backend) under $cache_home"
echo "           ($cache_note)"
echo "  origin:  scripts/origin.py on $base, pid $origin_pid, answers after 250 ms"
echo

through_shim "run 1"
ms1=$last_ms; n1=$(count)
through_shim "run 2"
ms2=$last_ms; n2=$(count)
echo

files=$(find "$cache_home" -type f 2>/dev/null | head -5)
if [ -n "$files" ]; then
  echo "cache files:"
  echo "$files" | sed 's/^/  /'
fi
if [ "$runs_ok" -eq 2 ] && [ "$n1" -eq 1 ] && [ "$n2" -eq 1 ]; then
  awk -v a="$ms1" -v b="$ms2" 'BEGIN { if (b < 1) b = 1
    printf "speed-up: %.1fx (the second run never reached the origin)\n", a / b }'
  echo
  echo "The same unmodified curl ran twice. The shim stored the first answer in the cache"
  echo "and replayed it the second time, byte for byte, without opening a connection."
  echo "Try it on any program: LD_PRELOAD=$shim <program>"
else
  echo "unexpected: the origin saw $n1 request(s) after run 1 and $n2 after run 2" \
       "(expected 1 and 1, both runs succeeding): the shim did not cache as it should" >&2
  exit 1
fi
