#!/usr/bin/env python3
"""The installed manual pages and shell completion, checked from the outside.

usage: docs_test.py BUILD_DIR

Installs the build's `doc` component (man pages, completion, CI recipes) into a scratch
prefix (cmake --install --component doc: the tree's install_manifest.txt is not touched)
and checks:
  1. share/man/man1/curlcache.1, man5/curlcache.toml.5, man3/libcurlcache.3 exist and
     render without a warning (groff -man -ww, and man -l);
  2. curlcache.toml(5) has every key of config/keys.cpp with its CURLCACHE_* variable, and
     a default for each but `config`;
  3. curlcache(1) has a section for every subcommand `curlcache --help` lists, and in it
     every option of that subcommand's --help; the global options too;
  4. its JSON OUTPUT section names every field that stats/list/show/config --json print
     (a cache filled by `curlcache run -- curl` from scripts/origin.py);
  5. the bash completion is installed, `complete -p curlcache` names it, and _curlcache,
     driven with COMP_WORDS/COMP_CWORD, offers the subcommands, each one's options, the
     compiled-in backends, tier lists and commands after `run`;
  6. the zsh completion is installed, parses (zsh -n), and compinit picks it up for
     curlcache.
"""
import json
import os
import re
import shutil
import subprocess
import sys

from installed import SOURCE_DIR, InstallFailed, check, component_in_scratch, finish
import harness  # noqa: E402  (tests/shim, put on the path by installed)

def run(argv, env=None, **kw):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, **kw)


def render(page):
    """The page as man shows it, without formatting; and man's and groff's warnings."""
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LANG="C.UTF-8")
    groff = run(["groff", "-man", "-Tutf8", "-ww", "-z", page], env=env)
    check(groff.returncode == 0 and groff.stderr == "",
          "%s: groff -ww warns: %s" % (page, groff.stderr.strip()))
    man = run(["man", "--warnings", "-l", page], env=env)
    check(man.returncode == 0 and man.stderr == "",
          "%s: man -l fails or warns: %s" % (page, man.stderr.strip()))
    return man.stdout


def section(text, heading, level):
    """The lines of one section (level 0: `.SH`, at column 0) or subsection (level 1:
    `.SS`, at column 3) of rendered text, up to the next heading of that level or above."""
    lines = text.splitlines()
    pattern = re.compile(r"^ {%d}%s$" % (3 * level, re.escape(heading)))
    for start, line in enumerate(lines):
        if pattern.match(line):
            end = start + 1
            while end < len(lines):
                indent = len(lines[end]) - len(lines[end].lstrip())
                if lines[end].strip() and indent <= 3 * level:
                    break
                end += 1
            return "\n".join(lines[start + 1:end])
    return None


def help_options(text):
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", text)))


def json_fields(document, prefix=""):
    """Every object key in a JSON document (arrays looked into)."""
    fields = set()
    if isinstance(document, dict):
        for key, value in document.items():
            fields.add(key)
            fields |= json_fields(value)
    elif isinstance(document, list):
        for item in document:
            fields |= json_fields(item)
    return fields


def check_man(prefix, curlcache, scratch):
    pages = {}
    for name, sub in (("curlcache.1", "man1"), ("curlcache.toml.5", "man5"),
                      ("libcurlcache.3", "man3")):
        path = os.path.join(prefix, "share", "man", sub, name)
        if check(os.path.isfile(path), "not installed: share/man/%s/%s" % (sub, name)):
            pages[name] = render(path)
    if len(pages) != 3:
        return

    # 2. Every key of the key table, its variable and a default.
    with open(os.path.join(SOURCE_DIR, "config", "keys.cpp"), encoding="utf-8") as f:
        table = re.findall(r'KeyDef\{"([^"]+)", "([^"]*)"', f.read())
    check(len(table) > 20, "config/keys.cpp: found only %d keys" % len(table))
    keys = section(pages["curlcache.toml.5"], "KEYS", 0) or ""
    entries = keys.split("\n\n")  # one paragraph per key
    for key, env in table:
        entry = next((e for e in entries if re.match(r"\s*%s(\s|$)" % re.escape(key), e)), None)
        if not check(entry is not None, "curlcache.toml(5) KEYS: no entry for %s" % key):
            continue
        check("Variable: " + env in entry, "curlcache.toml(5): %s without %s" % (key, env))
        check(key == "config" or "Default: " in entry, "curlcache.toml(5): %s has no default" % key)

    # 3. Every subcommand and its options.
    usage = run([curlcache, "--help"]).stdout
    commands = re.findall(r"^  ([a-z]+)\b", usage, re.M)
    check(len(commands) >= 11, "curlcache --help lists only %s" % commands)
    manual = pages["curlcache.1"]
    for command in commands:
        text = section(manual, command, 1)
        if not check(text is not None, "curlcache(1): no section for '%s'" % command):
            continue
        for option in help_options(run([curlcache, command, "--help"]).stdout):
            if option in ("--help", "--config", "--backend", "--name"):
                continue
            check(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(option), text) is not None,
                  "curlcache(1) section '%s' does not mention %s" % (command, option))
    options = section(manual, "GLOBAL OPTIONS", 0) or ""
    for option in help_options(run([curlcache, "stats", "--help"]).stdout.split("Options every")[1]):
        check(option in options, "curlcache(1) GLOBAL OPTIONS does not mention %s" % option)

    # 4. The JSON documents' fields.
    home = os.path.join(scratch, "home")
    env = harness.clean_env(home)
    cache = ["--name", os.path.join(home, "json.sqlite")]
    with harness.Origin(scratch) as origin:
        url = origin.base + "/text"
        filled = run([curlcache, *cache, "run", "--", "curl", "-s", "-o", os.devnull, url], env=env)
        check(filled.returncode == 0, "curlcache run -- curl failed: " + filled.stderr)
    for command, extra in (("stats", []), ("list", []), ("show", [url]), ("config", [])):
        out = run([curlcache, *cache, command, *extra, "--json"], env=env)
        if not check(out.returncode == 0, "%s --json failed: %s" % (command, out.stderr)):
            continue
        document = json.loads(out.stdout)
        check(document, "%s --json printed an empty document" % command)
        text = section(manual, command + " --json", 1) or ""
        for field in sorted(json_fields(document)):
            check(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(field), text) is not None,
                  "curlcache(1) JSON OUTPUT '%s --json' does not document '%s'" % (command, field))


