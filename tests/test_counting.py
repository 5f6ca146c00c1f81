"""Reusing a step's FLOP count must be sound (issue 12 item 1, 2 and the performance of counting).

Each right value is worked out by hand next to its assertion. Linear(i, o) without bias on n rows: forward 2*n*i*o;
backward dX 2*n*i*o (when the input needs grad) and dW 2*n*i*o (when the weight requires grad).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import NamedTuple

import pytest
import torch
from torch import nn

import pyprof
from pyprof.session.counting import StepCounter
from pyprof.session.signature import signature_of, split_shapes


def _analytic(prof):
    return [s.analytic_flops for s in prof.result().steps]


class KwLM(nn.Module):
    """Embedding(50,16) -> Linear(16,16) -> ReLU -> Linear(16,50) -> cross-entropy, called as model(**batch)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.l1 = nn.Linear(16, 16)
        self.l2 = nn.Linear(16, 50)

    def forward(self, input_ids=None, labels=None):
        h = self.l2(torch.relu(self.l1(self.emb(input_ids))))
        return nn.functional.cross_entropy(h.reshape(-1, 50), labels.reshape(-1))


def _kw_flops(b, t):
    # n = b*t tokens. l1: fwd 2*n*16*16, dX 2*n*16*16, dW 2*n*16*16 (bias grad counts 0); l2: fwd/dX/dW 2*n*16*50 each.
    # The embedding's input is integer ids: no dX for l1's input beyond l1's own dX (emb needs its grad: it has a
    # weight), so l1 dX is computed. Total = 3 * 2*n*(256 + 800) = 6336*n.
    n = b * t
    return 3 * 2 * n * (16 * 16 + 16 * 50)


@pytest.mark.parametrize("root", ["model", "none"])
def test_kwargs_only_calls_are_counted_per_shape(root):
    torch.manual_seed(0)
    m = KwLM()
    opt = torch.optim.SGD(m.parameters(), lr=0.0)
    lengths = [4, 32, 32, 64, 8]
    with pyprof.profile(m if root == "model" else None, measure_peak=False, count_flops="auto") as prof:
        for t in lengths:
            ids = torch.randint(0, 50, (2, t))
            batch = {"input_ids": ids, "labels": ids}
            m(**batch).backward()
            opt.step()
            opt.zero_grad()
            prof.step()
    got = _analytic(prof)
    # 6336 * 2 * 4 = 50,688; * 8 = 405,504 (t=32); 811,008 (t=64); 101,376 (t=8): the figures.
    assert got == [50_688, 405_504, 405_504, 811_008, 101_376]
    assert [_kw_flops(2, t) for t in lengths] == got
    origins = [s.analytic_origin for s in prof.result().steps]
    assert origins[2] == "reused"  # t=32 again: same signature


def test_unfreezing_mid_run_changes_the_count():
    torch.manual_seed(0)
    backbone, head = nn.Linear(32, 32, bias=False), nn.Linear(32, 4, bias=False)
    m = nn.Sequential(backbone, nn.ReLU(), head)
    backbone.requires_grad_(False)
    x = torch.randn(8, 32)
    with pyprof.profile(m, measure_peak=False) as prof:
        for i in range(4):
            if i == 2:
                backbone.requires_grad_(True)
            m(x).sum().backward()
            prof.step()
    # frozen: backbone fwd 2*8*32*32 = 16,384 + head fwd 2*8*32*4 = 2,048 + head dW 2,048 = 20,480
    # unfrozen adds head dX 2,048... the sum: 16,384 + 2,048 + 4,096 (head dX + dW) + 16,384 (backbone dW)
    # = 38,912 (the backbone's input x needs no grad, so no backbone dX).
    assert _analytic(prof) == [20_480, 20_480, 38_912, 38_912]


