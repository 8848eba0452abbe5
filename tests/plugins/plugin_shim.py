"""Checks that every backend plugin's end-to-end test runs behind the preload shim with the
real curl (shim_postgres.py, mongo/shim_mongodb.py): each takes `check(ok, what)`, the
origin (tests/shim/harness.py), the scratch folder, the environment and the shim."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shim"))
import harness  # noqa: E402


def await_true(ready, limit=30):
    deadline = time.monotonic() + limit
    pause = 0.001
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError("not ready in %d s" % limit)
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def curl_twice(check, origin, scratch, env, shim, url):
    """curl twice under the shim: byte-identical to curl alone, no warning, one origin
    request. Returns what curl alone printed."""
    plain = harness.run(["curl", "-s", url], scratch, env)
    before = origin.count()
    first = harness.run(["curl", "-s", url], scratch, env, shim)
    second = harness.run(["curl", "-s", url], scratch, env, shim)
    check(first.stdout == plain.stdout and second.stdout == plain.stdout,
          "curl twice under the shim: byte-identical to curl alone")
    check(first.stderr == b"" and second.stderr == b"",
          "no warning: %r %r" % (first.stderr, second.stderr))
    check(origin.count() - before == 1, "the second curl made no origin request")
    return plain


def killed_under_a_running_program(check, origin, scratch, env, shim, kill, backend):
    """curl fetches a slow URL, then more; kill() stops the server meanwhile: every transfer
    still succeeds, byte-identical, with one warning per failed operation (core::log::cause:
    the put that lost its server, the gets that then cannot connect; each once, each naming
    the backend)."""
    slow = origin.base + "/slow/1500"
    others = [origin.base + "/bytes/%d" % n for n in (1000, 2000, 3000)]
    expected = harness.run(["curl", "-s", slow] + others, scratch, env).stdout
    before = origin.count()
    running = subprocess.Popen(["curl", "-s", slow] + others, cwd=scratch,
                               env=dict(env, LD_PRELOAD=shim), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    # The slow request reached the origin: the cache was opened (a miss) before.
    await_true(lambda: origin.count() > before or running.poll() is not None)
    kill()
    out, err = running.communicate(timeout=60)
    check(running.returncode == 0 and out == expected,
          "a program whose server died mid-run got every byte")
    lines = err.splitlines()
    operations = [l.split(b" failed:")[0] for l in lines]
    prefix = b"curlcache: warning: %s backend: " % backend.encode()
    check(1 <= len(lines) <= 2 and len(set(operations)) == len(lines) and
          all(l.startswith(prefix) for l in lines),
          "... and one warning per failed operation: %r" % err)


def coalescing(check, origin, scratch, env, shim):
    """8 curl processes at once for one slow URL: the same output, one origin request."""
    once = origin.base + "/slow/1501"
    before = origin.count()
    procs = [subprocess.Popen(["curl", "-s", once], cwd=scratch, env=dict(env, LD_PRELOAD=shim),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(8)]
    outs = [pr.communicate(timeout=60) for pr in procs]
    check(all(o == outs[0] for o in outs) and all(pr.returncode == 0 for pr in procs),
          "8 concurrent curls: the same output")
    check(origin.count() - before == 1,
          "8 concurrent curls: one origin request (got %d)" % (origin.count() - before))


def export_round_trip(check, origin, scratch, env, shim, cli, url, plain):
    """curlcache export --to a sqlite cache, clear, import --from it: the entry `url` (stored
    before, `plain` its body) comes back and is served without an origin request."""
    copy = os.path.join(scratch, "copy.toml")
    with open(copy, "w") as f:
        f.write('backend = "sqlite"\nname = "%s"\n' % os.path.join(scratch, "copy.sqlite"))
    steps = [harness.run([cli] + step, scratch, env) for step in
             (["export", "--to", copy], ["clear"], ["import", "--from", copy])]
    check(all(r.code == 0 for r in steps),
          "export --to sqlite, clear, import --from it: %r" % [r.stderr for r in steps])
    before = origin.count()
    back = harness.run(["curl", "-s", url], scratch, env, shim)
    check(back.stdout == plain.stdout and origin.count() == before,
          "... and the entry came back: answered without an origin request")


def loaded_files(scratch, home, shim, url, backend, config):
    """What a curl process under the shim loads with `config` (a written config file):
    curl's result and the dynamic loader's log (LD_DEBUG=files)."""
    log = os.path.join(scratch, "ld-" + backend)
    env = harness.clean_env(home, {"CURLCACHE_CONFIG": config, "LD_DEBUG": "files",
                                   "LD_DEBUG_OUTPUT": log,
                                   "CURLCACHE_NAME": os.path.join(scratch, "s.sqlite")})
    result = harness.run(["curl", "-s", url], scratch, env, shim)
    text = b""
    for name in os.listdir(scratch):
        if name.startswith("ld-" + backend + "."):
            with open(os.path.join(scratch, name), "rb") as f:
                text += f.read()
    return result, text
