#!/usr/bin/env bash
# Bad invocations of splitpipe, alone and under mpirun. Each row must:
#   - exit with the expected code (2 for usage errors, 1 for data/output errors),
#   - print exactly one line starting "splitpipe: error:" (over all ranks), containing the
#     expected text (usually the option's name),
#   - finish within the time limit (a hang is a failure), leave no core file and no stray
#     process, and create or change no file (the existing --output keeps its bytes).
# Prints a table of all rows; exits 1 listing the rows that failed.
#
# Usage: bad_inputs.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
# SPLITPIPE_CLI_TIMEOUT (default 10) is the limit in seconds for a single process and for
# mpirun with 2 ranks; mpirun gets that much per 2 ranks, because every rank spends ~2 s of
# CPU loading LibTorch and a CI machine may have only 2 cores.
set -u

# shellcheck source=lib/error_table.sh
source "$(dirname "$0")/lib/error_table.sh" bad_inputs "$@"

# --- Fixtures -------------------------------------------------------------------------------

# A small valid IDX dataset (100 train, 100 test images) whose training images are then cut
# off mid-stream, as an interrupted download would leave them.
corrupt_dir=$work/corrupt-fashion-mnist
mkdir -p "$corrupt_dir"
write_idx() {  # FILE TYPE-BYTE DIMS...: a gzipped IDX file of zeros (class 0, black images)
  local file=$1 type=$2 bytes=1
  shift 2
  {
    # Big-endian magic 0x000008TT, then each dimension as a big-endian uint32.
    local header=(0 0 8 "$type")
    for dim in "$@"; do
      header+=($((dim >> 24 & 255)) $((dim >> 16 & 255)) $((dim >> 8 & 255)) $((dim & 255)))
      bytes=$((bytes * dim))
    done
    # shellcheck disable=SC2059 # the format is the escaped bytes themselves
    printf "$(printf '\\x%02x' "${header[@]}")"
    head -c "$bytes" /dev/zero
  } | gzip -c >"$file"
}
write_idx "$corrupt_dir/train-images-idx3-ubyte.gz" 3 100 28 28
write_idx "$corrupt_dir/train-labels-idx1-ubyte.gz" 1 100
write_idx "$corrupt_dir/t10k-images-idx3-ubyte.gz" 3 100 28 28
write_idx "$corrupt_dir/t10k-labels-idx1-ubyte.gz" 1 100
full_size=$(stat -c %s "$corrupt_dir/train-images-idx3-ubyte.gz")
truncate -s $((full_size / 2)) "$corrupt_dir/train-images-idx3-ubyte.gz"

config_dir=$work/configs
mkdir -p "$config_dir"
printf '[train]\nepochs = 2\nepohcs = 3\n' >"$config_dir/unknown_key.ini"
printf '[train]\nepochs = two\n' >"$config_dir/ill_typed.ini"

# Data a user might bring that cannot train honestly (issue: impossible numbers, refused at load).
shapes_dir=$work/shapes-differ   # training images 28x28, test images 32x32
mkdir -p "$shapes_dir"
write_idx "$shapes_dir/train-images-idx3-ubyte.gz" 3 20 28 28
write_idx "$shapes_dir/train-labels-idx1-ubyte.gz" 1 20
write_idx "$shapes_dir/t10k-images-idx3-ubyte.gz" 3 20 32 32
write_idx "$shapes_dir/t10k-labels-idx1-ubyte.gz" 1 20
empty_test_dir=$work/empty-test  # a test split of 0 images
mkdir -p "$empty_test_dir"
write_idx "$empty_test_dir/train-images-idx3-ubyte.gz" 3 20 28 28
write_idx "$empty_test_dir/train-labels-idx1-ubyte.gz" 1 20
write_idx "$empty_test_dir/t10k-images-idx3-ubyte.gz" 3 0 28 28
write_idx "$empty_test_dir/t10k-labels-idx1-ubyte.gz" 1 0
big_label_dir=$work/csv-big-label  # one label of 100000 would mean a 100001^2 confusion matrix
mkdir -p "$big_label_dir"
printf '0.5,1.5,0\n1.0,2.0,100000\n' >"$big_label_dir/train.csv"
printf '0.5,1.5,1\n' >"$big_label_dir/test.csv"
nan_row_dir=$work/csv-nan-first-row  # no header; the first row's nan must not pass as a header
mkdir -p "$nan_row_dir"
printf 'nan,1.5,0\n1.0,2.0,1\n' >"$nan_row_dir/train.csv"
printf '0.5,1.5,1\n' >"$nan_row_dir/test.csv"
printf '[trian]\nepochs = 2\n' >"$config_dir/unknown_section.ini"
printf '[data]\ndata-dir = %s/a#b   # the comment goes, the # in the path stays\n' "$work" >"$config_dir/hash_in_value.ini"

