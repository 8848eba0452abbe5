#!/usr/bin/env python3
"""Writes a large HAR file for measuring `curlcache import --har` (BENCHMARKS.md).

    make_har.py OUT.har --entries N --body-bytes B

N entries of http://bench.test/e/<i>, each a 200 with Cache-Control: max-age and a body of
B pseudo-random bytes (base64 in the file, so the file is about N * B * 4/3 bytes). Written
entry by entry: the generator itself never holds the file."""

import argparse
import base64
import json
import random


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--entries", type=int, required=True)
    parser.add_argument("--body-bytes", type=int, required=True)
    args = parser.parse_args()
    rng = random.Random(14)
    with open(args.out, "w") as f:
        f.write('{"log": {"version": "1.2", "creator": {"name": "make_har", "version": "1"},'
                ' "entries": [\n')
        for i in range(args.entries):
            body = rng.randbytes(args.body_bytes)
            entry = {"startedDateTime": "2026-12-03T15:00:00.000Z", "time": 1,
                     "request": {"method": "GET", "url": "http://bench.test/e/%d" % i,
                                 "httpVersion": "HTTP/1.1", "headers": [], "cookies": [],
                                 "queryString": [], "headersSize": -1, "bodySize": 0},
                     "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                                  "headers": [{"name": "Content-Type",
                                               "value": "application/octet-stream"},
                                              {"name": "Cache-Control", "value": "max-age=86400"}],
                                  "cookies": [], "redirectURL": "", "headersSize": -1,
                                  "bodySize": len(body),
                                  "content": {"size": len(body),
                                              "mimeType": "application/octet-stream",
                                              "encoding": "base64",
                                              "text": base64.b64encode(body).decode()}},
                     "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0}}
            f.write((",\n" if i else "") + json.dumps(entry))
        f.write("\n]}}\n")


if __name__ == "__main__":
    main()
