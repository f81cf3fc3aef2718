"""Time counted profiles: end-to-end per batch size, every leaf layer, and the roofline.

``time_profiles`` takes profiles already counted (on meta) with a way to build each
model for real, measures them — several models interleaved, so they share the
machine's drift — and returns the profiles with the catalogue's measured metrics
filled in and ``Profile.timing`` saying how they were measured. Ctrl-C keeps what was
measured (``timing["interrupted"]``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from costlens import memory
from costlens.inputs import Inputs, dtype_name, prepare
from costlens.records import LayerCost, Profile
from costlens.timing import roofline
from costlens.timing.device import DeviceError, DeviceFacts, device_facts, resolve_device
from costlens.timing.latency import Forward, is_out_of_memory, measure, measure_interleaved, peak_memory, warm_up
from costlens.timing.layers import LayerTimes, capture, time_layers
from costlens.timing.stats import Stats


@dataclass(frozen=True)
class TimingOptions:
    """How to time: where, at which batch sizes, and how long to spend."""

    device: str = "auto"
    batches: tuple[int, ...] = ()  # empty: the profile's own batch size
    compile: bool = False
    channels_last: bool = False
    layers: bool = True
    layer_time: float = 0.05  # seconds of runs per distinct leaf computation
    latency_time: float = 0.5  # at least this many seconds of runs end to end
    rounds: int = 7  # interleaved rounds when several models are timed together
    device_file: str | None = None
    peak_flops: float | None = None
    bandwidth: float | None = None
    recalibrate: bool = False
    progress: bool | None = None  # None: a bar on stderr when it is a terminal


@dataclass(frozen=True)
class Job:
    """A counted profile, how to build its model on a device, and the inputs it was counted with."""

    counted: Profile
    build: Callable[[torch.device], nn.Module]
    inputs: Inputs


@dataclass
class _Batch:
    """One batch size of one model: what was measured, or why not."""

    batch: int
    stats: Stats | None = None
    peak_bytes: int | None = None
    compile_s: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        stats = self.stats.to_dict() if self.stats else {}
        throughput = self.batch / (self.stats.median_ms / 1e3) if self.stats else None
        return {"batch": self.batch, **stats, "throughput": throughput, "peak_memory_bytes": self.peak_bytes,
                "compile_s": self.compile_s, "error": self.error}


def time_profiles(jobs: Sequence[Job], options: TimingOptions) -> list[Profile]:
    """Each job's profile with measured metrics; models are timed interleaved."""
    device = resolve_device(options.device)
    dtype = getattr(torch, jobs[0].counted.dtype)
    facts = device_facts(device, recalibrate=options.recalibrate, file=options.device_file,
                         peak_flops=options.peak_flops, bandwidth=options.bandwidth)
    batches = options.batches or (jobs[0].counted.input_shape[0] if jobs[0].counted.input_shape else 1,)
    for job in jobs:
        check_fits(job.counted, device, max(batches))
    models = [_real_model(job, device, dtype, options) for job in jobs]
    with _progress(len(jobs) * len(batches), options.progress) as bar:
        results, interrupted = _time_batches(jobs, models, batches, device, dtype, options, bar.update)
        layer_times: list[LayerTimes | None] = [None] * len(jobs)
        if options.layers and not interrupted:
            layer_times = [_time_layers(job, eager, batches[0], device, dtype, options, bar)
                           for job, (eager, _) in zip(jobs, models)]
    interrupted = interrupted or any(t is not None and t.interrupted for t in layer_times)
    return [_timed_profile(job.counted, result, times, facts, device, options, interrupted)
            for job, result, times in zip(jobs, results, layer_times)]


def check_fits(counted: Profile, device: torch.device, batch: int) -> None:
    """Refuse, with the figures, a model whose counted peak at ``batch`` cannot fit (``costlens/memory.py``)."""
    memory.refuse_unless_run_fits(counted, device, f"{counted.model} at batch {batch} cannot be timed on {device.type}",
                                  batch)


def _real_model(job: Job, device: torch.device, dtype: torch.dtype,
                options: TimingOptions) -> tuple[nn.Module, nn.Module]:
    """The model with real weights on ``device`` in ``dtype``: eager, and as timed (compiled or not)."""
    model = job.build(device).eval()
    if any(p.device.type == "meta" for p in model.parameters()):
        raise DeviceError(f"{job.counted.model} has weights on the meta device: timing needs real weights "
                          "(pass a model with weights, or a zoo name or import path)")
    model = model.to(dtype=dtype)
    if options.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    timed: Any = torch.compile(model) if options.compile else model
    return model, timed


