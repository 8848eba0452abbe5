#!/usr/bin/env python3
"""scripted_origin.py: an HTTP/1.1 origin whose answers a test scripts per path, and which
logs every request it receives (python3 standard library only).

    python3 tests/shim/scripted_origin.py [--date HTTP-DATE]

It binds 127.0.0.1 on a free port and prints that port as the first line of stdout once it
accepts connections (await the line; never sleep). Stop it by PID (SIGTERM).

Control endpoints (never logged):
  POST /__script  a JSON object scripting the answer to one path (replacing any earlier
                  script for that path and method):
      path         the request target to answer ("/a/b"); a target with a query matches
                   its exact script first, then the script of its path alone
      method       answer only this method (default: any method)
      status       the status code (default 200); reason: the reason phrase
      headers      [[name, value], ...] sent in this order, after the Date line
      date         the Date value; absent: the server's fixed date (its start time, or
                   --date); null: no Date line at all
      body         the body text (UTF-8); Content-Length is added (none for 1xx/204/304)
      echo         [name, ...]: for each, "name: <value of that request header>\\n" (or
                   "name: (absent)\\n") is appended to the body (Vary tests)
      conditional  true: answer 304 when the request's If-None-Match lists the ETag of
                   `headers` (weak comparison), or else when its If-Modified-Since is not
                   older than their Last-Modified
      not_modified {"headers": [[name, value], ...], "date": ...}: what that 304 carries
                   (default: the ETag, Last-Modified, Cache-Control, Expires, Vary and
                   Content-Location lines of `headers`, and the same Date rule)
      interim      [[code, [[name, value], ...]], ...]: 1xx responses sent before the
                   final one (103 Early Hints)
      delay_ms     wait this long before answering
  GET /__log      JSON: one object per request received, in order: method, target,
                  headers ([[name, value], ...] as received) and the status answered
                  (logged before the answer is written, so it is complete once the
                  client has its response)
  POST /__reset   forgets every script and the log

An unscripted path answers 404 with Cache-Control: no-store.

The client side (used by tests/shim/http_semantics.py): ScriptedOrigin, a context manager
that starts the server, scripts it, reads its log, and can stop it and keep its port
refusing connections (an origin outage).
"""

import argparse
import email.utils
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import harness  # tests/shim/harness.py, next to this file

VALIDATOR_HEADERS = ("etag", "last-modified", "cache-control", "expires", "vary",
                     "content-location")


def http_date(unix_seconds):
    """An IMF-fixdate for a unix time ("Thu, 03 Dec 2026 09:00:00 GMT")."""
    return email.utils.formatdate(unix_seconds, usegmt=True)


