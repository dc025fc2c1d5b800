#!/usr/bin/env bash
# tools/report over runs that differ in --link: the link is a swept axis, throughput_vs_link.png
# is drawn, and the table shows the slow link really slowed training (10 Mbit/s < no link).
#
# Usage: report_link.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
binary=$(realpath "$1")
mpiexec=$2
read -r -a mpirun_flags <<<"${3//;/ }"
source_dir=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/splitpipe_report_link.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*"; exit 1; }
for link in 10Mbit none; do
  extra=()
  [[ $link != none ]] && extra=(--link "bandwidth=$link")
  timeout 120 "$mpiexec" -np 2 "${mpirun_flags[@]}" "$binary" --dataset synthetic --synthetic-train 256 \
    --synthetic-test 16 --batch-size 32 --epochs 1 "${extra[@]}" --output "$work/runs/lenet5-$link.h5" \
    >"$work/$link.log" 2>&1 || { cat "$work/$link.log"; fail "run with link $link"; }
done
/usr/bin/python3 "$source_dir/tools/report" "$work/runs" --out "$work/report" >"$work/report.log" 2>&1 ||
  { cat "$work/report.log"; fail "tools/report"; }
[[ -s $work/report/throughput_vs_link.png ]] || fail "no throughput_vs_link.png"
/usr/bin/python3 - "$work/report/summary.csv" <<'PY' || fail "summary table"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 2, rows
assert "link" in rows[0], "link is not an axis: " + ", ".join(rows[0])
rate = {("slow" if "10Mbit" in r["link"] else "none"): float(r["samples/s"]) for r in rows}
print(f"samples/s: 10 Mbit/s {rate['slow']:.0f}, no link {rate['none']:.0f}")
assert rate["slow"] < rate["none"] / 2, rate  # ~10 kB per sample each way cannot pass 10 Mbit/s fast
PY
echo "ok: link is an axis, throughput_vs_link.png drawn, the 10 Mbit/s run is the slower one"
