#!/usr/bin/env bash
# Tests the Debian package: builds it from the debug build (scripts/package.sh --debug), checks
# its contents and conffiles with dpkg-deb, unpacks it into a temporary root, verifies the
# systemd unit (when systemd-analyze is there), checks that the env file lists every setting,
# and runs the unpacked binary with the unpacked site and env file: the page loads, its wasm is
# served, and a chat on the built-in emulator answers.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "test-package: $*" >&2; exit 1; }

scripts/package.sh --debug
version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
deb="target/debian/parley_${version}_amd64.deb"
[ -f "$deb" ] || fail "no $deb"

contents=$(dpkg-deb --contents "$deb")
# The page's files carry their content's hash in their names (target/site/hash.txt).
hash_of() { awk -v k="$1:" '$1 == k { print $2 }' target/site/hash.txt; }
wasm="pkg/parley.$(hash_of wasm).wasm" js="pkg/parley.$(hash_of js).js"
for path in ./usr/bin/parley "./usr/share/parley/site/$wasm" "./usr/share/parley/site/$js" \
            ./usr/share/parley/site/hash.txt ./etc/parley/parley.env ./usr/share/doc/parley/README.md; do
  grep -q " $path\$" <<<"$contents" || fail "$path is not in the package"
done
unit=$(grep -oE '\./(usr/)?lib/systemd/system/parley\.service$' <<<"$contents") || fail "no parley.service"
grep -q -- '-rw-r----- .* ./etc/parley/parley.env$' <<<"$contents" || fail "parley.env is not 0640"
dpkg-deb --info "$deb" conffiles | grep -qx /etc/parley/parley.env || fail "parley.env is not a conffile"
dpkg-deb --field "$deb" Package Version Architecture

root=$(mktemp -d /tmp/parley-root.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
service="$root/${unit#./}"
for setting in DynamicUser=yes StateDirectory=parley EnvironmentFile=-/etc/parley/parley.env \
               ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes Restart=on-failure KillSignal=SIGTERM; do
  grep -qx "$setting" "$service" || fail "parley.service lacks $setting"
done
if command -v systemd-analyze >/dev/null; then
  # Verified as installed, but with ExecStart pointing at the unpacked binary (the host has no
  # /usr/bin/parley); then its exposure as systemd rates it.
  mkdir -p "$root/check"
  sed "s|^ExecStart=/usr/bin/parley\$|ExecStart=$root/usr/bin/parley|" "$service" >"$root/check/parley.service"
  systemd-analyze verify "$root/check/parley.service" || fail "systemd-analyze verify"
  systemd-analyze security --offline=yes "$root/check/parley.service" | tail -1
else
  echo "test-package: systemd-analyze is not here; the unit's settings were checked by hand"
fi

# Every setting parley reads is in the env file.
for variable in $(grep -ohE 'env = "[A-Z_]+"' server/src/config.rs server/src/auth/config.rs server/src/budgets/mod.rs | cut -d'"' -f2); do
  grep -qE "^#?$variable=" "$root/etc/parley/parley.env" || fail "parley.env does not list $variable"
done

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(
  set -a
  # shellcheck disable=SC1091
  . "$root/etc/parley/parley.env"
  set +a
  export PARLEY_SITE_ROOT="$root/usr/share/parley/site" PARLEY_DATA_DIR="$root/var/lib/parley"
  export PARLEY_LISTEN="127.0.0.1:$port" GEMINI_API_KEY=""
  exec "$root/usr/bin/parley"
) >"$root/parley.log" 2>&1 &
pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$url/healthz" >/dev/null && break; sleep 0.1; done
page=$(curl -fs "$url/") || { cat "$root/parley.log"; fail "the page did not load"; }
grep -q 'Offline demo' <<<"$page" || fail "the page is not the Offline demo"
grep -q "/$js" <<<"$page" || fail "the page does not name the hashed $js"
cache=$(curl -fs -o /dev/null -D - "$url/$wasm" | tr -d '\r' | awk -F': ' 'tolower($1) == "cache-control" { print $2 }') \
  || fail "the wasm is not served from the unpacked site"
[ "$cache" = "public, max-age=31536000, immutable" ] || fail "the hashed wasm is served with Cache-Control: $cache"
answer=$(curl -fs -H 'content-type: application/json' \
  -d '{"contents":[{"role":"user","parts":[{"text":"hello from the package test"}]}]}' "$url/api/chat")
grep -q '"type":"done"' <<<"$answer" || fail "no answer: $answer"
text=$(python3 -c 'import json, sys; print("".join(e.get("text", "") for e in map(json.loads, sys.stdin) if e["type"] == "delta"))' <<<"$answer")
grep -q 'You asked: “hello from the package test”' <<<"$text" || fail "the answer does not quote the question: $text"
echo "test-package: $deb ($(du -h "$deb" | cut -f1)) unpacks, and what it holds serves the site and answers"
