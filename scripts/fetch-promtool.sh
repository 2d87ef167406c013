#!/usr/bin/env bash
# Makes Prometheus's promtool available without root and prints its path. The tests run
# `promtool check metrics` on live scrapes of the coordinator and a parameter-server shard.
# Order: $TRAINFLEET_PROMTOOL when set (the only one used then), a promtool on PATH, the
# user cache, and finally Debian's `prometheus` package fetched as a normal user the way
# scripts/fetch-data.sh fetches Fashion-MNIST (apt-get download, with private package lists
# as the fallback; apt checks the archive's signatures), of which only usr/bin/promtool is
# kept, in ${XDG_CACHE_HOME:-~/.cache}/trainfleet/promtool/promtool.
# --check never fetches: it prints the path or fails saying how to get it (the tests use it).
set -euo pipefail

# shellcheck source=lib/tool-args.sh
source "$(dirname "$0")/lib/tool-args.sh"
tool_args fetch-promtool "prints the path of promtool; --check never fetches" "$@"

package=prometheus

fail() {
  cat >&2 <<EOF
fetch-promtool: $1
The status API tests (test/status/status-api.test.ts) check /metrics with Prometheus's promtool. Fix it with one of:
  - bash scripts/fetch-promtool.sh      (Debian's $package package, no root needed)
  - sudo apt-get install $package      (puts promtool on PATH)
  - install promtool yourself and set TRAINFLEET_PROMTOOL=/path/to/promtool
EOF
  exit 1
}

runs() { "$1" --version >/dev/null 2>&1; }

if [ -n "${TRAINFLEET_PROMTOOL:-}" ]; then
  runs "$TRAINFLEET_PROMTOOL" || fail "TRAINFLEET_PROMTOOL=$TRAINFLEET_PROMTOOL does not run ('$TRAINFLEET_PROMTOOL --version' failed)"
  echo "$TRAINFLEET_PROMTOOL"
  exit 0
fi
if on_path="$(command -v promtool 2>/dev/null)" && runs "$on_path"; then echo "$on_path"; exit 0; fi

# shellcheck source=lib/debian-package.sh
source "$(dirname "$0")/lib/debian-package.sh"
cache_dir="$(trainfleet_cache)/promtool"
promtool="$cache_dir/promtool"

if [ -x "$promtool" ] && runs "$promtool"; then echo "$promtool"; exit 0; fi
if [ "$check" = 1 ]; then
  if [ -e "$promtool" ]; then fail "$promtool does not run; fetch it again with: bash scripts/fetch-promtool.sh"; fi
  fail "no promtool on PATH or in $cache_dir; run: bash scripts/fetch-promtool.sh"
fi
if [ -e "$cache_dir" ]; then say "$cache_dir holds no working promtool; fetching it again"; fi
fetch_binary "$package" ./usr/bin/promtool "$cache_dir"
