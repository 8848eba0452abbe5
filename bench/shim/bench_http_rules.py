#!/usr/bin/env python3
"""What the HTTP caching rules (RFC 9111) cost on the shim's hit path, for one shim or two.

    bench_http_rules.py --shim new=BUILD/lib/libcurlcache-preload.so
                        [--shim old=OTHER/lib/libcurlcache-preload.so]
                        [--loop BUILD/bin/curl_loop] [--quick] [--json FILE]

1. Instructions per fresh 1 KiB hit: callgrind of curl_loop under the shim,
   (Ir(N=3000) - Ir(N=1000)) / 2000 from the `totals:` lines, which cancels start-up, the
   warm-up and the priming miss. SQLite and memory; with a request Cache-Control directive;
   with a response carrying `Vary: X-Something` (the request sends X-Something: a) beside
   the same request to a response without Vary; with `Vary: Accept-Encoding` (a header
   already in the key). The storage lookups per hit (calls of the backend's get) come from
   the same callgrind files.
2. The revalidated hit: an entry stale at once (Cache-Control: max-age=0) with an ETag,
   answered 304 by the origin, against the same program without the shim sending a bare
   conditional request (answered 304) and a plain GET (a full 200). Instructions per
   transfer ((Ir(600) - Ir(200)) / 400), storage gets and writes per transfer, and wall
   medians per transfer (curl_loop's median_us, median over interleaved rounds), for 1 KiB
   and (wall only) 1 MiB. Every shim runs with CURLCACHE_EXPIRE_AFTER=0 so that a shim from
   before the RFC 9111 engine (no freshness from headers) is stale at once too; it does not
   apply to a response with explicit freshness such as max-age=0.

Origins, started here on free 127.0.0.1 ports and stopped by PID: nginx serving static files
as bench_shim.py's origin (random bytes dated 2020, `expires 1h`) plus a /reval/ location
with `expires 0`; tests/shim/scripted_origin.py for the Vary responses. Every command is
printed (environment and argv) as it runs, so each figure can be repeated by hand; the
origin's request count checks that every hit was a hit and every revalidation one request.
The first --shim is the one measured; the ratio column is first / second.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter

sys.dont_write_bytecode = True  # the benchmark leaves nothing in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "shim"))
from bench_common import Server, clean_env, free_port, origin_requests  # noqa: E402
from bench_shim import OLD  # noqa: E402
from scripted_origin import ScriptedOrigin  # noqa: E402

KIB, MIB = 1024, 1 << 20
SCRIPTED_HEADERS = [["Content-Type", "application/octet-stream"],
                    ["Cache-Control", "public, max-age=86400"], ["ETag", '"v1"'],
                    ["Last-Modified", "Wed, 01 Jan 2020 00:00:00 GMT"]]
BACKENDS = r"(Sqlite|Memory|Filesystem|Redis)Storage::"  # not the wrappers (file lock, tiers)
LOOKUP = re.compile(BACKENDS + r"get\(")
WRITE = re.compile(BACKENDS + r"(put|begin_put)\(")


def start_nginx(d):
    """The origin: static files as bench-shim's, and /reval/ stale at once (max-age=0)."""
    www = os.path.join(d, "www")
    os.makedirs(os.path.join(www, "reval"))
    for name, size in (("1k.bin", KIB), ("reval/1k.bin", KIB), ("reval/1m.bin", MIB)):
        path = os.path.join(www, name)
        with open(path, "wb") as f:
            f.write(os.urandom(size))
        os.utime(path, (OLD, OLD))
    temp = "".join("  %s_temp_path %s/tmp/%s;\n" % (t, d, t)
                   for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("%s\nworker_processes 1; daemon off; pid %s/nginx.pid;\n"
                "error_log %s/nginx-error.log warn; events { worker_connections 64; }\n"
                "http {\n  default_type application/octet-stream; sendfile on;\n"
                "  keepalive_requests 1000000;\n%s"
                "  server {\n    listen 127.0.0.1:%d; access_log %s/origin-access.log;\n"
                "    root %s; expires 1h;\n    location /reval/ { expires 0; }\n  }\n}\n"
                % ("user root;" if os.geteuid() == 0 else "", d, d, temp, port, d, www))
    os.makedirs(os.path.join(d, "tmp"))
    return Server("nginx", ["nginx", "-p", d, "-c", conf], port, d)


class Runner:
    """Runs curl_loop (under valgrind or not), printing each command once."""

    def __init__(self, loop, d):
        self.loop, self.d, self.shown = loop, d, set()

    def argv(self, n, size, url, headers=(), status=None, warmup=2):
        argv = [self.loop, "-n", str(n), "-w", str(warmup), "-e", str(size)]
        for h in headers:
            argv += ["-H", h]
        if status:
            argv += ["-s", str(status)]
        return argv + [url]

    def run(self, argv, extra):
        line = " ".join(["%s=%s" % (k, shlex.quote(v)) for k, v in extra.items()]
                        + [shlex.quote(a) for a in argv])
        shape = re.sub(r"-n \d+|\S+\.out", "", line)
        if shape not in self.shown:
            self.shown.add(shape)
            print("$ " + line, flush=True)
        p = subprocess.run(argv, env=clean_env(self.d, extra), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("failed: %s\n%s" % (line, p.stderr.decode(errors="replace")))
        return p.stdout.decode()

    def wall(self, argv, extra):
        out = self.run(argv, extra)
        return dict(kv.split("=") for kv in out.split())["median_us"]

    def callgrind(self, argv, extra, out):
        """(total instructions, calls of storage gets, calls of storage writes)."""
        self.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv, extra)
        names, calls, callee, total = {}, Counter(), None, None
        with open(out) as f:
            for line in f:
                m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
                if m:
                    if m.group(3):
                        names[m.group(2)] = m.group(3)
                    callee = names.get(m.group(2)) if m.group(1) == "cfn" else None
                elif line.startswith("calls=") and callee:
                    calls[callee] += int(line[6:].split()[0])
                elif line.startswith(("totals:", "summary:")):
                    total = int(line.split()[1])
        count = (lambda rx: sum(c for name, c in calls.items() if rx.search(name)))
        return total, count(LOOKUP), count(WRITE)


def shim_env(path, backend, db):
    extra = {"LD_PRELOAD": path, "CURLCACHE_BACKEND": backend}
    if backend == "sqlite":
        extra["CURLCACHE_NAME"] = db
    return extra


def per_op(runner, argv_of, extra, tag, lo, hi, prime_argv=None):
    """Instructions, gets and writes per transfer: (run(hi) - run(lo)) / (hi - lo)."""
    if prime_argv and "CURLCACHE_NAME" in extra:
        runner.run(prime_argv, extra)  # the first run stores the entry
    a = runner.callgrind(argv_of(lo), extra, os.path.join(runner.d, "%s-%d.out" % (tag, lo)))
    b = runner.callgrind(argv_of(hi), extra, os.path.join(runner.d, "%s-%d.out" % (tag, hi)))
    return [(y - x) / (hi - lo) for x, y in zip(a, b)]


def fresh_hits(args, runner, d, ngx, scripted, rows):
    body = "x" * KIB
    scripted.script("/plain", headers=SCRIPTED_HEADERS, body=body)
    scripted.script("/vary", headers=SCRIPTED_HEADERS + [["Vary", "X-Something"]], body=body)
    scripted.script("/vary-ae", headers=SCRIPTED_HEADERS + [["Vary", "Accept-Encoding"]],
                    body=body)
    one = "http://127.0.0.1:%d/1k.bin" % ngx.port
    directive = ("Cache-Control: max-stale=10",)
    cases = [  # (label, backend, url, request headers)
        ("fresh hit, sqlite", "sqlite", one, ()),
        ("fresh hit, memory", "memory", one, ()),
        ("request Cache-Control: max-stale=10, sqlite", "sqlite", one, directive),
        ("request Cache-Control: max-stale=10, memory", "memory", one, directive),
        ("no Vary, request X-Something: a, sqlite", "sqlite", scripted.base + "/plain",
         ("X-Something: a",)),
        ("Vary: X-Something, request X-Something: a, sqlite", "sqlite",
         scripted.base + "/vary", ("X-Something: a",)),
        ("Vary: Accept-Encoding (in the key), sqlite", "sqlite", scripted.base + "/vary-ae",
         ()),
        ("no Vary, request X-Something: a, memory", "memory", scripted.base + "/plain",
         ("X-Something: a",)),
        ("Vary: X-Something, request X-Something: a, memory", "memory",
         scripted.base + "/vary", ("X-Something: a",)),
    ]
    lo, hi = (300, 900) if args.quick else (1000, 3000)
    print("\n1. fresh 1 KiB hits: instructions per hit = (Ir(N=%d) - Ir(N=%d)) / %d"
          % (hi, lo, hi - lo))
    for i, (label, backend, url, headers) in enumerate(cases):
        row = {"part": "fresh", "case": label, "unit": "instructions/hit", "values": {},
               "gets": {}, "origin_requests": {}}
        for s, (name, path) in enumerate(args.shims):
            extra = shim_env(path, backend, os.path.join(d, "fresh-%d-%d.sqlite" % (s, i)))
            before = origin_requests(d) + len(scripted.log())
            ir, gets, _ = per_op(runner, lambda n: runner.argv(n, KIB, url, headers), extra,
                                 "fresh-%d-%d" % (s, i), lo, hi,
                                 runner.argv(1, KIB, url, headers))
            reached = origin_requests(d) + len(scripted.log()) - before
            row["values"][name], row["gets"][name] = ir, gets
            row["origin_requests"][name] = reached
            print("  %-52s %-4s %8.0f instructions, %.2f gets per hit; origin requests %d "
                  "(priming run incl.)" % (label, name, ir, gets, reached), flush=True)
        rows.append(row)


def revalidated(args, runner, d, ngx, rows):
    def etag(url):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(urllib.request.Request(url, method="HEAD"), timeout=10) as r:
            return r.headers["ETag"]

    def variants(url, size):
        out = [("no shim: GET, full 200", {}, size, (), None),
               ("no shim: conditional GET, bare 304", {}, -1,
                ("If-None-Match: " + etag(url),), 304)]
        for s, (name, path) in enumerate(args.shims):
            for backend in ("sqlite", "memory"):
                extra = shim_env(path, backend, os.path.join(
                    d, "reval-%d-%s-%d.sqlite" % (s, backend, size)))
                extra["CURLCACHE_EXPIRE_AFTER"] = "0"
                out.append(("revalidated hit (304), " + backend, extra, size, (), None, name))
        return out

    base = "http://127.0.0.1:%d/reval/" % ngx.port
    lo, hi = (100, 300) if args.quick else (200, 600)
    print("\n2. revalidated hits (max-age=0, ETag, 304): instructions per transfer = "
          "(Ir(N=%d) - Ir(N=%d)) / %d" % (hi, lo, hi - lo))
    url = base + "1k.bin"
    for i, (label, extra, size, headers, status, *shim) in enumerate(variants(url, KIB)):
        argv_of = (lambda n: runner.argv(n, size, url, headers, status))
        ir, gets, writes = per_op(runner, argv_of, extra, "reval-%d" % i, lo, hi, argv_of(1))
        print("  %-40s %-4s %8.0f instructions, %.2f gets, %.2f writes per transfer"
              % (label, shim[0] if shim else "", ir, gets, writes), flush=True)
        add_row(rows, "reval-cg", "1 KiB " + label, "instructions/transfer", shim, ir,
                gets=gets, writes=writes)

    rounds = 2 if args.quick else args.rounds
    print("\n   wall: median per transfer, median of %d interleaved rounds" % rounds)
    for size, n in ((KIB, 200 if args.quick else 1000), (MIB, 30 if args.quick else 100)):
        url = base + ("1k.bin" if size == KIB else "1m.bin")
        vs = variants(url, size)
        for label, extra, vsize, headers, status, *shim in vs:
            if "CURLCACHE_NAME" in extra:
                runner.run(runner.argv(1, vsize, url, headers, status), extra)
        meds = [[] for _ in vs]
        requests = [0] * len(vs)
        for r in range(rounds):
            order = list(range(len(vs)))[::1 if r % 2 == 0 else -1]
            for i in order:
                label, extra, vsize, headers, status, *shim = vs[i]
                before = origin_requests(d)
                meds[i].append(float(runner.wall(runner.argv(n, vsize, url, headers, status),
                                                 extra)))
                requests[i] = origin_requests(d) - before
        tag = "1 KiB " if size == KIB else "1 MiB "
        for i, (label, extra, vsize, headers, status, *shim) in enumerate(vs):
            m = statistics.median(meds[i])
            print("  %-46s %-4s %9.1f us  (runs %s; origin requests per run of %d+2: %d)"
                  % (tag + label, shim[0] if shim else "", m,
                     " ".join("%.1f" % x for x in meds[i]), n, requests[i]), flush=True)
            add_row(rows, "reval-wall", tag + label, "us/transfer (wall)", shim, m)


def add_row(rows, part, case, unit, shim, value, **more):
    for row in rows:
        if row["part"] == part and row["case"] == case:
            break
    else:
        row = {"part": part, "case": case, "unit": unit, "values": {}}
        rows.append(row)
    row["values"][shim[0] if shim else "no shim"] = value
    for k, v in more.items():
        row.setdefault(k, {})[shim[0] if shim else "no shim"] = v


def report(args, rows):
    names = [n for n, _ in args.shims]
    cols = ["no shim"] + names + (["%s/%s" % tuple(names)] if len(names) == 2 else [])
    print("\nSummary. [g]: storage gets per hit; [g/w]: gets/writes per transfer; (x): times "
          "the bare 304 of the same size")
    print("%-62s %-22s" % ("case", "unit") + "".join("%24s" % c for c in cols))
    bare = {}
    for row in rows:
        if "bare 304" in row["case"]:
            bare[row["part"], row["case"][:6]] = row["values"]["no shim"]
    for row in rows:
        cells = []
        for c in cols[:1 + len(names)]:
            v = row["values"].get(c)
            if v is None:
                cells.append("-")
                continue
            text = "{:,.0f}".format(v) if v >= 100 else "%.1f" % v
            if row["part"] == "fresh":
                text += " [%g]" % round(row["gets"][c], 2)
            elif row["part"] == "reval-cg" and c != "no shim":
                text += " [%g/%g]" % (round(row["gets"][c], 2), round(row["writes"][c], 2))
            ref = bare.get((row["part"], row["case"][:6]))
            if row["part"] != "fresh" and ref and c != "no shim":
                text += " (%.2fx)" % (v / ref)
            cells.append(text)
        if len(names) == 2:
            a, b = (row["values"].get(n) for n in names)
            cells.append("%.3f" % (a / b) if a and b else "-")
        print("%-62s %-22s" % (row["case"], row["unit"]) + "".join("%24s" % c for c in cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shim", action="append", required=True, metavar="NAME=PATH",
                        help="a libcurlcache-preload.so to measure (once or twice)")
    parser.add_argument("--loop", help="curl_loop (default: bin/curl_loop of the first "
                        "shim's build folder)")
    parser.add_argument("--rounds", type=int, default=5, help="wall rounds (default 5)")
    parser.add_argument("--quick", action="store_true", help="smaller N, 2 wall rounds")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch folder (callgrind files for callgrind_annotate)")
    args = parser.parse_args()
    args.shims = []
    for spec in args.shim:
        name, _, path = spec.rpartition("=")
        args.shims.append((name or "shim%d" % (len(args.shims) + 1), os.path.abspath(path)))
    if len(args.shims) > 2:
        parser.error("at most two shims")
    loop = args.loop or os.path.join(os.path.dirname(os.path.dirname(args.shims[0][1])),
                                     "bin", "curl_loop")
    for path in [p for _, p in args.shims] + [loop]:
        if not os.path.isfile(path):
            print("bench-http-rules: %s is missing (build curlcache-preload and curl_loop)"
                  % path)
            return 1
    if shutil.which("valgrind") is None or shutil.which("nginx") is None:
        print("bench-http-rules: needs valgrind and nginx")
        return 1
    t0 = time.monotonic()
    d = tempfile.mkdtemp(prefix="curlcache-bench-http-rules-")
    os.chmod(d, 0o755)
    print("bench-http-rules %s, load %s; scratch %s" % (
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        " ".join("%.1f" % x for x in os.getloadavg()), d))
    for name, path in args.shims:
        print("  %s = %s" % (name, path))
    rows = []
    ngx = start_nginx(d)
    try:
        if not ngx.ok:
            print("bench-http-rules: nginx did not start: %s" % ngx.why())
            return 1
        print("nginx origin pid %d, port %d" % (ngx.proc.pid, ngx.port))
        runner = Runner(os.path.abspath(loop), d)
        with ScriptedOrigin() as scripted:
            print("scripted origin pid %d, port %d" % (scripted.proc.pid, scripted.port))
            fresh_hits(args, runner, d, ngx, scripted, rows)
        revalidated(args, runner, d, ngx, rows)
    finally:
        ngx.stop()
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)
    report(args, rows)
    print("total %.0f s" % (time.monotonic() - t0))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"shims": args.shims, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
