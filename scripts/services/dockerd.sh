#!/usr/bin/env bash
# A private Docker engine for development, tests and CI (one per machine, shared by everyone):
# Debian docker.io, its own socket, data-root, exec-root and pidfile, so it never touches another
# dockerd. No bridge and no iptables rules: containers use host networking (the product sets it).
#
#   scripts/services/dockerd.sh [start]   install docker.io if missing, start the daemon unless it answers
#   scripts/services/dockerd.sh stop      stop the daemon this script started (by its pidfile)
#   scripts/services/dockerd.sh status    exit 0 when the daemon answers
#   scripts/services/dockerd.sh env       print the DOCKER_HOST line to eval
#
# Idempotent and safe to run concurrently (flock). Needs root to install and start; reuses a running
# daemon as any user. Settings: EVALFLOW_DOCKER_SOCK (default /run/evalflow-docker.sock) and
# EVALFLOW_DOCKER_STATE (default /var/lib/evalflow-docker: data/, exec/, dockerd.pid, dockerd.log),
# EVALFLOW_DOCKER_STORAGE_DRIVER (default auto: overlay2, which creates containers in O(1), where the kernel
# and the backing filesystem allow it, else vfs, which works everywhere but copies the whole image per container).
set -euo pipefail
SOCK=${EVALFLOW_DOCKER_SOCK:-/run/evalflow-docker.sock}
STATE=${EVALFLOW_DOCKER_STATE:-/var/lib/evalflow-docker}
export DOCKER_HOST="unix://$SOCK"
# Debian's client matches the Debian daemon; a newer docker CLI elsewhere on PATH may not.
DOCKER_CLI=/usr/bin/docker

answers() { [ -x "$DOCKER_CLI" ] && "$DOCKER_CLI" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

owned_pid() { # the pid in our pidfile, if that process is a live dockerd
  local pid
  pid=$(cat "$STATE/dockerd.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && echo "$pid"
}

release_netns() { # dockerd leaves its default netns bind-mounted under exec-root when it stops
  if mountpoint -q "$STATE/exec/netns/default" 2>/dev/null; then umount "$STATE/exec/netns/default" || true; fi
}

install_engine() {
  command -v dockerd >/dev/null && [ -x "$DOCKER_CLI" ] && command -v docker-init >/dev/null && return
  [ "$(id -u)" = 0 ] || { echo "dockerd.sh: docker.io is not installed and installing it needs root" >&2; exit 1; }
  echo "dockerd.sh: installing docker.io" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null
  # Wait for a concurrent apt run (another service script) instead of failing on its lock.
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 docker.io >/dev/null
}

start() {
  if answers; then echo "dockerd.sh: Docker answers on $SOCK" >&2; return; fi
  install_engine
  [ "$(id -u)" = 0 ] || { echo "dockerd.sh: starting dockerd needs root" >&2; exit 1; }
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock 9
  if answers; then echo "dockerd.sh: Docker answers on $SOCK" >&2; return; fi   # started meanwhile
  if pid=$(owned_pid); then
    echo "dockerd.sh: dockerd $pid is running but does not answer on $SOCK; see $STATE/dockerd.log" >&2; exit 1
  fi
  local driver=${EVALFLOW_DOCKER_STORAGE_DRIVER:-auto}
  local started=$EPOCHREALTIME
  if [ "$driver" = auto ]; then
    launch overlay2 || { echo "dockerd.sh: overlay2 is not usable here; falling back to vfs" >&2; launch vfs; } || exit 1
  else
    launch "$driver" || exit 1
  fi
  awk -v pid="$(cat "$STATE/dockerd.pid")" -v sock="$SOCK" -v t0="$started" -v t1="$EPOCHREALTIME" \
    -v driver="$("$DOCKER_CLI" info --format '{{.Driver}}')" \
    'BEGIN { printf "dockerd.sh: dockerd %s (%s) answers on %s after %.2f s\n", pid, driver, sock, t1 - t0 }' >&2
}

launch() { # launch <storage driver>: start dockerd and wait until it answers; 1 if it exits first
  release_netns
  rm -f "$SOCK"
  mkdir -p "$STATE/data" "$STATE/exec"
  setsid dockerd --iptables=false --ip-masq=false --bridge=none --storage-driver="$1" \
    -H "$DOCKER_HOST" --data-root "$STATE/data" --exec-root "$STATE/exec" --pidfile "$STATE/dockerd.pid" \
    >>"$STATE/dockerd.log" 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 600); do
    answers && return 0
    kill -0 "$pid" 2>/dev/null || { echo "dockerd.sh: dockerd ($1) exited; last log lines:" >&2; tail -n 5 "$STATE/dockerd.log" >&2; return 1; }
    sleep 0.1
  done
  echo "dockerd.sh: dockerd ($1) did not answer on $SOCK within 60 s; see $STATE/dockerd.log" >&2
  kill -TERM "$pid" 2>/dev/null && for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  return 1
}

stop() {
  local pid
  if ! pid=$(owned_pid); then echo "dockerd.sh: no dockerd started from $STATE is running" >&2; release_netns; return; fi
  kill -TERM "$pid"   # also stops its containerd; running containers are stopped first
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "dockerd.sh: dockerd $pid did not stop within 30 s" >&2; exit 1; fi
  release_netns
  echo "dockerd.sh: dockerd $pid stopped" >&2
}

case "${1:-start}" in
  start) start; echo "DOCKER_HOST=$DOCKER_HOST" ;;
  stop) stop ;;
  status) answers ;;
  env) echo "export DOCKER_HOST=$DOCKER_HOST" ;;
  *) echo "usage: $0 [start|stop|status|env]" >&2; exit 2 ;;
esac
