#!/usr/bin/env bash
# Tests the container image and compose.yaml with Podman and podman-compose, from the debug
# build (skipped, saying so, when Podman is not installed):
#
#  1. a Debian base image made locally once (debootstrap, tagged
#     docker.io/library/debian:bookworm-slim) and a stand-in for the official PostgreSQL
#     image (packaging/container/test-postgres), so that nothing comes from a registry;
#  2. the image (scripts/container.sh --debug: its HEALTHCHECK, user and labels checked),
#     then compose.yaml as a user runs it, with
#     a generated .env, under the project name parley-test on a free port;
#  3. /readyz answers 200; Parley runs as uid 10001 and `parley healthcheck` passes in its
#     container; the page and its wasm (brotli) load; PostgreSQL is restarted
#     under the site and it recovers without restarting; the Playwright @smoke subset runs
#     against it (a photo and a PDF answered by the emulator service, the Files view,
#     export, and everything deleted);
#  4. the stack stops within 5 s; containers, volumes, network and the image are removed.
#
# Podman here runs in a sandbox: packaging/container/containers.conf (CONTAINERS_CONF).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
say() { printf 'test-container: %s\n' "$*"; }
fail() { echo "test-container: $*" >&2; exit 1; }

if ! command -v podman >/dev/null; then
  say "podman is not installed: skipped (scripts/setup.sh installs it on Debian)"
  exit 0
fi
export CONTAINERS_CONF="$root/packaging/container/containers.conf"
# Podman's complaint, on each start and stop, that there is no systemd to time healthchecks.
quiet() { "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }
compose=("$root/target/sdk-venv/bin/podman-compose")
[ -x "${compose[0]}" ] || fail "no podman-compose in target/sdk-venv (scripts/setup.sh)"
started=$(date +%s)

base=docker.io/library/debian:bookworm-slim
if ! podman image exists "$base"; then
  say "making the base image $base (debootstrap, once)"
  rootfs=$(mktemp -d /tmp/parley-rootfs.XXXXXX)
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$base" >/dev/null
  rm -rf "$rootfs"
fi
postgres=localhost/parley-test-postgres:15
if ! podman image exists "$postgres"; then
  say "building the PostgreSQL stand-in $postgres (once)"
  podman build -q --pull=never --format docker -t "$postgres" packaging/container/test-postgres >/dev/null
fi

image=localhost/parley-test:debug
say "building $image"
scripts/container.sh --debug --tag "$image" -- -q --pull=never >/dev/null
config=$(podman image inspect "$image" --format '{{json .Config.Healthcheck.Test}} {{.Config.User}} {{index .Labels "org.opencontainers.image.version"}}')
[ "$config" = "[\"CMD\",\"/usr/bin/parley\",\"healthcheck\"] parley $(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)" ] ||
  fail "the image's HEALTHCHECK, user or version label: $config"

work=$(mktemp -d /tmp/parley-compose.XXXXXX)
project=parley-test
cleanup() {
  status=$?
  if [ "$status" -ne 0 ] && [ -f "$work/compose.yaml" ]; then
    (cd "$work" && "${compose[@]}" -p "$project" logs parley 2>/dev/null | tail -40) || true
  fi
  (cd "$work" && "${compose[@]}" -p "$project" down -v -t 1 >/dev/null 2>&1) || true
  podman rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cp compose.yaml "$work/"
cat >"$work/.env" <<EOF
PARLEY_SESSION_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
POSTGRES_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
GEMINI_API_KEY=
PARLEY_PORT=127.0.0.1:$port
PARLEY_IMAGE=$image
PARLEY_POSTGRES_IMAGE=$postgres
EOF
url="http://127.0.0.1:$port"
cd "$work"
"${compose[@]}" -p "$project" up -d >/dev/null 2>&1 || fail "compose up failed"

# Waits up to $2 seconds for /readyz to answer 200; says what it answered meanwhile.
ready() {
  local deadline=$(( $(date +%s) + $2 )) seen=""
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ]; do
    seen=$(curl -s "$url/readyz" || true)
    [ "$(date +%s)" -lt "$deadline" ] || fail "$1: /readyz did not answer 200 in $2 s (last: ${seen:-no answer})"
    sleep 0.5
  done
  say "$1: ready${seen:+ (meanwhile /readyz said $seen)}"
}
ready "compose up" 90
[ "$(curl -s "$url/healthz")" = ok ] || fail "/healthz"

page=$(curl -sf "$url/") || fail "the page did not load"
wasm=$(grep -oE '/pkg/parley\.[A-Za-z0-9_-]+\.wasm' <<<"$page" | head -1)
[ -n "$wasm" ] || fail "the page names no wasm"
encoding=$(curl -sf -o /dev/null -D - -H 'Accept-Encoding: br' "$url$wasm" | tr -d '\r' | awk -F': ' 'tolower($1) == "content-encoding" { print $2 }')
[ "$encoding" = br ] || fail "the wasm came without brotli (content-encoding: ${encoding:-none})"
say "the page and its wasm ($wasm, brotli) load"

container=$(podman ps --filter "label=io.podman.compose.project=$project" --filter "label=com.docker.compose.service=parley" --format '{{.Names}}' | head -1)
[ -n "$container" ] || fail "no parley container"
[ "$(podman exec "$container" id -u)" = 10001 ] || fail "parley runs as root"
podman exec "$container" /usr/bin/parley healthcheck || fail "parley healthcheck failed in the container"
pg=$(podman ps --filter "label=io.podman.compose.project=$project" --filter "label=com.docker.compose.service=postgres" --format '{{.Names}}' | head -1)
[ -n "$pg" ] || fail "no postgres container"
since=$(podman inspect -f '{{.State.StartedAt}}' "$container")
quiet podman restart -t 5 "$pg" >/dev/null
ready "PostgreSQL restarted" 60
[ "$(podman inspect -f '{{.State.StartedAt}}' "$container")" = "$since" ] || fail "parley restarted with PostgreSQL"

say "the Playwright @smoke subset against the stack"
(cd "$root/end2end" && PARLEY_E2E_URL="$url" npx playwright test --grep @smoke --reporter=line)
[ "$(podman inspect -f '{{.State.StartedAt}}' "$container")" = "$since" ] || fail "parley restarted during the smoke run"

names=$(podman ps --filter "label=io.podman.compose.project=$project" --format '{{.Names}}')
t0=$(date +%s%N)
# shellcheck disable=SC2086
quiet podman stop -t 10 $names >/dev/null
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$stop_ms" -le 5000 ] || fail "the stack took $stop_ms ms to stop (SIGTERM not honoured?)"
say "the stack stopped in $stop_ms ms; the whole test took $(( $(date +%s) - started )) s"
