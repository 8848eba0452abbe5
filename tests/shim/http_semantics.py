#!/usr/bin/env python3
"""HTTP caching semantics (RFC 9111) through the shim, as the curl CLI meets them.

The real `curl` runs with libcurlcache-preload.so against tests/shim/scripted_origin.py,
which each case scripts per path (status, headers, Date, body, 304s) and whose request log
proves what reached the origin: a hit made no request, a revalidation sent exactly one
conditional request with the right If-None-Match / If-Modified-Since, an invalidated entry
was fetched again. Time passes without sleeping: a response is made stale by a Date in the
past, or curl runs under libfaketime (FAKETIME=+1h, monotonic clock untouched).

This file: freshness (max-age, Expires, Age, heuristic, expire_after), revalidation (304
updates, 200 replaces, no-cache, pycurl's view of it), the Age header setting, 1xx, the
info log lines. http_semantics_storage.py: what is stored and served to whom (no-store, Vary,
invalidation, shared/private caches, stale-if-error, the request's directives,
only-if-cached, hermetic mode).

    http_semantics.py --shim PATH [--only NAME,...] [--keep] [--list] [--self-check]
                      [--reference-proxy URL]

--self-check runs every case with CURLCACHE_DISABLE=1 and passes only if each case then
reports a failure (its cache assertions can fail). Exit status 0 pass, 1 fail, 77 shim not
built. --reference-proxy URL sends curl through a caching proxy instead of the shim, to
check the expectations against an independent cache: through squid 5.7 (memory cache,
defaults) the Vary, invalidation, revalidation (If-None-Match, If-Modified-Since, 304
header update), request max-stale/min-fresh/max-age, only-if-cached, no-store and
shared-cache Authorization checks pass; squid adds Age and X-Cache to hits, sends request
no-cache unconditionally, lacks stale-if-error, is shared, and knows neither libfaketime's
clock nor CURLCACHE_* settings.
"""

import glob
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pycurl_hit  # noqa: E402
from scripted_origin import ScriptedOrigin, http_date  # noqa: E402

ANY = object()  # a request property a check does not care about
DAY = 86400


