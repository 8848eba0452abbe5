#!/usr/bin/env python3
"""The command line itself: help, version, usage errors (exit 2) that change nothing."""

import os
import re
import shutil

import clitest

SUBCOMMANDS = ["run", "stats", "list", "show", "delete", "clear", "purge", "vacuum",
               "export", "import", "config"]


class Usage(clitest.CliTestCase):

    def test_help_of_every_subcommand_goes_to_stdout_and_exits_0(self):
        for command in SUBCOMMANDS:
            out = self.cc(command, "--help")
            self.assertEqual(out.returncode, 0, command)
            self.assertTrue(out.stdout.startswith(b"usage: curlcache " + command.encode()),
                            out.stdout[:80])
            self.assertIn(b"--config FILE", out.stdout)
            self.assertEqual(out.stderr, b"")

    def test_help_command_is_the_commands_help(self):
        self.assertEqual(self.ok("help", "list").stdout, self.ok("list", "--help").stdout)
        self.assert_usage_error(self.cc("help", "nosuch"))

    def test_version_names_libcurl_and_compiled_in_backends(self):
        out = self.ok("--version")
        text = out.stdout.decode()
        self.assertRegex(text, r"^curlcache \d+\.\d+\.\d+\n")
        self.assertRegex(text, r"libcurl: libcurl/\d+\.\d+")
        self.assertRegex(text, r"backends: .*sqlite")
        self.assertIn("filesystem", text)

    def test_version_lists_the_plugins_found_with_their_versions(self):
        # The build tree's own plugin folder (beside libcurlcache.so), found without help.
        text = self.ok("--version").stdout.decode()
        self.assertRegex(text, r"\nplugin: example 1\.0\.0 /\S+/libcurlcache-backend-example\.so\n")
        # Another folder: a plugin copied there, and a file that is no plugin, with why.
        folder = os.path.join(self.dir, "plugins")
        os.mkdir(folder)
        example = re.search(r"plugin: example \S+ (\S+)", text).group(1)
        shutil.copy(example, os.path.join(folder, "libcurlcache-backend-mine.so"))
        with open(os.path.join(folder, "libcurlcache-backend-broken.so"), "wb") as f:
            f.write(b"not an ELF file")
        env = dict(self.env, CURLCACHE_PLUGIN_DIR=folder)
        lines = [l for l in self.ok("--version", env=env).stdout.decode().splitlines()
                 if l.startswith("plugin: ")]
        self.assertEqual(len(lines), 2, lines)
        self.assertRegex(lines[0], r"^plugin: %s/libcurlcache-backend-broken\.so: cannot load "
                         % re.escape(folder))
        self.assertEqual(lines[1], "plugin: example 1.0.0 %s/libcurlcache-backend-mine.so" % folder)
        empty = os.path.join(self.dir, "none")
        os.mkdir(empty)
        out = self.ok("--version", env=dict(self.env, CURLCACHE_PLUGIN_DIR=empty)).stdout
        self.assertNotIn(b"plugin:", out)

    def test_no_command_prints_usage_on_stderr_and_exits_2(self):
        out = self.cc()
        self.assertEqual(out.returncode, 2)
        self.assertEqual(out.stdout, b"")
        self.assertIn(b"usage: curlcache", out.stderr)

    def test_unknown_command_is_a_usage_error(self):
        out = self.cc("frobnicate")
        self.assert_usage_error(out)
        self.assertIn(b"unknown command 'frobnicate'", out.stderr)

    def test_unknown_option_is_a_usage_error_naming_the_option(self):
        for command in SUBCOMMANDS:
            out = self.cc(command, "--no-such-option")
            self.assert_usage_error(out)
            self.assertIn(b"'--no-such-option'", out.stderr)

    def test_missing_and_extra_arguments_are_usage_errors(self):
        self.assert_usage_error(self.cc("show"))
        self.assert_usage_error(self.cc("delete"))
        self.assert_usage_error(self.cc("run"))
        self.assert_usage_error(self.cc("clear", "extra"))
        self.assert_usage_error(self.cc("list", "--url"))
        self.assert_usage_error(self.cc("stats", "--json=yes"))

    def test_conflicting_options_are_usage_errors(self):
        self.assert_usage_error(self.cc("run", "--offline", "--refresh", "--", "true"))
        self.assert_usage_error(self.cc("export"))
        self.assert_usage_error(self.cc("export", "--to", "x.toml", "--har", "x.har"))
        self.assert_usage_error(self.cc("import", "--from", "a", "--har", "b"))
        self.assert_usage_error(self.cc("stats", "--zero", "--json"))
        self.assert_usage_error(self.cc("show", "--body", "--json", "http://x/"))

    def test_usage_errors_change_nothing(self):
        keys = self.fill("http://example.test/a", "200", "a")
        before = self.list_json()
        self.assert_usage_error(self.on("delete", keys[0], "extra"))
        self.assert_usage_error(self.on("clear", "--all"))
        self.assert_usage_error(self.on("purge", "now"))
        har = os.path.join(self.dir, "out.har")
        self.assert_usage_error(self.on("export", "--to", "nosuch://x", ))
        self.assert_usage_error(self.on("export", "--har", har, "--to", "sqlite:///x"))
        self.assertFalse(os.path.exists(har))
        self.assertEqual(self.list_json(), before)

    def test_global_options_work_before_and_after_the_command(self):
        self.fill("http://example.test/a", "200", "a")
        before = self.cc(*self.cache_args(), "list", "--json")
        after = self.cc("list", "--json", *self.cache_args())
        self.assertEqual(before.returncode, 0)
        self.assertEqual(before.stdout, after.stdout)
        self.assertEqual(len(__import__("json").loads(before.stdout)["entries"]), 1)

    def test_a_bad_backend_name_is_a_usage_error(self):
        # A wrong value of an option is bad input, like a wrong option: exit 2, as
        # `export --to bogus://` does.
        out = self.cc("--backend", "sqllite", "stats")
        self.assert_usage_error(out)
        self.assertIn(b"unknown backend", out.stderr)

    def test_an_unopenable_cache_is_a_runtime_error(self):
        blocker = os.path.join(self.dir, "file")
        open(blocker, "w").close()
        out = self.cc("--backend", "sqlite", "--name", os.path.join(blocker, "c.sqlite"), "stats")
        self.assert_runtime_error(out, "cannot open the cache")


if __name__ == "__main__":
    clitest.main()
