#!/usr/bin/env bash
# --dataset hdf5: an HDF5 copy of (part of) Fashion-MNIST trains to the same losses and weights
# as the IDX files for the same seed; files that cannot work (missing file or dataset, float
# labels, sample and label counts that differ, not HDF5) stop with one message naming the file.
#
# Usage: hdf5_dataset.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" hdf5_dataset "$@"
# shellcheck source=lib/same_run.sh
source "$(dirname "$0")/lib/same_run.sh"
need_fashion_mnist
lib=$(cd "$(dirname "$0")/lib" && pwd)  # before the cd below
cd "$work" || exit 1

/usr/bin/python3 - "$fmnist" "$lib" <<'PY' || fail "could not write the HDF5 copies"
import sys
import h5py
import numpy as np
sys.path.insert(0, sys.argv[2])
from idx_file import idx as read_idx

def idx(name):
    data, dims = read_idx(sys.argv[1], name)
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)

train_x, train_y = idx("train-images-idx3-ubyte")[:2000, None], idx("train-labels-idx1-ubyte")[:2000]
test_x, test_y = idx("t10k-images-idx3-ubyte")[:500, None], idx("t10k-labels-idx1-ubyte")[:500]
with h5py.File("copy.h5", "w") as f:  # labels in other integer types than the IDX bytes
    f["train/x"], f["train/y"] = train_x, train_y.astype(np.int32)
    f["test/x"], f["test/y"] = test_x, test_y.astype(np.int16)
with h5py.File("named.h5", "w") as f:  # other names, float samples: trains, via --hdf5-keys
    f["images"], f["labels"] = train_x.astype(np.float64) / 255, train_y.astype(np.int64)
    f["timages"], f["tlabels"] = test_x.astype(np.float64) / 255, test_y.astype(np.int64)
with h5py.File("float_labels.h5", "w") as f:
    f["train/x"], f["train/y"] = train_x, train_y.astype(np.float32)
    f["test/x"], f["test/y"] = test_x, test_y
with h5py.File("short_labels.h5", "w") as f:
    f["train/x"], f["train/y"] = train_x, train_y[:-1]
    f["test/x"], f["test/y"] = test_x, test_y
with h5py.File("no_test.h5", "w") as f:
    f["train/x"], f["train/y"] = train_x, train_y
PY
printf 'plain text\n' >not_hdf5.h5

common=(--epochs 2 --seed 4 --batch-size 32)
"$binary" --dataset fashion-mnist --max-train-samples 2000 --max-test-samples 500 "${common[@]}" --output idx.h5 \
  >idx.log 2>&1 || fail "IDX run failed: $(tail -2 idx.log)"
"$binary" --dataset hdf5 --data-file copy.h5 "${common[@]}" --output hdf5.h5 >hdf5.log 2>&1 ||
  fail "HDF5 run failed: $(tail -2 hdf5.log)"
want=$(run_summary idx.h5) got=$(run_summary hdf5.h5)
[[ -n $want && $got == "$want" ]] || fail "HDF5 copy ($got) differs from the IDX files ($want)"
echo "  HDF5 copy == IDX: $got"
"$binary" --dataset hdf5 --data-file named.h5 --hdf5-keys images,labels,timages,tlabels "${common[@]}" \
  --output named-run.h5 >named.log 2>&1 || fail "--hdf5-keys run failed: $(tail -2 named.log)"
grep -q "^data: hdf5 from named.h5: 2000 train, 500 test, 1x28x28, 10 classes" named.log ||
  fail "float64 samples under other names: $(grep '^data:' named.log)"

refused() {  # name, expected text, options...
  local name=$1 text=$2
  shift 2
  "$binary" --dataset hdf5 "$@" --epochs 1 --output "r-$name.h5" >"r-$name.log" 2>&1
  local rc=$?
  [[ $rc -ne 0 && $(grep -c '^splitpipe: error:' "r-$name.log") -eq 1 && ! -e r-$name.h5 ]] &&
    grep -qF -- "$text" "r-$name.log" ||
    fail "$name: want one error with '$text', got exit $rc: $(grep -m1 'error' "r-$name.log")"
}
refused missing-file "missing.h5: no such file" --data-file missing.h5
refused no-data-file "(none): no such file" --data-file ""
refused not-hdf5 "not_hdf5.h5: not an HDF5 file" --data-file not_hdf5.h5
refused float-labels "labels 'train/y' are not integers" --data-file float_labels.h5
refused counts "'train/x' holds 2000 samples but 'train/y' 1999 labels" --data-file short_labels.h5
refused missing-key "no dataset 'test/x'" --data-file no_test.h5
refused bad-keys "--hdf5-keys 'a,b': give 4 names" --data-file copy.h5 --hdf5-keys a,b

finish "hdf5 dataset: a copy of Fashion-MNIST trains exactly like the IDX files; bad files are refused"