def faketime_library():
    """libfaketime.so.1 (Debian package faketime), or None."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
                   + glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    return found[0] if found else None


def split_response(out):
    """curl -i output -> ([header block text, ...], body bytes)."""
    blocks = []
    rest = out
    while rest.startswith(b"HTTP/"):
        head, _, rest = rest.partition(b"\r\n\r\n")
        blocks.append(head.decode("latin-1"))
    return blocks, rest


def header_values(block, name):
    """Every value of header `name` in one header block, in order."""
    out = []
    for line in block.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            out.append(v.strip())
    return out


def status_of(block):
    parts = block.split(" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def describe_request(r):
    marks = ["%s: %s" % (k, v) for k, v in r["headers"]
             if k.lower() in ("if-none-match", "if-modified-since", "cache-control", "pragma")]
    return "%s %s%s -> %d" % (r["method"], r["target"],
                              " (%s)" % "; ".join(marks) if marks else "", r["status"])


def request_header(r, name):
    for k, v in r["headers"]:
        if k.lower() == name.lower():
            return v
    return None


class Run:
    def __init__(self, label, result, requests):
        self.label = label
        self.cwd = result.cwd
        self.code = result.code
        self.out = result.stdout
        self.err = result.stderr
        self.requests = requests

    def file(self, name):
        """A file the run left in its working directory (None when there is none)."""
        try:
            with open(os.path.join(self.cwd, name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def requests_text(self):
        return "; ".join(describe_request(r) for r in self.requests) or "none"


class Case:
    """One case's context: its own cache (HOME), paths under /<name>/ on the shared origin,
    curl runs that record which requests reached the origin, and the checks."""

    def __init__(self, name, scratch, origin, shim, self_check, proxy=None):
        self.name = name
        self.proxy = proxy
        self.base = os.path.join(scratch, name)
        os.makedirs(self.base)
        self.origin = origin
        self.shim = shim
        self.env = {"CURLCACHE_LOG_LEVEL": "info"}
        if self_check:
            self.env["CURLCACHE_DISABLE"] = "1"
        self.now = int(time.time())
        self.runs = 0
        self.cache = []  # differences from the specified caching behaviour
        self.extra_origins = []

    # -- the origin ----------------------------------------------------------------
    def path(self, p):
        return "/%s%s" % (self.name, p)

    def url(self, p, origin=None):
        return (origin or self.origin).base + self.path(p)

    def script(self, p, origin=None, **spec):
        (origin or self.origin).script(self.path(p), **spec)

    def stored(self, p, cache_control, etag=None, date_offset=0, text=None, headers=(),
               env=None, origin=None, args=()):
        """Scripts `p` (Date `date_offset` s from now, answering conditionals) and fetches
        it once with `curl -i ARGS`: the miss that stores it. Returns that run."""
        lines = [["Cache-Control", cache_control]] if cache_control else []
        lines += [list(h) for h in headers] + ([["ETag", etag]] if etag else [])
        self.script(p, origin=origin, date=self.date(date_offset), headers=lines,
                    body=p + "\n" if text is None else text, conditional=True)
        return self.curl("-i", *args, self.url(p, origin), env=env, origin=origin)

    def date(self, offset=0):
        """The HTTP-date `offset` seconds from this case's start."""
        return http_date(self.now + offset)

    def another_origin(self):
        """A second origin for this case (one this case may stop); stopped at the end."""
        o = ScriptedOrigin().__enter__()
        self.extra_origins.append(o)
        return o

    def close(self):
        for o in self.extra_origins:
            o.stop()

    # -- runs ----------------------------------------------------------------------
    def curl(self, *args, env=None, faketime=None, origin=None):
        """Runs `curl -s ARGS` with the shim on this case's cache; `faketime` ("+1h")
        runs it under libfaketime. The run's `requests` are those the origin received."""
        origin = origin or self.origin
        via = ["-x", self.proxy, "--noproxy", ""] if self.proxy else []
        return self.program(["curl", "-s"] + via + list(args), "curl " + " ".join(
            a.replace(origin.base, "") for a in args), env, faketime, origin)

    def program(self, argv, what, env=None, faketime=None, origin=None):
        """Runs `argv` like curl() (labelled `what` in messages)."""
        origin = origin or self.origin
        self.runs += 1
        label = "run %d `%s`" % (self.runs, what)
        extra = dict(self.env, **(env or {}))
        preload = self.shim
        if faketime:
            lib = faketime_library()
            if lib is None:
                raise RuntimeError("libfaketime.so.1 not found (bash scripts/install-deps.sh)")
            # Faketime before the shim; a sanitizer build's ASan runtime stays first.
            parts = (self.shim or "").split()
            preload = " ".join(parts[:-1] + [lib] + parts[-1:])
            extra.update(FAKETIME=faketime, FAKETIME_DONT_FAKE_MONOTONIC="1")
            label += " at FAKETIME=%s" % faketime
        home = os.path.join(self.base, "home")
        cwd = os.path.join(self.base, "run%d" % self.runs)
        os.makedirs(cwd)
        running = origin.proc is not None  # a stopped origin refuses every connection
        before = len(origin.log()) if running else 0
        result = harness.run(list(argv), cwd, harness.clean_env(home, extra), preload)
        harness.save_outputs(self.base, "run%d" % self.runs, result)
        return Run(label, result, origin.log()[before:] if running else [])

    # -- checks --------------------------------------------------------------------
    def expect(self, ok, run, message):
        if not ok:
            self.cache.append("%s: %s" % (run.label if run else "case", message))
        return ok

    def no_request(self, run):
        """A hit: nothing reached the origin."""
        return self.expect(not run.requests, run, "expected no request to the origin, it "
                           "received: %s" % run.requests_text())

    def one_request(self, run, method="GET", inm=ANY, ims=ANY, status=ANY):
        """Exactly one request reached the origin, with these properties: `inm`/`ims` the
        If-None-Match/If-Modified-Since value it must carry, None for none, ANY either."""
        if not self.expect(len(run.requests) == 1, run, "expected exactly one request to "
                           "the origin, it received: %s" % run.requests_text()):
            return False
        r = run.requests[0]
        problems = []
        if r["method"] != method:
            problems.append("method %s, expected %s" % (r["method"], method))
        for name, want in (("If-None-Match", inm), ("If-Modified-Since", ims)):
            got = request_header(r, name)
            if want is not ANY and got != want:
                problems.append("%s %s, expected %s" % (
                    name, "absent" if got is None else repr(got),
                    "none" if want is None else repr(want)))
        if status is not ANY and r["status"] != status:
            problems.append("the origin answered %d, expected %d" % (r["status"], status))
        return self.expect(not problems, run, "the request %s: %s" % (
            describe_request(r), ", ".join(problems)))

    def conditional(self, run, inm=ANY, ims=ANY, status=304):
        """A revalidation: one conditional GET (If-None-Match `inm` and/or
        If-Modified-Since `ims`; at least one of them)."""
        if not self.one_request(run, inm=inm, ims=ims, status=status):
            return False
        r = run.requests[0]
        return self.expect(request_header(r, "If-None-Match") is not None
                           or request_header(r, "If-Modified-Since") is not None, run,
                           "the request was not conditional: %s" % describe_request(r))

    def sees(self, run, status=200, body=None, headers=None, code=0):
        """What curl -i printed: exit code, final status, body, and for each (name,
        values) in `headers` exactly those values of that header (None: [] )."""
        blocks, got_body = split_response(run.out)
        problems = []
        if run.code != code:
            problems.append("exit code %d, expected %d" % (run.code, code))
        if not blocks:
            problems.append("no response headers in the output %r" % run.out[:200])
        else:
            final = blocks[-1]
            if status_of(final) != status:
                problems.append("final status line %r, expected %d"
                                % (final.split("\r\n")[0], status))
            for name, values in (headers or {}).items():
                got = header_values(final, name)
                if got != list(values or []):
                    problems.append("%s %r, expected %r" % (name, got, list(values or [])))
        if body is not None and got_body != body:
            problems.append("body %r, expected %r" % (got_body[:200], body))
        return self.expect(not problems, run, "; ".join(problems))

    def same_output(self, run, earlier, what="the stored response unchanged"):
        d = harness.describe_difference("stdout", earlier.out, run.out)
        return self.expect(d is None and run.code == earlier.code, run,
                           "expected %s as %s printed it: %s" % (
                               what, earlier.label, d or "exit code %d vs %d" % (
                                   run.code, earlier.code)))


