#!/usr/bin/env python3
"""export/import between backends (curlcache_copy) and through HAR files."""

import json
import os
import pty
import subprocess

import clitest

BINARY = bytes(range(256)) + b"\x00\x01binary\xff"


def comparable(entries):
    """list --json without the stored size, which each backend counts its own way."""
    return [{k: v for k, v in e.items() if k != "size"} for e in entries]


class TransferBase(clitest.CliTestCase):

    def fill_sample(self, backend=None, label="c"):
        binary = os.path.join(self.dir, "binary.bin")
        with open(binary, "wb") as f:
            f.write(BINARY)
        return self.fill("http://example.test/text", "200", "hello\nworld\n",
                         "http://example.test/bin?q=a%20b&r", "200", "@" + binary,
                         "http://example.test/unicode", "200", "h\u00e9llo \u2603",
                         backend=backend, label=label)

    def bodies(self, keys, backend=None, label="c"):
        return [self.ok(*self.cache_args(backend, label), "show", k, "--body").stdout
                for k in keys]


class Export(TransferBase):

    def test_sqlite_to_filesystem_to_sqlite_round_trip_keeps_entries_identical(self):
        keys = self.fill_sample(backend="sqlite")
        original = self.list_json(backend="sqlite")
        fs_url = "filesystem://" + self.cache_path("filesystem", "copy")
        out = self.ok(*self.cache_args("sqlite"), "export", "--to", fs_url)
        self.assertEqual(out.stdout.decode(), "3 entries exported to %s\n" % fs_url)
        self.assertEqual(out.stderr, b"", "no progress bar when stderr is not a terminal")
        sqlite_url = "sqlite://" + self.cache_path("sqlite", "back")
        self.ok(*self.cache_args("filesystem", "copy"), "export", "--to", sqlite_url)
        for backend, label in (("filesystem", "copy"), ("sqlite", "back")):
            self.assertEqual(comparable(self.list_json(backend, label)), comparable(original))
            self.assertEqual(self.bodies(keys, backend, label),
                             self.bodies(keys, "sqlite", "c"))

    def test_progress_bar_is_drawn_on_a_terminal_and_erased_at_the_end(self):
        self.fill_sample(backend="sqlite")
        master, slave = pty.openpty()
        try:
            out = subprocess.run([clitest.PATHS.curlcache, *self.cache_args("sqlite"), "export",
                                  "--to", "filesystem://" + self.cache_path("filesystem")],
                                 stdout=subprocess.PIPE, stderr=slave, env=self.env,
                                 timeout=60, check=False)
        finally:
            os.close(slave)
        drawn = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            drawn += chunk
        os.close(master)
        self.assertEqual(out.returncode, 0)
        self.assertIn(b"curlcache: exporting [", drawn)
        self.assertIn(b"] 3 / 3", drawn)
        self.assertTrue(drawn.endswith(b"\r\x1b[K"), drawn)
        self.assertEqual(out.stdout.decode().split(" exported")[0], "3 entries")

    def test_import_from_a_backend_url_copies_into_this_cache(self):
        keys = self.fill_sample(backend="filesystem", label="src")
        self.fill("http://example.test/mine", "200", "mine", backend="sqlite")
        src = "filesystem://" + self.cache_path("filesystem", "src")
        out = self.ok(*self.cache_args("sqlite"), "import", "--from", src)
        self.assertEqual(out.stdout.decode(), "3 entries imported from %s\n" % src)
        self.assertEqual(len(self.list_json("sqlite")), 4)
        self.assertEqual(self.bodies(keys, "sqlite"), self.bodies(keys, "filesystem", "src"))

    def test_export_to_a_config_file_ignores_the_environment(self):
        self.fill_sample(backend="sqlite")
        target = self.cache_path("filesystem", "viaconfig")
        config = os.path.join(self.dir, "target.toml")
        with open(config, "w") as f:
            f.write('backend = "filesystem"\nname = "%s"\n' % target)
        env = dict(self.env, CURLCACHE_BACKEND="sqlite")  # applies to the source only
        self.ok(*self.cache_args("sqlite"), "export", "--to", config, env=env)
        self.assertEqual(len(self.list_json("filesystem", "viaconfig")), 3)

    def test_a_backend_url_is_not_changed_by_the_environment(self):
        self.fill_sample(backend="filesystem")
        # Would put an SQLite target in memory (and leave its file empty) if it applied.
        env = dict(self.env, CURLCACHE_SQLITE_USE_MEMORY="true")
        target = "sqlite://" + self.cache_path("sqlite", "target")
        self.ok(*self.cache_args("filesystem"), "export", "--to", target, env=env)
        self.assertEqual(len(self.list_json("sqlite", "target")), 3)

    def test_export_to_an_unopenable_target_is_a_runtime_error(self):
        self.fill_sample(backend="sqlite")
        blocker = os.path.join(self.dir, "a-file")
        open(blocker, "w").close()  # a directory cannot be made under a file, even by root
        out = self.on("export", "--to", "sqlite://%s/sub/c.sqlite" % blocker, backend="sqlite")
        self.assert_runtime_error(out, "a-file")

    def test_export_onto_the_cache_itself_fails_and_changes_nothing(self):
        self.fill_sample(backend="sqlite")
        before = self.list_json("sqlite")
        out = self.on("export", "--to", "sqlite://" + self.cache_path("sqlite"), backend="sqlite")
        self.assert_runtime_error(out, "is this cache itself")
        self.assertEqual(self.list_json("sqlite"), before)

    def test_bad_backend_url_is_a_usage_error(self):
        self.assert_usage_error(self.cc("export", "--to", "ftp://x/y"))
        # A memory cache would vanish with the command: refused, not a silent success.
        out = self.cc("export", "--to", "memory://")
        self.assert_usage_error(out)
        self.assertIn(b"memory cache lives inside one process", out.stderr)
        self.assert_usage_error(self.cc("import", "--from", "memory://"))
        self.assert_usage_error(self.cc("import", "--from", "sqlite:///x?novalue"))


