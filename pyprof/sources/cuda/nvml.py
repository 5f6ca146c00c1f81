"""NVML sampler: clocks, power, energy, temperature, NVML's own "utilization" and clock-event (throttle) reasons.

A daemon thread reads every device every ``interval_s`` through nvidia-ml-py (``import pynvml``). Each field degrades
on its own (gpustat's ``safecall``, zeus' ``_handle_nvml_errors``): an unsupported field, a missing permission or a
function this pynvml / this driver lacks becomes ``None`` with its reason recorded once, and the other fields go on.
No NVML at all (library missing, no driver) makes :meth:`NvmlSampler.start` return False with the reason.

Energy per FLOP in the report comes from :meth:`NvmlSampler.window` (energy over a time window) and
:func:`energy_per_flop_j`. NVML's utilization is shown next to pyprof's own with :data:`NVML_UTILIZATION_MEANING`.
Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

NVML_UTILIZATION_MEANING = (
    "NVML utilization.gpu is the percent of time one or more kernels ran on the GPU; it says nothing about how much "
    "of the GPU they used: a one-thread kernel reads 100%. utilization.memory is the percent of time device memory "
    "was being read or written."
)

# Clock-event ("throttle") reason bits: our name -> pynvml constant suffix. pynvml spells them
# nvmlClocksEventReason* (newer) and nvmlClocksThrottleReason* (older, plus BoardLimit and Reliability).
_REASON_CONSTANTS: tuple[tuple[str, str], ...] = (
    ("gpu_idle", "GpuIdle"),
    ("applications_clocks_setting", "ApplicationsClocksSetting"),
    ("sw_power_cap", "SwPowerCap"),
    ("hw_slowdown", "HwSlowdown"),
    ("sync_boost", "SyncBoost"),
    ("sw_thermal_slowdown", "SwThermalSlowdown"),
    ("hw_thermal_slowdown", "HwThermalSlowdown"),
    ("hw_power_brake_slowdown", "HwPowerBrakeSlowdown"),
    ("display_clock_setting", "DisplayClockSetting"),
    ("board_limit", "BoardLimit"),
    ("reliability", "Reliability"),
)

SAMPLE_FIELDS = ("sm_clock_mhz", "mem_clock_mhz", "power_mw", "energy_mj", "temperature_c", "utilization_gpu_pct",
                 "utilization_memory_pct", "throttle_reasons")


def _import_pynvml() -> ModuleType:
    import pynvml  # nvidia-ml-py

    return pynvml


def handle_for_cuda_device(nv: Any, index: int) -> Any:
    """NVML handle of CUDA device ``index``.

    NVML numbers every GPU in the machine while CUDA numbers only the visible ones (``CUDA_VISIBLE_DEVICES``), so the
    device is matched by UUID through torch when it can be, else by index. Raises what NVML raises.
    """
    try:
        import torch

        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        if uuid is not None and hasattr(nv, "nvmlDeviceGetHandleByUUID"):
            text = str(uuid)
            return nv.nvmlDeviceGetHandleByUUID(text if text.startswith("GPU-") else "GPU-" + text)
    except Exception:
        pass
    return nv.nvmlDeviceGetHandleByIndex(index)


def decode_throttle_reasons(mask: int, nvml: Any = None) -> tuple[str, ...]:
    """Names of the clock-event reasons set in ``mask``, using pynvml's constants.

    Args:
        mask: the bit mask ``nvmlDeviceGetCurrentClocksEventReasons`` returns.
        nvml: the pynvml module (imported when None).

    Returns:
        Reason names in bit order, e.g. ``("sw_power_cap", "hw_slowdown")``; bits pynvml does not name come back as
        ``"unknown_0x..."``; ``()`` for 0.
    """
    nv = nvml if nvml is not None else _import_pynvml()
    hits: list[tuple[int, str]] = []
    known = 0
    for name, suffix in _REASON_CONSTANTS:
        bit = getattr(nv, "nvmlClocksEventReason" + suffix, None)
        if bit is None:
            bit = getattr(nv, "nvmlClocksThrottleReason" + suffix, None)
        if not bit or bit & known:  # absent in this pynvml, or an alias of a bit already named
            continue
        known |= bit
        if mask & bit:
            hits.append((bit, name))
    out = [name for _, name in sorted(hits)]
    rest = mask & ~known
    if rest:
        out.append(f"unknown_{rest:#x}")
    return tuple(out)


def _throttle_mask(nv: Any, handle: Any) -> int:
    fn = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if fn is None:
        fn = nv.nvmlDeviceGetCurrentClocksThrottleReasons  # AttributeError when neither exists: recorded as missing
    return int(fn(handle))


# field -> how to read it; utilization is one call that fills two fields.
_READERS: tuple[tuple[tuple[str, ...], Callable[[Any, Any], tuple[Any, ...]]], ...] = (
    (("sm_clock_mhz",), lambda nv, h: (nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM),)),
    (("mem_clock_mhz",), lambda nv, h: (nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM),)),
    (("power_mw",), lambda nv, h: (nv.nvmlDeviceGetPowerUsage(h),)),
    (("energy_mj",), lambda nv, h: (nv.nvmlDeviceGetTotalEnergyConsumption(h),)),  # mJ since the driver loaded
    (("temperature_c",), lambda nv, h: (nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU),)),
    (("utilization_gpu_pct", "utilization_memory_pct"),
     lambda nv, h: (lambda u: (u.gpu, u.memory))(nv.nvmlDeviceGetUtilizationRates(h))),
    (("throttle_reasons",), lambda nv, h: (decode_throttle_reasons(_throttle_mask(nv, h), nv),)),
)


def _classify(nv: Any, err: BaseException) -> tuple[str, bool]:
    """(reason, permanent) for an error raised while reading one field."""
    try:
        real: Any = _import_pynvml()
    except ImportError:
        real = None

    def is_(name: str) -> bool:
        # The stand-in objects tests pass raise pynvml's own exception classes: check both.
        classes = [getattr(m, name, None) for m in (nv, real) if m is not None]
        return any(isinstance(c, type) and isinstance(err, c) for c in classes)

    if is_("NVMLError_NotSupported"):
        return "not supported on this GPU/driver (NVML_ERROR_NOT_SUPPORTED)", True
    if is_("NVMLError_NoPermission"):
        return "no permission to read it (NVML_ERROR_NO_PERMISSION)", True
    if is_("NVMLError_FunctionNotFound"):
        return f"this NVML library lacks the function ({err})", True
    if isinstance(err, AttributeError):
        return f"this pynvml lacks the function ({err})", True
    return f"{type(err).__name__}: {err}", False


class NvmlFieldReader:
    """Reads every sample field of one device, degrading per field.

    A field that fails gets ``None``; its first reason is kept in :attr:`reasons`. Permanent failures (not supported,
    no permission, function missing) stop further calls for that field; other errors are retried next time.

    Args:
        nvml: the pynvml module, or any object with the same functions (tests pass a stand-in).
    """

    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml
        self.reasons: dict[str, str] = {}
        self._dead: set[tuple[str, ...]] = set()

    def read(self, handle: Any) -> dict[str, Any]:
        """Return ``{field: value or None}`` for every name in :data:`SAMPLE_FIELDS`."""
        out: dict[str, Any] = {}
        for names, fn in _READERS:
            values: tuple[Any, ...] = (None,) * len(names)
            if names not in self._dead:
                try:
                    values = tuple(fn(self.nvml, handle))
                except Exception as e:  # one bad field never stops the others
                    reason, permanent = _classify(self.nvml, e)
                    for n in names:
                        self.reasons.setdefault(n, reason)
                    if permanent:
                        self._dead.add(names)
            out.update(zip(names, values))
        return out


@dataclass(frozen=True)
class NvmlSample:
    """One reading of one device (``None`` where the field could not be read)."""

    t_s: float
    device: int
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    power_mw: float | None = None
    energy_mj: float | None = None
    temperature_c: float | None = None
    utilization_gpu_pct: float | None = None
    utilization_memory_pct: float | None = None
    throttle_reasons: tuple[str, ...] | None = None


@dataclass
class NvmlWindow:
    """One device over ``[start_s, end_s]``.

    Means are plain means over the samples inside the window (they are evenly spaced). ``energy_j`` is the energy
    counter's increase between the first and last sample inside the window (``energy_source="energy_counter"``), else
    the trapezoid integral of power over the same samples (``"integrated_power"``), else None: both cover the span
    of the samples, which is shorter than the window by up to one interval.
    """

    device: int
    start_s: float
    end_s: float
    n_samples: int
    sm_clock_mhz_mean: float | None = None
    sm_clock_mhz_max: float | None = None
    mem_clock_mhz_mean: float | None = None
    mem_clock_mhz_max: float | None = None
    power_mw_mean: float | None = None
    power_mw_max: float | None = None
    energy_j: float | None = None
    energy_source: str | None = None
    temperature_c_max: float | None = None
    utilization_gpu_pct_mean: float | None = None
    utilization_memory_pct_mean: float | None = None
    throttle_reasons_seen: tuple[str, ...] = ()
    utilization_meaning: str = NVML_UTILIZATION_MEANING
    reasons: dict[str, str] = field(default_factory=dict)


def _vals(samples: Sequence[NvmlSample], name: str) -> list[float]:
    return [float(getattr(s, name)) for s in samples if getattr(s, name) is not None]


def _mean(v: list[float]) -> float | None:
    return sum(v) / len(v) if v else None


def aggregate_window(samples: Iterable[NvmlSample], start_s: float, end_s: float, device: int,
                     reasons: dict[str, str] | None = None) -> NvmlWindow:
    """Aggregate one device's samples inside ``[start_s, end_s]`` (pure; see :class:`NvmlWindow`).

    Args:
        samples: samples of any devices; only ``device``'s inside the window are used.
        start_s: window start, ``time.monotonic()`` seconds.
        end_s: window end.
        device: device index.
        reasons: field -> why it is None (the reader's), copied into the result for fields that stay None.

    Returns:
        The :class:`NvmlWindow`.
    """
    inside = sorted((s for s in samples if s.device == device and start_s <= s.t_s <= end_s), key=lambda s: s.t_s)
    w = NvmlWindow(device=device, start_s=start_s, end_s=end_s, n_samples=len(inside))
    sm, mem, pw = _vals(inside, "sm_clock_mhz"), _vals(inside, "mem_clock_mhz"), _vals(inside, "power_mw")
    w.sm_clock_mhz_mean, w.sm_clock_mhz_max = _mean(sm), (max(sm) if sm else None)
    w.mem_clock_mhz_mean, w.mem_clock_mhz_max = _mean(mem), (max(mem) if mem else None)
    w.power_mw_mean, w.power_mw_max = _mean(pw), (max(pw) if pw else None)
    temp = _vals(inside, "temperature_c")
    w.temperature_c_max = max(temp) if temp else None
    w.utilization_gpu_pct_mean = _mean(_vals(inside, "utilization_gpu_pct"))
    w.utilization_memory_pct_mean = _mean(_vals(inside, "utilization_memory_pct"))
    seen: set[str] = set()
    for s in inside:
        seen.update(s.throttle_reasons or ())
    w.throttle_reasons_seen = tuple(sorted(seen))

    energy = [s.energy_mj for s in inside if s.energy_mj is not None]
    power = [(s.t_s, s.power_mw) for s in inside if s.power_mw is not None]
    if len(energy) >= 2 and energy[-1] >= energy[0]:
        w.energy_j = (energy[-1] - energy[0]) / 1e3  # mJ -> J
        w.energy_source = "energy_counter"
    elif len(power) >= 2:
        # trapezoid: sum of (P_i + P_i+1) / 2 * (t_i+1 - t_i); mW * s = mJ
        mj = sum((pa + pb) / 2 * (tb - ta) for (ta, pa), (tb, pb) in itertools.pairwise(power))
        w.energy_j = mj / 1e3
        w.energy_source = "integrated_power"

    why_missing = dict(reasons or {})
    if not inside:
        w.reasons["*"] = "no NVML sample inside the window (window shorter than the sampling interval?)"
    for name, value in (("sm_clock_mhz", w.sm_clock_mhz_mean), ("mem_clock_mhz", w.mem_clock_mhz_mean),
                        ("power_mw", w.power_mw_mean), ("temperature_c", w.temperature_c_max),
                        ("utilization_gpu_pct", w.utilization_gpu_pct_mean),
                        ("utilization_memory_pct", w.utilization_memory_pct_mean)):
        if value is None and name in why_missing:
            w.reasons[name] = why_missing[name]
    if w.energy_j is None:
        w.reasons["energy_j"] = (why_missing.get("energy_mj") or why_missing.get("power_mw")
                                 or "fewer than two samples with energy or power inside the window")
    return w


def energy_per_flop_j(energy_j: float | None, flops: float | None) -> float | None:
    """Joules per FLOP, or None when either input is missing or ``flops`` is not positive."""
    if energy_j is None or flops is None or flops <= 0:
        return None
    return energy_j / flops


class NvmlSampler:
    """Background NVML sampler of one or more devices.

    Never raises into the caller: :meth:`start` returns False with :attr:`reason` when NVML is unusable, and the
    thread swallows (and records) every error.

    Args:
        devices: CUDA device indices (matched to NVML by UUID, see :func:`handle_for_cuda_device`); all the devices
            NVML sees when None.
        interval_s: seconds between readings.
        max_samples: samples kept per device (the oldest are dropped and counted beyond that).
        nvml: the pynvml module or a stand-in; imported when None.
    """

    def __init__(self, devices: Sequence[int] | None = None, interval_s: float = 0.1, max_samples: int = 100_000,
                 nvml: Any = None) -> None:
        self.devices = list(devices) if devices is not None else None
        self.interval_s = float(interval_s)
        self.max_samples = int(max_samples)
        self.reason = ""
        self.dropped = 0
        self._nvml = nvml
        self._handles: dict[int, Any] = {}
        self._readers: dict[int, NvmlFieldReader] = {}
        self._samples: dict[int, deque[NvmlSample]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._initialized = False
        self.thread_errors = 0

    def start(self) -> bool:
        """Initialize NVML, take a first reading and start the thread; False with :attr:`reason` when impossible."""
        if self._thread is not None:
            return True
        try:
            nv = self._nvml if self._nvml is not None else _import_pynvml()
            self._nvml = nv
        except ImportError as e:
            self.reason = f"nvidia-ml-py is not installed ({e}); pip install nvidia-ml-py"
            return False
        try:
            nv.nvmlInit()
        except Exception as e:
            self.reason = f"NVML is unavailable ({type(e).__name__}: {e}); is an NVIDIA driver installed and loaded?"
            return False
        self._initialized = True
        try:
            count = int(nv.nvmlDeviceGetCount())
            devices = self.devices if self.devices is not None else list(range(count))
            bad = [d for d in devices if not 0 <= d < count]
            if bad or not devices:
                raise ValueError(f"devices {bad or devices} not among the {count} NVML sees")
            for d in devices:
                self._handles[d] = handle_for_cuda_device(nv, d)
                self._readers[d] = NvmlFieldReader(nv)
                self._samples[d] = deque(maxlen=self.max_samples)
            self.devices = devices
            self._sample_once()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="pyprof-nvml", daemon=True)
            self._thread.start()
        except Exception as e:
            self.reason = f"NVML sampler could not start ({type(e).__name__}: {e})"
            self._shutdown()
            return False
        return True

    def _sample_once(self) -> None:
        t = time.monotonic()
        for d, h in self._handles.items():
            s = NvmlSample(t_s=t, device=d, **self._readers[d].read(h))
            with self._lock:
                q = self._samples[d]
                if len(q) == q.maxlen:
                    self.dropped += 1
                q.append(s)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._sample_once()
            except Exception as e:  # never let the thread die silently or raise anywhere
                self.thread_errors += 1
                self.reason = f"NVML sampling error ({type(e).__name__}: {e})"

    def _shutdown(self) -> None:
        if self._initialized:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._initialized = False

    def stop(self) -> None:
        """Stop the thread after a last reading, and release NVML (safe to call twice or without start)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=max(5.0, 5 * self.interval_s))
        try:
            self._sample_once()
        except Exception:
            pass
        self._thread = None
        self._shutdown()

    def samples(self, device: int | None = None) -> list[NvmlSample]:
        """Samples taken so far, of one device or of all."""
        with self._lock:
            if device is not None:
                return list(self._samples.get(device, ()))
            return [s for q in self._samples.values() for s in q]

    @property
    def reasons(self) -> dict[int, dict[str, str]]:
        """device -> field -> why that field is None."""
        return {d: dict(r.reasons) for d, r in self._readers.items()}

    def window(self, start_s: float, end_s: float) -> dict[int, NvmlWindow]:
        """Per device, the aggregate of the samples inside ``[start_s, end_s]`` (``time.monotonic()`` seconds)."""
        with self._lock:
            copies = {d: list(q) for d, q in self._samples.items()}
        return {d: aggregate_window(v, start_s, end_s, d, self._readers[d].reasons) for d, v in copies.items()}


