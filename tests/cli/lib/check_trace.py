"""Checks a --trace file against the schedules --print-schedule printed for the same run.

Usage: check_trace.py TRACE.json SCHEDULE.txt RANKS STEPS
Exit 0 when every check holds, else 1 with one line per failure. Checks: the file is valid
JSON in the Trace Event Format; one named track (process) per rank; every event is a complete
("X") event with ts, dur >= 0; exactly STEPS steps are traced, and on every rank each traced
step's "action" events, in time order, are that rank's program of the training schedule; a
rank's actions do not overlap; encode/decode/wait spans lie inside their action.
"""
import json
import re
import sys
from collections import defaultdict

path, schedule_path, ranks, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
failures = []


def fail(message):
    failures.append(message)
    print("FAIL:", message)


with open(path) as f:
    trace = json.load(f)
events = trace["traceEvents"]

# The training schedule is the first one printed: "  rank R (stages ...): A A A".
programs = {}
with open(schedule_path) as f:
    for line in f:
        m = re.match(r"\s+rank (\d+) \(stages[^)]*\):(.*)$", line)
        if m and int(m.group(1)) not in programs:
            programs[int(m.group(1))] = m.group(2).split()
if sorted(programs) != list(range(ranks)):
    fail(f"the schedule printout has programs for ranks {sorted(programs)}, want 0..{ranks - 1}")

names = {e["pid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e["name"] == "process_name"}
if sorted(names) != list(range(ranks)) or any(not names[r].startswith(f"rank {r} (") for r in names):
    fail(f"one named track per rank expected, got {names}")

spans = [e for e in events if e.get("ph") != "M"]
bad = [e for e in spans if e.get("ph") != "X" or e["ts"] < 0 or e["dur"] < 0 or e["pid"] not in range(ranks)]
if bad:
    fail(f"{len(bad)} events are not complete events with ts, dur >= 0 on a rank's track, e.g. {bad[0]}")

traced_steps = sorted({e["args"]["step"] for e in spans})
if traced_steps != list(range(steps)):
    fail(f"traced steps {traced_steps}, want 0..{steps - 1}")

actions = defaultdict(list)  # (rank, step) -> action events
for e in spans:
    if e["cat"] == "action":
        actions[(e["pid"], e["args"]["step"])].append(e)
checked = 0
for rank in range(ranks):
    for step in range(steps):
        got = sorted(actions[(rank, step)], key=lambda e: e["ts"])
        if [e["name"] for e in got] != programs.get(rank):
            fail(f"rank {rank} step {step}: actions {[e['name'] for e in got]} != program {programs.get(rank)}")
            continue
        checked += len(got)
        for a, b in zip(got, got[1:]):
            if a["ts"] + a["dur"] > b["ts"] + 0.01:
                fail(f"rank {rank} step {step}: {a['name']} overlaps {b['name']}")
                break
        for e in spans:  # sub-spans inside the action of the same stage and micro-batch
            if e["pid"] != rank or e["args"]["step"] != step or e["cat"] not in ("codec",) and e["name"] != "wait":
                continue
            if "microbatch" not in e["args"]:
                continue
            inside = [a for a in got if a["args"].get("stage") == e["args"]["stage"]
                      and a["args"].get("microbatch") == e["args"]["microbatch"]
                      and a["ts"] - 0.01 <= e["ts"] and e["ts"] + e["dur"] <= a["ts"] + a["dur"] + 0.01]
            if not inside:
                fail(f"rank {rank} step {step}: {e['name']} of micro-batch {e['args']['microbatch']} is in no action")
                break
expected = sum(len(programs.get(r, [])) for r in range(ranks)) * steps
if checked != expected:
    fail(f"{checked} action events match the schedule, want {expected} (one per action per traced step)")
print(f"{checked} action events in {steps} steps on {ranks} ranks match the schedule; {len(spans)} events in all")
sys.exit(1 if failures else 0)
