#!/usr/bin/env bash
# Fails when proto/src/gen differs from what buf + protoc-gen-es generate from the .proto
# files, or kernels/src/gen from what wabt compiles from kernels.wat: the generated
# code is committed, and must never drift from its sources.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd proto && npx buf lint && npx buf generate)
if ! git diff --quiet -- proto/src/gen || [ -n "$(git ls-files --others --exclude-standard proto/src/gen)" ]; then
  echo "proto/src/gen is out of date: run \`npm run generate\` and commit the result." >&2
  git status --short proto/src/gen >&2
  exit 1
fi
echo "generated protobuf code is up to date"
npm run --silent generate:kernels
if ! git diff --quiet -- kernels/src/gen || [ -n "$(git ls-files --others --exclude-standard kernels/src/gen)" ]; then
  echo "kernels/src/gen is out of date: run \`npm run generate:kernels\` and commit the result." >&2
  git status --short kernels/src/gen >&2
  exit 1
fi
echo "generated WebAssembly kernels are up to date"
