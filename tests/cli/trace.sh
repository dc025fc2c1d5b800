#!/usr/bin/env bash
# --trace: the Chrome trace of a 3-rank 1F1B run (4 micro-batches, 3 traced steps) is valid JSON
# with one track per rank and exactly one "action" event per schedule action per traced step,
# in the order --print-schedule gives (tests/cli/lib/check_trace.py); the same with two parallel
# clients whose loss is on the server (--edge-last 0); a window longer than the run traces every
# step; an existing trace is not overwritten without --overwrite, and a missing folder is
# refused before training.
#
# Usage: trace.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" trace "$@"
lib=$(cd "$(dirname "$0")/lib" && pwd)
cd "$work" || exit 1

data=(--dataset synthetic --synthetic-train 512 --synthetic-test 64 --batch-size 32 --epochs 1)
run() {  # run NP LOG ARGS...
  local np=$1 log=$2
  shift 2
  timeout 120 "$mpiexec" -np "$np" "${mpirun_flags[@]}" "$binary" "${data[@]}" "$@" >"$log" 2>&1
}
check_trace() {  # check_trace NAME NP TRACE STEPS ARGS... (the run's options, for --print-schedule)
  local name=$1 np=$2 trace=$3 steps=$4
  shift 4
  run "$np" "$name.schedule" "$@" --print-schedule || fail "$name: --print-schedule failed"
  if /usr/bin/python3 "$lib/check_trace.py" "$trace" "$name.schedule" "$np" "$steps" >"$name.check" 2>&1; then
    echo "ok    $name: $(tail -n 1 "$name.check")"
  else
    fail "$name: $(cat "$name.check")"
  fi
}

pipeline=(--schedule 1f1b --chunks 4)
run 3 one.log "${pipeline[@]}" --trace one.json --trace-steps 3 --output one.h5 || fail "traced 3-rank run failed: $(tail -n 3 one.log)"
check_trace "3 ranks 1f1b" 3 one.json 3 "${pipeline[@]}"

clients=(--edge-ranks 2 --client-mode parallel --edge-last 0 --schedule gpipe --chunks 2)
run 3 clients.log "${clients[@]}" --trace clients.json --trace-steps 2 --output clients.h5 ||
  fail "traced parallel-clients run failed: $(tail -n 3 clients.log)"
check_trace "2 parallel clients, loss on the server" 3 clients.json 2 "${clients[@]}"

# 16 steps in the run: a window of 1000 traces all of them.
run 2 all.log --trace all.json --trace-steps 1000 --output all.h5 || fail "short traced run failed: $(tail -n 3 all.log)"
check_trace "window longer than the run" 2 all.json 16

before=$(sha256sum one.json)
run 3 again.log "${pipeline[@]}" --trace one.json --output again.h5
rc=$?
if [[ $rc -eq 1 ]] && grep -q "trace file 'one.json' already exists; pass --overwrite" again.log &&
  [[ $(sha256sum one.json) == "$before" && ! -e again.h5 ]]; then
  echo "ok    an existing trace is refused (exit 1, as an existing --output), left alone, no run file"
else
  fail "existing trace: exit $rc, $(grep error again.log), trace unchanged: $([[ $(sha256sum one.json) == "$before" ]] && echo yes || echo no)"
fi
run 2 folder.log --trace no/such/folder/t.json --output folder.h5
rc=$?
if [[ $rc -eq 1 ]] && grep -q "folder 'no/such/folder' does not exist" folder.log; then
  echo "ok    a missing trace folder is refused (exit 1)"
else
  fail "missing folder: exit $rc, $(grep error folder.log)"
fi
finish "trace checks passed"
