#!/usr/bin/env python3
"""A misspelt key in a config file warns once per version of the file (issue 14), not in
every libcurl process that reads it: two curl processes under the shim with the same bad
config print one warning between them; after the file is edited the next process warns
again; `curlcache config` shows the warning every time.

The real curl under the preload shim (labelled no-asan in sanitizer builds)."""

import os

import clitest

WARNING = b"unknown key 'max_sise' (did you mean 'max_size'?)"


class ConfigWarnsOnce(clitest.CliTestCase):

    def setUp(self):
        super().setUp()
        self.start_origin()
        self.config = os.path.join(self.dir, "bad.toml")
        with open(self.config, "w") as f:
            f.write('max_sise = "1GiB"\n')
        self.env["CURLCACHE_CONFIG"] = self.config
        self.env["CURLCACHE_LOG_LEVEL"] = "warning"

    def curl(self):
        out = self.run_curl(self.origin.url("/text"), "-o", "/dev/null")
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stderr.count(WARNING)

    def test_two_processes_warn_once_and_an_edit_warns_again(self):
        self.assertEqual(self.curl() + self.curl(), 1)
        config = self.ok("config")
        self.assertEqual(config.stderr.count(WARNING), 1)
        self.assertEqual(self.ok("config").stderr.count(WARNING), 1)  # every time
        with open(self.config, "a") as f:
            f.write("# edited\n")
        stat = os.stat(self.config)
        os.utime(self.config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        self.assertEqual(self.curl(), 1)
        self.assertEqual(self.curl(), 0)

    def test_processes_started_at_once_warn_once_between_them(self):
        url = self.origin.url("/text")
        script = " & ".join(["curl -s -o /dev/null %s" % url] * 4) + " & wait"
        out = self.on("run", "--", "sh", "-c", script)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stderr.count(WARNING), 1, out.stderr)


if __name__ == "__main__":
    clitest.main()
