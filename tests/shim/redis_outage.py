#!/usr/bin/env python3
"""Redis going away in the middle of a CI job, seen from the unmodified `curl` command under
the shim (CURLCACHE_BACKEND=redis):

  1. with Redis up, a second run is a hit (no request at the origin);
  2. Redis is killed (SIGKILL): each run prints exactly what curl prints without the shim,
     exits the same, reaches the origin, and warns once (one "curlcache: " line per
     process, even for several URLs in one command);
  3. Redis is started again on the same port: once the shared back-off has passed (the
     test ages the marker the outage left, as the clock would), the cache is used again —
     a miss stores and removes the marker, the next run is a hit;
  4. Redis hangs (SIGSTOP, not dead: the kernel still accepts connections for it): the
     first run waits out its timeout once and leaves the back-off marker; the next runs
     pass through without connecting at all (counted in the listening socket's accept
     queue, which only grows while Redis is stopped); every run prints exactly what curl
     prints without the shim, with one warning; after SIGCONT and the back-off, caching
     resumes.

usage: redis_outage.py --shim PATH [--self-check]
  --self-check  compare the outage run against a different URL and pass only if the
                difference is reported (proves the comparison can fail)."""
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HUNG_FOLLOWERS = 5  # runs after the first with Redis stopped: none may connect


