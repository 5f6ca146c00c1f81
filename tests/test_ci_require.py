"""tests/conftest.py's `requires` marker: a skip of a test whose optional dependency CI installed is a failure.

Each case runs a small test file in a child pytest with tests/conftest.py loaded as a plugin, so that the hook is
exercised as CI runs it (PYPROF_CI_REQUIRE set by .ci/run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BODY = '''
import pytest

@pytest.mark.requires("lightning")
def test_needs_it():
    pytest.importorskip("pyprof_no_such_module")

@pytest.mark.requires("chromium")
@pytest.mark.skipif(True, reason="no browser here")
def test_skipped_at_setup():
    pass
'''


def _run(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_case.py").write_text(BODY)
    env = {k: v for k, v in os.environ.items() if k != "PYPROF_CI_REQUIRE"}
    if require is not None:
        env["PYPROF_CI_REQUIRE"] = require
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_case.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_without_ci_a_missing_dependency_skips(tmp_path):
    r = _run(tmp_path, None)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 skipped" in r.stdout


def test_in_ci_a_skip_of_a_required_dependency_fails(tmp_path):
    r = _run(tmp_path, "lightning,chromium")
    assert r.returncode == 1, r.stdout + r.stderr
    # the call-phase skip (importorskip) fails; the setup-phase skip (skipif) is reported as an error
    assert "1 failed" in r.stdout and "1 error" in r.stdout, r.stdout
    assert "PYPROF_CI_REQUIRE lists ['lightning']" in r.stdout and "pip install" in r.stdout


def test_only_the_listed_dependencies_are_required(tmp_path):
    r = _run(tmp_path, "hf")
    assert r.returncode == 0 and "2 skipped" in r.stdout, r.stdout


def test_an_unknown_name_is_a_usage_error(tmp_path):
    r = _run(tmp_path, "lightnin")
    assert r.returncode == 4  # pytest's usage-error exit code
    assert "PYPROF_CI_REQUIRE names ['lightnin']" in r.stderr and "lightning" in r.stderr
