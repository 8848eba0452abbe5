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

The plugins (--plugin-dir), each against a server started here on a free loopback port
and stopped by PID, exactly as their tests start them: postgres (a private PostgreSQL),
dynamodb (dynalite), mongodb and gridfs (tests/plugins/mongo/mongo_server.py, the Python
test server over mongomock). Those servers are slow with large values (dynalite's base64
JSON, mongomock's Python: 1 GiB takes 1-2 minutes each way), so --plugin-sizes (default:
--size) can measure the plugins at other sizes, e.g. 64 MiB and 256 MiB side by side to show
that the hit's peak does not grow with the size.

Target: a hit peaks at <= 64 MiB (issue 11). Prints met / NOT met per backend and size.

    bench_stream.py --shim PATH [--size BYTES] [--plugin-dir DIR] [--plugin-sizes N,N]
                    [--backends sqlite,...] [--json FILE]
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
TESTS = os.path.join(HERE, "..", "..", "tests")
sys.path.insert(0, os.path.join(HERE, "..", "shim"))
from bench_common import free_port  # noqa: E402
BUILT_IN = ("sqlite", "filesystem", "redis", "memory")
PLUGINS = ("postgres", "dynamodb", "mongodb", "gridfs")

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


def env_for(backend, base, redis_port, shim, extra=None):
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
    env.update(extra or {})
    if shim:
        env["LD_PRELOAD"] = shim
    return env


class PluginServer:
    """The server of one plugin, started as the plugin's tests start it (their classes),
    stopped by PID; env() gives the variables that point the plugin at it. The plugins'
    timeouts are raised: the Python and node test servers answer a large value slowly."""

    def __init__(self, backend, plugin_dir):
        sys.path[:0] = [os.path.join(TESTS, "plugins"), os.path.join(TESTS, "plugins", "mongo")]
        self.backend = backend
        self.env = {"CURLCACHE_PLUGIN_DIR": plugin_dir}
        name = backend.upper()
        if backend == "postgres":
            from shim_postgres import Postgres
            self.server = Postgres()
            self.server.start()
            self.env.update({"CURLCACHE_POSTGRES_URL": self.server.url,
                             "CURLCACHE_POSTGRES_TABLE": "bench_stream",
                             "CURLCACHE_POSTGRES_STATEMENT_TIMEOUT": "120s"})
        elif backend == "dynamodb":
            from shim_dynamodb import DEFAULT_MODULE, Dynalite
            self.server = Dynalite(DEFAULT_MODULE)
            self.server.start()
            self.env.update({"CURLCACHE_DYNAMODB_ENDPOINT": self.server.endpoint,
                             "CURLCACHE_DYNAMODB_REGION": "us-east-1",
                             "CURLCACHE_DYNAMODB_TABLE": "bench_stream",
                             "CURLCACHE_DYNAMODB_CREATE_TABLE": "true",
                             "CURLCACHE_DYNAMODB_REQUEST_TIMEOUT": "120s",
                             "AWS_ACCESS_KEY_ID": "AKIDBENCHSTREAM",
                             "AWS_SECRET_ACCESS_KEY": "bench-stream-secret"})
        else:
            from shim_mongodb import Mongo
            self.server = Mongo(os.path.join(TESTS, "plugins", "mongo", "mongo_server.py"))
            self.server.start()
            self.env.update({"CURLCACHE_%s_URL" % name: self.server.url,
                             "CURLCACHE_%s_DATABASE" % name: "bench_stream",
                             "CURLCACHE_%s_OPERATION_TIMEOUT" % name: "120s"})
        self.env["CURLCACHE_%s_CONNECT_TIMEOUT" % name] = "10s"

    def stop(self):
        if self.backend == "postgres":
            self.server.stop()
            self.server.remove()
        else:
            self.server.kill()


def peak(argv, env, cwd):
    out = os.path.join(cwd, "time.txt")
    start = time.monotonic()
    run = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + argv, env=env, cwd=cwd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.monotonic() - start
    with open(out) as f:
        return run.returncode, int(f.read().split()[-1]), took, run.stderr.decode(errors="replace")


def row(name, plain, miss, hit, was_hit):
    met = was_hit and hit[1] <= TARGET_KB
    print("%-14s %12d %12d %12d %10.2f %9.2f %9.2f  %s%s" % (
        name, plain[1], miss[1], hit[1], plain[2], miss[2], hit[2], "met" if met else "NOT met",
        "" if was_hit else " (not a hit)"))
    for what, run in (("miss", miss), ("hit", hit)):
        if run[3].strip():  # curlcache's warnings (one per problem), the cause of a non-hit
            print("    %s: %s" % (what, run[3].strip().splitlines()[0]))
    return {"no_shim_kb": plain[1], "miss_kb": miss[1], "hit_kb": hit[1], "no_shim_s": plain[2],
            "miss_s": miss[2], "hit_s": hit[2], "hit": was_hit, "met": met}


