"""End-to-end time of a forward pass: latency with honest statistics, throughput, peak memory.

``torch.utils.benchmark.Timer`` does the timing: it synchronizes CUDA around each
block of runs (never inside the forward), picks the number of runs per block, and
reports the median and IQR over blocks. Every input shape is warmed up first. Several
models are timed interleaved, round by round, so that drift of a noisy machine hits
them alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from costlens.timing.stats import Stats, merged

WARMUP_RUNS = 3


@dataclass(frozen=True)
class Forward:
    """A model on its device with its inputs: one thing to time."""

    model: nn.Module
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def __call__(self) -> Any:
        return self.model(*self.args, **self.kwargs)


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, a MemoryError, or an allocator's 'out of memory' RuntimeError."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def warm_up(forward: Forward, runs: int = WARMUP_RUNS) -> float:
    """Run ``forward`` a few times (allocator, cudnn autotuning, caches); seconds of the first run."""
    started = time.perf_counter()
    with torch.no_grad():
        forward()
        _synchronize()
        first = time.perf_counter() - started
        for _ in range(runs - 1):
            forward()
    _synchronize()
    return first


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timer(forward: Forward, label: str) -> Any:
    from torch.utils.benchmark import Timer

    return Timer("forward()", globals={"forward": forward}, label=label)


def measure(forward: Forward, *, min_run_time: float = 0.5, max_run_time: float = 10.0,
            threshold: float = 0.03) -> Stats:
    """Latency of ``forward``: adaptive repetition until IQR/median is under ``threshold``
    (or ``max_run_time`` passes)."""
    with torch.no_grad():
        found = _timer(forward, "latency").adaptive_autorange(
            threshold=threshold, min_run_time=min_run_time, max_run_time=max_run_time)
    return merged([found])


def measure_interleaved(forwards: Sequence[Forward], *, rounds: int = 7, round_time: float = 0.2,
                        tick: Callable[[], None] | None = None) -> list[Stats]:
    """Latencies of several forwards timed round-robin (``rounds`` blocks each)."""
    timers = [_timer(f, f"model {i}") for i, f in enumerate(forwards)]
    found: list[list[Any]] = [[] for _ in forwards]
    with torch.no_grad():
        for _ in range(rounds):
            for i, timer in enumerate(timers):
                found[i].append(timer.blocked_autorange(min_run_time=round_time))
                if tick:
                    tick()
    return [merged(m) for m in found]


def peak_memory(forward: Forward, device: torch.device) -> int | None:
    """Bytes the forward needs beyond what was allocated before it: CUDA's peak allocated
    memory, or on cpu the growth of the resident set's high-water mark (None if unknown)."""
    with torch.no_grad():
        if device.type == "cuda":
            _synchronize()
            before = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            forward()
            _synchronize()
            return int(torch.cuda.max_memory_allocated(device) - before)
        if not _reset_high_water_mark():
            return None
        resident = _status_bytes("VmRSS")
        forward()
        high = _status_bytes("VmHWM")
    return None if resident is None or high is None else max(0, high - resident)


def _reset_high_water_mark() -> bool:
    """Linux resets VmHWM to the current RSS when '5' is written to clear_refs."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_bytes(field: str) -> int | None:
    from costlens.memory import proc_kib

    return proc_kib("/proc/self/status", field)
