#!/usr/bin/env bash
# Runs the libFuzzer targets of a CURLCACHE_FUZZ build (`make fuzz`, `make fuzz-ci`).
#   run.sh BUILD SECONDS [NAME...]     (default: every fuzz_* binary in BUILD/bin)
# Each target runs SECONDS under ASan + UBSan on its seed corpus (tests/fuzz/corpus/NAME,
# read only) plus a working corpus that grows across runs (BUILD/fuzz/corpus/NAME). A crash,
# leak, timeout or sanitizer report fails the run; its reproducer is kept in
# BUILD/fuzz/artifacts/NAME/ and the way to replay it is printed (README.md here says how to
# turn it into a regression seed). A table of executions per target ends the output.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD SECONDS [NAME...]}
seconds=${2:?usage: run.sh BUILD SECONDS [NAME...]}
shift 2
build=$(cd "$build" && pwd)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for bin in "$build"/bin/fuzz_*; do
        names+=("${bin##*/fuzz_}")
    done
fi
if [ ${#names[@]} -eq 0 ]; then
    echo "fuzz: no fuzz targets in $build/bin (build the target fuzz-targets)" >&2
    exit 1
fi

# Reports name functions and lines only with a symbolizer: clang 19's runtime does not find
# Debian's llvm-symbolizer on its own.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
    ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-19 || command -v llvm-symbolizer || true)
    export ASAN_SYMBOLIZER_PATH
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
summary=()
failed=0
for name in "${names[@]}"; do
    bin=$build/bin/fuzz_$name
    seeds=$here/corpus/$name
    work=$build/fuzz/corpus/$name
    artifacts=$build/fuzz/artifacts/$name
    log=$build/fuzz/logs/$name.log
    if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
        echo "fuzz: $name: no binary $bin or no seed corpus $seeds" >&2
        failed=1
        continue
    fi
    mkdir -p "$work" "$artifacts" "${log%/*}"
    args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$artifacts/")
    [ -f "$here/$name.dict" ] && args+=(-dict="$here/$name.dict")
    echo "fuzz: $name for ${seconds}s (log: $log)"
    start=$build/fuzz/started-$name
    touch "$start"
    "$bin" "${args[@]}" "$work" "$seeds" >"$log" 2>&1
    status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    result=ok
    if [ $status -ne 0 ]; then
        result="FAILED (exit $status)"
        failed=1
        echo "fuzz: $name FAILED; the report:" >&2
        # The report: from the sanitizer's or libFuzzer's first error line on.
        sed -n '/ERROR: \|runtime error\|invariant failed\|^==[0-9]*== *ERROR/,$p' "$log" |
            grep -v '^#[0-9]' | head -n 80 >&2
        find "$artifacts" -type f -newer "$start" | while read -r reproducer; do
            echo "fuzz: reproducer: $reproducer" >&2
            echo "fuzz:   replay it: $bin $reproducer" >&2
        done
        echo "fuzz: fix the bug, then copy the reproducer to tests/fuzz/corpus/$name/ under a" \
             "name that says what it is (tests/fuzz/README.md)" >&2
    fi
    summary+=("$(printf '%-15s %12s execs %8s exec/s  %s' "$name" "${execs:-?}" "${rate:-?}" "$result")")
done
echo "fuzz: summary (${seconds}s per target)"
printf '  %s\n' "${summary[@]}"
exit $failed
