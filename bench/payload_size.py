"""Measure the per-rank payload pyprof gathers to rank 0, and extrapolate the gather to 1,024+ ranks.

    python bench/payload_size.py [--model cnn|mlp] [--steps 20] [--ranks 1024]

Profiles a built-in example loop (a realistic result: distinct step signatures counted, op tables, notes), builds
the payload each rank would send (:func:`pyprof.distributed.build_payload`), and prints its size as JSON and as
JSON + zlib (what is sent), and the bytes rank 0 receives for N ranks. Also times building a 1,024-rank job report
from synthetic copies of the payload.
"""

import argparse
import json
import time

from pyprof.bench.examples import run_example
from pyprof.session.distributed import build_job_report, build_payload, decode_payload, encode_payload


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cnn", choices=["cnn", "mlp"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--ranks", type=int, default=1024)
    a = ap.parse_args()
    r = run_example(a.model, batch=16, steps=a.steps, warmup=2, measure_peak=True)
    p = build_payload(r, rank=a.ranks - 1, world_size=a.ranks)
    raw = json.dumps(p, separators=(",", ":")).encode()
    data = encode_payload(p)
    full = len(json.dumps(r.to_dict()).encode())
    print(f"example {a.model}, {a.steps} recorded steps; full per-rank ProfileResult JSON: {full:,} B")
    print(f"per-rank payload: {len(raw):,} B JSON, {len(data):,} B JSON+zlib (sent)")
    for n in sorted({8, 64, 1024, a.ranks}):
        print(f"  {n:>6} ranks -> rank 0 receives {n * (len(data) + 8):>12,} B "
              f"({n * (len(data) + 8) / 2**20:.2f} MiB; payload + the 8 B size message per rank)")
    payloads = []
    for i in range(a.ranks):
        q = decode_payload(data)
        q["rank"] = i
        payloads.append(q)
    t0 = time.perf_counter()
    job = build_job_report(payloads, a.ranks)
    t1 = time.perf_counter()
    js = job.to_json()
    md = job.render_markdown()
    print(f"job report for {a.ranks} ranks built in {1e3 * (t1 - t0):.1f} ms; report.json {len(js.encode()):,} B, "
          f"report.md {len(md.encode()):,} B")


if __name__ == "__main__":
    main()
