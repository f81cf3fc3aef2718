"""Hostile input through the Python API (issue 22, part 9): every bad argument is refused before any
work with a costlens error, or a standard one, whose message names the argument; never a raw
exception from deep inside, never a Profile with the error buried in it."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import costlens
from costlens import OpCost, load, profile
from costlens.errors import CostlensError, ModelError, ProfileFileError
from costlens.sweep import sweep
from costlens.timing.measure import TimingOptions

# Timed calls: the device described (no calibration), end to end only.
QUICK = TimingOptions(device="cpu", layers=False, latency_time=0.05, peak_flops=1e12, bandwidth=1e10)


def conv() -> nn.Module:
    return nn.Conv2d(3, 4, 3)


def meta_conv() -> nn.Module:
    with torch.device("meta"):
        return nn.Conv2d(3, 4, 3)


def refuses(call: Callable[[], Any], argument: str, expected: type[Exception] = CostlensError) -> str:
    """``call`` raises ``expected`` (a costlens error unless said), naming ``argument``; its message."""
    with pytest.raises(Exception) as raised:
        result = call()
        pytest.fail(f"returned {result!r} instead of refusing")
    assert isinstance(raised.value, expected), repr(raised.value)
    message = str(raised.value)
    assert argument in message, message
    assert "\n" not in message.strip()
    return message


# --- profile(): inputs and models that cannot serve the request --------------------------------------

@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"inputs": torch.zeros(1, 3, 8, 8).to_sparse()}, "inputs: a sparse_coo tensor is not an input"),
    ({"inputs": torch.zeros(1, 3, 8, 8).to_sparse(), "device": "cpu"}, "inputs: a sparse_coo tensor"),
    ({"inputs": {"x": torch.zeros(1, 3, 8, 8).to_sparse()}}, "inputs['x']: a sparse_coo tensor"),
    ({"inputs": torch.zeros(1, 3, 8, 8, device="meta"), "device": "cpu"},
     "inputs: a tensor on the meta device has no values, and device cpu needs them"),
    ({"inputs": torch.zeros(1, 3, 8, 8, device="meta"), "time": QUICK},
     "inputs: a tensor on the meta device has no values, and time needs them"),
], ids=["sparse", "sparse-cpu", "sparse-keyword", "meta-input-cpu", "meta-input-timed"])
def test_tensors_that_cannot_serve_the_request_are_refused(kwargs: dict[str, Any], argument: str) -> None:
    refuses(lambda: profile(conv(), **kwargs), argument)


@pytest.mark.parametrize(("kwargs", "said"), [({"device": "cpu"}, "device cpu"), ({"time": QUICK}, "time")])
def test_a_module_with_meta_weights_is_refused_where_real_ones_are_needed(kwargs: dict[str, Any], said: str) -> None:
    message = refuses(lambda: profile(meta_conv(), (1, 3, 8, 8), **kwargs), "has weights on the meta device", ModelError)
    assert f"and {said} needs real ones" in message


def test_a_module_with_meta_weights_is_counted_on_meta() -> None:
    # 6·6·4 outputs × 3·3·3 = 3,888 MACs: meta weights are fine where nothing runs for real
    assert profile(meta_conv(), (1, 3, 8, 8)).totals["macs"] == 3_888


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"crops": "10"}, "crops"), ({"crops": 1.5}, "crops"), ({"crops": True}, "crops"),
    ({"ensemble": "²"}, "ensemble: unknown model '²'"), ({"ensemble": 0}, "ensemble"), ({"ensemble": [3]}, "ensemble"),
    ({"freeze": 5}, "freeze"), ({"freeze": [None]}, "freeze"), ({"freeze": ""}, "freeze"),
    ({"freeze_until": ""}, "freeze_until"), ({"freeze_until": 3}, "freeze_until"),
    ({"batch": True}, "batch"), ({"batch": [True, 2], "time": QUICK}, "batch"), ({"batch": 2.5}, "batch"),
    ({"batch": [1, 2.5], "time": QUICK}, "batch"), ({"batch": [2, 2], "time": QUICK}, "batch: 2 is listed twice"),
    ({"batch": [1, 4]}, "batch with several sizes needs time"),
    ({"formulas": {42: lambda args, kwargs, out: OpCost()}}, "formulas: keys are aten ops"),
    ({"formulas": {"aten.no_such_op": lambda args, kwargs, out: OpCost()}}, "formulas: there is no aten op"),
    ({"formulas": {"aten.relu": 42}}, "formulas: the formula of"),
    ({"optimizer": "adam"}, "optimizer needs train"),
    ({"time": "yes"}, "time"), ({"strict": 1}, "strict"), ({"dtype": "int8"}, "dtype"), ({"device": 3}, "device"),
], ids=lambda value: repr(value) if not isinstance(value, dict) else None)
def test_each_argument_is_checked_and_named(kwargs: dict[str, Any], argument: str) -> None:
    refuses(lambda: profile("lenet5", **kwargs), argument)


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"freeze": "act*"}, "freeze: 'act*' matches only modules without parameters (act): nothing to freeze"),
    ({"freeze_until": "conv"}, "freeze_until: no module with parameters runs before 'conv': nothing to freeze"),
])
def test_a_freeze_that_freezes_nothing_is_refused(kwargs: dict[str, Any], argument: str) -> None:
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(3, 4, 3))
    model.add_module("act", nn.ReLU())
    refuses(lambda: profile(model, (1, 3, 8, 8), **kwargs), argument)


def test_a_training_step_of_a_model_without_parameters_is_refused() -> None:
    refuses(lambda: profile(nn.ReLU(), (1, 3, 8, 8), train=True), "ReLU has no parameters: a training step would "
                                                                  "update nothing", ModelError)


# --- sweep() ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"batches": [1, 2.5]}, "batches: batch sizes must be whole numbers"),
    ({"batches": [1, math.inf]}, "batches: batch sizes must be whole numbers"),
    ({"batches": [1, math.nan]}, "batches: batch sizes must be whole numbers"),
    ({"batches": [True, 2]}, "batches: batch sizes must be whole numbers"),
    ({"batches": [2, 2]}, "batches: 2 is listed twice"),
    ({"widths": [0.5, math.nan]}, "widths: width multipliers are numbers in (0, 64]"),
    ({"widths": [0.5, math.inf]}, "widths: width multipliers"),
    ({"widths": [0.5, 0]}, "widths: width multipliers"),
    ({"widths": [1, 1.0]}, "widths: 1 is listed twice"),
    ({"depths": [18, 34.7]}, "depths: depths are whole numbers"),
    ({"depths": [18, 42]}, "depths: the zoo has resnet at depths 18, 34, 50, 101, 152, not 42"),
    ({"batches": [1, 2], "widths": [0.5, 1]}, "sweep: give exactly one list to sweep (batches 2 values, widths 2 "
                                              "values)"),
    ({"inputs": 42}, "inputs: expected text like"),
    ({"inputs": "1x3x{a,b}x{same}"}, "inputs: 'a' is not a size"),
    ({"inputs": "1x3x{}x8"}, "inputs: an empty group"),
    ({"inputs": "1x3x{8,8}x8"}, "inputs: 8 is listed twice"),
    ({"inputs": [(1, 3, 8, 8), (1, 3, 8, 8)]}, "inputs: two points have the same inputs"),
])
def test_sweep_arguments_are_checked_before_the_first_point(kwargs: dict[str, Any], argument: str) -> None:
    refuses(lambda: sweep("resnet18", **kwargs), argument)


def test_sweep_refuses_a_built_module() -> None:
    refuses(lambda: sweep(conv(), inputs=(1, 3, 8, 8), batches=[1, 2]), "not a built nn.Module")


def test_sweep_of_a_factory_that_raises_is_one_model_error() -> None:
    def broken(width: float = 1.0) -> nn.Module:
        raise ValueError(f"no model at width {width}")

    refuses(lambda: sweep(broken, inputs=(1, 3, 8, 8), widths=[0.5, 1]), "no model at width 0.5", ModelError)


class Tagger(nn.Module):
    """Token ids and a mask: an embedding, masked, then a per-token linear layer (8 -> 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(input_ids) * attention_mask.unsqueeze(-1))


