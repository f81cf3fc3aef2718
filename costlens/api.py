"""The public functions: ``profile``, ``compare`` and ``obtain`` (one path from a name to a Profile).

Every entry point — the Python API, ``costlens profile``, ``costlens compare`` and
``costlens check`` — goes through ``obtain``: a Profile passes through, a saved JSON
file is read, and a zoo name, an import path or an ``nn.Module`` is built and traced.
"""

from __future__ import annotations

import copy
import platform
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from costlens import __version__
from costlens.comparison import Comparison, align
from costlens.count.formulas import CONVENTION, Handler
from costlens.count.tracer import trace
from costlens.errors import CostlensError, InputShapeError, ModelError
from costlens.inputs import Inputs, prepare, trace_dtype
from costlens.models import resolve
from costlens.records import Profile, Uncounted, load
from costlens.timing.measure import TimingOptions
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

    For a meta trace the model is built on the meta device, so no weights are allocated.
    A factory that cannot (it reads real values) is built on cpu instead, once, and
    the user is told in one line; later profiles of it in this process go to cpu directly.
    """
    if device.type == "meta" and named.name not in _NEEDS_REAL_DEVICE:
        try:
            with torch.device("meta"):
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
    time: bool | TimingOptions = False,
    train_step: bool = False,
    optimizer: str = "sgd",
    freeze: str | Sequence[str] | None = None,
    freeze_until: str | None = None,
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

    ``time=True`` (or a ``TimingOptions``) also measures the model: counting stays on
    meta, and ``device`` (``"auto"`` when left at meta: cuda if available, else cpu)
    is where it is timed, with real random weights; ``batch`` may then be a list of
    batch sizes, each timed (the first is the one counted).

    ``train_step=True`` counts one training step instead (``costlens/count/training.py``):
    the forward in training mode, the backward ops autograd runs and the ``optimizer``'s
    update (``"sgd"``, ``"sgd-momentum"`` or ``"adam"``), per layer, with gradient,
    optimizer-state and saved-activation memory. ``freeze`` (globs over module paths,
    ``"features.*"``) and ``freeze_until`` (a module path: everything that runs before it)
    freeze parameters for that step (the model's own flags are restored after).
    ``train=True`` alone only runs the forward in training mode.
    """
    if train_step or freeze or freeze_until:
        if time:
            raise InputShapeError("train_step: timing a training step is not supported; count it without time")
        return train_profile(model, inputs, batch=_one_batch(batch), dtype=dtype, optimizer=optimizer,
                             freeze=freeze, freeze_until=freeze_until, formulas=formulas)
    if not time:
        return _profile(model, inputs, batch=_one_batch(batch), device=device, dtype=dtype, train=train,
                        formulas=formulas)
    return timed([model], inputs, batch=batch, device=device, dtype=dtype, options=time)[0]


def _one_batch(batch: int | Sequence[int] | None) -> int | None:
    if batch is None or isinstance(batch, int):
        return batch
    raise InputShapeError("batch: a list of batch sizes needs time=True (each size is timed)")


def timed(models: Sequence[str | nn.Module], inputs: Inputs, *, batch: int | Sequence[int] | None,
          device: str | torch.device, dtype: str | torch.dtype, options: bool | TimingOptions,
          argument: str = "inputs") -> list[Profile]:
    """Count each model on meta, then time them together (interleaved) on ``device``."""
    from costlens.timing.measure import Job, time_profiles

    batches = tuple([batch] if isinstance(batch, int) else (batch or ()))
    if any(not isinstance(b, int) or b < 1 for b in batches):
        raise InputShapeError(f"batch: batch sizes must be positive integers, got {list(batches)}")
    settings = options if isinstance(options, TimingOptions) else TimingOptions()
    where = str(device) if str(device) != "meta" else settings.device
    settings = replace(settings, device=where, batches=batches or settings.batches)
    jobs = []
    for model in models:
        counted = _profile(model, inputs, batch=batches[0] if batches else None, device="meta", dtype=dtype,
                           train=False, formulas=None, argument=argument)
        jobs.append(Job(counted, _real_builder(model), inputs if inputs is not None else counted.input_shape))
    return time_profiles(jobs, settings)


