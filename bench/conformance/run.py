#!/usr/bin/env python3
"""Score curlcache against the HTTP cache conformance suite http-tests/cache-tests
(the suite behind https://cache-tests.fyi).

    bench/conformance/run.py --suite /path/to/cache-tests [--json results.json]

What it does: starts the suite's own origin server (127.0.0.1, a free port), then for each
selection starts adapter.py (a reverse proxy whose every request is one fresh libcurl easy
handle) under LD_PRELOAD=libcurlcache-preload.so with a fresh, private cache, runs the
suite's own client engine against the adapter (drive.mjs), and scores the results with the
suite's own classification (dependencies honoured). Servers are stopped by their PID.

Selections (the suite's own, see drive.mjs): `shared` = the 365 tests its command-line
client runs against a proxy (all but browser_only), with CURLCACHE_CACHE_TYPE=shared;
`private` = the 300 tests it runs in a browser (all but cdn_only and browser_skip), with
CURLCACHE_CACHE_TYPE=private.

Targets (what the suite measures against them is printed; --enforce exits 1 below them):
shared >= 220 of 365 passing with <= 8 required failures; private >= 190 of 300.

The suite is not part of this repository: get it with
    git clone https://github.com/http-tests/cache-tests.git && (cd cache-tests && npm install)
and pass its folder with --suite or CACHE_TESTS_DIR. Without it (or without Node >= 18 or
pycurl) the runner says so and exits 77 (skipped).

Fidelity: `--targets direct,disabled` runs the suite straight at its origin (no cache at
all) and through the adapter with the shim loaded but CURLCACHE_DISABLE=1; both must score
alike, which shows that the adapter itself neither caches nor changes what it forwards.
"""

import argparse
import collections
import datetime
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SKIP = 77
TARGETS = {"shared": (220, 365, 8), "private": (190, 300, None)}
PASSING = {"pass", "yes"}          # the suite's passTypes (results.mjs)
# column order of the per-group table: the suite's result types
COLUMNS = [("pass", "pass"), ("yes", "yes"), ("fail", "fail"), ("optional_fail", "opt"),
           ("no", "no"), ("dependency_fail", "dep"), ("setup_fail", "setup"),
           ("harness_fail", "harness"), ("retry", "retry"), ("untested", "untested")]


def skip(msg):
    print(f"conformance: SKIPPED: {msg}", file=sys.stderr)
    sys.exit(SKIP)


def git_short(path):
    try:
        return subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def git_dirty(path, paths):
    try:
        out = subprocess.run(["git", "-C", path, "status", "--porcelain", "--"] + paths,
                             capture_output=True, text=True, check=True).stdout
        return bool(out.strip())
    except (OSError, subprocess.CalledProcessError):
        return False


def find_suite(arg):
    suite = arg or os.environ.get("CACHE_TESTS_DIR")
    if not suite:
        skip("the cache-tests suite is not given: pass --suite DIR or set CACHE_TESTS_DIR "
             "(git clone https://github.com/http-tests/cache-tests.git; cd cache-tests; "
             "npm install)")
    suite = os.path.abspath(suite)
    for rel in ("test-engine/client/runner.mjs", "test-engine/lib/results.mjs",
                "tests/index.mjs", "test-engine/server/server.mjs"):
        if not os.path.isfile(os.path.join(suite, rel)):
            skip(f"{suite} is not a checkout of http-tests/cache-tests (no {rel})")
    return suite


def check_node(suite, npm_install):
    node = shutil.which("node")
    if not node:
        skip("node (>= 18) is not installed; the suite runs on Node.js")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    m = re.match(r"v(\d+)", version.strip())
    if not m or int(m.group(1)) < 18:
        skip(f"node {version.strip()} is too old; the suite's client needs Node >= 18 (fetch)")
    if not os.path.isdir(os.path.join(suite, "node_modules", "undici")):
        if not npm_install or not shutil.which("npm"):
            skip(f"the suite's npm packages are missing: run `npm install` in {suite}")
        print(f"conformance: npm install in {suite} (its packages are missing)", file=sys.stderr)
        r = subprocess.run(["npm", "install", "--omit=dev", "--no-audit", "--no-fund"],
                           cwd=suite, stdout=sys.stderr)
        if r.returncode != 0:
            skip(f"npm install failed in {suite}")
    return node


