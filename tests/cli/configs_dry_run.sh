#!/usr/bin/env bash
# Every run configuration in configs/ still parses and plans: --dry-run with the rank count its
# expect-ranks names (1 without it) must exit 0. Sweep files (configs/sweep-*.ini) are
# tools/sweep's input and are checked by its own tests.
#
# Usage: configs_dry_run.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
binary=$(realpath "$1")
mpiexec=$2
read -r -a mpirun_flags <<<"${3//;/ }"
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
failed=0
checked=0
for config in "$source_dir"/configs/*.ini; do
  [[ $(basename "$config") == sweep-* ]] && continue
  ranks=$(sed -n 's/^[[:space:]]*expect-ranks[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "$config" | head -1)
  command=("$binary" --config "$config" --dry-run)
  ((${ranks:-1} > 1)) && command=("$mpiexec" -np "$ranks" "${mpirun_flags[@]}" "${command[@]}")
  checked=$((checked + 1))
  if output=$(timeout 60 "${command[@]}" 2>&1); then
    echo "ok    $(basename "$config") (${ranks:-1} rank(s))"
  else
    failed=$((failed + 1))
    echo "FAIL  $(basename "$config") (${ranks:-1} rank(s)):"
    echo "$output" | tail -5
  fi
done
((checked > 0)) || { echo "FAIL: no configurations found in $source_dir/configs"; exit 1; }
((failed == 0)) || { echo "$failed of $checked configurations failed"; exit 1; }
echo "all $checked configurations dry-run"
