#!/usr/bin/env bash
# --dataset image-folder: PNG files written from part of Fashion-MNIST (train/ and test/, one
# folder per class, numbered in the original order) train to the same losses and weights as the
# IDX files for the same seed; a broken file, mixed sizes without --image-size, and a folder
# without classes stop with one message naming the file.
#
# Usage: image_folder.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u
# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" image_folder "$@"
# shellcheck source=lib/same_run.sh
source "$(dirname "$0")/lib/same_run.sh"
need_fashion_mnist
lib=$(cd "$(dirname "$0")/lib" && pwd)  # before the cd below
cd "$work" || exit 1

/usr/bin/python3 - "$fmnist" "$lib" <<'PY' || fail "could not write the PNG folders"
import os, struct, sys, zlib
sys.path.insert(0, sys.argv[2])
from idx_file import idx as read_idx

def idx(name):
    return read_idx(sys.argv[1], name)

def png(path, pixels, height, width):  # 8-bit grayscale, written by hand
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + pixels[r * width:(r + 1) * width] for r in range(height))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

for split, prefix, count in (("train", "train", 2000), ("test", "t10k", 500)):
    images, (n, h, w) = idx(f"{prefix}-images-idx3-ubyte")
    labels, _ = idx(f"{prefix}-labels-idx1-ubyte")
    for i in range(count):
        folder = f"images/{split}/class{labels[i]}"
        os.makedirs(folder, exist_ok=True)
        png(f"{folder}/{i:05d}.png", images[i * h * w:(i + 1) * h * w], h, w)
os.makedirs("mixed/a"); os.makedirs("mixed/b")
png("mixed/a/0.png", bytes(784), 28, 28); png("mixed/b/1.png", bytes(100), 10, 10)
os.makedirs("broken/a"); os.makedirs("broken/b")
png("broken/a/0.png", bytes(784), 28, 28)
open("broken/b/1.png", "wb").write(b"\x89PNG\r\n\x1a\nnot really")
os.makedirs("oneclass/a"); png("oneclass/a/0.png", bytes(784), 28, 28)
PY

common=(--epochs 2 --seed 4 --batch-size 32)
"$binary" --dataset fashion-mnist --max-train-samples 2000 --max-test-samples 500 "${common[@]}" --output idx.h5 \
  >idx.log 2>&1 || fail "IDX run failed: $(tail -2 idx.log)"
"$binary" --dataset image-folder --data-dir images "${common[@]}" --output png.h5 >png.log 2>&1 ||
  fail "image-folder run failed: $(tail -2 png.log)"
want=$(run_summary idx.h5) got=$(run_summary png.h5)
[[ -n $want && $got == "$want" ]] || fail "PNG folders ($got) differ from the IDX files ($want)"
echo "  PNG folders == IDX: $got"
# Resized, and split by the reader when there is no train/ and test/.
"$binary" --dataset image-folder --data-dir images/train --image-size 14 --epochs 1 --output small.h5 >small.log 2>&1 ||
  fail "resized run failed: $(tail -2 small.log)"
# 20 % of each class, rounded down, goes to the test split: 397 of these 2000 images.
read -r train test < <(sed -n 's/^data: image-folder from images\/train: \([0-9]*\) train, \([0-9]*\) test, 1x14x14, 10 classes$/\1 \2/p' small.log)
[[ -n ${train:-} && $((train + test)) -eq 2000 && $test -ge 390 && $test -le 400 ]] ||
  fail "resize and per-class 80/20 split: $(grep '^data:' small.log)"

refused() {  # name, expected text, options...
  local name=$1 text=$2
  shift 2
  "$binary" --dataset image-folder "$@" --epochs 1 --output "r-$name.h5" >"r-$name.log" 2>&1
  local rc=$?
  [[ $rc -ne 0 && $(grep -c '^splitpipe: error:' "r-$name.log") -eq 1 && ! -e r-$name.h5 ]] &&
    grep -qF -- "$text" "r-$name.log" ||
    fail "$name: want one error with '$text', got exit $rc: $(grep -m1 'error' "r-$name.log")"
}
refused mixed "pass --image-size N" --data-dir mixed
refused broken "broken/b/1.png: not a readable PNG" --data-dir broken
refused one-class "1 class folder(s)" --data-dir oneclass
refused missing "nothere: not a directory" --data-dir nothere

finish "image-folder: PNG folders train exactly like the IDX files; bad folders are refused"
