"""CUPTI kernel tracer: decode and aggregation through the real C++ path, fed with records in CUPTI's own layout.

CPU tests build CUpti_ActivityKernel10 / Memcpy6 / Memset4 / ExternalCorrelation records with the native seam,
concatenate them as CUPTI lays out a buffer (every record is padded to 8 bytes), and decode them with the same
``decode_buffer`` the buffer-completed callback uses. GPU tests (``-m gpu``) check the live tracer against CUDA events.
"""

from __future__ import annotations

import warnings

import pytest

from pyprof._native import load_cuda
from pyprof.sources.cuda import tracer as tracer_mod
from pyprof.sources.cuda.tracer import GpuWindow, KernelRow, KernelTracer

_cuda, _cuda_reason = load_cuda()
needs_cuda_part = pytest.mark.skipif(_cuda is None, reason=f"pyprof._C_cuda not built: {_cuda_reason}")


@pytest.fixture
def c():
    """The native module with a clean aggregator, default caps and an empty library-call registry."""
    if _cuda is None:
        pytest.skip(f"pyprof._C_cuda not built: {_cuda_reason}")
    _cuda.testing.reset()
    yield _cuda
    _cuda.testing.reset()


def kernel(c, name, start_ns, end_ns, **kw):
    return c.testing.make_kernel_record(name, start_ns, end_ns, **kw)


# ---------------------------------------------------------------- decode


def test_record_sizes_are_cupti_layout_and_8_byte_aligned(c):
    k = kernel(c, "k", 1, 2)
    m = c.testing.make_memcpy_record(8, 1, 2)
    s = c.testing.make_memset_record(8, 1, 2)
    e = c.testing.make_external_correlation_record(1, 2)
    # CUDA 13.0 cupti_activity.h: CUpti_ActivityKernel10 216 B, Memcpy6 96 B, Memset4 88 B, ExternalCorrelation 24 B.
    assert [len(k), len(m), len(s), len(e)] == [216, 96, 88, 24]
    assert all(len(r) % 8 == 0 for r in (k, m, s, e))


def test_decode_mixed_buffer_counts_every_kind(c):
    buf = b"".join([
        c.testing.make_external_correlation_record(5, 42),
        kernel(c, "k_concurrent", 100, 200, correlation_id=5),
        kernel(c, "k_serial", 300, 350, concurrent=False),  # CUPTI_ACTIVITY_KIND_KERNEL shares the record layout
        c.testing.make_memcpy_record(4096, 210, 260),
        c.testing.make_memset_record(512, 270, 280),
    ])
    counts = c.testing.decode(buf)
    assert counts == {"records": 5, "kernels": 2, "memcpys": 1, "memsets": 1, "external_correlations": 1,
                      "api": 0, "other": 0, "error": None}
    st = c.tracer_stats()
    assert st["records_decoded"] == 5 and st["kernel_records"] == 2 and st["external_correlation_records"] == 1
    assert st["pending_records"] == 4  # 2 kernels + 1 memcpy + 1 memset wait for a window


def test_decode_round_trips_every_kernel_field(c):
    buf = (c.testing.make_external_correlation_record(77, 9001)
           + kernel(c, "void gemm<128>(float*)", 1_000, 1_750, device=1, stream=13, grid=(4, 2, 1),
                    block=(256, 1, 1), correlation_id=77, context=3, graph_id=6, graph_node_id=123456789))
    c.testing.decode(buf)
    w = c.tracer_close_window(0, 10_000, keep_records=True)
    (r,) = w["records"]
    assert r == {"name": "void gemm<128>(float*)", "device": 1, "context": 3, "stream": 13, "grid": (4, 2, 1),
                 "block": (256, 1, 1), "start_ns": 1_000, "end_ns": 1_750, "correlation_id": 77, "graph_id": 6,
                 "graph_node_id": 123456789, "external_id": 9001, "library_flops": 0.0, "precision": None}


def test_external_ids_of_other_kinds_are_not_pyprofs(c):
    # Kind 4 = CUSTOM1 (someone else's tag): only CUSTOM0 (3) carries pyprof's step ids.
    c.testing.decode(c.testing.make_external_correlation_record(8, 55, external_kind=4)
                               + kernel(c, "k", 10, 20, correlation_id=8))
    assert c.tracer_close_window(0, 100, keep_records=True)["records"][0]["external_id"] == 0


