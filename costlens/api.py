"""The public functions: ``profile``, ``compare`` and ``obtain`` (one path from a name to a Profile).

Every entry point — the Python API, ``costlens profile``, ``costlens compare`` and
``costlens check`` — goes through ``obtain``: a Profile passes through, a saved JSON
file is read, and a zoo name, an import path or an ``nn.Module`` is built and traced.
"""

from __future__ import annotations

import copy
import math
import platform
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from costlens import __version__
from costlens.comparison import Comparison, align
from costlens.count.formulas import CONVENTION, Handler
from costlens.count.kept import TraceResult, kept_call
from costlens.count.metabuild import building_on_meta
from costlens.count.tracer import trace
from costlens.errors import CostlensError, InputShapeError, ModelError
from costlens.inputs import (
    Inputs,
    Prepared,
    available_memory,
    input_bytes,
    plain_infos,
    plain_shape_on_meta,
    prepare,
    refuse_unless_fits,
    trace_dtype,
)
from costlens.metrics import catalogue
from costlens.models import resolve, user_code
from costlens.records import InputInfo, LayerCost, Profile, Uncounted, load
from costlens.timing.device import DeviceError
from costlens.timing.measure import TimingOptions
from costlens.units import human_bytes
from costlens.zoo.registry import NamedModel


class CostlensWarning(UserWarning):
    """Something the user should know that does not stop the work (one line)."""


# The share of the machine's free memory a real-device trace on cpu may take (the rest stays
# for the system and other processes).
MEMORY_SHARE = 0.9
_SURROGATE = re.compile("[\ud800-\udfff]")

# Factories that could not build on the meta device: built on cpu straight away next time.
_NEEDS_REAL_DEVICE: set[str] = set()


def environment() -> dict[str, str]:
    """Versions that a reader of a profile needs to reproduce it."""
    return {"costlens": __version__, "torch": torch.__version__, "python": _PYTHON_VERSION}


_PYTHON_VERSION = platform.python_version()


