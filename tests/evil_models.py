"""Hostile models: names that try to inject markup into reports, user code that tries to
end the run, structures and names that no report can hold."""

from __future__ import annotations

import os
import sys
import time
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

EVIL_NAME = "<img src=x onerror=alert(1)>"
EVIL_TYPE = "</script><script>alert(2)</script>"


def build() -> nn.Module:
    model = nn.Sequential()
    model.add_module(EVIL_NAME, nn.Conv2d(3, 4, 3))
    evil_type = type(EVIL_TYPE, (nn.ReLU,), {})
    model.add_module("act", evil_type())
    return model


def example() -> torch.Tensor:
    return torch.randn(1, 3, 8, 8)


# --- User code that tries to end the run (tests/test_hostile.py) ------------------------------


class Boom(BaseException):
    """A user's exception outside the Exception hierarchy, as some frameworks define."""


def exit_zero() -> nn.Module:
    sys.exit(0)


def exit_text() -> nn.Module:
    sys.exit("bye")


def raise_base() -> nn.Module:
    raise Boom("boom")


def raise_interrupt() -> nn.Module:
    raise KeyboardInterrupt


def raise_generator_exit() -> nn.Module:
    raise GeneratorExit


class _Forward(nn.Module):
    """A conv, then a forward step that does ``action`` (on real tensors only when ``real_only``)."""

    def __init__(self, action: Callable[[], None], real_only: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.action, self.real_only = action, real_only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if not self.real_only or y.device.type != "meta":
            self.action()
        return y


def _exit() -> None:
    sys.exit(0)


def _boom() -> None:
    raise Boom("in forward")


def _interrupt() -> None:
    raise KeyboardInterrupt


def _sleep() -> None:
    open("sleeping", "w").close()  # in the working directory: the test's signal to interrupt now
    time.sleep(120)


def forward_exits() -> nn.Module:
    return _Forward(_exit)


def _hard_exit() -> None:
    os._exit(3)


def forward_hard_exits() -> nn.Module:
    return _Forward(_hard_exit)


def abort_at_build() -> nn.Module:
    os.abort()


def forward_raises_base() -> nn.Module:
    return _Forward(_boom)


def forward_interrupts() -> nn.Module:
    return _Forward(_interrupt)


def forward_exits_on_real_tensors() -> nn.Module:
    """Counts on meta; exits when timed or cross-checked on cpu."""
    return _Forward(_exit, real_only=True)


def forward_sleeps() -> nn.Module:
    """A forward that takes two minutes: for Ctrl-C while it runs."""
    return _Forward(_sleep)


# --- Structures and names no report can hold ----------------------------------------------------


def nested_2000() -> nn.Module:
    """A ReLU inside 2,000 nested Sequentials: deeper than Python's recursion limit."""
    model: nn.Module = nn.ReLU()
    for _ in range(2000):
        model = nn.Sequential(model)
    return model


SURROGATE_NAME = "conv\udcff"  # what os.fsdecode gives for the byte 0xff


def surrogate_name() -> nn.Module:
    model = nn.Sequential()
    model.add_module(SURROGATE_NAME, nn.Conv2d(3, 4, 3))
    return model


def surrogate_class_name() -> nn.Module:
    """Python itself refuses a class named with a lone surrogate: the factory fails."""
    return nn.Sequential(type("Act\udcff", (nn.ReLU,), {})())


CONTROL_NAME = "a\x01b\x1b[31m"  # a C0 control and an ESC colour sequence


def control_names() -> nn.Module:
    """A block whose name holds control characters (XML 1.0 cannot carry \\x01)."""
    model = nn.Sequential()
    model.add_module(CONTROL_NAME, nn.Conv2d(3, 4, 3))
    return model


# --- User code that fails or is interrupted while timed (issue 22) -------------------------------


def tiny() -> nn.Module:
    """A conv on 3x8x8 inputs: a model that behaves, beside the others."""
    return nn.Conv2d(3, 4, 3)


class _OnRealCalls(nn.Module):
    """A conv whose forward calls ``action(x, calls)`` on real tensors (the meta count never does)."""

    def __init__(self, action: Callable[[torch.Tensor, int], None]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.action, self.calls = action, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "meta":
            self.calls += 1
            self.action(x, self.calls)
        return self.conv(x)


def _raise_after_ten(x: torch.Tensor, calls: int) -> None:
    if calls > 10:
        raise RuntimeError(f"boom on real call {calls}")


def raises_after_warm_up() -> nn.Module:
    """Its 11th real forward raises: past the warm-up, while it is timed."""
    return _OnRealCalls(_raise_after_ten)


def _interrupt_at_batch_2(x: torch.Tensor, calls: int) -> None:
    if x.shape[0] == 2:
        raise KeyboardInterrupt  # what Ctrl-C raises, at a known moment


def interrupts_at_batch_2() -> nn.Module:
    """Ctrl-C while batch 2 is timed, batch 1 measured already."""
    return _OnRealCalls(_interrupt_at_batch_2)


def _interrupt_now(x: torch.Tensor, calls: int) -> None:
    raise KeyboardInterrupt


def interrupts_on_real_tensors() -> nn.Module:
    """Counts on meta; Ctrl-C as soon as it runs for real (timing)."""
    return _OnRealCalls(_interrupt_now)


def _raise_when_trained(x: torch.Tensor, calls: int) -> None:
    if torch.is_grad_enabled():
        raise RuntimeError("boom in a training step")


def raises_when_trained() -> nn.Module:
    """Counts a training step on meta; raises when the step is timed for real."""
    return _OnRealCalls(_raise_when_trained)


def _sleep_when_trained(x: torch.Tensor, calls: int) -> None:
    if torch.is_grad_enabled():
        _sleep()


def sleeps_when_trained() -> nn.Module:
    """Counts a training step on meta; sleeps when the step is timed for real: for Ctrl-C then."""
    return _OnRealCalls(_sleep_when_trained)


class _Doubles(nn.Module):
    def __init__(self, parent: _ReplayedAlone) -> None:
        super().__init__()
        self.parent = [parent]  # a list: not registered as a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "meta" and not self.parent[0].inside:
            raise RuntimeError("leaf boom: called outside its model")
        return x * 2


class _ReplayedAlone(nn.Module):
    """A leaf that raises when called alone, as per-layer replay calls it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.twice = _Doubles(self)
        self.inside = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inside = True
        try:
            return self.twice(self.conv(x))
        finally:
            self.inside = False


def leaf_raises_when_replayed() -> nn.Module:
    return _ReplayedAlone()


def conv3d() -> nn.Module:
    """A 3-D convolution: 5-D weights and inputs (1x3x4x8x8)."""
    return nn.Conv3d(3, 4, 3)


def no_parameters() -> nn.Module:
    return nn.Sequential(nn.ReLU())


def named_activations() -> nn.Module:
    """Convolutions and activations named act1, act2: 'act*' matches only modules without parameters."""
    return nn.Sequential(OrderedDict([("conv1", nn.Conv2d(3, 4, 3)), ("act1", nn.ReLU()),
                                      ("conv2", nn.Conv2d(4, 4, 3)), ("act2", nn.ReLU())]))


class _Printing(nn.Module):
    def __init__(self, width: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, max(1, round(4 * width)), 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("forward says hello")
        return self.conv(x)


def prints_at_width(width: float = 1.0) -> nn.Module:
    print("factory says hello")
    return _Printing(width)


def exits_at_width(width: float = 1.0) -> nn.Module:
    os._exit(0)


def raises_at_width(width: float = 1.0) -> nn.Module:
    raise ValueError(f"no model at width {width}")


class _Flat(nn.Module):
    """A linear layer on 2-D inputs (batch x 16)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def flat() -> nn.Module:
    return _Flat()