@clitest.for_backends()
class Har(TransferBase):

    def export_har(self, label="c"):
        path = os.path.join(self.dir, label + ".har")
        out = self.ok(*self.cache_args(label=label), "export", "--har", path)
        self.assertTrue(out.stdout.endswith(b"exported to %s\n" % path.encode()))
        with open(path, "rb") as f:
            return path, json.loads(f.read())

    def test_har_export_is_valid_har_1_2_with_base64_for_binary_bodies(self):
        self.fill_sample()
        _, har = self.export_har()
        self.assertEqual(har["log"]["version"], "1.2")
        self.assertEqual(har["log"]["creator"]["name"], "curlcache")
        entries = {e["request"]["url"]: e for e in har["log"]["entries"]}
        self.assertEqual(len(entries), 3)
        for entry in entries.values():
            for field in ("startedDateTime", "time", "request", "response", "cache",
                          "timings"):
                self.assertIn(field, entry)
            self.assertEqual(entry["response"]["status"], 200)
            self.assertEqual(entry["response"]["httpVersion"], "HTTP/1.1")
            self.assertIn({"name": "Content-Type", "value": "text/plain"},
                          entry["response"]["headers"])
        text = entries["http://example.test/text"]["response"]["content"]
        self.assertEqual(text["text"], "hello\nworld\n")
        self.assertNotIn("encoding", text)
        self.assertEqual(entries["http://example.test/unicode"]["response"]["content"]["text"],
                         "h\u00e9llo \u2603")
        binary = entries["http://example.test/bin?q=a%20b&r"]
        self.assertEqual(binary["response"]["content"]["encoding"], "base64")
        self.assertEqual(binary["request"]["queryString"],
                         [{"name": "q", "value": "a b"}, {"name": "r", "value": ""}])

    def test_har_round_trip_into_an_empty_cache_gives_identical_entries(self):
        keys = self.fill_sample()
        path, _ = self.export_har()
        out = self.ok(*self.cache_args(label="fresh"), "import", "--har", path)
        self.assertEqual(out.stdout.decode(), "3 entries imported from %s\n" % path)
        imported = self.list_json(label="fresh")
        self.assertEqual(sorted(e["key"] for e in imported), sorted(keys))
        self.assertEqual(self.bodies(keys, label="fresh"), self.bodies(keys))
        for key in keys:
            a = json.loads(self.ok(*self.cache_args(), "show", key, "--json").stdout)
            b = json.loads(self.ok(*self.cache_args(label="fresh"), "show", key, "--json").stdout)
            self.assertEqual(a["headers"], b["headers"])

    def test_har_from_a_browser_builds_headers_from_name_value_pairs(self):
        har = {"log": {"version": "1.2", "creator": {"name": "b", "version": "1"}, "entries": [
            {"request": {"method": "GET", "url": "https://site.test/x", "headers": []},
             "response": {"status": 200, "statusText": "OK", "httpVersion": "h2",
                          "headers": [{"name": ":status", "value": "200"},
                                      {"name": "content-type", "value": "text/html"},
                                      {"name": "content-encoding", "value": "gzip"},
                                      {"name": "content-length", "value": "999"}],
                          "content": {"size": 5, "mimeType": "text/html", "text": "<p/>\n"}}},
            {"request": {"method": "GET", "url": "http://site.test/blocked"},
             "response": {"status": 0, "content": {"size": 0}}},
            {"request": {"method": "GET", "url": "http://site.test/img"},
             "response": {"status": 200, "content": {"size": 4000, "mimeType": "image/png"}}},
        ]}}
        path = os.path.join(self.dir, "browser.har")
        with open(path, "w") as f:
            json.dump(har, f)
        out = self.ok(*self.cache_args(), "import", "--har", path)
        self.assertIn(b"1 entry imported", out.stdout)
        self.assertIn(b"2 without a saved response", out.stdout)
        shown = json.loads(self.ok(*self.cache_args(), "show", "https://site.test/x",
                                   "--json").stdout)
        # As libcurl delivers an HTTP/2 response: no reason phrase.
        self.assertEqual(shown["headers"],
                         ["HTTP/2 200 \r\ncontent-type: text/html\r\n"
                          "content-length: 5\r\n\r\n"])
        self.assertEqual(self.ok(*self.cache_args(), "show", "https://site.test/x",
                                 "--body").stdout, b"<p/>\n")

    def test_malformed_har_fails_with_one_line_naming_the_problem_and_stores_nothing(self):
        good = {"request": {"method": "GET", "url": "http://site.test/ok"},
                "response": {"status": 200, "content": {"size": 2, "text": "ok"}}}
        cases = [
            ('{"log": {"entries": [', "line 1, column 22"),
            ('{"log": {"entries": [1,]}}', "line 1"),
            ('{"log": {}}', 'log: missing "entries"'),
            ('[]', "expected an object"),
            (json.dumps({"log": {"entries": [good, {"request": {"method": "GET",
                                                                "url": "http://site.test/b"},
                                                    "response": {"status": "200",
                                                                 "content": {}}}]}}),
             "log.entries[1].response.status: expected a number, found a string"),
            (json.dumps({"log": {"entries": [good, {
                "request": {"method": "GET", "url": "http://site.test/c"},
                "response": {"status": 200, "content": {"text": "!!", "encoding": "base64"}}}]}}),
             "log.entries[1].response.content.text: invalid base64"),
            ('{"log": {"entries": [], "entries": []}}', "duplicate member"),
            (b'{"log": {"entries": ["\xff"]}}', "invalid UTF-8"),
        ]
        self.fill("http://example.test/existing", "200", "x")
        before = self.list_json()
        for text, message in cases:
            path = os.path.join(self.dir, "bad.har")
            with open(path, "wb") as f:
                f.write(text if isinstance(text, bytes) else text.encode())
            out = self.on("import", "--har", path)
            self.assert_runtime_error(out, message)
            self.assertIn(path.encode(), out.stderr)
            self.assertEqual(self.list_json(), before, "a malformed HAR changed the cache")

    def test_har_strings_decode_every_json_escape(self):
        text = ('{"log": {"entries": [{"request": {"method": "GET", "url": "http://s.test/e"},'
                ' "response": {"status": 2e2, "content": {"text":'
                ' "\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/\\b\\f\\r\\u0000"}}}]}}')
        path = os.path.join(self.dir, "escapes.har")
        with open(path, "w") as f:
            f.write(text)
        self.ok(*self.cache_args(), "import", "--har", path)
        body = self.ok(*self.cache_args(), "show", "http://s.test/e", "--body").stdout
        self.assertEqual(body, "\u00e9\U0001F600\n\t\"\\/\b\f\r\x00".encode())
        for bad, message in (('"\\ud83d"', "high surrogate"), ('"\\ude00"', "lone low"),
                             ('"\\x"', "invalid escape"), ('"a\tb"', "control character"),
                             ("01", "column 23: expected ',' or ']'"), ("1.", "digits must follow"),
                             ("tru", "invalid literal"), ("[" * 300, "nested too deeply")):
            with open(path, "w") as f:
                f.write('{"log": {"entries": [%s]}}' % bad)
            self.assert_runtime_error(self.on("import", "--har", path), message)

    def test_har_to_stdout_and_from_stdin(self):
        keys = self.fill_sample()
        out = self.ok(*self.cache_args(), "export", "--har", "-")
        self.assertEqual(len(json.loads(out.stdout)["log"]["entries"]), 3)
        self.ok(*self.cache_args(label="fresh"), "import", "--har", "-", input=out.stdout)
        self.assertEqual(self.bodies(keys, label="fresh"), self.bodies(keys))


if __name__ == "__main__":
    clitest.main()
