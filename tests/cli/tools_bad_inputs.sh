#!/usr/bin/env bash
# tools/sweep and tools/report on bad inputs: every case gets its exit status and a one-line
# message, never a Python traceback, and nothing is lost:
#   sweep:  a binary sweep file; the README's sweep example with its end-of-line comments; a
#           corrupt manifest.json (refused, left byte for byte) and a good one (its history kept);
#   report: good run files next to empty, truncated, non-HDF5, foreign (no format_version),
#           format_version 1 and 3, and damaged ones (each skipped with its reason, the good
#           ones reported); a damaged manifest.json; a run whose writer still holds the run
#           file's lock (`running`) or no longer does (`ended without status`); a file another
#           process holds open for writing under HDF5's own file locking.
# The run files are made with h5py in the layout splitpipe writes (format_version 2, by
# tests/cli/lib/make_runfile.py), so no training runs; the splitpipe that tools/sweep asks for
# --help (and --local runs) is a stub.
#
# Usage: tools_bad_inputs.sh [<splitpipe binary> <mpiexec> "<mpirun flags>"]
#   The binary, when given (or built), only lends the stub its --help text; all are optional.
set -u

source_dir=$(cd "$(dirname "$0")/../.." && pwd)
tools=$source_dir/tools
python=/usr/bin/python3
work=$(mktemp -d "${TMPDIR:-/tmp}/splitpipe_tools_bad_inputs.XXXXXX")
helpers=()
cleanup() {
  local pid
  for pid in "${helpers[@]}"; do kill "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
# The tools must set HDF5_USE_FILE_LOCKING themselves (case report-hdf5-lock).
unset HDF5_USE_FILE_LOCKING

# --- Run files in splitpipe's layout ------------------------------------------------------------
# The run files come from tests/cli/lib/make_runfile.py, which writes format_version 2 as the
# schema lays it out.
export SPLITPIPE_TEST_LIB=$source_dir/tests/cli/lib
cat >"$work/fixtures.py" <<'PY'
"""fixtures.py KIND PATH [ARG]: writes a run-file-like file at PATH, or holds a lock on one."""
import fcntl
import os
import struct
import sys
import time

sys.path.insert(0, os.environ["SPLITPIPE_TEST_LIB"])
import make_runfile  # noqa: E402  (sets HDF5_USE_FILE_LOCKING before h5py loads)
import h5py  # noqa: E402
import numpy as np  # noqa: E402

kind, path = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else None
LOCK_OFFSET = 1 << 40  # where splitpipe holds its writer's lock


def run_file(path, status="complete", rows=2, edge_first=1, format_version=2):
    make_runfile.write_run(path, status=status, epochs=2, rows=rows, options={"edge-first": edge_first},
                           test_acc=[0.5 + 0.1 * i + 0.01 * edge_first for i in range(rows)],
                           format_version=format_version)


def hold(ready, lock):
    """Holds `lock` on PATH until killed; `ready` appears once it is held."""
    fd = os.open(path, os.O_RDWR)
    lock(fd)
    open(ready, "w").close()
    time.sleep(120)


def posix_lock(fd):  # what the test of tools/report itself conflicts with
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, LOCK_OFFSET, 0)


def ofd_lock(fd):  # what splitpipe takes: an open-file-description lock (Linux F_OFD_SETLK)
    # struct flock {short l_type, l_whence; off_t l_start, l_len; pid_t l_pid;} (+ padding)
    flock = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, LOCK_OFFSET, 1, 0)
    fcntl.fcntl(fd, getattr(fcntl, "F_OFD_SETLK", 37), flock)


if kind == "good":
    run_file(path, edge_first=int(arg or 1))
elif kind == "running":  # 1 of 2 epochs so far
    run_file(path, status="running", rows=1)
elif kind == "stopped-before-first-epoch":  # killed during its first epoch: every table has 0 rows
    run_file(path, status="running", rows=0)
elif kind == "version":  # a complete run file of another format_version (ARG)
    run_file(path, format_version=int(arg))
elif kind == "foreign":  # some other program's HDF5 file
    with h5py.File(path, "w") as f:
        f.create_group("data")["x"] = np.arange(10.0)
        f.attrs["creator"] = "not splitpipe"
