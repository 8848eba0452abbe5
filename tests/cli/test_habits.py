#!/usr/bin/env python3
"""What ccache users type, and the messages a new user meets: short options, "did you mean",
commands that say what they did, binary bodies kept off terminals, config mistakes in words."""

import os
import pty
import subprocess

import clitest


class Habits(clitest.CliTestCase):

    def test_misspelt_commands_and_options_get_a_suggestion(self):
        cases = [(("lisst",), b"unknown command 'lisst' (did you mean 'list'?)"),
                 (("help", "stast"), b"unknown command 'stast' (did you mean 'stats'?)"),
                 (("list", "--jsn"), b"unknown option '--jsn' (did you mean '--json'?)"),
                 (("list", "-json"), b"(did you mean '--json'?)"),
                 (("stats", "--zeor"), b"(did you mean '--zero'?)"),
                 (("--verison",), b"unknown option '--verison' (did you mean '--version'?)"),
                 (("run", "--ofline", "--", "true"), b"(did you mean '--offline'?)")]
        for args, message in cases:
            out = self.cc(*args)
            self.assert_usage_error(out)
            self.assertIn(message, out.stderr, args)
        # Nothing close: no guess.
        out = self.cc("frobnicate")
        self.assertNotIn(b"did you mean", out.stderr)

    def test_ccache_short_options_do_what_ccache_does(self):
        self.fill("http://example.test/a", "200", "a")
        stats = self.on("-s")
        self.assertEqual(stats.returncode, 0, stats.stderr)
        self.assertEqual(stats.stdout, self.on("stats").stdout)
        self.assertEqual(self.on("--show-stats").stdout, stats.stdout)
        self.assertEqual(self.ok("-V").stdout, self.ok("--version").stdout)
        self.assertEqual(self.on("-p").stdout, self.on("config").stdout)
        # Bundled, run in the order given: zero, then show.
        out = self.on("-zs")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(out.stdout.startswith(b"Statistics zeroed\n"), out.stdout[:40])
        self.assertRegex(out.stdout.decode(), r"Hits\s+0\b")
        self.assertEqual(len(self.list_json()), 1)
        out = self.on("-C")
        self.assertRegex(out.stdout.decode(), r"^Removed 1 entry \(\d+ B\)\n$")
        self.assertEqual(self.list_json(), [])
        self.assert_usage_error(self.cc("-q"))
        self.assert_usage_error(self.cc("-s", "list"))

    def test_max_size_is_written_into_the_users_config_file_keeping_the_rest(self):
        config_dir = os.path.join(self.env["XDG_CONFIG_HOME"], "curlcache")
        path = os.path.join(config_dir, "config.toml")
        env = {k: v for k, v in self.env.items() if k != "CURLCACHE_CONFIG"}
        out = self.cc("-M", "5G", env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.decode(), 'Set max_size = "5G" in %s\n' % path)
        with open(path) as f:
            self.assertEqual(f.read(), 'max_size = "5G"\n')
        original = ('# my cache\nlog_level = "info"\n\n[sqlite]\nfast_save = true  # speed\n')
        with open(path, "w") as f:
            f.write(original)
        self.assertEqual(self.cc("--max-size=2GiB", env=env).returncode, 0)
        self.assertEqual(self.cc("-M", "3GiB", env=env).returncode, 0)
        with open(path) as f:
            self.assertEqual(f.read(), '# my cache\nlog_level = "info"\n\nmax_size = "3GiB"\n\n'
                                       '[sqlite]\nfast_save = true  # speed\n')
        config = self.cc("config", env=env).stdout.decode()
        self.assertIn('(%s:4) max_size = "3GiB"' % path, config)
        self.assertIn('(%s:7) sqlite.fast_save = true' % path, config)
        # A bad size is refused by the same rules as the config file; nothing is written.
        with open(path) as f:
            before = f.read()
        self.assert_usage_error(self.cc("-M", "banana", env=env))
        with open(path) as f:
            self.assertEqual(f.read(), before)
        # --config names the file to edit.
        other = os.path.join(self.dir, "other.toml")
        self.assertEqual(self.cc("--config", other, "-M", "1MiB").returncode, 0)
        with open(other) as f:
            self.assertEqual(f.read(), 'max_size = "1MiB"\n')

    def test_max_size_leaves_a_file_it_cannot_edit_safely_alone(self):
        path = os.path.join(self.dir, "tricky.toml")
        # A line starting with "[" inside an array is no table header: inserting before it
        # would break the file, so the check refuses and nothing is written.
        text = 'match_headers = [\n[1]]\n'
        with open(path, "w") as f:
            f.write(text)
        out = self.cc("--config", path, "-M", "1G")
        self.assertIn(out.returncode, (1, 2))
        self.assert_one_error_line(out)
        with open(path) as f:
            self.assertEqual(f.read(), text)

    def test_commands_that_change_the_cache_say_what_they_did(self):
        self.fill("http://example.test/a", "200", "aaaa", "http://example.test/b", "200", "bb")
        self.assertEqual(self.on("stats", "--zero").stdout, b"Statistics zeroed\n")
        self.assertRegex(self.on("clear").stdout.decode(), r"^Removed 2 entries \(\d+(\.\d)? (B|KiB)\)\n$")
        self.assertRegex(self.on("vacuum").stdout.decode(), r"^Reclaimed .* on disk now\)\n$")

    def run_on_terminal(self, *args):
        """curlcache with stdout on a pseudo-terminal; returns (status, terminal bytes)."""
        leader, follower = pty.openpty()
        proc = subprocess.Popen([clitest.PATHS.curlcache, *self.cache_args(), *args],
                                env=self.env, stdout=follower, stderr=subprocess.PIPE)
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        os.close(leader)
        stderr = proc.stderr.read()
        proc.stderr.close()
        return proc.wait(), seen, stderr

    def test_show_body_keeps_binary_data_off_a_terminal(self):
        binary = b"\x01\x02PNG\xff\xfe"  # argv cannot carry NUL
        self.fill("http://example.test/img", "200", binary, "http://example.test/txt", "200",
                  "hello")
        status, seen, stderr = self.run_on_terminal("show", "--body", "http://example.test/img")
        self.assertEqual(status, 1)
        self.assertEqual(seen, b"")
        self.assertIn(b"binary", stderr)
        self.assertIn(b"-o FILE", stderr)
        # Text goes to the terminal; --force sends binary there anyway.
        status, seen, _ = self.run_on_terminal("show", "--body", "http://example.test/txt")
        self.assertEqual((status, seen), (0, b"hello"))
        status, seen, _ = self.run_on_terminal("show", "--body", "-f", "http://example.test/img")
        self.assertEqual(status, 0)
        self.assertIn(b"PNG", seen)
        # A pipe or -o FILE gets the bytes as stored.
        piped = self.on("show", "--body", "http://example.test/img")
        target = os.path.join(self.dir, "img.bin")
        self.assertEqual(self.on("show", "--body", "-o", target, "http://example.test/img")
                         .returncode, 0)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), piped.stdout)
        self.assertEqual(piped.stdout, binary)
        self.assert_usage_error(self.on("show", "-o", target, "http://example.test/img"))

    def test_config_mistakes_are_explained_in_words_with_file_and_line(self):
        path = os.path.join(self.dir, "c.toml")
        with open(path, "w") as f:
            f.write('# comment\nbackend = sqlite\n')
        out = self.cc("config", "--check", path)
        self.assertEqual(out.stderr.decode(),
                         'curlcache: %s:2: key \'backend\': a string needs quotes: '
                         'backend = "sqlite"\n' % path)
        env = dict(self.env, CURLCACHE_CONFIG=path)
        out = self.on("stats", env=env)
        self.assert_usage_error(out)
        self.assertNotIn(b"unknown value appeared", out.stderr)

    def test_a_variable_that_starts_a_known_one_is_warned_about(self):
        env = dict(self.env, CURLCACHE_EXPIRE="1h", CURLCACHE_LOG_LEVEL="warning")
        out = self.cc("config", env=env)
        self.assertEqual(out.returncode, 0)
        self.assertIn(b"CURLCACHE_EXPIRE: unknown variable (did you mean CURLCACHE_EXPIRE_AFTER?)",
                      out.stderr)


if __name__ == "__main__":
    clitest.main()