def test_records_without_timestamps_are_counted_not_aggregated(c):
    # CUPTI writes start = end = 0 when it could not time an operation.
    c.testing.decode(kernel(c, "untimed", 0, 0) + kernel(c, "timed", 10, 30))
    w = c.tracer_close_window(0, 100)
    assert w["kernel_count"] == 1 and w["kernel_ns"] == 20
    assert c.tracer_stats()["no_timestamp_records"] == 1


# ---------------------------------------------------------------- kernel table


def test_kernel_table_aggregates_per_name_grid_block_device(c):
    recs = [
        kernel(c, "k1", 0, 100, grid=(2, 1, 1), block=(128, 1, 1)),
        kernel(c, "k1", 200, 500, grid=(2, 1, 1), block=(128, 1, 1)),
        kernel(c, "k1", 600, 800, grid=(2, 1, 1), block=(128, 1, 1)),
        kernel(c, "k1", 900, 950, grid=(4, 1, 1), block=(128, 1, 1)),  # other grid: own row
        kernel(c, "k1", 900, 910, grid=(2, 1, 1), block=(128, 1, 1), device=1),  # other device: own row
    ]
    c.testing.decode(b"".join(recs))
    rows = {(r["name"], r["grid"], r["device"]): r for r in c.tracer_kernel_table(0)}
    assert len(rows) == 3
    r = rows[("k1", (2, 1, 1), 0)]
    # durations 100, 300, 200 -> count 3, total 600, max 300
    assert (r["count"], r["total_ns"], r["max_ns"]) == (3, 600, 300)
    assert rows[("k1", (4, 1, 1), 0)]["total_ns"] == 50
    assert rows[("k1", (2, 1, 1), 1)]["total_ns"] == 10


def test_kernel_table_orders_by_total_time_and_cuts_at_top_n(c):
    recs = [kernel(c, "short", 0, 100), kernel(c, "long", 0, 400), kernel(c, "long", 500, 600),
            kernel(c, "mid", 0, 300)]
    c.testing.decode(b"".join(recs))
    # totals: long 400 + 100 = 500, mid 300, short 100
    assert [(r["name"], r["total_ns"]) for r in c.tracer_kernel_table(0)] == [("long", 500), ("mid", 300),
                                                                              ("short", 100)]
    assert [r["name"] for r in c.tracer_kernel_table(2)] == ["long", "mid"]


def test_kernel_keys_are_capped_into_an_other_row(c):
    c.testing.set_limits(max_kernel_keys=2)
    recs = [kernel(c, "a", 0, 10), kernel(c, "b", 0, 20), kernel(c, "c", 0, 30), kernel(c, "d", 0, 40),
            kernel(c, "a", 100, 105)]
    c.testing.decode(b"".join(recs))
    rows = {r["name"]: r for r in c.tracer_kernel_table(0)}
    # "a" and "b" take the 2 keys; "c" (30) and "d" (40) merge: count 2, total 70, max 40; "a" grows to 15.
    assert set(rows) == {"a", "b", "<other kernels>"}
    other = rows["<other kernels>"]
    assert (other["count"], other["total_ns"], other["max_ns"], other["device"]) == (2, 70, 40, -1)
    assert rows["a"]["total_ns"] == 15
    assert c.tracer_stats()["keys_overflowed"] == 2


# ---------------------------------------------------------------- windows


def test_busy_time_is_the_union_of_kernel_intervals_per_device(c):
    recs = [
        kernel(c, "a", 0, 100, device=0),
        kernel(c, "b", 50, 150, device=0),    # dev 0: [0,100)+[50,150) -> busy 150 (overlap 50 counted once)
        kernel(c, "c", 120, 130, device=0),   # inside [50,150): adds nothing
        kernel(c, "d", 200, 300, device=1),
        kernel(c, "e", 400, 450, device=1),   # dev 1: [200,300)+[400,450) disjoint -> busy 150
    ]
    c.testing.decode(b"".join(recs))
    w = c.tracer_close_window(0, 1000)
    assert w["kernel_count"] == 5
    assert w["kernel_ns"] == 100 + 100 + 10 + 100 + 50  # = 360: concurrent kernels each count in full
    assert w["busy_ns"] == {0: 150, 1: 150}
    assert w["idle_ns"] == {0: 1000 - 150, 1: 1000 - 150}


