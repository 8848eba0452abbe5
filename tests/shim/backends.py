#!/usr/bin/env python3
"""A representative part of the curl CLI corpus on every storage backend behind the shim:
sqlite, filesystem, redis (a private redis-server started here on a free loopback port,
stopped by PID) and a tiered memory+sqlite cache. Same assertions as curl_corpus.py:
byte-identical outputs, and the second shim run answered from the cache.

    backends.py --shim PATH [--only BACKEND/CASE,...] [--keep] [--harness-only] [--self-check]

Exit status 0 pass, 1 fail, 77 shim not built. The redis variant is reported as skipped
when redis-server is not installed.
"""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import curl_corpus  # noqa: E402
import harness  # noqa: E402

CASES = ["get_to_stdout", "get_large_to_file", "include_and_follow", "compressed_include",
         "write_out_variables", "remote_time", "etag_compare_matching", "head_only",
         "https_include_follow", "post_is_not_cached"]


class Redis:
    """redis-server on a free port, ready when it says so on stdout; stopped by PID."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.proc = None
        self.port = None

    def __enter__(self):
        self.port = harness.free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.scratch, "--loglevel", "notice"],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        for line in self.proc.stdout:
            if b"Ready to accept connections" in line:
                return self
        raise RuntimeError("redis-server exited before it was ready")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


def variants(scratch, redis_port):
    out = [("sqlite", {"CURLCACHE_BACKEND": "sqlite"}),
           ("filesystem", {"CURLCACHE_BACKEND": "filesystem"}),
           ("tiered", {"CURLCACHE_BACKEND": "memory,sqlite"})]
    if redis_port:
        out.append(("redis", {"CURLCACHE_BACKEND": "redis",
                              "CURLCACHE_REDIS_URL": "redis://127.0.0.1:%d/0" % redis_port}))
    return out


def main():
    args = harness.arguments(__doc__).parse_args()
    shim = harness.shim_or_skip(args.shim, args.harness_only or args.self_check)
    report = harness.Report(shim, args.self_check)
    by_name = {c.name: c for c in curl_corpus.corpus()}
    with harness.Scratch(keep=args.keep) as scratch:
        redis = None
        if shutil.which("redis-server"):
            redis = Redis(scratch).__enter__()
        else:
            print("SKIP redis: redis-server is not installed")
        try:
            with harness.Origin(scratch) as origin, \
                    harness.Origin(scratch, tls=True) as tls_origin:
                runs = [(backend, env, by_name[n])
                        for backend, env in variants(scratch, redis and redis.port)
                        for n in CASES]
                runs = harness.only(runs, args.only, lambda r: "%s/%s" % (r[0], r[2].name))
                if args.self_check:  # the injected difference changes /text URLs
                    runs = [r for r in runs if r[2].name in ("get_to_stdout",
                                                             "write_out_variables")][:2]
                for backend, env, case in runs:
                    if backend == "redis":
                        # One database per case: every case starts on an empty cache.
                        env = dict(env, CURLCACHE_REDIS_URL="redis://127.0.0.1:%d/%d" % (
                            redis.port, CASES.index(case.name)))
                    case = curl_corpus.Case(case.name, case.args, case.cached, case.files,
                                            case.prime, dict(case.env, **env), case.mtime,
                                            case.tls)
                    workdir = os.path.join(scratch, backend)
                    os.makedirs(workdir, exist_ok=True)
                    problems, cache, note, where = curl_corpus.run_case(
                        case, workdir, origin, tls_origin, shim, args.self_check)
                    report.case("%s/%s" % (backend, case.name),
                                "curl -s " + " ".join(case.args), problems, cache, note,
                                where)
        finally:
            if redis:
                redis.__exit__(None, None, None)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