def test_sweep_over_named_inputs_moves_them_together() -> None:
    result = sweep(Tagger, inputs=["input_ids=1x{16,32,64}:int64", "attention_mask=1x{same}:int64:ones"])
    assert result.swept == "input" and result.variable == "input_ids size (dim 1)"
    assert [p.x for p in result.points] == [16.0, 32.0, 64.0]
    assert [p.label for p in result.points][0] == "input_ids=1x16 attention_mask=1x16"
    # the head alone has MACs: n tokens × 8 × 4 = 512, 1,024, 2,048; exponent 1 in the sequence's length
    assert [p.totals["macs"] for p in result.points] == [512, 1_024, 2_048]
    found = result.fits()["macs"]
    assert found is not None and found.exponent == pytest.approx(1.0)


def test_sweep_over_points_given_as_inputs() -> None:
    points = [{"input_ids": costlens.Input((1, n), "int64"), "attention_mask": costlens.Input((1, n), "int64", "ones")}
              for n in (16, 32)]
    result = sweep(Tagger, inputs=points)
    assert result.variable == "input_ids size (dim 1)" and [p.totals["macs"] for p in result.points] == [512, 1_024]


def test_a_timed_sweep_cut_by_ctrl_c_keeps_the_measured_points() -> None:
    class CutAtTwo(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.device.type != "meta" and x.shape[0] == 2:
                raise KeyboardInterrupt  # what Ctrl-C raises, while batch 2 is timed
            return self.conv(x)

    result = sweep(CutAtTwo, inputs=(1, 3, 32, 32), batches=[1, 2, 4],
                   timing=TimingOptions(device="cpu", latency_time=0.05, peak_flops=1e12, bandwidth=1e10))
    assert result.interrupted and [p.label for p in result.points] == ["batch 1"]
    assert "latency_ms" in result.metrics()  # the column stays: the unmeasured point is left out


# --- time=True: an error is raised, never buried in a Profile -------------------------------------------

def test_user_code_failing_while_timed_raises() -> None:
    class Breaks(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.calls = nn.Conv2d(3, 4, 3), 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.device.type != "meta":
                self.calls += 1
                if self.calls > 10:
                    raise RuntimeError("boom past the warm-up")
            return self.conv(x)

    message = refuses(lambda: profile(Breaks(), (1, 3, 8, 8), time=QUICK), "raised RuntimeError: boom past the warm-up",
                      ModelError)
    assert "test_hostile_api.py:" in message  # where the model raised it


# --- OpCost ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "argument", "expected"), [
    ({"macs": -1}, "OpCost.macs", ValueError), ({"macs": math.nan}, "OpCost.macs", ValueError),
    ({"macs": math.inf}, "OpCost.macs", ValueError), ({"macs": 10**30}, "OpCost.macs", ValueError),
    ({"macs": 1.5}, "OpCost.macs", ValueError), ({"macs": 2.0}, "OpCost.macs", ValueError),
    ({"macs": True}, "OpCost.macs", ValueError), ({"flops": -3}, "OpCost.flops", ValueError),
    ({"flops": "7"}, "OpCost.flops", TypeError), ({"formula": 123}, "OpCost.formula", TypeError),
])
def test_an_op_cost_checks_itself(kwargs: dict[str, Any], argument: str, expected: type[Exception]) -> None:
    refuses(lambda: OpCost(**kwargs), argument, expected)


