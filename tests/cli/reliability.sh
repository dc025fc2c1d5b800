#!/usr/bin/env bash
# Reliability end to end, on 2 ranks (edge + server) with small synthetic data:
#   1. a run whose server is SIGKILLed in epoch 3, resumed from its epoch-2 checkpoint, ends
#      with weights (digest per rank) and per-epoch losses bit-identical to an uninterrupted run;
#   2. a run stopped by SIGUSR1 mid-epoch exits 75 after a checkpoint and resumes to the same
#      weights;
#   3. every fault-injection mode (crash, hang, exception) on each role (edge rank 0, server
#      rank 1): all ranks gone within 30 s, exit != 0, a message naming the failing rank, and
#      a readable run file holding the 2 completed epochs with status != complete;
#   4. NaN/Inf: --on-nonfinite stop names stage, micro-batch and step; skip-batch completes
#      and counts the skipped steps;
#   5. a checkpoint of another model, and an occupied --checkpoint-dir, are refused.
# Usage: reliability.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
binary=$(realpath "$1")
mpiexec=$2
read -r -a mpirun_flags <<<"${3//;/ }"
py=/usr/bin/python3

work=$(mktemp -d "${TMPDIR:-/tmp}/splitpipe_reliability.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

failures=()
check() {  # NAME CONDITION-EXIT-CODE
  if [[ $2 -eq 0 ]]; then echo "ok    $1"; else echo "FAIL  $1"; failures+=("$1"); fi
}
run2() { "$mpiexec" -np 2 "${mpirun_flags[@]}" "$binary" "$@"; }

# 16 steps per epoch; step 40 is in epoch 3, after the epoch-2 checkpoint.
common=(--dataset synthetic --synthetic-train 512 --synthetic-test 128 --batch-size 32 --epochs 4
        --chunks 2 --schedule 1f1b --comm-timeout 5)

attr() { "$py" -c "import h5py,sys; print(h5py.File(sys.argv[1],'r').attrs[sys.argv[2]])" "$@"; }
losses() { "$py" -c "import h5py,sys; print(list(h5py.File(sys.argv[1],'r')['epochs/train_loss'][:]))" "$1"; }
rows() { "$py" -c "import h5py,sys; print(len(h5py.File(sys.argv[1],'r')['epochs/epoch']))" "$1"; }

# --- 1. SIGKILL and resume ------------------------------------------------------------------
run2 "${common[@]}" --output full.h5 --checkpoint-dir ck_full >full.log 2>&1
check "uninterrupted reference run completes" $?
run2 "${common[@]}" --output killed.h5 --checkpoint-dir ck_killed --fault-inject rank=1,step=40,mode=crash >killed.log 2>&1
rc=$?
[[ $rc -ne 0 ]]; check "SIGKILLed run exits non-zero (rc=$rc)" $?
[[ $(attr killed.h5 status) == running && $(rows killed.h5) == 2 ]]
check "killed run's file is readable, keeps 2 epochs, status not complete" $?
run2 "${common[@]}" --checkpoint-dir ck_killed --resume >resumed.log 2>&1
check "resume from the epoch-2 checkpoint completes" $?
grep -q "resuming from epoch 3 step 0" resumed.log; check "resume starts at epoch 3" $?
[[ $(attr killed.h5 weights_digest) == "$(attr full.h5 weights_digest)" ]]
check "resumed weights bit-identical to uninterrupted ($(attr full.h5 weights_digest))" $?
[[ $(losses killed.h5) == "$(losses full.h5)" && $(attr killed.h5 status) == complete ]]
check "resumed per-epoch losses bit-identical, 4 rows, complete" $?

# --- 2. SIGUSR1 mid-epoch -------------------------------------------------------------------
long=(--dataset synthetic --synthetic-train 30000 --synthetic-test 64 --batch-size 32 --epochs 2 --chunks 2
      --comm-timeout 5 --lr 0.01)
# mpirun itself in the background (not a function's subshell), so the signal reaches it; it
# forwards SIGUSR1 to every rank.
"$mpiexec" -np 2 "${mpirun_flags[@]}" "$binary" "${long[@]}" --output usr1.h5 --checkpoint-dir ck_usr1 >usr1.log 2>&1 &
job=$!
for _ in $(seq 100); do grep -q "^writing" usr1.log 2>/dev/null && break; sleep 0.2; done
sleep 2
kill -USR1 "$job"
wait "$job"
rc=$?
[[ $rc -eq 75 ]]; check "SIGUSR1 stops with exit 75 after a checkpoint (rc=$rc)" $?
[[ $(attr usr1.h5 status) == interrupted* ]]; check "interrupted run file says so" $?
run2 "${long[@]}" --checkpoint-dir ck_usr1 --resume >usr1-resume.log 2>&1
check "resume after SIGUSR1 completes" $?
run2 "${long[@]}" --output usr1-full.h5 >usr1-full.log 2>&1
[[ $(attr usr1.h5 weights_digest) == "$(attr usr1-full.h5 weights_digest)" && $(losses usr1.h5) == "$(losses usr1-full.h5)" ]]
check "mid-epoch resume bit-identical to uninterrupted" $?

# --- 3. fault injection on each role --------------------------------------------------------
for rank in 0 1; do
  for mode in crash hang exception; do
    start=$(date +%s)
    timeout 60 "$mpiexec" -np 2 "${mpirun_flags[@]}" "$binary" "${common[@]}" --output "fault-$rank-$mode.h5" \
      --fault-inject "rank=$rank,step=40,mode=$mode" >"fault.log" 2>&1
    rc=$?
    seconds=$(($(date +%s) - start))
    case $mode in
      crash) expected="process rank $rank .*signal 9" ;;
      hang) expected="splitpipe: error: rank $((1 - rank)): .*no progress .* rank $rank" ;;
      exception) expected="splitpipe: error: rank $rank: fault injected at step 40" ;;
    esac
    [[ $rc -ne 0 && $rc -ne 124 && $seconds -le 30 ]] && grep -Eq "$expected" fault.log &&
      [[ $(rows "fault-$rank-$mode.h5") == 2 && $(attr "fault-$rank-$mode.h5" status) != complete ]]
    check "fault $mode on rank $rank: exit $rc after ${seconds}s, message, 2 epochs kept" $?
    [[ ${#failures[@]} -gt 0 && ${failures[-1]} == *"rank $rank"* ]] && cat fault.log
  done
done

# --- 4. NaN/Inf -----------------------------------------------------------------------------
run2 "${common[@]}" --lr 1e30 --momentum 0 --output nan.h5 >nan.log 2>&1
rc=$?
[[ $rc -ne 0 ]] && grep -Eq "non-finite .* in stage [0-9]+ .*micro-batch [0-9]+, step [0-9]+ of epoch" nan.log
check "NaN/Inf stops the run naming stage, micro-batch and step (rc=$rc)" $?
run2 "${common[@]}" --lr 1e30 --momentum 0 --on-nonfinite skip-batch --output skip.h5 >skip.log 2>&1
rc=$?
skipped=$("$py" -c "import h5py; print(int(h5py.File('skip.h5','r')['epochs/skipped_steps'][0]))")
[[ $rc -eq 0 && ${skipped:-0} -gt 0 ]]; check "skip-batch completes and counts $skipped skipped steps" $?

# --- 5. refusals ----------------------------------------------------------------------------
run2 "${common[@]}" --model mlp --checkpoint-dir ck_full --resume --output other.h5 >other.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q "splitpipe: error: .*different run" other.log && [[ ! -e other.h5 ]]
check "checkpoint of another model refused (rc=$rc)" $?
run2 "${common[@]}" --checkpoint-dir ck_full --output again.h5 >again.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q "already holds" again.log && [[ -d ck_full/epoch-0004-step-0000000 ]]
check "occupied --checkpoint-dir refused without --resume/--overwrite, checkpoints kept (rc=$rc)" $?

if ((${#failures[@]})); then
  echo "${#failures[@]} reliability check(s) failed"
  exit 1
fi
echo "all reliability checks passed"
