# Shared by the bad-input tables (tests/cli/bad_inputs.sh, tests/cli/clients_errors.sh):
#   source "$(dirname "$0")/lib/error_table.sh" NAME "$@"
# with the script's arguments <splitpipe binary> <mpiexec> "<mpirun flags>" sets binary,
# mpiexec, mpirun_flags (array), limit (SPLITPIPE_CLI_TIMEOUT, default 10 s per process and per
# 2 ranks under mpirun) and work (a scratch directory, removed on exit). Each row runs one
# invocation and must:
#   - exit with the expected code (2 for usage errors, 1 for data/output errors),
#   - print exactly one line starting "splitpipe: error:" (over all ranks), containing the
#     expected text (usually the option's name),
#   - finish within the time limit (a hang is a failure), leave no core file and no stray
#     process, and create or change no file (the existing --output keeps its bytes).
# report_rows TITLE prints the table and exits 1 listing the rows that failed.

binary=$(realpath "$2")
mpiexec=$3
# CMake may pass the flag list with ';' separators.
read -r -a mpirun_flags <<<"${4//;/ }"
limit=${SPLITPIPE_CLI_TIMEOUT:-10}
work=$(mktemp -d "${TMPDIR:-/tmp}/splitpipe_$1.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Core files land in the working directory (core_pattern "core") only if they may be written.
ulimit -c unlimited 2>/dev/null || ulimit -c "$(ulimit -H -c)" 2>/dev/null || true

# --- One row --------------------------------------------------------------------------------

rows=0
failed=()
results=()
existing_content="not a run file: must survive a refused run byte for byte"

# row NAME NP CODE EXPECTED [SETUP=fn] -- ARGS...
#   NP 0: run the binary directly; NP >= 1: under mpirun -np NP.
#   SETUP: "existing-output" creates the --output file first; "output-is-dir" makes it a directory.
row() {
  local name=$1 np=$2 want_code=$3 expected=$4
  shift 4
  local setup=""
  if [[ $1 == SETUP=* ]]; then
    setup=${1#SETUP=}
    shift
  fi
  [[ $1 == -- ]] && shift
  rows=$((rows + 1))
  local dir=$work/row$rows
  mkdir -p "$dir"
  local out=$dir/out.h5 log=$work/row$rows.log
  case $setup in
    existing-output) printf '%s\n' "$existing_content" >"$out" ;;
    output-is-dir) mkdir -p "$out" ;;
  esac
  local before
  before=$(cd "$dir" && find . -printf '%p %s %T@\n' | sort)

  local command=("$binary" --output "$out" "$@")
  local row_limit=$limit
  if ((np > 0)); then
    command=("$mpiexec" -np "$np" "${mpirun_flags[@]}" "${command[@]}")
    row_limit=$((limit * ((np + 1) / 2)))
  fi
  local start end code
  start=$(date +%s.%N)
  (cd "$dir" && exec timeout --kill-after=5 "$row_limit" "${command[@]}") >"$log" 2>&1 </dev/null
  code=$?
  end=$(date +%s.%N)
  local seconds
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

  local problems=()
  if ((code == 124 || code == 137)); then
    problems+=("hung: killed after ${row_limit} s")
  elif [[ $code != "$want_code" ]]; then
    problems+=("exit code $code, expected $want_code")
  fi
  local error_lines
  error_lines=$(grep -c '^splitpipe: error:' "$log")
  ((error_lines == 1)) || problems+=("$error_lines lines 'splitpipe: error:', expected 1")
  grep -q -F -- "$expected" <(grep '^splitpipe: error:' "$log") ||
    problems+=("error line lacks '$expected'")
  if grep -q -E 'Segmentation fault|core dumped|terminate called|Aborted|exited on signal|Backtrace|Exception raised from' "$log"; then
    problems+=("crash or stack dump in the output")
  fi
  if compgen -G "$dir/core*" >/dev/null; then
    problems+=("left a core file")
  fi
  if ((np > 0)) && pgrep -f -- "$dir/out.h5" >/dev/null; then
    problems+=("ranks still running after mpirun returned")
    pkill -KILL -f -- "$dir/out.h5"  # only this row's processes: the path is unique to it
  fi
  local after
  after=$(cd "$dir" && find . -printf '%p %s %T@\n' | sort)
  [[ $before == "$after" ]] || problems+=("files created or changed: $(diff <(echo "$before") <(echo "$after") | grep '^>' | cut -d' ' -f2 | tr '\n' ' ')")
  if [[ $setup == existing-output && "$(cat "$out" 2>/dev/null)" != "$existing_content" ]]; then
    problems+=("the existing --output file was changed")
  fi

  local message
  message=$(grep -m1 '^splitpipe: error:' "$log" | cut -c19-)
  local invocation="${*}"
  ((np > 0)) && invocation="mpirun -np $np ... $invocation"
  local status=ok
  if ((${#problems[@]} > 0)); then
    status=FAIL
    local joined
    joined=$(printf '%s; ' "${problems[@]}")
    failed+=("row $rows ($name): ${joined%; }")
    {
      echo "---- row $rows ($name) output:"
      cat "$log"
      echo "----"
    } >>"$work/failures.txt"
  fi
  results+=("$(printf '%3d  %-4s %4s %6s  %-34s  %s\n      %s' "$rows" "$status" "$code" "$seconds" "$name" \
    "${invocation:0:90}" "${message:0:150}")")
}

# add_result NAME STATUS CODE SECONDS INVOCATION MESSAGE: a line of the table for a check that
# is not a bad-input row (e.g. a good run closing the table); STATUS FAIL needs a `failed` entry.
add_result() {
  rows=$((rows + 1))
  results+=("$(printf '%3d  %-4s %4s %6s  %-34s  %s\n      %s' "$rows" "$2" "$3" "$4" "$1" "${5:0:90}" "${6:0:150}")")
}

report_rows() {
  echo "$1: $rows rows (limit ${limit} s per process or per 2 ranks)"
  echo "  #  result exit   secs  case                                invocation"
  echo "                         message"
  for line in "${results[@]}"; do echo "$line"; done
  if ((${#failed[@]} > 0)); then
    echo
    echo "${#failed[@]} of $rows rows FAILED:"
    printf '  %s\n' "${failed[@]}"
    echo
    [[ -f $work/failures.txt ]] && cat "$work/failures.txt"
    exit 1
  fi
  echo "all $rows rows passed"
}
