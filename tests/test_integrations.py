"""Trainer integrations: the step driver with a stand-in trainer, metric arithmetic, and the real Lightning and
transformers trainers where they are installed (skipped with the reason otherwise)."""

import pytest
import torch
import torch.nn as nn

from pyprof.session.integrations import StepDriver, window_metrics
from pyprof.records import PeakReport, StepRecord

# MLP 32 -> 64 -> 10, micro-batch 8: forward 2*8*(32*64 + 64*10) = 43,008; backward = layer 1 (no input grad)
# 2*8*32*64 = 32,768 + 2 x layer 2 (2*8*64*10 = 10,240) = 20,480 -> 53,248; total 96,256 per micro-batch.
# With 2 micro-batches accumulated per optimizer step: 192,512 per step.
FLOPS_PER_MICROBATCH = 96_256
PROFILE_KW = dict(measure_peak=False, hardware_counters=False)


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))


class StandInTrainer:
    """A test double of a trainer with gradient accumulation: it counts optimizer steps like Lightning's
    ``global_step`` and calls the driver after every micro-batch, as the Lightning callback does."""

    def __init__(self, driver, accumulate):
        self.driver, self.accumulate, self.global_step = driver, accumulate, 0
        self.model, self.opt = _mlp(), None
        self.logged = []

    def fit(self, micro_batches):
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01)
        x, y = torch.randn(8, 32), torch.randint(0, 10, (8,))
        self.driver.start()
        for i in range(micro_batches):
            nn.functional.cross_entropy(self.model(x), y).backward()
            if (i + 1) % self.accumulate == 0:
                self.opt.step()
                self.opt.zero_grad()
                self.global_step += 1
            if self.driver.on_micro_batch_end(self.global_step, examples=8) and self.driver.should_log():
                self.logged.append(self.driver.metrics())
        return self.driver.stop()


def test_driver_counts_optimizer_steps_not_micro_batches():
    d = StepDriver(None, log_every_n_steps=2, **PROFILE_KW)
    r = StandInTrainer(d, accumulate=2).fit(micro_batches=10)
    assert d.micro_batches == 10 and d.optimizer_steps == 5
    assert r.totals.steps == 5
    assert [s.analytic_flops for s in r.steps] == [2 * FLOPS_PER_MICROBATCH] * 5  # 192,512
    assert [s.examples for s in r.steps] == [16] * 5  # 2 micro-batches of 8


def test_driver_logs_metrics_every_n_steps():
    d = StepDriver(None, log_every_n_steps=2, peak=1e12, **PROFILE_KW)
    t = StandInTrainer(d, accumulate=1)
    r = t.fit(micro_batches=6)
    # logs after optimizer steps 2, 4, 6; the first window's step 0 ran counting (perturbed) and is left out
    assert len(t.logged) == 3 and all(set(m) == {"pyprof/mfu", "pyprof/tflops_per_s", "pyprof/utilization"}
                                      for m in t.logged)
    s = r.steps[2:4]
    rate = sum(x.analytic_flops for x in s) / sum(x.wall_time_s for x in s)
    assert t.logged[1]["pyprof/mfu"] == pytest.approx(rate / 1e12)
    assert t.logged[1]["pyprof/tflops_per_s"] == pytest.approx(rate / 1e12)


def test_window_metrics_by_hand():
    def step(flops, fwd, t):
        return StepRecord(index=0, wall_time_s=t, cpu_time_s=t, analytic_flops=flops, analytic_flops_effective=flops,
                          analytic_forward_flops=fwd, analytic_origin="reused", signature_id=0)

    class Rec:
        peaks = [PeakReport(4e12, "spec", "bf16", "x"), PeakReport(2e12, "measured", "bf16", "y")]

    # 2 steps of 3e12 FLOPs (1e12 forward) in 0.5 s + 1.0 s; with full recomputation model FLOPs = 3e12 - 1e12:
    # rate = 2 * 2e12 / 1.5 s = 2.667e12 FLOP/s -> 2.667 TFLOP/s; MFU = 2.667e12 / 4e12 = 0.6667; vs measured 1.333
    m = window_metrics([step(3e12, 1e12, 0.5), step(3e12, 1e12, 1.0)], Rec(), recomputation=1.0)
    assert m["pyprof/tflops_per_s"] == pytest.approx(4 / 1.5)
    assert m["pyprof/mfu"] == pytest.approx(4 / 1.5 / 4)
    assert m["pyprof/utilization"] == pytest.approx(4 / 1.5 / 2)
    assert window_metrics([step(1.0, 0, 0.5)], None) == {"pyprof/tflops_per_s": 2e-12}


