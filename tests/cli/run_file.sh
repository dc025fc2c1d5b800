#!/usr/bin/env bash
# Run files written by the binary: a tiny 2-rank pipeline and a tiny single-process run, read
# back with h5py (or h5dump where h5py is missing); then --output protection: a rerun without
# --overwrite fails and leaves the file's bytes alone, a rerun with --overwrite replaces it.
#
# Usage: run_file.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u

# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" run_file "$@"

epochs=2
classes=4
test_samples=48
tiny=(--dataset synthetic --synthetic-train 128 --synthetic-test "$test_samples" --synthetic-classes "$classes"
  --batch-size 32 --epochs "$epochs" --seed 3)

# run NAME EXPECTED-CODE COMMAND...: runs with a 120 s limit, output in $work/NAME.log
run() {
  local name=$1 want=$2
  shift 2
  echo "== $name: $*"
  timeout --kill-after=5 120 "$@" >"$work/$name.log" 2>&1 </dev/null
  local code=$?
  if [[ $code != "$want" ]]; then
    fail "$name: exit code $code, expected $want"
    cat "$work/$name.log"
  fi
  return 0
}

pipeline=$work/pipeline.h5
single=$work/single.h5
run pipeline 0 "$mpiexec" -np 2 "${mpirun_flags[@]}" "$binary" "${tiny[@]}" --chunks 2 --output "$pipeline"
run single 0 "$binary" "${tiny[@]}" --output "$single"

# check_file PATH WORLD-SIZE: the structure a finished run must have.
check_file() {
  local path=$1 world=$2
  [[ -f $path ]] || {
    fail "$path was not written"
    return
  }
  if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    /usr/bin/python3 - "$path" "$world" "$epochs" "$classes" "$test_samples" <<'EOF' || fail "$path: structure (see above)"
import sys
import h5py
import numpy as np

path, world, epochs, classes, test_samples = sys.argv[1], *map(int, sys.argv[2:])
problems = []
def check(ok, what):
    if not ok:
        problems.append(what)

def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)

with h5py.File(path, "r") as f:
    check(text(f.attrs["status"]) == "complete", f"status is {text(f.attrs['status'])!r}")
    check(int(f.attrs["world_size"]) == world, f"world_size {f.attrs['world_size']} != {world}")
    check("model = lenet5" in text(f.attrs["resolved_config"]), "resolved_config lacks 'model = lenet5'")
    check(list(f["epochs/epoch"][:]) == list(range(1, epochs + 1)), f"epochs/epoch = {f['epochs/epoch'][:]}")
    for name, column in f["epochs"].items():
        check(column.shape == (epochs,), f"epochs/{name} has shape {column.shape}")
    acc = f["epochs/test_acc"][:]
    check(np.all((acc >= 0) & (acc <= 1)), f"test_acc out of [0, 1]: {acc}")
    check(np.all(np.isfinite(f["epochs/train_loss"][:])), "non-finite train_loss")
    confusion = f["confusion"][:]
    check(confusion.shape == (epochs, classes, classes), f"confusion shape {confusion.shape}")
    check(all(int(m.sum()) == test_samples for m in confusion), f"confusion sums {confusion.sum(axis=(1, 2))}")
    # One group of per-epoch counters per rank, and nothing for ranks that do not exist.
    rank_groups = sorted(k for k, v in f["ranks"].items() if isinstance(v, h5py.Group))
    check(rank_groups == [f"rank{r}" for r in range(world)], f"/ranks groups {rank_groups}")
    for group in rank_groups:
        for name, column in f["ranks"][group].items():
            check(column.shape[0] == epochs, f"ranks/{group}/{name} has shape {column.shape}")
    # The stage table: rank 0 holds the edge stages, every rank appears.
    check(sorted(set(int(r) for r in f["ranks/rank"][:])) == list(range(world)), f"ranks/rank {f['ranks/rank'][:]}")
    check(len(f["model/name"]) == 5, f"{len(f['model/name'])} model rows, lenet5 has 5 blocks")
    summary = ", ".join(f"{x:.4f}" for x in f["epochs/train_loss"][:])
print(f"  {path}: world {world}, train_loss [{summary}], test_acc {list(map(float, acc))}")
for p in problems:
    print(f"  problem: {p}")
sys.exit(1 if problems else 0)
EOF
  else
    h5dump -a /status "$path" | grep -q '"complete"' || fail "$path: status is not complete"
    for r in $(seq 0 $((world - 1))); do
      h5dump -n "$path" | grep -q "group */ranks/rank$r\$" || fail "$path: no /ranks/rank$r group"
    done
    echo "  $path: checked with h5dump (h5py not available)"
  fi
}
check_file "$pipeline" 2
check_file "$single" 1

# Same seed, no codec: the pipeline computes what the single process computes (up to the
# order of float sums), so the losses agree closely.
if /usr/bin/python3 -c 'import h5py' 2>/dev/null && [[ -f $pipeline && -f $single ]]; then
  /usr/bin/python3 - "$pipeline" "$single" <<'EOF' || fail "pipeline and single-process losses differ"
import sys
import h5py
import numpy as np
with h5py.File(sys.argv[1], "r") as p, h5py.File(sys.argv[2], "r") as s:
    a, b = p["epochs/train_loss"][:], s["epochs/train_loss"][:]
    print(f"  train_loss pipeline {a}, single {b}")
    sys.exit(0 if np.allclose(a, b, rtol=1e-3, atol=1e-5) else 1)
EOF
fi

# --output protection.
if [[ -f $pipeline ]]; then
  cp -p "$pipeline" "$work/pipeline.copy"
  run refused 1 "$mpiexec" -np 2 "${mpirun_flags[@]}" "$binary" "${tiny[@]}" --output "$pipeline"
  grep -q '^splitpipe: error: .*already exists' "$work/refused.log" || fail "refusal message missing: $(cat "$work/refused.log")"
  [[ $(grep -c '^splitpipe: error:' "$work/refused.log") == 1 ]] || fail "refusal printed more than one error line"
  cmp -s "$pipeline" "$work/pipeline.copy" || fail "a refused rerun changed $pipeline"

  run overwrite 0 "$binary" "${tiny[@]}" --output "$pipeline" --overwrite
  cmp -s "$pipeline" "$work/pipeline.copy" && fail "--overwrite left the old file in place"
  check_file "$pipeline" 1  # now the single-process run's file
fi

finish "run files: all checks passed"
