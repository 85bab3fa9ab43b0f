#!/usr/bin/env bash
# A real single-node Slurm 22.05 cluster on loopback for development and CI: munge, MariaDB + slurmdbd
# (so sacct works), slurmctld, slurmd, and an sshd on 127.0.0.1:$SSH_PORT that lets one dedicated,
# unprivileged user in with a generated key pair (host key pinned). Debian 12, root, no systemd.
#
#   scripts/services/slurm.sh up       install what is missing, start what is not running (idempotent)
#   scripts/services/slurm.sh down     stop what this script started (SIGTERM by pid, reverse order)
#   scripts/services/slurm.sh status   daemon states and the connection facts
#
# `up` writes the connection facts tests read to $EVALFLOW_SLURM_DIR/connection.json: host, port,
# user, client key, known_hosts line and pinned host key, remote scratch dir, pid files and the sshd
# config (so a test can run a second sshd of its own). slurmctld is only ever stopped with SIGTERM:
# a SIGKILL loses its state and launches running jobs a second time.
set -euo pipefail

LAB=${EVALFLOW_SLURM_DIR:-/tmp/evalflow-slurm}
SSH_PORT=${EVALFLOW_SLURM_SSH_PORT:-2222}
LABUSER=${EVALFLOW_SLURM_USER:-evallab}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PKGS=(slurmctld slurmd slurm-client slurmdbd munge openssh-server mariadb-server)
export DEBIAN_FRONTEND=noninteractive

log() { echo "slurm.sh: $*" >&2; }
waitfor() { # waitfor <seconds> <cmd...>: poll every 0.1 s
  local n=$(($1 * 10))
  shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  log "timed out waiting for: $*"
  return 1
}
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  local missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt-get update -q >/dev/null
  # --no-install-recommends: the defaults would pull a GTK GUI and 40 more packages.
  apt-get install -y -q --no-install-recommends "${missing[@]}" >"$LAB/apt.log" 2>&1 || {
    tail -20 "$LAB/apt.log" >&2
    return 1
  }
}

# Writes a file only when its content changes, so `up` on a running cluster does not touch live config.
write_if_changed() { # write_if_changed <file> <mode> <owner>; content on stdin
  local tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; return 0; fi
  install -m "$2" -o "$3" "$tmp" "$1"
  rm -f "$tmp"
}

write_config() {
  mkdir -p "$LAB"/{state,spool,log,ssh}
  chown slurm:slurm "$LAB/state" "$LAB/log"
  chmod 755 "$LAB" "$LAB/log"
  local ncpu mem
  ncpu=$(nproc)
  mem=$(awk '/MemTotal/{print int($2/1024*0.9)}' /proc/meminfo)
  write_if_changed /etc/slurm/slurm.conf 644 root <<EOF
# Written by evalflow scripts/services/slurm.sh: single node on loopback, no cgroups, no systemd.
ClusterName=evalflow
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
StateSaveLocation=$LAB/state
SlurmdSpoolDir=$LAB/spool
SlurmctldPidFile=$LAB/slurmctld.pid
SlurmdPidFile=$LAB/slurmd.pid
SlurmctldLogFile=$LAB/log/slurmctld.log
SlurmdLogFile=$LAB/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/filetxt
JobCompLoc=$LAB/log/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
MpiDefault=none
MailProg=/bin/true
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$ncpu RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  [ -f "$LAB/log/jobcomp.log" ] || install -m 644 -o slurm -g slurm /dev/null "$LAB/log/jobcomp.log"
  write_if_changed /etc/slurm/slurmdbd.conf 600 slurm <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
LogFile=$LAB/log/slurmdbd.log
PidFile=$LAB/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurmdbd-loopback
EOF

  # The dedicated user: no password, but not locked ('!' is refused by sshd with UsePAM no).
  id "$LABUSER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$LABUSER"
  usermod -p '*' "$LABUSER"
  [ -f "$LAB/ssh/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C evalflow-slurm-host -f "$LAB/ssh/ssh_host_ed25519_key"
  [ -f "$LAB/ssh/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C "$LABUSER@evalflow" -f "$LAB/ssh/client_key"
  local home
  home=$(getent passwd "$LABUSER" | cut -d: -f6)
  install -d -m 700 -o "$LABUSER" -g "$LABUSER" "$home/.ssh"
  install -m 600 -o "$LABUSER" -g "$LABUSER" "$LAB/ssh/client_key.pub" "$home/.ssh/authorized_keys"
  install -d -m 755 -o "$LABUSER" -g "$LABUSER" "$home/evalflow"
  write_if_changed "$LAB/ssh/sshd_config" 644 root <<EOF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $LAB/ssh/ssh_host_ed25519_key
PidFile $LAB/ssh/sshd.pid
PermitRootLogin no
AllowUsers $LABUSER
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile .ssh/authorized_keys
ClientAliveInterval 15
Subsystem sftp internal-sftp
EOF
  echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1-2 "$LAB/ssh/ssh_host_ed25519_key.pub")" >"$LAB/ssh/known_hosts"
  mkdir -p /run/sshd && chmod 755 /run/sshd
  /usr/sbin/sshd -t -f "$LAB/ssh/sshd_config"
}

# Jobs run as $LABUSER on this same machine with runtime `none`: the harness is this checkout's
# dist/ and node_modules, the datasets ../shared/datasets. Grant traversal (o+x, never read of
# listings) on the directories above them that lack it, e.g. a CI clone under /root.
grant_repo_access() {
  local d
  for target in "$REPO" "$(dirname "$REPO")/shared"; do
    [ -e "$target" ] || continue
    d=$target
    while [ "$d" != / ]; do
      if ! runuser -u "$LABUSER" -- test -x "$d"; then
        log "granting o+x on $d so $LABUSER can reach $target"
        chmod o+x "$d"
      fi
      d=$(dirname "$d")
    done
    runuser -u "$LABUSER" -- test -r "$target" || log "warning: $LABUSER cannot read $target"
  done
}

start_daemons() {
  if ! pid_alive /run/munge/munged.pid; then
    [ -s /etc/munge/munge.key ] || runuser -u munge -- /usr/sbin/mungekey --create
    install -d -m 755 -o munge -g munge /run/munge
    runuser -u munge -- /usr/sbin/munged
  fi
  waitfor 10 bash -c 'munge -n | unmunge'

  if ! pid_alive "$LAB/mariadb.pid"; then
    install -d -m 755 -o mysql -g mysql /run/mysqld
    setsid /usr/sbin/mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock \
      >>"$LAB/log/mariadb.log" 2>&1 </dev/null &
    echo $! >"$LAB/mariadb.pid"
  fi
  waitfor 30 mariadb -e 'select 1'
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmdbd-loopback';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

  if ! pid_alive "$LAB/slurmdbd.pid"; then
    setsid /usr/sbin/slurmdbd -D -s >>"$LAB/log/slurmdbd.stdout" 2>&1 </dev/null &
  fi
  waitfor 30 sacctmgr -n show cluster

  if ! pid_alive "$LAB/slurmctld.pid"; then
    setsid /usr/sbin/slurmctld -D -s >>"$LAB/log/slurmctld.stdout" 2>&1 </dev/null &
  fi
  waitfor 30 bash -c 'scontrol ping | grep -q UP'

  if ! pid_alive "$LAB/slurmd.pid"; then
    setsid /usr/sbin/slurmd -D -s -N localhost >>"$LAB/log/slurmd.stdout" 2>&1 </dev/null &
  fi
  # A node drained by an earlier unclean stop is put back into service.
  local state
  state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
  case "$state" in drain* | down*) scontrol update nodename=localhost state=resume || true ;; esac
  waitfor 30 bash -c '[ "$(sinfo -h -n localhost -o %T)" = idle ] || [ "$(sinfo -h -n localhost -o %T)" = mixed ] || [ "$(sinfo -h -n localhost -o %T)" = allocated ]'

  if ! pid_alive "$LAB/ssh/sshd.pid"; then
    setsid /usr/sbin/sshd -D -e -f "$LAB/ssh/sshd_config" >>"$LAB/log/sshd.log" 2>&1 </dev/null &
  fi
  waitfor 10 bash -c "echo >/dev/tcp/127.0.0.1/$SSH_PORT"
}

