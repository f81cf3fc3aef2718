"""Replaying a leaf module's call on meta instead of running its forward again.

The forward of a torch.nn layer such as Conv2d, BatchNorm2d, ReLU or MaxPool2d reads
nothing but the layer's configuration (its attributes and train/eval flag), its
parameters and buffers, and its inputs. On meta, where no values exist, the aten ops
it dispatches, what they cost and its outputs' shapes are therefore a function of the
metadata of those: the first call records them, and a later call that agrees in every
one of them (in this trace or a later one in the process) counts the same ops and
returns outputs of the same metadata without running the layer's Python and torch's
dispatch again. VGG, GoogLeNet and the ResNets repeat layers of one configuration on
inputs of one shape many times.

Only exact torch.nn classes on this list are replayed (a subclass may override
forward), only calls whose tensors are all on meta, and only outputs that are fresh
tensors or one of the inputs itself (an in-place ReLU); a layer that returns a view of
its input (Flatten) is always run.

Peak memory (``costlens/count/live.py``) follows storages, so a recording also keeps the
call's rise above the bytes alive at its entry and what it left alive: its fresh outputs,
and any of the layer's own parameters or buffers that an op returned (a Linear's
transposed weight, a training batch norm's step counter) while the tracker did not
count them yet. Whether it did is part of the call's key, as are the inputs' being
counted: with both the same, the rise and what stays are the same.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

Shape = tuple[int, ...]

REPLAYABLE: frozenset[type] = frozenset({
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Hardswish,
    nn.Hardsigmoid, nn.Mish, nn.Softmax, nn.LogSoftmax,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
})
# Makes a replayed call's outputs without the tracer's dispatch mode counting them as ops.
_UNSEEN = getattr(torch._C, "_DisableTorchDispatch", None)
# nn.Module's own bookkeeping (parameter and hook registries), not configuration.
_REGISTRIES = frozenset(vars(nn.Module())) - {"training"}
_SIMPLE = frozenset({bool, int, float, str, type(None), torch.dtype, torch.device, torch.memory_format})


class _Rebuilds:
    """A recording's outputs made again for another call: ``outputs`` holds one entry per output,
    the index of the input it returned or the shape, strides and dtype of a fresh tensor."""

    outputs: tuple[int | tuple[Shape, Shape, torch.dtype], ...]
    single: bool  # returned one tensor rather than a tuple

    def outputs_for(self, args: tuple) -> Any:
        with _UNSEEN():  # type: ignore[misc]
            made = tuple(args[spec] if isinstance(spec, int) else
                         torch.empty_strided(spec[0], spec[1], dtype=spec[2], device="meta") for spec in self.outputs)
        return made[0] if self.single else made


@dataclass(frozen=True)
class Replay(_Rebuilds):
    """What one leaf call did, summed over the ops it ran, and how to rebuild its outputs.

    ``sums`` are the op metrics it added, ``ops`` how often each aten op ran and
    ``flops`` each op's FLOPs (both in the order the ops first ran), ``formulas`` the
    formulas it showed and ``uncounted`` the ops with no formula, once per run.
    ``outputs`` holds one entry per output: the index of the input it returned, or the
    shape, strides and dtype of a fresh tensor; ``single`` when it returned one tensor
    rather than a tuple.
    """

    sums: list[int]
    ops: tuple[tuple[str, int], ...]
    flops: tuple[tuple[str, int], ...]
    formulas: tuple[str, ...]
    uncounted: tuple[str, ...]
    outputs: tuple[int | tuple[Shape, Shape, torch.dtype], ...]
    single: bool
    output_shapes: tuple[tuple[int, ...], ...]
    output_sums: tuple[int, ...]  # the output metrics of the catalogue
    rise: int  # the most live bytes above those at the call's entry
    output_bytes: tuple[int, ...]  # the bytes each fresh output added to the live bytes (0 for an input)
    state_kept: tuple[tuple[int, int], ...]  # the layer's own tensors it left counted: index, bytes


@dataclass(frozen=True)
class BlockReplay(_Rebuilds):
    """What one call of a block (``block_key``) did: every module call inside it, its own first.

    ``records`` holds, per call in the order they were made, the position of its module
    in the block's ``modules`` list, its depth below the block's call, its input and
    output shapes, op sums, ops, formulas and output metrics (shared by every replay: none
    is changed once recorded); ``flops`` each op's FLOPs over the whole block, in the order
    the ops first ran. The rest is as in ``Replay``.
    """

    records: tuple[tuple[int, int, tuple, tuple, list[int], dict[str, int], tuple[str, ...], tuple[int, ...]], ...]
    flops: tuple[tuple[str, int], ...]
    outputs: tuple[int | tuple[Shape, Shape, torch.dtype], ...]
    single: bool
    rise: int
    output_bytes: tuple[int, ...]
    state_kept: tuple[tuple[int, int], ...]


def available() -> bool:
    """This torch lets outputs be made unseen by dispatch modes (else every layer runs)."""
    return _UNSEEN is not None


def layer_key(module: nn.Module) -> tuple | None:
    """What a replayable layer's calls depend on besides their inputs; None when it cannot be replayed.

    Attributes are taken in the order the layer set them: two layers that set them in
    another order only miss each other's recordings.
    """
    if type(module) not in REPLAYABLE:
        return None
    config = _config(module)
    if config is None:
        return None
    state = _state_key(module._parameters) + _state_key(module._buffers)
    if any(entry is None for entry in state):
        return None
    kind = type(module)
    return kind, kind.forward, config, tuple(state), torch.get_default_dtype()  # a forward replaced in the class shows


def block_key(module: nn.Module, known: Mapping[int, tuple | None]) -> tuple[tuple, list[nn.Module]] | None:
    """A block's key and its modules (itself first, each once), or None when it is no block.

    A block is an ``nn.Sequential`` (or a subclass that keeps its ``forward`` and
    iteration) whose every child is a replayable layer or a block: its call runs torch's
    own code over its children and nothing else, so, as for a layer, what it does on meta
    is a function of the configuration and tensor metadata of everything in it and of
    its inputs. The key names each child and where a module registered twice appears again.
    ``known`` holds, by ``id``, the layer keys of layers (None for a layer that has none)
    and None for containers known not to be blocks, worked out already.
    """
    if not _sequential(type(module)):
        return None
    config = _config(module)
    if config is None:
        return None
    modules: list[nn.Module] = [module]
    positions = {id(module): 0}
    key = _tree(module, modules, positions, known)
    return None if key is None else ((type(module), config, key), modules)


def _sequential(kind: type) -> bool:
    """A class whose calls run ``nn.Sequential``'s own forward over its own iteration."""
    return (getattr(kind, "forward", None) is nn.Sequential.forward
            and getattr(kind, "__iter__", None) is nn.Sequential.__iter__)


