#!/usr/bin/env python3
"""Crash consistency: real `curl` processes under the shim are SIGKILLed at random points of
downloads (bodies of 1 KiB to 20 MiB that scripts/origin.py sends in paced pieces, so kills
land before, in and after the body, and in the commit), several at once, on a sqlite and a
filesystem cache. Afterwards

  - every entry the cache serves is byte-identical to the origin's body for its URL: through
    `curlcache export --har -` and a curl run under the shim (and, for a sample,
    `curlcache show KEY --body`);
  - after `curlcache purge` nothing of the dead writers is left in the cache folder: no temp
    files, and (sqlite) no body file that no row names.

    crash_consistency.py --shim PATH --cli PATH [--kills N] [--seed S] [--keep] [--self-check]

The RNG is seeded (printed; --seed repeats a run). --kills is per backend (default 100).
--self-check flips one byte of what the origin's body is taken to be: it passes only when
the comparisons report every backend's bodies as different.
Exit status 0 pass, 1 fail, 77 shim or CLI not built.
"""

import base64
import json
import math
import os
import random
import selectors
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

sys.path.insert(0, os.path.join(harness.SOURCE_DIR, "scripts"))
from origin import pattern_bytes  # noqa: E402

MIN_BODY = 1024
MAX_BODY = 20 << 20
AT_ONCE = 4              # curl processes running at the same time
PIECE = 64 * 1024        # the origin writes the body in pieces of this size...
PIECE_MS = 1             # ...with this pause between them
SHOWN = 8                # entries checked with `curlcache show --body` too
REUSED = 0.25            # share of downloads of a URL already used (replace, hit, coalesce)


def body_size(rng):
    """Log-uniform between MIN_BODY and MAX_BODY: as many small bodies as large ones."""
    return int(math.exp(rng.uniform(math.log(MIN_BODY), math.log(MAX_BODY))))


def size_of(url):
    return int(url.split("/paced/")[1].split("?")[0])