def test_eval_mode_grad_mode_and_autocast_enter_the_signature():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 8, bias=False), nn.Dropout(0.0))
    x = torch.randn(4, 8)
    with pyprof.profile(m, measure_peak=False) as prof:
        m(x).sum().backward(); prof.step()           # 2*4*8*8 = 512 fwd + dW 512 = 1,024
        with torch.no_grad():
            m(x); prof.step()                        # forward only: 512
        m.eval()
        with torch.no_grad():
            m(x); prof.step()                        # eval, no grad: 512 (counted: new signature)
        m.train()
        m(x).sum().backward(); prof.step()           # back to the first signature: reused 1,024
    steps = prof.result().steps
    assert [s.analytic_flops for s in steps] == [1_024, 512, 512, 1_024]
    assert [s.analytic_origin for s in steps] == ["counted", "counted", "counted", "reused"]


class Pair(NamedTuple):
    a: torch.Tensor
    b: torch.Tensor


@dataclasses.dataclass
class Batch:
    x: torch.Tensor
    extra: dict


class Holder:
    def __init__(self, t):
        self.t = t


def test_signature_follows_every_container_kind():
    t4, t5 = torch.zeros(4, 3), torch.zeros(5, 3)
    for make in (lambda t: [t], lambda t: (t,), lambda t: {"k": t}, lambda t: Pair(t, t),
                 lambda t: Batch(t, {"y": [t]}), lambda t: Holder(t), lambda t: {"outer": (Holder(t),)}):
        assert signature_of(make(t4)) != signature_of(make(t5))
        assert signature_of(make(t4)) == signature_of(make(torch.ones(4, 3)))  # values of float tensors do not enter
    # PackedSequence: its batch_sizes values decide the recurrence's work.
    from torch.nn.utils.rnn import pack_padded_sequence

    x = torch.zeros(3, 5, 2)
    p1 = pack_padded_sequence(x, torch.tensor([5, 3, 2]), batch_first=True)
    p2 = pack_padded_sequence(x, torch.tensor([5, 4, 1]), batch_first=True)
    # both pack 10 elements, so the data tensors have the same shape (10, 2); only batch_sizes tell them apart
    assert p1.data.shape == p2.data.shape
    assert signature_of((p1,)) != signature_of((p2,))
    # small 1-D integer CPU tensors under a size-like name (lengths) enter by value; labels and ids by shape only
    assert signature_of({"lengths": torch.tensor([3, 2])}) != signature_of({"lengths": torch.tensor([2, 3])})
    assert signature_of({"labels": torch.tensor([3, 2])}) == signature_of({"labels": torch.tensor([2, 3])})
    assert signature_of((torch.tensor([3, 2]),)) == signature_of((torch.tensor([2, 3]),))


def test_packed_sequence_lengths_are_recounted():
    torch.manual_seed(0)
    from torch.nn.utils.rnn import pack_padded_sequence

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(2, 4, batch_first=True)

        def forward(self, packed):
            return self.rnn(packed)[0].data.sum()

    m = Net()
    x = torch.randn(3, 5, 2)
    lens = [[5, 3, 2], [5, 4, 1], [5, 3, 2]]
    with pyprof.profile(m, measure_peak=False) as prof, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ln in lens:
            m(pack_padded_sequence(x, torch.tensor(ln), batch_first=True)).backward()
            prof.step()
    origins = [s.analytic_origin for s in prof.result().steps]
    assert origins == ["counted", "counted", "reused"]


def test_several_calls_per_step_with_changing_shapes_are_recounted():
    torch.manual_seed(0)
    m = nn.Linear(4, 4, bias=False)
    with pyprof.profile(m, measure_peak=False) as prof:
        for second in (3, 3, 5, 5, 3):
            (m(torch.randn(2, 4)).sum() + m(torch.randn(second, 4)).sum()).backward()
            prof.step()
    steps = prof.result().steps
    # per call of n rows: fwd 2*n*4*4 = 32n, dW 32n -> 64n; step = 64*(2 + second): 320 (second=3), 448 (second=5)
    assert [s.analytic_flops for s in steps if s.analytic_flops is not None] == \
        [320, 320, 448, 320] if steps[2].analytic_flops is None else [320, 320, 448, 448, 320]
    assert steps[3].analytic_flops == 448 and steps[4].analytic_flops == 320
    assert all(s.analytic_origin != "missing" for s in steps[3:])