def _forward(job: Job, model: nn.Module, batch: int, device: torch.device, dtype: torch.dtype,
             options: TimingOptions) -> Forward:
    prepared = prepare(job.inputs, batch=batch, device=device, dtype=dtype)
    args: tuple[Any, ...] = prepared.args
    kwargs: dict[str, Any] = prepared.kwargs
    if options.channels_last:
        args = tuple(_channels_last(a) for a in args)
        kwargs = {k: _channels_last(v) for k, v in kwargs.items()}
    return Forward(model, args, kwargs)


def _channels_last(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.contiguous(memory_format=torch.channels_last) if tensor.dim() == 4 else tensor


def _time_batches(jobs: Sequence[Job], models: list[tuple[nn.Module, nn.Module]], batches: Sequence[int],
                  device: torch.device, dtype: torch.dtype, options: TimingOptions,
                  tick: Callable[[], Any]) -> tuple[list[list[_Batch]], bool]:
    """Every model at every batch size; an out-of-memory batch is recorded and the rest go on."""
    results: list[list[_Batch]] = [[] for _ in jobs]
    try:
        for batch in batches:
            ready: list[tuple[int, Forward]] = []
            for i, (job, (_, timed)) in enumerate(zip(jobs, models)):
                entry = _Batch(batch)
                results[i].append(entry)
                forward = _prepared(job, timed, entry, device, dtype, options)
                if forward is not None:
                    ready.append((i, forward))
            _measure(ready, results, device, options, tick)
    except KeyboardInterrupt:
        return results, True
    return results, False


def _prepared(job: Job, timed: nn.Module, entry: _Batch, device: torch.device, dtype: torch.dtype,
              options: TimingOptions) -> Forward | None:
    """Inputs built and the forward warmed up; None (with the reason in ``entry``) when it fails."""
    try:
        forward = _forward(job, timed, entry.batch, device, dtype, options)
        if not options.compile:  # a first run (compiling) would measure the compiler's memory
            entry.peak_bytes = peak_memory(forward, device)  # first, before the allocator holds on to memory
        first = warm_up(forward)
        entry.compile_s = first if options.compile else None
        return forward
    except KeyboardInterrupt:
        raise
    except Exception as error:  # the user's forward, the allocator, a kernel missing for a dtype
        entry.error = _reason(error, job.counted.model, entry.batch, dtype, device)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return None


def _reason(error: BaseException, model: str, batch: int, dtype: torch.dtype, device: torch.device) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if is_out_of_memory(error):
        return f"out of memory at batch {batch} on {device.type}"
    if "not implemented for" in first:
        return f"{dtype_name(dtype)} is not supported on {device.type} by an op of {model}: {first}"
    return f"{type(error).__name__}: {first}"


def _measure(ready: list[tuple[int, Forward]], results: list[list[_Batch]], device: torch.device,
             options: TimingOptions, tick: Callable[[], Any]) -> None:
    if len(ready) == 1:
        stats = [measure(ready[0][1], min_run_time=options.latency_time)]
        tick()
    else:
        stats = measure_interleaved([f for _, f in ready], rounds=options.rounds,
                                    round_time=options.latency_time / 2, tick=None)
        for _ in ready:
            tick()
    for (i, forward), found in zip(ready, stats):
        entry = results[i][-1]
        entry.stats = found
        if entry.peak_bytes is None and device.type == "cuda":  # compiled: after warm-up, from CUDA's statistics
            entry.peak_bytes = peak_memory(forward, device)


def _time_layers(job: Job, eager: nn.Module, batch: int, device: torch.device, dtype: torch.dtype,
                 options: TimingOptions, bar: _Bar) -> LayerTimes | None:
    try:
        captured = capture(eager, _forward(job, eager, batch, device, dtype, options))
    except Exception:  # noqa: BLE001 - end-to-end figures stand without per-layer ones
        return None
    bar.grow(len(captured.replays))
    return time_layers(captured, min_run_time=options.layer_time, tick=bar.update)


def _timed_profile(counted: Profile, batches: list[_Batch], times: LayerTimes | None, facts: DeviceFacts,
                   device: torch.device, options: TimingOptions, interrupted: bool) -> Profile:
    layers = _layers_with_times(counted, times, facts) if times is not None else counted.layers
    totals = dict(counted.totals)
    first = batches[0] if batches else None
    if first is not None and first.stats is not None:
        totals["latency_ms"] = first.stats.median_ms
        totals["throughput"] = first.batch / (first.stats.median_ms / 1e3)
        if first.peak_bytes is not None:
            totals["peak_memory_bytes"] = first.peak_bytes
    for key in ("time_ms", "time_iqr_ms", "predicted_ms"):
        if key in layers[0].values:
            totals[key] = layers[0].values[key]
    timing = _timing_facts(counted, batches, times, facts, device, options, interrupted)
    return replace(counted, layers=layers, totals=totals, timing=timing)


def _timing_facts(counted: Profile, batches: list[_Batch], times: LayerTimes | None, facts: DeviceFacts,
                  device: torch.device, options: TimingOptions, interrupted: bool) -> dict[str, Any]:
    end_to_end = batches[0].stats.median_ms if batches and batches[0].stats else None
    layer_sum = sum(times.stats[k].median_ms for k in times.stats) if times else None
    return {
        "device": facts.to_dict(),
        "dtype": counted.dtype,
        "threads": torch.get_num_threads(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "synchronized": "torch.utils.benchmark.Timer synchronizes the device around each block of runs"
                        if device.type == "cuda" else "not needed on cpu",
        "compile": options.compile,
        "channels_last": options.channels_last,
        "torch": torch.__version__,
        "batches": [b.to_dict() for b in batches],
        "layers": None if times is None else {
            "method": "replay of each leaf on its captured input" + (" (eager, not compiled)" if options.compile else ""),
            "distinct_computations": times.distinct, "timed_calls": len(times.stats), "leaf_calls": len(counted.leaves()),
            "sum_ms": layer_sum, "end_to_end_ms": end_to_end,
        },
        "interrupted": interrupted,
    }


def _layers_with_times(counted: Profile, times: LayerTimes, facts: DeviceFacts) -> list[LayerCost]:
    """Every record with its time (leaves measured; parents the sum of their leaves) and roofline values."""
    peak, bandwidth = facts.peak(counted.dtype), facts.bandwidth
    layers = counted.layers
    medians: list[float | None] = [None] * len(layers)
    spreads: list[float | None] = [None] * len(layers)
    predicted: list[float] = [0.0] * len(layers)
    for index in range(len(layers) - 1, -1, -1):  # children come after parents: walk backwards
        layer = layers[index]
        if layer.leaf:
            stats = times.stats.get((layer.path, layer.call))
            medians[index] = stats.median_ms if stats else None
            spreads[index] = stats.iqr_ms if stats else None
            predicted[index] = roofline.point(layer.values.get("flops", 0), layer.values.get("bytes", 0),
                                              None, peak, bandwidth).predicted_ms
        else:
            inside = _leaves_inside(layers, index)
            known = [medians[j] for j in inside]
            if inside and all(m is not None for m in known):
                medians[index] = sum(m for m in known if m is not None)
                spreads[index] = sum(spreads[j] or 0.0 for j in inside)
            predicted[index] = sum(predicted[j] for j in inside)
    return [_with_time(layer, medians[i], spreads[i], predicted[i], peak, bandwidth) for i, layer in enumerate(layers)]


def _leaves_inside(layers: list[LayerCost], index: int) -> list[int]:
    depth = layers[index].depth
    found = []
    for j in range(index + 1, len(layers)):
        if layers[j].depth <= depth:
            break
        if layers[j].leaf:
            found.append(j)
    return found


def _with_time(layer: LayerCost, median: float | None, spread: float | None, predicted: float,
               peak: float, bandwidth: float) -> LayerCost:
    if median is None:
        return layer
    flops, moved = layer.values.get("flops", 0), layer.values.get("bytes", 0)
    found = roofline.point(flops, moved, median, peak, bandwidth)
    values = {**layer.values, "time_ms": median, "time_iqr_ms": spread or 0.0, "predicted_ms": predicted}
    if found.achieved is not None:
        values["achieved_flop_s"] = found.achieved
    if found.share is not None:
        values["roof_share"] = found.share
    return replace(layer, values=values)


class _Bar:
    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def update(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def grow(self, steps: int) -> None:
        if self.bar is not None:
            self.bar.total += steps
            self.bar.refresh()

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress(total: int, show: bool | None) -> _Bar:
    """A tqdm bar on stderr: shown when asked, or by default when stderr is a terminal."""
    if show is False or (show is None and not sys.stderr.isatty()):
        return _Bar(None)
    from tqdm import tqdm

    return _Bar(tqdm(total=total, desc="timing", unit="step", file=sys.stderr, leave=False))