class Run:
    def __init__(self, scratch, backend, cli, shim, origin, rng, self_check):
        self.backend = backend
        self.cli = cli
        self.shim = shim
        self.origin = origin
        self.rng = rng
        self.self_check = self_check
        self.folder = os.path.join(scratch, backend)
        os.makedirs(self.folder)
        name = os.path.join(self.folder, "cache.sqlite" if backend == "sqlite" else "tree")
        self.name = name
        self.env = harness.clean_env(os.path.join(self.folder, "home"),
                                     {"CURLCACHE_BACKEND": backend, "CURLCACHE_NAME": name})
        self.urls = []
        self.work = os.path.join(self.folder, "out")
        os.makedirs(self.work)
        self.stats = {"kills": 0, "mid_body": 0, "after_body": 0, "completed": 0, "failed": 0}
        self.problems = []

    def url(self):
        if self.urls and self.rng.random() < REUSED:
            return self.rng.choice(self.urls)
        url = "%s/paced/%d?piece=%d&ms=%d&u=%d" % (self.origin.base, body_size(self.rng), PIECE,
                                                    PIECE_MS, len(self.urls))
        self.urls.append(url)
        return url

    def curl(self, url, stdout):
        env = dict(self.env, LD_PRELOAD=self.shim)
        return subprocess.Popen(["curl", "-s", url], env=env, cwd=self.work,
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE)

    def kill_point(self, size):
        """After how many body bytes curl's stdout has shown to kill it (None: never)."""
        roll = self.rng.random()
        if roll < 0.15:
            return None            # completes: its body is checked, its entry stored
        if roll < 0.25:
            return 0               # at start-up, before or while it connects
        if roll < 0.35:
            return size            # the whole body is out: the shim is committing
        return self.rng.randrange(1, size)

    def round(self):
        """AT_ONCE downloads, each killed once its stdout (a pipe read here, so no timing
        guesses) has shown a random number of body bytes - some never."""
        running = {}
        selector = selectors.DefaultSelector()
        for _ in range(AT_ONCE):
            url = self.url()
            proc = self.curl(url, subprocess.PIPE)
            kill_at = self.kill_point(size_of(url))
            running[proc.stdout] = [proc, url, kill_at, bytearray()]
            selector.register(proc.stdout, selectors.EVENT_READ)
            if kill_at == 0:
                proc.kill()
        deadline = time.monotonic() + harness.RUN_TIMEOUT
        while running:
            ready = selector.select(timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                for proc, url, _, _ in running.values():
                    proc.kill()
                    self.problems.append("curl %s hung for %d s" % (url, harness.RUN_TIMEOUT))
                deadline = time.monotonic() + harness.RUN_TIMEOUT
                continue
            for key, _ in ready:
                proc, url, kill_at, got = running[key.fileobj]
                chunk = os.read(key.fileobj.fileno(), 1 << 20)
                got += chunk
                if chunk and kill_at is not None and len(got) >= kill_at:
                    proc.kill()
                if not chunk:
                    selector.unregister(key.fileobj)
                    del running[key.fileobj]
                    self.finished(proc, url, bytes(got))
        selector.close()

    def finished(self, proc, url, got):
        proc.stdout.close()
        stderr = proc.stderr.read()
        proc.stderr.close()
        proc.wait()
        if proc.returncode == -signal.SIGKILL:
            self.stats["kills"] += 1
            if 0 < len(got) < size_of(url):
                self.stats["mid_body"] += 1
            elif len(got) == size_of(url):
                self.stats["after_body"] += 1
        elif proc.returncode == 0:
            self.stats["completed"] += 1
            self.check_bytes("curl (not killed) " + url, url, got)
        else:
            self.stats["failed"] += 1
            self.problems.append("curl %s exited %d: %r" % (url, proc.returncode, stderr))

    def check_bytes(self, what, url, data):
        want = pattern_bytes(size_of(url))
        if self.self_check:
            want = want[:-1] + bytes([want[-1] ^ 1])
        if data != want:
            self.problems.append(harness.describe_difference(what, want, data)
                                 .replace("without shim", "origin")
                                 .replace("with shim", "served")
                                 .replace(" with)", " served)"))

    def cli_run(self, *args):
        proc = subprocess.run([self.cli] + list(args), env=self.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=harness.RUN_TIMEOUT * 4)
        if proc.returncode != 0:
            self.problems.append("curlcache %s exited %d: %s" % (" ".join(args), proc.returncode,
                                                                 proc.stderr.decode().strip()))
        return proc.stdout

    def verify(self):
        entries = json.loads(self.cli_run("list", "--json") or b'{"entries": []}')["entries"]
        # export covers every entry; show (one process each) a sample.
        for entry in self.rng.sample(entries, min(SHOWN, len(entries))):
            self.check_bytes("curlcache show --body " + entry["url"], entry["url"],
                             self.cli_run("show", entry["key"], "--body"))
        har = json.loads(self.cli_run("export", "--har", "-") or b'{"log": {"entries": []}}')
        exported = har["log"]["entries"]
        for item in exported:
            content = item["response"]["content"]
            text = content.get("text", "")
            data = (base64.b64decode(text) if content.get("encoding") == "base64"
                    else text.encode("utf-8"))
            self.check_bytes("curlcache export --har " + item["request"]["url"],
                             item["request"]["url"], data)
        if len(exported) != len(entries):
            self.problems.append("export wrote %d entries, list shows %d"
                                 % (len(exported), len(entries)))
        # Again under the shim: every stored URL (a hit must be the origin's body) and a few
        # others (a miss after the kills stores and serves the right bytes).
        stored = {entry["url"] for entry in entries}
        others = [url for url in self.urls if url not in stored]
        self.refetched = sorted(stored) + self.rng.sample(others, min(4, len(others)))
        for url in self.refetched:
            proc = self.curl(url, subprocess.PIPE)
            out, stderr = proc.communicate(timeout=harness.RUN_TIMEOUT)
            if proc.returncode != 0:
                self.problems.append("check curl %s exited %d: %r" % (url, proc.returncode,
                                                                     stderr))
            self.check_bytes("curl under the shim " + url, url, out)
        return len(entries)

    def leftovers(self):
        """What dead writers left in the cache folder: temp files anywhere, and (sqlite)
        body files no row names."""
        found = []
        self.leftover_bytes = 0
        for root, _, files in os.walk(self.folder):
            if os.path.join(self.folder, "home") in root:
                continue
            for name in files:
                if name.startswith(("tmp-", ".tmp-")):
                    path = os.path.join(root, name)
                    self.leftover_bytes += os.path.getsize(path)
                    found.append("%s (%d bytes)" % (os.path.relpath(path, self.folder),
                                                    os.path.getsize(path)))
        if self.backend == "sqlite":
            bodies = self.name + ".bodies"
            db = sqlite3.connect("file:%s?mode=ro" % self.name, uri=True)
            named = {row[0] for row in db.execute("SELECT body FROM entries WHERE body IS NOT NULL")}
            db.close()
            for root, _, files in os.walk(bodies):
                for name in files:
                    rel = os.path.relpath(os.path.join(root, name), bodies)
                    if os.sep in rel and rel not in named:
                        found.append("orphan body file %s" % rel)
        return found


def main():
    parser = harness.arguments(__doc__)
    parser.add_argument("--cli", help="path of the curlcache command")
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs per backend")
    parser.add_argument("--seed", type=int, help="the RNG seed (default: random, printed)")
    args = parser.parse_args()
    shim = harness.shim_or_skip(args.shim, False)
    if not args.cli or not os.path.isfile(args.cli):
        print("SKIP: the curlcache command is not built (%r)" % args.cli)
        return harness.SKIP
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    print("seed %d (repeat with --seed %d)" % (seed, seed))
    sys.stdout.flush()
    failed = 0
    with harness.Scratch(keep=args.keep) as scratch, harness.Origin(scratch) as origin:
        for backend in ("sqlite", "filesystem"):
            rng = random.Random("%d-%s" % (seed, backend))
            started = time.monotonic()
            run = Run(scratch, backend, args.cli, shim, origin, rng, args.self_check)
            rounds = 0
            while run.stats["kills"] < args.kills and rounds < args.kills * 2:
                run.round()
                rounds += 1
            killing = time.monotonic() - started
            before = run.leftovers()
            before_bytes = run.leftover_bytes
            served = run.verify()
            run.cli_run("purge")
            left = run.leftovers()
            problems = run.problems + ["after purge: %s" % item for item in left]
            print("%s %s: %d rounds, %d kills (%d mid-body, %d after it), %d downloads completed,"
                  " %d failed;"
                  " %d entries verified (%d URLs re-fetched); leftovers before purge: %d"
                  " (%.1f MiB of temp files), after: %d; %.1f s (%.1f s of it killing)"
                  % ("FAIL" if problems else "PASS", backend, rounds, run.stats["kills"],
                     run.stats["mid_body"], run.stats["after_body"], run.stats["completed"], run.stats["failed"], served,
                     len(run.refetched), len(before), before_bytes / 1048576.0, len(left),
                     time.monotonic() - started, killing))
            for p in problems[:20]:
                print("    " + p)
            if len(problems) > 20:
                print("    ... and %d more" % (len(problems) - 20))
            if run.stats["kills"] < args.kills:
                print("    only %d kills in %d rounds" % (run.stats["kills"], rounds))
                problems.append("too few kills")
            sys.stdout.flush()
            if args.self_check:
                found = any("differs" in p for p in run.problems)
                print("%s %s: injected difference %s" % ("PASS" if found else "FAIL", backend,
                                                         "detected" if found else "missed"))
                failed += 0 if found else 1
            else:
                failed += 1 if problems else 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
