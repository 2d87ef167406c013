#!/usr/bin/env bash
# Makes a headless Chromium available and prints its path. The dashboard test
# (test/status/dashboard.test.ts) drives it with playwright-core, which downloads no browser of
# its own here: it launches this one by path.
# Order: $TRAINFLEET_CHROMIUM when set (the only one used then), a chromium on PATH, and
# finally Debian's `chromium` package installed with apt-get (root only: a browser needs
# its shared libraries installed system-wide, so unlike promtool it cannot be unpacked
# into a user cache). Quick when it is already there.
# --check never installs: it prints the path or fails saying how to get it (the test uses it).
set -euo pipefail

# shellcheck source=lib/tool-args.sh
source "$(dirname "$0")/lib/tool-args.sh"
tool_args install-chromium "prints the path of chromium; --check never installs" "$@"

fail() {
  cat >&2 <<EOF
install-chromium: $1
The dashboard test (test/status/dashboard.test.ts) needs a headless Chromium. Fix it with one of:
  - bash scripts/install-chromium.sh                         (as root: Debian's chromium package)
  - sudo apt-get install -y --no-install-recommends chromium
  - install Chromium yourself and set TRAINFLEET_CHROMIUM=/path/to/chromium
EOF
  exit 1
}

runs() { "$1" --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1; }

if [ -n "${TRAINFLEET_CHROMIUM:-}" ]; then
  runs "$TRAINFLEET_CHROMIUM" || fail "TRAINFLEET_CHROMIUM=$TRAINFLEET_CHROMIUM does not run ('$TRAINFLEET_CHROMIUM --version' failed)"
  echo "$TRAINFLEET_CHROMIUM"
  exit 0
fi
for name in chromium chromium-browser; do
  if on_path="$(command -v "$name" 2>/dev/null)" && runs "$on_path"; then echo "$on_path"; exit 0; fi
done

[ "$check" = 0 ] || fail "no chromium on PATH; run: bash scripts/install-chromium.sh"
[ "$(id -u)" = 0 ] || fail "no chromium on PATH, and installing Debian's chromium package needs root; run: sudo apt-get install -y --no-install-recommends chromium"
command -v apt-get >/dev/null || fail "no chromium on PATH and no apt-get to install it with"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
say "installing Debian's chromium package with apt-get..."
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet; update only when the first try fails.
if ! apt-get install -y --no-install-recommends chromium >>"$log" 2>&1; then
  say "apt-get install failed; running apt-get update and trying again..."
  apt-get update >>"$log" 2>&1 || true
  apt-get install -y --no-install-recommends chromium >>"$log" 2>&1 || { tail -n 15 "$log" >&2; fail "apt-get install chromium failed (log above)"; }
fi
chromium="$(command -v chromium 2>/dev/null)" || fail "the chromium package installed no chromium on PATH"
runs "$chromium" || fail "$chromium does not run ('$chromium --version' failed)"
say "chromium is ready: $chromium ($("$chromium" --version 2>/dev/null))"
echo "$chromium"
