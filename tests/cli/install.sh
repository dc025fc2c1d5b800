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
for file in share/splitpipe/configs/fmnist-lenet5.ini share/splitpipe/jobs/run.sbatch; do
  [[ -f $prefix/$file ]] || fail "$file not installed"
done
finish "cmake --install: the installed splitpipe runs and trains; configs and job scripts installed"
