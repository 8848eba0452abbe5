#!/usr/bin/env python3
"""curlcache run: the real curl with the preload shim against scripts/origin.py.

Everything that needs the shim is here (an instrumented shim cannot be preloaded into an
uninstrumented program, so this module is labelled no-asan in sanitizer builds)."""

import json
import os

import clitest


@clitest.for_backends()
class Run(clitest.CliTestCase):

    def setUp(self):
        super().setUp()
        self.start_origin()

    def test_offline_fails_on_a_miss_without_touching_the_network(self):
        out = self.run_curl(self.origin.url("/text"), mode="offline")
        self.assertNotEqual(out.returncode, 0)
        self.assertEqual(out.stdout, b"")
        self.assertIn(b"curl: ", out.stderr)  # curl's own one-line error
        self.assertEqual(self.origin.count(), 0)

    def test_offline_succeeds_on_a_hit_with_identical_output(self):
        url = self.origin.url("/text")
        first = self.run_curl(url)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(self.origin.count(), 1)
        second = self.run_curl(url, mode="offline")
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertEqual(second.stdout, first.stdout)
        self.assertEqual(self.origin.count(), 1)

    def test_stats_option_prints_hits_and_misses_of_this_run(self):
        url = self.origin.url("/text")
        out = self.run_curl(url, stats=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(out.stderr.endswith(b"curlcache: 0 hits, 1 miss (0%), 1 store\n"),
                        out.stderr)
        args = [*self.cache_args(), "run", "--stats", "--", "curl", "-s", url, url, url]
        out = self.cc(*args)
        self.assertRegex(out.stderr, rb"curlcache: 3 hits, 0 misses \(100%\), 0 stores, 381 B "
                                     rb"served from the cache(, [\d.]+ m?s saved)?\n$")
        self.assertEqual(self.origin.count(), 1)

    def test_stats_count_exactly_one_miss_then_two_hits_through_curl(self):
        origin = self.origin
        url = origin.url("/bytes/3000")
        for _ in range(3):
            out = self.run_curl(url)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(len(out.stdout), 3000)
        stats = json.loads(self.ok(*self.cache_args(), "stats", "--json").stdout)
        self.assertEqual(stats["misses"], 1)
        self.assertEqual(stats["hits"], 2)
        self.assertEqual(stats["stores"], 1)
        self.assertAlmostEqual(stats["hit_rate"], 2 / 3)
        self.assertEqual(stats["bytes_downloaded"], 3000)
        self.assertEqual(stats["bytes_served"], 6000)
        self.assertEqual(stats["entries"], 1)
        self.assertGreaterEqual(stats["size"], 3000)
        self.assertEqual(origin.count(), 1)

    def test_har_export_imported_into_an_empty_cache_answers_byte_identically(self):
        url = self.origin.url("/bytes/5000")
        headers = [os.path.join(self.dir, name) for name in ("first.h", "again.h")]
        # -i as well: the curl command prints headers only when CURLINFO_PROTOCOL says HTTP,
        # which an imported entry (no recorded transfer facts) must still answer.
        first = self.run_curl(url, "-i", "-D", headers[0])
        self.assertEqual(first.returncode, 0, first.stderr)
        har = os.path.join(self.dir, "c.har")
        self.ok(*self.cache_args(), "export", "--har", har)
        self.ok(*self.cache_args(label="fresh"), "import", "--har", har)
        again = self.run_curl(url, "-i", "-D", headers[1], mode="offline", label="fresh")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertTrue(first.stdout.startswith(b"HTTP/1.1 200 OK\r\n"), first.stdout[:80])
        self.assertEqual(again.stdout, first.stdout)
        with open(headers[0], "rb") as a, open(headers[1], "rb") as b:
            recorded = a.read()
            self.assertTrue(recorded.startswith(b"HTTP/1.1 200 OK\r\n"), recorded)
            self.assertEqual(b.read(), recorded)
        self.assertEqual(self.origin.count(), 1)


class RunProcess(clitest.CliTestCase):

    def test_exit_status_is_the_commands(self):
        self.assertEqual(self.on("run", "--", "sh", "-c", "exit 3").returncode, 3)
        self.assertEqual(self.on("run", "--stats", "--", "sh", "-c", "exit 4").returncode, 4)

    def test_a_command_killed_by_a_signal_is_reported_as_such(self):
        out = self.on("run", "--stats", "--", "sh", "-c", "kill -TERM $$")
        self.assertEqual(out.returncode, -15)

    def test_stats_of_an_unopenable_cache_warns_and_still_runs_the_command(self):
        out = self.cc("--backend", "nosuchbackend", "run", "--stats", "--", "sh", "-c", "exit 5")
        self.assertEqual(out.returncode, 5)
        self.assertIn(b"curlcache: --stats: cannot open the cache", out.stderr)

    def test_missing_command_exits_127_with_one_line(self):
        out = self.on("run", "--", "no-such-command-xyz")
        self.assertEqual(out.returncode, 127)
        self.assertEqual(out.stderr, b"curlcache: no-such-command-xyz: No such file or directory\n")

    def test_shim_is_prepended_to_ld_preload_and_settings_exported(self):
        env = dict(self.env, LD_PRELOAD="libc.so.6")
        out = self.cc(*self.cache_args(), "run", "--offline", "--", "sh", "-c",
                      'printf "%s\\n%s\\n%s\\n%s\\n" "$LD_PRELOAD" "$CURLCACHE_BACKEND" '
                      '"$CURLCACHE_NAME" "$CURLCACHE_MODE"', env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        preload, backend, name, mode = out.stdout.decode().splitlines()
        shim, rest = preload.split(":", 1)
        self.assertTrue(shim.endswith("/lib/libcurlcache-preload.so"), shim)
        self.assertTrue(os.path.isabs(shim))
        self.assertEqual(rest, "libc.so.6")
        self.assertEqual((backend, name, mode), ("sqlite", self.cache_path(), "offline"))

    def test_relative_config_path_is_passed_absolute(self):
        config = os.path.join(self.dir, "c.toml")
        open(config, "w").close()
        out = subprocess_run_in(self, self.dir, "--config", "c.toml", "run", "--", "sh", "-c",
                                'echo "$CURLCACHE_CONFIG"')
        self.assertEqual(out.stdout.decode().strip(), config)

    def test_options_after_the_command_belong_to_the_command(self):
        out = self.on("run", "echo", "--offline", "--stats")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, b"--offline --stats\n")


def subprocess_run_in(test, cwd, *args):
    import subprocess
    return subprocess.run([clitest.PATHS.curlcache, *args], cwd=cwd, env=test.env,
                          capture_output=True, timeout=60, check=False)


if __name__ == "__main__":
    clitest.main()
