#!/usr/bin/env python3
"""HAR interop from the outside: a HAR in the shape Chromium's devtools export, and one that
curlcache exported and that was stripped of its "_curlcache" fields, are imported with the
built `curlcache` command and replayed offline (CURLCACHE_MODE=offline, the origin stopped)
by the real `curl` and by pycurl under the preload shim; redirect chains replay for `-L`;
export writes one entry per hop; importing a large HAR keeps memory bounded."""

import base64
import gzip
import json
import os
import subprocess
import sys

import clitest

PYCURL_CLIENT = r"""
import base64, json, sys, pycurl
from io import BytesIO
out = []
for spec in sys.argv[1:]:
    follow, url = spec.split(" ", 1)
    body = BytesIO()
    c = pycurl.Curl()
    c.setopt(pycurl.URL, url)
    c.setopt(pycurl.WRITEDATA, body)
    c.setopt(pycurl.FOLLOWLOCATION, follow == "1")
    c.perform()
    out.append({"url": url, "status": c.getinfo(pycurl.RESPONSE_CODE),
                "effective": c.getinfo(pycurl.EFFECTIVE_URL),
                "body": base64.b64encode(body.getvalue()).decode()})
    c.close()
print(json.dumps(out))
"""


def python_with_pycurl():
    for candidate in ("/usr/bin/python3", sys.executable):
        if os.path.exists(candidate) and subprocess.run(
                [candidate, "-c", "import pycurl"], capture_output=True).returncode == 0:
            return candidate
    return None


def split_response(raw):
    """`curl -i` output of one response -> (status line, [(name, value)], body)."""
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    pairs = [(line.split(":", 1)[0], line.split(":", 1)[1].strip()) for line in lines[1:]]
    return lines[0], pairs, body


def content(body, mime, **extra):
    """HAR content as Chromium writes it: text, base64 for binary bodies."""
    out = {"size": len(body), "mimeType": mime, **extra}
    try:
        text = body.decode("utf-8")
        if "\x00" in text:
            raise UnicodeDecodeError("utf-8", body, 0, 1, "NUL")
        out["text"] = text
    except UnicodeDecodeError:
        out["text"] = base64.b64encode(body).decode()
        out["encoding"] = "base64"
    return out


def chromium_entry(url, version, status, status_text, response_headers, body_content,
                   redirect="", resource="document", h2=False):
    """One entry as Chromium's HAR export writes it (DevTools > Network > Save all as HAR
    with content): the private _initiator/_priority/_resourceType fields, pseudo-headers
    and lower-case names over HTTP/2, cookies in the request, -1 header sizes."""
    path = "/" + url.split("/", 3)[3] if "://" in url else url
    authority = url.split("/")[2] if "://" in url else ""
    if h2:
        request_headers = [{"name": ":authority", "value": authority},
                           {"name": ":method", "value": "GET"},
                           {"name": ":path", "value": path},
                           {"name": ":scheme", "value": url.split(":")[0]},
                           {"name": "accept", "value": "*/*"},
                           {"name": "accept-encoding", "value": "gzip, deflate, br, zstd"},
                           {"name": "accept-language", "value": "en-GB,en;q=0.9"},
                           {"name": "cookie", "value": "session=s3cret-cookie"},
                           {"name": "priority", "value": "u=1"},
                           {"name": "sec-ch-ua", "value": '"Chromium";v="131"'},
                           {"name": "sec-fetch-mode", "value": "no-cors"},
                           {"name": "user-agent", "value": "Mozilla/5.0 (X11; Linux x86_64)"}]
    else:
        request_headers = [{"name": "Accept", "value": "text/html,application/xhtml+xml,*/*"},
                           {"name": "Accept-Encoding", "value": "gzip, deflate, br"},
                           {"name": "Accept-Language", "value": "en-GB,en;q=0.9"},
                           {"name": "Connection", "value": "keep-alive"},
                           {"name": "Cookie", "value": "session=s3cret-cookie"},
                           {"name": "Host", "value": authority},
                           {"name": "Upgrade-Insecure-Requests", "value": "1"},
                           {"name": "User-Agent", "value": "Mozilla/5.0 (X11; Linux x86_64)"}]
    return {
        "_initiator": {"type": "other"},
        "_priority": "VeryHigh",
        "_resourceType": resource,
        "cache": {},
        "connection": "4711",
        "pageref": "page_1",
        "request": {"method": "GET", "url": url, "httpVersion": version,
                    "headers": request_headers, "queryString": [],
                    "cookies": [{"name": "session", "value": "s3cret-cookie", "path": "/",
                                 "domain": "127.0.0.1", "expires": None, "httpOnly": True,
                                 "secure": False}],
                    "headersSize": -1, "bodySize": 0},
        "response": {"status": status, "statusText": status_text, "httpVersion": version,
                     "headers": [{"name": n, "value": v} for n, v in response_headers],
                     "cookies": [], "content": body_content, "redirectURL": redirect,
                     "headersSize": -1, "bodySize": -1, "_transferSize": 512, "_error": None,
                     "_fetchedViaServiceWorker": False},
        "serverIPAddress": "127.0.0.1",
        "startedDateTime": "2026-12-03T15:00:00.123Z",
        "time": 12.5,
        "timings": {"blocked": 1.2, "dns": -1, "ssl": -1, "connect": -1, "send": 0.1,
                    "wait": 9.8, "receive": 1.4, "_blocked_queueing": 0.7,
                    "_workerStart": -1, "_workerReady": -1, "_workerFetchStart": -1,
                    "_workerRespondWithSettled": -1},
    }


