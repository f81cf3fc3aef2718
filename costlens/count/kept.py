"""What the tracer keeps between traces of a model, and the keys it keeps them by.

A **setup** (``Setup``) per model object: its modules, their own tensors, their facts, the
replay keys and stand-in forwards, reused while every module, tensor and attribute is the
same object with the same metadata (``setup_of``, ``keep``). A **whole trace** of a model that
runs torch's own code only (``Setup.wholly_own``), frozen (``frozen``), by inputs and modes
per model object, by the caller's description of its inputs (``kept_call``) and by structure
(``structure``, for a model built afresh by name). Nothing kept may change a result: every key
holds everything its result depends on (docs/architecture.md, "Counting fast").
"""

from __future__ import annotations

import functools
import operator
import sys
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from costlens import metrics
from costlens.count import replay
from costlens.count.facts import ModuleFacts, module_facts, own_tensors
from costlens.count.formulas import FORMULAS
from costlens.records import LayerCost


@dataclass
class TraceResult:
    """Everything one trace learned: module calls in order, and ops with no rule."""

    layers: list[LayerCost]
    uncounted: dict[str, tuple[int, list[str]]]
    flops_by_op: dict[str, int]
    state: dict[str, int]  # the model's tensor metrics, each tensor once


_KEYWORDS = object()  # separates positional from keyword arguments in a cache key
_NUMBERS = (bool, int, float)


def key_part(value: Any) -> Any:
    """A hashable stand-in for one op argument: a tensor by shape, stride and dtype.

    The device is left out: only results whose outputs are all on meta are cached, and
    a meta result depends on nothing else. Numbers keep their type, since 2 and 2.0
    (equal as keys) promote an integer tensor differently.
    """
    kind = type(value)
    if kind is torch.Tensor or isinstance(value, torch.Tensor):
        return value.shape, value.stride(), value.dtype
    if kind is list or kind is tuple:
        return tuple(map(key_part, value))
    if kind in _NUMBERS:
        return kind, value
    return value


def key_of(func: Any, args: tuple, kwargs: dict) -> tuple:
    """The cache key of one call: the overload and every argument's stand-in."""
    if not kwargs:
        return func, *map(key_part, args)
    return func, *map(key_part, args), _KEYWORDS, *kwargs, *map(key_part, kwargs.values())


