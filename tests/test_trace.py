"""Chrome / Perfetto traces: a profile's trace and the bench trace, checked against the Trace Event Format.

The format (Google's "Trace Event Format" document, the JSON Object Format) is encoded below as a JSON schema for
the event phases pyprof writes, plus the structural rules a schema cannot say: complete events on one track nest or
follow one another, and counters carry numbers only.
"""

import gzip
import json

import numpy as np
import pytest

from pyprof.report.trace import (
    KernelTable,
    merge_tables,
    profile_trace,
    write_chrome_trace,
    write_profile_trace,
)

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the trace format (pip install jsonschema)")

_NUM = {"type": "number"}
_ID = {"type": "integer", "minimum": 0}
TRACE_EVENT_FORMAT = {
    "type": "object",
    "required": ["traceEvents"],
    "properties": {
        "traceEvents": {"type": "array", "items": {"oneOf": [
            {"type": "object", "required": ["name", "ph", "ts", "dur", "pid", "tid"],  # complete event
             "properties": {"ph": {"const": "X"}, "name": {"type": "string"}, "cat": {"type": "string"},
                            "ts": {**_NUM, "minimum": 0}, "dur": {**_NUM, "minimum": 0}, "pid": _ID, "tid": _ID,
                            "args": {"type": "object"}}},
            {"type": "object", "required": ["name", "ph", "ts", "pid", "args"],  # counter event
             "properties": {"ph": {"const": "C"}, "name": {"type": "string"}, "ts": {**_NUM, "minimum": 0},
                            "pid": _ID, "args": {"type": "object", "minProperties": 1,
                                                 "additionalProperties": _NUM}}},
            {"type": "object", "required": ["name", "ph", "pid", "args"],  # metadata event
             "properties": {"ph": {"const": "M"}, "pid": _ID, "tid": _ID,
                            "name": {"enum": ["process_name", "thread_name", "process_sort_index",
                                              "thread_sort_index"]},
                            "args": {"type": "object", "minProperties": 1}}},
            {"type": "object", "required": ["name", "ph", "ts", "pid", "s"],  # instant event
             "properties": {"ph": {"const": "i"}, "s": {"enum": ["g", "p", "t"]}, "ts": _NUM, "pid": _ID}},
        ]}},
        "displayTimeUnit": {"enum": ["ms", "ns"]},
        "otherData": {"type": "object"},
    },
}