def measure(backend, base, port, size, redis_port, shim, extra=None):
    """The download without the shim, the miss that stores it, the hit: (rc, KB, s) each."""
    url = "http://127.0.0.1:%d/stream/%d" % (port, size)
    curl = ["curl", "-s", "-o", "/dev/null", url]
    plain = peak(curl, env_for(backend, base, redis_port, None, extra), base)
    miss = peak(curl, env_for(backend, base, redis_port, shim, extra), base)
    before = count(port)
    hit = peak(curl, env_for(backend, base, redis_port, shim, extra), base)
    was_hit = count(port) == before and hit[0] == 0 and miss[0] == 0
    return plain, miss, hit, was_hit


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shim", required=True)
    parser.add_argument("--size", type=int, default=1 << 30)
    parser.add_argument("--plugin-dir")
    parser.add_argument("--plugin-sizes", help="bytes, comma-separated (default: --size)")
    parser.add_argument("--backends", default=",".join(BUILT_IN + PLUGINS))
    parser.add_argument("--json")
    args = parser.parse_args()
    args.shim = os.path.abspath(args.shim)  # the runs' working folders are elsewhere
    backends = args.backends.split(",")
    plugin_sizes = [int(n) for n in (args.plugin_sizes or str(args.size)).split(",")]
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
        print("bench-stream: a %d MiB body (plugins: %s MiB); command per figure:"
              % (args.size >> 20, ", ".join(str(n >> 20) for n in plugin_sizes)))
        print("  /usr/bin/time -f %M curl -s -o /dev/null http://127.0.0.1:PORT/stream/SIZE"
              "   (LD_PRELOAD=shim for miss/hit)")
        print("%-14s %12s %12s %12s %10s %9s %9s  %s" % ("backend", "no shim KB", "miss KB",
                                                            "hit KB", "no shim s", "miss s",
                                                            "hit s", "hit <= 64 MiB"))
        for backend in ("sqlite", "filesystem", "redis"):
            if backend not in backends:
                continue
            base = os.path.join(scratch, backend)
            os.makedirs(base)
            result = row(backend, *measure(backend, base, port, args.size, redis_port, args.shim))
            results.append(dict(result, backend=backend, size=args.size))
            if backend == "redis":
                subprocess.run(["redis-cli", "-p", str(redis_port), "FLUSHALL"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(base, ignore_errors=True)
        for backend in PLUGINS:
            if backend not in backends:
                continue
            if not args.plugin_dir:
                print("%-14s not measured: no --plugin-dir" % backend)
                continue
            try:
                server = PluginServer(backend, os.path.abspath(args.plugin_dir))
            except Exception as error:  # a server that is not installed: say so, go on
                print("%-14s not measured: its server did not start (%s)" % (backend, error))
                continue
            try:
                for size in plugin_sizes:
                    base = os.path.join(scratch, "%s-%d" % (backend, size))
                    os.makedirs(base)
                    name = "%s %dM" % (backend, size >> 20)
                    result = row(name, *measure(backend, base, port, size, redis_port, args.shim,
                                                server.env))
                    results.append(dict(result, backend=backend, size=size))
                    shutil.rmtree(base, ignore_errors=True)
            finally:
                server.stop()
        if "memory" in backends:
            memory(results, scratch, url, redis_port, args)
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


def memory(results, scratch, url, redis_port, args):
    base = os.path.join(scratch, "memory")
    os.makedirs(base)
    out = subprocess.run(["/usr/bin/python3", "-c", IN_PROCESS, url],
                         env=env_for("memory", base, redis_port, args.shim), cwd=base,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.split()
    if len(out) == 3 and int(out[0]) == args.size:
        added = int(out[2]) - int(out[1])
        met = added <= TARGET_KB
        print("%-14s %12s %12s %12s %10s %9s %9s  %s  (in-process: the hit raised the peak by %d"
              " KB over the %d KB the process held)" % ("memory", "-", "-", "+%d" % added, "-",
                                                        "-", "-", "met" if met else "NOT met",
                                                        added, int(out[1])))
        results.append({"backend": "memory", "size": args.size, "hit_added_kb": added,
                        "rss_before_hit_kb": int(out[1]), "met": met})
    else:
        print("memory         in-process measurement failed (pycurl missing?)")


if __name__ == "__main__":
    sys.exit(main())