@dataclass(slots=True)
class Setup:
    """What a trace works out about a model before running it: its modules, their own tensors
    (``own_tensors``), their facts by trace dtype and the replay keys (``replay_keys_of``).

    It is kept for the model's next trace on meta (``setup_of``) while nothing it was
    worked out from changed: each module's class and its ``forward``, attributes, children,
    parameters and buffers (the objects, by name: ``_signature``), every tensor's metadata,
    and for replay keys and stand-in forwards, which modules get one and the trace's modes.
    """

    modules: list[tuple[str, nn.Module]]
    owned: list[list[tuple[torch.Tensor, bool]]]
    signatures: list[tuple]
    metas: list[tuple]
    facts: dict[tuple, dict[int, ModuleFacts]] = field(default_factory=dict)  # by dtype and state producers
    keys: tuple[set[int], tuple, dict[int, Any]] | None = None
    lasting: bool = True  # kept for the model's next trace: worth keeping what a trace works out
    pure: bool | None = None  # every module runs torch's own code only (``wholly_own``); None: not known yet
    configs: list[tuple] = field(default_factory=list)  # each module's configuration, when ``pure``
    results: dict[tuple, Frozen] = field(default_factory=dict)  # whole traces, by ``whole_key``
    calls: dict[tuple, Frozen] = field(default_factory=dict)  # the same, by the caller's ``call`` (``kept_call``)
    # the stand-in forwards made for ``keys`` and these watched modules, and the box that holds
    # the tracer they report to while a trace runs
    forwards: tuple[dict[int, Any], set[int], dict[int, Any], list[Any]] | None = None

    def stand_in_forwards(self, watched: set[int], keys: dict[int, Any]) -> tuple[dict[int, Any], list[Any]]:
        """A stand-in forward (``watched_forward``) for each watched module, by ``id``, and the box for the
        trace's tracer; those of the last trace while made for these keys and nothing traces with them now."""
        if not self.lasting:
            box: list[Any] = [None]
            return {id(m): watched_forward(m, m.forward, box, keys.get(id(m))) for _, m in self.modules if id(m) in watched}, box
        made, root = self.forwards, self.modules[0][1]
        if made is not None and made[0] is keys and made[1] == watched and made[3][0] is None:
            box = made[3]
            forwards = dict(made[2])
        else:
            box = [None]
            stand_ins = {id(module): watched_forward(module, module.forward, box, keys.get(id(module)))
                         for _, module in self.modules[1:] if id(module) in watched}
            self.forwards = keys, set(watched), stand_ins, box
            forwards = dict(stand_ins)
        if id(root) in watched:  # made for each trace: a kept stand-in would hold the model
            forwards[id(root)] = watched_forward(root, root.forward, box, keys.get(id(root)))
        return forwards, box

    def wholly_own(self) -> bool:
        """Every module runs torch's own code only (``replay.own_config``), called without hooks."""
        if self.pure is None:
            self.pure, self.configs = _own_configs(self.modules)
        return self.pure and not global_hooks() and all(wrappable(module) for _, module in self.modules)

    def whole_key(self, tensors: list[torch.Tensor], args: Sequence[Any], kwargs: dict[str, Any],
                  train: bool, dtype: torch.dtype | None) -> tuple | None:
        """What a whole trace of the model depends on beyond this setup, when the model runs
        torch's own code only (``wholly_own``) on meta inputs; else None. Such a trace is kept
        whole with the setup (``results``)."""
        if not self.wholly_own():
            return None
        if kwargs or len(tensors) != len(args) or not all(t.is_meta for t in tensors):
            return None  # only tensors, each known by its metadata alone (a Sequential takes one)
        return (train, dtype, torch.get_default_dtype(), key_of(None, tuple(args), kwargs), _placed(tensors),
                _catalogue_key())

    def facts_for(self, model: nn.Module, dtype: torch.dtype | None) -> dict[int, ModuleFacts]:
        producers = tuple(m.of_tensor for m in metrics.tensor_metrics())
        known = self.facts.get((dtype, producers))
        if known is None:
            known = self.facts[(dtype, producers)] = module_facts(model, dtype, self.modules, self.owned)
        return known

    def replay_keys(self, watched: set[int]) -> dict[int, Any]:
        """``replay_keys_of`` of the watched modules, worked out again only when something they read changed."""
        kept, modules = self.keys, self.modules
        # what keys read beyond the setup's signatures: the trace's modes (set after the signatures)
        modes = (torch.get_default_dtype(), *(module.training for _, module in modules))
        if kept is not None and kept[0] == watched and kept[1] == modes:
            return kept[2]
        keys = replay_keys_of(modules, watched)
        if self.lasting and all(replay.steady(module) for _, module in modules if keys.get(id(module)) is not None):
            self.keys = set(watched), modes, keys
        return keys


def _own_configs(modules: list[tuple[str, nn.Module]]) -> tuple[bool, list[tuple]]:
    """Whether every module runs torch's own code only, called through nn.Module's own ``__call__``
    and with its own ``train`` and ``__setattr__``; and if so, each one's configuration."""
    configs = []
    for _, module in modules:
        kind = type(module)
        config = replay.own_config(module)
        if config is None or not plain_call(kind) or kind.train is not nn.Module.train \
                or kind.__setattr__ is not nn.Module.__setattr__:
            return False, []
        configs.append(config)
    return True, configs


_CATALOGUE_KEY: list[tuple] = [(), ()]  # the catalogue's source (views held, so no id is reused) and its key


