"""Measured figures into a Profile: the catalogue's measured metrics, per-layer roll-ups, the roofline's
values per layer, and ``Profile.timing``, which says where and how everything was measured.

``costlens/timing/measure.py`` measures; this module only arranges what it found. A parent
module's time is the sum of its leaves' when every leaf was timed (functional ops between
them are not: the report puts the layers' sum beside end to end); the roofline's values
use the time replayed alone when there is one, else the time in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from costlens.records import LayerCost, Profile
from costlens.timing import roofline
from costlens.timing.device import DeviceFacts, device_name
from costlens.timing.latency import Rounds
from costlens.timing.layers import LayerTimes
from costlens.timing.options import TimingOptions, usable_cpus
from costlens.timing.stats import CONFIDENCE, Stats

MEMORY_METHOD = {"cuda": "torch.cuda.max_memory_allocated during one forward, less what was allocated before",
                 "cpu": "allocation events of torch's profiler (profile_memory) during one forward: the highest "
                        "running sum of bytes allocated less bytes freed"}


@dataclass
class BatchResult:
    """One batch size of one model: what was measured, or why not (filled in by ``measure.py``)."""

    batch: int
    stats: Stats | None = None
    peak_bytes: int | None = None
    compile_s: float | None = None
    graph: Stats | None = None
    graph_error: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        stats = self.stats.to_dict() if self.stats else {}
        return {"batch": self.batch, **stats, "throughput": _throughput(self.batch, self.stats),
                "peak_memory_bytes": self.peak_bytes, "compile_s": self.compile_s,
                "cuda_graph": None if self.graph is None and self.graph_error is None else {
                    **(self.graph.to_dict() if self.graph else {}), "throughput": _throughput(self.batch, self.graph),
                    "error": self.graph_error},
                "error": self.error}


def _throughput(batch: int, stats: Stats | None) -> float | None:
    return batch / (stats.median_ms / 1e3) if stats and stats.median_ms else None


@dataclass
class Run:
    """What one call of ``time_profiles`` settled before measuring (where, on how many threads, in which
    dtype, with which options), and what it learned of the machine meanwhile."""

    device: torch.device
    dtype: torch.dtype
    threads: int
    options: TimingOptions
    rounds: Rounds
    threads_used: set[int] = field(default_factory=set)
    load: list[float | None] = field(default_factory=list)  # the 1-minute load average at the start and the end


def timed_profile(counted: Profile, batches: list[BatchResult], replay: LayerTimes | None, trace: LayerTimes | None,
                   facts: DeviceFacts | None, run: Run, interrupted: bool) -> Profile:
    layers = counted.layers
    replayed, traced = (None if t is None or t.error else t for t in (replay, trace))
    if replayed is not None or traced is not None:
        layers = _layers_with_times(counted, replayed, traced, facts)
    totals = dict(counted.totals)
    first = batches[0] if batches else None
    if first is not None and first.stats is not None:
        totals["latency_ms"] = first.stats.median_ms
        totals["throughput"] = first.batch / (first.stats.median_ms / 1e3)
        if first.peak_bytes is not None:
            totals["peak_memory_bytes"] = first.peak_bytes
    if first is not None and first.graph is not None:
        totals["graph_latency_ms"] = first.graph.median_ms
    for key in ("time_ms", "time_iqr_ms", "traced_time_ms", "predicted_ms"):
        if key in layers[0].values:
            totals[key] = layers[0].values[key]
    ordered = _in_catalogue_order(totals)
    timing = _timing_facts(counted, batches, replay, trace, facts, run, interrupted)
    return replace(counted, layers=layers, totals=ordered, timing=timing)


def _in_catalogue_order(totals: dict[str, float]) -> dict[str, float]:
    from costlens.metrics import all_keys

    keys = all_keys()
    return {k: totals[k] for k in sorted(totals, key=lambda k: keys.index(k) if k in keys else len(keys))}


def _timing_facts(counted: Profile, batches: list[BatchResult], replay: LayerTimes | None, trace: LayerTimes | None,
                  facts: DeviceFacts | None, run: Run, interrupted: bool) -> dict[str, Any]:
    options = run.options
    threads = next(iter(run.threads_used)) if len(run.threads_used) == 1 else run.threads
    first = batches[0] if batches else None
    end_to_end = first.stats.median_ms if first and first.stats else None
    graph = first.graph.median_ms if first and first.graph else None
    return {
        "counted_on": counted.device.get("type", "meta"),
        "timed_on": {"device": str(run.device), "name": facts.name if facts else device_name(run.device),
                     "dtype": counted.dtype, "threads": threads, "compile": options.compile,
                     "channels_last": options.channels_last, "cuda_graphs": options.cuda_graphs},
        "device": facts.to_dict() if facts else None,
        "dtype": counted.dtype,
        "threads": threads,
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "synchronized": "torch.utils.benchmark.Timer synchronizes the device around each block of runs"
                        if run.device.type == "cuda" else "not needed on cpu",
        "compile": options.compile,
        "channels_last": options.channels_last,
        "cuda_graphs": options.cuda_graphs,
        "torch": torch.__version__,
        "machine": {"cpus": usable_cpus(), "load_average": run.load},
        "statistics": {"confidence": CONFIDENCE, "precision": options.precision, "min_time_s": options.latency_time,
                       "cap_s": options.latency_cap,
                       "method": "median of timed blocks with a distribution-free interval (order statistics), "
                                 "rounds interleaved across models until the interval's half-width is under "
                                 "the precision or the cap passes"},
        "peak_memory_method": MEMORY_METHOD[run.device.type],
        "batches": [b.to_dict() for b in batches],
        "layers": _layer_facts(counted, replay, end_to_end, graph, run),
        "layers_trace": _layer_facts(counted, trace, end_to_end, graph, run),
        "interrupted": interrupted,
    }


def _layer_facts(counted: Profile, times: LayerTimes | None, end_to_end: float | None, graph: float | None,
                 run: Run) -> dict[str, Any] | None:
    if times is None:
        return None
    if times.error:
        return {"method": times.method, "error": times.error, "sum_ms": None, "end_to_end_ms": end_to_end}
    method = ("replay of each leaf on its captured input" if times.method == "replay" else
              "the real forward, each leaf call's " + ("kernels' device time (torch's profiler)"
                                                       if run.device.type == "cuda" else "wall time between its hooks"))
    return {"method": method + (" (eager, not compiled)" if run.options.compile else ""),
            "distinct_computations": times.distinct, "timed_calls": len(times.stats),
            "leaf_calls": len(counted.leaves()), "sum_ms": sum(s.median_ms for s in times.stats.values()),
            "end_to_end_ms": end_to_end, "cuda_graph_ms": graph, "interrupted": times.interrupted}


def _layers_with_times(counted: Profile, replay: LayerTimes | None, trace: LayerTimes | None,
                       facts: DeviceFacts | None) -> list[LayerCost]:
    """Every record with its times (leaves measured; parents the sum of their leaves) and roofline values."""
    layers = counted.layers
    sums = {key: _rolled_up(layers, times) for key, times in (("time_ms", replay), ("traced_time_ms", trace)) if times}
    spreads = _rolled_up(layers, replay, spread=True) if replay else None
    predicted = _predicted(layers, facts, counted.dtype) if facts else None
    found = []
    for index, layer in enumerate(layers):
        values = dict(layer.values)
        for key, medians in sums.items():
            median = medians[index]
            if median is not None:
                values[key] = median
        spread = spreads[index] if spreads is not None else None
        if spread is not None:
            values["time_iqr_ms"] = spread
        measured = values.get("time_ms", values.get("traced_time_ms"))
        if predicted is not None and facts is not None and measured is not None:
            values.update(_roofline_values(layer, measured, predicted[index], facts, counted.dtype))
        found.append(replace(layer, values=values))
    return found


def _rolled_up(layers: list[LayerCost], times: LayerTimes, spread: bool = False) -> list[float | None]:
    """Each record's median (or IQR): a leaf's measured, a parent's the sum of its leaves' when all were timed."""
    found: list[float | None] = [None] * len(layers)
    for index in range(len(layers) - 1, -1, -1):  # children come after parents: walk backwards
        layer = layers[index]
        if layer.leaf:
            stats = times.stats.get((layer.path, layer.call))
            found[index] = None if stats is None else (stats.iqr_ms if spread else stats.median_ms)
        else:
            inside = [found[j] for j in _leaves_inside(layers, index)]
            if inside and all(v is not None for v in inside):
                found[index] = sum(v for v in inside if v is not None)
    return found


def _predicted(layers: list[LayerCost], facts: DeviceFacts, dtype: str) -> list[float]:
    peak, bandwidth = facts.peak(dtype), facts.bandwidth
    found = [0.0] * len(layers)
    for index in range(len(layers) - 1, -1, -1):
        layer = layers[index]
        if layer.leaf:
            found[index] = roofline.point(layer.values.get("flops", 0), layer.values.get("bytes", 0), None, peak,
                                          bandwidth).predicted_ms
        else:
            found[index] = sum(found[j] for j in _leaves_inside(layers, index))
    return found


def _leaves_inside(layers: list[LayerCost], index: int) -> list[int]:
    depth = layers[index].depth
    found = []
    for j in range(index + 1, len(layers)):
        if layers[j].depth <= depth:
            break
        if layers[j].leaf:
            found.append(j)
    return found


def _roofline_values(layer: LayerCost, measured: float, predicted: float, facts: DeviceFacts,
                     dtype: str) -> dict[str, float]:
    flops, moved = layer.values.get("flops", 0), layer.values.get("bytes", 0)
    found = roofline.point(flops, moved, measured, facts.peak(dtype), facts.bandwidth)
    values = {"predicted_ms": predicted}
    if found.achieved is not None:
        values["achieved_flop_s"] = found.achieved
    if found.share is not None:
        values["roof_share"] = found.share
    return values
