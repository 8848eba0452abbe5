#!/usr/bin/env python3
"""The curlcache command with the postgres plugin, against one private PostgreSQL 15 started
here (shim_postgres.Postgres: initdb + postgres on a free 127.0.0.1 port, stopped by PID):

- export --to postgres://... and back (export and import): sqlite -> postgres -> sqlite keeps
  every entry byte-identical (list --json, show --json, bodies, a chunked 3 MiB body,
  expiry); a password in the URL is never printed; an unknown scheme lists the plugins;
- plugin settings from CURLCACHE_POSTGRES_* variables alone (no file): a tiered
  sqlite,postgres cache under `curlcache run`, its second tier answering once the first is
  gone; `curlcache config` shows them with their origin, the password masked.

    cli_postgres.py --curlcache PATH --fill PATH --origin PATH --plugin-dir DIR

Exit status 0 pass, 1 fail, 77 PostgreSQL not installed.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
sys.path.insert(0, HERE)
import clitest  # noqa: E402
from shim_postgres import Postgres, pg_bindir  # noqa: E402

SERVER = None
PLUGIN_DIR = None
BIG = os.urandom(3 << 20)  # over the plugin's 1 MiB chunk size


def setUpModule():
    global SERVER
    SERVER = Postgres()
    SERVER.start()


def tearDownModule():
    SERVER.stop()
    SERVER.remove()


class PostgresCli(clitest.CliTestCase):

    def setUp(self):
        super().setUp()
        self.env["CURLCACHE_PLUGIN_DIR"] = PLUGIN_DIR
        self.table = "t_%s" % os.path.basename(self.dir).replace("-", "_").lower()

    def pg_url(self, password=""):
        return "postgres://postgres%s@127.0.0.1:%d/postgres" % (
            ":" + password if password else "", SERVER.port)

    def pg_config(self, table):
        path = os.path.join(self.dir, table + ".toml")
        with open(path, "w") as f:
            f.write('backend = "postgres"\n[postgres]\nurl = "%s"\ntable = "%s"\n'
                    % (self.pg_url(), table))
        return ["--config", path]

    def fill_sample(self):
        big = os.path.join(self.dir, "big.bin")
        with open(big, "wb") as f:
            f.write(BIG)
        binary = os.path.join(self.dir, "binary.bin")
        with open(binary, "wb") as f:
            f.write(bytes(range(256)) * 3)
        keys = self.fill("http://example.test/text", "200", "hello\nworld\n",
                         "http://example.test/big", "200", "@" + big,
                         settings=("expire_after=2h",))
        keys += self.fill("POST", "http://example.test/bin?q=a%20b", "200", "@" + binary,
                          "http://example.test/gone", "404", "not here",
                          settings=("allowable_methods=GET,POST", "allowable_codes=200,404"))
        return keys

    def snapshot(self, args, keys):
        """Everything the command shows of each entry: list --json, show --json, the body."""
        listed = self.ok(*args, "list", "--json").stdout
        shown = []
        for key in keys:
            entry = json.loads(self.ok(*args, "show", key, "--json").stdout)
            entry.pop("freshness")  # counts the seconds since it was stored
            shown.append((entry, self.ok(*args, "show", key, "--body").stdout))
        return json.loads(listed)["entries"], shown

    def test_sqlite_to_postgres_to_sqlite_round_trip_is_byte_identical(self):
        keys = self.fill_sample()
        original = self.snapshot(self.cache_args(), keys)
        self.assertEqual(len(original[0]), 4)
        self.assertTrue(any(e["expires"] for e in original[0]), original[0])
        self.assertEqual(original[1][1][1], BIG)

        to = "%s?table=%s" % (self.pg_url(), self.table)
        out = self.on("export", "--to", to)
        self.assertEqual(out.stdout.decode(), "4 entries exported to %s\n" % to)
        pg = self.pg_config(self.table)
        in_pg = self.snapshot(pg, keys)
        self.assertEqual([{k: v for k, v in e.items() if k != "size"} for e in in_pg[0]],
                         [{k: v for k, v in e.items() if k != "size"} for e in original[0]])
        self.assertEqual(in_pg[1], original[1])

        # Back by export from the postgres cache, and by import into an empty sqlite cache.
        back = "sqlite://" + self.cache_path("sqlite", "back")
        self.ok(*pg, "export", "--to", back)
        self.assertEqual(self.snapshot(self.cache_args(label="back"), keys), original)
        out = self.on("import", "--from", to, label="imported")
        self.assertEqual(out.stdout.decode(), "4 entries imported from %s\n" % to)
        self.assertEqual(self.snapshot(self.cache_args(label="imported"), keys), original)

    def test_a_password_in_the_url_is_never_printed(self):
        self.fill("http://example.test/a", "200", "a")
        # The server trusts loopback: the password is accepted and unused.
        to = "%s?table=%s" % (self.pg_url("s3cret"), self.table)
        out = self.on("export", "--to", to)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn(b"s3cret", out.stdout + out.stderr)
        self.assertIn(b"exported to postgres://postgres:***@127.0.0.1", out.stdout)
        out = self.on("export", "--to", to + "&oops")
        self.assert_usage_error(out)
        self.assertNotIn(b"s3cret", out.stderr)
        out = self.on("export", "--to", "%s?table=bad-name" % self.pg_url("s3cret"))
        self.assert_runtime_error(out, "not a table name")
        self.assertNotIn(b"s3cret", out.stderr)

    def test_libpqs_postgresql_scheme_is_the_postgres_plugin(self):
        self.fill("http://example.test/a", "200", "a", "http://example.test/b", "200", "b")
        url = self.pg_url("s3cret").replace("postgres://", "postgresql://", 1)
        to = "%s?table=%s" % (url, self.table)
        out = self.on("export", "--to", to)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"exported to postgresql://postgres:***@127.0.0.1", out.stdout)
        self.assertNotIn(b"s3cret", out.stdout + out.stderr)
        out = self.on("import", "--from", to, label="back")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(out.stdout.startswith(b"2 entries imported from postgresql://"),
                        out.stdout)

    def test_an_unknown_scheme_names_the_installed_plugins(self):
        out = self.cc("export", "--to", "nosuch://host/x")
        self.assert_usage_error(out)
        self.assertRegex(out.stderr, rb"unknown backend 'nosuch' \(sqlite, filesystem, redis, "
                                     rb"([a-z0-9_-]+, )*postgres, ")

    def test_variables_alone_configure_a_sqlite_postgres_tier(self):
        origin = self.start_origin()
        env = dict(self.env, CURLCACHE_BACKEND="sqlite,postgres",
                   CURLCACHE_NAME=self.cache_path("sqlite"),
                   CURLCACHE_POSTGRES_URL=self.pg_url("pw"),
                   CURLCACHE_POSTGRES_TABLE=self.table,
                   CURLCACHE_POSTGRES_CONNECT_TIMEOUT="5s")
        url = origin.url("/bytes/3000")
        first = self.cc("run", "--", "curl", "-s", "-S", url, env=env)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(first.stderr, b"")
        # Both tiers hold it.
        self.assertEqual(len(self.list_json()), 1)
        self.assertEqual(len(json.loads(self.ok(*self.pg_config(self.table), "list",
                                                "--json").stdout)["entries"]), 1)
        # With the first tier gone, the second answers (no origin request) and refills it.
        os.unlink(self.cache_path("sqlite"))
        before = origin.count()
        second = self.cc("run", "--", "curl", "-s", "-S", url, env=env)
        self.assertEqual((second.returncode, second.stdout, second.stderr),
                         (0, first.stdout, b""))
        self.assertEqual(origin.count(), before)
        self.assertEqual(len(self.list_json()), 1)

        # `curlcache config` shows where each came from; the password never.
        out = self.ok("config", env=env)
        text = out.stdout.decode()
        self.assertIn('(CURLCACHE_POSTGRES_URL) postgres.url = "postgres://postgres:***@127.0.0.1',
                      text)
        self.assertIn('(CURLCACHE_POSTGRES_TABLE) postgres.table = "%s"' % self.table, text)
        self.assertNotIn("pw@", text)
        self.assertEqual(out.stderr, b"")
        document = json.loads(self.ok("config", "--json", env=env).stdout)
        settings = {s["key"]: s for s in document["settings"]}
        self.assertEqual(settings["postgres.url"]["origin"], "environment")
        self.assertEqual(settings["postgres.url"]["env"], "CURLCACHE_POSTGRES_URL")
        self.assertNotIn("pw@", json.dumps(settings))


if __name__ == "__main__":
    if pg_bindir() is None:
        print("PostgreSQL 15 is not installed (scripts/install-deps.sh)")
        sys.exit(77)
    if "--plugin-dir" in sys.argv:
        at = sys.argv.index("--plugin-dir")
        PLUGIN_DIR = sys.argv[at + 1]
        del sys.argv[at:at + 2]
    clitest.main()
