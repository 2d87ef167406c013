#!/usr/bin/env bash
# Makes scikit-learn's small bundled datasets (digits, wine, iris, breast cancer) available
# without root and prints the folder holding them: the CSV files that Debian's python3-sklearn
# ships, used as a second real dataset (converted with `trainfleet dataset convert`).
# An explicit $TRAINFLEET_SKLEARN_DATA_DIR is the only folder used when set. Otherwise: the
# installed package's folder, the user cache, and finally the package fetched as a normal
# user into the cache (apt-get download + dpkg-deb -x need no root).
set -euo pipefail

quiet=0
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    -h | --help)
      echo "usage: $0 [--quiet]   (prints the folder holding the scikit-learn CSV files)"
      exit 0 ;;
    *) echo "fetch-sklearn-data: unknown argument '$arg' (usage: $0 [--quiet])" >&2; exit 2 ;;
  esac
done

say() { if [ "$quiet" = 0 ]; then echo "fetch-sklearn-data: $*" >&2; fi; }

# digits.csv.gz: 1797 rows of 64 pixels (0-16, 8x8) then the digit, no header. The others
# start with scikit-learn's line "n_samples,n_features,class names..." and end each row
# with the class.
files=(digits.csv.gz wine_data.csv iris.csv breast_cancer.csv)
# sha256 of the files in python3-sklearn 1.2.1+dfsg-1 (Debian 12); the cache is only trusted
# when it matches, so a truncated or tampered copy is replaced.
checksums="46abec6b12486ad9e51943373abcf22bbea1b5a51a1619b361570d8893f1464a  digits.csv.gz
10e8a802908b34f86e5da8ce962f3c806694bc98450a18f61851af59f324bede  wine_data.csv
f13ffa8fdd56fd8e6c8d16d4081a3fbd3114bcd0aae4256c43205169cd9d1449  iris.csv
fed3eb72d0575ef6192293f5093c6e801b1476b577d0386bf4455504522172ed  breast_cancer.csv"
package=python3-sklearn
system_dir=/usr/lib/python3/dist-packages/sklearn/datasets/data

complete() { # all files present and non-empty
  local f
  for f in "${files[@]}"; do [ -s "$1/$f" ] || return 1; done
}
verified() { complete "$1" && (cd "$1" && sha256sum --quiet --check --status <<<"$checksums"); }

fail() {
  cat >&2 <<EOF2
fetch-sklearn-data: $1
The scikit-learn sample data is needed for the sharded-dataset tests. Fix it with one of:
  - sudo apt-get install $package      (files land in $system_dir)
  - copy ${files[*]} from a scikit-learn installation (sklearn/datasets/data) into a folder,
    then set TRAINFLEET_SKLEARN_DATA_DIR=<folder>
EOF2
  exit 1
}

if [ -n "${TRAINFLEET_SKLEARN_DATA_DIR:-}" ]; then
  if complete "$TRAINFLEET_SKLEARN_DATA_DIR"; then echo "$TRAINFLEET_SKLEARN_DATA_DIR"; exit 0; fi
  fail "TRAINFLEET_SKLEARN_DATA_DIR=$TRAINFLEET_SKLEARN_DATA_DIR lacks some of ${files[*]}; put them there, or unset it to use the cache"
fi
if verified "$system_dir"; then echo "$system_dir"; exit 0; fi

# shellcheck source=lib/debian-package.sh
source "$(dirname "$0")/lib/debian-package.sh"
cache_dir="$(trainfleet_cache)/sklearn"
if verified "$cache_dir"; then echo "$cache_dir"; exit 0; fi
if [ -e "$cache_dir" ]; then say "$cache_dir is incomplete or corrupt; fetching it again"; fi

mkdir -p "$(dirname "$cache_dir")"
# Work next to the cache so the final mv is a rename on one filesystem (atomic).
work="$(mktemp -d "$(dirname "$cache_dir")/.fetch-sklearn.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$work/apt.log"
say "downloading the $package package with apt (no root needed; only its data CSVs are kept)..."
download_deb "$package" "$work" "$log"
dpkg-deb -x "$deb" "$work/root" >>"$log" 2>&1 || fail "could not unpack $deb"
mkdir "$work/out"
for f in "${files[@]}"; do
  cp "$work/root$system_dir/$f" "$work/out/$f" || fail "the $package package has no ${system_dir#/}/$f"
done
verified "$work/out" || fail "the files of the downloaded $package (${deb##*/}) do not match the expected sha256 checksums"

rm -rf "$cache_dir"
# mv -T refuses to move into an existing folder; if a concurrent run won, accept its copy.
mv -T "$work/out" "$cache_dir" 2>/dev/null || verified "$cache_dir" || fail "could not write $cache_dir"
say "the scikit-learn data is ready in $cache_dir"
echo "$cache_dir"