def test_busy_time_is_clipped_at_the_window_end(c):
    c.testing.decode(kernel(c, "tail", 900, 1100))
    w = c.tracer_close_window(0, 1000)
    # starts inside [0,1000): kernel_ns is its full 200, busy only its part before 1000 -> 100, idle 900
    assert (w["kernel_ns"], w["busy_ns"], w["idle_ns"]) == (200, {0: 100}, {0: 900})


def test_idle_device_shows_the_whole_window_idle(c):
    c.testing.decode(kernel(c, "early", 10, 20, device=1) + kernel(c, "late", 1010, 1030, device=0))
    c.tracer_close_window(0, 1000)
    w = c.tracer_close_window(1000, 2000)
    # device 1 was seen before: idle for all of [1000,2000); device 0 busy 20 -> idle 980
    assert w["busy_ns"] == {0: 20, 1: 0}
    assert w["idle_ns"] == {0: 980, 1: 1000}


def test_window_boundaries_before_inside_after(c):
    recs = [kernel(c, "before", 50, 60), kernel(c, "at_start", 100, 110), kernel(c, "inside", 199, 230),
            kernel(c, "at_end", 200, 210), kernel(c, "after", 250, 260)]
    c.testing.decode(b"".join(recs))
    w1 = c.tracer_close_window(100, 200, keep_records=True)
    # [100,200): at_start (10) and inside (31) start in it; before is discarded; at_end/after wait
    assert sorted(r["name"] for r in w1["records"]) == ["at_start", "inside"]
    assert (w1["kernel_count"], w1["kernel_ns"], w1["discarded_before_start"]) == (2, 41, 1)
    assert c.tracer_stats()["pending_records"] == 2
    w2 = c.tracer_close_window(200, 300, keep_records=True)
    assert sorted(r["name"] for r in w2["records"]) == ["after", "at_end"]
    st = c.tracer_stats()
    assert st["outside_windows"] == 1 and st["pending_records"] == 0
    assert w2["records_truncated"] == 0
    assert c.tracer_close_window(200, 300)["kernel_count"] == 0  # taken records are gone


def test_records_are_none_unless_asked(c):
    c.testing.decode(kernel(c, "k", 10, 20))
    assert c.tracer_close_window(0, 100)["records"] is None


def test_memcpy_and_memset_in_window(c):
    recs = [c.testing.make_memcpy_record(1 << 20, 100, 300, copy_kind=1),
            c.testing.make_memcpy_record(4096, 400, 450, copy_kind=2),
            c.testing.make_memset_record(256, 500, 510),
            c.testing.make_memcpy_record(999, 2000, 2100)]  # after the window: stays pending
    c.testing.decode(b"".join(recs))
    w = c.tracer_close_window(0, 1000)
    # memcpy: 2 copies, 1048576 + 4096 = 1052672 bytes, 200 + 50 = 250 ns; memset: 1, 256 bytes, 10 ns
    assert (w["memcpy_count"], w["memcpy_bytes"], w["memcpy_ns"]) == (2, 1052672, 250)
    assert (w["memset_count"], w["memset_bytes"], w["memset_ns"]) == (1, 256, 10)
    assert w["kernel_count"] == 0 and w["busy_ns"] == {0: 0}  # copies are not kernel-busy time
    assert c.tracer_stats()["pending_records"] == 1


def test_pending_records_are_capped_and_drops_counted(c):
    c.testing.set_limits(max_pending_records=3)
    c.testing.decode(b"".join(kernel(c, f"k{i}", 10 * i, 10 * i + 5) for i in range(5)))
    st = c.tracer_stats()
    assert st["pending_dropped"] == 2 and st["pending_records"] == 3
    assert c.tracer_close_window(0, 1000)["kernel_count"] == 3
    # the kernel table is not bounded by the pending list: all 5 executions are there
    assert sum(r["count"] for r in c.tracer_kernel_table(0)) == 5


def test_window_records_are_capped_and_truncation_counted(c):
    c.testing.set_limits(max_window_records=2)
    c.testing.decode(b"".join(kernel(c, "k", 10 * i, 10 * i + 5) for i in range(5)))
    w = c.tracer_close_window(0, 1000, keep_records=True)
    assert len(w["records"]) == 2 and w["records_truncated"] == 3
    assert w["kernel_count"] == 5  # the sums still cover every kernel


# ---------------------------------------------------------------- library FLOPs


