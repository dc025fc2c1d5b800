#!/usr/bin/env bash
# --edge-compute-scale S: the edge's forward and backward take S times their measured time (the
# rank waits out the difference), the server's are untouched, and the run file says how much
# was emulated: on the edge emulated_compute_seconds >= (S - 1) x the real compute (a sleep is
# never shorter than asked) and not much more; 0 on the server and without the option. Training
# itself is unchanged (same losses and weights digests as S = 1). A scale below 1 is refused.
#
# Usage: edge_compute_scale.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" edge_compute_scale "$@"
# shellcheck source=lib/same_run.sh
source "$(dirname "$0")/lib/same_run.sh"
/usr/bin/python3 -c 'import h5py' 2>/dev/null || { echo "SKIP: h5py is not installed"; exit 77; }
cd "$work" || exit 1

job=(--model lenet5 --dataset synthetic --synthetic-train 512 --synthetic-test 64 --batch-size 32 --epochs 1
  --chunks 2 --seed 2)
for scale in 1 3; do
  timeout 300 "$mpiexec" -np 2 "${mpirun_flags[@]}" "$binary" "${job[@]}" --edge-compute-scale $scale \
    --output "s$scale.h5" >"s$scale.log" 2>&1 || fail "--edge-compute-scale $scale failed: $(tail -n 3 "s$scale.log")"
done
[[ $(run_summary s1.h5) == "$(run_summary s3.h5)" ]] && echo "ok    training unchanged by the emulation" ||
  fail "--edge-compute-scale 3 trained differently: $(run_summary s3.h5) vs $(run_summary s1.h5)"

verdict=$(/usr/bin/python3 - <<'PY' 2>&1
import h5py
def counters(path, rank):
    c = h5py.File(path, "r")["ranks/rank%d/counters" % rank]
    cols = [x.decode() if isinstance(x, bytes) else x for x in c.attrs["columns"]]
    return {name: float(c[-1, i]) for i, name in enumerate(cols)}
edge, server, plain = counters("s3.h5", 0), counters("s3.h5", 1), counters("s1.h5", 0)
emulated = edge["emulated_compute_seconds"]
compute = edge["forward_seconds"] + edge["backward_seconds"] - emulated
# Each of the 2 x 2 x 16 edge actions may oversleep a little; allow 2 ms each beyond 2x compute.
ok = 2 * compute * 0.999 <= emulated <= 2 * compute + 64 * 0.002 and server["emulated_compute_seconds"] == 0 \
    and plain["emulated_compute_seconds"] == 0
print("True" if ok else "False", "edge emulated %.3f s for %.3f s of compute (expected 2x); server %.3f s; S=1 %.3f s"
      % (emulated, compute, server["emulated_compute_seconds"], plain["emulated_compute_seconds"]))
PY
)
[[ $verdict == True* ]] && echo "ok    ${verdict#True }" || fail "emulated_compute_seconds: ${verdict#False }"

"$binary" "${job[@]}" --edge-compute-scale 0.5 --output bad.h5 >bad.log 2>&1
rc=$?
[[ $rc -eq 2 && ! -e bad.h5 ]] && grep -q "edge-compute-scale: must be between 1" bad.log &&
  echo "ok    --edge-compute-scale 0.5 refused: $(grep error bad.log)" ||
  fail "--edge-compute-scale 0.5: exit $rc, $(cat bad.log)"
finish "edge compute scale checks passed"
