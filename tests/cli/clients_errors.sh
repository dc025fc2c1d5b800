#!/usr/bin/env bash
# Several edge clients (--edge-ranks): bad invocations must end with exactly one
# "splitpipe: error:" line over all ranks, the expected exit code and text, within the time
# limit (a hang is a failure), with no crash and no rank left running. Two good runs close the
# table: 2 clients + 1 server, sequential and parallel, write /clients/<i> groups with a
# non-empty hand-off (sequential) or edge average (parallel).
#
# Usage: clients_errors.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
# SPLITPIPE_CLI_TIMEOUT (default 10): seconds per process, and per 2 ranks under mpirun.
set -u

binary=$(realpath "$1")
mpiexec=$2
read -r -a mpirun_flags <<<"${3//;/ }"
limit=${SPLITPIPE_CLI_TIMEOUT:-10}

work=$(mktemp -d "${TMPDIR:-/tmp}/splitpipe_clients_errors.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 64 training samples over 2 clients: 32 each, so mini-batches of 16 fit and of 48 do not.
synthetic=(--dataset synthetic --synthetic-test 32 --epochs 1)
small=(--synthetic-train 64 --batch-size 16)
rows=0
failed=()

# row NAME NP CODE EXPECTED -- ARGS...   (NP 0: the binary alone; else under mpirun -np NP)
row() {
  local name=$1 np=$2 want_code=$3 expected=$4
  shift 4
  [[ $1 == -- ]] && shift
  rows=$((rows + 1))
  local out=$work/row$rows.h5 log=$work/row$rows.log
  local command=("$binary" --output "$out" "$@") row_limit=$limit
  if ((np > 0)); then
    command=("$mpiexec" -np "$np" "${mpirun_flags[@]}" "${command[@]}")
    row_limit=$((limit * ((np + 1) / 2)))
  fi
  timeout --kill-after=5 "$row_limit" "${command[@]}" >"$log" 2>&1 </dev/null
  local code=$?
  local problems=()
  if ((code == 124 || code == 137)); then
    problems+=("hung: killed after ${row_limit} s")
  elif [[ $code != "$want_code" ]]; then
    problems+=("exit code $code, expected $want_code")
  fi
  local error_lines
  error_lines=$(grep -c '^splitpipe: error:' "$log")
  ((error_lines == 1)) || problems+=("$error_lines lines 'splitpipe: error:', expected 1")
  grep -q -F -- "$expected" <(grep '^splitpipe: error:' "$log") || problems+=("error line lacks '$expected'")
  grep -q -E 'Segmentation fault|core dumped|terminate called|Aborted|exited on signal|Backtrace' "$log" &&
    problems+=("crash or stack dump in the output")
  if ((np > 0)) && pgrep -f -- "$out" >/dev/null; then
    problems+=("ranks still running after mpirun returned")
    pkill -KILL -f -- "$out"  # only this row's processes: the path is unique to it
  fi
  [[ -e $out ]] && problems+=("a run file was written")
  local status=ok
  if ((${#problems[@]} > 0)); then
    status=FAIL
    failed+=("row $rows ($name): $(IFS='; '; echo "${problems[*]}")")
    echo "---- row $rows ($name) output:" && cat "$log" && echo "----"
  fi
  printf '%3d  %-4s %4s  %-40s  %s\n' "$rows" "$status" "$code" "$name" \
    "$(grep -m1 '^splitpipe: error:' "$log" | cut -c19- | cut -c1-150)"
}

echo "splitpipe several edge clients, bad inputs (limit ${limit} s per process or per 2 ranks)"
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
row "parallel: emulated link" 0 2 "--link" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 2 "${parallel[@]}" \
  --link bandwidth=10Mbit
row "parallel: E=0" 3 2 "--edge-ranks" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 0 "${parallel[@]}"
row "impossible partition for each turn" 3 2 "--edge-first 4" -- "${synthetic[@]}" "${small[@]}" --edge-ranks 2 --edge-first 4 --edge-last 2
row "missing dataset on the clients" 3 1 "/nonexistent" -- --edge-ranks 2 --data-dir /nonexistent

# The good runs: one epoch, 2 clients, 1 server, in each mode. Sequential: every client trains
# over its whole shard and hands off its state; parallel: 4 rounds of one batch per client,
# then the edge copies are averaged.
good_run() {
  local mode=$1 good=$work/good-$1.h5
  rows=$((rows + 1))
  if timeout --kill-after=5 $((limit * 4)) "$mpiexec" -np 3 "${mpirun_flags[@]}" "$binary" "${synthetic[@]}" \
    --synthetic-train 128 --batch-size 16 --edge-ranks 2 --client-mode "$mode" --output "$good" \
    >"$work/good-$mode.log" 2>&1 </dev/null; then
    check=$(/usr/bin/python3 - "$good" <<'PY' 2>&1
import sys, h5py
f = h5py.File(sys.argv[1], "r")
problems = []
if f.attrs["status"] != "complete": problems.append("status " + str(f.attrs["status"]))
for c in ("0", "1"):
    g = f["clients/" + c]
    if g["samples"][0] != 64: problems.append(f"client {c} samples {g['samples'][0]}")
    if not g["handoff_bytes"][0] > 0: problems.append(f"client {c} handoff_bytes {g['handoff_bytes'][0]}")
    if not g["wire_bytes"][0] > 0: problems.append(f"client {c} wire_bytes {g['wire_bytes'][0]}")
if f["epochs/train_acc"].shape != (1,): problems.append("epochs table")
print("; ".join(problems))
PY
)
    [[ -z $check ]] || failed+=("row $rows (good $mode run): $check")
  else
    failed+=("row $rows (good $mode run): exit code $?")
    cat "$work/good-$mode.log"
  fi
  printf '%3d  %-4s %4s  %-40s\n' "$rows" "$([[ ${#failed[@]} -gt 0 && ${failed[-1]} == "row $rows "* ]] && echo FAIL || echo ok)" 0 "2 $mode clients write /clients/<i>"
}
good_run sequential
good_run parallel

if ((${#failed[@]} > 0)); then
  echo "${#failed[@]} of $rows rows FAILED:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "all $rows rows passed"