elif kind == "bad-layout":  # claims to be a run file, but /epochs is a dataset
    with h5py.File(path, "w") as f:
        f.attrs["format_version"] = np.int64(2)
        f.attrs["status"] = "complete"
        f["epochs"] = np.arange(4.0)
elif kind == "no-epoch-column":  # rows in /epochs, but not the epoch number
    run_file(path)
    with h5py.File(path, "a") as f:
        del f["epochs/epoch"]
elif kind == "truncate":  # the first half of the run file ARG
    with open(arg, "rb") as source, open(path, "wb") as out:
        data = source.read()
        out.write(data[:len(data) // 2])
elif kind == "hold-posix-lock":
    hold(arg, posix_lock)
elif kind == "hold-ofd-lock":
    hold(arg, ofd_lock)
elif kind == "hold-open":  # open for writing, under HDF5's file locking (run with it on)
    f = h5py.File(path, "a")
    open(arg, "w").close()
    time.sleep(120)
else:
    sys.exit(f"fixtures.py: unknown kind {kind}")
PY
fixture() { "$python" "$work/fixtures.py" "$@" || echo "SETUP FAILED: fixtures.py $*"; }

# hold KIND FILE: a helper process holding a lock on (or HDF5 handle of) FILE; waits until held.
hold() {
  local ready=$work/ready.$RANDOM.$RANDOM
  if [[ $1 == hold-open ]]; then
    HDF5_USE_FILE_LOCKING=TRUE "$python" "$work/fixtures.py" "$1" "$2" "$ready" &
  else
    "$python" "$work/fixtures.py" "$1" "$2" "$ready" &
  fi
  helpers+=($!)
  local waited=0
  while [[ ! -e $ready ]] && ((waited < 100)); do sleep 0.1; waited=$((waited + 1)); done
  [[ -e $ready ]] || echo "SETUP FAILED: $1 $2 not held after 10 s"
}
release() {
  local pid
  for pid in "${helpers[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  helpers=()
}

# --- A stub splitpipe: --help as the real one's, and --config runs "train" a fixture ----------------
binary=${1:-$source_dir/build/splitpipe}
help=$work/help.txt
if [[ -x $binary ]] && timeout 30 "$binary" --help >"$help" 2>/dev/null && grep -q -- '--fwd-codec' "$help"; then
  echo "stub splitpipe --help: from $binary"
else
  # The options the sweep files below and configs/fmnist-lenet5-pipeline.ini use.
  printf '  --%s arg\n' seed threads expect-ranks model dataset epochs batch-size lr momentum \
    weight-decay lr-schedule warmup-epochs edge-first edge-last schedule chunks fwd-codec bwd-codec >"$help"
  echo "stub splitpipe --help: a fixed list (no splitpipe binary at $binary)"
fi
stub=$work/splitpipe
cat >"$stub" <<EOF
#!/bin/bash
# tools/sweep asks for --help; jobs/run.sbatch runs --config <point>.ini --overwrite.
case \${1:-} in
  --help) cat "$help" ;;
  --config) exec "$python" "$work/fixtures.py" good "\$(sed -n 's/^output = //p' "\$2")" ;;
  *) echo "stub splitpipe: unexpected \$*" >&2; exit 1 ;;
esac
EOF
chmod +x "$stub"