def test_an_op_cost_takes_integer_like_counts_as_ints() -> None:
    cost = OpCost(np.int64(6), np.int64(12))
    assert cost == OpCost(6, 12) and type(cost.macs) is int and type(cost.flops) is int
    assert OpCost(10**30 - 1).macs == 10**30 - 1


def test_a_handler_returning_a_bad_op_cost_fails_its_layer() -> None:
    message = refuses(lambda: profile(conv(), (1, 3, 8, 8), formulas={"aten.convolution": lambda a, k, o: OpCost(math.nan)}),
                      "OpCost.macs: expected a whole number", ModelError)
    assert "(Conv2d) failed" in message


# --- load(): a saved profile's timing block ----------------------------------------------------------

@pytest.fixture(scope="module")
def timed() -> dict[str, Any]:
    # two models are timed in a fixed number of interleaved rounds; one alone, until its spread is small
    pair = costlens.compare(conv(), nn.Conv2d(3, 8, 3), inputs=(1, 3, 8, 8), time=QUICK)
    data: dict[str, Any] = json.loads(pair.profiles[0].to_json())
    return data


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(data))
    target = copy
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return copy


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "named"), [
    (("timing", "batches"), "1,2", "timing.batches: expected a list"),
    (("timing", "batches", 0, "median_ms"), "fast", "timing.batches[0].median_ms"),
    (("timing", "batches", 0, "batch"), "1", "timing.batches[0].batch"),
    (("timing", "batches", 0, "iqr_ms"), None, "timing.batches[0].iqr_ms"),
    (("timing", "batches", 0), "batch 1", "timing.batches[0]"),
    (("timing", "device"), _DELETE, "timing.device: missing"),
    (("timing", "device"), "cpu", "timing.device"),
    (("timing", "device", "type"), 3, "timing.device.type"),
    (("timing", "device", "peak_flops"), {"float32": 5e-308}, "timing.device.peak_flops.float32"),
    (("timing", "device", "peak_flops"), {"float32": True}, "timing.device.peak_flops.float32"),
    (("timing", "device", "peak_flops"), {}, "timing.device.peak_flops"),
    (("timing", "device", "bandwidth"), 0, "timing.device.bandwidth"),
    (("timing", "threads"), 0, "timing.threads"),
    (("timing", "interrupted"), "yes", "timing.interrupted"),
    (("timing",), [], "timing: expected an object or null"),
])
def test_a_malformed_timing_block_is_refused_naming_the_field(tmp_path: Path, timed: dict[str, Any],
                                                             path: tuple[str | int, ...], value: Any, named: str) -> None:
    saved = tmp_path / "p.json"
    saved.write_text(json.dumps(_set(timed, path, value)))
    refuses(lambda: load(saved), f"{saved}: {named}", ProfileFileError)


