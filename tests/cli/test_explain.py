#!/usr/bin/env python3
"""Two keys for one URL (issue 14): the real curl asks for one URL in ways that make
different keys (a header that is part of every key, HEAD instead of GET, a transfer
option); `curlcache list` shows every entry, `list --why` and `show` say what sets them
apart, from the key parts recorded with each entry.

The real curl under the preload shim (labelled no-asan in sanitizer builds)."""

import json

import clitest


@clitest.for_backends()
class TwoKeysOneUrl(clitest.CliTestCase):

    def setUp(self):
        super().setUp()
        self.start_origin()
        self.url = self.origin.url("/text")
        for extra in ([], ["-H", "Accept-Language: de"], ["-I"]):
            out = self.run_curl(self.url, "-o", "/dev/null", *extra)
            self.assertEqual(out.returncode, 0, out.stderr)
        self.entries = self.list_json()
        self.assertEqual([e["url"] for e in self.entries], [self.url] * 3)
        self.by_method = {}
        for entry in self.entries:
            self.by_method.setdefault(entry["method"], []).append(entry["key"])

    def test_list_why_names_the_parts_that_differ(self):
        out = self.on("list", "--why", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        why = {e["key"]: {p["part"]: p["value"] for p in e["why"]}
               for e in json.loads(out.stdout)["entries"]}
        german = [k for k, w in why.items() if w.get("header accept-language") == "de"]
        self.assertEqual(len(german), 1, why)
        head = self.by_method["HEAD"][0]
        self.assertEqual(why[head]["method"], "HEAD")
        self.assertEqual(why[head]["header accept-language"], "(none)")
        self.assertEqual(why[german[0]]["method"], "GET")
        # The human table has the same words in its WHY column.
        human = self.on("list", "--why").stdout.decode()
        self.assertIn("WHY", human.splitlines()[0])
        self.assertIn("header accept-language de", human)
        self.assertIn("method HEAD", human)

    def test_show_says_what_differs_from_the_other_entries(self):
        out = self.on("show", self.url, "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        shown = json.loads(out.stdout)
        parts = {p["part"]: p["value"] for p in shown["key_parts"]}
        self.assertEqual(parts["method"], "GET")
        self.assertNotIn("header accept-language", parts)
        others = {o["key"]: {d["part"]: (d["this"], d["other"]) for d in o["differs"]}
                  for o in shown["others"]}
        self.assertEqual(len(others), 2, others)
        head = self.by_method["HEAD"][0]
        self.assertEqual(others[head]["method"], ("GET", "HEAD"))
        german = [k for k in others if k != head][0]
        self.assertEqual(others[german], {"header accept-language": (None, "de")})
        human = self.on("show", self.url).stdout.decode()
        self.assertIn("header accept-language (none) here, de there", human)
        self.assertIn("method GET here, HEAD there", human)

    def test_show_by_key_gives_each_entrys_own_key_parts(self):
        languages = []
        for key in self.by_method["GET"]:
            out = self.on("show", key, "--json")
            self.assertEqual(out.returncode, 0, out.stderr)
            parts = {p["part"]: p["value"] for p in json.loads(out.stdout)["key_parts"]}
            languages.append(parts.get("header accept-language"))
        self.assertEqual(sorted(languages, key=str), [None, "de"])


if __name__ == "__main__":
    clitest.main()
