#!/usr/bin/env bash
# A run file can be read while its run goes on, by h5py and h5dump as a user runs them (no
# HDF5_USE_FILE_LOCKING in the environment); a run that stopped before its first epoch has
# every per-epoch dataset, empty; progress lines show the epoch's percentage and the run's ETA.
#
# Usage: live_read.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" live_read "$@"
unset HDF5_USE_FILE_LOCKING
cd "$work" || exit 1

# Slow enough that the reader meets it mid-run: 4 epochs of 512 single-sample steps.
timeout --kill-after=5 300 "$binary" --dataset synthetic --synthetic-train 512 --synthetic-test 64 --batch-size 1 \
  --chunks 1 --epochs 4 --progress-every 128 --output live.h5 >live.log 2>&1 &
writer=$!
for _ in $(seq 600); do grep -q '^epoch 1/4' live.log && break; sleep 0.1; done
grep -q '^epoch 1/4' live.log || fail "the run printed no 'epoch 1/4' line"

/usr/bin/python3 - live.h5 <<'PY' || fail "h5py could not read the running run (see above)"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
status = f.attrs["status"]
status = status.decode() if isinstance(status, bytes) else status
rows = {f["confusion"].shape[0], f["boundaries/traffic"].shape[0]} | {d.shape[0] for d in f["epochs"].values()}
rows |= {d.shape[0] for d in f["ranks/rank0"].values()} | {d.shape[0] for d in f["clients/0"].values()}
problems = []
if status != "running":
    problems.append(f"status {status!r} while the run goes on")
if len(rows) != 1 or min(rows) < 1:
    problems.append(f"row counts {sorted(rows)} (want one count >= 1)")
for p in problems:
    print("  " + p)
print(f"  read mid-run: status {status!r}, {min(rows)} epoch row(s) in every table")
sys.exit(1 if problems else 0)
PY
if command -v h5dump >/dev/null; then
  h5dump -a /status live.h5 >dump.log 2>&1 || fail "h5dump cannot read the running run: $(head -c 300 dump.log)"
fi
wait "$writer" || fail "the run that was read while running failed (exit $?)"
grep -Eq '^  epoch 1 step 128/512 \(25%\) .* run ETA [0-9]+ s$' live.log ||
  fail "no progress line with a percentage and the run's ETA: $(grep -m1 '^  epoch' live.log)"

# Stopped before its first epoch: every per-epoch dataset is there, with 0 rows.
"$binary" --dataset synthetic --synthetic-train 256 --synthetic-test 64 --epochs 2 \
  --fault-inject rank=0,step=1,mode=exception --output early.h5 >early.log 2>&1 && fail "the injected exception did not fail the run"
/usr/bin/python3 - early.h5 <<'PY' || fail "a run stopped before its first epoch lacks empty datasets"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
status = f.attrs["status"]
status = status.decode() if isinstance(status, bytes) else status
needed = ["epochs/epoch", "epochs/test_acc", "confusion", "ranks/rank0/counters", "boundaries/traffic",
          "clients/0/samples"]
missing = [n for n in needed if n not in f]
nonempty = [n for n in needed if n in f and f[n].shape[0] != 0]
print(f"  status {status!r}; missing {missing}; not empty {nonempty}")
sys.exit(0 if status.startswith("failed: ") and not missing and not nonempty else 1)
PY

finish "live reading: h5py and h5dump read a running run; an early stop leaves empty tables"
