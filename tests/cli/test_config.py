#!/usr/bin/env python3
"""curlcache config: every setting with its origin; config --check with file:line."""

import json
import os

import clitest


class Config(clitest.CliTestCase):

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def settings(self, *args, env=None):
        out = self.ok(*args, "config", "--json", env=env)
        return {s["key"]: s for s in json.loads(out.stdout)["settings"]}

    def test_every_setting_is_listed_with_its_origin(self):
        lines = self.ok("config").stdout.decode().splitlines()
        self.assertIn('(default) mode = "normal"', lines)
        keys = [line.split(") ", 1)[1].split(" = ")[0] for line in lines
                if not line.startswith("#")]
        # After the values, what decides freshness with them (these tests run hermetic).
        self.assertIn("# freshness: hermetic: the config alone decides: the first matching "
                      "urls_expire_after rule, else expire_after = never", lines)
        env = dict(self.env, CURLCACHE_HERMETIC="0", CURLCACHE_STALE_IF_ERROR="1d")
        lines = self.ok("config", env=env).stdout.decode().splitlines()
        self.assertTrue(any(line.startswith("# freshness: the origin's headers decide (RFC "
                                            "9111, a private cache)") for line in lines), lines)
        self.assertIn("# stale-if-error: stale entries stand in for origin errors for up to "
                      "1d", lines)
        for key in ("backend", "name", "max_size", "expire_after", "sqlite.fast_save",
                    "redis.url"):
            self.assertIn(key, keys)

    def test_file_environment_and_argument_origins_are_reported(self):
        path = self.write("c.toml", 'expire_after = "1h"\n\nmax_size = "10MiB"\n')
        env = dict(self.env, CURLCACHE_CONFIG=path, CURLCACHE_MODE="offline")
        settings = self.settings("--name", "/tmp/x.sqlite", env=env)
        self.assertEqual(settings["max_size"]["origin"], "file")
        self.assertEqual(settings["max_size"]["where"], path + ":3")
        self.assertEqual(settings["mode"]["origin"], "environment")
        self.assertEqual(settings["mode"]["where"], "CURLCACHE_MODE")
        self.assertEqual(settings["name"]["origin"], "argument")
        self.assertEqual(settings["sort_query"]["origin"], "default")
        lines = self.ok("config", env=env).stdout.decode().splitlines()
        self.assertIn('(%s:1) expire_after = "1h"' % path, lines)

    def test_explicit_config_option_is_read(self):
        path = self.write("c.toml", "sort_query = true\n")
        settings = self.settings("--config", path)
        self.assertIs(settings["sort_query"]["value"], True)
        self.assertEqual(settings["sort_query"]["where"], path + ":1")

    def test_check_accepts_a_valid_file_quietly(self):
        path = self.write("good.toml", 'backend = "sqlite"\nexpire_after = "15m"\n')
        out = self.ok("config", "--check", path)
        self.assertEqual(out.stdout, b"")
        self.assertEqual(out.stderr, b"")

    def test_check_reports_file_and_line_of_a_bad_value(self):
        path = self.write("bad.toml", 'backend = "sqlite"\n\nexpire_after = "5 parsecs"\n')
        out = self.cc("config", "--check", path)
        self.assert_runtime_error(out, path + ":3")

    def test_check_of_a_missing_file_fails(self):
        out = self.cc("config", "--check", os.path.join(self.dir, "none.toml"))
        self.assert_runtime_error(out, "none.toml")

    def test_a_malformed_config_is_a_usage_error_for_config(self):
        path = self.write("broken.toml", "mode = \n")
        env = dict(self.env, CURLCACHE_CONFIG=path)
        self.assert_usage_error(self.cc("config", env=env))
        self.assertIn(path.encode(), self.cc("config", env=env).stderr)


if __name__ == "__main__":
    clitest.main()
