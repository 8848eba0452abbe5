#!/usr/bin/env python3
"""origin.py: a small, deterministic HTTP(S) origin server for curlcache's tests and demos.

Python 3 standard library only. It binds 127.0.0.1 on a free port (port 0) unless told
otherwise, and announces the port only once it is accepting connections, so a caller can
await it instead of sleeping:

    python3 scripts/origin.py [--port-file FILE] [--tls CERT KEY] [--port N] [--bind ADDR]
                              [--date HTTP-DATE] [--root DIR] [--verbose]

  stdout       the first line is the port number, flushed when the server is ready.
  --port-file  also writes "PORT\\n" to FILE atomically (temp file + rename): the file
               appears complete or not at all, so a caller may poll for it.
  --tls        serve HTTPS with this certificate and key (PEM). Make a test certificate with
               openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout key.pem \\
                 -out cert.pem -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1
  --root       serve the files below DIR at /files/PATH (for example a bare git repository
               prepared with `git update-server-info`, cloned over git's dumb HTTP).
  --date       the Date header of every response (default: the start time of this server,
               fixed for its lifetime, so two runs against one server get identical headers
               while a cache still sees a young response).

Stop it by PID (SIGTERM or SIGINT). Typical use from bash:

    mkfifo "$dir/ready"
    python3 scripts/origin.py > "$dir/ready" & pid=$!
    read -r port < "$dir/ready"          # returns when the server accepts connections
    curl -s "http://127.0.0.1:$port/text"; kill "$pid"; wait "$pid"

Every request counts, except the control endpoints /__count, /__reset and /__log.

Endpoints (GET and HEAD unless said otherwise; every body is deterministic):
  /bytes/N          N bytes of a fixed pseudo-random pattern, application/octet-stream,
                    ETag "bytes-N", Last-Modified, Cache-Control.
  /text             a short UTF-8 text with Content-Type, ETag, Last-Modified, Cache-Control.
  /chunked/N        the /bytes/N body sent with Transfer-Encoding: chunked (1000-byte chunks).
  /stream/N         the /bytes/N body (Content-Length, Cache-Control, no validators) made
                    while it is sent, never whole in memory: for bodies of gigabytes (up to
                    64 GiB; the memory benchmark of a 1 GiB hit uses it).
  /redirect/N       302 to /redirect/N-1 ... /redirect/1 302s to /text (N hops in all).
  /gzip             the /text body gzip-encoded (Content-Encoding: gzip) when the request's
                    Accept-Encoding allows gzip, plain otherwise; Vary: Accept-Encoding.
  /status/CODE      that status code with a short text body (none for 1xx/204/304).
  /disposition      Content-Disposition: attachment; filename="report.txt" (or ?name=X).
  /slow/MS          like /text, but the body follows the headers after MS milliseconds.
  /paced/N          the /bytes/N body (Content-Length, ETag "paced-N") sent in pieces of
                    ?piece=BYTES (default 65536) with ?ms=MS (default 1) between them, so a
                    client can be killed mid-body.
  /files/PATH       the file DIR/PATH of --root, with ETag and Last-Modified from its size
                    and mtime, Cache-Control; 404 for anything else (and outside DIR).
  /cookie           two Set-Cookie headers (a session cookie and one with a fixed Expires).
  POST /echo        the request body back, with the request's Content-Type (PUT too). Never cached
                    by the origin's headers (Cache-Control: no-store).
  /__count          the number of counted requests so far, as text ("3\\n").
  /__reset          sets the count to zero and clears the log (GET or POST).
  /__log            one line per counted request: "METHOD PATH", then "if-none-match",
                    "if-modified-since" and "range" when the request carried those headers.

Every resource with a validator honours If-None-Match and If-Modified-Since (304) and
single byte ranges (206 with Content-Range, 416 when unsatisfiable). Query parameters are
ignored for routing, except ?cc=VALUE which replaces the Cache-Control header value
(?cc=no-store, ?cc=max-age=0), and ?name= on /disposition.
"""

import argparse
import email.utils
import gzip
import os
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LAST_MODIFIED = "Wed, 01 Jan 2020 00:00:00 GMT"
CACHE_CONTROL = "public, max-age=86400"
TEXT_BODY = (
    "curlcache test origin\n"
    "This text is served by scripts/origin.py and never changes.\n"
    "The quick brown fox jumps over the lazy dog.\n"
).encode("utf-8")
# gzip with mtime=0: the same compressed bytes on every run.
GZIP_BODY = gzip.compress(TEXT_BODY * 8, compresslevel=6, mtime=0)
MAX_BYTES = 1 << 30