def chromium_har(entries):
    return {"log": {"version": "1.2",
                    "creator": {"name": "WebInspector", "version": "537.36"},
                    "pages": [{"startedDateTime": "2026-12-03T15:00:00.100Z", "id": "page_1",
                               "title": "http://127.0.0.1/", "pageTimings":
                               {"onContentLoad": 40.1, "onLoad": 55.3}}],
                    "entries": entries}}


class HarBase(clitest.CliTestCase):

    def setUp(self):
        super().setUp()
        # Recordings are imported and replayed with the default, RFC 9111 settings.
        del self.env["CURLCACHE_HERMETIC"]

    def curl(self, *args):
        """The real curl without the shim (the origin's own answer)."""
        out = subprocess.run(["curl", "-s", "-S", *args], capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def offline(self, *command):
        """COMMAND under the shim, offline, on the test's cache."""
        env = dict(self.env, CURLCACHE_MODE="offline")
        return self.cc(*self.cache_args(), "run", "--", *command, env=env)

    def offline_curl(self, *args):
        out = self.offline("curl", "-s", "-S", *args)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def offline_pycurl(self, specs):
        python = python_with_pycurl()
        self.assertIsNotNone(python, "no python3 with pycurl (install python3-pycurl)")
        out = self.offline(python, "-c", PYCURL_CLIENT, *specs)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def write_har(self, har, name="in.har"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(har, f, indent=1)
        return path


class BrowserHar(HarBase):

    def record(self):
        """Fetches the origin's answers and writes them as Chromium would have recorded
        them; returns (HAR path, expectations). The origin is stopped afterwards."""
        origin = self.start_origin()
        b = origin.base
        entries, live = [], {}
        for path, mime in (("/text", "text/plain"), ("/bytes/3000", "application/octet-stream"),
                           ("/status/404", "text/plain"), ("/cookie", "text/plain")):
            raw = self.curl("-i", b + path)
            live[path] = raw
            status, pairs, body = split_response(raw)
            version, code, reason = status.split(" ", 2)
            entries.append(chromium_entry(b + path, "http/1.1", int(code), reason, pairs,
                                          content(body, mime)))
        # gzip on the wire: the HAR holds the decoded text, and says how it came.
        raw = self.curl("-i", "-H", "Accept-Encoding: gzip, deflate, br", b + "/gzip")
        _, pairs, wire = split_response(raw)
        decoded = gzip.decompress(wire)
        entries.append(chromium_entry(b + "/gzip", "http/1.1", 200, "OK", pairs, content(
            decoded, "text/plain", compression=len(decoded) - len(wire))))
        live["/gzip"] = decoded
        # A redirect chain: Chromium saves no body for the hops.
        for path in ("/redirect/2", "/redirect/1"):
            status, pairs, _ = split_response(self.curl("-i", b + path))
            location = dict(pairs)["Location"]
            entries.append(chromium_entry(b + path, "http/1.1", 302, "Found", pairs,
                                          {"size": 0, "mimeType": "x-unknown"},
                                          redirect=b + location))
        live["-L"] = self.curl("-i", "-L", b + "/redirect/2")
        # HTTPS over HTTP/2 and HTTP/3 (no server answers there: offline needs none).
        js = b"console.log('from an h2 recording');\n"
        h2 = "https://127.0.0.1:%d/app.js" % origin.port
        entries.append(chromium_entry(
            h2, "http/2.0", 200, "",
            [(":status", "200"), ("content-encoding", "br"), ("content-length", "31"),
             ("content-type", "application/javascript"), ("cache-control", "max-age=600"),
             ("vary", "Accept-Encoding"), ("date", "Thu, 03 Dec 2026 15:00:00 GMT")],
            content(js, "application/javascript", compression=-7), resource="script", h2=True))
        font = bytes(range(256)) * 20
        h3 = "https://127.0.0.1:%d/font.woff2" % origin.port
        entries.append(chromium_entry(
            h3, "h3", 200, "", [("content-type", "font/woff2"),
                                ("cache-control", "public, max-age=31536000")],
            content(font, "font/woff2"), resource="font", h2=True))
        # What a browser HAR also holds and a cache cannot use.
        entries.append(chromium_entry("data:image/png;base64,iVBORw0KGgo=", "", 200, "OK", [],
                                      content(b"\x89PNG\r\n\x1a\n", "image/png"),
                                      resource="image"))
        entries.append(chromium_entry(b + "/text?again", "http/1.1", 304, "Not Modified",
                                      [("ETag", '"text-v1"')],
                                      {"size": 0, "mimeType": "text/plain"}))
        origin.stop()
        self.origin = None
        expect = {"h2": (h2, js), "h3": (h3, font), "base": b, "live": live}
        return self.write_har(chromium_har(entries)), expect

    def test_chromium_har_replays_offline_for_curl_and_pycurl(self):
        path, expect = self.record()
        out = self.ok(*self.cache_args(), "import", "--har", path)
        self.assertEqual(out.stdout.decode(),
                         "9 entries and 2 redirect chains imported from %s (2 skipped: 0 "
                         "refused by the cache's policy, 1 without a saved response, "
                         "1 not HTTP)\n" % path)
        b, live = expect["base"], expect["live"]
        # HTTP/1.1 recordings: what curl prints is what the origin made it print.
        for path_ in ("/text", "/bytes/3000", "/status/404", "/cookie"):
            self.assertEqual(self.offline_curl("-i", b + path_), live[path_], path_)
        # A body the HAR holds decoded is served as a request without --compressed gets it.
        gz = self.offline_curl("-i", b + "/gzip")
        self.assertTrue(gz.endswith(b"\r\n\r\n" + live["/gzip"]), gz)
        self.assertNotIn(b"Content-Encoding", gz)
        self.assertIn(b"Content-Length: %d\r\n" % len(live["/gzip"]), gz)
        # The chain, with every hop's headers, byte for byte.
        self.assertEqual(self.offline_curl("-i", "-L", b + "/redirect/2"), live["-L"])
        self.assertEqual(self.offline_curl("-L", b + "/redirect/1"),
                         split_response(live["/text"])[2])
        # HTTP/2 and HTTP/3 recordings of https:// URLs: as libcurl shows HTTP/2.
        h2, js = expect["h2"]
        self.assertEqual(self.offline_curl("-i", h2),
                         b"HTTP/2 200 \r\ncontent-length: %d\r\ncontent-type: "
                         b"application/javascript\r\ncache-control: max-age=600\r\n"
                         b"vary: Accept-Encoding\r\ndate: Thu, 03 Dec 2026 15:00:00 GMT\r\n"
                         b"\r\n" % len(js) + js)
        h3, font = expect["h3"]
        self.assertEqual(self.offline_curl(h3), font)
        self.assertEqual(self.offline_curl("-o", "/dev/null", "-w", "%{http_version}", h3),
                         b"2")
        # pycurl (libcurl-gnutls) replays the same entries.
        got = self.offline_pycurl(["0 " + b + "/text", "0 " + b + "/bytes/3000",
                                   "1 " + b + "/redirect/2", "0 " + h2, "0 " + h3])
        bodies = [base64.b64decode(g["body"]) for g in got]
        text = split_response(live["/text"])[2]
        self.assertEqual(bodies, [text, split_response(live["/bytes/3000"])[2], text, js,
                                  font])
        self.assertEqual([g["status"] for g in got], [200] * 5)
        self.assertEqual(got[2]["effective"], b + "/text")

    def test_browser_cookies_and_credentials_are_not_stored(self):
        path, expect = self.record()
        with open(path) as f:
            har = json.load(f)
        # A response that varies on Cookie: the variant a libcurl program without cookies
        # asks for, and no cookie value at rest.
        url = expect["base"] + "/per-user"
        entry = chromium_entry(url, "http/1.1", 200, "OK",
                               [("Content-Type", "text/plain"), ("Vary", "Cookie"),
                                ("Cache-Control", "max-age=600")], content(b"hello\n", "text/plain"))
        entry["request"]["headers"].append({"name": "Authorization", "value": "Bearer s3cret-token"})
        har["log"]["entries"].append(entry)
        path = self.write_har(har)
        self.ok(*self.cache_args(), "import", "--har", path)
        self.assertEqual(self.offline_curl(url), b"hello\n")
        stored = b""
        for name in os.listdir(self.dir):
            if name.startswith("c.sqlite"):
                with open(os.path.join(self.dir, name), "rb") as f:
                    stored += f.read()
        self.assertIn(b"/per-user", stored)
        self.assertNotIn(b"s3cret", stored)
        exported = os.path.join(self.dir, "out.har")
        self.ok(*self.cache_args(), "export", "--har", exported)
        with open(exported, "rb") as f:
            self.assertNotIn(b"s3cret", f.read())


class ExportedHar(HarBase):

    def test_stripped_export_replays_and_shows_each_hop(self):
        origin = self.start_origin()
        b = origin.base
        urls = [("-i", b + "/text"), ("-i", b + "/bytes/5000"), ("-i", "-L", b + "/redirect/2")]
        live = [self.curl(*u) for u in urls]
        for u in urls:
            out = self.cc(*self.cache_args(), "run", "--", "curl", "-s", "-S", *u)
            self.assertEqual(out.returncode, 0, out.stderr)
        exported = os.path.join(self.dir, "export.har")
        self.ok(*self.cache_args(), "export", "--har", exported)
        with open(exported) as f:
            har = json.load(f)
        # The -L entry is three HAR entries: each hop with its redirectURL, then the end.
        chain = [e for e in har["log"]["entries"] if "redirect" in e["request"]["url"]
                 or e["response"]["redirectURL"]]
        self.assertEqual([(e["request"]["url"], e["response"]["status"],
                           e["response"]["redirectURL"]) for e in chain],
                         [(b + "/redirect/2", 302, b + "/redirect/1"),
                          (b + "/redirect/1", 302, b + "/text")])
        # A HAR from curlcache, stripped of its private fields, is a HAR from anyone.
        for entry in har["log"]["entries"]:
            for name in [k for k in entry if k.startswith("_curlcache")]:
                del entry[name]
        stripped = self.write_har(har, "stripped.har")
        origin.stop()
        self.origin = None
        out = self.ok(*self.cache_args(label="fresh"), "import", "--har", stripped)
        self.assertIn(b"5 entries and 2 redirect chains imported", out.stdout)
        env = dict(self.env, CURLCACHE_MODE="offline")
        for u, expected in zip(urls, live):
            out = self.cc(*self.cache_args(label="fresh"), "run", "--", "curl", "-s", "-S", *u,
                          env=env)
            self.assertEqual((out.returncode, out.stdout), (0, expected), out.stderr)
        # Unstripped, the export restores the chain under its own key and skips the hops.
        out = self.ok(*self.cache_args(label="again"), "import", "--har", exported)
        self.assertEqual(out.stdout.decode(), "3 entries imported from %s\n" % exported)


    def test_export_lists_the_key_headers_and_never_credentials(self):
        origin = self.start_origin()
        b = origin.base
        secret = ["-H", "Authorization: Bearer s3cret-token", "-b", "sid=s3cret-cookie"]
        for args in (["-H", "Accept-Language: de", *secret, b + "/text"],
                     ["-H", "Accept-Encoding: gzip", *secret, b + "/gzip"]):
            out = self.cc(*self.cache_args(), "run", "--", "curl", "-s", "-S", "-o",
                          os.devnull, *args)
            self.assertEqual(out.returncode, 0, out.stderr)
        exported = os.path.join(self.dir, "export.har")
        self.ok(*self.cache_args(), "export", "--har", exported)
        with open(exported, "rb") as f:
            raw = f.read()
        self.assertNotIn(b"s3cret", raw)
        headers = {e["request"]["url"]: e["request"]["headers"]
                   for e in json.loads(raw)["log"]["entries"]}
        self.assertEqual(headers[b + "/text"], [{"name": "accept-language", "value": "de"}])
        self.assertEqual(headers[b + "/gzip"], [{"name": "accept-encoding", "value": "gzip"}])


class Sources(HarBase):

    def test_a_pipe_and_a_redirected_stdin_are_read_twice(self):
        har = chromium_har([chromium_entry("http://example.test/p", "http/1.1", 200, "OK",
                                           [("Cache-Control", "max-age=60")],
                                           content(b"piped\n", "text/plain"))])
        path = self.write_har(har)
        with open(path, "rb") as f:
            data = f.read()
        # A pipe by name (the check pass would consume it), and stdin that is a file.
        out = self.ok(*self.cache_args(label="pipe"), "import", "--har", "/dev/stdin",
                      input=data)
        self.assertEqual(out.stdout, b"1 entry imported from /dev/stdin\n")
        with open(path, "rb") as f:
            f.seek(0)
            out = subprocess.run([clitest.PATHS.curlcache, *self.cache_args(label="file"),
                                  "import", "--har", "-"], stdin=f, env=self.env,
                                 capture_output=True, timeout=60)
        self.assertEqual((out.returncode, out.stdout), (0, b"1 entry imported from -\n"),
                         out.stderr)
        for label in ("pipe", "file"):
            self.assertEqual(self.ok(*self.cache_args(label=label), "show",
                                     "http://example.test/p", "--body").stdout, b"piped\n")


class Memory(HarBase):

    def peak_kib(self, *args):
        """Peak RSS (KiB) of `curlcache ARGS`, from the child's own rusage."""
        env = dict(self.env)
        # A sanitizer build keeps freed memory in quarantine: it would count as live.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                     "quarantine_size_mb=1"]))
        proc = subprocess.Popen([clitest.PATHS.curlcache, *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        stderr = proc.stderr.read()
        proc.stderr.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
        self.assertEqual(proc.returncode, 0, stderr)
        return usage.ru_maxrss

    def test_import_memory_is_bounded_by_the_largest_body_not_the_file(self):
        body = bytes(range(256)) * 256  # 64 KiB, base64 in the file
        entries = [chromium_entry("http://example.test/m/%d" % i, "http/1.1", 200, "OK",
                                  [("Content-Type", "application/octet-stream"),
                                   ("Cache-Control", "max-age=3600")],
                                  content(body + b"%d" % i, "application/octet-stream"))
                   for i in range(600)]
        big = self.write_har(chromium_har(entries), "big.har")
        small = self.write_har(chromium_har(entries[:1]), "small.har")
        size_kib = os.path.getsize(big) // 1024
        self.assertGreater(size_kib, 45000)
        baseline = self.peak_kib(*self.cache_args(label="small"), "import", "--har", small)
        peak = self.peak_kib(*self.cache_args(), "import", "--har", big)
        self.assertEqual(len(self.list_json()), 600)
        # The old reader held the file, its parsed tree and every body: over 3x its size.
        self.assertLess(peak - baseline, size_kib // 4,
                        "peak %d KiB, one-entry import %d KiB, file %d KiB"
                        % (peak, baseline, size_kib))


if __name__ == "__main__":
    clitest.main()