def find_python_with_pycurl():
    for py in (sys.executable, "/usr/bin/python3"):
        if py and os.path.exists(py) and subprocess.run(
                [py, "-c", "import pycurl"], capture_output=True).returncode == 0:
            return py
    skip("no Python with pycurl (Debian: apt-get install python3-pycurl)")


def find_shim(arg):
    if arg:
        if not os.path.isfile(arg):
            sys.exit(f"conformance: no shim at {arg}")
        return os.path.abspath(arg)
    found = glob.glob(os.path.join(REPO, "build*", "lib", "libcurlcache-preload.so"))
    if not found:
        sys.exit("conformance: no build*/lib/libcurlcache-preload.so; build it (cmake --build "
                 "BUILD --target curlcache-preload) or pass --shim PATH")
    return max(found, key=os.path.getmtime)


def build_commit(rev, jobs):
    """Export REV with git archive and build only its shim, outside the work tree (which
    other engineers may be editing), into $XDG_CACHE_HOME/curlcache-conformance/SHA.
    A commit already built is reused."""
    try:
        sha = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", rev + "^{commit}"],
                             capture_output=True, text=True, check=True).stdout.strip()
    except subprocess.CalledProcessError:
        sys.exit(f"conformance: {rev} is not a commit of {REPO}")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    root = os.path.join(cache, "curlcache-conformance", sha)
    shim = os.path.join(root, "build", "lib", "libcurlcache-preload.so")
    if os.path.isfile(shim):
        return shim, sha
    src = os.path.join(root, "src")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(src, mode=0o700)
    print(f"conformance: building the shim of {sha} in {root}", file=sys.stderr, flush=True)
    archive = subprocess.Popen(["git", "-C", REPO, "archive", sha], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", src], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        sys.exit(f"conformance: git archive {sha} failed")
    build = os.path.join(root, "build")
    log = os.path.join(root, "build.log")
    with open(log, "wb") as f:
        ok = subprocess.run(["cmake", "-S", src, "-B", build], stdout=f,
                            stderr=subprocess.STDOUT).returncode == 0 and \
            subprocess.run(["cmake", "--build", build, "-j", str(jobs), "--target",
                            "curlcache-preload"], stdout=f, stderr=subprocess.STDOUT
                           ).returncode == 0
    if not ok or not os.path.isfile(shim):
        sys.exit(f"conformance: the shim of {sha} did not build; see {log}")
    return shim, sha


class Proc:
    """A child we started; stopped by its own PID (process group of its own)."""

    def __init__(self, name, argv, env, log_path, cwd=None):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self.log,
                                  stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, signal.SIGTERM)
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait()
            except ProcessLookupError:
                pass
        self.log.close()