def _tree(module: nn.Module, modules: list[nn.Module], positions: dict[int, int],
          known: Mapping[int, tuple | None]) -> tuple | None:
    """The key of ``module``'s children, each a layer key, a block's tree or the position of one seen before."""
    parts: list[tuple[str, Any]] = []
    for name, child in module._modules.items():
        if child is None:
            parts.append((name, None))
            continue
        seen = positions.get(id(child))
        if seen is not None:
            parts.append((name, seen))
            continue
        positions[id(child)] = len(modules)
        modules.append(child)
        if id(child) in known and known[id(child)] is None:
            return None
        if child._modules:
            kind = type(child)
            if not _sequential(kind):
                return None
            config, inner = _config(child), _tree(child, modules, positions, known)
            if config is None or inner is None:
                return None
            parts.append((name, (kind, config, inner)))
        else:
            layer = known[id(child)] if id(child) in known else layer_key(child)
            if layer is None:
                return None
            parts.append((name, layer))
    return tuple(parts)


# Each layer's configuration key, with the attribute values it was read from: while the
# layer holds the same objects (none of them a list, which could change in place),
# the key stands, and the next trace need not read it again.
_CONFIGS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, tuple, tuple]] = weakref.WeakKeyDictionary()


def _config(module: nn.Module) -> tuple | None:
    """The layer's attributes (all but nn.Module's registries), frozen; None when one cannot be."""
    return _settled(module)[0]


def _settled(module: nn.Module) -> tuple[tuple | None, bool]:
    """``_config`` of the module, and whether it is kept for the attribute objects the module
    holds now (``steady``), in one look at the module."""
    attributes = vars(module)
    names, values = tuple(attributes), tuple(attributes.values())
    known = _CONFIGS.get(module)
    if known is not None and known[0] == names and all(map(operator.is_, known[1], values)):
        return known[2], True
    config = []
    lists = False  # a value read from a list
    for name, value in attributes.items():
        if name in _REGISTRIES:
            continue
        kind = type(value)
        if kind in _SIMPLE:  # ``_frozen``'s first case, inline
            config.append((name, (kind, value)))
            continue
        frozen = _frozen(value)
        if frozen is None:
            return None, False
        lists = lists or _holds_list(frozen)
        config.append((name, frozen))
    key = tuple(config)
    if lists:
        return key, False
    _CONFIGS[module] = (names, values, key)
    return key, True


