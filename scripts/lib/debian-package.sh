# Sourced by the fetch scripts: what they share to get a file out of a Debian package as a
# normal user. The caller defines `say` and `fail` (its own messages) before sourcing.

# The user cache folder for trainfleet: ${XDG_CACHE_HOME:-~/.cache}/trainfleet.
trainfleet_cache() {
  local cache_home="${XDG_CACHE_HOME:-}"
  if [ -z "$cache_home" ]; then
    [ -n "${HOME:-}" ] || fail "neither XDG_CACHE_HOME nor HOME is set, so there is no cache folder"
    cache_home="$HOME/.cache"
  fi
  echo "$cache_home/trainfleet"
}

# download_deb PACKAGE WORK LOG: leaves PACKAGE_*.deb in WORK and sets $deb to its path.
# 1) With the system's package lists (apt-get download works as any user when lists exist).
# 2) Else with private lists: a fresh machine may never have run apt-get update, and a normal
#    user cannot write /var/lib/apt, so point apt's state and cache into WORK instead.
#    TRAINFLEET_FETCH_PRIVATE_APT=1 skips step 1 (used to test step 2).
# apt checks the archive's signatures either way.
download_deb() {
  local package=$1 work=$2 log=$3
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    fail "apt-get/dpkg-deb not found, so the $package package cannot be fetched"
  local private=(-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1)
  if [ "${TRAINFLEET_FETCH_PRIVATE_APT:-0}" = 1 ] || ! (cd "$work" && apt-get download "$package") >>"$log" 2>&1; then
    say "no $package in the system package lists; running apt-get update into a private folder..."
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    # update may warn about unrelated sources; only the download below decides success
    apt-get "${private[@]}" update >>"$log" 2>&1 || true
    if ! (cd "$work" && apt-get "${private[@]}" download "$package") >>"$log" 2>&1; then
      tail -n 15 "$log" >&2
      fail "could not download the $package package with apt (log above)"
    fi
  fi
  local debs=("$work"/"$package"_*.deb)
  [ -f "${debs[0]}" ] || fail "apt reported success but left no ${package}_*.deb"
  deb="${debs[0]}"
}

# fetch_binary PACKAGE MEMBER CACHE_DIR: puts the executable MEMBER (./usr/bin/x) of Debian's
# PACKAGE into CACHE_DIR, checked to run with --version; prints its path.
fetch_binary() {
  local package=$1 member=$2 cache_dir=$3
  local name="${member##*/}"
  mkdir -p "$(dirname "$cache_dir")" || fail "cannot create $(dirname "$cache_dir")"
  # Work next to the cache so the final mv is a rename on one filesystem (atomic).
  work="$(mktemp -d "$(dirname "$cache_dir")/.fetch-$name.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  local log="$work/apt.log"
  say "downloading the $package package with apt (no root needed; only $name is kept)..."
  download_deb "$package" "$work" "$log"
  # Only that file: dpkg-deb --fsys-tarfile streams the data archive, tar takes one member.
  mkdir "$work/root" "$work/out"
  dpkg-deb --fsys-tarfile "$deb" 2>>"$log" | tar -x -C "$work/root" "$member" 2>>"$log" ||
    { tail -n 15 "$log" >&2; fail "the $package package (${deb##*/}) has no ${member#./} (log above)"; }
  mv "$work/root/$member" "$work/out/$name"
  chmod 755 "$work/out/$name"
  "$work/out/$name" --version >>"$log" 2>&1 || { tail -n 15 "$log" >&2; fail "the extracted $name does not run on this machine ($(uname -sm)) (log above)"; }
  rm -rf "$cache_dir"
  # mv -T refuses to move onto an existing folder; if a concurrent run won, accept its copy.
  mv -T "$work/out" "$cache_dir" 2>/dev/null || "$cache_dir/$name" --version >/dev/null 2>&1 || fail "could not write $cache_dir"
  say "$name is ready: $cache_dir/$name (${deb##*/})"
  echo "$cache_dir/$name"
}
