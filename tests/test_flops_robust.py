"""Counting never breaks or changes the user's loop (issue 12, item 3), and per-module attribution in backward adds
up per module (item 5). Hand arithmetic sits next to each assertion."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from torch import nn

import pyprof
from pyprof.sources.flops import (
    CountFailure,
    CountStatus,
    FlopCounter,
    count_flops,
    register_formula,
)
from pyprof.sources.flops import registry as flops_registry

aten = torch.ops.aten


def _discriminator() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))


def _gradient_penalty_step(d: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = d(x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    loss = out.mean() + (g.norm(2, dim=1) - 1).pow(2).mean()
    loss.backward()
    return loss.detach()


def _run_gradient_penalty(counting) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """Run one gradient-penalty step through ``counting(d, step)``; return the loss and every gradient."""
    d = _discriminator()
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    loss = counting(d, lambda: _gradient_penalty_step(d, x))
    return loss, [p.grad.clone() for p in d.parameters()], x.grad.clone()


# Hand count of one gradient-penalty step, d = Linear(8,16) -> Tanh -> Linear(16,1), x (4, 8) requiring grad:
#   forward: 2*4*8*16 = 1024 + 2*4*16*1 = 128                                           = 1,152
#   autograd.grad(out.sum(), x): input grads only: 128 (layer 2) + 1024 (layer 1)     = 1,152
#   loss.backward(), through the first-order graph: layer 2 dX 128 + dW 128, layer 1 dX 1024 + dW 1024 = 2,304
#   and through the graph autograd.grad built: g = A @ W1 gives dA 2*4*8*16 = 1024 and dW1 1024, and
#   A = tanh'(.) * (ones(4,1) @ W2) gives dW2 2*1*4*16 = 128                           = 2,176
#   total 1,152 + 1,152 + 2,304 + 2,176 = 6,784; backward 6,784 - 1,152 = 5,632
GP_TOTAL, GP_FORWARD = 6_784, 1_152


def test_gradient_penalty_runs_under_count_flops_as_unprofiled():
    loss_ref, grads_ref, xg_ref = _run_gradient_penalty(lambda d, f: f())
    holder = {}

    def counted(d, f):
        with FlopCounter() as counter:
            out = f()
        holder["count"] = counter.result()
        return out

    loss, grads, xg = _run_gradient_penalty(counted)
    assert torch.equal(loss, loss_ref) and torch.equal(xg, xg_ref)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_ref))
    r = holder["count"]
    assert r.status is CountStatus.COMPLETE and r.failures == []
    assert r.total_flops == GP_TOTAL
    assert r.forward_flops == GP_FORWARD and r.backward_flops == GP_TOTAL - GP_FORWARD  # 5,632
    # Module attribution: layer 1 runs 1024 fwd + 1024 in autograd.grad + 2048 in backward = 4,096, plus the
    # backward of the graph its autograd.grad step built (g = A @ W1: dA 1024 + dW1 1024) = 6,144; layer 2
    # 128 + 128 + 256 = 512, plus the backward of A's ones @ W2 (dW2 128) = 640. 6,144 + 640 = 6,784: all of it.
    assert r.by_module["Sequential.0"] == 6_144 and r.by_module["Sequential.2"] == 640
    assert r.by_module["Sequential"] == r.by_module["Global"] == GP_TOTAL


@pytest.mark.parametrize("give_model", [True, False])
def test_gradient_penalty_runs_inside_profile_as_unprofiled(give_model):
    loss_ref, grads_ref, xg_ref = _run_gradient_penalty(lambda d, f: f())
    holder = {}

    def profiled(d, f):
        # With the model, counting starts in its forward-pre-hook; without, at the step's first module call.
        with pyprof.profile(d if give_model else None, schedule=None, measure_peak=False, hardware_counters=False,
                            autosave_s=None) as prof:
            out = f()
            prof.step()
        holder["result"] = prof.result()
        return out

    loss, grads, xg = _run_gradient_penalty(profiled)
    assert torch.equal(loss, loss_ref) and torch.equal(xg, xg_ref)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_ref))
    counts = holder["result"].flop_counts
    assert len(counts) == 1 and counts[0]["total_flops"] == GP_TOTAL  # 6,784 as above
    assert counts[0]["status"] == "complete"


def test_flex_attention_counts_qk_and_pv():
    flex = pytest.importorskip("torch.nn.attention.flex_attention")
    q = torch.randn(1, 2, 16, 8, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
        ref = flex.flex_attention(q, q, q)
        with FlopCounter() as counter:
            out = flex.flex_attention(q, q, q)
    assert torch.equal(out, ref)
    r = counter.result()
    assert r.status is CountStatus.COMPLETE
    # (B, H, L, D) = (1, 2, 16, 8): QK^T 2*1*2*16*16*8 = 8,192, PV the same: 16,384
    assert r.total_flops == 16_384
    assert r.by_op["higher_order.flex_attention"].flops == 16_384


def test_flex_attention_inside_profile():
    flex = pytest.importorskip("torch.nn.attention.flex_attention")

    class Attention(nn.Module):
        def forward(self, q):
            return flex.flex_attention(q, q, q)

    attn = Attention()
    q = torch.randn(1, 2, 16, 8, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
        ref = attn(q)
        with pyprof.profile(attn, schedule=None, measure_peak=False, hardware_counters=False,
                            autosave_s=None) as prof:
            out = attn(q)
            prof.step()
    assert torch.equal(out, ref)
    counts = prof.result().flop_counts
    assert counts[0]["total_flops"] == 16_384  # QK^T + PV, 2 * (2*1*2*16*16*8), as above
    assert counts[0]["by_module"]["Attention"] == 16_384


# ----------------------------------------------------------------------------------------------------------------
# A failure inside counting switches counting off for the region, names the op, and changes nothing for the user
# ----------------------------------------------------------------------------------------------------------------


class _Broken(Exception):
    pass


def _broken_formula(*args, **kwargs) -> int:
    raise _Broken("bad shapes")


def _mlp_step(seed: int = 0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    x = torch.randn(5, 8)
    y = net(x)
    y.sum().backward()
    return y.detach(), [p.grad.clone() for p in net.parameters()]


def test_failing_custom_formula_switches_counting_off_and_names_the_op(caplog):
    y_ref, g_ref = _mlp_step()
    with caplog.at_level(logging.WARNING), FlopCounter(custom_formulas={aten.mm: _broken_formula}) as counter:
        y, g = _mlp_step()
    assert torch.equal(y, y_ref) and all(torch.equal(a, b) for a, b in zip(g, g_ref))  # the user's result
    r = counter.result()
    assert r.status is CountStatus.FAILED and not r.complete
    assert r.failures == [CountFailure("aten.mm", "_Broken: bad shapes")]
    assert r.total_flops == 0 and r.by_op == {}  # a partial total is not passed off as the step's count
    assert sum("aten.mm" in rec.getMessage() for rec in caplog.records) == 1  # warned once, not per call


def test_failing_registered_formula_then_next_count_is_clean(monkeypatch):
    monkeypatch.setattr(flops_registry, "_PYPROF_FORMULAS", dict(flops_registry._PYPROF_FORMULAS))
    register_formula(aten.addmm, _broken_formula)  # overrides torch's addmm formula for this test only
    y_ref, g_ref = _mlp_step()
    holder = {}
    r = count_flops(lambda: holder.update(out=_mlp_step()))
    y, g = holder["out"]
    assert torch.equal(y, y_ref) and all(torch.equal(a, b) for a, b in zip(g, g_ref))
    assert r.status is CountStatus.FAILED and r.failures[0].op == "aten.addmm"
    assert "bad shapes" in r.failures[0].reason
    monkeypatch.undo()
    # A new region starts clean: MLP 8->16->4 on batch 5, input needing no grad:
    # forward 2*5*(8*16 + 16*4) = 1,920; backward dW1 1,280 + dX2 640 + dW2 640 = 2,560; total 4,480
    clean = count_flops(_mlp_step)
    assert clean.complete and clean.total_flops == 4_480


def test_failed_count_roundtrips_and_marks_a_sum_failed():
    with FlopCounter(custom_formulas={aten.mm: _broken_formula}) as counter:
        torch.mm(torch.randn(2, 3), torch.randn(3, 4))
    bad = counter.result()
    back = type(bad).from_dict(bad.to_dict())
    assert back.status is CountStatus.FAILED and back.failures == bad.failures
    ok = count_flops(torch.mm, torch.randn(2, 3), torch.randn(3, 4))
    merged = ok + bad
    assert merged.status is CountStatus.FAILED and merged.total_flops == 48  # 2*2*3*4 from the complete part
    assert merged.failures == [CountFailure("aten.mm", "_Broken: bad shapes")]


def test_failing_module_hook_switches_counting_off_not_the_forward(monkeypatch):
    from pyprof.sources.flops.modules import ModuleAttribution

    def broken(*args, **kwargs):
        raise _Broken("walk failed")

    monkeypatch.setattr(ModuleAttribution, "_tag_nodes", staticmethod(broken))
    y_ref, g_ref = _mlp_step()
    holder = {}
    r = count_flops(lambda: holder.update(out=_mlp_step()))
    y, g = holder["out"]
    assert torch.equal(y, y_ref) and all(torch.equal(a, b) for a, b in zip(g, g_ref))
    assert r.status is CountStatus.FAILED
    assert r.failures == [CountFailure("module hook of Linear", "_Broken: walk failed")]  # the first Linear's exit


def test_report_written_before_status_existed_reads_as_complete():
    from pyprof.sources.flops import FlopCount

    old = {"total_flops": 48, "total_flops_effective": 48, "forward_flops": 48, "backward_flops": 0,
           "by_op": {"aten.mm": {"calls": 1, "flops": 48, "flops_effective": 48}}, "by_module": {"Global": 48},
           "uncounted": []}
    r = FlopCount.from_dict(old)
    assert r.complete and r.failures == [] and r.op_calls == 0 and r.uncounted_share is None
    with pytest.raises(pyprof.errors.InvalidInputError, match="status"):
        FlopCount.from_dict({**old, "status": "half-done"})


def test_op_that_raises_by_itself_raises_as_unprofiled():
    # A shape error is the user's, and reaches them unchanged; counting does not swallow it.
    with FlopCounter() as counter:
        with pytest.raises(RuntimeError):
            torch.mm(torch.randn(2, 3), torch.randn(4, 5))
        torch.mm(torch.randn(2, 3), torch.randn(3, 4))
    assert counter.result().total_flops == 48  # 2*2*3*4; the failed call ran nothing


def test_uncounted_share_counts_calls_without_a_formula():
    a, b = torch.randn(2, 3), torch.randn(3, 4)
    r = count_flops(lambda: torch.relu(torch.mm(a, b)).t())
    # three op calls: mm (priced), relu (pointwise, no formula), t (a view, no formula) -> 2 of 3 uncounted
    assert r.op_calls == 3 and r.uncounted_calls == 2
    assert r.uncounted_share == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------------------------------------------
# Item 5: per-module attribution in backward
# ----------------------------------------------------------------------------------------------------------------


class TwoTower(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.img = nn.Linear(6, 8, bias=False)
        self.txt = nn.Linear(4, 8, bias=False)

    def forward(self, x_img, x_txt):
        return (self.img(x_img) * self.txt(x_txt)).sum()


@pytest.mark.parametrize("img_needs_grad", [True, False])
def test_two_towers_backward_charged_to_their_own_tower(img_needs_grad):
    m = TwoTower()
    x_img = torch.randn(4, 6, requires_grad=img_needs_grad)
    x_txt = torch.randn(4, 4)  # needs no grad: its tower's backward is dW only
    r = count_flops(lambda: m(x_img, x_txt).backward())
    # txt: forward 2*4*4*8 = 256, backward dW 256 (no dX: its input needs no grad)              = 512
    # img: forward 2*4*6*8 = 384, backward dW 384, plus dX 384 when x_img needs grad            = 768 / 1,152
    img = 1_152 if img_needs_grad else 768
    assert r.by_module["TwoTower.txt"] == 512
    assert r.by_module["TwoTower.img"] == img
    assert r.by_module["TwoTower"] == r.by_module["Global"] == r.total_flops == 512 + img


def test_tower_reused_twice_and_a_loss_outside_any_module():
    lin = nn.Linear(4, 4, bias=False)
    head = nn.Linear(4, 2, bias=False)
    x = torch.randn(3, 4)

    def step():
        h = lin(lin(x))  # the same module twice
        (head(h) @ torch.ones(2, 5)).sum().backward()  # a matmul outside any module

    r = count_flops(step)
    # lin: 2 forwards 2*3*4*4 = 96 each; backward: first call dW 96, second call dX 96 + dW 96 -> 96*5 = 480
    # head: forward 2*3*4*2 = 48; backward dX 48 + dW 48 -> 144
    # outside: forward (3,2)@(2,5) 2*3*2*5 = 60; backward dA only (ones needs no grad) 60 -> 120
    assert r.by_module["Linear"] == 480 + 144  # both are root modules named by class, as ModuleTracker names them
    assert r.by_module["Global"] == r.total_flops == 480 + 144 + 120


def test_checkpointed_block_recompute_is_backward_and_stays_in_its_module():
    from torch.utils.checkpoint import checkpoint

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Sequential(nn.Linear(8, 8, bias=False), nn.ReLU(), nn.Linear(8, 8, bias=False))
            self.head = nn.Linear(8, 2, bias=False)

        def forward(self, x):
            return self.head(checkpoint(self.block, x, use_reentrant=False))

    net = Net()
    r = count_flops(lambda: net(torch.randn(4, 8)).sum().backward())
    # Each Linear(8, 8) on batch 4 is 2*4*8*8 = 512 per matmul; head Linear(8, 2) is 2*4*8*2 = 128.
    # block.0: forward 512; backward dW 512 (its input needs no grad); recomputed once in backward 512 = 1,536
    # block.2: forward 512; backward dX 512 + dW 512; not recomputed (checkpoint stops once the tensors saved for
    #          backward, block.0's and ReLU's outputs, are back)                                           = 1,536
    # head: forward 128; backward dX 128 + dW 128                                                          = 384
    assert r.by_module["Net.block.0"] == 1_536 and r.by_module["Net.block.2"] == 1_536
    assert r.by_module["Net.head"] == 384
    assert r.by_module["Net.block"] == 3_072 and r.by_module["Net"] == r.total_flops == 3_456
    # forward 512 + 512 + 128 = 1,152; backward (the recompute included) 3,456 - 1,152 = 2,304
    assert r.forward_flops == 1_152 and r.backward_flops == 2_304
