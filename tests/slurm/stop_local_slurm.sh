#!/usr/bin/env bash
# Stops the daemons tests/slurm/start_local_slurm.sh started, by the pids it recorded, last
# started first; waits for each to exit (SIGKILL after 30 s); removes its /etc/slurm/slurm.conf link.
#
#   tests/slurm/stop_local_slurm.sh [STATE_DIR]     (default /tmp/whaleid-slurm)
#
# With --wipe, also removes STATE_DIR (configuration, database, logs), so the next start is
# from nothing.
set -euo pipefail

wipe=false
if [ "${1:-}" = --wipe ]; then wipe=true; shift; fi
STATE=$(realpath -m "${1:-${WHALEID_SLURM_DIR:-/tmp/whaleid-slurm}}")

for name in slurmd slurmctld slurmdbd mariadbd munged; do
  pidfile=$STATE/run/$name.pid
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop_local_slurm: $name (pid $pid) ignored SIGTERM for 30 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
done
# The link the start script made, so that SLURM's tools stop looking for a controller.
if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$STATE/etc/slurm.conf" ]; then rm -f /etc/slurm/slurm.conf; fi
if $wipe; then rm -rf "$STATE"; fi
echo "SLURM stopped ($STATE)"
