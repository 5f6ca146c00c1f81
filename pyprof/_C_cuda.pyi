"""Type stubs for pyprof._C_cuda, the CUDA/CUPTI part (csrc/cuda/module_cuda.cpp)."""

from typing import Any

def probe() -> dict[str, Any]: ...
def ffma_peak(device: int = 0, blocks_per_sm: int = 8, threads_per_block: int = 256,
              iterations: int = 65536) -> dict[str, Any]: ...
