"""Trace one forward pass at the operator level and attribute each op to its module call.

A ``TorchDispatchMode`` sees every aten op, so functional calls (``F.relu``,
``torch.cat``, ``x + y``, ``x @ w``) count as well as modules. Forward hooks keep a
stack of the module calls in progress; each op's cost goes to the innermost call and
is rolled up into its parent when that call returns, so a parent's totals are exactly
the sum of the ops that ran inside it.

On the meta device no arithmetic is done and no weights are allocated. An op's meta
result depends only on the shapes, strides, dtypes and arguments of its inputs, so
results (and costs) of non-mutating, non-aliasing ops are cached for the process and
rebuilt with ``empty_strided`` instead of running the meta kernel again; a result not
yet cached comes from a shape rule (``count/shapes.py``) where the op has one, else from
torch's meta kernel. A result that lies on an input's storage though its op declares no
alias (``_unsafe_view``) is never cached. Calls of plain torch.nn layers, and of Sequentials
of them (blocks), are recorded and replayed in one step (``count/replay.py``), peak memory
included (``count/live.py``).

What a trace works out about a model before running it (its modules, their tensors and
facts, replay keys, stand-in forwards) is kept for the model's next trace on meta while
nothing it read changed, and a model made only of torch's own code has its whole trace
kept (``count/kept.py``). Nothing a profile reports depends on what ran
before it in the process (tests/test_replay_memory.py, tests/test_speed_tracer.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from costlens import metrics
from costlens.count import replay, shapes
from costlens.count.facts import ModuleFacts, own_tensors
from costlens.count.formulas import FORMULAS, FREE, Handler, OpCost, rule_for
from costlens.count.kept import (
    MOST_STRUCTURES,
    SETUPS,
    WHOLE,
    Block,
    Setup,
    TraceResult,
    frozen_trace,
    global_hooks,
    keep,
    key_of,
    plain_call,
    remember,
    setup_of,
    structure,
    thawed_trace,
    wrappable,
)
from costlens.count.live import LiveBytes
from costlens.count.swap import swapped
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


@dataclass(slots=True)
class _Call:
    """A module call in progress; becomes a frozen ``LayerCost`` when the trace ends.

    ``sums`` holds the op metrics of the catalogue, in catalogue order; ``ops`` counts
    the aten ops run inside the call, children included.
    """

    facts: ModuleFacts
    call: int
    depth: int
    input_shapes: list[list[int]]
    sums: list[int]
    output_shapes: list[list[int]]
    ops: dict[str, int]
    formulas: list[str] | tuple[str, ...]  # a replayed call's: the recording's, shared (only the running call's grow)
    output_sums: list[int] | tuple[int, ...] = ()  # the output metrics of the catalogue

    def absorb(self, child: _Call) -> None:
        self.sums = [mine + theirs for mine, theirs in zip(self.sums, child.sums)]
        ops = self.ops
        for name, count in child.ops.items():
            ops[name] = ops.get(name, 0) + count

    def freeze(self, plan: list[tuple[str, int, int, bool]]) -> LayerCost:
        """The finished record; ``plan`` (``_freeze_plan``) lists the per-layer metrics in catalogue order."""
        f = self.facts
        sums, state, outputs = self.sums, f.state, self.output_sums
        ops = self.ops
        values: dict[str, float] = {}
        for key, output, op, stateful in plan:
            if output >= 0 and outputs:
                values[key] = outputs[output]
            elif op >= 0:
                values[key] = sums[op]
            elif stateful:
                values[key] = state[key]
        return LayerCost.made(
            f.path, f.type, self.depth, self.call, f.leaf, self.input_shapes, self.output_shapes,
            "; ".join(self.formulas) or None, dict(sorted(ops.items())) if len(ops) > 1 else dict(ops), values,
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


def _returned_tensors(output: Any) -> list[torch.Tensor]:
    """The tensors in a module's output, as ``_shapes`` finds them."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    return list(_tensors(output)) if isinstance(output, (tuple, list)) else []


def _tensors(values: Any) -> Iterator[torch.Tensor]:
    for v in values:
        if isinstance(v, torch.Tensor):
            yield v
        elif isinstance(v, (tuple, list)):
            yield from (t for t in v if isinstance(t, torch.Tensor))


