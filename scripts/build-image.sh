#!/usr/bin/env bash
# Builds the trainfleet image from the Dockerfile and, with --push, pushes it to the registry
# its tag names: the image a cluster's nodes pull (docs/cluster.md).
#
#   npm run image -- --tag registry.example.com/team/trainfleet:0.1.0 --push
#   npm run image -- --tag registry.example.com/team/trainfleet:0.1.0-gpu --gpu --push
#
# --gpu builds the GPU image: build args TFJS_BACKEND=node-gpu (@tensorflow/tfjs-node-gpu, the
# version of the repo's tfjs-core) and RUNTIME_IMAGE=$cuda_runtime_image below. tfjs-node-gpu 4.x
# runs libtensorflow 2.9.1, built for CUDA 11.2 and cuDNN 8.1 (it loads libcudart.so.11.0 and
# libcudnn.so.8); CUDA 11.x keeps that soname and its minor-version compatibility, and cuDNN 8
# its API, so CUDA 11.8 with cuDNN 8 on Ubuntu 22.04 runs it (with an NVIDIA driver >= 520 on the
# nodes). The Dockerfile copies Node 22 into that base, which has none.
#
# Prints on stdout, last, the image's digest: REPOSITORY@sha256:... as the registry stores it
# with --push (pin a TrainingJob's spec.image to it), else the local image ID. Everything else
# goes to stderr. Needs Docker, and for --push `docker login REGISTRY` first. Nothing can be
# pulled on the machines this repository is tested on, so there the tests run it against a
# stand-in docker that records its arguments (test/k8s/build-image.test.ts).
set -euo pipefail
cd "$(dirname "$0")/.."

# tfjs-node-gpu 4.x's libtensorflow 2.9.1: CUDA 11 (>= 11.2) and cuDNN 8 (>= 8.1).
cuda_runtime_image=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04

usage="usage: npm run image -- --tag REGISTRY/REPOSITORY:TAG [--push] [--gpu] [--platform OS/ARCH]
  (or: bash scripts/build-image.sh ...)
  --tag TAG          the image's name, with the registry you push to and a tag, e.g.
                     registry.example.com/team/trainfleet:0.1.0 (required)
  --push             push it there after the build (run 'docker login REGISTRY' first)
  --gpu              the GPU image: @tensorflow/tfjs-node-gpu on $cuda_runtime_image
  --platform P       build for platform P, e.g. linux/amd64 (the nodes' platform; tfjs-node-gpu
                     exists for linux/amd64 only). Default: this machine's
  -h, --help         this text
Prints the image's digest last: REPOSITORY@sha256:... with --push, else the local image ID."

say() { echo "build-image: $*" >&2; }
usage_error() { echo "build-image: $* (see --help)" >&2; exit 2; }
fail() { echo "build-image: $*" >&2; exit 1; }

tag=""
push=0
gpu=0
platform=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tag | --platform)
      [ $# -ge 2 ] && [ -n "$2" ] && [[ $2 != --* ]] || usage_error "$1 needs a value"
      if [ "$1" = --tag ]; then tag=$2; else platform=$2; fi
      shift ;;
    --tag=*) tag=${1#--tag=} ;;
    --platform=*) platform=${1#--platform=} ;;
    --push) push=1 ;;
    --gpu) gpu=1 ;;
    -h | --help) echo "$usage"; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done

[ -n "$tag" ] || usage_error "--tag is required: the image's name in the registry you push to, e.g. --tag registry.example.com/team/trainfleet:0.1.0"
# [host[:port]/]path:tag, as the container runtime parses it (path components in lower case).
component='[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*'
host='[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]+)?'
reference="^(${host}/)?${component}(/${component})*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
[[ $tag =~ $reference ]] ||
  usage_error "--tag '$tag' is not REGISTRY/REPOSITORY:TAG: the repository in lower case and a tag after ':' (letters, digits, '_', '.', '-'), e.g. registry.example.com/team/trainfleet:0.1.0"
if [ -n "$platform" ] && ! [[ $platform =~ ^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$ ]]; then
  usage_error "--platform '$platform' is not OS/ARCH[/VARIANT], e.g. linux/amd64"
fi
repository=${tag%:*}
# The registry is the first path component when it looks like a host (docker's rule), else Docker Hub.
registry=docker.io
first=${repository%%/*}
if [ "$first" != "$repository" ] && { [[ $first == *.* ]] || [[ $first == *:* ]] || [ "$first" = localhost ]; }; then registry=$first; fi

command -v docker >/dev/null 2>&1 ||
  fail "docker is not installed (no 'docker' on PATH): install Docker Engine or Docker Desktop (https://docs.docker.com/get-docker/), then run this again"
if ! info_error="$(docker info 2>&1 >/dev/null)"; then
  fail "no Docker engine answers ('docker info' failed: ${info_error:-no message}): start Docker (Docker Desktop, or 'sudo systemctl start docker'), or set DOCKER_HOST"
fi

build_args=(build --file Dockerfile --tag "$tag")
[ -z "$platform" ] || build_args+=(--platform "$platform")
if [ "$gpu" = 1 ]; then
  build_args+=(--build-arg TFJS_BACKEND=node-gpu --build-arg "RUNTIME_IMAGE=$cuda_runtime_image")
fi
build_args+=(.)
say "docker ${build_args[*]}"
# docker's own output goes to stderr: stdout carries the digest only.
status=0
docker "${build_args[@]}" >&2 || status=$?
[ "$status" = 0 ] || fail "docker build failed (exit $status); its output is above"
image_id="$(docker image inspect --format '{{.Id}}' "$tag")" || fail "docker build succeeded but 'docker image inspect $tag' found no image"

if [ "$push" = 0 ]; then
  say "built $tag (image $image_id); not pushed: run again with --push to send it to $registry"
  echo "$image_id"
  exit 0
fi

say "docker push $tag"
output="$(mktemp "${TMPDIR:-/tmp}/trainfleet-push.XXXXXX")"
trap 'rm -f "$output"' EXIT
status=0
docker push "$tag" 2>&1 | tee "$output" >&2 || status=${PIPESTATUS[0]}
if [ "$status" != 0 ]; then
  said="$(grep -v '^[[:space:]]*$' "$output" | tail -n 1 || true)"
  fail "$registry refused the push of $tag (docker push exit $status: ${said:-no message}): log in first ('docker login $registry'), and check that the repository exists there and that you may push to it"
fi
# The registry's digest, from push's last line ("TAG: digest: sha256:HEX size: N"), else the image's RepoDigests.
digest="$(sed -n 's/^.*digest: \(sha256:[0-9a-f]\{64\}\).*$/\1/p' "$output" | tail -n 1)"
if [ -z "$digest" ]; then
  while read -r entry; do
    if [ "${entry%@*}" = "$repository" ]; then digest=${entry#*@}; break; fi
  done < <(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$tag")
fi
[ -n "$digest" ] || fail "pushed $tag, but neither docker push's output nor 'docker image inspect' names its digest"
say "pushed $tag: pin it as $repository@$digest"
echo "$repository@$digest"