def test_a_timed_profile_costlens_wrote_loads_back(tmp_path: Path, timed: dict[str, Any]) -> None:
    saved = tmp_path / "p.json"
    saved.write_text(json.dumps(timed))
    assert load(saved).totals["latency_ms"] == timed["totals"]["latency_ms"]
    saved.write_text(json.dumps(_set(timed, ("timing", "device"), None)))  # the timing branch: no roofline needed
    assert load(saved).timing is not None


def test_a_training_steps_timing_is_checked(tmp_path: Path) -> None:
    data = json.loads(profile(conv(), (1, 3, 8, 8), train=True).to_json())
    step = {"forward": {"median_ms": 1.0, "iqr_ms": 0.1, "min_ms": 0.9, "runs": 10}, "batch": 1}
    saved = tmp_path / "s.json"
    saved.write_text(json.dumps({**data, "timing": {"step": step, "timed_on": "cpu", "dtype": "float32", "threads": 2}}))
    refuses(lambda: load(saved), "timing.step.forward_backward: missing", ProfileFileError)
    cut = {"step": None, "timed_on": "cpu", "dtype": "float32", "threads": 2, "interrupted": True}
    saved.write_text(json.dumps({**data, "timing": cut}))  # Ctrl-C before the step was timed: the count stands
    assert load(saved).totals["backward_macs"] == data["totals"]["backward_macs"]
