#!/usr/bin/env python3
"""The JSON output contract (issue 14): every document of stats, list, show and config
carries "version"; config --json gives typed values (numbers, booleans, arrays, objects),
not TOML text in strings; the human output uses the JSON names."""

import json
import re

import clitest

VERSION = 1


def flat_names(document):
    """Every object key of a JSON document, arrays and objects looked into."""
    names = set()
    if isinstance(document, dict):
        for key, value in document.items():
            names.add(key)
            names |= flat_names(value)
    elif isinstance(document, list):
        for item in document:
            names |= flat_names(item)
    return names


def json_name(label):
    """"Bytes served" -> "bytes_served", "  failure" -> "failure"."""
    return re.sub(r"\s+", "_", label.strip().lower())


@clitest.for_backends()
class JsonContract(clitest.CliTestCase):

    def setUp(self):
        super().setUp()
        self.key = self.fill("http://example.test/a", "200", "hello")[0]

    def document(self, *args):
        out = self.on(*args, "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def test_every_document_is_an_object_with_a_version(self):
        for args in (["stats"], ["list"], ["list", "--why"], ["show", self.key], ["config"]):
            document = self.document(*args)
            self.assertIsInstance(document, dict, args)
            self.assertEqual(document.get("version"), VERSION, args)
        self.assertEqual([e["key"] for e in self.document("list")["entries"]], [self.key])

    def test_config_values_are_typed(self):
        self.env["CURLCACHE_ALLOWABLE_CODES"] = "200,404"
        self.env["CURLCACHE_URLS_EXPIRE_AFTER"] = "*.example.test/*=90"
        settings = {s["key"]: s for s in self.document("config")["settings"]}
        value = {key: s["value"] for key, s in settings.items()}
        self.assertEqual(value["backend"], [self.backend])
        self.assertIs(value["hermetic"], True)  # CURLCACHE_HERMETIC=1 (clitest)
        self.assertIs(value["sort_query"], False)
        self.assertEqual(value["max_size"], 0)
        self.assertEqual(value["heuristic_percent"], 10)
        self.assertEqual(value["allowable_codes"], [200, 404])
        self.assertEqual(value["allowable_methods"], ["GET", "HEAD"])
        self.assertEqual(value["name"], self.cache_path())
        self.assertEqual(value["mode"], "normal")
        self.assertEqual(value["urls_expire_after"],
                         [{"pattern": "*.example.test/*", "expire_after": "90s"}])
        self.assertEqual(settings["allowable_codes"]["origin"], "environment")
        self.assertEqual(settings["allowable_codes"]["where"], "CURLCACHE_ALLOWABLE_CODES")

    def test_human_stats_labels_are_the_json_names(self):
        names = flat_names(self.document("stats"))
        human = self.on("stats").stdout.decode().splitlines()
        labels = [re.split(r"\s{2,}", line.strip())[0] for line in human if line.strip()]
        # "Cache" names the cache shown (its tier's backend and location), not a counter.
        labels = [label for label in labels if label != "Cache"]
        self.assertGreater(len(labels), 10)
        for label in labels:
            self.assertIn(json_name(label), names, "stats shows %r" % label)

    def test_human_show_labels_are_the_json_names(self):
        names = flat_names(self.document("show", self.key))
        human = self.on("show", self.key).stdout.decode().split("\n\n")[0].splitlines()
        labels = [re.split(r"\s{2,}", line)[0] for line in human if not line.startswith(" ")]
        self.assertIn("Body size", labels)
        for label in labels:
            self.assertIn(json_name(label), names, "show shows %r" % label)

    def test_human_list_columns_are_the_json_names(self):
        names = flat_names(self.document("list", "--why"))
        header = self.on("list", "--why").stdout.decode().splitlines()[0].split()
        for column in header:
            self.assertIn(json_name(column), names, "list shows %r" % column)


if __name__ == "__main__":
    clitest.main()
