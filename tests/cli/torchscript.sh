#!/usr/bin/env bash
# --model torchscript:FILE: LeNet-5 scripted in Python (tests/cli/lib/script_lenet5.py, with the
# Python torch tools/setup installs) trains bit-identically to the built-in lenet5 from the same
# seed, alone and through 2- and 3-rank pipelines (losses and weights digest), in both memory
# formats; a scripted model
# with fitted weights starts from them (its test accuracy after an epoch at lr 1e-12 is the
# exporter's); files that cannot work are refused with one message.
#
# Usage: torchscript.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" torchscript "$@"
here=$(cd "$(dirname "$0")" && pwd)
python=$here/../../.venv/bin/python
"$python" -c 'import torch' 2>/dev/null || { echo "SKIP: no Python torch in .venv (run tools/setup)"; exit 77; }
/usr/bin/python3 -c 'import h5py' 2>/dev/null || { echo "SKIP: h5py is not installed"; exit 77; }
cd "$work" || exit 1

"$python" "$here/lib/script_lenet5.py" lenet.pt 1 || fail "could not script LeNet-5 in Python"
data=(--dataset synthetic --synthetic-train 512 --synthetic-test 128 --epochs 2 --seed 1 --batch-size 32)
# shellcheck source=lib/same_run.sh
source "$here/lib/same_run.sh"
# Both in the same memory format: --memory-format auto stores the built-in model channels-last
# on CPU but leaves a scripted one contiguous, and the two layouts round differently.
for format in contiguous channels-last; do
  for np in 1 2 3; do
    launch=()
    ((np > 1)) && launch=("$mpiexec" -np "$np" "${mpirun_flags[@]}")
    "${launch[@]}" "$binary" --model lenet5 "${data[@]}" --chunks 2 --memory-format $format \
      --output "builtin$np-$format.h5" >"builtin$np-$format.log" 2>&1 ||
      fail "built-in lenet5 on $np rank(s), $format, failed: $(tail -2 "builtin$np-$format.log")"
    "${launch[@]}" "$binary" --model torchscript:lenet.pt "${data[@]}" --chunks 2 --memory-format $format \
      --output "scripted$np-$format.h5" >"scripted$np-$format.log" 2>&1 ||
      fail "torchscript:lenet.pt on $np rank(s), $format, failed: $(tail -2 "scripted$np-$format.log")"
    builtin=$(run_summary "builtin$np-$format.h5") scripted=$(run_summary "scripted$np-$format.h5")
    [[ -n $builtin && $builtin == "$scripted" ]] ||
      fail "$np rank(s), $format: scripted LeNet-5 ($scripted) differs from the built-in one ($builtin)"
    echo "  $np rank(s), $format: scripted == built-in: $scripted"
  done
  # Across rank counts too: the pipeline computes what one process does.
  one=$(run_summary "scripted1-$format.h5") three=$(run_summary "scripted3-$format.h5")
  [[ ${one% *} == "${three% *}" ]] ||
    fail "$format: scripted LeNet-5 over 3 ranks differs from 1 rank"
done

# Pretrained weights are the starting point.
mkdir -p csv
/usr/bin/python3 - <<'PY'
import random
random.seed(5)
def rows(n):
    out = []
    while len(out) < n:
        a, b = random.uniform(-3, 3), random.uniform(-3, 3)
        if abs(a - b) > 0.5:  # a margin: no point near the boundary a = b
            out.append(f"{a:.4f},{b:.4f},{int(a > b)}")
    return "\n".join(out) + "\n"
open("csv/train.csv", "w").write(rows(400))
open("csv/test.csv", "w").write(rows(200))
PY
want=$("$python" "$here/lib/script_lenet5.py" fitted.pt 3 pretrained csv) || fail "could not fit and script the classifier"
"$binary" --model torchscript:fitted.pt --dataset csv --data-dir csv --epochs 1 --lr 1e-12 --momentum 0 \
  --weight-decay 0 --batch-size 16 --output fitted.h5 >fitted.log 2>&1 || fail "fitted model run failed: $(tail -2 fitted.log)"
got=$(/usr/bin/python3 -c "import h5py; print(f\"{h5py.File('fitted.h5')['epochs/test_acc'][0]:.6f}\")" 2>&1)
[[ -n $want && $got == "$want" ]] || fail "a pretrained scripted model should start from its weights: test accuracy $got, exporter's $want"
awk -v a="$want" 'BEGIN { exit !(a >= 0.95) }' || fail "the fitted classifier is no better than chance ($want)"
echo "  pretrained: test accuracy after an epoch at lr 1e-12 $got = the exporter's $want"

# Files that cannot work: one message, exit 2, no run file.
# TorchScript compiles from source files, so the bad models are written as one first.
cat >bad_models.py <<'PY'
import warnings
import torch
warnings.filterwarnings("ignore")
class Pair(torch.nn.Module):
    def forward(self, x):
        return x, x
class TupleBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pair = Pair()
        self.keep = torch.nn.Identity()
    def forward(self, x):
        a, b = self.pair(x)
        return self.keep(a + b)
torch.jit.script(torch.nn.Linear(4, 2)).save("leaf.pt")  # no children
torch.jit.script(TupleBlock()).save("tuple.pt")          # block 0 returns a tuple
PY
"$python" bad_models.py || fail "could not script the bad models"
printf 'not a TorchScript archive\n' >garbage.pt
refused() {  # file, expected text
  "$binary" --model "torchscript:$1" --dataset synthetic --synthetic-shape 4 --epochs 1 --output "r-$1.h5" \
    >"r-$1.log" 2>&1
  local rc=$?
  [[ $rc -eq 2 && $(grep -c '^splitpipe: error:' "r-$1.log") -eq 1 && ! -e r-$1.h5 ]] && grep -qF -- "$2" "r-$1.log" ||
    fail "torchscript:$1: want exit 2 and one error with '$2', got exit $rc: $(head -c 300 "r-$1.log")"
}
refused missing.pt "no file 'missing.pt'"
refused garbage.pt "is not a TorchScript file"
refused leaf.pt "has no children"
refused tuple.pt "not a tensor"

finish "torchscript: scripted LeNet-5 == built-in (1, 2, 3 ranks), pretrained weights kept, bad files refused"