def _catalogue_key() -> tuple:
    """What a whole trace's values depend on in the formula and metric catalogues: the formulas
    registered, and each op, output and per-layer metric's producer and key."""
    views = (metrics.op_metrics(), metrics.output_metrics(), metrics.per_layer())  # one object per catalogue
    source, key = _CATALOGUE_KEY
    if len(source) != 4 or source[0] != len(FORMULAS) or not all(map(operator.is_, source[1:], views)):
        key = (len(FORMULAS), *(m.of_op for m in views[0]), *(m.of_output for m in views[1]),
               *(m.key for m in views[2]))
        _CATALOGUE_KEY[:] = [(len(FORMULAS), *views), key]
    return key


# Setups of the models traced last, by id (a kept setup holds its model's modules, not the model)
SETUPS: dict[int, tuple[weakref.ref, Setup | None]] = {}
_MOST_SETUPS = 16
_NO_ROOT = ("", nn.Module())  # a kept setup's first entry, in the model's place


def setup_of(model: nn.Module) -> Setup:
    """The model's kept setup while it still describes the model, else a new one: to be kept
    (``lasting``) from the model's second trace on, so a model traced once (built by name for
    one profile) pays nothing for what a later trace would check."""
    ref, setup = SETUPS.get(id(model), (None, None))
    seen = ref is not None and ref() is model
    if seen and setup is not None:
        setup.modules[0] = ("", model)
        if _unchanged(setup):
            return setup
    modules = list(model.named_modules())
    owned = [own_tensors(module) for _, module in modules]
    if not seen:
        return Setup(modules, owned, [], [], lasting=False)
    return Setup(modules, owned, [_signature(module) for _, module in modules], _metas(owned))


def keep(model: nn.Module, setup: Setup) -> None:
    """Keep ``setup`` for the model's next trace, once it ended (its root entry is replaced: the
    setup does not hold the model), or only that the model was traced, if it is not ``lasting``.
    The entry goes when the model does."""
    key = id(model)
    kept = SETUPS.get(key)
    if kept is None or kept[0]() is not model:
        if len(SETUPS) >= _MOST_SETUPS:
            SETUPS.pop(next(iter(SETUPS)))
        ref = weakref.ref(model, functools.partial(_forget, SETUPS, key))
    else:
        ref = kept[0]
    SETUPS[key] = ref, setup if setup.lasting else None
    setup.modules[0] = _NO_ROOT  # ``setup_of`` puts the model back


def _forget(setups: dict[int, tuple[weakref.ref, Setup | None]], key: int, ref: weakref.ref) -> None:
    """A kept model is gone: so is its entry (unless another model took its ``id`` since). ``setups``
    is ``SETUPS``, bound when the entry was made: at exit the module's globals may be gone first."""
    kept = setups.get(key)
    if kept is not None and kept[0] is ref:
        del setups[key]


def _unchanged(setup: Setup) -> bool:
    """Every module of the setup has the signature it had, and every tensor its metadata."""
    for (_, module), signature in zip(setup.modules, setup.signatures):
        now = _signature(module)
        if len(now) != len(signature) or not all(map(operator.is_, now, signature)):
            return False
    return _metas(setup.owned) == setup.metas


def _signature(module: nn.Module) -> tuple:
    """A module's class and its ``forward``, and every attribute, child, parameter and buffer by
    name: the objects themselves (compared by identity), so none dies and lends its ``id`` to
    another while the setup is kept. Each registry precedes its entries, setting them apart."""
    attributes, children, parameters, buffers = vars(module), module._modules, module._parameters, module._buffers
    return (type(module), getattr(type(module), "forward", None), *attributes, *attributes.values(),
            children, *children, *children.values(), parameters, *parameters, *parameters.values(),
            buffers, *buffers, *buffers.values())


def _metas(owned: list[list[tuple[torch.Tensor, bool]]]) -> list[tuple]:
    """The metadata of every own tensor that facts, stand-ins and replay keys read."""
    return [(t.shape, t.stride(), t.dtype, t.requires_grad, t.is_meta) for own in owned for t, _ in own]


_CALL_IMPL = nn.Module._call_impl.__code__


