"""Per-layer time by replay: each leaf module timed on the input it really received.

Why replay beside the profiler's view in place (``costlens/timing/trace.py``):
synchronizing inside forward hooks measures launch overhead on a GPU and one noisy
sample on a CPU, and the profiler costs a few microseconds per op. Replay captures every
leaf call's inputs in one forward, then times each leaf alone under
``torch.utils.benchmark.Timer`` (on the run's thread count), so each layer gets a median,
an interval and an IQR over many runs, with synchronization only around blocks of runs.
Leaf calls that are the same computation (same module configuration, parameter
shapes and input shapes, strides and dtypes — ResNet's repeated blocks) are timed
once and share the figures.

What replay cannot see is time spent outside leaf modules — functional ops in a
parent's forward (a residual add), Python between layers — and what a compiler
fuses across layers; the sum of the layers beside the end-to-end time shows it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from costlens.timing.latency import Forward, time_fixed
from costlens.timing.stats import Stats


@dataclass
class LeafCall:
    """One call of a leaf module: where it ran, and which computation it was."""

    path: str
    call: int
    key: tuple[Any, ...]


@dataclass
class Captured:
    """Every leaf call of one forward, and one replayable input per distinct computation."""

    calls: list[LeafCall]
    replays: dict[tuple[Any, ...], Forward]


def _signature(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return ("T", tuple(value.shape), value.stride(), value.dtype, value.device.type)
    if isinstance(value, (tuple, list)):
        return tuple(_signature(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _signature(v)) for k, v in value.items())
    return repr(value)


def _clone(value: Any) -> Any:
    """A copy that later in-place ops of the forward cannot change."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_clone(v) for v in value)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


def _computation(module: nn.Module, args: tuple, kwargs: dict) -> tuple[Any, ...]:
    state = tuple((name, tuple(t.shape), t.dtype) for name, t in module.state_dict(keep_vars=True).items())
    return (type(module), module.extra_repr(), module.training, state, _signature(args), _signature(kwargs))


def capture(model: nn.Module, forward: Forward) -> Captured:
    """Run ``forward`` once, recording each leaf call and a copy of each distinct input."""
    paths = {id(m): p for p, m in model.named_modules()}
    counts: Counter = Counter()
    captured = Captured([], {})

    def record(module: nn.Module, args: tuple, kwargs: dict) -> None:
        path = paths[id(module)]
        key = _computation(module, args, kwargs)
        captured.calls.append(LeafCall(path, counts[path], key))
        counts[path] += 1
        if key not in captured.replays:
            captured.replays[key] = Forward(module, _clone(args), _clone(kwargs))

    handles = [m.register_forward_pre_hook(record, with_kwargs=True)
               for m in model.modules() if next(m.children(), None) is None]
    try:
        with torch.no_grad():
            forward()
    finally:
        for handle in handles:
            handle.remove()
    return captured


@dataclass(frozen=True)
class LayerTimes:
    """Stats of every timed leaf call, keyed by (path, call), and whether Ctrl-C cut it short."""

    stats: dict[tuple[str, int], Stats]
    distinct: int  # computations timed (replay) or leaf calls traced (trace)
    interrupted: bool
    method: str = "replay"
    error: str | None = None  # why there are no per-layer times (the end-to-end figures stand)


def failed(method: str, why: str) -> LayerTimes:
    """No per-layer times by ``method``, and why."""
    return LayerTimes({}, 0, False, method, why)


def time_layers(captured: Captured, *, threads: int, min_run_time: float = 0.05,
                tick: Callable[[], None] | None = None) -> LayerTimes:
    """Stats of every leaf call, each computation timed on ``threads`` threads; a KeyboardInterrupt
    keeps what was measured so far; a leaf that raises when replayed leaves no per-layer times
    (a sum over some leaves would mislead) and says which."""
    by_key: dict[tuple[Any, ...], Stats] = {}
    interrupted = False
    try:
        with torch.no_grad():
            for key, replay in captured.replays.items():
                try:
                    replay()  # warm this shape up on its own
                    by_key[key] = time_fixed(replay, threads, min_run_time)
                except Exception as error:  # the user's leaf, replayed alone
                    path = next((c.path for c in captured.calls if c.key == key), "?")
                    return failed("replay", f"{path or '<root>'} raised {type(error).__name__}: "
                                            f"{_first_line(error)} when replayed alone")
                if tick:
                    tick()
    except KeyboardInterrupt:
        interrupted = True
    stats = {(c.path, c.call): by_key[c.key] for c in captured.calls if c.key in by_key}
    return LayerTimes(stats, len(by_key), interrupted)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
