"""Trace one forward pass at the operator level and attribute each op to its module call.

A ``TorchDispatchMode`` sees every aten op, so functional calls (``F.relu``,
``torch.cat``, ``x + y``, ``x @ w``) count as well as modules. Forward hooks keep a
stack of the module calls in progress; each op's cost goes to the innermost call and
is rolled up into its parent when that call returns, so a parent's totals are exactly
the sum of the ops that ran inside it.

On the meta device no arithmetic is done and no weights are allocated. An op's meta
result depends only on the shapes, strides, dtypes and arguments of its inputs, so
results (and costs) of non-mutating, non-aliasing ops are cached and rebuilt with
``empty_strided`` instead of running the meta kernel again.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from costlens import metrics
from costlens.count import shapes
from costlens.count.formulas import FREE, Handler, OpCost, rule_for
from costlens.errors import ModelError
from costlens.metrics import OpEvent, TensorFacts
from costlens.records import LayerCost

Shape = tuple[int, ...]

# Norms also return the batch statistics they saved for backward; their size differs
# between kernels (meta keeps them in eval mode, cpu does not), so only the
# normalized output counts as written data.
_STATISTICS_OUTPUTS = {
    "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "cudnn_batch_norm", "native_layer_norm", "native_group_norm", "_batch_norm_with_update",
}


@dataclass
class ModuleFacts:
    """What the tracer knows of a module before it runs: its path, type and state metrics."""

    path: str
    type: str
    leaf: bool
    state: dict[str, int]  # each tensor metric of the catalogue, children included


@dataclass
class _Call:
    """A module call in progress; becomes a frozen ``LayerCost`` when the trace ends.

    ``sums`` holds the op metrics of the catalogue, in catalogue order.
    """

    facts: ModuleFacts
    call: int
    depth: int
    input_shapes: list[list[int]]
    sums: list[int]
    output_shapes: list[list[int]] = field(default_factory=list)
    ops: Counter = field(default_factory=Counter)
    formulas: list[str] = field(default_factory=list)

    def absorb(self, child: _Call) -> None:
        sums = self.sums
        for i, value in enumerate(child.sums):
            sums[i] += value
        self.ops.update(child.ops)

    def freeze(self, op_keys: list[str], layer_keys: list[str]) -> LayerCost:
        """The finished record; ``layer_keys`` are the per-layer metrics in catalogue order."""
        f = self.facts
        values: dict[str, float] = dict(f.state)
        values.update(zip(op_keys, self.sums))
        return LayerCost(
            path=f.path, type=f.type, depth=self.depth, call=self.call, leaf=f.leaf,
            input_shapes=self.input_shapes, output_shapes=self.output_shapes,
            formula="; ".join(self.formulas) or None, ops=dict(sorted(self.ops.items())),
            values={k: values[k] for k in layer_keys if k in values},
        )


@dataclass(frozen=True)
class _OpInfo:
    """Facts about an aten overload that do not change between calls."""

    name: str
    rule: Any
    cacheable: bool
    moves_data: bool  # reads and writes tensor data: counts bytes (a view or an empty() moves none)
    allocates: bool  # writes fresh tensors: its outputs count as activations
    primary_only: bool  # only the first output is data; the rest is saved statistics
    creates: bool  # a factory (zeros, arange, ...) that takes a device argument
    shape_rule: shapes.Rule | None  # its outputs' metadata on meta without running torch's kernel
    single: bool  # returns one tensor (else a tuple of them)


@dataclass(frozen=True)
class _Cached:
    """A remembered meta result: how to rebuild the outputs, and what they cost."""

    metas: tuple[tuple[Shape, Shape, torch.dtype], ...]
    single: bool
    as_tuple: bool
    cost: OpCost
    sums: tuple[int, ...]


@dataclass
class TraceResult:
    """Everything one trace learned: module calls in order, and ops with no rule."""

    layers: list[LayerCost]
    uncounted: dict[str, tuple[int, list[str]]]
    flops_by_op: dict[str, int]
    state: dict[str, int]  # the model's tensor metrics, each tensor once


def _tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _shapes(values: Any) -> list[list[int]]:
    """Shapes of the tensors in ``values`` (one level of tuple/list/dict nesting)."""
    if isinstance(values, torch.Tensor):
        return [list(values.shape)]
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, (tuple, list)):
        found: list[list[int]] = []
        for v in values:
            if isinstance(v, torch.Tensor):
                found.append(list(v.shape))
            elif isinstance(v, (tuple, list)):
                found.extend(list(t.shape) for t in v if isinstance(t, torch.Tensor))
        return found
    return []


def _tensors(values: Any) -> Iterator[torch.Tensor]:
    for v in values:
        if isinstance(v, torch.Tensor):
            yield v
        elif isinstance(v, (tuple, list)):
            yield from (t for t in v if isinstance(t, torch.Tensor))


def _key_of(values: tuple | list) -> tuple:
    """A hashable key for op arguments: tensors by shape, stride and dtype.

    The device is left out: only results whose outputs are all on meta are cached,
    and a meta result depends on nothing else.
    """
    key: list[Any] = []
    for v in values:
        kind = type(v)
        if kind is torch.Tensor or isinstance(v, torch.Tensor):
            key.append((v.shape, v.stride(), v.dtype))
        elif kind is list or kind is tuple:
            key.append(_key_of(v))
        else:
            key.append(v)
    return tuple(key)


def _learn(func: Any, custom: dict[Any, Handler]) -> _OpInfo:
    schema = func._schema
    aliases = any(r.alias_info is not None for r in schema.returns)
    returns_tensors = all(
        str(r.type) in ("Tensor", "Tensor[]", "List[Tensor]") for r in schema.returns
    ) and len(schema.returns) > 0
    dynamic = torch.Tag.dynamic_output_shape in func.tags or (
        torch.Tag.data_dependent_output in func.tags
    )
    # An op that returns fresh tensors only updates *values* of any argument it mutates
    # (batch norm's running statistics); on meta there are no values, so its result
    # can be reused like any other.
    cacheable = not aliases and returns_tensors and not dynamic
    name = func.overloadpacket.__name__
    creates_uninitialized = name.startswith(("empty", "new_empty"))
    # In-place ops (relu_, add_, copy_) return their mutated input: no new memory,
    # but they read and write it; a pure view (view, t, slice) moves nothing.
    moves_data = (schema.is_mutable or not aliases) and not creates_uninitialized
    return _OpInfo(
        name=f"aten.{name}", rule=custom.get(func.overloadpacket, custom.get(func)) or rule_for(func.overloadpacket),
        cacheable=cacheable,
        moves_data=moves_data, allocates=moves_data and not aliases, primary_only=name in _STATISTICS_OUTPUTS,
        creates=any(a.name == "device" and a.kwarg_only for a in schema.arguments),
        shape_rule=shapes.rule_of(func) if cacheable else None,
        single=len(schema.returns) == 1,
    )


_META = torch.device("meta")
# What each aten overload is, learned once per process for the registered formulas; a
# trace with custom formulas learns its own.
_INFOS: dict[Any, _OpInfo] = {}


class _CountingMode(TorchDispatchMode):
    """Counts each op into the innermost module call on the tracer's stack."""

    def __init__(self, tracer: _Tracer, custom: dict[Any, Handler]) -> None:
        super().__init__()
        self.tracer = tracer
        self.custom = custom
        self.infos: dict[Any, _OpInfo] = _INFOS if not custom else {}

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Nothing is compiled inside this mode. Left True, torch wraps every dispatch in
        # a dynamo-disable frame and imports torch._dynamo (about a second) on first use.
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        info = self.infos.get(func)
        if info is None:
            info = self.infos[func] = _learn(func, self.custom)
        tracer = self.tracer
        if info.creates and tracer.reuse and kwargs.get("device") != _META:
            # a tensor made inside forward (torch.zeros(n), torch.arange(n)) joins the
            # meta trace, as it would join the model's device in real use
            kwargs = {**kwargs, "device": _META}
        if info.cacheable and tracer.reuse:
            key = (func, _key_of(args), _key_of(tuple(kwargs.values())), tuple(kwargs)) if kwargs else (
                func, _key_of(args))
            hit = tracer.cache.get(key)
            if hit is not None:
                tracer.count(info, hit.cost, hit.sums)
                if hit.single:
                    shape, stride, dtype = hit.metas[0]
                    return torch.empty_strided(shape, stride, dtype=dtype, device="meta")
                outs = [torch.empty_strided(s, st, dtype=d, device="meta") for s, st, d in hit.metas]
                return tuple(outs) if hit.as_tuple else outs
            out = self._run_on_meta(func, info, args, kwargs)
            cost, sums = self._cost(info, args, kwargs, out)
            outs = [out] if isinstance(out, torch.Tensor) else list(out)
            if all(o.device.type == "meta" for o in outs):
                metas = tuple((tuple(o.shape), o.stride(), o.dtype) for o in outs)
                tracer.cache[key] = _Cached(metas, isinstance(out, torch.Tensor), isinstance(out, tuple), cost, sums)
            tracer.count(info, cost, sums)
            return out
        out = func(*args, **kwargs)
        cost, sums = self._cost(info, args, kwargs, out)
        tracer.count(info, cost, sums)
        return out

    @staticmethod
    def _run_on_meta(func: Any, info: _OpInfo, args: tuple, kwargs: dict) -> Any:
        """The op's result, from its shape rule where it has one that is sure, else from torch's kernel."""
        metas = info.shape_rule(*args, **kwargs) if info.shape_rule is not None else None
        if metas is None:
            return func(*args, **kwargs)
        outs = tuple(torch.empty_strided(shape, stride, dtype=dtype, device=_META) for shape, stride, dtype in metas)
        return outs[0] if info.single else outs

    def _cost(self, info: _OpInfo, args: tuple, kwargs: dict, out: Any) -> tuple[OpCost, tuple[int, ...]]:
        """The op's arithmetic, and what it adds to each op metric of the catalogue."""
        cost = info.rule(args, kwargs, out) if info.rule is not None else FREE
        if not isinstance(cost, OpCost):
            raise TypeError(f"the formula of {info.name} returned {type(cost).__name__}, not an OpCost")
        read = written = 0
        if info.moves_data:
            outs = [out] if isinstance(out, torch.Tensor) else list(
                _tensors(out if isinstance(out, (tuple, list)) else ()))
            if info.primary_only:
                outs = outs[:1]
            written = sum(_tensor_bytes(o) for o in outs)
            read = sum(_tensor_bytes(t) for t in _tensors(args)) + sum(_tensor_bytes(t) for t in _tensors(kwargs.values()))
        event = OpEvent(cost.macs, cost.flops, read, written, written if info.allocates else 0)
        return cost, tuple(produce(event) for produce in self.tracer.producers)