@dataclass(frozen=True, slots=True)
class Block:
    """A block (``replay.block_key``): its key, and the modules inside it (not itself, which a setup
    kept for the model's next trace would hold in its block keys)."""

    key: tuple
    inside: list[nn.Module]  # every module in it but itself, each once (``replay.block_key``'s less the first)


def replay_keys_of(modules: list[tuple[str, nn.Module]], watched: set[int]) -> dict[int, tuple | Block | None]:
    """Each watched module's replay key (``replay.layer_key``) or block, by ``id``; None for
    those without. Children come before their parents (``modules`` backwards), so a
    container with a child that is neither is known to be no block at once."""
    keys: dict[int, tuple | Block | None] = {}
    known: dict[int, tuple | None] = {}
    for _, module in reversed(modules):
        if id(module) not in watched:
            known[id(module)] = None
        elif not module._modules:
            keys[id(module)] = known[id(module)] = replay.layer_key(module)
        else:
            found = replay.block_key(module, known)
            block = None if found is None else Block(("block", found[0]), found[1][1:])
            keys[id(module)] = block
            if block is None:
                known[id(module)] = None
    return keys


def watched_forward(module: nn.Module, forward: Any, box: list[Any], layer: tuple | Block | None) -> Any:
    """``module``'s stand-in forward, reporting to the tracer in ``box``; ``layer`` is its replay
    key (``replay.layer_key``) or its block, if it has one."""
    def watched(*args: Any, **kwargs: Any) -> Any:
        if sys._getframe(1).f_code is not _CALL_IMPL:
            return forward(*args, **kwargs)  # ``forward`` called directly is no module call, as hooks see it
        tracer = box[0]  # the running trace's tracer (count/tracer.py)
        if isinstance(layer, Block):
            return tracer.call_block(module, layer, forward, args, kwargs)
        if layer is not None:
            return tracer.call_layer(module, layer, forward, args, kwargs)
        tracer.enter(module, args, kwargs)
        output = forward(*args, **kwargs)
        tracer.leave(module, args, output)
        return output

    return watched


def global_hooks() -> bool:
    """Module hooks registered for every module, which would run outside a stand-in forward."""
    return bool(torch_module._global_forward_pre_hooks or torch_module._global_forward_hooks
                or torch_module._global_backward_pre_hooks or torch_module._global_backward_hooks)


def plain_call(kind: type) -> bool:
    """A module class called through nn.Module's own ``__call__`` into its ``forward``."""
    return (kind.__call__ is nn.Module.__call__ and getattr(kind, "_call_impl", None) is nn.Module._call_impl
            and not issubclass(kind, torch.jit.ScriptModule))


def wrappable(module: nn.Module) -> bool:
    """A module of a plain-call class with a class-defined ``forward`` and no hooks of its own."""
    return (
        "forward" not in module.__dict__
        and getattr(module, "_compiled_call_impl", None) is None
        and not (module._forward_pre_hooks or module._forward_hooks or module._backward_pre_hooks
                 or module._backward_hooks)
    )


def kept_call(model: nn.Module, call: tuple, train: bool, dtype: torch.dtype) -> TraceResult | None:
    """The whole trace kept for ``call`` (see ``trace``) of this model object, while the model's
    kept setup still describes it and it still runs torch's own code only; else None."""
    kept = SETUPS.get(id(model))
    if kept is None or kept[1] is None or not kept[1].calls or kept[0]() is not model:
        return None
    setup = kept[1]
    setup.modules[0] = ("", model)
    try:
        if not _unchanged(setup) or not setup.wholly_own():
            return None
        done = setup.calls.get(_call_key(call, train, dtype))
    finally:
        setup.modules[0] = _NO_ROOT
    return None if done is None else thawed_trace(done)


def _call_key(call: tuple, train: bool, dtype: torch.dtype | None) -> tuple:
    """What a whole trace depends on besides the setup, for inputs made as ``call`` says (``whole_key``)."""
    return call, train, dtype, torch.get_default_dtype(), _catalogue_key()


