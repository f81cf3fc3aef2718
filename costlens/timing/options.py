"""How to time: ``TimingOptions``, each field checked where it is made.

Every value is checked when the options are made (``__post_init__``): a bad one is a
one-line ``InputShapeError`` naming the option as a user of the command line types it
(``--threads``, ``--layer-time``), since the CLI and the API both build these. Options
that make no sense together are refused by ``check()``, which the CLI and the API call
on what the user asked; library code that narrows options (an ensemble or a sweep timed
end to end only) does not trip it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from costlens.errors import InputShapeError

LAYER_METHODS = ("replay", "trace", "both")
DEFAULT_LAYER_TIME = 0.05
RATE_RANGE = (1e3, 1e21)  # the peaks and bandwidths a user may state (costlens/timing/description.py)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class TimingOptions:
    """How to time: where, on how many threads, at which batch sizes, and how long to spend."""

    device: str = "auto"
    batches: tuple[int, ...] = ()  # empty: the profile's own batch size
    threads: int | None = None  # None: torch.get_num_threads(), the count the user's torch runs on
    compile: bool = False
    channels_last: bool = False
    cuda_graphs: bool = False  # also time replays of the forward captured once as a CUDA graph
    layers: bool = True
    layer_time_method: str = "replay"  # "replay" each leaf alone, "trace" the forward in place, or "both"
    layer_time: float | None = None  # seconds of runs per distinct leaf computation (None: DEFAULT_LAYER_TIME)
    latency_time: float = 0.5  # at least this many seconds of runs end to end
    latency_cap: float = 10.0  # at most this many seconds per model and batch size
    precision: float = 0.02  # stop once the median's 95% interval is within this share of it
    device_file: str | None = None
    peak_flops: float | None = None
    bandwidth: float | None = None
    recalibrate: bool = False
    progress: bool | None = None  # None: a bar on stderr when it is a terminal
    calibration_progress: Callable[[str], None] | None = None  # hears what a calibration measures

    def __post_init__(self) -> None:
        _device(self.device)
        _batches(self.batches)
        if self.threads is not None:
            _whole("--threads", self.threads, 1, usable_cpus(), "the CPUs this process may use")
        for name, value in (("--compile", self.compile), ("--channels-last", self.channels_last),
                            ("--cuda-graphs", self.cuda_graphs), ("--no-layers", not self.layers),
                            ("--recalibrate", self.recalibrate)):
            if not isinstance(value, bool):
                raise InputShapeError(f"{name}: expected true or false, got {value!r}")
        if self.layer_time_method not in LAYER_METHODS:
            raise InputShapeError(f"--layer-time-method: expected {', '.join(LAYER_METHODS)}, "
                                  f"got {_shown(self.layer_time_method)}")
        if self.layer_time is not None:
            _seconds("--layer-time", self.layer_time, 0.001, 60)
        _seconds("--latency-time", self.latency_time, 0.001, 600)
        _seconds("--latency-cap", self.latency_cap, 0.001, 3600)
        _fraction("--precision", self.precision, 0.001, 0.5)
        for name, rate in (("--peak-flops", self.peak_flops), ("--bandwidth", self.bandwidth)):
            if rate is not None:
                _rate(name, rate)
        if self.device_file is not None and not isinstance(self.device_file, (str, os.PathLike)):
            raise InputShapeError(f"--device-file: expected a path, got {_shown(self.device_file)}")

    @property
    def layer_seconds(self) -> float:
        """Seconds of runs per distinct leaf computation."""
        return DEFAULT_LAYER_TIME if self.layer_time is None else self.layer_time

    def check(self) -> TimingOptions:
        """These options, or a one-line InputShapeError naming two that make no sense together."""
        conflicts = [
            (self.cuda_graphs and self.compile, "--cuda-graphs with --compile: torch.compile captures CUDA graphs "
                                                "itself (mode='reduce-overhead'); time one or the other"),
            (self.cuda_graphs and self.device == "cpu", "--cuda-graphs needs CUDA, and --device is cpu"),
            (not self.layers and self.layer_time is not None, "--layer-time with --no-layers: no layer is timed"),
            (not self.layers and self.layer_time_method != "replay",
             "--layer-time-method with --no-layers: no layer is timed"),
            (self.recalibrate and self.device_file is not None,
             "--recalibrate with --device-file: the file describes the device, nothing is calibrated"),
            (self.recalibrate and self.peak_flops is not None and self.bandwidth is not None,
             "--recalibrate with --peak-flops and --bandwidth: they describe the device, nothing is calibrated"),
            (self.latency_cap < self.latency_time, f"--latency-cap ({self.latency_cap:g} s) is below --latency-time "
                                                   f"({self.latency_time:g} s)"),
        ]
        for conflict, message in conflicts:
            if conflict:
                raise InputShapeError(message)
        return self


def _shown(value: object) -> str:
    from costlens.sanitize import terminal_text

    text = terminal_text(repr(value))
    return text if len(text) <= 60 else text[:60] + "..."


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputShapeError(f"{name}: expected a number, got {_shown(value)}")
    try:
        found = float(value)
    except OverflowError:
        raise InputShapeError(f"{name}: {_shown(value)} is too large") from None
    if not math.isfinite(found):
        raise InputShapeError(f"{name}: expected a finite number, got {_shown(value)}")
    return found


def _seconds(name: str, value: object, low: float, high: float) -> None:
    found = _number(name, value)
    if not low <= found <= high:
        raise InputShapeError(f"{name}: expected seconds from {low:g} to {high:g}, got {_shown(value)}")


def _fraction(name: str, value: object, low: float, high: float) -> None:
    found = _number(name, value)
    if not low <= found <= high:
        raise InputShapeError(f"{name}: expected a fraction of the median from {low:g} to {high:g} "
                              f"(0.02 is 2%), got {_shown(value)}")


def _rate(name: str, value: object) -> None:
    found = _number(name, value)
    if not RATE_RANGE[0] <= found <= RATE_RANGE[1]:
        raise InputShapeError(f"{name}: expected a rate from 1k to 1e21 per second, got {_shown(value)}")


def _whole(name: str, value: object, low: int, high: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputShapeError(f"{name}: expected a whole number, got {_shown(value)}")
    if not low <= value <= high:
        raise InputShapeError(f"{name}: expected {low} to {high} ({high} is {what}), got {value}")


def _device(value: object) -> None:
    if not isinstance(value, str):
        raise InputShapeError(f"--device: expected auto, cpu or cuda, got {_shown(value)}")
    kind, _, index = value.partition(":")
    if kind == "meta":
        raise InputShapeError("--time needs a real device: --device auto, cpu or cuda (meta has no arithmetic)")
    if kind not in ("auto", "cpu", "cuda") or (index and (kind != "cuda" or not index.isascii() or not index.isdigit())):
        raise InputShapeError(f"--device: expected auto, cpu, cuda or cuda:N to time on, got {_shown(value)}")


def _batches(value: object) -> None:
    if not isinstance(value, tuple):
        raise InputShapeError(f"--batch: expected a tuple of batch sizes, got {_shown(value)}")
    seen: set[int] = set()
    for batch in value:
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 2**31:
            raise InputShapeError(f"--batch: batch sizes are whole numbers from 1, got {_shown(batch)}")
        if batch in seen:
            raise InputShapeError(f"--batch: {batch} is given twice; each batch size is timed once")
        seen.add(batch)
