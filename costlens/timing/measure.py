"""Time counted profiles: end-to-end per batch size, every leaf layer, and the roofline.

``time_profiles`` takes profiles already counted (on meta) with a way to build each
model for real, measures them — several models interleaved, so they share the
machine's drift — and returns the profiles with the catalogue's measured metrics
filled in and ``Profile.timing`` saying where and how they were measured. Everything
runs on one thread count (``TimingOptions.threads``, else torch's), set around the
whole measurement and given to every timer. Ctrl-C keeps what was measured
(``timing["interrupted"]``): end-to-end figures stand when the per-layer part is cut.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from costlens import memory
from costlens.errors import CostlensError, ModelError
from costlens.inputs import Inputs, dtype_name, prepare
from costlens.models import first_line, raised_at
from costlens.records import Profile
from costlens.timing import graphs
from costlens.timing.device import DeviceError, DeviceFacts, device_facts, resolve_device
from costlens.timing.latency import Forward, Rounds, StatementError, is_out_of_memory, measure_interleaved, using_threads, warm_up
from costlens.timing.layers import LayerTimes, capture, time_layers
from costlens.timing.layers import failed as failed_layers
from costlens.timing.memory import peak_memory
from costlens.timing.options import TimingOptions
from costlens.timing.results import BatchResult, Run, timed_profile
from costlens.timing.stats import Stopped

__all__ = ["Job", "TimingOptions", "check_fits", "time_profiles"]


@dataclass(frozen=True)
class Job:
    """A counted profile, how to build its model on a device, and the inputs it was counted with."""

    counted: Profile
    build: Callable[[torch.device], nn.Module]
    inputs: Inputs
    train: bool = False  # time the modules in training mode (dropout, batch statistics), as they were counted


def time_profiles(jobs: Sequence[Job], options: TimingOptions) -> list[Profile]:
    """Each job's profile with measured metrics; models are timed interleaved."""
    device = resolve_device(options.device)
    if options.cuda_graphs and device.type != "cuda":
        raise DeviceError(f"--cuda-graphs needs CUDA, and this run times on {device.type}"
                          + (" (torch.cuda.is_available() is False)" if not torch.cuda.is_available() else ""))
    run = Run(device, getattr(torch, jobs[0].counted.dtype), options.threads or torch.get_num_threads(), options,
              Rounds(min_time=options.latency_time, cap=options.latency_cap, precision=options.precision))
    run.load.append(_load_average())
    with using_threads(run.threads):
        facts = _facts(run)
        batches = options.batches or (jobs[0].counted.input_shape[0] if jobs[0].counted.input_shape else 1,)
        for job in jobs:
            check_fits(job.counted, device, max(batches))
        models = [_real_model(job, run) for job in jobs]
        with _progress(len(jobs) * len(batches), options.progress) as bar:
            results, interrupted = _time_batches(jobs, models, batches, run, bar.update)
            if interrupted and not any(entry.stats for entries in results for entry in entries):
                raise KeyboardInterrupt  # nothing measured to keep
            replayed: list[LayerTimes | None] = [None] * len(jobs)
            traced: list[LayerTimes | None] = [None] * len(jobs)
            if options.layers and not interrupted:
                interrupted = _time_all_layers(jobs, models, results, batches[0], run, bar, replayed, traced)
    interrupted = interrupted or any(t is not None and t.interrupted for t in replayed)
    run.load.append(_load_average())
    return [timed_profile(job.counted, result, replay, trace, facts, run, interrupted)
            for job, result, replay, trace in zip(jobs, results, replayed, traced)]


