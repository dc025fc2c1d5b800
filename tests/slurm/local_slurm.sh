# Shared by the local-Slurm tests: source it after setting `source_dir` and a `name`.
#   fail MESSAGE       print FAIL: MESSAGE and exit 1
# Skips the test (exit 77) without root, slurm-wlm + munge or mpirun, unless
# SPLITPIPE_REQUIRE_SLURM=1 (tools/run-tests), which makes that a failure. Then makes `work`
# (kept when the test fails) and starts munged, slurmctld and slurmd there (tools/slurm-local),
# stopped on every exit; the environment points sbatch and friends at them.

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

missing=""
for tool in munged slurmctld slurmd sbatch squeue scontrol mpirun; do
  command -v "$tool" >/dev/null || missing+=" $tool"
done
[[ $(id -u) -eq 0 ]] || missing+=" (root)"
if [[ -n $missing ]]; then
  msg="needs root and slurm-wlm + munge (apt-get install -y slurm-wlm munge); missing:$missing"
  [[ ${SPLITPIPE_REQUIRE_SLURM:-0} == 1 ]] && fail "$msg"
  echo "SKIP: $msg"
  exit 77
fi

work=$(mktemp -d "/tmp/splitpipe-$name-test.XXXXXX")
slurm_dir=""
cleanup() {
  local status=$?
  if [[ -n $slurm_dir ]]; then "$source_dir/tools/slurm-local" stop "$slurm_dir" || true; fi
  if [[ $status -eq 0 ]]; then rm -rf "$work"; else echo "kept $work for inspection" >&2; fi
}
trap cleanup EXIT

eval "$("$source_dir/tools/slurm-local" start "$work/slurm")"
slurm_dir=$SLURM_LOCAL_DIR
