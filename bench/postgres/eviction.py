#!/usr/bin/env python3
"""What one eviction costs the postgres plugin over 100,000 rows of 1 KB, on a private
PostgreSQL 15 (tests/plugins/shim_postgres.py's server): the statement the plugin used until
schema 2 (a window over the whole table, ranking every row by access), the one it uses now
(the 256 least recently used rows through the accessed index, only as many as needed), and
a plain sum over the table for scale. Each is run 7 times in a rolled-back transaction
through psql; the median of psql alone is subtracted.

    python3 bench/postgres/eviction.py
"""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "plugins"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "shim"))
from shim_postgres import Postgres  # noqa: E402

ROWS = 100000
SETUP = """
CREATE TABLE t (key text PRIMARY KEY, method text NOT NULL, url text NOT NULL,
  status integer NOT NULL, created bigint NOT NULL, expires bigint NOT NULL,
  size bigint NOT NULL, accessed bigint NOT NULL, value bytea NOT NULL);
CREATE INDEX t_accessed ON t (accessed);
CREATE TABLE t_chunks (key text NOT NULL, n integer NOT NULL, data bytea NOT NULL,
  PRIMARY KEY (key, n));
INSERT INTO t SELECT 'k' || i, 'GET', 'http://example.test/some/path/' || i, 200, 0, 0, 1000, i,
  decode(repeat('ab', 1000), 'hex') FROM generate_series(1, %d) i;
VACUUM ANALYZE t;
""" % ROWS
FULL = ROWS * 1000
STATEMENTS = [
    ("schema 1: a window over the table",
     "WITH ranked AS (SELECT key, sum(size) OVER (ORDER BY accessed DESC, key) AS running FROM t),"
     " gone AS (DELETE FROM t WHERE key IN (SELECT key FROM ranked WHERE running > %d)"
     " RETURNING key) DELETE FROM t_chunks WHERE key IN (SELECT key FROM gone)" % (FULL - 3000)),
    ("schema 2: the accessed index, a batch",
     "WITH gone AS (DELETE FROM t WHERE key IN (SELECT key FROM (SELECT key, sum(size) OVER"
     " (ORDER BY accessed, key) - size AS before FROM (SELECT key, size, accessed FROM t WHERE"
     " key <> 'x' ORDER BY accessed, key LIMIT 256 FOR UPDATE SKIP LOCKED) AS oldest) AS ranked"
     " WHERE before < 3000) RETURNING key, size), c AS (DELETE FROM t_chunks WHERE key IN"
     " (SELECT key FROM gone)) SELECT coalesce(sum(size), 0), count(*) FROM gone"),
    ("a sum over the table, for scale", "SELECT coalesce(sum(size), 0) FROM t"),
]


def median_ms(psql, sql):
    times = []
    for _ in range(7):
        start = time.perf_counter()
        subprocess.run(psql, input="BEGIN; %s; ROLLBACK;" % sql, text=True, check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return sorted(times)[3] * 1000


def main():
    pg = Postgres()
    pg.start()
    try:
        psql = [os.path.join(pg.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                pg.url]
        subprocess.run(psql, input=SETUP, text=True, check=True)
        alone = median_ms(psql, "SELECT 1")
        for name, sql in STATEMENTS:
            print("%-40s %7.1f ms" % (name, median_ms(psql, sql) - alone))
    finally:
        pg.stop()
        pg.remove()


if __name__ == "__main__":
    main()
