# Shared by the end-to-end check scripts (tests/cli/run_file.sh, tests/cli/version.sh):
#   source "$(dirname "$0")/lib/checks.sh" NAME "$@"
# with the script's arguments <splitpipe binary> <mpiexec> "<mpirun flags>" sets binary,
# mpiexec, mpirun_flags (array) and work (a scratch directory, removed on exit).
# fail MESSAGE records a failed check and goes on; finish SUMMARY ends the script: exit 1
# listing the failures, or SUMMARY when there were none.

binary=$(realpath "$2")
mpiexec=$3
# CMake may pass the flag list with ';' separators.
read -r -a mpirun_flags <<<"${4//;/ }"
work=$(mktemp -d "${TMPDIR:-/tmp}/splitpipe_$1.XXXXXX")
trap 'rm -rf "$work"' EXIT

failures=()
fail() {
  failures+=("$1")
  echo "FAIL: $1"
}

finish() {
  if ((${#failures[@]} > 0)); then
    echo "${#failures[@]} check(s) FAILED:"
    printf '  %s\n' "${failures[@]}"
    exit 1
  fi
  echo "$1"
}
