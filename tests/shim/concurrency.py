#!/usr/bin/env python3
"""Several curl processes at once through the shim, on one SQLite cache:

  same_url_coalesced       4 processes ask for one slow URL on a fresh cache: every output is
                           byte-identical to a run without the shim, the origin sees one
                           request (request coalescing is on by default), a later run is a hit.
  same_url_coalesced_filesystem  the same on the filesystem backend.
  same_url_no_coalescing   the same with CURLCACHE_COALESCE=0: identical outputs, at most 4
                           requests, a later run is a hit.
  distinct_urls_writers    8 processes, 8 different URLs, one cache file: identical outputs,
                           no warning, and all 8 are hits afterwards (no lost or torn write).

    concurrency.py --shim PATH [--only NAME,...] [--keep] [--harness-only] [--self-check]

Exit status 0 pass, 1 fail, 77 shim not built.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def spawn_all(argvs, base, label, env, shim):
    """Starts every argv at once, each in its own cwd; waits for all; returns Results."""
    procs = []
    for i, argv in enumerate(argvs):
        cwd = harness.prepare_cwd(os.path.join(base, "%s%d" % (label, i)))
        e = dict(env)
        if shim:
            e["LD_PRELOAD"] = shim
            if "libasan" in shim:
                e.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        procs.append((cwd, subprocess.Popen(argv, cwd=cwd, env=e, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    results = []
    for i, (cwd, p) in enumerate(procs):
        try:
            out, err = p.communicate(timeout=harness.RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            err += b"\n[killed after %d s]\n" % harness.RUN_TIMEOUT
        results.append(harness.Result(cwd, subprocess.CompletedProcess(p.args, p.returncode,
                                                                       out, err)))
        harness.save_outputs(base, "%s%d" % (label, i), results[-1])
    return results


def scenario(name, urls, extra_env, max_requests, origin, scratch, shim, inject=False):
    base = os.path.join(scratch, name)
    env = harness.clean_env(os.path.join(base, "home"), extra_env)
    argvs = [["curl", "-s", "-i", "-o", "body", "-w", "%{http_code} %{size_download}\\n", u]
             for u in urls]
    plain = [harness.run(a, harness.prepare_cwd(os.path.join(base, "without%d" % i)), env)
             for i, a in enumerate(argvs)]
    problems = []
    if inject:
        argvs = [a[:-1] + [a[-1].replace("/slow/1000", "/bytes/127")
                           .replace("/bytes/5", "/bytes/6")] for a in argvs]
    c0 = origin.count()
    together = spawn_all(argvs, base, "shim", env, shim)
    c1 = origin.count()
    again = spawn_all(argvs, base, "again", env, shim)
    c2 = origin.count()
    for i, (want, r1, r2) in enumerate(zip(plain, together, again)):
        for label, r in (("concurrent run", r1), ("later run", r2)):
            problems += ["process %d, %s: %s" % (i, label, p) for p in harness.compare(want, r)]
    cache = []
    if c1 - c0 > max_requests or c1 == c0:
        cache.append("the concurrent runs made %d origin request(s), expected 1..%d"
                     % (c1 - c0, max_requests))
    if c2 != c1:
        cache.append("the later runs made %d origin request(s), expected all hits" % (c2 - c1))
    return problems, cache, "origin requests: concurrent %d, later %d" % (c1 - c0, c2 - c1)


def main():
    args = harness.arguments(__doc__).parse_args()
    shim = harness.shim_or_skip(args.shim, args.harness_only or args.self_check)
    report = harness.Report(shim, args.self_check)
    with harness.Scratch(keep=args.keep) as scratch:
        with harness.Origin(scratch) as origin:
            b = origin.base
            cases = [
                ("same_url_coalesced", [b + "/slow/1000"] * 4, {}, 1),
                ("same_url_coalesced_filesystem", [b + "/slow/1000?fs"] * 4,
                 {"CURLCACHE_BACKEND": "filesystem"}, 1),
                ("same_url_no_coalescing", [b + "/slow/1000?x"] * 4,
                 {"CURLCACHE_COALESCE": "0"}, 4),
                ("distinct_urls_writers", [b + "/bytes/%d" % (50000 + i) for i in range(8)],
                 {}, 8),
            ]
            for name, urls, extra, max_requests in harness.only(cases, args.only):
                problems, cache, note = scenario(name, urls, extra, max_requests, origin,
                                                 scratch, shim, args.self_check)
                report.case(name, "%d x curl -s -i -o body URL" % len(urls), problems, cache,
                            note, os.path.join(scratch, name))
    return report.finish("scenarios")


if __name__ == "__main__":
    sys.exit(main())
