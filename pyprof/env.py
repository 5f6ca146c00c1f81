"""What this machine offers pyprof: native core, CUDA/CUPTI part, NVML, GPUs, counter permissions, CPU ISA and peaks.

Every field degrades on its own: a missing piece becomes ``None`` (or ``available: False``) with a reason, never an
exception.
"""

from __future__ import annotations

import platform
from typing import Any

from pyprof import __version__


def _safe(fn, *args, **kwargs) -> tuple[Any, str | None]:
    try:
        return fn(*args, **kwargs), None
    except Exception as e:  # one field failing must not hide the others
        return None, f"{type(e).__name__}: {e}"


def _gpu_profiling_permission() -> dict[str, Any]:
    """Whether GPU performance counters are readable here (the driver's RmProfilingAdminOnly), with the fix."""
    from pyprof.sources.cuda.counters import profiling_permission
    allowed, message = profiling_permission()
    return {"allowed": allowed, "message": message}


def _nvml() -> dict[str, Any]:
    try:
        import pynvml
    except ImportError:
        return {"available": False, "reason": "nvidia-ml-py is not installed: pip install nvidia-ml-py"}
    try:
        pynvml.nvmlInit()
    except Exception as e:
        return {"available": False, "reason": f"NVML could not start ({e}); no NVIDIA driver on this machine?"}
    try:
        n = pynvml.nvmlDeviceGetCount()
        gpus = []
        for i in range(n):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            gpus.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name})
        drv = pynvml.nvmlSystemGetDriverVersion()
        return {"available": True, "driver_version": drv.decode() if isinstance(drv, bytes) else drv, "gpus": gpus}
    finally:
        pynvml.nvmlShutdown()


def collect_env(measure_peaks: bool = False) -> dict[str, Any]:
    """Collect what this machine offers pyprof.

    Args:
        measure_peaks: also run the CPU peak microkernels (about two seconds).

    Returns:
        A JSON-serializable dict.
    """
    from pyprof._native import load_core, load_cuda

    env: dict[str, Any] = {"pyprof_version": __version__, "python": platform.python_version(),
                           "platform": platform.platform()}
    try:
        import torch

        env["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda,
                        "cuda_available": bool(torch.cuda.is_available())}
    except Exception as e:
        env["torch"] = {"version": None, "reason": f"{e}"}

    core, err = _safe(load_core)
    env["extension"] = {"pyprof._C": core is not None, "reason": err}
    cuda_mod, reason = load_cuda()
    cuda: dict[str, Any] = {"built": cuda_mod is not None, "reason": reason or None}
    if cuda_mod is not None:
        probe, err = _safe(cuda_mod.probe)
        cuda["probe"] = probe if probe is not None else {"status": err}
        from pyprof._native import CUPTI_LIBRARY
        cuda["cupti_library"] = dict(CUPTI_LIBRARY)
    env["cuda"] = cuda
    env["nvml"] = _nvml()
    env["gpu_counter_permission"] = _gpu_profiling_permission()

    if core is not None:
        from pyprof.peaks import cpu as cpu_peaks
        from pyprof.sources.cpu import host as cpu
        info, err = _safe(cpu.cpu_info)
        env["cpu"] = info.to_dict() if info is not None else {"reason": err}
        if info is not None:
            try:  # the microarchitecture that sets FLOP/cycle/core (None when pyprof's table lacks this CPU)
                env["cpu"]["microarch"] = cpu_peaks.lookup(info.vendor, info.family, info.model, info.best_isa,
                                                           "fp32", info.model_name).microarch
            except Exception:
                env["cpu"]["microarch"] = None
        env["cpu_counters"] = dict(core.cpu.probe_counters())
        peaks: dict[str, Any] = {}
        for prec in ("fp32", "fp64"):
            theo, how = cpu_peaks.theoretical_peak(prec) if info is not None else (None, "cpu info unavailable")
            peaks[prec] = {"theoretical_flops_per_s": theo, "derivation": how}
            if measure_peaks:
                p, err = _safe(cpu_peaks.measure_peak, prec)
                peaks[prec]["measured"] = p.to_dict() if p is not None else {"reason": err}
        env["cpu_peaks"] = peaks
    return env
