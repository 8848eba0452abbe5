#!/usr/bin/env python3
"""The shim's benchmark: one run, everything side by side, medians and ratios.

    bench_shim.py --loop BUILD/bin/curl_loop --shim BUILD/lib/libcurlcache-preload.so
                  [--quick] [--json FILE] [--parts hits,miss,process]

1. In-process hits: curl_loop (sequential GETs on one libcurl handle) for bodies of 1 KiB,
   100 KiB and 1 MiB, against the origin directly, through nginx proxy_cache, varnish and
   squid serving hits, and under LD_PRELOAD=the shim with the SQLite, memory and Redis
   (a private redis-server on loopback) backends. The origin is nginx serving static files
   from a scratch folder. Every server is started here on a free loopback port with a
   generated minimal config and stopped by PID. The origin's access log tells how many
   requests reached it during each loop (a cache serving hits adds none).
2. Miss overhead (bench_miss.py): 10 MiB downloads of distinct URLs (every one a miss that
   the shim stores), shim and no shim in alternating processes, from the origin unthrottled
   on loopback (the no-network worst case; 1 KiB too) and rate-limited by nginx to link
   speeds (1 Gbit/s: the headline target; 2.5 and 10 Gbit/s when the limit holds); also
   SQLite with fast_save, the memory backend, the shim disabled and a floor (a plain
   program keeping one copy of the body), to show where the extra time goes; and whole
   `curl` processes, a miss each, at 1 Gbit/s.
3. Process level: `curl -s -o /dev/null URL` with the shim (a hit), disabled, and without
   (origin), curl reading a file:// URL (the floor: no network at all), and the cost of
   preloading the shim into /bin/true; alternating runs (posix_spawn), wall and CPU time.
Targets (issue 11): in-process SQLite 1 KiB hit <= 5 us median and <= 15,000 instructions
(callgrind), memory <= 2 us, SQLite 1 MiB <= 80 us; a curl hit process <= 0.85x the same curl
against the loopback origin, with the shim disabled <= 1.02x, /bin/true <= +0.1 ms; 10 MiB
miss overhead <= 3 % (headline: SQLite at the 1 Gbit/s origin).
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # the benchmark leaves nothing in the source tree
from bench_common import BIG, SIZES, Server, alternating_runs, await_port, clean_env, fmt, \
    free_port, origin_requests, run_loop  # noqa: E402
from bench_miss import miss_overhead, nginx_locations  # noqa: E402

OLD = 1577836800  # files dated 2020: no heuristic freshness surprises in the proxies


def start_nginx(d, origin_port, cache_port):
    user = "user root;" if os.geteuid() == 0 else ""
    for sub in ("tmp", "ncache"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""%(user)s
worker_processes 1;
daemon off;
pid %(d)s/nginx.pid;
error_log %(d)s/nginx-error.log warn;
events { worker_connections 512; }
http {
  default_type application/octet-stream;
  client_body_temp_path %(d)s/tmp/body;
  proxy_temp_path %(d)s/tmp/proxy;
  fastcgi_temp_path %(d)s/tmp/fastcgi;
  uwsgi_temp_path %(d)s/tmp/uwsgi;
  scgi_temp_path %(d)s/tmp/scgi;
  sendfile on;
  keepalive_requests 1000000;
  proxy_cache_path %(d)s/ncache levels=1:2 keys_zone=bench:10m max_size=2g inactive=1h
                   use_temp_path=off;
  upstream origin { server 127.0.0.1:%(origin)d; keepalive 8; }
  server {   # the origin: static files
    listen 127.0.0.1:%(origin)d;
    access_log %(d)s/origin-access.log;
    root %(d)s/www;
    expires 1h;
%(limited)s  }
  server {   # nginx proxy_cache in front of it
    listen 127.0.0.1:%(cache)d;
    access_log off;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      proxy_cache_valid 200 1h;
    }
  }
}
""" % dict(user=user, d=d, origin=origin_port, cache=cache_port,
           limited=nginx_locations(os.path.join(d, "www"))))
    srv = Server("nginx", ["nginx", "-p", d, "-c", conf], origin_port, d)
    srv.ok = srv.ok and await_port(cache_port, srv.proc)
    return srv


def start_varnish(d, origin_port, port):
    work = os.path.join(d, "varnish")
    os.makedirs(work, exist_ok=True)
    return Server("varnish", ["varnishd", "-F", "-j", "none", "-n", work,
                              "-a", "127.0.0.1:%d" % port, "-b", "127.0.0.1:%d" % origin_port,
                              "-s", "malloc,256m", "-p", "default_ttl=3600"], port, d)


