"""The device a profile runs on and the peaks its utilization is measured against, resolved in one place.

:func:`detect_device` says what the work runs on (CPU with its ISA and clocks, or a CUDA GPU with its SM count and
maximum SM clock); :func:`resolve` returns one typed :class:`PeakSet`: the spec (or, on a CPU, theoretical) peak,
the peak measured on this machine by pyprof's microkernels, further peaks worth showing (a CPU's theoretical peak at
the observed clock, a GPU's spec peak at the observed SM clock) and notes on anything that could not be resolved.
A failure never raises out of :func:`resolve`: it becomes a note, and the peak is None.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyprof.errors import InvalidInputError
from pyprof.records import DeviceReport, PeakReport

_DTYPE_PRECISION = {"torch.float32": "fp32", "torch.float64": "fp64", "torch.bfloat16": "bf16", "torch.float16": "fp16"}


@dataclass(frozen=True)
class PeakSet:
    """The peaks of one resolution.

    Attributes:
        spec: the spec peak (database row, user figure, GPU formula) or, on a CPU, the theoretical peak; None when
            none is known (then ``notes`` says what to pass).
        measured: the peak pyprof measured on this machine (only when asked to and at the end of a run), else None.
        extra: further peaks shown beside them (theoretical at the observed clock, spec at the observed SM clock).
        notes: why a peak is missing or which precision the model is compared with.
        cpu_peaks: the report's ``cpu_peaks`` table resolved this time: ``{"theoretical": {precision: {flops_per_s,
            derivation}}, "measured": {precision: CpuPeak.to_dict()}}`` (empty off the CPU).
    """

    spec: PeakReport | None
    measured: PeakReport | None
    extra: tuple[PeakReport, ...] = ()
    notes: tuple[str, ...] = ()
    cpu_peaks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def model_precision(precision: str, model: Any) -> str:
    """The precision the model computes in: ``precision`` unless "auto", then its first parameter's dtype (fp32
    when it has none)."""
    if precision != "auto":
        return precision
    if model is not None:
        try:
            return _DTYPE_PRECISION.get(str(next(iter(model.parameters())).dtype), "fp32")
        except (StopIteration, AttributeError, TypeError):
            pass
    return "fp32"


def logical_cores() -> int:
    from pyprof.sources.cpu.host import cpu_info
    return cpu_info().logical_cpus


# ---------------------------------------------------------------------------------------------------------- device
def detect_device(device_arg: str | None, model: Any) -> DeviceReport:
    """The device of the profiled work: ``device_arg`` when given, else the model's first parameter's, else the CPU.

    Raises:
        InvalidInputError: ``device_arg`` names CUDA and torch sees no CUDA GPU.
    """
    import torch

    dev = None
    if device_arg is not None:
        dev = torch.device(device_arg)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise InvalidInputError(f"device={device_arg!r} but torch sees no CUDA GPU (torch "
                                    f"{torch.__version__}, CUDA build {torch.version.cuda}); use device='cpu'")
    elif model is not None:
        try:
            dev = next(iter(model.parameters())).device
        except (StopIteration, AttributeError, TypeError):
            dev = None
    kind = dev.type if dev is not None else "cpu"
    if kind == "cpu":
        from pyprof.sources.cpu.host import cpu_info
        try:
            info = cpu_info()
            return DeviceReport(kind="cpu", name=info.model_name, supported=True, details=info.to_dict())
        except Exception as e:  # native core missing: still time the loop
            return DeviceReport(kind="cpu", name=platform.processor() or "cpu", supported=False,
                                note=f"CPU peaks unavailable: {e}")
    if kind == "cuda":
        return _detect_cuda(dev)
    return DeviceReport(kind=kind, name=str(dev), supported=False,
                        note=f"device type '{kind}' is not supported by pyprof yet: wall time and analytic FLOPs only")


def _detect_cuda(dev: Any) -> DeviceReport:
    import torch

    idx = dev.index if dev.index is not None else torch.cuda.current_device()
    details: dict[str, Any] = {"index": idx}
    try:
        props = torch.cuda.get_device_properties(idx)
        details.update(name=props.name, compute_capability=[props.major, props.minor],
                       sm_count=props.multi_processor_count, memory_bytes=int(props.total_memory))
    except Exception as e:
        details["properties_error"] = repr(e)
    try:
        from pyprof.peaks.gpu import detect_devices
        devs, _why = detect_devices()
        for d in devs:
            if d.index == idx:
                details["sm_clock_hz"] = d.max_sm_clock_hz  # the driver's maximum SM clock
    except Exception:
        pass
    return DeviceReport(kind="cuda", name=details.get("name") or torch.cuda.get_device_name(idx), supported=False,
                        details=details)


# ---------------------------------------------------------------------------------------------------------- peaks
def resolve(device: DeviceReport | None, precision: str, *, peak: str | float | None = None,
            measure: bool = True, final: bool = True, observed_sm_clock_hz: float | None = None) -> PeakSet:
    """The peaks to measure utilization against.

    Args:
        device: from :func:`detect_device` (None: only a user peak resolves).
        precision: the model's precision ("fp32", "bf16", ...; see :func:`model_precision`).
        peak: hardware name from the peak database, or FLOP/s, given by the user; it becomes the spec peak.
        measure: measure this machine's peak with pyprof's microkernels (about a second), only when ``final``.
        final: the end of the run (autosaves and snapshots resolve without measuring).
        observed_sm_clock_hz: median NVML SM clock over the recorded steps (GPU), for the clock-adjusted peak.

    Returns:
        A :class:`PeakSet`. Peaks that could not be resolved are None with a note saying why.
    """
    notes: list[str] = []
    extra: list[PeakReport] = []
    cpu_peaks: dict[str, dict[str, Any]] = {}
    spec = measured = None
    if isinstance(peak, str):
        from pyprof.peaks.database import lookup
        e = lookup(peak, precision)
        spec = PeakReport(e.peak_flops_per_s, "spec", e.precision, f"{e.hardware}: {e.source}")
    elif peak is not None:
        spec = PeakReport(float(peak), "spec", precision, "given by the user (peak=)")
    if device is not None and device.kind == "cpu" and device.supported:
        from pyprof.peaks import cpu
        cpu_prec = precision if precision in ("fp32", "fp64") else "fp32"
        if cpu_prec != precision:
            notes.append(f"model precision {precision} on CPU is compared with the FP32 peak (no {precision} peak "
                         "kernel)")
        theo, how = cpu.theoretical_peak(cpu_prec)
        cpu_peaks.setdefault("theoretical", {})[cpu_prec] = {"flops_per_s": theo, "derivation": how}
        if spec is None and theo:
            spec = PeakReport(theo, "theoretical", cpu_prec, how)
        if measure and final:
            try:
                p = cpu.measure_peak(cpu_prec)
                cpu_peaks.setdefault("measured", {})[cpu_prec] = p.to_dict()
                if getattr(p, "crosscheck_note", None):  # table vs measurement beyond 1.5x: the report says so
                    notes.append(p.crosscheck_note)
                if p.theoretical_at_observed_clock_flops_per_s:
                    extra.append(PeakReport(
                        p.theoretical_at_observed_clock_flops_per_s, "theoretical at observed clock", cpu_prec,
                        f"{logical_cores()} cores x {(p.observed_clock_hz or 0.0) / 1e9:.2f} GHz (measured clock) x "
                        f"FLOP/cycle of {p.isa}"))
                measured = PeakReport(p.measured_flops_per_s, "measured", cpu_prec,
                                      f"pyprof FMA-chain microkernel ({p.isa}, {p.threads} threads, best of "
                                      f"{len(p.runs_flops_per_s)}; median {p.measured_median_flops_per_s / 1e9:.1f} "
                                      "GFLOP/s)")
            except Exception as e:
                notes.append(f"measuring the CPU peak failed: {e}")
    elif device is not None and device.kind == "cuda":
        spec, measured = _gpu_peaks(device, spec, precision, measure and final, observed_sm_clock_hz, extra, notes)
    elif spec is None:
        notes.append("no peak for this device: pass peak='<hardware name>' or peak=<FLOP/s> for utilization")
    return PeakSet(spec=spec, measured=measured, extra=tuple(extra), notes=tuple(notes), cpu_peaks=cpu_peaks)


def gpu_precision(precision: str) -> str:
    """The peak class the model's matmuls run at: FP32 models run TF32 tensor cores when torch allows it."""
    if precision == "fp32":
        try:
            import torch

            if torch.backends.cuda.matmul.allow_tf32:
                return "tf32"
        except Exception:
            pass
    return precision


