"""HTML reports: every number shown is in the JSON, untrusted names are escaped, plots are inline SVG."""

import json
import re
from html.parser import HTMLParser

import pytest

from pyprof.report.bench_schema import BenchReport, MicroResult, WorkloadResult
from pyprof.report.html import render_bench_html, render_profile_html


def _leaves(x, out):
    if isinstance(x, dict):
        for v in x.values():
            _leaves(v, out)
    elif isinstance(x, list):
        for v in x:
            _leaves(v, out)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        out.add(float(x))
    return out


class _Cells(HTMLParser):
    """Collect numeric table cells: their text and the data-v values inside them."""

    def __init__(self):
        super().__init__()
        self.cells, self._in, self._text, self._vals = [], 0, [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "num" in (a.get("class") or "").split():
            self._in, self._text, self._vals = 1, [], []
        elif self._in and tag == "span" and "data-v" in a:
            self._vals.append(a["data-v"])

    def handle_endtag(self, tag):
        if tag == "td" and self._in:
            self.cells.append(("".join(self._text).strip(), list(self._vals)))
            self._in = 0

    def handle_data(self, data):
        if self._in:
            self._text.append(data)


def sample_report(name="ResNet-18"):
    w = WorkloadResult(id="w", name=name, family="cnn", source="pyprof.bench.models", params=11689512, steps_timed=3,
                       step_time_s_median=0.123456, examples_per_s=64.8, flops_per_step=2.2e10,
                       achieved_flops_per_s=1.78e11, utilization_vs_spec=0.0514, utilization_vs_measured=0.0721,
                       assumed_utilization=0.17, error_factor=3.307, error_direction="overestimate",
                       step_utilization_vs_spec=[0.05, 0.052, 0.0514],
                       kernel_time_s={"gemm": 0.01, "conv": 0.08, "attention": 0.0, "elementwise": 0.02, "other": 0.013})
    m = MicroResult(id="gemm/fp32/64", family="gemm", name="GEMM", dtype="fp32", shape="64", flops=524288.0,
                    bytes=49152.0, time_s_median=1.1e-5, achieved_flops_per_s=4.77e10, intensity_flop_per_byte=10.67,
                    peak_flops_per_s=4e11, roofline_bound_flops_per_s=1.4e11, bound="memory",
                    utilization_vs_peak=0.119, fraction_of_roofline=0.34)
    skipped = WorkloadResult(id="vgg", name="VGG-11", family="cnn", status="skipped", reason="no torchvision")
    return BenchReport(run={"preset": "quick", "pyprof_version": "0", "torch_version": "t", "started_at": "now",
                            "wall_time_s": 12.5},
                       device={"kind": "cpu", "name": "Test CPU"}, sources={"workload_time": "wall"},
                       peaks={"precision": "fp32", "spec": {"flops_per_s": 3.456e11, "kind": "theoretical", "source": "x"},
                              "measured": {"flops_per_s": 2.47e11, "kind": "measured", "source": "y"},
                              "memory_bandwidth": {"bytes_per_s": 1.3e10, "method": "triad"}},
                       assumed_utilization=0.17, assumed_utilization_source="AI and compute",
                       throttle={"note": "none"}, microbenchmarks=[m], workloads=[w, skipped]).to_dict()


def _parse_display(text):
    m = re.match(r"^([-\d.,]+(?:e[-+]?\d+)?)\s*([kMGTPE]?)", text)
    return float(m.group(1).replace(",", "")) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
                                                  "E": 1e18}[m.group(2)]


def test_every_number_in_html_is_in_json():
    d = sample_report()
    html = render_bench_html(d, with_plots=False)
    nums = _leaves(json.loads(json.dumps(d)), set())
    p = _Cells()
    p.feed(html)
    assert len(p.cells) > 15
    for text, vals in p.cells:
        if text == "n/a":
            continue
        assert vals, f"numeric cell {text!r} has no data-v: its number is not tied to the JSON"
        for v in vals:
            assert float(v) in nums, f"{v} shown in the HTML is not in the JSON"
        if len(vals) == 1:  # the text shown is the JSON value, rounded
            shown, v = _parse_display(text), float(vals[0])
            v = v * 100 if text.endswith("%") else v
            assert shown == pytest.approx(v, rel=5e-3, abs=0.051), (text, vals)
    # a number dropped from the JSON fails the check: the test can fail
    assert 0.0514 in nums and "data-v=\"0.0514\"" in html


def test_untrusted_names_are_escaped():
    d = sample_report(name="<script>alert(1)</script>")
    html = render_bench_html(d, with_plots=True)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_plots_are_inline_svg_and_offline():
    html = render_bench_html(sample_report())
    assert html.count("<svg") >= 4
    assert not re.search(r"""(src|href)=["']https?://""", html), "the report must not load anything from the network"


def test_profile_report_renders():
    from pyprof.bench.examples import run_example
    r = run_example("mlp", batch=8, steps=3, warmup=1, measure_peak=False)
    html = render_profile_html(r)
    assert "example-mlp" in html and "<svg" in html and "aten.mm" in html


# --- issue 14, item 3: what a reader stumbles on


def test_a_long_peak_note_is_a_footnote_not_a_paragraph_in_every_row():
    from pyprof.report.bench_schema import MicroResult

    d = sample_report()
    long = ("measured FP32 peak (no bf16 peak kernel: AMX / AVX512-BF16 units can exceed it, so utilization above 1 "
            "is possible)")
    d["microbenchmarks"] = [MicroResult(id=f"gemm/bf16/{n}", family="gemm", name="GEMM", dtype="bf16", shape=str(n),
                                        peak_kind=long).__dict__ for n in (64, 128, 256)]
    for m in d["microbenchmarks"]:
        m["status"] = "ok"
    html = render_bench_html(d, with_plots=False)
    # three bf16 rows: the short label three times, the long note once, as footnote 1
    assert html.count("no bf16 peak kernel") == 1
    assert html.count(">measured FP32 peak<sup>") == 3 and 'id="peak-note-1"' in html


def test_identical_workload_notes_are_listed_once():
    d = sample_report()
    for w in d["workloads"]:
        w["notes"] = ["the same long note"]
    html = render_bench_html(d, with_plots=False)
    assert html.count("the same long note") == 1


def test_steps_plot_breaks_the_line_at_unrecorded_steps():
    import math

    from pyprof.report.plots import _gapped

    xs, ys = _gapped([1, 2, 5, 6], [1.0, 2.0, 5.0, 6.0])
    # a NaN between steps 2 and 5 (at 3.5) so matplotlib lifts the pen there; no NaN between 1-2 and 5-6
    assert xs == [1, 2, 3.5, 5, 6]
    assert [math.isnan(y) for y in ys] == [False, False, True, False, False]


def test_profile_html_has_a_legend_per_panel_and_learning_curves():
    from pyprof.accounting.efficiency import LearningCurve
    from pyprof.bench.examples import run_example

    r = run_example("mlp", batch=4, steps=3, warmup=1, measure_peak=False)
    c = LearningCurve("mlp", metric_name="loss", higher_is_better=False)
    c.log(1e9, 2.0)
    c.log(2e9, 1.5)
    r.learning_curves = [c.to_dict()]
    html = render_profile_html(r)
    assert 'id="fig-curves"' in html and 'id="fig-steps"' in html
    # two step panels, each with its legend (the twin-axis plot had none), and the learning-curve plot with one
    assert len(re.findall(r'id="legend_\d+"', html)) >= 3
