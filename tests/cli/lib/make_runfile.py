"""Writes a splitpipe run file (format_version 2) with h5py, laid out as the schema says, so
tests of the Python tools need no training run.

    sys.path.insert(0, "<source>/tests/cli/lib"); import make_runfile
    make_runfile.write_run(path, status="running", rows=1, options={"fwd-codec": "quant:bits=8"})

The model is LeNet-5's block table, the partition edge-first/edge-last with one server rank
(world size 2). Numbers are made up but consistent: traffic counts follow the partition's
boundary shapes, train_samples and the codec's wire/raw ratios. The column lists are spelled
out here from the schema, independently of tools/runfile.py, so a test catches a reader that
drifted from the schema.
"""
import os

os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
import h5py  # noqa: E402
import numpy as np  # noqa: E402

BLOCKS = [("conv1", "6x14x14", 156), ("conv2", "16x5x5", 2416), ("fc1", "120", 48120), ("fc2", "84", 10164),
          ("fc3", "10", 850)]
EPOCH_COLUMNS = {
    "epoch": "index", "lr": "1", "train_loss": "1", "train_acc": "1", "test_loss": "1", "test_acc": "1",
    "epoch_seconds": "s", "train_seconds": "s", "steps": "count", "samples_per_second": "samples/s",
    "skipped_steps": "count", "edge_sync_seconds": "s", "edge_sync_bytes": "B", "peak_rss_bytes": "B",
    "train_samples": "count", "train_wire_bytes": "B", "train_raw_bytes": "B", "eval_wire_bytes": "B",
    "act_compression": "1", "grad_compression": "1", "bubble_fraction": "1", "simulated_bubble_fraction": "1"}
RANK_COUNTERS = [
    ("forward_seconds", "s"), ("backward_seconds", "s"), ("encode_seconds", "s"), ("decode_seconds", "s"),
    ("comm_wait_seconds", "s"), ("link_wait_seconds", "s"), ("step_seconds", "s"), ("eval_seconds", "s"),
    ("idle_seconds", "s"),
    ("wait_fraction", "1"), ("busy_fraction", "1"), ("epoch_seconds", "s"), ("peak_rss_bytes", "B"),
    ("sent_bytes", "B"), ("received_bytes", "B")]
TRAFFIC_COLUMNS = [
    ("train_act_wire_bytes", "B"), ("train_act_raw_bytes", "B"), ("train_act_messages", "count"),
    ("train_grad_wire_bytes", "B"), ("train_grad_raw_bytes", "B"), ("train_grad_messages", "count"),
    ("eval_act_wire_bytes", "B"), ("eval_act_raw_bytes", "B"), ("eval_act_messages", "count"),
    ("act_encode_seconds", "s"), ("act_decode_seconds", "s"), ("act_link_wait_seconds", "s"), ("act_rel_error", "1"),
    ("grad_encode_seconds", "s"), ("grad_decode_seconds", "s"), ("grad_link_wait_seconds", "s"),
    ("grad_rel_error", "1")]
CLIENT_COLUMNS = {"epoch": "index", "samples": "count", "loss": "1", "accuracy": "1", "train_seconds": "s",
                  "edge_sync_seconds": "s", "edge_sync_bytes": "B", "sent_bytes": "B", "received_bytes": "B",
                  "link_wait_seconds": "s"}
STRING = h5py.string_dtype()


def _labelled(dataset, units, description):
    dataset.attrs["units"] = units
    dataset.attrs["description"] = description
    return dataset


def _per_epoch(group, name, values, units, dtype=float):
    """An extendible per-epoch dataset (first axis the epoch), as the writer makes them."""
    values = np.asarray(values, dtype=dtype)
    return _labelled(group.create_dataset(name, data=values, maxshape=(None,) + values.shape[1:],
                                          chunks=(64,) + values.shape[1:]), units, f"{name} per epoch")


def _counter_table(group, name, values, columns):
    data = _per_epoch(group, name, values, "see column_units")
    data.attrs["columns"] = np.array([c for c, _ in columns], dtype=STRING)
    data.attrs["column_units"] = np.array([u for _, u in columns], dtype=STRING)
    data.attrs["column_descriptions"] = np.array([c.replace("_", " ") for c, _ in columns], dtype=STRING)
    return data


def _static_table(group, columns):
    for name, (values, units) in columns.items():
        values = np.asarray(values, dtype=STRING if units == "text" else float)
        _labelled(group.create_dataset(name, data=values), units, name)


