#!/bin/bash
# End to end against a real (local, one-node) Slurm: tools/slurm-local starts munged, slurmctld
# and slurmd; tools/sweep submits a 4-point sweep (2 partitions x 2 codecs, tiny synthetic runs,
# 2 ranks each) as one job array; every task must complete and write a complete run file; a
# second tools/sweep must find nothing to do; a bad sweep file must submit nothing; tools/report
# must tabulate 4 complete runs and draw the plots of what was swept. The daemons are stopped
# on every exit.
#
# usage: sweep_slurm.sh SPLITPIPE_BINARY SOURCE_DIR
# Needs root and Debian's slurm-wlm + munge. Without them the test is skipped (exit 77) unless
# SPLITPIPE_REQUIRE_SLURM=1, which makes their absence a failure (CI sets it).
set -euo pipefail

splitpipe=${1:?usage: sweep_slurm.sh SPLITPIPE_BINARY SOURCE_DIR}
source_dir=${2:?usage: sweep_slurm.sh SPLITPIPE_BINARY SOURCE_DIR}
timeout_s=${SLURM_TEST_TIMEOUT:-600}

name=slurm
# shellcheck source=local_slurm.sh
source "$(dirname "$0")/local_slurm.sh"
sinfo

cat >"$work/sweep-slurm-test.ini" <<'EOF'
[sweep]
name = slurm-test
ranks = 2

[base]
dataset = synthetic
synthetic-train = 256
synthetic-test = 64
batch-size = 32
epochs = 2
seed = 3

[axes]
edge-first = 1, 2
fwd-codec = none; quant:bits=8
EOF
results=$work/results
sweep_dir=$results/slurm-test
# The node has the CPUs this machine has (2 in CI) and each point wants 2 ranks.
export MPIRUN_FLAGS="--oversubscribe --bind-to none"

echo "== a bad sweep file is refused before anything is submitted"
printf '[base]\nepochs = 1\n[axes]\nedge-frist = 1,2\n' >"$work/sweep-bad.ini"
status=0
"$source_dir/tools/sweep" "$work/sweep-bad.ini" --results "$results" --splitpipe "$splitpipe" 2>"$work/bad.err" || status=$?
cat "$work/bad.err"
[[ $status -eq 2 ]] || fail "bad sweep file: exit status $status, expected 2"
grep -q "unknown splitpipe option 'edge-frist'" "$work/bad.err" || fail "bad sweep file: message does not name the option"
[[ -z $(squeue -h -o %A) ]] || fail "bad sweep file: something was submitted"

echo "== a point that needs more CPUs than the node has is refused before submission"
cpus=$(sinfo -h -o %c | head -n 1)
sed "s/^ranks = .*/ranks = $((cpus + 1))/" "$work/sweep-slurm-test.ini" >"$work/sweep-too-big.ini"
grep -q "^ranks = $((cpus + 1))" "$work/sweep-too-big.ini" || fail "could not set ranks in the too-big sweep file"
status=0
"$source_dir/tools/sweep" "$work/sweep-too-big.ini" --results "$work/too-big" --splitpipe "$splitpipe" --check none \
  2>"$work/too-big.err" || status=$?
cat "$work/too-big.err"
[[ $status -eq 1 ]] || fail "too-big sweep: exit status $status, expected 1"
grep -q "Slurm can never start these points ($((cpus + 1)) ranks each" "$work/too-big.err" ||
  fail "too-big sweep: the message does not say why"
[[ -z $(squeue -h -o %A) ]] || fail "too-big sweep: something was submitted"

