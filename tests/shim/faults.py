#!/usr/bin/env python3
"""Fail-open tests of the shim: when the cache cannot work (unwritable path, corrupt
database, malformed config, unknown backend, unreachable Redis), the program's stdout,
files and exit code are byte-identical to a run without the shim, every run reaches the
origin, and stderr carries exactly one warning line starting "curlcache: " (and otherwise
what it carries without the shim). CURLCACHE_DISABLE=1 turns caching off silently. A corrupt
entry is a miss. Offline mode fails a miss without touching the network.

    faults.py --shim PATH [--only NAME,...] [--keep] [--harness-only] [--self-check]

Exit status 0 pass, 1 fail, 77 shim not built.
"""

import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PREFIX = b"curlcache: "


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def garbage(n):
    """Deterministic bytes that are not an SQLite database."""
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def _holds(path, data):
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return f.read() == data


def corrupt_blobs(db):
    """Flips the last byte of every BLOB value longer than 16 bytes in every table of an
    SQLite file; returns how many values were changed."""
    changed = 0
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        for table in tables:
            cols = [r[1] for r in con.execute('PRAGMA table_info("%s")' % table)]
            for rowid, *values in con.execute(
                    'SELECT rowid, %s FROM "%s"' % (", ".join('"%s"' % c for c in cols),
                                                   table)).fetchall():
                for col, value in zip(cols, values):
                    if isinstance(value, bytes) and len(value) > 16:
                        flipped = value[:-1] + bytes([value[-1] ^ 0x5A])
                        con.execute('UPDATE "%s" SET "%s" = ? WHERE rowid = ?'
                                    % (table, col), (flipped, rowid))
                        changed += 1
        con.commit()
    finally:
        con.close()
    return changed


# Each fault: (name, setup(scratch) -> env, expectations). Expectations:
#   warnings: exact number of "curlcache: " lines on stderr per shim run (None = 0 or 1)
#   origin: "each" = every shim run reaches the origin; "second-hit" = only the first
#   prime: run once with the shim before breaking things (fills the cache)
#   breaker(scratch): damages the cache after priming
#   not_about: text the warning must not contain (it would mean another fault was hit)
#   recovers: a damaged database may be set aside and replaced by a fresh one: the first
#   shim run must warn once and reach the origin; the second is then either a hit without
#   a warning or another warned pass-through. The damaged bytes must survive somewhere
#   (set aside, never silently deleted: the path might be a user's file).
FAULTS = []


def fault(name, warnings=1, origin="each", prime=False, breaker=None, same_output=True,
          recovers=False, not_about=None):
    def register(setup):
        FAULTS.append(dict(name=name, setup=setup, warnings=warnings, origin=origin,
                           prime=prime, breaker=breaker, same_output=same_output,
                           recovers=recovers, not_about=not_about))
        return setup
    return register


IMMUTABLE = []  # directories made immutable (chattr +i) that teardown must release


@fault("unwritable_cache_path")
def _(scratch):
    # CURLCACHE_NAME in a read-only directory. Root writes through chmod 0555, so as root
    # the directory is made immutable (chattr +i, which binds root too) where the file
    # system allows it, and otherwise the cache goes below a regular file (ENOTDIR).
    ro = os.path.join(scratch, "read-only")
    os.makedirs(ro)
    os.chmod(ro, 0o555)
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", ro], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0:
            IMMUTABLE.append(ro)
        else:
            write(os.path.join(scratch, "not-a-dir"), b"a regular file\n")
            return {"CURLCACHE_NAME": os.path.join(scratch, "not-a-dir", "cache.sqlite")}
    return {"CURLCACHE_NAME": os.path.join(ro, "cache.sqlite")}


@fault("cache_path_below_a_regular_file")
def _(scratch):
    write(os.path.join(scratch, "not-a-dir"), b"a regular file\n")
    return {"CURLCACHE_NAME": os.path.join(scratch, "not-a-dir", "cache.sqlite")}


