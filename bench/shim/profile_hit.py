#!/usr/bin/env python3
"""Where a shim hit's instructions go: callgrind of curl_loop under the shim, per hit.

    profile_hit.py --loop BUILD/bin/curl_loop --shim BUILD/lib/libcurlcache-preload.so
                   [--backend sqlite|memory] [--rows 40] [--keep DIR]

A local origin (Python's http.server on a free loopback port, 1 KiB, max-age one day) is
fetched once to store the entry; then curl_loop runs under valgrind --tool=callgrind at
N=100 and N=1100 fresh hits of it. Start-up is the same in both, so (Ir(1100) - Ir(100)) /
1000 is the cost of one hit, for the whole loop and for each function (inclusive: with what
it calls). It prints the total, the timed transfer (curl_loop's transfer(): setopt, perform,
getinfo; what bench-shim's target is judged on) and the largest functions. Deterministic
(instruction counts), so it is the figure to compare two builds with on a noisy machine;
bench_shim.py part 1 gives the same totals beside the wall-clock medians. valgrind and
callgrind_annotate are needed (scripts/install-deps.sh installs valgrind).
"""

import argparse
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

from bench_common import clean_env

BODY = b"x" * 1024


class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("Cache-Control", "max-age=86400")
        self.send_header("ETag", '"profile"')
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


def inclusive(callgrind_out):
    """{function: inclusive Ir} of one callgrind file (callgrind_annotate --inclusive=yes)."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                           callgrind_out], capture_output=True, text=True, check=True).stdout
    out = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) (?:\([^)]*\)\s+)?(\S.*)$", line)
        if not m or m.group(2).startswith("=>") or ":" not in m.group(2):
            continue
        # A function is listed under the path it was compiled from, once more under an inlined
        # header's path, and with its object in brackets: it is keyed by the file's name and
        # the function (the largest figure of the duplicates), so the two runs line up.
        where, _, function = re.sub(r" \[[^\]]*\]$", "", m.group(2).strip()).partition(":")
        name = os.path.basename(where) + ":" + function
        out[name] = max(out.get(name, 0), int(m.group(1).replace(",", "")))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", required=True)
    parser.add_argument("--shim", required=True)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "memory"])
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--keep", help="a folder to keep the callgrind files in")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_annotate"):
        if shutil.which(tool) is None:
            sys.exit("profile_hit.py: %s is not installed (scripts/install-deps.sh)" % tool)

    d = args.keep or tempfile.mkdtemp(prefix="curlcache-profile-")
    os.makedirs(d, exist_ok=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/1k.bin" % server.server_address[1]
    # A private HOME and XDG folders (the cache and its statistics live there), no proxy.
    env = clean_env(d, {"LD_PRELOAD": os.path.abspath(args.shim),
                        "CURLCACHE_BACKEND": args.backend})
    try:
        if args.backend == "sqlite":  # stores the entry the runs below hit (memory: the
            # warm-up transfers of each run store it)
            subprocess.run([args.loop, "-n", "5", "-w", "1", "-e", "1024", url], env=env,
                           check=True, stdout=subprocess.DEVNULL)
        totals, functions = {}, {}
        for n in (100, 1100):
            out = os.path.join(d, "callgrind-%d.out" % n)
            subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                            args.loop, "-n", str(n), "-w", "2", "-e", "1024", url],
                           env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            with open(out) as f:
                totals[n] = next(int(line.split()[1]) for line in f
                                 if line.startswith(("summary:", "totals:")))
            functions[n] = inclusive(out)
    finally:
        server.shutdown()
    per_hit = (totals[1100] - totals[100]) / 1000
    rows = sorted(((functions[1100].get(k, 0) - functions[100].get(k, 0)) / 1000, k)
                  for k in functions[1100])
    timed = next((v for v, k in rows
                  if re.fullmatch(r"curl_loop\.c:transfer(\.[a-z]+\.\d+)?", k)), None)
    print("%s 1 KiB hit, instructions per hit (callgrind, N=1100 minus N=100): %.0f"
          % (args.backend, per_hit))
    if timed is not None:
        print("  of which the timed transfer (curl_loop's transfer()): %.0f" % timed)
    print("  largest functions, inclusive, per hit:")
    for v, k in reversed(rows[-args.rows:]):
        print("  %8.0f  %s" % (v, k[:150]))
    if args.keep is None:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