CASES = []


def case(fn):
    CASES.append((fn.__name__, fn))
    return fn


def body(text):
    return text.encode()


# -------------------------------------------------------------------------------------
# Freshness from the origin's headers

@case
def fresh_hit_makes_no_request(c):
    """max-age=3600: the second run makes no request and prints the stored bytes
    unchanged."""
    c.script("/r", headers=[["Content-Type", "text/plain"], ["Cache-Control", "max-age=3600"],
                            ["ETag", '"f1"']], body="fresh body\n")
    r1 = c.curl("-i", c.url("/r"))
    c.one_request(r1, inm=None, ims=None, status=200)
    c.sees(r1, body=b"fresh body\n")
    r2 = c.curl("-i", c.url("/r"))
    c.no_request(r2)
    c.same_output(r2, r1)


@case
def explicit_freshness_expires_and_age(c):
    """Expires - Date is the lifetime (max-age wins over it; an invalid Expires is already
    expired); an Age the origin sent counts against max-age."""
    cases = [("/expires-future", [["Expires", c.date(3600)]], True),
             ("/expires-past", [["Expires", c.date(-60)]], False),
             ("/expires-invalid", [["Expires", "0"]], False),
             ("/max-age-beats-expires", [["Cache-Control", "max-age=3600"],
                                         ["Expires", c.date(-60)]], True),
             ("/age-beyond-max-age", [["Cache-Control", "max-age=3600"], ["Age", "7200"]],
              False)]
    for p, headers, fresh in cases:
        etag = '"%s"' % p[1:]
        c.script(p, date=c.date(), headers=headers + [["ETag", etag]], body=p + "\n",
                 conditional=True,
                 not_modified={"headers": [["ETag", etag]], "date": c.date()})
        c.curl("-i", c.url(p))
        r = c.curl("-i", c.url(p))
        if fresh:
            c.no_request(r)
        else:
            c.conditional(r, inm=etag)
        c.sees(r, body=body(p + "\n"))


