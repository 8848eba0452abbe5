#!/usr/bin/env python3
"""Other unmodified libcurl programs through the shim, compared with runs without it:
cmake's file(DOWNLOAD) (libcurl.so.4, OpenSSL) and git cloning over dumb HTTP
(git-remote-http, libcurl-gnutls.so.4). Each runs once without the shim and twice with
it; stdout, exit code and produced files must be byte-identical. cmake's download must be
a hit the second time; git also asks for files that do not exist (404s, never cached), so
its second clone must reach the origin less often than the first, not never.

    programs.py --shim PATH [--keep] [--harness-only] [--self-check]

Exit status 0 pass, 1 fail, 77 shim not built.
"""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DOWNLOAD_CMAKE = """\
file(DOWNLOAD "${URL}" "${CMAKE_CURRENT_BINARY_DIR}/downloaded.bin"
     STATUS status EXPECTED_HASH SHA256=${SHA})
list(GET status 0 code)
file(SHA256 "${CMAKE_CURRENT_BINARY_DIR}/downloaded.bin" got)
file(SIZE "${CMAKE_CURRENT_BINARY_DIR}/downloaded.bin" size)
message("status ${code}, ${size} bytes, sha256 ${got}")
"""


def make_repo(root):
    """A bare repository with two commits at fixed dates, ready for dumb HTTP."""
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=root,
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid",
               GIT_AUTHOR_DATE="2020-01-01T00:00:00Z", GIT_COMMITTER_DATE="2020-01-01T00:00:00Z")
    work = os.path.join(root, "work")
    bare = os.path.join(root, "repo.git")

    def git(*a, cwd=work):
        subprocess.run(["git"] + list(a), cwd=cwd, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    os.makedirs(work)
    git("init", "-q", "-b", "main")
    for i, text in enumerate(("first\n", "second\n" * 500)):
        with open(os.path.join(work, "file%d.txt" % i), "w") as f:
            f.write(text)
        git("add", ".")
        git("commit", "-q", "-m", "commit %d" % i)
    git("clone", "-q", "--bare", work, bare, cwd=root)
    git("update-server-info", cwd=bare)
    return bare


def main():
    args = harness.arguments(__doc__).parse_args()
    shim = harness.shim_or_skip(args.shim, args.harness_only or args.self_check)
    report = harness.Report(shim, args.self_check)
    with harness.Scratch(keep=args.keep) as scratch:
        files = os.path.join(scratch, "files")
        os.makedirs(files)
        make_repo(files)
        script = os.path.join(scratch, "download.cmake")
        with open(script, "w") as f:
            f.write(DOWNLOAD_CMAKE)
        sys.path.insert(0, os.path.dirname(harness.ORIGIN))
        import hashlib
        import origin as origin_module
        sha = hashlib.sha256(origin_module.pattern_bytes(200000)).hexdigest()
        with harness.Origin(scratch, root=files) as origin:
            cases = []
            if shutil.which("cmake"):
                cases.append(("cmake_file_download",
                              ["cmake", "-DURL=%s/bytes/200000" % origin.base,
                               "-DSHA=%s" % sha, "-P", script], "hit"))
            if shutil.which("git"):
                cases.append(("git_clone_dumb_http",
                              ["sh", "-c", "git clone -q %s/files/repo.git c && "
                               "git -C c log --format='%%H %%s' && git -C c ls-files -s && "
                               "rm -rf c" % origin.base], "fewer"))
            for name, argv, expect in harness.only(cases, args.only):
                base = os.path.join(scratch, name)
                env = harness.clean_env(os.path.join(base, "home"),
                                        {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"})
                shim_argv = None
                if args.self_check:
                    shim_argv = [a.replace("200000", "200001").replace("log --format",
                                                                      "log --stat --format")
                                 for a in argv]
                three = harness.Three(base, argv, env, shim, origin, shim_argv=shim_argv)
                cache = []
                if three.first_requests == 0:
                    cache.append("the first shim run made no request on a fresh cache")
                if expect == "hit" and three.second_requests != 0:
                    cache.append("second shim run made %d request(s), expected a hit"
                                 % three.second_requests)
                if expect == "fewer" and three.second_requests >= three.first_requests:
                    cache.append("second shim run made %d request(s), not fewer than the "
                                 "first (%d)" % (three.second_requests, three.first_requests))
                report.case(name, " ".join(argv), three.differences(), cache, three.note(),
                            base)
    return report.finish("programs")


if __name__ == "__main__":
    sys.exit(main())
