#!/usr/bin/env python3
"""Shared-folder attacks on the shim's cache ("Nothing from another user", DESIGN.md).

As root, a second user (nobody/nogroup, through setpriv) plays the attacker in a shared,
sticky, world-writable folder like /tmp: it creates a cache database first and fills it with
its own body, plants symbolic links at the cache's files (to a file the victim owns, and
dangling), and creates and holds the lock file. Then the victim (root) runs the real curl
under the shim, and each case checks that:

  - curl's stdout, files and exit code are byte-identical to a run without the shim (so no
    attacker body is ever served), and its stderr too apart from curlcache's lines;
  - a refused cache gives exactly one warning line naming the refused path and the reason,
    and every run reaches the origin; a cache moved to a private per-user folder gives no
    warning and serves a hit on the second run;
  - nothing is created or changed through a link;
  - a miss is not stalled by the held lock (bounded time, not a sleep).

    security.py --shim PATH [--only NAME,...] [--keep] [--self-check]

Exit status 0 pass, 1 fail, 77 shim not built or not root (switching users needs root).
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PREFIX = b"curlcache: "
ATTACKER = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
REAL = b"the origin's real body\n"
EVIL = b"EVIL: the attacker's body\n"
VICTIM_FILE = b"a file the victim owns\n"
NOT_STALLED = 15  # seconds; the lock_timeout a held lock would cost is 30


def as_attacker(argv, env=None):
    r = subprocess.run(ATTACKER + argv, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("attacker step %r failed: %s" % (argv, r.stderr.decode()[-300:]))
    return r


def attacker_fills(case, shim, url, target_dir, name):
    """The attacker caches EVIL for `url` with the shim in a folder of its own, then copies
    the database to `target_dir`/`name`, readable and writable by everyone."""
    with open(case["page"], "wb") as f:
        f.write(EVIL)
    own = os.path.join(case["shared"], "attacker")
    as_attacker(["mkdir", "-p", "-m", "0700", own])
    env = harness.clean_env(os.path.join(case["base"], "attacker-home"),
                            {"CURLCACHE_NAME": os.path.join(own, "evil.sqlite")})
    env["LD_PRELOAD"] = shim
    r = as_attacker(["curl", "-s", "-o", "/dev/null", url], env)
    if r.stderr:
        raise RuntimeError("the attacker's own shim run warned: %r" % r.stderr)
    if not os.path.isdir(target_dir):
        as_attacker(["mkdir", "-p", "-m", "0777", target_dir])
    target = os.path.join(target_dir, name)
    as_attacker(["cp", os.path.join(own, "evil.sqlite"), target])
    as_attacker(["chmod", "0666", target])
    # The copy holds the attacker's entry (read without creating -wal/-shm beside it).
    con = sqlite3.connect("file:%s?immutable=1" % target, uri=True)
    try:
        if con.execute("SELECT count(*) FROM entries").fetchone()[0] < 1:
            raise RuntimeError("the attacker's database holds no entry")
    finally:
        con.close()
    with open(case["page"], "wb") as f:
        f.write(REAL)
    return target


def attacker_links(pairs):
    """Symbolic links planted by the attacker: {link: target}."""
    for link, target in pairs.items():
        as_attacker(["ln", "-s", target, link])


def private_database(c):
    """The database path in a folder of the victim's own (mode 0700)."""
    folder = os.path.join(c["base"], "private")
    os.makedirs(folder, mode=0o700)
    return os.path.join(folder, "cache.sqlite")


CASES = []


def case(name, refused=None, cached=False):
    """`refused`: text the one warning must contain (None: no warning, the cache works and
    `cached` says the second run is a hit)."""
    def register(setup):
        CASES.append(dict(name=name, setup=setup, refused=refused, cached=cached))
        return setup
    return register


@case("use_temp_skips_a_database_planted_in_the_temp_folder", cached=True)
def _(c, shim, url):
    # The name sqlite.use_temp used before: TMPDIR/<name>. The cache now lives in
    # TMPDIR/curlcache-<uid>/ and never opens the planted file.
    attacker_fills(c, shim, url, c["shared"], "cache.sqlite")
    c["check_private"] = os.path.join(c["shared"], "curlcache-%d" % os.geteuid())
    return {"TMPDIR": c["shared"], "CURLCACHE_SQLITE_USE_TEMP": "1",
            "CURLCACHE_NAME": "cache"}


@case("per_user_temp_folder_made_by_another_user_is_refused",
      refused="owned by uid 65534")