def _load_average() -> float | None:
    """The 1-minute load average, where the OS tells it: how busy the machine was (this run included)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def _facts(run: Run) -> DeviceFacts | None:
    """The device's peaks: calibrated for the timed dtype only when the roofline needs them (layer
    times), unless the user described the device (then it is read, and a bad file refused)."""
    options = run.options
    described = options.device_file is not None or (options.peak_flops is not None and options.bandwidth is not None)
    if not options.layers and not described:
        return None
    name = dtype_name(run.dtype)
    return device_facts(run.device, dtypes=("tf32", name) if name == "float32" and run.device.type == "cuda" else (name,),
                        threads=run.threads, recalibrate=options.recalibrate, file=options.device_file,
                        peak_flops=options.peak_flops, bandwidth=options.bandwidth,
                        progress=options.calibration_progress)


def check_fits(counted: Profile, device: torch.device, batch: int) -> None:
    """Refuse, with the figures, a model whose counted peak at ``batch`` cannot fit (``costlens/memory.py``)."""
    memory.refuse_unless_run_fits(counted, device, f"{counted.model} at batch {batch} cannot be timed on {device.type}",
                                  batch)


def _real_model(job: Job, run: Run) -> tuple[nn.Module, nn.Module]:
    """The model with real weights on the device in the dtype: eager, and as timed (compiled or not)."""
    try:
        model = job.build(run.device).train(job.train)
    except (KeyboardInterrupt, CostlensError):
        raise
    except Exception as error:  # the user's factory, on a real device for the first time
        raise ModelError(f"{job.counted.model} could not be built on {run.device.type}: "
                         f"{type(error).__name__}: {first_line(error)}") from error
    if any(p.device.type == "meta" for p in model.parameters()):
        raise DeviceError(f"{job.counted.model} has weights on the meta device: timing needs real weights "
                          "(pass a model with weights, or a zoo name or import path)")
    model = model.to(dtype=run.dtype)
    if run.options.channels_last:
        _channels_last_weights(model)
    timed: Any = torch.compile(model) if run.options.compile else model
    return model, timed


def _channels_last_weights(model: nn.Module) -> None:
    """4-D weights channels-last and 5-D ones channels-last-3d (a 3-D convolution's); others as they are
    (``nn.Module.to(memory_format=...)`` refuses a model with any 5-D weight)."""
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.dim() in (4, 5):
                tensor.data = _channels_last(tensor)


def _forward(job: Job, model: nn.Module, batch: int, run: Run) -> Forward:
    prepared = prepare(job.inputs, batch=batch, device=run.device, dtype=run.dtype)
    args: tuple[Any, ...] = prepared.args
    kwargs: dict[str, Any] = prepared.kwargs
    if run.options.channels_last:
        args = tuple(_channels_last(a) for a in args)
        kwargs = {k: _channels_last(v) for k, v in kwargs.items()}
    return Forward(model, args, kwargs)


def _channels_last(tensor: Any) -> Any:
    """A 4-D tensor channels-last, a 5-D one channels-last-3d; anything else as it is."""
    if not isinstance(tensor, torch.Tensor) or tensor.dim() not in (4, 5):
        return tensor
    return tensor.contiguous(memory_format=torch.channels_last if tensor.dim() == 4 else torch.channels_last_3d)


def _time_batches(jobs: Sequence[Job], models: list[tuple[nn.Module, nn.Module]], batches: Sequence[int],
                  run: Run, tick: Callable[[], Any]) -> tuple[list[list[BatchResult]], bool]:
    """Every model at every batch size; an out-of-memory batch is recorded and the rest go on.
    Ctrl-C: the batch sizes not measured yet say so."""
    results: list[list[BatchResult]] = [[BatchResult(b) for b in batches] for _ in jobs]
    try:
        for index in range(len(batches)):
            ready: list[tuple[BatchResult, Callable[[], Any]]] = []
            captured: list[graphs.Captured] = []
            names: list[str] = []
            for job, (_, timed), entries in zip(jobs, models, results):
                forward = _prepared(job, timed, entries[index], run)
                if forward is not None:
                    ready.append((entries[index], forward))
                    names.append(job.counted.model)
            graph_statements = _captured(ready, run, captured) if run.options.cuda_graphs else []
            _measure(ready, graph_statements, run, names)
            for found in captured:
                found.release()
            for _ in jobs:
                tick()
    except KeyboardInterrupt:
        _mark_unmeasured(results)
        return results, True
    return results, False


def _mark_unmeasured(results: list[list[BatchResult]]) -> None:
    for entries in results:
        for entry in entries:
            if entry.stats is None and entry.error is None:
                entry.error = "not measured: interrupted (Ctrl-C)"


def _prepared(job: Job, timed: nn.Module, entry: BatchResult, run: Run) -> Forward | None:
    """Inputs built, the forward warmed up and its peak memory measured; None (with the reason in
    ``entry``) when this batch size does not fit. Any other failure is the run's (``_failed``)."""
    try:
        forward = _forward(job, timed, entry.batch, run)
        first = warm_up(forward)
        entry.compile_s = first if run.options.compile else None
        # after the warm-up: cuDNN's autotuning and a compiler's first call allocate what later calls do not
        entry.peak_bytes = peak_memory(forward, run.device)
        return forward
    except (KeyboardInterrupt, CostlensError):
        raise
    except Exception as error:  # the user's forward, the allocator, a kernel missing for a dtype
        _out_of_memory(error, entry, run, job.counted.model)
        return None


def _out_of_memory(error: Exception, entry: BatchResult, run: Run, model: str) -> None:
    """Record an out-of-memory batch size in ``entry`` (the others go on); raise any other failure."""
    if not is_out_of_memory(error):
        raise _failed(error, model, entry.batch, run) from error
    entry.error = f"out of memory at batch {entry.batch} on {run.device.type}"
    if run.device.type == "cuda":
        torch.cuda.empty_cache()


def _failed(error: Exception, model: str, batch: int, run: Run) -> CostlensError:
    """The one-line error of a forward that failed while it was timed."""
    first = first_line(error)
    if "not implemented for" in first:
        return DeviceError(f"{dtype_name(run.dtype)} is not supported on {run.device.type} by an op of {model}: {first}")
    at = raised_at(error)
    return ModelError(f"the forward of {model} raised {type(error).__name__}: {first} (while it was timed at "
                      f"batch {batch} on {run.device.type}{f'; {at}' if at else ''})")


def _captured(ready: list[tuple[BatchResult, Callable[[], Any]]], run: Run,
              kept: list[graphs.Captured]) -> list[tuple[BatchResult, Callable[[], Any]]]:
    """Each ready forward captured as a CUDA graph: (entry, its replay), or the reason in the entry."""
    found = []
    for entry, forward in ready:
        try:
            graph = graphs.capture(forward)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # capture refused: a sync, a CPU op, a dynamic shape
            entry.graph_error = graphs.why_not(error)
            torch.cuda.synchronize()
            continue
        kept.append(graph)
        found.append((entry, graph.replay))
    return found


def _measure(ready: list[tuple[BatchResult, Callable[[], Any]]], graph_statements: list[tuple[BatchResult, Callable[[], Any]]],
             run: Run, models: list[str]) -> None:
    """Eager forwards and graph replays timed interleaved, in rounds, until each interval is narrow;
    a statement out of memory is recorded and the rest timed again without it."""
    statements = [s for _, s in ready] + [s for _, s in graph_statements]
    if not statements:
        return
    try:
        found, used = measure_interleaved(statements, run.threads, run.rounds)
    except StatementError as failed:
        entry = (ready + graph_statements)[failed.index][0]
        if failed.index < len(ready):
            _out_of_memory(failed.error, entry, run, models[failed.index])
            ready = [r for i, r in enumerate(ready) if i != failed.index]
        else:  # a graph replay out of memory: the eager figure stands
            entry.graph_error = f"out of memory replaying the CUDA graph at batch {entry.batch}"
            graph_statements = [g for g in graph_statements if g[0] is not entry]
        _measure(ready, graph_statements, run, [m for i, m in enumerate(models) if i != failed.index])
        return
    run.threads_used.add(used)
    for (entry, _), stats in zip(ready, found):
        entry.stats = stats
    for (entry, _), stats in zip(graph_statements, found[len(ready):]):
        entry.graph = stats
    if any(stats.stopped == Stopped.INTERRUPTED for stats in found):
        raise KeyboardInterrupt  # the rounds done are kept above; the caller stops here


def _time_all_layers(jobs: Sequence[Job], models: list[tuple[nn.Module, nn.Module]], results: list[list[BatchResult]],
                     batch: int, run: Run, bar: _Bar, replayed: list[LayerTimes | None],
                     traced: list[LayerTimes | None]) -> bool:
    """Per-layer times of each model at the first batch size, by the methods asked (into ``replayed``
    and ``traced``); True when Ctrl-C cut it short (what was measured is kept)."""
    method = run.options.layer_time_method
    try:
        for index, (job, (eager, _)) in enumerate(zip(jobs, models)):
            if results[index][0].stats is None:  # not measured end to end (out of memory): nothing to set beside
                continue
            if method in ("replay", "both"):
                replay = replayed[index] = _replay_layers(job, eager, batch, run, bar)
                if replay.interrupted:
                    return True
            if method in ("trace", "both"):
                first = results[index][0].stats
                traced[index] = _trace_layers(job, eager, batch, run, bar, first.median_ms if first else None)
    except KeyboardInterrupt:
        return True
    return False


def _replay_layers(job: Job, eager: nn.Module, batch: int, run: Run, bar: _Bar) -> LayerTimes:
    try:
        captured = capture(eager, _forward(job, eager, batch, run))
    except (KeyboardInterrupt, CostlensError):
        raise
    except Exception as error:  # end-to-end figures stand without per-layer ones
        return failed_layers("replay", f"the forward raised {type(error).__name__}: {first_line(error)} "
                                       "during the per-layer capture")
    bar.grow(len(captured.replays))
    return time_layers(captured, threads=run.threads, min_run_time=run.options.layer_seconds, tick=bar.update)


def _trace_layers(job: Job, eager: nn.Module, batch: int, run: Run, bar: _Bar, forward_ms: float | None) -> LayerTimes:
    from costlens.timing.trace import repeats_for, trace_layers

    leaves = len(job.counted.leaves())
    repeats = repeats_for(run.options.layer_seconds * max(leaves, 1), forward_ms)
    bar.grow(repeats)
    try:
        return trace_layers(eager, _forward(job, eager, batch, run), run.device, repeats, tick=bar.update)
    except (KeyboardInterrupt, CostlensError):
        raise
    except Exception as error:  # end-to-end figures stand without per-layer ones
        return failed_layers("trace", f"the forward raised {type(error).__name__}: {first_line(error)} "
                                      "under the profiler")


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
