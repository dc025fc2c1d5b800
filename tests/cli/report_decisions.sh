#!/usr/bin/env bash
# tools/report's decision outputs on a real sweep: 2 partitions (edge-first 1, 2) x 2 codecs
# (none, quant:bits=4) x 3 seeds of tiny synthetic runs on 2 ranks (tools/sweep --local), then
# one point re-run with an injected failure in its second epoch. The report must
#   - mark as Pareto (column `pareto`) exactly the configurations no other one dominates (mean
#     final test accuracy over the complete seeds up, mean wire bytes per training sample down),
#     computed here from the run files with h5py alone;
#   - give per configuration the mean and sample std over seeds that numpy gives;
#   - keep the failed point as a row (failed, 1/2 epochs) and count it (11 of 12 complete);
#   - give per run the bytes per training sample of the schema: the sum over boundaries and
#     epochs of train_act_wire + train_grad_wire over the sum of /epochs/train_samples (the
#     test pass not counted), and wire/raw of activations;
#   - draw accuracy_vs_bytes.png, accuracy_per_epoch.png and cut.png (the cut was swept), and
#     no throughput_vs_link.png (the link was not).
# About 30 s on 2 busy cores. Skipped (77) without a splitpipe that writes format_version 2.
#
# Usage: report_decisions.sh <splitpipe binary> [<mpiexec> "<mpirun flags>"]
set -u
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
binary=$(realpath "${1:-$source_dir/build/splitpipe}")
mpiexec=${2:-mpirun}
# CTest passes the flags as a CMake list (';'-separated); by hand they default to this machine's.
flags=${3:-}
read -r -a mpirun_flags <<<"${flags//;/ }"
if [[ -z $flags ]]; then
  mpirun_flags=(--oversubscribe --bind-to none)
  [[ $(id -u) -eq 0 ]] && mpirun_flags+=(--allow-run-as-root)
fi
python=/usr/bin/python3

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
[[ -x $binary ]] || skip "no splitpipe binary at $binary"
"$binary" --print-schema 2>/dev/null | grep -q 'format_version' || skip "$binary does not write format_version 2"
command -v "$mpiexec" >/dev/null || skip "no $mpiexec"
"$python" -c 'import h5py, numpy, matplotlib' 2>/dev/null || skip "needs python3-h5py, numpy and matplotlib"

work=$(mktemp -d "${TMPDIR:-/tmp}/splitpipe_report_decisions.XXXXXX")
trap 'rm -rf "$work"' EXIT

cat >"$work/sweep-decisions.ini" <<'EOF'
[sweep]
name = decisions
ranks = 2
[base]
dataset = synthetic
synthetic-train = 128
synthetic-test = 64
batch-size = 32
epochs = 2
threads = 1
[axes]
edge-first = 1, 2
fwd-codec = none; quant:bits=4
seed = 1, 2, 3
EOF
sweep_dir=$work/results/decisions
MPIRUN_FLAGS="${mpirun_flags[*]}" timeout 300 "$python" "$source_dir/tools/sweep" "$work/sweep-decisions.ini" --local \
  --check none --results "$work/results" --splitpipe "$binary" >"$work/sweep.log" 2>&1 ||
  { tail -n 30 "$work/sweep.log"; fail "tools/sweep --local"; }

# One point fails in its second epoch (4 steps an epoch; step 6 is in the second).
failed=edge-first-2_fwd-codec-quant-bits-4_seed-2
[[ -f $sweep_dir/$failed.ini ]] || fail "no point $failed in $(ls "$sweep_dir")"
timeout 120 "$mpiexec" -np 2 "${mpirun_flags[@]}" "$binary" --config "$sweep_dir/$failed.ini" --overwrite \
  --fault-inject rank=1,step=6,mode=exception >"$work/failed.log" 2>&1 &&
  fail "the run with an injected failure succeeded"

"$python" "$source_dir/tools/report" "$sweep_dir" --out "$work/report" >"$work/report.log" 2>&1 ||
  { cat "$work/report.log"; fail "tools/report"; }
grep -q "12 run(s), 11 complete" "$work/report.log" || { cat "$work/report.log"; fail "the failed run is not counted"; }

"$python" - "$sweep_dir" "$work/report" "$failed" <<'PY' || fail "report content (above)"
import csv, math, os, sys
os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"
import h5py
import numpy as np

sweep_dir, report, failed = sys.argv[1:]
problems = []


def check(ok, what):
    if not ok:
        problems.append(what)


def markdown_tables(path):
    """Every Markdown table in the file as a list of row dicts."""
    tables, header = [], None
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            header = None
        elif header is None:
            header = cells
            tables.append([])
        elif not set("".join(cells)) <= set("-"):
            tables[-1].append(dict(zip(header, cells)))
    return tables


