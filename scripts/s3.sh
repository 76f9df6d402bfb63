#!/usr/bin/env bash
# A throwaway S3-compatible server on loopback for the tests: moto's server (from PyPI, in the
# venv setup.sh makes), with one bucket.
#
#   scripts/s3.sh start DIR PORT BUCKET   # prints the endpoint URL
#   scripts/s3.sh stop DIR                # stops it and removes DIR
set -euo pipefail
cd "$(dirname "$0")/.."
server=target/sdk-venv/bin/moto_server
[ -x "$server" ] || { echo "s3.sh: moto is not installed (run scripts/setup.sh)" >&2; exit 1; }

case "${1:-}" in
  start)
    dir=$2 port=$3 bucket=$4
    rm -rf "$dir"
    mkdir -p "$dir"
    "$server" -H 127.0.0.1 -p "$port" >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    endpoint="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
      curl -fsS -o /dev/null "$endpoint/" 2>/dev/null && break
      sleep 0.1
    done
    curl -fsS -o /dev/null -X PUT "$endpoint/$bucket" || { cat "$dir/server.log" >&2; exit 1; }
    echo "$endpoint"
    ;;
  stop)
    dir=$2
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: s3.sh start DIR PORT BUCKET | stop DIR" >&2
    exit 2
    ;;
esac
