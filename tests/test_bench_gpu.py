"""The GPU bench scripts: their pure parts here, and on a machine without a GPU they say so and exit 0."""

import json

from bench import gpu_overhead, gpu_validate


def test_ncu_csv_parser_reads_kernels_units_and_separators():
    # ncu --csv --page raw --print-units base: log lines, a header, a units row, one row per kernel
    text = "\n".join([
        "==PROF== Connected to process 123",
        '"ID","Kernel Name","sm__ops_path_tensor_src_bf16_dst_fp32.sum","gpu__time_duration.sum"',
        '"","","","nsecond"',
        '"0","sm90_xmma_gemm","1,099,511,627,776","1,234,567"',
        '"1","splitKreduce","0","2,000"',
    ])
    rows = gpu_validate.parse_ncu_csv(text)
    assert len(rows) == 2
    # 2 * 8192^3 = 1,099,511,627,776
    assert rows[0]["sm__ops_path_tensor_src_bf16_dst_fp32.sum"] == 2 * 8192 ** 3
    assert rows[1]["gpu__time_duration.sum"] == 2000.0 and rows[0]["Kernel Name"] == "sm90_xmma_gemm"
    assert gpu_validate.parse_ncu_csv("==PROF== nothing profiled") == []


def test_ncu_metric_list_drops_rates():
    ms = ["a.sum", "a.sum.peak_sustained", "sm__cycles_elapsed.avg.per_second", "sm__cycles_elapsed.avg"]
    assert gpu_validate.ncu_metrics(ms) == ["a.sum", "sm__cycles_elapsed.avg"]


def test_gpu_scripts_without_a_gpu_write_a_reason(tmp_path):
    import torch

    if torch.cuda.is_available():
        return
    assert gpu_overhead.main(["--out", str(tmp_path)]) == 0
    assert "no CUDA GPU" in json.loads((tmp_path / "gpu_overhead.json").read_text())["skipped"]
    assert gpu_validate.main(["--out", str(tmp_path)]) == 0
    d = json.loads((tmp_path / "gpu_validate.json").read_text())
    assert "no CUDA GPU" in d["skipped"] and d["checks"] == []
