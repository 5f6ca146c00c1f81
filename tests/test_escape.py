"""Untrusted text is data, never markup: one escaping helper per medium, and every renderer uses it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import pyprof
from pyprof.report import escape as esc
from pyprof.report import render_markdown, render_terminal
from pyprof.report.bench_text import render_bench_markdown, render_bench_terminal

# A window-title OSC, a clear-screen CSI, a bare ESC, a bell, a C1 CSI and a bidi override: each one a way for text to
# act on the reader's terminal instead of being shown.
HOSTILE = "A\x1b]0;pwned\x07B\x1b[2JC\x1bD\x07E\x9b31mF\u202eG"


def test_plain_strips_every_control_sequence_and_keeps_the_text():
    # The sequences go entirely (no "]0;pwned" remnant), the letters stay in order. "ESC D" is itself a two-byte
    # sequence (IND, move down a line), so its "D" goes with it: A B C E F G remain.
    assert esc.plain(HOSTILE) == "ABCEFG"
    assert esc.plain("line1\nline2\tx\r") == "line1\nline2 x"  # newlines kept, tab -> space, CR dropped
    assert esc.plain(None) == "" and esc.plain(1.5) == "1.5"


@pytest.mark.parametrize("text", ["exp[/tmp/x]", "BERT [large]", "[bold]x[/bold]", "missing key [/data/train]",
                                  "trailing backslash \\", "[link=http://e.com]click[/link]"])
def test_terminal_text_prints_literally_through_rich(text):
    from rich.console import Console
    from rich.table import Table

    t = Table(title=esc.terminal(text))
    t.add_column("c")
    t.add_row(esc.terminal(text))
    out = Console(width=200, color_system=None, force_terminal=False, record=True)
    with out.capture() as cap:
        out.print(t)
    # Both the title and the cell show the text exactly as written (rich neither ate the brackets nor raised).
    assert cap.get().count(text) == 2


def test_markdown_escapes_html_and_markdown_punctuation():
    s = esc.markdown('<script>alert(1)</script> <img src=x onerror="alert(2)"> a|b *c* [d](e) & f\nnext')
    assert "<" not in s and ">" not in s  # no tag survives, in any renderer that allows raw HTML
    assert "&lt;script&gt;" in s and "&lt;img" in s
    assert "a\\|b" in s and "\\*c\\*" in s and "\\[d\\](e)" in s and "&amp; f" in s
    assert "\n" not in s  # a newline would end a table row


def test_markdown_code_span_cannot_be_closed_from_inside():
    # The longest backtick run in the text is 2, so the fence is 3; a leading/trailing backtick is padded by a space.
    assert esc.markdown_code("a``b") == "```a``b```"
    assert esc.markdown_code("`x") == "`` `x ``"
    assert esc.markdown_code("aten::add|x") == "`aten::add\\|x`"


def test_html_helper_matches_autoescape():
    assert esc.html('<img onerror="x">&') == "&lt;img onerror=&#34;x&#34;&gt;&amp;"


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.l(x)


def _profile_that_raises(name: str, message: str):
    model = _Tiny()
    prof = pyprof.profile(model, name=name, measure_peak=False, hardware_counters=False, report_formats=("json",))
    with pytest.raises(KeyError):
        with prof:
            model(torch.ones(2, 4))
            prof.step()
            raise KeyError(message)
    return prof


def test_summary_with_markup_in_run_name_and_exception_text_does_not_raise():
    # Before: rich.errors.MarkupError from the closing tag "[/tmp/x]" / "[/data/train]".
    prof = _profile_that_raises("exp[/tmp/x]", "missing key [/data/train]")
    text = prof.summary()
    assert "pyprof: exp[/tmp/x]" in text
    # Wide enough that the partial reason is on one line: the exception text is shown exactly as raised.
    assert "KeyError: 'missing key [/data/train]'" in render_terminal(prof._result, width=400)


def test_reports_of_a_hostile_run_name_and_exception_are_inert():
    prof = _profile_that_raises("<script>alert(1)</script>" + HOSTILE, "<img src=x onerror=alert(2)>")
    r = prof._result
    md = render_markdown(r)
    assert "<script>" not in md and "<img" not in md
    assert "&lt;script&gt;" in md and "&lt;img src=x onerror=alert(2)&gt;" in md
    term = render_terminal(r)
    assert "\x1b" not in term and "\x07" not in term and "\x9b" not in term and "\u202e" not in term
    # The same result read back from a crafted report (name and notes in the file) renders as inert.
    crafted = dataclasses.replace(r, run={**r.run, "name": "\x1b]0;title\x07x"}, notes=["\x1b[2J[/oops]"])
    term = render_terminal(crafted)
    assert "\x1b" not in term and "[/oops]" in term


def test_bench_renderers_escape_names_and_reasons():
    d = {"run": {"preset": "quick", "wall_time_s": 1.0}, "device": {"kind": "cpu", "name": "cpu [x]\x1b[2J"},
         "schema_version": "1.0", "assumed_utilization": 0.17, "assumed_utilization_source": "<b>src</b>",
         "peaks": {"precision": "fp32"}, "throttle": {"note": "none"}, "sources": {},
         "workloads": [{"name": "BERT [large]", "status": "failed", "reason": "<script>x</script> [/a]"}]}
    term = render_bench_terminal(d)
    assert "BERT [large]" in term and "\x1b" not in term and "cpu [x]" in term
    md = render_bench_markdown(d)
    assert "<script>" not in md and "<b>" not in md and "BERT \\[large\\]" in md
