"""What the tracer knows of a model's modules before it runs them: each one's path, type and
state metrics (``module_facts``), worked out from its own parameters and buffers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from costlens import metrics
from costlens.metrics import TensorFacts


@dataclass(slots=True)
class ModuleFacts:
    """What the tracer knows of a module before it runs: its path, type and state metrics."""

    path: str
    type: str
    leaf: bool
    state: dict[str, int]  # each tensor metric of the catalogue, children included


def module_facts(model: nn.Module, dtype: torch.dtype | None, modules: list[tuple[str, nn.Module]] | None = None,
                 owned: list[list[tuple[torch.Tensor, bool]]] | None = None) -> dict[int, ModuleFacts]:
    """Path, type and state metrics (params, weight bytes, ...) of every module, keyed by ``id``.

    Like fvcore's parameter_count, each tensor is summed into every prefix of its
    dotted name, so a shared tensor counts once, under its first name. ``modules``
    (``list(model.named_modules())``) and ``owned`` (each one's ``own_tensors``) are
    passed when the caller has them already.
    """
    producers = [(m.key, m.of_tensor) for m in metrics.tensor_metrics() if m.of_tensor is not None]
    keys = [key for key, _ in producers]
    modules = list(model.named_modules()) if modules is None else modules
    owned = [own_tensors(module) for _, module in modules] if owned is None else owned
    sums = _state_by_path(modules, owned, producers, dtype)
    stateless = dict.fromkeys(keys, 0)  # shared by every module without tensors: read, never written
    return {
        id(module): ModuleFacts(path, type(module).__name__, _is_leaf(module),
                                dict(zip(keys, sums[path])) if path in sums else stateless)
        for path, module in modules
    }


def _state_by_path(modules: list[tuple[str, nn.Module]], owned: list[list[tuple[torch.Tensor, bool]]],
                   producers: list[tuple[str, Any]], dtype: torch.dtype | None) -> dict[str, list[int]]:
    """Each module path's state metrics, its children's included; paths with none are left out.

    ``modules`` is in ``named_modules`` order (parents first), so walking it backwards
    finishes every child before its parent, and each path's sums are added to its
    parent's once.
    """
    seen: set[int] = set()
    by_facts: dict[tuple, list[int]] = {}
    sums: dict[str, list[int]] = {}
    for (path, _), tensors in zip(modules, owned):
        own = _own_state(tensors, producers, dtype, seen, by_facts) if tensors else None
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


def _own_state(tensors: list[tuple[torch.Tensor, bool]], producers: list[tuple[str, Any]], dtype: torch.dtype | None,
               seen: set[int], by_facts: dict[tuple, list[int]]) -> list[int] | None:
    """What a module's own ``tensors`` not seen before add to each state metric; None when nothing.

    ``by_facts`` remembers the metrics of each distinct tensor description: models repeat
    a few shapes many times.
    """
    sums: list[int] | None = None
    for tensor, is_parameter in tensors:
        identity = id(tensor)
        if identity in seen:
            continue
        seen.add(identity)
        numel = tensor.numel()
        described = (numel, _element_size(tensor, dtype), is_parameter, is_parameter and tensor.requires_grad)
        values = by_facts.get(described)
        if values is None:
            facts = TensorFacts(numel, numel * described[1], is_parameter, described[3])
            values = by_facts[described] = [produce(facts) for _, produce in producers]
        sums = list(values) if sums is None else [a + b for a, b in zip(sums, values)]
    return sums


def own_tensors(module: nn.Module) -> list[tuple[torch.Tensor, bool]]:
    """The module's own parameters and buffers (not its children's), flagged as parameters or not.

    Read from the registries that ``named_parameters(recurse=False)`` reads, without its
    generators: this runs for every module of every trace.
    """
    own = [(p, True) for p in module._parameters.values() if p is not None]
    return own + [(b, False) for b in module._buffers.values() if b is not None]


def _is_leaf(module: nn.Module) -> bool:
    """No child module (as ``children()`` sees it: registered, not None)."""
    return not any(child is not None for child in module._modules.values()) if module._modules else True


def _element_size(tensor: torch.Tensor, dtype: torch.dtype | None) -> int:
    """Bytes per element once floating-point state is cast to the trace's dtype."""
    if dtype is not None and tensor.is_floating_point():
        return dtype.itemsize
    return tensor.element_size()
