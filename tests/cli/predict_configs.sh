#!/usr/bin/env bash
# --predict-configs and tools/sweep --top. On 2 ranks: files that differ only in their plan
# share one measurement; each fixed plan gets a prediction whose wire bytes per sample are the
# model's boundary arithmetic (LeNet-5 1+1: 2 directions x (6x14x14 + 84) float32 = 10080 B,
# up to the codec's header; quant:bits=8 under a third of 2+1's 3872 B); auto options, a cut
# that does not fit and a missing file get one error line each (exit 2); one process predicts
# too. tools/sweep --top 2 runs exactly the 2 points it predicts fastest of a 4-point grid and
# records every prediction in manifest.json; --top 3 then runs exactly the points of its own
# new top 3 not complete yet; --top 0 is refused.
#
# Usage: predict_configs.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" predict_configs "$@"
cd "$work" || exit 1
source_dir=$(cd "$(dirname "$0")/../.." && pwd)

base='model = lenet5
dataset = synthetic
synthetic-shape = 1x28x28
synthetic-train = 256
synthetic-test = 64
batch-size = 32
epochs = 1'
printf '%s\nedge-first = 1\nchunks = 1\n' "$base" >a1.ini
printf '%s\nedge-first = 1\nchunks = 4\nschedule = 1f1b\n' "$base" >a2.ini
printf '%s\nedge-first = 2\nchunks = 2\nfwd-codec = quant:bits=8\nbwd-codec = quant:bits=8\n' "$base" >a3.ini
printf '%s\nedge-first = auto\n' "$base" >auto.ini
printf '%s\nedge-first = 9\n' "$base" >cut.ini

timeout 300 "$mpiexec" -np 2 "${mpirun_flags[@]}" "$binary" --predict-configs a1.ini a2.ini a3.ini auto.ini cut.ini \
  missing.ini >out.log 2>err.log
rc=$?
[[ $rc -ne 0 ]] || fail "--predict-configs with failing files exited 0"
for f in a1 a2 a3; do
  grep -qE "^predicted $f.ini [0-9.]+ [0-9]+ [0-9.]+$" out.log && echo "ok    $(grep "^predicted $f.ini" out.log)" ||
    fail "no prediction for $f.ini: $(cat out.log err.log)"
done
grep -q "^error auto.ini: it has auto options" out.log && grep -q "^error cut.ini: planner: edge-first 9" out.log &&
  grep -q "^error missing.ini: cannot read config file" out.log && echo "ok    auto, a cut too deep, a missing file: errors" ||
  fail "error lines: $(cat out.log)"
[[ $(grep -c '^predict: measuring setup' err.log) -eq 1 ]] && grep -q 'setup 1/1 (lenet5, 4 file(s))' err.log &&
  echo "ok    one measurement for 4 files that differ in their plan only" || fail "measurements: $(cat err.log)"
read -r _ _ _ a1_wire _ < <(grep '^predicted a1.ini' out.log)
read -r _ _ _ a3_wire _ < <(grep '^predicted a3.ini' out.log)
/usr/bin/python3 -c "import sys; w=float(sys.argv[1]); sys.exit(0 if abs(w - 10080) <= 0.01 * 10080 else 1)" "$a1_wire" &&
  echo "ok    1+1 none: $a1_wire wire B/sample (arithmetic: 10080)" || fail "1+1 none: $a1_wire wire B/sample, not ~10080"
/usr/bin/python3 -c "import sys; sys.exit(0 if 0 < float(sys.argv[1]) < 3872 / 3 else 1)" "$a3_wire" &&
  echo "ok    2+1 quant:bits=8: $a3_wire wire B/sample (uncompressed 3872)" || fail "2+1 quant8: $a3_wire B/sample"
timeout 120 "$binary" --predict-configs a1.ini >one.log 2>&1 && grep -q '^predicted a1.ini ' one.log &&
  echo "ok    one process predicts" || fail "one process: $(cat one.log)"

# tools/sweep --top: predicts all points, runs the fastest predicted only.
cat >sweep-top.ini <<EOF2
[base]
$base
[axes]
edge-first = 1, 2
chunks = 1, 4
EOF2
sweep() {
  MPIRUN_FLAGS="${mpirun_flags[*]}" timeout 300 /usr/bin/python3 "$source_dir/tools/sweep" sweep-top.ini --local \
    --check none --results results --splitpipe "$binary" "$@"
}
# The ranked names of the newest prediction, and the points with a complete run file.
ranked() {
  /usr/bin/python3 - <<'PY'
import json
p = json.load(open("results/top/manifest.json"))["submissions"][-1]["predicted"]
print(" ".join(sorted(p, key=lambda n: -p[n]["samples_per_second"])))
PY
}
complete() {
  /usr/bin/python3 - <<'PY'
import glob, h5py, os
done = []
for path in sorted(glob.glob("results/top/*.h5")):
    with h5py.File(path, "r") as f:
        status = f.attrs.get("status", b"")
        if (status.decode() if isinstance(status, bytes) else status) == "complete":
            done.append(os.path.basename(path)[:-3])
print(" ".join(done))
PY
}
sweep --top 2 >top2.log 2>&1 || fail "sweep --top 2: $(tail -n 5 top2.log)"
read -r -a order <<<"$(ranked)"
expected=$(printf '%s\n' "${order[@]:0:2}" | sort | tr '\n' ' ')
got=$(complete | tr ' ' '\n' | sort | tr '\n' ' ')
[[ ${#order[@]} -eq 4 && $got == "$expected" && $(grep -c 'skip (not in the top)' top2.log) -eq 2 ]] &&
  echo "ok    --top 2 ran the 2 fastest predicted of 4: $got" ||
  fail "--top 2: ranked '${order[*]}', complete '$got': $(cat top2.log)"
# It predicts anew, so its top 3 need not contain the first top 2: it runs exactly those of
# its top 3 that are not complete yet.
before=" $(complete) "
sweep --top 3 >top3.log 2>&1 || fail "sweep --top 3: $(tail -n 5 top3.log)"
read -r -a order <<<"$(ranked)"
missing=0 expected_runs=0
for name in "${order[@]:0:3}"; do
  [[ " $(complete) " == *" $name "* ]] || missing=1
  [[ $before == *" $name "* ]] || ((expected_runs += 1))
done
runs=$(grep -c '^=== point' top3.log)
[[ $missing -eq 0 && $runs -eq $expected_runs ]] && echo "ok    --top 3: the new top 3 complete after $runs more run(s)" ||
  fail "--top 3: ranked '${order[*]}', complete '$(complete)', $runs run(s): $(cat top3.log)"
sweep --top 0 >top0.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q 'sweep: error: --top 0' top0.log && echo "ok    --top 0 refused" ||
  fail "--top 0: exit $rc, $(cat top0.log)"
finish "predict-configs checks passed"
