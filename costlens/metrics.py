"""The metric catalogue: every number costlens reports, defined once.

Totals, JSON, comparisons, budgets, the terminal/markdown/CSV tables, the HTML tables
and the figures all loop over ``METRICS``. Adding a counted metric is one entry here
plus the function that produces its value: ``of_op`` (what one aten op contributes,
summed over the ops that ran inside a module call, children included) or
``of_tensor`` (what one parameter or buffer contributes, summed over a module's own
tensors, children included, each tensor once).

Sized metrics are sizes at a moment rather than sums: ``of_output`` (what one tensor
a module call returns contributes to that call's value), and the model's peak memory,
which ``costlens/count/live.py`` follows through the trace.

Measured metrics (time) have no producer here: the timing code (``costlens/timing``)
fills them in, and a profile without timing simply has no value for them. A metric with
``compare=False`` is noise between two models (a spread such as the IQR): comparison
tables, pages and budgets show its values but no ratio of them.

This module imports nothing from torch, so the CLI can read it before torch loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from costlens.units import grouped, human, human_bytes


class Kind(StrEnum):
    """Where a value comes from: counted from the trace, or measured on a device."""

    COUNTED = "counted"
    MEASURED = "measured"
    SIZED = "sized"  # the size of tensors at one moment of the trace: a call's outputs, the most alive at once


class Rollup(StrEnum):
    """How a module call's value relates to its children."""

    CALLS = "calls"  # sum of the ops that ran inside the call, children included
    STATE = "state"  # the module's parameters and buffers, children included, each once
    DERIVED = "derived"  # computed from the call's other values (a rate, a share): never summed
    OWN = "own"  # the call's own value (its outputs); a parent's is not the sum of its children's


class OpEvent(NamedTuple):
    """What the tracer learned about one aten op: the input of every ``of_op`` (a tuple: one is
    made per op, and a tuple is made several times faster than a frozen dataclass)."""

    macs: int
    flops: int
    read_bytes: int
    written_bytes: int
    allocated_bytes: int  # bytes of fresh tensors written (views and in-place ops write none)


class TensorFacts(NamedTuple):
    """One parameter or buffer of a module, or a tensor a call returned: the input of every
    ``of_tensor`` and ``of_output``."""

    numel: int
    bytes: int  # in the trace's dtype
    is_parameter: bool
    trainable: bool


@dataclass(frozen=True)
class Unit:
    """How values of one unit are written: exactly, and in short form."""

    exact: Callable[[float], str]
    short: Callable[[float], str]


def _ms(value: float) -> str:
    return f"{value:.3f} ms"


UNITS: dict[str, Unit] = {
    "count": Unit(lambda v: grouped(int(v)), human),
    "bytes": Unit(lambda v: f"{grouped(int(v))} B", human_bytes),
    "ms": Unit(_ms, _ms),
    "per_s": Unit(lambda v: f"{v:,.1f}/s", lambda v: f"{human(v)}/s"),
    "flop_per_s": Unit(lambda v: f"{human(v)}FLOP/s", lambda v: f"{human(v)}FLOP/s"),
    "ratio": Unit(lambda v: f"{v:.3g}", lambda v: f"{v:.3g}"),
    "percent": Unit(lambda v: f"{100 * v:.1f}%", lambda v: f"{100 * v:.0f}%"),
}


@dataclass(frozen=True)
class Metric:
    """One reported number: its key in JSON and budgets, its label, unit and origin."""

    key: str
    label: str
    unit: str
    kind: Kind
    rollup: Rollup
    description: str
    of_op: Callable[[OpEvent], int] | None = None
    of_tensor: Callable[[TensorFacts], int] | None = None
    of_output: Callable[[TensorFacts], int] | None = None  # per tensor a module call returns
    per_layer: bool = True  # False: a model total only (no per-call value)
    column: bool = True  # a column of the terminal and markdown tables
    share: bool = False  # those tables add its share of the total beside it
    compact: bool = False  # table cells in short units (1.81G) rather than exact
    compare: bool = True  # False: a ratio of two models' values is noise, not a result (never printed or budgeted)

    def format(self, value: float | None) -> str:
        """The value written exactly ('120,422,400', '1,024 B'); '-' when absent."""
        return "-" if value is None else UNITS[self.unit].exact(value)

    def short(self, value: float | None) -> str:
        """The value in short units ('120M', '1.00 KiB'); '-' when absent."""
        return "-" if value is None else UNITS[self.unit].short(value)

    def cell(self, value: float | None) -> str:
        """The value as a table cell shows it."""
        return self.short(value) if self.compact else self.format(value)


