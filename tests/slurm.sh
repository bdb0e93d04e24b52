#!/usr/bin/env bash
# sparselab on a real SLURM: a single-node cluster (munge, slurmctld, slurmd) on this machine
# runs a small synthetic ablation (8 runs of a few seconds) as an array job of 3 tasks written by
# `cargo xtask slurm`; one task is sent USR1 mid-run (as SLURM does before a time limit),
# checkpoints its run, requeues itself and resumes it; the rendering job runs after the array.
# The finished store must hold the bits of one `ablate` process training the same ablation
# (timings and resume counts aside), and no lease, checkpoint or temporary file.
#
# Run by .ci/run as root once the packages slurmctld, slurmd, slurm-client and munge are
# installed; without them, or without root, it says why it cannot run and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
ablation=slurm-smoke

for tool in munged slurmctld slurmd sbatch scontrol squeue sacct python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "slurm test: skipped, $tool is not installed (Debian: slurmctld slurmd slurm-client munge)"
    exit 0
  fi
done
if [ "$(id -u)" -ne 0 ]; then
  echo "slurm test: skipped, starting munge and the SLURM daemons needs root"
  exit 0
fi

work=$(mktemp -d /tmp/sparselab-slurm.XXXXXX)
host=$(hostname -s)
cpus=$(nproc)
cleanup() {
  scancel --user=root >/dev/null 2>&1 || true
  pkill -x slurmd >/dev/null 2>&1 || true
  pkill -x slurmctld >/dev/null 2>&1 || true
  pkill -x munged >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Munge: the key the package made, or a fresh one.
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
pkill -x munged >/dev/null 2>&1 || true
if id munge >/dev/null 2>&1; then
  runuser -u munge -- munged --force
else
  munged --force
fi

# A one-node cluster; no cgroups (containers often lack them): processes are tracked by parent.
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >/etc/slurm/slurm.conf <<EOF
ClusterName=sparselab-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
KillWait=30
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
pkill -x slurmctld >/dev/null 2>&1 || true
pkill -x slurmd >/dev/null 2>&1 || true
slurmctld -c -i
slurmd -c
for _ in $(seq 60); do
  sinfo -h -o %t 2>/dev/null | grep -qx idle && break
  sleep 1
done
sinfo -h -o %t | grep -qx idle || { echo "slurm test: the node never became idle"; sinfo; exit 1; }

# The ablation: 2 seeds of GMP, static ERK, SET and RigL at sparsity 0.9 on synthetic data (the
# dynamic topologies carry a random stream and masks across the requeue).
mkdir -p "$work/experiments"
cat >"$work/experiments/$ablation.toml" <<'TOML'
description = "SLURM test: 8 runs of a few seconds"
seeds = 2

[data]
name = "synthetic"
validation = 100
synthetic = { classes = 5, shape = [1, 5, 5], train = 3300, test = 200, noise = 1.0 }

[model]
name = "mlp-300-100"
hidden = [40, 20]

[train]
epochs = 150
batch = 50
lr = 0.05

[arms.gmp]
optimizer = { name = "sgd" }
topology = { name = "gmp", sparsity = 0.9, every = 5 }

[arms.static]
optimizer = { name = "sgd" }
topology = { name = "static", sparsity = 0.9 }

[arms.set]
optimizer = { name = "sgd" }
topology = { name = "set", sparsity = 0.9, every = 20 }

[arms.rigl]
optimizer = { name = "sgd" }
topology = { name = "rigl", sparsity = 0.9, every = 20 }
TOML

# The array job: 3 tasks of one CPU each, into a store of their own.
out="$work/results"
cargo xtask slurm "$ablation" --tasks 3 --cpus 1 --device flex --out "$out" \
  --experiments "$work/experiments" --dir "$work/slurm" -- --time=30 >/dev/null
scripts="$work/slurm/$ablation"
logs="$scripts/logs"
job=$(sbatch --parsable "$scripts/array.sbatch")
job=${job%%;*}
render=$(sbatch --parsable --dependency=afterok:"$job" "$scripts/render.sbatch")
echo "slurm test: array job $job, rendering job $render"

# USR1 to task 1 once it is mid-run (it holds the lease of a run that has a checkpoint), as
# SLURM sends it before a time limit.
store="$out/$ablation"
signalled=0
for _ in $(seq 600); do
  mid_run=0
  for lease in $(grep -l '_1"' "$store"/*.lease 2>/dev/null); do
    [ -f "${lease%.lease}/checkpoint.bpk" ] && mid_run=1
  done
  if [ "$mid_run" = 1 ]; then
    scancel --signal=USR1 --batch "${job}_1"
    signalled=1
    break
  fi
  [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
  sleep 0.1
done
[ "$signalled" = 1 ] || { echo "slurm test: task 1 was never seen mid-run"; exit 1; }

# Everything ends: the array (task 1 requeued once), then the rendering job.
for _ in $(seq 900); do
  [ -z "$(squeue -h -j "$job,$render" 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(squeue -h -j "$job,$render" 2>/dev/null)" ] || { echo "slurm test: jobs still queued"; squeue; exit 1; }
grep -l "stopped on request" "$logs"/*_1.out >/dev/null || {
  echo "slurm test: task 1 did not stop on USR1"; tail -n 20 "$logs"/*; exit 1; }
[ -s "$store/table.md" ] || { echo "slurm test: the rendering job wrote no table"; tail -n 20 "$logs"/*; exit 1; }

# The same ablation trained by one process, which nothing interrupts.
cargo xtask ablate "$ablation" --device flex --experiments "$work/experiments" \
  --out "$work/reference" >/dev/null 2>&1
reference="$work/reference/$ablation"

python3 - "$reference" "$store" <<'EOF'
import json, os, sys

def values(store):
    out = {}
    for run in sorted(os.listdir(store)):
        d = os.path.join(store, run)
        if not os.path.isfile(os.path.join(d, "config.json")):
            continue
        left = [f for f in os.listdir(d) if f.endswith((".tmp", ".bpk"))]
        assert not left, f"{d}: left behind {left}"
        v = {f: json.load(open(os.path.join(d, f))) for f in ("epochs.json", "final.json")}
        out[run] = strip(v)
    return out

def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items()
                if not k.endswith("seconds") and k not in ("samples_per_sec", "resumed")
                and not k.startswith("measured_speedup")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v

reference, store = values(sys.argv[1]), values(sys.argv[2])
assert reference.keys() == store.keys(), (sorted(reference), sorted(store))
different = [r for r in reference if reference[r] != store[r]]
assert not different, f"runs that differ from the one-process run: {different}"
resumed = sum(json.load(open(os.path.join(sys.argv[2], r, "final.json"))).get("resumed", 0) > 0
              for r in store)
assert resumed >= 1, "no run was resumed from a checkpoint"
print(f"slurm test: {len(store)} runs equal the one-process run bit for bit ({resumed} resumed)")
EOF
rm -rf "$work"
