"""Plots of reports as inline SVG strings (matplotlib, Agg). Each function reads the JSON-ready report dict only.

Text in the SVGs is drawn as paths, so the file needs no fonts and the HTML stays self-contained. Where matplotlib
is missing, :func:`available` says why and the HTML shows that reason instead of the plots.
"""

from __future__ import annotations

import io
import itertools
import re
from typing import Any

from pyprof.report.bench_schema import KERNEL_CLASSES

_COLORS = {"gemm": "#4c72b0", "conv": "#dd8452", "attention": "#55a868", "elementwise": "#c44e52", "other": "#8c8c8c"}


def available() -> tuple[bool, str]:
    """(True, "") when matplotlib imports, else (False, reason)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot

        return True, ""
    except Exception as e:
        return False, f"plots need matplotlib ({type(e).__name__}: {e}); `pip install matplotlib`"


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    s = buf.getvalue()
    s = s[s.index("<svg"):]  # drop the XML prolog and doctype: the SVG is inlined in HTML
    return re.sub(r"<metadata>.*?</metadata>", "", s, flags=re.S)


def _fig(w: float = 8.0, h: float = 4.0) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "path"
    matplotlib.rcParams["svg.hashsalt"] = "pyprof"  # stable ids: the same report renders the same bytes
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def utilization_per_workload(d: dict[str, Any]) -> str | None:
    """Bars of utilization vs spec/theoretical and vs measured peak per workload, with the 33% and 17% lines."""
    ws = [w for w in d.get("workloads", []) if w["status"] == "ok" and w.get("utilization_vs_spec") is not None]
    if not ws:
        return None
    fig, ax = _fig(8, 0.5 * len(ws) + 1.8)
    names = [w["name"] for w in ws]
    y = range(len(ws))
    ax.barh([i + 0.2 for i in y], [100 * w["utilization_vs_spec"] for w in ws], 0.4, label="vs spec/theoretical peak",
            color="#4c72b0")
    ax.barh([i - 0.2 for i in y], [100 * (w.get("utilization_vs_measured") or 0) for w in ws], 0.4,
            label="vs measured peak", color="#55a868")
    ax.axvline(33, color="#c44e52", ls="--", label="33% (GPU assumption)")
    ax.axvline(17, color="#dd8452", ls=":", label="17% (CPU assumption)")
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel("utilization (%)")
    _legend_below(ax, ncol=2)  # inside the axes it covered the bars of the last workloads
    ax.set_title("Measured utilization per workload against the Method 2 assumptions")
    return _svg(fig)


def achieved_vs_peaks(d: dict[str, Any]) -> str | None:
    """Achieved FLOP/s per workload, with the spec/theoretical and measured peaks as lines (log scale)."""
    ws = [w for w in d.get("workloads", []) if w["status"] == "ok" and w.get("achieved_flops_per_s")]
    if not ws:
        return None
    fig, ax = _fig(8, 0.5 * len(ws) + 1.8)
    ax.barh([w["name"] for w in ws], [w["achieved_flops_per_s"] for w in ws], color="#4c72b0", label="achieved")
    pk = d.get("peaks", {})
    for key, style, col in (("spec", "--", "#c44e52"), ("measured", ":", "#55a868")):
        if pk.get(key) and pk[key].get("flops_per_s"):
            ax.axvline(pk[key]["flops_per_s"], ls=style, color=col, label=f"{pk[key].get('kind', key)} peak")
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("FLOP/s")
    _legend_below(ax, ncol=3)
    ax.set_title("Achieved FLOP/s against the peaks")
    return _svg(fig)


def roofline(d: dict[str, Any]) -> str | None:
    """The microbenchmarks on a roofline: intensity (FLOP/B) against achieved FLOP/s, with both roofs."""
    ms = [m for m in d.get("microbenchmarks", []) if m["status"] == "ok" and m.get("intensity_flop_per_byte")
          and m.get("achieved_flops_per_s")]
    bw = (d.get("peaks", {}).get("memory_bandwidth") or {}).get("bytes_per_s")
    peak = (d.get("peaks", {}).get("measured") or d.get("peaks", {}).get("spec") or {}).get("flops_per_s")
    if not ms:
        return None
    import numpy as np

    fig, ax = _fig(8, 5)
    xs = [m["intensity_flop_per_byte"] for m in ms]
    lo, hi = min(xs) / 3, max(xs) * 3
    if bw and peak:
        x = np.geomspace(lo, hi, 200)
        ax.plot(x, np.minimum(peak, x * bw), color="black", lw=1.5, label="roofline (measured peak, triad bandwidth)")
    fams = sorted({m["family"] for m in ms})
    marks = dict(zip(fams, "osD^v<>"))
    for fam in fams:
        sel = [m for m in ms if m["family"] == fam]
        ax.scatter([m["intensity_flop_per_byte"] for m in sel], [m["achieved_flops_per_s"] for m in sel],
                   marker=marks[fam], label=fam, s=36)
        for m in sel:  # a point a reader cannot name is no use: label each with its dtype and shape
            ax.annotate(_point_label(m), (m["intensity_flop_per_byte"], m["achieved_flops_per_s"]),
                        textcoords="offset points", xytext=(4, 3), fontsize=6.5, color="#333")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("achieved FLOP/s")
    _legend_below(ax, ncol=3)
    ax.set_title("Roofline of the microbenchmarks")
    return _svg(fig)


def kernel_breakdown(d: dict[str, Any]) -> str | None:
    """Stacked bars: share of traced time by kernel class per workload."""
    ws = [w for w in d.get("workloads", []) if w["status"] == "ok" and w.get("kernel_time_s")]
    if not ws:
        return None
    fig, ax = _fig(8, 0.5 * len(ws) + 1.8)
    left = [0.0] * len(ws)
    for c in KERNEL_CLASSES:
        vals = []
        for w in ws:
            tot = sum(w["kernel_time_s"].values()) or 1.0
            vals.append(100 * w["kernel_time_s"].get(c, 0.0) / tot)
        ax.barh([w["name"] for w in ws], vals, left=left, color=_COLORS[c], label=c)
        left = [a + b for a, b in zip(left, vals)]
    ax.invert_yaxis()
    ax.set_xlabel("share of traced time (%)")
    ax.legend(ncol=5, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    ax.set_title("Time by kernel class (one traced step)")
    return _svg(fig)


def utilization_over_steps(d: dict[str, Any]) -> str | None:
    """Utilization of each timed step (vs spec/theoretical peak), one line per workload."""
    ws = [w for w in d.get("workloads", []) if w["status"] == "ok" and any(v is not None for v in
                                                                        w.get("step_utilization_vs_spec", []))]
    if not ws:
        return None
    fig, ax = _fig(8, 3.5)
    for w in ws:
        ys = [100 * v if v is not None else float("nan") for v in w["step_utilization_vs_spec"]]
        ax.plot(range(1, len(ys) + 1), ys, marker="o", label=w["name"])
    ax.axhline(100 * d.get("assumed_utilization", 0.17), color="#c44e52", ls="--", label="assumed")
    ax.set_xlabel("timed step")
    _integer_ticks(ax)  # steps are whole numbers: no 1.5 on the axis
    ax.set_ylabel("utilization (%)")
    _legend_below(ax, ncol=3)
    ax.set_title("Utilization over the timed steps")
    return _svg(fig)


def _gapped(xs: list[int], ys: list[float]) -> tuple[list[float], list[float]]:
    """Insert a NaN where the step index jumps, so a line is not drawn across steps that were not recorded."""
    ox: list[float] = []
    oy: list[float] = []
    for i, (x, y) in enumerate(zip(xs, ys)):
        if i and x > xs[i - 1] + 1:
            ox.append((xs[i - 1] + x) / 2)
            oy.append(float("nan"))
        ox.append(x)
        oy.append(y)
    return ox, oy


def profile_steps(steps: list[dict[str, Any]], spec: float | None) -> str | None:
    """Step time (and utilization when a peak is known) over the steps of one profile.

    Two panels sharing the step axis (one quantity per y axis, each labelled) rather than twin axes; lines break
    where steps were not recorded; counting steps (timing perturbed) are hollow markers.
    """
    if not steps:
        return None
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.fonttype"] = "path"
    matplotlib.rcParams["svg.hashsalt"] = "pyprof"
    rows = 2 if spec else 1
    fig, axes = plt.subplots(rows, 1, figsize=(8, 2.2 * rows + 0.8), sharex=True, squeeze=False)
    idx = [int(s["index"]) for s in steps]
    ax = axes[0][0]
    ax.plot(*_gapped(idx, [s["wall_time_s"] for s in steps]), color="#4c72b0", marker="o", ms=4, label="wall time")
    pert = [s for s in steps if s.get("perturbed")]
    if pert:
        ax.plot([s["index"] for s in pert], [s["wall_time_s"] for s in pert], ls="none", marker="o", ms=7,
                mfc="white", mec="#c44e52", label="counting step (timing perturbed)")
    ax.set_ylabel("wall time (s)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="lower right")
    if spec:
        ax2 = axes[1][0]
        util = [100 * s["analytic_flops"] / s["wall_time_s"] / spec
                if s.get("analytic_flops") and s.get("wall_time_s") and not s.get("perturbed") else float("nan")
                for s in steps]
        ax2.plot(*_gapped(idx, util), color="#55a868", marker="s", ms=4, label="utilization vs spec/theoretical")
        ax2.set_ylabel("utilization (%)")
        ax2.set_ylim(bottom=0)
        ax2.legend(fontsize=8, loc="lower right")
    axes[-1][0].set_xlabel("step")
    _integer_ticks(axes[-1][0])
    axes[0][0].set_title("Steps: time" + (" and utilization" if spec else "") +
                         (" (gaps: steps not recorded)" if any(b > a + 1 for a, b in itertools.pairwise(idx)) else ""))
    return _svg(fig)


def learning_curves(curves: list[dict[str, Any]]) -> str | None:
    """FLOPs-based learning curves (metric against cumulative training FLOPs, log x): the seed paper's Figure 4 kind.

    ``curves``: :meth:`pyprof.efficiency.LearningCurve.to_dict` dicts (``name``, ``metric_name``, ``points`` with
    ``flops`` and ``metric``).
    """
    cs = [c for c in curves or [] if c.get("points")]
    if not cs:
        return None
    fig, ax = _fig(8, 3.8)
    names = sorted({c.get("metric_name", "metric") for c in cs})
    for c in cs:
        pts = c["points"]
        ax.plot([p["flops"] for p in pts], [p["metric"] for p in pts], marker="o", ms=4,
                label=f"{c.get('name')} ({c.get('metric_name', 'metric')})")
    ax.set_xscale("log")
    ax.set_xlabel("cumulative training FLOPs")
    ax.set_ylabel(", ".join(names))
    _legend_below(ax, ncol=2)
    ax.set_title("Learning curves against training compute")
    return _svg(fig)


def _legend_below(ax: Any, ncol: int = 3) -> None:
    """Legend outside the data, to the right of the axes: inside, it covered bars and points; below, it collided
    with the x label on short figures. ``bbox_inches="tight"`` widens the SVG to hold it. ``ncol`` is unused."""
    h, _ = ax.get_legend_handles_labels()
    if h:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _integer_ticks(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _point_label(m: dict[str, Any]) -> str:
    return f"{m.get('dtype', '')} {m.get('shape', '')}".strip() or str(m.get("id", ""))
