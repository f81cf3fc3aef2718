"""The public functions: ``profile``, ``compare`` and ``obtain`` (one path from a name to a Profile).

Every entry point — the Python API, ``costlens profile``, ``costlens compare`` and
``costlens check`` — goes through ``obtain``: a Profile passes through, a saved JSON
file is read, and a zoo name, an import path or an ``nn.Module`` is built and traced.
"""

from __future__ import annotations

import platform
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from costlens import __version__
from costlens.comparison import Comparison, align
from costlens.count.formulas import CONVENTION, Handler
from costlens.count.metabuild import building_on_meta
from costlens.count.tracer import trace
from costlens.errors import CostlensError, InputShapeError, ModelError
from costlens.inputs import Inputs, prepare, trace_dtype
from costlens.models import resolve
from costlens.records import Profile, Uncounted, load
from costlens.zoo.registry import NamedModel


class CostlensWarning(UserWarning):
    """Something the user should know that does not stop the work (one line)."""


# Factories that could not build on the meta device: built on cpu straight away next time.
_NEEDS_REAL_DEVICE: set[str] = set()


def environment() -> dict[str, str]:
    """Versions that a reader of a profile needs to reproduce it."""
    return {"costlens": __version__, "torch": torch.__version__, "python": platform.python_version()}


def build(named: NamedModel, device: torch.device) -> nn.Module:
    """Build ``named`` for a trace on ``device``.

    For a meta trace the model is built on the meta device, so no weights are allocated
    (nor initialised: ``count/metabuild.py``).
    A factory that cannot (it reads real values) is built on cpu instead, once, and
    the user is told in one line; later profiles of it in this process go to cpu directly.
    """
    if device.type == "meta" and named.name not in _NEEDS_REAL_DEVICE:
        try:
            with building_on_meta():
                return named.build()
        except CostlensError as error:
            if not isinstance(error.__cause__, Exception) or isinstance(error.__cause__, CostlensError):
                raise
            reason = f"{type(error.__cause__).__name__}: {error.__cause__}"
        except Exception as error:  # a factory that reads real values: build it on cpu below
            reason = f"{type(error).__name__}: {error}"
        _NEEDS_REAL_DEVICE.add(named.name)
        first = reason.strip().splitlines()[0] if reason.strip() else "failed"
        warnings.warn(f"{named.name} cannot be built on the meta device ({first[:120]}); building it on cpu, "
                      "which allocates its weights (the trace still runs on meta)", CostlensWarning, stacklevel=3)
    real = torch.device("cpu") if device.type == "meta" else device  # the trace swaps in meta stand-ins
    try:
        with real:
            return named.build()
    except CostlensError:
        raise
    except Exception as error:
        raise ModelError(f"cannot build {named.name}: {type(error).__name__}: {error}") from error


def _formulas(custom: Mapping[Any, Handler] | None) -> dict[Any, Handler]:
    """Custom formulas keyed by aten op; 'aten.name' strings are looked up."""
    found: dict[Any, Handler] = {}
    for op, handler in (custom or {}).items():
        if isinstance(op, str):
            name = op.removeprefix("aten.").split(".")[0]
            packet = getattr(torch.ops.aten, name, None)
            if packet is None:
                raise InputShapeError(f"formulas: there is no aten op {op!r}")
            op = packet
        if not callable(handler):
            raise InputShapeError(f"formulas: the formula of {op} is not callable")
        found[op] = handler
    return found


def profile(
    model: str | nn.Module,
    inputs: Inputs = None,
    *,
    batch: int | None = None,
    device: str | torch.device = "meta",
    dtype: str | torch.dtype = "float32",
    train: bool = False,
    formulas: Mapping[Any, Callable[[tuple, dict, Any], Any]] | None = None,
) -> Profile:
    """Trace ``model`` once and return its per-layer cost.

    ``model``: a zoo name (``"inception"``), an import path (``"pkg.module:factory"``)
    or an ``nn.Module``. ``inputs``: a shape, a tensor, ``Input(shape, dtype)``, or a
    tuple or dict of those for several or keyword inputs (see ``costlens.inputs``);
    zoo models have a default. ``device="meta"`` (the default) counts without
    allocating weights or doing arithmetic; ``"cpu"``/``"cuda"`` run real tensors and
    give the same counts. ``formulas`` maps aten ops (``torch.ops.aten.foo`` or
    ``"aten.foo"``) to ``handler(args, kwargs, out) -> OpCost`` for ops costlens lacks
    or counts otherwise, for this call only.
    """
    return _profile(model, inputs, batch=batch, device=device, dtype=dtype, train=train, formulas=formulas)


