#!/usr/bin/env python3
"""multi_client (a plain libcurl C program) through the shim, in every transfer style the
shim must emulate on a hit: curl_easy_perform on a reused handle, multi_perform with
multi_wait, multi_poll, multi_fdset + select, and multi_socket_action; and with the
callbacks programs use to stop a transfer (write, header and progress callbacks returning
an abort value) or CURLOPT_HEADER. Each runs without the shim, then twice with it; stdout
and exit code must be byte-identical and the second shim run a hit. A multi loop that
blocks when only hits remain shows in the output (multi_client reports loops over 2 s).

    multi_styles.py --client PATH --shim PATH [--only NAME,...] [--keep] [--harness-only]
                    [--self-check]

Exit status 0 pass, 1 fail, 77 shim not built.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

URLS = ["/text", "/redirect/2", "/bytes/100000", "/gzip"]


def cases():
    """(name, style argument, url paths, primed with the plain easy style, hit expected)"""
    out = [("%s_style" % s, s, URLS, False, True)
           for s in ("easy", "wait", "poll", "fdset", "socket")]
    out += [
        ("easy_header_in_body", "easy,header-in-body", URLS, False, True),
        ("dup_template_handles", "dup", URLS, False, True),
        ("easy_header_lists_freed_after_use", "easy,headers", URLS, False, True),
        ("dup_header_lists_freed_after_use", "dup,headers,gzip", URLS, False, True),
        ("wait_header_in_body", "wait,header-in-body", URLS, False, True),
        ("easy_gzip", "easy,gzip", ["/gzip", "/text"], False, True),
        ("socket_gzip_header_in_body", "socket,gzip,header-in-body", ["/gzip"], False, True),
        ("easy_write_abort_on_hit", "easy,abort-write", URLS, True, True),
        ("wait_write_abort_on_hit", "wait,abort-write", URLS, True, True),
        ("easy_header_abort_on_hit", "easy,abort-header", URLS, True, True),
        ("easy_progress_abort_on_hit", "easy,abort-progress", ["/text", "/bytes/100000"],
         True, True),
        ("socket_progress_abort_on_hit", "socket,abort-progress", ["/text", "/bytes/100000"],
         True, True),
        ("easy_write_pause_on_hit", "easy,pause", URLS, True, True),
        ("wait_write_pause_on_hit", "wait,pause", URLS, True, True),
        ("socket_write_pause_on_hit", "socket,pause", URLS, True, True),
        ("fdset_write_pause", "fdset,pause", URLS, False, True),
        ("easy_redirect_not_followed", "easy,nofollow", ["/redirect/1", "/text"], False,
         None),
    ]
    return out


def main():
    parser = harness.arguments(__doc__)
    parser.add_argument("--client", required=True, help="the multi_client program")
    args = parser.parse_args()
    args.client = os.path.abspath(args.client)
    if not os.path.isfile(args.client):
        print("FAIL: no multi_client at %s" % args.client)
        return 1
    shim = harness.shim_or_skip(args.shim, args.harness_only or args.self_check)
    selected = harness.only(cases(), args.only)
    if args.self_check:
        selected = selected[:5]
    report = harness.Report(shim, args.self_check)
    with harness.Scratch(keep=args.keep) as scratch:
        with harness.Origin(scratch) as origin:
            for name, style, paths, primed, hit in selected:
                base = os.path.join(scratch, name)
                env = harness.clean_env(os.path.join(base, "home"))
                urls = [origin.base + p for p in paths]
                argv = [args.client, style] + urls
                prime = [[args.client, "easy"] + urls] if primed else []
                shim_argv = None
                if args.self_check:
                    shim_argv = [args.client, style] + [u.replace("/text", "/bytes/127")
                                                        for u in urls]
                three = harness.Three(base, argv, env, shim, origin, prime=prime,
                                      shim_argv=shim_argv)
                cache = []
                if not primed and three.first_requests == 0:
                    cache.append("first shim run made no request on a fresh cache")
                if hit and three.second_requests != 0:
                    cache.append("second shim run made %d request(s), expected a hit"
                                 % three.second_requests)
                report.case(name, "multi_client %s %s" % (style, " ".join(paths)),
                            three.differences(), cache, three.note(), base)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
