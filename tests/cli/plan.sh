#!/usr/bin/env bash
# --plan: measures the blocks, codecs and link of this machine, prints the fastest predicted
# plans and exits 0 without a run file, in one process and on 2 ranks; the printed plans
# respect --max-rel-error (no 4-bit codec under the default ceiling); an impossible ceiling
# and an unknown codec are refused with one message (exit 2), as is a --plan-max-memory no plan
# fits in. Auto options (--edge-first, --chunks, --fwd-codec, --schedule auto) are filled by the
# planner before training, and the run file records the choice.
#
# Usage: plan.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" plan "$@"
cd "$work" || exit 1

job=(--model lenet5 --dataset synthetic --synthetic-train 256 --synthetic-test 64 --batch-size 32 --output p.h5)
for np in 1 2; do
  launch=()
  ((np > 1)) && launch=("$mpiexec" -np "$np" "${mpirun_flags[@]}")
  timeout 300 "${launch[@]}" "$binary" "${job[@]}" --plan --plan-top 5 >"plan$np.log" 2>&1 ||
    fail "--plan on $np rank(s) failed: $(tail -n 3 "plan$np.log")"
  rows=$(grep -cE '^[0-9]+ +edge [0-9]+\+[0-9]+ ' "plan$np.log")
  [[ $rows -eq 5 ]] && echo "ok    $np rank(s): 5 plans printed, best: $(grep -E '^1 ' "plan$np.log" | tr -s ' ')" ||
    fail "$np rank(s): expected 5 plan rows, got $rows: $(cat "plan$np.log")"
  grep -q 'quant:bits=4' "plan$np.log" && fail "$np rank(s): a 4-bit codec passed the default --max-rel-error"
  [[ -e p.h5 ]] && fail "--plan wrote a run file"
done

"$binary" "${job[@]}" --plan --max-rel-error 1e-12 --plan-codecs 'quant:bits=4' >tight.log 2>&1
rc=$?
[[ $rc -eq 2 && $(grep -c '^splitpipe: error:' tight.log) -eq 1 ]] && grep -q 'none of .* candidate plans' tight.log &&
  echo "ok    impossible ceiling refused: $(grep error tight.log | cut -c1-150)" ||
  fail "impossible --max-rel-error: exit $rc, $(cat tight.log)"
"$binary" "${job[@]}" --plan --plan-max-memory 1K >memory.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q 'memory per rank above 1024 bytes' memory.log &&
  echo "ok    --plan-max-memory 1K leaves no plan: $(grep error memory.log | cut -c1-150)" ||
  fail "--plan-max-memory 1K: exit $rc, $(cat memory.log)"
"$binary" "${job[@]}" --plan --plan-max-memory 12Q >memory2.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--plan-max-memory: '12Q' is not a size in bytes" memory2.log &&
  echo "ok    --plan-max-memory 12Q refused" || fail "--plan-max-memory 12Q: exit $rc, $(cat memory2.log)"
"$binary" "${job[@]}" --plan --plan-codecs 'none;zstd' >bad.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--plan-codecs: unknown codec 'zstd'" bad.log &&
  echo "ok    unknown codec refused: $(grep error bad.log)" || fail "--plan-codecs zstd: exit $rc, $(cat bad.log)"
# Auto options: the planner fills them before training; the run file holds its choice, the
# prediction and the resolved values (no "auto" left), and training follows the choice.
timeout 300 "$mpiexec" -np 2 "${mpirun_flags[@]}" "$binary" "${job[@]}" --epochs 1 --edge-first auto --chunks auto \
  --fwd-codec auto --schedule auto >auto.log 2>&1 || fail "auto options failed: $(tail -n 3 auto.log)"
chosen=$(grep -m1 '^plan: ' auto.log)
verdict=$(/usr/bin/python3 - <<'PY' 2>&1
import h5py
f = h5py.File("p.h5", "r")
plan = f.attrs["plan"].decode() if isinstance(f.attrs["plan"], bytes) else f.attrs["plan"]
opts = f["options"].attrs
words = plan.split()
chosen = dict(zip(words[0::2], words[1::2]))
config = f.attrs["resolved_config"]
config = config.decode() if isinstance(config, bytes) else config
resolved = dict(line.split(" = ", 1) for line in config.splitlines() if " = " in line)
ok = (set(chosen) == {"--edge-first", "--chunks", "--fwd-codec", "--schedule"}
      and opts["schedule"] in (b"gpipe", b"1f1b", "gpipe", "1f1b")
      and int(opts["edge-first"]) == int(chosen["--edge-first"]) and int(opts["chunks"]) == int(chosen["--chunks"])
      and all(resolved[name[2:]] == value for name, value in chosen.items())
      and float(f.attrs["predicted_samples_per_second"]) > 0)
print("True" if ok else "False", plan, "predicted", float(f.attrs["predicted_samples_per_second"]))
PY
)
[[ $verdict == True* ]] && echo "ok    auto: ${verdict#True } ($chosen)" || fail "auto options: ${verdict#False } ($chosen)"
"$binary" "${job[@]}" --edge-first auto --resume --checkpoint-dir ck >resume.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--resume: cannot be combined with auto options" resume.log &&
  echo "ok    auto with --resume refused" || fail "auto + --resume: exit $rc, $(cat resume.log)"
"$binary" "${job[@]}" --chunks many >many.log 2>&1
rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--chunks: 'many' is neither an integer nor auto" many.log &&
  echo "ok    --chunks many refused" || fail "--chunks many: exit $rc, $(cat many.log)"
finish "plan checks passed"