def _profile(model: str | nn.Module, inputs: Inputs, *, batch: int | None, device: str | torch.device,
             dtype: str | torch.dtype, train: bool, formulas: Mapping[Any, Handler] | None,
             argument: str = "inputs") -> Profile:
    """``profile`` with the name of the input argument to use in errors (``--input`` from the CLI)."""
    traced_dtype = trace_dtype(dtype)
    torch_device = _device(device)
    custom = _formulas(formulas)
    if isinstance(model, nn.Module):
        named, net = NamedModel(type(model).__name__, lambda: model), model
    elif isinstance(model, str):
        named = resolve(model)
        net = build(named, torch_device)
    else:
        raise ModelError(f"model: expected a zoo name, 'package.module:factory' or an nn.Module, "
                         f"got {type(model).__name__}")
    if inputs is None:
        if named.input is None:
            raise InputShapeError(f"{named.name} has no default input: give one "
                                  f"({'--input 1x3x224x224' if argument == '--input' else 'inputs=(1, 3, 224, 224)'})")
        inputs = named.input
    prepared = prepare(inputs, batch=batch, device=torch_device, dtype=traced_dtype, argument=argument)
    result = trace(net, prepared.args, prepared.kwargs, train=train, dtype=traced_dtype, formulas=custom)
    root = result.layers[0]
    totals: dict[str, float] = dict(result.state)
    totals.update(root.values)  # op metrics of the whole forward; state metrics agree with the root's
    return Profile(
        model=named.name, inputs=prepared.infos, dtype=str(traced_dtype).removeprefix("torch."),
        device={"type": torch_device.type}, environment=environment(), convention=CONVENTION,
        totals={key: totals[key] for key in _total_keys(totals)}, layers=result.layers,
        uncounted=[Uncounted(op, count, paths) for op, (count, paths) in sorted(result.uncounted.items())],
        citation=named.cite, flops_by_op=result.flops_by_op,
    )


def _total_keys(totals: dict[str, float]) -> list[str]:
    from costlens import metrics

    return [key for key in metrics.all_keys() if key in totals]


def _device(device: str | torch.device) -> torch.device:
    try:
        torch_device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise InputShapeError(f"device: {device!r} is not a device (meta, cpu or cuda)") from error
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' is not available here (torch.cuda.is_available() is False): "
                         "count on meta, the default, or on cpu")
    return torch_device


def is_saved_profile(spec: str) -> bool:
    """A compare/check argument that names a saved profile JSON rather than a model."""
    return spec.endswith(".json") or ("/" in spec and ":" not in spec)


def obtain(spec: str | nn.Module | Profile, inputs: Inputs = None, *, batch: int | None = None,
           device: str | torch.device = "meta", dtype: str | torch.dtype = "float32",
           argument: str = "inputs") -> Profile:
    """A profile for ``spec``: itself, read from a saved JSON file, or traced from a model."""
    if isinstance(spec, Profile):
        return spec
    if isinstance(spec, str) and is_saved_profile(spec):
        return load(spec)
    return _profile(spec, inputs, batch=batch, device=device, dtype=dtype, train=False, formulas=None,
                    argument=argument)


def compare(*models: str | nn.Module | Profile, inputs: Inputs = None, batch: int | None = None,
            device: str | torch.device = "meta", dtype: str | torch.dtype = "float32",
            depth: int | None = None) -> Comparison:
    """Compare models (zoo names, import paths, modules, saved .json files or Profiles), the
    first as the baseline of every ratio, block by block down to ``depth`` (default: the
    first level where three blocks carry MACs)."""
    if len(models) < 2:
        raise InputShapeError("compare needs at least two models")
    profiles = [obtain(m, inputs, batch=batch, device=device, dtype=dtype) for m in models]
    return align(profiles, depth=depth)