def build(named: NamedModel, device: torch.device) -> nn.Module:
    """Build ``named`` for a trace on ``device``.

    For a meta trace the model is built on the meta device, so no weights are allocated
    (nor initialised: ``count/metabuild.py``).
    A factory that cannot (it reads real values) is built on cpu instead, once, and
    the user is told in one line, once the cpu build worked (when it fails too, its error
    is the only line); later profiles of it in this process go to cpu directly.
    """
    reason = None
    if device.type == "meta" and named.name not in _NEEDS_REAL_DEVICE:
        try:
            with building_on_meta():
                return named.build()
        except CostlensError as error:
            if not isinstance(error.__cause__, Exception) or isinstance(error.__cause__, (CostlensError, RecursionError)):
                raise
            reason = f"{type(error.__cause__).__name__}: {error.__cause__}"
        except RecursionError as error:
            raise _too_deep(named.name, error) from error
        except Exception as error:  # a factory that reads real values: build it on cpu below
            reason = f"{type(error).__name__}: {error}"
    real = torch.device("cpu") if device.type == "meta" else device  # the trace swaps in meta stand-ins
    try:
        with real:
            model = named.build()
    except CostlensError:
        raise
    except Exception as error:
        raise ModelError(f"cannot build {named.name}: {type(error).__name__}: {error}") from error
    if reason is not None:
        _NEEDS_REAL_DEVICE.add(named.name)
        first = reason.strip().splitlines()[0] if reason.strip() else "failed"
        warnings.warn(f"{named.name} cannot be built on the meta device ({first[:120]}); built it on cpu, "
                      "which allocates its weights (the trace still runs on meta)", CostlensWarning, stacklevel=3)
    return model


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
    train_mode: bool = False,
    formulas: Mapping[Any, Callable[[tuple, dict, Any], Any]] | None = None,
    time: bool | TimingOptions = False,
    optimizer: str = "sgd",
    freeze: str | Sequence[str] | None = None,
    freeze_until: str | None = None,
    ensemble: int | Sequence[str] | None = None,
    crops: int | None = None,
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

    ``train=True`` counts one training step instead (``costlens/count/training.py``):
    the forward in training mode, the backward ops autograd runs and the ``optimizer``'s
    update (``"sgd"``, ``"sgd-momentum"`` or ``"adam"``), per layer, with gradient,
    optimizer-state and saved-activation memory; with ``time``, the step is also timed
    (forward, backward, update). ``freeze`` (globs over module paths, ``"features.*"``)
    and ``freeze_until`` (a module path: everything that runs before it) freeze parameters
    for that step (the model's own flags are restored after) and imply ``train``.
    ``train_mode=True`` only runs the forward in training mode (batch statistics, dropout).

    ``ensemble=7`` (seven copies of ``model``) or ``ensemble=["resnet50", "resnet101"]``, and
    ``crops=10``: the profile of those networks averaged over multi-crop testing, each image
    as ``crops`` rows of one batch (``costlens/ensemble.py``); with ``time``, timed end to
    end. Compare it with the single model: ``compare("resnet50", profile("resnet50", ensemble=7, crops=10))``.
    """
    if ensemble is not None or crops is not None:
        return _ensemble(model, ensemble, crops, inputs, batch=_one_batch(batch), dtype=dtype, time=time,
                         device=device, exclusive=train or train_mode or bool(freeze or freeze_until or formulas))
    if train or freeze or freeze_until:
        return train_profile(model, inputs, batch=_one_batch(batch), dtype=dtype, optimizer=optimizer,
                             freeze=freeze, freeze_until=freeze_until, formulas=formulas, time=time,
                             device=device)
    if not time:
        return _profile(model, inputs, batch=_one_batch(batch), device=device, dtype=dtype, train=train_mode,
                        formulas=formulas)
    return timed([model], inputs, batch=batch, device=device, dtype=dtype, options=time)[0]


def _ensemble(model: str | nn.Module, members: int | Sequence[str] | None, crops: int | None, inputs: Inputs, *,
              batch: int | None, dtype: str | torch.dtype, time: bool | TimingOptions, device: str | torch.device,
              exclusive: bool) -> Profile:
    """``profile(ensemble=..., crops=...)``: the ensemble's profile (``costlens/ensemble.py``)."""
    from costlens import ensemble

    if exclusive:
        raise InputShapeError("ensemble: an ensemble is counted as a forward pass, without train, freeze or formulas")
    if isinstance(model, nn.Module):
        raise InputShapeError("ensemble: name the models (zoo names or import paths); "
                              "copies of a given module are not made")
    chosen = ensemble.parse_members(model, members, argument="ensemble")
    name = str(dtype).removeprefix("torch.")
    return ensemble.ensemble_of(chosen, 1 if crops is None else crops, inputs, batch=batch, dtype=name,
                                timing=_timing_on(time, device) if time else False)


def _timing_on(options: bool | TimingOptions, device: str | torch.device) -> TimingOptions:
    """The timing options of a call, timed on ``device`` unless it was left at meta (then the
    options' own device, auto by default)."""
    settings = options if isinstance(options, TimingOptions) else TimingOptions()
    return replace(settings, device=str(device) if str(device) != "meta" else settings.device)


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
    settings = _timing_on(options, device)
    settings = replace(settings, batches=batches or settings.batches)
    jobs = []
    for model in models:
        counted = _profile(model, inputs, batch=batches[0] if batches else None, device="meta", dtype=dtype,
                           train=False, formulas=None, argument=argument)
        jobs.append(Job(counted, _real_builder(model), inputs if inputs is not None else counted.input_shape))
    try:
        with user_code("the model's code, while it was timed,"):
            return time_profiles(jobs, settings)
    except RecursionError as error:
        raise _too_deep(", ".join(job.counted.model for job in jobs), error) from error


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
    # a given model profiled before for one plain shape on meta: its kept trace, found before the
    # input is made (each later check would pass: the shape is a given, positive one)
    shape = None if custom else plain_shape_on_meta(inputs, batch, torch_device, traced_dtype)
    if shape is not None and isinstance(model, nn.Module):
        kept = kept_call(model, shape, train, traced_dtype)
        if kept is not None:
            return _profile_of(type(model).__name__, None, kept, plain_infos(shape, traced_dtype), traced_dtype,
                               torch_device)
    net: nn.Module | None = None
    if isinstance(model, nn.Module):
        named, net = NamedModel(type(model).__name__, lambda: model), model
    elif isinstance(model, str):
        named = resolve(model)
    else:
        raise ModelError(f"model: expected a zoo name, 'package.module:factory' or an nn.Module, "
                         f"got {type(model).__name__}")
    if inputs is None:
        if named.input is None:
            raise InputShapeError(f"{named.name} has no default input: give one "
                                  f"({'--input 1x3x224x224' if argument == '--input' else 'inputs=(1, 3, 224, 224)'})")
        inputs = named.input
    if torch_device.type != "meta":
        _refuse_unless_forward_fits(named, net, inputs, batch=batch, device=torch_device, dtype=traced_dtype,
                                    train=train, argument=argument)
    with _memory_capped(torch_device):
        if net is None:
            net = build(named, torch_device)
        if shape is None and not custom:  # by name: the default input was put in after the look-up above
            shape = plain_shape_on_meta(inputs, batch, torch_device, traced_dtype)
        prepared = prepare(inputs, batch=batch, device=torch_device, dtype=traced_dtype, argument=argument)
        # ``shape``: how the input was made, by which a whole trace is kept for the next profile
        result = _trace(named.name, net, prepared, train=train, dtype=traced_dtype, formulas=custom, call=shape)
    return _profile_of(named.name, named.cite, result, prepared.infos, traced_dtype, torch_device)


def _profile_of(name: str, cite: str | None, result: TraceResult, infos: list[InputInfo], dtype: torch.dtype,
                device: torch.device) -> Profile:
    """The profile of one trace: its layers, and its totals in catalogue order."""
    _check_names(name, result.layers)
    root = result.layers[0]
    totals: dict[str, float] = dict(result.state)
    totals.update(root.values)  # op metrics of the whole forward; state metrics agree with the root's
    return Profile(
        model=name, inputs=infos, dtype=str(dtype).removeprefix("torch."),
        device={"type": device.type}, environment=environment(), convention=CONVENTION,
        totals={key: totals[key] for key in _total_keys(totals)}, layers=result.layers,
        uncounted=[Uncounted(op, count, paths) for op, (count, paths) in sorted(result.uncounted.items())],
        citation=cite, flops_by_op=result.flops_by_op,
    )


def train_profile(model: str | nn.Module, inputs: Inputs = None, *, batch: int | None = None,
                  dtype: str | torch.dtype = "float32", optimizer: str = "sgd",
                  freeze: str | Sequence[str] | None = None, freeze_until: str | None = None,
                  formulas: Mapping[Any, Handler] | None = None, argument: str = "inputs",
                  time: bool | TimingOptions = False, device: str | torch.device = "meta") -> Profile:
    """One training step of ``model`` counted on meta, and with ``time`` timed on ``device``
    (auto when left at meta): see ``profile(train=True)``."""
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
    result = replace(result, model=named.name, citation=named.cite)
    if time:
        result = _timed_step(result, model, shape, names, optimizer=optimizer, device=device, options=time)
    return result


def _timed_step(counted: Profile, model: str | nn.Module, inputs: Inputs, frozen: set[str], *, optimizer: str,
                device: str | torch.device, options: bool | TimingOptions) -> Profile:
    """``counted`` (a training step) with its measured time: forward, backward and update on ``device``."""
    from costlens.timing.device import resolve_device
    from costlens.timing.step import time_step

    where = resolve_device(_timing_on(options, device).device)
    needed = counted.totals.get("train_memory_bytes", 0)
    available = available_memory(where)
    if available is not None and needed > MEMORY_SHARE * available:
        raise DeviceError(f"one training step of {counted.model} needs at least {human_bytes(needed)} on "
                          f"{where.type} and {human_bytes(available)} is free: use a smaller batch or input")
    batch = counted.input_shape[0] if counted.input_shape else 1
    dtype = getattr(torch, counted.dtype)
    with user_code("the model's code, while its training step was timed,"):
        times = time_step(_real_builder(model), inputs, batch=batch, device=where, dtype=dtype, optimizer=optimizer,
                          frozen=frozen)
    totals = {**counted.totals, **times.totals()}
    ordered = {m.key: totals[m.key] for m in catalogue() if m.key in totals}
    timing = {"step": times.to_dict(), "timed_on": str(where), "dtype": counted.dtype, "optimizer": optimizer,
              "threads": torch.get_num_threads(), "torch": torch.__version__}
    return replace(counted, totals=ordered, timing=timing)


def _trace(name: str, net: nn.Module, prepared: Prepared, *, train: bool, dtype: torch.dtype,
           formulas: dict[Any, Handler], call: tuple | None = None) -> TraceResult:
    """``trace`` with the user's forward contained: an exit or a ``BaseException`` from it, or a
    model nested deeper than Python's recursion limit, is a one-line ``ModelError``."""
    try:
        with user_code(f"the forward of {name}"):
            return trace(net, prepared.args, prepared.kwargs, train=train, dtype=dtype, formulas=formulas, call=call)
    except RecursionError as error:
        raise _too_deep(name, error, net) from error
    except ModelError as error:
        if isinstance(error.__cause__, RecursionError):  # the forward itself recursed too deep
            raise _too_deep(name, error.__cause__, net) from error
        raise


def _nesting(model: nn.Module) -> int:
    """How many levels of submodules ``model`` has, counted without recursion."""
    deepest, stack, seen = 0, [(model, 0)], {id(model)}
    while stack:
        module, level = stack.pop()
        deepest = max(deepest, level)
        for child in module._modules.values():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                stack.append((child, level + 1))
    return deepest


def _too_deep(name: str, error: RecursionError, net: nn.Module | None = None) -> ModelError:
    levels = f" ({_nesting(net):,} levels of submodules)" if net is not None else ""
    return ModelError(f"{name} is nested too deeply to trace{levels}: Python's recursion limit "
                      f"({sys.getrecursionlimit():,} frames) was reached; flatten the model")


def _check_names(model: str, layers: Sequence[LayerCost]) -> None:
    """Module paths and types must be text that UTF-8 reports (JSON, HTML, CSV) can hold:
    a lone surrogate (a name decoded with surrogateescape, or built with one) is refused
    here, before any report is written."""
    if not _SURROGATE.search("".join([model, *(text for layer in layers for text in (layer.path, layer.type))])):
        return  # the usual case, in one search; else find the first name that holds one
    named = [(model, f"the model's name {model!r}")]
    named += [(text, f"the {kind} of layer {layer.path!r}") for layer in layers
              for text, kind in ((layer.path, "path"), (layer.type, "type"))]
    for text, what in named:
        found = _SURROGATE.search(text)
        if found:
            raise ModelError(f"{what} holds U+{ord(found.group()):04X}, a lone surrogate that no UTF-8 report can hold: "
                             "rename it")


def _refuse_unless_forward_fits(named: NamedModel, net: nn.Module | None, inputs: Inputs, *, batch: int | None,
                                device: torch.device, dtype: torch.dtype, train: bool, argument: str) -> None:
    """Before real weights or tensors are allocated: trace on meta (no memory) and refuse, with
    the figure, a run whose weights (unless ``net`` already holds them) and ``forward_floor``
    cannot fit in the memory ``device`` has free. A model that cannot be built or traced on
    meta is not estimated: the real run decides."""
    given, new = input_bytes(inputs, batch=batch, device=device, dtype=dtype, argument=argument)  # refuses inputs too large
    try:
        with warnings.catch_warnings(), user_code(f"the forward of {named.name}"):
            warnings.simplefilter("ignore")
            if net is None:
                with torch.device("meta"):
                    candidate = named.build()
            meta = prepare(inputs, batch=batch, device=torch.device("meta"), dtype=dtype, argument=argument)
            traced = trace(net if net is not None else candidate, meta.args, meta.kwargs, train=train, dtype=dtype)
    except CostlensError as error:
        if isinstance(error.__cause__, Exception) and not isinstance(error.__cause__, CostlensError):
            return  # the factory or forward failed on meta: the real run decides
        raise
    except Exception:  # a factory or forward that needs real values: no estimate
        return
    weights = int(traced.state.get("weight_bytes", 0)) if net is None else 0
    floor, where = forward_floor(traced.layers, given, torch.empty((), dtype=dtype, device="meta").element_size())
    already = given - new  # inputs that were on the device before this call
    refuse_unless_fits(weights + floor - already, device, f"{named.name}: cannot run the forward on {device}",
                       _floor_detail(weights, where))


@contextmanager
def _memory_capped(device: torch.device) -> Iterator[None]:
    """On cpu under Linux: cap the process's data segment (RLIMIT_DATA) at what it holds now
    plus ``MEMORY_SHARE`` of what the machine has free, for the build and trace only, then
    restore the limit.

    The estimate before it is a floor; a forward that needs more than the machine has (a
    concatenation of wide branches) then fails one allocation, a one-line error, instead of
    filling memory until the kernel's OOM killer ends this or another process.
    """
    if device.type != "cpu" or not sys.platform.startswith("linux"):
        yield
        return
    import resource

    free, used = available_memory(device), _data_segment()
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = None if free is None or used is None else used + int(free * MEMORY_SHARE)
    if cap is None or (soft != resource.RLIM_INFINITY and soft <= cap):
        yield  # no figure, or a tighter limit already
        return
    resource.setrlimit(resource.RLIMIT_DATA, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _data_segment() -> int | None:
    """VmData of this process (what RLIMIT_DATA counts), in bytes."""
    from costlens.inputs import proc_kib

    return proc_kib("/proc/self/status", "VmData")


def forward_floor(layers: Sequence[LayerCost], given: int, itemsize: int) -> tuple[int, LayerCost | None]:
    """Bytes a forward pass must hold at once, at least, beside its weights, and the layer where.

    While a leaf layer runs, the model's inputs (``given`` bytes, held by the caller) and the
    leaf's input are alive, the same tensor or not, and when it ends so is its fresh output
    (an in-place or view layer writes none: its activation bytes are 0). So every leaf call
    needs max(given, its largest input) + its fresh output; the floor is the largest such need.
    ``itemsize`` sizes the recorded shapes (the trace's dtype).
    """
    floor, where = given, None
    for layer in layers:
        if not layer.leaf:
            continue
        largest_input = max((math.prod(shape) for shape in layer.input_shapes), default=0) * itemsize
        written = sum(math.prod(shape) for shape in layer.output_shapes) * itemsize
        need = max(given, largest_input) + min(written, int(layer.values.get("activation_bytes", 0)))
        if need > floor:
            floor, where = need, layer
    return floor, where


def _floor_detail(weights: int, where: LayerCost | None) -> str:
    held = (["the weights"] if weights else []) + ["the input"]
    if where is not None:
        held.append(f"{where.path} ({where.type})'s input and output")
    return f" ({', '.join(held[:-1])} and {held[-1]})" if len(held) > 1 else f" ({held[0]})"


def _total_keys(totals: dict[str, float]) -> list[str]:
    return [m.key for m in catalogue() if m.key in totals]


_META = torch.device("meta")


def _device(device: str | torch.device) -> torch.device:
    if device == "meta":  # the default, without parsing it again
        return _META
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
