#!/usr/bin/env python3
"""A hit costs no durable I/O: a `curl` process answered from the default SQLite cache
makes no fsync/fdatasync call and sends nothing to the origin (traced with strace). A miss
process, which stores, may sync. Regression test for hit processes that checkpointed the
WAL at exit (3 fdatasync calls and a recreated WAL per cached curl run).
Nor does a hit process write its access time when the entry's stored one is recent (less
than 10 minutes old): the WAL stays empty over many hit processes (each process's first
connection reads the whole WAL back, so hit processes that each appended to it made every
later process slower). A hit on an entry last used longer ago does write its time.

usage: hit_io.py --shim PATH [--self-check]
  --self-check  trace the miss instead of the hit and pass only if syncs are seen, proving
                the trace can see them."""
import glob
import os
import re
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SYNC = re.compile(r"^\d+\s+(fsync|fdatasync|sync_file_range)\(", re.M)


def traced_syncs(argv, cwd, env, trace):
    proc = subprocess.run(["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync,sync_file_range",
                           "-o", trace] + argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=harness.RUN_TIMEOUT)
    with open(trace) as f:
        return proc.returncode, SYNC.findall(f.read())


def access_time_checks(argv, cwd, env):
    """Hits on a recently used entry write nothing (an empty WAL after them); a hit on an
    entry whose stored access time is older than the resolution writes the new time."""
    failures = []
    databases = glob.glob(os.path.join(env["XDG_CACHE_HOME"], "curlcache", "*.sqlite"))
    if len(databases) != 1:
        return ["expected one cache database, found %r" % databases]
    db = databases[0]
    for _ in range(3):
        subprocess.run(argv, cwd=cwd, env=env, check=True, timeout=harness.RUN_TIMEOUT)
    wal = os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0
    if wal != 0:
        failures.append("hit processes left %d bytes in the WAL (access times written)" % wal)
    old = 11 * 60 * 1000 * 1000  # older than the 10-minute resolution, in microseconds
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE entries SET accessed = accessed - ?", (old,))
        before = conn.execute("SELECT max(accessed) FROM entries").fetchone()[0]
    conn.close()
    subprocess.run(argv, cwd=cwd, env=env, check=True, timeout=harness.RUN_TIMEOUT)
    conn = sqlite3.connect(db)
    after = conn.execute("SELECT max(accessed) FROM entries").fetchone()[0]
    conn.close()
    if after < before + old - 60 * 1000 * 1000:
        failures.append("a hit on an entry last used 11 minutes ago did not write its access "
                        "time (%d -> %d)" % (before, after))
    return failures


def main():
    args = sys.argv[1:]
    shim = args[args.index("--shim") + 1] if "--shim" in args else None
    self_check = "--self-check" in args
    if shutil.which("strace") is None:
        print("SKIP: strace is not installed (scripts/install-deps.sh installs it)")
        return harness.SKIP
    shim = harness.shim_or_skip(shim, harness_only=False)
    with harness.Scratch() as scratch, harness.Origin(scratch) as origin:
        env = harness.clean_env(os.path.join(scratch, "home"))
        env["LD_PRELOAD"] = shim
        url = origin.base + "/bytes/4096"
        argv = ["curl", "-s", "-o", os.devnull, url]
        trace = os.path.join(scratch, "trace")
        code, miss_syncs = traced_syncs(argv, scratch, env, trace)
        if code != 0:
            print("FAIL: the miss run exited %d" % code)
            return 1
        code, hit_syncs = traced_syncs(argv, scratch, env, trace)
        requests = origin.count()
        if self_check:
            ok = len(miss_syncs) > 0
            print("%s: the trace sees %d sync calls in a storing process"
                  % ("ok" if ok else "FAIL", len(miss_syncs)))
            return 0 if ok else 1
        failures = []
        if code != 0:
            failures.append("the hit run exited %d" % code)
        if requests != 1:
            failures.append("the origin saw %d requests, expected 1 (the miss)" % requests)
        if hit_syncs:
            failures.append("the hit process made %d sync calls: %s"
                            % (len(hit_syncs), ", ".join(hit_syncs)))
        if not self_check:
            failures += access_time_checks(argv, scratch, env)
        for failure in failures:
            print("FAIL: " + failure)
        if not failures:
            print("ok: the hit made 0 sync calls and no request (the miss made %d sync calls)"
                  % len(miss_syncs))
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
