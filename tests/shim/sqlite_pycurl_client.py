"""A Python program that uses sqlite3 and pycurl in one process (run by program_sqlite.py,
with and without the shim). `import sqlite3` initialises the program's SQLite (Debian's
libsqlite3.so.0) itself, so what the shim must leave alone here is that library's memory:
nothing may allocate through it during the transfers (an engine that shared it would keep
its database open there). The library is reached with ctypes, the one _sqlite3 loaded.

    sqlite_pycurl_client.py [--late-import] [--sabotage] URL...

Prints each transfer (pycurl on one reused handle: result, status, body size and digest),
then the facts and the sqlite3 work, as lines that are the same in every run.
--late-import: sqlite3 is imported only after the transfers, and libsqlite3.so.0 must not be
loaded before that (an engine linking it would have loaded it).
--sabotage (program_sqlite.py --self-check): right after the first transfer the program
does what an engine sharing its SQLite would: opens a database and keeps it open (with
--late-import: loads libsqlite3.so.0).
"""

import ctypes
import hashlib
import importlib
import os
import sys

if "--late-import" not in sys.argv:
    import sqlite3  # noqa: F401 before pycurl: the program's SQLite is loaded first

import pycurl

SQLITE_STATUS_MALLOC_COUNT = 9


def program_sqlite():
    """The libsqlite3 _sqlite3 loaded (RTLD_NOLOAD: never a second copy), or None."""
    try:
        lib = ctypes.CDLL("libsqlite3.so.0", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return None
    lib.sqlite3_libversion.restype = ctypes.c_char_p
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return lib


def outstanding(lib):
    now, highwater = ctypes.c_int64(-1), ctypes.c_int64(-1)
    lib.sqlite3_status64(SQLITE_STATUS_MALLOC_COUNT, ctypes.byref(now), ctypes.byref(highwater),
                         0)
    return now.value


def change(what, before, after):
    if before == after:
        return "%s across the transfers: unchanged" % what
    return "%s across the transfers: changed (%d -> %d)" % (what, before, after)


def main():
    args = sys.argv[1:]
    late = "--late-import" in args
    sabotaging = "--sabotage" in args
    urls = [a for a in args if not a.startswith("--")]
    lib = None
    if not late:
        lib = program_sqlite()
        allocations, used = outstanding(lib), lib.sqlite3_memory_used()
    kept = []
    c = pycurl.Curl()
    for i, url in enumerate(urls):
        body = hashlib.sha256()
        size = [0]

        def on_write(data, body=body, size=size):
            body.update(data)
            size[0] += len(data)

        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.NOPROXY, "*")
        c.setopt(pycurl.FOLLOWLOCATION, 1)
        c.setopt(pycurl.WRITEFUNCTION, on_write)
        error = None
        try:
            c.perform()
        except pycurl.error as e:
            error = e.args[0]
        print("== %s\nerror: %s\nRESPONSE_CODE: %d\nbody: %d bytes, sha256 %s"
              % (url, error, c.getinfo(pycurl.RESPONSE_CODE), size[0], body.hexdigest()))
        if sabotaging and i == 0:
            if late:
                kept.append(ctypes.CDLL("libsqlite3.so.0"))
            else:
                kept.append(importlib.import_module("sqlite3").connect(":memory:"))
    c.close()
    if late:
        print("libsqlite3.so.0 loaded by the transfers: %s"
              % ("no" if program_sqlite() is None else "yes"))
    sqlite3 = importlib.import_module("sqlite3")
    lib = lib or program_sqlite()
    print("sqlite: module %s, library %s" % (sqlite3.sqlite_version,
                                             lib.sqlite3_libversion().decode()))
    if not late:
        print(change("SQLite allocations outstanding", allocations, outstanding(lib)))
        print(change("sqlite3_memory_used()", used, lib.sqlite3_memory_used()))

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE fruit(id INTEGER PRIMARY KEY, name TEXT, weight REAL)")
    db.executemany("INSERT INTO fruit(name, weight) VALUES (?, ?)",
                   [("apple", 0.2), ("pear", 0.25), ("fig", 0.05)])
    db.execute("UPDATE fruit SET weight = weight * 2 WHERE name = 'fig'")
    db.commit()
    for row in db.execute("SELECT id, name, weight FROM fruit ORDER BY id"):
        print("row: %r" % (row,))
    print("changes: %d" % db.total_changes)
    print("sqlite3_memory_used() > 0 with a database open: %s"
          % ("yes" if lib.sqlite3_memory_used() > 0 else "no"))
    db.close()
    for k in kept:
        if isinstance(k, sqlite3.Connection):
            k.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
