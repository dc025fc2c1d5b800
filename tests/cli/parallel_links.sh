#!/usr/bin/env bash
# Parallel clients (SplitFed) over one emulated link each: 3 clients + 1 server,
#   --link "bandwidth=10Mbit;bandwidth=100Mbit;bandwidth=1Gbit" (one spec per client, in order).
# Model and sizes make the link dominate: an MLP 64-100-100-10 on 1x8x8 synthetic samples, the
# edge holding fc1 and fc3, the server fc2, batch 256, --chunks 1. A round moves, on each
# client's link and one after the other, activation up, activation down, gradient up and
# gradient down: 4 x 256 x 100 x 4 bytes = 409,600 bytes, 0.33 s at 10 Mbit/s, against a few ms
# of computing; the edge averaging (an allreduce among the clients) moves ~60 kB in memory.
# 6144 samples = 2048 a client = 8 rounds an epoch, 2 epochs; 64 test samples, so that test
# traffic, if counted in /clients, stays under 2 % of the training traffic. Checks:
#   1. the run completes;
#   2. /clients/0..2/link_wait_seconds exist and client 0's > client 1's > client 2's;
#   3. client 0 sends and receives the payload above per round (within 5 %);
#   4. the round time (sum of train_seconds / sum of steps in /epochs) is within 15 % of the
#      slowest link's arithmetic: (sent_bytes + received_bytes of client 0 per round) * 8 / 10e6 s.
#
# Usage: parallel_links.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u

# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" parallel_links "$@"

batch=256 hidden=100 rounds=8 epochs=2
options=(--edge-ranks 3 --client-mode parallel --model mlp --mlp-hidden "$hidden,$hidden" --edge-first 1 --edge-last 1
  --dataset synthetic --synthetic-shape 1x8x8 --synthetic-train $((3 * batch * rounds)) --synthetic-test 64
  --batch-size "$batch" --chunks 1 --epochs "$epochs" --comm-timeout 30
  --link "bandwidth=10Mbit;bandwidth=100Mbit;bandwidth=1Gbit")
run_file=$work/links.h5
log=$work/links.log

check() {  # NAME STATUS: "ok" or a failure (the run's log follows the summary)
  if [[ $2 -eq 0 ]]; then echo "ok    $1"; else fail "$1"; fi
}

start=$(date +%s.%N)
timeout --kill-after=5 120 "$mpiexec" -np 4 "${mpirun_flags[@]}" "$binary" "${options[@]}" --output "$run_file" \
  >"$log" 2>&1 </dev/null
rc=$?
seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "== mpirun -np 4 splitpipe ${options[*]}: exit $rc after ${seconds}s"

# The reader prints one "ok|FAIL<TAB>check" line per check (4), figures in the check's text,
# and indented lines of figures.
verdicts=0
while IFS= read -r line; do
  case $line in
    ok$'\t'*) check "${line#*$'\t'}" 0 ;;
    FAIL$'\t'*) check "${line#*$'\t'}" 1 ;;
    *) echo "$line" ;;
  esac
  [[ $line == ok$'\t'* || $line == FAIL$'\t'* ]] && ((verdicts++))
done < <(/usr/bin/python3 - "$run_file" "$rc" "$batch" "$hidden" 2>&1 <<'PY'
import sys

path, rc, batch, hidden = sys.argv[1], *map(int, sys.argv[2:])
bandwidths = {0: 10e6, 1: 100e6, 2: 1e9}
def verdict(ok, text):
    print(("ok" if ok else "FAIL") + "\t" + text)

try:
    import h5py
    with h5py.File(path, "r") as f:
        status = f.attrs["status"]
        status = status.decode() if isinstance(status, bytes) else str(status)
        verdict(rc == 0 and status == "complete", f"3 parallel clients over 3 links complete (exit {rc}, status '{status}')")
        steps = f["epochs/steps"][:]
        train_seconds = f["epochs/train_seconds"][:]
        rounds = float(steps.sum())
        if not rounds > 0:
            raise ValueError(f"/epochs/steps sums to {rounds}")
        clients = {}
        for c in bandwidths:
            g = f[f"clients/{c}"]
            clients[c] = {name: float(g[name][:].sum()) for name in
                          ("link_wait_seconds", "sent_bytes", "received_bytes", "edge_sync_bytes", "edge_sync_seconds")}
except Exception as e:  # a missing file or dataset is a failed check
    verdict(False, f"run file {path}: {type(e).__name__}: {e}")
    sys.exit(0)

print(f"      {rounds:.0f} rounds in {train_seconds.sum():.3f} s of training "
      f"(per epoch: {', '.join(f'{t:.3f} s / {s:.0f}' for t, s in zip(train_seconds, steps))})")
for c, v in clients.items():
    print(f"      client {c} ({bandwidths[c] / 1e6:g} Mbit/s): link wait {v['link_wait_seconds']:.3f} s, "
          f"sent {v['sent_bytes'] / rounds:.0f} B/round, received {v['received_bytes'] / rounds:.0f} B/round, "
          f"edge sync {v['edge_sync_bytes']:.0f} B in {v['edge_sync_seconds']:.3f} s")
waits = [clients[c]["link_wait_seconds"] for c in bandwidths]
verdict(waits[0] > waits[1] > waits[2],
        "link wait per client falls with its bandwidth: " + " > ".join(f"{w:.3f} s" for w in waits))

payload = 2 * batch * hidden * 4  # one activation and one gradient each way per round (float32)
sent, received = clients[0]["sent_bytes"] / rounds, clients[0]["received_bytes"] / rounds
verdict(abs(sent / payload - 1) <= 0.05 and abs(received / payload - 1) <= 0.05,
        f"client 0 moves its own batch's tensors: {sent:.0f} B sent, {received:.0f} B received per round "
        f"(payload {payload} B each way)")

predicted = (sent + received) * 8 / bandwidths[0]
measured = train_seconds.sum() / rounds
verdict(abs(measured / predicted - 1) <= 0.15,
        f"round time {measured:.3f} s within 15 % of the 10 Mbit/s link's {predicted:.3f} s "
        f"(({sent:.0f} + {received:.0f}) B * 8 / 10e6; {100 * (measured / predicted - 1):+.1f} %)")
PY
)
((verdicts >= 4)) || fail "the run file's checks stopped after $verdicts of 4 (see above)"

((${#failures[@]})) && { echo "---- $log:"; cat "$log"; }
finish "parallel links: each client's own link, the slowest one sets the round time"
