"""A loopback origin for the shim's mechanics tests: counts the requests it answers.

Binds 127.0.0.1 on a free port, prints the port on one line, then serves until killed.
GET /count answers how many other requests were served (and is not counted itself);
GET /slow/... waits a little before answering (keeps a real transfer running);
GET /set-cookie/... also sends "Set-Cookie: flavour=oat; Path=/";
GET /echo-cookie/... answers "cookie=<the request's Cookie header, or ->", never cacheable;
every other GET answers "<path> #<n>" with a cacheable 200.
"""
import http.server
import sys
import threading
import time

lock = threading.Lock()
served = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        global served
        if self.path == "/count":
            with lock:
                body = b"%d" % served
        else:
            with lock:
                served += 1
                n = served
            if self.path.startswith("/slow/"):
                time.sleep(0.2)
            body = b"%s #%d" % (self.path.encode(), n)
        echo = self.path.startswith("/echo-cookie/")
        if echo:
            body = b"cookie=%s" % self.headers.get("Cookie", "-").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store" if echo else "max-age=3600")
        if self.path.startswith("/set-cookie/"):
            self.send_header("Set-Cookie", "flavour=oat; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
