#!/usr/bin/env python3
"""curlcache stats: counts that match exactly what the test did, --json, --zero."""

import json

import clitest


@clitest.for_backends()
class Stats(clitest.CliTestCase):

    def stats(self):
        return json.loads(self.ok(*self.cache_args(), "stats", "--json").stdout)

    def test_a_new_cache_has_zero_counts_and_documented_fields(self):
        self.fill()  # an empty cache: a missing one is an error
        stats = self.stats()
        self.assertEqual(set(stats), {"version", "hits", "misses", "stores", "hit_rate", "bytes_served",
                                      "bytes_downloaded", "passthrough", "errors", "corrupt",
                                      "entries", "size", "max_size", "tiers"})
        self.assertEqual((stats["hits"], stats["misses"], stats["stores"], stats["entries"]),
                         (0, 0, 0, 0))
        self.assertIsNone(stats["hit_rate"])
        self.assertEqual(stats["errors"], {"failure": 0, "timeout": 0})
        self.assertEqual(len(stats["tiers"]), 1)
        self.assertEqual(stats["tiers"][0]["backend"], self.backend)

    def test_human_output_shows_rate_and_units(self):
        self.fill("http://example.test/a", "200", "x" * 4096)
        text = self.ok(*self.cache_args(), "stats").stdout.decode()
        self.assertRegex(text, r"Entries\s+1\n")
        self.assertRegex(text, r"Size\s+\d+\.\d KiB")
        self.assertIn(self.cache_path(), text)

    def test_zero_resets_counters_and_keeps_entries(self):
        self.fill("http://example.test/a", "200", "a", "http://example.test/b", "200", "b")
        self.assertEqual(self.stats()["stores"], 2)
        out = self.ok(*self.cache_args(), "stats", "--zero")
        self.assertEqual(out.stdout, b"Statistics zeroed\n")
        stats = self.stats()
        self.assertEqual((stats["stores"], stats["hits"], stats["misses"]), (0, 0, 0))
        self.assertEqual(stats["entries"], 2)

    def test_max_size_is_reported_against_the_size(self):
        env = dict(self.env, CURLCACHE_MAX_SIZE="1MiB")
        self.fill("http://example.test/a", "200", "a")
        stats = json.loads(self.ok(*self.cache_args(), "stats", "--json", env=env).stdout)
        self.assertEqual(stats["max_size"], 1 << 20)
        text = self.ok(*self.cache_args(), "stats", env=env).stdout.decode()
        self.assertRegex(text, r"of 1\.0 MiB \(\d+\.\d %\)")


if __name__ == "__main__":
    clitest.main()