@case
def heuristic_freshness_from_last_modified(c):
    """No explicit lifetime: 10 % of Date - Last-Modified (capped) when Last-Modified is
    30 days old, so a hit; none when Last-Modified equals Date, so revalidated with
    If-Modified-Since; CURLCACHE_HEURISTIC_MAX_AGE caps it."""
    old = c.date(-30 * DAY)
    c.script("/old", date=c.date(), headers=[["Content-Type", "text/plain"],
                                             ["Last-Modified", old]],
             body="old\n", conditional=True)
    c.curl("-i", c.url("/old"))
    r = c.curl("-i", c.url("/old"))
    c.no_request(r)
    c.sees(r, body=b"old\n")
    now = c.date()
    c.script("/new", date=now, headers=[["Content-Type", "text/plain"], ["Last-Modified", now]],
             body="new\n", conditional=True)
    c.curl("-i", c.url("/new"))
    r = c.curl("-i", c.url("/new"))
    c.conditional(r, inm=None, ims=now)
    c.sees(r, body=b"new\n", headers={"Last-Modified": [now]})
    # The cap: CURLCACHE_HEURISTIC_MAX_AGE=3600 cuts 3 days to an hour; 2 h later
    # (libfaketime) the entry is stale.
    env = {"CURLCACHE_HEURISTIC_MAX_AGE": "3600"}
    c.script("/capped", date=c.date(), headers=[["Last-Modified", old]], body="capped\n",
             conditional=True)
    c.curl("-i", c.url("/capped"), env=env)
    c.no_request(c.curl("-i", c.url("/capped"), env=env))
    r = c.curl("-i", c.url("/capped"), env=env, faketime="+2h")
    c.conditional(r, inm=None, ims=old)
    c.sees(r, body=b"capped\n")


@case
def expire_after_applies_only_without_explicit_freshness(c):
    """CURLCACHE_EXPIRE_AFTER, and a matching CURLCACHE_URLS_EXPIRE_AFTER rule, replace
    the heuristic in default mode, never max-age."""
    now = c.date()
    settings = {"": {"CURLCACHE_EXPIRE_AFTER": "86400"},
                "ruled-": {"CURLCACHE_URLS_EXPIRE_AFTER": "*/%s/ruled-*=1d" % c.name}}
    for prefix, env in settings.items():
        p = "/%simplicit" % prefix
        c.script(p, date=now, headers=[["Last-Modified", now], ["ETag", '"i"']],
                 body=p + "\n", conditional=True)
        c.curl("-i", c.url(p), env=env)
        r = c.curl("-i", c.url(p), env=env)
        c.no_request(r)
        c.sees(r, body=body(p + "\n"))
        p = "/%sexplicit" % prefix
        c.script(p, date=now, headers=[["Cache-Control", "max-age=0"], ["ETag", '"e"']],
                 body=p + "\n", conditional=True)
        c.curl("-i", c.url(p), env=env)
        r = c.curl("-i", c.url(p), env=env)
        c.conditional(r, inm='"e"')
        c.sees(r, body=body(p + "\n"))


# -------------------------------------------------------------------------------------
# Revalidation

def _versioned(c, p, date, cache_control, etag=None, last_modified=None):
    headers = [["Content-Type", "text/plain"], ["Cache-Control", cache_control],
               ["X-Version", "1"]]
    if etag:
        headers.append(["ETag", etag])
    if last_modified:
        headers.append(["Last-Modified", last_modified])
    c.script(p, date=date, headers=headers, body="version one\n", conditional=True,
             not_modified={"headers": [h for h in headers if h[0] in ("ETag", "Last-Modified")]
                           + [["Cache-Control", "max-age=3600"], ["X-Version", "2"]],
                           "date": c.date()})


@case
def stale_entry_revalidated_with_if_none_match(c):
    """Stored already stale (Date 2 h ago, max-age=60): the next run sends one
    If-None-Match; the 304's headers (X-Version: 2, max-age=3600) update the stored
    response, which the program sees and which is then fresh."""
    _versioned(c, "/r", c.date(-7200), "max-age=60", etag='"v1"')
    r1 = c.curl("-i", c.url("/r"))
    c.one_request(r1, inm=None, ims=None, status=200)
    r2 = c.curl("-i", c.url("/r"))
    c.conditional(r2, inm='"v1"')
    c.sees(r2, body=b"version one\n", headers={"X-Version": ["2"],
                                                 "Cache-Control": ["max-age=3600"]})
    r3 = c.curl("-i", c.url("/r"))
    c.no_request(r3)
    c.sees(r3, body=b"version one\n", headers={"X-Version": ["2"]})


