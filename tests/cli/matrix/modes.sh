#!/usr/bin/env bash
# Reliability end to end in one client mode (tests/cli/reliability.sh, generalised to every
# mode of the run driver), with small synthetic data (512 training samples, batch 32):
#   single      mpirun -np 2                                           rank 0 edge, rank 1 server
#   sequential  mpirun -np 3 --edge-ranks 2 --client-mode sequential   ranks 0,1 clients, rank 2 server
#   parallel    mpirun -np 3 --edge-ranks 2 --client-mode parallel     ranks 0,1 clients, rank 2 server
#   loss-on-server  mpirun -np 2 --edge-last 0                         rank 0 edge, rank 1 server with
#               the head and the loss (labels sent to it, loss and predictions sent back)
# Steps (optimizer steps, or rounds in parallel mode) per epoch: 16, 16, 8 (checked against the
# "<N> steps/epoch" line rank 0 prints). Checks:
#   0. the uninterrupted reference run completes with 4 rows in every table;
#   1. a run whose server is SIGKILLed in the middle of epoch 3 (step 2*steps + steps/2), resumed
#      from its epoch-2 checkpoint, ends with weights (digest per rank) and per-epoch losses
#      (train, test, per client) bit-identical to the reference run, status complete and 4 rows
#      in /epochs, /confusion, every /clients/<c> and every /ranks/rank<r> (the killed run's
#      file says "failed: ...": rank 0 records mpirun's SIGTERM and what it waited for);
#   2. a long run stopped by SIGUSR1 mid-epoch exits 75 with a checkpoint and status
#      "interrupted..."; resumed, it ends bit-identical to an uninterrupted run;
#   3. every fault-injection mode (crash, exception, hang) on the server and on a client (rank 0
#      in single mode, rank 1 otherwise) at step 2*steps + 3*steps/4 (epoch 3; in sequential
#      mode inside client 1's turn): exit != 0 and not a timeout, the expected message (one
#      "splitpipe: error: rank R:" line), no rank left once mpirun returns, within the
#      reference run's time + --comm-timeout + 10 s, and a readable run file with the 2
#      completed epochs and status != complete. Hangs run last (each costs the 5 s timeout);
#   4. (run before 3) --server-split time with one more rank (2 servers) completes, and /ranks
#      holds the plan's server stages and every rank's forward and step time.
#
# Usage: modes.sh <splitpipe binary> <mpiexec> "<mpirun flags>" [single|sequential|parallel|loss-on-server]
set -u
mode=${4:-single}

# shellcheck source=../lib/checks.sh
source "$(dirname "$0")/../lib/checks.sh" "modes_$mode" "$@"
cd "$work" || exit 1
py=/usr/bin/python3

case $mode in
  single) np=2 server=1 client=0 clients=1 expected_steps=16 extra=() ;;
  loss-on-server) np=2 server=1 client=0 clients=1 expected_steps=16 extra=(--edge-last 0) ;;
  sequential) np=3 server=2 client=1 clients=2 expected_steps=16 extra=(--edge-ranks 2 --client-mode sequential) ;;
  parallel) np=3 server=2 client=1 clients=2 expected_steps=8 extra=(--edge-ranks 2 --client-mode parallel) ;;
  *)
    echo "usage: $0 <splitpipe binary> <mpiexec> \"<mpirun flags>\" [single|sequential|parallel|loss-on-server]" >&2
    exit 2
    ;;
esac
echo "== mode $mode: mpirun -np $np ${extra[*]} (server rank $server, client rank $client)"

comm_timeout=5
data=(--dataset synthetic --synthetic-train 512 --synthetic-test 128 --batch-size 32 --chunks 2 --schedule 1f1b
  --comm-timeout "$comm_timeout")
common=("${data[@]}" --epochs 4)
# A long epoch for SIGUSR1: 625 steps (312 rounds in parallel mode); the signal lands in it.
long=(--dataset synthetic --synthetic-train 20000 --synthetic-test 64 --batch-size 32 --epochs 1
  --chunks 2 --comm-timeout "$comm_timeout" --lr 0.01)

