"""Per-layer time in place: the real forward run several times, its time attributed to module calls.

Replay (``costlens/timing/layers.py``) times each leaf alone, many times, on a copy of its
input: precise, but blind to what the layer does inside the real forward — fusion by a
compiler, launch gaps between kernels, the caches the previous layer left warm or cold.
This method runs the real forward with a forward pre-hook and a forward hook on every leaf
module, which mark where each call begins and ends, and gives each call:

* on CUDA, the time of its kernels: the forward runs under ``torch.autograd.profiler.profile``,
  the hooks open and close a ``record_function`` range around the call, and the call gets
  the device time of every kernel launched by an op inside its range
  (``FunctionEvent.device_time_total``) — GPU work, not Python or launches, so the sum over
  layers beside a CUDA graph's replay shows how much of the forward the kernels explain;
* on CPU, where ops run synchronously, the wall time between the hooks
  (``time.perf_counter_ns``): what the layer cost in place. No profiler: its cost per op
  (microseconds each) would land inside the layers' times; the hooks' own cost, a
  couple of clock reads, stays outside them.

Each repetition is one sample per call, so every layer gets a median, an interval and an
IQR as end-to-end time does. Time outside leaf modules (functional ops in a parent's
forward, Python between layers) is attributed to no layer: the sum against end to end
shows it.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from costlens.timing.latency import Forward
from costlens.timing.layers import LayerTimes
from costlens.timing.stats import Stats, from_samples

RANGE_PREFIX = "costlens.layer#"
MIN_REPEATS, MAX_REPEATS = 6, 200


def repeats_for(seconds: float, forward_ms: float | None) -> int:
    """How many forwards fit in ``seconds`` (MIN_REPEATS to MAX_REPEATS)."""
    if not forward_ms:
        return MIN_REPEATS
    return int(min(MAX_REPEATS, max(MIN_REPEATS, seconds * 1e3 / forward_ms)))


class _Marks:
    """Forward hooks on every leaf module marking where each call begins and ends: a profiler range
    on CUDA (``ranged``), clock readings on CPU."""

    def __init__(self, model: nn.Module, ranged: bool) -> None:
        self.ranged = ranged
        self.paths = {id(m): p for p, m in model.named_modules()}
        self.calls: list[tuple[str, int]] = []  # (path, call) of each mark, by its index
        self.counts: Counter = Counter()
        self.open: list[tuple[int, Any]] = []  # (index, profiler range or start time) of calls in progress
        self.seconds: dict[tuple[str, int], list[float]] = defaultdict(list)  # CPU: each call's wall times
        leaves = [m for m in model.modules() if next(m.children(), None) is None]
        self.handles = [h for m in leaves for h in (m.register_forward_pre_hook(self.enter),
                                                    m.register_forward_hook(self.leave))]

    def new_forward(self) -> None:
        self.counts.clear()

    def enter(self, module: nn.Module, args: Any) -> None:
        path = self.paths.get(id(module), "?")
        self.calls.append((path, self.counts[path]))
        self.counts[path] += 1
        index = len(self.calls) - 1
        if self.ranged:
            from torch.autograd.profiler import record_function

            scope = record_function(f"{RANGE_PREFIX}{index}")
            scope.__enter__()
            self.open.append((index, scope))
        else:
            self.open.append((index, time.perf_counter_ns()))  # the last thing before the call's forward

    def leave(self, module: nn.Module, args: Any, output: Any) -> None:
        ended = time.perf_counter_ns()  # the first thing after it
        if not self.open:
            return
        index, mark = self.open.pop()
        if self.ranged:
            mark.__exit__(None, None, None)
        else:
            self.seconds[self.calls[index]].append((ended - mark) / 1e9)

    def remove(self) -> None:
        while self.open:  # a forward that raised left calls open
            _, mark = self.open.pop()
            if self.ranged:
                mark.__exit__(None, None, None)
        for handle in self.handles:
            handle.remove()


def trace_layers(model: nn.Module, forward: Forward, device: torch.device, repeats: int,
                 tick: Callable[[], None] | None = None, profiler: bool | None = None) -> LayerTimes:
    """Stats of every leaf call of ``forward`` from ``repeats`` forwards in place (see the module's docstring).
    ``profiler``: attribute the profiler's events (None: on CUDA only); on CPU a range's events give its
    wall time, profiler overhead included (the attribution is the same as CUDA's, which tests can run)."""
    from costlens.timing.latency import synchronize
    from costlens.timing.profiler import profiled

    marks = _Marks(model, ranged=device.type == "cuda" if profiler is None else profiler)
    try:
        with torch.no_grad():
            forward()  # hooks in place, marks not kept: the first call's own costs stay out
            synchronize()
            marks.calls.clear()
            marks.seconds.clear()
            kernels = "cuda" if device.type == "cuda" else None
            with profiled(use_device=kernels) if marks.ranged else _nothing() as recorded:
                for _ in range(repeats):
                    marks.new_forward()
                    forward()
                    if tick:
                        tick()
                synchronize()
    finally:
        marks.remove()
    if recorded is not None:
        stats = attributed(recorded.function_events, marks.calls, kernels=device.type == "cuda")
    else:
        stats = {key: from_samples(found, runs=len(found)) for key, found in marks.seconds.items()}
    return LayerTimes(stats, len(set(marks.calls)), interrupted=False, method="trace")


class _nothing:  # noqa: N801 - a stand-in for the profiler's context on CPU
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def attributed(events: list[Any], calls: list[tuple[str, int]], kernels: bool = True) -> dict[tuple[str, int], Stats]:
    """Each (path, call)'s Stats over its profiler ranges: the device time of the kernels inside
    (``kernels``), else the range's wall time."""
    from torch.autograd import DeviceType

    samples: dict[tuple[str, int], list[float]] = defaultdict(list)
    for event in events:
        name = event.name
        if not name.startswith(RANGE_PREFIX) or getattr(event, "device_type", None) != DeviceType.CPU:
            continue  # the device's copy of a user range (gpu_user_annotation) carries no children
        index = int(name[len(RANGE_PREFIX):])
        if index < len(calls):
            samples[calls[index]].append((event.device_time_total if kernels else event.cpu_time_total) / 1e6)
    return {key: from_samples(found, runs=len(found)) for key, found in samples.items()}
