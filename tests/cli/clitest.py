"""Harness of the curlcache command's end-to-end tests (tests/cli/test_*.py).

Every test runs the real `curlcache` binary in a scratch directory with every CURLCACHE_*
variable cleared and HOME/XDG_* pointed into the scratch directory, so that no user or
system config is read (CURLCACHE_CONFIG names an empty file: /etc/curlcache.toml is never
consulted either). Caches are filled through the public C API (cli_fill) or through the real
`curl` under `curlcache run` against scripts/origin.py on a free loopback port.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

PATHS = argparse.Namespace(curlcache=None, fill=None, origin=None)


class Origin:
    """scripts/origin.py on a free 127.0.0.1 port, stopped by PID."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, PATHS.origin], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline()  # printed once the server accepts connections
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("origin.py did not start")
        self.port = int(line)
        self.base = "http://127.0.0.1:%d" % self.port

    def url(self, path):
        return self.base + path

    def count(self):
        """Requests the origin has answered (control endpoints excluded)."""
        out = subprocess.run(["curl", "-s", self.url("/__count")], capture_output=True,
                             check=True)
        return int(out.stdout)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.proc.stdout.close()


class CliTestCase(unittest.TestCase):
    backend = "sqlite"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="curlcache-cli-")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("CURLCACHE_") and k != "LD_PRELOAD"}
        for var in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
            self.env[var] = os.path.join(self.dir, "home")
        self.empty_config = os.path.join(self.dir, "empty.toml")
        open(self.empty_config, "w").close()
        self.env["CURLCACHE_CONFIG"] = self.empty_config
        self.env["CURLCACHE_LOG_LEVEL"] = "error"
        # The CLI tests store and import responses without freshness headers and expect
        # them back: the config decides (the RFC rules are tested in tests/http and
        # tests/shim/http_semantics*.py).
        self.env["CURLCACHE_HERMETIC"] = "1"
        self.origin = None

    def tearDown(self):
        if self.origin:
            self.origin.stop()
        shutil.rmtree(self.dir)

    # --- caches -------------------------------------------------------------------------

    def cache_path(self, backend=None, label="c"):
        backend = backend or self.backend
        suffix = ".sqlite" if backend == "sqlite" else ".d"
        return os.path.join(self.dir, label + suffix)

    def cache_args(self, backend=None, label="c"):
        backend = backend or self.backend
        return ["--backend", backend, "--name", self.cache_path(backend, label)]

    def fill(self, *words, backend=None, label="c", settings=()):
        """Stores entries with cli_fill: words are [METHOD] URL STATUS BODY ... Returns keys."""
        backend = backend or self.backend
        cmd = [PATHS.fill, "backend=" + backend, "name=" + self.cache_path(backend, label),
               *settings, "--", *words]
        out = subprocess.run(cmd, env=self.env, capture_output=True, check=False)
        self.assertEqual(out.returncode, 0, out.stderr.decode(errors="replace"))
        return out.stdout.decode().split()

    # --- running the command ------------------------------------------------------------

    def cc(self, *args, input=None, env=None):
        """Runs curlcache; returns the CompletedProcess (stdout and stderr as bytes)."""
        return subprocess.run([PATHS.curlcache, *args], input=input, env=env or self.env,
                              capture_output=True, timeout=60, check=False)

    def ok(self, *args, **kwargs):
        out = self.cc(*args, **kwargs)
        self.assertEqual(out.returncode, 0, "curlcache %s failed: %s" % (
            " ".join(args), out.stderr.decode(errors="replace")))
        return out

    def on(self, *args, backend=None, label="c", **kwargs):
        """curlcache COMMAND on the test's cache (global options first)."""
        return self.cc(*self.cache_args(backend, label), *args, **kwargs)

    def list_json(self, backend=None, label="c"):
        out = self.on("list", "--json", backend=backend, label=label)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)["entries"]

    def assert_usage_error(self, out):
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assert_one_error_line(out)

    def assert_runtime_error(self, out, contains=None):
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assert_one_error_line(out)
        if contains:
            self.assertIn(contains, out.stderr.decode(errors="replace"))

    def assert_one_error_line(self, out):
        lines = out.stderr.decode(errors="replace").splitlines()
        self.assertEqual(len(lines), 1, "expected one error line, got %r" % lines)
        self.assertTrue(lines[0].startswith("curlcache: "), lines[0])
        self.assertEqual(out.stdout, b"", "an error must not print on stdout")

    # --- the shim -----------------------------------------------------------------------

    def start_origin(self):
        self.origin = Origin()
        return self.origin

    def run_curl(self, url, *curl_args, mode=None, stats=False, backend=None, label="c"):
        args = [*self.cache_args(backend, label), "run"]
        if mode:
            args.append("--" + mode)
        if stats:
            args.append("--stats")
        return self.cc(*args, "--", "curl", "-s", "-S", *curl_args, url)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--curlcache", required=True)
    parser.add_argument("--fill", required=True)
    parser.add_argument("--origin", required=True)
    args, rest = parser.parse_known_args()
    PATHS.curlcache, PATHS.fill, PATHS.origin = args.curlcache, args.fill, args.origin
    unittest.main(module="__main__", argv=[sys.argv[0], *rest], verbosity=2)


def for_backends(*backends):
    """Class decorator: one subclass per backend (sqlite and filesystem by default)."""
    def decorate(cls):
        module = sys.modules[cls.__module__]
        for backend in backends or ("sqlite", "filesystem"):
            name = "%s_%s" % (cls.__name__, backend)
            setattr(module, name, type(name, (cls,), {"backend": backend}))
        cls.__test__ = False
        return None
    return decorate
