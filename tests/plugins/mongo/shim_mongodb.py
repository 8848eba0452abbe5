#!/usr/bin/env python3
"""The mongodb or gridfs plugin behind the preload shim, against the project's MongoDB
wire-protocol test server (mongo_server.py over mongomock, started here on a free 127.0.0.1
port and killed by PID; not a real mongod):

- the server named by CURLCACHE_MONGODB_URL (CURLCACHE_GRIDFS_URL), the config file
  naming none;
- curl twice: byte-identical to a run without the shim, one origin request;
- the server killed under a running program (one curl process fetching a slow URL, then
  more): its transfers all succeed, byte-identical, with one warning per failed operation;
  restarted (empty: the test server keeps its data in memory), caching resumes;
- curlcache export --to a sqlite cache and import --from it again;
- 8 curl processes at once for one slow URL: one origin request (coalescing on lock
  documents);
- both plugins in one process (two copies of libmongoc): nothing on stderr;
- a process with backend = "sqlite" loads no plugin and no libmongoc, while one with the
  plugin loads it (which carries libmongoc inside: no libmongoc.so).

    shim_mongodb.py --shim PATH --plugin-dir DIR --server PATH/mongo_server.py --cli PATH
                    [--backend gridfs]

Exit status 0 pass, 1 fail, 77 shim not built.
"""

import argparse
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from plugin_shim import (coalescing, curl_twice, export_round_trip, harness,  # noqa: E402
                         killed_under_a_running_program, loaded_files)


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


def write_config(path, backend, plugin, plugin_dir, url=None):
    with open(path, "w") as f:
        f.write('backend = "%s"\nplugin_dir = "%s"\n[%s]\ndatabase = "shim_cache"\n'
                'connect_timeout = "5s"\n' % (backend, plugin_dir, plugin))
        if url is not None:
            f.write('url = "%s"\n' % url)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shim", required=True)
    p.add_argument("--plugin-dir", required=True)
    p.add_argument("--server", required=True)
    p.add_argument("--cli", required=True)
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
                # The server's URL from the environment only (CURLCACHE_<PLUGIN>_URL).
                write_config(config, backend, backend, args.plugin_dir)
                env = harness.clean_env(home, {"CURLCACHE_CONFIG": config,
                                               "CURLCACHE_%s_URL" % backend.upper(): mongo.url})
                url = origin.base + "/bytes/200000"

                plain = curl_twice(check, origin, scratch, env, shim, url)
                killed_under_a_running_program(check, origin, scratch, env, shim, mongo.kill, backend)
                mongo.start()  # on the same port: the variable still names it
                before = origin.count()
                again = [harness.run(["curl", "-s", url], scratch, env, shim) for _ in range(2)]
                check(all(r.stdout == plain.stdout for r in again) and origin.count() - before == 1,
                      "restarted (empty): caching resumes, one origin request for two curls")

                export_round_trip(check, origin, scratch, env, shim, args.cli, url, plain)

                # Coalescing on lock documents: 8 processes, one slow URL, one origin request.
                coalescing(check, origin, scratch, env, shim)

                # Both plugins in one process (a tier): two copies of libmongoc, the second of
                # which cannot have the shared-memory counters; libmongoc's start-up warning
                # about that must not reach the program's stderr.
                both = os.path.join(scratch, "both.toml")
                with open(both, "w") as f:
                    f.write('backend = ["mongodb", "gridfs"]\nplugin_dir = "%s"\n' % args.plugin_dir)
                    for plugin in ("mongodb", "gridfs"):
                        f.write('[%s]\nurl = "%s"\ndatabase = "both"\n' % (plugin, mongo.url))
                tiered = harness.run(["curl", "-s", url], scratch,
                                     harness.clean_env(home, {"CURLCACHE_CONFIG": both}), shim)
                check(tiered.stdout == plain.stdout and tiered.stderr == b"",
                      "mongodb and gridfs in one process: nothing on stderr: %r" % tiered.stderr)

                # What a process loads: sqlite -> no plugin, no libmongoc; ours -> the plugin.
                def loaded(name):
                    cfg = os.path.join(scratch, name + ".toml")
                    write_config(cfg, name, backend, args.plugin_dir, mongo.url)
                    return loaded_files(scratch, home, shim, url, name, cfg)

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