class RedisServer:
    """redis-server on a given loopback port, ready once it says so; stopped by PID."""

    def __init__(self, scratch, port):
        self.scratch, self.port, self.proc = scratch, port, None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.scratch, "--loglevel", "notice"],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        for line in self.proc.stdout:
            if b"Ready to accept connections" in line:
                return
        raise RuntimeError("redis-server exited before it was ready")

    def kill(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc.stdout.close()
            self.proc = None

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def pending_connections(self):
        """Connections the kernel accepted for Redis that Redis has not taken: the accept
        queue of its listening socket (rx_queue of a LISTEN line in /proc/net/tcp)."""
        with open("/proc/net/tcp") as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if fields[1] == "0100007F:%04X" % self.port and fields[3] == "0A":
                    return int(fields[4].split(":")[1], 16)
        raise RuntimeError("no listening socket on port %d" % self.port)

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc.stdout.close()
            self.proc = None


def warnings_in(stderr):
    return [line for line in stderr.splitlines() if line.startswith(b"curlcache: ")]


def markers(home):
    """The shared back-off markers (backends/backoff.h) under the runs' cache folder."""
    folder = os.path.join(home, "cache", "curlcache", "backoff")
    return [os.path.join(folder, n) for n in os.listdir(folder)] if os.path.isdir(folder) else []


def age_markers(home):
    """What the clock would do to the back-off: its time has passed (its wait kept)."""
    found = markers(home)
    for path in found:
        with open(path) as f:
            wait = f.read().split()[1]
        with open(path, "w") as f:
            f.write("0 %s\n" % wait)
    return len(found)


def main():
    args = sys.argv[1:]
    shim = args[args.index("--shim") + 1] if "--shim" in args else None
    self_check = "--self-check" in args
    if shutil.which("redis-server") is None:
        print("SKIP: redis-server is not installed (scripts/install-deps.sh installs it)")
        return harness.SKIP
    shim = harness.shim_or_skip(shim, harness_only=False)
    failures = []

    def check(condition, what):
        if not condition:
            failures.append(what)

    with harness.Scratch() as scratch, harness.Origin(scratch) as origin:
        redis = RedisServer(scratch, harness.free_port())
        redis.start()
        try:
            env = harness.clean_env(os.path.join(scratch, "home"), {
                "CURLCACHE_BACKEND": "redis",
                "CURLCACHE_REDIS_URL": "redis://127.0.0.1:%d/0" % redis.port})
            one = ["curl", "-s", "-i", origin.base + "/text"]
            several = ["curl", "-s", "-i", origin.base + "/text", origin.base + "/bytes/3000",
                       origin.base + "/redirect/2", "-L"]
            expected = {name: harness.run(argv, scratch, env)
                        for name, argv in (("one", one), ("several", several))}

            # 1. Redis up: the second run is a hit.
            harness.run(one, scratch, env, shim)
            before = origin.count()
            hit = harness.run(one, scratch, env, shim)
            check(origin.count() == before, "with Redis up, the second run reached the origin")
            check(hit.stdout == expected["one"].stdout, "with Redis up, a hit differs")

            # 2. Redis killed: identical output and exit code, to the network, one warning.
            redis.kill()
            for name, argv in (("one", one), ("several", several)):
                if self_check and name == "one":
                    argv = ["curl", "-s", "-i", origin.base + "/bytes/10"]
                before = origin.count()
                down = harness.run(argv, scratch, env, shim)
                diff = harness.compare(expected[name], down, ignore_stderr=True)
                if diff:
                    failures.append("Redis down, %s: %s" % (name, diff))
                check(origin.count() > before, "Redis down, %s: nothing reached the origin"
                      % name)
                warned = warnings_in(down.stderr)
                check(len(warned) == 1, "Redis down, %s: %d curlcache warnings, expected 1: %r"
                      % (name, len(warned), down.stderr[:400]))
                check(b"redis" in b"".join(warned).lower(),
                      "Redis down, %s: the warning does not mention Redis: %r" % (name, warned))

            # 3. Redis back on the same port (empty: no persistence), the back-off over: a
            #    miss stores, then hits.
            redis.start()
            home = os.path.join(scratch, "home")
            check(age_markers(home) == 1, "Redis down: no back-off marker was left")
            harness.run(one, scratch, env, shim)
            check(not markers(home), "after the restart, a success left the marker")
            before = origin.count()
            again = harness.run(one, scratch, env, shim)
            check(origin.count() == before, "after Redis restarted, hits did not resume")
            check(again.stdout == expected["one"].stdout, "after the restart, a hit differs")
            check(not warnings_in(again.stderr), "after the restart, a hit still warns: %r"
                  % again.stderr[:200])

            # 4. Redis hung: one process waits out the timeout, the next ones do not connect.
            redis.pause()
            queued = [redis.pending_connections()]
            fresh = ["curl", "-s", "-i", origin.base + "/bytes/2000"]
            plain = harness.run(fresh, scratch, env)
            for i in range(1 + HUNG_FOLLOWERS):
                before = origin.count()
                hung = harness.run(fresh, scratch, env, shim)
                queued.append(redis.pending_connections())
                diff = harness.compare(plain, hung, ignore_stderr=True)
                if diff:
                    failures.append("Redis hung, run %d: %s" % (i + 1, diff))
                check(origin.count() > before, "Redis hung, run %d: nothing reached the "
                      "origin" % (i + 1))
                warned = warnings_in(hung.stderr)
                check(len(warned) == 1 and b"redis" in warned[0].lower(),
                      "Redis hung, run %d: expected one warning about Redis: %r"
                      % (i + 1, hung.stderr[:400]))
            attempts = [b - a for a, b in zip(queued, queued[1:])]
            check(attempts == [1] + [0] * HUNG_FOLLOWERS,
                  "Redis hung: connection attempts per run %r, expected one by the first run "
                  "and none by the %d after it (the shared back-off)"
                  % (attempts, HUNG_FOLLOWERS))
            redis.resume()
            check(age_markers(home) == 1, "Redis hung: no back-off marker was left")
            harness.run(fresh, scratch, env, shim)
            before = origin.count()
            resumed = harness.run(fresh, scratch, env, shim)
            check(origin.count() == before, "after SIGCONT and the back-off, hits did not "
                  "resume")
            check(resumed.stdout == plain.stdout and not warnings_in(resumed.stderr),
                  "after SIGCONT, a hit differs or warns: %r" % resumed.stderr[:200])
        finally:
            redis.stop()

    if self_check:
        ok = any("Redis down, one" in f for f in failures)
        print("%s: the deliberately different run was %sreported"
              % ("ok" if ok else "FAIL", "" if ok else "not "))
        return 0 if ok else 1
    for failure in failures:
        print("FAIL: " + failure)
    if not failures:
        print("ok: hits with Redis up; identical output, one warning each with Redis killed "
              "or hung; one connection attempt for %d runs with Redis hung; hits again after "
              "the restart and after SIGCONT" % (1 + HUNG_FOLLOWERS))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
