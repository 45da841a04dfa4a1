#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for the tests and benchmarks that submit the
# workflow through snakemake-executor-plugin-slurm.
#
#   tests/slurm/start_local_slurm.sh [STATE_DIR]     (default /tmp/whaleid-slurm)
#   export SLURM_CONF=STATE_DIR/etc/slurm.conf       (what every SLURM command then needs)
#
# Installs Debian's slurm-wlm, slurmdbd, munge and mariadb-server where they are missing (root
# only), writes the configuration under STATE_DIR and starts munged, mariadbd, slurmdbd,
# slurmctld and slurmd by hand (no systemd), then waits until the node is idle. Idempotent: a
# daemon whose pid file names a live process is left running. tests/slurm/stop_local_slurm.sh
# stops them by the pids recorded under STATE_DIR.
#
# The configuration lives under STATE_DIR; /etc/slurm/slurm.conf is only a symbolic link to
# it, made here and removed by the stop script, because the plugin's job step drops every
# SLURM_* variable, SLURM_CONF included, before it calls `srun`. A /etc/slurm/slurm.conf of
# a real cluster is never touched (exit 3). The link must not outlive the cluster: with
# SLURM's tools installed and a slurm.conf in /etc but no controller up, merely loading the
# Snakemake plugin waits 10 s for `scontrol show config` in every Snakemake call, local ones
# included.
#
# The node is declared like the workstation the profile is written for (16 CPUs, 64 GiB, two
# GPUs), whatever this machine has (SlurmdParameters=config_overrides), so that the profile's
# real requests are placeable; nothing enforces them (no cgroups). The two GPUs are device
# files that behave as /dev/null: SLURM assigns them and sets CUDA_VISIBLE_DEVICES as on a real
# GPU node.
#
# Exit status: 0 when the node is idle; 3 when the cluster cannot be had on this machine (not
# root and packages missing; the reason is printed), which tests treat as a skip; else 1.
set -euo pipefail

STATE=$(realpath -m "${1:-${WHALEID_SLURM_DIR:-/tmp/whaleid-slurm}}")
NODE=$(hostname -s)
# Ports of our own, so a system SLURM or MariaDB on the standard ones is not disturbed.
CTLD_PORT=${WHALEID_SLURM_PORT:-16817}
SLURMD_PORT=$((CTLD_PORT + 1))
DBD_PORT=$((CTLD_PORT + 2))
DB_PORT=$((CTLD_PORT + 3))
DB_PASSWORD=whaleid-test-only
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

cannot() { echo "start_local_slurm: cannot start a local SLURM here: $*" >&2; exit 3; }
fail() { echo "start_local_slurm: $*" >&2; for log in "$STATE"/log/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }; done; exit 1; }
alive() { [ -f "$STATE/run/$1.pid" ] && kill -0 "$(cat "$STATE/run/$1.pid")" 2>/dev/null; }