def _shares_storage(outs: list[torch.Tensor], args: tuple, kwargs: dict) -> bool:
    """An output on an input's storage, though the op's schema declares no alias: ``_unsafe_view``
    returns a view of its input. Rebuilt as a fresh tensor from the cache, it would count
    as new memory for the peak (``count/live.py``) where the kernel's result adds none."""
    inputs = {t.untyped_storage()._cdata for t in _tensors((*args, *kwargs.values()))}
    return any(o.untyped_storage()._cdata in inputs for o in outs)


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
# What each aten overload is and what its meta results cost, learned once per process
# for the registered formulas and the catalogue's op metrics (a trace with custom
# formulas keeps its own); registering another formula starts both afresh.
_INFOS: dict[Any, _OpInfo] = {}
_RESULTS: dict[tuple, dict[Any, _Cached]] = {}  # by the catalogue's op-metric producers, then by call
# likewise, then by layer (a replay.Replay) or block (a replay.BlockReplay) and inputs
_REPLAYS: dict[tuple, dict[Any, Any]] = {}
_LEARNED_WITH = [len(FORMULAS)]
_MOST_RESULTS = 50_000  # a bound on memory for long sessions: beyond it the cache starts again


def clear_caches() -> None:
    """Forget every learned op, cached meta result, recorded layer call and model setup (benchmarks of
    a cold trace use it)."""
    _INFOS.clear()
    _RESULTS.clear()
    _REPLAYS.clear()
    SETUPS.clear()
    WHOLE.clear()
    _LEARNED_WITH[0] = len(FORMULAS)


def _process_cache(caches: dict[tuple, dict], producers: list[Any]) -> dict:
    """The process-wide cache for these op-metric producers (a grown catalogue starts another)."""
    if _LEARNED_WITH[0] != len(FORMULAS):
        clear_caches()
    cache = caches.setdefault(tuple(producers), {})
    if len(cache) > _MOST_RESULTS:
        cache.clear()
    return cache


