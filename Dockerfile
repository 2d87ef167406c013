# The trainfleet image: one image for every role.
#
#   docker build -t trainfleet .
#   docker run trainfleet coordinator --help        (or ps, worker, operator, status, ...)
#
# Roles take their flags as TRAINFLEET_* environment variables too (`--help` lists them),
# e.g. a coordinator with its job inline, in plaintext on purpose (coordinator, ps and worker
# refuse to start without TRAINFLEET_TLS_CA, _CERT and _KEY, their mounted TLS files, or
# TRAINFLEET_INSECURE=true):
#   docker run -e TRAINFLEET_LISTEN=0.0.0.0:7070 -e TRAINFLEET_HTTP_LISTEN=0.0.0.0:7080 \
#     -e TRAINFLEET_INSECURE=true \
#     -e TRAINFLEET_SPEC='{"jobId":"demo","workers":{"replicas":2}}' trainfleet coordinator
#
# To build it and push it to your registry: npm run image -- --tag REGISTRY/trainfleet:0.1.0 --push
# (scripts/build-image.sh; --gpu for the GPU image below; docs/cluster.md).
#
# Build args:
#   TFJS_BACKEND   "" (default): workers compute with tfjs-backend-wasm (CPU, SIMD).
#                  node-gpu: also installs @tensorflow/tfjs-node-gpu (the version of the
#                  repo's tfjs-core) and sets TRAINFLEET_BACKEND=tensorflow. Its libtensorflow
#                  (2.9.1 for tfjs 4.x) needs CUDA 11 and cuDNN 8 at run time, so pass
#                  RUNTIME_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04 too (the build
#                  fails on a base without libcudart.so.11.0 and libcudnn.so.8), as
#                  `npm run image -- --gpu` does. node: @tensorflow/tfjs-node, native TensorFlow
#                  on CPU, on any base.
#                  Why tensorflow and not auto: auto tries tfjs-node-gpu first, so it would pick
#                  it too, but when it cannot load (a CUDA library missing or too old on the node)
#                  auto falls back to wasm, and a pod holding a GPU trains on one CPU core. With
#                  tensorflow the worker fails instead, with the load error in its log and on
#                  the TrainingJob. (A worker that loads it but sees no GPU, one that asked for
#                  no nvidia.com/gpu, runs TensorFlow on its CPUs.)
#   RUNTIME_IMAGE  the base of the final stage (default node:22-bookworm-slim): any glibc Linux
#                  image with groupadd and useradd (Debian, Ubuntu); the stage copies Node 22 in
#                  from node:22-bookworm-slim, as a CUDA base has none.
#
# Layout (scripts/build-test-image.sh builds the same one from a host's files):
#   /usr/local/bin/node                Node 22 (node:22-bookworm-slim's, whatever RUNTIME_IMAGE)
#   /app                               package.json files, built dist/ folders and only the
#                                      run-time node_modules (scripts/lib/image-app.mjs lays
#                                      it out for both images)
#   /usr/share/datasets/fashion-mnist  the Fashion-MNIST IDX files the worker looks for
#   user nonroot, uid/gid 65532 (as the Helm chart's securityContext), WORKDIR /app,
#   ENTRYPOINT ["node", "/app/cli/dist/main.js"]
#
# Not built by this repo's CI: the machines it runs on cannot pull node:22-bookworm (nothing
# can be pulled there), so the container test (test/k8s/containers-e2e.test.ts) uses the image of
# scripts/build-test-image.sh instead. Keep the two layouts identical. test/k8s/dockerfile.test.ts
# checks the stages, args and ENV here and runs the RUN steps that pick the backend under
# stand-ins; the GPU image is neither built nor run there (no GPU, no registry).

ARG RUNTIME_IMAGE=node:22-bookworm-slim

# Node 22 for the final stage, whatever its base.
FROM node:22-bookworm-slim AS node

FROM node:22-bookworm AS build
ARG TFJS_BACKEND=""
WORKDIR /src
# The manifests alone first, so that the npm ci layer is reused while no dependency changes.
COPY package.json package-lock.json .npmrc ./
COPY proto/package.json proto/
COPY spec/package.json spec/
COPY kernels/package.json kernels/
COPY runtime/package.json runtime/
COPY artifacts/package.json artifacts/
COPY dataplane/package.json dataplane/
COPY paramserver/package.json paramserver/
COPY worker/package.json worker/
COPY coordinator/package.json coordinator/
COPY k8s/package.json k8s/
COPY cli/package.json cli/
COPY testing/package.json testing/
COPY bench/package.json bench/
RUN npm ci --no-audit --no-fund
COPY . .
# The CLI and the workspaces it references (every package but testing and bench).
RUN npx tsc -b cli
RUN case "$TFJS_BACKEND" in \
      "") ;; \
      node | node-gpu) \
        version="$(node -p 'require("@tensorflow/tfjs-core/package.json").version')" && \
        npm install --no-audit --no-fund --save-exact -w worker "@tensorflow/tfjs-$TFJS_BACKEND@$version" ;; \
      *) echo "TFJS_BACKEND must be empty, node or node-gpu, not '$TFJS_BACKEND'" >&2; exit 1 ;; \
    esac
# Fashion-MNIST: Debian's dataset-fashion-mnist package, checked against its sha256 sums.
RUN data="$(bash scripts/fetch-data.sh)" && \
    mkdir -p /out/data && \
    cp "$data/train-images-idx3-ubyte.gz" "$data/train-labels-idx1-ubyte.gz" \
       "$data/t10k-images-idx3-ubyte.gz" "$data/t10k-labels-idx1-ubyte.gz" /out/data/
RUN npm prune --omit=dev --no-audit --no-fund && \
    node scripts/lib/image-app.mjs copy . /out/app

FROM ${RUNTIME_IMAGE}
ARG TFJS_BACKEND=""
COPY --from=node /usr/local/bin/node /usr/local/bin/node
# tfjs-node-gpu's libtensorflow loads these at run time: a base without them would only fail on a GPU node.
RUN if [ "$TFJS_BACKEND" = node-gpu ]; then \
      for lib in libcudart.so.11.0 libcudnn.so.8; do \
        [ -n "$(find / -xdev -name "$lib" -print -quit 2>/dev/null)" ] || { \
          echo "TFJS_BACKEND=node-gpu needs CUDA 11 and cuDNN 8 in RUNTIME_IMAGE: $lib is missing; use nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04" >&2; exit 1; }; \
      done; \
    fi && \
    node --version && \
    groupadd --gid 65532 nonroot && \
    useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot
COPY --from=build /out/data /usr/share/datasets/fashion-mnist
COPY --from=build /out/app /app
# "tensorflow" with a native TFJS_BACKEND; empty (the flag's default, auto) without.
ENV TRAINFLEET_BACKEND=${TFJS_BACKEND:+tensorflow}
WORKDIR /app
USER 65532:65532
ENTRYPOINT ["node", "/app/cli/dist/main.js"]
