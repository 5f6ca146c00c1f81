"""The GPU session's success paths, on a CPU: fake sources (and a fake native hooks module) stand in for CUPTI,
the cuBLASLt/cuDNN loggers and NVML, so that what a GPU run does with their figures is tested without a GPU."""

from __future__ import annotations

import pytest

from pyprof.sources.cuda import libcalls
from pyprof.sources.cuda.libcalls import HookStatus
from pyprof.sources.cuda.session import GpuOptions, GpuSession


# ------------------------------------------------------------------------------------------- library-hook status
def test_hook_status_parses_the_native_installed_text():
    # the exact text csrc/cuda/libhooks.cpp writes on success: "installed: <soname> (<path>)"
    h = HookStatus.parse("installed: libcublasLt.so.13 (/x/y/libcublasLt.so.13)")
    assert h.installed is True and h.library == "libcublasLt.so.13" and h.path == "/x/y/libcublasLt.so.13"
    assert h.reason == ""
    # two hooked copies: the first names the status, the whole text is kept
    two = HookStatus.parse("installed: libcublasLt.so.13 (/a (v1)/l.so); libcublasLt.so.12 (/b/l.so)")
    assert two.installed and two.library == "libcublasLt.so.13" and two.path == "/a (v1)/l.so"
    assert "libcublasLt.so.12" in two.text


@pytest.mark.parametrize("text", ["not loaded", "dlopen failed: /nope/libcublasLt.so.13: cannot open",
                                  "unavailable: pyprof._C_cuda not built", "error: boom",
                                  "ignored: not a cuBLASLt or cuDNN library", ""])
def test_hook_status_not_installed_keeps_the_reason(text):
    h = HookStatus.parse(text)
    assert h.installed is False and h.library is None and h.path is None
    assert h.reason == (text or "no status")


class _FakeHooksModule:
    """Stands in for pyprof._C_cuda's hook entry points: installs 'successfully', counts uninstalls and reports
    the running per-precision FLOP totals the real registry keeps."""

    def __init__(self) -> None:
        self.uninstalled = 0
        self.recorded = {"bf16": 0.0}

    def hooks_install(self, paths):
        return {"cublasLt": "installed: libcublasLt.so.13 (/x/y/libcublasLt.so.13)", "cudnn": "not loaded"}

    def hooks_uninstall(self):
        self.uninstalled += 1

    def hooks_stats(self):
        return {"installed": ["libcublasLt.so.13 (/x/y)"], "recorded_flops_by_precision": dict(self.recorded)}


def test_installed_hooks_are_active_uninstalled_at_finish_and_keep_flops_without_tracer(monkeypatch):
    """Issue 15 certain 1: '== "installed"' against "installed: <soname> (<path>)" made the hooks look absent."""
    fake = _FakeHooksModule()
    monkeypatch.setattr(libcalls, "load_cuda", lambda: (fake, ""))
    monkeypatch.setattr(libcalls, "_last_recorded", {})
    s = GpuSession(GpuOptions(tracer=False, nvml=False))
    s.start()
    st = s.status["library_hooks"]
    assert st["active"] is True, st
    assert st["libraries"]["cublasLt"].startswith("installed: libcublasLt.so.13")  # the report keeps the native text
    s.begin_step(0)
    fake.recorded["bf16"] += 2 * 4096 ** 3  # one 4096^3 BF16 GEMM during the step: 2 n^3 = 137438953472 FLOPs
    step = s.end_step(0, recording=True)
    assert step["library_flops_by_precision"] == {"bf16": 2 * 4096 ** 3}
    assert step["library_flops"] == 137438953472.0
    s.finish()
    assert fake.uninstalled == 1  # trace-level logging must not stay on after the profile
