#!/usr/bin/env bash
# Several edge clients (--edge-ranks): bad invocations must end with exactly one
# "splitpipe: error:" line over all ranks, the expected exit code and text, within the time
# limit (a hang is a failure), with no crash and no rank left running. Two good runs close the
# table: 2 clients + 1 server, sequential and parallel, write /clients/<i> groups with a
# non-empty hand-off (sequential) or edge average (parallel) and traffic both ways.
#
# Usage: clients_errors.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
# SPLITPIPE_CLI_TIMEOUT (default 10): seconds per process, and per 2 ranks under mpirun.
set -u

# shellcheck source=lib/error_table.sh
source "$(dirname "$0")/lib/error_table.sh" clients_errors "$@"

# 64 training samples over 2 clients: 32 each, so mini-batches of 16 fit and of 48 do not.
synthetic=(--dataset synthetic --synthetic-test 32 --epochs 1)
small=(--synthetic-train 64 --batch-size 16)

row "E=0 alone" 0 2 "--edge-ranks" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 0
row "E=0 under mpirun" 3 2 "--edge-ranks" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 0
row "E=2 in a world of 2: no server" 2 2 "--edge-ranks 2 needs" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 2
row "E=3 in a world of 3: no server" 3 2 "--edge-ranks 3 needs" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 3
row "E=2 alone" 0 2 "--edge-ranks 2 needs" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 2
row "iid shard smaller than one batch" 3 1 "fewer than one mini-batch of 48" -- \
  "${synthetic[@]}" --synthetic-train 64 --batch-size 48 --edge-ranks 2
# iid would cut 200 samples into 100 + 100; this label skew (seed 1) into 120 + 80.
row "skewed shard smaller than one batch" 3 1 "holds 80 samples, fewer than one mini-batch of 90" -- \
  "${synthetic[@]}" --synthetic-train 200 --edge-ranks 2 --batch-size 90 --shard label-skew:alpha=0.01
row "bad shard spec" 3 2 "--shard" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 2 --shard label-skew:alpha=-1
parallel=(--client-mode parallel)
row "parallel: E=2 in a world of 2" 2 2 "--edge-ranks 2 needs" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 2 "${parallel[@]}"
row "parallel: shard smaller than one batch" 3 1 "fewer than one mini-batch of 48" -- \
  "${synthetic[@]}" --synthetic-train 64 --batch-size 48 --edge-ranks 2 "${parallel[@]}"
row "parallel: impossible partition" 3 2 "--edge-first 4" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 2 \
  --edge-first 4 --edge-last 2 "${parallel[@]}"
row "parallel: a link per client, one missing" 0 2 "2 links given for 3 edge client(s)" -- "${synthetic[@]}" \
  "${small[@]}" --edge-ranks 3 "${parallel[@]}" --link "bandwidth=10Mbit;bandwidth=1Gbit"
row "parallel: E=0" 3 2 "--edge-ranks" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 0 "${parallel[@]}"
row "impossible partition for each turn" 3 2 "--edge-first 4" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 2 --edge-first 4 --edge-last 2
row "missing dataset on the clients" 3 1 "/nonexistent" -- --edge-ranks 2 --data-dir /nonexistent

# The good runs: one epoch, 2 clients, 1 server, in each mode. Sequential: every client trains
# over its whole shard and hands off its state; parallel: 4 rounds of one batch per client,
# then the edge copies are averaged.
good_run() {
  local mode=$1 good=$work/good-$1.h5 status=ok problem=""
  local start end
  start=$(date +%s.%N)
  if timeout --kill-after=5 $((limit * 4)) "$mpiexec" -np 3 "${mpirun_flags[@]}" "$binary" "${synthetic[@]}" \
    --synthetic-train 128 --batch-size 16 --edge-ranks 2 --client-mode "$mode" --output "$good" \
    >"$work/good-$mode.log" 2>&1 </dev/null; then
    problem=$(/usr/bin/python3 - "$good" <<'PY' 2>&1
import sys, h5py
f = h5py.File(sys.argv[1], "r")
problems = []
if f.attrs["status"] != "complete": problems.append("status " + str(f.attrs["status"]))
for c in ("0", "1"):
    g = f["clients/" + c]
    if g["samples"][0] != 64: problems.append(f"client {c} samples {g['samples'][0]}")
    if not g["edge_sync_bytes"][0] > 0: problems.append(f"client {c} edge_sync_bytes {g['edge_sync_bytes'][0]}")
    if not (g["sent_bytes"][0] > 0 and g["received_bytes"][0] > 0):
        problems.append(f"client {c} sent/received bytes {g['sent_bytes'][0]}/{g['received_bytes'][0]}")
if f["epochs/train_acc"].shape != (1,): problems.append("epochs table")
print("; ".join(problems))
PY
)
  else
    problem="exit code $?"
  fi
  end=$(date +%s.%N)
  if [[ -n $problem ]]; then
    status=FAIL
    failed+=("row $((rows + 1)) (good $mode run): $problem")
    { echo "---- good $mode run output:"; cat "$work/good-$mode.log"; } >>"$work/failures.txt"
  fi
  add_result "2 $mode clients write /clients/<i>" "$status" 0 \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" "mpirun -np 3 ... --client-mode $mode" "$problem"
}
good_run sequential
good_run parallel

report_rows "splitpipe several edge clients, bad inputs"
