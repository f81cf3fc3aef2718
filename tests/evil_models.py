"""Hostile models: names that try to inject markup into reports, user code that tries to
end the run, structures and names that no report can hold."""

from __future__ import annotations

import os
import sys
import time
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
