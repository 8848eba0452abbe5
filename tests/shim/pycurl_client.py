"""A pycurl program as a user would write it (run by pycurl_hit.py, with and without the
shim). pycurl links the GnuTLS libcurl and Python loads it RTLD_LOCAL: the shim must still
see its calls. Prints to stdout, for every URL, the header lines from HEADERFUNCTION, a
digest of the body from WRITEFUNCTION and the getinfo values a program reads after the
transfer (pycurl refuses getinfo inside a callback). Timing values are not printed, only
checked for plausibility.

    pycurl_client.py [--cainfo FILE] [--multi | --threads N] SPEC...

SPEC is a URL, optionally prefixed by flags joined with '+' and a ':' ("follow+gzip:URL"):
follow (FOLLOWLOCATION), gzip (ACCEPT_ENCODING "gzip"), head (NOBODY), fail (FAILONERROR),
inm (HTTPHEADER "If-None-Match: \"text-v1\"", origin.py's ETag of /text: a 304),
cookies (the cookie engine on: COOKIEFILE "", INFO_COOKIELIST printed).
Serially, one handle is reused for every URL with every option set again before each
transfer; with --multi every URL gets its own handle on one CurlMulti driven by
perform + select; with --threads N, N threads share the URLs, each with its own handle
(pycurl releases the GIL in perform: the transfers really run at once).
"""

import argparse
import hashlib
import sys
import threading

import pycurl

INFOS = [
    ("RESPONSE_CODE", pycurl.RESPONSE_CODE),
    ("CONTENT_TYPE", pycurl.CONTENT_TYPE),
    ("EFFECTIVE_URL", pycurl.EFFECTIVE_URL),
    ("SIZE_DOWNLOAD", pycurl.SIZE_DOWNLOAD),
    ("HEADER_SIZE", pycurl.HEADER_SIZE),
    ("REDIRECT_COUNT", pycurl.REDIRECT_COUNT),
    ("REDIRECT_URL", pycurl.REDIRECT_URL),
    ("CONTENT_LENGTH_DOWNLOAD", pycurl.CONTENT_LENGTH_DOWNLOAD),
    ("INFO_FILETIME", pycurl.INFO_FILETIME),
    ("CONDITION_UNMET", pycurl.CONDITION_UNMET),
    ("HTTP_CODE", pycurl.HTTP_CODE),
    ("OS_ERRNO", pycurl.OS_ERRNO),
    ("SSL_VERIFYRESULT", pycurl.SSL_VERIFYRESULT),
]
for name in ("INFO_HTTP_VERSION", "INFO_SCHEME", "INFO_PROTOCOL"):
    if hasattr(pycurl, name):
        INFOS.append((name, getattr(pycurl, name)))

TIMINGS = ["NAMELOOKUP_TIME", "CONNECT_TIME", "PRETRANSFER_TIME", "STARTTRANSFER_TIME",
           "TOTAL_TIME", "REDIRECT_TIME"]


