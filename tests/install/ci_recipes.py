#!/usr/bin/env python3
"""The CI recipes of docs/ci/ run as written on this machine, against scripts/origin.py.

usage: ci_recipes.py BUILD_DIR

Each recipe is read with a YAML parser (Debian's python3-yaml) and its shell steps are run
with bash as the CI system runs them, in a scratch workspace whose ./build.sh and ./test.sh
download from a local origin with the `curl` command. One part of each recipe is not run
as written: the installation of curlcache (the step with id `install` in GitHub Actions,
the `.install-curlcache` list in GitLab CI), which downloads and builds curlcache; instead
the build tree is installed into a scratch prefix (cmake --install --component
Unspecified, which leaves the tree's install_manifest.txt alone) whose bin/ goes on PATH,
which is what the recipes' install leaves behind.

docs/ci/github-actions.yml: steps run in order, each in its own `bash -e` with what earlier
steps wrote to $GITHUB_ENV, $GITHUB_PATH and $GITHUB_OUTPUT; actions/checkout is the
prepared workspace; actions/cache is emulated: its key and restore-keys are evaluated
(steps.*.outputs, runner.os, github.run_id), the newest saved cache whose key starts with
a restore key is copied to `path` before the next step, and `path` is saved under `key`
when the job ends. The job runs twice, as two workflow runs on fresh runners: the first
downloads (the origin counts requests), the second is answered from the restored cache
(no request), and its job summary shows this run's counts (hits, no misses).

docs/ci/gitlab-ci.yml: a redis-server started on a free loopback port stands for the
shared Redis; its URL is given as the CI/CD variable CURLCACHE_REDIS_URL, which overrides
the file's default as GitLab's project variables do. The jobs run stage by stage (each
job's before_script and script in one `bash -eo pipefail`, its after_script in another,
with the file's variables). The build job downloads, the test job, on a fresh workspace,
is answered from Redis; a second pipeline makes no request at all.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

import yaml

from installed import SOURCE_DIR, InstallFailed, check, component_in_scratch, finish
import harness  # noqa: E402  (tests/shim, put on the path by installed)
from redis_outage import RedisServer  # noqa: E402

URLS = ["/bytes/3000", "/text", "/gzip"]


def load(name):
    with open(os.path.join(SOURCE_DIR, "docs", "ci", name), encoding="utf-8") as f:
        return yaml.safe_load(f)


def base_env(home, prefix, origin):
    """A runner's environment: the machine's PATH behind the installed curlcache, a fresh
    HOME, no XDG folders, no CURLCACHE_* variables, no proxies, nothing preloaded."""
    env = {k: v for k, v in harness.clean_env(home).items()
           if not k.startswith("XDG_")}
    env["PATH"] = os.path.join(prefix, "bin") + ":" + env["PATH"]
    env["CI"] = "true"
    env["ORIGIN"] = origin.base  # what the project's build scripts below download from
    return env


def workspace(parent, name):
    """A checked-out project: build.sh and test.sh download with the curl command."""
    path = os.path.join(parent, name)
    os.makedirs(path)
    for script in ("build.sh", "test.sh"):
        lines = ["#!/bin/sh", "set -e"]
        lines += ['curl -fsS "$ORIGIN%s" -o "%s-%d.out"' % (url, script, i)
                  for i, url in enumerate(URLS)]
        with open(os.path.join(path, script), "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(os.path.join(path, script), 0o755)
    return path


def run_shell(text, env, cwd, options):
    proc = subprocess.run(["bash", "--noprofile", "--norc", *options, "-c", text],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    return proc


# ------------------------------------------------------------------------------------ #
# GitHub Actions


def expression(text, context):
    """${{ a.b.c }} replaced from `context` (nested dicts); unknown names fail the test."""
    def value(match):
        node = context
        for part in match.group(1).strip().split("."):
            if not check(isinstance(node, dict) and part in node,
                         "github-actions.yml: unknown expression " + match.group(0)):
                return ""
            node = node[part]
        return str(node)
    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def read_pairs(path):
    pairs = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "=" in line:
                    name, value = line.rstrip("\n").split("=", 1)
                    pairs[name] = value
    return pairs


def github_run(recipe, run_id, scratch, prefix, origin, saved):
    """One workflow run on a fresh runner; returns the job summary."""
    root = os.path.join(scratch, "gh-run-%d" % run_id)
    home = os.path.join(root, "home")
    work = workspace(root, "work")
    temp = os.path.join(root, "runner-temp")
    os.makedirs(temp)
    files = {name: os.path.join(root, name) for name in ("env", "path", "output", "summary")}
    for path in files.values():
        open(path, "w").close()
    env = base_env(home, prefix, origin)
    env.update(GITHUB_ENV=files["env"], GITHUB_PATH=files["path"],
               GITHUB_STEP_SUMMARY=files["summary"], GITHUB_WORKSPACE=work,
               RUNNER_TEMP=temp, RUNNER_OS="Linux", GITHUB_RUN_ID=str(run_id))
    context = {"runner": {"os": "Linux"}, "github": {"run_id": run_id, "workspace": work},
               "steps": {}}
    to_save = []
    (job,) = recipe["jobs"].values()
    for step in job["steps"]:
        name = step.get("name", step.get("uses", "?"))
        uses = step.get("uses", "")
        if uses.startswith("actions/checkout@"):
            continue  # the workspace is checked out; the curlcache checkout is not needed
        if uses.startswith("actions/cache@"):
            spec = {k: expression(str(v), context) for k, v in step["with"].items()}
            path = os.path.join(home, spec["path"][2:]) if spec["path"].startswith("~/") \
                else os.path.join(work, spec["path"])
            check(re.search(r"-\d{4}-W\d{2}-", spec["key"]) is not None,
                  "github-actions.yml: the cache key is not keyed on the week: " + spec["key"])
            restore = [spec["key"]] + spec.get("restore-keys", "").split()
            for prefix_key in restore:
                found = sorted(k for k in saved if k.startswith(prefix_key))
                if found:
                    shutil.copytree(saved[found[-1]], path)
                    break
            to_save.append((spec["key"], path))
            continue
        if step.get("id") == "install":
            continue  # the build tree is installed in `prefix`, on PATH
        check("run" in step, "github-actions.yml: step '%s' has neither run nor a known uses" % name)
        check("${{" not in step["run"],
              "github-actions.yml: step '%s' has an expression in its shell" % name)
        env.update(read_pairs(files["env"]))
        with open(files["path"]) as f:
            for line in f:
                env["PATH"] = line.strip() + ":" + env["PATH"]
        open(files["output"], "w").close()
        step_env = dict(env, GITHUB_OUTPUT=files["output"], **step.get("env", {}))
        proc = run_shell(step["run"], step_env, work, ["-e"])
        check(proc.returncode == 0, "github-actions.yml run %d: step '%s' failed (%d): %s%s"
              % (run_id, name, proc.returncode, proc.stdout, proc.stderr))
        if "id" in step:
            context["steps"][step["id"]] = {"outputs": read_pairs(files["output"])}
    for key, path in to_save:  # the post-job step of actions/cache
        if os.path.isdir(path) and key not in saved:
            saved[key] = os.path.join(scratch, "gh-saved-%d" % len(saved))
            shutil.copytree(path, saved[key])
    with open(files["summary"]) as f:
        return f.read()


def summary_count(summary, label):
    match = re.search(r"^%s\s+([\d,]+)" % label, summary, re.M)
    return int(match.group(1).replace(",", "")) if match else None


def check_github(scratch, prefix, origin):
    recipe = load("github-actions.yml")
    saved = {}
    before = origin.count()
    first = github_run(recipe, 1, scratch, prefix, origin, saved)
    downloads = origin.count() - before
    check(downloads == len(URLS), "github run 1: %d requests at the origin, expected %d"
          % (downloads, len(URLS)))
    check(saved, "github run 1: actions/cache saved nothing")
    check(summary_count(first, "Misses") == len(URLS),
          "github run 1: the job summary does not show %d misses:\n%s" % (len(URLS), first))
    before = origin.count()
    second = github_run(recipe, 2, scratch, prefix, origin, saved)
    check(origin.count() == before, "github run 2 (cache restored): %d requests at the origin"
          % (origin.count() - before))
    check(summary_count(second, "Hits") == len(URLS) and summary_count(second, "Misses") == 0,
          "github run 2: the job summary does not show %d hits and no miss:\n%s"
          % (len(URLS), second))
    check(second.startswith("### curlcache\n```\n"), "github run 2: summary is not a code block")
    print("github-actions.yml, job summary of run 2:\n" + second)


# ------------------------------------------------------------------------------------ #
# GitLab CI


def flatten(items):
    for item in items or []:
        if isinstance(item, list):
            yield from flatten(item)
        else:
            yield item


def resolve(recipe, name):
    """A job with `extends` merged in (the job's own keys win)."""
    job = dict(recipe[name])
    parent = job.pop("extends", None)
    if parent:
        merged = resolve(recipe, parent)
        merged.update(job)
        job = merged
    return job


def gitlab_pipeline(recipe, number, scratch, prefix, origin, redis_url):
    """Runs every job stage by stage; returns {job: after_script output}."""
    install = list(flatten(recipe[".install-curlcache"]))
    jobs = [name for name in recipe if not name.startswith(".")
            and isinstance(recipe[name], dict) and "script" in recipe[name]]
    outputs = {}
    for stage in recipe["stages"]:
        for name in jobs:
            job = resolve(recipe, name)
            if job.get("stage") != stage:
                continue
            root = os.path.join(scratch, "gl-%d-%s" % (number, name))
            env = base_env(os.path.join(root, "home"), prefix, origin)
            env.update({k: str(v) for k, v in recipe.get("variables", {}).items()})
            env["CURLCACHE_REDIS_URL"] = redis_url  # the project's CI/CD variable
            env["CI_BUILDS_DIR"] = root
            work = workspace(root, "work")
            before = list(flatten(job.get("before_script")))
            check(all(line in before for line in install),
                  "gitlab-ci.yml: %s does not install curlcache" % name)
            lines = [line for line in before if line not in install]
            lines += list(flatten(job["script"]))
            proc = run_shell("\n".join(lines), env, work, ["-e", "-o", "pipefail"])
            check(proc.returncode == 0, "gitlab-ci.yml pipeline %d: job %s failed (%d): %s%s"
                  % (number, name, proc.returncode, proc.stdout, proc.stderr))
            check("curlcache: " not in proc.stderr,
                  "gitlab-ci.yml: job %s warns: %s" % (name, proc.stderr))
            after = run_shell("\n".join(flatten(job.get("after_script"))), env, work, [])
            check(after.returncode == 0, "gitlab-ci.yml: after_script of %s failed: %s"
                  % (name, after.stderr))
            outputs[name] = after.stdout
    return outputs


def check_gitlab(scratch, prefix, origin):
    recipe = load("gitlab-ci.yml")
    redis = RedisServer(scratch, harness.free_port())
    redis.start()
    try:
        redis_url = "redis://127.0.0.1:%d/0" % redis.port
        before = origin.count()
        first = gitlab_pipeline(recipe, 1, scratch, prefix, origin, redis_url)
        requests = origin.count() - before
        check(set(first) == {"build", "test"}, "gitlab-ci.yml: jobs run: %s" % sorted(first))
        check(requests == len(URLS), "gitlab pipeline 1: %d requests at the origin for two "
              "jobs downloading the same %d URLs (the second job must hit)"
              % (requests, len(URLS)))
        check(summary_count(first.get("build", ""), "Misses") == len(URLS),
              "gitlab pipeline 1: the build job's after_script does not show %d misses:\n%s"
              % (len(URLS), first.get("build", "")))
        stats = first.get("test", "")
        check(re.search(r"redis\s+redis://127\.0\.0\.1:%d/0" % redis.port, stats) is not None,
              "gitlab-ci.yml: after_script's stats do not show the shared Redis:\n" + stats)
        check(summary_count(stats, "Hits") == len(URLS),
              "gitlab pipeline 1: the test job's after_script does not show %d hits:\n%s"
              % (len(URLS), stats))
        print("gitlab-ci.yml, after_script of the test job:\n" + stats)
        before = origin.count()
        gitlab_pipeline(recipe, 2, scratch, prefix, origin, redis_url)
        check(origin.count() == before, "gitlab pipeline 2: %d requests at the origin"
              % (origin.count() - before))
    finally:
        redis.stop()


def main():
    build_dir = os.path.abspath(sys.argv[1])
    try:
        with component_in_scratch(build_dir, "Unspecified", "ci-recipes") as (scratch, prefix):
            check(glob.glob(os.path.join(prefix, "lib*", "libcurlcache-preload.so")),
                  "the install has no lib/libcurlcache-preload.so")
            with harness.Origin(scratch) as origin:
                check_github(scratch, prefix, origin)
                check_gitlab(scratch, prefix, origin)
    except InstallFailed:
        pass
    return finish("ci recipes", "GitHub Actions (week-keyed actions/cache, second run from "
                  "the cache, job summary) and GitLab CI (shared Redis, second job and "
                  "pipeline from it) work")


if __name__ == "__main__":
    sys.exit(main())
