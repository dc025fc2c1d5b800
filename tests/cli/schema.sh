#!/usr/bin/env bash
# The run file's schema is defined once (src/log/run_schema.cpp): runs of every mode (one
# process, a 3-rank pipeline with an emulated link, sequential and parallel clients) are checked
# against `splitpipe --print-schema` dataset by dataset (units, descriptions, column names,
# typed options), and the README's schema section is that table, verbatim.
#
# Usage: schema.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" schema "$@"
here=$(cd "$(dirname "$0")" && pwd)
readme=$here/../../README.md
/usr/bin/python3 -c 'import h5py' 2>/dev/null || { echo "SKIP: h5py is not installed"; exit 77; }

"$binary" --print-schema >"$work/schema.md" || fail "--print-schema failed"
# The README holds the table between its two markers.
sed -n '/<!-- schema:begin -->/,/<!-- schema:end -->/p' "$readme" | sed '1d;$d' >"$work/readme_schema.md"
diff -u "$work/readme_schema.md" "$work/schema.md" >"$work/readme.diff" ||
  fail "README's schema section differs from --print-schema (update it with the command in the README): $(head -20 "$work/readme.diff")"

data=(--dataset synthetic --synthetic-train 256 --synthetic-test 64 --batch-size 32 --chunks 2 --epochs 2)
mpi() { timeout --kill-after=5 120 "$mpiexec" -np "$1" "${mpirun_flags[@]}" "$binary" "${@:2}" </dev/null; }
# name ranks clients linked command...
runs=(
  "single 1 1 0"
  "pipeline 3 1 1"
  "sequential 3 2 0"
  "parallel 3 2 1"
)
for spec in "${runs[@]}"; do
  read -r name ranks clients linked <<<"$spec"
  args=("${data[@]}" --output "$work/$name.h5")
  case $name in
    single) timeout 120 "$binary" "${args[@]}" >"$work/$name.log" 2>&1 </dev/null ;;
    pipeline) mpi 3 "${args[@]}" --fwd-codec quant:bits=8 --bwd-codec topk:ratio=0.5 --link bandwidth=1Gbit \
      >"$work/$name.log" 2>&1 ;;
    sequential) mpi 3 "${args[@]}" --edge-ranks 2 --client-mode sequential >"$work/$name.log" 2>&1 ;;
    parallel) mpi 3 "${args[@]}" --edge-ranks 2 --client-mode parallel --link "bandwidth=100Mbit;bandwidth=1Gbit" \
      >"$work/$name.log" 2>&1 ;;
  esac
  rc=$?
  if ((rc != 0)); then
    fail "$name run failed (exit $rc): $(tail -3 "$work/$name.log")"
    continue
  fi
  /usr/bin/python3 "$here/lib/check_schema.py" "$work/schema.md" "$work/$name.h5" "$ranks" "$clients" "$linked" ||
    fail "$name run file does not match the schema (see above)"
done

finish "schema: every mode's run file matches --print-schema, and so does the README"
