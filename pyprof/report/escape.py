"""Untrusted text is data, never markup: one escaping helper per medium a string can go to.

Every string that came from the user (run names, CLI values), the model (module and op names), a file (a report, a
trend CSV) or an exception message passes through the helper of the medium it is written to:

========================  =====================================================================================
medium                    helper
========================  =====================================================================================
plain text on a terminal  :func:`plain`: control characters stripped (no escape sequences: window title, clear
                          screen, cursor moves), nothing else changed. For ``typer.echo`` / ``print``.
rich markup               :func:`terminal`: :func:`plain`, then rich's markup escaped, so ``[/tmp/x]`` or
                          ``[large]`` prints as written and never raises ``rich.errors.MarkupError``.
Markdown                  :func:`markdown` for running text and table cells, :func:`markdown_code` for a code span.
HTML                      :func:`html`: the same escaping jinja2's autoescape applies in the templates.
========================  =====================================================================================

Each helper accepts any object (``None`` and numbers included) and returns ``str``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["html", "markdown", "markdown_code", "plain", "terminal"]

# C0 controls except tab and newline, DEL, and the C1 controls (0x9b is a one-byte CSI on some terminals).
# ESC (0x1b) is the start of every terminal escape sequence; \r can overwrite the line a reader sees.
# Unicode bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069) reorder what a reader sees
# ("Trojan Source", CVE-2021-42574), so they go too.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# A whole ANSI/VT sequence (CSI ... final byte, or OSC ... BEL/ST) is dropped together, so that no visible
# remnant such as "]0;title" is left behind once its ESC has gone.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")


def plain(s: Any) -> str:
    """``s`` as text with terminal escape sequences and control characters removed; tabs become spaces.

    Newlines are kept (a multi-line exception message stays readable).
    """
    text = "" if s is None else str(s)
    text = _ANSI.sub("", text)
    return _CONTROL.sub("", text).replace("\t", " ")


def terminal(s: Any) -> str:
    """``s`` for a rich renderable that parses markup (``Table.add_row``, ``Console.print``, a table's title).

    Control characters are stripped (:func:`plain`) and every ``[`` that rich could read as a tag is escaped.
    """
    from rich.markup import escape

    return escape(plain(s))


# Markdown characters that change what follows them inline: emphasis (* _ ~), links and images ([ ]), code (`),
# table cells (|) and the escape character itself. A backslash escape is CommonMark's (any ASCII punctuation).
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def markdown(s: Any) -> str:
    """``s`` for Markdown running text or a table cell: shown literally, one line.

    ``<``, ``>`` and ``&`` become HTML entities (so ``<script>`` or ``<img onerror=...>`` is text in every renderer,
    including those that allow raw HTML); Markdown punctuation is backslash-escaped; newlines become spaces (a
    newline would end a table row).
    """
    text = plain(s).replace("\r", " ").replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def markdown_code(s: Any) -> str:
    """``s`` as a Markdown code span (backticks included), for op, kernel and module names.

    Inside a code span nothing is markup (CommonMark 6.1: HTML is literal), so only what ends the span or the table
    cell is handled: the fence is one backtick longer than the longest run of backticks in ``s``, and ``|`` is
    escaped (GitHub tables split cells on ``|`` even inside code).
    """
    text = plain(s).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    runs = re.findall(r"`+", text)
    fence = "`" * (max((len(r) for r in runs), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def html(s: Any) -> str:
    """``s`` escaped for HTML text or a quoted attribute, as jinja2's autoescape does (``markupsafe.escape``)."""
    from markupsafe import escape

    return str(escape(plain(s)))