class _CountingMode(TorchDispatchMode):
    """Counts each op into the innermost module call on the tracer's stack."""

    def __init__(self, tracer: _Tracer, custom: dict[Any, Handler], live: LiveBytes) -> None:
        super().__init__()
        self.tracer = tracer
        self.custom = custom
        self.live = live
        self.infos: dict[Any, _OpInfo] = _INFOS if not custom else {}

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Nothing is compiled inside this mode. Left True, torch wraps every dispatch in
        # a dynamo-disable frame and imports torch._dynamo (about a second) on first use.
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = self._dispatch(func, args, kwargs)
        self.live.hold(func, out)  # the outputs the model gets: alive until torch frees them
        return out

    def _dispatch(self, func, args, kwargs):  # type: ignore[no-untyped-def]
        info = self.infos.get(func)
        if info is None:
            info = self.infos[func] = _learn(func, self.custom)
        tracer = self.tracer
        if tracer.reuse and info.creates and (not kwargs or kwargs.get("device") != _META):
            # a tensor made inside forward (torch.zeros(n), torch.arange(n)) joins the
            # meta trace, as it would join the model's device in real use
            kwargs = {**kwargs, "device": _META} if kwargs else {"device": _META}
        if not (info.cacheable and tracer.reuse):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            cost, sums = self._cost(info, args, kwargs, out)
            tracer.count(info, cost, sums)
            return out
        key = key_of(func, args, kwargs)
        hit = tracer.cache.get(key)
        if hit is not None:
            tracer.count(info, hit.cost, hit.sums)
            if hit.single:
                shape, stride, dtype = hit.metas[0]
                return torch.empty_strided(shape, stride, dtype=dtype, device=_META)
            outs = [torch.empty_strided(s, st, dtype=d, device=_META) for s, st, d in hit.metas]
            return tuple(outs) if hit.as_tuple else outs
        kwargs = kwargs or {}
        out, fresh = self._run_on_meta(func, info, args, kwargs)
        cost, sums = self._cost(info, args, kwargs, out)
        outs = [out] if isinstance(out, torch.Tensor) else list(out)
        if all(o.device.type == "meta" for o in outs) and (fresh or not _shares_storage(outs, args, kwargs)):
            metas = tuple((tuple(o.shape), o.stride(), o.dtype) for o in outs)
            tracer.cache[key] = _Cached(metas, isinstance(out, torch.Tensor), isinstance(out, tuple), cost, sums)
        tracer.count(info, cost, sums)
        return out

    @staticmethod
    def _run_on_meta(func: Any, info: _OpInfo, args: tuple, kwargs: dict) -> tuple[Any, bool]:
        """The op's result, from its shape rule where it has one that is sure, else from torch's
        kernel; and whether it is sure to be fresh tensors (a shape rule's always are)."""
        metas = info.shape_rule(*args, **kwargs) if info.shape_rule is not None else None
        if metas is None:
            return func(*args, **kwargs), False
        outs = tuple(torch.empty_strided(shape, stride, dtype=dtype, device=_META) for shape, stride, dtype in metas)
        return (outs[0] if info.single else outs), True

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
    """Module-call stack and per-call records of one trace, with the process's meta-result and layer caches."""

    def __init__(self, facts: dict[int, ModuleFacts], reuse: bool, own_formulas: bool = False) -> None:
        self.facts = facts
        self.reuse = reuse
        self.op_metrics = metrics.op_metrics()
        self.producers = [m.of_op for m in self.op_metrics if m.of_op is not None]
        self.output_producers = [m.of_output for m in metrics.output_metrics() if m.of_output is not None]
        self.output_memo: dict[tuple[tuple[int, int], ...], list[int]] = {}
        self.cache: dict[Any, _Cached] = {} if own_formulas else _process_cache(_RESULTS, self.producers)
        # recorded layer calls, on meta with the registered formulas only (None: every layer runs)
        self.replays: dict[Any, Any] | None = (
            _process_cache(_REPLAYS, self.producers) if reuse and not own_formulas and replay.available() else None)
        self.recording: list[tuple[_OpInfo, OpCost, tuple[int, ...]]] | None = None
        self.flop_log: list[tuple[str, int]] | None = None  # each op's FLOPs while a block is recorded
        self.live: LiveBytes | None = None  # the trace's peak-memory tracker: replayed calls apply theirs
        self.nothing = [0] * len(self.producers)
        self.stack: list[_Call] = []
        self.calls: list[_Call] = []
        self.call_counts: dict[str, int] = {}
        self.uncounted: dict[str, tuple[int, list[str]]] = {}
        self.flops_by_op: dict[str, int] = {}

    def _begin(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[Any, int, list[list[int]]]:
        """A new call of ``module``: its facts, its call index (counted here) and its input shapes."""
        facts = self.facts[id(module)]
        index = self.call_counts.get(facts.path, 0)
        self.call_counts[facts.path] = index + 1
        shapes = _shapes(args)
        if kwargs:
            shapes += _shapes(kwargs)
        return facts, index, shapes

    def enter(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        facts, index, shapes = self._begin(module, args, kwargs)
        stack = self.stack
        record = _Call(facts, index, len(stack), shapes, self.nothing, [], {}, [])  # depth: calls around it
        self.calls.append(record)
        stack.append(record)

    def leave(self, module: nn.Module, args: tuple, output: Any) -> None:
        stack = self.stack
        record = stack.pop()
        record.output_shapes = _shapes(output)
        if self.output_producers:
            record.output_sums = self._output_sums(output)
        if stack:
            stack[-1].absorb(record)

    def _output_sums(self, output: Any) -> list[int]:
        """The output metrics of the catalogue for a call that returned ``output``; a function of
        each returned tensor's size, so worked out once per sizes in a trace."""
        sizes = tuple((t.numel(), _tensor_bytes(t)) for t in _returned_tensors(output))
        known = self.output_memo.get(sizes)
        if known is None:
            returned = [TensorFacts(numel, size, False, False) for numel, size in sizes]
            known = self.output_memo[sizes] = [sum(produce(t) for t in returned) for produce in self.output_producers]
        return list(known)

    def count(self, info: _OpInfo, cost: OpCost, contributions: tuple[int, ...]) -> None:
        if not self.stack:
            return
        record = self.stack[-1]
        if self.recording is not None:
            self.recording.append((info, cost, contributions))
        record.sums = [mine + more for mine, more in zip(record.sums, contributions)]
        name = info.name
        ops = record.ops
        ops[name] = ops.get(name, 0) + 1
        by_op = self.flops_by_op
        by_op[name] = by_op.get(name, 0) + cost.flops
        if self.flop_log is not None:
            self.flop_log.append((name, cost.flops))
        if cost.formula is not None:
            formulas = record.formulas
            if isinstance(formulas, list):  # a running call's, as ``enter`` made it
                formulas.append(cost.formula)
            else:
                record.formulas = [*formulas, cost.formula]
        if info.rule is None:
            count, paths = self.uncounted.get(name, (0, []))
            if record.facts.path not in paths:
                paths.append(record.facts.path)
            self.uncounted[name] = (count + 1, paths)

    def call_layer(self, module: nn.Module, layer: tuple, forward: Any, args: tuple, kwargs: dict) -> Any:
        """A replayable layer's call: replayed when an equal call was recorded before
        (``count/replay.py``), else run, and recorded when it can be replayed later.

        Only calls whose inputs the peak-memory tracker counts take part: the caller holds
        them through the call, so what the call adds to the live bytes is its own."""
        replays, live = self.replays, self.live
        if replays is None or live is None:
            return self._run_call(module, forward, args, kwargs)
        inputs = replay.meta_inputs(args, kwargs)
        if inputs is None or not all(live.counted(t) is not None for t in inputs):
            return self._run_call(module, forward, args, kwargs)
        state = [t for t, _ in own_tensors(module)]
        key = (layer, _state_part(state, live), key_of(None, args, kwargs))
        done = replays.get(key)
        if done is None:
            output, recorded = self._record(module, forward, args, kwargs, live, state)
            if recorded is not None:
                replays[key] = recorded
            return output
        self._replay(module, args, kwargs, done)
        return _replayed_outputs(done, args, state, live)

    def _record(self, module: nn.Module, forward: Any, args: tuple, kwargs: dict, live: LiveBytes,
                state: list[torch.Tensor]) -> tuple[Any, replay.Replay | None]:
        """Run a replayable call; its recording too when its outputs can be rebuilt and the
        bytes it left alive are its fresh outputs' and those of the layer's own tensors it
        had the tracker count (None otherwise)."""
        before = [live.counted(t) for t in state]
        mark = live.open()
        first = len(self.calls)
        self.recording = []
        try:
            output = self._run_call(module, forward, args, kwargs)
        finally:
            recorded, self.recording = self.recording, None
            rise, left = live.close(mark)
        if len(self.calls) != first + 1:
            return output, None  # a module call inside it, whose record a replay would not make
        left_alive = _left_alive(output, args, live, state, before, left)
        if left_alive is None:
            return output, None
        made, sizes, kept = left_alive
        return output, self._summary(recorded, self.calls[first], made, rise, sizes, kept)

    def call_block(self, module: nn.Module, block: Block, forward: Any, args: tuple, kwargs: dict) -> Any:
        """A block's call (``replay.block_key``): replayed whole, every call inside it included,
        when an equal call was recorded before, else run and recorded; as ``call_layer``."""
        replays, live = self.replays, self.live
        if replays is None or live is None:
            return self._run_call(module, forward, args, kwargs)
        inputs = replay.meta_inputs(args, kwargs)
        if inputs is None or not all(live.counted(t) is not None for t in inputs):
            return self._run_call(module, forward, args, kwargs)
        state = [t for t, _ in own_tensors(module)] + [t for m in block.inside for t, _ in own_tensors(m)]
        key = (block.key, _state_part(state, live), key_of(None, args, kwargs))
        done = replays.get(key)
        if done is None:
            output, recorded = self._record_block(module, block, forward, args, kwargs, live, state)
            if recorded is not None:
                replays[key] = recorded
            return output
        self._replay_block(module, block, args, kwargs, done)
        return _replayed_outputs(done, args, state, live)

    def _record_block(self, module: nn.Module, block: Block, forward: Any, args: tuple, kwargs: dict,
                      live: LiveBytes, state: list[torch.Tensor]) -> tuple[Any, replay.BlockReplay | None]:
        """Run a block's call; its recording too when every call inside it is of one of its
        modules, no op in it lacks a formula, and it leaves alive what a layer's recording must."""
        before = [live.counted(t) for t in state]
        uncounted = sum(count for count, _ in self.uncounted.values())
        outer, self.flop_log = self.flop_log, []
        mark = live.open()
        first = len(self.calls)
        try:
            output = self._run_call(module, forward, args, kwargs)
        finally:
            logged, self.flop_log = self.flop_log, outer
            rise, left = live.close(mark)
            if outer is not None:
                outer.extend(logged)
        if uncounted != sum(count for count, _ in self.uncounted.values()):
            return output, None
        positions = {id(self.facts[id(m)]): i for i, m in reversed(list(enumerate((module, *block.inside))))}
        calls = self.calls[first:]
        if any(id(call.facts) not in positions for call in calls):
            return output, None
        left_alive = _left_alive(output, args, live, state, before, left)
        if left_alive is None:
            return output, None
        made, sizes, kept = left_alive
        flops: dict[str, int] = {}
        for name, count in logged:
            flops[name] = flops.get(name, 0) + count
        depth = calls[0].depth
        records = tuple((positions[id(c.facts)], c.depth - depth, tuple(map(tuple, c.input_shapes)),
                         tuple(map(tuple, c.output_shapes)), c.sums, dict(c.ops), tuple(c.formulas),
                         tuple(c.output_sums)) for c in calls)
        return output, replay.BlockReplay(records, tuple(flops.items()), *made, rise, sizes, kept)

    def _replay_block(self, module: nn.Module, block: Block, args: tuple, kwargs: dict,
                      done: replay.BlockReplay) -> None:
        """Record every call of a block's recorded call as running it would, and roll the block's up."""
        facts, modules = self.facts, (module, *block.inside)
        counts, calls = self.call_counts, self.calls
        base = len(self.stack)
        made = []
        # sums are never changed in place (replaced, not added to), so the recording's are shared
        for position, depth, inputs, outputs, sums, ops, formulas, output_sums in done.records:
            known = facts[id(modules[position])]
            path = known.path
            index = counts.get(path, 0)
            counts[path] = index + 1
            # ops, formulas and output sums are only read once recorded (only the running call's change)
            made.append(_Call(known, index, base + depth, list(map(list, inputs)), sums, list(map(list, outputs)),
                              ops, formulas, output_sums))
        calls.extend(made)
        by_op = self.flops_by_op
        for name, flops in done.flops:
            by_op[name] = by_op.get(name, 0) + flops
        if self.flop_log is not None:
            self.flop_log.extend(done.flops)
        if self.stack:
            self.stack[-1].absorb(made[0])

    def _run_call(self, module: nn.Module, forward: Any, args: tuple, kwargs: dict) -> Any:
        self.enter(module, args, kwargs)
        output = forward(*args, **kwargs)
        self.leave(module, args, output)
        return output

    def _summary(self, recorded: list[tuple[_OpInfo, OpCost, tuple[int, ...]]], record: _Call, made: tuple[tuple, bool],
                 rise: int, sizes: tuple[int, ...], kept: tuple[tuple[int, int], ...]) -> replay.Replay:
        """The finished ``record`` of a call with no call inside it, and what ``count`` did
        for each of its ``recorded`` ops beyond it, to do again in one step."""
        flops: dict[str, int] = {}
        for info, cost, _ in recorded:
            flops[info.name] = flops.get(info.name, 0) + cost.flops
        return replay.Replay(
            record.sums, tuple(record.ops.items()), tuple(flops.items()), tuple(record.formulas),
            tuple(info.name for info, _, _ in recorded if info.rule is None),
            *made, tuple(map(tuple, record.output_shapes)), tuple(record.output_sums), rise, sizes, kept)

    def _replay(self, module: nn.Module, args: tuple, kwargs: dict, done: replay.Replay) -> None:
        """Record a leaf call as the recorded one left its own (what ``enter``, the ops and
        ``leave`` would have), and roll it up."""
        facts, index, shapes = self._begin(module, args, kwargs)
        path = facts.path
        stack = self.stack
        # sums are never changed in place (replaced, not added to), so the recording's are shared
        record = _Call(facts, index, len(stack), shapes, done.sums, list(map(list, done.output_shapes)),
                       dict(done.ops), done.formulas, done.output_sums)
        self.calls.append(record)
        by_op = self.flops_by_op
        for name, flops in done.flops:
            by_op[name] = by_op.get(name, 0) + flops
        if self.flop_log is not None:
            self.flop_log.extend(done.flops)
        for name in done.uncounted:
            count, paths = self.uncounted.get(name, (0, []))
            if path not in paths:
                paths.append(path)
            self.uncounted[name] = (count + 1, paths)
        if stack:
            stack[-1].absorb(record)

    def innermost(self) -> _Call | None:
        return self.stack[-1] if self.stack else None


def _replayed_outputs(done: replay.Replay | replay.BlockReplay, args: tuple, state: list[torch.Tensor],
                      live: LiveBytes) -> Any:
    """A replayed call's outputs, rebuilt, with the peak-memory tracker told what the call's
    recording says it raised and left alive (its fresh outputs, and its own tensors it counted)."""
    outputs = done.outputs_for(args)
    made = (outputs,) if done.single else outputs
    kept = [(t, size) for t, size in zip(made, done.output_bytes) if size]
    live.replay(done.rise, kept + [(state[i], size) for i, size in done.state_kept] if done.state_kept else kept)
    return outputs


def _left_alive(output: Any, args: tuple, live: LiveBytes, state: list[torch.Tensor], before: list[int | None],
                left: int) -> tuple[tuple[tuple, bool], tuple[int, ...], tuple[tuple[int, int], ...]] | None:
    """How to rebuild a recorded call's ``output`` (``replay.outputs_of``), the bytes the tracker
    counts for each output, and those of the ``state`` tensors it counted only after the call
    (``before`` holds what it counted at entry); None unless the ``left`` bytes alive after it
    are exactly those (an output the tracker does not count, two on one storage: anything else)."""
    made = replay.outputs_of(output, args)
    if made is None:
        return None
    outs = (output,) if made[1] else output
    fresh = [out for spec, out in zip(made[0], outs) if not isinstance(spec, int)]
    counted = [0 if isinstance(spec, int) else live.counted(out) for spec, out in zip(made[0], outs)]
    sizes = [size for size in counted if size is not None]
    if len(sizes) != len(counted) or len({id(out.untyped_storage()) for out in fresh}) != len(fresh):
        return None
    kept = tuple((i, size) for i, (t, was) in enumerate(zip(state, before))
                 if was is None and (size := live.counted(t)) is not None)
    if left != sum(sizes) + sum(size for _, size in kept):
        return None
    return made, tuple(sizes), kept


def _state_part(state: list[torch.Tensor], live: LiveBytes) -> tuple:
    """What a layer's call depends on in its own tensors beyond ``replay.layer_key``: each one's
    metadata as the call finds it (stand-ins included), and whether the peak-memory tracker
    counts it yet (else where it lies in its storage, which sets what counting it adds)."""
    return tuple((t.shape, t.stride(), t.dtype,
                  live.counted(t) is not None or (t.storage_offset(), t.untyped_storage().nbytes())) for t in state)


@contextlib.contextmanager
def _watching(setup: Setup, tracer: _Tracer) -> Iterator[None]:
    """Report every module call to the tracer, and leave the modules as found.

    A module without hooks of its own gets a stand-in ``forward`` for the trace that
    calls the tracer around the real one: nn.Module then takes its hook-free fast path,
    several microseconds a call cheaper than running hooks. A module with hooks, or
    one whose calls do not go through ``forward``, gets a forward pre-hook and hook as
    before, registered after its own so the tracer sees what they do.
    """
    modules = setup.modules
    wrapped: list[nn.Module] = []
    handles = []
    hooks_everywhere = global_hooks()
    plain_types = {kind for kind in {type(m) for _, m in modules} if plain_call(kind)}
    watched = set() if hooks_everywhere else {id(m) for _, m in modules if type(m) in plain_types and wrappable(m)}
    keys = setup.replay_keys(watched) if tracer.replays is not None else {}
    forwards, box = setup.stand_in_forwards(watched, keys)
    box[0] = tracer
    try:
        for _, module in modules:
            if id(module) in watched:
                module.__dict__["forward"] = forwards[id(module)]
                wrapped.append(module)
            else:
                handles.append(module.register_forward_pre_hook(tracer.enter, with_kwargs=True))
                handles.append(module.register_forward_hook(tracer.leave))
        yield
    finally:
        box[0] = None
        for module in wrapped:
            module.__dict__.pop("forward", None)
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _eval_mode(model: nn.Module, modules: list[tuple[str, nn.Module]], train: bool) -> Iterator[None]:
    modes = [(m, m.training) for _, m in modules]
    try:
        if any(kind.train is not nn.Module.train or kind.__setattr__ is not nn.Module.__setattr__
               for kind in {type(m) for _, m in modules}):
            model.train(train)
        else:  # what nn.Module.train does, without setting the flags that are already right
            for module, mode in modes:
                if mode != train:
                    _set_training(module, train)
        yield
    finally:
        for module, mode in modes:
            if module.training != mode:  # set only what changed
                _set_training(module, mode)


def _set_training(module: nn.Module, mode: bool) -> None:
    """``module.training = mode``: nn.Module's ``__setattr__`` looks ``training`` up in the
    parameter, buffer and module tables first, slowly, and finds it in none (a module whose
    table holds it, or whose class sets attributes its own way, gets the usual assignment)."""
    if type(module).__setattr__ is nn.Module.__setattr__ and "training" not in module._parameters \
            and "training" not in module._buffers and "training" not in module._modules:
        object.__setattr__(module, "training", mode)
    else:
        module.training = mode


def _stand_ins(model: nn.Module, owned: list[list[tuple[torch.Tensor, bool]]], device: torch.device,
               dtype: torch.dtype | None, train: bool = False) -> dict[int, torch.Tensor]:
    """Parameters and buffers as they must be for this trace, by the original's id, when they
    differ from the model's (``count/swap.py`` puts them in place); in training mode on a real
    device, copies of the buffers, which the forward updates.

    ``owned`` holds each module's own tensors (``own_tensors``).
    """
    copy_buffers = train and device.type != "meta" and any(not p for own in owned for _, p in own)
    if not copy_buffers and not _any_stand_in(owned, device, dtype):
        return {}  # the usual case, found without listing every tensor
    swapped: dict[int, torch.Tensor] = {}
    for t, is_parameter in (pair for own in owned for pair in own):
        if id(t) in swapped:
            continue
        if not _needs_stand_in(t, device, dtype):
            if copy_buffers and not is_parameter:
                swapped[id(t)] = t.detach().clone()  # batch norm's running statistics stay the model's
            continue
        want = _traced_dtype(t, dtype)
        if device.type == "meta":
            swapped[id(t)] = torch.empty_like(t, device="meta", dtype=want)
        else:
            swapped[id(t)] = t.detach().to(device=device, dtype=want)
    return swapped


def _any_stand_in(owned: list[list[tuple[torch.Tensor, bool]]], device: torch.device, dtype: torch.dtype | None) -> bool:
    """Some parameter or buffer is on another device than the trace's, or floating-point in another dtype."""
    tensors = [t for own in owned for t, _ in own]
    if device.type == "meta":  # is_meta is a flag; tensor.device builds an object
        placed = all(t.is_meta for t in tensors)
    else:
        placed = all(t.device.type == device.type for t in tensors)
    return not placed or (dtype is not None and any(t.dtype != dtype for t in tensors if t.is_floating_point()))


def _traced_dtype(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.dtype:
    return dtype if (dtype is not None and tensor.is_floating_point()) else tensor.dtype


def _needs_stand_in(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype | None) -> bool:
    if device.type == "meta":  # is_meta is a flag; tensor.device builds an object
        return not tensor.is_meta or tensor.dtype != _traced_dtype(tensor, dtype)
    return tensor.device.type != device.type or tensor.dtype != _traced_dtype(tensor, dtype)


def trace(
    model: nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any] | None = None,
    *,
    train: bool = False,
    dtype: torch.dtype | None = None,
    formulas: dict[Any, Handler] | None = None,
    call: tuple | None = None,
) -> TraceResult:
    """Run ``model(*args, **kwargs)`` once and return one ``LayerCost`` per module call.

    The device is the first input tensor's; parameters on another device or dtype are
    substituted for the trace (``torch.func.functional_call``), never moved, so the
    model is left as found: stand-in forwards and hooks removed, train/eval modes
    restored, even when its forward raises. ``formulas`` maps aten ops (packets or overloads) to handlers that
    take precedence over the registered ones, for this trace only. ``call``: how the caller made
    ``args`` (a hashable description that determines their metadata, as the API's plain shape on
    meta), to find a whole trace kept for it before making them again (``kept_call``).
    """
    kwargs = dict(kwargs or {})
    tensors = [t for t in list(args) + list(kwargs.values()) if isinstance(t, torch.Tensor)]
    if not tensors:
        raise ModelError("the model needs at least one input tensor to trace")
    device = tensors[0].device
    setup = setup_of(model)
    stand_ins = _stand_ins(model, setup.owned, device, dtype, train)
    whole = built = None
    if not stand_ins and not formulas and device.type == "meta" and replay.available():  # as layer replays
        whole = setup.whole_key(tensors, args, kwargs, train, dtype)
    if whole is not None:
        done = setup.results.get(whole)
        if done is None:  # another model of the same structure traced before, as a model built by name
            built = (structure(setup), whole)
            done = WHOLE.get(built)
        if done is not None:
            keep(model, setup)
            remember(setup, whole, call, train, dtype, done)
            return thawed_trace(done)
    tracer = _Tracer(setup.facts_for(model, dtype), reuse=device.type == "meta", own_formulas=bool(formulas))
    result = _run(model, args, kwargs, setup, tracer, stand_ins, tensors, device, train, formulas)
    if whole is not None and built is not None:
        done = frozen_trace(result)
        remember(setup, whole, call, train, dtype, done)
        if len(WHOLE) >= MOST_STRUCTURES:
            WHOLE.clear()
        WHOLE[built] = done
    return result


def _run(model: nn.Module, args: Sequence[Any], kwargs: dict[str, Any], setup: Setup, tracer: _Tracer,
         stand_ins: dict[int, torch.Tensor], tensors: list[torch.Tensor], device: torch.device, train: bool,
         formulas: dict[Any, Handler] | None) -> TraceResult:
    """``trace``'s forward pass under the tracer, and its result."""
    modules, owned, facts = setup.modules, setup.owned, tracer.facts
    live = tracer.live = LiveBytes(tensors, [t for own in owned for t, _ in own] + list(stand_ins.values()))
    try:
        with _eval_mode(model, modules, train), _watching(setup, tracer), torch.no_grad(), \
                _CountingMode(tracer, formulas or {}, live), swapped(model, stand_ins):
            model(*args, **kwargs)
    except Exception as error:  # the user's forward can raise anything
        raise _forward_error(tracer.innermost(), error) from error
    finally:
        if device.type == "meta" and not stand_ins:  # the model holds no real weights for the cache to keep
            keep(model, setup)
    by_op = dict(sorted(tracer.flops_by_op.items(), key=lambda kv: -kv[1]))
    state = facts[id(model)].state
    plan = _freeze_plan(tracer, state)
    layers = [c.freeze(plan) for c in tracer.calls]
    peak = {"peak_bytes": state.get("weight_bytes", 0) + live.peak}  # weights stay alive throughout
    return TraceResult(layers, tracer.uncounted, by_op, {**state, **peak})


def _freeze_plan(tracer: _Tracer, state: dict[str, int]) -> list[tuple[str, int, int, bool]]:
    """Each per-layer metric that can have a value, in catalogue order, with where a call's
    value comes from: its index among the output sums (taken when the call has them),
    else among the op sums, else -1; and whether it is a state metric. Worked out once
    per trace, not once per call."""
    output_index = {m.key: i for i, m in enumerate(metrics.output_metrics())}
    op_index = {m.key: i for i, m in enumerate(tracer.op_metrics)}
    return [(m.key, output_index.get(m.key, -1), op_index.get(m.key, -1), m.key in state)
            for m in metrics.per_layer() if m.key in output_index or m.key in op_index or m.key in state]


def _forward_error(call: _Call | None, error: Exception) -> ModelError:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if call is None:
        return ModelError(f"the model's forward failed: {message}")
    where = call.facts.path or "<root>"
    shapes = ", ".join("x".join(map(str, s)) for s in call.input_shapes) or "no tensors"
    return ModelError(
        f"layer '{where}' ({call.facts.type}) failed on input {shapes}: {message}"
    )