# The build always links LibTorch's CUDA backend; --*-device cuda must be refused wherever
# no GPU is visible (every CI machine), by every rank with one message.
ldd "$binary" 2>/dev/null | grep -q 'libtorch_cuda' || { echo "FAIL: $binary does not link libtorch_cuda"; exit 1; }
gpus=$("$binary" --version | sed -n 's/.*GPUs visible: \([0-9]*\).*/\1/p')
[[ -n "$gpus" ]] || { echo "FAIL: '$binary --version' does not say how many GPUs are visible"; exit 1; }

# Small and fast wherever a run would otherwise go on to train.
synthetic=(--dataset synthetic --synthetic-train 64 --synthetic-test 32 --epochs 1)

# --- The table ------------------------------------------------------------------------------

# Usage errors found while parsing (exit 2). tests/unit/test_cli.cpp checks many more values
# in-process; these rows check that the binary turns them into one message and exit code 2.
row "unknown option" 0 2 "--no-such-option" -- --no-such-option 3
row "option prefix is not guessed" 0 2 "did you mean --chunks" -- --chunk 4
row "repeated option" 0 2 "--threads' is given more than once" -- --threads 2 --threads 3
row "ill-typed integer" 0 2 "--epochs" -- --epochs abc
row "missing value" 0 2 "--batch-size" -- --epochs 2 --batch-size
row "epochs 0" 0 2 "--epochs" -- --epochs 0
row "chunks 1000" 0 2 "--chunks" -- --chunks 1000
row "chunks larger than batch" 0 2 "--chunks" -- --chunks 8 --batch-size 4
row "momentum 1.5" 0 2 "--momentum" -- --momentum 1.5
row "negative lr" 0 2 "--lr" -- --lr -1
row "infinite lr" 0 2 "--lr" -- --lr inf
row "threads 0" 0 2 "--threads" -- --threads 0
row "negative seed" 0 2 "--seed" -- --seed -1
row "unknown lr schedule" 0 2 "--lr-schedule" -- --lr-schedule linear
row "unknown pipeline schedule" 0 2 "--schedule" -- --schedule pipedream
row "server split not a list" 0 2 "--server-split" -- --server-split 1,a
row "unknown codec" 0 2 "unknown codec 'zip'" -- --fwd-codec zip
row "malformed codec spec" 0 2 "--fwd-codec" -- --fwd-codec quant:bits
row "unknown codec parameter" 0 2 "unknown parameter 'level'" -- --bwd-codec quant:level=3
row "nonexistent --config" 0 2 "$work/none.ini" -- --config "$work/none.ini"
row "--config is a directory" 0 2 "cannot read config file" -- --config "$config_dir"
row "config with unknown key" 0 2 "epohcs" -- --config "$config_dir/unknown_key.ini"
row "config with ill-typed value" 0 2 "ill_typed.ini" -- --config "$config_dir/ill_typed.ini"
row "expect 3 ranks, run alone" 0 2 "--expect-ranks" -- "${synthetic[@]}" --expect-ranks 3
row "link list longer than the clients" 0 2 "3 links given for 2 edge client(s)" -- "${synthetic[@]}" --edge-ranks 2 \
  --link "bandwidth=1Mbit;bandwidth=2Mbit;bandwidth=3Mbit"
row "unknown transport" 0 2 "--transport" -- "${synthetic[@]}" --transport ucx
if ((gpus == 0)); then
  row "nccl transport without a GPU" 0 2 "--transport nccl: no GPU is visible" -- "${synthetic[@]}" --transport nccl
  row "edge cuda without a GPU" 0 2 "--edge-device cuda: no GPU is visible" -- "${synthetic[@]}" --edge-device cuda
  row "server cuda without a GPU" 0 2 "--server-device cuda: no GPU is visible" -- "${synthetic[@]}" --server-device cuda
fi
row "config with unknown section" 0 2 "unknown section [trian]" -- --config "$config_dir/unknown_section.ini"
row "link bandwidth 1e-300bit" 0 2 "--link" -- "${synthetic[@]}" --link bandwidth=1e-300bit
row "link latency of a day" 0 2 "latency '86400s' is over 60 s" -- "${synthetic[@]}" --link bandwidth=1Mbit,latency=86400s
row "lr 1e308 (overflows float)" 0 2 "--lr" -- "${synthetic[@]}" --lr 1e308
row "comm-timeout 1e300" 0 2 "--comm-timeout" -- "${synthetic[@]}" --comm-timeout 1e300
row "keep-checkpoints 0" 0 2 "--keep-checkpoints" -- "${synthetic[@]}" --keep-checkpoints 0
row "fault-inject for rank 5 of 1" 0 2 "--fault-inject: rank 5 does not exist" -- "${synthetic[@]}" \
  --fault-inject rank=5,step=0,mode=crash
