#!/usr/bin/env python3
"""The shim leaves the program's own SQLite alone. The engine links a private copy of SQLite
(statically, hidden) and configures it before its first use: no memory statistics, its own
allocator (backends/sqlite_private.cpp). Programs that link libsqlite3 and libcurl in one
process (Python with sqlite3 and pycurl, PHP, R, GDAL) must not see any of that: their
sqlite3_config calls still succeed after the transfers, their allocator sees no call from
the engine, their memory statistics stay on and unchanged by the transfers.

Each scenario runs once without the shim and twice with it (scratch cache, the default
SQLite backend); stdout and exit code must be byte-identical, the second shim run a hit,
and the facts below are checked by name in every run, so that a failure says what broke:
  c_plain             sqlite_client plain: SQLite untouched until after the transfers
  c_counting_malloc   sqlite_client count: a counting SQLITE_CONFIG_MALLOC and
                      SQLITE_CONFIG_MEMSTATUS 1 installed before any libcurl call
  python_sqlite3_pycurl  /usr/bin/python3, `import sqlite3, pycurl`, sqlite_pycurl_client.py
  python_pycurl_then_sqlite3  the same with sqlite3 imported after the transfers: the
                      transfers must not have loaded libsqlite3.so.0

    program_sqlite.py --client PATH --shim PATH [--only NAME,...] [--keep] [--harness-only]
                      [--self-check]

--self-check gives the shim runs the "sabotage" argument (the program does to its own
SQLite, right after its first transfer, what an engine sharing it would do): a case passes
only if both the named facts and the byte comparison report the difference.
Exit status 0 pass, 1 fail, 77 shim not built.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from pycurl_hit import python_with_pycurl  # noqa: E402

PY_CLIENT = os.path.join(harness.HERE, "sqlite_pycurl_client.py")
PATHS = ["/text", "/redirect/2", "/bytes/100000", "/gzip"]

# Lines every run of the program must print; what each one means when it is missing.
UNTOUCHED = [
    ("SQLite allocations outstanding across the transfers: unchanged",
     "something allocated through the program's SQLite during the transfers"),
    ("sqlite3_memory_used() across the transfers: unchanged",
     "the program's SQLite memory in use changed during the transfers"),
    ("sqlite3_memory_used() > 0 with a database open: yes",
     "the program's SQLite memory statistics are off (SQLITE_CONFIG_MEMSTATUS changed)"),
]
C_FACTS = UNTOUCHED + [
    ("config MULTITHREAD after the transfers: 0",
     "the program's SQLite was initialised by someone else: its sqlite3_config is refused"),
    ("open :memory:: 0", "the program could not open a database"),
    ("select: 0", "the program's query failed"),
    ("row: id=3 name=fig weight=0.1", "the program's rows are not what it wrote"),
    ("close: 0", "the program's database did not close cleanly"),
    ("sqlite3_shutdown: 0", "the program's SQLite did not shut down cleanly"),
]
COUNT_FACTS = C_FACTS + [
    ("config GETMALLOC before the transfers: 0", "SQLITE_CONFIG_GETMALLOC refused"),
    ("config MALLOC (counting) before the transfers: 0", "SQLITE_CONFIG_MALLOC refused"),
    ("config MEMSTATUS 1 before the transfers: 0", "SQLITE_CONFIG_MEMSTATUS refused"),
    ("counting allocator called during the transfers: never",
     "the engine allocated through the program's SQLite allocator"),
    ("counting allocator called during the program's own SQLite work: yes",
     "the program's allocator was replaced"),
]
PY_WORK = [
    ("row: (3, 'fig', 0.1)", "the program's rows are not what it wrote"),
    ("sqlite3_memory_used() > 0 with a database open: yes",
     "the program's SQLite memory statistics are off (SQLITE_CONFIG_MEMSTATUS changed)"),
]
PY_FACTS = UNTOUCHED + PY_WORK
PY_LATE_FACTS = PY_WORK + [
    ("libsqlite3.so.0 loaded by the transfers: no",
     "the transfers loaded the shared libsqlite3 (the engine links it: it is not private)"),
]


def scenarios(client, python):
    """(name, argv without the URLs, argv of the self-check's shim runs, facts)"""
    out = [
        ("c_plain", [client, "plain"], [client, "plain,sabotage"], C_FACTS),
        ("c_counting_malloc", [client, "count"], [client, "count,sabotage"], COUNT_FACTS),
    ]
    if python:
        out.append(("python_sqlite3_pycurl", [python, PY_CLIENT],
                    [python, PY_CLIENT, "--sabotage"], PY_FACTS))
        out.append(("python_pycurl_then_sqlite3", [python, PY_CLIENT, "--late-import"],
                    [python, PY_CLIENT, "--late-import", "--sabotage"], PY_LATE_FACTS))
    return out


def missing_facts(label, result, facts):
    lines = set(result.stdout.decode(errors="replace").splitlines())
    out = ["%s: %s (no line %r)" % (label, meaning, line)
           for line, meaning in facts if line not in lines]
    if result.code != 0:
        out.append("%s: exit code %d" % (label, result.code))
    return out


def main():
    parser = harness.arguments(__doc__)
    parser.add_argument("--client", required=True, help="the sqlite_client program")
    args = parser.parse_args()
    args.client = os.path.abspath(args.client)
    if not os.path.isfile(args.client):
        print("FAIL: no sqlite_client at %s" % args.client)
        return 1
    python = python_with_pycurl()
    if python is None:
        print("FAIL: no python3 with pycurl (install python3-pycurl)")
        return 1
    shim = harness.shim_or_skip(args.shim, args.harness_only or args.self_check)
    report = harness.Report(shim, args.self_check)
    with harness.Scratch(keep=args.keep) as scratch:
        with harness.Origin(scratch) as origin:
            urls = [origin.base + p for p in PATHS]
            for name, argv, sabotage_argv, facts in harness.only(scenarios(args.client, python),
                                                                 args.only):
                base = os.path.join(scratch, name)
                env = harness.clean_env(os.path.join(base, "home"))
                shim_argv = sabotage_argv + urls if args.self_check else None
                three = harness.Three(base, argv + urls, env, shim, origin,
                                      shim_argv=shim_argv)
                found = []
                for label, result in (("without shim", three.plain),
                                      ("first shim run (miss)", three.first),
                                      ("second shim run (hit)", three.second)):
                    found += missing_facts(label, result, facts)
                differences = three.differences()
                cache = []
                if three.first_requests == 0:
                    cache.append("first shim run made no request on a fresh cache")
                if three.second_requests != 0:
                    cache.append("second shim run made %d request(s), expected a hit"
                                 % three.second_requests)
                # The hit came from the engine's SQLite (the default backend), so that copy
                # really ran in the program's process.
                if not os.path.isfile(os.path.join(env["XDG_CACHE_HOME"], "curlcache",
                                                   "http_cache.sqlite")):
                    cache.append("no SQLite cache file: the engine's SQLite never ran")
                if args.self_check:
                    # Detected only when the named facts and the byte comparison both see it.
                    problems = found + differences if found and differences else []
                    cache = []
                else:
                    problems = found + differences
                report.case(name, " ".join(os.path.basename(a) for a in argv) + " URLs",
                            problems, cache, three.note(), base)
    return report.finish("scenarios")


if __name__ == "__main__":
    sys.exit(main())
