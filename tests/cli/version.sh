#!/usr/bin/env bash
# The binary says which LibTorch it runs on, and that is the one it really loads:
#   - it links the wheel's libtorch_cpu and libtorch_cuda (not a system LibTorch);
#   - `--version` names LibTorch 2.x, the same version as the torch package whose libraries
#     the dynamic loader resolves, and how many GPUs it sees;
#   - a run file records that version in its libtorch_version attribute.
#
# Usage: version.sh <splitpipe binary> <mpiexec> "<mpirun flags>"
set -u

# shellcheck source=lib/checks.sh
source "$(dirname "$0")/lib/checks.sh" version "$@"

libs=$(ldd "$binary")
torch_cpu=$(sed -n 's/.*libtorch_cpu\.so => \([^ ]*\).*/\1/p' <<<"$libs")
[[ -n "$torch_cpu" ]] || fail "ldd finds no libtorch_cpu.so for $binary"
grep -q 'libtorch_cuda\.so => /' <<<"$libs" || fail "$binary does not load libtorch_cuda.so (no CUDA backend)"
grep -q 'not found' <<<"$libs" && fail "unresolved libraries: $(grep 'not found' <<<"$libs" | tr -s ' \n' ' ')"
# The torch package the libraries come from: <site-packages>/torch/lib/libtorch_cpu.so.
package_version=$(sed -n "s/^__version__ = '\([^'+]*\).*/\1/p" "$(dirname "$torch_cpu")/../version.py" 2>/dev/null)
[[ -n "$package_version" ]] || fail "no torch/version.py beside $torch_cpu: not the pip wheel's LibTorch"
cudart=$(sed -n 's/.*libcudart\.so\.[0-9]* => \([^ ]*\).*/\1/p' <<<"$libs")
[[ "$cudart" == */nvidia/* ]] || fail "libcudart resolves to '$cudart', not the wheel's CUDA runtime"

version_text=$("$binary" --version 2>&1)
code=$?
echo "$version_text"
[[ $code == 0 ]] || fail "--version exited $code"
reported=$(sed -n 's/^LibTorch \([^ ]*\)$/\1/p' <<<"$version_text")
[[ "$reported" == 2.* ]] || fail "--version reports LibTorch '$reported', expected 2.x"
[[ "$reported" == "$package_version" ]] ||
  fail "--version reports LibTorch '$reported' but the loaded libraries are torch '$package_version'"
grep -Eq '^CUDA backend: built in; GPUs visible: [0-9]+' <<<"$version_text" ||
  fail "--version does not report the CUDA backend and the visible GPUs"

"$binary" --dataset synthetic --synthetic-train 32 --synthetic-test 8 --batch-size 16 --epochs 1 \
  --output "$work/run.h5" >"$work/run.log" 2>&1 || { fail "a tiny run failed"; cat "$work/run.log"; }
recorded=$(h5dump -a /libtorch_version "$work/run.h5" 2>/dev/null | sed -n 's/.*(0): "\(.*\)".*/\1/p')
[[ "$recorded" == "$reported" ]] || fail "run file's libtorch_version is '$recorded', expected '$reported'"

finish "version: LibTorch $reported from $(dirname "$torch_cpu"), CUDA runtime $cudart"