def _real_builder(model: str | nn.Module) -> Callable[[torch.device], nn.Module]:
    """How to get the model with real weights on a device (a copy when a given module lives elsewhere)."""
    if isinstance(model, nn.Module):
        def place(device: torch.device) -> nn.Module:
            on = {p.device for p in model.parameters()}
            return model if on <= {device} else copy.deepcopy(model).to(device)
        return place
    named = resolve(model)
    return lambda device: build(named, device)


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


def train_profile(model: str | nn.Module, inputs: Inputs = None, *, batch: int | None = None,
                  dtype: str | torch.dtype = "float32", optimizer: str = "sgd",
                  freeze: str | Sequence[str] | None = None, freeze_until: str | None = None,
                  formulas: Mapping[Any, Handler] | None = None, argument: str = "inputs") -> Profile:
    """One training step of ``model`` counted on meta: see ``profile(train_step=True)``."""
    from costlens.count import training

    if optimizer not in training.OPTIMIZERS:
        raise InputShapeError(f"optimizer: expected one of {', '.join(training.OPTIMIZERS)}, got {optimizer!r}")
    meta = torch.device("meta")
    named, net = ((NamedModel(type(model).__name__, lambda: model), model) if isinstance(model, nn.Module)
                  else (resolve(model), None))
    if net is None:
        net = build(named, meta)
    shape = inputs if inputs is not None else named.input
    patterns = [freeze] if isinstance(freeze, str) else list(freeze or [])
    order: list[str] = []
    if freeze_until is not None:
        forward = _profile(net, shape, batch=batch, device=meta, dtype=dtype, train=True, formulas=formulas,
                           argument=argument)
        order = list(dict.fromkeys(layer.path for layer in forward.layers))
    names = training.frozen_parameters(net, patterns, freeze_until, order)
    prepared = prepare(shape, batch=batch, device=meta, dtype=trace_dtype(dtype), argument=argument)
    unfrozen = None
    if names:
        unfrozen = training.count_step(net, prepared.args, prepared.kwargs, dtype=trace_dtype(dtype), optimizer=optimizer)
    with training.frozen(net, names):
        forward = _profile(net, shape, batch=batch, device=meta, dtype=dtype, train=True, formulas=formulas,
                           argument=argument)
        counts = training.count_step(net, prepared.args, prepared.kwargs, dtype=trace_dtype(dtype), optimizer=optimizer)
    described = [*patterns, *([f"everything before {freeze_until}"] if freeze_until else [])]
    result = training.attach(forward, counts, optimizer=optimizer, freeze_text=", ".join(described) or None,
                             unfrozen=unfrozen)
    return replace(result, model=named.name, citation=named.cite)


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
            depth: int | None = None, time: bool | TimingOptions = False) -> Comparison:
    """Compare models (zoo names, import paths, modules, saved .json files or Profiles), the
    first as the baseline of every ratio, block by block down to ``depth`` (default: the
    first level where three blocks carry MACs). ``time=True`` measures every model (not
    saved profiles) in the same run, interleaved, on ``device`` (auto when left at meta)."""
    if len(models) < 2:
        raise InputShapeError("compare needs at least two models")
    if not time:
        return align([obtain(m, inputs, batch=batch, device=device, dtype=dtype) for m in models], depth=depth)
    return align(timed_or_read(models, inputs, batch=batch, device=device, dtype=dtype, options=time), depth=depth)


def timed_or_read(specs: Sequence[str | nn.Module | Profile], inputs: Inputs, *, batch: int | Sequence[int] | None,
                  device: str | torch.device, dtype: str | torch.dtype, options: bool | TimingOptions,
                  argument: str = "inputs") -> list[Profile]:
    """Models timed together; saved profiles and Profiles are taken as they are."""
    live = [s for s in specs if not isinstance(s, Profile) and not (isinstance(s, str) and is_saved_profile(s))]
    measured = iter(timed(live, inputs, batch=batch, device=device, dtype=dtype, options=options, argument=argument)
                    if live else [])
    return [next(measured) if any(s is m for m in live) else obtain(s) for s in specs]