# --- Cases ---------------------------------------------------------------------------------------
rows=()
failures=0
# tool LOG COMMAND...: runs one tool invocation (at most 60 s), output in LOG; sets $code.
tool() {
  local log=$1
  shift
  timeout 60 "$@" >"$log" 2>&1
  code=$?
}
# expect CASE LOG CODE WANT_CODE [TEXT...] [-- CONDITION DESCRIPTION]: the exit status, no
# "Traceback" in LOG, every TEXT (a fixed string) in LOG, and CONDITION (a shell test) holds.
expect() {
  local case=$1 log=$2 got=$3 want=$4
  shift 4
  local ok=1 observed="exit $got" expected="exit $want" text
  [[ $got == "$want" ]] || ok=0
  if grep -q Traceback "$log"; then ok=0; observed+=", TRACEBACK"; fi
  while (($# > 0)) && [[ $1 != -- ]]; do
    expected+=", '$1'"
    if grep -qF -- "$1" "$log"; then observed+=", found"; else ok=0; observed+=", NOT FOUND '$1'"; fi
    shift
  done
  if [[ ${1:-} == -- ]]; then
    expected+=", $3"
    if eval "$2"; then observed+=", $3"; else ok=0; observed+=", NOT $3"; fi
  fi
  rows+=("$case"$'\t'"$expected"$'\t'"$observed"$'\t'"$( ((ok)) && echo PASS || echo FAIL)")
  if ((!ok)); then
    failures=$((failures + 1))
    echo "--- $case: output ($log):"
    tail -n 25 "$log"
  fi
}
sweep() { tool "$1" "$python" "$tools/sweep" "${@:2}" --splitpipe "$stub"; }
report() { tool "$1" "$python" "$tools/report" "${@:2}"; }

# 1. A binary sweep file (a run file passed by mistake): one error line, exit 2.
fixture good "$work/binary.ini"
sweep "$work/s1.log" "$work/binary.ini" --dry-run --check none
expect sweep-binary-file "$work/s1.log" "$code" 2 "sweep: error: $work/binary.ini: not a text (UTF-8) file" \
  -- '[[ $(grep -c "sweep: error:" "$work/s1.log") == 1 ]]' "one error line"

# 2. The README's sweep example, literally (its end-of-line '#' comments included).
"$python" - "$source_dir/README.md" >"$work/sweep-readme.ini" <<'PY'
import re, sys
blocks = re.findall(r"^```ini\n(.*?)^```", open(sys.argv[1]).read(), re.S | re.M)
print([b for b in blocks if "[sweep]" in b and "[axes]" in b][0], end="")
PY
grep -q ' # ' "$work/sweep-readme.ini" || echo "SETUP FAILED: the README example has no end-of-line comment"
cd "$source_dir" || exit 1  # the example's config path is relative to the repository
sweep "$work/s2.log" "$work/sweep-readme.ini" --dry-run --check none --results "$work/results"
cd - >/dev/null || exit 1
expect sweep-readme-example "$work/s2.log" "$code" 0 "sweep fmnist-partitions: 9 point(s), 9 to run, 2 ranks each" \
  "edge-first-3_fwd-codec-sortquant-bits-6-split-2" -- '! grep -q "#" "$work/s2.log"' "no '#' in the points"

# 2b. Comments: full-line '#'/';', '#' after whitespace; a ';' in a value separates values.
cat >"$work/sweep-comments.ini" <<'EOF'
; a full-line comment
# another one
[sweep]   # a section with a comment
name = comments	# after a tab
ranks = 1
[base]
epochs = 2 # after a space
[axes]
edge-first = 1, 2   # two values
fwd-codec = none ; quant:bits=8   # ' ; ' separates values: never a comment
EOF
sweep "$work/s2b.log" "$work/sweep-comments.ini" --dry-run --check none --results "$work/results"
expect sweep-inline-comments "$work/s2b.log" "$code" 0 "sweep comments: 4 point(s), 4 to run, 1 ranks each" \
  "edge-first-2_fwd-codec-quant-bits-8" "edge-first-1_fwd-codec-none"

# 3. A corrupt manifest.json is refused before anything runs and stays byte for byte.
printf '[sweep]\nname = %s\nranks = 1\n[base]\nepochs = 2\n[axes]\nedge-first = 1\n' corrupt >"$work/sweep-corrupt.ini"
mkdir -p "$work/results/corrupt"
printf '{"sweep": "corrupt", "submissions": [{"time": "2026-01-01T00:00:00+00:00", "job_id": "4' \
  >"$work/results/corrupt/manifest.json"
cp "$work/results/corrupt/manifest.json" "$work/manifest.orig"
for mode in dry-run local; do
  sweep "$work/s3-$mode.log" "$work/sweep-corrupt.ini" "--$mode" --check none --results "$work/results"
  expect "sweep-corrupt-manifest ($mode)" "$work/s3-$mode.log" "$code" 1 \
    "sweep: error: $work/results/corrupt/manifest.json: not a readable sweep manifest" "Move it aside" \
    -- 'cmp -s "$work/manifest.orig" "$work/results/corrupt/manifest.json" && [[ $(ls "$work/results/corrupt") == manifest.json ]]' \
    "manifest identical, nothing else written"
done

# 3b. A good manifest keeps its history when --local rewrites it (atomically: no temp left).
printf '[sweep]\nname = %s\nranks = 1\n[base]\nepochs = 2\n[axes]\nedge-first = 1\n' history >"$work/sweep-history.ini"
mkdir -p "$work/results/history"
echo '{"sweep": "history", "submissions": [{"time": "2026-01-01T00:00:00+00:00", "mode": "slurm", "indices": [0], "job_id": "42"}]}' \
  >"$work/results/history/manifest.json"
sweep "$work/s3b.log" "$work/sweep-history.ini" --local --check none --results "$work/results"
manifest_ok() {
  "$python" -c '
import json, sys
s = json.load(open(sys.argv[1]))["submissions"]
assert len(s) == 2 and s[0]["job_id"] == "42" and s[1]["mode"] == "local", s' "$work/results/history/manifest.json" &&
    ! ls "$work/results/history" | grep -q tmp
}
expect sweep-manifest-history "$work/s3b.log" "$code" 0 "1 of 1 point(s) complete" \
  -- manifest_ok "old submission kept, new one added, no temp file"

# 4, 5. Good run files among bad ones, no manifest: the good ones reported, each bad one skipped.
dir=$work/mixed
mkdir -p "$dir"
fixture good "$dir/good-a.h5" 1
fixture good "$dir/good-b.h5" 2
: >"$dir/zero.h5"
echo "not HDF5" >"$dir/text.h5"
fixture truncate "$dir/truncated.h5" "$dir/good-a.h5"
fixture foreign "$dir/foreign.h5"
fixture bad-layout "$dir/bad-layout.h5"
fixture no-epoch-column "$dir/no-epoch-column.h5"
fixture stopped-before-first-epoch "$dir/stopped.h5"
fixture version "$dir/version1.h5" 1
fixture version "$dir/version3.h5" 3
report "$work/r4.log" "$dir" --out "$work/r4"
log=$work/r4.log
expect report-good-among-bad "$log" "$code" 0 "3 run(s), 2 complete" "skipped 8 file(s)" \
  -- '[[ $(grep -c ",complete,2/2," "$work/r4/summary.csv") == 2 && -s $work/r4/accuracy_per_epoch.png ]]' \
  "2 complete rows + plots"
expect report-zero-bytes "$log" "$code" 0 "zero.h5: empty file (0 bytes)"
expect report-not-hdf5 "$log" "$code" 0 "text.h5: not an HDF5 file"
expect report-truncated "$log" "$code" 0 "truncated.h5: truncated HDF5 file ("
expect report-foreign-h5 "$log" "$code" 0 "foreign.h5: not a splitpipe run file (no root attribute format_version)"
expect report-bad-layout "$log" "$code" 0 "bad-layout.h5: /epochs is not a group"
expect report-no-epoch-column "$log" "$code" 0 "no-epoch-column.h5: /epochs has 2 row(s) but no epoch column"
expect report-format-version-1 "$log" "$code" 0 \
  "version1.h5: written by an older splitpipe (format_version 1); re-run it or read it with that version's tools"
expect report-format-version-3 "$log" "$code" 0 "version3.h5: written by a newer splitpipe (format_version 3)"
expect report-before-first-epoch "$log" "$code" 0 "not complete: stopped: ended without status" \
  -- 'grep -q "^stopped,\\(.*,\\)\\?ended without status,0/2," "$work/r4/summary.csv"' "a row, 0/2 epochs"

# 4. A damaged manifest.json: the run files are reported without it, the manifest untouched.
dir=$work/damaged-manifest
mkdir -p "$dir"
fixture good "$dir/good.h5"
printf '{"axes": {"edge-first": ["1"]}, "points": [{"name": "go' >"$dir/manifest.json"
cp "$dir/manifest.json" "$work/manifest2.orig"
report "$work/r4m.log" "$dir" --out "$work/r4m"
expect report-damaged-manifest "$work/r4m.log" "$code" 0 "manifest.json: not a readable manifest" "1 run(s), 1 complete" \
  -- 'cmp -s "$work/manifest2.orig" "$dir/manifest.json"' "manifest identical"

# 4. A manifest whose points' files are missing or unreadable: rows with their status.
dir=$work/manifest-points
mkdir -p "$dir"
fixture good "$dir/p1.h5"
: >"$dir/p2.h5"
echo '{"axes": {"edge-first": ["1", "2", "3"]}, "points": [{"name": "p1", "values": {"edge-first": "1"}},
  {"name": "p2", "values": {"edge-first": "2"}}, {"name": "p3", "values": {"edge-first": "3"}}]}' >"$dir/manifest.json"
