"""What the tests of installed files share (docs_test.py, ci_recipes.py): the checks they
count, and one install component of the build tree in a scratch prefix."""
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "shim"))

FAILURES = []


def check(condition, what):
    """Records and prints a failed check; returns the condition."""
    if not condition:
        FAILURES.append(what)
        print("FAIL: " + what)
    return condition


class InstallFailed(Exception):
    pass


@contextlib.contextmanager
def component_in_scratch(build_dir, component, label):
    """Yields (scratch folder, prefix) with `component` of the build installed in prefix.
    cmake --install --component writes install_manifest_<component>.txt, so the tree's
    install_manifest.txt (which `make uninstall` reads) is left alone. Removed afterwards."""
    scratch = tempfile.mkdtemp(prefix="curlcache-%s-" % label)
    try:
        prefix = os.path.join(scratch, "prefix")
        out = subprocess.run(["cmake", "--install", build_dir, "--prefix", prefix,
                              "--component", component], capture_output=True, text=True)
        if not check(out.returncode == 0, "cmake --install --component %s: %s"
                     % (component, out.stderr)):
            raise InstallFailed()
        yield scratch, prefix
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def finish(label, success):
    """The exit status after all checks, with one summary line."""
    if FAILURES:
        print("%s: %d problem(s)" % (label, len(FAILURES)))
        return 1
    print("%s: %s" % (label, success))
    return 0
