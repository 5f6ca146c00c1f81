"""Trainer integrations: the step driver with a stand-in trainer, metric arithmetic, and the real Lightning and
transformers trainers where they are installed (skipped with the reason otherwise)."""

import pytest
import torch
import torch.nn as nn

from pyprof.records import PeakReport, StepRecord
from pyprof.session.integrations import StepDriver, window_metrics

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

    from pyprof.report import read_report
    from pyprof.session.integrations.lightning import PyprofCallback
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
            loss = nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss)
            return loss

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
    own_steps = [s for s, m in logger.metrics if "train_loss" in m]
    # Lightning logs its own metrics after optimizer steps 1..4 at its step index 0..3 (the count of steps before);
    # pyprof logs after optimizer steps 2 and 4, so at Lightning's indices 1 and 3 (it logged at 2 and 4 before)
    assert own_steps == [0, 1, 2, 3]
    assert [s for s, _ in pyprof_logs] == [1, 3]
    assert {"pyprof/mfu", "pyprof/tflops_per_s", "pyprof/utilization"} <= set(pyprof_logs[0][1])
    # the run logged train_loss: its learning curve is in the report, one point per pyprof log (steps 2 and 4)
    curves = {c["name"]: c for c in r.learning_curves}
    assert len(curves["train_loss"]["points"]) == 2 and curves["train_loss"]["higher_is_better"] is False


@pytest.mark.requires("hf")
def test_hf_callback(tmp_path):
    pytest.importorskip("transformers", reason="transformers not installed (`pip install transformers accelerate`)")
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate (`pip install accelerate`)")
    from transformers import Trainer, TrainingArguments

    from pyprof.report import read_report
    from pyprof.session.integrations.hf import PyprofHFCallback
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


def _tiny_gpt2_trainer(tmp_path, logging_steps=2):
    """A 1-layer GPT-2 built from a config (no hub download) in a transformers Trainer, 4 steps, logging every 2."""
    pytest.importorskip("transformers", reason="transformers not installed (`pip install transformers accelerate`)")
    pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate (`pip install accelerate`)")
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32, n_positions=8))
    ids = torch.randint(0, 32, (32, 8))
    data = [{"input_ids": ids[i], "labels": ids[i]} for i in range(len(ids))]
    args = TrainingArguments(output_dir=str(tmp_path / "hf"), max_steps=4, per_device_train_batch_size=4,
                             logging_steps=logging_steps, report_to=[], use_cpu=True, save_strategy="no",
                             disable_tqdm=True, dataloader_num_workers=0)
    return Trainer(model=model, args=args, train_dataset=data)


@pytest.mark.parametrize("how", ["attach", "add_callback"])
def test_hf_callback_adds_metrics_next_to_the_trainers_own(tmp_path, how):
    from pyprof.session.integrations.hf import PyprofHFCallback

    trainer = _tiny_gpt2_trainer(tmp_path)
    cb = PyprofHFCallback(log_every_n_steps=2, peak=1e12, **PROFILE_KW)
    if how == "attach":
        cb.attach(trainer)
    else:
        trainer.add_callback(cb)
    trainer.train()
    step_logs = [h for h in trainer.state.log_history if "train_runtime" not in h]
    # logging_steps=2, max_steps=4: the Trainer logs at steps 2 and 4, each with its own loss, grad_norm and lr ...
    assert [h["step"] for h in step_logs] == [2, 4]
    for h in step_logs:
        assert {"loss", "grad_norm", "learning_rate"} <= set(h), h
        # ... and pyprof's metrics are in the same entries, beside them (this failed both ways before)
        assert {"pyprof/mfu", "pyprof/tflops_per_s", "pyprof/utilization"} <= set(h), h
    assert len(cb.logged) == 2


def test_hf_callback_logs_on_its_own_when_the_trainer_does_not(tmp_path):
    from pyprof.session.integrations.hf import PyprofHFCallback

    trainer = _tiny_gpt2_trainer(tmp_path, logging_steps=4)  # the Trainer logs at step 4 only
    PyprofHFCallback(log_every_n_steps=2, peak=1e12, **PROFILE_KW).attach(trainer)
    trainer.train()
    hist = [h for h in trainer.state.log_history if "train_runtime" not in h]
    # pyprof at step 2 in an entry of its own (through trainer.log); at step 4 with the Trainer's loss
    assert [h["step"] for h in hist] == [2, 4]
    assert "loss" not in hist[0] and "pyprof/mfu" in hist[0]
    assert {"loss", "grad_norm", "learning_rate", "pyprof/mfu"} <= set(hist[1])


def test_hf_run_report_has_the_learning_curve_of_the_logged_loss(tmp_path):
    from pyprof.report import read_report
    from pyprof.session.integrations.hf import PyprofHFCallback

    trainer = _tiny_gpt2_trainer(tmp_path)
    PyprofHFCallback(output_dir=tmp_path / "rep", log_every_n_steps=2, peak=1e12, **PROFILE_KW).attach(trainer)
    trainer.train()
    r = read_report(tmp_path / "rep" / "report.json")
    curves = {c["name"]: c for c in r.learning_curves}
    # the Trainer logged loss at steps 2 and 4: two points, FLOPs after 2 and 4 steps (the second twice the first,
    # every step having the same shapes), loss lower-is-better
    loss = curves["loss"]
    assert [p["metric"] for p in loss["points"]] == [h["loss"] for h in trainer.state.log_history if "loss" in h]
    f = [p["flops"] for p in loss["points"]]
    assert len(f) == 2 and f[1] == pytest.approx(2 * f[0])
    assert loss["higher_is_better"] is False
    assert "learning_rate" not in curves and "grad_norm" not in curves
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Learning curves" in html
    assert "## Learning curve: loss" in (tmp_path / "rep" / "report.md").read_text()


def test_hf_attach_reaches_report_to_integrations_with_the_trainers_loss(tmp_path):
    from transformers import TrainerCallback

    from pyprof.session.integrations.hf import PyprofHFCallback

    class Integration(TrainerCallback):
        """Stands for a report_to logger (wandb, tensorboard): added before pyprof, it reads the logs in on_log."""

        def __init__(self):
            self.seen = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.seen.append(dict(logs or {}))

    trainer = _tiny_gpt2_trainer(tmp_path)
    integ = Integration()
    trainer.add_callback(integ)
    PyprofHFCallback(log_every_n_steps=2, peak=1e12, **PROFILE_KW).attach(trainer)
    trainer.train()
    step_logs = [s for s in integ.seen if "loss" in s]
    # two Trainer logs (steps 2 and 4), each carrying the loss and pyprof's metrics to the integration
    assert len(step_logs) == 2 and all("pyprof/mfu" in s for s in step_logs)