# check NAME STATUS [LOG...]: "ok" or a failure (STATUS != 0), printing the logs of the runs
# behind it. Capture STATUS before the call where NAME holds a command substitution: it sets $?.
# same NAME VALUE EXPECTED [LOG...]: the same, passing when VALUE is non-empty and EXPECTED.
check() { verdict "$1" "$2" no "" "" "${@:3}"; }
same() {
  [[ -n $2 && $2 == "$3" ]]
  verdict "$1" $? yes "$2" "$3" "${@:4}"
}
verdict() {  # NAME STATUS SHOW-VALUES(yes|no) VALUE EXPECTED LOG...
  local name=$1 status=$2 show=$3 value=$4 expected=$5 log
  shift 5
  if [[ $status -eq 0 ]]; then
    echo "ok    $name"
    return
  fi
  fail "$name"
  [[ $show == yes ]] && printf '      got:      %s\n      expected: %s\n' "${value:-<nothing>}" "${expected:-<nothing>}"
  for log; do
    echo "---- $log:"
    cat "$log"
    echo "---- end of $log"
  done
}

# run LOG ARGS...: the binary under mpirun with this mode's ranks and options, at most 120 s.
run() {
  local log=$1
  shift
  timeout --kill-after=5 120 "$mpiexec" -np "$np" "${mpirun_flags[@]}" "$binary" "${extra[@]}" "$@" \
    >"$log" 2>&1 </dev/null
}

# h5 FILE EXPRESSION: prints EXPRESSION evaluated with f, the run file open for reading (text(x)
# turns an attribute into str); prints nothing when the file or the expression cannot be read.
h5() {
  "$py" - "$@" 2>/dev/null <<'PY'
import sys
import h5py

def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)

def counter(f, rank, name):
    """Column `name` of /ranks/rank<rank>/counters, one value per epoch."""
    table = f[f"ranks/rank{rank}/counters"]
    return table[:, [text(c) for c in table.attrs["columns"]].index(name)]

with h5py.File(sys.argv[1], "r") as f:
    print(eval(sys.argv[2]))
PY
}
digest() { h5 "$1" "text(f.attrs['weights_digest'])"; }
status_of() { h5 "$1" "text(f.attrs['status'])"; }
epoch_rows() { h5 "$1" "len(f['epochs/epoch'])"; }
# Per-epoch losses: /epochs train and test, then every client's.
# Per-epoch losses and the pipeline traffic (bytes and messages per boundary, training and test
# pass): a resumed run must reproduce them exactly, the interrupted epoch included.
losses() {
  h5 "$1" "{'train': f['epochs/train_loss'][:].tolist(), 'test': f['epochs/test_loss'][:].tolist(),
            **{'client ' + c: f['clients'][c]['loss'][:].tolist() for c in sorted(f['clients'], key=int)},
            'traffic': [f['boundaries/traffic'][:, :, i].tolist()
                        for i, c in enumerate(f['boundaries/traffic'].attrs['columns'])
                        if text(c).endswith(('_bytes', '_messages'))]}"
}
train_losses() { h5 "$1" "[round(x, 4) for x in f['epochs/train_loss'][:].tolist()]"; }

# tables FILE ROWS: prints the row count of /epochs, /confusion, /clients/<c> (c = 0..clients-1)
# and /ranks/rank<r> (r = 0..np-1); fails unless each is ROWS, every table's columns have equal
# lengths, the contract's columns exist and no other client group is there.
tables() {
  "$py" - "$1" "$2" "$clients" "$np" 2>&1 <<'PY'
import sys
import h5py

path, rows, clients, ranks = sys.argv[1], *map(int, sys.argv[2:])
columns = {
    "epochs": ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_seconds", "train_seconds",
               "steps", "train_samples", "samples_per_second", "skipped_steps", "edge_sync_seconds", "edge_sync_bytes",
               "train_wire_bytes", "train_raw_bytes", "eval_wire_bytes", "act_compression", "grad_compression",
               "bubble_fraction", "simulated_bubble_fraction", "peak_rss_bytes"],
    "clients": ["epoch", "samples", "loss", "accuracy", "train_seconds", "edge_sync_seconds", "edge_sync_bytes",
                "sent_bytes", "received_bytes", "link_wait_seconds"],
}
ok, counts = True, []
try:
    with h5py.File(path, "r") as f:
        groups = ["epochs"] + [f"clients/{c}" for c in range(clients)] + [f"ranks/rank{r}" for r in range(ranks)]
        for name in groups:
            if name not in f:
                counts.append(f"{name} missing")
                ok = False
                continue
            lengths = sorted({len(d) for d in f[name].values() if isinstance(d, h5py.Dataset)})
            missing = [c for c in columns.get(name.split("/")[0], []) if c not in f[name]]
            counts.append(f"{name} {lengths[0] if len(lengths) == 1 else lengths}"
                          + (f" (no {', '.join(missing)})" if missing else ""))
            ok = ok and lengths == [rows] and not missing
        confusion = f["confusion"].shape[0] if "confusion" in f else "missing"
        counts.append(f"confusion {confusion}")
        ok = ok and confusion == rows
        traffic = f["boundaries/traffic"].shape[0] if "boundaries/traffic" in f else "missing"
        counts.append(f"boundaries/traffic {traffic}")
        ok = ok and traffic == rows
        others = sorted(set(f["clients"]) - {str(c) for c in range(clients)}) if "clients" in f else []
        if others:
            counts.append(f"unexpected clients/{', clients/'.join(others)}")
            ok = False
