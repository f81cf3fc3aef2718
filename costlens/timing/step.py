"""The measured time of one training step: forward, backward and the optimizer's update.

The step timed is the one ``costlens/count/training.py`` counts: the model in training
mode with real random weights, ``loss = sum of the outputs``, ``loss.backward()``, then
the real ``torch.optim`` optimizer's ``step()`` (gradients set to None before each step,
frozen parameters left without gradients). Backward cannot be run again without a new
forward, so three statements are timed, interleaved round by round with
``torch.utils.benchmark``: the forward that records the graph, forward + backward, and
the whole step. Backward and update are the differences of their medians.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from costlens.errors import CostlensError, ModelError
from costlens.inputs import Inputs, prepare
from costlens.models import raised_at
from costlens.timing.device import DeviceError
from costlens.timing.latency import is_out_of_memory, timer, timer_threads, using_threads
from costlens.timing.memory import peak_memory
from costlens.timing.stats import Stats, Stopped, from_measurements

ROUNDS = 5  # interleaved rounds of the three statements
WARMUP_STEPS = 3  # optimizer state created, allocator and caches warm


@dataclass(frozen=True)
class StepTimes:
    """Medians of the three timed statements, the step's measured peak memory, the threads the
    timers ran on, and whether Ctrl-C cut the rounds short (the rounds done are kept)."""

    forward: Stats
    forward_backward: Stats
    step: Stats
    batch: int
    peak_bytes: int | None
    threads: int = 1
    interrupted: bool = False

    def totals(self) -> dict[str, float]:
        """The catalogue's step metrics (``costlens/metrics.py``)."""
        found: dict[str, float] = {
            "step_ms": self.step.median_ms,
            "step_forward_ms": self.forward.median_ms,
            "step_backward_ms": max(0.0, self.forward_backward.median_ms - self.forward.median_ms),
            "step_update_ms": max(0.0, self.step.median_ms - self.forward_backward.median_ms),
            "step_throughput": self.batch / (self.step.median_ms / 1e3),
        }
        if self.peak_bytes is not None:
            found["step_peak_memory_bytes"] = self.peak_bytes
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"forward": self.forward.to_dict(), "forward_backward": self.forward_backward.to_dict(),
                "step": self.step.to_dict(), "batch": self.batch, "threads": self.threads,
                "interrupted": self.interrupted, "peak_memory_bytes": self.peak_bytes,
                "method": "three statements timed interleaved (torch.utils.benchmark); backward = "
                          "forward+backward - forward, update = step - forward+backward (medians)"}


def _loss(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    """The loss the counted step uses (``costlens/count/training.py``): the sum of the outputs."""
    from costlens.count.training import differentiable_outputs

    found = differentiable_outputs(model(*args, **kwargs))
    if not found:
        raise DeviceError("the model returned no tensor that needs a gradient: there is no step to time")
    return sum((t.sum() for t in found), torch.zeros((), device=found[0].device, dtype=found[0].dtype))


def _statements(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                optimizer: torch.optim.Optimizer) -> list[Callable[[], None]]:
    def forward() -> None:
        optimizer.zero_grad(set_to_none=True)
        _loss(model, args, kwargs)

    def forward_backward() -> None:
        optimizer.zero_grad(set_to_none=True)
        _loss(model, args, kwargs).backward()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        _loss(model, args, kwargs).backward()
        optimizer.step()

    return [forward, forward_backward, step]


def time_step(build: Callable[[torch.device], nn.Module], inputs: Inputs, *, batch: int, device: torch.device,
              dtype: torch.dtype, optimizer: str, frozen: set[str], round_time: float = 0.2,
              threads: int | None = None) -> StepTimes:
    """Time one training step of the model ``build`` makes on ``device`` on ``threads`` threads (torch's
    count when None); ``frozen`` names the parameters that get no gradient."""
    chosen = threads or torch.get_num_threads()
    with using_threads(chosen):
        return _time_step(build, inputs, batch=batch, device=device, dtype=dtype, optimizer=optimizer, frozen=frozen,
                          round_time=round_time, threads=chosen)


def _time_step(build: Callable[[torch.device], nn.Module], inputs: Inputs, *, batch: int, device: torch.device,
               dtype: torch.dtype, optimizer: str, frozen: set[str], round_time: float, threads: int) -> StepTimes:
    from costlens.count.training import OPTIMIZER_OF

    model = build(device).to(dtype=dtype).train()
    for name, parameter in model.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    if not any(True for _ in model.parameters()):
        raise DeviceError("the model has no parameters: a training step would update nothing (there is no step to time)")
    if not params:
        raise DeviceError("every parameter is frozen: there is no step to time")
    prepared = prepare(inputs, batch=batch, device=device, dtype=dtype, argument="inputs")
    statements = _statements(model, tuple(prepared.args), dict(prepared.kwargs), OPTIMIZER_OF[optimizer](params))
    found: list[list[Any]] = [[], [], []]
    interrupted, peak = False, None
    try:
        for _ in range(WARMUP_STEPS):
            statements[2]()
        # what one step needs beyond what was allocated before it (gradients and state exist by then)
        peak = peak_memory(statements[2], device, grad=True)
        timers = [timer(run, threads, label) for run, label in zip(statements, ("forward", "forward+backward", "step"))]
        for _ in range(ROUNDS):
            for timed, measurements in zip(timers, found):
                measurements.append(timed.blocked_autorange(min_run_time=round_time))
    except KeyboardInterrupt:
        whole_rounds = len(found[2])  # the statements of a round cut short are left out
        if not whole_rounds:
            raise
        found = [m[:whole_rounds] for m in found]
        interrupted = True
    except CostlensError:
        raise
    except Exception as error:  # the user's forward or backward, the optimizer, the allocator
        if is_out_of_memory(error):
            raise DeviceError(f"one training step at batch {batch} does not fit on {device.type}: "
                              "use a smaller batch or input") from error
        text, at = str(error).strip(), raised_at(error)
        raise ModelError(f"the training step raised {type(error).__name__}: "
                         f"{text.splitlines()[0] if text else type(error).__name__} (while it was timed at batch "
                         f"{batch} on {device.type}{f'; {at}' if at else ''})") from error
    stopped = Stopped.INTERRUPTED if interrupted else Stopped.ROUNDS
    forward, forward_backward, whole = (from_measurements(m, stopped) for m in found)
    used = {timer_threads(m) for ms in found for m in ms}
    return StepTimes(forward, forward_backward, whole, batch=batch, peak_bytes=peak,
                     threads=used.pop() if len(used) == 1 else threads, interrupted=interrupted)
