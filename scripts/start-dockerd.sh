#!/usr/bin/env bash
# Makes a Docker engine answer, for the container tests (test/k8s/containers-e2e.test.ts).
# When `docker info` already works it only cleans up. Otherwise, as root: installs Debian's
# docker.io with apt-get when dockerd is missing, starts dockerd in the background (its log:
# $TRAINFLEET_DOCKERD_LOG, default /var/log/trainfleet-dockerd.log) and waits until it
# answers ($TRAINFLEET_DOCKERD_WAIT seconds, default 60). Then removes what earlier test
# runs left behind: without Ryuk (its image cannot be pulled) a failed run leaks its
# containers and networks, all labelled org.testcontainers=true.
# Without root and without a running engine it fails and says how to fix it.
set -euo pipefail

# shellcheck source=lib/tool-args.sh
source "$(dirname "$0")/lib/tool-args.sh"
tool_args start-dockerd "starts a Docker engine if none answers; --check never starts one" "$@"

log="${TRAINFLEET_DOCKERD_LOG:-/var/log/trainfleet-dockerd.log}"
wait_s="${TRAINFLEET_DOCKERD_WAIT:-60}"

fail() {
  cat >&2 <<EOF
start-dockerd: $1
The container tests (test/k8s/containers-e2e.test.ts) need a Docker engine. Fix it with one of:
  - sudo bash scripts/start-dockerd.sh           (installs Debian's docker.io if needed, starts dockerd)
  - start Docker yourself, and make 'docker info' work for this user (the docker group, or DOCKER_HOST)
EOF
  exit 1
}

answers() { docker info >/dev/null 2>&1; }

cleanup() {
  local ids
  ids="$(docker ps -aq --filter label=org.testcontainers=true)"
  if [ -n "$ids" ]; then
    say "removing $(wc -w <<<"$ids") container(s) left by earlier test runs"
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null
  fi
  ids="$(docker network ls -q --filter label=org.testcontainers=true)"
  if [ -n "$ids" ]; then
    say "removing $(wc -w <<<"$ids") network(s) left by earlier test runs"
    # shellcheck disable=SC2086
    docker network rm $ids >/dev/null || true
  fi
}

if command -v docker >/dev/null && answers; then
  cleanup
  say "the Docker engine answers"
  exit 0
fi

[ "$check" = 0 ] || fail "no Docker engine answers ('docker info' failed); run: sudo bash scripts/start-dockerd.sh"
[ "$(id -u)" = 0 ] || fail "no Docker engine answers ('docker info' failed), and starting dockerd needs root"

if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
  command -v apt-get >/dev/null || fail "dockerd is not installed and there is no apt-get to install it with"
  apt_log="$(mktemp)"
  trap 'rm -f "$apt_log"' EXIT
  say "installing Debian's docker.io package with apt-get..."
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet; update only when the first try fails.
  if ! apt-get install -y --no-install-recommends docker.io >>"$apt_log" 2>&1; then
    say "apt-get install failed; running apt-get update and trying again..."
    apt-get update >>"$apt_log" 2>&1 || true
    apt-get install -y --no-install-recommends docker.io >>"$apt_log" 2>&1 || { tail -n 15 "$apt_log" >&2; fail "apt-get install docker.io failed (log above)"; }
  fi
  command -v dockerd >/dev/null && command -v docker >/dev/null || fail "the docker.io package installed no dockerd or docker on PATH"
fi

where="dockerd's own log"
if pid="$(pgrep -x dockerd | head -n 1)" && [ -n "$pid" ]; then
  say "dockerd (pid $pid) runs but does not answer yet; waiting for it"
else
  where="the end of $log is above"
  say "starting dockerd (log: $log)..."
  mkdir -p "$(dirname "$log")"
  # A session of its own, so it outlives this script and the CI step that ran it.
  setsid dockerd >>"$log" 2>&1 </dev/null &
  pid=$!
fi

deadline=$((SECONDS + wait_s))
until answers; do
  if ! kill -0 "$pid" 2>/dev/null; then
    [ "$where" = "dockerd's own log" ] || tail -n 20 "$log" >&2 2>/dev/null || true
    fail "dockerd (pid $pid) exited while starting (see $where)"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    [ "$where" = "dockerd's own log" ] || tail -n 20 "$log" >&2 2>/dev/null || true
    fail "dockerd (pid $pid) did not answer within ${wait_s}s (see $where)"
  fi
  sleep 0.5
done
cleanup
say "the Docker engine answers (dockerd pid $pid, $(docker version --format '{{.Server.Version}}' 2>/dev/null))"