def test_library_flops_reach_the_kernel_through_the_registry(c):
    flops = 2.0 * 64 * 128 * 256  # 2*M*N*K = 4194304
    call_id = c.testing.libcall_record(thread_id=11, stream=0, flops=flops, precision="bf16")
    assert c.testing.libcall_bind_launch(thread_id=11, stream=0, correlation_id=77) == call_id
    recs = [kernel(c, "gemm", 100, 300, correlation_id=77),
            kernel(c, "gemm", 400, 600, correlation_id=77),  # same launch (graph-like): the call is taken once
            kernel(c, "relu", 300, 350, correlation_id=78)]
    c.testing.decode(b"".join(recs))
    w = c.tracer_close_window(0, 1000, keep_records=True)
    assert w["library_flops"] == {"bf16": flops}
    assert w["library_kernel_count"] == 1
    # uncounted: the second gemm (200) and relu (50)
    assert w["uncounted_kernel_ns"] == 250
    by_start = {r["start_ns"]: r for r in w["records"]}
    assert by_start[100]["library_flops"] == flops and by_start[100]["precision"] == "bf16"
    assert by_start[400]["precision"] is None
    (row,) = [r for r in c.tracer_kernel_table(0) if r["name"] == "gemm"]
    assert (row["library_flops"], row["library_calls"], row["precision"], row["library_ns"]) == (flops, 1, "bf16", 200)
    assert c.tracer_stats()["library_kernels"] == 1


def test_library_call_on_another_stream_does_not_bind(c):
    c.testing.libcall_record(thread_id=5, stream=0xA, flops=10.0, precision="fp32")
    assert c.testing.libcall_bind_launch(thread_id=5, stream=0xB, correlation_id=3) == 0
    c.testing.decode(kernel(c, "k", 10, 20, correlation_id=3))
    w = c.tracer_close_window(0, 100)
    assert w["library_flops"] == {} and w["uncounted_kernel_ns"] == 10


def test_kernel_with_calls_of_two_precisions_reads_mixed(c):
    for corr, prec in ((1, "bf16"), (2, "fp32")):
        c.testing.libcall_record(thread_id=9, stream=0, flops=100.0, precision=prec)
        c.testing.libcall_bind_launch(thread_id=9, stream=0, correlation_id=corr)
    c.testing.decode(kernel(c, "g", 0, 10, correlation_id=1) + kernel(c, "g", 20, 30, correlation_id=2))
    (row,) = c.tracer_kernel_table(0)
    assert (row["precision"], row["library_flops"], row["library_calls"]) == ("mixed", 200.0, 2)
    assert c.tracer_close_window(0, 100)["library_flops"] == {"bf16": 100.0, "fp32": 100.0}


# ---------------------------------------------------------------- bindings that must be released (issue 15, certain 5)


def test_registry_evicts_the_oldest_binding_at_the_cap(c):
    # Cap 2, bindings made in the order 30, 10, 20 (ids chosen so that hash order differs from binding order):
    # the third binding evicts the first one made (30), whatever unordered_map's begin() is.
    c.testing.libcall_set_max_bound(2)
    for corr in (30, 10, 20):
        c.testing.libcall_record(thread_id=21, stream=0, flops=1.0, precision="fp32")
        assert c.testing.libcall_bind_launch(thread_id=21, stream=0, correlation_id=corr) != 0
    assert c.testing.libcall_take(30) is None
    assert c.testing.libcall_take(10) is not None and c.testing.libcall_take(20) is not None
    assert c.hooks_stats()["dropped"] == 1  # one eviction: 3 bound - cap 2


def test_taking_a_binding_keeps_the_eviction_order(c):
    # Bind 1, 2; take 1 (its kernel arrived); bind 3 and 4 at cap 2: 3 fits beside 2, then 4 evicts 2 (oldest left).
    c.testing.libcall_set_max_bound(2)
    for corr in (1, 2):
        c.testing.libcall_record(thread_id=22, flops=1.0)
        c.testing.libcall_bind_launch(thread_id=22, stream=0, correlation_id=corr)
    assert c.testing.libcall_take(1) is not None
    for corr in (3, 4):
        c.testing.libcall_record(thread_id=22, flops=1.0)
        c.testing.libcall_bind_launch(thread_id=22, stream=0, correlation_id=corr)
    assert c.testing.libcall_take(2) is None
    assert c.testing.libcall_take(3) is not None and c.testing.libcall_take(4) is not None