def wait_for(pred, what, proc, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        value = pred()
        if value:
            return value
        if not proc.alive():
            break
        time.sleep(0.05)
    with open(proc.log_path, "rb") as f:
        tail = f.read()[-2000:].decode("utf-8", "replace")
    raise RuntimeError(f"{what} did not start; its output:\n{tail}")


def start_origin(node, suite, tmp):
    env = dict(os.environ, npm_config_port="0", npm_config_protocol="http",
               npm_config_pidfile=os.path.join(tmp, "origin.pid"))
    log = os.path.join(tmp, "origin.log")
    proc = Proc("origin", [node, os.path.join(HERE, "origin.mjs"), suite], env, log)

    def port():
        with open(log, "rb") as f:
            m = re.search(rb"Listening on http://127\.0\.0\.1:(\d+)/", f.read())
        return int(m.group(1)) if m else None
    return proc, wait_for(port, "the suite's origin server", proc)


def curlcache_env(base_env, target, selection, run_dir, shim, args):
    env = {k: v for k, v in base_env.items()
           if not k.startswith("CURLCACHE_") and k != "LD_PRELOAD"}
    if target in ("direct", "noshim"):
        return env
    # a fresh cache and no user config: nothing of the caller's setup leaks in
    empty = os.path.join(run_dir, "empty.toml")
    open(empty, "w").close()
    env.update({
        "LD_PRELOAD": shim,
        "CURLCACHE_CONFIG": empty,
        "XDG_CONFIG_HOME": os.path.join(run_dir, "xdg-config"),
        "XDG_CACHE_HOME": os.path.join(run_dir, "xdg-cache"),
        "CURLCACHE_BACKEND": args.backend,
        "CURLCACHE_NAME": os.path.join(run_dir, "cache.sqlite") if args.backend == "sqlite"
        else os.path.join(run_dir, "cache"),
        "CURLCACHE_CACHE_TYPE": selection,
        "CURLCACHE_HERMETIC": "0",
        "CURLCACHE_LOG_FILE": os.path.join(run_dir, "curlcache.log"),
    })
    if not args.no_age_header:
        env["CURLCACHE_AGE_HEADER"] = "1"
    if target == "disabled":
        env["CURLCACHE_DISABLE"] = "1"
    for kv in args.set:
        k, _, v = kv.partition("=")
        env[k] = v
    return env


def run_one(selection, target, ctx, args):
    run_dir = os.path.join(ctx["tmp"], f"{selection}-{target}")
    os.makedirs(run_dir)
    env = curlcache_env(os.environ, target, selection, run_dir, ctx["shim"], args)
    adapter = None
    try:
        if target == "direct":
            base = ctx["origin_url"]
        else:
            port_file = os.path.join(run_dir, "adapter.port")
            argv = [ctx["python"], os.path.join(HERE, "adapter.py"), "--origin",
                    ctx["origin_url"], "--port-file", port_file]
            if args.verbose:
                argv.append("--verbose")
            adapter = Proc("adapter", argv, env, os.path.join(run_dir, "adapter.log"))

            def port():
                try:
                    with open(port_file) as f:
                        return int(f.read().strip())
                except (OSError, ValueError):
                    return None
            base = f"http://127.0.0.1:{wait_for(port, 'the adapter', adapter)}"
        out = os.path.join(run_dir, "results.json")
        print(f"conformance: {selection} selection, target {target}: running the suite "
              f"against {base} ...", file=sys.stderr, flush=True)
        drive_log = os.path.join(run_dir, "drive.log")
        with open(drive_log, "wb") as log:
            r = subprocess.run([ctx["node"], "--no-warnings", os.path.join(HERE, "drive.mjs"),
                                ctx["suite"], base, selection, out] + args.id,
                               stdout=log, stderr=subprocess.STDOUT, timeout=args.timeout)
        if r.returncode != 0 or not os.path.exists(out):
            with open(drive_log, "rb") as f:
                tail = f.read()[-3000:].decode("utf-8", "replace")
            raise RuntimeError(f"the suite's client failed ({r.returncode}):\n{tail}")
        with open(out) as f:
            doc = json.load(f)
    finally:
        if adapter:
            adapter.stop()
    settings = {k: v for k, v in env.items() if k.startswith("CURLCACHE_") or k == "LD_PRELOAD"}
    return {"selection": selection, "target": target, "base": base,
            "seconds": doc["seconds"], "settings": settings, "subset": bool(args.id),
            "summary": summarize(doc["results"]), "results": doc["results"]}


def summarize(results):
    groups = collections.OrderedDict()
    for r in results:
        g = groups.setdefault(r["group"], collections.Counter())
        g[r["result"]] += 1
        g["tests"] += 1
    total = collections.Counter(r["result"] for r in results)
    passing = sum(total[k] for k in PASSING)
    required_failed = [r["id"] for r in results if r["kind"] == "required"
                       and r["result"] == "fail"]
    required_not_passing = [r["id"] for r in results if r["kind"] == "required"
                            and r["result"] not in PASSING]
    return {"tests": len(results), "passing": passing, "by_result": dict(total),
            "required_failures": required_failed,
            "required_not_passing": required_not_passing,
            "groups": {k: dict(v) for k, v in groups.items()}}


def print_run(run):
    s = run["summary"]
    sel, target = run["selection"], run["target"]
    print(f"\n== {sel} selection, target {target} ({run['seconds']:.0f} s)")
    if target not in ("direct", "noshim"):
        shown = " ".join(f"{k}={v}" for k, v in sorted(run["settings"].items())
                         if k not in ("LD_PRELOAD", "CURLCACHE_CONFIG", "CURLCACHE_NAME",
                                      "CURLCACHE_LOG_FILE"))
        print(f"   {shown}")
    cols = [c for c in COLUMNS if s["by_result"].get(c[0])]
    head = f"{'group':<20}{'tests':>6}{'passed':>8}{'failed':>8}  " + "".join(
        f"{label:>8}" for _, label in cols)
    print(head)
    for name, g in s["groups"].items():
        passed = sum(g.get(k, 0) for k in PASSING)
        print(f"{name:<20}{g['tests']:>6}{passed:>8}{g['tests'] - passed:>8}  " + "".join(
            f"{g.get(key, 0):>8}" for key, _ in cols))
    print(f"{'total':<20}{s['tests']:>6}{s['passing']:>8}{s['tests'] - s['passing']:>8}  " +
          "".join(f"{s['by_result'].get(key, 0):>8}" for key, _ in cols))
    print(f"passing: {s['passing']} of {s['tests']} (pass {s['by_result'].get('pass', 0)} + "
          f"yes {s['by_result'].get('yes', 0)})")
    print(f"required failures (⛔): {len(s['required_failures'])}")
    raw = {r["id"]: r["raw"] for r in run["results"]}
    for tid in s["required_failures"]:
        print(f"   {tid}: {raw[tid][1] if isinstance(raw[tid], list) else raw[tid]}")
    print(f"required tests not passing for any reason: {len(s['required_not_passing'])}")
    goal = TARGETS.get(sel)
    if goal and target == "cache" and not run.get("subset") and s["tests"] != goal[1]:
        print(f"target: set for {goal[1]} tests; this suite's {sel} selection has "
              f"{s['tests']} (the suite changed): compare by hand")
    if goal and target == "cache" and s["tests"] == goal[1]:
        need, size, maxreq = goal
        ok = s["passing"] >= need and (maxreq is None or len(s["required_failures"]) <= maxreq)
        req = f" with <= {maxreq} required failures" if maxreq is not None else ""
        print(f"target: >= {need} of {size}{req}: {'met' if ok else 'not met'}")
        run["target_met"] = ok


def compare(runs):
    """Print where the per-test outcomes of two targets of one selection differ."""
    by = collections.defaultdict(dict)
    for run in runs:
        by[run["selection"]][run["target"]] = {r["id"]: r for r in run["results"]}
    diffs = {}
    for sel, targets in by.items():
        names = [t for t in targets if t != "cache"]
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                a, b = names[i], names[j]
                d = [(tid, targets[a][tid]["result"], targets[b].get(tid, {}).get("result"))
                     for tid in targets[a]
                     if targets[a][tid]["result"] != targets[b].get(tid, {}).get("result")]
                diffs[f"{sel}: {a} vs {b}"] = d
                print(f"\n== {sel}: {a} vs {b}: {len(d)} tests differ")
                for tid, ra, rb in d:
                    print(f"   {tid}: {a}={ra} {b}={rb}")
    return diffs


def compare_with(old_path, runs):
    """Print, per run, what changed since the same selection and target in OLD.json."""
    with open(old_path) as f:
        old = json.load(f)
    print(f"\n== changes since {old_path} (curlcache {old.get('curlcache_commit')}, "
          f"{old.get('date')})")
    for run in runs:
        before = next((r for r in old.get("runs", []) if r["selection"] == run["selection"]
                       and r["target"] == run["target"]), None)
        if before is None:
            continue
        was = {r["id"]: r["result"] for r in before["results"]}
        now = {r["id"]: r["result"] for r in run["results"]}
        gained = [t for t in now if now[t] in PASSING and was.get(t) not in PASSING]
        lost = [t for t in now if now[t] not in PASSING and was.get(t) in PASSING]
        other = [t for t in now if now[t] != was.get(t) and t not in gained and t not in lost]
        b, a = before["summary"], run["summary"]
        print(f"{run['selection']}/{run['target']}: passing {b['passing']} -> {a['passing']}, "
              f"required failures {len(b['required_failures'])} -> "
              f"{len(a['required_failures'])}; {len(gained)} now pass, {len(lost)} no longer "
              f"pass, {len(other)} other changes")
        for label, ids in (("now pass", gained), ("no longer pass", lost), ("changed", other)):
            for t in ids:
                print(f"   {label}: {t}: {was.get(t)} -> {now[t]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--suite", help="folder of a cache-tests checkout (default: $CACHE_TESTS_DIR)")
    ap.add_argument("--shim", help="libcurlcache-preload.so (default: the newest "
                    "build*/lib/libcurlcache-preload.so of this repository)")
    ap.add_argument("--commit", metavar="REV",
                    help="build the shim of this commit (git archive, outside the work tree) "
                    "and measure it, e.g. --commit main")
    ap.add_argument("--jobs", type=int, default=2, help="build jobs for --commit (default 2)")
    ap.add_argument("--selection", choices=["shared", "private", "both"], default="both")
    ap.add_argument("--targets", default="cache",
                    help="comma list of: cache (shim on), disabled (shim loaded, "
                    "CURLCACHE_DISABLE=1), noshim (adapter without the shim), direct (the "
                    "suite straight at its origin); default: cache")
    ap.add_argument("--fidelity", action="store_true",
                    help="shorthand for --targets direct,disabled (and compare them)")
    ap.add_argument("--backend", choices=["sqlite", "memory", "filesystem"], default="sqlite",
                    help="storage for the fresh cache of each run (default: sqlite, the "
                    "default users get, in the run's temp folder)")
    ap.add_argument("--no-age-header", action="store_true",
                    help="do not set CURLCACHE_AGE_HEADER=1")
    ap.add_argument("--set", action="append", default=[], metavar="CURLCACHE_X=V",
                    help="extra setting for the cache runs (repeatable)")
    ap.add_argument("--id", action="append", default=[], help="run only this test id (repeatable)")
    ap.add_argument("--json", help="write the full results here")
    ap.add_argument("--compare", metavar="OLD.json",
                    help="list the tests whose outcome changed since a previous --json")
    ap.add_argument("--suite-results", metavar="DIR",
                    help="also write each run's raw results in the suite's own format "
                    "(DIR/curlcache-SELECTION[-TARGET].json, like its results/*.json)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder (logs, caches)")
    ap.add_argument("--no-npm-install", action="store_true",
                    help="do not run npm install in the suite when its packages are missing")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per suite run")
    ap.add_argument("--enforce", action="store_true",
                    help="exit 1 when a cache run is below its target")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    suite = find_suite(args.suite)
    node = check_node(suite, not args.no_npm_install)
    python = find_python_with_pycurl()
    targets = ["direct", "disabled"] if args.fidelity else \
        [t.strip() for t in args.targets.split(",") if t.strip()]
    for t in targets:
        if t not in ("cache", "disabled", "noshim", "direct"):
            sys.exit(f"conformance: unknown target {t}")
    needs_shim = any(t in ("cache", "disabled") for t in targets)
    if args.commit and args.shim:
        sys.exit("conformance: --commit and --shim exclude each other")
    if needs_shim and args.commit:
        shim, commit = build_commit(args.commit, args.jobs)
        measured = f"commit {commit} (built from git archive)"
    else:
        shim = find_shim(args.shim) if needs_shim else None
        commit = git_short(REPO)
        dirty = git_dirty(REPO, ["core", "shim", "config", "backends"])
        measured = (f"a shim built from the work tree at {commit}"
                    + (", which has uncommitted engine changes" if dirty else "")
                    if commit != "unknown" else "a shim built from a tree outside git")
    selections = ["shared", "private"] if args.selection == "both" else [args.selection]

    tmp = tempfile.mkdtemp(prefix="curlcache-conformance-")
    os.chmod(tmp, 0o700)
    print(f"conformance: measuring {measured}; suite {git_short(suite)} at {suite}; "
          f"shim {shim}; temp {tmp}", file=sys.stderr)
    origin = None
    runs = []
    try:
        origin, port = start_origin(node, suite, tmp)
        ctx = {"tmp": tmp, "suite": suite, "node": node, "python": python, "shim": shim,
               "origin_url": f"http://127.0.0.1:{port}"}
        for sel in selections:
            for t in targets:
                run = run_one(sel, t, ctx, args)
                runs.append(run)
                print_run(run)
                sys.stdout.flush()
    finally:
        if origin:
            origin.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"conformance: logs and caches kept in {tmp}", file=sys.stderr)
    diffs = compare(runs) if len([t for t in targets if t != "cache"]) > 1 else {}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"), "curlcache_commit": commit,
                "measured": measured, "suite_commit": git_short(suite),
                "shim": shim, "runs": runs,
                "differences": {k: [list(x) for x in v] for k, v in diffs.items()}},
                f, indent=1)
        print(f"conformance: results written to {args.json}", file=sys.stderr)
    if args.suite_results:
        os.makedirs(args.suite_results, exist_ok=True)
        for run in runs:
            suffix = "" if run["target"] == "cache" else "-" + run["target"]
            path = os.path.join(args.suite_results, f"curlcache-{run['selection']}{suffix}.json")
            with open(path, "w") as f:
                json.dump({r["id"]: r["raw"] for r in run["results"] if r["raw"] is not None},
                          f, indent=2, sort_keys=True)
    if args.compare:
        compare_with(args.compare, runs)
    if args.enforce and any(r.get("target_met") is False for r in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
