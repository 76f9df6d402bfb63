#!/usr/bin/env bash
# Builds Parley's container image (Containerfile) with Podman, or Docker when there is no
# Podman (CONTAINER_ENGINE=docker to choose):
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
engine=${CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}
[ -n "$engine" ] || fail "neither podman nor docker is installed"
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

args=(build -f Containerfile
      --build-arg "VERSION=$version"
      --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
      --build-arg "SOURCE=$(git remote get-url origin 2>/dev/null || true)")
# Podman writes OCI images by default, which have no HEALTHCHECK.
[ "$(basename "$engine")" = podman ] && args+=(--format docker)
for tag in "${tags[@]}"; do args+=(-t "$tag"); done
"$engine" "${args[@]}" "${extra[@]}" "$stage"
echo "container.sh: built ${tags[*]}"
