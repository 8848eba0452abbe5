#!/usr/bin/env python3
"""A stale entry in Redis is revalidated, not downloaded again: the real `curl` under the
shim with the redis backend (a private redis-server on a free loopback port, stopped by
PID) fetches a resource that is stale at once (`Cache-Control: max-age=0` or `no-cache`,
with an ETag), then fetches it again. The second shim run must send a conditional request
(If-None-Match, If-Modified-Since), get the origin's 304 and print the stored response, byte for byte what
`curl` prints without the shim. Redis keeps the entry `redis.keep_stale` (7 days by default)
after it goes stale; with `CURLCACHE_REDIS_KEEP_STALE=0` it is dropped at once and the
second run downloads the body again, which the test also checks (so that the check of the
conditional request can fail).

    redis_stale.py --shim PATH [--keep]

Exit status 0 pass, 1 fail, 77 shim not built.
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from backends import Redis  # noqa: E402

CASES = [("max_age_0", "/text?cc=max-age=0"), ("no_cache", "/text?cc=no-cache")]


def main():
    parser = harness.arguments(__doc__)
    args = parser.parse_args()
    shim = harness.shim_or_skip(args.shim, False)
    if shutil.which("redis-server") is None:
        print("FAIL: no redis-server (install redis-server)")
        return 1
    failures = []
    with harness.Scratch(keep=args.keep) as scratch:
        with harness.Origin(scratch) as origin, Redis(scratch) as redis:
            for name, path in CASES:
                url = origin.base + path
                argv = ["curl", "-s", "-i", url]
                home = os.path.join(scratch, name)
                os.makedirs(home)
                plain = harness.run(argv, home, harness.clean_env(home))
                for keep, conditional in (("7d", True), ("0", False)):
                    label = "%s, keep_stale %s" % (name, keep)
                    env = harness.clean_env(home, {
                        "CURLCACHE_BACKEND": "redis", "CURLCACHE_NAME": "%s-%s" % (name, keep),
                        "CURLCACHE_REDIS_URL": "redis://127.0.0.1:%d/0" % redis.port,
                        "CURLCACHE_REDIS_KEEP_STALE": keep})
                    origin.reset()
                    runs = [harness.run(argv, home, env, shim) for _ in range(2)]
                    for i, run in enumerate(runs):
                        if run.code != plain.code or run.stdout != plain.stdout:
                            failures.append("%s: shim run %d differs from curl without the "
                                            "shim:\n%s" % (label, i + 1, harness.describe_difference(
                                                "stdout", plain.stdout, run.stdout)))
                        if run.stderr:
                            failures.append("%s: shim run %d wrote to stderr: %r"
                                            % (label, i + 1, run.stderr))
                    log = origin.log().splitlines()
                    want = ["GET %s" % path,
                            "GET %s%s" % (path, " if-none-match if-modified-since"
                                          if conditional else "")]
                    if log != want:
                        failures.append("%s: the origin saw %r, expected %r (%s)" % (
                            label, log, want, "the stale entry revalidated" if conditional
                            else "the entry dropped when it went stale"))
    for failure in failures:
        print("FAIL: " + failure)
    if not failures:
        print("ok: %d cases, stale Redis entries revalidated (304) and dropped at keep_stale 0"
              % len(CASES))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
