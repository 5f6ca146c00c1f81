"""What every pyprof command shares: bad input is one line on stderr and exit code 2, no traceback; output folders
are checked before any work starts; ``--json`` documents carry their ``kind`` and ``schema_version``."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer

from pyprof.report.atomic import check_output_dir
from pyprof.report.escape import plain

__all__ = ["CLI_JSON_SCHEMA_VERSION", "EXIT_BAD_INPUT", "check_output_dir", "fail", "json_document"]

#: Exit code for bad input (the same as click's usage errors).
EXIT_BAD_INPUT = 2

#: Version of every ``--json`` document the CLI prints (``kind`` says which document). Minor: fields added;
#: major: a field removed or its meaning changed.
CLI_JSON_SCHEMA_VERSION = "1.0"


def fail(message: str) -> NoReturn:
    """Print ``Error: message`` on stderr and exit with :data:`EXIT_BAD_INPUT`.

    The message often quotes the user's input or a file's content, so terminal control characters are stripped.
    """
    typer.echo(f"Error: {plain(message)}", err=True)
    raise typer.Exit(code=EXIT_BAD_INPUT)


def json_document(kind: str, payload: dict[str, Any]) -> str:
    """A ``--json`` document: ``{"kind": kind, "schema_version": ..., **payload}`` as strict JSON.

    Raises:
        pyprof.errors.InvalidInputError: a value is NaN or infinite (JSON has neither; an overflowing result is an
            error, not ``Infinity``).
    """
    from pyprof.errors import InvalidInputError

    doc = {"kind": kind, "schema_version": CLI_JSON_SCHEMA_VERSION, **payload}
    try:
        return json.dumps(doc, indent=2, default=str, allow_nan=False)
    except ValueError as e:
        raise InvalidInputError(f"a result is not a finite number ({e}); the inputs overflow: use smaller values") from None


def check_flag_number(flag: str, value: float | None, *, unit: str, example: str, minimum: float = 0.0,
                      inclusive: bool = False, maximum: float | None = None, integer: bool = False) -> None:
    """Check a numeric command-line option in the CLI's own terms (the flag, its unit, an example of a right value).

    ``None`` (the option was not given) passes. The API functions behind the commands check their own arguments
    too, but their messages name Python parameters and units (``peak_flops_per_s`` in FLOP/s); a CLI user typed a
    flag, so the flag is checked first.

    Args:
        flag: the option as typed, e.g. ``"--peak-tflops"``.
        value: the parsed value.
        unit: what the flag takes, e.g. ``"TFLOP/s per device"``.
        example: a right value, e.g. ``"1.58 for a GTX 580"``.
        minimum: the lowest value allowed (excluded unless ``inclusive``).
        maximum: the highest value allowed (included), if any.
        integer: whether the value must be a whole number.

    Raises:
        pyprof.errors.InvalidInputError: NaN, infinite, out of range or not whole; the message names ``flag``.
    """
    import math

    from pyprof.errors import InvalidInputError

    if value is None:
        return
    fix = f"pass {flag} in {unit}, e.g. {flag} {example}"
    v = float(value)
    if not math.isfinite(v):
        raise InvalidInputError(f"{flag} {value} is not a finite number; {fix}")
    if v < minimum or (v == minimum and not inclusive):
        bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
        raise InvalidInputError(f"{flag} {value:g} must be {bound}; {fix}")
    if maximum is not None and v > maximum:
        raise InvalidInputError(f"{flag} {value:g} is above {maximum:g}; {fix}")
    if integer and not v.is_integer():
        raise InvalidInputError(f"{flag} {value:g} must be a whole number; {fix}")
