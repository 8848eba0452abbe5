#!/usr/bin/env python3
"""Fault matrix (issue 10): each fault, on each backend it applies to, is compared against a
run of the same command without the shim. Every shim run must give the same stdout, the
same output files and the same exit code, stderr the same apart from curlcache's lines, and
at most ONE "curlcache: " line per process, whatever the fault and however many transfers
the process makes (two downloads per run here); the first run must warn (proof that the
fault was met).

  disk_full          a 2 MiB tmpfs (mounted here as root, unmounted in finally) holds the
                     cache, filled to the last byte by a filler: the streamed stores fail
                     at their first write, and the statistics cannot be saved at exit
  disk_fills_midway  the same with 1 MiB left: both bodies are bigger, so each streamed
                     store fails in its middle
  entry_is_a_folder  a stored entry's file (sqlite: its body file) is replaced by a folder
  entry_is_a_fifo    the same with a FIFO, which blocks a plain open(O_RDONLY) forever
  corrupt_entry      a stored entry's file (sqlite: its blobs) has a byte flipped
  unreadable_entry   a stored entry's file (sqlite: the database) is mode 000; run as
                     nobody, since root reads any file
  backend_down       Redis on a port where connections are refused
  hung_backend       Redis that never answers: a socket that listens but never accepts,
                     which is what a SIGSTOPped Redis is to a client (redis_outage.py
                     stops a real one)
  deep_config        a config of 8,000 nested arrays (a stack overflow in a recursive
                     parser)

Each shim run happens twice on the same cache, so the second meets what the first left
(a removed, replaced or backed-off entry or server).

    fault_matrix.py --shim PATH [--only NAME,...] [--keep] [--self-check]

Exit status 0 pass, 1 fail, 77 shim not built.
"""

import os
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import faults  # noqa: E402  (corrupt_blobs)

PREFIX = b"curlcache: "
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
NOBODY_UID = 65534
TMPFS_SIZE = 2 << 20
BIG = (3000000, 2500000)  # both bigger than the tmpfs
SMALL = (4000, 300000)    # one stored inline, one in an sqlite body file
FILE_BACKENDS = ("filesystem", "sqlite")

MOUNTS = []     # tmpfs mount points to unmount in finally
LISTENERS = []  # sockets kept open (listening, never accepting) until exit


def cache_env(base, backend):
    if backend == "filesystem":
        return {"CURLCACHE_BACKEND": "filesystem", "CURLCACHE_NAME": os.path.join(base, "fs")}
    return {"CURLCACHE_BACKEND": "sqlite", "CURLCACHE_NAME": os.path.join(base, "c.sqlite")}


def entry_files(base, backend):
    """The files that hold stored responses: the filesystem backend's entry files, or the
    sqlite backend's body files."""
    root = os.path.join(base, "fs") if backend == "filesystem" else os.path.join(
        base, "c.sqlite.bodies")
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            if backend == "filesystem" and len(name) < 32:
                continue  # "stats" and other bookkeeping
            if not name.startswith("tmp"):
                found.append(os.path.join(folder, name))
    if not found:
        raise RuntimeError("no stored entry file under %s" % root)
    return found


def mount_tmpfs(path):
    os.makedirs(path)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0700" % TMPFS_SIZE, "tmpfs",
                    path], check=True)
    MOUNTS.append(path)


