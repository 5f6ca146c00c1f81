"""Packaging: the version lives in one place, `pyprof --version` prints it, and every data file under pyprof/ is
declared as package data (a file the wheel does not carry works from the checkout and fails after `pip install`).

The wheel and the sdist themselves are built, installed in a fresh venv and run from outside the checkout by
`.ci/wheel_check.sh` (too slow for the unit tests: it compiles the native core).
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
from pathlib import Path

import pytest
import tomllib
from typer.testing import CliRunner

import pyprof
from pyprof.cli import app

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def test_version_option_prints_the_package_version():
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0, r.output
    assert r.stdout == f"pyprof {pyprof.__version__}\n"


def test_version_option_answers_before_a_command_is_required():
    # is_eager: `--version` wins over a subcommand's bad input, as in git/pip.
    r = CliRunner().invoke(app, ["--version", "estimate", "--no-such-option"])
    assert r.exit_code == 0 and r.stdout.startswith("pyprof ")


def test_version_is_read_from_the_package_only():
    if not PYPROJECT.is_file():
        pytest.skip("not a source checkout (no pyproject.toml beside tests/)")
    cfg = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    assert "version" not in cfg["project"], "a second hand-kept version in pyproject.toml"
    assert "version" in cfg["project"]["dynamic"]
    assert cfg["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pyprof.__version__"}


def test_installed_metadata_matches_the_package():
    try:
        meta = importlib.metadata.version("pyprof")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("pyprof is imported from PYTHONPATH, not installed")
    assert meta == pyprof.__version__


def _package_data_patterns(cfg: dict) -> list[str]:
    """package-data globs as paths relative to pyprof/ (``{"pyprof.data": ["*.csv"]}`` -> ``data/*.csv``)."""
    out = []
    for pkg, globs in cfg["tool"]["setuptools"]["package-data"].items():
        prefix = "/".join(pkg.split(".")[1:])
        out += [f"{prefix}/{g}" if prefix else g for g in globs]
    return out


def test_every_data_file_in_the_package_is_declared():
    if not PYPROJECT.is_file():
        pytest.skip("not a source checkout (no pyproject.toml beside tests/)")
    cfg = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    patterns = _package_data_patterns(cfg)
    pkg = ROOT / "pyprof"
    # Built or cached files are not sources: the native modules go into the wheel through the build_ext step.
    built = ("*.py", "*.pyc", "*.so", "*.pyd")
    data = [p.relative_to(pkg).as_posix() for p in pkg.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not any(fnmatch.fnmatch(p.name, b) for b in built)]
    assert data, "found no data files at all: the walk is wrong"
    # fnmatch's * also matches '/', so a glob is anchored by requiring the same folder depth as the file.
    missing = [f for f in data if not any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in patterns)]
    assert not missing, f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_the_declared_patterns_are_not_vacuous():
    # The check above passes trivially if the patterns are, say, ["*"]: each must name what it is for.
    cfg = tomllib.loads(PYPROJECT.read_text(encoding="utf-8")) if PYPROJECT.is_file() else pytest.skip("no checkout")
    for g in _package_data_patterns(cfg):
        assert not g.endswith("/*") and g != "*", g
