#!/usr/bin/env bash
# Makes the Fashion-MNIST files available without root and prints the folder holding them.
# An explicit $TRAINFLEET_DATA_DIR is the only folder used when set. Otherwise: the installed
# Debian package, the user cache, and finally the Debian package fetched as a normal user
# into the cache (apt-get download + dpkg-deb -x need no root).
# The worker searches the same folders in the same order (worker/src/dataset/fashion-mnist.ts).
set -euo pipefail

quiet=0
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    -h | --help)
      echo "usage: $0 [--quiet]   (prints the folder holding the Fashion-MNIST files)"
      exit 0 ;;
    *) echo "fetch-data: unknown argument '$arg' (usage: $0 [--quiet])" >&2; exit 2 ;;
  esac
done

say() { if [ "$quiet" = 0 ]; then echo "fetch-data: $*" >&2; fi; }

files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
# sha256 of the files in dataset-fashion-mnist 0.0~git20200523.55506a9-1 (Debian 12); the
# cache is only trusted when it matches, so a truncated or tampered copy is replaced.
checksums="b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7  train-images-idx3-ubyte.gz
0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056  train-labels-idx1-ubyte.gz
cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa  t10k-images-idx3-ubyte.gz
8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05  t10k-labels-idx1-ubyte.gz"
package=dataset-fashion-mnist
system_dir=/usr/share/datasets/fashion-mnist

complete() { # all 4 files present and non-empty
  local f
  for f in "${files[@]}"; do [ -s "$1/$f" ] || return 1; done
}
verified() { complete "$1" && (cd "$1" && sha256sum --quiet --check --status <<<"$checksums"); }

fail() {
  cat >&2 <<EOF
fetch-data: $1
Fashion-MNIST is needed for training. Fix it with one of:
  - sudo apt-get install $package      (files land in $system_dir)
  - download the 4 files (${files[*]})
    from the Fashion-MNIST project (zalandoresearch/fashion-mnist on GitHub) into a folder,
    then set TRAINFLEET_DATA_DIR=<folder> or pass --data-dir <folder>
EOF
  exit 1
}

if [ -n "${TRAINFLEET_DATA_DIR:-}" ]; then
  if complete "$TRAINFLEET_DATA_DIR"; then echo "$TRAINFLEET_DATA_DIR"; exit 0; fi
  fail "TRAINFLEET_DATA_DIR=$TRAINFLEET_DATA_DIR lacks some of ${files[*]}; put them there, or unset it to use the cache"
fi
if complete "$system_dir"; then echo "$system_dir"; exit 0; fi

# shellcheck source=lib/debian-package.sh
source "$(dirname "$0")/lib/debian-package.sh"
cache_dir="$(trainfleet_cache)/fashion-mnist"
if verified "$cache_dir"; then echo "$cache_dir"; exit 0; fi
if [ -e "$cache_dir" ]; then say "$cache_dir is incomplete or corrupt; fetching it again"; fi

mkdir -p "$(dirname "$cache_dir")"
# Work next to the cache so the final mv is a rename on one filesystem (atomic).
work="$(mktemp -d "$(dirname "$cache_dir")/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$work/apt.log"
say "downloading the $package package with apt (no root needed)..."
download_deb "$package" "$work" "$log"
dpkg-deb -x "$deb" "$work/root" >>"$log" 2>&1 || fail "could not unpack $deb"
mkdir "$work/out"
for f in "${files[@]}"; do
  cp "$work/root$system_dir/$f" "$work/out/$f" || fail "the $package package has no $f"
done
verified "$work/out" || fail "the files of the downloaded $package do not match the expected sha256 checksums"

rm -rf "$cache_dir"
# mv -T refuses to move into an existing folder; if a concurrent run won, accept its copy.
mv -T "$work/out" "$cache_dir" 2>/dev/null || verified "$cache_dir" || fail "could not write $cache_dir"
say "Fashion-MNIST is ready in $cache_dir"
echo "$cache_dir"
