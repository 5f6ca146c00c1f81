"""The multi-rank job report's writers: JSON, Markdown, the two files written atomically, and the reader.

The record itself is :class:`pyprof.records.JobReport` (built by :mod:`pyprof.session.distributed`); the class here
adds its writers as methods (``to_json``, ``render_markdown``, ``write``) so that a job report read back or built by
a session renders the same way, and so that no report module reaches back into the session layer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pyprof.errors import ReportError
from pyprof.records import JOB_KIND, JOB_SCHEMA_VERSION
from pyprof.records import JobReport as JobRecord

#: Rows of per-rank detail in report.md (report.json always has every rank).
MARKDOWN_RANK_ROWS = 64


class JobReport(JobRecord):
    """A :class:`pyprof.records.JobReport` with its writers."""

    def to_json(self) -> str:
        from pyprof.report.json_report import json_safe
        return json.dumps(json_safe(self.to_dict()), indent=2, allow_nan=False) + "\n"

    def render_markdown(self) -> str:
        """The job report as Markdown: totals, skew, missing ranks, then one row per rank (the slowest first)."""
        from pyprof.report.format import num, pct, si

        t, s = self.totals, self.skew
        out = [f"# pyprof job report: {len(self.rows)} of {self.world_size} rank(s)", ""]
        if self.missing_ranks:
            out += [f"> **Partial job report**: rank(s) {ranges(self.missing_ranks)} did not report.", ""]
        out += [f"schema {self.schema_version} · created {self.created_at} · gather {num(self.gather.get('seconds'), 3)} s, "
                f"{self.gather.get('payload_bytes_total')} B of payloads", "",
                "## Job totals", "", "| | |", "|---|---|",
                f"| ranks reporting / world size | {len(self.rows)} / {self.world_size} |",
                f"| model FLOPs (timed steps, all ranks) | {si(t.get('model_flops'), 'FLOP')} |",
                f"| job wall time (longest timed window) | {num(t.get('wall_time_s'))} s |",
                f"| job FLOP/s | {si(t.get('flops_per_s'), 'FLOP/s')} |",
                f"| sum of peaks | {si(t.get('peak_flops_per_s_sum'), 'FLOP/s')} |",
                f"| job utilization (FLOPs / (ranks x peak x wall)) | {pct(t.get('utilization'))} |",
                f"| recorded steps per rank (min / max) | {t.get('steps_min')} / {t.get('steps_max')} |",
                "", "## Skew between ranks", "", "| | min | median | max | max/min |", "|---|---:|---:|---:|---:|"]
        for label, key, fmt in (("median step time (s)", "step_time_s", num),
                                ("achieved FLOP/s", "flops_per_s", lambda x: si(x, "FLOP/s")),
                                ("MFU", "mfu", pct)):
            st = s.get(key) or {}
            out.append(f"| {label} | {fmt(st.get('min'))} | {fmt(st.get('median'))} | {fmt(st.get('max'))} | "
                       f"{num(st.get('max_over_min'), 3)} |")
        if s.get("slowest_rank") is not None:
            out += ["", f"Slowest rank: {s['slowest_rank']}; fastest rank: {s.get('fastest_rank')}."]
        out += ["", "## Communication", "", f"{self.comm.get('note', '')}"]
        if self.missing_ranks:
            out += ["", "## Missing ranks", "", "| rank | reason |", "|---:|---|"]
            out += [f"| {r} | {_esc(self.missing_reasons.get(r, ''))} |" for r in self.missing_ranks[:MARKDOWN_RANK_ROWS]]
        out += ["", "## Ranks", "", "| rank | host | device | steps | median step (s) | FLOP/s | MFU | partial |",
                "|---:|---|---|---:|---:|---:|---:|---|"]
        rows = sorted(self.rows, key=lambda r: -((r.get("step_time_s") or {}).get("median") or 0.0))
        for r in rows[:MARKDOWN_RANK_ROWS]:
            out.append(f"| {r.get('rank')} | {_esc(r.get('host'))} | {_esc(r.get('device'))} | {r.get('steps')} | "
                       f"{num((r.get('step_time_s') or {}).get('median'))} | {si(r.get('achieved_flops_per_s'), 'FLOP/s')} | "
                       f"{pct(r.get('mfu'))} | {_esc(r.get('partial_reason')) if r.get('partial') else ''} |")
        if len(rows) > MARKDOWN_RANK_ROWS:
            out.append(f"| … | {len(rows) - MARKDOWN_RANK_ROWS} more ranks (the fastest) in report.json | | | | | | |")
        if self.notes:
            out += ["", "## Notes", ""] + [f"- {_esc(n)}" for n in self.notes]
        return "\n".join(out) + "\n"

    def write(self, output_dir: str | os.PathLike) -> list[Path]:
        """Write ``report.json`` and ``report.md`` into ``output_dir``, each atomically; returns the paths."""
        from pyprof.report.atomic import atomic_write_text
        out = Path(output_dir)
        return [atomic_write_text(out / "report.json", self.to_json()),
                atomic_write_text(out / "report.md", self.render_markdown())]


def read_job_report(path: str | os.PathLike) -> JobReport:
    """Read a job ``report.json`` written by :func:`aggregate`.

    Raises:
        ReportError: missing, not JSON, not a job report, or an unreadable schema major version.
    """
    from pyprof.report.json_report import read_json_any
    p = Path(path)
    d = read_json_any(p)  # missing file or invalid JSON: a ReportError that says so
    if d.get("kind") != JOB_KIND:
        raise ReportError(f"{p} is not a pyprof job report (no kind='{JOB_KIND}'); a single-process report reads "
                          "with pyprof.read_report")
    if str(d.get("schema_version", "")).partition(".")[0] != JOB_SCHEMA_VERSION.partition(".")[0]:
        raise ReportError(f"{p} has job schema {d.get('schema_version')}, this pyprof reads {JOB_SCHEMA_VERSION}")
    return JobReport.from_dict(d)


def _esc(s: Any) -> str:
    return str(s if s is not None else "").replace("|", "\\|").replace("\n", " ")


def ranges(ranks: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2, 5, 7-8' (1,000 missing ranks stay one line)."""
    out: list[str] = []
    start: int | None = None
    prev: int | None = None
    for r in sorted(ranks):
        if start is None or prev is None:  # prev is set together with start
            start = prev = r
        elif r == prev + 1:
            prev = r
        else:
            out.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = r
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ", ".join(out)


