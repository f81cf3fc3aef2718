"""Small real models for the timing tests: they record what the timing did to them, or stop it."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import torch
from torch import nn

from costlens.timing.measure import TimingOptions


@dataclass(frozen=True)
class ShortCaps(TimingOptions):
    """TimingOptions with short caps, for the options the command line and budgets build in tests:
    the figures are not the point there, and a busy machine would time each model to the 10 s cap."""

    latency_time: float = 0.02
    latency_cap: float = 0.2


def use_short_caps() -> None:
    """Every TimingOptions the command line and budgets make from here on has short caps."""
    import costlens.timing.measure

    costlens.timing.measure.TimingOptions = ShortCaps  # type: ignore[misc]


class ThreadsSeen(nn.Module):
    """Records torch's intra-op thread count at each call on real tensors (counting runs on meta):
    what the timing really ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "meta":
            self.seen.append(torch.get_num_threads())
        return x * 2


class ThreadsModel(nn.Module):
    """A linear layer and a leaf that records the thread count of every call (end to end and replayed)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.probe = ThreadsSeen()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probe(self.fc(x))


class ReluCat(nn.Module):
    """relu(x) then cat([y, y]): allocations known by hand (no weights, no temporaries)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(x)
        return torch.cat([y, y])


class Sleeper(nn.Module):
    """A leaf that takes at least ``seconds`` of wall time in place."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return x + 1


class SleepThenAdd(nn.Module):
    """A slow leaf (20 ms asleep) beside a fast one: attribution must tell them apart."""

    def __init__(self) -> None:
        super().__init__()
        self.slow = Sleeper(0.02)
        self.fast = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fast(self.slow(x))


class _StopWhenCaptured(nn.Module):
    """A leaf that interrupts the run when costlens' per-layer capture hooks it: a real SIGINT to its
    own process (``real_signal``) or the KeyboardInterrupt Python raises for one."""

    def __init__(self, real_signal: bool) -> None:
        super().__init__()
        self.real_signal = real_signal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._forward_pre_hooks:  # the capture hooks every leaf; the end-to-end timing hooks none
            if not self.real_signal:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler raises KeyboardInterrupt here
        return x


class StopsInCapture(nn.Module):
    """A conv (input 1x3x8x8), then a leaf that stops the run during the per-layer capture."""

    def __init__(self, real_signal: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.stop = _StopWhenCaptured(real_signal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stop(self.conv(x))


def stops_in_capture() -> nn.Module:
    """For the command line: a SIGINT during the per-layer capture, as Ctrl-C sends."""
    return StopsInCapture(real_signal=True)


class RaisesOnCall(nn.Module):
    """A conv whose forward raises ValueError on its ``n``-th call on real tensors (counting runs on meta)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.n, self.calls = n, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "meta":
            self.calls += 1
            if self.calls == self.n:
                raise ValueError(f"call {self.n} refused\nsecond line")
        return self.conv(x)


def raises_after_warm_up() -> nn.Module:
    """Raises on the 11th real call: after the warm-up (3 calls) and the memory run (1), while timed."""
    return RaisesOnCall(11)


class _OnlyInsideItsParent(nn.Module):
    def __init__(self, parent: LeafRaisesReplayedAlone) -> None:
        super().__init__()
        self.parent = [parent]  # a list: not a child module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.parent[0].inside:
            raise RuntimeError("called outside the forward")
        return x * 2


class LeafRaisesReplayedAlone(nn.Module):
    """A leaf that works inside the model's forward and raises when replayed alone."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fragile = _OnlyInsideItsParent(self)
        self.inside = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inside = True
        try:
            return self.fragile(self.conv(x))
        finally:
            self.inside = False


class Conv3dNet(nn.Module):
    """A 3-D convolution: its weight is 5-D, which channels-last (4-D) alone cannot hold."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ModeRecorder(nn.Module):
    """Records, on each real forward, whether it ran in training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "meta":
            self.modes.append(self.training)
        return self.conv(x)
