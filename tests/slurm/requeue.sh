#!/bin/bash
# A sweep point whose run is longer than its time limit continues instead of failing, on a real
# (local, one-node) Slurm: jobs/sweep.sbatch asks for USR1 120 s before the limit, so with
# --time=00:01:00 the signal comes within Slurm's first check; the point checkpoints, exits 75
# and requeues itself, resumes from its checkpoint and completes. The run file must be complete,
# with every epoch once, and equal the same point run without interruption (weights digest).
#
# Slurm holds a requeued job about two minutes (BeginTime) before it may start again; the test
# lifts that hold (scontrol update StartTime=now) instead of waiting.
#
# usage: requeue.sh SPLITPIPE_BINARY SOURCE_DIR   (root, slurm-wlm + munge; else skipped, exit 77,
# unless SPLITPIPE_REQUIRE_SLURM=1)
set -euo pipefail

splitpipe=${1:?usage: requeue.sh SPLITPIPE_BINARY SOURCE_DIR}
source_dir=${2:?usage: requeue.sh SPLITPIPE_BINARY SOURCE_DIR}

name=requeue
# shellcheck source=local_slurm.sh
source "$(dirname "$0")/local_slurm.sh"

# One point of ~50 s of training on 2 ranks: longer than what runs before the USR1.
cat >"$work/requeue.ini" <<'INI'
[sweep]
name = requeue
ranks = 2
sbatch = --time=00:01:00
[base]
dataset = synthetic
synthetic-train = 4096
synthetic-test = 256
batch-size = 4
chunks = 2
epochs = 16
[axes]
seed = 5
INI
cd "$work"
SPLITPIPE=$splitpipe "$source_dir/tools/sweep" requeue.ini >sweep.log 2>&1 || fail "tools/sweep: $(tail -5 sweep.log)"
point=results/requeue/seed-5
array=$(sed -n 's/.*submitted job array \([0-9]*\).*/\1/p' sweep.log | head -1)
[[ -n $array ]] || fail "no job array id in: $(cat sweep.log)"
job=${array}_0
echo "submitted job $job (1 point, --time=00:01:00)"

requeued=0
deadline=$((SECONDS + 540))
while ((SECONDS < deadline)); do
  state=$(scontrol show job "$job" 2>/dev/null | tr ' ' '\n' | sed -n 's/^JobState=//p' | head -1)
  reason=$(scontrol show job "$job" 2>/dev/null | tr ' ' '\n' | sed -n 's/^Reason=//p' | head -1)
  restarts=$(scontrol show job "$job" 2>/dev/null | tr ' ' '\n' | sed -n 's/^Restarts=//p' | head -1)
  ((${restarts:-0} > requeued)) && requeued=$restarts && echo "requeued (Restarts=$restarts), state $state ($reason)"
  if [[ $state == PENDING && $reason == BeginTime ]]; then
    # Not at once: lifted while the first run's batch step was still being cleaned up, the
    # requeued task once failed to launch (FAILED without running).
    held=${held:-$SECONDS}
    ((SECONDS - held >= 15)) && scontrol update JobId="$job" StartTime=now || true
  fi
  case $state in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;;
  esac
  sleep 2
done
echo "job $job ended $state after $requeued requeue(s)"
grep -h "stopped\|resuming\|requeue" "$point.log" | head -10 || true
[[ $state == COMPLETED ]] || fail "job ended $state, not COMPLETED: $(tail -5 "$point.log")"
((requeued >= 1)) || fail "the point was never requeued: it finished within its first minute (make it longer)"
grep -q "continue with --resume" "$point.log" || fail "no checkpoint at the USR1 in $point.log"
grep -q "^resuming from epoch" "$point.log" || fail "the requeued point did not resume from its checkpoint"

# The point, run again without any interruption, gives the same weights and every epoch once.
mpirun --allow-run-as-root --oversubscribe -np 2 "$splitpipe" --config "$point.ini" --output straight.h5 \
  >straight.log 2>&1 || fail "uninterrupted run failed: $(tail -3 straight.log)"
/usr/bin/python3 - "$point.h5" straight.h5 <<'PY' || fail "the requeued point differs from an uninterrupted run"
import sys
import h5py
import numpy as np

def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)

requeued, straight = (h5py.File(p, "r") for p in sys.argv[1:])
problems = []
if text(requeued.attrs["status"]) != "complete":
    problems.append(f"status {text(requeued.attrs['status'])!r}")
if list(requeued["epochs/epoch"][:]) != list(range(1, 17)):
    problems.append(f"epochs {requeued['epochs/epoch'][:]}")
if text(requeued.attrs["weights_digest"]) != text(straight.attrs["weights_digest"]):
    problems.append("weights digest differs from the uninterrupted run")
for column in ("train_loss", "test_loss", "train_wire_bytes"):
    if not np.array_equal(requeued["epochs"][column][:], straight["epochs"][column][:]):
        problems.append(f"/epochs/{column} differs: {requeued['epochs'][column][:]} vs {straight['epochs'][column][:]}")
print("\n".join(problems) or "requeued point == uninterrupted run (digest, losses, bytes)")
sys.exit(1 if problems else 0)
PY
echo "requeue: a time-limited point checkpointed at USR1, requeued, resumed and completed"
