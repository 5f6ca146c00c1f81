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
# ==== end section pm_sampler ====

# ==== section peaks ====
def gpu_peak_kinds() -> list[str]: ...
def gpu_peak(kind: str, device: int = 0, iterations: int = 0, repeats: int = 5) -> dict[str, Any]: ...
# ==== end section peaks ====
