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

quiet=0
check=0
usage="usage: $0 [--quiet] [--check]   (prints the path of promtool; --check never fetches)"
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --check) check=1 ;;
    -h | --help) echo "$usage"; exit 0 ;;
    *) echo "fetch-promtool: unknown argument '$arg' ($usage)" >&2; exit 2 ;;
  esac
done

say() { if [ "$quiet" = 0 ]; then echo "fetch-promtool: $*" >&2; fi; }

package=prometheus

fail() {
  cat >&2 <<EOF
fetch-promtool: $1
The status API tests (test/status-api.test.ts) check /metrics with Prometheus's promtool. Fix it with one of:
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

cache_home="${XDG_CACHE_HOME:-}"
if [ -z "$cache_home" ]; then
  [ -n "${HOME:-}" ] || fail "neither XDG_CACHE_HOME nor HOME is set, so there is no cache folder"
  cache_home="$HOME/.cache"
fi
cache_dir="$cache_home/trainfleet/promtool"
promtool="$cache_dir/promtool"

if [ -x "$promtool" ] && runs "$promtool"; then echo "$promtool"; exit 0; fi
if [ "$check" = 1 ]; then
  if [ -e "$promtool" ]; then fail "$promtool does not run; fetch it again with: bash scripts/fetch-promtool.sh"; fi
  fail "no promtool on PATH or in $cache_dir; run: bash scripts/fetch-promtool.sh"
fi
if [ -e "$cache_dir" ]; then say "$cache_dir holds no working promtool; fetching it again"; fi

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
  fail "apt-get/dpkg-deb not found, so the $package package cannot be fetched"

mkdir -p "$(dirname "$cache_dir")" || fail "cannot create $(dirname "$cache_dir")"
# Work next to the cache so the final mv is a rename on one filesystem (atomic).
work="$(mktemp -d "$(dirname "$cache_dir")/.fetch-promtool.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$work/apt.log"

# 1) With the system's package lists (apt-get download works as any user when lists exist).
# 2) Else with private lists: a fresh machine may never have run apt-get update, and a normal
#    user cannot write /var/lib/apt, so point apt's state and cache into $work instead.
#    TRAINFLEET_FETCH_PRIVATE_APT=1 skips step 1 (used to test step 2).
download() { (cd "$work" && apt-get "$@" download "$package") >>"$log" 2>&1; }
private=(-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1)
say "downloading the $package package with apt (no root needed; only promtool is kept)..."
if [ "${TRAINFLEET_FETCH_PRIVATE_APT:-0}" = 1 ] || ! download; then
  say "no $package in the system package lists; running apt-get update into a private folder..."
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  # update may warn about unrelated sources; only the download below decides success
  apt-get "${private[@]}" update >>"$log" 2>&1 || true
  if ! download "${private[@]}"; then
    tail -n 15 "$log" >&2
    fail "could not download the $package package with apt (log above)"
  fi
fi

debs=("$work"/"$package"_*.deb)
[ -f "${debs[0]}" ] || fail "apt reported success but left no ${package}_*.deb"
# Only promtool: dpkg-deb --fsys-tarfile streams the data archive, tar takes one member.
mkdir "$work/root"
dpkg-deb --fsys-tarfile "${debs[0]}" 2>>"$log" | tar -x -C "$work/root" ./usr/bin/promtool 2>>"$log" ||
  { tail -n 15 "$log" >&2; fail "the $package package (${debs[0]##*/}) has no usr/bin/promtool (log above)"; }
mkdir "$work/out"
mv "$work/root/usr/bin/promtool" "$work/out/promtool"
chmod 755 "$work/out/promtool"
"$work/out/promtool" --version >>"$log" 2>&1 || { tail -n 15 "$log" >&2; fail "the extracted promtool does not run on this machine ($(uname -sm)) (log above)"; }

rm -rf "$cache_dir"
# mv -T refuses to move onto an existing folder; if a concurrent run won, accept its copy.
mv -T "$work/out" "$cache_dir" 2>/dev/null || { [ -x "$promtool" ] && runs "$promtool"; } || fail "could not write $cache_dir"
say "promtool is ready: $promtool ($(basename "${debs[0]}"))"
echo "$promtool"
