"""What the Python benchmarks under tools/ share: where the build is, how a job is launched
(mpirun flags for this machine) and how its run file is read back."""
import os
import subprocess
import sys

import h5py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
    """Training samples/s of the last epoch of one job."""
    with h5py.File(run_job(binary, options, ranks, output), "r") as f:
        return float(f["epochs/samples_per_second"][-1])