def _(c, shim, url):
    folder = os.path.join(c["shared"], "curlcache-%d" % os.geteuid())
    attacker_fills(c, shim, url, folder, "cache.sqlite")
    c["names"] = folder
    return {"TMPDIR": c["shared"], "CURLCACHE_SQLITE_USE_TEMP": "1",
            "CURLCACHE_NAME": "cache"}


@case("home_unset_uses_a_private_per_user_folder", cached=True)
def _(c, shim, url):
    # What HOME unset used to mean (<tmp>/.cache/curlcache), planted first: never used.
    attacker_fills(c, shim, url, os.path.join(c["shared"], ".cache", "curlcache"),
                   "http_cache.sqlite")
    c["unset"] = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")
    c["check_private"] = os.path.join(c["shared"], "curlcache-%d" % os.geteuid())
    return {"TMPDIR": c["shared"]}


@case("database_named_in_a_shared_folder_is_refused", refused="everyone may write it")
def _(c, shim, url):
    target = attacker_fills(c, shim, url, c["shared"], "cache.sqlite")
    c["names"] = c["shared"]
    return {"CURLCACHE_NAME": target}


@case("database_another_user_owns_is_refused", refused="owned by uid 65534")
def _(c, shim, url):
    # The victim's folder, where a database of the attacker's sits (a folder that was
    # shared once): refused even though the folder is private now.
    db = private_database(c)
    planted = attacker_fills(c, shim, url, os.path.join(c["shared"], "drop"), "c.sqlite")
    shutil.copy(planted, db)
    os.chown(db, 65534, 65534)
    c["names"] = db
    return {"CURLCACHE_NAME": db}


@case("links_at_the_database_in_a_shared_folder_are_refused",
      refused="everyone may write it")
def _(c, shim, url):
    db = os.path.join(c["shared"], "cache.sqlite")
    attacker_links({db: c["victim_file"], db + "-wal": c["dangling"]})
    c["names"] = c["shared"]
    return {"CURLCACHE_NAME": db}


@case("links_at_the_database_siblings_are_refused", refused="symbolic link")
def _(c, shim, url):
    # Links left in the victim's own folder (lchown: as if planted while it was shared).
    db = private_database(c)
    links = {db + "-wal": c["victim_file"], db + "-shm": c["dangling"],
             db + ".bodies": c["dangling"], db + ".stats": c["victim_file"]}
    for link, target in links.items():
        os.symlink(target, link)
        os.lchown(link, 65534, 65534)
    c["names"] = db + "-wal"
    return {"CURLCACHE_NAME": db}


@case("link_at_the_database_itself_is_refused", refused="symbolic link")
def _(c, shim, url):
    db = private_database(c)
    os.symlink(c["dangling"], db)
    c["names"] = db
    return {"CURLCACHE_NAME": db}


@case("lock_file_another_user_holds_does_not_stall_a_miss", refused="owned by uid 65534",
      cached=True)