def gpu_spec_peaks(device: DeviceReport | None) -> dict[str, Any]:
    """Spec peak per library precision class of this GPU: ``{precision: SpecPeak or None}``.

    Keyed by :data:`pyprof.sources.cuda.libcalls.PRECISIONS`; each class is looked up at the peak class its GEMMs run
    on (:func:`pyprof.peaks.gpu.gemm_peak_precision`: FP64 GEMMs run on FP64 tensor cores on sm_80/sm_90).
    """
    from pyprof.peaks import gpu as gp
    from pyprof.sources.cuda.libcalls import PRECISIONS as LIBRARY_PRECISIONS
    if device is None:
        return dict.fromkeys(LIBRARY_PRECISIONS)
    d = device.details
    cc = tuple(d.get("compute_capability") or (0, 0))
    out: dict[str, Any] = {}
    for p in LIBRARY_PRECISIONS:
        try:
            out[p] = gp.spec_peak(device.name, cc, d.get("sm_count") or 0, d.get("sm_clock_hz") or 0.0,
                                  gp.gemm_peak_precision(p, cc))
            if out[p].flops_per_s is None:
                out[p] = None
        except Exception:
            out[p] = None
    return out


def _gpu_peaks(device: DeviceReport, spec: PeakReport | None, prec: str, measure: bool, clk: float | None,
               extra: list[PeakReport], notes: list[str]) -> tuple[PeakReport | None, PeakReport | None]:
    measured = None
    gprec = gpu_precision(prec)
    if gprec != prec:
        notes.append("FP32 model with torch.backends.cuda.matmul.allow_tf32: its matmuls are compared with the "
                     "TF32 tensor peak")
    try:
        from pyprof.peaks import gpu as gp
        sp = gpu_spec_peaks(device).get(gprec)
        if sp is not None and spec is None:
            spec = PeakReport(sp.flops_per_s, "spec", gprec, sp.source)
        d = device.details
        cc = tuple(d.get("compute_capability") or (0, 0))
        peak_class = gp.gemm_peak_precision(gprec, cc) if gprec in gp.PRECISIONS else gprec
        if clk and d.get("sm_count"):
            adj = gp.clock_adjusted_peak(cc, d["sm_count"], clk, peak_class)
            if adj:
                extra.append(PeakReport(adj, "spec at observed SM clock", gprec,
                                        f"SMs x FLOP/clock/SM x NVML median SM clock {clk / 1e6:.0f} MHz"))
        if measure:
            rows = gp.measure_gpu_peaks(int(d.get("index", 0)), precisions=[gprec], quick=True)
            best = max((r for r in rows if r.precision == peak_class and r.measured_flops_per_s),
                       key=lambda r: r.measured_flops_per_s or 0.0, default=None)
            if best is not None:
                measured = PeakReport(best.measured_flops_per_s, "measured", gprec,
                                      f"pyprof GPU peak: {best.kind} ({best.method}, median launch)")
    except Exception as e:
        notes.append(f"GPU peaks unavailable: {e!r}")
    if spec is None:
        notes.append(f"no {gprec} peak known for {device.name}: pass peak='<hardware name>' or peak=<FLOP/s>")
    return spec, measured
