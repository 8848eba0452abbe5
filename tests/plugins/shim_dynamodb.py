#!/usr/bin/env python3
"""The dynamodb plugin behind the preload shim, against dynalite (npm: DynamoDB's API in
node) started here through dynalite.js on a free 127.0.0.1 port and stopped by PID:

- curl twice, for a small body and one stored as chunk items: byte-identical to a run
  without the shim, one origin request each;
- the server killed under a running program (one curl process fetching a slow URL, then
  more): its transfers all succeed, byte-identical, with one warning per failed operation;
  restarted (dynalite keeps nothing: the table is created again), caching resumes;
- curlcache export --to a sqlite cache, clear, import --from it: the entry is served again
  without an origin request;
- 8 curl processes at once for one slow URL: one origin request (coalescing locks as
  conditional writes);
- a tier sqlite,dynamodb: a hit from the sqlite tier, and from dynamodb once sqlite's file
  is gone.

    shim_dynamodb.py --shim PATH --plugin-dir DIR --cli CURLCACHE [--dynalite MODULE_DIR]

Exit status 0 pass, 1 fail, 77 shim not built.
"""

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shim"))
import harness  # noqa: E402
from plugin_shim import (coalescing, curl_twice, export_round_trip,  # noqa: E402
                         killed_under_a_running_program)  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODULE = "/usr/local/lib/node_modules/dynalite"


class Dynalite:
    """node dynalite.js: prints its port once it listens; the PID is node's."""

    def __init__(self, module):
        self.module = module
        self.port = 0
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "dynalite.js"), self.module,
                                      str(self.port)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.port = int(self.proc.stdout.readline())

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None


def write_config(path, backend, plugin_dir, endpoint, table, name=None):
    with open(path, "w") as f:
        tiers = ", ".join('"%s"' % b for b in backend.split(","))
        f.write('backend = [%s]\nplugin_dir = "%s"\n' % (tiers, plugin_dir))
        if name:
            f.write('name = "%s"\n' % name)
        f.write('[dynamodb]\nendpoint = "%s"\nregion = "us-east-1"\ntable = "%s"\n'
                'create_table = true\nconnect_timeout = "5s"\n' % (endpoint, table))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shim", required=True)
    p.add_argument("--plugin-dir", required=True)
    p.add_argument("--cli", required=True)
    p.add_argument("--dynalite", default=DEFAULT_MODULE)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    shim = harness.shim_or_skip(args.shim, False)
    if not os.path.exists(os.path.join(args.dynalite, "package.json")):
        print("dynalite is not installed (scripts/install-deps.sh)")
        return 77
    failures = []

    def check(ok, what):
        print("%s: %s" % ("ok" if ok else "FAIL", what))
        if not ok:
            failures.append(what)

    with harness.Scratch(args.keep, "curlcache-dynshim-") as scratch:
        db = Dynalite(args.dynalite)
        db.start()
        try:
            with harness.Origin(scratch) as origin:
                home = os.path.join(scratch, "home")
                config = os.path.join(scratch, "dynamodb.toml")
                write_config(config, "dynamodb", args.plugin_dir, db.endpoint, "shim_cache")
                env = harness.clean_env(home, {"CURLCACHE_CONFIG": config,
                                               "AWS_ACCESS_KEY_ID": "AKIDSHIMTEST",
                                               "AWS_SECRET_ACCESS_KEY": "shim-test-secret"})
                env.pop("AWS_SESSION_TOKEN", None)
                env.pop("AWS_PROFILE", None)

                # Small, and stored as chunk items.
                for size in (200000, 1500000):
                    print("%d bytes:" % size)
                    curl_twice(check, origin, scratch, env, shim, origin.base + "/bytes/%d" % size)
                killed_under_a_running_program(check, origin, scratch, env, shim, db.kill, "dynamodb")
                db.start()  # the same port, empty
                print("restarted: caching resumes")
                url = origin.base + "/bytes/4000"
                plain = curl_twice(check, origin, scratch, env, shim, url)
                export_round_trip(check, origin, scratch, env, shim, args.cli, url, plain)

                coalescing(check, origin, scratch, env, shim)

                # Tiers: sqlite above dynamodb.
                tiers = os.path.join(scratch, "tiers.toml")
                sqlite_file = os.path.join(scratch, "tier.sqlite")
                write_config(tiers, "sqlite,dynamodb", args.plugin_dir, db.endpoint, "shim_tier",
                             sqlite_file)
                tier_env = dict(env, CURLCACHE_CONFIG=tiers)
                url = origin.base + "/bytes/5000"
                plain = harness.run(["curl", "-s", url], scratch, tier_env)
                before = origin.count()
                runs = [harness.run(["curl", "-s", url], scratch, tier_env, shim)]
                runs.append(harness.run(["curl", "-s", url], scratch, tier_env, shim))
                for name in os.listdir(scratch):
                    if name.startswith("tier.sqlite"):
                        path = os.path.join(scratch, name)
                        if os.path.isdir(path):
                            subprocess.run(["rm", "-rf", path], check=True)
                        else:
                            os.remove(path)
                runs.append(harness.run(["curl", "-s", url], scratch, tier_env, shim))
                check(all(r.stdout == plain.stdout and r.stderr == b"" for r in runs) and
                      origin.count() - before == 1,
                      "tiers sqlite,dynamodb: one origin request, a hit from dynamodb once "
                      "sqlite's file is gone (%d requests; %r)" % (origin.count() - before,
                                                                   [r.stderr for r in runs]))
        finally:
            db.kill()
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
