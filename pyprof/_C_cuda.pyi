"""Type stubs for pyprof._C_cuda, the CUDA/CUPTI part (csrc/cuda/module_cuda.cpp)."""

from typing import Any

def probe() -> dict[str, Any]: ...
def ffma_peak(device: int = 0, blocks_per_sm: int = 8, threads_per_block: int = 256,
              iterations: int = 65536) -> dict[str, Any]: ...

# ==== section activity ====
# ==== end section activity ====

# ==== section libhooks ====
# ==== end section libhooks ====

# ==== section range_profiler ====
# ==== end section range_profiler ====

# ==== section pm_sampler ====
# PM sampling (csrc/cuda/pm_sampler.h). Host-side calls need no GPU.
def pm_config(chip: str, metrics: list[str], require_one_pass: bool = True) -> dict[str, Any]:
    """{"num_passes", "config_image_bytes", "metrics"}; RuntimeError naming a rejected or pass-breaking metric."""
def pm_base_metrics(chip: str) -> list[str]: ...
def pm_chip_name(device: int = 0) -> str: ...

class PmSampler:
    def __init__(self, device: int, metrics: list[str], interval_ns: int = 2_000_000,
                 max_samples: int = 100_000) -> None: ...
    def start(self) -> str:
        """'running', or 'permission_denied' / 'no_device' / 'not_supported' / 'error' (text in stats()['error'])."""
    def stop(self) -> None: ...
    def samples(self) -> list[dict[str, Any]]:
        """Drains: [{"start_ns": int, "end_ns": int, "values": {metric: float}}]."""
    def stats(self) -> dict[str, Any]:
        """decoded, dropped, overflows, decode_errors, status, error, chip, trigger_mode, interval_ns,
        cupti_ts_at_start_ns, monotonic_ns_at_start."""
    @property
    def metrics(self) -> list[str]: ...

class _PmSampleRing:
    def __init__(self, capacity: int) -> None: ...
    def push(self, start_ns: int, end_ns: int, values: list[float]) -> None: ...
    def drain(self) -> list[tuple[int, int, list[float]]]: ...
    @property
    def dropped(self) -> int: ...
    def __len__(self) -> int: ...
# ==== end section pm_sampler ====

# ==== section peaks ====
# ==== end section peaks ====