class _Tracer:
    """Module-call stack, per-call records and the meta-result cache of one trace."""

    def __init__(self, facts: dict[int, ModuleFacts], reuse: bool) -> None:
        self.facts = facts
        self.reuse = reuse
        self.op_metrics = metrics.op_metrics()
        self.producers = [m.of_op for m in self.op_metrics if m.of_op is not None]
        self.cache: dict[Any, _Cached] = {}
        self.stack: list[_Call] = []
        self.calls: list[_Call] = []
        self.call_counts: Counter = Counter()
        self.uncounted: dict[str, tuple[int, list[str]]] = {}
        self.flops_by_op: Counter = Counter()

    def enter(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        facts = self.facts[id(module)]
        index = self.call_counts[facts.path]
        self.call_counts[facts.path] = index + 1
        shapes = _shapes(args) + _shapes(kwargs)
        record = _Call(facts, index, len(self.stack), shapes, [0] * len(self.producers))  # depth: calls around it
        self.calls.append(record)
        self.stack.append(record)

    def leave(self, module: nn.Module, args: tuple, output: Any) -> None:
        record = self.stack.pop()
        record.output_shapes = _shapes(output)
        if self.stack:
            self.stack[-1].absorb(record)

    def count(self, info: _OpInfo, cost: OpCost, contributions: tuple[int, ...]) -> None:
        if not self.stack:
            return
        record = self.stack[-1]
        sums = record.sums
        for i, value in enumerate(contributions):
            sums[i] += value
        record.ops[info.name] += 1
        self.flops_by_op[info.name] += cost.flops
        if cost.formula is not None:
            record.formulas.append(cost.formula)
        if info.rule is None:
            count, paths = self.uncounted.get(info.name, (0, []))
            if record.facts.path not in paths:
                paths.append(record.facts.path)
            self.uncounted[info.name] = (count + 1, paths)

    def innermost(self) -> _Call | None:
        return self.stack[-1] if self.stack else None


def module_facts(model: nn.Module, dtype: torch.dtype | None) -> dict[int, ModuleFacts]:
    """Path, type and state metrics (params, weight bytes, ...) of every module, keyed by ``id``.

    Like fvcore's parameter_count, each tensor is summed into every prefix of its
    dotted name, so a shared tensor counts once, under its first name.
    """
    producers = [(m.key, m.of_tensor) for m in metrics.tensor_metrics() if m.of_tensor is not None]
    keys = [key for key, _ in producers]
    modules = list(model.named_modules())
    sums = _state_by_path(modules, producers, dtype)
    nothing = [0] * len(keys)
    return {
        id(module): ModuleFacts(path=path, type=type(module).__name__, leaf=_is_leaf(module),
                                state=dict(zip(keys, sums.get(path, nothing))))
        for path, module in modules
    }


def _state_by_path(modules: list[tuple[str, nn.Module]], producers: list[tuple[str, Any]],
                   dtype: torch.dtype | None) -> dict[str, list[int]]:
    """Each module path's state metrics, its children's included; paths with none are left out.

    ``modules`` is in ``named_modules`` order (parents first), so walking it backwards
    finishes every child before its parent, and each path's sums are added to its
    parent's once.
    """
    seen: set[int] = set()
    sums: dict[str, list[int]] = {}
    for path, module in modules:
        own = _own_state(module, producers, dtype, seen)
        if own is not None:
            sums[path] = own
    for path, _ in reversed(modules):
        values = sums.get(path)
        if not path or values is None:
            continue
        parent = path[:max(path.rfind("."), 0)]
        above = sums.get(parent)
        sums[parent] = list(values) if above is None else [a + b for a, b in zip(above, values)]
    return sums


def _own_state(module: nn.Module, producers: list[tuple[str, Any]], dtype: torch.dtype | None,
               seen: set[int]) -> list[int] | None:
    """What the module's own tensors not seen before add to each state metric; None when nothing."""
    sums: list[int] | None = None
    for tensor, is_parameter in _own_tensors(module):
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        numel = tensor.numel()
        facts = TensorFacts(numel, numel * _element_size(tensor, dtype), is_parameter,
                            is_parameter and tensor.requires_grad)
        values = [produce(facts) for _, produce in producers]
        sums = values if sums is None else [a + b for a, b in zip(sums, values)]
    return sums


def _own_tensors(module: nn.Module) -> list[tuple[torch.Tensor, bool]]:
    """The module's own parameters and buffers (not its children's), flagged as parameters or not.

    Read from the registries that ``named_parameters(recurse=False)`` reads, without its
    generators: this runs for every module of every trace.
    """
    own = [(p, True) for p in module._parameters.values() if p is not None]
    return own + [(b, False) for b in module._buffers.values() if b is not None]


def _is_leaf(module: nn.Module) -> bool:
    """No child module (as ``children()`` sees it: registered, not None)."""
    return all(child is None for child in module._modules.values())


def _element_size(tensor: torch.Tensor, dtype: torch.dtype | None) -> int:
    """Bytes per element once floating-point state is cast to the trace's dtype."""
    if dtype is not None and tensor.is_floating_point():
        return dtype.itemsize
    return tensor.element_size()


@contextlib.contextmanager
def _hooks(model: nn.Module, tracer: _Tracer) -> Iterator[None]:
    handles = []
    try:
        for module in model.modules():
            handles.append(module.register_forward_pre_hook(tracer.enter, with_kwargs=True))
            handles.append(module.register_forward_hook(tracer.leave))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _eval_mode(model: nn.Module, train: bool) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.train(train)
        yield
    finally:
        for module, mode in modes:
            if module.training != mode:  # nn.Module's __setattr__ is slow: set only what changed
                module.training = mode


def _stand_ins(model: nn.Module, device: torch.device, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """Parameters and buffers as they must be for this trace, when they differ from the model's."""
    if not any(_needs_stand_in(t, device, dtype) for m in model.modules() for t, _ in _own_tensors(m)):
        return {}  # the usual case, found without listing every tensor's name
    swapped: dict[str, torch.Tensor] = {}
    named = list(model.named_parameters(remove_duplicate=False)) + list(
        model.named_buffers(remove_duplicate=False)
    )
    for name, t in named:
        if not _needs_stand_in(t, device, dtype):
            continue
        want = _traced_dtype(t, dtype)
        if device.type == "meta":
            swapped[name] = torch.empty_like(t, device="meta", dtype=want)
        else:
            swapped[name] = t.detach().to(device=device, dtype=want)
    return swapped


def _traced_dtype(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.dtype:
    return dtype if (dtype is not None and tensor.is_floating_point()) else tensor.dtype


def _needs_stand_in(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype | None) -> bool:
    return tensor.device.type != device.type or tensor.dtype != _traced_dtype(tensor, dtype)


def trace(
    model: nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any] | None = None,
    *,
    train: bool = False,
    dtype: torch.dtype | None = None,
    formulas: dict[Any, Handler] | None = None,
) -> TraceResult:
    """Run ``model(*args, **kwargs)`` once and return one ``LayerCost`` per module call.

    The device is the first input tensor's; parameters on another device or dtype are
    substituted for the trace (``torch.func.functional_call``), never moved, so the
    model is left as found: hooks removed, train/eval modes restored, even when its
    forward raises. ``formulas`` maps aten ops (packets or overloads) to handlers that
    take precedence over the registered ones, for this trace only.
    """
    kwargs = dict(kwargs or {})
    tensors = [t for t in list(args) + list(kwargs.values()) if isinstance(t, torch.Tensor)]
    if not tensors:
        raise ModelError("the model needs at least one input tensor to trace")
    device = tensors[0].device
    facts = module_facts(model, dtype)
    tracer = _Tracer(facts, reuse=device.type == "meta")
    stand_ins = _stand_ins(model, device, dtype)
    try:
        with _eval_mode(model, train), _hooks(model, tracer), torch.no_grad(), _CountingMode(tracer, formulas or {}):
            if stand_ins:
                torch.func.functional_call(model, stand_ins, tuple(args), kwargs, strict=False)
            else:
                model(*args, **kwargs)
    except Exception as error:  # the user's forward can raise anything
        raise _forward_error(tracer.innermost(), error) from error
    by_op = dict(sorted(tracer.flops_by_op.items(), key=lambda kv: -kv[1]))
    op_keys = [m.key for m in tracer.op_metrics]
    layer_keys = [m.key for m in metrics.per_layer()]  # catalogue order
    layers = [c.freeze(op_keys, layer_keys) for c in tracer.calls]
    return TraceResult(layers, tracer.uncounted, by_op, facts[id(model)].state)


def _forward_error(call: _Call | None, error: Exception) -> ModelError:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if call is None:
        return ModelError(f"the model's forward failed: {message}")
    where = call.facts.path or "<root>"
    shapes = ", ".join("x".join(map(str, s)) for s in call.input_shapes) or "no tensors"
    return ModelError(
        f"layer '{where}' ({call.facts.type}) failed on input {shapes}: {message}"
    )