# Waits up to $1 seconds for the command that follows to succeed.
wait_for() {
  local seconds=$1; shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

install_packages() {
  local missing=()
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null || missing+=(slurm-wlm)
  command -v slurmdbd >/dev/null || missing+=(slurmdbd)
  command -v munged >/dev/null || missing+=(munge)
  command -v mariadbd >/dev/null || missing+=(mariadb-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || cannot "packages ${missing[*]} are missing and installing them needs root"
  command -v apt-get >/dev/null || cannot "packages ${missing[*]} are missing and there is no apt-get"
  echo "installing ${PACKAGES[*]}" >&2
  # policy-rc.d keeps the packages' own service start-up away: this script starts the daemons.
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${PACKAGES[@]}" >"$STATE/log/apt.log" 2>&1 \
    || { apt-get update -qq >>"$STATE/log/apt.log" 2>&1 && apt-get install -y -qq "${PACKAGES[@]}" >>"$STATE/log/apt.log" 2>&1; } \
    || cannot "apt-get install ${PACKAGES[*]} failed; see $STATE/log/apt.log"
}

write_config() {
  local cpus=16 memory=65536 gpus=2 g
  mkdir -p "$STATE/dev"
  for g in $(seq 0 $((gpus - 1))); do
    # A character device like /dev/null (1,3): SLURM needs a device file per GPU.
    [ -e "$STATE/dev/gpu$g" ] || mknod "$STATE/dev/gpu$g" c 1 3 2>/dev/null || ln -s /dev/null "$STATE/dev/gpu$g"
  done
  cat >"$STATE/etc/slurm.conf" <<EOF
# Written by whaleid's tests/slurm/start_local_slurm.sh: a one-node test cluster.
ClusterName=whaleid
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$STATE/run/munge.socket
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
# A job that gives no memory gets this much per CPU, not the whole node.
DefMemPerCPU=1024
MailProg=/bin/true
# Finished jobs stay visible to squeue this long (the plugin's squeue mode needs it).
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# With slurmdbd this names the munge socket for talking to it (AuthInfo covers the rest).
AccountingStoragePass=$STATE/run/munge.socket
# The plugin puts the rule name in the job's comment: this makes sacct show it.
AccountingStoreFlags=job_comment
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory Gres=gpu:$gpus State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$STATE/etc/gres.conf" <<EOF
NodeName=$NODE Name=gpu File=$STATE/dev/gpu[0-$((gpus - 1))]
EOF
  # slurmdbd reads slurmdbd.conf from SLURM_CONF's folder, and refuses one others can read.
  (umask 077 && cat >"$STATE/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$STATE/run/munge.socket
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=whaleid_slurm_acct_db
EOF
  )
}

start_munged() {
  alive munged && return 0
  [ -f "$STATE/etc/munge.key" ] || (umask 077 && dd if=/dev/urandom of="$STATE/etc/munge.key" bs=1024 count=1 status=none)
  # --force: the key and socket live in a folder of ours rather than munge's own, which
  # munged otherwise refuses as insecure.
  munged --force --key-file="$STATE/etc/munge.key" --socket="$STATE/run/munge.socket" \
    --pid-file="$STATE/run/munged.pid" --log-file="$STATE/log/munged.log" --seed-file="$STATE/run/munged.seed" \
    || fail "munged did not start"
  wait_for 10 munge --socket="$STATE/run/munge.socket" -n || fail "munged does not answer"
}

sql() { mariadb --socket="$STATE/run/mariadb.socket" -u root "$@"; }

start_mariadbd() {
  alive mariadbd && return 0
  if [ ! -d "$STATE/mysql/mysql" ]; then
    mariadb-install-db --user=root --datadir="$STATE/mysql" --auth-root-authentication-method=socket \
      >"$STATE/log/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed"
  fi
  mariadbd --user=root --datadir="$STATE/mysql" --socket="$STATE/run/mariadb.socket" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$STATE/run/mariadbd.pid" \
    --log-error="$STATE/log/mariadbd.log" --skip-name-resolve --innodb-buffer-pool-size=64M \
    </dev/null >/dev/null 2>&1 &
  wait_for 60 sql -e "SELECT 1" || fail "mariadbd does not answer"
  sql -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
          GRANT ALL ON whaleid_slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || fail "could not create the slurm database user"
}

start_slurm_daemon() {
  local name=$1; shift
  alive "$name" && return 0
  "$name" "$@" || fail "$name did not start"
  wait_for 30 alive "$name" || fail "$name did not write its pid file"
}

node_idle() { [ "$(sinfo -h -n "$NODE" -o %t 2>/dev/null)" = idle ]; }

link_system_config() {
  local system=/etc/slurm/slurm.conf
  if [ -e "$system" ] || [ -L "$system" ]; then
    [ "$(readlink "$system")" = "$SLURM_CONF" ] && return 0
    cannot "$system exists and is not this script's link: a real SLURM is configured here"
  fi
  [ -w /etc ] || cannot "cannot write $system (not root)"
  mkdir -p /etc/slurm
  ln -s "$SLURM_CONF" "$system"
}

mkdir -p "$STATE"/{etc,run,log,state,spool}
export SLURM_CONF=$STATE/etc/slurm.conf
install_packages
link_system_config
if alive slurmctld && alive slurmd && node_idle; then
  echo "SLURM already running (SLURM_CONF=$SLURM_CONF)"
  exit 0
fi
started=$SECONDS
write_config
start_munged
start_mariadbd
start_slurm_daemon slurmdbd
wait_for 30 sacctmgr -n list cluster || fail "slurmdbd does not answer"
# The cluster registers itself with slurmdbd when slurmctld starts.
start_slurm_daemon slurmctld
start_slurm_daemon slurmd
wait_for 60 node_idle || fail "node $NODE is not idle: $(sinfo -h -N -o '%N %t %E' 2>&1)"
# sacct knows the cluster only once slurmctld has registered it.
wait_for 30 bash -c "sacctmgr -n -P list cluster format=cluster | grep -qx whaleid" || fail "cluster not registered with slurmdbd"
echo "SLURM up in $((SECONDS - started)) s: node $NODE idle (SLURM_CONF=$SLURM_CONF)"