def complete(bash_file, words, curlcache):
    """What _curlcache offers for the command line `words` (the last one being completed)."""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _curlcache; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    out = run(["bash", "--norc", "--noprofile", "-c", script, "complete", bash_file,
               curlcache, *words])
    check(out.returncode == 0, "bash completion fails for %s: %s" % (words, out.stderr))
    return set(filter(None, out.stdout.splitlines()))


def check_bash(prefix, curlcache):
    path = os.path.join(prefix, "share", "bash-completion", "completions", "curlcache")
    if not check(os.path.isfile(path), "not installed: share/bash-completion/completions/curlcache"):
        return
    out = run(["bash", "--norc", "--noprofile", "-c", 'source "$1" && complete -p curlcache', "x", path])
    check(out.returncode == 0 and "-F _curlcache" in out.stdout,
          "complete -p curlcache after sourcing: %r %r" % (out.stdout, out.stderr))
    usage = run([curlcache, "--help"]).stdout
    commands = set(re.findall(r"^  ([a-z]+)\b", usage, re.M))
    offered = complete(path, [""], curlcache)
    check(commands <= offered, "completing a subcommand misses %s" % sorted(commands - offered))
    check(complete(path, ["st"], curlcache) == {"stats"}, "'st' does not complete to stats")
    check(complete(path, ["help", "ex"], curlcache) == {"export"}, "'help ex' is not export")
    for command in sorted(commands):
        options = set(help_options(run([curlcache, command, "--help"]).stdout)) - {"--"}
        offered = complete(path, [command, "--"], curlcache)
        check(options <= offered, "'%s --' does not offer %s" % (command, sorted(options - offered)))
    backends = set(run([curlcache, "--version"]).stdout.split("backends:")[1].splitlines()[0].split())
    check(backends and complete(path, ["--backend", ""], curlcache) == backends,
          "--backend does not offer exactly the compiled-in backends %s" % sorted(backends))
    check(complete(path, ["list", "--backend", "memory,sq"], curlcache) == {"memory,sqlite"},
          "a tier list does not complete its last name")
    check("curl" in complete(path, ["run", "--stats", "cur"], curlcache),
          "'run --stats cur' does not offer the curl command")
    check(complete(path, ["run", "curl", "--st"], curlcache) == set(),
          "after 'run CMD' curlcache's own options are offered")


def check_zsh(prefix, scratch):
    folder = os.path.join(prefix, "share", "zsh", "vendor-completions")
    path = os.path.join(folder, "_curlcache")
    if not check(os.path.isfile(path), "not installed: share/zsh/vendor-completions/_curlcache"):
        return
    zsh = shutil.which("zsh")
    if not check(zsh is not None, "zsh is not installed (scripts/install-deps.sh installs it)"):
        return
    out = run([zsh, "-n", path])
    check(out.returncode == 0 and out.stderr == "", "zsh -n _curlcache: " + out.stderr)
    script = ('fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -d "$2"; '
              'print -r -- "$_comps[curlcache]"')
    out = run([zsh, "-f", "-c", script, "zsh", folder, os.path.join(scratch, "zcompdump")])
    check(out.stdout.strip() == "_curlcache",
          "compinit does not use _curlcache for curlcache: %r %r" % (out.stdout, out.stderr))


def main():
    build_dir = os.path.abspath(sys.argv[1])
    curlcache = os.path.join(build_dir, "bin", "curlcache")
    try:
        with component_in_scratch(build_dir, "doc", "docs") as (scratch, prefix):
            check_man(prefix, curlcache, scratch)
            check_bash(prefix, curlcache)
            check_zsh(prefix, scratch)
    except InstallFailed:
        pass
    return finish("docs", "man pages render cleanly and cover every key, subcommand, option "
                  "and JSON field; bash and zsh completion work")


if __name__ == "__main__":
    sys.exit(main())
