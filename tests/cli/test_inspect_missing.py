#!/usr/bin/env python3
"""Commands that inspect never create a cache (issue 14): stats, list, show and export on a
cache that does not exist fail with one line naming its path ("no cache at PATH"), exit 1
(a runtime error, as for an entry that does not exist: the arguments were fine), and
nothing appears on disk: no database, folder, statistics file or HAR."""

import os

import clitest


def tree(top):
    return sorted(os.path.relpath(os.path.join(root, name), top)
                  for root, dirs, files in os.walk(top) for name in dirs + files)


@clitest.for_backends()
class InspectMissing(clitest.CliTestCase):

    def test_inspecting_a_missing_cache_fails_naming_it_and_creates_nothing(self):
        for label, where in (("c", None), ("nested", "sub/deeper")):
            path = self.cache_path(label=label)
            if where:
                path = os.path.join(self.dir, where, os.path.basename(path))
            cache = ["--backend", self.backend, "--name", path]
            har = os.path.join(self.dir, "out.har")
            before = tree(self.dir)
            for args in (["stats"], ["stats", "--json"], ["list"], ["list", "--json"],
                         ["show", "http://example.test/"], ["export", "--har", har],
                         ["export", "--to", "sqlite://" + os.path.join(self.dir, "to.sqlite")]):
                out = self.cc(*cache, *args)
                self.assert_runtime_error(out, "no cache at " + path)
                self.assertEqual(tree(self.dir), before, "curlcache %s created files" % args)
        # Once it exists, empty is empty: no error.
        self.fill("http://example.test/a", "200", "x")
        self.ok(*self.cache_args(), "delete", "http://example.test/a")
        self.assertEqual(self.ok(*self.cache_args(), "list").stdout, b"")
        self.ok(*self.cache_args(), "stats")

    def test_a_memory_cache_is_not_one_to_inspect(self):
        out = self.cc("--backend", "memory", "stats")
        self.assert_runtime_error(out, "no cache at memory")


if __name__ == "__main__":
    clitest.main()
