"""What the Python benchmarks under tools/ share: where the build is, how a job is launched
(mpirun flags for this machine) and how its run file is read back (through runfile.py)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import runfile  # noqa: E402  (sets HDF5_USE_FILE_LOCKING before h5py loads)
import h5py  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
BUILD = os.environ.get("BUILD_DIR", os.path.join(ROOT, "build"))
BINARY = os.path.join(BUILD, "splitpipe")


def mpirun_prefix(ranks):
    """mpirun for `ranks` ranks on this machine: unbound (ranks may use several threads and may
    outnumber the cores) and allowed as root."""
    flags = ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none"]
    if os.geteuid() == 0:
        flags.append("--allow-run-as-root")
    return flags


def run_job(binary, options, ranks, output):
    """Runs one training job to `output` (replaced); exits with its output when it fails."""
    cmd = ([] if ranks == 1 else mpirun_prefix(ranks)) + [binary] + options + ["--output", output, "--overwrite"]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        sys.exit(f"{os.path.basename(sys.argv[0])}: failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout[-2000:]}")
    return output


def train_rate(binary, options, ranks, output):
    """Training samples/s of the last epoch of one job. tools/bench-libtorch also runs binaries
    older than format_version 2, which runfile refuses; /epochs/samples_per_second is the same
    dataset in format_version 1, so that one column is read from such a file directly."""
    path = run_job(binary, options, ranks, output)
    try:
        with runfile.open_run(path) as run:
            return float(run.epochs["samples_per_second"][-1])
    except runfile.RunFileError:
        with h5py.File(path, "r") as f:
            if int(f.attrs.get("format_version", 0)) != 1:
                raise
            return float(f["epochs/samples_per_second"][-1])