write_facts() {
  local home host_key
  home=$(getent passwd "$LABUSER" | cut -d: -f6)
  host_key=$(cut -d' ' -f1-2 "$LAB/ssh/ssh_host_ed25519_key.pub")
  write_if_changed "$LAB/connection.json" 644 root <<EOF
{
  "host": "127.0.0.1",
  "port": $SSH_PORT,
  "user": "$LABUSER",
  "keyPath": "$LAB/ssh/client_key",
  "publicKeyPath": "$LAB/ssh/client_key.pub",
  "hostKey": "$host_key",
  "knownHostsPath": "$LAB/ssh/known_hosts",
  "home": "$home",
  "scratchDir": "$home/evalflow",
  "partition": "debug",
  "nodePath": "$(command -v node)",
  "sshd": { "binary": "/usr/sbin/sshd", "config": "$LAB/ssh/sshd_config", "pidFile": "$LAB/ssh/sshd.pid" },
  "pidFiles": {
    "slurmctld": "$LAB/slurmctld.pid",
    "slurmd": "$LAB/slurmd.pid",
    "slurmdbd": "$LAB/slurmdbd.pid",
    "sshd": "$LAB/ssh/sshd.pid"
  }
}
EOF
}

stop_pid() { # stop_pid <name> <pidfile>: SIGTERM, wait up to 30 s
  local p
  pid_alive "$2" || return 0
  p=$(cat "$2")
  kill -TERM "$p"
  for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || { log "$1 ($p) stopped"; return 0; }; sleep 0.1; done
  log "$1 ($p) did not stop within 30 s"
  return 1
}

case "${1:-}" in
  up)
    [ "$(id -u)" = 0 ] || { log "run as root"; exit 1; }
    mkdir -p "$LAB"
    t0=$(date +%s.%N)
    install_packages
    write_config
    grant_repo_access
    start_daemons
    write_facts
    log "up in $(echo "$(date +%s.%N) - $t0" | bc) s: ssh -i $LAB/ssh/client_key -p $SSH_PORT $LABUSER@127.0.0.1; facts in $LAB/connection.json"
    ;;
  down)
    stop_pid sshd "$LAB/ssh/sshd.pid"
    stop_pid slurmd "$LAB/slurmd.pid"
    stop_pid slurmctld "$LAB/slurmctld.pid"
    stop_pid slurmdbd "$LAB/slurmdbd.pid"
    stop_pid mariadbd "$LAB/mariadb.pid"
    stop_pid munged /run/munge/munged.pid
    ;;
  status)
    for d in munged:/run/munge/munged.pid mariadbd:$LAB/mariadb.pid slurmdbd:$LAB/slurmdbd.pid \
      slurmctld:$LAB/slurmctld.pid slurmd:$LAB/slurmd.pid sshd:$LAB/ssh/sshd.pid; do
      if pid_alive "${d#*:}"; then echo "${d%%:*}: running ($(cat "${d#*:}"))"; else echo "${d%%:*}: stopped"; fi
    done
    [ -f "$LAB/connection.json" ] && cat "$LAB/connection.json"
    ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