except Exception as e:  # an unreadable file is a failed check, not a crash of the script
    counts.append(f"unreadable: {e}")
    ok = False
print(", ".join(counts))
sys.exit(0 if ok else 1)
PY
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
at_most() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

# leftovers PATTERN: prints and SIGKILLs (by pid) the processes whose command line holds
# PATTERN (a run's unique --output path); fails when there were any.
leftovers() {
  local pids
  pids=$(pgrep -f -- "$1") || return 0
  sleep 1  # mpirun may return while it still reaps its ranks
  pids=$(pgrep -f -- "$1") || return 0
  echo "      left running: $(paste -sd ' ' <<<"$pids")"
  echo "$pids" | xargs kill -KILL 2>/dev/null
  return 1
}

# --- 0. the reference run -------------------------------------------------------------------
start=$(now)
run ref.log "${common[@]}" --output ref.h5 --checkpoint-dir ck_ref
rc=$?
ref_seconds=$(since "$start")
status=$(status_of ref.h5)
[[ $rc -eq 0 && $status == complete ]]
check "uninterrupted reference run completes (exit $rc, ${ref_seconds}s, status '${status:-unreadable}')" $? ref.log
printed=$(grep -Eo '[0-9]+ steps/epoch' ref.log | head -n 1 | cut -d' ' -f1)
same "rank 0 prints $expected_steps steps/epoch (printed: ${printed:-none})" "$printed" "$expected_steps" ref.log
steps=${printed:-$expected_steps}
kill_step=$((2 * steps + steps / 2))
fault_step=$((2 * steps + 3 * steps / 4))
echo "      steps/epoch $steps: server SIGKILL at step $kill_step, injected faults at step $fault_step"
counts=$(tables ref.h5 4)
check "reference run file: 4 rows everywhere ($counts)" $?
samples=$(h5 ref.h5 "sorted({int(x) for c in f['clients'] for x in f['clients'][c]['samples'][:]})")
same "every client trains on $((512 / clients)) samples per epoch (${samples:-unreadable})" "$samples" "[$((512 / clients))]"
if [[ $mode != single && $mode != loss-on-server ]]; then
  attrs=$(h5 ref.h5 "text(f['options'].attrs['client-mode']) + ' ' + text(f['options'].attrs['edge-ranks'])")
  same "run file says client_mode $mode, edge_ranks 2 (${attrs:-unreadable})" "$attrs" "$mode 2"
fi
if [[ $mode == loss-on-server ]]; then
  # Per epoch: 512 labels of 8 B to the server; back, 8 B per prediction + 24 B per step.
  labels=$(h5 ref.h5 "sorted({int(x) for x in f['epochs']['train_label_bytes'][:]})")
  same "labels and results on the wire: 512*8 + 512*8 + $steps*24 B per epoch (${labels:-unreadable})" "$labels" \
    "[$((512 * 16 + steps * 24))]"
  correct=$(h5 ref.h5 "int(f['confusion'][-1].trace()) == round(f['epochs']['test_acc'][-1] * 128)")
  same "the edge's confusion matrix agrees with the server's test accuracy (${correct:-unreadable})" "$correct" True
fi
ref_digest=$(digest ref.h5)
ref_losses=$(losses ref.h5)
echo "      reference digest ${ref_digest:-none}, train losses $(train_losses ref.h5)"