report "$work/r4p.log" "$dir" --out "$work/r4p"
expect report-manifest-points "$work/r4p.log" "$code" 0 "3 run(s), 1 complete" \
  "not complete: p2: unreadable: empty file (0 bytes)" "not complete: p3: missing"

# 4. Nothing readable at all: exit 1 naming each file; not a directory: exit 2.
dir=$work/all-bad
mkdir -p "$dir"
: >"$dir/zero.h5"
fixture foreign "$dir/foreign.h5"
report "$work/r4b.log" "$dir" --out "$work/r4b"
expect report-nothing-readable "$work/r4b.log" "$code" 1 "report: error: $dir: none of its 2 file(s) is a readable run file" \
  "foreign.h5: not a splitpipe run file"
report "$work/r4d.log" "$work/no-such-dir"
expect report-not-a-directory "$work/r4d.log" "$code" 2 "report: error: $work/no-such-dir: not a directory"

# 6. status `running`: its writer's lock held (POSIX lockf, and an OFD lock as splitpipe takes)
#    means running; no lock means the writer died. An unreadable file being written is running.
dir=$work/live
mkdir -p "$dir"
fixture running "$dir/live-posix.h5"
fixture running "$dir/live-ofd.h5"
fixture running "$dir/dead.h5"
: >"$dir/live-empty.h5"
hold hold-posix-lock "$dir/live-posix.h5"
hold hold-ofd-lock "$dir/live-ofd.h5"
hold hold-posix-lock "$dir/live-empty.h5"
report "$work/r6.log" "$dir" --out "$work/r6"
release
expect report-running-posix-lock "$work/r6.log" "$code" 0 "not complete: live-posix: running" \
  -- 'grep -q "^live-posix,\\(.*,\\)\\?running,1/2," "$work/r6/summary.csv"' "row status running"
