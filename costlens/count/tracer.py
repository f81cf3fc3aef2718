"""Trace one forward pass at the operator level and attribute each op to its module call.

``trace`` runs the model once under a ``TorchDispatchMode`` (``_CountingMode``), which sees
every aten op, so functional calls (``F.relu``, ``torch.cat``, ``x + y``, ``x @ w``) count as
well as modules. The module calls come from ``count/calls.py``: each op's cost goes to the
innermost call running, and a call's sums roll up into its parent when it returns, so a
parent's totals are exactly the sum of the ops that ran inside it.

Per op, in order: the op's result (on meta from a shape rule, ``count/shapes.py``, where the
op has one, else from torch's kernel), its cost (``count/formulas.py``, or the caller's own
``formulas``), what it adds to each op metric of the catalogue (``costlens/metrics.py``),
and the storages it made alive for the peak memory (``count/live.py``). On the meta device
no arithmetic is done and no weights are allocated; on cpu or cuda the same ops run for
real and give the same counts.

Nothing is kept between traces: a trace depends on the model, its inputs and the
catalogue only. The model is left as found: hooks removed, train/eval modes restored,
stand-in parameters swapped back, even when its forward raises.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from costlens import metrics
from costlens.count import shapes
from costlens.count.calls import ModuleCalls
from costlens.count.facts import ModuleFacts, module_facts, own_tensors
from costlens.count.formulas import FREE, Handler, OpCost, rule_for
from costlens.count.live import STATISTICS_OUTPUTS, LiveBytes
from costlens.count.swap import swapped
from costlens.count.values import MetaValues
from costlens.errors import ModelError
from costlens.metrics import OpEvent, TensorFacts
from costlens.records import LayerCost, ValueRead

_META = torch.device("meta")


@dataclass
class TraceResult:
    """Everything one trace learned: module calls in order, ops with no rule, FLOPs by op, state."""

    layers: list[LayerCost]
    uncounted: dict[str, tuple[int, list[str]]]  # op -> (times it ran, module paths)
    flops_by_op: dict[str, int]
    state: dict[str, int]  # the model's tensor metrics, each tensor once, and its peak memory
    value_reads: list[ValueRead] = field(default_factory=list)  # on meta: values the model read (count/values.py)


def trace(
    model: nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any] | None = None,
    *,
    train: bool = False,
    dtype: torch.dtype | None = None,
    formulas: dict[Any, Handler] | None = None,
    strict: bool = False,
) -> TraceResult:
    """Run ``model(*args, **kwargs)`` once and return one ``LayerCost`` per module call.

    The device is the first input tensor's; parameters on another device or in another
    floating-point dtype than ``dtype`` are swapped for stand-ins for the trace
    (``count/swap.py``), never moved. ``train`` runs the forward in training mode.
    ``formulas`` maps aten ops (packets or overloads) to handlers that take precedence over
    the registered ones, for this trace only. On meta, values the model reads are answered as
    ``count/values.py`` says (known, else assumed and recorded); ``strict`` refuses an assumption.
    """
    kwargs = dict(kwargs or {})
    inputs = [t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor)]
    if not inputs:
        raise ModelError("the model needs at least one input tensor to trace")
    device = inputs[0].device
    modules = list(model.named_modules())
    owned = [own_tensors(module) for _, module in modules]
    facts = module_facts(model, dtype, modules, owned)
    stand_ins = _stand_ins(owned, device, dtype, train)
    live = LiveBytes(inputs, [*(t for own in owned for t, _ in own), *stand_ins.values()])
    counter = _Counter(modules, facts)
    values = MetaValues(strict) if device.type == "meta" else None
    try:
        with _modes(modules, train), counter.watching(), torch.no_grad(), \
                _CountingMode(counter, formulas or {}, live, device, values), swapped(model, stand_ins):
            model(*args, **kwargs)
    except ModelError:  # costlens's own, as a value read refused: already one line
        raise
    except Exception as error:  # the user's forward can raise anything
        raise _forward_error(counter, error, inputs) from error
    totals = facts[id(model)].state
    return TraceResult(counter.layers(), counter.uncounted, counter.flops_by_op_sorted(),
                       {**totals, "peak_bytes": totals.get("weight_bytes", 0) + live.peak},
                       values.reads if values is not None else [])


# --- module calls and what each one counted --------------------------------------------------


@dataclass(slots=True)
class _Record:
    """What a module call counted; becomes a frozen ``LayerCost`` when the trace ends.

    ``sums`` holds the op metrics of the catalogue in catalogue order, children included;
    ``ops`` how often each aten op ran inside the call; ``output_sums`` the catalogue's
    output metrics of what the call returned.
    """

    facts: ModuleFacts
    input_shapes: list[list[int]]
    sums: list[int]
    ops: dict[str, int]
    formulas: list[str]
    output_shapes: list[list[int]]
    output_sums: list[int]


class _Counter(ModuleCalls):
    """The module calls of one trace, each with what its ops added to the catalogue's metrics."""

    def __init__(self, modules: Sequence[tuple[str, nn.Module]], facts: dict[int, ModuleFacts]) -> None:
        super().__init__(modules)
        self.facts = facts
        self.op_metrics = metrics.op_metrics()
        self.producers = [m.of_op for m in self.op_metrics if m.of_op is not None]
        self.output_producers = [m.of_output for m in metrics.output_metrics() if m.of_output is not None]
        self.nothing = [0] * len(self.producers)  # a call's sums before its first op (replaced, never changed)
        self.records: list[_Record] = []
        self.uncounted: dict[str, tuple[int, list[str]]] = {}
        self.flops_by_op: dict[str, int] = {}

    def opened(self, position: int, module: nn.Module, args: tuple) -> None:
        shapes = [list(t.shape) for t in _returned_tensors(args)]  # keyword inputs join them when the call ends
        self.records.append(_Record(self.facts[id(module)], shapes, self.nothing, {}, [], [], []))

    def closed(self, position: int, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        record = self.records[position]
        if kwargs:
            record.input_shapes += [list(t.shape) for t in _returned_tensors(kwargs)]
        returned = _returned_tensors(output)
        record.output_shapes = [list(t.shape) for t in returned]
        facts = [TensorFacts(t.numel(), t.nbytes, False, False) for t in returned]
        record.output_sums = [sum(produce(t) for t in facts) for produce in self.output_producers]
        parent = self.calls[position].parent
        if parent is not None:
            _absorb(self.records[parent], record)

    def count(self, name: str, counted: bool, cost: OpCost, event: OpEvent) -> None:
        """Add one op to the innermost call (an op outside every module call is not the model's)."""
        position = self.innermost()
        if position is None:
            return
        record = self.records[position]
        record.sums = [total + produce(event) for total, produce in zip(record.sums, self.producers)]
        record.ops[name] = record.ops.get(name, 0) + 1
        if cost.formula is not None:
            record.formulas.append(cost.formula)
        self.flops_by_op[name] = self.flops_by_op.get(name, 0) + cost.flops
        if not counted:
            times, paths = self.uncounted.get(name, (0, []))
            if record.facts.path not in paths:
                paths.append(record.facts.path)
            self.uncounted[name] = (times + 1, paths)

    def layers(self) -> list[LayerCost]:
        """Every call's finished record, in the order the calls began."""
        plan = _plan(self.op_metrics)
        return [_layer(call.call_index, call.depth, record, plan) for call, record in zip(self.calls, self.records)]

    def flops_by_op_sorted(self) -> dict[str, int]:
        return dict(sorted(self.flops_by_op.items(), key=lambda item: -item[1]))


def _absorb(parent: _Record, child: _Record) -> None:
    """A finished call's sums and op counts join its parent's."""
    parent.sums = [mine + theirs for mine, theirs in zip(parent.sums, child.sums)]
    for name, times in child.ops.items():
        parent.ops[name] = parent.ops.get(name, 0) + times


def _plan(op_metrics: tuple[metrics.Metric, ...]) -> list[tuple[str, int, int]]:
    """Each per-layer metric of the catalogue, with where a call's value comes from: its index
    among the output metrics (taken when the call returned tensors), else among the op metrics
    (-1 where it is neither: a state metric, from the module's own tensors). Worked out once per
    catalogue: ``metrics`` hands out the same tuples until the catalogue changes."""
    views = (op_metrics, metrics.output_metrics(), metrics.per_layer())
    known = _PLAN[0]
    if known is not None and all(mine is theirs for mine, theirs in zip(known[0], views)):
        return known[1]
    op_index = {m.key: i for i, m in enumerate(op_metrics)}
    output_index = {m.key: i for i, m in enumerate(views[1])}
    plan = [(m.key, output_index.get(m.key, -1), op_index.get(m.key, -1)) for m in views[2]]
    _PLAN[0] = (views, plan)
    return plan


_PLAN: list[Any] = [None]  # the views the last plan was made from, and that plan


def _layer(index: int, depth: int, record: _Record, plan: list[tuple[str, int, int]]) -> LayerCost:
    """A call's record as a ``LayerCost``: each per-layer metric from the call's outputs, its
    ops or its module's own tensors, whichever produces it."""
    facts, outputs, sums = record.facts, record.output_sums, record.sums
    values: dict[str, float] = {}
    for key, output, op in plan:
        if output >= 0 and outputs:
            values[key] = outputs[output]
        elif op >= 0:
            values[key] = sums[op]
        elif key in facts.state:
            values[key] = facts.state[key]
    return LayerCost.made(facts.path, facts.type, depth, index, facts.leaf, record.input_shapes,
                          record.output_shapes, "; ".join(record.formulas) or None, dict(sorted(record.ops.items())),
                          values)


# --- the dispatch mode ----------------------------------------------------------------------


@dataclass(frozen=True)
class _OpFacts:
    """What an aten overload is, from its schema: the same for every call."""

    name: str  # "aten.convolution"
    packet: Any  # the overload packet, which formulas are registered for
    moves_data: bool  # reads and writes tensor data: counts bytes (a view or an empty() moves none)
    allocates: bool  # writes fresh tensors: its outputs count as activations
    primary_only: bool  # only the first output is data; the rest is saved statistics
    creates: bool  # a factory (zeros, arange, ...) that takes a device argument
    shape_rule: shapes.Rule | None  # its outputs' metadata on meta without torch's kernel
    single: bool  # returns one tensor (else a tuple of them)


@functools.cache
def _op_facts(func: Any) -> _OpFacts:
    """The facts of an aten overload, read from its schema once per process."""
    schema = func._schema
    aliases = any(r.alias_info is not None for r in schema.returns)
    returns_tensors = bool(schema.returns) and all(
        str(r.type) in ("Tensor", "Tensor[]", "List[Tensor]") for r in schema.returns)
    dynamic = torch.Tag.dynamic_output_shape in func.tags or torch.Tag.data_dependent_output in func.tags
    name = func.overloadpacket.__name__
    # In-place ops (relu_, add_, copy_) return their mutated input: no new memory, but they read
    # and write it; a pure view (view, t, slice) moves nothing, nor does an empty() fill.
    moves_data = (schema.is_mutable or not aliases) and not name.startswith(("empty", "new_empty"))
    return _OpFacts(
        name=f"aten.{name}", packet=func.overloadpacket, moves_data=moves_data, allocates=moves_data and not aliases,
        primary_only=name in STATISTICS_OUTPUTS,
        creates=any(a.name == "device" and a.kwarg_only for a in schema.arguments),
        shape_rule=shapes.rule_of(func) if returns_tensors and not aliases and not dynamic else None,
        single=len(schema.returns) == 1,
    )


class _CountingMode(TorchDispatchMode):
    """Runs each aten op, counts its cost into the innermost module call and tracks its outputs' memory."""

    def __init__(self, counter: _Counter, custom: dict[Any, Handler], live: LiveBytes, device: torch.device,
                 values: MetaValues | None) -> None:
        super().__init__()
        self.counter = counter
        self.custom = custom
        self.live = live
        self.on_meta = device.type == "meta"
        self.values = values

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Nothing is compiled inside this mode. Left True, torch wraps every dispatch in a
        # dynamo-disable frame and imports torch._dynamo (about a second) on first use.
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        op = _op_facts(func)
        if self.on_meta and op.creates and kwargs.get("device") != _META:
            # a tensor made inside forward (torch.zeros(n), torch.arange(n)) joins the meta
            # trace, as it would join the model's device in real use
            kwargs = {**kwargs, "device": _META}
        values = self.values
        if values is not None and values.answers(func, kwargs):
            out = values.answer(func, args, kwargs)  # counted below as on a real device, where it also runs
        else:
            out = self._run(func, op, args, kwargs)
            if values is not None:
                values.propagate(func, args, kwargs, out)
        custom = self.custom
        rule = (custom and (custom.get(op.packet) or custom.get(func))) or rule_for(op.packet)
        cost = rule(args, kwargs, out) if rule is not None else FREE
        if not isinstance(cost, OpCost):
            raise TypeError(f"the formula of {op.name} returned {type(cost).__name__}, not an OpCost")
        self.counter.count(op.name, rule is not None, cost, _event(op, cost, args, kwargs, out))
        self.live.hold(out, op.primary_only)  # the outputs the model gets: alive until torch frees them
        return out

    def _run(self, func: Any, op: _OpFacts, args: tuple, kwargs: dict) -> Any:
        """The op's result: on meta from its shape rule when the rule is sure, else from torch."""
        if self.on_meta and op.shape_rule is not None:
            metas = op.shape_rule(*args, **kwargs)
            if metas is not None:
                outs = tuple(torch.empty_strided(shape, stride, dtype=dtype, device=_META)
                             for shape, stride, dtype in metas)
                return outs[0] if op.single else outs
        return func(*args, **kwargs)


def _event(op: _OpFacts, cost: OpCost, args: tuple, kwargs: dict, out: Any) -> OpEvent:
    """What the catalogue's op metrics read of one op: its arithmetic and the bytes it moved."""
    if not op.moves_data:
        return OpEvent(cost.macs, cost.flops, 0, 0, 0)
    if isinstance(out, torch.Tensor):
        written = out.nbytes
    else:
        outs = _tensors(out) if isinstance(out, (tuple, list)) else []
        written = sum(t.nbytes for t in (outs[:1] if op.primary_only else outs))
    read = _tensor_bytes(args) + (_tensor_bytes(kwargs.values()) if kwargs else 0)
    return OpEvent(cost.macs, cost.flops, read, written, written if op.allocates else 0)


def _tensor_bytes(values: Any) -> int:
    """Bytes of the tensors among ``values``, one level of lists included (a list holds tensors,
    as cat's, or numbers, as a convolution's stride: its first item tells)."""
    total = 0
    for value in values:
        if isinstance(value, torch.Tensor):
            total += value.nbytes
        elif isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
            for item in value:
                if isinstance(item, torch.Tensor):
                    total += item.nbytes
    return total


# --- modes, stand-ins and errors ----------------------------------------------------------------


@contextlib.contextmanager
def _modes(modules: Sequence[tuple[str, nn.Module]], train: bool) -> Iterator[None]:
    """Every module in training mode (``train``) or eval mode inside the block, as found after it."""
    found = [(module, module.training) for _, module in modules]
    try:
        if any(mode != train for _, mode in found):
            modules[0][1].train(train)
        yield
    finally:
        for module, mode in found:
            if module.training != mode:
                module.training = mode


def _stand_ins(owned: Sequence[list[tuple[torch.Tensor, bool]]], device: torch.device, dtype: torch.dtype | None,
               train: bool) -> dict[int, torch.Tensor]:
    """Parameters and buffers as this trace needs them, by the original's id, where they differ from
    the model's (on another device, or floating point in another dtype); in training mode on a real
    device, copies of the buffers, which the forward updates (batch norm's running statistics stay
    the model's)."""
    swapped_in: dict[int, torch.Tensor] = {}
    for own in owned:
        for tensor, is_parameter in own:
            if id(tensor) in swapped_in:
                continue
            want = dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype
            if tensor.device.type != device.type or tensor.dtype != want:
                # on meta: empty_strided, whose kernel is torch's C++ one (empty_like's meta path is a
                # Python reference that imports sympy, a second of a first float16 profile)
                swapped_in[id(tensor)] = (
                    torch.empty_strided(tensor.shape, tensor.stride(), dtype=want, device=_META)
                    if device.type == "meta" else tensor.detach().to(device=device, dtype=want))
            elif train and device.type != "meta" and not is_parameter:
                swapped_in[id(tensor)] = tensor.detach().clone()
    return swapped_in


def _forward_error(counter: _Counter, error: Exception, inputs: list[torch.Tensor]) -> ModelError:
    """The forward's failure in one line, naming the innermost module call and its input shapes."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if inputs and inputs[0].is_meta and ("unallocated storage" in message or "meta tensor" in message):
        message += " (a meta tensor has no values: count it with --device cpu, device='cpu')"
    position = counter.innermost()
    if position is None:
        return ModelError(f"the model's forward failed: {message}")
    record = counter.records[position]
    where = record.facts.path or "<root>"
    shapes = record.input_shapes or ([list(t.shape) for t in inputs] if position == 0 else [])  # the root's keywords
    shapes_text = ", ".join("x".join(map(str, s)) for s in shapes) or "no tensors"
    return ModelError(f"layer '{where}' ({record.facts.type}) failed on input {shapes_text}: {message}")


# --- tensors in values ----------------------------------------------------------------------------


def _returned_tensors(values: Any) -> list[torch.Tensor]:
    """The tensors in a value: itself, or those in a tuple, list or dict, one level down."""
    if isinstance(values, torch.Tensor):
        return [values]
    if isinstance(values, dict):
        values = list(values.values())
    return _tensors(values) if isinstance(values, (tuple, list)) else []


def _tensors(values: Any) -> list[torch.Tensor]:
    """The tensors among ``values``, one level of lists included."""
    found = []
    for value in values:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            found.extend(t for t in value if isinstance(t, torch.Tensor))
    return found