def _(c, shim, url):
    # The victim's filesystem tree is its own, but its lock folder sits beside it in the
    # shared folder, where the attacker made it first and holds a lock on the whole file.
    tree = os.path.join(c["shared"], "fscache")
    locks = tree + ".locks"
    as_attacker(["mkdir", "-m", "0777", locks])
    as_attacker(["sh", "-c", "umask 0; : > %s/keys.lock" % locks])
    holder = subprocess.Popen(
        ATTACKER + [sys.executable, "-c",
                    "import fcntl, sys\n"
                    "f = open(sys.argv[1], 'r+')\n"
                    "fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
                    "print('held', flush=True)\n"
                    "sys.stdin.read()\n", os.path.join(locks, "keys.lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    if holder.stdout.readline().strip() != b"held":
        holder.kill()
        raise RuntimeError("the attacker could not take the lock")
    c["holder"] = holder
    c["names"] = locks
    c["timed"] = True
    return {"CURLCACHE_BACKEND": "filesystem", "CURLCACHE_NAME": tree}


def release(c):
    holder = c.get("holder")
    if holder:
        holder.stdin.close()  # the holder exits at end of input
        holder.wait(timeout=10)
        holder.stdout.close()


def check(spec, scratch, origin, shim, inject):
    base = os.path.join(scratch, spec["name"])
    shared = os.path.join(base, "shared")
    os.makedirs(shared)
    os.chmod(base, 0o755)
    os.chmod(shared, 0o1777)  # like /tmp
    c = {"base": base, "shared": shared, "page": os.path.join(scratch, "site", "page.txt"),
         "victim_file": os.path.join(base, "victim.txt"),
         "dangling": os.path.join(base, "created-through-a-link")}
    with open(c["victim_file"], "wb") as f:
        f.write(VICTIM_FILE)
    url = origin.base + "/files/page.txt"
    problems, cache = [], []
    try:
        extra = spec["setup"](c, shim, url)
        env = harness.clean_env(os.path.join(base, "home"), extra)
        for name in c.get("unset", ()):
            env.pop(name, None)
        argv = ["curl", "-s", "-o", "body.txt", "-w", "%{http_code}\\n", url]
        shim_argv = [a.replace("page.txt", "other.txt") for a in argv] if inject else argv
        plain = harness.run(argv, harness.prepare_cwd(os.path.join(base, "without")), env)
        if b"200" not in plain.stdout:
            raise RuntimeError("the origin did not serve the page: %r" % plain.stdout)
        requests = []
        for i in (1, 2):
            label = "shim run %d" % i
            c0 = origin.count()
            start = time.monotonic()
            r = harness.run(shim_argv, harness.prepare_cwd(os.path.join(base, "shim%d" % i)),
                            env, shim)
            took = time.monotonic() - start
            harness.save_outputs(base, "shim%d" % i, r)
            requests.append(origin.count() - c0)
            found, warn = harness.compare_warned(plain, r, PREFIX)
            problems += ["%s: %s" % (label, p) for p in found]
            if spec["refused"] is None:
                if warn:
                    cache.append("%s: unexpected warning(s) %r" % (label, warn))
            elif i == 2 and spec["cached"] and not warn:
                pass  # a hit takes no lock: nothing refused, nothing to warn about
            elif len(warn) != 1:
                cache.append("%s: %d curlcache warnings, expected one: %r"
                             % (label, len(warn), warn))
            else:
                for part in (b"refused", spec["refused"].encode(), c["names"].encode()):
                    if part not in warn[0]:
                        cache.append("%s: the warning does not say %r: %r"
                                     % (label, part, warn[0]))
            if c.get("timed") and took > NOT_STALLED:
                cache.append("%s took %.1f s: the held lock stalled the miss" % (label, took))
        if spec["cached"]:
            if requests != [1, 0]:
                cache.append("origin requests %r, expected a miss then a hit" % requests)
        elif 0 in requests:
            cache.append("origin requests %r: a refused cache answered" % requests)
        if "check_private" in c:
            st = os.stat(c["check_private"])
            if st.st_uid != os.geteuid() or st.st_mode & 0o777 != 0o700:
                cache.append("%s: owner %d mode %o, expected the victim's, 0700"
                             % (c["check_private"], st.st_uid, st.st_mode & 0o7777))
        with open(c["victim_file"], "rb") as f:
            if f.read() != VICTIM_FILE:
                cache.append("the victim's file was changed through a link")
        if os.path.lexists(c["dangling"]):
            cache.append("%s was created through a dangling link" % c["dangling"])
        note = "origin requests per shim run %r" % requests
    finally:
        release(c)
    return problems, cache, note, base


def main():
    args = harness.arguments(__doc__).parse_args()
    cases = harness.only(CASES, args.only, lambda c: c["name"])
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        print("SKIP: playing a second user needs root and setpriv")
        return harness.SKIP
    shim = harness.shim_or_skip(args.shim, False)
    report = harness.Report(shim, args.self_check)
    with harness.Scratch(keep=args.keep) as scratch:
        os.chmod(scratch, 0o755)  # the attacker reaches the shared folders below it
        site = os.path.join(scratch, "site")
        os.makedirs(site)
        for name in ("page.txt", "other.txt"):
            with open(os.path.join(site, name), "wb") as f:
                f.write(REAL if name == "page.txt" else b"another page\n")
        with harness.Origin(scratch, root=site) as origin:
            for spec in cases:
                try:
                    problems, cache, note, base = check(spec, scratch, origin, shim,
                                                        args.self_check)
                except (RuntimeError, OSError, subprocess.SubprocessError, sqlite3.Error) as e:
                    problems, cache, note, base = ["setup: %s" % e], [], "", scratch
                report.case(spec["name"], "curl -s -o body.txt URL/files/page.txt", problems,
                            cache, note, base)
    return report.finish("security cases")


if __name__ == "__main__":
    sys.exit(main())
