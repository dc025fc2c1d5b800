#!/usr/bin/env bash
# cmake --install puts a working splitpipe where it is asked to: the binary runs from the
# prefix (its RUNPATH still finds LibTorch), trains a tiny run there, and the example configs
# and job scripts are installed beside it.
# Usage: install.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" install "$@"

build=$(dirname "$binary")
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 || fail "cmake --install failed: $(tail -3 "$work/install.log")"
installed=$prefix/bin/splitpipe
[[ -x $installed ]] || fail "no executable $installed"
"$installed" --version >"$work/version.txt" 2>&1 && grep -q "LibTorch" "$work/version.txt" ||
  fail "installed splitpipe --version: $(head -3 "$work/version.txt")"
(cd "$work" && "$installed" --dataset synthetic --synthetic-train 64 --synthetic-test 16 --epochs 1 --output run.h5 \
  >"$work/run.log" 2>&1) || fail "installed splitpipe does not train: $(tail -3 "$work/run.log")"
for file in share/splitpipe/configs/fmnist-lenet5.ini share/splitpipe/jobs/run.sbatch share/splitpipe/jobs/sweep.sbatch \
  share/splitpipe/tools/runfile.py share/doc/splitpipe/README.md; do
  [[ -f $prefix/$file ]] || fail "$file not installed"
done
"$installed" --help >"$work/help.txt" 2>&1 && grep -q -- "--fwd-codec" "$work/help.txt" ||
  fail "installed splitpipe --help: $(head -3 "$work/help.txt")"

# The installed tools work from the prefix alone: the report reads the run made above (through
# the run-file reader installed beside it), and the sweep finds the installed binary and jobs.
mkdir -p "$work/sweep" && cp "$work/run.h5" "$work/sweep/"
"$prefix/bin/splitpipe-report" "$work/sweep" >"$work/report.log" 2>&1 ||
  fail "installed splitpipe-report failed: $(tail -3 "$work/report.log")"
[[ -s $work/sweep/report/summary.md ]] || fail "installed splitpipe-report wrote no summary.md"
grep -q complete "$work/sweep/report/summary.md" || fail "the installed report does not show the complete run"
cat >"$work/tiny.ini" <<'INI'
[sweep]
name = tiny
ranks = 2
[base]
dataset = synthetic
epochs = 1
[axes]
fwd-codec = none; quant:bits=8
INI
(cd "$work" && env -u SPLITPIPE PATH=/usr/bin:/bin "$prefix/bin/splitpipe-sweep" tiny.ini --dry-run >sweep.log 2>&1) ||
  fail "installed splitpipe-sweep --dry-run failed: $(tail -3 "$work/sweep.log")"
grep -q "in one splitpipe process" "$work/sweep.log" || fail "installed sweep did not check its points: $(head -3 "$work/sweep.log")"
finish "cmake --install: the installed splitpipe runs and trains; splitpipe-report and splitpipe-sweep work from the prefix; configs, jobs and docs installed"