def test_driver_never_raises_into_the_trainer():
    d = StepDriver(None, **PROFILE_KW)
    d.start()
    d.prof._active = False  # simulate pyprof's own state going bad mid-run
    with pytest.warns(RuntimeWarning, match="profiling is off"):
        d.on_optimizer_step()
    assert not d.active and d.metrics() == {} and d.stop() is None
    d.prof._active = True  # let the profile close cleanly
    d.prof.__exit__(None, None, None)


def _dataset(n=64):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.requires("lightning")
def test_lightning_callback(tmp_path):
    pl = pytest.importorskip("lightning.pytorch", reason="lightning not installed (`pip install lightning`)")
    from lightning.pytorch.loggers import Logger

    from pyprof.session.integrations.lightning import PyprofCallback
    from pyprof.report import read_report
    class Capture(Logger):
        def __init__(self):
            super().__init__()
            self.metrics = []

        @property
        def name(self):
            return "capture"

        @property
        def version(self):
            return 0

        def log_metrics(self, metrics, step=None):
            self.metrics.append((step, dict(metrics)))

        def log_hyperparams(self, params, *args, **kwargs):
            pass

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _mlp()

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    x, y = _dataset()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    cb = PyprofCallback(output_dir=tmp_path, log_every_n_steps=2, peak=1e12, **PROFILE_KW)
    logger = Capture()
    trainer = pl.Trainer(max_steps=4, accumulate_grad_batches=2, callbacks=[cb], logger=logger, accelerator="cpu",
                         devices=1, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         log_every_n_steps=1)
    trainer.fit(Module(), loader)
    r = read_report(tmp_path / "report.json")
    assert r.totals.steps == 4  # 4 optimizer steps from 8 micro-batches
    assert [s.analytic_flops for s in r.steps] == [2 * FLOPS_PER_MICROBATCH] * 4  # 192,512
    pyprof_logs = [(s, m) for s, m in logger.metrics if "pyprof/mfu" in m]
    assert [s for s, _ in pyprof_logs] == [2, 4]
    assert set(pyprof_logs[0][1]) == {"pyprof/mfu", "pyprof/tflops_per_s", "pyprof/utilization"}


@pytest.mark.requires("hf")
def test_hf_callback(tmp_path):
    pytest.importorskip("transformers", reason="transformers not installed (`pip install transformers accelerate`)")
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate (`pip install accelerate`)")
    from transformers import Trainer, TrainingArguments

    from pyprof.session.integrations.hf import PyprofHFCallback
    from pyprof.report import read_report
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _mlp()

        def forward(self, x, labels=None):
            logits = self.net(x)
            return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}

    x, y = _dataset()
    data = [{"x": x[i], "labels": y[i]} for i in range(len(x))]
    args = TrainingArguments(output_dir=str(tmp_path / "hf"), max_steps=4, per_device_train_batch_size=8,
                             gradient_accumulation_steps=2, logging_steps=2, report_to=[], use_cpu=True,
                             save_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=Model(), args=args, train_dataset=data)
    cb = PyprofHFCallback(output_dir=tmp_path / "rep", log_every_n_steps=2, peak=1e12, **PROFILE_KW).attach(trainer)
    trainer.train()
    r = read_report(tmp_path / "rep" / "report.json")
    assert r.totals.steps == 4
    assert [s.analytic_flops for s in r.steps] == [2 * FLOPS_PER_MICROBATCH] * 4
    assert [s.examples for s in r.steps] == [16] * 4
    logged = [h for h in trainer.state.log_history if "pyprof/mfu" in h]
    assert [h["step"] for h in logged] == [2, 4] and len(cb.logged) == 2
