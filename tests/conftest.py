import os
import shutil

import pytest

#: Optional dependencies a test can be marked with (`@pytest.mark.requires("lightning")`) and what installs each.
#: Outside CI such a test skips with a reason when its dependency is missing; CI lists the ones it installed in
#: PYPROF_CI_REQUIRE (comma-separated, or "all"), and then a skip of such a test is a failure: a CI that silently
#: stops installing chromium or lightning must go red, not quietly run fewer tests.
OPTIONAL = {
    "chromium": "apt-get install -y chromium",
    "lightning": "pip install -e '.[test,lightning]'",
    "hf": "pip install -e '.[test,hf]'",
    "cublaslt": "pip install -e '.[test,cublas]' (the nvidia-cublas wheel; no GPU needed)",
}


def _required() -> set[str]:
    raw = os.environ.get("PYPROF_CI_REQUIRE", "")
    names = {n.strip() for n in raw.split(",") if n.strip()}
    if "all" in names:
        return set(OPTIONAL)
    unknown = names - set(OPTIONAL)
    if unknown:
        raise pytest.UsageError(f"PYPROF_CI_REQUIRE names {sorted(unknown)}: known are {sorted(OPTIONAL)} or 'all'")
    return names


def _has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def pytest_configure(config):
    # the `requires` marker itself is registered in pyproject.toml, with the others
    config._pyprof_required = _required()


def pytest_collection_modifyitems(config, items):
    for item in items:
        for m in item.iter_markers("requires"):
            if not m.args or m.args[0] not in OPTIONAL:
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.requires({m.args}) must name one of {sorted(OPTIONAL)}")
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with a driver; none here (run `pytest -m gpu` on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.skipped or "gpu" in item.keywords:
        return
    required = item.config._pyprof_required
    names = [m.args[0] for m in item.iter_markers("requires") if m.args[0] in required]
    if names:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = (f"skipped although PYPROF_CI_REQUIRE lists {names}: {reason}\n"
                        f"install it: {'; '.join(OPTIONAL[n] for n in names)}")


@pytest.fixture
def tmp_report_dir(tmp_path):
    d = tmp_path / "report"
    yield d
    shutil.rmtree(d, ignore_errors=True)