@dataclass
class NvmlDeviceInfo:
    """Static facts of one device from NVML (``None`` with a reason where unavailable)."""

    index: int
    name: str | None = None
    sm_clock_max_mhz: float | None = None
    mem_clock_max_mhz: float | None = None
    power_limit_mw: float | None = None
    reasons: dict[str, str] = field(default_factory=dict)


def device_info(index: int, nvml: Any = None) -> NvmlDeviceInfo:
    """Name, maximum SM / memory clocks and power limit of device ``index``.

    Args:
        index: NVML device index.
        nvml: the pynvml module or a stand-in; imported when None.

    Returns:
        An :class:`NvmlDeviceInfo`; never raises (every field None with the reason when NVML is unusable).
    """
    info = NvmlDeviceInfo(index=index)
    fields = ("name", "sm_clock_max_mhz", "mem_clock_max_mhz", "power_limit_mw")
    try:
        nv = nvml if nvml is not None else _import_pynvml()
        nv.nvmlInit()
    except Exception as e:
        for f in fields:
            info.reasons[f] = f"NVML is unavailable ({type(e).__name__}: {e})"
        return info
    try:
        h = nv.nvmlDeviceGetHandleByIndex(index)
    except Exception as e:
        for f in fields:
            info.reasons[f] = f"no NVML device {index} ({type(e).__name__}: {e})"
        nv.nvmlShutdown()
        return info

    def limit(nv_: Any, h_: Any) -> Any:
        try:
            return nv_.nvmlDeviceGetPowerManagementLimit(h_)
        except Exception:
            return nv_.nvmlDeviceGetEnforcedPowerLimit(h_)

    readers: dict[str, Callable[[Any, Any], Any]] = {
        "name": lambda nv_, h_: nv_.nvmlDeviceGetName(h_),
        "sm_clock_max_mhz": lambda nv_, h_: nv_.nvmlDeviceGetMaxClockInfo(h_, nv_.NVML_CLOCK_SM),
        "mem_clock_max_mhz": lambda nv_, h_: nv_.nvmlDeviceGetMaxClockInfo(h_, nv_.NVML_CLOCK_MEM),
        "power_limit_mw": limit,
    }
    for f, fn in readers.items():
        try:
            v = fn(nv, h)
            setattr(info, f, v.decode() if isinstance(v, bytes) else v)
        except Exception as e:
            info.reasons[f] = _classify(nv, e)[0]
    try:
        nv.nvmlShutdown()
    except Exception:
        pass
    return info
