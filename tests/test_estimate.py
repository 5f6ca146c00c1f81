"""Tests for pyprof.estimate (Method 1, Method 2, the seed's worked examples) and the `estimate` CLI command."""

import json
import math

import pytest
import typer
from typer.testing import CliRunner

from pyprof.accounting.estimate import (
    SEED_EXAMPLES,
    Estimate,
    error_direction,
    error_factor,
    method1,
    method2,
    reproduce_seed_examples,
)
from pyprof.cli.estimate_cmd import estimate as estimate_command
from pyprof.constants import PFS_DAY_FLOP, TFS_DAY_FLOP
from pyprof.errors import InvalidInputError, UnknownHardwareError

NAN = float("nan")
INF = float("inf")

# ------------------------------------------------------------------ Method 1


def test_method1_alexnet_printed_inputs():
    e = method1(macs_per_forward=0.75e9, examples=1.2e6, epochs=90)
    # 0.75e9 × 2 × 3 × 1.2e6 × 90 = 4.86e17 FLOP
    assert e.flop == pytest.approx(4.86e17)
    assert e.petaflop == pytest.approx(486.0)  # 4.86e17 / 1e15
    assert e.pfs_days == pytest.approx(0.005625)  # 4.86e17 / 8.64e19
    assert e.tfs_days == pytest.approx(5.625)  # 4.86e17 / 8.64e16
    assert e.method == "method1"
    assert e.inputs["flop_per_mac"] == 2
    assert e.inputs["backward_factor"] == 3
    assert e.inputs["flops_per_forward"] == pytest.approx(1.5e9)  # 0.75e9 × 2
    assert e.formula == "7.5e8 MAC × 2 FLOP/MAC × 3 (fwd+bwd) × 1.2e6 examples × 90 epochs"


def test_method1_flops_per_forward_is_not_doubled():
    e = method1(flops_per_forward=1.5e9, examples=1.2e6, epochs=90)
    # 1.5e9 × 3 × 1.2e6 × 90 = 4.86e17, same as 0.75e9 MAC × 2
    assert e.flop == pytest.approx(4.86e17)
    assert e.inputs["macs_per_forward"] is None
    assert e.inputs["flop_per_mac"] is None


def test_method1_backward_factor_and_default_epoch():
    e = method1(macs_per_forward=1e9, examples=1000, backward_factor=2.0)
    # 1e9 × 2 × 2 × 1000 × 1 = 4e12
    assert e.flop == pytest.approx(4e12)
    assert e.inputs["epochs"] == 1


