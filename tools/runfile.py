"""The one reader of splitpipe run files (format_version 2) for the tools under tools/.

    import runfile
    with runfile.open_run("results/x.h5") as run:
        run.status, run.options["epochs"], run.epochs["test_acc"][-1], run.wire_bytes_per_train_sample()

The layout is the README's "The run file (HDF5)" section (`splitpipe --print-schema` prints
it). Units are the schema's: seconds, bytes, fractions (accuracies and ratios too), samples/s,
bit/s. A file that is not a readable run file raises RunFileError(reason) with a reason in
words; accessors raise it too for a part the schema promises and the file lacks.

Every per-epoch accessor returns `run.rows` rows: a file may be read while its writer appends
an epoch one table after another, so every table is cut to the rows all of them have.
"""
import errno
import fcntl
import functools
import os
import re

# Before h5py is imported: HDF5 would otherwise refuse a file a running job holds open (the
# writer switches HDF5's locking off, and readers must too).
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import h5py  # noqa: E402  (after the environment it reads)
import numpy as np  # noqa: E402

FORMAT_VERSION = 2
# splitpipe holds an OFD write lock on this one byte of its run file while it runs (far past
# any data, so nothing else that locks ranges of the file meets it).
WRITER_LOCK_OFFSET = 1 << 40
ENDED_WITHOUT_STATUS = "ended without status"


class RunFileError(Exception):
    """Why a file cannot be read as a run file, in words for a report (str(e) is the reason)."""


class Columns(dict):
    """A table's columns by name; a missing one raises RunFileError (where says which table)."""

    def __init__(self, where, columns):
        super().__init__(columns)
        self.where = where

    def __missing__(self, name):
        raise RunFileError(f"{self.where} but no {name} column")


def text(value):
    """An HDF5 string (str, bytes or a 0-d array of either) as str."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def python_value(value):
    """An attribute as a Python int, float or str (h5py gives numpy scalars and bytes)."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, np.generic):
        value = value.item()
    return text(value) if isinstance(value, (bytes, str)) else value


