#!/usr/bin/env bash
# Podman's Docker-compatible API for the docker suites (the same tests, another engine): Debian podman
# + catatonit, `podman system service` on its own socket with private vfs storage, host networking only.
#
#   scripts/services/podman.sh [start]   install podman if missing, start the service unless it answers
#   scripts/services/podman.sh stop      stop the service this script started (by its pidfile)
#   scripts/services/podman.sh env       print the DOCKER_HOST line to eval
#
# Settings: EVALFLOW_PODMAN_SOCK (default /run/evalflow-podman.sock), EVALFLOW_PODMAN_STATE (default
# /var/lib/evalflow-podman). The containers.conf below is what Podman 4.3 needs here: explicit default
# ulimits (else runc fails "error setting rlimit type 7"), catatonit as init, cgroupfs, file events.
set -euo pipefail
SOCK=${EVALFLOW_PODMAN_SOCK:-/run/evalflow-podman.sock}
STATE=${EVALFLOW_PODMAN_STATE:-/var/lib/evalflow-podman}

answers() { curl -sf --unix-socket "$SOCK" http://podman/_ping >/dev/null 2>&1; }

owned_pid() {
  local pid
  pid=$(cat "$STATE/service.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = podman ] && echo "$pid"
}

start() {
  if answers; then echo "podman.sh: Podman answers on $SOCK" >&2; return; fi
  if ! command -v podman >/dev/null || [ ! -x /usr/libexec/podman/catatonit ]; then
    [ "$(id -u)" = 0 ] || { echo "podman.sh: installing podman needs root" >&2; exit 1; }
    echo "podman.sh: installing podman" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null
    apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 podman catatonit curl >/dev/null
  fi
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock 9
  if answers; then return; fi
  if pid=$(owned_pid); then echo "podman.sh: podman $pid runs but does not answer on $SOCK; see $STATE/service.log" >&2; exit 1; fi
  cat >"$STATE/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
init_path = "/usr/libexec/podman/catatonit"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  rm -f "$SOCK"
  # From the state dir: conmon leaves files (e.g. `oom`) in the service's working directory.
  cd "$STATE"
  CONTAINERS_CONF="$STATE/containers.conf" setsid podman --storage-driver vfs --root "$STATE/root" --runroot "$STATE/run" \
    system service --time=0 "unix://$SOCK" >>"$STATE/service.log" 2>&1 </dev/null &
  echo $! >"$STATE/service.pid"
  for _ in $(seq 300); do answers && break; sleep 0.1; done
  answers || { echo "podman.sh: no answer on $SOCK within 30 s; see $STATE/service.log" >&2; exit 1; }
  echo "podman.sh: podman service $(cat "$STATE/service.pid") answers on $SOCK" >&2
}

stop() {
  local pid
  if ! pid=$(owned_pid); then echo "podman.sh: no podman service started from $STATE is running" >&2; return; fi
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  echo "podman.sh: podman service $pid stopped" >&2
}

case "${1:-start}" in
  start) start; echo "DOCKER_HOST=unix://$SOCK" ;;
  stop) stop ;;
  env) echo "export DOCKER_HOST=unix://$SOCK" ;;
  *) echo "usage: $0 [start|stop|env]" >&2; exit 2 ;;
esac