# --- 1. SIGKILL of the server in epoch 3, and resume ----------------------------------------
run killed.log "${common[@]}" --output killed.h5 --checkpoint-dir ck_killed \
  --fault-inject "rank=$server,step=$kill_step,mode=crash"
rc=$?
leftovers "$work/killed.h5" >/dev/null
[[ $rc -ne 0 && $rc -ne 124 ]]
check "server (rank $server) SIGKILLed at step $kill_step: exit $rc" $? killed.log
rows=$(epoch_rows killed.h5) status=$(status_of killed.h5)
[[ $rows == 2 && $status == "failed: "* ]]
check "killed run's file readable: ${rows:-no} rows in /epochs (want 2), status '${status:-unreadable}' (want failed: ...)" $? killed.log
run resumed.log "${common[@]}" --checkpoint-dir ck_killed --resume
rc=$?
check "--resume from the epoch-2 checkpoint completes (exit $rc)" $rc resumed.log
line=$(grep -o 'resuming from epoch [0-9]*[^,]*' resumed.log | head -n 1)
grep -q "resuming from epoch 3" resumed.log
check "prints \"resuming from epoch 3\" (${line:-no resuming line})" $? resumed.log
same "resumed run file status complete" "$(status_of killed.h5)" complete resumed.log
same "resumed weights bit-identical to uninterrupted (digest $(digest killed.h5))" "$(digest killed.h5)" "$ref_digest" \
  resumed.log
same "resumed per-epoch losses (train, test, per client) and traffic bit-identical" "$(losses killed.h5)" "$ref_losses" resumed.log
counts=$(tables killed.h5 4)
check "resumed run file continues: 4 rows everywhere ($counts)" $?

# --- 2. SIGUSR1 mid-epoch, and resume -------------------------------------------------------
# mpirun itself in the background (not a function's subshell), so the signal reaches it; it
# forwards SIGUSR1 to every rank.
"$mpiexec" -np "$np" "${mpirun_flags[@]}" "$binary" "${extra[@]}" "${long[@]}" --output usr1.h5 \
  --checkpoint-dir ck_usr1 >usr1.log 2>&1 </dev/null &
job=$!
for _ in $(seq 600); do
  grep -q "^writing" usr1.log 2>/dev/null && break
  kill -0 "$job" 2>/dev/null || break
  sleep 0.2
done
sleep 2
kill -USR1 "$job" 2>/dev/null
signalled=$(now)
for _ in $(seq 600); do
  kill -0 "$job" 2>/dev/null || break
  sleep 0.2
done
kill -KILL "$job" 2>/dev/null && echo "      mpirun still running 120 s after SIGUSR1: killed"
wait "$job"
rc=$?
stop_seconds=$(since "$signalled")
leftovers "$work/usr1.h5" >/dev/null
[[ $rc -eq 75 ]]
check "SIGUSR1 mid-epoch: exit $rc (want 75) ${stop_seconds}s after the signal" $? usr1.log
status=$(status_of usr1.h5) rows=$(epoch_rows usr1.h5)
[[ $status == interrupted* ]]
check "interrupted run file says so (status '${status:-unreadable}', ${rows:-no} rows)" $? usr1.log
checkpoints=$(find ck_usr1 -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null)
[[ -n $checkpoints ]]
check "a checkpoint was written (${checkpoints:-none})" $? usr1.log
run usr1-resume.log "${long[@]}" --checkpoint-dir ck_usr1 --resume
rc=$?
line=$(grep -o 'resuming from epoch [0-9]*[^,]*' usr1-resume.log | head -n 1)
check "resume after SIGUSR1 completes (exit $rc, ${line:-no resuming line})" $rc usr1-resume.log
same "resumed run file status complete" "$(status_of usr1.h5)" complete usr1-resume.log
run usr1-full.log "${long[@]}" --output usr1-full.h5
rc=$?
check "uninterrupted long run completes (exit $rc)" $rc usr1-full.log
same "SIGUSR1-resumed weights bit-identical to uninterrupted (digest $(digest usr1.h5))" \
  "$(digest usr1.h5)" "$(digest usr1-full.h5)" usr1-resume.log
same "SIGUSR1-resumed per-epoch losses (train, test, per client) and traffic bit-identical" \
  "$(losses usr1.h5)" "$(losses usr1-full.h5)" usr1-resume.log

