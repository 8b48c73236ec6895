#!/usr/bin/env bash
# A real single-node Slurm on this machine, for `--executor slurm` and its tests.
#
# Installs Debian's slurm-wlm and munge when missing, writes a one-node slurm.conf (no cgroups:
# proctrack/linuxproc, task/none, no accounting database) and starts munged, slurmctld and
# slurmd directly, since these machines have no init system. Idempotent: a daemon already
# running is left alone, so CI can call it before every test run. Needs root.
#
# The node claims more CPUs than the machine has (`SlurmdParameters=config_overrides`) so that
# many one-CPU pipeline nodes run at once, as they do with the threads executor; the node has
# no GPUs (no gres), so jobs asking for `--gres=gpu:N` stay pending here.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    echo "slurm_local.sh: needs root (it installs packages and starts daemons)" >&2
    exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    echo "== installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends slurm-wlm munge
fi

host=$(hostname -s)
cpus=${SLURM_LOCAL_CPUS:-32}
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 ))
conf=/etc/slurm/slurm.conf
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
wanted=$(cat <<EOF
# Written by judgeflow's scripts/slurm_local.sh: one node, no cgroups, no accounting database.
ClusterName=judgeflow
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
SchedulerParameters=sched_interval=1
MessageTimeout=30
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)
if [[ ! -f $conf ]] || [[ "$(cat "$conf")" != "$wanted" ]]; then
    echo "== writing $conf"
    printf '%s\n' "$wanted" > "$conf"
    changed=1
else
    changed=0
fi

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [[ ! -s /etc/munge/munge.key ]]; then
    echo "== creating the munge key"
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
if ! running /run/munge/munged.pid; then
    echo "== starting munged"
    runuser -u munge -- /usr/sbin/munged
fi

if running /run/slurmctld.pid && [[ $changed -eq 1 ]]; then
    kill "$(cat /run/slurmctld.pid)"; sleep 1
fi
if running /run/slurmd.pid && [[ $changed -eq 1 ]]; then
    kill "$(cat /run/slurmd.pid)"; sleep 1
fi
if ! running /run/slurmctld.pid; then
    echo "== starting slurmctld"
    slurmctld
fi
if ! running /run/slurmd.pid; then
    echo "== starting slurmd"
    slurmd
fi

# Wait until the node takes jobs (a node left DOWN by an earlier stop is resumed).
for _ in $(seq 1 60); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    case "$state" in
        idle*|mixed*|allocated*) echo "slurm is up: node $host is $state"; exit 0 ;;
        down*|drain*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    sleep 1
done
echo "slurm_local.sh: the node never became idle (state: ${state:-none}); see /var/log/slurm/" >&2
exit 1
