"""The HTML report in a real headless browser (Debian's chromium): loads without console errors, shows its plots.

Skipped with a reason where chromium is not installed (`apt-get install -y chromium`).
"""

import shutil
import subprocess

import pytest

from tests.test_html_report import sample_report
from pyprof.report.html import render_bench_html
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = [pytest.mark.requires("chromium"),
              pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    d = tmp_path_factory.mktemp("html")
    p = d / "report.html"
    p.write_text(render_bench_html(sample_report(name="<script>alert(1)</script>")), encoding="utf-8")
    return d, p


def _chromium(args, d, timeout=90):
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={d / 'profile'}", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_dom_has_plots_and_no_console_errors(page):
    d, p = page
    r = _chromium(["--enable-logging=stderr", "--v=0", "--dump-dom", p.as_uri()], d)
    dom = r.stdout
    assert "<figure" in dom and dom.count("<svg") >= 4, "plots missing from the rendered DOM"
    assert "alert(1)" in dom and "<script>alert" not in dom
    console = [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not console, console


def test_screenshot(page):
    d, p = page
    shot = d / "shot.png"
    _chromium(["--screenshot=" + str(shot), "--window-size=1280,2000", p.as_uri()], d)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a blank page compresses to a few kB