def remember(setup: Setup, whole: tuple, call: tuple | None, train: bool, dtype: torch.dtype | None,
              done: Frozen) -> None:
    """Keep a whole trace with a lasting setup, by its key and by the caller's ``call`` (both bounded)."""
    if not setup.lasting:
        return
    if len(setup.results) < _MOST_WHOLE:
        setup.results[whole] = done
    if call is not None and len(setup.calls) < _MOST_WHOLE:
        setup.calls[_call_key(call, train, dtype)] = done


def _untrained(config: tuple | None) -> tuple | None:
    """A configuration without the training flag, which the trace sets on every module of a model
    of torch's own code (``_eval_mode``) whatever it was: a model built in training mode and one
    put in eval mode have one structure."""
    return None if config is None else tuple(item for item in config if item[0] != "training")


def structure(setup: Setup) -> tuple:
    """All that a whole trace of a model of torch's own code (``Setup.whole_key``) reads of it, the
    objects aside: each module's path, class and its forward (which may be replaced in the class),
    configuration (``replay``'s frozen attributes),
    children (by their place in the list, so a module registered twice shows), parameter and
    buffer names, and each tensor's metadata, kind and which tensor it is (a shared one counts once)."""
    modules = setup.modules
    place = {id(module): i for i, (_, module) in enumerate(modules)}
    tensors: dict[int, int] = {}
    return tuple(
        (path, type(module), getattr(type(module), "forward", None), _untrained(config),
         tuple((name, None if child is None else place[id(child)]) for name, child in module._modules.items()),
         tuple((name, t is None) for name, t in module._parameters.items()),
         tuple((name, t is None) for name, t in module._buffers.items()),
         tuple((t.shape, t.stride(), t.dtype, t.requires_grad, is_parameter, tensors.setdefault(id(t), len(tensors)))
               for t, is_parameter in own))
        for (path, module), own, config in zip(modules, setup.owned, setup.configs))


# a trace as immutable data (``frozen_trace``): layers, uncounted ops, FLOPs by op, state
Frozen = tuple[tuple[tuple, ...], tuple, tuple, tuple]

_MOST_WHOLE = 8  # whole traces kept per model setup (inputs, modes, dtypes)
# whole traces by a model's structure (``structure``) and ``Setup.whole_key``: for a model
# rebuilt for each profile, as by name; a bound on memory, beyond which it starts again
WHOLE: dict[tuple, Frozen] = {}
MOST_STRUCTURES = 64


def _placed(tensors: list[torch.Tensor]) -> tuple:
    """Where each input lies in its storage, and which inputs share one: the bytes the peak-memory
    tracker counts for the inputs at the start (``count/live.py``) follow from these and their shapes."""
    first: dict[int, int] = {}
    return tuple((t.storage_offset(), t.untyped_storage().nbytes(), first.setdefault(id(t.untyped_storage()), i))
                 for i, t in enumerate(tensors))


def frozen_trace(result: TraceResult) -> Frozen:
    """A trace's result as immutable data (``thawed_trace`` makes it a fresh result again)."""
    layers = tuple((c.path, c.type, c.depth, c.call, c.leaf, tuple(map(tuple, c.input_shapes)),
                    tuple(map(tuple, c.output_shapes)), c.formula, tuple(c.ops.items()), tuple(c.values.items()))
                   for c in result.layers)
    uncounted = tuple((name, count, tuple(paths)) for name, (count, paths) in result.uncounted.items())
    return layers, uncounted, tuple(result.flops_by_op.items()), tuple(result.state.items())


def thawed_trace(frozen: Frozen) -> TraceResult:
    """A fresh result, every list and dict its own, equal to the one ``frozen`` was made from."""
    layers, uncounted, by_op, state = frozen
    return TraceResult(
        [LayerCost.made(path, kind, depth, call, leaf, [list(s) for s in inputs], [list(s) for s in outputs],
                        formula, dict(ops), dict(values))
         for path, kind, depth, call, leaf, inputs, outputs, formula, ops, values in layers],
        {name: (count, list(paths)) for name, count, paths in uncounted}, dict(by_op), dict(state))
