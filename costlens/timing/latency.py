"""End-to-end time of a forward pass: the median with a confidence interval, on the user's threads.

``torch.utils.benchmark.Timer`` does the timing: it synchronizes CUDA around each block of
runs (never inside the forward) and picks the number of runs per block. It runs on ONE
thread unless ``num_threads`` is given, so every timer here gets the thread count the run
uses (``torch.get_num_threads()`` or the user's choice), and ``using_threads`` sets the same
count around warm-ups, captures and memory runs. Several statements are timed
interleaved, round by round, so that drift of a noisy machine hits them alike; the rounds
go on until every statement's interval for the median is narrow enough or the time cap
passes, and each statement's Stats say which happened.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from costlens.timing.stats import Stats, Stopped, from_measurements

WARMUP_RUNS = 3
MIN_SAMPLES = 6  # the fewest blocks whose order statistics give a 95% interval for the median


@dataclass(frozen=True)
class Forward:
    """A model on its device with its inputs: one thing to time."""

    model: nn.Module | Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def __call__(self) -> Any:
        return self.model(*self.args, **self.kwargs)


@dataclass(frozen=True)
class Rounds:
    """How long to time: at least ``min_time`` s and MIN_SAMPLES blocks per statement, then until
    the interval's half-width is under ``precision`` of the median, at most ``cap`` s per statement."""

    min_time: float = 0.5
    cap: float = 10.0
    precision: float = 0.02
    round_time: float = 0.2  # seconds of blocks per statement per round


@contextlib.contextmanager
def using_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` inside, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, a MemoryError, or an allocator's 'out of memory' RuntimeError."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def warm_up(forward: Callable[[], Any], runs: int = WARMUP_RUNS) -> float:
    """Run ``forward`` a few times (allocator, cudnn autotuning, caches); seconds of the first run."""
    started = time.perf_counter()
    with torch.no_grad():
        forward()
        synchronize()
        first = time.perf_counter() - started
        for _ in range(runs - 1):
            forward()
    synchronize()
    return first


def synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timer(statement: Callable[[], Any], threads: int, label: str = "latency") -> Any:
    """A ``torch.utils.benchmark.Timer`` of ``statement()`` on ``threads`` threads."""
    from torch.utils.benchmark import Timer

    return Timer("statement()", globals={"statement": statement}, label=label, num_threads=threads)


def timer_threads(measurement: Any) -> int:
    """The thread count a Measurement was taken on (what the Timer set, not what was asked)."""
    return int(measurement.task_spec.num_threads)


class StatementError(Exception):
    """A timed statement raised: which one (its index), and the error (``__cause__``)."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


def measure_interleaved(statements: Sequence[Callable[[], Any]], threads: int, rounds: Rounds,
                        tick: Callable[[], None] | None = None,
                        clock: Callable[[], float] = time.perf_counter) -> tuple[list[Stats], int]:
    """Stats of each statement, timed round-robin until every interval is narrow enough or the
    cap passes; and the thread count the timers ran on. Ctrl-C keeps the rounds already done
    when each statement has a block (its Stats then say "interrupted"), else propagates; a
    statement that raises is a StatementError naming it."""
    timers = [timer(s, threads, f"statement {i}") for i, s in enumerate(statements)]
    found: list[list[Any]] = [[] for _ in statements]
    started = clock()
    stopped = Stopped.TIME_CAP
    with torch.no_grad():
        try:
            while True:
                for index, (timed, measurements) in enumerate(zip(timers, found)):
                    measurements.append(_block(timed, index, rounds.round_time))
                if tick:
                    tick()
                elapsed = clock() - started
                if elapsed >= rounds.min_time * len(timers) and all(_precise(m, rounds) for m in found):
                    stopped = Stopped.INTERVAL
                    break
                if elapsed >= rounds.cap * len(timers):
                    break
        except KeyboardInterrupt:
            if not all(found):
                raise
            stopped = Stopped.INTERRUPTED
    used = {timer_threads(m) for ms in found for m in ms}
    elapsed = clock() - started
    return [replace(from_measurements(ms, stopped), seconds=elapsed) for ms in found], \
        used.pop() if len(used) == 1 else threads


def _block(timed: Any, index: int, seconds: float) -> Any:
    try:
        return timed.blocked_autorange(min_run_time=seconds)
    except Exception as error:  # the user's forward, the allocator
        raise StatementError(index, error) from error


def _precise(measurements: list[Any], rounds: Rounds) -> bool:
    if sum(len(m.raw_times) for m in measurements) < MIN_SAMPLES:
        return False
    return from_measurements(measurements).half_width <= rounds.precision


def measure(statement: Callable[[], Any], threads: int, rounds: Rounds) -> Stats:
    """Stats of one statement (``measure_interleaved`` of one)."""
    stats, _ = measure_interleaved([statement], threads, rounds)
    return stats[0]


def time_fixed(statement: Callable[[], Any], threads: int, min_run_time: float) -> Stats:
    """Stats of one block sequence of at least ``min_run_time`` s (per-layer replay, calibration)."""
    with torch.no_grad():
        return from_measurements([timer(statement, threads, "fixed").blocked_autorange(min_run_time=min_run_time)])
