#!/usr/bin/env bash
# Reliability end to end, on 2 ranks (edge + server) with small synthetic data. Kill + resume,
# SIGUSR1 + resume and fault injection are checked in every client mode by matrix/modes.sh;
# here:
#   1. NaN/Inf: --on-nonfinite stop names stage, micro-batch and step; skip-batch completes
#      and counts the skipped steps;
#   2. a checkpoint of another model, and an occupied --checkpoint-dir, are refused.
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

common=(--dataset synthetic --synthetic-train 512 --synthetic-test 128 --batch-size 32 --epochs 2
        --chunks 2 --schedule 1f1b --comm-timeout 5)

# A finished run with checkpoints, for the refusals of section 2.
run2 "${common[@]}" --output full.h5 --checkpoint-dir ck_full >full.log 2>&1
check "a run with checkpoints completes" $?

# --- 1. NaN/Inf -----------------------------------------------------------------------------
run2 "${common[@]}" --lr 1e30 --momentum 0 --output nan.h5 >nan.log 2>&1
rc=$?
[[ $rc -ne 0 ]] && grep -Eq "non-finite .* in stage [0-9]+ .*micro-batch [0-9]+, step [0-9]+ of epoch" nan.log
check "NaN/Inf stops the run naming stage, micro-batch and step (rc=$rc)" $?
run2 "${common[@]}" --lr 1e30 --momentum 0 --on-nonfinite skip-batch --output skip.h5 >skip.log 2>&1
rc=$?
skipped=$("$py" -c "import h5py; print(int(h5py.File('skip.h5','r')['epochs/skipped_steps'][0]))")
[[ $rc -eq 0 && ${skipped:-0} -gt 0 ]]; check "skip-batch completes and counts $skipped skipped steps" $?

# --- 2. refusals ----------------------------------------------------------------------------
run2 "${common[@]}" --model mlp --checkpoint-dir ck_full --resume --output other.h5 >other.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q "splitpipe: error: .*different run" other.log && [[ ! -e other.h5 ]]
check "checkpoint of another model refused (rc=$rc)" $?
run2 "${common[@]}" --checkpoint-dir ck_full --output again.h5 >again.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q "already holds" again.log && [[ -d ck_full/epoch-0002-step-0000000 ]]
check "occupied --checkpoint-dir refused without --resume/--overwrite, checkpoints kept (rc=$rc)" $?

if ((${#failures[@]})); then
  echo "${#failures[@]} reliability check(s) failed"
  exit 1
fi
echo "all reliability checks passed"
