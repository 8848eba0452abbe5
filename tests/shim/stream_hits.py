#!/usr/bin/env python3
"""Large hits are streamed (issue 11): the real curl CLI under the shim, for the sqlite,
filesystem and Redis backends (a redis-server started here on a free loopback port).

  memory     a 64 MiB hit must peak within 24 MiB of the same download without the shim
             (/usr/bin/time -f %M): before streaming it held the whole body (~80 MB). (The
             test is no-asan, as the other curl tests: curl deadlocks under the ASan runtime.)
  corrupt    a byte flipped in the middle of a stored 12 MiB body: the hit fails with
             CURLE_PARTIAL_FILE (exit 18) after delivering only good bytes (a prefix of the
             origin's body), the entry is gone, and the next run fetches and stores it
             again, byte for byte.
  multi      pycurl's CurlMulti: the first perform() of a 12 MiB hit delivers part of it,
             not all: a hit is spread over rounds of the program's loop.

    stream_hits.py --shim PATH [--keep]

Exit status 0 pass, 1 fail, 77 shim not built.
"""

import os
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from redis_outage import RedisServer  # noqa: E402

MEMORY_BODY = 64 << 20
MEMORY_SLACK_KB = 24 << 10
CORRUPT_BODY = 12 << 20
CURLE_PARTIAL_FILE = 18

MULTI_CLIENT = r"""
import sys, pycurl
got = []
c = pycurl.Curl()
c.setopt(pycurl.URL, sys.argv[1])
c.setopt(pycurl.WRITEFUNCTION, lambda b: got.append(len(b)))
m = pycurl.CurlMulti()
m.add_handle(c)
rounds = 0
first = None
while True:
    ret, running = m.perform()
    rounds += 1
    if first is None:
        first = sum(got)
    if running == 0:
        break
    m.select(1.0)
m.remove_handle(c)
print(first, sum(got), rounds)
"""


def backend_env(name, base, redis_port):
    if name == "filesystem":
        return {"CURLCACHE_BACKEND": "filesystem", "CURLCACHE_NAME": os.path.join(base, "fs")}
    if name == "redis":
        return {"CURLCACHE_BACKEND": "redis",
                "CURLCACHE_REDIS_URL": "redis://127.0.0.1:%d/0" % redis_port}
    return {"CURLCACHE_BACKEND": "sqlite", "CURLCACHE_NAME": os.path.join(base, "c.sqlite")}


