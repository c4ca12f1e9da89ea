#!/bin/bash
# A sharded evaluation as a Slurm job array: 16 tasks, then a merge that runs once they all
# succeed. Shards count from 0, so the array is 0-15.
#
#   jobid=$(sbatch --parsable slurm-array.sh)
#   sbatch --dependency=afterok:$jobid --wrap \
#     "npx advkit merge results/shard-{0..15} --out results/report --junit results/junit.xml"
#
#SBATCH --job-name=advkit-eval
#SBATCH --array=0-15
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --requeue
set -euo pipefail
# A requeued task runs its shard again, to the same result (advkit attack shards resume
# where they stopped).
npx advkit eval --model models/mobilenet --data folder:data/val --eps 0.0039,0.0078 \
  --preset standard --seed 0 --workers "$SLURM_CPUS_PER_TASK" \
  --shard-count 16 --out "results/shard-$SLURM_ARRAY_TASK_ID"
