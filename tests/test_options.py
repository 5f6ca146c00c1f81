"""pyprof.profile() arguments: every one checked for type and range up front, naming the parameter and the fix."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from pyprof.errors import InvalidInputError, UnknownHardwareError
from pyprof.session.options import ProfileOptions, validate_profile_options


def test_defaults_are_profile_defaults():
    o = validate_profile_options()
    assert o == ProfileOptions()
    assert o.report_formats == ("json", "md", "html", "trace") and o.autosave_s == 60.0 and o.count_flops == "auto"


def test_numbers_of_any_numeric_type_become_plain_python_numbers(tmp_path):
    o = validate_profile_options(peak=np.float32(1e12), autosave_s=np.int64(30), examples_per_step=np.int32(64),
                                 recomputation=np.float64(0.5), training_examples=np.uint32(50_000),
                                 training_epochs=3, top_kernels=np.int16(5), output_dir=str(tmp_path))
    assert type(o.peak) is float and o.peak == pytest.approx(1e12)  # float32(1e12) = 999999995904.0
    assert type(o.autosave_s) is float and o.autosave_s == 30.0
    assert type(o.examples_per_step) is int and o.examples_per_step == 64
    assert type(o.recomputation) is float and type(o.training_examples) is float and type(o.training_epochs) is float
    assert type(o.top_kernels) is int and o.top_kernels == 5
    assert o.output_dir == Path(tmp_path)
    # Every value JSON-serializes (np.float32 itself does not: "Object of type float32 is not JSON serializable").
    d = {k: v for k, v in asdict(o).items() if k not in ("model", "schedule", "output_dir")}
    json.dumps(d)
    with pytest.raises(TypeError):
        json.dumps({"peak": np.float32(1e12)})


@pytest.mark.parametrize("kwargs, match", [
    (dict(autosave_s="60"), r"autosave_s='60' \(str\) is not a number; pass seconds"),
    (dict(autosave_s=0), r"autosave_s=0 must be a finite number of seconds > 0"),
    (dict(autosave_s=float("nan")), r"autosave_s=nan must be a finite number of seconds > 0"),
    (dict(examples_per_step=2.5), r"examples_per_step=2.5 \(float\) must be a whole number"),
    (dict(examples_per_step=0), r"examples_per_step=0 must be a whole number > 0 \(the batch size\)"),
    (dict(examples_per_step=True), r"examples_per_step=True \(bool\) must be a whole number"),
    (dict(schedule="every step"), r"schedule must be pyprof.schedule\(...\) or torch.profiler.schedule\(...\)"),
    (dict(report_formats="json"), r"report_formats='json' must be a tuple of format names"),
    (dict(report_formats=("json", "pdf")), r"report_formats \['pdf'\] unknown; choose from"),
    (dict(output_dir=42), r"output_dir=42 \(int\) is not a path"),
    (dict(peak=True), r"peak=True \(bool\) is not a number"),
    (dict(peak=-1.0), r"peak=-1.0 must be a finite FLOP/s > 0, or a hardware name"),
    (dict(peak=float("inf")), r"peak=inf must be a finite FLOP/s > 0"),
    (dict(peak=[1e12]), r"peak=\[1000000000000.0\] \(list\) is not a number"),
    (dict(recomputation=1.5), r"recomputation=1.5 must be in \[0, 1\]"),
    (dict(recomputation="full"), r"recomputation='full' \(str\) is not a number"),
    (dict(training_examples=-5), r"training_examples=-5 must be a finite number > 0"),
    (dict(training_epochs=float("nan")), r"training_epochs=nan must be a finite number > 0"),
    (dict(measure_peak=1), r"measure_peak=1 \(int\) must be True or False"),
    (dict(nvml="no"), r"nvml='no' \(str\) must be True or False"),
    (dict(count_flops="sometimes"), r"count_flops='sometimes': use 'auto'"),
    (dict(counters="all"), r"counters='all': use 'off'"),
    (dict(device="gpu"), r"device='gpu': use 'cpu', 'cuda' or 'cuda:<index>'"),
    (dict(device="cuda:x"), r"device='cuda:x'"),
    (dict(top_kernels=-1), r"top_kernels=-1 must be a whole number >= 0"),
    (dict(top_kernels=2.0), r"top_kernels=2.0 \(float\) must be a whole number"),
    (dict(name=7), r"name=7 \(int\) must be a string"),
    (dict(precision="fp33"), r"precision='fp33': use 'auto' or one of"),
    (dict(model=lambda x: x * 2), r"model=.* \(function\) is not a torch.nn.Module"),
    (dict(autosave=60), r"unknown argument 'autosave'; did you mean autosave_s\?"),
])
def test_bad_arguments_name_the_parameter_and_the_fix(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        validate_profile_options(**kwargs)


def test_unknown_hardware_name_lists_close_matches():
    with pytest.raises(UnknownHardwareError):
        validate_profile_options(peak="h10o")


def test_accepted_forms():
    import torch.profiler

    o = validate_profile_options(model=torch.nn.Linear(2, 2), schedule=torch.profiler.schedule(wait=0, warmup=1,
                                 active=1), report_formats=["json"], device=torch.device("cuda", 1),
                                 measure_peak=np.bool_(False), peak="H100 SXM5")
    assert o.report_formats == ("json",) and o.device == "cuda:1" and o.measure_peak is False
    assert o.peak == "H100 SXM5"


def test_output_dir_is_checked_before_work(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(InvalidInputError, match=r"output_dir '.*a_file' is an existing file, not a folder"):
        validate_profile_options(output_dir=f)
    o = validate_profile_options(output_dir=tmp_path / "new" / "dir")
    assert o.output_dir.is_dir() and os.listdir(o.output_dir) == []


def test_validation_touches_no_global_state():
    # A failed validation leaves no module hook behind: a plain forward still works (the bug of issue 13 item 1).
    m = torch.nn.Linear(2, 2)
    with pytest.raises(InvalidInputError):
        validate_profile_options(model=m, autosave_s="60")
    assert not m._forward_hooks and not m._forward_pre_hooks
    assert m(torch.ones(1, 2)).shape == (1, 2)


def test_counters_and_pm_sampling_on_one_device_are_refused_up_front():
    from pyprof.errors import InvalidInputError
    from pyprof.session.options import validate_profile_options

    with pytest.raises(InvalidInputError, match="pick one"):
        validate_profile_options(counters="step", pm_sampling=True)
    assert validate_profile_options(counters="step").counters == "step"


def test_verify_every_is_checked_with_the_other_arguments():
    from pyprof.errors import InvalidInputError
    from pyprof.session.options import validate_profile_options

    assert validate_profile_options(verify_every=None).verify_every == 0  # None: never verify
    assert validate_profile_options(verify_every=np.int64(50)).verify_every == 50
    for bad in (-1, 2.5, True, "100"):
        with pytest.raises(InvalidInputError, match="verify_every"):
            validate_profile_options(verify_every=bad)
