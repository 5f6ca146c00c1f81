"""What every pyprof command shares: bad input is one line on stderr and exit code 2, no traceback."""

from __future__ import annotations

import typer

#: Exit code for bad input (the same as click's usage errors).
EXIT_BAD_INPUT = 2


def fail(message: str) -> None:
    """Print ``Error: message`` on stderr and exit with :data:`EXIT_BAD_INPUT`."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=EXIT_BAD_INPUT)