def plan(edge_first, edge_last, servers=1):
    """Stages (rank, role, first_block, end_block) of an edge-first/server/edge-last partition."""
    n = len(BLOCKS)
    middle = n - edge_first - edge_last
    starts = [edge_first + middle * i // servers for i in range(servers + 1)]
    return ([(0, "edge-first", 0, edge_first)] + [(i + 1, "server", starts[i], starts[i + 1]) for i in range(servers)]
            + [(0, "edge-last", n - edge_last, n)])


def write_run(path, *, status="complete", epochs=2, rows=None, options=None, test_acc=None, samples_per_second=None,
              train_samples=256, test_samples=64, act_ratio=1.0, grad_ratio=1.0, header_bytes=16, link_bps=None,
              format_version=2):
    """A run file at `path` of a run planned for `epochs` epochs that logged `rows` of them
    (default all). act_ratio/grad_ratio: wire/raw of the codec per direction (headers added per
    message); link_bps: one emulated link (bit/s) or None."""
    rows = epochs if rows is None else rows
    opts = {"epochs": epochs, "edge-first": 1, "edge-last": 1, "model": "lenet5", "dataset": "synthetic",
            "fwd-codec": "none", "bwd-codec": "none", "seed": 1, "lr": 0.05, "batch-size": 32, "chunks": 1,
            "link": "" if link_bps is None else f"bandwidth={link_bps:g}bit", "overwrite": 1,
            # HDF5 strings are UTF-8: a file name that is not (a test of odd names) shows U+FFFD.
            "output": os.fsencode(path).decode("utf-8", "replace")}
    opts.update(options or {})
    stages = plan(int(opts["edge-first"]), int(opts["edge-last"]))
    test_acc = [0.5 + 0.1 * i for i in range(rows)] if test_acc is None else test_acc[:rows]
    rates = [1000.0 + i for i in range(rows)] if samples_per_second is None else samples_per_second[:rows]
    steps = train_samples // int(opts["batch-size"])

    with h5py.File(path, "w") as f:
        attrs = {"format_version": np.int64(format_version), "status": status, "run_id": f"test-{os.getpid()}",
                 "start_time": "2026-01-01T00:00:00+0000", "end_time": "" if status == "running" else
                 "2026-01-01T00:01:00+0000", "splitpipe_version": "test", "libtorch_version": "test",
                 "hostnames": "localhost", "world_size": np.int64(2), "config": "", "weights_digest": "0",
                 "resolved_config": "[train]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items())}
        f.attrs.update(attrs)
        options_group = f.create_group("options")
        for name, value in opts.items():
            options_group.attrs[name] = (np.int64(value) if isinstance(value, int) else
                                         np.float64(value) if isinstance(value, float) else str(value))

        links = f.create_group("links")
        one = [] if link_bps is None else [0]
        _static_table(links, {"client": (one, "index"), "bits_per_second": ([link_bps] * len(one), "bit/s"),
                              "latency_seconds": ([0.0] * len(one), "s"), "shape_up": ([1] * len(one), "1"),
                              "shape_down": ([1] * len(one), "1")})

        model = f.create_group("model")
        _static_table(model, {"index": (range(len(BLOCKS)), "index"), "name": ([b[0] for b in BLOCKS], "text"),
                              "output_shape": ([b[1] for b in BLOCKS], "text"),
                              "parameters": ([b[2] for b in BLOCKS], "count")})
        ranks = f.create_group("ranks")
        _static_table(ranks, {"stage": (range(len(stages)), "index"), "rank": ([s[0] for s in stages], "index"),
                              "role": ([s[1] for s in stages], "text"),
                              "first_block": ([s[2] for s in stages], "index"),
                              "end_block": ([s[3] for s in stages], "index"),
                              "parameters": ([sum(b[2] for b in BLOCKS[s[2]:s[3]]) for s in stages], "count"),
                              "estimated_seconds": ([0.01] * len(stages), "s")})

        # One boundary per cut: after each stage but the last.
        cuts = [s[3] - 1 for s in stages[:-1]]
        raw = [4.0 * np.prod([int(d) for d in BLOCKS[b][1].split("x")]) for b in cuts]
        boundaries = f.create_group("boundaries")
        _static_table(boundaries, {"index": (range(len(cuts)), "index"), "from_stage": (range(len(cuts)), "index"),
                                   "to_stage": ([b + 1 for b in range(len(cuts))], "index"),
                                   "from_block": (cuts, "index"), "to_block": ([b + 1 for b in cuts], "index"),
                                   "activation_shape": ([BLOCKS[b][1] for b in cuts], "text"),
                                   "raw_bytes_per_sample": (raw, "B")})
        traffic = np.zeros((rows, len(cuts), len(TRAFFIC_COLUMNS)))
        column = {name: i for i, (name, _) in enumerate(TRAFFIC_COLUMNS)}
        for b, raw_bytes in enumerate(raw):
            for direction, ratio, samples, prefix in (("act", act_ratio, train_samples, "train"),
                                                      ("grad", grad_ratio, train_samples, "train"),
                                                      ("act", act_ratio, test_samples, "eval")):
                traffic[:, b, column[f"{prefix}_{direction}_raw_bytes"]] = samples * raw_bytes
                traffic[:, b, column[f"{prefix}_{direction}_wire_bytes"]] = samples * raw_bytes * ratio + steps * header_bytes
                traffic[:, b, column[f"{prefix}_{direction}_messages"]] = steps
        _counter_table(boundaries, "traffic", traffic, TRAFFIC_COLUMNS)

        train_wire = traffic[:, :, [column["train_act_wire_bytes"], column["train_grad_wire_bytes"]]].sum(axis=(1, 2))
        train_raw = traffic[:, :, [column["train_act_raw_bytes"], column["train_grad_raw_bytes"]]].sum(axis=(1, 2))
        epochs_group = f.create_group("epochs")
        values = {"epoch": range(1, rows + 1), "lr": [0.05] * rows, "train_loss": [1.0 / (i + 1) for i in range(rows)],
                  "train_acc": test_acc, "test_loss": [1.0 / (i + 1) for i in range(rows)], "test_acc": test_acc,
                  "epoch_seconds": [train_samples / r + 0.1 for r in rates],
                  "train_seconds": [train_samples / r for r in rates], "steps": [steps] * rows,
                  "samples_per_second": rates, "skipped_steps": [0] * rows, "edge_sync_seconds": [0] * rows,
                  "edge_sync_bytes": [0] * rows, "peak_rss_bytes": [2e8] * rows, "train_samples": [train_samples] * rows,
                  "train_wire_bytes": train_wire, "train_raw_bytes": train_raw,
                  "eval_wire_bytes": traffic[:, :, column["eval_act_wire_bytes"]].sum(axis=1),
                  "act_compression": [act_ratio if cuts else np.nan] * rows,
                  "grad_compression": [grad_ratio if cuts else np.nan] * rows,
                  "bubble_fraction": [0.3] * rows, "simulated_bubble_fraction": [0.33] * rows}
        for name, units in EPOCH_COLUMNS.items():
            _per_epoch(epochs_group, name, values[name], units)
        _per_epoch(f, "confusion", np.zeros((rows, 10, 10)), "count", dtype=np.int64)

        for rank in (0, 1):
            counters = np.array([[0.1, 0.2, 0.01, 0.01, 0.05, 0.0, 0.4, 0.05, 0.0, 0.125, 0.8, 0.5, 1e8 * (1 + rank),
                                  train_wire[i] / 2, train_wire[i] / 2] for i in range(rows)]).reshape(rows, len(RANK_COUNTERS))
            _counter_table(ranks.create_group(f"rank{rank}"), "counters", counters, RANK_COUNTERS)

        client = f.create_group("clients").create_group("0")
        client_values = {"epoch": values["epoch"], "samples": values["train_samples"], "loss": values["train_loss"],
                         "accuracy": test_acc, "train_seconds": values["train_seconds"],
                         "edge_sync_seconds": [0] * rows, "edge_sync_bytes": [0] * rows,
                         "sent_bytes": train_wire / 2, "received_bytes": train_wire / 2, "link_wait_seconds": [0] * rows}
        for name, units in CLIENT_COLUMNS.items():
            _per_epoch(client, name, client_values[name], units)

        schema = f.create_group("schema")
        entries = [(f"/epochs/{n}", "dataset", "float64 [epoch]", u) for n, u in EPOCH_COLUMNS.items()]
        entries += [(f"/ranks/rank<r>/counters:{n}", "column", "float64", u) for n, u in RANK_COUNTERS]
        entries += [(f"/boundaries/traffic:{n}", "column", "float64", u) for n, u in TRAFFIC_COLUMNS]
        for i, name in enumerate(("path", "kind", "type", "units")):
            _static_table(schema, {name: ([e[i] for e in entries], "text")})
        _static_table(schema, {"description": ([e[0] for e in entries], "text")})
