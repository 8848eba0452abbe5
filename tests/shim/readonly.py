#!/usr/bin/env python3
"""Read-only caches (README.md, "Read-only caches"): a cache the user may read but not write
still serves its hits.

As root, each case fills a cache with the real curl under the shim, then makes it read-only
for the reader in one of two ways:

  owner   the cache stays root's (folders 0755, files 0644) and nobody/nogroup (setpriv)
          reads it - a shared cache root keeps;
  mount   the cache folder is bind-mounted read-only and root reads it through the mount
          (unmounted in `finally`).

Then the reader runs curl once for every page (two stored ones, one stored only in the WAL
where the case has one, one never stored), with and without the shim, in normal mode and
in mode "readonly", and each run checks that:

  - curl's stdout, files and exit code are byte-identical to the run without the shim, and
    its stderr too apart from curlcache's lines;
  - the stored pages are hits (the origin's request log holds only the others), the others
    pass through;
  - normal mode prints exactly one curlcache warning, saying the cache is read-only and
    nothing will be stored; mode "readonly" prints none;
  - nothing in the cache folder changed (names, sizes, modes, owners, times);
  - `curlcache stats` and `list` work; `delete` and `clear` fail saying "read-only".

SQLite is tested with its WAL absent (a clean close), with a WAL holding commits and its
-shm, and with that WAL but no -shm (then SQLite can only read the database file alone:
the WAL's entry is a miss); the filesystem backend too. A last case makes a root cache
writable by others: it must be refused for reading too.

    readonly.py --shim PATH --curlcache PATH [--only NAME,...] [--keep] [--self-check]

Exit status 0 pass, 1 fail, 77 shim not built or not root (switching users needs root).
"""

