"""A Python program that uses sqlite3 and pycurl in one process (run by program_sqlite.py,
with and without the shim). `import sqlite3` initialises the program's SQLite (Debian's
libsqlite3.so.0) itself, so what the shim must leave alone here is that library's memory:
nothing may allocate through it during the transfers (an engine that shared it would keep
its database open there). The library is reached with ctypes, the one _sqlite3 loaded.

    sqlite_pycurl_client.py [--sabotage] URL...

Prints each transfer (pycurl on one reused handle: result, status, body size and digest),
then the facts and the sqlite3 work, as lines that are the same in every run. --sabotage
(program_sqlite.py --self-check) opens a database right after the first transfer and keeps
it open, as an engine sharing the program's SQLite would.
"""

import ctypes
import hashlib
import os
import sqlite3  # before pycurl: the program's SQLite is loaded and initialised first
import sys

import pycurl

SQLITE_STATUS_MALLOC_COUNT = 9


def program_sqlite():
    """The libsqlite3 _sqlite3 loaded (RTLD_NOLOAD: never a second copy)."""
    lib = ctypes.CDLL("libsqlite3.so.0", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
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
    sabotaging = bool(args) and args[0] == "--sabotage"
    urls = args[1:] if sabotaging else args
    lib = program_sqlite()
    print("sqlite: module %s, library %s" % (sqlite3.sqlite_version,
                                             lib.sqlite3_libversion().decode()))
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
            kept.append(sqlite3.connect(":memory:"))
    c.close()
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
        k.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
