"""Containment of user code and memory, in-process (tests/test_hostile.py has the CLI cases):
what user code may raise, how the budget and timing paths contain it, the forward's memory
floor, and the cap that turns an over-large cpu forward into one error instead of the OOM killer."""

from __future__ import annotations

import resource
import sys
from typing import Any

import pytest
import torch
from torch import nn

from costlens import api, budget, inputs
from costlens.errors import ModelError
from costlens.models import user_code
from costlens.records import LayerCost


@pytest.mark.parametrize(("raised", "message"), [
    (SystemExit(0), "the factory called sys.exit(0); user code cannot end a costlens run"),
    (SystemExit("bye"), "the factory called sys.exit('bye')"),
    (GeneratorExit(), "the factory raised GeneratorExit: GeneratorExit"),
])
def test_user_code_turns_exits_into_model_errors(raised: BaseException, message: str) -> None:
    with pytest.raises(ModelError, match=None) as caught, user_code("the factory"):
        raise raised
    assert message in str(caught.value) and caught.value.__cause__ is raised


@pytest.mark.parametrize("raised", [KeyboardInterrupt(), ValueError("x")])
def test_user_code_lets_ctrl_c_and_exceptions_through(raised: BaseException) -> None:
    with pytest.raises(type(raised)), user_code("the factory"):
        raise raised


def _exits(*args: Any, **kwargs: Any) -> Any:
    sys.exit(4)


def test_timing_is_contained(monkeypatch: pytest.MonkeyPatch) -> None:
    import costlens.timing.measure as measure

    monkeypatch.setattr(measure, "time_profiles", _exits)
    with pytest.raises(ModelError, match=r"while it was timed, called sys.exit\(4\)"):
        api.profile("conv5x5", time=True)


def test_budget_timing_is_contained(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import costlens.timing.measure as measure

    monkeypatch.setattr(measure, "time_profiles", _exits)
    path = tmp_path / "b.toml"
    path.write_text('rules = ["conv5x5.latency_ms <= 2 * lenet5.latency_ms"]\n')
    with pytest.raises(budget.BudgetFileError, match=r"b.toml:1: the model's code, while it was timed, called sys.exit"):
        budget.check(budget.load_budget(path))


def _leaf(inputs: list[list[int]], outputs: list[list[int]], fresh: int, path: str = "x") -> LayerCost:
    return LayerCost(path=path, type="T", depth=1, call=0, leaf=True, input_shapes=inputs, output_shapes=outputs,
                     formula=None, ops={}, values={"activation_bytes": fresh})


def test_forward_floor_by_hand() -> None:
    given = 1 * 3 * 10 * 10 * 4  # the model's input: 1,200 bytes
    layers = [
        _leaf([[1, 3, 10, 10]], [[1, 8, 10, 10]], 3200, "conv"),  # max(1,200, 1,200) + 800·4 = 4,400
        _leaf([[1, 8, 10, 10]], [[1, 8, 10, 10]], 0, "relu"),  # in place: max(1,200, 3,200) + 0 = 3,200
        _leaf([[1, 8, 10, 10]], [[1, 800]], 0, "flatten"),  # a view
        _leaf([[1, 800]], [[1, 16]], 64 + 1000, "fc"),  # temporaries beyond the output are not counted: 3,200 + 64
    ]
    floor, where = api.forward_floor(layers, given, 4)
    assert (floor, where.path if where else None) == (4400, "conv")
    assert api.forward_floor([], given, 4) == (given, None)


class Fan(nn.Module):
    """Four 64 MB branches concatenated: 512 MB at the end, while any one layer needs 80 MB."""

    def __init__(self) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Conv2d(16, 64, 3, padding=1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA counts anonymous mappings on Linux")
def test_a_cpu_forward_beyond_free_memory_fails_one_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    # input 16·512·512·4 = 16 MiB; each branch writes 64·512·512·4 = 64 MiB (above glibc's largest
    # mmap threshold, 32 MiB, so each is a fresh mapping that RLIMIT_DATA counts); the floor is
    # 16 + 64 = 80 MiB, under the 200 MiB said free; the real forward needs 4·64 + 256 MiB
    monkeypatch.setattr(api, "available_memory", lambda device: 200 * 2**20)
    monkeypatch.setattr(inputs, "available_memory", lambda device: 200 * 2**20)
    before = resource.getrlimit(resource.RLIMIT_DATA)
    with pytest.raises(ModelError, match="can't allocate memory"):
        api.profile(Fan(), (1, 16, 512, 512), device="cpu")
    assert resource.getrlimit(resource.RLIMIT_DATA) == before
    assert api.profile(Fan(), (1, 16, 8, 8), device="cpu").totals["macs"] == 4 * 64 * 8 * 8 * 16 * 9  # 589,824


def test_the_input_check_names_both_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "available_memory", lambda device: 10**9)
    with pytest.raises(inputs.InputShapeError, match=r"cannot allocate a 1x3x20000x20000 float32 input on cpu: "
                                                     r"it needs 4.8 GB and 1 GB is available"):
        api.profile("vgg16", (1, 3, 20000, 20000), device="cpu")  # 3·20000²·4 = 4,800,000,000 bytes


def test_a_tensor_already_on_the_device_is_not_counted_again(monkeypatch: pytest.MonkeyPatch) -> None:
    given = torch.zeros(1, 3, 64, 64)  # 49,152 bytes, already allocated
    monkeypatch.setattr(inputs, "available_memory", lambda device: 1000)
    assert inputs.input_bytes(given, batch=None, device=torch.device("cpu"), dtype=torch.float32) == (49152, 0)


def test_os_exit_inside_user_code_is_a_model_error_and_the_real_one_outside() -> None:
    import os

    real = os._exit
    with pytest.raises(ModelError, match=r"^the forward called os._exit\(5\); user code cannot end"), \
            user_code("the forward"):
        with user_code("a nested factory"):
            pass
        assert os._exit is not real  # still replaced after the inner block ended
        os._exit(5)
    assert os._exit is real and os.abort.__module__ == "posix"  # both restored once no user code runs
