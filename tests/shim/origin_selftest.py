#!/usr/bin/env python3
"""Checks scripts/origin.py against its documentation: the port announcement (stdout line
and --port-file), the request counter, every endpoint, conditionals, ranges, HEAD, POST,
HTTPS, and that bodies and headers are the same on every request. Other tests rely on all
of it. Standard library only; exit status 0 pass, 1 fail."""

import gzip
import http.client
import os
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FAILURES = []


def check(what, condition, detail=""):
    print("%s %s%s" % ("ok  " if condition else "FAIL", what, (": " + detail) if detail
                       and not condition else ""))
    if not condition:
        FAILURES.append(what)


def request(origin, method, path, headers=None, body=None):
    if origin.tls:
        ctx = ssl.create_default_context(cafile=origin.cacert)
        conn = http.client.HTTPSConnection("127.0.0.1", origin.port, context=ctx, timeout=10)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, r.getheaders(), data


def header(headers, name):
    return next((v for k, v in headers if k.lower() == name.lower()), None)


def http_checks(o):
    o.reset()
    s1, h1, b1 = request(o, "GET", "/text")
    s2, h2, b2 = request(o, "GET", "/text")
    check("/text is 200 with a body", s1 == 200 and len(b1) > 0)
    check("/text is identical twice (headers and body)", (h1, b1) == (h2, b2))
    for name in ("Content-Type", "ETag", "Last-Modified", "Cache-Control", "Date"):
        check("/text has %s" % name, header(h1, name) is not None)
    check("the counter counted 2 and /__count is not counted", o.count() == 2 and
          o.count() == 2, str(o.count()))
    check("/__log lists the requests", o.log() == "GET /text\nGET /text\n", repr(o.log()))
    o.reset()
    check("/__reset sets the count to 0", o.count() == 0)
    s, h, b = request(o, "GET", "/bytes/70000")
    check("/bytes/N has N bytes", s == 200 and len(b) == 70000)
    check("/bytes/N is deterministic", request(o, "GET", "/bytes/70000")[2] == b)
    s, h, b = request(o, "GET", "/bytes/70000", {"Range": "bytes=100-199"})
    check("Range gives 206 with Content-Range and the bytes",
          s == 206 and header(h, "Content-Range") == "bytes 100-199/70000"
          and b == request(o, "GET", "/bytes/70000")[2][100:200])
    s, h, b = request(o, "GET", "/bytes/10", {"Range": "bytes=50-"})
    check("an unsatisfiable Range gives 416", s == 416)
    etag = header(request(o, "GET", "/text")[1], "ETag")
    s, h, b = request(o, "GET", "/text", {"If-None-Match": etag})
    check("If-None-Match with the ETag gives 304 without a body", s == 304 and b == b"")
    s, h, b = request(o, "GET", "/text", {"If-Modified-Since": "Fri, 01 Jan 2021 00:00:00 GMT"})
    check("If-Modified-Since after Last-Modified gives 304", s == 304)
    s, h, b = request(o, "GET", "/text", {"If-Modified-Since": "Tue, 01 Jan 2019 00:00:00 GMT"})
    check("If-Modified-Since before Last-Modified gives 200", s == 200)
    s, h, b = request(o, "GET", "/redirect/3")
    check("/redirect/3 is a 302 to /redirect/2", s == 302 and header(h, "Location")
          == "/redirect/2")
    s, h, b = request(o, "GET", "/redirect/1")
    check("/redirect/1 is a 302 to /text", s == 302 and header(h, "Location") == "/text")
    s, h, zipped = request(o, "GET", "/gzip", {"Accept-Encoding": "gzip"})
    s2, h2, plain = request(o, "GET", "/gzip")
    check("/gzip is gzip-encoded when accepted and plain otherwise",
          header(h, "Content-Encoding") == "gzip" and header(h2, "Content-Encoding") is None
          and gzip.decompress(zipped) == plain)
    check("/gzip bytes are deterministic",
          request(o, "GET", "/gzip", {"Accept-Encoding": "gzip"})[2] == zipped)
    s, h, b = request(o, "GET", "/chunked/2500")
    check("/chunked/N is chunked and holds the /bytes/N body",
          s == 200 and header(h, "Transfer-Encoding") == "chunked"
          and b == request(o, "GET", "/bytes/2500")[2])
    s, h, b = request(o, "GET", "/paced/70000?piece=1000&ms=0")
    check("/paced/N holds the /bytes/N body with a Content-Length and its own ETag",
          s == 200 and b == request(o, "GET", "/bytes/70000")[2]
          and header(h, "Content-Length") == "70000" and header(h, "ETag") == '"paced-70000"')
    s, h, b = request(o, "GET", "/status/418")
    check("/status/CODE answers CODE", s == 418)
    s, h, b = request(o, "GET", "/disposition")
    check("/disposition sends Content-Disposition",
          header(h, "Content-Disposition") == 'attachment; filename="report.txt"')
    s, h, b = request(o, "HEAD", "/bytes/500")
    check("HEAD has the headers and no body", s == 200 and b == b""
          and header(h, "Content-Length") == "500")
    s, h, b = request(o, "POST", "/echo", {"Content-Type": "text/x-test"}, b"hello")
    check("POST /echo returns the body and its type", b == b"hello"
          and header(h, "Content-Type") == "text/x-test")
    s, h, b = request(o, "GET", "/text?cc=no-store")
    check("?cc= replaces Cache-Control", header(h, "Cache-Control") == "no-store")
    s, h, b = request(o, "GET", "/files/../../etc/passwd")
    check("/files/ never leaves the root", s == 404)
    s, h, b = request(o, "GET", "/files/hello.txt")
    check("/files/PATH serves the --root file", s == 200 and b == b"hello file\n")


def main():
    with harness.Scratch() as scratch:
        root = os.path.join(scratch, "root")
        os.makedirs(root)
        with open(os.path.join(root, "hello.txt"), "wb") as f:
            f.write(b"hello file\n")
        with harness.Origin(scratch, root=root) as o:
            http_checks(o)
        with harness.Origin(scratch, tls=True) as o:
            s, h, b = request(o, "GET", "/text")
            check("HTTPS with --tls serves /text", s == 200 and len(b) > 0)
            check("HTTPS requests are counted", o.count() == 1)
        port_file = os.path.join(scratch, "port")
        p = subprocess.Popen([sys.executable, harness.ORIGIN, "--port-file", port_file],
                             stdout=subprocess.PIPE)
        try:
            line = p.stdout.readline().strip()
            with open(port_file) as f:
                written = f.read().strip()
            check("--port-file holds the port announced on stdout", line.decode() == written
                  and written.isdigit(), "%r vs %r" % (line, written))
        finally:
            p.terminate()
            p.wait(timeout=10)
            p.stdout.close()
        check("SIGTERM stops it cleanly", p.returncode == 0, str(p.returncode))
    print("%d failure(s)" % len(FAILURES))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
