#!/usr/bin/env python3
"""curl over HTTP/2 (TLS + ALPN, as real HTTPS servers answer) through the shim: nginx
serves static files on a loopback port; each invocation runs without the shim and twice
with it. A hit must replay HTTP/2 status lines ("HTTP/2 200"), lower-case header names,
%{http_version} 2 and multiplexed --parallel transfers byte for byte. nginx's Date header
changes every second, so the runs strip the "date:" line from the dumped headers before
comparing (nothing else is filtered).

    http2.py --shim PATH [--only NAME,...] [--keep] [--harness-only] [--self-check]

nginx gets its listening socket already bound and listening (the NGINX environment variable
it uses to inherit sockets), so the port accepts connections before nginx has started and
nothing needs to be awaited. Requests are counted from nginx's access log. Exit status 0
pass, 1 fail, 77 shim not built or nginx missing.
"""

import os
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

OLD = 1577836800  # 2020-01-01: the files' Last-Modified
WRITE_OUT = ("%{http_version} %{http_code} %{size_download} %{size_header} %{content_type} "
             "%{num_headers} %header{etag} %{num_redirects} %{url_effective}\\n")


class Nginx:
    """nginx with HTTP/2 over TLS on an inherited loopback socket; stopped by PID."""

    def __init__(self, scratch):
        self.dir = os.path.join(scratch, "nginx")
        self.proc = None
        self.port = None

    def __enter__(self):
        d = self.dir
        www = os.path.join(d, "www")
        os.makedirs(os.path.join(d, "tmp"))
        os.makedirs(www)
        files = {"a.txt": b"hello over HTTP/2\n" * 20, "b.bin": bytes(range(256)) * 400,
                 "c.txt": b"third file\n"}
        for name, data in files.items():
            with open(os.path.join(www, name), "wb") as f:
                f.write(data)
            os.utime(os.path.join(www, name), (OLD, OLD))
        self.cacert, key = harness.make_certificate(d)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        user = "user root;" if os.geteuid() == 0 else ""
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""%(user)s
worker_processes 1;
daemon off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 64; }
http {
  access_log %(d)s/access.log;
  client_body_temp_path %(d)s/tmp/body;
  proxy_temp_path %(d)s/tmp/proxy;
  fastcgi_temp_path %(d)s/tmp/fastcgi;
  uwsgi_temp_path %(d)s/tmp/uwsgi;
  scgi_temp_path %(d)s/tmp/scgi;
  types { text/plain txt; application/octet-stream bin; }
  gzip on;
  gzip_types text/plain;
  gzip_min_length 1;
  server {
    listen 127.0.0.1:%(port)d ssl http2;
    ssl_certificate %(cert)s;
    ssl_certificate_key %(key)s;
    root %(d)s/www;
    add_header Cache-Control "max-age=3600";
  }
}
""" % dict(user=user, d=d, port=self.port, cert=self.cacert, key=key))
        env = dict(os.environ, NGINX="%d;" % listener.fileno())
        self.proc = subprocess.Popen(["nginx", "-p", d, "-c", conf], env=env,
                                     pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        listener.close()
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    @property
    def base(self):
        return "https://127.0.0.1:%d" % self.port

    def count(self):
        try:
            with open(os.path.join(self.dir, "access.log"), "rb") as f:
                return f.read().count(b"\n")
        except FileNotFoundError:
            return 0


def cases(b):
    """(name, curl arguments, primed with, hit expected)"""
    get = ["-D", "hdr.txt", "-o", "body", "-w", WRITE_OUT]
    return [
        ("h2_get", get + [b + "/a.txt"], [], True),
        ("h2_head", ["-I", "-D", "hdr.txt", "-o", "head.txt", "-w", WRITE_OUT, b + "/a.txt"],
         [], True),
        ("h2_compressed", ["--compressed"] + get + [b + "/a.txt"], [], True),
        ("h2_binary", get + [b + "/b.bin"], [], True),
        ("h2_parallel_multiplexed", ["--parallel", "--no-progress-meter",
                                     "-o", "a", b + "/a.txt", "-o", "b", b + "/b.bin",
                                     "-o", "c", b + "/c.txt"], [], True),
        ("h2_etag_compare_on_cached", ["--etag-compare", "etag.txt", "-o", "e",
                                       "-w", "%{http_code} %{size_download}\\n",
                                       b + "/c.txt"],
         [b + "/c.txt"], True),
        ("h2_not_found_not_cached", get + [b + "/missing"], [], False),
    ]


def shell(curl_args, ca):
    """curl, then the Date lines out of the files that hold headers (-D's dump, and -I's
    output file): a run crossing a second boundary must not differ. curl's exit code is
    kept."""
    quoted = " ".join("'%s'" % a.replace("'", "'\\''") for a in curl_args)
    return ["sh", "-c", "curl -s --http2 --cacert '%s' %s; rc=$?; "
            "for f in hdr.txt head.txt; do [ -f $f ] && sed -i '/^date:/d' $f; done; "
            "exit $rc" % (ca, quoted)]


def main():
    args = harness.arguments(__doc__).parse_args()
    if shutil.which("nginx") is None:
        print("SKIP: nginx is not installed")
        return harness.SKIP
    shim = harness.shim_or_skip(args.shim, args.harness_only or args.self_check)
    report = harness.Report(shim, args.self_check)
    with harness.Scratch(keep=args.keep) as scratch, Nginx(scratch) as nginx:
        selected = harness.only(cases(nginx.base), args.only)
        if args.self_check:
            selected = selected[:2]
        for name, curl_args, prime_urls, hit in selected:
            base = os.path.join(scratch, name)
            env = harness.clean_env(os.path.join(base, "home"))
            argv = shell(curl_args, nginx.cacert)
            shim_argv = None
            if args.self_check:
                shim_argv = shell([a.replace("/a.txt", "/c.txt") for a in curl_args],
                                  nginx.cacert)
            prime = [shell(["-o", "/dev/null", u], nginx.cacert) for u in prime_urls]
            files = {"etag.txt": b'"5e0be100-b"\n'} if "etag.txt" in curl_args else None
            three = harness.Three(base, argv, env, shim, nginx, files, prime, shim_argv)
            cache = []
            if not prime and three.first_requests == 0:
                cache.append("first shim run made no request on a fresh cache")
            if hit and three.second_requests != 0:
                cache.append("second shim run made %d request(s), expected a hit"
                             % three.second_requests)
            if not hit and three.second_requests == 0:
                cache.append("second shim run made no request, but this response must not "
                             "be cached")
            report.case(name, "curl --http2 " + " ".join(curl_args), three.differences(),
                        cache, three.note(), base)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
