#!/usr/bin/env bash
# An adversarial table: splitpipe, its checkpoints, run files and Python tools attacked the way a
# hostile new user would, beyond the existing tables (bad_inputs.sh, clients_errors.sh,
# reliability.sh, matrix/modes.sh). Every case has a name, a category (data, config, filesystem,
# checkpoint, resume, signal, mpi-fault, clients, tools), a setup, a command, the EXPECTED
# behaviour in one sentence, a check function and the OBSERVED result. The script prints
#   case | category | expected | observed | PASS/FAIL
# then "N/M passed", and exits 1 if any case failed.
#
# Generic invariants, checked in every case where they apply (on top of the case's own check):
#   - exit code: 0 for success, 2 for bad options/usage, 1 for data/output errors, 75 for a stop
#     by SIGUSR1/SIGTERM after a checkpoint;
#   - a failure prints exactly one line "splitpipe: error:" over all ranks, readable: no
#     "terminate called", "Traceback", "Exception raised from", "Segmentation fault", "frame #";
#   - no hang (every command runs under timeout), no process left whose command line names the
#     scratch directory (pgrep -f) or whose working directory is in it;
#   - every run file found: root attribute status "complete", "interrupted: ..." or "failed: ..."
#     (never "running" once the processes are gone, unless rank 0 itself was SIGKILLed; no C++
#     backtrace in it), and /epochs/*, /confusion and /boundaries/traffic (first dim), /ranks/rank<r>/*, /clients/<c>/*
#     all with the same number of rows;
#   - a file that existed before a refused or failed run is byte-identical after it (cmp);
#   - no *.tmp file in any checkpoint directory and no temporary run file (*.partial) left.
#
# Usage: adversarial.sh <splitpipe binary> <mpiexec> "<mpirun flags>"   (flags may be ';'-separated)
#   ADVERSARIAL_ONLY=<regex>    run only the cases whose name matches (bash =~)
#   ADVERSARIAL_TIMEOUT=<s>     limit for one command (default 30). The whole table takes about
#                               5 minutes on 2 cores shared with other jobs, less on a quiet machine.
# Needs /usr/bin/python3 with h5py. The disk-full case mounts a small tmpfs and runs only as root.
set -u

