#!/usr/bin/env bash
# --prefetch: the edge's batches made on a background thread train bit-identically to batches
# made on the training thread (losses and weights digest), with --augment on CIFAR-shaped data,
# in one process and over 2 ranks with 2 sequential clients; the run file's data_seconds
# counter is there on every rank (> 0 on the edge, 0 on the server).
#
# Usage: prefetch.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" prefetch "$@"
# shellcheck source=lib/same_run.sh
source "$(dirname "$0")/lib/same_run.sh"
/usr/bin/python3 -c 'import h5py' 2>/dev/null || { echo "SKIP: h5py is not installed"; exit 77; }
cd "$work" || exit 1

data=(--dataset synthetic --synthetic-shape 3x32x32 --synthetic-train 768 --synthetic-test 64 --batch-size 32
  --augment --epochs 2 --model lenet5 --chunks 2 --seed 3)
compare() {  # compare NAME NP EXTRA...
  local name=$1 np=$2
  shift 2
  local summaries=()
  for prefetch in 0 3; do
    local out="$name-$prefetch.h5"
    timeout 300 "$mpiexec" -np "$np" "${mpirun_flags[@]}" "$binary" "${data[@]}" "$@" --prefetch "$prefetch" \
      --output "$out" >"$out.log" 2>&1 || fail "$name --prefetch $prefetch failed: $(tail -n 3 "$out.log")"
    summaries+=("$(run_summary "$out")")
  done
  if [[ -n ${summaries[0]} && ${summaries[0]} == "${summaries[1]}" ]]; then
    echo "ok    $name: --prefetch 0 and 3 bit-identical (${summaries[0]:0:80}...)"
  else
    fail "$name: --prefetch 0 gives ${summaries[0]}, --prefetch 3 gives ${summaries[1]}"
  fi
}
compare "one process" 1
compare "2 sequential clients + server" 3 --edge-ranks 2 --client-mode sequential

data_seconds=$(/usr/bin/python3 -c "
import h5py
f = h5py.File('2 sequential clients + server-3.h5', 'r')
out = []
for r in range(3):
    c = f['ranks/rank%d/counters' % r]
    cols = [x.decode() if isinstance(x, bytes) else x for x in c.attrs['columns']]
    out.append(float(c[:, cols.index('data_seconds')].sum()))
print(out[0] > 0 and out[1] > 0 and out[2] == 0, out)" 2>&1)
[[ $data_seconds == True* ]] && echo "ok    data_seconds per rank: ${data_seconds#True }" ||
  fail "data_seconds should be > 0 on the clients and 0 on the server: $data_seconds"
finish "prefetch checks passed"