def writer_holds_lock(path):
    """True while a splitpipe process still writes `path`, False when none does, None when this
    filesystem cannot say (no POSIX locks). The writer's OFD write lock on one byte conflicts
    with this process's POSIX read lock on it; ours is dropped again at once."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, WRITER_LOCK_OFFSET, os.SEEK_SET)
    except OSError as e:
        return True if e.errno in (errno.EAGAIN, errno.EACCES) else None
    else:
        try:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, WRITER_LOCK_OFFSET, os.SEEK_SET)
        except OSError:
            pass  # closing the descriptor drops it anyway
        return False
    finally:
        os.close(fd)


def _open_hdf5(path):
    """h5py.File(path) or RunFileError saying what the bytes are instead."""
    if not os.path.lexists(path):
        raise RunFileError("no such file")
    if not os.path.isfile(path):  # a directory or a FIFO named *.h5: opening a FIFO would block
        raise RunFileError("not a regular file")
    try:
        return h5py.File(path, "r")
    except OSError as e:  # h5py: "Unable to open file (<what HDF5 found>)"
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        try:
            if os.path.getsize(path) == 0:
                raise RunFileError("empty file (0 bytes)") from None
        except OSError:
            pass
        if "file signature not found" in message:
            raise RunFileError("not an HDF5 file") from None
        truncated = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", message)
        if truncated:
            raise RunFileError(f"truncated HDF5 file ({truncated[1]} of {truncated[2]} bytes)") from None
        raise RunFileError(f"cannot read as HDF5: {message}") from None


def _check_version(f):
    if "format_version" not in f.attrs:
        raise RunFileError("not a splitpipe run file (no root attribute format_version)")
    try:
        version = int(python_value(f.attrs["format_version"]))
    except (TypeError, ValueError):
        raise RunFileError("not a splitpipe run file (format_version is not a number)") from None
    if version == 1:
        raise RunFileError("written by an older splitpipe (format_version 1); re-run it or read it with that "
                           "version's tools")
    if version > FORMAT_VERSION:
        raise RunFileError(f"written by a newer splitpipe (format_version {version}); these tools read "
                           f"format_version {FORMAT_VERSION}: use that splitpipe's tools")
    if version != FORMAT_VERSION:
        raise RunFileError(f"not a splitpipe run file (format_version {version})")


def open_run(path):
    """The run file at `path`, open (a RunFile), or RunFileError saying why it cannot be read."""
    return RunFile(path)


class RunFile:
    """One open run file. Use as a context manager, or call close()."""

    def __init__(self, path):
        self.path = path
        self._f = _open_hdf5(path)
        try:
            _check_version(self._f)
            self.rows = self._common_rows()
        except BaseException:
            self._f.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._f.close()

    # --- structure ---------------------------------------------------------------------------

    def _group(self, path):
        item = self._f.get(path)
        if item is None:
            raise RunFileError(f"no /{path} group")
        if not isinstance(item, h5py.Group):
            raise RunFileError(f"/{path} is not a group")
        return item

    def _dataset(self, path):
        item = self._f.get(path)
        if not isinstance(item, h5py.Dataset):
            raise RunFileError(f"no /{path} dataset" if item is None else f"/{path} is not a dataset")
        return item

    def _per_epoch_datasets(self):
        """Every dataset whose first axis is the epoch."""
        found = [d for d in self._group("epochs").values() if isinstance(d, h5py.Dataset)]
        found += [self._dataset(path) for path in ("confusion", "boundaries/traffic") if path in self._f]
        found += [self._dataset(f"ranks/rank{r}/counters") for r in self.ranks]
        if "clients" in self._f:
            for client in self._group("clients").values():
                if isinstance(client, h5py.Group):
                    found += [d for d in client.values() if isinstance(d, h5py.Dataset)]
        return found

    def _common_rows(self):
        return min((d.shape[0] for d in self._per_epoch_datasets() if d.ndim >= 1), default=0)

    def _table(self, path):
        """A group of 1-D datasets as name -> array (strings as str)."""
        table = {}
        for name, item in self._group(path).items():
            if isinstance(item, h5py.Dataset) and item.ndim == 1:
                values = item[()]
                table[name] = np.array([text(v) for v in values]) if values.dtype.kind in "OSU" else values
        return table

    def _counter_table(self, path):
        """A counter table [epoch, ..., counter] as column name -> array [epoch, ...]."""
        data = self._dataset(path)
        if "columns" not in data.attrs:
            raise RunFileError(f"/{path} has no columns attribute")
        columns = [text(c) for c in data.attrs["columns"]]
        if data.ndim < 2 or data.shape[-1] != len(columns):
            raise RunFileError(f"/{path} has shape {data.shape} but {len(columns)} columns")
        values = data[:self.rows].astype(float)
        return Columns(f"/{path} has {len(columns)} columns", {name: values[..., i] for i, name in enumerate(columns)})

    # --- what the run says -------------------------------------------------------------------

    @property
    def recorded_status(self):
        """The root attribute status: running | complete | failed: ... | interrupted: ..."""
        return text(self._f.attrs.get("status", "running"))

    @property
    def status(self):
        """recorded_status, except `ended without status` for a file still marked running whose
        writer holds no lock on it any more (its job was killed, e.g. SIGKILL)."""
        status = self.recorded_status
        if status == "running" and writer_holds_lock(self.path) is False:
            return ENDED_WITHOUT_STATUS
        return status

    @functools.cached_property
    def options(self):
        """Option name (as on the command line, without --) -> int, float or str; flags are 0/1."""
        return {name: python_value(value) for name, value in self._group("options").attrs.items()}

    @property
    def predicted_samples_per_second(self):
        """The planner's prediction for a run with auto options (/@predicted_samples_per_second);
        0 without them or in files older than the planner."""
        return float(self._f.attrs.get("predicted_samples_per_second", 0.0))

    @functools.cached_property
    def epochs(self):
        """/epochs as column -> float64 array over epochs (accuracies as fractions); a missing
        column raises RunFileError."""
        return Columns(f"/epochs has {self.rows} row(s)",
                       {name: item[:self.rows].astype(float) for name, item in self._group("epochs").items()
                        if isinstance(item, h5py.Dataset) and item.ndim == 1 and item.dtype.kind in "fiu"})

    @functools.cached_property
    def ranks(self):
        """The rank numbers that have /ranks/rank<r>/counters, ascending."""
        if "ranks" not in self._f:
            return []
        return sorted(int(key[4:]) for key in self._group("ranks") if re.fullmatch(r"rank\d+", key))

    def rank_counters(self, rank):
        """/ranks/rank<r>/counters as counter -> array over epochs (seconds, fractions, bytes)."""
        return self._counter_table(f"ranks/rank{rank}/counters")

    @functools.cached_property
    def stages(self):
        """The partition plan, one entry per stage: stage, rank, role, first_block, end_block, ..."""
        return self._table("ranks")

    def role(self, rank):
        """edge (edge-first or edge-last stages, or both), server or single."""
        roles = {str(role) for stage_rank, role in zip(self.stages.get("rank", []), self.stages.get("role", []))
                 if int(stage_rank) == rank}
        if any(role.startswith("edge") for role in roles):
            return "edge"
        return "single" if "single" in roles else "server"

    @functools.cached_property
    def boundaries(self):
        """The static boundary table: index, from_stage, to_stage, from_block, to_block,
        activation_shape (str), raw_bytes_per_sample (B); 0 rows with one stage."""
        return self._table("boundaries")

    def traffic(self):
        """/boundaries/traffic as counter -> array [epoch, boundary] (bytes, counts, seconds,
        relative errors)."""
        return self._counter_table("boundaries/traffic")

    @functools.cached_property
    def clients(self):
        """Client number -> {column -> array over epochs} (/clients/<c>/...)."""
        if "clients" not in self._f:
            return {}
        return {int(name): {column: item[:self.rows].astype(float) for column, item in group.items()
                            if isinstance(item, h5py.Dataset)}
                for name, group in self._group("clients").items() if name.isdigit()}

    @functools.cached_property
    def links(self):
        """/links: client, bits_per_second (bit/s), latency_seconds (s), shape_up, shape_down;
        one row per edge client with --link, 0 rows (or no columns) without."""
        return self._table("links") if "links" in self._f else {}

    def link_bits_per_second(self):
        """The slowest edge link in bit/s (it bounds a pipeline that every client feeds), or
        None when the run emulated no link."""
        bandwidths = self.links.get("bits_per_second", [])
        return float(np.min(bandwidths)) if len(bandwidths) else None

    # --- derived -----------------------------------------------------------------------------

    def _per_sample(self, numerator, denominator, epoch):
        """numerator / denominator (both per epoch) at one epoch (index, -1 = last) or, with
        epoch=None, over the whole run; NaN with no rows or a zero denominator."""
        if self.rows == 0:
            return float("nan")
        n, d = (np.sum(numerator), np.sum(denominator)) if epoch is None else (numerator[epoch], denominator[epoch])
        return float(n / d) if d > 0 else float("nan")

    def wire_bytes_per_train_sample(self, epoch=-1):
        """Bytes one training sample puts on the wire (B): activations and gradients across every
        boundary, after compression, and with --edge-last 0 the labels and loss results, during
        training only (the test pass is not counted), over /epochs/train_samples. 0 with one
        stage; epoch=None: over the whole run."""
        t = self.traffic()
        wire = t["train_act_wire_bytes"].sum(axis=1) + t["train_grad_wire_bytes"].sum(axis=1)
        if "train_label_bytes" in self.epochs:  # files of the first v2 writers lack it
            wire = wire + self.epochs["train_label_bytes"]
        return self._per_sample(wire, self.epochs["train_samples"], epoch)

    def compression(self, direction, epoch=-1):
        """wire / raw bytes (1) of the training traffic in one direction ("act" or "grad") over
        all boundaries: <= 1 means the codec made it smaller; NaN without boundaries."""
        if direction not in ("act", "grad"):
            raise ValueError(f"direction must be act or grad, not {direction!r}")
        t = self.traffic()
        return self._per_sample(t[f"train_{direction}_wire_bytes"].sum(axis=1),
                                t[f"train_{direction}_raw_bytes"].sum(axis=1), epoch)

    def peak_memory(self):
        """Role (edge, server, single) -> the largest peak resident memory (B) of its ranks."""
        peaks = {}
        for rank in self.ranks:
            rss = self.rank_counters(rank)["peak_rss_bytes"]
            if len(rss):
                role = self.role(rank)
                peaks[role] = max(peaks.get(role, 0.0), float(np.max(rss)))
        return peaks
