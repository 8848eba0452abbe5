"""Shared helpers for the shim's black-box tests (python3 standard library only).

A test starts scripts/origin.py on a free loopback port (awaiting the port line it prints,
never sleeping), runs one real program without the shim and then with it, in scratch
directories with a clean environment, and compares what the program produced byte for byte.
"""

import argparse
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
ORIGIN = os.path.join(SOURCE_DIR, "scripts", "origin.py")

SKIP = 77  # ctest SKIP_RETURN_CODE: the shim is not built yet
RUN_TIMEOUT = 30  # seconds for any single program run


class Origin:
    """scripts/origin.py as a context manager: started on a free port, stopped by PID."""

    def __init__(self, scratch, tls=False, root=None):
        self.scratch = scratch
        self.tls = tls
        self.root = root
        self.proc = None
        self.port = None
        self.cacert = None

    def __enter__(self):
        cmd = [sys.executable, ORIGIN]
        if self.tls:
            cert, key = make_certificate(self.scratch)
            self.cacert = cert
            cmd += ["--tls", cert, key]
        if self.root:
            cmd += ["--root", self.root]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline()  # printed once the server accepts connections
        if not line.strip().isdigit():
            self.__exit__(None, None, None)
            raise RuntimeError("origin.py did not announce a port: %r" % line)
        self.port = int(line)
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.proc = None

    @property
    def base(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def _control(self, path):
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.cacert)
        # Never through a proxy, whatever the caller's environment says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=ctx))
        with opener.open(self.base + path, timeout=10) as r:
            return r.read().decode()

    def count(self):
        return int(self._control("/__count"))

    def log(self):
        return self._control("/__log")

    def reset(self):
        self._control("/__reset")


def free_port():
    """A loopback port that was free a moment ago (for servers that cannot bind port 0)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


_REFUSING = []  # sockets held for the life of the test process (see refusing_port)


def refusing_port():
    """A loopback port where nothing will ever answer during this test: bound by this
    process but not listening, so connections are refused and no other test's server can
    take it (a port that was merely free a moment ago could be)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _REFUSING.append(s)
    return s.getsockname()[1]


