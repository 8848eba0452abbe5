#!/usr/bin/env python3
"""list, show, delete, clear, purge and vacuum against SQLite and filesystem caches."""

import json
import os
import time

import clitest

BINARY = bytes(range(256)) * 3 + b"\x00\xff\xfe"


@clitest.for_backends()
class Entries(clitest.CliTestCase):

    def fill_three(self):
        binary = os.path.join(self.dir, "binary.bin")
        with open(binary, "wb") as f:
            f.write(BINARY)
        return self.fill("http://example.test/b", "200", "bee",
                         "http://example.test/a?x=1", "200", "ay",
                         "http://other.test/bin", "200", "@" + binary)

    def test_list_json_has_every_entry_sorted_by_url_with_documented_fields(self):
        keys = self.fill_three()
        entries = self.list_json()
        self.assertEqual([e["url"] for e in entries],
                         ["http://example.test/a?x=1", "http://example.test/b",
                          "http://other.test/bin"])
        self.assertEqual(sorted(e["key"] for e in entries), sorted(keys))
        now = int(time.time())
        for entry in entries:
            self.assertEqual(set(entry), {"key", "method", "url", "status", "created",
                                          "expires", "expired", "size"})
            self.assertRegex(entry["key"], "^[0-9a-f]{32}$")
            self.assertEqual(entry["method"], "GET")
            self.assertEqual(entry["status"], 200)
            self.assertLessEqual(abs(entry["created"] - now), 60)
            self.assertIsNone(entry["expires"])
            self.assertFalse(entry["expired"])
            self.assertGreater(entry["size"], 0)

    def test_list_url_glob_selects_matching_urls_only(self):
        self.fill_three()
        out = self.ok(*self.cache_args(), "list", "--json", "--url", "http://example.test/*")
        self.assertEqual(len(json.loads(out.stdout)["entries"]), 2)
        out = self.ok(*self.cache_args(), "list", "--json", "--url", "*/bi?")
        self.assertEqual([e["url"] for e in json.loads(out.stdout)["entries"]],
                         ["http://other.test/bin"])

    def test_list_human_output_is_an_aligned_table_with_units(self):
        keys = self.fill_three()
        lines = self.ok(*self.cache_args(), "list").stdout.decode().splitlines()
        self.assertEqual(len(lines), 4)
        self.assertTrue(lines[0].startswith("KEY"))
        columns = {line.index("GET ") for line in lines[1:]}
        self.assertEqual(len(columns), 1, "the request column is not aligned")
        self.assertIn(" B", lines[1])
        self.assertTrue(any(line.startswith(keys[2]) for line in lines))

    def test_list_of_an_empty_cache_prints_nothing(self):
        self.fill()  # an empty cache: a missing one is an error
        out = self.ok(*self.cache_args(), "list")
        self.assertEqual(out.stdout, b"")
        self.assertEqual(self.list_json(), [])

    def test_show_body_by_key_and_by_url_is_byte_identical(self):
        keys = self.fill_three()
        self.assertEqual(self.ok(*self.cache_args(), "show", keys[2], "--body").stdout, BINARY)
        self.assertEqual(self.ok(*self.cache_args(), "show", "http://example.test/b",
                                 "--body").stdout, b"bee")

    def test_show_prints_metadata_and_the_header_block(self):
        keys = self.fill_three()
        text = self.ok(*self.cache_args(), "show", keys[0]).stdout.decode()
        self.assertIn(keys[0], text)
        self.assertRegex(text, r"Method\s+GET\nURL\s+http://example.test/b\n")
        self.assertRegex(text, r"Status\s+200")
        self.assertRegex(text, r"Expires\s+never")
        self.assertIn("HTTP/1.1 200 Test\r\nContent-Type: text/plain\r\n", text)
        data = json.loads(self.ok(*self.cache_args(), "show", keys[2], "--json").stdout)
        self.assertEqual(data["body_size"], len(BINARY))
        self.assertEqual(data["headers"][0].split("\r\n")[0], "HTTP/1.1 200 Test")

    def test_show_of_a_missing_entry_is_a_runtime_error(self):
        self.fill_three()
        self.assert_runtime_error(self.on("show", "http://example.test/none"), "no entry")
        self.assert_runtime_error(self.on("show", "0" * 32), "no entry")

    def test_delete_by_key_removes_exactly_that_entry(self):
        keys = self.fill_three()
        out = self.ok(*self.cache_args(), "delete", keys[1])
        self.assertEqual(out.stdout, b"1 entry removed\n")
        self.assertEqual(sorted(e["key"] for e in self.list_json()), sorted([keys[0], keys[2]]))

    def test_delete_by_url_and_by_glob(self):
        self.fill_three()
        self.ok(*self.cache_args(), "delete", "http://other.test/bin")
        self.assertEqual(len(self.list_json()), 2)
        out = self.ok(*self.cache_args(), "delete", "http://example.test/*")
        self.assertEqual(out.stdout, b"2 entries removed\n")
        self.assertEqual(self.list_json(), [])

    def test_delete_matching_nothing_fails_and_changes_nothing(self):
        self.fill_three()
        before = self.list_json()
        self.assert_runtime_error(self.on("delete", "http://nowhere.test/*"), "no entry matches")
        self.assertEqual(self.list_json(), before)

    def test_clear_removes_every_entry(self):
        self.fill_three()
        out = self.ok(*self.cache_args(), "clear")
        self.assertRegex(out.stdout.decode(), r"^Removed 3 entries \(\d+(\.\d)? (B|KiB)\)\n$")
        self.assertEqual(self.list_json(), [])

    def test_list_expired_and_purge_see_only_expired_entries(self):
        fresh = self.fill("http://example.test/fresh", "200", "f")
        stale = self.fill("http://example.test/stale1", "200", "s",
                          "http://example.test/stale2", "200", "t",
                          settings=["expire_after=0"])
        out = self.ok(*self.cache_args(), "list", "--expired", "--json")
        expired = json.loads(out.stdout)["entries"]
        self.assertEqual(sorted(e["key"] for e in expired), sorted(stale))
        self.assertTrue(all(e["expired"] and e["expires"] for e in expired))
        out = self.ok(*self.cache_args(), "purge")
        self.assertEqual(out.stdout, b"2 expired entries removed\n")
        self.assertEqual([e["key"] for e in self.list_json()], fresh)

    def test_vacuum_keeps_the_entries(self):
        keys = self.fill_three()
        self.ok(*self.cache_args(), "delete", keys[0])
        self.assertRegex(self.ok(*self.cache_args(), "vacuum").stdout.decode(),
                         r"^Reclaimed \d+(\.\d)? [KM]?i?B \(\d+(\.\d)? [KM]?i?B on disk now\)\n$")
        self.assertEqual(len(self.list_json()), 2)


if __name__ == "__main__":
    clitest.main()
