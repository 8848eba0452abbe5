#!/usr/bin/env python3
"""bench-stream (issue 11): the peak memory of a large hit, and the same download without
the shim, measured outside the program: /usr/bin/time -f %M (maximum resident set size,
KiB) around the real curl CLI,

    /usr/bin/time -f %M curl -s -o /dev/null http://127.0.0.1:PORT/stream/1073741824

against scripts/origin.py (/stream/N makes its body while sending it), for the sqlite,
filesystem and redis backends (a redis-server on a free port, started and stopped here).
Per backend: the download without the shim, the miss that stores it and the hit (the
origin's request count proves it was one), and the hit's wall time. The memory backend
lives in one process, so it is measured in-process: pycurl under the shim downloads twice,
and the figure is how far the hit raised the process's peak (VmHWM, reset before the hit
through /proc/self/clear_refs) above what the stored value already occupied.

Target: a hit peaks at <= 64 MiB (issue 11). Prints met / NOT met per backend.

    bench_stream.py --shim PATH [--size BYTES] [--json FILE]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ORIGIN = os.path.join(HERE, "..", "..", "scripts", "origin.py")
sys.path.insert(0, os.path.join(HERE, "..", "shim"))
from bench_common import free_port  # noqa: E402

TARGET_KB = 64 << 10

IN_PROCESS = r"""
import os, sys, pycurl
def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
def fetch(url):
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    n = [0]
    def write(b):
        n[0] += len(b)
    c.setopt(pycurl.WRITEFUNCTION, write)
    c.perform()
    c.close()
    return n[0]
url = sys.argv[1]
fetch(url)                       # the miss: the memory backend now holds the value
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                 # resets VmHWM to the current RSS
got = fetch(url)
print(got, before, status("VmHWM"))
"""


class Proc:
    def __init__(self, argv, cwd):
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc.stdout.close()


def start_origin(scratch):
    p = Proc([sys.executable, ORIGIN], scratch)
    port = int(p.proc.stdout.readline())
    return p, port


def start_redis(scratch):
    # A 1 GiB value exceeds redis-server's defaults (512 MB strings, 1 GB query buffer).
    port = free_port()
    p = Proc(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--dir", scratch, "--proto-max-bulk-len", "4gb",
              "--client-query-buffer-limit", "4gb"], scratch)
    for line in p.proc.stdout:
        if b"Ready to accept connections" in line:
            return p, port
    raise RuntimeError("redis-server did not start")


def count(port):
    out = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/__count" % port],
                         stdout=subprocess.PIPE, check=True).stdout
    return int(out)


def env_for(backend, base, redis_port, shim):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CURLCACHE_") and k != "LD_PRELOAD"}
    env.update({"HOME": base, "XDG_CACHE_HOME": base + "/cache",
                "XDG_CONFIG_HOME": base + "/config", "NO_PROXY": "*",
                "CURLCACHE_BACKEND": backend, "CURLCACHE_MAX_ENTRY_SIZE": str(8 << 30),
                "CURLCACHE_MAX_SIZE": "0"})
    if backend == "sqlite":
        env["CURLCACHE_NAME"] = base + "/c.sqlite"
    elif backend == "filesystem":
        env["CURLCACHE_NAME"] = base + "/fs"
    elif backend == "redis":
        env["CURLCACHE_REDIS_URL"] = "redis://127.0.0.1:%d/0" % redis_port
    if shim:
        env["LD_PRELOAD"] = shim
    return env


def peak(argv, env, cwd):
    out = os.path.join(cwd, "time.txt")
    start = time.monotonic()
    rc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + argv, env=env, cwd=cwd,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    took = time.monotonic() - start
    with open(out) as f:
        return rc, int(f.read().split()[-1]), took


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shim", required=True)
    parser.add_argument("--size", type=int, default=1 << 30)
    parser.add_argument("--json")
    args = parser.parse_args()
    args.shim = os.path.abspath(args.shim)  # the runs' working folders are elsewhere
    for program in ("curl", "/usr/bin/time", "redis-server"):
        if shutil.which(program) is None:
            print("bench-stream: %s is not installed (scripts/install-deps.sh)" % program)
            return 1
    results = []
    scratch = tempfile.mkdtemp(prefix="curlcache-bench-stream-")
    origin = redis = None
    try:
        origin, port = start_origin(scratch)
        redis, redis_port = start_redis(scratch)
        url = "http://127.0.0.1:%d/stream/%d" % (port, args.size)
        curl = ["curl", "-s", "-o", "/dev/null", url]
        print("bench-stream: a %d MiB body; command per figure:" % (args.size >> 20))
        print("  /usr/bin/time -f %%M curl -s -o /dev/null %s   (LD_PRELOAD=shim for miss/hit)"
              % url)
        print("%-11s %12s %12s %12s %10s %9s  %s" % ("backend", "no shim KB", "miss KB",
                                                       "hit KB", "no shim s", "hit s",
                                                       "hit <= 64 MiB"))
        for backend in ("sqlite", "filesystem", "redis"):
            base = os.path.join(scratch, backend)
            os.makedirs(base)
            _, plain_kb, plain_s = peak(curl, env_for(backend, base, redis_port, None), base)
            miss_rc, miss_kb, _ = peak(curl, env_for(backend, base, redis_port, args.shim), base)
            before = count(port)
            hit_rc, hit_kb, hit_s = peak(curl, env_for(backend, base, redis_port, args.shim),
                                         base)
            was_hit = count(port) == before and hit_rc == 0 and miss_rc == 0
            met = was_hit and hit_kb <= TARGET_KB
            print("%-11s %12d %12d %12d %10.2f %9.2f  %s%s" % (
                backend, plain_kb, miss_kb, hit_kb, plain_s, hit_s, "met" if met else "NOT met",
                "" if was_hit else " (not a hit)"))
            results.append({"backend": backend, "no_shim_kb": plain_kb, "miss_kb": miss_kb,
                            "hit_kb": hit_kb, "hit_s": hit_s, "no_shim_s": plain_s,
                            "hit": was_hit, "met": met})
            if backend == "redis":
                subprocess.run(["redis-cli", "-p", str(redis_port), "FLUSHALL"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(base, ignore_errors=True)
        base = os.path.join(scratch, "memory")
        os.makedirs(base)
        out = subprocess.run(["/usr/bin/python3", "-c", IN_PROCESS, url],
                             env=env_for("memory", base, redis_port, args.shim), cwd=base,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.split()
        if len(out) == 3 and int(out[0]) == args.size:
            added = int(out[2]) - int(out[1])
            met = added <= TARGET_KB
            print("%-11s %12s %12s %12s %10s %9s  %s  (in-process: the hit raised the peak by %d"
                  " KB over the %d KB the process held)" % ("memory", "-", "-", "+%d" % added,
                                                            "-", "-", "met" if met else "NOT met",
                                                            added, int(out[1])))
            results.append({"backend": "memory", "hit_added_kb": added,
                            "rss_before_hit_kb": int(out[1]), "met": met})
        else:
            print("memory      in-process measurement failed (pycurl missing?)")
    finally:
        for p in (redis, origin):
            if p is not None:
                p.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "target_kb": TARGET_KB, "results": results}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