def check_trace(t):
    """Validate against the schema and the structural rules; returns the events by phase."""
    jsonschema.validate(t, TRACE_EVENT_FORMAT)
    by_track = {}
    for e in t["traceEvents"]:
        if e["ph"] == "X":
            by_track.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
    eps = 1e-6
    for spans in by_track.values():
        stack = []
        for s, e in sorted(spans, key=lambda x: (x[0], -x[1])):
            while stack and s >= stack[-1] - eps:
                stack.pop()
            assert not stack or e <= stack[-1] + eps, "complete events on one track overlap without nesting"
            stack.append(e)
    named = {e["tid"] for e in t["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {tid for _pid, tid in by_track} <= named, "every track has a thread name"
    return {ph: [e for e in t["traceEvents"] if e["ph"] == ph] for ph in "XCMi"}


def _profile_dict(indices=(1, 2, 3), perturbed=(1,)):
    # Two ops in signature 0: mm 300 FLOP (75%), addmm 100 FLOP (25%); steps take 0.5 s with 400 FLOP each
    steps = [{"index": i, "wall_time_s": 0.5, "analytic_flops": 400, "analytic_origin": "counted" if i in perturbed
              else "reused", "signature_id": 0, "examples": 4, "perturbed": i in perturbed} for i in indices]
    return {"run": {"name": "t"}, "steps": steps,
            "flop_counts": [{"by_op": {"aten.mm": {"calls": 3, "flops": 300}, "aten.addmm": {"calls": 1, "flops": 100},
                                       "aten.view": {"calls": 9, "flops": 0}}}],
            "reconciliation": {"peaks": [{"kind": "theoretical", "flops_per_s": 1000.0, "precision": "fp32"},
                                         {"kind": "measured", "flops_per_s": 800.0, "precision": "fp32"}]}}


def test_profile_trace_is_valid_and_carries_steps_ops_and_counters():
    ev = check_trace(profile_trace(_profile_dict()))
    steps = [e for e in ev["X"] if e["cat"] == "step"]
    ops = [e for e in ev["X"] if e["cat"] == "op"]
    assert [e["name"] for e in steps] == ["step 1", "step 2", "step 3"]
    assert steps[1]["ts"] == pytest.approx(0.5e6) and steps[1]["dur"] == pytest.approx(0.5e6)  # 0.5 s in us
    assert steps[1]["args"]["flops"] == 400 and steps[1]["args"]["flop_per_s"] == pytest.approx(800)  # 400 / 0.5
    # ops of a step: mm first (largest), width 75% of the step; no zero-FLOP op (aten.view)
    assert [e["name"] for e in ops[:2]] == ["aten.mm", "aten.addmm"]
    assert ops[0]["args"]["flops"] == 300 and ops[0]["dur"] == pytest.approx(0.75 * 0.5e6)
    assert "not measured" in ops[0]["args"]["timing"]
    # counters: one sample per step with a timing (step 1 is the counting step, perturbed: none)
    fps = [e for e in ev["C"] if e["name"] == "achieved FLOP/s"]
    util = [e for e in ev["C"] if e["name"] == "utilization"]
    assert [e["ts"] for e in fps] == pytest.approx([0.5e6, 1.0e6])
    # 800 FLOP/s against 1000 (theoretical) = 0.8 and against 800 (measured) = 1.0
    assert util[0]["args"] == pytest.approx({"vs theoretical peak": 0.8, "vs measured peak": 1.0})
    names = {e["args"]["name"] for e in ev["M"] if e["name"] == "thread_name"}
    assert any(n.startswith("steps") for n in names) and any(n.startswith("ops") for n in names)


def test_profile_trace_marks_unrecorded_steps_and_does_not_join_counters_across_them():
    ev = check_trace(profile_trace(_profile_dict(indices=(1, 2, 7, 8), perturbed=())))
    assert [e["name"] for e in ev["i"]] == ["steps 3-6 not recorded"]
    fps = [e["args"]["FLOP/s"] for e in ev["C"] if e["name"] == "achieved FLOP/s"]
    # 800, 800, then a 0 at the gap so the line is not drawn across steps 3-6, then 800, 800
    assert fps == pytest.approx([800, 800, 0, 800, 800])


def test_a_real_profile_trace_file_is_valid(tmp_path):
    from pyprof.bench.examples import run_example

    r = run_example("mlp", batch=4, steps=3, warmup=1, measure_peak=False)
    p = write_profile_trace(r.to_dict(), tmp_path / "trace.json.gz")
    with gzip.open(p, "rt") as f:
        t = json.load(f)
    ev = check_trace(t)
    assert any(e["cat"] == "op" and e["name"] == "aten.mm" and e["args"]["flops"] > 0 for e in ev["X"])
    assert any(e["name"] == "utilization" for e in ev["C"])


def test_bench_trace_has_thread_names_and_validates(tmp_path):
    t = KernelTable.from_rows([("aten::mm", 0, 1000, 2e6, 7), ("aten::relu", 1000, 1500, 0.0, 7)])
    merged = merge_tables([("MLP", t), ("CNN", t)])
    write_chrome_trace(merged, tmp_path / "b.json.gz", process_name="pyprof bench")
    with gzip.open(tmp_path / "b.json.gz", "rt") as f:
        ev = check_trace(json.load(f))
    names = sorted(e["args"]["name"] for e in ev["M"] if e["name"] == "thread_name")
    assert names == ["CNN", "MLP"]
    assert [e["args"]["flops"] for e in ev["X"] if e["name"] == "MLP: aten::mm"] == [2e6]


def test_bench_trace_rows_carry_the_flops_of_their_children():
    """The bench keeps the outermost classified op (aten::linear); torch puts FLOPs on its child (aten::addmm)."""
    torch = pytest.importorskip("torch")
    import torch.profiler as tp

    from pyprof.report.trace import table_from_torch_profiler

    lin = torch.nn.Linear(64, 32)
    x = torch.randn(16, 64)
    with tp.profile(activities=[tp.ProfilerActivity.CPU], with_flops=True) as prof:
        lin(x)
    t = table_from_torch_profiler(prof)
    rows = {t.names[i]: f for i, f in zip(t.name_id.tolist(), t.flops.tolist())}
    # 2 x 16 x 64 x 32 = 65,536 FLOPs of the GEMM inside aten::linear (it was 0 before: issue 14)
    assert rows["aten::linear"] == 65_536
    assert np.count_nonzero(t.flops) >= 1