def _header(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def _etag_listed(etag, if_none_match):
    """Weak comparison (RFC 9110 13.1.2): W/"x" matches "x"."""
    def opaque(tag):
        tag = tag.strip()
        return tag[2:] if tag.startswith("W/") else tag
    tags = [t for t in if_none_match.split(",") if t.strip()]
    return any(t.strip() == "*" or opaque(t) == opaque(etag) for t in tags)


def _not_older(last_modified, if_modified_since):
    try:
        lm = email.utils.parsedate_to_datetime(last_modified).timestamp()
        ims = email.utils.parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError):
        return False
    return lm <= ims


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stalls on kept connections

    def log_message(self, fmt, *args):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, socket.timeout):
            self.close_connection = True

    def do_GET(self):
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

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

    def _serve(self):
        server = self.server
        request_body = self._read_body()
        path = urlsplit(self.path).path
        if path == "/__script" and self.command == "POST":
            spec = json.loads(request_body)
            with server.lock:
                server.scripts[(spec.get("method"), spec["path"])] = spec
            return self._answer(200, [("Content-Type", "text/plain")], b"ok\n")
        if path == "/__log":
            with server.lock:
                data = json.dumps(server.log).encode()
            return self._answer(200, [("Content-Type", "application/json")], data)
        if path == "/__reset" and self.command == "POST":
            with server.lock:
                server.scripts.clear()
                server.log.clear()
            return self._answer(200, [("Content-Type", "text/plain")], b"ok\n")

        with server.lock:
            spec = None
            for key in ((self.command, self.path), (None, self.path), (self.command, path),
                        (None, path)):
                spec = server.scripts.get(key)
                if spec is not None:
                    break
        if spec is None:
            spec = {"status": 404, "headers": [["Content-Type", "text/plain"],
                                               ["Cache-Control", "no-store"]],
                    "body": "not scripted\n"}
        status, headers, body, date = self._decide(spec)
        with server.lock:
            server.log.append({"method": self.command, "target": self.path,
                               "headers": [[k, v] for k, v in self.headers.items()],
                               "status": status})
        if spec.get("delay_ms"):
            time.sleep(spec["delay_ms"] / 1000.0)
        for code, lines in spec.get("interim", []):
            head = "HTTP/1.1 %d %s\r\n" % (code, self.responses.get(code, ("Info",))[0])
            head += "".join("%s: %s\r\n" % (k, v) for k, v in lines) + "\r\n"
            self.wfile.write(head.encode("latin-1"))
            self.wfile.flush()
        if date is not None:
            headers = [("Date", date)] + headers
        self._answer(status, headers, body, spec.get("reason"))

    def _decide(self, spec):
        """(status, headers, body, date) for one request under `spec`."""
        headers = [tuple(h) for h in spec.get("headers", [])]
        date = spec.get("date", self.server.fixed_date)
        if spec.get("conditional"):
            etag = _header(headers, "ETag")
            last_modified = _header(headers, "Last-Modified")
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            if inm is not None:
                hit = etag is not None and _etag_listed(etag, inm)
            else:
                hit = ims is not None and last_modified is not None and \
                    _not_older(last_modified, ims)
            if hit:
                nm = spec.get("not_modified")
                if nm is None:
                    return 304, [h for h in headers if h[0].lower() in VALIDATOR_HEADERS], \
                        b"", date
                return 304, [tuple(h) for h in nm.get("headers", [])], b"", \
                    nm.get("date", self.server.fixed_date)
        body = spec.get("body", "").encode("utf-8")
        for name in spec.get("echo", []):
            value = self.headers.get(name)
            body += ("%s: %s\n" % (name.lower(), "(absent)" if value is None else value)
                     ).encode("utf-8")
        return spec.get("status", 200), headers, body, date

    def _answer(self, status, headers, body, reason=None):
        self.send_response_only(status, reason)
        for k, v in headers:
            self.send_header(k, v)
        if not (status < 200 or status in (204, 304)):
            self.send_header("Content-Length", str(len(body)))
        else:
            body = b""
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--date", help="the default Date value (default: the start time)")
    args = parser.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    server.lock = threading.Lock()
    server.scripts = {}
    server.log = []
    server.fixed_date = args.date or http_date(time.time())

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        sys.stdout.write("%d\n" % server.server_address[1])
        sys.stdout.flush()
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# ---------------------------------------------------------------------------------------
# Client side

_HELD = []  # sockets holding stopped origins' ports for the life of the test process


class ScriptedOrigin(harness.Origin):
    """This server as a context manager: started on a free port (awaiting its port line),
    scripted and read over its control endpoints, stopped by PID (harness.Origin's exit)."""

    def __init__(self):
        super().__init__(scratch=None)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, __file__], stdout=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("scripted_origin.py did not announce a port: %r" % line)
        self.port = int(line)
        return self

    def stop(self):
        self.__exit__(None, None, None)

    def stop_and_refuse(self):
        """Stops the server and binds its port without listening, so that from now on a
        connection to it is refused and no other server can take the port."""
        self.stop()
        s = socket.socket()
        # The stopped server's connections may linger in TIME_WAIT on this port.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        _HELD.append(s)

    def _control(self, path, data=None):
        req = urllib.request.Request(self.base + path, data=data,
                                     method="POST" if data is not None else "GET")
        with self._opener.open(req, timeout=10) as r:
            return r.read()

    def script(self, path, **spec):
        """Scripts the answer to `path` (see the module's documentation for `spec`)."""
        spec["path"] = path
        self._control("/__script", json.dumps(spec).encode())

    def log(self):
        return json.loads(self._control("/__log"))

    def reset(self):
        self._control("/__reset", b"")


if __name__ == "__main__":
    main()