METRICS: tuple[Metric, ...] = (
    Metric("params", "Params", "count", Kind.COUNTED, Rollup.STATE,
           "parameters of the module, its children included, each tensor once",
           of_tensor=lambda t: t.numel if t.is_parameter else 0),
    Metric("trainable_params", "Trainable params", "count", Kind.COUNTED, Rollup.STATE,
           "parameters that require a gradient", per_layer=False,
           of_tensor=lambda t: t.numel if t.is_parameter and t.trainable else 0),
    Metric("buffers", "Buffers", "count", Kind.COUNTED, Rollup.STATE,
           "elements of buffers such as batch norm's running statistics", per_layer=False,
           of_tensor=lambda t: 0 if t.is_parameter else t.numel),
    Metric("macs", "MACs", "count", Kind.COUNTED, Rollup.CALLS,
           "multiply-accumulates of convolution, linear and matmul ops", share=True,
           of_op=lambda e: e.macs),
    Metric("flops", "FLOPs", "count", Kind.COUNTED, Rollup.CALLS,
           "2 x MACs plus one per element of every other arithmetic op", compact=True,
           of_op=lambda e: e.flops),
    Metric("output_bytes", "Output size", "bytes", Kind.SIZED, Rollup.OWN,
           "bytes of the tensors the call returns (for the model: its output)", compact=True,
           of_output=lambda t: t.bytes),
    Metric("activation_bytes", "Tensors written", "bytes", Kind.COUNTED, Rollup.CALLS,
           "bytes of every fresh tensor the ops wrote, kept or not: outputs, max-pool's indices, "
           "temporaries such as local response norm's; in-place ops (ReLU(inplace=True)) and views write none",
           column=False, compact=True, of_op=lambda e: e.allocated_bytes),
    Metric("weight_bytes", "Weights", "bytes", Kind.COUNTED, Rollup.STATE,
           "bytes of parameters and buffers in the traced dtype", column=False, compact=True,
           of_tensor=lambda t: t.bytes),
    Metric("bytes", "Bytes moved", "bytes", Kind.COUNTED, Rollup.CALLS,
           "bytes the ops read (inputs, weights) plus wrote; views move none", column=False, compact=True,
           of_op=lambda e: e.read_bytes + e.written_bytes),
    Metric("peak_bytes", "Peak memory", "bytes", Kind.SIZED, Rollup.OWN,
           "the most bytes alive at one moment of the forward: weights and buffers, the inputs, and the "
           "tensors not yet freed (no autograd graph kept)", per_layer=False, compact=True),
    Metric("latency_ms", "Latency", "ms", Kind.MEASURED, Rollup.CALLS,
           "median end-to-end time of one forward pass (torch.utils.benchmark, on the run's threads; its 95% "
           "interval is in the timing summary)", per_layer=False),
    Metric("graph_latency_ms", "Latency (CUDA graph)", "ms", Kind.MEASURED, Rollup.CALLS,
           "median time of one replay of the forward captured once as a CUDA graph: the kernels without Python "
           "and launches", per_layer=False),
    Metric("throughput", "Throughput", "per_s", Kind.MEASURED, Rollup.DERIVED,
           "examples per second at the profiled batch size: batch / median latency", per_layer=False),
    Metric("peak_memory_bytes", "Measured peak memory", "bytes", Kind.MEASURED, Rollup.CALLS,
           "the most bytes one forward held allocated at once beyond what was allocated before it (weights and "
           "inputs): CUDA's max_memory_allocated, on cpu the allocation events of torch's profiler; compare with "
           "the counted peak less weights and inputs", per_layer=False),
    Metric("time_ms", "Time", "ms", Kind.MEASURED, Rollup.CALLS,
           "median time of the layer replayed alone on its captured input; a parent's is the sum of its "
           "leaves (functional ops between them are not timed)", share=True),
    Metric("time_iqr_ms", "Time IQR", "ms", Kind.MEASURED, Rollup.CALLS,
           "interquartile range of the layer's time; a parent's is the sum of its leaves'", column=False,
           compare=False),
    Metric("traced_time_ms", "Time in place", "ms", Kind.MEASURED, Rollup.CALLS,
           "median time of the layer inside the real forward (CUDA: its kernels' device time from torch's profiler; "
           "cpu: the call's wall time between hooks); a parent's is the sum of its leaves", share=True),
    Metric("predicted_ms", "Roofline time", "ms", Kind.MEASURED, Rollup.CALLS,
           "the time the roofline predicts: FLOPs / attainable FLOP/s", column=False),
    Metric("achieved_flop_s", "Achieved", "flop_per_s", Kind.MEASURED, Rollup.DERIVED,
           "FLOPs / measured time (replayed, else in place)", column=False),
    Metric("roof_share", "% of roof", "percent", Kind.MEASURED, Rollup.DERIVED,
           "achieved FLOP/s as a share of what the roofline allows at the layer's intensity", column=False),
    # A training step (costlens/count/training.py): counted, but by a pass of its own (backward
    # from autograd's ops, the optimizer's real step), so, like measured metrics, no per-op or
    # per-tensor producer of the forward trace; a forward-only profile has no value for them.
    Metric("backward_macs", "Backward MACs", "count", Kind.COUNTED, Rollup.CALLS,
           "multiply-accumulates of the backward ops autograd ran for this call (input and weight gradients)",
           compact=True),
    Metric("backward_flops", "Backward FLOPs", "count", Kind.COUNTED, Rollup.CALLS,
           "FLOPs of the backward ops autograd ran for this call", column=False, compact=True),
    Metric("update_flops", "Update FLOPs", "count", Kind.COUNTED, Rollup.STATE,
           "FLOPs of the optimizer's step on the module's trainable parameters (a steady-state step)", compact=True),
    Metric("saved_activation_bytes", "Saved for backward", "bytes", Kind.COUNTED, Rollup.CALLS,
           "bytes of the tensors autograd saved for backward during this call (parameters and buffers excluded, "
           "each storage once)", compact=True),
    Metric("grad_bytes", "Gradients", "bytes", Kind.COUNTED, Rollup.STATE,
           "bytes of the parameter gradients backward produced", column=False, compact=True),
    Metric("optimizer_state_bytes", "Optimizer state", "bytes", Kind.COUNTED, Rollup.STATE,
           "bytes of the optimizer's state (momentum buffers, Adam's two moments and step counters)",
           column=False, compact=True),
    Metric("frozen_params", "Frozen params", "count", Kind.COUNTED, Rollup.STATE,
           "parameters that need no gradient (frozen)", per_layer=False),
    Metric("step_flops", "Training step FLOPs", "count", Kind.COUNTED, Rollup.CALLS,
           "forward + backward + optimizer update FLOPs of one training step", per_layer=False),
    Metric("train_memory_bytes", "Training memory", "bytes", Kind.COUNTED, Rollup.STATE,
           "peak a step needs when backward starts: weights + gradients + optimizer state + saved activations",
           per_layer=False),
    Metric("backward_macs_saved", "Backward MACs saved", "count", Kind.COUNTED, Rollup.CALLS,
           "backward MACs the freeze saves against training every parameter", per_layer=False),
    Metric("train_memory_saved", "Training memory saved", "bytes", Kind.COUNTED, Rollup.STATE,
           "training memory the freeze saves against training every parameter", per_layer=False),
    Metric("precompute_macs", "Precompute MACs/example", "count", Kind.COUNTED, Rollup.CALLS,
           "MACs per example of the frozen part's forward, paid once when its outputs are precomputed",
           per_layer=False),
    Metric("precompute_bytes", "Precomputed bytes/example", "bytes", Kind.COUNTED, Rollup.STATE,
           "bytes per example on disk of the frozen part's output (the first trainable layer's input)",
           per_layer=False),
    # A training step timed on a device (costlens/timing/step.py).
    Metric("step_ms", "Step time", "ms", Kind.MEASURED, Rollup.CALLS,
           "median time of one training step: forward, backward and the optimizer's update", per_layer=False),
    Metric("step_forward_ms", "Step forward", "ms", Kind.MEASURED, Rollup.CALLS,
           "median time of the step's forward (training mode, autograd recording)", per_layer=False),
    Metric("step_backward_ms", "Step backward", "ms", Kind.MEASURED, Rollup.CALLS,
           "median of forward+backward minus median of the forward", per_layer=False),
    Metric("step_update_ms", "Step update", "ms", Kind.MEASURED, Rollup.CALLS,
           "median of the whole step minus median of forward+backward", per_layer=False),
    Metric("step_throughput", "Training throughput", "per_s", Kind.MEASURED, Rollup.DERIVED,
           "examples per second trained: batch / median step time", per_layer=False),
    Metric("step_peak_memory_bytes", "Measured step memory", "bytes", Kind.MEASURED, Rollup.CALLS,
           "memory one step needed beyond what was allocated before it (gradients and optimizer state "
           "already exist; CUDA: max_memory_allocated; cpu: allocation events of torch's profiler)", per_layer=False),
)