def test_record_without_timestamps_still_takes_its_binding(c):
    c.testing.libcall_record(thread_id=23, stream=0, flops=8.0, precision="fp16")
    c.testing.libcall_bind_launch(thread_id=23, stream=0, correlation_id=55)
    assert c.hooks_stats()["waiting"] == 1
    c.testing.decode(kernel(c, "untimed", 0, 0, correlation_id=55))  # start = end = 0: CUPTI could not time it
    st = c.tracer_stats()
    assert st["no_timestamp_records"] == 1 and st["library_calls_untimed"] == 1
    assert c.hooks_stats()["waiting"] == 0  # released, not leaked
    assert c.tracer_close_window(0, 100)["library_flops"] == {}  # and not counted: no time to put it on


# ---------------------------------------------------------------- the buffer pool (issue 15, certain 4)


def test_buffer_pool_ignores_buffers_it_never_allocated(c):
    pool = c.testing.BufferPool(buffer_bytes=1 << 16, max_buffers=2)
    a = pool.acquire()
    assert a != 0
    assert pool.release_foreign() is False  # another client's buffer: neither kept for reuse nor freed
    assert pool.release(a) is True
    assert pool.release(a) is False  # returned twice: the second is not ours any more
    st = pool.stats()
    assert (st["allocated"], st["in_use"], st["foreign"]) == (1, 0, 2)
    assert pool.acquire() == a  # the free list holds only our own buffer


def test_foreign_completed_buffer_is_neither_decoded_nor_freed(c):
    rec = kernel(c, "theirs", 10, 20)
    c.testing.complete_buffer(rec, from_pool=False)
    st = c.tracer_stats()
    assert st["foreign_buffers"] == 1 and st["kernel_records"] == 0
    c.testing.complete_buffer(kernel(c, "ours", 10, 20), from_pool=True)
    st = c.tracer_stats()
    assert st["kernel_records"] == 1 and st["buffers_completed"] == 1
    assert [r["name"] for r in c.tracer_kernel_table(0)] == ["ours"]


# ---------------------------------------------------------------- the tracer's lifecycle against a fake CUPTI


@pytest.fixture
def fake(c):
    """A recording fake of CUPTI's activity API under the process tracer (a driver reported, every call succeeds)."""
    if c.tracer_active():
        pytest.skip("the real tracer is running in this process; the fake goes in only while it is stopped")
    f = c.testing.FakeCupti()
    f.install()
    try:
        yield f
    finally:
        c.tracer_stop()
        c.testing.FakeCupti.uninstall()


def _count(calls, name):
    return sum(1 for x in calls if x == name or x.startswith(name + "("))


def test_buffer_callbacks_are_registered_at_every_start(c, fake):
    # Another client (Kineto re-registers at every enable) may take the callbacks between our stop and next start.
    assert c.tracer_start()["ok"] is True
    c.tracer_stop()
    assert c.tracer_start()["ok"] is True
    c.tracer_stop()
    assert _count(fake.calls, "register_buffer_callbacks") == 2  # two starts, two registrations


def test_monotonic_timestamp_callback_comes_before_any_kind(c, fake):
    import time

    assert c.tracer_start()["ok"] is True
    calls = fake.calls
    ts = calls.index("register_timestamp_callback")
    first_kind = min(i for i, x in enumerate(calls) if x.startswith("enable_kind("))
    assert ts < first_kind  # cupti_activity.h: register it before enabling any activity kind
    # The tracer's clock is then CLOCK_MONOTONIC, Python's time.monotonic_ns (the fake's CUPTI clock reads 1000).
    before = time.monotonic_ns()
    now = c.tracer_now_ns()
    assert before <= now <= time.monotonic_ns()
    assert c.tracer_stats()["clock"] == "monotonic"
    c.tracer_stop()
    fake.clear()
    fake.fail("register_timestamp_callback", 1)  # refused: CUPTI's default clock stays, and the status says so
    st = c.tracer_start()
    assert st["ok"] is True and "cuptiActivityRegisterTimestampCallback" in st["message"]
    assert c.tracer_stats()["clock"] == "cupti" and c.tracer_now_ns() == 1000  # the fake's CUPTI clock


def test_api_records_only_on_request(c, fake):
    # The per-launch runtime/driver API records only serve external correlation: off by default.
    assert c.tracer_start()["ok"] is True
    assert _count(fake.calls, "enable_api_record") == 0
    ext_kind = 39  # CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION = 39 (cupti_activity.h, CUDA 13.0)
    assert f"enable_kind({ext_kind},1)" not in fake.calls
    c.tracer_stop()
    fake.clear()
    st = c.tracer_start(external_correlation=True)
    assert st["ok"] is True and "external correlation" in st["message"]
    # 10 runtime + 8 driver launch entry points (activity.cpp kRuntimeLaunchCbids / kDriverLaunchCbids)
    assert _count(fake.calls, "enable_api_record") == 10 + 8
    assert f"enable_kind({ext_kind},1)" in fake.calls
    c.tracer_stop()
    assert sum(1 for x in fake.calls if x.startswith("enable_api_record(") and x.endswith(",0)")) == 18  # undone