@case
def stale_entry_revalidated_with_if_modified_since(c):
    """Stored already stale with Last-Modified and no ETag: one If-Modified-Since
    request; the 304 updates X-Version; then a hit."""
    lm = c.date(-30 * DAY)
    _versioned(c, "/r", c.date(-7200), "max-age=60", last_modified=lm)
    c.curl("-i", c.url("/r"))
    r2 = c.curl("-i", c.url("/r"))
    c.conditional(r2, inm=None, ims=lm)
    c.sees(r2, body=b"version one\n", headers={"X-Version": ["2"]})
    c.no_request(c.curl("-i", c.url("/r")))


PYCURL_CLIENT = r"""
import sys, pycurl
h = pycurl.Curl()
for i in (1, 2):  # one handle, two transfers
    lines, body = [], []
    h.setopt(pycurl.URL, sys.argv[1])
    h.setopt(pycurl.HEADERFUNCTION, lines.append)
    h.setopt(pycurl.WRITEFUNCTION, body.append)
    h.perform()
    version = [ln for ln in lines if ln.lower().startswith(b"x-version:")]
    sys.stdout.write("%d %d %r %r\n" % (i, h.getinfo(pycurl.RESPONSE_CODE), version,
                                          b"".join(body)))
"""


@case
def pycurl_revalidation_delivers_the_updated_200(c):
    """pycurl, one handle, two transfers of a stale entry: the first revalidates (one
    If-None-Match, 304) and its header callback, write callback and RESPONSE_CODE see the
    stored 200 with the 304's X-Version: 2; the second is a hit on the refreshed entry."""
    python = pycurl_hit.python_with_pycurl()
    if python is None:
        raise RuntimeError("no python3 with pycurl (install python3-pycurl)")
    _versioned(c, "/r", c.date(-7200), "max-age=60", etag='"v1"')
    c.curl("-i", c.url("/r"))
    r = c.program([python, "-c", PYCURL_CLIENT, c.url("/r")], "pycurl client (2 transfers)")
    c.conditional(r, inm='"v1"')
    want = b"".join(b"%d 200 [b'X-Version: 2\\r\\n'] b'version one\\n'\n" % i
                    for i in (1, 2))
    c.expect(r.code == 0 and r.out == want, r, "printed %r (exit %d), expected %r"
             % (r.out, r.code, want))


@case
def stale_entry_replaced_by_a_200(c):
    """Stale entry, changed resource: one If-None-Match request answered 200 with v2,
    which the program sees and which replaces the entry."""
    c.script("/r", date=c.date(-7200), headers=[["Cache-Control", "max-age=60"],
                                                ["ETag", '"v1"']],
             body="version one\n", conditional=True)
    c.curl("-i", c.url("/r"))
    c.script("/r", date=c.date(), headers=[["Cache-Control", "max-age=3600"],
                                           ["ETag", '"v2"']],
             body="version two\n", conditional=True)
    r2 = c.curl("-i", c.url("/r"))
    c.one_request(r2, inm='"v1"', status=200)
    c.sees(r2, body=b"version two\n", headers={"ETag": ['"v2"']})
    r3 = c.curl("-i", c.url("/r"))
    c.no_request(r3)
    c.same_output(r3, r2, "the replacing response")


@case
def changed_resource_seen_once_no_longer_fresh(c):
    """max-age=600; the origin changes at once. Now: the old response (a hit). An hour
    later (libfaketime): one conditional request, the new response; then that one."""
    c.script("/r", date=c.date(), headers=[["Cache-Control", "max-age=600"],
                                           ["ETag", '"v1"']],
             body="version one\n", conditional=True)
    c.curl("-i", c.url("/r"))
    c.script("/r", date=c.date(3600), headers=[["Cache-Control", "max-age=600"],
                                               ["ETag", '"v2"']],
             body="version two\n", conditional=True)
    r2 = c.curl("-i", c.url("/r"))
    c.no_request(r2)
    c.sees(r2, body=b"version one\n")
    r3 = c.curl("-i", c.url("/r"), faketime="+1h")
    c.one_request(r3, inm='"v1"', status=200)
    c.sees(r3, body=b"version two\n")
    r4 = c.curl("-i", c.url("/r"), faketime="+1h")
    c.no_request(r4)
    c.sees(r4, body=b"version two\n")


