#!/usr/bin/env bash
# A stand-in "cluster" for workflow/profiles/cluster-generic-local: Snakemake's cluster-generic
# executor calls this with a job script as its last argument, exactly as it would call sbatch
# or qsub. We start the job script in the background on this machine, log it under
# .snakemake/cluster-logs/ and print a job id (the PID). The executor learns that a job ended
# from the marker files the job script writes.
set -euo pipefail
jobscript="${@: -1}"
logdir=".snakemake/cluster-logs"
mkdir -p "$logdir"
nohup bash "$jobscript" > "$logdir/$(basename "$jobscript").log" 2>&1 &
echo $!