class Transfer:
    def __init__(self, handle, spec, cainfo):
        flags, url = ("", spec) if spec.startswith("http") else spec.split(":", 1)
        flags = set(f for f in flags.split("+") if f)
        self.handle = handle
        self.url = url
        self.spec = spec
        self.headers = []
        self.body = hashlib.sha256()
        self.body_len = 0
        self.write_calls = 0
        self.largest_write = 0
        self.body_head = b""
        c = handle
        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.HEADERFUNCTION, self.on_header)
        c.setopt(pycurl.WRITEFUNCTION, self.on_write)
        c.setopt(pycurl.FOLLOWLOCATION, 1 if "follow" in flags else 0)
        c.setopt(pycurl.NOBODY, 1 if "head" in flags else 0)
        if "head" not in flags:
            c.setopt(pycurl.HTTPGET, 1)
        c.setopt(pycurl.FAILONERROR, 1 if "fail" in flags else 0)
        c.setopt(pycurl.OPT_FILETIME, 1)
        c.setopt(pycurl.ENCODING, "gzip" if "gzip" in flags else None)
        c.setopt(pycurl.NOPROXY, "*")
        c.setopt(pycurl.HTTPHEADER, ['If-None-Match: "text-v1"'] if "inm" in flags else [])
        if cainfo:
            c.setopt(pycurl.CAINFO, cainfo)
        self.cookies = "cookies" in flags
        if self.cookies:
            c.setopt(pycurl.COOKIEFILE, "")

    def on_header(self, line):
        self.headers.append(line)

    def on_write(self, data):
        self.write_calls += 1
        self.largest_write = max(self.largest_write, len(data))
        self.body.update(data)
        if len(self.body_head) < 48:
            self.body_head += data[:48 - len(self.body_head)]
        self.body_len += len(data)

    def report(self, error):
        c = self.handle
        out = ["== %s" % self.spec, "error: %s" % (error,)]
        out += ["header: %r" % h for h in self.headers]
        # How a body arriving from the network is cut into write calls depends on timing
        # (how much each read finds waiting), in runs with and without the shim alike: what
        # libcurl promises, and what is compared, is no call at all for an empty body and
        # none larger than CURL_MAX_WRITE_SIZE.
        calls = "none" if self.write_calls == 0 else (
            "each <= 16384 bytes" if self.largest_write <= 16384 else
            "one of %d bytes" % self.largest_write)
        out.append("body: %d bytes, write calls: %s, sha256 %s head %r"
                   % (self.body_len, calls, self.body.hexdigest(), self.body_head))
        for name, info in INFOS:
            try:
                value = c.getinfo(info)
            except pycurl.error as e:
                value = "error %s" % (e.args[0],)
            out.append("%s: %r" % (name, value))
        if self.cookies:
            out.append("INFO_COOKIELIST: %r" % (c.getinfo(pycurl.INFO_COOKIELIST),))
        problems = []
        times = [c.getinfo(getattr(pycurl, t)) for t in TIMINGS]
        if any(t < 0 for t in times):
            problems.append("negative timing %r" % (times,))
        if error is None and c.getinfo(pycurl.PRIMARY_IP) != "127.0.0.1":
            problems.append("PRIMARY_IP %r" % c.getinfo(pycurl.PRIMARY_IP))
        if error is None and c.getinfo(pycurl.PRIMARY_PORT) <= 0:
            problems.append("PRIMARY_PORT %r" % c.getinfo(pycurl.PRIMARY_PORT))
        out.append("plausible: %s" % ("; ".join(problems) or "yes"))
        return "\n".join(out)


def serial(specs, cainfo):
    c = pycurl.Curl()
    for spec in specs:
        t = Transfer(c, spec, cainfo)
        error = None
        try:
            c.perform()
        except pycurl.error as e:
            error = e.args[0]
        print(t.report(error))
    c.close()


def multi(specs, cainfo):
    m = pycurl.CurlMulti()
    transfers = {}
    for spec in specs:
        c = pycurl.Curl()
        transfers[c] = Transfer(c, spec, cainfo)
        m.add_handle(c)
    errors = {}
    running = len(transfers)
    while running:
        while True:
            ret, running = m.perform()
            if ret != pycurl.E_CALL_MULTI_PERFORM:
                break
        while True:
            queued, ok, failed = m.info_read()
            for c in ok:
                errors[c] = None
            for c, code, _ in failed:
                errors[c] = code
            if not queued:
                break
        if running:
            m.select(1.0)
    for c, t in transfers.items():
        print(t.report(errors.get(c, "never completed")))
        m.remove_handle(c)
        c.close()
    m.close()


def threaded(specs, cainfo, n):
    reports = [None] * len(specs)

    def work(k):
        c = pycurl.Curl()
        for i in range(k, len(specs), n):
            t = Transfer(c, specs[i], cainfo)
            error = None
            try:
                c.perform()
            except pycurl.error as e:
                error = e.args[0]
            reports[i] = t.report(error)
        c.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("\n".join(reports))  # in the order of the specs, whatever the timing


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cainfo")
    parser.add_argument("--multi", action="store_true")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("specs", nargs="+")
    args = parser.parse_args()
    if args.threads:
        threaded(args.specs, args.cainfo, args.threads)
    else:
        (multi if args.multi else serial)(args.specs, args.cainfo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