def test_per_step_flush_is_not_forced_only_stop_forces(c, fake):
    t = KernelTracer()
    assert t.start() is True
    fake.clear()
    t.flush()
    t.close_window(0, 10)
    assert fake.calls == ["flush_all(0)", "flush_all(0)"]  # flush + the flush inside close_window
    fake.clear()
    t.stop()
    assert fake.calls.count("flush_all(1)") == 2  # before and after disabling the kinds
    assert "flush_all(0)" not in fake.calls


def test_failed_registration_rolls_back_and_reports_the_call(c, fake):
    fake.fail("register_buffer_callbacks", 1)  # CUPTI_ERROR_INVALID_PARAMETER
    st = c.tracer_start()
    assert st["ok"] is False and st["code"] == 1
    assert "cuptiActivityRegisterCallbacks" in st["message"] and "activity.cpp" in st["message"]
    assert "unsubscribe" in fake.calls and c.tracer_active() is False


def test_a_failed_flush_is_logged_and_tracing_goes_on(c, fake):
    assert c.tracer_start()["ok"] is True
    fake.fail("flush_all", 1)  # CUPTI_ERROR_INVALID_PARAMETER
    c.tracer_flush()  # while collecting: log and count, never raise into the training loop
    st = c.tracer_stats()
    assert st["callback_errors"] == 1 and st["active"] is True
    assert "cuptiActivityFlushAll" in st["last_error"] and "activity.cpp" in st["last_error"]


def test_a_new_profile_starts_with_an_empty_aggregator(c, fake):
    # Issue 15 certain 6: a second profile in the same process must not report the first one's kernels (nor pyprof's
    # own peak kernels traced under enable_early).
    c.testing.decode(kernel(c, "earlier_profile", 10, 20))
    assert [r["name"] for r in c.tracer_kernel_table(0)] == ["earlier_profile"]
    t = KernelTracer()
    assert t.start() is True
    try:
        assert t.kernel_table(0) == []
        c.testing.decode(kernel(c, "this_profile", 30, 40))
        assert [r.name for r in t.kernel_table(0)] == ["this_profile"]
    finally:
        t.stop()


def test_native_rejects_a_libcupti_of_another_major_version():
    from pyprof import _native

    assert _native.cupti_major_version("/opt/x/nvidia/cuda_cupti/lib/libcupti.so.12") == 12
    assert _native.cupti_major_version("/usr/local/cuda/lib64/libcupti.so.13.0.48") == 13
    assert _native.cupti_major_version("/nowhere/libcupti.so") is None  # unversioned and not loaded: unknown


def test_native_refuses_to_load_beside_another_cupti(monkeypatch):
    from pyprof import _native

    monkeypatch.setattr(_native, "loaded_cupti", lambda: "/site/nvidia/cuda_cupti/lib/libcupti.so.12")
    with pytest.raises(ImportError, match=r"libcupti major version 12 .* needs libcupti\.so\.13"):
        _native._share_framework_cupti()
    _native.load_cuda.cache_clear()
    try:
        mod, reason = _native.load_cuda()
        assert mod is None and "libcupti major version 12" in reason and "cu130" in reason
    finally:
        _native.load_cuda.cache_clear()  # the next caller loads for real again


# ---------------------------------------------------------------- starting without a GPU


@needs_cuda_part
def test_tracer_start_without_driver_returns_a_status(c):
    probe = c.probe()
    if probe["driver_version"]:
        pytest.skip("a driver is present: this checks the driverless path")
    st = c.tracer_start()
    assert st["ok"] is False and st["code"] == c.TRACER_NO_DRIVER
    assert "driver" in st["message"]
    assert c.tracer_stats()["active"] is False
    c.tracer_flush()
    c.tracer_stop()
    c.tracer_push_external_id(3)
    assert c.tracer_pop_external_id() == 0
    with pytest.raises(ValueError):
        c.tracer_start(buffer_bytes=1024)