wait_for_job() {
  local job=$1 deadline=$((SECONDS + timeout_s))
  echo "== wait for job array $job (at most $timeout_s s)"
  while [[ -n $(squeue -h -j "$job" -o %i 2>/dev/null) ]]; do
    if ((SECONDS > deadline)); then
      squeue
      tail -n 30 "$sweep_dir"/logs/* || true
      fail "job array $job still queued or running after $timeout_s s"
    fi
    sleep 2
  done
}

echo "== submit the sweep"
"$source_dir/tools/sweep" "$work/sweep-slurm-test.ini" --results "$results" --splitpipe "$splitpipe" | tee "$work/submit.out"
job=$(sed -n 's/^submitted job array \([0-9]*\) .*/\1/p' "$work/submit.out")
[[ -n $job ]] || fail "tools/sweep printed no job id"

wait_for_job "$job"
# No accounting here (no sacct): finished jobs stay in slurmctld for MinJobAge.
states=$(scontrol -o show job "$job" | grep -o 'JobState=[A-Z_]*' | sort | uniq -c)
echo "$states"
tasks_completed=$(scontrol -o show job "$job" | grep -c 'JobState=COMPLETED' || true)
if [[ $tasks_completed -ne 4 ]]; then
  tail -n 30 "$sweep_dir"/logs/* || true
  fail "expected 4 COMPLETED array tasks, got: $states"
fi

echo "== four complete run files"
/usr/bin/python3 - "$sweep_dir" <<'EOF'
import glob, os, sys
os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"
import h5py
files = sorted(glob.glob(os.path.join(sys.argv[1], "*.h5")))
assert len(files) == 4, f"expected 4 run files, found {files}"
for path in files:
    with h5py.File(path, "r") as f:
        status = f.attrs["status"]
        epochs = f["epochs"]["test_acc"].shape[0]
        print(os.path.basename(path), status, f"{epochs} epochs, world size {f.attrs['world_size']}")
        assert status == "complete", f"{path}: status {status}"
        assert epochs == 2, f"{path}: {epochs} epochs logged, expected 2"
        assert f.attrs["world_size"] == 2, f"{path}: world size {f.attrs['world_size']}"
EOF
for point in "$sweep_dir"/*.ini; do
  log=${point%.ini}.log
  [[ -s $log ]] || fail "no log $log"
  grep -q "^wrote " "$log" || fail "$log does not end a run"
done

echo "== re-running the sweep finds nothing to do"
"$source_dir/tools/sweep" "$work/sweep-slurm-test.ini" --results "$results" --splitpipe "$splitpipe" | tee "$work/rerun.out"
grep -q "all 4 points are complete" "$work/rerun.out" || fail "re-run did not skip the complete points"
[[ -z $(squeue -h -o %A) ]] || fail "re-run submitted jobs"

echo "== a failed point is run again, and only that one"
failed_point=$sweep_dir/edge-first-2_fwd-codec-quant-bits-8.h5
/usr/bin/python3 -c '
import os, sys
os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"
import h5py
with h5py.File(sys.argv[1], "a") as f:
    f.attrs["status"] = "failed: marked by the test"
' "$failed_point"
"$source_dir/tools/sweep" "$work/sweep-slurm-test.ini" --results "$results" --splitpipe "$splitpipe" | tee "$work/retry.out"
grep -q "1 to run" "$work/retry.out" || fail "the re-run does not run exactly the failed point"
grep -q "re-run (failed: marked by the test)" "$work/retry.out" || fail "the re-run does not name the failed point"
retry_job=$(sed -n 's/^submitted job array \([0-9]*\) .*/\1/p' "$work/retry.out")
[[ -n $retry_job ]] || fail "the re-run submitted nothing"
wait_for_job "$retry_job"
scontrol -o show job "$retry_job" | grep -q 'ArrayTaskId=3 .*JobState=COMPLETED' ||
  fail "the re-run's task is not array index 3 or did not complete: $(scontrol -o show job "$retry_job")"
/usr/bin/python3 -c '
import os, sys
os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"
import h5py
status = h5py.File(sys.argv[1], "r").attrs["status"]
assert status == "complete", f"{sys.argv[1]}: status after the re-run: {status}"
' "$failed_point"

echo "== report"
"$source_dir/tools/report" "$sweep_dir" --out "$work/report" | tee "$work/report.out"
rows=$(tail -n +2 "$work/report/summary.csv" | grep -c . || true)
[[ $rows -eq 4 ]] || fail "summary.csv has $rows rows, expected 4"
complete_rows=$(grep -c ',complete,2/2,' "$work/report/summary.csv" || true)
[[ $complete_rows -eq 4 ]] || fail "summary.csv has $complete_rows complete rows, expected 4"
md_rows=$(grep -c '^| edge-first-' "$work/report/summary.md" || true)
[[ $md_rows -eq 4 ]] || fail "summary.md has $md_rows rows, expected 4"
header=$(head -n 1 "$work/report/summary.csv")
for column in "wire bytes/train sample" "act wire/raw" "grad wire/raw" pareto; do
  [[ $header == *"$column"* ]] || fail "summary.csv has no column '$column': $header"
done
# Codecs and the cut were swept, the link was not.
for png in accuracy_per_epoch accuracy_vs_bytes cut; do
  file=$work/report/$png.png
  [[ -s $file ]] || fail "$png.png missing"
  [[ $(head -c 8 "$file" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "$png.png is not a PNG"
done
[[ ! -e $work/report/throughput_vs_link.png ]] || fail "throughput_vs_link.png drawn though the link was not swept"
echo "PASS"