@case
def no_cache_response_revalidated_on_every_use(c):
    """Cache-Control: no-cache (and max-age=0) responses are stored and revalidated with
    If-None-Match on every use; the program sees the stored 200 (also via -w http_code)."""
    for p, cc in (("/no-cache", "no-cache"), ("/max-age-0", "max-age=0")):
        etag = '"%s"' % p[1:]
        c.stored(p, cc, etag=etag)
        for _ in range(2):
            r = c.curl("-i", c.url(p))
            c.conditional(r, inm=etag)
            c.sees(r, body=body(p + "\n"), headers={"Cache-Control": [cc]})
        # What libcurl reports for a 304 answered from the stored response: its 200.
        r = c.curl("-o", "out.txt", "-w", "%{http_code} %{size_download}", c.url(p))
        c.conditional(r, inm=etag)
        c.expect(r.out == b"200 %d" % len(p + "\n"), r, "printed %r, expected '200 %d'"
                 % (r.out, len(p + "\n")))
        c.expect(r.file("out.txt") == body(p + "\n"), r, "out.txt holds %r"
                 % r.file("out.txt"))


# -------------------------------------------------------------------------------------
# Settings and details

@case
def age_header_setting(c):
    """Off (default): a hit replays the stored bytes unchanged. CURLCACHE_AGE_HEADER=1: one
    generated Age line, at least the age the response had (Date 100 s ago, or the origin's
    Age: 500), far below its max-age."""
    c.script("/r", date=c.date(-100), headers=[["Cache-Control", "max-age=86400"]],
             body="aged\n")
    c.script("/with-age", date=c.date(), headers=[["Cache-Control", "max-age=86400"],
                                                  ["Age", "500"]], body="aged\n")
    for p, least in (("/r", 100), ("/with-age", 500)):
        r1 = c.curl("-i", c.url(p))
        r2 = c.curl("-i", c.url(p))
        c.no_request(r2)
        c.same_output(r2, r1)
        r3 = c.curl("-i", c.url(p), env={"CURLCACHE_AGE_HEADER": "1"})
        c.no_request(r3)
        blocks, rest = split_response(r3.out)
        ages = header_values(blocks[-1], "Age") if blocks else []
        c.expect(len(ages) == 1 and ages[0].isdigit() and least <= int(ages[0]) < 20000, r3,
                 "Age lines %r, expected one with a value from %d to 20000" % (ages, least))
        first, _ = split_response(r1.out)
        c.expect(first and blocks and [ln for ln in blocks[-1].split("\r\n")
                                       if not ln.lower().startswith("age:")]
                 == [ln for ln in first[-1].split("\r\n") if not ln.lower().startswith("age:")]
                 and rest == split_response(r1.out)[1], r3,
                 "other lines or body differ from the stored response")


@case
def interim_1xx_never_replayed_as_final(c):
    """A 103 Early Hints before the 200: a hit's final response is the 200 (curl -i, -w
    http_code, the body file)."""
    c.script("/r", interim=[[103, [["Link", "</style.css>; rel=preload"]]]],
             headers=[["Cache-Control", "max-age=3600"]], body="after early hints\n")
    r1 = c.curl("-i", c.url("/r"))
    c.sees(r1, body=b"after early hints\n")
    r2 = c.curl("-i", c.url("/r"))
    c.no_request(r2)
    c.sees(r2, body=b"after early hints\n")
    r3 = c.curl("-o", "out.txt", "-w", "%{http_code}", c.url("/r"))
    c.no_request(r3)
    c.expect(r3.out == b"200" and r3.file("out.txt") == b"after early hints\n", r3,
             "printed %r, out.txt %r, expected 200 and the body" % (r3.out, r3.file("out.txt")))


@case
def verbose_hit_shows_why_and_the_headers(c):
    """curl -v on a hit: one "* curlcache: HIT fresh (...)" line, then the stored response's
    header lines as libcurl shows what it receives ("< "); a revalidation says
    REVALIDATED 304."""
    c.script("/v", headers=[["Cache-Control", "max-age=3600"], ["X-Mark", "seen"]],
             body="verbose\n")
    c.curl("-o", "out.txt", c.url("/v"))
    r = c.curl("-v", "-o", "out.txt", c.url("/v"))
    c.no_request(r)
    err = r.err.decode("utf-8", "replace").splitlines()
    c.expect(any(ln.startswith("* curlcache: HIT fresh (") for ln in err), r,
             "no '* curlcache: HIT fresh (...)' line in %r" % err)
    c.expect("< HTTP/1.1 200 OK" in err and "< X-Mark: seen" in err, r,
             "the stored header lines are not shown: %r" % err)
    _versioned(c, "/rv", c.date(-7200), "max-age=60", etag='"v1"')
    c.curl("-o", "out.txt", c.url("/rv"))
    r = c.curl("-v", "-o", "out.txt", c.url("/rv"))
    err = r.err.decode("utf-8", "replace").splitlines()
    c.expect("* curlcache: REVALIDATED 304" in err, r,
             "no '* curlcache: REVALIDATED 304' line in %r" % err)


