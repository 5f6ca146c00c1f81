"""Data shipped with pyprof: the seed documents' figures and published utilization evidence, with provenance.

Every file is a CSV with a ``provenance`` column (``verbatim`` = printed in the named source, ``chart`` = read off a
chart by a third party, ``derived`` = arithmetic on printed figures) or, for Epoch AI's table, notes per row.
See ``README.md`` in this folder for sources and licences.
"""

from __future__ import annotations

import csv
import io
from importlib import resources

from pyprof.errors import InvalidInputError

__all__ = ["DATASETS", "data_text", "read_rows"]

#: File name -> one-line description.
DATASETS: dict[str, str] = {
    "ai_and_compute.csv": '"AI and compute" (OpenAI, 2018): training compute of the charted systems, pfs-days',
    "ai_and_efficiency.csv": '"AI and efficiency" (OpenAI, 2020): compute to reach a fixed capability, tfs-days',
    "efficiency_table1.csv": "Hernandez & Brown (2020) Table 1: epochs factor x FLOPs-per-epoch factor",
    "measured_utilization_epoch.csv": "Epoch AI: 62 training runs with a reported utilization (CC BY)",
    "published_utilization.csv": "Published utilization / MFU figures collected in SEED_DATA.md",
}


def data_text(name: str) -> str:
    """The text of a shipped data file.

    Args:
        name: A file name from :data:`DATASETS`, e.g. ``"ai_and_compute.csv"``.

    Returns:
        The file's text (UTF-8).

    Raises:
        InvalidInputError: ``name`` is not a shipped file.
    """
    if name not in DATASETS:
        raise InvalidInputError(f"no shipped data file {name!r}; choose one of {', '.join(sorted(DATASETS))}")
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def read_rows(name: str) -> list[dict[str, str]]:
    """The rows of a shipped CSV as dicts of strings (header -> cell)."""
    return list(csv.DictReader(io.StringIO(data_text(name))))
