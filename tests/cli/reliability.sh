#!/usr/bin/env bash
# Reliability end to end, on 2 ranks (edge + server) with small synthetic data. Kill + resume,
# SIGUSR1 + resume and fault injection are checked in every client mode by matrix/modes.sh;
# here:
#   1. NaN/Inf: --on-nonfinite stop names stage, micro-batch and step; skip-batch completes
#      and counts the skipped steps;
#   2. a checkpoint of another model, and an occupied --checkpoint-dir, are refused;
#   3. the defects of a run file or checkpoint that could not be trusted, each shown fixed:
#      an --overwrite of a file being written, --resume into another file, changed options on
#      resume, a damaged checkpoint, checkpoint order past epoch 9999, a server's failure and a
#      killed server recorded in the status (the full disk: tests/cli/disk_full.sh).
# Usage: reliability.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
binary=$(realpath "$1")
mpiexec=$2
read -r -a mpirun_flags <<<"${3//;/ }"
py=/usr/bin/python3

work=$(mktemp -d "${TMPDIR:-/tmp}/splitpipe_reliability.XXXXXX")
trap '[[ -n ${KEEP_WORK:-} ]] || rm -rf "$work"' EXIT
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
run2 "${common[@]}" --lr 1e6 --momentum 0 --output nan.h5 >nan.log 2>&1
rc=$?
[[ $rc -ne 0 ]] && grep -Eq "non-finite .* in stage [0-9]+ .*micro-batch [0-9]+, step [0-9]+ of epoch" nan.log
check "NaN/Inf stops the run naming stage, micro-batch and step (rc=$rc)" $?
run2 "${common[@]}" --lr 1e6 --momentum 0 --on-nonfinite skip-batch --output skip.h5 >skip.log 2>&1
rc=$?
skipped=$("$py" -c "import h5py; print(int(h5py.File('skip.h5','r')['epochs/skipped_steps'][0]))")
[[ $rc -eq 0 && ${skipped:-0} -gt 0 ]]; check "skip-batch completes and counts $skipped skipped steps" $?

# --- 2. refusals ----------------------------------------------------------------------------
run2 "${common[@]}" --model mlp --checkpoint-dir ck_full --resume --output other.h5 >other.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q "splitpipe: error: .*--model mlp (checkpoint: lenet5)" other.log && [[ ! -e other.h5 ]]
check "checkpoint of another model refused (rc=$rc)" $?
run2 "${common[@]}" --checkpoint-dir ck_full --output again.h5 >again.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q "already holds" again.log && [[ -d ck_full/epoch-0002-step-0000000 ]]
check "occupied --checkpoint-dir refused without --resume/--overwrite, checkpoints kept (rc=$rc)" $?

# --- 3. run files, checkpoints and resume that can be trusted -------------------------------
status_of() { HDF5_USE_FILE_LOCKING=FALSE "$py" -c "import h5py,sys; print(h5py.File(sys.argv[1],'r').attrs['status'])" "$1" 2>/dev/null; }
rows_of() {  # every per-epoch table's row count, distinct values
  HDF5_USE_FILE_LOCKING=FALSE "$py" - "$1" <<'PY'
import h5py, sys
f = h5py.File(sys.argv[1], "r")
counts = {f["confusion"].shape[0]} if "confusion" in f else set()
groups = ["epochs"] if "epochs" in f else []
groups += [f"ranks/{r}" for r in f.get("ranks", {}) if isinstance(f["ranks"][r], h5py.Group)]
groups += [f"clients/{c}" for c in f.get("clients", {})]
for group in groups:
    counts |= {d.shape[0] for d in f[group].values()}
print(" ".join(str(c) for c in sorted(counts)) or "0")
PY
}
constant=(--lr-schedule constant)
# common without --epochs and --synthetic-train, which the checks below set themselves.
small=(--dataset synthetic --synthetic-test 128 --chunks 2 --schedule 1f1b --comm-timeout 5)

# Defect 1: --overwrite of a file another run is still writing is refused; that run's file survives.
run2 "${small[@]}" --batch-size 32 "${constant[@]}" --epochs 6 --synthetic-train 4096 --output busy.h5 >busy.log 2>&1 &
writer=$!
for _ in $(seq 100); do [[ -e busy.h5 ]] && break; sleep 0.2; done
run2 "${common[@]}" --output busy.h5 --overwrite >busy2.log 2>&1
rc=$?
wait "$writer"
writer_rc=$?
[[ $rc -ne 0 ]] && grep -q "splitpipe: error: .*in use" busy2.log && [[ $writer_rc -eq 0 ]] &&
  [[ $(status_of busy.h5) == complete ]] && [[ $(rows_of busy.h5) == 6 ]]
check "--overwrite of a file being written is refused, the writer's file stays whole (rc=$rc, writer $writer_rc)" $?

# Defect 2: resume appends only to the run file of its checkpoint.
run2 "${common[@]}" "${constant[@]}" --output mine.h5 --checkpoint-dir ck_mine >mine.log 2>&1
cp full.h5 unrelated.h5
run2 "${small[@]}" --batch-size 32 --synthetic-train 512 "${constant[@]}" --epochs 3 --checkpoint-dir ck_mine --resume --output unrelated.h5 >r2.log 2>&1
rc=$?
[[ $rc -ne 0 ]] && grep -q "splitpipe: error: --output 'unrelated.h5'" r2.log && cmp -s full.h5 unrelated.h5
check "--resume --output of another file is refused and that file is untouched (rc=$rc)" $?
cp mine.h5 mine.saved
run2 "${small[@]}" --batch-size 32 --synthetic-train 512 "${constant[@]}" --epochs 1 --output mine.h5 --overwrite >replace.log 2>&1
cp mine.h5 replaced.h5
run2 "${small[@]}" --batch-size 32 --synthetic-train 512 "${constant[@]}" --epochs 3 --checkpoint-dir ck_mine --resume >r3.log 2>&1
rc=$?
[[ $rc -ne 0 ]] && grep -q "is not the one this checkpoint belongs to" r3.log && cmp -s mine.h5 replaced.h5
check "--resume into a run file another run replaced is refused (rc=$rc)" $?
mv mine.saved mine.h5