# Layers that return views of their input, so never replayed alone, but whose forward is torch's
# own code reading only their configuration: a model made of these, replayable layers and
# Sequentials runs nothing but torch's code (count/kept.py keeps such a model's whole trace).
VIEWS: frozenset[type] = frozenset({nn.Flatten, nn.Unflatten, nn.Identity})
# Containers that are never called (calling one raises), only read by their parent's forward.
HOLDERS: frozenset[type] = frozenset({nn.ModuleList, nn.ModuleDict})


# The class attribute by which a module class of this package (the zoo's blocks and networks,
# costlens/zoo/) says that its ``forward`` reads nothing but the module's configuration,
# children, parameters, buffers and inputs, as torch's own layers do. It is read from the class
# itself, never inherited: a subclass may override ``forward``.
STRUCTURAL_FORWARD = "costlens_structural_forward"


def own_config(module: nn.Module) -> tuple | None:
    """The frozen configuration (as in ``layer_key``) of a module whose calls run torch's code
    only, or code declared to read what torch's own layers read (``STRUCTURAL_FORWARD``):
    its configuration (a steady one, see ``steady``), parameters, buffers and children. That
    is a replayable layer, view or holder, a Sequential, or a declared class, with a
    configuration that can be frozen; None for any other module."""
    kind = type(module)
    if kind in REPLAYABLE or kind in VIEWS or kind in HOLDERS or kind.__dict__.get(STRUCTURAL_FORWARD) is True \
            or _sequential(kind):
        config, kept = _settled(module)
        return config if kept else None
    return None


def steady(module: nn.Module) -> bool:
    """The layer's configuration key stands while it holds the same attribute objects (none a list)."""
    known = _CONFIGS.get(module)
    return known is not None and known[0] == tuple(vars(module))


def _holds_list(frozen: tuple) -> bool:
    """A frozen value read from a list (which can change in place without the layer noticing)."""
    kind = frozen[0]
    if kind is list:
        return True
    return kind is tuple and len(frozen) == 2 and any(_holds_list(item) for item in frozen[1])


def _frozen(value: Any) -> tuple | None:
    """A hashable, type-exact stand-in for a configuration value (2 and 2.0 differ); None for any other kind."""
    kind = type(value)
    if kind in _SIMPLE:
        return kind, value
    if kind is tuple or kind is list:
        kinds = tuple(map(type, value))
        if _SIMPLE.issuperset(kinds):  # the usual (3, 3) or [1, 1]: flat
            return kind, kinds, tuple(value)
        items = [_frozen(v) for v in value]
        return None if None in items else (kind, tuple(items))
    return None


def _state_key(tensors: Mapping[str, torch.Tensor | None]) -> list[Any]:
    """Each parameter or buffer by name and metadata; None for one that is not on meta."""
    entries: list[Any] = []
    for name, t in tensors.items():
        if t is None:
            entries.append((name, None))
        elif not t.is_meta:
            entries.append(None)
        else:
            entries.append((name, tuple(t.shape), t.stride(), t.dtype, t.requires_grad))
    return entries


def outputs_of(output: Any, args: tuple) -> tuple[tuple[int | tuple[Shape, Shape, torch.dtype], ...], bool] | None:
    """How to rebuild ``output`` (a tensor or a tuple of them) for another call; None when it cannot be."""
    single = isinstance(output, torch.Tensor)
    if not single and not (isinstance(output, tuple) and all(isinstance(o, torch.Tensor) for o in output)):
        return None
    specs: list[int | tuple[Shape, Shape, torch.dtype]] = []
    for out in ((output,) if single else output):
        same = [i for i, a in enumerate(args) if a is out]
        if same:
            specs.append(same[0])
        elif out.is_meta and not out._is_view():
            specs.append((tuple(out.shape), out.stride(), out.dtype))
        else:
            return None
    return tuple(specs), single


def meta_inputs(args: tuple, kwargs: dict) -> list[torch.Tensor] | None:
    """The tensor arguments when every one is on meta and there is at least one; else None."""
    tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
    return tensors if tensors and all(t.is_meta for t in tensors) else None
