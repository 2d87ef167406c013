#!/usr/bin/env bash
# Makes a NATS server (nats-server, with JetStream) available without root and prints its
# path. The events tests (test/nats-events.test.ts) start their own server with it.
# Order: $TRAINFLEET_NATS_SERVER when set (the only one used then), a nats-server on PATH
# or in /usr/sbin, the user cache, and finally Debian's `nats-server` package (2.9) fetched
# as a normal user the way scripts/fetch-data.sh fetches Fashion-MNIST (apt-get download,
# with private package lists as the fallback; apt checks the archive's signatures), of
# which only usr/sbin/nats-server is kept, in
# ${XDG_CACHE_HOME:-~/.cache}/trainfleet/nats-server/nats-server.
# --check never fetches: it prints the path or fails saying how to get it (the tests use it).
set -euo pipefail

quiet=0
check=0
usage="usage: $0 [--quiet] [--check]   (prints the path of nats-server; --check never fetches)"
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --check) check=1 ;;
    -h | --help) echo "$usage"; exit 0 ;;
    *) echo "fetch-nats-server: unknown argument '$arg' ($usage)" >&2; exit 2 ;;
  esac
done

say() { if [ "$quiet" = 0 ]; then echo "fetch-nats-server: $*" >&2; fi; }

package=nats-server

fail() {
  cat >&2 <<EOF
fetch-nats-server: $1
The events tests (test/nats-events.test.ts) start a real nats-server. Fix it with one of:
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

cache_home="${XDG_CACHE_HOME:-}"
if [ -z "$cache_home" ]; then
  [ -n "${HOME:-}" ] || fail "neither XDG_CACHE_HOME nor HOME is set, so there is no cache folder"
  cache_home="$HOME/.cache"
fi
cache_dir="$cache_home/trainfleet/nats-server"
binary="$cache_dir/nats-server"

if [ -x "$binary" ] && runs "$binary"; then echo "$binary"; exit 0; fi
if [ "$check" = 1 ]; then
  if [ -e "$binary" ]; then fail "$binary does not run; fetch it again with: bash scripts/fetch-nats-server.sh"; fi
  fail "no nats-server on PATH or in $cache_dir; run: bash scripts/fetch-nats-server.sh"
fi
if [ -e "$cache_dir" ]; then say "$cache_dir holds no working nats-server; fetching it again"; fi

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
  fail "apt-get/dpkg-deb not found, so the $package package cannot be fetched"

mkdir -p "$(dirname "$cache_dir")" || fail "cannot create $(dirname "$cache_dir")"
# Work next to the cache so the final mv is a rename on one filesystem (atomic).
work="$(mktemp -d "$(dirname "$cache_dir")/.fetch-nats-server.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$work/apt.log"

# 1) With the system's package lists (apt-get download works as any user when lists exist).
# 2) Else with private lists: a fresh machine may never have run apt-get update, and a normal
#    user cannot write /var/lib/apt, so point apt's state and cache into $work instead.
#    TRAINFLEET_FETCH_PRIVATE_APT=1 skips step 1 (used to test step 2).
download() { (cd "$work" && apt-get "$@" download "$package") >>"$log" 2>&1; }
private=(-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1)
say "downloading the $package package with apt (no root needed; only nats-server is kept)..."
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
# Only nats-server: dpkg-deb --fsys-tarfile streams the data archive, tar takes one member.
mkdir "$work/root"
dpkg-deb --fsys-tarfile "${debs[0]}" 2>>"$log" | tar -x -C "$work/root" ./usr/sbin/nats-server 2>>"$log" ||
  { tail -n 15 "$log" >&2; fail "the $package package (${debs[0]##*/}) has no usr/sbin/nats-server (log above)"; }
mkdir "$work/out"
mv "$work/root/usr/sbin/nats-server" "$work/out/nats-server"
chmod 755 "$work/out/nats-server"
"$work/out/nats-server" --version >>"$log" 2>&1 || { tail -n 15 "$log" >&2; fail "the extracted nats-server does not run on this machine ($(uname -sm)) (log above)"; }

rm -rf "$cache_dir"
# mv -T refuses to move onto an existing folder; if a concurrent run won, accept its copy.
mv -T "$work/out" "$cache_dir" 2>/dev/null || { [ -x "$binary" ] && runs "$binary"; } || fail "could not write $cache_dir"
say "nats-server is ready: $binary ($(basename "${debs[0]}"))"
echo "$binary"