# The facts, from the run files alone.
runs = {}
for name in sorted(n[:-3] for n in os.listdir(sweep_dir) if n.endswith(".h5")):
    with h5py.File(os.path.join(sweep_dir, name + ".h5"), "r") as f:
        status = f.attrs["status"]
        status = status.decode() if isinstance(status, bytes) else str(status)
        o = f["options"].attrs
        traffic = f["boundaries/traffic"]
        col = {c.decode() if isinstance(c, bytes) else str(c): i for i, c in enumerate(traffic.attrs["columns"])}
        t = traffic[()]
        samples = f["epochs/train_samples"][()]
        runs[name] = dict(
            status=status, epochs=len(f["epochs/test_acc"]),
            config=(int(o["edge-first"]), str(o["fwd-codec"])),
            acc=100 * float(f["epochs/test_acc"][-1]),
            rate=float(np.mean(f["epochs/samples_per_second"][()])),
            bytes=float(t[:, :, [col["train_act_wire_bytes"], col["train_grad_wire_bytes"]]].sum() / samples.sum()),
            with_eval=float(t[:, :, [col["train_act_wire_bytes"], col["train_grad_wire_bytes"],
                                     col["eval_act_wire_bytes"]]].sum() / samples.sum()),
            act=float(t[:, :, col["train_act_wire_bytes"]].sum() / t[:, :, col["train_act_raw_bytes"]].sum()))
check(len(runs) == 12, f"{len(runs)} run files, expected 12")
check(runs[failed]["status"].startswith("failed") and runs[failed]["epochs"] == 1,
      f"{failed}: {runs[failed]['status']}, {runs[failed]['epochs']} epochs")

configs = {}
for r in runs.values():
    if r["status"] == "complete":
        configs.setdefault(r["config"], []).append(r)
check(len(configs) == 4, f"{len(configs)} configurations with complete runs, expected 4")
stats = {c: {k: (np.mean([r[k] for r in rs]), np.std([r[k] for r in rs], ddof=1)) for k in ("acc", "rate", "bytes")}
         for c, rs in configs.items()}
pareto = {c for c, s in stats.items()
          if not any(o["acc"][0] >= s["acc"][0] and o["bytes"][0] <= s["bytes"][0]
                     and (o["acc"][0] > s["acc"][0] or o["bytes"][0] < s["bytes"][0]) for o in stats.values())}
print("pareto (computed here):", sorted(pareto))

# Per run: summary.csv.
rows = {row["run"]: row for row in csv.DictReader(open(os.path.join(report, "summary.csv")))}
check(set(rows) == set(runs), f"summary.csv runs {sorted(rows)}")
for name, r in runs.items():
    row = rows.get(name, {})
    check(abs(float(row.get("wire bytes/train sample") or "nan") - r["bytes"]) <= 0.05 + 1e-9,
          f"{name}: wire bytes/train sample {row.get('wire bytes/train sample')}, computed {r['bytes']:.2f}")
    check(abs(float(row.get("act wire/raw") or "nan") - r["act"]) <= 0.0005 + 1e-9,
          f"{name}: act wire/raw {row.get('act wire/raw')}, computed {r['act']:.4f}")
    want = "yes" if r["status"] == "complete" and r["config"] in pareto else "no"
    check(row.get("pareto") == want, f"{name}: pareto {row.get('pareto')}, expected {want}")
check(abs(runs[failed]["with_eval"] - runs[failed]["bytes"]) > 0.1, "the test pass adds no traffic: the check is void")
check(rows.get(failed, {}).get("status", "").startswith("failed") and rows.get(failed, {}).get("epochs") == "1/2",
      f"failed row: {rows.get(failed)}")
quant = [r for n, r in runs.items() if r["config"][1] != "none"]
check(all(r["act"] < 0.5 for r in quant), "quant:bits=4 activations are not below half their raw size")

# Per configuration: summary.md's second table.
tables = markdown_tables(os.path.join(report, "summary.md"))
check(len(tables) == 2, f"summary.md has {len(tables)} tables, expected runs and configurations")
listed = {(int(row["edge-first"]), row["fwd-codec"]): row for row in (tables[1] if len(tables) > 1 else [])}
check(set(listed) == set(configs), f"configurations listed: {sorted(listed)}")
for c, s in stats.items():
    row = listed.get(c, {})
    for column, key, scale, tolerance in (("final test acc % mean", "acc", 0, 0.005), ("final test acc % std", "acc", 1, 0.005),
                                          ("samples/s mean", "rate", 0, 0.5), ("samples/s std", "rate", 1, 0.5),
                                          ("wire bytes/train sample", "bytes", 0, 0.05)):
        got = float(row.get(column) or "nan")
        check(abs(got - s[key][scale]) <= tolerance + 1e-9, f"{c}: {column} {got}, numpy {s[key][scale]:.4f}")
    check(row.get("pareto") == ("yes" if c in pareto else "no"), f"{c}: pareto {row.get('pareto')}")
failed_config = runs[failed]["config"]
check(listed.get(failed_config, {}).get("complete runs") == "2/3", f"{failed_config}: {listed.get(failed_config)}")
print("pareto (report):", sorted(c for c, row in listed.items() if row["pareto"] == "yes"))

for png in ("accuracy_vs_bytes", "accuracy_per_epoch", "cut"):
    path = os.path.join(report, png + ".png")
    check(os.path.exists(path) and open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n", f"{png}.png missing or not a PNG")
check(not os.path.exists(os.path.join(report, "throughput_vs_link.png")), "throughput_vs_link.png drawn, link not swept")

for p in problems:
    print("  " + p)
sys.exit(1 if problems else 0)
PY
echo "ok: Pareto front, seed statistics, failed row and bytes per training sample as computed from the files"