WORDS = {"MISS": r"\bMISS\b", "HIT": r"\bHIT fresh\b", "REVALIDATED": r"\bREVALIDATED 304\b",
         "STALE": r"\bSTALE served \(stale-if-error\)", "PASS": r"\bPASS\b"}


@case
def info_log_line_per_transfer(c):
    """CURLCACHE_LOG_LEVEL=info: one stderr line per transfer with MISS, HIT fresh,
    REVALIDATED 304, STALE served (stale-if-error) or PASS; nothing on stdout."""
    c.script("/fresh", headers=[["Cache-Control", "max-age=3600"]], body="fresh\n")
    _versioned(c, "/stale", c.date(-7200), "max-age=60", etag='"v1"')
    c.script("/sie", date=c.date(-7200), headers=[["Cache-Control",
                                                   "max-age=60, stale-if-error=86400"]],
             body="kept\n")
    c.script("/post", method="POST", headers=[["Content-Type", "text/plain"]], body="posted\n")
    runs = [("MISS", ("/fresh",), b"fresh\n"), ("HIT", ("/fresh",), b"fresh\n"),
            ("MISS", ("/stale",), b"version one\n"),
            ("REVALIDATED", ("/stale",), b"version one\n"),
            ("MISS", ("/sie",), b"kept\n"), ("STALE", ("/sie",), b"kept\n"),
            ("PASS", ("-d", "x", "/post"), b"posted\n")]
    for word, args, want in runs:
        if word == "STALE":
            c.script("/sie", status=503, headers=[["Content-Type", "text/plain"]],
                     body="down\n")
        argv = [c.url(a) if a.startswith("/") else a for a in args]
        r = c.curl("-o", "out.txt", *argv)
        lines = [ln for ln in r.err.decode("utf-8", "replace").splitlines()
                 if any(re.search(w, ln) for w in WORDS.values())]
        c.expect(len(lines) == 1 and re.search(WORDS[word], lines[0]), r,
                 "expected one log line with %r on stderr, got %r" % (
                     WORDS[word].replace("\\b", ""), lines))
        c.expect(b"curlcache" not in r.out, r, "stdout mentions curlcache: %r" % r.out)
        c.expect(r.code == 0 and r.file("out.txt") == want, r, "exit %d, out.txt %r, "
                 "expected 0 and %r" % (r.code, r.file("out.txt"), want))


# -------------------------------------------------------------------------------------

def all_cases():
    import http_semantics_storage  # the second half of the cases
    return CASES + http_semantics_storage.CASES


def main():
    parser = harness.arguments(__doc__)
    parser.add_argument("--list", action="store_true", help="list the cases")
    parser.add_argument("--reference-proxy", metavar="URL",
                        help="send curl through this caching proxy (e.g. a local squid) "
                        "with nothing preloaded: checks these expectations against an "
                        "independent shared HTTP cache")
    args = parser.parse_args()
    cases = all_cases()
    if args.list:
        for name, fn in cases:
            print(name)
        return 0
    cases = harness.only(cases, args.only)
    if args.reference_proxy:
        shim = None
        report = harness.Report(args.reference_proxy, args.self_check)  # checks enforced
    else:
        shim = harness.shim_or_skip(args.shim, args.harness_only)
        report = harness.Report(shim, args.self_check)
    with harness.Scratch(keep=args.keep, prefix="curlcache-semantics-") as scratch, \
            ScriptedOrigin() as origin:
        for name, fn in cases:
            c = Case(name, scratch, origin, shim, args.self_check, args.reference_proxy)
            problems = []
            try:
                fn(c)
            except (RuntimeError, OSError) as e:
                problems.append("setup: %s" % e)
            finally:
                c.close()
            if problems and args.self_check:
                # A case that could not run proves nothing about its checks.
                report.total += 1
                report.failed += 1
                print("FAIL %s (%s)" % (name, problems[0]))
                continue
            title = " ".join((fn.__doc__ or name).split("\n\n")[0].split())
            report.case(name, title, problems, c.cache,
                        "%d runs" % c.runs, c.base)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