def test_derived_counts_for_new_batch_and_length_are_exact():
    """Shapes that differ only in batch and length are derived from counted ones, never wrong: every derived value
    equals what a full count gives (counted separately with count_flops='every')."""
    torch.manual_seed(0)
    lm = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0)
    gen = torch.Generator().manual_seed(1)
    shapes = [(int(torch.randint(1, 5, (1,), generator=gen)), int(torch.randint(2, 12, (1,), generator=gen)))
              for _ in range(40)]

    def run(mode):
        with pyprof.profile(lm, measure_peak=False, count_flops=mode, verify_every=0) as prof:
            for b, t in shapes:
                lm(torch.randn(b, t, 16)).sum().backward()
                prof.step()
        return prof.result().steps

    auto, every = run("auto"), run("every")
    assert [s.analytic_flops for s in auto] == [s.analytic_flops for s in every]
    derived = sum(s.analytic_origin == "derived" for s in auto)
    assert derived > 0  # some steps derived instead of counted
    assert sum(s.perturbed for s in auto) < len(auto)


def test_verify_mode_catches_value_dependent_work():
    torch.manual_seed(0)

    class Gate(nn.Module):  # data-dependent control flow: the signature cannot see it
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(4, 4, bias=False)

        def forward(self, x):
            y = self.l(x)
            if x.sum() > 0:
                y = self.l(y)
            return y.sum()

    m = Gate()
    xs = [torch.full((2, 4), -1.0)] * 3 + [torch.full((2, 4), 1.0)] * 3
    with pytest.warns(RuntimeWarning, match="counting every step"):
        with pyprof.profile(m, measure_peak=False, verify_every=2) as prof:
            for x in xs:
                m(x).backward()
                prof.step()
    r = prof.result()
    assert any("verification" in n for n in r.notes)
    # after the mismatch every step is counted: the last steps carry the two-layer count.
    # one layer on 2 rows: fwd 2*2*4*4 = 64, dW 64 -> 128; two layers: fwd 128, dW 128, dX of the second 64 -> 320
    assert r.steps[-1].analytic_flops == 320 and r.steps[-1].analytic_origin == "counted"


def test_lookup_is_constant_time_and_cache_is_bounded():
    sc = StepCounter("auto", [], verify_every=0, max_signatures=8)
    m = nn.Linear(2, 2)
    for n in range(1, 40):
        sc.begin_step("record")
        sc.on_forward(m, (torch.zeros(n, 2),), {})
        m(torch.zeros(n, 2)).sum().backward()
        sc.close()
    assert len(sc._cache) <= 8
    assert sum(len(k) for k in sc._prefixes) <= 8 * 1  # one call per step: one prefix per cached signature


def test_split_shapes_separates_sizes_from_structure():
    s1 = signature_of({"x": torch.zeros(2, 3)})
    s2 = signature_of({"x": torch.zeros(5, 7)})
    (k1, d1), (k2, d2) = split_shapes(s1), split_shapes(s2)
    assert k1 == k2 and d1 == [2, 3] and d2 == [5, 7]


