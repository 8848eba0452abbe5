#!/usr/bin/env python3
"""The mongodb or gridfs plugin behind the preload shim, against the project's MongoDB
wire-protocol test server (mongo_server.py over mongomock, started here on a free 127.0.0.1
port and killed by PID; not a real mongod):

- curl twice: byte-identical to a run without the shim, one origin request;
- the server killed under a running program (one curl process fetching a slow URL, then
  more): its transfers all succeed, byte-identical, with one warning per failed operation;
  restarted (empty: the test server keeps its data in memory), caching resumes;
- 8 curl processes at once for one slow URL: one origin request (coalescing on lock
  documents);
- a process with backend = "sqlite" loads no plugin and no libmongoc, while one with the
  plugin loads it (which carries libmongoc inside: no libmongoc.so).

    shim_mongodb.py --shim PATH --plugin-dir DIR --server PATH/mongo_server.py [--backend gridfs]

Exit status 0 pass, 1 fail, 77 shim not built.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shim"))
import harness  # noqa: E402


class Mongo:
    """mongo_server.py: start() awaits the port line it prints once it listens."""

    def __init__(self, script):
        self.script = script
        self.port = 0
        self.proc = None

    @property
    def url(self):
        return "mongodb://127.0.0.1:%d/" % self.port

    def start(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", self.script, "--port", str(self.port)],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.port = int(self.proc.stdout.readline())

    def kill(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None


def await_true(ready, limit=30):
    deadline = time.monotonic() + limit
    pause = 0.001
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError("not ready in %d s" % limit)
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def write_config(path, backend, plugin, plugin_dir, url):
    with open(path, "w") as f:
        f.write('backend = "%s"\nplugin_dir = "%s"\n[%s]\nurl = "%s"\ndatabase = "shim_cache"\n'
                'connect_timeout = "500ms"\n' % (backend, plugin_dir, plugin, url))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shim", required=True)
    p.add_argument("--plugin-dir", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--backend", default="mongodb")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    shim = harness.shim_or_skip(args.shim, False)
    backend = args.backend
    failures = []

    def check(ok, what):
        print("%s: %s" % ("ok" if ok else "FAIL", what))
        if not ok:
            failures.append(what)

    with harness.Scratch(args.keep, "curlcache-mongoshim-") as scratch:
        mongo = Mongo(args.server)
        mongo.start()
        try:
            with harness.Origin(scratch) as origin:
                home = os.path.join(scratch, "home")
                config = os.path.join(scratch, "mongo.toml")
                write_config(config, backend, backend, args.plugin_dir, mongo.url)
                env = harness.clean_env(home, {"CURLCACHE_CONFIG": config})
                url = origin.base + "/bytes/200000"

                # curl twice: byte-identical, one origin request.
                plain = harness.run(["curl", "-s", url], scratch, env)
                before = origin.count()
                first = harness.run(["curl", "-s", url], scratch, env, shim)
                second = harness.run(["curl", "-s", url], scratch, env, shim)
                check(first.stdout == plain.stdout and second.stdout == plain.stdout,
                      "curl twice under the shim: byte-identical to curl alone")
                check(first.stderr == b"" and second.stderr == b"",
                      "no warning: %r %r" % (first.stderr, second.stderr))
                check(origin.count() - before == 1, "the second curl made no origin request")

                # Killed under a running program: curl fetches a slow URL, the server dies
                # meanwhile; every transfer still succeeds, with one warning per operation.
                slow = origin.base + "/slow/1500"
                others = [origin.base + "/bytes/%d" % n for n in (1000, 2000, 3000)]
                expected = harness.run(["curl", "-s", slow] + others, scratch, env).stdout
                before = origin.count()
                running = subprocess.Popen(["curl", "-s", slow] + others, cwd=scratch,
                                           env=dict(env, LD_PRELOAD=shim), stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE)
                await_true(lambda: origin.count() > before or running.poll() is not None)
                mongo.kill()
                out, err = running.communicate(timeout=60)
                check(running.returncode == 0 and out == expected,
                      "a program whose server died mid-run got every byte")
                lines = err.splitlines()
                operations = [l.split(b" failed:")[0] for l in lines]
                check(1 <= len(lines) <= 2 and len(set(operations)) == len(lines) and
                      all(l.startswith(b"curlcache: warning: %s backend: " % backend.encode())
                          for l in lines),
                      "... and one warning per failed operation: %r" % err)
                mongo.start()
                before = origin.count()
                again = [harness.run(["curl", "-s", url], scratch, env, shim) for _ in range(2)]
                check(all(r.stdout == plain.stdout for r in again) and origin.count() - before == 1,
                      "restarted (empty): caching resumes, one origin request for two curls")

                # Coalescing: 8 processes, one slow URL, one origin request.
                once = origin.base + "/slow/1501"
                before = origin.count()
                procs = [subprocess.Popen(["curl", "-s", once], cwd=scratch,
                                          env=dict(env, LD_PRELOAD=shim), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE) for _ in range(8)]
                outs = [pr.communicate(timeout=60) for pr in procs]
                check(all(o == outs[0] for o in outs) and all(pr.returncode == 0 for pr in procs),
                      "8 concurrent curls: the same output")
                check(origin.count() - before == 1,
                      "8 concurrent curls: one origin request (got %d)" % (origin.count() - before))

                # What a process loads: sqlite -> no plugin, no libmongoc; ours -> the plugin.
                def loaded(name):
                    cfg = os.path.join(scratch, name + ".toml")
                    write_config(cfg, name, backend, args.plugin_dir, mongo.url)
                    log = os.path.join(scratch, "ld-" + name)
                    e = harness.clean_env(home, {"CURLCACHE_CONFIG": cfg, "LD_DEBUG": "files",
                                                 "LD_DEBUG_OUTPUT": log,
                                                 "CURLCACHE_NAME": os.path.join(scratch, "s.sqlite")})
                    r = harness.run(["curl", "-s", url], scratch, e, shim)
                    text = b""
                    for entry in os.listdir(scratch):
                        if entry.startswith("ld-" + name + "."):
                            with open(os.path.join(scratch, entry), "rb") as f:
                                text += f.read()
                    return r, text

                r, text = loaded("sqlite")
                check(r.stdout == plain.stdout and b"file=" in text,
                      "backend = sqlite: the load log was written")
                check(b"libcurlcache-backend" not in text and b"libmongoc" not in text and b"libbson" not in text,
                      "backend = sqlite loads no plugin and no libmongoc")
                r, text = loaded(backend)
                check(("libcurlcache-backend-%s.so" % backend).encode() in text,
                      "backend = %s loads the plugin (the check can see it)" % backend)
                check(b"libmongoc-1.0.so" not in text, "... which carries libmongoc inside (no libmongoc-1.0.so)")
        finally:
            mongo.kill()
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
