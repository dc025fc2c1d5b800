#!/usr/bin/python3
"""Checks a run file against the schema table `splitpipe --print-schema` prints.

    check_schema.py SCHEMA.md RUN.h5 RANKS CLIENTS LINKED

Every attribute, dataset and counter-table column of the file must have a schema entry, carry
that entry's units and description, and every entry must be present (instantiated for each
rank r < RANKS and client c < CLIENTS). The file's own /schema must equal the printed table,
option attributes must be typed (int64, uint64, float64 or string), per-epoch tables must agree
on their rows, and /links has CLIENTS rows when LINKED is 1, else none. Prints one line per
problem; exit status 1 if there is any.
"""
import re
import sys

import h5py
import numpy as np


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def read_schema(markdown_path):
    entries = []
    for line in open(markdown_path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            entries.append(dict(zip(("path", "kind", "type", "units", "description"),
                                    [cells[0].strip("`")] + cells[1:])))
    return entries


def pattern_regex(pattern):
    """'/ranks/rank<r>/counters' -> a regex; <r>, <c> match digits, <option> a name."""
    out = ""
    for part in re.split(r"(<[a-z]+>)", pattern):
        out += ("[^/]+" if part == "<option>" else r"\d+") if part.startswith("<") else re.escape(part)
    return re.compile(out + "$")


def main():
    schema_md, path, ranks, clients, linked = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    schema = read_schema(schema_md)
    problems = []
    if len(schema) < 50:
        problems.append(f"the printed schema has only {len(schema)} entries")
    compiled = [(pattern_regex(e["path"]), e) for e in schema]

    def entry_for(name):
        for regex, entry in compiled:
            if regex.match(name):
                return entry
        return None

    seen = set()
    with h5py.File(path, "r") as f:
        # The file's own copy of the table is the printed one.
        in_file = [dict(zip(("path", "kind", "type", "units", "description"), map(text, row)))
                   for row in zip(*(f["schema"][c][:] for c in ("path", "kind", "type", "units", "description")))]
        if in_file != schema:
            problems.append(f"/schema in the file ({len(in_file)} entries) differs from --print-schema ({len(schema)})")

        def attributes(owner, prefix):
            for name, value in owner.attrs.items():
                entry = entry_for(f"{prefix}@{name}")
                if entry is None:
                    problems.append(f"attribute {prefix}@{name} is not in the schema")
                    continue
                seen.add(entry["path"])
                if prefix == "/options/" and not isinstance(value, (str, bytes, np.integer, np.floating)):
                    problems.append(f"option {name} has type {type(value).__name__}")

        attributes(f, "/")
        attributes(f["options"], "/options/")
        for name in ("epochs", "lr", "seed", "fwd-codec"):
            value = f["options"].attrs.get(name)
            want = {"epochs": np.integer, "lr": np.floating, "seed": np.integer, "fwd-codec": (str, bytes)}[name]
            if not isinstance(value, want):
                problems.append(f"/options/@{name} = {value!r} is not typed as {want}")

        def visit(name, obj):
            full = "/" + name
            if not isinstance(obj, h5py.Dataset):
                return
            entry = entry_for(full)
            if entry is None:
                problems.append(f"dataset {full} is not in the schema")
                return
            seen.add(entry["path"])
            for key in ("units", "description"):
                if text(obj.attrs.get(key, "<missing>")) != entry[key]:
                    problems.append(f"{full}: {key} {text(obj.attrs.get(key, '<missing>'))!r}, schema {entry[key]!r}")
            if "columns" in obj.attrs:
                columns = [text(c) for c in obj.attrs["columns"]]
                units = [text(u) for u in obj.attrs["column_units"]]
                described = [text(d) for d in obj.attrs["column_descriptions"]]
                want = [e for e in schema if e["path"].startswith(entry["path"] + ":")]
                if columns != [e["path"].split(":", 1)[1] for e in want]:
                    problems.append(f"{full}: columns {columns} differ from the schema's")
                elif units != [e["units"] for e in want] or described != [e["description"] for e in want]:
                    problems.append(f"{full}: column units or descriptions differ from the schema's")
                if obj.shape[-1] != len(columns):
                    problems.append(f"{full}: last axis {obj.shape[-1]} for {len(columns)} columns")
                seen.update(e["path"] for e in want)

        f.visititems(visit)

        # Every entry is there (for the ranks and clients this run has).
        for entry in schema:
            if entry["path"] in seen or entry["path"] == "/@end_time" and text(f.attrs["status"]) == "running":
                continue
            problems.append(f"schema entry {entry['path']} is missing from the file")
        for r in range(ranks):
            if f"ranks/rank{r}/counters" not in f:
                problems.append(f"/ranks/rank{r}/counters is missing")
        for c in range(clients):
            if f"clients/{c}" not in f:
                problems.append(f"/clients/{c} is missing")

        epochs = f["epochs/epoch"].shape[0]
        per_epoch = {"/confusion": f["confusion"].shape[0], "/boundaries/traffic": f["boundaries/traffic"].shape[0]}
        per_epoch.update({f"/epochs/{n}": d.shape[0] for n, d in f["epochs"].items()})
        per_epoch.update({f"/ranks/rank{r}/counters": f[f"ranks/rank{r}/counters"].shape[0] for r in range(ranks)})
        for c in range(clients):
            per_epoch.update({f"/clients/{c}/{n}": d.shape[0] for n, d in f[f"clients/{c}"].items()})
        unequal = {k: v for k, v in per_epoch.items() if v != epochs}
        if unequal:
            problems.append(f"per-epoch tables disagree with /epochs ({epochs} rows): {unequal}")
        links = f["links/bits_per_second"].shape[0]
        if links != (clients if linked else 0):
            problems.append(f"/links has {links} rows, want {clients if linked else 0}")
        boundaries = f["boundaries/index"].shape[0]
        if f["boundaries/traffic"].shape[1:] != (boundaries, len(f["boundaries/traffic"].attrs["columns"])):
            problems.append(f"/boundaries/traffic shape {f['boundaries/traffic'].shape} for {boundaries} boundaries")
    for p in problems:
        print(f"  {path}: {p}")
    print(f"  {path}: {len(seen)} schema entries seen, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