def test_compiled_model_counts_forward_and_backward_and_keeps_its_graph():
    """model.compile(): an MLP 8->16->4, batch 5. fwd 2*5*(8*16 + 16*4) = 1,920; backward: dX and dW of the second
    layer (2*5*16*4 each = 640 + 640 = 1,280), dW of the first (2*5*8*16 = 1,280; its input needs no grad) = 2,560;
    the step: 4,480. The compiled graph keeps executing during and after profiling (a counting backend counts how
    often it is compiled and run)."""
    torch.manual_seed(0)
    calls = {"compiles": 0, "runs": 0}

    def backend(gm, example_inputs):
        calls["compiles"] += 1

        def run(*args):
            calls["runs"] += 1
            return gm.forward(*args)
        return run

    class MLP(nn.Module):  # a user-defined module (Dynamo does not trace torch's own Sequential._call_impl)
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 16), nn.Linear(16, 4)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    m = MLP()
    m.compile(backend=backend)
    x = torch.randn(5, 8)

    def step():
        m(x).sum().backward()

    step()
    assert calls == {"compiles": 1, "runs": 1}
    with pyprof.profile(m, measure_peak=False) as prof:
        for _ in range(4):
            step()
            prof.step()
    steps = prof.result().steps
    assert [s.analytic_flops for s in steps] == [4_480] * 4
    assert steps[0].analytic_origin == "counted" and steps[1].analytic_origin == "reused"
    # the counted step ran eagerly (1 step), the three reused ones ran the compiled graph; nothing recompiled
    assert calls == {"compiles": 1, "runs": 4}
    step()
    assert calls == {"compiles": 1, "runs": 5}  # after profiling: the same compiled graph


def test_compiled_wrapper_module_is_counted_too():
    """torch.compile(model) returns a wrapper whose hooks run outside the compiled frame: same 4,480 as above."""
    torch.manual_seed(0)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 16), nn.Linear(16, 4)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    m = torch.compile(MLP(), backend="eager")
    x = torch.randn(5, 8)
    m(x).sum().backward()
    with pyprof.profile(m, measure_peak=False) as prof:
        for _ in range(3):
            m(x).sum().backward()
            prof.step()
    assert [s.analytic_flops for s in prof.result().steps] == [4_480] * 3


def test_a_failing_formula_never_reaches_the_loop_and_is_not_cached():
    """A formula that raises: the user's step runs exactly as unprofiled, the step has no count, the report names the
    op, and the next step is counted again (a failed count is never reused)."""
    from pyprof.sources.flops import registry

    torch.manual_seed(0)
    m = nn.Linear(4, 3, bias=False)
    x = torch.randn(2, 4)
    expected = (m(x) * 2).sum()

    def boom(*a, **k):
        raise RuntimeError("formula exploded")

    with pyprof.profile(m, measure_peak=False, count_flops="auto") as prof:
        with registry.formula_override(torch.ops.aten.mm, boom) if hasattr(registry, "formula_override") else \
                _patched_formula(torch.ops.aten.mm, boom):
            for _ in range(2):
                out = (m(x) * 2).sum()
                out.backward()
                prof.step()
    assert torch.equal(out, expected)
    steps = prof.result().steps
    assert [s.analytic_origin for s in steps] == ["missing", "missing"]
    assert any("formula exploded" in n or "failed on" in n for n in prof.result().notes)


class _patched_formula:
    """Swap pyprof's formula for one op for the duration of a with-block."""

    def __init__(self, op, fn):
        from pyprof.sources.flops import registry

        self.reg, self.op, self.fn = registry._PYPROF_FORMULAS, op, fn

    def __enter__(self):
        self.old = self.reg.get(self.op)
        self.reg[self.op] = self.fn

    def __exit__(self, *exc):
        if self.old is None:
            self.reg.pop(self.op, None)
        else:
            self.reg[self.op] = self.old


def test_verification_gaps_double_up_to_verify_every(monkeypatch):
    """Recounts come early, then rarely: with the first gap 2 and verify_every=8, step 0 is counted (new), then the
    2nd, 4th, 8th, 8th, ... step that would have been reused is recounted: 0, 0+2 = 2, 2+4 = 6, 6+8 = 14, 22, 30, 38."""
    from pyprof.session import counting

    monkeypatch.setattr(counting, "FIRST_VERIFY", 2)
    torch.manual_seed(0)
    m = nn.Linear(4, 4, bias=False)
    x = torch.randn(2, 4)
    with pyprof.profile(m, measure_peak=False, verify_every=8) as prof:
        for _ in range(40):
            m(x).sum().backward()
            prof.step()
    counted = [s.index for s in prof.result().steps if s.analytic_origin == "counted"]
    assert counted == [0, 2, 6, 14, 22, 30, 38]