def make_certificate(scratch):
    """A self-signed certificate for 127.0.0.1 in `scratch`: (cert path, key path)."""
    cert = os.path.join(scratch, "cert.pem")
    key = os.path.join(scratch, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-days", "2", "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def clean_env(home, extra=None):
    """The environment for one program run: HOME and the XDG folders in `home`, no
    CURLCACHE_* (except `extra`), no proxies, no curlrc, and nothing preloaded."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CURLCACHE_") and k != "LD_PRELOAD"
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy",
                                 "curl_home", "curl_ca_bundle", "ssl_cert_file")}
    for sub in ("", "cache", "config"):
        os.makedirs(os.path.join(home, sub), exist_ok=True)
    env["HOME"] = home
    env["XDG_CACHE_HOME"] = os.path.join(home, "cache")
    env["XDG_CONFIG_HOME"] = os.path.join(home, "config")
    env["NO_PROXY"] = "*"
    env.update(extra or {})
    return env


class Result:
    def __init__(self, cwd, proc):
        self.cwd = cwd
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr


def run(argv, cwd, env, shim=None):
    """Runs argv once in `cwd`; with LD_PRELOAD=shim when given."""
    env = dict(env)
    if shim:
        env["LD_PRELOAD"] = shim
        if "libasan" in shim:
            # Leak reports at exit of curl or python are not the shim's business here.
            env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        # A hung program is a finding like any other difference, not a crash of the test.
        proc = subprocess.CompletedProcess(argv, -1, e.stdout or b"",
                                           (e.stderr or b"") + b"\n[killed after %d s]\n"
                                           % RUN_TIMEOUT)
    return Result(cwd, proc)


def tree(directory, with_mtime=False):
    """{relative path: (bytes, mtime or None)} of every regular file under `directory`.
    `with_mtime`: True for every file's mtime, or the relative paths whose mtime the server
    decides (curl -R): other files get the time they were written, which two runs cannot
    share once a second boundary falls between them."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, directory)
            with open(path, "rb") as f:
                data = f.read()
            wanted = with_mtime is True or (not isinstance(with_mtime, bool) and rel in with_mtime)
            out[rel] = (data, int(os.stat(path).st_mtime) if wanted else None)
    return out


def first_difference(a, b):
    """Offset of the first differing byte of two byte strings, or None when equal."""
    if a == b:
        return None
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def describe_difference(what, expected, actual, before=40, after=80):
    """A readable account of where two byte strings differ, with context from both."""
    i = first_difference(expected, actual)
    if i is None:
        return None
    lo = max(0, i - before)

    def window(data):
        return repr(data[lo:i + after])

    return ("%s differs at byte %d (lengths %d without shim, %d with):\n"
            "      without shim: %s\n      with shim:    %s"
            % (what, i, len(expected), len(actual), window(expected), window(actual)))


def compare(expected, actual, ignore_stderr=False, with_mtime=False, stdout_check=None):
    """Every difference between two runs (exit code, stdout, stderr, files) as text.
    `stdout_check(stdout) -> [problems]` replaces the byte comparison of stdout where it
    holds values that legitimately vary (timings)."""
    problems = []
    if expected.code != actual.code:
        problems.append("exit code %d without shim, %d with" % (expected.code, actual.code))
    if stdout_check:
        problems += ["stdout: " + p for p in stdout_check(actual.stdout)]
        d = None
    else:
        d = describe_difference("stdout", expected.stdout, actual.stdout)
    if d:
        problems.append(d)
    if not ignore_stderr:
        d = describe_difference("stderr", expected.stderr, actual.stderr)
        if d:
            problems.append(d)
    want = tree(expected.cwd, with_mtime)
    got = tree(actual.cwd, with_mtime)
    for name in sorted(set(want) | set(got)):
        if name not in got:
            problems.append("file %s missing with shim" % name)
        elif name not in want:
            problems.append("file %s only with shim (%d bytes)" % (name, len(got[name][0])))
        else:
            d = describe_difference("file " + name, want[name][0], got[name][0])
            if d:
                problems.append(d)
            if want[name][1] != got[name][1]:
                problems.append("file %s mtime %s without shim, %s with"
                                % (name, want[name][1], got[name][1]))
    return problems


def compare_warned(expected, actual, prefix=b"curlcache: "):
    """compare() of a run whose stderr may add curlcache's warning lines: returns the
    problems (stderr compared without those lines) and the warning lines."""
    problems = compare(expected, actual, ignore_stderr=True)
    lines = actual.stderr.splitlines(keepends=True)
    warn = [line for line in lines if line.startswith(prefix)]
    rest = b"".join(line for line in lines if not line.startswith(prefix))
    d = describe_difference("stderr without the curlcache warnings", expected.stderr, rest)
    if d:
        problems.append(d)
    return problems, warn


def save_outputs(directory, label, result):
    """Keeps a run's stdout/stderr next to its cwd for a human to diff."""
    with open(os.path.join(directory, label + ".stdout"), "wb") as f:
        f.write(result.stdout)
    with open(os.path.join(directory, label + ".stderr"), "wb") as f:
        f.write(result.stderr)


class Scratch:
    """A mkdtemp directory removed on exit unless `keep`."""

    def __init__(self, keep=False, prefix="curlcache-shimtest-"):
        self.keep = keep
        self.prefix = prefix
        self.path = None

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix=self.prefix)
        return self.path

    def __exit__(self, *exc):
        if self.keep:
            sys.stderr.write("scratch kept in %s\n" % self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def preload_value(shim):
    """What LD_PRELOAD must hold for `shim`: the shim alone, or, for a sanitizer build
    (-DCURLCACHE_SANITIZE=ON), the ASan runtime first, as ASan requires of programs that
    were not built with it."""
    ldd = subprocess.run(["ldd", shim], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout
    for line in ldd.splitlines():
        if "libasan" in line and "=>" in line:
            return "%s %s" % (line.split("=>")[1].split("(")[0].strip(), shim)
    return shim


def shim_or_skip(path, harness_only):
    """The shim to preload: `path` if it exists. Without it, exit SKIP, unless
    `harness_only`, in which case None (the "with shim" runs then preload nothing, and the
    cache assertions are reported, not enforced)."""
    if path and os.path.isfile(path):
        return preload_value(os.path.abspath(path))
    if harness_only:
        sys.stderr.write("harness-only: no shim at %r, the 'with shim' runs preload nothing\n"
                         % path)
        return None
    sys.stdout.write("SKIP: the preload shim is not built (%r)\n" % path)
    sys.exit(SKIP)


def prepare_cwd(path, files=None):
    """Makes a run's working directory holding `files` ({name: bytes})."""
    os.makedirs(path)
    for name, data in (files or {}).items():
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
    return path


class Three:
    """One program run without the shim, then twice with it on one cache, with the
    origin's request count around each shim run."""

    def __init__(self, base, argv, env, shim, server, files=None, prime=(), shim_argv=None):
        self.plain = run(argv, prepare_cwd(os.path.join(base, "without"), files), env)
        save_outputs(base, "without", self.plain)
        for i, p in enumerate(prime):
            run(p, prepare_cwd(os.path.join(base, "prime%d" % i)), env, shim)
        shim_argv = shim_argv or argv
        c0 = server.count()
        self.first = run(shim_argv, prepare_cwd(os.path.join(base, "shim1"), files), env, shim)
        save_outputs(base, "shim1", self.first)
        c1 = server.count()
        self.second = run(shim_argv, prepare_cwd(os.path.join(base, "shim2"), files), env,
                          shim)
        save_outputs(base, "shim2", self.second)
        c2 = server.count()
        self.first_requests = c1 - c0
        self.second_requests = c2 - c1

    def differences(self, **kw):
        out = []
        for label, result in (("first shim run (miss)", self.first),
                              ("second shim run (hit)", self.second)):
            out += ["%s: %s" % (label, p) for p in compare(self.plain, result, **kw)]
        return out

    def note(self):
        return "origin requests: first shim run %d, second %d" % (self.first_requests,
                                                                  self.second_requests)


def arguments(doc):
    """The options every driver takes; a driver may add its own."""
    parser = argparse.ArgumentParser(description=doc.strip().split("\n")[0])
    parser.add_argument("--shim", help="path of libcurlcache-preload.so")
    parser.add_argument("--only", help="comma-separated case names")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--harness-only", action="store_true",
                        help="without a built shim, run the 'with shim' side bare")
    parser.add_argument("--self-check", action="store_true",
                        help="give the shim side a different URL: every case must fail")
    return parser


def only(cases, names, name_of=lambda c: c[0]):
    """The cases named in `names` (comma-separated), all when None; exits on a typo."""
    if not names:
        return cases
    wanted = set(names.split(","))
    unknown = wanted - {name_of(c) for c in cases}
    if unknown:
        print("unknown case(s): %s" % ", ".join(sorted(unknown)))
        sys.exit(2)
    return [c for c in cases if name_of(c) in wanted]


class Report:
    """Prints one PASS/FAIL line per case (problems indented below) and the summary.
    Cache problems (hit or miss at the origin) count only when a shim is preloaded; in
    --self-check mode a case passes only when a difference was found."""

    def __init__(self, shim, self_check=False):
        self.shim = shim
        self.self_check = self_check
        self.total = 0
        self.failed = 0

    def case(self, name, title, problems, cache, note, where):
        self.total += 1
        if self.shim is not None:
            problems = problems + cache
        elif cache or not self.self_check:
            note += "; harness-only: " + ("; ".join(cache) or "-")
        if self.self_check:
            found = bool(problems)
            self.failed += 0 if found else 1
            print("%s %s (injected difference %s)" % ("PASS" if found else "FAIL", name,
                                                       "detected" if found else "missed"))
        elif problems:
            self.failed += 1
            print("FAIL %s: %s" % (name, title))
            for p in problems:
                print("    " + p)
            print("    (%s; outputs in %s)" % (note, where))
        else:
            print("PASS %s (%s)" % (name, note))
        sys.stdout.flush()

    def finish(self, what="cases"):
        print("%d of %d %s passed" % (self.total - self.failed, self.total, what))
        return 1 if self.failed else 0