def release_immutable():
    for path in IMMUTABLE:
        subprocess.run(["chattr", "-i", path], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    IMMUTABLE.clear()


@fault("garbage_database_file", origin="first-run", recovers=True)
def _(scratch):
    db = os.path.join(scratch, "cache.sqlite")
    write(db, garbage(8192))
    return {"CURLCACHE_NAME": db}


def _overwrite_db(scratch):
    write(os.path.join(scratch, "cache.sqlite"), garbage(8192))


@fault("database_overwritten_after_use", origin="first-run", prime=True,
       breaker=_overwrite_db, recovers=True)
def _(scratch):
    return {"CURLCACHE_NAME": os.path.join(scratch, "cache.sqlite")}


def _corrupt_entries(scratch):
    if corrupt_blobs(os.path.join(scratch, "cache.sqlite")) == 0:
        raise RuntimeError("no stored BLOB found to corrupt in cache.sqlite")


@fault("corrupt_entry_is_a_miss", warnings=None, origin="first", prime=True,
       breaker=_corrupt_entries)
def _(scratch):
    return {"CURLCACHE_NAME": os.path.join(scratch, "cache.sqlite")}


@fault("malformed_config_file")
def _(scratch):
    bad = os.path.join(scratch, "bad.toml")
    write(bad, b'backend = ["sqlite"\nexpire_after = \n[[[\n')
    return {"CURLCACHE_CONFIG": bad}


@fault("deeply_nested_config")
def _(scratch):
    # toml11 recurses per level: refused by the loader's pre-scan, never a stack overflow.
    deep = os.path.join(scratch, "deep.toml")
    write(deep, b"a = " + b"[" * 8000 + b"]" * 8000 + b"\n")
    return {"CURLCACHE_CONFIG": deep}


@fault("malformed_user_config")
def _(scratch):
    # $XDG_CONFIG_HOME is <scratch>/home/config (harness.clean_env).
    write(os.path.join(scratch, "home", "config", "curlcache", "config.toml"),
          b"expire_after = \"5 parsecs\"\nmode = 42\n")
    return {}


@fault("unknown_backend")
def _(scratch):
    return {"CURLCACHE_BACKEND": "no-such-backend"}


@fault("redis_unreachable", not_about=b"unknown backend")
def _(scratch):
    return {"CURLCACHE_BACKEND": "redis",
            "CURLCACHE_REDIS_URL": "redis://127.0.0.1:%d/0" % harness.refusing_port()}


@fault("disable_variable_passes_through", warnings=0)
def _(scratch):
    return {"CURLCACHE_DISABLE": "1", "CURLCACHE_NAME": os.path.join(scratch, "c.sqlite")}


@fault("offline_miss_fails_without_network", warnings=None, origin="never",
       same_output=False)
def _(scratch):
    return {"CURLCACHE_MODE": "offline", "CURLCACHE_NAME": os.path.join(scratch, "c.sqlite")}


def check(f, scratch, origin, shim, inject):
    base = os.path.join(scratch, f["name"])
    os.makedirs(base)
    extra = f["setup"](base)
    env = harness.clean_env(os.path.join(base, "home"), extra)
    argv = ["curl", "-s", "-i", "-o", "body.txt", "-w", "%{http_code}\\n",
            origin.base + "/text"]
    shim_argv = [a.replace("/text", "/bytes/127") for a in argv] if inject else argv
    problems = []
    cache = []
    plain = harness.run(argv, harness.prepare_cwd(os.path.join(base, "without")), env)
    if f["prime"]:
        harness.run(argv, harness.prepare_cwd(os.path.join(base, "prime")), env, shim)
        f["breaker"](base)
    requests = []
    for i in (1, 2):
        c0 = origin.count()
        r = harness.run(shim_argv, harness.prepare_cwd(os.path.join(base, "shim%d" % i)),
                        env, shim)
        harness.save_outputs(base, "shim%d" % i, r)
        requests.append(origin.count() - c0)
        label = "shim run %d" % i
        warn = [line for line in r.stderr.splitlines(keepends=True)
                if line.startswith(PREFIX)]
        if f["not_about"] and any(f["not_about"] in w for w in warn):
            cache.append("%s: the warning is about something else: %r" % (label, warn))
        rest = b"".join(line for line in r.stderr.splitlines(keepends=True)
                        if not line.startswith(PREFIX))
        if f["same_output"]:
            problems += ["%s: %s" % (label, p) for p in harness.compare(
                plain, r, ignore_stderr=True)]
            d = harness.describe_difference("stderr without the curlcache warnings",
                                            plain.stderr, rest)
            if d:
                problems.append("%s: %s" % (label, d))
        elif r.code == 0:
            cache.append("%s: exit code 0, expected a curl error" % label)
        expected = f["warnings"]
        if f["recovers"] and i == 2:
            expected = 0 if requests[-1] == 0 else 1
        if expected is None:
            if len(warn) > 1:
                problems.append("%s: %d curlcache warnings, expected at most one: %r"
                                % (label, len(warn), warn))
        elif len(warn) != expected:
            cache.append("%s: %d curlcache warning(s), expected %d; stderr %r"
                            % (label, len(warn), expected, r.stderr[:300]))
    if f["origin"] == "each" and 0 in requests:
        cache.append("a shim run was not sent to the origin (requests %r): the broken "
                     "cache answered" % requests)
    if f["origin"] == "first-run" and requests[0] == 0:
        cache.append("the first shim run over a damaged database did not reach the origin")
    if f["recovers"] and not any(_holds(os.path.join(base, n), garbage(8192))
                                 for n in os.listdir(base)):
        cache.append("the damaged database file was deleted instead of set aside")
    if f["origin"] == "first" and (requests[0] == 0 or requests[1] != 0):
        cache.append("origin requests %r, expected a miss then a hit" % requests)
    if f["origin"] == "never" and any(requests):
        cache.append("offline mode reached the origin (requests %r)" % requests)
    return problems, cache, "origin requests per shim run %r" % requests, base


def main():
    args = harness.arguments(__doc__).parse_args()
    faults = harness.only(FAULTS, args.only, lambda f: f["name"])
    if args.self_check:
        faults = [f for f in faults if f["same_output"]]
    shim = harness.shim_or_skip(args.shim, args.harness_only or args.self_check)
    if shim is None:
        # Damaging a cache that was never written cannot work without the shim.
        faults = [f for f in faults if not f["prime"]]
    report = harness.Report(shim, args.self_check)
    with harness.Scratch(keep=args.keep) as scratch, harness.Origin(scratch) as origin:
        try:
            for f in faults:
                try:
                    problems, cache, note, base = check(f, scratch, origin, shim,
                                                        args.self_check)
                except (RuntimeError, sqlite3.DatabaseError) as e:
                    problems, cache, note, base = ["setup: %s" % e], [], "", scratch
                report.case(f["name"], "curl -s -i -o body.txt URL/text", problems, cache,
                            note, base)
        finally:
            release_immutable()
    return report.finish("fault cases")


if __name__ == "__main__":
    sys.exit(main())
