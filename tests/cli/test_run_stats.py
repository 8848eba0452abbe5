#!/usr/bin/env python3
"""curlcache run --stats reports the run's own counts (issue 14): not the change of the
cache's shared counters, which other programs using the same cache at the same time move
too, and for every backend (the memory backend's counters live and die in each process).

The real curl under the preload shim (labelled no-asan in sanitizer builds)."""

import json
import os
import re
import subprocess

import clitest

SUMMARY = re.compile(rb"curlcache: (\d+) hits?, (\d+) miss(?:es)? \((\d+)%\), (\d+) stores?"
                     rb"(?:, (\d+) passed through)?(?:, ([\d.]+ [KMG]?i?B) served from the cache)?"
                     rb"(?:, ([\d.]+ m?s) saved)?\n$")


def summary(stderr):
    """(hits, misses, stores, served) of the one summary line at the end of stderr."""
    match = SUMMARY.search(stderr)
    if not match:
        raise AssertionError("no run --stats summary in %r" % stderr)
    return (int(match.group(1)), int(match.group(2)), int(match.group(4)),
            match.group(6).decode() if match.group(6) else None)


@clitest.for_backends("sqlite", "filesystem", "memory")
class RunStats(clitest.CliTestCase):

    def setUp(self):
        super().setUp()
        self.start_origin()

    def run_stats(self, script, *args):
        """curlcache run --stats -- sh -c SCRIPT _ ARGS... on the test's cache (a Popen)."""
        return subprocess.Popen([clitest.PATHS.curlcache, *self.cache_args(), "run", "--stats",
                                 "--", "sh", "-c", script, "_", *args], env=self.env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def test_counts_are_this_runs_while_another_job_uses_the_cache(self):
        url = self.origin.url("/bytes/1000")
        other = self.origin.url("/bytes/2000")
        # This job: a miss; "ready" on stdout; then, once a line comes on its stdin (after
        # the other job is done), a second request.
        job = self.run_stats('curl -s -o /dev/null "$1"; echo ready; read x; '
                             'curl -s -o /dev/null "$1"', url)
        self.assertEqual(job.stdout.readline(), b"ready\n")  # b"" if the job died
        # The other job, meanwhile: five requests of the same URL and one of its own.
        out = self.on("run", "--stats", "--", "sh", "-c",
                      'for i in 1 2 3 4 5; do curl -s -o /dev/null "$1"; done; '
                      'curl -s -o /dev/null "$2"', "_", url, other)
        self.assertEqual(out.returncode, 0, out.stderr)
        _, stderr = job.communicate(b"go\n", timeout=60)
        self.assertEqual(job.returncode, 0, stderr)
        if self.backend == "memory":  # one cache per process: every process misses
            self.assertEqual(summary(out.stderr)[:3], (0, 6, 6))
            self.assertEqual(summary(stderr)[:3], (0, 2, 2))
        else:
            self.assertEqual(summary(out.stderr), (5, 1, 1, "4.9 KiB"))
            self.assertEqual(summary(stderr), (1, 1, 1, "1000 B"))
            # The shared counters hold both jobs.
            stats = json.loads(self.on("stats", "--json").stdout)
            self.assertEqual((stats["hits"], stats["misses"], stats["stores"]), (6, 2, 2))

    def test_one_process_hits_count_for_every_backend_and_leave_no_file(self):
        tmp = os.path.join(self.dir, "tmp")
        os.mkdir(tmp)
        self.env["TMPDIR"] = tmp  # where the run statistics file lives while the run lasts
        url = self.origin.url("/text")
        out = self.on("run", "--stats", "--", "curl", "-s", "-o", "/dev/null", "-o", "/dev/null",
                      url, url)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(summary(out.stderr), (1, 1, 1, "127 B"))
        leftovers = [f for _, _, files in os.walk(tmp) for f in files]
        self.assertEqual(leftovers, [])

    def test_a_nested_run_counts_for_the_outer_run_too(self):
        url = self.origin.url("/text")
        job = self.run_stats('curl -s -o /dev/null "$1"; "$2" --backend "$3" --name "$4" run '
                             '--stats -- curl -s -o /dev/null "$1"', url, clitest.PATHS.curlcache,
                             self.backend, self.cache_path())
        _, stderr = job.communicate(timeout=60)
        self.assertEqual(job.returncode, 0, stderr)
        lines = [line + b"\n" for line in stderr.splitlines()]
        self.assertEqual(len(lines), 2, stderr)
        expected_inner = (0, 1, 1) if self.backend == "memory" else (1, 0, 0)
        self.assertEqual(summary(lines[0])[:3], expected_inner)
        self.assertEqual(summary(lines[1])[:3],
                         (0, 2, 2) if self.backend == "memory" else (1, 1, 1))


if __name__ == "__main__":
    clitest.main()