def unmount_all():
    for path in MOUNTS:
        subprocess.run(["umount", "-l", path], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    MOUNTS.clear()


# A case: name -> dict(backend, setup(base) -> env, bodies, prime, breaker(base), nobody)
CASES = []


def case(name, backend, setup, bodies=SMALL, prime=False, breaker=None, nobody=False):
    CASES.append(dict(name="%s_%s" % (name, backend), backend=backend, setup=setup,
                      bodies=bodies, prime=prime, breaker=breaker, nobody=nobody))


def _disk_full(backend, room):
    """A tmpfs with `room` bytes left free (a filler takes the rest)."""
    def setup(base):
        small = os.path.join(base, "small")
        mount_tmpfs(small)
        free = os.statvfs(small)
        with open(os.path.join(small, "filler"), "wb") as f:
            f.write(b"\0" * max(free.f_bavail * free.f_frsize - room, 0))
        return cache_env(small, backend)
    return setup


def _folder(backend):
    def breaker(base):
        for path in entry_files(base, backend):
            os.unlink(path)
            os.makedirs(os.path.join(path, "inside"))
    return breaker


def _fifo(backend):
    def breaker(base):
        for path in entry_files(base, backend):
            os.unlink(path)
            os.mkfifo(path, 0o600)
    return breaker


def _corrupt(backend):
    def breaker(base):
        if backend == "sqlite" and faults.corrupt_blobs(os.path.join(base, "c.sqlite")) == 0:
            raise RuntimeError("no stored BLOB to corrupt")
        for path in entry_files(base, backend):
            with open(path, "r+b") as f:
                f.seek(-1, os.SEEK_END)
                last = f.read(1)
                f.seek(-1, os.SEEK_END)
                f.write(bytes([last[0] ^ 0x5A]))
    return breaker


def _unreadable(backend):
    def breaker(base):
        paths = entry_files(base, backend) if backend == "filesystem" else [
            os.path.join(base, "c.sqlite")]
        for path in paths:
            os.chmod(path, 0)
    return breaker


def _redis(port_of):
    def setup(base):
        return {"CURLCACHE_BACKEND": "redis",
                "CURLCACHE_REDIS_URL": "redis://127.0.0.1:%d/0" % port_of(),
                "CURLCACHE_REDIS_COMMAND_TIMEOUT": "300ms"}
    return setup


def _hung_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    LISTENERS.append(s)
    return s.getsockname()[1]


def _deep_config(backend):
    def setup(base):
        deep = os.path.join(base, "deep.toml")
        with open(deep, "wb") as f:
            f.write(b"a = " + b"[" * 8000 + b"]" * 8000 + b"\n")
        env = cache_env(base, backend)
        env["CURLCACHE_CONFIG"] = deep
        return env
    return setup


for _b in FILE_BACKENDS:
    case("disk_full", _b, _disk_full(_b, 0), bodies=BIG)
    case("disk_fills_midway", _b, _disk_full(_b, 1 << 20), bodies=BIG)
    case("entry_is_a_folder", _b, lambda base, b=_b: cache_env(base, b), prime=True,
         breaker=_folder(_b))
    case("entry_is_a_fifo", _b, lambda base, b=_b: cache_env(base, b), prime=True,
         breaker=_fifo(_b))
    case("corrupt_entry", _b, lambda base, b=_b: cache_env(base, b), prime=True,
         breaker=_corrupt(_b))
    case("unreadable_entry", _b, lambda base, b=_b: cache_env(base, b), prime=True,
         breaker=_unreadable(_b), nobody=True)
    case("deep_config", _b, _deep_config(_b))
case("backend_down", "redis", _redis(harness.refusing_port))
case("hung_backend", "redis", _redis(_hung_port))


def give_to_nobody(path):
    for folder, dirs, files in os.walk(path):
        os.chown(folder, NOBODY_UID, NOBODY_UID)
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), NOBODY_UID, NOBODY_UID)


def check(c, scratch, origin, shim, inject):
    base = os.path.join(scratch, c["name"])
    os.makedirs(base)
    env = harness.clean_env(os.path.join(base, "home"), c["setup"](base))
    argv = ["curl", "-s", "-S", "-w", "%{http_code} %{size_download}\\n"]
    for i, size in enumerate(c["bodies"]):
        argv += ["-o", "body%d.bin" % i, "%s/bytes/%d" % (origin.base, size)]
    # --self-check: the shim side asks for other bodies, which every case must notice.
    shim_argv = [a.replace("/bytes/", "/bytes/1") if "/bytes/" in a else a
                 for a in argv] if inject else argv
    prefix = NOBODY if c["nobody"] else []

    def run(args, label, with_shim):
        cwd = harness.prepare_cwd(os.path.join(base, label))
        if c["nobody"]:
            give_to_nobody(base)
        return harness.run(prefix + args, cwd, env, shim if with_shim else None)

    plain = run(argv, "without", False)
    problems = []
    if c["prime"]:
        run(argv, "prime", True)
        c["breaker"](base)
    for i in (1, 2):
        label = "shim%d" % i
        r = run(shim_argv, label, True)
        harness.save_outputs(base, label, r)
        lines = r.stderr.splitlines(keepends=True)
        warned = [line for line in lines if line.startswith(PREFIX)]
        rest = b"".join(line for line in lines if not line.startswith(PREFIX))
        problems += ["%s: %s" % (label, p) for p in harness.compare(plain, r,
                                                                     ignore_stderr=True)]
        d = harness.describe_difference("stderr without curlcache's lines", plain.stderr, rest)
        if d:
            problems.append("%s: %s" % (label, d))
        if len(warned) > 1:
            problems.append("%s: %d curlcache warnings, at most one is promised: %r"
                            % (label, len(warned), warned))
        elif i == 1 and not warned:
            problems.append("shim1: no curlcache warning: the fault was not met (or it was "
                            "silent)")
    return problems, base


def main():
    args = harness.arguments(__doc__).parse_args()
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        print("SKIP: mounting a tmpfs and playing another user need root and setpriv")
        return harness.SKIP
    report = harness.Report(harness.shim_or_skip(args.shim, False), args.self_check)
    shim = report.shim
    cases = harness.only(CASES, args.only, lambda c: c["name"])
    with harness.Scratch(keep=args.keep) as scratch, harness.Origin(scratch) as origin:
        os.chmod(scratch, 0o711)  # nobody reaches its own case folder below it
        try:
            for c in cases:
                try:
                    problems, where = check(c, scratch, origin, shim, args.self_check)
                except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
                    problems, where = ["setup: %s" % e], scratch
                report.case(c["name"], "curl -s -S -o body0.bin URL0 -o body1.bin URL1",
                            problems, [], "", where)
        finally:
            unmount_all()
            for s in LISTENERS:
                s.close()
    return report.finish("fault matrix cases")


if __name__ == "__main__":
    sys.exit(main())
