#!/usr/bin/env bash
# microbatch_activation_bytes: what one stage's forward of one micro-batch leaves allocated,
# checked against the model's own arithmetic. The MLP 784-1000-500-125-10 on 2 ranks (edge:
# fc1 and fc4, server: fc2 + fc3) keeps, per sample, the ReLU output of every hidden layer
# (autograd saves it for ReLU's backward; Linear's own output is freed once ReLU has read it):
# edge fc1 1000 floats (4000 B), server fc2 + fc3 500 + 125 floats (2500 B). So batch 64 in one
# micro-batch: edge 256000 B, server 160000 B; in 4 micro-batches a quarter of that. With
# --recompute a stage keeps only its output: the same here for the edge (fc1's output is the
# ReLU's), 125 floats per sample on the server.
#
# Usage: activation_bytes.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" activation_bytes "$@"
/usr/bin/python3 -c 'import h5py' 2>/dev/null || { echo "SKIP: h5py is not installed"; exit 77; }
cd "$work" || exit 1

check() {  # check NAME EDGE_BYTES SERVER_BYTES EXTRA...
  local name=$1 edge=$2 server=$3
  shift 3
  timeout 300 "$mpiexec" -np 2 "${mpirun_flags[@]}" "$binary" --model mlp --dataset synthetic --synthetic-train 128 \
    --synthetic-test 64 --batch-size 64 --epochs 1 --seed 1 "$@" --output "$name.h5" >"$name.log" 2>&1 ||
    fail "$name failed: $(tail -n 3 "$name.log")"
  local got
  got=$(/usr/bin/python3 -c "
import h5py
f = h5py.File('$name.h5', 'r')
values = []
for r in (0, 1):
    c = f['ranks/rank%d/counters' % r]
    cols = [x.decode() if isinstance(x, bytes) else x for x in c.attrs['columns']]
    values.append(int(c[-1, cols.index('microbatch_activation_bytes')]))
print(*values)" 2>&1)
  if [[ $got == "$edge $server" ]]; then
    echo "ok    $name: edge $edge B, server $server B per micro-batch"
  else
    fail "$name: expected edge $edge B and server $server B per micro-batch, the run file says: $got"
  fi
}
check "1 chunk" 256000 160000 --chunks 1
check "4 chunks 1F1B" 64000 40000 --chunks 4 --schedule 1f1b
check "4 chunks GPipe --recompute" 64000 8000 --chunks 4 --schedule gpipe --recompute
finish "activation bytes checks passed"