import os
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PREFIX = b"curlcache: "
READER = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
NOBODY = 65534
# small.txt stays inline in the database, big.bin (over the 128 KiB threshold) goes to a
# body file in .bodies/; late.txt is stored last (only in the WAL where the case has one).
PAGES = {
    "small.txt": b"a small page, stored inline\n",
    "big.bin": bytes((i * 7 + i // 251) & 0xFF for i in range(300 * 1024)),
    "late.txt": b"stored last\n",
    "miss.txt": b"never stored\n",
    "other.txt": b"another page (the self-check's)\n",
}
ORDER = ["small.txt", "big.bin", "late.txt", "miss.txt"]

CASES = []


def case(name, backend, state, way, refused=False):
    CASES.append(dict(name=name, backend=backend, state=state, way=way, refused=refused))


for _way in ("owner", "mount"):
    case("sqlite_wal_absent_%s" % _way, "sqlite", "absent", _way)
    case("sqlite_wal_with_commits_%s" % _way, "sqlite", "wal", _way)
    case("sqlite_wal_without_shm_%s" % _way, "sqlite", "wal-no-shm", _way)
    case("filesystem_%s" % _way, "filesystem", None, _way)
case("sqlite_root_cache_writable_by_others_is_refused", "sqlite", "absent", "owner",
     refused=True)


def url(origin, page):
    return origin.base + "/files/" + page


def shim_env(home, c, extra=None):
    env = harness.clean_env(home, {"CURLCACHE_NAME": c["name_in"]})
    if c["backend"] == "filesystem":
        env["CURLCACHE_BACKEND"] = "filesystem"
    env.update(extra or {})
    return env


def fill(c, shim, origin, scratch):
    """Stores small.txt and big.bin (and late.txt: in the WAL only for the WAL states),
    as root, in c["cache"]."""
    env = shim_env(os.path.join(c["base"], "filler-home"), c)
    cwd = harness.prepare_cwd(os.path.join(c["base"], "fill"))

    def curl(pages):
        argv = ["curl", "-s"]
        for page in pages:
            argv += ["-o", page, url(origin, page)]
        r = harness.run(argv, cwd, env, shim)
        if r.code != 0 or r.stderr:
            raise RuntimeError("filling failed: %r %r" % (r.code, r.stderr[-300:]))

    curl(["small.txt", "big.bin"])
    if c["backend"] == "filesystem":
        curl(["late.txt"])
        return
    db = c["db"]
    con = sqlite3.connect(db)  # the last connection's clean close: no -wal, no -shm
    con.execute("SELECT count(*) FROM entries").fetchone()
    con.close()
    if c["state"] == "absent":
        return
    # A reader holds a snapshot taken before late.txt is stored, so no checkpoint can copy
    # it into the database file; it then dies without closing: -wal and -shm stay.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import os, sqlite3, sys\n"
         "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "con.execute('BEGIN')\n"
         "con.execute('SELECT count(*) FROM entries').fetchone()\n"
         "print('held', flush=True)\n"
         "sys.stdin.read()\n"
         "os._exit(0)\n", db],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        if holder.stdout.readline().strip() != b"held":
            raise RuntimeError("the snapshot holder did not start")
        curl(["late.txt"])
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
    if os.path.getsize(db + "-wal") == 0:
        raise RuntimeError("late.txt did not stay in the WAL")
    alone = sqlite3.connect("file:%s?immutable=1" % db, uri=True)
    try:
        if alone.execute("SELECT count(*) FROM entries").fetchone()[0] != 2:
            raise RuntimeError("the database file alone should hold two entries")
    finally:
        alone.close()
    if c["state"] == "wal-no-shm":
        os.unlink(db + "-shm")


def make_read_only(c, scratch):
    """Owner: root's, 0755/0644 (0666 for the refused case's database). Mount: a read-only
    bind mount of the cache folder, which c["name_in"] then points into."""
    for top, dirs, files in os.walk(c["cache"]):
        os.chmod(top, 0o755)
        for f in files:
            os.chmod(os.path.join(top, f), 0o644)
    if c["refused"]:
        os.chmod(c["db"], 0o666)
    if c["way"] == "mount":
        mnt = os.path.join(c["base"], "mnt")
        os.makedirs(mnt)
        subprocess.run(["mount", "--bind", "-o", "ro", c["cache"], mnt], check=True)
        c["mounted"] = mnt
        # Some kernels need the read-only flag set on a bind mount by a remount.
        probe = os.path.join(mnt, "probe")
        try:
            open(probe, "wb").close()
            os.unlink(probe)
            subprocess.run(["mount", "-o", "remount,bind,ro", mnt], check=True)
        except OSError:
            pass
        c["name_in"] = c["name_in"].replace(c["cache"], mnt, 1)


def snapshot(folder):
    out = {}
    for top, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            out[os.path.relpath(path, folder)] = (st.st_size, st.st_mode, st.st_uid,
                                                  st.st_mtime_ns)
    return out


def as_reader(c, argv):
    return (READER + argv) if c["way"] == "owner" else argv


def reader_dir(c, path):
    os.makedirs(path, exist_ok=True)
    if c["way"] == "owner":
        for top, dirs, files in os.walk(path):
            os.chown(top, NOBODY, NOBODY)
            for f in files:
                os.chown(os.path.join(top, f), NOBODY, NOBODY)
    return path


def expected_hits(c):
    if c["refused"]:
        return set()
    hits = {"small.txt", "big.bin"}
    if c["backend"] == "filesystem" or c["state"] == "wal":
        hits.add("late.txt")
    return hits


def check_runs(c, shim, origin, inject):
    problems, cache, notes = [], [], []
    hits = expected_hits(c)
    argv = ["curl", "-s"]
    for page in ORDER:
        argv += ["-o", page, url(origin, page)]
    shim_argv = [a.replace("small.txt", "other.txt") for a in argv] if inject else argv
    for mode in ("normal", "readonly"):
        home = reader_dir(c, os.path.join(c["base"], "home-" + mode))
        env = shim_env(home, c, {"CURLCACHE_MODE": mode})
        plain = harness.run(as_reader(c, argv),
                            reader_dir(c, os.path.join(c["base"], "without-" + mode)), env)
        if plain.code != 0:
            raise RuntimeError("curl without the shim failed: %r" % plain.stderr[-300:])
        origin.reset()
        r = harness.run(as_reader(c, shim_argv),
                        reader_dir(c, os.path.join(c["base"], "shim-" + mode)), env, shim)
        harness.save_outputs(c["base"], "shim-" + mode, r)
        label = "mode %s" % mode
        found, warn = harness.compare_warned(plain, r, PREFIX)
        problems += ["%s: %s" % (label, p) for p in found]
        fetched = {line.split()[1].rsplit("/", 1)[-1] for line in origin.log().splitlines()
                   if line.startswith("GET ")}
        if fetched != set(ORDER) - hits:
            cache.append("%s: the origin served %s, expected %s (hits %s)"
                         % (label, sorted(fetched), sorted(set(ORDER) - hits), sorted(hits)))
        if c["refused"]:
            wanted = [b"refused", b"others may write it", c["db"].encode()]
            if len(warn) != 1 or not all(w in warn[0] for w in wanted):
                cache.append("%s: expected one warning saying %r, got %r" % (label, wanted, warn))
        elif mode == "normal":
            wanted = [b"read-only", b"nothing will be stored"]
            if len(warn) != 1 or not all(w in warn[0] for w in wanted):
                cache.append("%s: expected one warning saying %r, got %r" % (label, wanted, warn))
        elif warn:
            cache.append("%s: unexpected warning(s) %r" % (label, warn))
        notes.append("%s: origin served %s" % (mode, ",".join(sorted(fetched)) or "nothing"))
    return problems, cache, "; ".join(notes)


def check_cli(c, curlcache, origin):
    """stats and list work, delete and clear fail saying read-only."""
    out = []
    env = shim_env(reader_dir(c, os.path.join(c["base"], "home-cli")), c)
    cwd = reader_dir(c, os.path.join(c["base"], "cli"))

    def cli(*words):
        return subprocess.run(as_reader(c, [curlcache] + list(words)), cwd=cwd, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)

    for words in (["stats"], ["list"], ["show", url(origin, "small.txt")]):
        r = cli(*words)
        if r.returncode != 0 or r.stderr:
            out.append("curlcache %s: exit %d, stderr %r" % (words[0], r.returncode, r.stderr))
        elif words[0] == "list":
            for page in expected_hits(c):
                if ("/files/" + page).encode() not in r.stdout:
                    out.append("curlcache list does not show %s: %r" % (page, r.stdout[-300:]))
    for words in (["delete", url(origin, "small.txt")], ["clear"]):
        r = cli(*words)
        if r.returncode != 1 or b"read-only" not in r.stderr:
            out.append("curlcache %s: exit %d, stderr %r; expected 1 and a read-only error"
                       % (words[0], r.returncode, r.stderr))
    return out


def check(spec, scratch, origin, shim, curlcache, inject):
    base = os.path.join(scratch, spec["name"])
    cache_dir = os.path.join(base, "cache")
    os.makedirs(cache_dir)
    os.chmod(base, 0o755)
    c = dict(spec, base=base, cache=cache_dir, db=os.path.join(cache_dir, "c.sqlite"))
    c["name_in"] = c["db"] if c["backend"] == "sqlite" else os.path.join(cache_dir, "fs")
    try:
        fill(c, shim, origin, scratch)
        make_read_only(c, scratch)
        before = snapshot(cache_dir)
        problems, cache, note = check_runs(c, shim, origin, inject)
        if not c["refused"]:
            cache += check_cli(c, curlcache, origin)
        after = snapshot(cache_dir)
        if before != after:
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            cache.append("the cache folder changed: %s" % changed)
    finally:
        if c.get("mounted"):
            subprocess.run(["umount", c["mounted"]], check=False)
    return problems, cache, note, base


def main():
    parser = harness.arguments(__doc__)
    parser.add_argument("--curlcache", help="path of the curlcache command")
    args = parser.parse_args()
    cases = harness.only(CASES, args.only, lambda c: c["name"])
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        print("SKIP: playing a second user and mounting need root and setpriv")
        return harness.SKIP
    shim = harness.shim_or_skip(args.shim, False)
    args.curlcache = os.path.abspath(args.curlcache or "")
    if not os.path.isfile(args.curlcache):
        print("SKIP: the curlcache command is not built (%r)" % args.curlcache)
        return harness.SKIP
    report = harness.Report(shim, args.self_check)
    with harness.Scratch(keep=args.keep) as scratch:
        os.chmod(scratch, 0o755)  # the reader reaches the caches below it
        site = os.path.join(scratch, "site")
        os.makedirs(site)
        for name, data in PAGES.items():
            with open(os.path.join(site, name), "wb") as f:
                f.write(data)
        with harness.Origin(scratch, root=site) as origin:
            for spec in cases:
                try:
                    problems, cache, note, base = check(spec, scratch, origin, shim,
                                                        args.curlcache, args.self_check)
                except (RuntimeError, OSError, subprocess.SubprocessError, sqlite3.Error) as e:
                    problems, cache, note, base = ["setup: %s" % e], [], "", scratch
                report.case(spec["name"], "curl -s -o PAGE URL/files/PAGE (4 pages)",
                            problems, cache, note, base)
    return report.finish("read-only cases")


if __name__ == "__main__":
    sys.exit(main())