# --- 3. --server-split time over 2 servers, and the per-rank breakdown ----------------------
# One rank more than the mode's own: the middle blocks split by measured time over 2 servers.
timeout --kill-after=5 120 "$mpiexec" -np $((np + 1)) "${mpirun_flags[@]}" "$binary" "${extra[@]}" "${data[@]}" \
  --epochs 1 --server-split time --output split.h5 >split.log 2>&1 </dev/null
rc=$?
split=$(h5 split.h5 "(text(f.attrs['status']), [text(r) for r in f['ranks/role'][:]].count('server'),
  [round(float(counter(f, r, 'forward_seconds')[0]), 4) > 0 for r in range($np + 1)],
  [float(counter(f, r, 'step_seconds')[0]) > 0 for r in range($np + 1)])")
[[ $rc -eq 0 && $split == "('complete', $((2 * clients)), [$(printf 'True, %.0s' $(seq $np))True], [$(printf 'True, %.0s' $(seq $np))True])" ]]
check "--server-split time over 2 servers: exit $rc; (status, server stages, forward>0 per rank, step>0 per rank) = ${split:-unreadable}" $? split.log

# --- 4. fault injection on the server and on a client ---------------------------------------
bound=$(awk -v a="$ref_seconds" -v b="$comm_timeout" 'BEGIN { printf "%.1f", a + b + 10 }')
for fault in crash exception hang; do
  for rank in "$server" "$client"; do
    out=$work/fault-$rank-$fault.h5 log=fault-$rank-$fault.log
    start=$(now)
    timeout --kill-after=10 60 "$mpiexec" -np "$np" "${mpirun_flags[@]}" "$binary" "${extra[@]}" "${common[@]}" \
      --output "$out" --fault-inject "rank=$rank,step=$fault_step,mode=$fault" >"$log" 2>&1 </dev/null
    rc=$?
    seconds=$(since "$start")
    problems=()
    [[ $rc -ne 0 ]] || problems+=("exit 0")
    # timeout(1) says 124, or 137 when mpirun needed a SIGKILL (137 is also a crashed rank's code).
    [[ $rc -ne 124 ]] && at_most "$seconds" 59 || problems+=("timed out (60 s)")
    at_most "$seconds" "$bound" || problems+=("took ${seconds}s > ${bound}s")
    left=$(leftovers "$out") || problems+=("ranks left running:${left#*:}")
    errors=$(grep -c "splitpipe: error:" "$log")
    case $fault in
      crash)
        grep -Eq "process rank $rank .*signal 9" "$log" || problems+=("no \"process rank $rank ... signal 9\" from mpirun")
        ((errors <= 1)) || problems+=("$errors \"splitpipe: error:\" lines")
        ;;
      exception)
        grep -Eq "splitpipe: error: rank $rank: .*fault injected at step $fault_step" "$log" ||
          problems+=("no \"splitpipe: error: rank $rank: fault injected at step $fault_step\"")
        ((errors == 1)) || problems+=("$errors \"splitpipe: error:\" lines (want 1)")
        ;;
      hang)
        line=$(grep -E "splitpipe: error: rank [0-9]+: .*no progress for $comm_timeout s \(--comm-timeout\) in .*rank $rank([^0-9]|$)" "$log" | head -n 1)
        reporter=$(sed -E 's/.*splitpipe: error: rank ([0-9]+):.*/\1/' <<<"$line")
        [[ -n $line && $reporter != "$rank" ]] ||
          problems+=("no \"splitpipe: error: rank R: ... no progress for $comm_timeout s (--comm-timeout) in ... rank $rank\" from another rank")
        ((errors == 1)) || problems+=("$errors \"splitpipe: error:\" lines (want 1)")
        ;;
    esac
    rows=$(epoch_rows "$out") status=$(status_of "$out")
    [[ $rows == 2 ]] || problems+=("want 2 rows in /epochs")
    [[ -n $status && $status != complete ]] || problems+=("want a readable status other than complete")
    what="fault $fault on rank $rank at step $fault_step: exit $rc after ${seconds}s (bound ${bound}s), ${rows:-no} rows, status '${status:-unreadable}'"
    ((${#problems[@]})) && what+=$(printf '; %s' "${problems[@]}")
    check "$what" ${#problems[@]} "$log"
  done
done

finish "all $mode-mode reliability checks passed"
