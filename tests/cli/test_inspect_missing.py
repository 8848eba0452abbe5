#!/usr/bin/env python3
"""Commands never create a cache they were not asked to fill (issue 14): stats, list, show,
export and delete on a cache that does not exist fail with one line naming its path ("no
cache at PATH"), exit 1 (a runtime error, as for an entry that does not exist: the arguments
were fine); clear, purge, vacuum and stats --zero have nothing to do and say so (exit 0).
Nothing appears on disk: no database, folder, statistics file or HAR."""

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

    def test_changing_a_missing_cache_creates_nothing(self):
        # delete fails as show does; clear, purge, vacuum and stats --zero have nothing to
        # do, say so and succeed (a script that resets a cache before its first use).
        path = self.cache_path()
        before = tree(self.dir)
        self.assert_runtime_error(self.on("delete", "http://example.test/*"),
                                  "no cache at " + path)
        self.assertEqual(tree(self.dir), before, "curlcache delete created files")
        for args, verb in ((["clear"], "clear"), (["purge"], "purge"), (["vacuum"], "vacuum"),
                           (["stats", "--zero"], "zero")):
            out = self.ok(*self.cache_args(), *args)
            self.assertEqual(out.stdout.decode(), "Nothing to %s: no cache at %s\n" % (verb, path))
            self.assertEqual(out.stderr, b"")
            self.assertEqual(tree(self.dir), before, "curlcache %s created files" % args)
        # Once it exists they do their work.
        self.fill("http://example.test/a", "200", "x")
        self.assertEqual(self.ok(*self.cache_args(), "clear").stdout.decode()[:17],
                         "Removed 1 entry (")

    def test_a_memory_cache_is_not_one_to_inspect(self):
        out = self.cc("--backend", "memory", "stats")
        self.assert_runtime_error(out, "no cache at memory")


if __name__ == "__main__":
    clitest.main()
