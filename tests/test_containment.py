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

from costlens import api, budget, inputs, memory
from costlens.errors import InputShapeError, ModelError
from costlens.models import user_code


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


def test_the_memory_a_run_needs_by_hand(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    counted = zoo_profile("conv5x5")  # 1x192x28x28 -> 32 channels, 5x5
    weights = (5 * 5 * 192 * 32 + 32) * 4  # 614,528 bytes
    alive = (192 + 32) * 28 * 28 * 4  # the input and the conv's output at once: 702,464 bytes
    assert memory.needed(counted)[0] == weights + alive == 1_316_992
    assert memory.needed(counted, batch=4)[0] == weights + 4 * alive == 3_424_384
    assert memory.needed(counted, held=weights)[0] == alive  # weights already on the device


class Fan(nn.Module):
    """Four 64 MB branches concatenated: 512 MB at the end, while any one layer needs 80 MB."""

    def __init__(self) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Conv2d(16, 64, 3, padding=1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class ValueReadingFan(Fan):
    """A Fan whose forward reads its input's values with tolist(), which no meta trace can answer
    (count/values.py), so it cannot be counted on meta beforehand."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x[0, 0, 0, :1].tolist() == [float("inf")]:
            raise AssertionError("never")
        return super().forward(x)


def test_a_cpu_forward_beyond_free_memory_is_refused_with_its_counted_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    # input 16·512·512·4 = 16 MiB; four branches of 64·512·512·4 = 64 MiB each, alive until the
    # concatenation writes 256 MiB: 16 + 4·64 + 256 = 528 MiB, more than 0.9 of the 200 MiB said free
    monkeypatch.setattr(memory, "available", lambda device: 200 * 2**20)
    with pytest.raises(InputShapeError, match=r"cannot run the forward on cpu: it needs 554 MB"):  # 528 MiB
        api.profile(Fan(), (1, 16, 512, 512), device="cpu")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA counts anonymous mappings on Linux")
def test_the_command_lines_cap_fails_one_allocation_where_nothing_could_be_estimated(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the forward reads a value, so it cannot be counted on meta first: only the cap stands between
    # it and the machine. Each branch's 64 MiB is above glibc's largest mmap threshold (32 MiB), so
    # each is a fresh mapping that RLIMIT_DATA counts; 200 MiB are said free, 528 MiB are needed.
    monkeypatch.setattr(memory, "available", lambda device: 200 * 2**20)
    monkeypatch.setattr(memory, "_CAPPING", [True])  # what the command line turns on for its own process
    before = resource.getrlimit(resource.RLIMIT_DATA)
    with pytest.raises(ModelError, match="can't allocate memory"):
        api.profile(ValueReadingFan(), (1, 16, 512, 512), device="cpu")
    assert resource.getrlimit(resource.RLIMIT_DATA) == before
    assert api.profile(Fan(), (1, 16, 8, 8), device="cpu").totals["macs"] == 4 * 64 * 8 * 8 * 16 * 9  # 589,824


def test_a_library_call_leaves_the_process_limits_and_exits_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from costlens import models

    # a command run in this process by CliRunner turned both on for it, as the command line does
    monkeypatch.setattr(models, "_HARD_EXITS_CONTAINED", [False])
    monkeypatch.setattr(memory, "_CAPPING", [False])
    before = resource.getrlimit(resource.RLIMIT_DATA), os._exit, os.abort
    seen = []

    class Looks(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((resource.getrlimit(resource.RLIMIT_DATA), os._exit, os.abort))
            return x * 2

    api.profile(Looks(), (1, 4), device="cpu")
    assert seen and all(found == before for found in seen)


def test_the_input_check_names_both_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available", lambda device: 10**9)
    with pytest.raises(InputShapeError, match=r"cannot allocate a 1x3x20000x20000 float32 input on cpu: "
                                                     r"it needs 4.8 GB and 1 GB is available"):
        api.profile("vgg16", (1, 3, 20000, 20000), device="cpu")  # 3·20000²·4 = 4,800,000,000 bytes


def test_a_tensor_already_on_the_device_is_not_counted_again(monkeypatch: pytest.MonkeyPatch) -> None:
    given = torch.zeros(1, 3, 64, 64)  # 49,152 bytes, already allocated
    monkeypatch.setattr(memory, "available", lambda device: 1000)
    assert inputs.input_bytes(given, batch=None, device=torch.device("cpu"), dtype=torch.float32) == (49152, 0)


def test_os_exit_inside_user_code_is_a_model_error_and_the_real_one_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from costlens import models

    monkeypatch.setattr(models, "_HARD_EXITS_CONTAINED", [True])  # what the command line turns on for its process
    real = os._exit
    with pytest.raises(ModelError, match=r"^the forward called os._exit\(5\); user code cannot end"), \
            user_code("the forward"):
        with user_code("a nested factory"):
            pass
        assert os._exit is not real  # still replaced after the inner block ended
        os._exit(5)
    assert os._exit is real and os.abort.__module__ == "posix"  # both restored once no user code runs
