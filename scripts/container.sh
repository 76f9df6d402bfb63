#!/usr/bin/env bash
# Builds Parley's container image (Containerfile) with Docker when its daemon answers, else
# Podman (CONTAINER_ENGINE=podman or docker to choose), on the slim image of this host's
# Debian or Ubuntu release (the binaries need its glibc):
#
#   scripts/container.sh            the release build (cargo leptos build --release
#                                   --precompress --split, and the emulator), tagged
#                                   localhost/parley:<version> and localhost/parley:latest
#   scripts/container.sh --debug    the debug build already in target/ (what the tests use)
#   --tag NAME:TAG                  tag the image NAME:TAG instead
#   -- ARGS                         more arguments for `build` (e.g. --pull=never)
#
# The build context is staged in target/container/: parley, gemini-emulator, and site/ with
# hash.txt (the hashed asset names the server looks for).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/end2end/node_modules/.bin:$PATH"
fail() { echo "container.sh: $*" >&2; exit 2; }

profile=release tags=() extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) profile=debug ;;
    --tag) shift; tags+=("${1:?--tag needs NAME:TAG}") ;;
    --) shift; extra=("$@"); break ;;
    *) fail "unknown option $1" ;;
  esac
  shift
done
# Docker when its daemon answers (then `docker compose` finds the image), else Podman.
if [ -z "${CONTAINER_ENGINE:-}" ] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  engine=docker
else
  engine=${CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}
fi
[ -n "$engine" ] || fail "neither podman nor docker is installed"
# The runtime image of the build host's release: the binaries need its glibc or a newer one.
base=$(
  ID="" VERSION_CODENAME="" VERSION_ID=""
  # shellcheck disable=SC1091
  [ -r /etc/os-release ] && . /etc/os-release
  case "$ID" in
    debian) [ -n "$VERSION_CODENAME" ] && echo "docker.io/library/debian:${VERSION_CODENAME}-slim" && exit ;;
    ubuntu) [ -n "$VERSION_ID" ] && echo "docker.io/library/ubuntu:${VERSION_ID}" && exit ;;
  esac
  echo "container.sh: not Debian or Ubuntu: the image is Debian 12's, whose glibc (2.36) must be no older than this host's" >&2
  echo docker.io/library/debian:bookworm-slim
)
version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
[ ${#tags[@]} -gt 0 ] || tags=("localhost/parley:$version" "localhost/parley:latest")

if [ "$profile" = release ]; then
  cargo leptos build --release --precompress --split
  cargo build --release -p gemini-emulator --bin gemini-emulator
fi
for built in "target/$profile/parley" "target/$profile/gemini-emulator" "target/$profile/hash.txt" target/site/pkg; do
  [ -e "$built" ] || fail "no $built: build first (cargo leptos build --split; cargo build -p gemini-emulator)"
done

stage=target/container
rm -rf "$stage"
mkdir -p "$stage"
# Hard links where the file system allows: the debug binary is large.
cp -l "target/$profile/parley" "target/$profile/gemini-emulator" "$stage/" 2>/dev/null ||
  cp "target/$profile/parley" "target/$profile/gemini-emulator" "$stage/"
cp -r target/site "$stage/site"
cp "target/$profile/hash.txt" "$stage/site/hash.txt"

# The source's address without any credentials in it (a CI token, say).
source=$(git remote get-url origin 2>/dev/null | sed -E 's#://[^@/]*@#://#' || true)
args=(build -f Containerfile
      --build-arg "BASE=$base"
      --build-arg "VERSION=$version"
      --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
      --build-arg "SOURCE=$source")
# Podman writes OCI images by default, which have no HEALTHCHECK.
[ "$(basename "$engine")" = podman ] && args+=(--format docker)
for tag in "${tags[@]}"; do args+=(-t "$tag"); done
"$engine" "${args[@]}" "${extra[@]}" "$stage"
echo "container.sh: built ${tags[*]} on $base"