# Defect 4: options that change the math or the data order cannot change on resume.
cp mine.h5 mine.before
run2 "${small[@]}" --synthetic-train 512 "${constant[@]}" --epochs 3 --batch-size 64 --lr 0.01 --fwd-codec quant:bits=8 \
  --checkpoint-dir ck_mine --resume >r4.log 2>&1
rc=$?
line=$(grep '^splitpipe: error:' r4.log)
[[ $rc -eq 2 ]] && [[ $line == *"--batch-size 64 (checkpoint: 32)"* && $line == *"--lr 0.01"* && $line == *"--fwd-codec"* ]] &&
  cmp -s mine.h5 mine.before
check "resume with changed --batch-size/--lr/--fwd-codec is refused listing each (rc=$rc)" $?
run2 "${small[@]}" --batch-size 32 --synthetic-train 512 "${constant[@]}" --epochs 1 --checkpoint-dir ck_mine --resume >r5.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q "splitpipe: error: .*--epochs 1: the checkpoint .* has already trained 2" r5.log
check "resume with --epochs below the checkpoint's is refused (rc=$rc)" $?
run2 "${small[@]}" --batch-size 32 --synthetic-train 512 --epochs 3 --checkpoint-dir ck_full --resume >r6.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q "\-\-epochs 3 (checkpoint: 2) \[--epochs sets the span of --lr-schedule cosine\]" r6.log
check "resume with more --epochs under a cosine schedule is refused (rc=$rc)" $?

# Defect 5: a damaged checkpoint file is refused by name.
cp -r ck_mine ck_bad
printf 'XXXXXXXXXXXXXXXX' | dd of=ck_bad/epoch-0002-step-0000000/rank1.pt bs=1 seek=400 conv=notrunc 2>/dev/null
cp mine.h5 mine.before
run2 "${small[@]}" --batch-size 32 --synthetic-train 512 "${constant[@]}" --epochs 3 --checkpoint-dir ck_bad --resume >r7.log 2>&1
rc=$?
[[ $rc -ne 0 ]] && grep -q "splitpipe: error: rank 1: checkpoint file ck_bad/epoch-0002-step-0000000/rank1.pt is damaged" r7.log &&
  cmp -s mine.h5 mine.before
check "a flipped byte in a checkpoint file is refused naming it (rc=$rc)" $?

# Defect 6: the newest checkpoint is found by number, past epoch 9999.
mkdir ck_order
cp -r ck_mine/epoch-0001-step-0000000 ck_order/epoch-9999-step-0000000
cp -r ck_mine/epoch-0002-step-0000000 ck_order/epoch-10000-step-0000000
run2 "${small[@]}" --batch-size 32 --synthetic-train 512 "${constant[@]}" --epochs 3 --checkpoint-dir ck_order --resume >r8.log 2>&1
rc=$?
[[ $rc -eq 0 ]] && grep -q "resuming from epoch 3 step 0" r8.log && [[ $(rows_of mine.h5) == 3 ]] &&
  [[ -d ck_order/epoch-0003-step-0000000 && -d ck_order/epoch-10000-step-0000000 && ! -d ck_order/epoch-9999-step-0000000 ]]
check "epoch-10000 is newer than epoch-9999; --keep-checkpoints 2 deletes the oldest (rc=$rc)" $?

# Defect 7: a failure on a server rank is recorded by rank 0, in one line.
run2 --dataset synthetic --synthetic-train 512 --synthetic-test 128 --epochs 2 --lr 1e5 --comm-timeout 5 \
  --output server_nan.h5 >server_nan.log 2>&1
rc=$?
status=$(status_of server_nan.h5)
[[ $rc -ne 0 && $status == "failed: rank 1: non-finite"* && $status != *$'\n'* ]] && [[ $(rows_of server_nan.h5) =~ ^[0-9]+$ ]]
check "a server's failure ends as status 'failed: rank 1: ...' (rc=$rc, status '${status:0:40}...')" $?
run2 "${small[@]}" --batch-size 32 --epochs 4 --synthetic-train 4096 --output killed.h5 >killed.log 2>&1 &
for _ in $(seq 100); do [[ -e killed.h5 ]] && break; sleep 0.2; done
for pid in $(pgrep -f "killed.h5"); do  # the server: rank 1 of mpirun's job
  if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then kill -KILL "$pid"; fi
done
wait
status=$(status_of killed.h5)
# Rank 0 names rank 1 when it was waiting for a message from it; inside a collective (the step's
# flags) it can only name the collective. Either way the file says the run failed.
# mpirun SIGKILLs rank 0 about a second after its SIGTERM: a rank 0 that meets no wait in that
# second (computing, evaluating) cannot record anything, and its file stays "running" with its
# writer lock gone, which tools/report shows as "ended without status".
[[ $status == "failed: "*"SIGTERM while waiting for "* || $status == running ]] &&
  [[ $(rows_of killed.h5) =~ ^[0-9]+$ ]] && grep -q "rank 1 .*exited on signal 9" killed.log
check "SIGKILL of the server rank ends as 'failed: ...' (status '${status:0:60}...'), mpirun names rank 1" $?

if ((${#failures[@]})); then
  echo "${#failures[@]} reliability check(s) failed"
  exit 1
fi
echo "all reliability checks passed"
