"""Achievable peaks of this GPU next to its spec peak and the peak at the SM clock it ran at.

    python -m bench.gpu_peaks --out DIR              # microkernels + cuBLAS GEMMs (about a minute on an H100)
    python -m bench.gpu_peaks --out DIR --quick      # fewer iterations and one GEMM size
    python -m bench.gpu_peaks --out DIR --precision bf16 --precision fp32

Writes DIR/gpu_peaks.json (atomically: a temporary file, then os.replace) and prints a table on stderr. On a machine
without a GPU (or without pyprof's CUDA part) the JSON has status "no_gpu", the reason, and the rows that would have
been measured; the exit status is still 0, so a benchmark sweep over mixed machines does not stop there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
KIND = "pyprof-gpu-peaks"
FILENAME = "gpu_peaks.json"


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` so that readers see the old file or the whole new one, never a part."""
    from pyprof.report.atomic import atomic_write_text
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")  # serialized first: a bad payload writes nothing


def run(out_dir: Path, device: int = 0, precisions: Sequence[str] | None = None, quick: bool = False) -> dict:
    """Measure, write ``out_dir/gpu_peaks.json`` and return the payload.

    Args:
        out_dir: Folder for the JSON file (created if missing).
        device: CUDA device index.
        precisions: Peak classes to measure (None: all).
        quick: Fewer iterations, repeats and GEMM sizes.

    Returns:
        The payload written.
    """
    import pyprof
    from pyprof.peaks import gpu as gp
    started = time.time()
    devices, reason = gp.detect_devices()
    dev = next((d for d in devices if d.index == device), None)
    if dev is None and not reason:
        reason = f"no CUDA device {device} (found {len(devices)})"
    rows = gp.measure_gpu_peaks(device=device, precisions=precisions, quick=quick)
    payload = {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "pyprof_version": pyprof.__version__,
        "created_unix_s": started,
        "duration_s": time.time() - started,
        "status": "ok" if dev is not None else "no_gpu",
        "reason": reason if dev is None else "",
        "quick": quick,
        "device": asdict(dev) if dev is not None else None,
        "devices": [asdict(d) for d in devices],
        "flops_per_clock_per_sm_source": gp.FLOPS_PER_CLOCK_PER_SM_SOURCE,
        "peaks": [r.to_dict() for r in rows],
    }
    write_json_atomic(Path(out_dir) / FILENAME, payload)
    return payload


def _fmt(x: float | None, scale: float = 1e12, digits: int = 1) -> str:
    return "-" if x is None else f"{x / scale:.{digits}f}"


def _print_table(payload: dict, stream=sys.stderr) -> None:
    if payload["status"] != "ok":
        print(f"gpu_peaks: no GPU measured: {payload['reason']}", file=stream)
        return
    d = payload["device"]
    print(f"{d['name']}: {d['sm_count']} SMs, cc {d['compute_capability'][0]}.{d['compute_capability'][1]}, "
          f"max SM clock {d['max_sm_clock_hz'] / 1e9:.3f} GHz", file=stream)
    print(f"{'kind':<12} {'prec':<11} {'TFLOP/s':>9} {'spec':>8} {'@clock':>8} {'GHz':>6} {'/spec':>6} {'/clock':>6}  note",
          file=stream)
    for r in payload["peaks"]:
        ratio = lambda v: "-" if v is None else f"{v:.2f}"
        print(f"{r['kind']:<12} {r['precision']:<11} {_fmt(r['measured_flops_per_s']):>9} "
              f"{_fmt(r['spec_flops_per_s']):>8} {_fmt(r['clock_adjusted_peak_flops_per_s']):>8} "
              f"{_fmt(r['observed_sm_clock_hz'], 1e9, 3):>6} {ratio(r['ratio_to_spec']):>6} "
              f"{ratio(r['ratio_to_clock_adjusted']):>6}  {r['reason'][:80]}", file=stream)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help=f"folder for {FILENAME}")
    ap.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    ap.add_argument("--precision", action="append", default=None,
                    help="peak class to measure (repeatable): fp64, fp64_tensor, fp32, fp16_simt, tf32, fp16, bf16, "
                    "fp8, int8; default all")
    ap.add_argument("--quick", action="store_true", help="fewer iterations and one GEMM size")
    args = ap.parse_args(argv)
    from pyprof.errors import InvalidInputError
    try:
        payload = run(args.out, device=args.device, precisions=args.precision, quick=args.quick)
    except InvalidInputError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    _print_table(payload)
    print(str(Path(args.out) / FILENAME))
    return 0


if __name__ == "__main__":
    sys.exit(main())
