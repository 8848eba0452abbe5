#!/usr/bin/env python3
"""A select()-driven pycurl CurlMulti loop on cached URLs never waits blind.

The loop is the one pycurl's documentation shows: `select.select(*m.fdset(), timeout)`
with the program's own timeout, then `m.perform()`. A cache hit has no socket, so an
fdset without anything of the shim's made such a program sleep its whole timeout on every
round while hits waited to be replayed. The shim's curl_multi_fdset adds one descriptor
that is readable while hits are due. The check: after the URLs are stored, a run of the
loop (a 20 s select timeout) sees no select() return empty-handed, and delivers every
body; the same loop without the shim fetches the same bodies.

    multi_select.py --shim PATH [--keep] [--self-check]

--self-check runs the cached loop with CURLCACHE_DISABLE=1 instead: then there are real
sockets again, so only the origin's request count can tell, and the check must fail.
Exit status 0 pass, 1 fail, 77 shim not built.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

LOOP = r"""
import hashlib, pycurl, select, sys
m = pycurl.CurlMulti()
bodies = {}
for url in sys.argv[1:]:
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    parts = []
    c.setopt(pycurl.WRITEFUNCTION, parts.append)
    bodies[c] = (url, parts)
    m.add_handle(c)
blind = 0
running = len(bodies)
while running:
    r, w, x = m.fdset()
    if r or w or x:
        ready = select.select(r, w, x, 20.0)
        blind += not any(ready)
    else:
        blind += 1  # nothing to wait on: a program can only sleep its timeout
    while True:
        ret, running = m.perform()
        if ret != pycurl.E_CALL_MULTI_PERFORM:
            break
for c, (url, parts) in bodies.items():
    print(url.rsplit("/", 1)[1], hashlib.sha256(b"".join(parts)).hexdigest()[:16])
    m.remove_handle(c)
print("blind selects:", blind)
"""


def main():
    parser = harness.arguments(__doc__)
    args = parser.parse_args()
    python = "/usr/bin/python3"
    if subprocess.run([python, "-c", "import pycurl"], stderr=subprocess.DEVNULL).returncode:
        print("FAIL: no python3 with pycurl (install python3-pycurl)")
        return 1
    shim = harness.shim_or_skip(args.shim, args.self_check)
    with harness.Scratch(args.keep) as scratch, harness.Origin(scratch) as origin:
        urls = ["%s/bytes/%d" % (origin.base, 1000 + i) for i in range(10)]
        env = harness.clean_env(os.path.join(scratch, "home"))
        cached = dict(env, LD_PRELOAD=shim or "")
        if shim and "libasan" in shim:
            # Python's own leaks at exit are not the shim's business (as harness.run says).
            cached.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        if args.self_check:
            cached["CURLCACHE_DISABLE"] = "1"

        def loop(environment):
            return subprocess.run([python, "-c", LOOP, *urls], env=environment,
                                  capture_output=True, timeout=300)

        plain = loop(env)
        store = loop(cached)  # misses: stored
        before = origin.count()
        hits = loop(cached)
        problems = []
        if plain.returncode or store.returncode or hits.returncode:
            problems.append("a loop failed: %r" % (plain.stderr + store.stderr + hits.stderr))
        if origin.count() != before:
            problems.append("the cached loop made %d request(s) at the origin"
                            % (origin.count() - before))
        bodies = lambda out: out.stdout.splitlines()[:-1]  # noqa: E731
        if bodies(hits) != bodies(plain):
            problems.append("bodies differ from the run without the shim")
        if hits.stdout.splitlines()[-1:] != [b"blind selects: 0"]:
            problems.append("the cached loop waited blind: %r" % hits.stdout.splitlines()[-1:])
    for problem in problems:
        print("FAIL:", problem)
    if args.self_check:
        print("self-check:", "the check fails as it must" if problems else "NOT DETECTED")
        return 0 if problems else 1
    print("PASS" if not problems else "1 failed, 0 passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
