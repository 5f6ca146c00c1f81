"""bench/gpu_check.sh on a machine without a GPU, and the report notes for library FLOPs pyprof cannot attribute yet."""

from __future__ import annotations

import pytest

from pyprof.sources.cuda import libcalls
from pyprof.sources.cuda.libcalls import AttributionGap

# ------------------------------------------------------------------------------------------ attribution notes


def test_graph_replay_note_counts_graph_kernels_without_library_flops():
    recs = [
        {"graph_id": 0, "start_ns": 0, "end_ns": 1_000, "library_flops": 0.0},           # eager, no library call
        {"graph_id": 7, "start_ns": 1_000, "end_ns": 3_001_000, "library_flops": 0.0},   # replayed GEMM: 3 ms
        {"graph_id": 7, "start_ns": 3_001_000, "end_ns": 4_001_000, "library_flops": 0.0},  # 1 ms
        {"graph_id": 7, "start_ns": 0, "end_ns": 5, "library_flops": 2e9},               # attributed: not counted
    ]
    note = libcalls.graph_replay_note(recs)
    assert note is not None and note.gap is AttributionGap.CUDA_GRAPH_REPLAY
    assert note.count == 2                       # the two graph kernels with no library FLOPs
    assert note.time_s == pytest.approx(4e-3)    # 3,000,000 ns + 1,000,000 ns = 4 ms
    assert note.text.startswith("CUDA-graph replays: library FLOPs not attributed")
    assert libcalls.graph_replay_note(recs[:1]) is None    # no graph kernel
    assert libcalls.graph_replay_note(None) is None        # records not kept


def test_cudnn_backend_note_says_where_the_flops_come_from():
    note = libcalls.cudnn_backend_note(53, analytic_counting=True)
    assert note is not None and note.gap is AttributionGap.CUDNN_BACKEND and note.count == 53
    assert note.text == ("53 cuDNN backend execution(s) not attributed; their FLOPs come from the analytic count")
    assert "missing from library FLOPs" in libcalls.cudnn_backend_note(1, analytic_counting=False).text
    assert libcalls.cudnn_backend_note(0, True) is None
    with pytest.raises(ValueError, match="negative"):
        libcalls.cudnn_backend_note(-1, True)