row "unwritable --checkpoint-dir" 0 2 "--checkpoint-dir '/proc/splitpipe-ck' is not writable" -- "${synthetic[@]}" \
  --checkpoint-dir /proc/splitpipe-ck
row "--checkpoint-dir is a file" 0 2 "--checkpoint-dir" -- "${synthetic[@]}" --checkpoint-dir /etc/hostname
# Errors found while setting up the run (exit 1).
row "missing dataset directory" 0 1 "/nonexistent" -- --data-dir /nonexistent
row "truncated dataset file" 0 1 "train-images-idx3-ubyte.gz" -- --data-dir "$corrupt_dir"
row "existing --output" 0 1 "already exists" SETUP=existing-output -- "${synthetic[@]}"
row "--output is a directory" 0 1 "out.h5" SETUP=output-is-dir -- "${synthetic[@]}" --overwrite

row "batch size beyond int64 range" 0 2 "--batch-size" -- "${synthetic[@]}" --batch-size 9223372036854775808
row "batch size larger than the data" 0 2 "--batch-size 9223372036854775807" -- "${synthetic[@]}" \
  --batch-size 9223372036854775807
row "train and test shapes differ" 0 1 "same sample shape" -- --dataset fashion-mnist --data-dir "$shapes_dir"
row "empty test split" 0 1 "the test split is empty" -- --dataset fashion-mnist --data-dir "$empty_test_dir"
row "CSV label 100000" 0 1 "100001 classes" -- --dataset csv --data-dir "$big_label_dir" --model mlp
row "CSV first row has nan, no header" 0 1 "'nan' is not a finite number" -- --dataset csv --data-dir "$nan_row_dir" \
  --model mlp
row "config keeps '#' inside a value" 0 1 "$work/a#b" -- --config "$config_dir/hash_in_value.ini" --dataset csv
# Under mpirun: every rank must stop, and only one error line may appear in total.
# Each failure point of the setup (parsing, run checks, data on rank 0, partition plan, run
# file on rank 0) with 2 and 3 ranks; variants of the same failure point only with 2.
for np in 2 3; do
  row "unknown option" "$np" 2 "--no-such-option" -- --no-such-option
  other=$((np == 2 ? 3 : 2))
  row "expect $other ranks" "$np" 2 "--expect-ranks" -- "${synthetic[@]}" --expect-ranks "$other"
  row "missing dataset directory" "$np" 1 "/nonexistent" -- --data-dir /nonexistent
  row "impossible partition 4+2 of 5 blocks" "$np" 2 "--edge-first 4" -- "${synthetic[@]}" --edge-first 4 --edge-last 2
  row "existing --output" "$np" 1 "already exists" SETUP=existing-output -- "${synthetic[@]}"
done
row "truncated dataset file" 2 1 "train-images-idx3-ubyte.gz" -- --data-dir "$corrupt_dir"
row "chunks larger than batch" 2 2 "--chunks" -- "${synthetic[@]}" --chunks 8 --batch-size 4
if ((gpus == 0)); then
  # Found on the server rank alone: the edge must not wait for it.
  row "server cuda without a GPU" 2 2 "rank 1: --server-device cuda: no GPU" -- "${synthetic[@]}" --server-device cuda
  row "edge cuda without a GPU" 3 2 "--edge-device cuda: no GPU" -- "${synthetic[@]}" --edge-device cuda
  # The NCCL backend is built by default; without GPUs every rank refuses it at once.
  row "nccl transport without a GPU" 2 2 "--transport nccl: no GPU is visible" -- "${synthetic[@]}" --transport nccl
  row "nccl transport without a GPU, 2 clients" 3 2 "--transport nccl: no GPU" -- "${synthetic[@]}" --edge-ranks 2 \
    --batch-size 16 --client-mode parallel --transport nccl
fi
row "fault-inject for rank 2 of 2" 2 2 "--fault-inject: rank 2 does not exist" -- "${synthetic[@]}" \
  --fault-inject rank=2,step=0,mode=crash
row "wrong number of cut points" 3 2 "--server-split" -- "${synthetic[@]}" --server-split 2,3
# lenet5 has 5 blocks; the edge keeps 1+1, leaving 3 middle blocks for 4 servers.
row "4 servers for 3 middle blocks" 5 2 "middle blocks" -- "${synthetic[@]}" --edge-first 1 --edge-last 1

# --- Report ---------------------------------------------------------------------------------

report_rows "splitpipe bad inputs"
