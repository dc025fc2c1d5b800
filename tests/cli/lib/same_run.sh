# Shared by the dataset-reader tests that compare a copy of Fashion-MNIST with the IDX files:
#   need_fashion_mnist      skip (exit 77) without h5py or Debian's dataset-fashion-mnist; sets fmnist
#   run_summary FILE        per-epoch train and test losses and the weights digest, exactly
need_fashion_mnist() {
  /usr/bin/python3 -c 'import h5py' 2>/dev/null || { echo "SKIP: h5py is not installed"; exit 77; }
  fmnist=/usr/share/datasets/fashion-mnist
  [[ -e $fmnist/train-images-idx3-ubyte.gz || -e $fmnist/train-images-idx3-ubyte ]] ||
    { echo "SKIP: no Fashion-MNIST in $fmnist (apt-get install dataset-fashion-mnist)"; exit 77; }
}

run_summary() {
  /usr/bin/python3 -c "
import sys, h5py
f = h5py.File(sys.argv[1], 'r')
print(f['epochs/train_loss'][:].tolist(), f['epochs/test_loss'][:].tolist(), f.attrs['weights_digest'])" "$1" 2>&1
}