def test_method1_alexnet_real_macs_gives_printed_470pf():
    # 470e15 / (2 × 3 × 1.2e6 × 90) = 0.7253e9 multiply-adds per image
    implied = 470e15 / (2 * 3 * 1.2e6 * 90)
    assert implied == pytest.approx(0.725e9, rel=1e-3)
    e = method1(macs_per_forward=implied, examples=1.2e6, epochs=90)
    assert e.petaflop == pytest.approx(470.0)
    assert round(e.pfs_days, 4) == 0.0054  # 470e15 / 8.64e19 = 0.00544


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(examples=1e6), "neither was given"),
        (dict(macs_per_forward=1e9, flops_per_forward=2e9, examples=1e6), "both were given"),
        (dict(macs_per_forward=0, examples=1e6), "macs_per_forward=0 must be greater than zero"),
        (dict(macs_per_forward=-1e9, examples=1e6), "macs_per_forward=-1000000000.0"),
        (dict(flops_per_forward=NAN, examples=1e6), "flops_per_forward=nan is not finite"),
        (dict(macs_per_forward=1e9, examples=0), "examples=0"),
        (dict(macs_per_forward=1e9, examples=INF), "examples=inf is not finite"),
        (dict(macs_per_forward=1e9, examples=1e6, epochs=-3), "epochs=-3"),
        (dict(macs_per_forward=1e9, examples=1e6, epochs=NAN), "epochs=nan"),
        (dict(macs_per_forward=1e9, examples=1e6, backward_factor=0.5), "backward_factor=0.5 is below 1"),
        (dict(macs_per_forward="1e9", examples=1e6), "is not a number"),
        (dict(macs_per_forward=True, examples=1e6), "is not a number"),
    ],
)
def test_method1_rejects_bad_input(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        method1(**kwargs)


# ------------------------------------------------------------------ Method 2


def test_method2_alexnet():
    e = method2(hardware="GTX 580 (AI and compute)", count=2, days=5.5)
    # 2 × 1.58e12 × 5.5 × 86400 × 0.33 = 4.955e17
    assert e.flop == pytest.approx(2 * 1.58e12 * 5.5 * 86400 * 0.33)
    assert e.flop == pytest.approx(4.955e17, rel=1e-4)
    assert e.petaflop == pytest.approx(495.5, rel=1e-4)  # 4.955e17 / 1e15
    assert e.pfs_days == pytest.approx(0.005735, rel=1e-3)  # 4.955e17 / 8.64e19
    assert round(e.pfs_days, 5) == 0.00574
    assert e.formula == "2 × 1.58e12 FLOP/s × 5.5 d × 86400 s/d × 0.33"
    assert e.inputs["utilization"] == 0.33
    assert "GPUs (33%" in e.inputs["utilization_source"]
    assert e.inputs["time_s"] == 5.5 * 86400  # 475,200 s
    assert e.inputs["precision"] == "fp32" and e.inputs["dense"] is True


def test_method2_spec_gtx580_differs_from_used():
    # spec 1.581e12: 2 × 1.581e12 × 5.5 × 86400 × 0.33 = 4.958e17 (0.06% above the used 1.58)
    e = method2(hardware="gtx580", count=2, days=5.5)
    assert e.flop == pytest.approx(4.9585e17, rel=1e-4)


def test_method2_explicit_peak_and_default_utilization():
    e = method2(peak_flops_per_s=1e15, days=1)
    # 1 × 1e15 × 1 × 86400 × 0.33 = 2.8512e19 = 0.33 pfs-days
    assert e.pfs_days == pytest.approx(0.33)
    assert "no hardware named" in e.inputs["utilization_source"]


def test_method2_cpu_uses_17_percent():
    e = method2(hardware="EPYC 7763", count=4, days=2)
    # 4 × 5.0176e12 × 2 × 86400 × 0.17 = 5.896e17
    assert e.flop == pytest.approx(4 * 5.0176e12 * 2 * 86400 * 0.17)
    assert e.inputs["utilization"] == 0.17
    assert "CPUs (17%" in e.inputs["utilization_source"]


def test_method2_tpu_uses_gpu_figure_and_says_so():
    e = method2(hardware="TPU v4", precision="bf16", count=8, days=1)
    # 8 × 2.75e14 × 86400 × 0.33 = 6.273e19
    assert e.flop == pytest.approx(6.27264e19)
    assert "applied to a TPU" in e.inputs["utilization_source"]


def test_method2_explicit_utilization_and_peak_override():
    e = method2(hardware="K40", peak_flops_per_s=4.2e12, count=800, days=28, utilization=0.33)
    # NAS: 800 × 4.2e12 × 28 × 86400 × 0.33 = 2.682e21
    assert e.flop == pytest.approx(2.6824e21, rel=1e-4)
    assert e.inputs["utilization_source"] == "explicit"
    assert "overrides" in e.inputs["peak_source"]


def test_method2_base_clock():
    e = method2(hardware="K40", clock="base", days=1, utilization=1.0)
    # 4.29e12 × 86400 × 1.0 = 3.7066e17
    assert e.flop == pytest.approx(3.70656e17)


def test_method2_extra_factor():
    e = method2(peak_flops_per_s=1e12, days=1, utilization=0.5, extra_factor=10)
    # 1e12 × 86400 × 0.5 × 10 = 4.32e17
    assert e.flop == pytest.approx(4.32e17)
    assert "× 10 (extra factor)" in e.formula


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(days=1), "needs a peak"),
        (dict(hardware="h100", days=0), "days=0"),
        (dict(hardware="h100", days=-2), "days=-2"),
        (dict(hardware="h100", days=NAN), "days=nan is not finite"),
        (dict(hardware="h100", days=INF), "days=inf is not finite"),
        (dict(hardware="h100", days=1, count=0), "count=0"),
        (dict(hardware="h100", days=1, count=-8), "count=-8"),
        (dict(hardware="h100", days=1, count=2.5), "count=2.5 must be a whole number"),
        (dict(peak_flops_per_s=0, days=1), "peak_flops_per_s=0"),
        (dict(peak_flops_per_s=-1e12, days=1), "peak_flops_per_s=-1000000000000.0"),
        (dict(peak_flops_per_s=NAN, days=1), "peak_flops_per_s=nan"),
        (dict(peak_flops_per_s=1.58, days=1), "not TFLOP/s"),
        (dict(hardware="h100", days=1, utilization=0), r"outside \(0, 1\]"),
        (dict(hardware="h100", days=1, utilization=33), r"outside \(0, 1\]"),
        (dict(hardware="h100", days=1, utilization=1.01), r"outside \(0, 1\]"),
        (dict(hardware="h100", days=1, utilization=NAN), "utilization=nan is not finite"),
        (dict(hardware="tpu v4", days=1), "available: bf16"),
        (dict(peak_flops_per_s=1e12, days=1, extra_factor=0), "extra_factor=0"),
    ],
)
def test_method2_rejects_bad_input(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        method2(**kwargs)


def test_method2_utilization_one_is_allowed():
    # upper bound of (0, 1] is inclusive: 1e12 × 86400 × 1.0 = 8.64e16 = 1 tfs-day
    assert method2(peak_flops_per_s=1e12, days=1, utilization=1.0).tfs_days == pytest.approx(1.0)


def test_method2_unknown_hardware():
    with pytest.raises(UnknownHardwareError, match="--list-hardware"):
        method2(hardware="GTX 5800", days=1)


# ------------------------------------------------------------------ Estimate and error factor


def test_estimate_units_and_to_dict():
    e = Estimate(method="method1", flop=PFS_DAY_FLOP, inputs={"x": 1}, formula="f")
    assert e.pfs_days == 1.0  # 8.64e19 / 8.64e19
    assert e.tfs_days == pytest.approx(1000.0)  # 8.64e19 / 8.64e16
    assert e.petaflop == pytest.approx(86400.0)  # 8.64e19 / 1e15
    d = e.to_dict()
    assert d["flop"] == 8.64e19 and d["pfs_days"] == 1.0 and d["inputs"] == {"x": 1}
    json.dumps(d)  # serialisable
    assert TFS_DAY_FLOP * 1000 == PFS_DAY_FLOP


def test_error_factor_is_symmetric_and_at_least_one():
    assert error_factor(0.33, 0.165) == pytest.approx(2.0)  # 0.33 / 0.165
    assert error_factor(0.165, 0.33) == pytest.approx(2.0)  # 0.33 / 0.165
    assert error_factor(0.4, 0.4) == 1.0
    assert error_direction(0.33, 0.165) == "overestimate"
    assert error_direction(0.165, 0.33) == "underestimate"
    assert error_direction(0.4, 0.4) == "exact"
    for bad in (0, -1, NAN, INF):
        with pytest.raises(InvalidInputError):
            error_factor(bad, 0.3)
        with pytest.raises(InvalidInputError):
            error_factor(0.3, bad)


# ------------------------------------------------------------------ the seed's worked examples

# name -> (computed FLOP by hand, printed PF, printed pfs-days)
HAND = {
    # 11.4e9 × 2 × 3 × 1.2e6 × 128 = 1.0506e19
    "resnet151_method1": (11.4e9 * 2 * 3 * 1.2e6 * 128, 10_000, 0.117),
    # 2 × 1.58e12 × 5.5 × 86400 × 0.33 = 4.9554e17
    "alexnet_method2": (2 * 1.58e12 * 5.5 * 86400 * 0.33, 500, 0.0058),
    # 0.75e9 × 2 × 3 × 1.2e6 × 90 = 4.86e17
    "alexnet_method1": (0.75e9 * 2 * 3 * 1.2e6 * 90, 470, 0.0054),
    # 1 × 1.54e12 × 4 × 86400 × 0.33 = 1.7563e17
    "dropout_method2": (1.54e12 * 4 * 86400 * 0.33, 184, 0.0021),
    # 1 × 1.54e12 × 12 × 86400 × 0.33 = 5.269e17
    "zfnet_method2": (1.54e12 * 12 * 86400 * 0.33, 532, 0.0062),
    # 2.5e6 × 2 × 3 × 5e6 × 32 = 2.4e15
    "dqn_method1": (2.5e6 * 2 * 3 * 5e6 * 32, 2.3, 2.7e-5),
    # 652e6 × 0.380e9 × 2 × 3 × 7.5 = 1.1149e19
    "seq2seq_method1": (652e6 * 0.380e9 * 2 * 3 * 7.5, 7_300, 0.085),
    # 8 × 3.5e12 × 10 × 86400 × 0.33 = 7.9834e18
    "seq2seq_method2": (8 * 3.5e12 * 10 * 86400 * 0.33, 8_100, 0.093),
    # 1.2e6 × 74 × 16e9 × 2 × 3 = 8.5248e18
    "vgg_method1": (1.2e6 * 74 * 16e9 * 2 * 3, 8_524, 0.098),
    # 4 × 5.1e12 × 15 × 86400 × 0.33 = 8.7247e18
    "vgg_method2": (4 * 5.1e12 * 15 * 86400 * 0.33, 10_000, 0.12),
    # 20 × 12000 × 3600 × 50 × 98e6 × 3 × 2 = 2.5402e19
    "deepspeech2_method1": (20 * 12_000 * 3600 * 50 * 98e6 * 3 * 2, 26_000, 0.30),
    # 16 × 6e12 × 5 × 86400 × 0.50 = 2.0736e19
    "deepspeech2_method2": (16 * 6e12 * 5 * 86400 * 0.50, 21_000, 0.25),
    # 60 × 8.5e12 × 30 × 86400 × 0.33 = 4.3623e20
    "xception_method2": (60 * 8.5e12 * 30 * 86400 * 0.33, 4.5e5, 5.0),
    # 50 × 50000 × 10e9 × 12800 × 2 × 3 = 1.92e21
    "nas_method1": (50 * 50_000 * 10e9 * 12_800 * 2 * 3, 1.9e6, 22),
    # 800 × 4.2e12 × 28 × 86400 × 0.33 = 2.6824e21
    "nas_method2": (800 * 4.2e12 * 28 * 86400 * 0.33, 2.8e6, 31),
    # 96 × 8.5e12 × 9 × 86400 × 0.33 × sqrt(1000) = 6.6216e21
    "nmt_method2": (96 * 8.5e12 * 9 * 86400 * 0.33 * math.sqrt(1000), 6.9e6, 79),
}


def test_every_seed_example_has_a_hand_check():
    assert set(SEED_EXAMPLES) == set(HAND)


@pytest.mark.parametrize("name", sorted(HAND))
def test_seed_example_reproduces_hand_arithmetic(name):
    rep = {r.name: r for r in reproduce_seed_examples()}[name]
    flop, printed_pf, printed_pfs_days = HAND[name]
    assert rep.estimate.flop == pytest.approx(flop, rel=1e-12)
    assert rep.printed_pf == printed_pf
    assert rep.printed_pfs_days == printed_pfs_days
    assert rep.ratio == pytest.approx(flop / 8.64e19 / printed_pfs_days)
    assert rep.ratio_pf == pytest.approx(flop / 1e15 / printed_pf)
    # The post aims to be right "within a factor 2-3"; every printed example is within 1.6x of its inputs.
    assert 1 / 1.6 < rep.ratio < 1.6
    assert rep.explanation


def test_seed_alexnet_method2_numbers_and_explanation():
    rep = {r.name: r for r in reproduce_seed_examples()}["alexnet_method2"]
    # 4.955e17 FLOP = 495.5 PF = 0.00574 pfs-days; printed 500 PF = 0.0058
    assert f"{rep.estimate.flop:.4g}" == "4.955e+17"
    assert f"{rep.estimate.petaflop:.4g}" == "495.5"
    assert f"{rep.estimate.pfs_days:.3g}" == "0.00574"
    assert rep.ratio == pytest.approx(0.005735 / 0.0058, rel=1e-3)  # 0.989
    for s in ("4.955e17 FLOP", "495.5 PF", "0.00574 pfs-days", "rounds to 500 PF"):
        assert s in rep.explanation


def test_seed_alexnet_method1_numbers_and_explanation():
    rep = {r.name: r for r in reproduce_seed_examples()}["alexnet_method1"]
    # 4.86e17 FLOP = 486 PF = 0.0056 pfs-days; printed 470 PF = 0.0054
    assert rep.estimate.flop == pytest.approx(4.86e17)
    assert round(rep.estimate.pfs_days, 4) == 0.0056
    assert rep.ratio_pf == pytest.approx(486 / 470)  # 1.034
    for s in (
        "0.75 G multiply-adds per forward pass",
        "4.86e17 FLOP = 486 PF = 0.0056 pfs-days",
        "470 PF = 0.0054 pfs-days",
        "≈0.72 G multiply-adds per image",
        "470e15 / (2·3·1.2e6·90) = 0.725e9",
    ):
        assert s in rep.explanation


def test_seed_resnet_gap_is_stated_not_fudged():
    rep = {r.name: r for r in reproduce_seed_examples()}["resnet151_method1"]
    # 1.0506e19 / 8.64e19 = 0.1216 pfs-days vs printed 0.117: ratio 1.039
    assert rep.estimate.pfs_days == pytest.approx(0.12160, rel=1e-4)
    assert rep.ratio == pytest.approx(1.0394, rel=1e-3)
    assert "10,506 PF" in rep.explanation and "not explained" in rep.explanation


def test_seed_seq2seq_method1_gap_is_stated():
    rep = {r.name: r for r in reproduce_seed_examples()}["seq2seq_method1"]
    # 1.1149e19 / 7.3e18 = 1.527
    assert rep.ratio_pf == pytest.approx(1.527, rel=1e-3)
    assert "does NOT follow" in rep.explanation


def test_seed_deepspeech2_uses_050_utilization():
    rep = {r.name: r for r in reproduce_seed_examples()}["deepspeech2_method2"]
    assert rep.estimate.inputs["utilization"] == 0.50
    assert rep.estimate.inputs["utilization_source"] == "explicit"


def test_seed_paired_examples_implied_utilization():
    # SEED_DATA.md: implied utilization = printed M1 pfs-days / (printed M2 pfs-days / 0.33)
    # AlexNet 0.0054 / (0.0058 / 0.33) = 0.307; VGG 0.098 / (0.12 / 0.33) = 0.2695
    ex = SEED_EXAMPLES
    alex = ex["alexnet_method1"].printed_pfs_days / (ex["alexnet_method2"].printed_pfs_days / 0.33)
    vgg = ex["vgg_method1"].printed_pfs_days / (ex["vgg_method2"].printed_pfs_days / 0.33)
    assert round(alex, 2) == 0.31
    assert round(vgg, 2) == 0.27


# ------------------------------------------------------------------ CLI


@pytest.fixture
def app():
    a = typer.Typer()
    a.command("estimate")(estimate_command)

    @a.callback()
    def _root() -> None:  # keep "estimate" as a subcommand
        pass

    return a


def _run(app, *args):
    return CliRunner().invoke(app, ["estimate", *args])


def test_cli_method1_json(app):
    r = _run(app, "--macs-per-forward", "0.75e9", "--examples", "1.2e6", "--epochs", "90", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    (e,) = data["estimates"]
    assert e["method"] == "method1"
    assert e["flop"] == pytest.approx(4.86e17)  # 0.75e9 × 2 × 3 × 1.2e6 × 90
    assert e["inputs"]["examples"] == 1.2e6


def test_cli_method2_json_with_peak_tflops(app):
    r = _run(app, "--method", "2", "--peak-tflops", "1.58", "--count", "2", "--days", "5.5", "--json")
    assert r.exit_code == 0, r.stderr
    (e,) = json.loads(r.stdout)["estimates"]
    assert e["flop"] == pytest.approx(4.9554e17, rel=1e-4)  # 2 × 1.58e12 × 5.5 × 86400 × 0.33


def test_cli_both_table(app):
    r = _run(app, "--method", "both", "--macs-per-forward", "0.75e9", "--examples", "1.2e6", "--epochs", "90",
             "--hardware", "GTX 580 (AI and compute)", "--count", "2", "--days", "5.5")
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "4.86e+17" in out and "4.955e+17" in out  # FLOP column
    assert "0.005625" in out and "0.005735" in out  # pfs-days column
    # Method 1 / Method 2 = 4.86e17 / 4.9554e17 = 0.981; implied utilization 0.33 × 0.981 = 0.32
    assert "0.981" in out and "0.32" in out


def test_cli_both_json_comparison(app):
    r = _run(app, "--macs-per-forward", "0.75e9", "--examples", "1.2e6", "--epochs", "90",
             "--hardware", "GTX 580 (AI and compute)", "--count", "2", "--days", "5.5", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert [e["method"] for e in data["estimates"]] == ["method1", "method2"]  # auto -> both
    assert data["comparison"]["implied_utilization"] == pytest.approx(0.33 * 4.86e17 / 4.9554e17, rel=1e-4)


def test_cli_seed_examples(app):
    r = _run(app, "--seed-examples", "--json")
    assert r.exit_code == 0, r.stderr
    reps = json.loads(r.stdout)["seed_examples"]
    assert len(reps) == len(SEED_EXAMPLES)
    alex = next(x for x in reps if x["name"] == "alexnet_method2")
    assert alex["computed"]["flop"] == pytest.approx(4.9554e17, rel=1e-4)
    r = _run(app, "--seed-examples")
    assert r.exit_code == 0 and "0.725e9" in r.stdout


def test_cli_list_hardware(app):
    r = _run(app, "--list-hardware", "--json")
    assert r.exit_code == 0
    rows = json.loads(r.stdout)["hardware"]
    assert any(x["hardware"] == "NVIDIA H100 SXM5" and x["precision"] == "bf16" for x in rows)
    r = _run(app, "--list-hardware")
    assert r.exit_code == 0 and "AI and compute" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("--hardware", "h10o", "--days", "1"), "Close matches"),
        (("--hardware", "h100", "--days", "1", "--utilization", "33"),
         "--utilization 33 is above 1; pass --utilization in a fraction of peak in (0, 1], e.g. --utilization 0.33"),
        (("--hardware", "h100", "--days", "nan"), "--days nan is not a finite number; pass --days in wall-clock days"),
        (("--hardware", "h100", "--days", "0"), "--days 0 must be > 0"),
        (("--hardware", "h100", "--days", "1", "--count", "0"), "--count 0 must be > 0"),
        (("--peak-tflops", "1.58e12", "--days", "1"), "not FLOP/s"),
        # The CLI's advice names the CLI's flag and unit, and following it works (test_cli_peak_advice_works).
        (("--peak-tflops", "-1", "--days", "1"), "--peak-tflops -1 must be > 0; pass --peak-tflops in TFLOP/s per "
                                                 "device, not FLOP/s, e.g. --peak-tflops 1.58"),
        (("--peak-tflops", "nan", "--days", "1"), "--peak-tflops nan is not a finite number; pass --peak-tflops"),
        (("--peak-tflops", "inf", "--days", "1"), "--peak-tflops inf is not a finite number; pass --peak-tflops"),
        (("--peak-tflops", "1", "--days", "1e308", "--json"), "overflows a float"),
        (("--peak-tflops", "1", "--gpu-hours", "1e308", "--json"), "overflows a float"),
        (("--parameters", "1e308", "--tokens", "1e308", "--json"), "overflows a float"),
        (("--parameters", "1e9",), "needs both --parameters"),
        (("--parameters", "1e9", "--tokens", "1e9", "--n-layers", "2"), "--n-ctx, --d-attn missing"),
        (("--peak-tflops", "1", "--gpu-hours", "10", "--days", "1"), "not both"),
        (("--peak-tflops", "1", "--gpu-hours", "10", "--count", "8"), "drop --count"),
        (("--gpu-hours", "10",), "needs a peak: --hardware NAME"),
        (("--macs-per-forward", "1e9", "--flops-per-forward", "2e9", "--examples", "1"), "both were given"),
        (("--macs-per-forward", "1e9",), "needs --examples"),
        (("--method", "2", "--hardware", "h100"), "needs --days"),
        (("--method", "3",), "--method '3'"),
        ((), "nothing to estimate"),
    ],
)
def test_cli_bad_input_exits_2_with_message_on_stderr(app, args, message):
    r = _run(app, *args)
    assert r.exit_code == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert "FLOP/s (e.g. 1.58e12)" not in r.stderr  # the API's advice (peak_flops_per_s), not the CLI's
    assert r.stdout == ""


