"""Reads an MNIST-style IDX file (plain or .gz beside it) for the tests that copy Fashion-MNIST
into other formats: idx(directory, name) -> (raw bytes after the header, dims)."""
import gzip
import os


def idx(directory, name):
    path = os.path.join(directory, name)
    raw = gzip.open(path + ".gz").read() if os.path.exists(path + ".gz") else open(path, "rb").read()
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(raw[3])]
    return raw[4 + 4 * len(dims):], dims
