#!/usr/bin/env python3
"""The curl CLI corpus: each invocation of the unmodified `curl` runs once without the
shim, then twice with it on a fresh cache. Asserts that exit code, stdout, stderr (-s keeps
it free of the progress meter) and every file the run leaves in its working directory are
byte-identical to the run without the shim, and that the second shim run is answered from
the cache (the origin's request count does not move) or, for requests the cache must not
keep (POST, a 404 by default), that it reached the origin. Also, for every case: whatever
the shim creates below XDG_CACHE_HOME is owner-only; for some, named credentials never
appear in any file, or a stale entry's refresh was a conditional request.

    curl_corpus.py --shim PATH [--only NAME,...] [--part K/N] [--keep] [--list]
                   [--harness-only] [--self-check]

Exit status: 0 all passed, 1 a mismatch (every one is printed: which invocation, which run,
the first differing byte and both outputs), 77 the shim is not built (ctest: skipped).
--harness-only runs the "with shim" side preloading nothing when the shim is missing, to
validate the harness itself; cache assertions are then reported but not enforced.
--self-check proves the comparison can fail: the "with shim" runs get a different URL,
and the check passes only if every such case is reported as a mismatch.
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# Every variable whose value does not depend on timing or on the local port number.
WRITE_OUT = ("%{http_code} %{content_type} %{size_download} %{url_effective} "
             "%{num_redirects} %{size_header} %header{content-type} %{header_json}\\n")
# /status/404 carries no freshness: by HTTP's rules it is stale at once. Cached 404s are
# the hermetic setting's (the config alone decides), as are the config-driven cases below.
ALLOW_404 = {"CURLCACHE_ALLOWABLE_CODES": "200,404", "CURLCACHE_HERMETIC": "1"}
HERMETIC = {"CURLCACHE_HERMETIC": "1"}


def pattern_prefix(n):
    """The first n bytes that origin.py serves at /bytes/N (for a partial file)."""
    sys.path.insert(0, os.path.dirname(harness.ORIGIN))
    import origin  # noqa: E402
    return origin.pattern_bytes(n)


class Case:
    """One invocation. `cached`: True = the second shim run must not reach the origin,
    False = it must (not cacheable), None = either (a pass-through is allowed)."""

    def __init__(self, name, args, cached=True, files=None, prime=None, env=None,
                 mtime=False, tls=False, secrets=(), first_miss=False, stderr=True,
                 revalidates=False, stdout_check=None):
        self.name = name
        self.secrets = secrets  # byte strings that must never appear in the cache files
        self.first_miss = first_miss  # even after priming, the first shim run is a miss
        self.stderr = stderr  # False: stderr may differ (a debug log goes there)
        self.revalidates = revalidates  # the second shim run's requests are conditional
        self.stdout_check = stdout_check  # instead of comparing stdout byte for byte
        self.args = args
        self.cached = cached
        self.files = files or {}
        self.prime = prime or []
        self.env = env or {}
        self.mtime = mtime
        self.tls = tls


TIMINGS = ("%{time_namelookup} %{time_connect} %{time_appconnect} %{time_pretransfer} "
           "%{time_starttransfer} %{time_total} %{time_redirect} %{speed_download}\\n")


def plausible_timings(stdout):
    """Timings vary from run to run, so they are checked, not compared: non-negative, under
    10 s, and in libcurl's order (connect <= pretransfer <= starttransfer <= total, and
    namelookup <= pretransfer; appconnect is 0 without TLS). namelookup may exceed connect:
    libcurl 7.88 itself printed 0.000331 against 0.000324 after -L reused the connection
    (a fresh-clone CI run, on the miss, which is libcurl's own transfer)."""
    try:
        lookup, connect, app, pre, start, total, redirect, speed = (
            float(x) for x in stdout.split())
    except ValueError:
        return ["not eight numbers: %r" % stdout]
    problems = []
    values = [lookup, connect, app, pre, start, total, redirect, speed]
    if any(v < 0 for v in values) or total > 10:
        problems.append("implausible timings %r" % (values,))
    if not (connect <= pre <= start <= total and lookup <= pre):
        problems.append("timings out of order %r" % (values,))
    return problems


def corpus():
    partial = pattern_prefix(1000)
    return [
        Case("get_to_stdout", ["{B}/text"]),
        Case("get_empty_body", ["-w", "%{http_code} %{size_download}\\n", "{B}/bytes/0"]),
        Case("get_binary_to_file", ["-o", "out.bin", "{B}/bytes/100000"]),
        Case("chunked_response", ["-i", "-w", WRITE_OUT, "{B}/chunked/5500"]),
        Case("chunked_response_compressed_to_file", ["--compressed", "-D", "h.txt", "-o", "c.bin",
                                                     "{B}/chunked/70000"]),
        Case("get_large_to_file", ["-o", "big.bin", "{B}/bytes/3000000"]),
        Case("remote_name_from_url", ["-O", "{B}/bytes/4096"]),
        Case("remote_header_name", ["-O", "-J", "{B}/disposition"]),
        Case("include_headers", ["-i", "{B}/text"]),
        Case("head_only", ["-I", "{B}/text"]),
        Case("head_only_follow", ["-I", "-L", "{B}/redirect/2"]),
        Case("follow_redirects", ["-L", "{B}/redirect/3"]),
        Case("include_and_follow", ["-i", "-L", "{B}/redirect/2"]),
        # The 302 says max-age=86400: HTTP's rules store it; hermetic (allowable_codes 200)
        # does not.
        Case("redirect_not_followed_cached_by_its_freshness", ["-i", "{B}/redirect/1"]),
        Case("redirect_not_followed_not_cached_when_hermetic", ["-i", "{B}/redirect/1"],
             env=HERMETIC, cached=False),
        Case("compressed", ["--compressed", "{B}/gzip"]),
        Case("compressed_include", ["--compressed", "-i", "{B}/gzip"]),
        Case("uncompressed_after_compressed", ["-i", "{B}/gzip"],
             prime=[["--compressed", "-o", "/dev/null", "{B}/gzip"]]),
        Case("raw_gzip_header_after_plain", ["-H", "Accept-Encoding: gzip", "-o", "raw.gz",
                                             "-w", "%{size_download}\\n", "{B}/gzip"],
             prime=[["-o", "/dev/null", "{B}/gzip"]], cached=None),
        Case("dump_header_to_file", ["-D", "headers.txt", "-o", "body.txt", "{B}/text"]),
        Case("dump_header_follow", ["-L", "-D", "headers.txt", "-o", "body.txt",
                                    "{B}/redirect/2"]),
        Case("write_out_variables", ["-o", "body.txt", "-w", WRITE_OUT, "{B}/text"]),
        Case("write_out_redirect_chain", ["-L", "-w", WRITE_OUT, "{B}/redirect/2"]),
        Case("write_out_compressed", ["--compressed", "-w", WRITE_OUT, "{B}/gzip"]),
        Case("write_out_head", ["-I", "-w", WRITE_OUT, "{B}/text"]),
        Case("write_out_more_variables",
             ["-L", "-e", "http://ref.test/", "-o", "f.txt", "-w",
              "%{method} %{scheme} %{response_code} %{http_connect} %{filename_effective} "
              "%{exitcode} [%{errormsg}] %{remote_ip} %{remote_port} %{local_ip} "
              "%{ssl_verify_result} %{num_headers} [%{redirect_url}] %{referer} "
              "%{size_request} %{size_upload} %{http_version} %{urlnum}\\n",
              "{B}/redirect/1"]),
        Case("write_out_https_variables",
             ["--cacert", "{CA}", "-o", "f.txt", "-w",
              "%{scheme} %{ssl_verify_result} %{http_version} %{remote_ip} %{num_headers}\\n",
              "{S}/text"], tls=True),
        Case("fail_on_404_not_cached", ["-f", "-w", "%{http_code}\\n", "{B}/status/404"],
             cached=False),
        # With -f libcurl stops before a 4xx body, so the shim may pass it through even when
        # 404s are cacheable; once a 404 is cached (without -f), -f must replay it.
        Case("fail_on_404_cacheable", ["-f", "-i", "-w", "%{http_code}\\n", "{B}/status/404"],
             env=ALLOW_404, cached=None),
        Case("fail_on_cached_404", ["-f", "-i", "-w", "%{http_code}\\n", "{B}/status/404"],
             env=ALLOW_404, prime=[["-o", "/dev/null", "{B}/status/404"]]),
        Case("404_without_fail_cached", ["-w", WRITE_OUT, "{B}/status/404"], env=ALLOW_404),
        Case("remote_time", ["-R", "-o", "dated.txt", "{B}/text"], mtime=("dated.txt",)),
        Case("etag_compare_matching", ["--etag-compare", "etag.txt", "-o", "e.txt",
                                       "-w", "%{http_code} %{size_download}\\n", "{B}/text"],
             files={"etag.txt": b'"text-v1"\n'}, prime=[["-o", "/dev/null", "{B}/text"]]),
        Case("etag_compare_matching_uncached",
             ["--etag-compare", "etag.txt", "-o", "e.txt",
              "-w", "%{http_code} %{size_download}\\n", "{B}/text"],
             files={"etag.txt": b'"text-v1"\n'}, cached=None),
        Case("etag_compare_changed", ["--etag-compare", "etag.txt", "-o", "e.txt",
                                      "-w", "%{http_code} %{size_download}\\n", "{B}/text"],
             files={"etag.txt": b'"text-v0"\n'}, prime=[["-o", "/dev/null", "{B}/text"]]),
        Case("etag_save", ["--etag-save", "etag.out", "-o", "e.txt", "{B}/text"]),
        Case("time_condition_not_modified",
             ["-z", "Fri, 01 Jan 2021 00:00:00 GMT", "-o", "z.txt",
              "-w", "%{http_code} %{size_download}\\n", "{B}/text"],
             prime=[["-o", "/dev/null", "{B}/text"]]),
        Case("time_condition_modified",
             ["-z", "Tue, 01 Jan 2019 00:00:00 GMT", "-o", "z.txt",
              "-w", "%{http_code} %{size_download}\\n", "{B}/text"],
             prime=[["-o", "/dev/null", "{B}/text"]]),
        Case("resume_partial_file", ["-C", "-", "-o", "part.bin",
                                     "-w", "%{http_code} %{size_download}\\n",
                                     "{B}/bytes/5000"],
             files={"part.bin": partial}, cached=None),
        Case("byte_range", ["-r", "100-199", "-o", "r.bin", "-w", "%{http_code}\\n",
                            "{B}/bytes/5000"], cached=None),
        # A Range header (as range readers send it) is answered with a 206 from the whole
        # body stored by an earlier GET, as -r is.
        Case("range_header_from_stored_body",
             ["-H", "Range: bytes=100-199", "-i", "-o", "r.bin", "-w", "%{http_code}\\n",
              "{B}/bytes/5000"], prime=[["-o", "/dev/null", "{B}/bytes/5000"]]),
        Case("several_urls_to_stdout", ["{B}/text", "{B}/bytes/300", "{B}/gzip"]),
        Case("several_urls_to_files", ["-o", "a.txt", "{B}/text", "-o", "b.bin",
                                       "{B}/bytes/300", "-w", "%{http_code}\\n"]),
        Case("parallel_transfers", ["--no-progress-meter", "--parallel", "-o", "p1.txt", "{B}/text",
                                    "-o", "p2.bin", "{B}/bytes/70000"]),
        Case("https_with_cacert", ["--cacert", "{CA}", "{S}/text"], tls=True),
        Case("https_include_follow", ["--cacert", "{CA}", "-i", "-L", "{S}/redirect/1"],
             tls=True),
        # More edge cases of the replay.
        Case("empty_body_to_file", ["-o", "empty.bin", "{B}/bytes/0"]),
        Case("headers_to_stdout", ["-D", "-", "-o", "body.txt", "{B}/redirect/1", "-L"]),
        Case("head_after_cached_get", ["-I", "{B}/text"],
             prime=[["-o", "/dev/null", "{B}/text"]]),
        Case("byte_range_after_cached_full", ["-r", "100-199", "-o", "r.bin",
                                              "-w", "%{http_code} %{size_download}\\n",
                                              "{B}/bytes/5000"],
             prime=[["-o", "/dev/null", "{B}/bytes/5000"]], cached=None),
        Case("resume_after_cached_full", ["-C", "-", "-o", "part.bin",
                                          "-w", "%{http_code} %{size_download}\\n",
                                          "{B}/bytes/5000"],
             files={"part.bin": partial}, prime=[["-o", "/dev/null", "{B}/bytes/5000"]],
             cached=None),
        Case("max_filesize_exceeded_after_cached", ["--max-filesize", "100", "-o", "m.bin",
                                                    "{B}/bytes/1000"],
             prime=[["-o", "/dev/null", "{B}/bytes/1000"]], cached=None),
        Case("fail_show_error_cached_404", ["-f", "-S", "{B}/status/404"], env=ALLOW_404,
             prime=[["-o", "/dev/null", "{B}/status/404"]]),
        Case("fail_with_body_cached_404", ["--fail-with-body", "-w", "%{http_code}\\n",
                                           "{B}/status/404"], env=ALLOW_404),
        Case("mixed_hit_and_miss", ["{B}/text", "{B}/bytes/333", "{B}/gzip"],
             prime=[["-o", "/dev/null", "{B}/bytes/333"]]),
        Case("get_with_query", ["-G", "-d", "a=1", "-d", "b=two", "-w", "%{url_effective}\\n",
                                "{B}/text"]),
        Case("http_1_0", ["-0", "-i", "{B}/text"]),
        # No secrets at rest: credentials are digested into the key, never stored.
        Case("basic_auth_never_stored", ["-u", "alice:s3cret-pw", "-i", "{B}/text"],
             secrets=(b"s3cret-pw", b"YWxpY2U6czNjcmV0LXB3")),
        Case("url_credentials_never_stored", ["-i", "{BU}/text"],
             secrets=(b"s3cret-url",)),
        Case("other_user_is_a_different_entry", ["-u", "bob:other-pw", "{B}/text"],
             prime=[["-u", "alice:s3cret-pw", "-o", "/dev/null", "{B}/text"]], first_miss=True),
        # libcurl's own cookie engine reads Set-Cookie: a hit must feed it too (or pass).
        Case("cookie_jar_from_set_cookie", ["-c", "jar.txt", "-o", "body.txt", "{B}/cookie"],
             cached=None),
        Case("cookie_jar_from_cached_set_cookie", ["-c", "jar.txt", "-i", "{B}/cookie"],
             prime=[["-o", "/dev/null", "{B}/cookie"]], cached=None),
        # Other schemes pass straight through to libcurl.
        Case("file_scheme_beside_http", ["file:///etc/os-release", "{B}/text"], cached=None),
        # A host name mapped by --resolve: nothing leaves the machine.
        Case("resolve_named_host", ["--resolve", "origin.test:{PORT}:127.0.0.1", "-i",
                                    "-w", "%{url_effective}\\n",
                                    "http://origin.test:{PORT}/text"]),
        # Timings: plausible on a hit, not compared.
        Case("timings_plausible", ["-o", "t.txt", "-w", TIMINGS, "{B}/text"],
             stdout_check=plausible_timings),
        Case("timings_plausible_redirects", ["-L", "-o", "t.txt", "-w", TIMINGS,
                                             "{B}/redirect/2"], stdout_check=plausible_timings),
        # The verbose stream may differ (no connection on a hit); everything else may not.
        Case("verbose_stream_not_compared", ["-v", "-i", "-L", "{B}/redirect/1"], stderr=False),
        # Logging never reaches stdout, and a log file never holds credentials.
        Case("debug_log_stays_off_stdout", ["-i", "-L", "{B}/redirect/1"],
             env={"CURLCACHE_LOG_LEVEL": "debug"}, stderr=False),
        Case("debug_log_file_masks_credentials", ["-u", "alice:s3cret-pw", "-i", "{BU}/text"],
             env={"CURLCACHE_LOG_LEVEL": "debug", "CURLCACHE_LOG_FILE": "{HOME}/shim.log"},
             secrets=(b"s3cret-pw", b"YWxpY2U6czNjcmV0LXB3", b"s3cret-url")),
        # Settings that change what is stored, from the environment.
        Case("over_max_entry_size_passes_through", ["-o", "big.bin", "{B}/bytes/5000"],
             env={"CURLCACHE_MAX_ENTRY_SIZE": "1000"}, cached=False),
        Case("mode_refresh_always_fetches", ["-i", "{B}/text"],
             env={"CURLCACHE_MODE": "refresh"}, cached=False),
        Case("mode_readonly_never_stores", ["-i", "{B}/text"],
             env={"CURLCACHE_MODE": "readonly"}, cached=False),
        Case("mode_off_passes_through", ["-i", "{B}/text"], env={"CURLCACHE_MODE": "off"},
             cached=False),
        Case("memory_backend_is_per_process", ["-i", "{B}/text"],
             env={"CURLCACHE_BACKEND": "memory"}, cached=False),
        Case("filesystem_backend", ["-i", "-L", "{B}/redirect/1"],
             env={"CURLCACHE_BACKEND": "filesystem"}),
        Case("memory_backend_within_one_process", ["{B}/text", "{B}/text", "{B}/bytes/99"],
             env={"CURLCACHE_BACKEND": "memory"}, cached=False),
        # What the origin's Cache-Control asks for; whether the shim obeys it is policy.
        # A stale entry is revalidated (If-None-Match / If-Modified-Since) and the 304
        # replays the refreshed entry exactly as a 200.
        # Stale by the origin's word (max-age=0), and by the config's when hermetic.
        Case("stale_entry_revalidates", ["-i", "-w", WRITE_OUT, "{B}/text?cc=max-age=0"],
             cached=False, revalidates=True),
        Case("stale_entry_revalidates_to_file", ["-R", "-o", "t.txt", "-D", "h.txt",
                                                 "{B}/bytes/3000"],
             env={"CURLCACHE_EXPIRE_AFTER": "0", **HERMETIC}, cached=False, revalidates=True,
             mtime=("t.txt",)),
        Case("origin_no_store", ["-i", "{B}/text?cc=no-store"], cached=None),
        Case("origin_max_age_0_revalidates", ["-i", "{B}/text?cc=max-age=0"], cached=None),
        # Parallel transfers finish in any order: each goes to its own file.
        Case("parallel_many_mixed", ["--no-progress-meter", "--parallel", "--parallel-max", "4"]
             + [a for i in range(10) for a in ("-o", "p%d.bin" % i,
                                               "{B}/bytes/%d" % (1000 + 7 * i))],
             prime=[["-o", "/dev/null", "{B}/bytes/1007", "-o", "/dev/null", "{B}/bytes/1028"]]),
        Case("upload_put_passes_through", ["-T", "up.txt", "{B}/echo"],
             files={"up.txt": b"uploaded body\n"}, cached=False),
        Case("post_binary_from_file", ["--data-binary", "@post.bin", "{B}/echo"],
             files={"post.bin": bytes(range(256))}, cached=False),
        Case("post_is_not_cached", ["-d", "hello=world", "{B}/echo"], cached=False),
        Case("post_write_out_not_cached", ["-d", "x=1", "-w", WRITE_OUT, "{B}/echo"],
             cached=False),
    ]


def expand(args, origin, tls_origin):
    out = []
    for a in args:
        a = a.replace("{BU}", origin.base.replace("://", "://carol:s3cret-url@"))
        a = a.replace("{B}", origin.base).replace("{PORT}", str(origin.port))
        if tls_origin is not None:
            a = a.replace("{S}", tls_origin.base).replace("{CA}", tls_origin.cacert)
        out.append(a)
    return out


def run_case(case, workdir, origin, tls_origin, shim, inject):
    """Runs one case: (output problems, cache problems, note, its directory)."""
    server = tls_origin if case.tls else origin
    base = os.path.join(workdir, case.name)
    home = os.path.join(base, "home")
    env = harness.clean_env(home, {k: v.replace("{HOME}", home) for k, v in case.env.items()})
    argv = ["curl", "-s"] + expand(case.args, origin, tls_origin)
    shim_argv = argv
    if inject:
        shim_argv = [a.replace("/text", "/bytes/127") for a in argv]

    prime = [["curl", "-s"] + expand(p, origin, tls_origin) for p in case.prime]
    three = harness.Three(base, argv, env, shim, server, case.files, prime, shim_argv)
    problems = three.differences(with_mtime=case.mtime, ignore_stderr=not case.stderr,
                                 stdout_check=case.stdout_check)
    first_requests, second_requests = three.first_requests, three.second_requests
    cache_problems = []
    if case.cached is True:
        if (not case.prime or case.first_miss) and first_requests == 0:
            cache_problems.append("first shim run made no request on a fresh cache"
                                  if not case.prime else "first shim run was answered from "
                                  "an entry made for a different request")
        if second_requests != 0:
            cache_problems.append("second shim run made %d request(s) at the origin, "
                                  "expected a hit" % second_requests)
    elif case.cached is False and second_requests == 0:
        cache_problems.append("second shim run made no request, but this response must "
                              "not be cached")
    if case.revalidates:
        last = server.log().splitlines()[-second_requests:] if second_requests else []
        plain_ones = [r for r in last if "if-none-match" not in r
                      and "if-modified-since" not in r]
        if not last or plain_ones:
            cache_problems.append("the stale entry was not revalidated: second shim run sent "
                                  "%r" % (last,))
    for root, dirs, names in os.walk(home):
        for n in dirs + names:
            path = os.path.join(root, n)
            # What the shim creates below XDG_CACHE_HOME (the harness made that folder).
            if (path.startswith(os.path.join(home, "cache", "")) or n.endswith(".log")) \
                    and os.stat(path).st_mode & 0o077:
                cache_problems.append("%s is not owner-only (mode %o)" % (
                    os.path.relpath(path, home), os.stat(path).st_mode & 0o777))
        for n in names:
            with open(os.path.join(root, n), "rb") as f:
                data = f.read()
            for secret in case.secrets:
                if secret in data:
                    cache_problems.append("secret %r stored in clear in %s"
                                          % (secret, os.path.relpath(os.path.join(root, n),
                                                                     home)))
    return problems, cache_problems, three.note(), base


def main():
    parser = harness.arguments(__doc__)
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--part", help="K/N: only every N-th case from the K-th (1-based), "
                        "to split the corpus over several ctest tests")
    args = parser.parse_args()
    cases = corpus()
    if args.list:
        for c in cases:
            print(c.name)
        return 0
    cases = harness.only(cases, args.only, lambda c: c.name)
    if args.part:
        k, n = (int(x) for x in args.part.split("/"))
        cases = cases[k - 1::n]
    if args.self_check:
        cases = [c for c in cases if c.name in ("get_to_stdout", "write_out_variables",
                                                 "https_with_cacert")]
    if shutil.which("curl") is None:
        print("FAIL: no curl program on PATH")
        return 1
    shim = harness.shim_or_skip(args.shim, args.harness_only or args.self_check)
    report = harness.Report(shim, args.self_check)
    with harness.Scratch(keep=args.keep) as scratch:
        with harness.Origin(scratch) as origin, \
                harness.Origin(scratch, tls=True) as tls_origin:
            for case in cases:
                problems, cache, note, where = run_case(case, scratch, origin, tls_origin,
                                                        shim, args.self_check)
                report.case(case.name, "curl -s " + " ".join(case.args), problems, cache,
                            note, where)
        if report.failed and not args.keep and not args.self_check:
            print("(rerun with --keep --only NAME to keep the outputs)")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