def test_cli_peak_advice_works(app):
    # The advice for --peak-tflops -1 is "--peak-tflops 1.58": following it gives 1.58e12 × 86400 × 0.33 FLOP.
    r = _run(app, "--peak-tflops", "1.58", "--days", "1", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["estimates"][0]["flop"] == pytest.approx(1.58e12 * 86400 * 0.33)


def test_cli_json_documents_carry_kind_and_schema_version(app):
    for args in (("--peak-tflops", "1.58", "--days", "1"), ("--list-hardware",), ("--seed-examples",)):
        d = json.loads(_run(app, *args, "--json").stdout)
        assert d["kind"] == "pyprof.estimate" and d["schema_version"] == "1.0"


def test_method1_from_parameters_six_n_d():
    from pyprof.accounting.estimate import method1_from_parameters

    e = method1_from_parameters(parameters=175e9, tokens=300e9)
    assert e.flop == pytest.approx(3.15e23)  # 6 × 175e9 × 300e9 = 3.15e23 (GPT-3; its paper prints 3.14e23)
    assert e.pfs_days == pytest.approx(3645.83, rel=1e-5)  # 3.15e23 / 8.64e19
    assert e.inputs["attention_flops_per_token"] is None
    a = method1_from_parameters(parameters=175e9, tokens=300e9, n_layers=96, n_ctx=2048, d_attn=12288)
    # attention: 6 × 96 × 2048 × 12288 = 1.4495514624e10 per token; × 300e9 = 4.3486543872e21 more
    assert a.inputs["attention_flops_per_token"] == 6 * 96 * 2048 * 12288
    assert a.flop == pytest.approx(3.15e23 + 4.3486543872e21)
    with pytest.raises(InvalidInputError, match="n_ctx, d_attn missing"):
        method1_from_parameters(parameters=1e9, tokens=1e9, n_layers=2)
    with pytest.raises(InvalidInputError, match="tokens=0"):
        method1_from_parameters(parameters=1e9, tokens=0)


def test_method2_from_gpu_hours():
    # LLaMA-2-style: 1,720,320 GPU-hours × 3600 s/h × 312e12 FLOP/s × 0.33 = 6.3767e23 FLOP;
    # the same as count=1, days=1720320/24=71680.
    e = method2(peak_flops_per_s=312e12, device_hours=1_720_320)
    assert e.flop == pytest.approx(1_720_320 * 3600 * 312e12 * 0.33)
    assert e.flop == pytest.approx(method2(peak_flops_per_s=312e12, count=1, days=71680).flop)
    assert e.inputs["device_hours"] == 1_720_320
    with pytest.raises(InvalidInputError, match="already sum over the devices"):
        method2(peak_flops_per_s=312e12, device_hours=10, count=8)
    with pytest.raises(InvalidInputError, match="both were given"):
        method2(peak_flops_per_s=312e12, device_hours=10, days=1)


def test_cli_parameters_tokens_and_gpu_hours(app):
    r = _run(app, "--parameters", "175e9", "--tokens", "300e9", "--peak-tflops", "312", "--gpu-hours", "1720320",
             "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert [e["method"] for e in d["estimates"]] == ["method1", "method2"]
    assert d["estimates"][0]["flop"] == pytest.approx(3.15e23)        # 6 × 175e9 × 300e9
    assert d["estimates"][1]["flop"] == pytest.approx(6.3767e23, rel=1e-4)  # 1720320 × 3600 × 312e12 × 0.33
