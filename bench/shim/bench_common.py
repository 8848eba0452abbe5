"""Helpers shared by the shim benchmark's parts (bench_shim.py, bench_miss.py): servers on
free loopback ports stopped by PID, curl_loop runs, process timings, formatting."""

import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import time

SIZES = [("1 KiB", "1k.bin", 1024), ("100 KiB", "100k.bin", 100 * 1024),
         ("1 MiB", "1m.bin", 1 << 20)]
BIG = ("10 MiB", "10m.bin", 10 << 20)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def await_port(port, proc, timeout=20.0):
    """Waits until something accepts on the port (servers here announce nothing else)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


class Server:
    def __init__(self, name, argv, port, cwd, env=None):
        self.name, self.port = name, port
        self.log = open(os.path.join(cwd, name + ".out"), "wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        self.ok = await_port(port, self.proc)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def why(self):
        with open(self.log.name, "rb") as f:
            tail = f.read()[-300:].decode(errors="replace").strip()
        return tail.splitlines()[-1] if tail else "did not start"


def origin_requests(d):
    try:
        with open(os.path.join(d, "origin-access.log"), "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def run_loop_fields(loop, url, n, expected, env, proxy=None, warmup=2, keep=None):
    """Runs curl_loop; returns (its output fields as floats, None) or (None, why it failed)."""
    argv = [loop, "-n", str(n), "-w", str(warmup), "-e", str(expected)]
    if proxy:
        argv += ["-x", proxy]
    if keep:
        argv += ["-k", keep]
    p = subprocess.run(argv + [url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    if p.returncode != 0:
        err = (p.stderr.decode(errors="replace").strip().splitlines() or ["exit %d"
                                                                          % p.returncode])
        return None, err[0][:240]
    return {k: float(v) for k, v in (kv.split("=") for kv in p.stdout.decode().split())}, None


def run_loop(loop, url, n, expected, env, proxy=None, warmup=2):
    """curl_loop's median per transfer in us (or None) and why it failed (or None)."""
    fields, err = run_loop_fields(loop, url, n, expected, env, proxy, warmup)
    return (fields["median_us"] if fields else None), err


def alternating_runs(argvs_envs, rounds):
    """Runs each (argv, env) `rounds` times, round by round, each round in its own shuffled
    order (posix_spawn: no Python fork in the timed window). Returns, per variant, the wall
    times and the CPU times (user + system of the process) in ms, lists in round order, so
    that ratios can be taken within a round.

    The order is shuffled, not rotated: a process run just after a heavier one (a shim hit
    that writes its database on exit) measured about 1.5% slower, and a rotation gives each
    variant the same predecessor in almost every round, which turns that into a bias of one
    variant against another. The seed is fixed, so a run can be repeated."""
    wall = [[] for _ in argvs_envs]
    cpu = [[] for _ in argvs_envs]
    shuffle = random.Random(20261204).shuffle
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for _ in range(rounds):
            order = list(range(len(argvs_envs)))
            shuffle(order)
            for i in order:
                argv, env = argvs_envs[i]
                t0 = time.perf_counter()
                pid = os.posix_spawnp(argv[0], argv, env, file_actions=[
                    (os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                    (os.POSIX_SPAWN_DUP2, devnull, 2)])
                _, _, usage = os.wait4(pid, 0)
                wall[i].append((time.perf_counter() - t0) * 1000)
                cpu[i].append((usage.ru_utime + usage.ru_stime) * 1000)
    finally:
        os.close(devnull)
    return wall, cpu


def hyperfine(commands, env_cmds, d, env, options=("-N", "--warmup", "5", "--min-runs", "30")):
    """hyperfine medians (ms) for shell commands; None when hyperfine is not installed."""
    if shutil.which("hyperfine") is None:
        return None
    out = os.path.join(d, "hyperfine.json")
    subprocess.run(["hyperfine"] + list(options) + ["--export-json", out]
                   + [e + c for e, c in zip(env_cmds, commands)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    with open(out) as f:
        return [r["median"] * 1000 for r in json.load(f)["results"]]


def fmt(v, unit="us"):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return "%.1f %s" % (v, unit) if v < 100 else "%.0f %s" % (v, unit)


def clean_env(d, extra=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CURLCACHE_") and k != "LD_PRELOAD"
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    for sub in ("home", "home/cache", "home/config"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    env.update(HOME=os.path.join(d, "home"), XDG_CACHE_HOME=os.path.join(d, "home/cache"),
               XDG_CONFIG_HOME=os.path.join(d, "home/config"))
    env.update(extra or {})
    return env
