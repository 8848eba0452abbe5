#!/usr/bin/python3
"""Times Debian's python3-requests-cache (0.9.8) SQLite backend for bench_storage.

Two levels are measured per value size, each on a fresh database in a scratch folder:
  * "requests-cache SQLiteDict": the storage layer alone (bytes in, bytes out), the closest
    match to curlcache's Storage::put/get;
  * "requests-cache SQLiteCache": save_response/get_response of a response whose body has
    that size (conversion to CachedResponse, pickling, storage).
Prints one line per (backend, size, op): name, size, op, median, p90, p99 (µs), tab-separated.
"""
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

import requests
from requests_cache.backends.sqlite import SQLiteCache, SQLiteDict


def percentiles(samples_ns):
    ordered = sorted(samples_ns)

    def at(q):
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0

    return statistics.median(ordered) / 1000.0, at(0.90), at(0.99)


def make_response(key, body):
    request = requests.Request('GET', f'http://origin.test/item/{key}').prepare()
    response = requests.Response()
    response.status_code = 200
    response.reason = 'OK'
    response.url = request.url
    response.request = request
    response.headers['Content-Type'] = 'application/octet-stream'
    response.headers['Content-Length'] = str(len(body))
    response._content = body
    response.encoding = None
    return response


def time_ops(count, op):
    samples = []
    for i in range(count):
        start = time.perf_counter_ns()
        op(i)
        samples.append(time.perf_counter_ns() - start)
    return samples


def report(name, size, op, samples):
    median, p90, p99 = percentiles(samples)
    print(f'{name}\t{size}\t{op}\t{median:.2f}\t{p90:.2f}\t{p99:.2f}', flush=True)


def main():
    sizes = [int(s) for s in sys.argv[1].split(',')] if len(sys.argv) > 1 else [1024, 102400, 1048576]
    counts = [int(c) for c in sys.argv[2].split(',')] if len(sys.argv) > 2 else [1000, 200, 50]
    scratch = tempfile.mkdtemp(prefix='curlcache-bench-rc-')
    rng = random.Random(42)
    try:
        for size, count in zip(sizes, counts):
            body = os.urandom(size)
            keys = [f'{i:032x}' for i in range(count)]

            store = SQLiteDict(os.path.join(scratch, f'dict-{size}.sqlite'), 'responses')
            report('requests-cache SQLiteDict', size, 'put', time_ops(count, lambda i: store.__setitem__(keys[i], body)))
            order = [rng.randrange(count) for _ in range(count * 3)]
            report('requests-cache SQLiteDict', size, 'get', time_ops(len(order), lambda i: store[keys[order[i]]]))
            store.close()

            cache = SQLiteCache(os.path.join(scratch, f'cache-{size}'))
            responses = [make_response(key, body) for key in keys]
            report('requests-cache SQLiteCache', size, 'put',
                   time_ops(count, lambda i: cache.save_response(responses[i], cache_key=keys[i])))
            report('requests-cache SQLiteCache', size, 'get',
                   time_ops(len(order), lambda i: cache.get_response(keys[order[i]])))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == '__main__':
    main()
