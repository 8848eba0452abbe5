#!/usr/bin/env python3
"""A tiny HTTP origin for the engine tests: counts the requests it answers.

Started by a test on a free loopback port (port 0); prints the port on its first line of
stdout and serves until it is killed. Routes (NAME is any token, used to make URLs unique):

  /__count                  the number of requests answered so far (not counted itself)
  /text/NAME                200 text with ETag "NAME-v1", Last-Modified, two X-Multi
                            headers; 304 for a matching If-None-Match / If-Modified-Since
  /size/N/NAME              200 with an N-byte body (byte i = 'a' + i % 26)
  /redirect/N/NAME          302 to /redirect/N-1/NAME ... /redirect/0/NAME -> /text/NAME
  /status/CODE/NAME         that status with a short text body
  /echo/NAME                200, body = the request's method, X-Var header and body
  /gzip/NAME                200, gzip-encoded "hello NAME" x 50 (Content-Encoding: gzip)
  /auth/NAME                200, body = the Authorization header it got
  /cookie/NAME              200 with Set-Cookie: NAME=1; Path=/
  /trailer/NAME             200, chunked "hello NAME\n" with a trailer X-Checksum: NAME
  /chunked/N/NAME           200, the /size/N body sent chunked (no Content-Length), 4 KiB
                            per chunk
"""
import gzip
import email.utils
import http.server
import sys
import threading

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
LAST_MODIFIED_TS = email.utils.parsedate_to_datetime(LAST_MODIFIED).timestamp()


class Counter:
    lock = threading.Lock()
    value = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "origin/1"
    sys_version = ""

    def log_message(self, *args):
        pass

    def send(self, code, body=b"", headers=(), content_type="text/plain"):
        self.send_response(code)
        if content_type and code != 304:
            self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        if code != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and code != 304:
            self.wfile.write(body)

    def handle_any(self):
        path = self.path.split("?", 1)[0]
        if path == "/__count":
            with Counter.lock:
                value = Counter.value
            self.send(200, str(value).encode())
            return
        with Counter.lock:
            Counter.value += 1
        length = int(self.headers.get("Content-Length") or 0)
        request_body = self.rfile.read(length) if length else b""
        parts = path.strip("/").split("/")
        kind = parts[0]
        if kind == "text" and len(parts) == 2:
            name = parts[1]
            etag = '"%s-v1"' % name
            headers = [("ETag", etag), ("Last-Modified", LAST_MODIFIED),
                       ("Cache-Control", "max-age=60"), ("X-Multi", "a"), ("X-Multi", "b")]
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            not_modified = False
            if inm is not None:
                not_modified = etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
            elif ims is not None:
                try:
                    since = email.utils.parsedate_to_datetime(ims).timestamp()
                    not_modified = LAST_MODIFIED_TS <= since
                except (TypeError, ValueError):
                    pass
            if not_modified:
                self.send(304, headers=headers)
            else:
                self.send(200, ("hello %s\n" % name).encode(), headers)
        elif kind == "size" and len(parts) == 3:
            n = int(parts[1])
            body = bytes(ord("a") + i % 26 for i in range(n))
            self.send(200, body, [("ETag", '"size-%d"' % n)], "application/octet-stream")
        elif kind == "redirect" and len(parts) == 3:
            n = int(parts[1])
            target = "/redirect/%d/%s" % (n - 1, parts[2]) if n > 0 else "/text/" + parts[2]
            self.send(302, b"moved\n", [("Location", target)])
        elif kind == "status" and len(parts) == 3:
            code = int(parts[1])
            self.send(code, ("status %d\n" % code).encode())
        elif kind == "echo" and len(parts) == 2:
            body = "%s %s %s" % (self.command, self.headers.get("X-Var", "-"),
                                 request_body.decode("latin-1"))
            self.send(200, body.encode())
        elif kind == "gzip" and len(parts) == 2:
            body = gzip.compress(("hello %s\n" % parts[1]).encode() * 50, mtime=0)
            self.send(200, body, [("Content-Encoding", "gzip")])
        elif kind == "trailer" and len(parts) == 2:
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Checksum")
            self.end_headers()
            body = ("hello %s\n" % parts[1]).encode()
            self.wfile.write(b"%x\r\n%s\r\n0\r\nX-Checksum: %s\r\n\r\n"
                             % (len(body), body, parts[1].encode()))
        elif kind == "chunked" and len(parts) == 3:
            n = int(parts[1])
            body = bytes(ord("a") + i % 26 for i in range(n))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command != "HEAD":
                for at in range(0, n, 4096):
                    piece = body[at:at + 4096]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
        elif kind == "cookie" and len(parts) == 2:
            self.send(200, b"hello cookie\n", [("Set-Cookie", "%s=1; Path=/" % parts[1])])
        elif kind == "auth" and len(parts) == 2:
            self.send(200, self.headers.get("Authorization", "-").encode())
        else:
            self.send(404, b"no such route\n")

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that aborts (a refusing write callback) resets its connection


def main():
    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