def catalogue() -> tuple[Metric, ...]:
    """Every metric, in report order (read at call time, so the catalogue can grow)."""
    return METRICS


def all_keys() -> list[str]:
    """Every metric's key."""
    return [m.key for m in METRICS]


def get(key: str) -> Metric:
    """The metric called ``key``; KeyError when there is none."""
    for metric in METRICS:
        if metric.key == key:
            return metric
    raise KeyError(key)


_VIEWS: dict[object, tuple[Metric, ...]] = {}  # each selection below, made once per catalogue
_VIEWS_OF: list[tuple[Metric, ...]] = [()]  # the catalogue they were made from


def _view(name: object, keep: Callable[[Metric], bool]) -> tuple[Metric, ...]:
    """The metrics that ``keep`` selects, in catalogue order: worked out again only when the
    catalogue is another (a profile reads these on every call)."""
    if _VIEWS_OF[0] is not METRICS:
        _VIEWS.clear()
        _VIEWS_OF[0] = METRICS
    found = _VIEWS.get(name)
    if found is None:
        found = _VIEWS[name] = tuple(m for m in METRICS if keep(m))
    return found


def per_layer() -> tuple[Metric, ...]:
    """Metrics with a value for every module call."""
    return _view("per_layer", lambda m: m.per_layer)


def columns() -> tuple[Metric, ...]:
    """Metrics shown as columns of the terminal and markdown tables."""
    return _view("columns", lambda m: m.per_layer and m.column)


def compared() -> tuple[Metric, ...]:
    """Metrics whose ratio between two models means something (``compare``)."""
    return _view("compared", lambda m: m.compare)


def of_kind(kind: Kind) -> tuple[Metric, ...]:
    """Counted or measured metrics."""
    return _view(("kind", kind), lambda m: m.kind is kind)


def op_metrics() -> tuple[Metric, ...]:
    """Counted metrics produced op by op (summed over calls)."""
    return _view("of_op", lambda m: m.of_op is not None)


def tensor_metrics() -> tuple[Metric, ...]:
    """Counted metrics produced tensor by tensor (a module's state)."""
    return _view("of_tensor", lambda m: m.of_tensor is not None)


def output_metrics() -> tuple[Metric, ...]:
    """Sized metrics produced from the tensors each module call returns."""
    return _view("of_output", lambda m: m.of_output is not None)