def redis_command(port, *args):
    """One command over RESP; returns the raw reply bytes."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(out)
        reply = b""
        while not reply.endswith(b"\r\n") or (reply.startswith(b"*") and
                                             reply.count(b"\r\n") < 2 * int(
                                                 reply[1:reply.index(b"\r\n")]) + 1):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


def flip_middle(name, base, redis_port):
    """Flips one byte in the middle of the largest stored value."""
    if name == "redis":
        reply = redis_command(redis_port, "KEYS", "*:e:*")
        keys = [line for line in reply.split(b"\r\n")[1:] if line and not line.startswith(b"$")]
        best, size, kind = None, 0, None
        for key in keys:
            t = redis_command(redis_port, "TYPE", key)[1:].strip()
            if t == b"hash":  # a value streamed in: fields h t s p and pieces 0, 1, ...
                n = int(redis_command(redis_port, "HGET", key, "s").split(b"\r\n")[1])
            else:
                n = int(redis_command(redis_port, "STRLEN", key)[1:].strip())
            if n > size:
                best, size, kind = key, n, t
        if kind == b"hash":
            # Inside Redis: the middle piece's middle byte (pieces are up to a few MiB).
            flip = ("local v = redis.call('HGET', KEYS[1], ARGV[1]) "
                    "local at = math.floor(#v / 2) + 1 "
                    "local b = bit.bxor(string.byte(v, at), 0x5a) "
                    "redis.call('HSET', KEYS[1], ARGV[1], "
                    "string.sub(v, 1, at - 1) .. string.char(b) .. string.sub(v, at + 1)) "
                    "return at")
            pieces = int(redis_command(redis_port, "HLEN", best)[1:].strip()) - 4
            reply = redis_command(redis_port, "EVAL", flip, 1, best, str(pieces // 2))
            if not reply.startswith(b":"):
                raise RuntimeError("redis: could not flip a byte of a piece: %r" % reply[:80])
            return
        at = size // 2
        byte = redis_command(redis_port, "GETRANGE", best, at, at).split(b"\r\n")[1]
        redis_command(redis_port, "SETRANGE", best, at, bytes([byte[0] ^ 0x5a]))
        return
    root = os.path.join(base, "fs" if name == "filesystem" else "c.sqlite.bodies")
    best, size = None, 0
    for folder, _, names in os.walk(root):
        for n in names:
            path = os.path.join(folder, n)
            if os.path.getsize(path) > size:
                best, size = path, os.path.getsize(path)
    with open(best, "r+b") as f:
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0x5a]))


def peak_kb(argv, scratch, env, shim):
    out = os.path.join(scratch, "peak.txt")
    result = harness.run(["/usr/bin/time", "-f", "%M", "-o", out] + argv, scratch, env, shim)
    with open(out) as f:
        return result, int(f.read().split()[-1])


def main():
    args = harness.arguments(__doc__).parse_args()
    for program in ("redis-server", "/usr/bin/time"):
        if shutil.which(program) is None:
            print("SKIP: %s is not installed (scripts/install-deps.sh installs it)" % program)
            return harness.SKIP
    shim = harness.shim_or_skip(args.shim, False)
    asan = "libasan" in harness.preload_value(shim)
    failures = []

    def check(condition, what):
        print(("ok   " if condition else "FAIL ") + what)
        if not condition:
            failures.append(what)

    with harness.Scratch(keep=args.keep) as scratch, harness.Origin(scratch) as origin:
        redis = RedisServer(scratch, harness.free_port())
        redis.start()
        try:
            for name in ("sqlite", "filesystem", "redis"):
                base = os.path.join(scratch, name)
                os.makedirs(base)
                env = harness.clean_env(os.path.join(base, "home"), dict(
                    backend_env(name, base, redis.port), CURLCACHE_MAX_ENTRY_SIZE=str(1 << 30)))
                if name == "redis":
                    redis_command(redis.port, "FLUSHALL")

                # memory
                url = origin.base + "/stream/%d" % MEMORY_BODY
                curl = ["curl", "-s", "-S", "-o", "/dev/null", url]
                plain, plain_kb = peak_kb(curl, scratch, env, None)
                harness.run(curl, scratch, env, shim)  # the miss stores it
                before = origin.count()
                hit, hit_kb = peak_kb(curl, scratch, env, shim)
                check(hit.code == 0 and origin.count() == before,
                      "%s: the 64 MiB download is a hit (exit %d)" % (name, hit.code))
                print("     %s: peak %d KB with the shim's hit, %d KB without the shim"
                      % (name, hit_kb, plain_kb))
                if not asan:
                    check(hit_kb <= plain_kb + MEMORY_SLACK_KB,
                          "%s: a 64 MiB hit peaks within 24 MiB of no shim" % name)

                # corrupt, in a cache of its own (the damaged value is its largest)
                base = os.path.join(scratch, name + "-corrupt")
                os.makedirs(base)
                env = harness.clean_env(os.path.join(base, "home"), dict(
                    backend_env(name, base, redis.port), CURLCACHE_MAX_ENTRY_SIZE=str(1 << 30)))
                if name == "redis":
                    redis_command(redis.port, "FLUSHALL")
                url = origin.base + "/bytes/%d" % CORRUPT_BODY
                expected = harness.run(["curl", "-s", "-S", url], scratch, env, None).stdout
                check(len(expected) == CORRUPT_BODY, "%s: the origin sends the body" % name)
                harness.run(["curl", "-s", "-S", "-o", "/dev/null", url], scratch, env, shim)
                flip_middle(name, base, redis.port)
                before = origin.count()
                bad = harness.run(["curl", "-s", "-S", url], scratch, env, shim)
                check(origin.count() == before, "%s: the damaged entry is found" % name)
                check(bad.code == CURLE_PARTIAL_FILE,
                      "%s: the damaged hit fails with exit 18 (got %d)" % (name, bad.code))
                check(len(bad.stdout) < len(expected) and expected.startswith(bad.stdout),
                      "%s: only good bytes before the damaged chunk reached curl (%d)"
                      % (name, len(bad.stdout)))
                again = harness.run(["curl", "-s", "-S", url], scratch, env, shim)
                check(again.code == 0 and again.stdout == expected and
                      origin.count() == before + 1,
                      "%s: the entry was removed; the next run fetched it whole" % name)
                hit = harness.run(["curl", "-s", "-S", url], scratch, env, shim)
                check(hit.code == 0 and hit.stdout == expected and origin.count() == before + 1,
                      "%s: and stored it again" % name)

                # multi
                python = "/usr/bin/python3"
                multi = harness.run([python, "-c", MULTI_CLIENT, url], scratch, env, shim)
                fields = multi.stdout.split()
                check(multi.code == 0 and len(fields) == 3 and
                      0 < int(fields[0]) < CORRUPT_BODY and int(fields[1]) == CORRUPT_BODY and
                      origin.count() == before + 1,
                      "%s: a multi hit is delivered over several rounds (%s)"
                      % (name, multi.stdout.strip().decode() or multi.stderr[-300:]))
        finally:
            redis.kill()
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
