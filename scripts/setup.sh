#!/usr/bin/env bash
# Installs what Parley's build and tests need, skipping whatever is already there at the
# right version. Safe to run again and again; fast when nothing is missing.
#
#   wasm32-unknown-unknown target  (rustup)
#   cargo-leptos 0.3.11            (cargo install; needs rustc >= 1.96, so nightly if stable is older)
#   cargo-fuzz 0.13.2 + nightly    (the fuzz targets in fuzz/ build with nightly's sanitizers)
#   leptosfmt 0.1.33               (formats the `view!` macros; checked by test.sh)
#   wasm-bindgen-cli               (exactly the wasm-bindgen version in Cargo.lock)
#   cargo-deb                      (only for the Debian package: scripts/package.sh)
#   postgresql                     (Debian's package: the tests start a throwaway server)
#   chromium                       (Debian's package, for Playwright)      -- with --browser
#   end2end/node_modules           (npm ci: @playwright/test, binaryen's wasm-opt, axe-core, oidc-provider)
#   podman, runc, debootstrap      (Debian's packages: scripts/test-container.sh)
#   target/sdk-venv                (Python venv with google-genai, to test the emulator with
#                                   Google's own SDK, moto's S3 server for the tests, and
#                                   podman-compose; emulator/sdk-tests/requirements.txt,
#                                   scripts/test-requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=false
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=true ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

CARGO_LEPTOS_VERSION=0.3.11
CARGO_FUZZ_VERSION=0.13.2
LEPTOSFMT_VERSION=0.1.33
CARGO_DEB_VERSION=3.7.0
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
export PATH="$HOME/.cargo/bin:$PATH"

# The name of an installed nightly toolchain, installing one first if there is none.
nightly_toolchain() {
  local nightly
  nightly=$(rustup toolchain list | grep -m1 '^nightly' | cut -d' ' -f1 || true)
  if [ -z "$nightly" ]; then
    say "installing a nightly toolchain" >&2
    rustup toolchain install nightly --profile minimal >&2
    nightly=nightly
  fi
  echo "$nightly"
}

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
  # cargo-leptos 0.3.11 needs rustc >= 1.96: use a nightly toolchain when stable is older.
  toolchain=""
  stable_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
  if [ "$stable_minor" -lt 96 ]; then
    toolchain="+$(nightly_toolchain)"
  fi
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 16 minutes on 2 cores)"
  cargo $toolchain install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
fi

if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo "+$(nightly_toolchain)" install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

if ! leptosfmt --version 2>/dev/null | grep -q "$LEPTOSFMT_VERSION"; then
  say "installing leptosfmt $LEPTOSFMT_VERSION"
  cargo install leptosfmt --version "$LEPTOSFMT_VERSION" --locked
fi

if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  say "installing cargo-deb $CARGO_DEB_VERSION (for scripts/package.sh)"
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --no-default-features
fi

wbg_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg_version\$"; then
  say "installing wasm-bindgen-cli $wbg_version (matches Cargo.lock)"
  # Not --locked: 0.2.130's lock file names a dependency version missing from crates.io.
  cargo install wasm-bindgen-cli --version "$wbg_version" --force
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  say "installing Debian's postgresql"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql
  # Only the binaries are needed: the tests run their own clusters.
  $SUDO systemctl disable --now postgresql >/dev/null 2>&1 || true
fi

# Podman (rootful, runc) and debootstrap: scripts/test-container.sh builds and runs the image
# and compose.yaml with them (podman-compose itself is in the venv below).
# netavark and aardvark-dns: the compose services find each other by name.
if command -v apt-get >/dev/null && { ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null ||
     ! command -v runc >/dev/null || [ ! -x /usr/lib/podman/aardvark-dns ]; }; then
  say "installing Debian's podman, runc, netavark, aardvark-dns and debootstrap"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q podman runc netavark aardvark-dns debootstrap
fi

if $want_browser && [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi

if [ ! -f end2end/node_modules/.package-lock.json ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  say "installing end2end npm packages"
  # Playwright must not download its own browsers: Debian's chromium is used.
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

venv=target/sdk-venv
requirements=emulator/sdk-tests/requirements.txt
services=scripts/test-requirements.txt
if [ ! -f "$venv/.installed" ] || [ "$requirements" -nt "$venv/.installed" ] || [ "$services" -nt "$venv/.installed" ]; then
  say "installing google-genai, moto and podman-compose into $venv"
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q python3-venv
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" -r "$services"
  touch "$venv/.installed"
fi
