#!/usr/bin/env bash
# Builds the trainfleet container image from this host's files, for the container tests
# (test/k8s/containers-e2e.test.ts): nothing can be pulled from a registry here, so the
# Dockerfile (which starts FROM node:22-bookworm) cannot be built. The image has the
# Dockerfile's layout:
#   /usr/local/bin/node                the repo's own Node 22 (the `node` devDependency),
#                                      with the shared libraries `ldd` lists and the loader
#   /app                               scripts/lib/image-app.mjs: package.json files, the
#                                      built dist/ folders, the run-time node_modules
#   /usr/share/datasets/fashion-mnist  the data (scripts/fetch-data.sh)
#   user nonroot 65532:65532, WORKDIR /app, ENTRYPOINT ["node", "/app/cli/dist/main.js"]
# so `docker run IMAGE coordinator|ps|worker ...` runs a role.
# It is quick when nothing changed: the image carries a sha256 of everything put in it
# (label org.trainfleet.content-hash), and a build whose hash the tagged image already has
# stops there. Build the code first (npm run build). Needs a Docker engine (see
# scripts/start-dockerd.sh). Prints the tag.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: $0 [--tag TAG] [--quiet]   (builds the test image, default tag trainfleet:test; prints the tag)"
tag=trainfleet:test
quiet=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) [ $# -ge 2 ] || { echo "build-test-image: --tag needs a value ($usage)" >&2; exit 2; }; tag=$2; shift ;;
    --tag=*) tag=${1#--tag=} ;;
    --quiet) quiet=1 ;;
    -h | --help) echo "$usage"; exit 0 ;;
    *) echo "build-test-image: unknown argument '$1' ($usage)" >&2; exit 2 ;;
  esac
  shift
done

say() { if [ "$quiet" = 0 ]; then echo "build-test-image: $*" >&2; fi; }
fail() { echo "build-test-image: $*" >&2; exit 1; }

started=$(date +%s%N)
docker info >/dev/null 2>&1 || fail "no Docker engine answers ('docker info' failed); start one as root with: bash scripts/start-dockerd.sh"

node=node_modules/node/bin/node
[ -x "$node" ] || node="$(npx --no-install node -p process.execPath 2>/dev/null)" || true
[ -x "$node" ] || fail "the repo's Node (the 'node' devDependency) is not installed: run npm ci"
version="$("$node" -v)"
case "$version" in v22.*) ;; *) fail "$node is Node $version; the image needs Node 22 (the 'node' devDependency): run npm ci" ;; esac
[ -f cli/dist/main.js ] || fail "cli/dist/main.js is missing: build first (npm run build)"
data="$(bash scripts/fetch-data.sh --quiet)" || fail "the Fashion-MNIST data is missing (scripts/fetch-data.sh failed)"
data_files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

# The shared libraries the binary needs, and the dynamic loader (its PT_INTERP).
libs=()
while read -r lib; do libs+=("$lib"); done < <(ldd "$node" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
[ "${#libs[@]}" -gt 0 ] || fail "ldd lists no libraries for $node"

hash_inputs=(scripts/build-test-image.sh scripts/lib/image-app.mjs "$node" "${libs[@]}")
for f in "${data_files[@]}"; do hash_inputs+=("$data/$f"); done
hash="$("$node" scripts/lib/image-app.mjs hash . "${hash_inputs[@]}")"
label=org.trainfleet.content-hash
if [ "$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$tag" 2>/dev/null)" = "$hash" ]; then
  say "$tag is up to date ($(( ($(date +%s%N) - started) / 1000000 )) ms)"
  echo "$tag"
  exit 0
fi

say "building $tag from this host's files..."
work="$(mktemp -d "${TMPDIR:-/tmp}/trainfleet-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{usr/local/bin,etc,tmp,home/nonroot,usr/share/datasets/fashion-mnist}
chmod 1777 "$rootfs/tmp"
laid_out="$("$node" scripts/lib/image-app.mjs copy . "$rootfs/app" 2>&1)" || fail "laying out /app failed: $laid_out"
cp "$node" "$rootfs/usr/local/bin/node"
for lib in "${libs[@]}"; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
for f in "${data_files[@]}"; do cp -L "$data/$f" "$rootfs/usr/share/datasets/fashion-mnist/$f"; done
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"

# Everything belongs to root except the user's home. Only root can chown; others get a
# world-writable home instead (the engine's socket is root's anyway, or its group's).
owner=(--owner=0 --group=0)
if [ "$(id -u)" = 0 ]; then
  chown -R 0:0 "$rootfs"
  chown 65532:65532 "$rootfs/home/nonroot"
  owner=()
else
  chmod 1777 "$rootfs/home/nonroot"
fi
old_id="$(docker image inspect --format '{{ .Id }}' "$tag" 2>/dev/null || true)"
tar -C "$rootfs" --numeric-owner "${owner[@]}" -c . |
  docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'WORKDIR /app' \
    --change 'USER 65532:65532' \
    --change "LABEL $label=$hash" \
    --change 'ENTRYPOINT ["node", "/app/cli/dist/main.js"]' \
    - "$tag" >/dev/null || fail "docker import failed"
# The image this one replaces would linger untagged (about 230 MB each time); one that a
# container still uses stays.
if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect --format '{{ .Id }}' "$tag")" ]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
size="$(docker image inspect --format '{{ .Size }}' "$tag")"
say "built $tag: $(( size / 1000000 )) MB in $(( ($(date +%s%N) - started) / 1000000 )) ms"
echo "$tag"
