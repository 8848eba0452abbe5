#!/usr/bin/env python3
"""The postgres plugin behind the preload shim, against a private PostgreSQL 15 started
here (initdb + postgres on a free 127.0.0.1 port as the user postgres, stopped by PID):

- curl twice: byte-identical to a run without the shim, one origin request;
- the server killed under a running program (one curl process fetching a slow URL, then
  more): its transfers all succeed, byte-identical, with one warning per failed operation
  (a put, then gets); restarted, a new
  process is answered from the entries stored before the kill;
- 8 curl processes at once for one slow URL: one origin request (coalescing on
  pg_try_advisory_lock);
- a process with backend = "sqlite" loads no plugin and no libpq, while one with
  backend = "postgres" loads the plugin (which carries its libpq inside: no libpq.so).

    shim_postgres.py --shim PATH --plugin-dir DIR

Exit status 0 pass, 1 fail, 77 shim not built.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shim"))
import harness  # noqa: E402
from plugin_shim import await_true, coalescing, curl_twice, killed_under_a_running_program, loaded_files  # noqa: E402


def pg_bindir():
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
    except FileNotFoundError:
        out = ""
    for d in (out, "/usr/lib/postgresql/15/bin"):
        if d and os.path.exists(os.path.join(d, "postgres")):
            return d
    return None


class Postgres:
    """initdb once; start() runs postgres through setpriv (which replaces itself with the
    server, so the PID is the server's) and awaits pg_isready; stop()/kill() by that PID."""

    def __init__(self):
        self.bindir = pg_bindir()
        # Its own folder: the user postgres cannot enter the test's private scratch folder.
        self.dir = tempfile.mkdtemp(prefix="curlcache-pg-")
        self.as_postgres = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        subprocess.run(self.as_postgres + [os.path.join(self.bindir, "initdb"), "-D",
                                           os.path.join(self.dir, "data"), "-U", "postgres",
                                           "--auth=trust", "--no-sync", "--no-instructions"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.port = harness.free_port()
        self.proc = None

    @property
    def url(self):
        return "postgresql://postgres@127.0.0.1:%d/postgres" % self.port

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            self.as_postgres + [os.path.join(self.bindir, "postgres"), "-D",
                                os.path.join(self.dir, "data"), "-p", str(self.port), "-k",
                                self.dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        pid_file = os.path.join(self.dir, "data", "postmaster.pid")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ours = False
            if os.path.exists(pid_file):
                with open(pid_file) as f:
                    ours = f.readline().strip() == str(self.proc.pid)
            if ours and subprocess.run(
                    [os.path.join(self.bindir, "pg_isready"), "-q", "-h", "127.0.0.1", "-p",
                     str(self.port)]).returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)  # pg_isready has no wait-for-ready mode shorter than 1 s
        raise RuntimeError("postgres did not start; see %s/server.log" % self.dir)

    def stop(self, signal=2):  # SIGINT: fast shutdown
        if self.proc is not None:
            self.proc.send_signal(signal)
            self.proc.wait(timeout=30)
            self.proc = None

    def kill(self):
        self.stop(9)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def write_config(path, backend, plugin_dir, url, table):
    with open(path, "w") as f:
        f.write('backend = "%s"\nplugin_dir = "%s"\n[postgres]\nurl = "%s"\ntable = "%s"\n'
                'connect_timeout = "5s"\n' % (backend, plugin_dir, url, table))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shim", required=True)
    p.add_argument("--plugin-dir", required=True)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    shim = harness.shim_or_skip(args.shim, False)
    if pg_bindir() is None:
        print("PostgreSQL 15 is not installed (scripts/install-deps.sh)")
        return 77
    failures = []

    def check(ok, what):
        print("%s: %s" % ("ok" if ok else "FAIL", what))
        if not ok:
            failures.append(what)

    with harness.Scratch(args.keep, "curlcache-pgshim-") as scratch:
        pg = Postgres()
        pg.start()
        try:
            with harness.Origin(scratch) as origin:
                home = os.path.join(scratch, "home")
                config = os.path.join(scratch, "pg.toml")
                write_config(config, "postgres", args.plugin_dir, pg.url, "shim_cache")
                env = harness.clean_env(home, {"CURLCACHE_CONFIG": config})
                url = origin.base + "/bytes/200000"

                # curl twice: byte-identical, one origin request.
                plain = curl_twice(check, origin, scratch, env, shim, url)
                killed_under_a_running_program(check, origin, scratch, env, shim, pg.kill, "postgres")
                pg.start()
                before = origin.count()
                again = harness.run(["curl", "-s", url], scratch, env, shim)
                check(again.stdout == plain.stdout and origin.count() == before,
                      "restarted: a new process is answered from the entry stored before")

                # Coalescing: 8 processes, one slow URL, one origin request.
                coalescing(check, origin, scratch, env, shim)

                # What a process loads: sqlite -> no plugin, no libpq; postgres -> the plugin.
                def loaded(backend):
                    cfg = os.path.join(scratch, backend + ".toml")
                    write_config(cfg, backend, args.plugin_dir, pg.url, "shim_cache")
                    return loaded_files(scratch, home, shim, url, backend, cfg)

                r, text = loaded("sqlite")
                check(r.stdout == plain.stdout and b"file=" in text,
                      "backend = sqlite: the load log was written")
                check(b"libcurlcache-backend" not in text and b"libpq" not in text,
                      "backend = sqlite loads no plugin and no libpq")
                r, text = loaded("postgres")
                check(b"libcurlcache-backend-postgres.so" in text,
                      "backend = postgres loads the plugin (the check can see it)")
                check(b"libpq" not in text, "... which carries libpq inside (no libpq.so)")
        finally:
            pg.stop()
            pg.remove()
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