if (($# < 2)); then
  echo "usage: $0 <splitpipe binary> <mpiexec> \"<mpirun flags>\"" >&2
  exit 2
fi
binary=$(realpath "$1")
mpiexec=$2
# CMake may pass the flag list with ';' separators.
flags_text=${3:-}
read -r -a mpirun_flags <<<"${flags_text//;/ }"
repo=$(cd "$(dirname "$0")/../.." && pwd)
py=/usr/bin/python3
only=${ADVERSARIAL_ONLY:-}
lim=${ADVERSARIAL_TIMEOUT:-30}

work=$(mktemp -d "${TMPDIR:-/tmp}/splitpipe_adversarial.XXXXXX")
mounts=()
cleanup() {
  local p m
  for p in $(pgrep -f -- "$work" 2>/dev/null); do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work" || exit 1

# A relink of the binary in progress shows as a missing file or a library that fails to load.
for attempt in 1 2 3; do
  "$binary" --help >/dev/null 2>&1 && break
  ((attempt == 3)) && { echo "FAIL: $binary --help does not run"; exit 1; }
  echo "waiting 30 s for $binary (missing or not loadable)"
  sleep 30
done

# --- Python helpers (written once) ----------------------------------------------------------

# runfile_check.py FILE ALLOW-RUNNING [ATTR...]: one key=value a line: status, rows (the common row
# count of /epochs/*, /confusion, /boundaries/traffic, /ranks/rank<r>/*, /clients/<c>/*, or "unequal"), ranks,
# clients, attr.NAME for each ATTR, and problem=... for every broken generic invariant.
cat >"$work/runfile_check.py" <<'PY'
import os, sys
os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"
import h5py

def text(value):
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

def one_line(value):
    return text(value).replace("\n", " \\n ")

path, allow_running, attrs = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
try:
    f = h5py.File(path, "r")
except Exception as e:
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    print("status=<unreadable>")
    print("rows=-")
    print(f"problem=cannot be opened: {reason}")
    sys.exit(0)
with f:
    if "format_version" not in f.attrs:
        print("status=<not a run file>")
        print("rows=-")
        sys.exit(0)
    status = text(f.attrs.get("status", "<no status attribute>"))
    counts = {}
    def add(group):
        for key, item in group.items():
            if isinstance(item, h5py.Dataset):
                counts[item.name] = item.shape[0] if item.shape else 1
    if "epochs" in f:
        add(f["epochs"])
    if "confusion" in f:
        counts["/confusion"] = f["confusion"].shape[0]
    if "boundaries/traffic" in f:
        counts["/boundaries/traffic"] = f["boundaries/traffic"].shape[0]
    ranks = sorted((k for k in f["ranks"] if isinstance(f["ranks"][k], h5py.Group)), key=lambda k: int(k[4:]) if k[4:].isdigit() else -1) if "ranks" in f else []
    for r in ranks:
        add(f["ranks"][r])
    clients = sorted(f["clients"], key=lambda c: int(c) if c.isdigit() else -1) if "clients" in f else []
    for c in clients:
        if isinstance(f["clients"][c], h5py.Group):
            add(f["clients"][c])
    distinct = sorted(set(counts.values()))
    rows = distinct[0] if len(distinct) == 1 else 0 if not distinct else "unequal"
    print(f"status={one_line(status)}")
    print(f"rows={rows}")
    print(f"ranks={' '.join(ranks)}")
    print(f"clients={' '.join(clients)}")
    for name in attrs:
        # Root attributes, or an option (typed, in /options).
        owner = f if name in f.attrs else f["options"] if "options" in f and name in f["options"].attrs else None
        print(f"attr.{name}={one_line(owner.attrs[name]) if owner is not None else '<missing>'}")
    ok = status == "complete" or status.startswith("interrupted: ") or status.startswith("failed: ") \
        or (allow_running and status == "running")
    if not ok:
        print(f"problem=status {status[:200]!r} (want complete, interrupted: ... or failed: ...)")
    for marker in ("frame #", "Exception raised from", "terminate called", "Traceback"):
        if marker in status:
            print(f"problem=status holds a backtrace ({marker!r})")
    if rows == "unequal":
        groups = {}
        for name, n in counts.items():
            groups.setdefault(name.rsplit("/", 1)[0] if name != "/confusion" else name, set()).add(n)
        print("problem=unequal row counts: " + ", ".join(f"{g} {sorted(v)}" for g, v in sorted(groups.items())))
PY

# mk.py: deterministic data files.
#   idx FILE HEADER-BYTES(4, comma) DIMS(comma) CONTENT [BYTES]   CONTENT: random | labels | labels-bad:INDEX:VALUE
#   cifar FILE RECORDS [BAD-RECORD BAD-LABEL]                       records of 1 label byte + 3072 pixels
#   csv FILE ROWS FEATURES CLASSES                                  a valid CSV with a header row
#   garbage-csv FILE                                                a header, a row, then a line of random bytes
cat >"$work/mk.py" <<'PY'
import random, struct, sys
cmd, path = sys.argv[1], sys.argv[2]
rng = random.Random(7)
if cmd == "idx":
    header = bytes(int(b, 0) for b in sys.argv[3].split(","))
    dims = [int(d) for d in sys.argv[4].split(",")] if sys.argv[4] else []
    content = sys.argv[5]
    n = 1
    for d in dims:
        n *= d
    if len(sys.argv) > 6:
        n = int(sys.argv[6])
    if content == "random":
        data = rng.randbytes(n)
    else:
        data = bytearray(i % 10 for i in range(n))
        if content.startswith("labels-bad:"):
            _, index, value = content.split(":")
            data[int(index)] = int(value)
        data = bytes(data)
    with open(path, "wb") as f:
        f.write(header + b"".join(struct.pack(">I", d) for d in dims) + data)
elif cmd == "cifar":
    records = int(sys.argv[3])
    bad = (int(sys.argv[4]), int(sys.argv[5])) if len(sys.argv) > 5 else (-1, 0)
    with open(path, "wb") as f:
        for r in range(records):
            f.write(bytes([bad[1] if r == bad[0] else r % 10]) + rng.randbytes(3072))
elif cmd == "csv":
    rows, features, classes = map(int, sys.argv[3:6])
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(features)) + ",label\n")
        for r in range(rows):
            f.write(",".join(f"{rng.uniform(-1, 1):.4f}" for _ in range(features)) + f",{r % classes}\n")
elif cmd == "garbage-csv":
    junk = bytes(b for b in rng.randbytes(600) if b not in (10, 44))
    with open(path, "wb") as f:
        f.write(b"a,b,label\n0.5,0.25,1\n" + junk + b"\n0.1,0.2,0\n")
PY

# --- The harness ----------------------------------------------------------------------------

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

n=0 passed=0 failed=0 skipped=0
table=() details=()
dir="" problems=() observed="" allow_running=0 allow_partial=0 skip_reason="" used_dirs=() run_in=""
declare -A inspected=()

bad() { problems+=("$*"); }
# printable: stdin without invalid UTF-8 and control characters (a hostile input may come back
# in a message as raw bytes).
printable() { iconv -f UTF-8 -t UTF-8 -c 2>/dev/null | LC_ALL=C tr -d '\000-\010\013-\037\177'; }
# obs TEXT: adds to the observed column.
obs() {
  local text
  text=$(printf '%s' "$*" | printable)
  observed+="${observed:+; }$text"
}
skip() { skip_reason=$1; }

# strays: pids of processes that name the scratch directory or run inside it.
strays() {
  local p c
  {
    pgrep -f -- "$work"
    for p in /proc/[0-9]*; do
      c=$(readlink "$p/cwd" 2>/dev/null) || continue
      [[ $c == "$work"/* && ${p#/proc/} != "$$" && ${p#/proc/} != "$BASHPID" ]] && echo "${p#/proc/}"
    done
  } 2>/dev/null | sort -un
}

# tc NAME CATEGORY EXPECTED FUNCTION: runs one case and records its row.
tc() {
  local name=$1 category=$2 expected=$3 fn=$4
  [[ -n $only && ! $name =~ $only ]] && return 0
  n=$((n + 1))
  dir=$work/$(printf '%03d' "$n")-$name
  mkdir -p "$dir"
  problems=() observed="" allow_running=0 allow_partial=0 skip_reason="" used_dirs=("$dir") run_in=""
  local start
  start=$(now)
  "$fn"
  cd "$work" || exit 1
  if [[ -z $skip_reason ]]; then
    # No process may outlive its case (mpirun may still be reaping its ranks for a moment).
    local left p
    left=$(strays)
    if [[ -n $left ]]; then
      sleep 2
      left=$(strays)
      if [[ -n $left ]]; then
        bad "processes left running: $(ps -o pid=,args= -p "$(paste -sd, <<<"$left")" 2>/dev/null | cut -c1-100 | paste -sd'|')"
        for p in $left; do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
      fi
    fi
    local leftovers
    leftovers=$(find "${used_dirs[@]}" -name '*.tmp' 2>/dev/null)
    [[ -n $leftovers ]] && bad "*.tmp left: $(sed "s|$work/||" <<<"$leftovers" | paste -sd' ')"
    if ((!allow_partial)); then
      leftovers=$(find "${used_dirs[@]}" -name '*.partial' 2>/dev/null)
      [[ -n $leftovers ]] && bad "temporary run file left: $(sed "s|$work/||" <<<"$leftovers" | paste -sd' ')"
    fi
    find "${used_dirs[@]}" \( -name '*.tmp' -o -name '*.partial' \) -exec rm -rf {} + 2>/dev/null
    # Every run file not inspected since its last change, except deliberately malformed inputs.
    local file
    while IFS= read -r -d '' file; do
      [[ $(head -c 8 "$file" | od -An -tx1 | tr -d ' \n') == 894844460d0a1a0a ]] || continue
      [[ -n ${inspected[$file]:-} && ${inspected[$file]} == "$(stat -c '%s %y' "$file")" ]] && continue
      inspect "$file"
    done < <(find "${used_dirs[@]}" -name '*.h5' -type f -not -path '*/crafted/*' -print0 2>/dev/null)
  fi
  local seconds verdict
  seconds=$(since "$start")
  if [[ -n $skip_reason ]]; then
    verdict=SKIP
    skipped=$((skipped + 1))
    observed="skipped: $skip_reason"
  elif ((${#problems[@]})); then
    verdict=FAIL
    failed=$((failed + 1))
    local detail="---- $name ($category, ${seconds}s): FAIL"$'\n'
    detail+=$(printf '  problem: %s\n' "${problems[@]}")$'\n'
    local log
    for log in "$dir"/*.log; do
      [[ -f $log ]] || continue
      detail+="  -- ${log#"$dir"/} (last lines):"$'\n'$(tail -n 6 "$log" | printable | cut -c1-220 | sed 's/^/     /')$'\n'
    done
    details+=("$detail")
  else
    verdict=PASS
    passed=$((passed + 1))
  fi
  [[ -n $observed ]] || observed="(nothing observed)"
  table+=("$(printf '%-44s | %-10s | %s | %s | %s' "$name" "$category" "$expected" "${observed//$'\n'/ }" "$verdict")")
  printf '%3d %-4s %5ss  %s\n' "$n" "$verdict" "$seconds" "$name"
}

# cmdline NP ARGS...: sets `cmd`, splitpipe alone (NP 0) or under mpirun -np NP.
cmdline() {
  local np=$1
  shift
  cmd=("$binary" "$@")
  ((np > 0)) && cmd=("$mpiexec" -np "$np" "${mpirun_flags[@]}" "${cmd[@]}")
  return 0
}

# hung CODE SECONDS LIMIT: records a hang (timeout(1) says 124, or 137 after its SIGKILL).
hung() {
  if (($1 == 124)) || { (($1 == 137)) && awk -v s="$2" -v l="$3" 'BEGIN { exit !(s >= l) }'; }; then
    bad "hung: killed by timeout after $3 s (${last_log##*/})"
    obs "HUNG (timeout ${3}s)"
  fi
}

# not_started LOG: the binary could not be started, as while it is being relinked.
not_started() {
  grep -aqE "failed to run command|error while loading shared libraries|unable to launch the specified application|Text file busy" "$1"
}

# sp LOG LIMIT NP ARGS...: one command in $dir (or $run_in), output in $dir/LOG; sets rc, last_log.
# A binary that cannot be started (a rebuild in progress) gets one more try 30 s later.
sp() {
  local log=$1 t=$2 np=$3 start try
  shift 3
  cmdline "$np" "$@"
  last_log=$dir/$log
  for try in 1 2; do
    start=$(now)
    (cd "${run_in:-$dir}" && exec timeout --kill-after=5 "$t" "${cmd[@]}") >"$last_log" 2>&1 </dev/null
    rc=$?
    ((try == 1)) && not_started "$last_log" || break
    echo "     (could not start $binary; retrying in 30 s)"
    sleep 30
  done
  hung "$rc" "$(since "$start")" "$t"
}

# bg LOG LIMIT NP ARGS...: the same in the background; bg_pid is timeout's pid, its child the
# command (splitpipe or mpirun). bg_prefix: words before the command (e.g. env --default-signal=INT).
bg_prefix=()
bg() {
  local log=$1 t=$2 np=$3
  shift 3
  cmdline "$np" "$@"
  bg_log=$dir/$log bg_t=$t bg_start=$(now)
  (cd "${run_in:-$dir}" && exec timeout --kill-after=5 "$t" "${bg_prefix[@]}" "${cmd[@]}") >"$bg_log" 2>&1 </dev/null &
  bg_pid=$!
}
bg_wait() {
  wait "$bg_pid"
  rc=$?
  last_log=$bg_log
  hung "$rc" "$(since "$bg_start")" "$bg_t"
}
# wait_line REGEX [SECONDS]: until the background command's log has a matching line.
wait_line() {
  local i
  for ((i = 0; i < ${2:-20} * 10; i++)); do
    grep -aqE -- "$1" "$bg_log" 2>/dev/null && return 0
    kill -0 "$bg_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# wait_file PATH [SECONDS]: until PATH exists (while the background command runs).
wait_file() {
  local i
  for ((i = 0; i < ${2:-20} * 10; i++)); do
    [[ -e $1 ]] && return 0
    kill -0 "$bg_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
main_pid() { pgrep -P "$bg_pid" | head -n 1; }
# rank_pid R: the splitpipe process of MPI rank R of this case.
rank_pid() {
  local p i
  for ((i = 0; i < 50; i++)); do
    for p in $(pgrep -f -- "$dir"); do
      [[ $(readlink "/proc/$p/exe" 2>/dev/null) == "$binary"?(" (deleted)") ]] || continue
      tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return 0; }
    done
    sleep 0.1
  done
  return 1
}

error_lines() { grep -ac '^splitpipe: error:' "$1"; }
error_line() { grep -a -m1 '^splitpipe: error:' "$1" | cut -c19-; }
no_crash() {  # LOG...: no crash or stack dump
  local log
  for log; do
    grep -aqE 'terminate called|Traceback|Exception raised from|Segmentation fault|frame #|core dumped' "$log" &&
      bad "crash or stack dump in ${log##*/}: $(grep -a -m1 -E 'terminate called|Traceback|Exception raised from|Segmentation fault|frame #|core dumped' "$log" | cut -c1-120)"
  done
  return 0
}
# one_error TEXT...: one error line over all ranks holding every TEXT, and no crash.
one_error() {
  local message count text
  message=$(error_line "$last_log")
  count=$(error_lines "$last_log")
  obs "rc=$rc${message:+: ${message:0:150}}"
  ((count == 1)) || bad "$count lines 'splitpipe: error:', want 1"
  for text; do
    grep -aqF -- "$text" <<<"$message" || bad "error line lacks '$text'"
  done
  no_crash "$last_log"
}
# refused CODES TEXT...: the last command failed with an exit code in CODES ("2", "1|2"), one
# error line over all ranks holding every TEXT, and no crash.
refused() {
  local codes=$1
  shift
  [[ "|$codes|" == *"|$rc|"* ]] || bad "exit code $rc, want $codes"
  one_error "$@"
}
# succeeded: the last command exited 0 with no error line and no crash.
succeeded() {
  obs "rc=$rc"
  ((rc == 0)) || bad "exit code $rc, want 0 ($(error_line "$last_log" | cut -c1-150))"
  local count
  count=$(error_lines "$last_log")
  ((count == 0)) || bad "$count lines 'splitpipe: error:' in a successful run"
  no_crash "$last_log"
}
# failed_run TEXT...: a run that failed after starting: exit != 0, one error line with every TEXT.
failed_run() {
  ((rc != 0)) || bad "exit code 0, want a failure"
  one_error "$@"
}
# interrupted_run: exit 75, at most one error line, no crash.
interrupted_run() {
  obs "rc=$rc"
  ((rc == 75)) || bad "exit code $rc, want 75"
  local count
  count=$(error_lines "$last_log")
  ((count <= 1)) || bad "$count lines 'splitpipe: error:'"
  no_crash "$last_log"
}

# inspect FILE [ATTR...]: reads a run file; sets st (status), rows, ranks, clients and attr[NAME];
# records the generic run-file problems.
declare -A attr=()
inspect() {
  local file=$1 line
  shift
  st="<missing>" rows="-" ranks="" clients=""
  attr=()
  if [[ ! -f $file ]]; then
    return 0
  fi
  while IFS= read -r line; do
    case $line in
      status=*) st=${line#status=} ;;
      rows=*) rows=${line#rows=} ;;
      ranks=*) ranks=${line#ranks=} ;;
      clients=*) clients=${line#clients=} ;;
      attr.*) line=${line#attr.}; attr[${line%%=*}]=${line#*=} ;;
      problem=*) bad "${file#"$work"/}: ${line#problem=}" ;;
    esac
  done < <("$py" "$work/runfile_check.py" "$file" "$allow_running" "$@" 2>&1)
  inspected[$file]=$(stat -c '%s %y' "$file" 2>/dev/null)
}
# runfile FILE STATUS-REGEX ROWS: inspects FILE and checks its status and row count.
runfile() {
  inspect "$1"
  obs "status '${st:0:90}', rows $rows"
  [[ $st =~ $2 ]] || bad "${1##*/}: status '${st:0:150}' does not match /$2/"
  [[ -z ${3:-} || $rows == "$3" ]] || bad "${1##*/}: $rows rows, want $3"
}
no_file() { [[ ! -e $1 ]] || bad "${1#"$work"/} was created"; }
same_bytes() {  # FILE COPY
  cmp -s "$1" "$2" || bad "${1#"$work"/} changed (not byte-identical to its copy from before)"
}
same_tree() {  # DIR COPY
  diff -r "$1" "$2" >/dev/null 2>&1 || bad "${1#"$work"/} changed: $(diff -rq "$1" "$2" 2>&1 | head -n 3 | sed "s|$work/||g" | paste -sd';')"
}

# override BASE-ARRAY-NAME [--name value]...: sets `args` to BASE with each option's value
# replaced (or the option appended): splitpipe refuses an option given twice.
override() {
  local -n base_ref=$1
  shift
  args=("${base_ref[@]}")
  local name value i found
  while (($# >= 2)); do
    name=$1 value=$2 found=0
    shift 2
    for ((i = 0; i < ${#args[@]}; i++)); do
      [[ ${args[i]} == "$name" ]] && { args[i + 1]=$value; found=1; }
    done
    ((found)) || args+=("$name" "$value")
  done
}

# --- Shared run options and fixtures --------------------------------------------------------

tiny=(--dataset synthetic --synthetic-train 64 --synthetic-test 32 --epochs 1)
# Resumable: constant lr, so the schedule does not depend on --epochs.
small=(--dataset synthetic --synthetic-train 256 --synthetic-test 32 --batch-size 32 --lr-schedule constant
  --warmup-epochs 0)
# About 1 s per epoch (512 steps of one sample), for signals that must land mid-run.
slow=(--dataset synthetic --synthetic-train 512 --synthetic-test 32 --batch-size 1 --lr 0.01 --lr-schedule constant
  --warmup-epochs 0)
clients_opts=(--dataset synthetic --synthetic-train 256 --synthetic-test 32 --batch-size 16 --lr-schedule constant
  --warmup-epochs 0 --edge-ranks 2 --client-mode sequential)

# fixture NAME NP ARGS...: a finished run with checkpoints in $work/fx-NAME (run.h5, ck/), made
# once per script run and restored from its pristine copy on every later call. Sets fx.
fixture() {
  local name=$1 np=$2
  shift 2
  fx=$work/fx-$name
  used_dirs+=("$fx")
  if [[ -d $fx.pristine ]]; then
    rm -rf "$fx" && cp -a "$fx.pristine" "$fx"
    return 0
  fi
  if [[ -f $fx.failed ]]; then
    bad "fixture $name could not be made"
    return 1
  fi
  mkdir -p "$fx"
  cmdline "$np" "$@" --output "$fx/run.h5" --checkpoint-dir "$fx/ck"
  local code try
  for try in 1 2; do
    (cd "$fx" && exec timeout --kill-after=5 "$lim" "${cmd[@]}") >"$dir/fixture-$name.log" 2>&1 </dev/null
    code=$?
    ((try == 1)) && not_started "$dir/fixture-$name.log" || break
    sleep 30
  done
  if ((code != 0)); then
    touch "$fx.failed"
    bad "fixture $name: exit $code: $(error_line "$dir/fixture-$name.log" | cut -c1-150)"
    return 1
  fi
  cp -a "$fx" "$fx.pristine"
}
fx_single() { fixture single 0 "${small[@]}" --epochs 2; }
fx_np2() { fixture np2 2 "${small[@]}" --epochs 2; }
fx_clients() { fixture clients 3 "${clients_opts[@]}" --epochs 1; }
# resume_fx LOG NP [--name value]...: resumes the fixture with `small` (clients_opts for the
# clients fixture) overridden by the given options.
resume_fx() {
  local log=$1 np=$2
  shift 2
  if [[ $fx == */fx-clients ]]; then override clients_opts --epochs 2 "$@"; else override small --epochs 2 "$@"; fi
  sp "$log" "$lim" "$np" "${args[@]}" --checkpoint-dir "$fx/ck" --resume
}
# pristine_fx: the fixture's run file and checkpoints are unchanged.
pristine_fx() {
  same_bytes "$fx/run.h5" "$fx.pristine/run.h5"
  same_tree "$fx/ck" "$fx.pristine/ck"
}

existing_text="not a run file: must survive a refused or failed run byte for byte"

# mnist_dir DIR: a valid MNIST-style IDX dataset (64 train, 32 test, 28x28, labels 0-9).
mnist_dir() {
  mkdir -p "$1"
  "$py" "$work/mk.py" idx "$1/train-images-idx3-ubyte" 0,0,8,3 64,28,28 random
  "$py" "$work/mk.py" idx "$1/train-labels-idx1-ubyte" 0,0,8,1 64 labels
  "$py" "$work/mk.py" idx "$1/t10k-images-idx3-ubyte" 0,0,8,3 32,28,28 random
  "$py" "$work/mk.py" idx "$1/t10k-labels-idx1-ubyte" 0,0,8,1 32 labels
}
mnist_run() { sp run.log "$lim" 0 --dataset mnist --data-dir "$dir/data" --epochs 1 --batch-size 32 --output "$dir/run.h5"; }
cifar_dir() {
  mkdir -p "$1"
  local b
  for b in 1 2 3 4 5; do "$py" "$work/mk.py" cifar "$1/data_batch_$b.bin" 4; done
  "$py" "$work/mk.py" cifar "$1/test_batch.bin" 4
}
cifar_run() { sp run.log "$lim" 0 --dataset cifar10 --data-dir "$dir/data" --epochs 1 --batch-size 4 --output "$dir/run.h5"; }
csv_dir() {
  mkdir -p "$1"
  "$py" "$work/mk.py" csv "$1/train.csv" 64 4 3
  "$py" "$work/mk.py" csv "$1/test.csv" 32 4 3
}
csv_run() {
  local np=${1:-0}
  sp run.log "$lim" "$np" --dataset csv --data-dir "$dir/data" --model mlp --epochs 1 --batch-size 16 --output "$dir/run.h5"
}

# ============================================================================================
# config: options and INI files
# ============================================================================================

t_lr_huge() { sp run.log "$lim" 0 "${tiny[@]}" --lr 1e308 --output "$dir/run.h5"; refused 2 "--lr"; no_file "$dir/run.h5"; }
t_link_tiny() {
  sp run.log "$lim" 0 "${tiny[@]}" --link bandwidth=1e-300bit --output "$dir/run.h5"
  refused 2 "--link"
  no_file "$dir/run.h5"
}
t_link_overflow() {
  sp run.log "$lim" 0 "${tiny[@]}" --link bandwidth=1e300Gbit --output "$dir/run.h5"
  refused 2 "--link"
  no_file "$dir/run.h5"
}
t_link_latency() {
  sp run.log "$lim" 0 "${tiny[@]}" --link bandwidth=1Gbit,latency=1e300s --output "$dir/run.h5"
  refused 2 "--link"
  no_file "$dir/run.h5"
}
t_batch_huge() {
  sp run.log "$lim" 0 "${tiny[@]}" --batch-size 4000000000000 --output "$dir/run.h5"
  refused 2 "--batch-size"
  no_file "$dir/run.h5"
}
t_fault_rank_alone() {
  sp run.log "$lim" 0 "${tiny[@]}" --fault-inject rank=1,step=0,mode=crash --output "$dir/run.h5"
  refused 2 "--fault-inject"
  no_file "$dir/run.h5"
}
t_fault_rank_np2() {
  sp run.log "$lim" 2 "${tiny[@]}" --fault-inject rank=2,step=0,mode=exception --output "$dir/run.h5"
  refused 2 "--fault-inject"
  no_file "$dir/run.h5"
}
t_comm_timeout_huge() {
  sp run.log "$lim" 2 "${tiny[@]}" --comm-timeout 1e300 --output "$dir/run.h5"
  if ((rc == 0)); then
    succeeded
    runfile "$dir/run.h5" '^complete$' 1
  else
    refused 2 "--comm-timeout"
    no_file "$dir/run.h5"
  fi
}
t_ini_inline_comment() {
  printf '[train]\nepochs = 2   # two epochs, not "2   # two..."\n' >"$dir/c.ini"
  sp run.log "$lim" 0 --dataset synthetic --synthetic-train 64 --synthetic-test 32 --config "$dir/c.ini" --output "$dir/run.h5"
  succeeded
  runfile "$dir/run.h5" '^complete$' 2
}
t_ini_hash_value() {
  printf '[train]\nepochs = 1\n[run]\noutput = %s/a#b.h5\n' "$dir" >"$dir/c.ini"
  sp run.log "$lim" 0 --dataset synthetic --synthetic-train 64 --synthetic-test 32 --config "$dir/c.ini"
  succeeded
  [[ -f "$dir/a#b.h5" ]] && obs "wrote a#b.h5" || bad "no run file 'a#b.h5'"
  [[ -e "$dir/a" ]] && bad "wrote '$dir/a' instead: the value was cut at '#'"
  [[ -f "$dir/a#b.h5" ]] && runfile "$dir/a#b.h5" '^complete$' 1
}
t_ini_bom() {
  printf '\xef\xbb\xbf[train]\nepochs = 1\n' >"$dir/c.ini"
  sp run.log "$lim" 0 --dataset synthetic --synthetic-train 64 --synthetic-test 32 --config "$dir/c.ini" --output "$dir/run.h5"
  succeeded
  runfile "$dir/run.h5" '^complete$' 1
}
t_ini_unknown_section() {
  printf '[trian]\nepochs = 1\n' >"$dir/c.ini"
  sp run.log "$lim" 0 --dataset synthetic --synthetic-train 64 --synthetic-test 32 --config "$dir/c.ini" --output "$dir/run.h5"
  refused 2 "trian"
  no_file "$dir/run.h5"
}
t_ini_crlf() {
  printf '[train]\r\nepochs = 1\r\n[model]\r\nmodel = mlp\r\n' >"$dir/c.ini"
  sp run.log "$lim" 0 --dataset synthetic --synthetic-train 64 --synthetic-test 32 --config "$dir/c.ini" --output "$dir/run.h5"
  succeeded
  runfile "$dir/run.h5" '^complete$' 1
  inspect "$dir/run.h5" model
  [[ ${attr[model]:-} == mlp ]] || bad "attribute model is '${attr[model]:-}', want 'mlp'"
}
t_ini_nul() {
  printf '[train]\nepo\0chs = 1\n' >"$dir/nul.ini"
  sp run.log "$lim" 0 "${tiny[@]}" --config "$dir/nul.ini" --output "$dir/run.h5"
  refused 2 "nul.ini"
}
t_threads_env() {
  last_log=$dir/run.log
  (cd "$dir" && exec env -u SLURM_CPUS_PER_TASK OMP_NUM_THREADS=lots timeout --kill-after=5 "$lim" "$binary" "${tiny[@]}" \
    --output "$dir/run.h5") >"$last_log" 2>&1 </dev/null
  rc=$?
  hung "$rc" 0 "$lim"
  refused 2 "OMP_NUM_THREADS"
}
t_dry_run_existing() {
  echo "$existing_text" >"$dir/run.h5"
  cp -p "$dir/run.h5" "$dir/before"
  sp run.log "$lim" 0 "${tiny[@]}" --dry-run --output "$dir/run.h5"
  succeeded
  same_bytes "$dir/run.h5" "$dir/before"
}

# ============================================================================================
# data: CSV, IDX and CIFAR-10 files
# ============================================================================================

t_csv_label_100000() {
  csv_dir "$dir/data"
  sed -i '5s/,[0-9]*$/,100000/' "$dir/data/train.csv"
  csv_run
  refused 1 "$dir/data" "100000"
  no_file "$dir/run.h5"
}
t_csv_label_100000_np2() {
  csv_dir "$dir/data"
  sed -i '5s/,[0-9]*$/,100000/' "$dir/data/train.csv"
  csv_run 2
  refused 1 "$dir/data" "100000"
  no_file "$dir/run.h5"
}
t_csv_columns() {
  csv_dir "$dir/data"
  "$py" "$work/mk.py" csv "$dir/data/test.csv" 32 3 3
  csv_run
  refused 1 "test.csv"
}
t_csv_nan() {
  csv_dir "$dir/data"
  sed -i '3s/^[^,]*,/nan,/' "$dir/data/train.csv"
  csv_run
  refused 1 "train.csv" "line 3"
}
t_csv_header_only() {
  csv_dir "$dir/data"
  head -n 1 "$dir/data/test.csv" >"$dir/data/t" && mv "$dir/data/t" "$dir/data/test.csv"
  csv_run
  refused 1 "test.csv" "no data rows"
}
t_csv_garbage() {
  csv_dir "$dir/data"
  "$py" "$work/mk.py" garbage-csv "$dir/data/train.csv"
  csv_run
  refused 1 "train.csv" "line 3"
  local message
  message=$(error_line "$last_log")
  LC_ALL=C grep -aq '[[:cntrl:]]' <<<"$message" && bad "the error line carries control characters from the file"
  LC_ALL=C.UTF-8 grep -qaxv '.*' <<<"$message" && bad "the error line is not valid UTF-8"
}
t_csv_crlf() {
  csv_dir "$dir/data"
  sed -i 's/$/\r/' "$dir/data/train.csv" "$dir/data/test.csv"
  csv_run
  succeeded
  runfile "$dir/run.h5" '^complete$' 1
}
t_idx_shapes() {
  mnist_dir "$dir/data"
  "$py" "$work/mk.py" idx "$dir/data/t10k-images-idx3-ubyte" 0,0,8,3 32,14,14 random
  mnist_run
  refused 1 "28x28" "14x14"
  no_file "$dir/run.h5"
}
t_idx_magic() {
  mnist_dir "$dir/data"
  "$py" "$work/mk.py" idx "$dir/data/train-images-idx3-ubyte" 1,2,8,3 64,28,28 random
  mnist_run
  refused 1 "train-images-idx3-ubyte" "magic"
}
t_idx_label_range() {
  mnist_dir "$dir/data"
  "$py" "$work/mk.py" idx "$dir/data/train-labels-idx1-ubyte" 0,0,8,1 64 labels-bad:5:10
  mnist_run
  refused 1 "train-labels-idx1-ubyte" "label 10"
}
t_idx_huge_dims() {
  mnist_dir "$dir/data"
  "$py" "$work/mk.py" idx "$dir/data/train-images-idx3-ubyte" 0,0,8,3 4294967295,4294967295,28 random 100
  mnist_run
  refused 1 "train-images-idx3-ubyte" "truncated"
}
t_idx_not_gzip() {
  mnist_dir "$dir/data"
  rm "$dir/data/train-images-idx3-ubyte"
  echo "this is not gzip data" >"$dir/data/train-images-idx3-ubyte.gz"
  mnist_run
  refused 1 "train-images-idx3-ubyte.gz"
}
t_idx_empty_test() {
  mnist_dir "$dir/data"
  "$py" "$work/mk.py" idx "$dir/data/t10k-images-idx3-ubyte" 0,0,8,3 0,28,28 random
  "$py" "$work/mk.py" idx "$dir/data/t10k-labels-idx1-ubyte" 0,0,8,1 0 labels
  mnist_run
  refused 1 "test"
  no_file "$dir/run.h5"
}
t_cifar_label() {
  cifar_dir "$dir/data"
  "$py" "$work/mk.py" cifar "$dir/data/data_batch_3.bin" 4 1 10
  cifar_run
  refused 1 "data_batch_3.bin" "label 10"
}
t_data_dir_file() {
  echo "a file, not a directory" >"$dir/notadir"
  sp run.log "$lim" 0 --dataset mnist --data-dir "$dir/notadir" --epochs 1 --output "$dir/run.h5"
  refused 1 "notadir"
}

# ============================================================================================
# filesystem: where run files and checkpoints go
# ============================================================================================

t_output_proc() {
  local target=/proc/splitpipe-adversarial-$$.h5
  sp run.log "$lim" 0 "${tiny[@]}" --output "$target"
  refused 1 "$target"
}
t_output_parents() {
  sp run.log "$lim" 0 "${tiny[@]}" --output "$dir/new/deeper/run.h5"
  succeeded
  runfile "$dir/new/deeper/run.h5" '^complete$' 1
}
t_output_odd_name() {
  local target="$dir/spaces and ünïcödé \$(date) 'quoted' [x].h5"
  sp run.log "$lim" 0 "${tiny[@]}" --output "$target"
  succeeded
  runfile "$target" '^complete$' 1
}
t_overwrite_fail_keeps_old() {
  echo "$existing_text" >"$dir/run.h5"
  cp -p "$dir/run.h5" "$dir/before"
  sp run.log "$lim" 0 "${tiny[@]}" --overwrite --fault-inject rank=0,step=0,mode=exception --output "$dir/run.h5"
  failed_run "fault injected"
  ((rc == 1)) || bad "exit code $rc, want 1"
  same_bytes "$dir/run.h5" "$dir/before"
}
t_overwrite_nonfinite_keeps_old() {
  sp first.log "$lim" 0 "${tiny[@]}" --output "$dir/run.h5"
  cp -p "$dir/run.h5" "$dir/before.h5.copy"
  sp run.log "$lim" 2 --dataset synthetic --synthetic-train 512 --synthetic-test 32 --lr 1e6 --epochs 3 --overwrite \
    --output "$dir/run.h5"
  failed_run "rank 1" "non-finite"
  ((rc == 1)) || bad "exit code $rc, want 1"
  same_bytes "$dir/run.h5" "$dir/before.h5.copy"
}
t_overwrite_replaces() {
  echo "$existing_text" >"$dir/run.h5"
  sp run.log "$lim" 0 "${tiny[@]}" --overwrite --output "$dir/run.h5"
  succeeded
  runfile "$dir/run.h5" '^complete$' 1
}
t_overwrite_in_use() {
  bg first.log "$lim" 2 "${slow[@]}" --epochs 3 --output "$dir/same.h5"
  if ! wait_file "$dir/same.h5" 25; then
    bad "the first run never published same.h5 (after its first epoch)"
  fi
  sp second.log "$lim" 0 "${tiny[@]}" --overwrite --output "$dir/same.h5"
  local still=0
  kill -0 "$bg_pid" 2>/dev/null && still=1
  refused 1 "in use"
  ((still)) || bad "inconclusive: the first run had ended before the second one finished"
  bg_wait
  obs "first run rc=$rc"
  ((rc == 0)) || bad "the first run: exit code $rc, want 0"
  runfile "$dir/same.h5" '^complete$' 3
}
t_ckpt_dir_unwritable() {
  sp run.log "$lim" 0 "${tiny[@]}" --checkpoint-dir /proc/splitpipe-adversarial-ck --output "$dir/run.h5"
  refused "1|2" "/proc/splitpipe-adversarial-ck"
  grep -aq '^epoch 1/' "$last_log" && bad "it trained an epoch before refusing the checkpoint directory"
  no_file "$dir/run.h5"
}
t_ckpt_dir_is_file() {
  echo "$existing_text" >"$dir/ck"
  cp -p "$dir/ck" "$dir/before"
  sp run.log "$lim" 2 "${tiny[@]}" --checkpoint-dir "$dir/ck" --output "$dir/run.h5"
  refused "1|2" "$dir/ck"
  grep -aq '^epoch 1/' "$last_log" && bad "it trained an epoch before refusing the checkpoint directory"
  same_bytes "$dir/ck" "$dir/before"
  no_file "$dir/run.h5"
}
t_disk_full() {
  if [[ $(id -u) != 0 ]]; then
    skip "needs root to mount a small tmpfs"
    return
  fi
  # One checkpoint of this run, measured; the tmpfs holds one and a half of them.
  sp calibrate.log "$lim" 2 "${small[@]}" --epochs 1 --checkpoint-dir "$dir/cal" --output "$dir/cal.h5"
  local one
  one=$(du -sb "$dir/cal" 2>/dev/null | cut -f1)
  if ((rc != 0)) || [[ -z $one ]]; then
    bad "calibration run failed (exit $rc)"
    return
  fi
  local mnt=$dir/full size=$(((one * 3 / 2 / 4096 + 2) * 4096))
  mkdir -p "$mnt"
  if ! mount -t tmpfs -o "size=$size" tmpfs "$mnt" 2>"$dir/mount.err"; then
    skip "cannot mount a tmpfs here ($(head -n 1 "$dir/mount.err"))"
    return
  fi
  mounts+=("$mnt")
  sp run.log "$lim" 2 "${small[@]}" --epochs 3 --checkpoint-dir "$mnt/ck" --output "$dir/run.h5"
  failed_run "No space left on device"
  ((rc == 1)) || bad "exit code $rc, want 1"
  runfile "$dir/run.h5" '^failed: ' ""
  [[ -f $mnt/ck/epoch-0001-step-0000000/COMPLETE ]] || bad "the epoch-1 checkpoint is gone"
  mount -o remount,size=64m "$mnt" || bad "cannot grow the tmpfs"
  sp resume.log "$lim" 2 "${small[@]}" --epochs 3 --checkpoint-dir "$mnt/ck" --resume
  succeeded
  grep -aq "resuming from epoch 2" "$last_log" || bad "did not resume from the epoch-1 checkpoint"
  runfile "$dir/run.h5" '^complete$' 3
  find "$mnt" -name '*.tmp' | grep -aq . && bad "*.tmp left on the full disk"
  find "$mnt" -name '*.tmp' -delete
  cp -a "$mnt/ck" "$dir/ck-copy" 2>/dev/null
  umount "$mnt" && mounts=("${mounts[@]/$mnt/}")
}

# ============================================================================================
# checkpoint: layout, retention, damage
# ============================================================================================

t_ckpt_layout() {
  sp run.log "$lim" 2 "${small[@]}" --epochs 3 --checkpoint-dir "$dir/ck" --output "$dir/run.h5"
  succeeded
  local report
  report=$("$py" - "$dir/ck" <<'PY'
import os, re, sys
root = sys.argv[1]
problems = []
names = sorted(os.listdir(root))
for name in names:
    if not re.fullmatch(r"epoch-\d{4,}-step-\d{7,}", name):
        problems.append(f"unexpected entry {name!r}")
if [n for n in names if n.startswith("epoch-")] != ["epoch-0002-step-0000000", "epoch-0003-step-0000000"]:
    problems.append(f"checkpoints {names}, want the newest 2 (--keep-checkpoints default 2)")
for name in names:
    path = os.path.join(root, name)
    if not os.path.isdir(path):
        continue
    files = sorted(os.listdir(path))
    if files != ["COMPLETE", "MANIFEST", "rank0.pt", "rank1.pt"]:
        problems.append(f"{name}: files {files}")
    try:
        lines = [l.split() for l in open(os.path.join(path, "MANIFEST")).read().splitlines() if l.strip()]
    except OSError as e:
        problems.append(f"{name}: MANIFEST: {e.strerror}")
        continue
    rank_lines = [l for l in lines if any(re.fullmatch(r"rank\d+\.pt", w) for w in l)]
    for rank in ("rank0.pt", "rank1.pt"):
        line = [l for l in rank_lines if rank in l]
        size = os.path.getsize(os.path.join(path, rank)) if os.path.exists(os.path.join(path, rank)) else -1
        if len(line) != 1:
            problems.append(f"{name}: MANIFEST has {len(line)} lines for {rank}")
        elif str(size) not in line[0]:
            problems.append(f"{name}: MANIFEST line {' '.join(line[0])!r} lacks the size {size} of {rank}")
    if len(rank_lines) != 2:
        problems.append(f"{name}: MANIFEST has {len(rank_lines)} rank-file lines, want 2 (one per rank file)")
print("; ".join(problems) if problems else "ok: " + " ".join(names))
PY
)
  obs "${report:0:160}"
  [[ $report == ok:* ]] || bad "layout: $report"
  runfile "$dir/run.h5" '^complete$' 3
}
# only_checkpoint NAME: ck/ holds exactly the checkpoint NAME.
only_checkpoint() {
  local left
  left=$(ls "$dir/ck" 2>/dev/null | paste -sd' ')
  obs "checkpoints: ${left:-none}"
  [[ $left == "$1" ]] || bad "checkpoints '$left', want only $1"
}
t_ckpt_keep_1() {
  sp run.log "$lim" 0 "${small[@]}" --epochs 3 --keep-checkpoints 1 --checkpoint-dir "$dir/ck" --output "$dir/run.h5"
  succeeded
  only_checkpoint epoch-0003-step-0000000
}
t_ckpt_keep_negative() {
  sp run.log "$lim" 0 "${tiny[@]}" --keep-checkpoints -1 --checkpoint-dir "$dir/ck" --output "$dir/run.h5"
  refused 2 "--keep-checkpoints"
  no_file "$dir/run.h5"
}
t_ckpt_flipped_byte() {
  fx_np2 || return
  local file=$fx/ck/epoch-0002-step-0000000/rank1.pt size offset byte
  size=$(stat -c %s "$file")
  offset=$((size / 2))
  byte=$(od -An -tu1 -j "$offset" -N1 "$file" | tr -d ' ')
  printf "$(printf '\\x%02x' $((byte ^ 0x5a)))" | dd of="$file" bs=1 seek="$offset" conv=notrunc status=none
  cp -a "$fx/ck" "$dir/ck-before"
  resume_fx resume.log 2 --epochs 3
  refused "1|2" "rank1.pt"
  same_bytes "$fx/run.h5" "$fx.pristine/run.h5"
  same_tree "$fx/ck" "$dir/ck-before"
}
t_ckpt_truncated() {
  fx_single || return
  local file=$fx/ck/epoch-0002-step-0000000/rank0.pt
  truncate -s $(($(stat -c %s "$file") / 2)) "$file"
  cp -a "$fx/ck" "$dir/ck-before"
  resume_fx resume.log 0 --epochs 3
  refused "1|2" "rank0.pt"
  same_bytes "$fx/run.h5" "$fx.pristine/run.h5"
  same_tree "$fx/ck" "$dir/ck-before"
}
t_ckpt_swapped() {
  fx_np2 || return
  local d=$fx/ck/epoch-0002-step-0000000
  mv "$d/rank0.pt" "$d/swap" && mv "$d/rank1.pt" "$d/rank0.pt" && mv "$d/swap" "$d/rank1.pt"
  resume_fx resume.log 2 --epochs 3
  refused "1|2" "rank"
  error_line "$last_log" | grep -aqE 'rank[01]\.pt' || bad "error line names neither rank0.pt nor rank1.pt"
  same_bytes "$fx/run.h5" "$fx.pristine/run.h5"
}
t_ckpt_incomplete_newest() {
  fx_single || return
  rm "$fx/ck/epoch-0002-step-0000000/COMPLETE"
  resume_fx resume.log 0 --epochs 3
  succeeded
  grep -aq "resuming from epoch 2" "$last_log" || bad "did not resume from the complete epoch-1 checkpoint ($(grep -a -m1 -o 'resuming from epoch [0-9]*' "$last_log"))"
  runfile "$fx/run.h5" '^complete$' 3
}
t_ckpt_numeric_order() {
  fx_single || return
  mv "$fx/ck/epoch-0001-step-0000000" "$fx/ck/epoch-9999-step-0000000"
  mv "$fx/ck/epoch-0002-step-0000000" "$fx/ck/epoch-10000-step-0000000"
  resume_fx resume.log 0 --epochs 3
  # epoch-10000-... (holding epoch 2) is the newest: it resumes at epoch 3, or refuses naming it.
  if ((rc == 0)); then
    succeeded
    grep -aq "resuming from epoch 3" "$last_log" ||
      bad "resumed from the wrong checkpoint ($(grep -a -m1 -o 'resuming from epoch [0-9]*' "$last_log"); epoch-10000 holds epoch 2)"
  else
    refused "1|2" "epoch-10000"
  fi
  error_line "$last_log" | grep -aq "epoch-9999" && bad "chose epoch-9999 over epoch-10000"
}
t_ckpt_world_size() {
  fx_single || return
  resume_fx resume.log 2 --epochs 3
  refused 2
  pristine_fx
}
t_ckpt_every_beyond() {
  sp run.log "$lim" 0 "${small[@]}" --epochs 2 --checkpoint-every 5 --checkpoint-dir "$dir/ck" --output "$dir/run.h5"
  succeeded
  only_checkpoint epoch-0002-step-0000000
}

# ============================================================================================
# resume: what may and may not change
# ============================================================================================

t_resume_other_output() {
  fx_single || return
  resume_fx resume.log 0 --epochs 3 --output "$dir/other.h5"
  refused "1|2" "--output"
  no_file "$dir/other.h5"
  pristine_fx
}
t_resume_same_output_relative() {
  fx_single || return
  run_in=$fx
  resume_fx resume.log 0 --epochs 3 --output run.h5
  succeeded
  runfile "$fx/run.h5" '^complete$' 3
}
t_resume_batch() {
  fx_single || return
  resume_fx resume.log 0 --epochs 3 --batch-size 16
  refused 2 "--batch-size 16 (checkpoint: 32)"
  pristine_fx
}
t_resume_several() {
  fx_single || return
  resume_fx resume.log 0 --epochs 3 --lr 0.1 --seed 7 --chunks 2
  refused 2 "--lr 0.1 (checkpoint: 0.05)" "--seed 7 (checkpoint: 1)" "--chunks 2 (checkpoint: 1)"
  pristine_fx
}
t_resume_codec() {
  fx_np2 || return
  resume_fx resume.log 2 --epochs 3 --fwd-codec fp16
  refused 2 "--fwd-codec fp16 (checkpoint: none)"
  pristine_fx
}
t_resume_data_size() {
  fx_single || return
  resume_fx resume.log 0 --epochs 3 --synthetic-train 128
  refused 2 "--synthetic-train 128 (checkpoint: 256)"
  pristine_fx
}
t_resume_model() {
  fx_single || return
  resume_fx resume.log 0 --epochs 3 --model mlp
  refused 2 "--model mlp (checkpoint: lenet5)"
  pristine_fx
}
t_resume_lr_schedule() {
  fx_single || return
  resume_fx resume.log 0 --epochs 3 --lr-schedule cosine
  refused 2 "--lr-schedule cosine (checkpoint: constant)"
  pristine_fx
}
t_resume_edge_first() {
  fx_np2 || return
  resume_fx resume.log 2 --epochs 3 --edge-first 2
  refused 2 "--edge-first 2 (checkpoint: 1)"
  pristine_fx
}
t_resume_epochs_up() {
  fx_single || return
  resume_fx resume.log 0 --epochs 3
  succeeded
  grep -aq "resuming from epoch 3" "$last_log" || bad "no 'resuming from epoch 3'"
  runfile "$fx/run.h5" '^complete$' 3
}
t_resume_allowed() {
  fx_np2 || return
  resume_fx resume.log 2 --epochs 3 --comm-timeout 30 --progress-every 1 --threads 2 --link bandwidth=1Gbit
  succeeded
  runfile "$fx/run.h5" '^complete$' 3
}
t_resume_epochs_down() {
  fx_single || return
  resume_fx resume.log 0 --epochs 1
  refused 2 "--epochs"
  pristine_fx
}
t_resume_empty_dir() {
  mkdir -p "$dir/ck"
  sp run.log "$lim" 0 "${small[@]}" --epochs 1 --checkpoint-dir "$dir/ck" --resume --output "$dir/run.h5"
  if ((rc == 0)); then
    succeeded
    obs "fresh run"
    runfile "$dir/run.h5" '^complete$' 1
  else
    refused 2 "--resume"
    no_file "$dir/run.h5"
  fi
}
t_resume_run_file_deleted() {
  fx_single || return
  rm "$fx/run.h5"
  resume_fx resume.log 0 --epochs 3
  refused 1 "run.h5"
  no_file "$fx/run.h5"
  same_tree "$fx/ck" "$fx.pristine/ck"
}
t_resume_run_file_garbage() {
  fx_single || return
  echo "$existing_text" >"$fx/run.h5"
  cp -p "$fx/run.h5" "$dir/before"
  resume_fx resume.log 0 --epochs 3
  refused 1 "run.h5"
  same_bytes "$fx/run.h5" "$dir/before"
  same_tree "$fx/ck" "$fx.pristine/ck"
}
t_resume_other_cwd() {
  mkdir -p "$dir/a" "$dir/b"
  run_in=$dir/a
  sp first.log "$lim" 0 "${small[@]}" --epochs 2 --checkpoint-dir ck --output run.h5
  run_in=$dir/b
  sp resume.log "$lim" 0 "${small[@]}" --epochs 3 --checkpoint-dir ../a/ck --resume
  succeeded
  runfile "$dir/a/run.h5" '^complete$' 3
  no_file "$dir/b/run.h5"
}
t_resume_finished() {
  fx_single || return
  resume_fx resume.log 0 --epochs 2
  if ((rc == 0)); then
    succeeded
    runfile "$fx/run.h5" '^complete$' 2
  else
    refused 2 "--epochs"
    pristine_fx
  fi
}

# ============================================================================================
# signal: stops from outside
# ============================================================================================

# mid_run LOG NP ARGS...: starts a slow 2-epoch run (about 1 s an epoch) in the background and
# returns 0.2 s after its first epoch is committed, so a signal lands in epoch 2.
mid_run() {
  local log=$1 np=$2
  shift 2
  bg "$log" "$lim" "$np" "${slow[@]}" --epochs 2 "$@"
  wait_line '^epoch 1/2' 25 || bad "the run never finished its first epoch"
  sleep 0.2
}

# stop_then_resume NP SIGNAL TARGET [no-resume]: SIGNAL to TARGET (main: splitpipe alone or
# mpirun; rankR: that rank only) in epoch 2 of a slow run with checkpoints; then --resume.
stop_then_resume() {
  local np=$1 signal=$2 target=$3 resume=${4:-resume} pid
  mid_run run.log "$np" --checkpoint-dir "$dir/ck" --output "$dir/run.h5"
  if [[ $target == main ]]; then pid=$(main_pid); else pid=$(rank_pid "${target#rank}"); fi
  [[ -n $pid ]] && kill "-$signal" "$pid"
  bg_wait
  interrupted_run
  runfile "$dir/run.h5" '^interrupted: ' 1
  compgen -G "$dir/ck/epoch-*-step-*[1-9]*" >/dev/null ||
    bad "no mid-epoch checkpoint in ck/ ($(ls "$dir/ck" 2>/dev/null | paste -sd' '))"
  [[ $resume == resume ]] || return 0
  sp resume.log "$lim" "$np" "${slow[@]}" --epochs 2 --checkpoint-dir "$dir/ck" --resume
  succeeded
  runfile "$dir/run.h5" '^complete$' 2
}
t_sigterm_single() { stop_then_resume 0 TERM main; }
# Open MPI's mpirun exits 1 on SIGTERM whatever the ranks do (README: prefer SIGUSR1); the
# ranks get it and stop at a step boundary, or finish first: the file is never left running.
t_sigterm_mpirun() {
  mid_run run.log 2 --checkpoint-dir "$dir/ck" --output "$dir/run.h5"
  kill -TERM "$(main_pid)"
  bg_wait
  obs "rc=$rc"
  ((rc != 0 && rc != 124 && rc != 137)) || bad "exit code $rc, want Open MPI's non-zero exit"
  no_crash "$last_log"
  runfile "$dir/run.h5" '^(complete$|interrupted: )'
}
t_sigterm_server_only() { stop_then_resume 2 TERM rank1 no-resume; }
t_sigusr1_twice() {
  mid_run run.log 0 --checkpoint-dir "$dir/ck" --output "$dir/run.h5"
  local pid
  pid=$(main_pid)
  kill -USR1 "$pid"
  sleep 0.05
  kill -USR1 "$pid" 2>/dev/null
  bg_wait
  interrupted_run
  runfile "$dir/run.h5" '^interrupted: ' 1
  [[ $(find "$dir/ck" -mindepth 1 -maxdepth 1 -name 'epoch-*' | wc -l) == 2 ]] ||
    bad "want 2 checkpoints (epoch 1 and the stop), found: $(ls "$dir/ck" 2>/dev/null | paste -sd' ')"
}
t_sigint_single() {
  bg_prefix=(env --default-signal=INT)
  mid_run run.log 0 --checkpoint-dir "$dir/ck" --output "$dir/run.h5"
  bg_prefix=()
  kill -INT "$(main_pid)"
  bg_wait
  obs "rc=$rc"
  [[ $rc == 75 || $rc == 130 ]] || bad "exit code $rc, want 75 (stopped like SIGTERM) or 130"
  no_crash "$last_log"
  runfile "$dir/run.h5" '^(interrupted|failed): ' ""
}
# kill_rank NP RANK SIGNAL [OPTIONS...]: SIGNAL to rank RANK in epoch 2 of a slow run.
kill_rank() {
  local np=$1 rank=$2 signal=$3 pid
  shift 3
  mid_run run.log "$np" --comm-timeout 2 "$@" --output "$dir/run.h5"
  pid=$(rank_pid "$rank")
  if [[ -n $pid ]]; then kill "-$signal" "$pid"; else bad "no rank $rank process found"; fi
  bg_wait
}
t_sigstop_server() {
  kill_rank 2 1 STOP
  failed_run "--comm-timeout"
  runfile "$dir/run.h5" '^failed: ' 1
}
# A SIGKILLed rank prints nothing: mpirun names it ("process rank 1 ... exited on signal 9") and
# ends the others with SIGTERM, then SIGKILL; rank 0 records what it was waiting for meanwhile.
killed_run() {
  obs "rc=$rc"
  ((rc != 0 && rc != 124)) || bad "exit code $rc, want a failure"
  grep -aq "rank $1 .*exited on signal 9" "$last_log" || bad "mpirun's output does not name rank $1 as killed"
}
t_sigkill_server() {
  kill_rank 2 1 KILL
  killed_run 1
  # Rank 0 names rank 1 when it waited for its message, the collective when it was in one; met
  # by mpirun's SIGKILL outside any wait, its file stays running (report: ended without status).
  runfile "$dir/run.h5" '^(failed: .*SIGTERM while waiting for |running$)' 1
}
t_sigkill_edge() {
  allow_running=1 allow_partial=1
  kill_rank 2 0 KILL
  obs "rc=$rc"
  ((rc != 0)) || bad "exit code 0 after rank 0 was killed"
  no_crash "$last_log"
  runfile "$dir/run.h5" '^(running|failed: .*)$' 1
}

# ============================================================================================
# mpi-fault: failures inside the job
# ============================================================================================

t_nonfinite_server() {
  sp run.log "$lim" 2 --dataset synthetic --synthetic-train 512 --synthetic-test 32 --lr 1e6 --epochs 3 --output "$dir/run.h5"
  failed_run "rank 1" "non-finite"
  ((rc == 1)) || bad "exit code $rc, want 1"
  runfile "$dir/run.h5" '^failed: rank 1: ' ""
}
t_exception_server() {
  sp run.log "$lim" 2 "${small[@]}" --epochs 2 --fault-inject rank=1,step=10,mode=exception --output "$dir/run.h5"
  failed_run "rank 1" "fault injected at step 10"
  runfile "$dir/run.h5" '^failed: rank 1: .*fault injected' 1
}
t_crash_server() {
  sp run.log "$lim" 2 "${small[@]}" --epochs 2 --comm-timeout 2 --fault-inject rank=1,step=10,mode=crash --output "$dir/run.h5"
  killed_run 1
  # Rank 0 names rank 1 when it waited for its message, the collective when it was in one; met
  # by mpirun's SIGKILL outside any wait, its file stays running (report: ended without status).
  runfile "$dir/run.h5" '^(failed: .*SIGTERM while waiting for |running$)' 1
}
t_exception_np3_rank2() {
  sp run.log "$lim" 3 "${small[@]}" --epochs 2 --fault-inject rank=2,step=10,mode=exception --output "$dir/run.h5"
  failed_run "rank 2" "fault injected"
  runfile "$dir/run.h5" '^failed: rank 2: ' 1
}
t_exception_edge() {
  sp run.log "$lim" 2 "${small[@]}" --epochs 2 --fault-inject rank=0,step=10,mode=exception --output "$dir/run.h5"
  failed_run "rank 0" "fault injected"
  runfile "$dir/run.h5" '^failed: rank 0: ' 1
}
t_comm_timeout_fraction() {
  sp run.log 15 2 "${small[@]}" --epochs 2 --comm-timeout 0.5 --fault-inject rank=1,step=3,mode=hang --output "$dir/run.h5"
  failed_run "0.5 s" "rank 1"
  runfile "$dir/run.h5" '^failed: .*rank 1' ""
}
t_mpmd_mismatch() {
  last_log=$dir/run.log
  local start
  start=$(now)
  (cd "$dir" && exec timeout --kill-after=5 8 "$mpiexec" "${mpirun_flags[@]}" \
    -np 1 "$binary" --dataset synthetic --synthetic-train 64 --synthetic-test 32 --epochs 1 --output "$dir/run.h5" : \
    -np 1 "$binary" --dataset synthetic --synthetic-train 64 --synthetic-test 32 --epochs 2 --output "$dir/run.h5") \
    >"$last_log" 2>&1 </dev/null
  rc=$?
  hung "$rc" "$(since "$start")" 8
  refused 2
}
t_np3_mlp() {
  sp run.log "$lim" 3 "${tiny[@]}" --model mlp --output "$dir/run.h5"
  succeeded
  runfile "$dir/run.h5" '^complete$' 1
  [[ $ranks == "rank0 rank1 rank2" ]] || bad "/ranks groups '$ranks', want rank0 rank1 rank2"
}

# ============================================================================================
# clients: several edge clients
# ============================================================================================

t_clients_parallel_exception() {
  override clients_opts --client-mode parallel --epochs 2
  sp run.log "$lim" 3 "${args[@]}" --fault-inject rank=1,step=10,mode=exception --output "$dir/run.h5"
  failed_run "rank 1" "fault injected"
  runfile "$dir/run.h5" '^failed: rank 1: ' 1
  [[ $clients == "0 1" ]] || bad "/clients groups '$clients', want 0 1"
}
t_clients_sigkill() {
  kill_rank 3 1 KILL --edge-ranks 2 --client-mode sequential
  killed_run 1
  # Rank 0 may be in a collective then, which cannot name the missing rank.
  runfile "$dir/run.h5" '^failed: ' 1
}
t_clients_skew_tiny_alpha() {
  sp run.log "$lim" 3 "${tiny[@]}" --batch-size 8 --edge-ranks 2 --shard label-skew:alpha=1e-300 --output "$dir/run.h5"
  if ((rc == 0)); then
    succeeded
    runfile "$dir/run.h5" '^complete$' 1
    local samples
    samples=$(HDF5_USE_FILE_LOCKING=FALSE "$py" -c 'import sys, h5py
f = h5py.File(sys.argv[1], "r")
print(" ".join(str(int(f["clients"][c]["samples"][0])) for c in sorted(f["clients"])))' "$dir/run.h5" 2>&1)
    obs "shard samples: $samples"
    [[ $(awk '{ print $1 + $2 }' <<<"$samples") == 64 ]] || bad "the shards do not partition the 64 samples: $samples"
  else
    refused "1|2" "--shard"
    no_file "$dir/run.h5"
  fi
}
t_clients_resume_change() {
  fx_clients || return
  resume_fx resume.log 3 --epochs 3 --client-mode parallel --shard label-skew:alpha=0.5
  refused 2 "--client-mode parallel (checkpoint: sequential)" "--shard label-skew:alpha=0.5 (checkpoint: iid)"
  pristine_fx
}
t_clients_link_impossible() {
  sp run.log "$lim" 0 "${tiny[@]}" --batch-size 16 --edge-ranks 2 --link "bandwidth=10Mbit;bandwidth=1e-300bit" \
    --output "$dir/run.h5"
  refused 2 "--link"
  no_file "$dir/run.h5"
}

# ============================================================================================
# tools: tools/report and tools/sweep
# ============================================================================================

# tool LOG COMMAND...: a Python tool, output in $dir/LOG; sets rc.
tool() {
  local log=$1 start
  shift
  last_log=$dir/$log
  start=$(now)
  (cd "$dir" && exec timeout --kill-after=5 "$lim" "$@") >"$last_log" 2>&1 </dev/null
  rc=$?
  hung "$rc" "$(since "$start")" "$lim"
}
no_traceback() {
  grep -aqE 'Traceback|internal error' "$last_log" && bad "traceback or internal error: $(grep -a -m1 -E 'Traceback|internal error' "$last_log" | cut -c1-150)"
  return 0
}
t_report_rank0_killed() {
  allow_running=1
  mkdir -p "$dir/runs"
  mid_run run.log 2 --comm-timeout 2 --output "$dir/runs/killed.h5"
  local pid
  pid=$(rank_pid 0)
  [[ -n $pid ]] && kill -KILL "$pid"
  bg_wait
  tool report.log "$repo/tools/report" "$dir/runs"
  obs "report rc=$rc: $(grep -a -m1 -o 'ended without status[^|]*' "$last_log")"
  ((rc == 0)) || bad "tools/report exit code $rc"
  grep -aq "ended without status" "$last_log" || bad "tools/report does not say 'ended without status'"
  no_traceback
}
t_report_malformed() {
  local d=$dir/crafted
  mkdir -p "$d"
  sp run.log "$lim" 0 "${tiny[@]}" --output "$d/good.h5"
  echo "$existing_text" >"$d/garbage.h5"
  : >"$d/empty.h5"
  head -c "$(($(stat -c %s "$d/good.h5") / 2))" "$d/good.h5" >"$d/truncated.h5"
  mkdir "$d/directory.h5"
  HDF5_USE_FILE_LOCKING=FALSE "$py" - "$d" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
with h5py.File(f"{d}/noattrs.h5", "w") as f:
    f.create_group("epochs")
with h5py.File(f"{d}/wrongtypes.h5", "w") as f:
    f.attrs["format_version"] = 1
    f.attrs["status"] = 7
    f.attrs["resolved_config"] = np.arange(3)
    f["epochs/test_acc"] = np.array([b"high", b"low"])
    f["epochs/samples_per_second"] = np.array([b"fast"])
    f["ranks/end_block"] = np.array([b"x"])
    f["model/output_shape"] = np.array([1, 2])
PY
  tool report.log "$repo/tools/report" "$d" --out "$dir/report"
  obs "report rc=$rc"
  ((rc == 0)) || bad "tools/report exit code $rc, want 0 (report the good run, list the bad ones)"
  no_traceback
  grep -aE '(^|\| *)good *\|.*complete' "$last_log" >/dev/null || bad "the good run is not reported as complete"
  local name
  for name in garbage empty truncated directory noattrs wrongtypes; do
    grep -aq -- "$name" "$last_log" || bad "bad file $name.h5 is not listed"
  done
}
t_report_non_utf8_name() {
  mkdir -p "$dir/runs"
  sp run.log "$lim" 0 "${tiny[@]}" --output "$dir/runs/good.h5"
  cp "$dir/runs/good.h5" "$dir/runs/$(printf 'bad\xff')name.h5"
  tool report.log "$repo/tools/report" "$dir/runs"
  obs "report rc=$rc: $(grep -a -m1 -E 'error' "$last_log" | cut -c1-120)"
  ((rc == 0)) || bad "tools/report exit code $rc, want 0"
  no_traceback
  grep -aq "good" "$last_log" || bad "the good run is not reported"
}
t_report_empty_dir() {
  mkdir -p "$dir/runs"
  tool report.log "$repo/tools/report" "$dir/runs"
  obs "report rc=$rc: $(grep -a -m1 'report: error' "$last_log" | cut -c1-120)"
  ((rc == 2)) || bad "exit code $rc, want 2"
  [[ $(grep -c '^report: error:' "$last_log") == 1 ]] || bad "want one 'report: error:' line"
  no_traceback
}
t_sweep_non_utf8() {
  printf '[sweep]\nname = adv\n[base]\ndataset = synthetic\n# caf\xe9 \xff\xfe\n[axes]\nepochs = 1, 2\n' >"$dir/sweep.ini"
  tool sweep.log "$repo/tools/sweep" "$dir/sweep.ini" --dry-run --check single --results "$dir/results" --splitpipe "$binary"
  obs "sweep rc=$rc: $(grep -a -m1 'sweep: error' "$last_log" | cut -c1-120)"
  ((rc == 2)) || bad "exit code $rc, want 2 (a bad sweep file)"
  grep -aq '^sweep: error:' "$last_log" || bad "no 'sweep: error:' line"
  no_traceback
  no_file "$dir/results"
}
t_sweep_lr_1e308() {
  printf '[sweep]\nname = adv\nranks = 1\n[base]\ndataset = synthetic\nsynthetic-train = 64\nsynthetic-test = 32\nepochs = 1\n[axes]\nlr = 0.05, 1e308\n' >"$dir/sweep.ini"
  tool sweep.log "$repo/tools/sweep" "$dir/sweep.ini" --dry-run --check single --results "$dir/results" --splitpipe "$binary"
  obs "sweep rc=$rc: $(grep -a -m1 'point lr-1e308' "$last_log" | sed 's/^ *//' | cut -c1-140)"
  ((rc == 2)) || bad "exit code $rc, want 2"
  grep -aE 'lr-1e308.*--lr' "$last_log" >/dev/null || bad "the refused point lr=1e308 is not reported with its option --lr"
  no_traceback
  no_file "$dir/results"
}

# ============================================================================================
# The table
# ============================================================================================

echo "splitpipe adversarial table: $binary; mpiexec $mpiexec ${mpirun_flags[*]}; scratch $work"
table_start=$(now)

tc lr-1e308 config "--lr 1e308 is refused up front: exit 2, one error naming --lr" t_lr_huge
tc link-bandwidth-1e-300bit config "--link bandwidth=1e-300bit is refused up front: exit 2 naming --link" t_link_tiny
tc link-bandwidth-overflow config "--link bandwidth=1e300Gbit (infinite bit/s) is refused: exit 2 naming --link" t_link_overflow
tc link-latency-1e300s config "--link latency=1e300s is refused: exit 2 naming --link" t_link_latency
tc batch-size-huge config "--batch-size 4e12 is refused up front: exit 2 naming --batch-size" t_batch_huge
tc fault-inject-missing-rank-alone config "--fault-inject rank=1 in a 1-process run is refused: exit 2 naming --fault-inject" t_fault_rank_alone
tc fault-inject-missing-rank-np2 config "--fault-inject rank=2 under mpirun -np 2 is refused: exit 2 naming --fault-inject, no run file" t_fault_rank_np2
tc comm-timeout-1e300 config "--comm-timeout 1e300 completes (or is refused naming it), never a spurious timeout" t_comm_timeout_huge
tc ini-inline-comment config "INI 'epochs = 2  # ...' strips the comment: 2 epochs run" t_ini_inline_comment
tc ini-hash-inside-value config "INI 'output = .../a#b.h5' keeps the '#': the run file is a#b.h5" t_ini_hash_value
tc ini-utf8-bom config "an INI file starting with a UTF-8 BOM works" t_ini_bom
tc ini-unknown-section config "INI section [trian] is refused: exit 2 naming it" t_ini_unknown_section
tc ini-crlf-line-ends config "an INI file with CRLF line ends works and 'model = mlp\\r' means mlp" t_ini_crlf
tc ini-nul-byte config "an INI file with a NUL byte is refused: exit 2, one error naming the file" t_ini_nul
tc omp-num-threads-garbage config "OMP_NUM_THREADS=lots is refused: exit 2 naming the variable" t_threads_env
tc dry-run-existing-output config "--dry-run with an existing --output exits 0 and leaves the file byte-identical" t_dry_run_existing

tc csv-label-100000 data "a CSV label of 100000 is refused at load: exit 1 naming the data and the label" t_csv_label_100000
tc csv-label-100000-np2 data "the same under mpirun -np 2: one error line over both ranks, exit 1" t_csv_label_100000_np2
tc csv-feature-count-mismatch data "test.csv with 3 features against train.csv's 4 is refused: exit 1 naming test.csv" t_csv_columns
tc csv-nan-cell data "a 'nan' cell is refused: exit 1 naming train.csv, line 3" t_csv_nan
tc csv-header-only data "a test.csv with only a header is refused: exit 1, 'no data rows'" t_csv_header_only
tc csv-binary-garbage data "a line of random bytes is refused: exit 1 naming line 3, in a printable UTF-8 message" t_csv_garbage
tc csv-crlf-with-header data "a CSV with CRLF line ends and a header row trains" t_csv_crlf
tc idx-train-test-shapes-differ data "28x28 train and 14x14 test images are refused at load: exit 1 naming both shapes" t_idx_shapes
tc idx-bad-magic data "an IDX file with a bad magic number is refused: exit 1 naming it" t_idx_magic
tc idx-label-out-of-range data "label byte 10 for 10 classes is refused: exit 1 naming the labels file" t_idx_label_range
tc idx-huge-header-dims data "an IDX header with absurd dimensions is refused as truncated at once: exit 1" t_idx_huge_dims
tc idx-gz-not-gzip data "a .gz that is not gzip is refused: exit 1 naming it" t_idx_not_gzip
tc idx-empty-test-split data "an empty test split is refused at load: exit 1 saying so (no NaN accuracy)" t_idx_empty_test
tc cifar-label-10 data "a CIFAR record with label 10 is refused: exit 1 naming the file" t_cifar_label
tc data-dir-is-a-file data "--data-dir naming a regular file is refused: exit 1 naming it" t_data_dir_file

tc output-in-proc filesystem "--output under /proc is refused: exit 1 naming the path" t_output_proc
tc output-missing-parents filesystem "--output in missing directories creates them and completes" t_output_parents
tc output-odd-name filesystem "--output with spaces, quotes, \$() and UTF-8 in its name completes" t_output_odd_name
tc overwrite-failed-epoch1-keeps-old filesystem "--overwrite by a run failing in epoch 1 leaves the old file byte-identical, no temporary left" t_overwrite_fail_keeps_old
tc overwrite-nonfinite-np2-keeps-old filesystem "--overwrite by a 2-rank run hitting NaN in epoch 1 leaves the old run file byte-identical" t_overwrite_nonfinite_keeps_old
tc overwrite-replaces-garbage filesystem "--overwrite of a non-HDF5 file by a good run leaves a complete run file, no temporary" t_overwrite_replaces
tc overwrite-while-running filesystem "--overwrite of a run file still being written is refused ('in use'); the first run completes" t_overwrite_in_use
tc checkpoint-dir-unwritable filesystem "--checkpoint-dir under /proc is refused before training, no run file" t_ckpt_dir_unwritable
tc checkpoint-dir-is-a-file filesystem "--checkpoint-dir naming a regular file is refused before training; the file is untouched" t_ckpt_dir_is_file
tc disk-full-checkpoint filesystem "a full disk while checkpointing: exit 1 'No space left on device', no .tmp, the previous checkpoint resumes" t_disk_full

tc checkpoint-layout-manifest checkpoint "3 epochs on 2 ranks leave epoch-0002/0003 dirs with rank0.pt, rank1.pt, MANIFEST (size per file), COMPLETE" t_ckpt_layout
tc keep-checkpoints-1 checkpoint "--keep-checkpoints 1 keeps only the newest checkpoint" t_ckpt_keep_1
tc keep-checkpoints-negative checkpoint "--keep-checkpoints -1 is refused: exit 2 naming it" t_ckpt_keep_negative
tc checkpoint-flipped-byte checkpoint "a flipped byte in rank1.pt is refused on resume naming that file; nothing changes" t_ckpt_flipped_byte
tc checkpoint-truncated checkpoint "a truncated rank0.pt is refused on resume naming that file; nothing changes" t_ckpt_truncated
tc checkpoint-swapped-rank-files checkpoint "rank0.pt and rank1.pt swapped are refused on resume naming one of them" t_ckpt_swapped
tc checkpoint-incomplete-newest checkpoint "a newest checkpoint without COMPLETE is skipped: resume from epoch 2 and complete" t_ckpt_incomplete_newest
tc checkpoint-numeric-order checkpoint "epoch-10000-step-0000000 is newer than epoch-9999-step-0000000" t_ckpt_numeric_order
tc checkpoint-world-size-changed checkpoint "a 1-process checkpoint resumed on 2 ranks is refused: exit 2, nothing changes" t_ckpt_world_size
tc checkpoint-every-beyond-epochs checkpoint "--checkpoint-every 5 with 2 epochs still checkpoints the last epoch" t_ckpt_every_beyond

tc resume-other-output resume "--resume with another --output is refused naming --output (exit 1 or 2), nothing written" t_resume_other_output
tc resume-same-output-relative resume "--resume with --output naming the same file by a relative path is accepted" t_resume_same_output_relative
tc resume-batch-size resume "--resume with --batch-size 16 is refused listing '--batch-size 16 (checkpoint: 32)'" t_resume_batch
tc resume-several-changes resume "--resume changing lr, seed, chunks is refused in one message listing all three" t_resume_several
tc resume-codec resume "--resume with another --fwd-codec is refused listing it" t_resume_codec
tc resume-dataset-size resume "--resume with another --synthetic-train is refused listing it" t_resume_data_size
tc resume-model resume "--resume with another --model is refused listing it" t_resume_model
tc resume-lr-schedule resume "--resume with another --lr-schedule is refused listing it" t_resume_lr_schedule
tc resume-partition resume "--resume with another --edge-first is refused listing it" t_resume_edge_first
tc resume-epochs-up resume "--resume with --epochs 3 after 2 continues: 3 rows, complete" t_resume_epochs_up
tc resume-allowed-options resume "--resume may change --comm-timeout, --progress-every, --threads, --link (and raise --epochs)" t_resume_allowed
tc resume-epochs-down resume "--resume with --epochs 1 below the checkpoint's 2 is refused naming --epochs" t_resume_epochs_down
tc resume-empty-checkpoint-dir resume "--resume with an empty checkpoint dir: a fresh run (exit 0) or exit 2 naming --resume" t_resume_empty_dir
tc resume-run-file-deleted resume "--resume after the run file was deleted is refused: exit 1 naming it" t_resume_run_file_deleted
tc resume-run-file-garbage resume "--resume onto a run file replaced by text is refused: exit 1, the file untouched" t_resume_run_file_garbage
tc resume-other-working-dir resume "--resume from another directory appends to the run file the checkpoint names" t_resume_other_cwd
tc resume-finished-run resume "--resume of a finished run with the same --epochs: a no-op (exit 0, 2 rows) or exit 2 naming --epochs" t_resume_finished

tc sigterm-single signal "SIGTERM to one process in epoch 2: exit 75, status interrupted, mid-epoch checkpoint; resume completes" t_sigterm_single
tc sigterm-mpirun signal "SIGTERM to mpirun mid-run: Open MPI exits non-zero; status complete or interrupted, never running" t_sigterm_mpirun
tc sigterm-server-rank-only signal "SIGTERM to rank 1 alone: the whole job stops with exit 75, status interrupted and a mid-epoch checkpoint" t_sigterm_server_only
tc sigusr1-twice signal "two SIGUSR1 50 ms apart: exit 75, status interrupted, exactly one stop checkpoint" t_sigusr1_twice
tc sigint-single signal "SIGINT (Ctrl-C) mid-run: exit 75 or 130 and a status other than running" t_sigint_single
tc sigstop-server signal "SIGSTOP of rank 1: the job gives up after --comm-timeout with one error, status failed, nothing left running" t_sigstop_server
tc sigkill-server signal "SIGKILL of rank 1 mid-run: exit != 0, mpirun names rank 1, status 'failed: ...', nothing left running" t_sigkill_server
tc sigkill-edge signal "SIGKILL of rank 0 mid-run: exit != 0, rank 1 does not linger, the file keeps equal row counts" t_sigkill_edge

tc nonfinite-on-server mpi-fault "--lr 1e6 on 2 ranks: exit 1, error naming rank 1, status 'failed: rank 1: ...' without backtrace" t_nonfinite_server
tc exception-on-server mpi-fault "an exception on rank 1 in epoch 2: status 'failed: rank 1: ...', 1 row everywhere" t_exception_server
tc crash-of-server mpi-fault "rank 1 SIGKILLs itself in epoch 2: mpirun names rank 1, status 'failed: ...', 1 row" t_crash_server
tc exception-rank2-of-3 mpi-fault "an exception on rank 2 of 3: status 'failed: rank 2: ...'" t_exception_np3_rank2
tc exception-on-edge mpi-fault "an exception on rank 0 of 2: status 'failed: rank 0: ...'" t_exception_edge
tc comm-timeout-fraction mpi-fault "--comm-timeout 0.5 and a hung rank 1: the message says '0.5 s' and names rank 1" t_comm_timeout_fraction
tc mpmd-different-options mpi-fault "ranks started with different --epochs (mpirun A : B) are refused: exit 2, no hang" t_mpmd_mismatch
tc np3-mlp-run-file mpi-fault "mlp over 3 ranks completes with /ranks/rank0..2 and equal row counts" t_np3_mlp

tc clients-parallel-exception clients "an exception on client 1 (parallel): status 'failed: rank 1: ...', /clients/0,1 with 1 row" t_clients_parallel_exception
tc clients-sigkill-client clients "SIGKILL of client rank 1 (sequential): mpirun names rank 1, status failed, nothing left running" t_clients_sigkill
tc clients-skew-alpha-1e-300 clients "--shard label-skew:alpha=1e-300 trains on shards that partition the data (or is refused naming --shard)" t_clients_skew_tiny_alpha
tc clients-resume-mode-and-shard clients "--resume changing --client-mode and --shard is refused listing both" t_clients_resume_change
tc clients-link-impossible clients "a per-client link of 1e-300 bit/s is refused: exit 2 naming --link" t_clients_link_impossible

tc report-rank0-killed tools "tools/report on a run whose rank 0 was SIGKILLed says 'ended without status'" t_report_rank0_killed
tc report-malformed-files tools "tools/report on a dir of malformed .h5 files reports the good run and lists the bad, no traceback" t_report_malformed
tc report-non-utf8-filename tools "tools/report with a file name that is not UTF-8 still reports, exit 0, no traceback" t_report_non_utf8_name
tc report-empty-dir tools "tools/report on a dir without run files: exit 2, one 'report: error:' line" t_report_empty_dir
tc sweep-non-utf8-file tools "tools/sweep on a sweep file that is not UTF-8: exit 2, one error, nothing written" t_sweep_non_utf8
tc sweep-point-lr-1e308 tools "tools/sweep --dry-run with a point lr=1e308: exit 2 naming the point and --lr" t_sweep_lr_1e308

seconds=$(since "$table_start")
((n > 0)) || { echo "no case matches ADVERSARIAL_ONLY='$only'"; exit 1; }
echo
echo "case | category | expected | observed | PASS/FAIL"
printf '%s\n' "${table[@]}"
if ((${#details[@]})); then
  echo
  echo "Failures:"
  printf '%s\n' "${details[@]}"
fi
echo
ran=$((passed + failed))
echo "$passed/$ran passed$( ((skipped)) && echo " ($skipped skipped)") in ${seconds}s"
((failed == 0))