def _pattern_block():
    """64 KiB of fixed pseudo-random bytes (a 32-bit LCG), repeated for /bytes/N."""
    out = bytearray(65536)
    x = 0x12345678
    for i in range(len(out)):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


PATTERN = _pattern_block()


def pattern_bytes(n):
    reps, rest = divmod(n, len(PATTERN))
    return PATTERN * reps + PATTERN[:rest]


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.log = []

    def add(self, line):
        with self.lock:
            self.count += 1
            self.log.append(line)

    def reset(self):
        with self.lock:
            self.count = 0
            self.log = []

    def snapshot(self):
        with self.lock:
            return self.count, list(self.log)


class LazyPattern:
    """N bytes of the pattern, produced piece by piece while they are sent."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def pieces(self):
        left = self.n
        while left > 0:
            piece = PATTERN[:left] if left < len(PATTERN) else PATTERN
            left -= len(piece)
            yield piece


class Resource:
    """What a route answers: status, headers (in order) and body."""

    def __init__(self, status, headers=None, body=b"", validators=False, chunk=0):
        self.status = status
        self.headers = list(headers or [])
        self.body = body
        self.validators = validators  # honour conditionals and ranges
        self.chunk = chunk  # > 0: Transfer-Encoding: chunked, in pieces of this size
        self.pace = None  # (piece bytes, ms between pieces): the body written in pieces

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
    # and the client's delayed ACK stall every response after the first on a kept-alive
    # connection by 40 ms.
    disable_nagle_algorithm = True
    server_version = "origin.py"
    sys_version = ""

    # Fixed Server and Date headers: outputs with and without a cache compare exactly.
    def version_string(self):
        return "origin.py"

    def date_time_string(self, timestamp=None):
        return self.server.fixed_date

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("origin: " + (fmt % args) + "\n")

    def setup(self):
        # The TLS handshake runs in the handler's thread, never in the accept loop.
        if self.server.tls_context is not None:
            self.request = self.server.tls_context.wrap_socket(self.request, server_side=True)
        super().setup()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, socket.timeout):
            self.close_connection = True

    # ----------------------------------------------------------------------------------
    def do_GET(self):
        self._serve(send_body=True)

    def do_HEAD(self):
        self._serve(send_body=False)

    def do_POST(self):
        self._serve(send_body=True)

    def do_PUT(self):
        self._serve(send_body=True)

    def do_DELETE(self):
        self._serve(send_body=True)

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def _serve(self, send_body):
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        request_body = self._read_body()
        counter = self.server.counter
        if path == "/__count":
            return self._send(Resource(200, [("Content-Type", "text/plain")],
                                       b"%d\n" % counter.snapshot()[0]), send_body)
        if path == "/__reset":
            counter.reset()
            return self._send(Resource(200, [("Content-Type", "text/plain")], b"0\n"),
                              send_body)
        if path == "/__log":
            lines = "".join(line + "\n" for line in counter.snapshot()[1])
            return self._send(Resource(200, [("Content-Type", "text/plain")],
                                       lines.encode()), send_body)
        marks = [m for m, h in (("if-none-match", "If-None-Match"),
                                ("if-modified-since", "If-Modified-Since"), ("range", "Range"))
                 if self.headers.get(h) is not None]
        counter.add(" ".join(["%s %s" % (self.command, self.path)] + marks))

        res = self._route(path, query, request_body)
        if "cc" in query:
            res.headers = [(k, v) for k, v in res.headers if k.lower() != "cache-control"]
            res.headers.append(("Cache-Control", query["cc"][0]))
        delay_ms = 0
        if path.startswith("/slow/"):
            delay_ms = _int_or(path[len("/slow/"):], 0)
        if path.startswith("/paced/"):
            res.pace = (max(1, _int_or(query.get("piece", ["65536"])[0], 65536)),
                        max(0, _int_or(query.get("ms", ["1"])[0], 1)))
        if res.validators:
            res = self._conditional(res)
        self._send(res, send_body, delay_ms)

    def _route(self, path, query, request_body):
        if path == "/text" or path.startswith("/slow/"):
            return _text_resource()
        for prefix, options in (("bytes", {"validators": True}), ("paced", {}),
                                ("chunked", {"chunk": 1000})):
            if path.startswith("/%s/" % prefix):
                return _pattern_resource(prefix, path[len(prefix) + 2:], **options)
        if path.startswith("/stream/"):
            n = _int_or(path[len("/stream/"):], -1)
            if n < 0 or n > 64 << 30:
                return _status_resource(400)
            return Resource(200, [("Content-Type", "application/octet-stream"),
                                  ("Cache-Control", CACHE_CONTROL)], LazyPattern(n))
        if path.startswith("/redirect/"):
            n = _int_or(path[len("/redirect/"):], -1)
            if n < 1:
                return _status_resource(400)
            target = "/text" if n == 1 else "/redirect/%d" % (n - 1)
            body = b"redirecting\n"
            return Resource(302, [("Location", target), ("Content-Type", "text/plain"),
                                  ("Cache-Control", CACHE_CONTROL)], body)
        if path == "/gzip":
            accept = self.headers.get("Accept-Encoding", "")
            headers = [("Content-Type", "text/plain; charset=utf-8"),
                       ("Vary", "Accept-Encoding"),
                       ("Last-Modified", LAST_MODIFIED),
                       ("Cache-Control", CACHE_CONTROL)]
            if _accepts_gzip(accept):
                return Resource(200, headers + [("Content-Encoding", "gzip"),
                                                ("ETag", '"gzip-z"')], GZIP_BODY,
                                validators=True)
            return Resource(200, headers + [("ETag", '"gzip-i"')], TEXT_BODY * 8,
                            validators=True)
        if path.startswith("/files/") and self.server.root:
            return _file_resource(self.server.root, path[len("/files/"):])
        if path.startswith("/status/"):
            code = _int_or(path[len("/status/"):], 0)
            if code < 100 or code > 599:
                return _status_resource(400)
            return _status_resource(code)
        if path == "/disposition":
            name = query.get("name", ["report.txt"])[0]
            return Resource(200, [("Content-Type", "text/plain; charset=utf-8"),
                                  ("Content-Disposition",
                                   'attachment; filename="%s"' % name),
                                  ("ETag", '"disposition-v1"'),
                                  ("Last-Modified", LAST_MODIFIED),
                                  ("Cache-Control", CACHE_CONTROL)],
                            b"attachment body\n" + TEXT_BODY, validators=True)
        if path == "/cookie":
            return Resource(200, [("Content-Type", "text/plain"),
                                  ("Set-Cookie", "session=abc123; Path=/"),
                                  ("Set-Cookie",
                                   "theme=dark; Path=/; Expires=Wed, 01 Jan 2031 00:00:00 GMT"),
                                  ("Cache-Control", CACHE_CONTROL)], b"cookies set\n")
        if path == "/echo":
            if self.command not in ("POST", "PUT"):
                return Resource(405, [("Allow", "POST, PUT"), ("Content-Type", "text/plain")],
                                b"POST or PUT only\n")
            ctype = self.headers.get("Content-Type", "application/octet-stream")
            return Resource(200, [("Content-Type", ctype), ("Cache-Control", "no-store")],
                            request_body)
        return _status_resource(404)

    def _conditional(self, res):
        etag = res.header("ETag")
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        not_modified = False
        if inm is not None:
            tags = [t.strip() for t in inm.split(",")]
            not_modified = etag is not None and ("*" in tags or etag in tags
                                                 or "W/" + etag in tags)
        elif ims is not None and res.header("Last-Modified"):
            try:
                since = email.utils.parsedate_to_datetime(ims).timestamp()
                modified = email.utils.parsedate_to_datetime(res.header("Last-Modified"))
                not_modified = modified.timestamp() <= since
            except (TypeError, ValueError):
                not_modified = False
        if not_modified:
            keep = {"etag", "last-modified", "cache-control", "vary", "content-location"}
            return Resource(304, [(k, v) for k, v in res.headers if k.lower() in keep])
        rng = self.headers.get("Range")
        if rng and res.status == 200 and not isinstance(res.body, LazyPattern):
            return _range(res, rng)
        return res

    def _send(self, res, send_body, delay_ms=0):
        self.send_response(res.status)
        for k, v in res.headers:
            self.send_header(k, v)
        bodyless = res.status in (204, 304) or res.status < 200
        chunked = res.chunk > 0 and not bodyless
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif not bodyless:
            self.send_header("Content-Length", str(len(res.body)))
        self.end_headers()
        if delay_ms > 0:
            self.wfile.flush()
            time.sleep(delay_ms / 1000.0)
        if not send_body or bodyless:
            return
        if chunked:
            for i in range(0, len(res.body), res.chunk):
                piece = res.body[i:i + res.chunk]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif isinstance(res.body, LazyPattern):
            for piece in res.body.pieces():
                self.wfile.write(piece)
        elif res.body and res.pace:
            piece, ms = res.pace
            for i in range(0, len(res.body), piece):
                if i:
                    self.wfile.flush()
                    time.sleep(ms / 1000.0)
                self.wfile.write(res.body[i:i + piece])
        elif res.body:
            self.wfile.write(res.body)


def _int_or(text, default):
    try:
        return int(text)
    except ValueError:
        return default


def _accepts_gzip(accept):
    for part in accept.split(","):
        fields = part.strip().split(";")
        coding = fields[0].strip().lower()
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for f in fields[1:]:
            f = f.strip()
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


def _pattern_resource(prefix, count, **options):
    """N bytes of the fixed pattern for /bytes/N, /paced/N and /chunked/N."""
    n = _int_or(count, -1)
    if n < 0 or n > MAX_BYTES:
        return _status_resource(400)
    return Resource(200, [("Content-Type", "application/octet-stream"),
                          ("ETag", '"%s-%d"' % (prefix, n)),
                          ("Last-Modified", LAST_MODIFIED),
                          ("Cache-Control", CACHE_CONTROL)],
                    pattern_bytes(n), **options)


def _text_resource():
    return Resource(200, [("Content-Type", "text/plain; charset=utf-8"),
                          ("ETag", '"text-v1"'),
                          ("Last-Modified", LAST_MODIFIED),
                          ("Cache-Control", CACHE_CONTROL)],
                    TEXT_BODY, validators=True)


def _file_resource(root, relative):
    path = os.path.realpath(os.path.join(root, relative))
    if not path.startswith(root + os.sep) or not os.path.isfile(path):
        return _status_resource(404)
    st = os.stat(path)
    with open(path, "rb") as f:
        body = f.read()
    ctype = "text/plain" if path.endswith(("/refs", "/HEAD", "/packs")) else \
        "application/octet-stream"
    return Resource(200, [("Content-Type", ctype),
                          ("ETag", '"%x-%x"' % (st.st_size, int(st.st_mtime))),
                          ("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True)),
                          ("Cache-Control", CACHE_CONTROL)],
                    body, validators=True)


def _status_resource(code):
    body = b"" if code in (204, 304) or code < 200 else b"status %d\n" % code
    return Resource(code, [("Content-Type", "text/plain")], body)


def _range(res, header):
    """A single byte range (RFC 9110 14.1.2); anything else returns the whole resource."""
    size = len(res.body)
    if not header.startswith("bytes=") or "," in header:
        return res
    first, _, last = header[len("bytes="):].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            start, end = max(0, size - n), size - 1
            if n == 0:
                raise ValueError
        else:
            start = int(first)
            end = int(last) if last else size - 1
            end = min(end, size - 1)
    except ValueError:
        return res
    if start >= size or start > end:
        return Resource(416, [("Content-Range", "bytes */%d" % size),
                              ("Content-Type", "text/plain")], b"")
    headers = [(k, v) for k, v in res.headers if k.lower() != "content-length"]
    headers.append(("Content-Range", "bytes %d-%d/%d" % (start, end, size)))
    return Resource(206, headers, res.body[start:end + 1])


class OriginServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port (default)")
    parser.add_argument("--port-file", help="write the port here once ready")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve HTTPS")
    parser.add_argument("--date", help="fixed Date header value (HTTP-date)")
    parser.add_argument("--root", help="serve this directory's files at /files/")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args()

    server = OriginServer((args.bind, args.port), Handler)
    server.counter = Counter()
    server.verbose = args.verbose
    server.fixed_date = args.date or email.utils.formatdate(time.time(), usegmt=True)
    server.tls_context = None
    server.root = os.path.realpath(args.root) if args.root else None
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        server.tls_context = ctx

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        port = server.server_address[1]
        if args.port_file:
            tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
            with open(tmp, "w") as f:
                f.write("%d\n" % port)
            os.replace(tmp, args.port_file)
        sys.stdout.write("%d\n" % port)
        sys.stdout.flush()
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
