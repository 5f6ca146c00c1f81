"""One rank of a 2-process gloo job for tests/test_distributed.py (env: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).

    python dist_worker.py --mode ok|die|skip|raise --out DIR --timeout-s T

ok: both ranks train and aggregate. die: rank 1 exits (os._exit) before the gather. skip: rank 1 is alive but
never calls the gather (sleeps past rank 0's timeout). raise: rank 1's training loop raises inside the profile.
late0: rank 0 sleeps --late-s seconds before its gather while rank 1 gathers on time and exits normally.
Rank 0 writes DIR/result_rank0.json with the job report it got and the seconds aggregate took.
"""

import argparse
import datetime
import json
import os
import sys
import time

import torch
import torch.distributed as dist

import pyprof
import pyprof.session.distributed as pd

BATCH, D_IN, HIDDEN, D_OUT, STEPS, WARMUP = 4, 16, 32, 8, 3, 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout-s", type=float, default=10.0)
    ap.add_argument("--late-s", type=float, default=0.0, help="late0: seconds rank 0 sleeps before its gather")
    a = ap.parse_args()
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(D_IN, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, D_OUT))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(BATCH, D_IN), torch.randint(0, D_OUT, (BATCH,))
    if rank == 1 and a.mode == "die":
        os._exit(3)
    t0 = None
    try:
        with pd.profile(model, schedule=pyprof.schedule(warmup=WARMUP, active=STEPS, repeat=1), measure_peak=False,
                        peak=1e12, hardware_counters=False, output_dir=a.out if rank == 0 else None,
                        timeout_s=a.timeout_s, examples_per_step=BATCH) as prof:
            for i in range(WARMUP + STEPS):
                loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                opt.zero_grad()
                prof.step()
                if rank == 1 and a.mode == "raise" and i == WARMUP + 1:
                    raise RuntimeError("rank 1 failed on purpose")
            if rank == 0 and a.mode == "late0":
                time.sleep(a.late_s)  # rank 0 reaches the gather late; rank 1 finished normally and delivered
            if rank == 1 and a.mode == "skip":
                time.sleep(a.timeout_s + 6)
                os._exit(0)  # never reaches the gather
            t0 = time.monotonic()
    except RuntimeError as e:
        print(f"rank {rank} loop raised: {e}", file=sys.stderr)
    if rank == 0:
        secs = time.monotonic() - t0
        job = prof.job_report
        with open(os.path.join(a.out, "result_rank0.json"), "w") as f:
            json.dump({"aggregate_s": secs, "job": job.to_dict() if job else None}, f)
    else:
        assert prof.job_report is None
    return 0


if __name__ == "__main__":
    sys.exit(main())