expect report-running-ofd-lock "$work/r6.log" "$code" 0 "not complete: live-ofd: running" \
  -- 'grep -q "^live-ofd,\\(.*,\\)\\?running,1/2," "$work/r6/summary.csv"' "row status running"
expect report-ended-without-status "$work/r6.log" "$code" 0 "not complete: dead: ended without status"
expect report-unreadable-while-written "$work/r6.log" "$code" 0 \
  "not complete: live-empty: running (unreadable while written: empty file (0 bytes))"
report "$work/r6b.log" "$dir" --out "$work/r6b"
expect report-lock-released "$work/r6b.log" "$code" 0 "not complete: live-posix: ended without status" \
  "not complete: live-ofd: ended without status" "live-empty.h5: empty file (0 bytes)"

# 7. A file another process holds open for writing under HDF5's file locking is still read.
dir=$work/held
mkdir -p "$dir"
fixture good "$dir/held.h5"
hold hold-open "$dir/held.h5"
report "$work/r7.log" "$dir" --out "$work/r7"
HDF5_USE_FILE_LOCKING=TRUE "$python" -c 'import h5py, sys; h5py.File(sys.argv[1], "r")' "$dir/held.h5" \
  >"$work/r7-control.log" 2>&1 && echo "SETUP FAILED: HDF5 file locking did not refuse the held file"
release
expect report-hdf5-locked-file "$work/r7.log" "$code" 0 "1 run(s), 1 complete" \
  -- 'grep -q "unable to lock file" "$work/r7-control.log"' "HDF5 locking would refuse it"

# --- Table ---------------------------------------------------------------------------------------
printf '\n%-34s  %-60s  %-50s  %s\n' case expected observed result
for row in "${rows[@]}"; do
  IFS=$'\t' read -r c e o r <<<"$row"
  printf '%-34s  %-60s  %-50s  %s\n' "$c" "${e:0:60}" "${o:0:50}" "$r"
done
echo
if ((failures > 0)); then
  echo "$failures of ${#rows[@]} case(s) FAILED"
  exit 1
fi
echo "all ${#rows[@]} cases passed"