def start_squid(d, port):
    work = os.path.join(d, "squid")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o777)  # squid drops to its own user for logs
    conf = os.path.join(work, "squid.conf")
    with open(conf, "w") as f:
        f.write("""http_port 127.0.0.1:%(port)d
visible_hostname bench.local
acl local src 127.0.0.1
http_access allow local
http_access deny all
cache_mem 256 MB
maximum_object_size_in_memory 16 MB
maximum_object_size 16 MB
memory_cache_mode always
pid_filename %(w)s/squid.pid
access_log none
cache_store_log none
cache_log %(w)s/cache.log
coredump_dir %(w)s
refresh_pattern . 60 20%% 4320
shutdown_lifetime 0 seconds
""" % dict(port=port, w=work))
    return Server("squid", ["squid", "-N", "-f", conf], port, d)


def make_files(d):
    www = os.path.join(d, "www")
    os.makedirs(www)
    for _, name, size in SIZES + [BIG]:
        path = os.path.join(www, name)
        with open(path, "wb") as f:
            f.write(os.urandom(size))
        os.utime(path, (OLD, OLD))


def start_redis(d, port):
    """A private redis-server for the "shim redis" column: no persistence, loopback only."""
    return Server("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--dir", d], port, d)


def in_process(args, d, servers, results):
    nginx, varnish, squid, redis = servers
    base = "http://127.0.0.1:%d/" % nginx.port
    shim_envs = {
        "shim sqlite": clean_env(d, {"LD_PRELOAD": args.shim, "CURLCACHE_BACKEND": "sqlite",
                                     "CURLCACHE_NAME": os.path.join(d, "bench.sqlite")}),
        "shim memory": clean_env(d, {"LD_PRELOAD": args.shim, "CURLCACHE_BACKEND": "memory"}),
        "shim redis": clean_env(d, {"LD_PRELOAD": args.shim, "CURLCACHE_BACKEND": "redis",
                                    "CURLCACHE_REDIS_URL": "redis://127.0.0.1:%d/0" % redis.port,
                                    "CURLCACHE_NAME": "bench"}),
    }
    plain = clean_env(d)
    columns = [("origin", base, None, plain, nginx.ok),
               ("nginx cache", "http://127.0.0.1:%d/" % nginx.cache_port, None, plain,
                nginx.ok),
               ("varnish", "http://127.0.0.1:%d/" % varnish.port, None, plain, varnish.ok),
               ("squid", base, "http://127.0.0.1:%d" % squid.port, plain, squid.ok),
               ("shim sqlite", base, None, shim_envs["shim sqlite"], nginx.ok),
               ("shim memory", base, None, shim_envs["shim memory"], nginx.ok),
               ("shim redis", base, None, shim_envs["shim redis"], nginx.ok and redis.ok)]
    counts = {"1 KiB": 2000, "100 KiB": 500, "1 MiB": 150}
    if args.quick:
        counts = {k: max(20, v // 10) for k, v in counts.items()}
    table = {}
    for label, name, size in SIZES:
        row = {}
        for col, url, proxy, env, ok in columns:
            if not ok:
                row[col] = (None, "server did not start", None)
                continue
            before = origin_requests(d)
            med, err = run_loop(args.loop, url + name, counts[label], size, env, proxy)
            row[col] = (med, err, origin_requests(d) - before)
        table[label] = row
    results["in_process_median_us"] = {
        s: {c: v[0] for c, v in row.items()} for s, row in table.items()}
    results["in_process_origin_requests"] = {
        s: {c: v[2] for c, v in row.items()} for s, row in table.items()}
    cols = [c[0] for c in columns]
    print("1. In-process: sequential GETs on one libcurl handle, median per transfer")
    print("   (in brackets: requests that reached the origin during the loop, warm-up incl.)")
    print("   %-8s" % "body" + "".join("%18s" % c for c in cols))
    errors = []
    for label, _, _ in SIZES:
        cells = []
        for c in cols:
            med, err, n = table[label][c]
            if med is None:
                cells.append("%18s" % "failed")
                errors.append("%s / %s: %s" % (label, c, err))
            else:
                cells.append("%18s" % ("%s [%s]" % (fmt(med), n)))
        print("   %-8s" % label + "".join(cells))
    print("   ratios (origin / column, higher = faster than the origin):")
    for label, _, _ in SIZES:
        o = table[label]["origin"][0]
        cells = ["%18s" % ("%.1fx" % (o / table[label][c][0]) if o and table[label][c][0]
                           else "-") for c in cols]
        print("   %-8s" % label + "".join(cells))
    seen = set()
    for e in errors:
        why = e.split(": ", 1)[1]
        if why not in seen:
            seen.add(why)
            print("   failed (%s): %s" % (e.split(": ", 1)[0], why))
    targets = [("shim sqlite", "1 KiB", 5.0), ("shim memory", "1 KiB", 2.0),
               ("shim sqlite", "1 MiB", 80.0)]
    results["in_process_targets"] = {}
    for col, size, limit in targets:
        med = table[size][col][0]
        verdict = "-" if med is None else ("met" if med <= limit else "NOT met")
        results["in_process_targets"]["%s %s <= %g us" % (col, size, limit)] = verdict
        print("   target %s %s hit <= %.0f us: %s (%s; origin %s, nginx cache %s)"
              % (col, size, limit, verdict, fmt(med), fmt(table[size]["origin"][0]),
                 fmt(table[size]["nginx cache"][0])))
    instructions_per_hit(args, d, base, shim_envs, results)
    print()


def instructions_per_hit(args, d, base, shim_envs, results):
    """Instructions per in-process 1 KiB hit: callgrind of curl_loop under the shim, the
    difference between N = 1100 and N = 100 transfers over 1000 (start-up cancels out). Two
    figures from the same runs: the timed transfer (curl_loop's transfer(): the program's
    setopt of its URL and WRITEDATA, perform and getinfo, the window its microseconds time;
    the target is judged on it) and the whole loop (also its clock readings and the sort of
    its timings, ~450 per transfer). The plain loop against the origin is counted the same
    way, beside it."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        print("   instructions per hit: valgrind is not installed (scripts/install-deps.sh)")
        return
    lo, hi = (20, 220) if args.quick else (100, 1100)

    def count(env, n, tag):
        """(whole run, inside transfer()) instructions, or None."""
        out = os.path.join(d, "callgrind-%s-%d.out" % (tag, n))
        p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                            args.loop, "-n", str(n), "-w", "2", "-e", "1024", base + "1k.bin"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=600)
        if p.returncode != 0:
            return None
        total = None
        with open(out) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    total = int(line.split()[1])
                    break
        annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", out],
                                   capture_output=True, text=True).stdout
        inside = None
        for line in annotated.splitlines():
            # transfer() as compiled (GCC may clone it: transfer.constprop.0, .isra.0).
            m = re.match(r"\s*([\d,]+) .*curl_loop\.c:transfer(\.[a-z]+\.\d+)? \[", line)
            if m:
                inside = int(m.group(1).replace(",", ""))
                break
        return None if total is None or inside is None else (total, inside)

    counts, loops = {}, {}
    for tag, env in (("origin", clean_env(d)), ("shim sqlite", shim_envs["shim sqlite"]),
                     ("shim memory", shim_envs["shim memory"])):
        a, b = count(env, lo, tag.replace(" ", "-")), count(env, hi, tag.replace(" ", "-"))
        counts[tag] = None if a is None or b is None else (b[1] - a[1]) / (hi - lo)
        loops[tag] = None if a is None or b is None else (b[0] - a[0]) / (hi - lo)
    results["instructions_per_1k_transfer"] = counts
    results["instructions_per_1k_loop_iteration"] = loops

    def fmt_count(v):
        return "-" if v is None else "{:,.0f}".format(v)

    print("   instructions per 1 KiB transfer (callgrind, N=%d minus N=%d), the timed transfer: %s"
          % (hi, lo, ", ".join("%s %s" % (k, fmt_count(v)) for k, v in counts.items())))
    print("   the whole loop iteration (with the loop's clock readings and sort): %s"
          % ", ".join("%s %s" % (k, fmt_count(v)) for k, v in loops.items()))
    v = counts["shim sqlite"]
    verdict = "-" if v is None else ("met" if v <= 15000 else "NOT met")
    print("   target shim sqlite 1 KiB hit <= 15,000 instructions: %s (%s; the plain libcurl"
          " transfer from the origin: %s)" % (verdict, fmt_count(v), fmt_count(counts["origin"])))


def empty_shared_object(d):
    """Builds an empty shared object in d (the floor of preloading); None without a C compiler."""
    source, library = os.path.join(d, "empty.c"), os.path.join(d, "libempty.so")
    with open(source, "w") as f:
        f.write("int bench_empty_marker;\n")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or subprocess.run([compiler, "-shared", "-fPIC", "-o", library, source],
                                          stderr=subprocess.DEVNULL).returncode != 0:
        print("note: no C compiler: the empty-.so floor is left out")
        return None
    return library


def process_level(args, d, nginx, results):
    url = "http://127.0.0.1:%d/1k.bin" % nginx.port
    curl = ["curl", "-s", "--noproxy", "*", "-o", "/dev/null", url]
    floor = ["curl", "-s", "-o", "/dev/null", "file://" + os.path.join(d, "www", "1k.bin")]
    shim = {"LD_PRELOAD": args.shim}
    sqlite_env = dict(shim, CURLCACHE_NAME=os.path.join(d, "proc.sqlite"))
    fast_env = dict(shim, CURLCACHE_NAME=os.path.join(d, "proc-fast.sqlite"),
                    CURLCACHE_SQLITE_FAST_SAVE="1")
    variants = [  # (label, argv, extra environment, must be a hit)
        ("curl, origin", curl, {}, False),
        ("curl, shim hit (sqlite)", curl, sqlite_env, True),
        ("curl, shim hit (sqlite fast_save)", curl, fast_env, True),
        ("curl, shim disabled", curl, dict(shim, CURLCACHE_DISABLE="1"), False),
        ("curl, file:// (no network: floor)", floor, {}, False),
        ("/bin/true", ["/bin/true"], {}, False),
        ("/bin/true, shim preloaded", ["/bin/true"], shim, False),
    ]
    if args.baseline_shim:  # before/after in the same rounds
        old = {"LD_PRELOAD": os.path.abspath(args.baseline_shim)}
        variants += [
            ("curl, baseline shim hit (sqlite)", curl,
             dict(old, CURLCACHE_NAME=os.path.join(d, "proc-baseline.sqlite")), True),
            ("curl, baseline shim disabled", curl, dict(old, CURLCACHE_DISABLE="1"), False),
            ("/bin/true, baseline shim preloaded", ["/bin/true"], old, False),
        ]
    # The floor of preloading anything: an empty shared object in LD_PRELOAD (the dynamic
    # linker maps it and looks in it first for every symbol of the program).
    empty = empty_shared_object(d)
    if empty:
        variants += [
            ("curl, empty .so preloaded (floor)", curl, {"LD_PRELOAD": empty}, False),
            ("/bin/true, empty .so preloaded", ["/bin/true"], {"LD_PRELOAD": empty}, False),
        ]
    hit_notes = {}
    for label, argv, extra, hit in variants:
        if hit:
            env = clean_env(d, extra)
            prime = subprocess.run(argv, env=env, stderr=subprocess.PIPE)
            before = origin_requests(d)
            check = subprocess.run(argv, env=env, stderr=subprocess.PIPE)
            if check.returncode != 0 or origin_requests(d) != before:
                hit_notes[label] = "NOT a hit: %s" % (
                    (prime.stderr + check.stderr).decode(errors="replace").strip()[:80]
                    or "the origin was reached")
    rounds = 20 if args.quick else 100
    before = origin_requests(d)
    wall, cpu = alternating_runs([(v[1], clean_env(d, v[2])) for v in variants], rounds)
    meds = [statistics.median(w) for w in wall]
    cpus = [statistics.median(c) for c in cpu]
    origin_hits = origin_requests(d) - before

    def ratio(i, j):  # median over rounds of variant i / variant j in the same round
        return statistics.median(a / b for a, b in zip(wall[i], wall[j]))

    def extra_ms(i, j):
        return statistics.median(a - b for a, b in zip(wall[i], wall[j]))

    def cpu_ratio(i, j):
        return statistics.median(a / b for a, b in zip(cpu[i], cpu[j]) if b > 0)

    results["process_ms"] = {v[0]: m for v, m in zip(variants, meds)}
    results["process_cpu_ms"] = {v[0]: c for v, c in zip(variants, cpus)}
    print("3. Process level: wall and CPU time per run (alternating runs, medians of %d; ratio:"
          % rounds)
    print("   median over rounds of the run / the no-shim run of the same round)")
    for i, (label, _, _, _) in enumerate(variants):
        ref = 0 if label.startswith("curl") else 5
        note = hit_notes.get(label, "")
        if label.startswith("/bin/true,"):
            note = "%+.3f ms, cpu %+.3f ms" % (extra_ms(i, 5), cpus[i] - cpus[5])
        print("   %-36s %10s  cpu %9s  %5.2fx (cpu %5.2fx)%s" % (
            label, fmt(meds[i], "ms"), fmt(cpus[i], "ms"), ratio(i, ref), cpu_ratio(i, ref),
            "  " + note if note else ""))
    targets = [
        ("curl hit (sqlite) <= 0.85x curl from the loopback origin without the shim",
         ratio(1, 0), 0.85, "%.3fx", "hit %s, origin %s; CPU %.3fx" % (
             fmt(meds[1], "ms"), fmt(meds[0], "ms"), cpu_ratio(1, 0))),
        ("curl with the shim loaded but disabled <= 1.02x without it", ratio(3, 0), 1.02,
         "%.3fx", "disabled %s, origin %s; CPU %.3fx" % (
             fmt(meds[3], "ms"), fmt(meds[0], "ms"), cpu_ratio(3, 0))),
        ("a process that never uses libcurl (/bin/true) <= +0.1 ms", extra_ms(6, 5), 0.1,
         "%+.3f ms", "%s with the shim, %s without" % (fmt(meds[6], "ms"), fmt(meds[5], "ms"))),
    ]
    results["process_targets"] = {}
    for what, value, limit, form, side in targets:
        verdict = "met" if value <= limit else "NOT met"
        results["process_targets"][what] = {"value": value, "limit": limit, "verdict": verdict}
        print("   target %s: %s (%s; %s)" % (what, verdict, form % value, side))
    labels = [v[0] for v in variants]
    if empty:
        fc, ft = labels.index("curl, empty .so preloaded (floor)"), \
            labels.index("/bin/true, empty .so preloaded")
        print("   floor of any preload (an empty .so): curl %.3fx the no-shim run (CPU %.3fx), "
              "/bin/true %+.3f ms (cpu %+.3f ms); against it, the shim disabled: curl %.3fx "
              "(CPU %.3fx), /bin/true %+.3f ms (cpu %+.3f ms)" % (
                  ratio(fc, 0), cpu_ratio(fc, 0), extra_ms(ft, 5), cpus[ft] - cpus[5],
                  ratio(3, fc), cpu_ratio(3, fc), extra_ms(6, ft), cpus[6] - cpus[ft]))
        results["process_floor"] = {
            "curl_empty_so_vs_none": ratio(fc, 0), "curl_empty_so_vs_none_cpu": cpu_ratio(fc, 0),
            "disabled_vs_empty_so": ratio(3, fc), "disabled_vs_empty_so_cpu": cpu_ratio(3, fc),
            "true_empty_so_ms": extra_ms(ft, 5), "true_shim_vs_empty_so_ms": extra_ms(6, ft)}
    print("   floor: curl reading the same 1 KiB from a file:// URL (no network, no cache) is "
          "%.3fx the origin run (CPU %.3fx):" % (ratio(4, 0), cpu_ratio(4, 0)))
    expected = rounds * sum(1 for v in variants if v[1] is curl and not v[3])
    print("   a hit that does no work at all cannot go below it. Origin requests during the runs:"
          " %d (expected %d: the runs that are no hits)" % (origin_hits, expected))
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loop", required=True, help="the curl_loop program")
    parser.add_argument("--shim", required=True, help="libcurlcache-preload.so")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--baseline-shim", help="process level: also this (older) shim, "
                        "in the same rounds (before/after)")
    parser.add_argument("--parts", default="hits,miss,process",
                        help="which parts to run (default: hits,miss,process)")
    args = parser.parse_args()
    unknown = set(args.parts.split(",")) - {"hits", "miss", "process"}
    if unknown:
        parser.error("unknown part(s): %s" % ", ".join(sorted(unknown)))
    args.shim = os.path.abspath(args.shim)
    if not os.path.isfile(args.shim):
        print("bench-shim: %s is missing (build curlcache-preload)" % args.shim)
        return 1
    t0 = time.monotonic()
    results = {}
    d = tempfile.mkdtemp(prefix="curlcache-bench-shim-")
    os.chmod(d, 0o755)
    servers = []
    try:
        make_files(d)
        origin_port, cache_port = free_port(), free_port()
        nginx = start_nginx(d, origin_port, cache_port)
        nginx.cache_port = cache_port
        servers.append(nginx)
        if not nginx.ok:
            print("bench-shim: nginx did not start: %s" % nginx.why())
            return 1
        varnish = start_varnish(d, origin_port, free_port())
        squid = start_squid(d, free_port())
        redis = start_redis(d, free_port())
        servers += [varnish, squid, redis]
        for s in (varnish, squid, redis):
            if not s.ok:
                print("note: %s did not start (%s); its column is empty" % (s.name, s.why()))
        print("curlcache shim benchmark (%s, %d cores)\n" % (os.uname().release,
                                                            os.cpu_count()))
        parts = args.parts.split(",")
        if "hits" in parts:
            in_process(args, d, (nginx, varnish, squid, redis), results)
        if "miss" in parts:
            miss_overhead(args, d, nginx, results)
        if "process" in parts:
            process_level(args, d, nginx, results)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(d, ignore_errors=True)
    print("total %.0f s" % (time.monotonic() - t0))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