def test_kernel_tracer_start_is_false_with_reason_here():
    if _cuda is not None and _cuda.probe()["driver_version"]:
        pytest.skip("a driver is present")
    t = KernelTracer()
    assert t.start() is False
    assert t.active is False
    assert t.reason and ("driver" in t.reason or "not built" in t.reason or "failed to load" in t.reason)
    t.stop()  # no-op, must not raise
    assert tracer_mod.enable_early() is False
    assert tracer_mod.enable_early() is False  # safe twice


def test_kernel_tracer_without_the_cuda_part(monkeypatch):
    monkeypatch.setattr(tracer_mod, "load_cuda", lambda: (None, "the CUDA/CUPTI part of pyprof was not built"))
    t = KernelTracer()
    assert t.start() is False and "not built" in t.reason
    assert t.stats() == {}
    with pytest.raises(RuntimeError, match="not built"):
        t.close_window(0, 1)


def test_kernel_tracer_rejects_bad_options():
    with pytest.raises(ValueError):
        KernelTracer(buffer_bytes=100)
    with pytest.raises(ValueError):
        KernelTracer(max_buffers=0)


def test_cupti_busy_warning_is_issued_once(monkeypatch):
    monkeypatch.setattr(tracer_mod, "_warned_cupti_busy", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracer_mod._warn_cupti_busy("")
        tracer_mod._warn_cupti_busy("Nsight Systems")
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert "torch.profiler" in msg and "CUDA-event step timing" in msg


def test_kernel_tracer_windows_and_table_in_seconds(c):
    flops = 2.0 * 1024**3  # 2*M*N*K for 1024^3 = 2147483648
    c.testing.libcall_record(thread_id=1, stream=0, flops=flops, precision="fp16")
    c.testing.libcall_bind_launch(thread_id=1, stream=0, correlation_id=10)
    c.testing.decode(b"".join([
        kernel(c, "gemm", 1_000_000, 3_000_000, correlation_id=10, grid=(8, 8, 1), block=(128, 1, 1)),
        kernel(c, "relu", 3_000_000, 3_500_000),
        c.testing.make_memcpy_record(2048, 3_500_000, 4_000_000),
    ]))
    t = KernelTracer()
    w = t.close_window(0, 10_000_000, keep_records=True)
    assert isinstance(w, GpuWindow)
    # kernels: 2 ms + 0.5 ms = 2.5 ms; busy 2.5 ms (disjoint); idle 10 - 2.5 = 7.5 ms; uncounted = relu 0.5 ms
    assert w.kernel_count == 2 and w.kernel_time_s == pytest.approx(2.5e-3)
    assert w.busy_time_s == {0: pytest.approx(2.5e-3)} and w.idle_time_s == {0: pytest.approx(7.5e-3)}
    assert w.uncounted_kernel_time_s == pytest.approx(0.5e-3)
    assert w.library_flops == {"fp16": flops} and w.library_kernel_count == 1
    assert (w.memcpy_count, w.memcpy_bytes, w.memcpy_time_s) == (1, 2048, pytest.approx(0.5e-3))
    assert w.window_time_s == pytest.approx(10e-3) and len(w.kernels) == 2
    rows = t.kernel_table()
    assert all(isinstance(r, KernelRow) for r in rows)
    gemm, relu = rows
    # achieved = 2147483648 FLOP / 2e-3 s = 1.073741824e12 FLOP/s
    assert gemm.name == "gemm" and gemm.achieved_flops_per_s == pytest.approx(1.073741824e12)
    assert gemm.grid == (8, 8, 1) and gemm.total_time_s == pytest.approx(2e-3) and gemm.precision == "fp16"
    assert relu.achieved_flops_per_s is None and relu.precision is None


# ---------------------------------------------------------------- GPU


@pytest.fixture
def live():
    """A started tracer with a clean aggregator (GPU only)."""
    torch = pytest.importorskip("torch")
    torch.cuda.init()
    t = KernelTracer()
    if not t.start():
        pytest.skip(f"tracer did not start: {t.reason}")
    t.flush()
    _cuda.testing.reset()
    yield t
    t.stop()


@pytest.mark.gpu
def test_gpu_kernel_time_agrees_with_cuda_events(live):
    import torch

    a = torch.randn(4096, 4096, device="cuda")
    b = torch.randn(4096, 4096, device="cuda")
    for _ in range(3):
        a @ b  # warm-up: cuBLAS heuristics, module load
    torch.cuda.synchronize()
    live.flush()
    start_ns = live.now_ns()
    ev0, ev1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ev0.record()
    for _ in range(50):
        a @ b
    ev1.record()
    torch.cuda.synchronize()
    end_ns = live.now_ns()
    event_s = ev0.elapsed_time(ev1) / 1e3
    w = live.close_window(start_ns, end_ns)
    dev = torch.cuda.current_device()
    assert w.kernel_count >= 50
    # back-to-back GEMMs on one stream: busy time ~ event time (launch gaps are hidden by the queue)
    assert w.busy_time_s[dev] == pytest.approx(event_s, rel=0.05)
    assert w.kernel_time_s == pytest.approx(event_s, rel=0.05)


@pytest.mark.gpu
def test_gpu_resnet50_sized_step_drops_nothing(live):
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin, mid, stride):
            super().__init__()
            cout = mid * 4
            self.body = nn.Sequential(
                nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                nn.Conv2d(mid, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
                nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
            self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            return torch.relu(self.body(x) + self.skip(x))

    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for mid, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):  # ResNet-50: 3-4-6-3
        for i in range(blocks):
            layers.append(Bottleneck(cin, mid, stride if i == 0 else 1))
            cin = mid * 4
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(64, 3, 224, 224, device="cuda")
    y = torch.randint(0, 1000, (64,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    torch.cuda.synchronize()
    live.flush()
    start_ns = live.now_ns()
    step()
    torch.cuda.synchronize()
    end_ns = live.now_ns()
    w = live.close_window(start_ns, end_ns)
    st = live.stats()
    assert w.kernel_count > 300  # 53 convs + BN + ReLU forward and backward, optimizer
    assert st["dropped_by_cupti"] == 0 and st["buffer_requests_refused"] == 0
    assert st["pending_dropped"] == 0 and st["decode_errors"] == 0 and st["callback_errors"] == 0
    dev = torch.cuda.current_device()
    assert 0 < w.busy_time_s[dev] <= (end_ns - start_ns) / 1e9


@pytest.mark.gpu
def test_gpu_external_id_reaches_the_kernels(live):
    import torch

    x = torch.randn(1 << 20, device="cuda")
    torch.cuda.synchronize()
    start_ns = live.now_ns()
    live.push_external_id(4242)
    x.mul_(2.0)
    assert live.pop_external_id() == 4242
    torch.cuda.synchronize()
    w = live.close_window(start_ns, live.now_ns(), keep_records=True)
    assert w.kernels and any(k["external_id"] == 4242 for k in w.kernels)


@pytest.mark.gpu
def test_gpu_tracer_sees_cupy_kernels(live):
    cp = pytest.importorskip("cupy")
    a = cp.arange(1 << 20, dtype=cp.float32)
    cp.cuda.Device().synchronize()
    start_ns = live.now_ns()
    (a + a).sum()
    cp.cuda.Device().synchronize()
    w = live.close_window(start_ns, live.now_ns(), keep_records=True)
    assert any("cupy" in k["name"] for k in w.kernels)


@pytest.mark.gpu
def test_gpu_records_are_on_the_monotonic_clock(live):
    # Issue 15 likely 4: with the timestamp callback, kernel records carry CLOCK_MONOTONIC (time.monotonic_ns) time.
    import time

    import torch

    x = torch.ones(1 << 20, device="cuda")
    torch.cuda.synchronize()
    t0 = time.monotonic_ns()
    x.mul_(2.0)
    torch.cuda.synchronize()
    t1 = time.monotonic_ns()
    assert live.stats()["clock"] == "monotonic"
    w = live.close_window(t0, t1, keep_records=True)
    assert w.kernel_count >= 1, live.stats()
    assert all(t0 <= k["start_ns"] <= k["end_ns"] <= t1 for k in w.kernels)


@pytest.mark.gpu
def test_gpu_tracer_restarts_and_sees_kernels_again():
    # Issue 15 certain 4 on the real CUPTI: callbacks registered again at the second start, records still arrive.
    torch = pytest.importorskip("torch")
    x = torch.ones(1 << 16, device="cuda")
    for _ in range(2):
        t = KernelTracer()
        if not t.start():
            pytest.skip(f"tracer did not start: {t.reason}")
        try:
            t0 = t.now_ns()
            x.add_(1.0)
            torch.cuda.synchronize()
            assert t.close_window(t0, t.now_ns()).kernel_count >= 1, t.stats()
        finally:
            t.stop()
