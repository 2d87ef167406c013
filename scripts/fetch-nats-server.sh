#!/usr/bin/env bash
# Makes a NATS server (nats-server, with JetStream) available without root and prints its
# path. The events tests (test/status/nats-events.test.ts) start their own server with it.
# Order: $TRAINFLEET_NATS_SERVER when set (the only one used then), a nats-server on PATH
# or in /usr/sbin, the user cache, and finally Debian's `nats-server` package (2.9) fetched
# as a normal user the way scripts/fetch-data.sh fetches Fashion-MNIST (apt-get download,
# with private package lists as the fallback; apt checks the archive's signatures), of
# which only usr/sbin/nats-server is kept, in
# ${XDG_CACHE_HOME:-~/.cache}/trainfleet/nats-server/nats-server.
# --check never fetches: it prints the path or fails saying how to get it (the tests use it).
set -euo pipefail

# shellcheck source=lib/tool-args.sh
source "$(dirname "$0")/lib/tool-args.sh"
tool_args fetch-nats-server "prints the path of nats-server; --check never fetches" "$@"

package=nats-server

fail() {
  cat >&2 <<EOF
fetch-nats-server: $1
The events tests (test/status/nats-events.test.ts) start a real nats-server. Fix it with one of:
  - bash scripts/fetch-nats-server.sh      (Debian's $package package, no root needed)
  - sudo apt-get install $package      (installs /usr/sbin/nats-server)
  - install nats-server (2.9 or newer) yourself and set TRAINFLEET_NATS_SERVER=/path/to/nats-server
EOF
  exit 1
}

runs() { "$1" --version >/dev/null 2>&1; }

if [ -n "${TRAINFLEET_NATS_SERVER:-}" ]; then
  runs "$TRAINFLEET_NATS_SERVER" || fail "TRAINFLEET_NATS_SERVER=$TRAINFLEET_NATS_SERVER does not run ('$TRAINFLEET_NATS_SERVER --version' failed)"
  echo "$TRAINFLEET_NATS_SERVER"
  exit 0
fi
if on_path="$(command -v nats-server 2>/dev/null)" && runs "$on_path"; then echo "$on_path"; exit 0; fi
# Debian's package installs it in /usr/sbin, which a normal user's PATH lacks.
if [ -x /usr/sbin/nats-server ] && runs /usr/sbin/nats-server; then echo /usr/sbin/nats-server; exit 0; fi

# shellcheck source=lib/debian-package.sh
source "$(dirname "$0")/lib/debian-package.sh"
cache_dir="$(trainfleet_cache)/nats-server"
binary="$cache_dir/nats-server"

if [ -x "$binary" ] && runs "$binary"; then echo "$binary"; exit 0; fi
if [ "$check" = 1 ]; then
  if [ -e "$binary" ]; then fail "$binary does not run; fetch it again with: bash scripts/fetch-nats-server.sh"; fi
  fail "no nats-server on PATH or in $cache_dir; run: bash scripts/fetch-nats-server.sh"
fi
if [ -e "$cache_dir" ]; then say "$cache_dir holds no working nats-server; fetching it again"; fi
fetch_binary "$package" ./usr/sbin/nats-server "$cache_dir"
