#!/usr/bin/env python3
"""pycurl through the shim: pycurl_client.py (GnuTLS libcurl, loaded RTLD_LOCAL by Python)
runs once without the shim and twice with it. Its stdout (header lines, body digests,
getinfo values) and exit code must be byte-identical, and the second shim run must be
answered from the cache.

    pycurl_hit.py --shim PATH [--keep] [--harness-only] [--self-check]

Exit status 0 pass, 1 fail, 77 shim not built. Needs a python3 with pycurl (Debian's
/usr/bin/python3 with python3-pycurl).
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CLIENT = os.path.join(harness.HERE, "pycurl_client.py")


def python_with_pycurl():
    for candidate in ("/usr/bin/python3", sys.executable):
        if os.path.exists(candidate) and subprocess.run(
                [candidate, "-c", "import pycurl"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL).returncode == 0:
            return candidate
    return None


def scenarios(http, https):
    """(name, client arguments, server, requests expected on the second shim run)."""
    b, s = http.base, https.base
    return [
        ("serial_reused_handle", [b + "/text", "follow:" + b + "/redirect/2",
                                  "gzip:" + b + "/gzip", "head:" + b + "/text",
                                  b + "/bytes/200000", b + "/bytes/0", "inm:" + b + "/text"],
         http, 0),
        ("four_threads_share_the_cache", ["--threads", "4"]
         + [b + "/bytes/%d" % (20000 + i) for i in range(12)]
         + ["follow:" + b + "/redirect/2", "gzip:" + b + "/gzip"], http, 0),
        ("cookie_engine_sees_cached_set_cookie", ["cookies:" + b + "/cookie"], http, 0),
        ("serial_fail_on_404_not_cached", ["fail:" + b + "/status/404", b + "/text"],
         http, 1),
        ("https_cainfo", ["--cainfo", https.cacert, s + "/text",
                          "follow+gzip:" + s + "/redirect/1"], https, 0),
        ("multi_perform_select", ["--multi", b + "/text", "follow:" + b + "/redirect/1",
                                  "gzip:" + b + "/gzip", b + "/bytes/70000"], http, 0),
    ]


def main():
    args = harness.arguments(__doc__).parse_args()
    python = python_with_pycurl()
    if python is None:
        print("FAIL: no python3 with pycurl (install python3-pycurl)")
        return 1
    shim = harness.shim_or_skip(args.shim, args.harness_only or args.self_check)
    report = harness.Report(shim, args.self_check)
    with harness.Scratch(keep=args.keep) as scratch:
        with harness.Origin(scratch) as http, harness.Origin(scratch, tls=True) as https:
            selected = harness.only(scenarios(http, https), args.only)
            if args.self_check:  # the injected difference changes /text URLs
                selected = [s for s in selected if any("/text" in a for a in s[1])]
            for name, client_args, server, expected in selected:
                base = os.path.join(scratch, name)
                env = harness.clean_env(os.path.join(base, "home"))
                argv = [python, CLIENT] + client_args
                shim_argv = None
                if args.self_check:
                    shim_argv = [a.replace("/text", "/bytes/127") for a in argv]
                three = harness.Three(base, argv, env, shim, server, shim_argv=shim_argv)
                cache = []
                if three.first_requests == 0:
                    cache.append("first shim run made no request on a fresh cache")
                if three.second_requests != expected:
                    cache.append("second shim run made %d request(s), expected %d"
                                 % (three.second_requests, expected))
                report.case(name, " ".join(client_args), three.differences(), cache,
                            three.note(), base)
    return report.finish("scenarios")


if __name__ == "__main__":
    sys.exit(main())
