#!/usr/bin/env bash
# A disk that fills while a checkpoint is written (a small tmpfs, mounted here when running as
# root; skipped with the reason otherwise). The run must end on every rank with one clear
# error naming "No space left on device", leave no temporary files and a run file whose
# status says why and whose tables agree; once space is freed, --resume from the previous
# checkpoint must give the very weights and losses of a run that never failed.
#
# Usage: disk_full.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" disk_full "$@"

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIPPED: mounting a small tmpfs needs root (running as uid $(id -u))"
  exit 77
fi
small=$work/small
mkdir -p "$small"
trap 'umount "$small" 2>/dev/null; rm -rf "$work"' EXIT

export HDF5_USE_FILE_LOCKING=FALSE
run=(--dataset synthetic --synthetic-train 512 --synthetic-test 64 --lr-schedule constant --epochs 3
     --model lenet5 --comm-timeout 30)
mpirun2() { timeout --kill-after=5 120 "$mpiexec" -np 2 "${mpirun_flags[@]}" "$binary" "$@"; }

# What the run gives when nothing fails, and how big one checkpoint is.
mpirun2 "${run[@]}" --checkpoint-dir "$work/ref-ck" --output "$work/ref.h5" >"$work/ref.log" 2>&1 ||
  { cat "$work/ref.log"; fail "reference run failed"; finish ""; }
checkpoint_kib=$(du -sk "$work/ref-ck/epoch-0003-step-0000000" | cut -f1)

# Room for one checkpoint and a half: the first fits, the second cannot.
size_kib=$((checkpoint_kib * 3 / 2))
if ! mount -t tmpfs -o "size=${size_kib}k" tmpfs "$small" 2>"$work/mount.log"; then
  echo "SKIPPED: cannot mount a tmpfs here: $(cat "$work/mount.log")"
  exit 77
fi
mpirun2 "${run[@]}" --checkpoint-dir "$small/ck" --output "$work/full.h5" >"$work/full.log" 2>&1
code=$?
((code != 0)) || fail "a full disk did not fail the run (exit 0)"
((code != 124 && code != 137)) || fail "the run hung on a full disk"
errors=$(grep -c '^splitpipe: error:' "$work/full.log")
((errors == 1)) || fail "$errors lines 'splitpipe: error:' on a full disk, expected 1"
grep '^splitpipe: error:' "$work/full.log" | grep -q 'No space left on device' ||
  fail "the error does not say 'No space left on device': $(grep '^splitpipe: error:' "$work/full.log")"
grep -q -E 'terminate called|Segmentation fault|Exception raised from' "$work/full.log" && fail "crash output on a full disk"
leftovers=$(find "$small" -name '*.tmp' | wc -l)
((leftovers == 0)) || fail "$leftovers temporary file(s) left in the checkpoint directory"
[[ -f $small/ck/epoch-0001-step-0000000/COMPLETE ]] || fail "the previous checkpoint (epoch 1) is gone"
[[ ! -e $small/ck/epoch-0002-step-0000000 ]] || fail "the failed checkpoint's directory was left behind"

/usr/bin/python3 - "$work/full.h5" <<'PY' || fail "run file after the full disk: see above"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
status = f.attrs["status"]
status = status.decode() if isinstance(status, bytes) else status
problems = []
if not status.startswith("failed: ") or "No space left on device" not in status:
    problems.append(f"status {status!r} does not record the full disk")
if "\n" in status:
    problems.append("status spans several lines")
counts = {"confusion": f["confusion"].shape[0], "boundaries/traffic": f["boundaries/traffic"].shape[0]}
for group in ["epochs", "ranks/rank0", "ranks/rank1", "clients/0"]:
    for name, dataset in f[group].items():
        counts[f"{group}/{name}"] = dataset.shape[0]
if len(set(counts.values())) != 1:
    problems.append(f"tables disagree on their row counts: {sorted(set(counts.values()))}")
for p in problems:
    print("  " + p)
sys.exit(1 if problems else 0)
PY

# Space freed: the epoch-1 checkpoint resumes to the uninterrupted run's weights and losses.
mount -o remount,size=$((checkpoint_kib * 8))k "$small" || fail "cannot grow the tmpfs"
mpirun2 "${run[@]}" --checkpoint-dir "$small/ck" --resume >"$work/resume.log" 2>&1 ||
  { tail -5 "$work/resume.log"; fail "--resume after freeing space failed"; }
/usr/bin/python3 - "$work/ref.h5" "$work/full.h5" <<'PY' || fail "the resumed run differs from the uninterrupted one"
import sys, h5py, numpy as np
ref, resumed = (h5py.File(p, "r") for p in sys.argv[1:])
def text(f, name):
    v = f.attrs[name]
    return v.decode() if isinstance(v, bytes) else v
problems = []
if text(resumed, "status") != "complete":
    problems.append(f"status {text(resumed, 'status')!r}")
if text(ref, "weights_digest") != text(resumed, "weights_digest"):
    problems.append("weights digest differs")
for column in ["train_loss", "test_loss", "test_acc"]:
    a, b = ref["epochs"][column][:], resumed["epochs"][column][:]
    if a.shape != b.shape or not np.array_equal(a, b):
        problems.append(f"/epochs/{column}: {a} vs {b}")
for p in problems:
    print("  " + p)
sys.exit(1 if problems else 0)
PY

finish "disk full: clean error, previous checkpoint intact, resume bit-exact"
