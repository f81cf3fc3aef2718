"""Run requests: the one path from a ``Request`` to a ``Profile``.

``run_all`` checks every request (``costlens/request.py``), counts each one — a forward pass,
a training step or an ensemble, on the device it asks for — and then times those that ask
for it, all together so that models compared with each other share the machine's drift.
The Python API, every command, ``compare``, ``sweep`` and budget files come through here.

Counting on a real device, and timing, first count on meta (no memory) and refuse a run
that cannot fit (``costlens/memory.py``). User code (factories, forwards) runs inside
``models.user_code``: whatever it raises or exits with becomes a one-line ``ModelError``.
"""

from __future__ import annotations

import copy
import platform
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from costlens import __version__, memory
from costlens.count.formulas import CONVENTION, Handler
from costlens.count.metabuild import building_on_meta
from costlens.count.tracer import TraceResult, trace
from costlens.errors import CostlensError, CostlensWarning, InputShapeError, ModelError, UnknownModelError
from costlens.inputs import Inputs, Prepared, input_bytes, prepare
from costlens.metrics import catalogue
from costlens.models import contained, resolve, user_code
from costlens.records import LayerCost, Profile, Uncounted
from costlens.request import Request, checked
from costlens.zoo.registry import NamedModel

_META = torch.device("meta")
_SURROGATE = re.compile("[\ud800-\udfff]")


def run(request: Request) -> Profile:
    """The profile ``request`` asks for: counted, and timed when it asks."""
    return run_all([request])[0]


def run_all(requests: Sequence[Request]) -> list[Profile]:
    """Each request's profile, in order. Every request is checked before any work; the timed ones
    are timed together, interleaved round by round, after all are counted."""
    ready = [checked(request) for request in requests]
    profiles = [count(request) for request in ready]
    timed = [i for i, request in enumerate(ready) if request.time]
    if timed:
        for i, profile in zip(timed, time_counted([ready[i] for i in timed], [profiles[i] for i in timed])):
            profiles[i] = profile
    return profiles


def count(request: Request) -> Profile:
    """The counted profile of a checked request: an ensemble, a training step or a forward pass."""
    if request.grouped:
        return _ensemble(request)
    if request.step:
        return _training_step(request)
    return _forward(request)


# --- a forward pass ---------------------------------------------------------------------------


def _forward(request: Request) -> Profile:
    named, given = model_of(request)
    inputs = _inputs(request, named)
    device, dtype = torch.device(request.device), getattr(torch, request.dtype)
    argument = request.spell("inputs")
    if device.type != "meta":
        input_bytes(inputs, batch=request.batch, device=device, dtype=dtype, argument=argument)  # inputs alone first
        _refuse_unless_forward_fits(request, named, given, inputs)
    with memory.capped(device):
        net = given if given is not None else build(named, device)
        prepared = prepare(inputs, batch=request.batch, device=device, dtype=dtype, argument=argument)
        result = _trace(named.name, net, prepared, train=request.train_mode, dtype=dtype,
                        formulas=_formulas(request.formulas, request.spell("formulas")), strict=request.strict)
    return _profile_of(request.name or named.name, named.cite, result, prepared, dtype, device)


def model_of(request: Request) -> tuple[NamedModel, nn.Module | None]:
    """The named model, and the module itself when the request gives one; with ``apply``, both
    rewritten (``costlens/alternatives.py``: a given module is copied, one built by name is
    rewritten as it is built)."""
    if isinstance(request.model, nn.Module):
        module = request.model
        named, given = NamedModel(request.label(), lambda: module), module
    elif isinstance(request.model, NamedModel):
        named, given = request.model, None
    else:
        named, given = resolve(request.model), None
    if not request.apply:
        return named, given
    from costlens import alternatives

    changes, argument, original = request.apply, request.spell("apply"), named
    if given is not None:
        given = alternatives.rewrite(given, changes, argument=argument, name=named.name)
    name = alternatives.rewritten_name(original.name, dict(text.split("=", 1) for text in changes))

    def rewritten(**options: Any) -> nn.Module:
        built = original.build(**options)
        return alternatives.rewritten_in_place(built, changes, argument=argument, name=original.name)

    return NamedModel(name, (lambda: given) if given is not None else rewritten, original.input, original.cite), given


def _inputs(request: Request, named: NamedModel) -> Inputs:
    if request.inputs is not None:
        return request.inputs
    if named.input is None:
        example = "--input 1x3x224x224" if request.spell("inputs") == "--input" else "inputs=(1, 3, 224, 224)"
        raise InputShapeError(f"{named.name} has no default input: give one ({example})")
    return named.input


def build(named: NamedModel, device: torch.device) -> nn.Module:
    """Build ``named`` for a trace on ``device``.

    For a meta trace the model is built on the meta device, so no weights are allocated
    (nor initialised: ``count/metabuild.py``). A factory that cannot (it reads real values)
    is built on cpu instead, and the user is told in one line once the cpu build worked
    (when it fails too, its error is the only line); the trace still runs on meta.
    """
    reason = None
    if device.type == "meta":
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
        first = reason.strip().splitlines()[0] if reason.strip() else "failed"
        warnings.warn(f"{named.name} cannot be built on the meta device ({first[:120]}); built it on cpu, "
                      "which allocates its weights (the trace still runs on meta)", CostlensWarning, stacklevel=3)
    return model


def _refuse_unless_forward_fits(request: Request, named: NamedModel, given: nn.Module | None, inputs: Inputs) -> None:
    """Before real weights or tensors are allocated: count on meta (no memory) and refuse, with the
    figures, a forward whose peak cannot fit in the memory the device has free. A model that
    cannot be built or traced on meta is not estimated: the real run decides."""
    device = torch.device(request.device)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            on_meta = _forward(replace(request, device="meta"))
    except CostlensError as error:
        if isinstance(error.__cause__, Exception) and not isinstance(error.__cause__, CostlensError):
            return  # the factory or forward failed on meta: the real run decides
        raise
    held = sum(_bytes(t) for t in (*(given.parameters() if given else ()), *(given.buffers() if given else ()))
               if t.device.type == device.type)
    held += sum(_bytes(t) for t in _given_tensors(inputs) if t.device.type == device.type)
    memory.refuse_unless_run_fits(on_meta, device, f"{named.name}: cannot run the forward on {device}", held=held)


def _given_tensors(inputs: Inputs) -> list[torch.Tensor]:
    values = inputs.values() if isinstance(inputs, dict) else (inputs if isinstance(inputs, (tuple, list)) else [inputs])
    return [t for t in values if isinstance(t, torch.Tensor)]


def _bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _formulas(custom: Any, argument: str) -> dict[Any, Handler]:
    """Custom formulas keyed by aten op; 'aten.name' strings are looked up."""
    found: dict[Any, Handler] = {}
    for op, handler in (custom or {}).items():
        if isinstance(op, str):
            packet = getattr(torch.ops.aten, op.removeprefix("aten.").split(".")[0], None)
            if packet is None:
                raise InputShapeError(f"{argument}: there is no aten op {op!r}")
            op = packet
        if not isinstance(op, (torch._ops.OpOverloadPacket, torch._ops.OpOverload)):
            raise InputShapeError(f"{argument}: keys are aten ops (torch.ops.aten.foo) or 'aten.foo', got {op!r}")
        if not callable(handler):
            raise InputShapeError(f"{argument}: the formula of {op} is not callable")
        found[op] = handler
    return found


def _trace(name: str, net: nn.Module, prepared: Prepared, *, train: bool, dtype: torch.dtype,
           formulas: dict[Any, Handler], strict: bool) -> TraceResult:
    """``trace`` with the user's forward contained: an exit or a ``BaseException`` from it, or a
    model nested deeper than Python's recursion limit, is a one-line ``ModelError``."""
    try:
        with user_code(f"the forward of {name}"):
            return trace(net, prepared.args, prepared.kwargs, train=train, dtype=dtype, formulas=formulas, strict=strict)
    except RecursionError as error:
        raise _too_deep(name, error, net) from error
    except ModelError as error:
        if isinstance(error.__cause__, RecursionError):  # the forward itself recursed too deep
            raise _too_deep(name, error.__cause__, net) from error
        raise


def _profile_of(name: str, cite: str | None, result: TraceResult, prepared: Prepared, dtype: torch.dtype,
                device: torch.device) -> Profile:
    """The profile of one trace: its layers, and its totals in catalogue order."""
    _check_names(name, result.layers)
    totals: dict[str, float] = dict(result.state)
    totals.update(result.layers[0].values)  # op metrics of the whole forward; state metrics agree with the root's
    return Profile(
        model=name, inputs=prepared.infos, dtype=str(dtype).removeprefix("torch."),
        device={"type": device.type}, environment=environment(), convention=CONVENTION,
        totals={m.key: totals[m.key] for m in catalogue() if m.key in totals}, layers=result.layers,
        uncounted=[Uncounted(op, times, paths) for op, (times, paths) in sorted(result.uncounted.items())],
        citation=cite, flops_by_op=result.flops_by_op, value_reads=result.value_reads,
    )


def environment() -> dict[str, str]:
    """Versions that a reader of a profile needs to reproduce it."""
    return dict(_ENVIRONMENT)


_ENVIRONMENT = {"costlens": __version__, "torch": torch.__version__, "python": platform.python_version()}


# --- a training step ---------------------------------------------------------------------------


def _training_step(request: Request) -> Profile:
    """One training step counted on meta (``costlens/count/training.py``)."""
    from costlens.count import training

    named, given = model_of(request)
    net = given if given is not None else build(named, _META)
    inputs = _inputs(request, named)
    forward = replace(request, model=net, inputs=inputs, name=named.name, train=False, train_mode=True, freeze=(),
                      freeze_until=None, optimizer=None, device="meta", time=False)
    order: list[str] = []
    if request.freeze_until is not None:
        order = list(dict.fromkeys(layer.path for layer in _forward(forward).layers))
    if not any(True for _ in net.parameters()):
        raise ModelError(f"{named.name} has no parameters: a training step would update nothing "
                         "(profile its forward instead)")
    names = training.frozen_parameters(net, request.freeze, request.freeze_until, order, _freeze_arguments(request))
    dtype, optimizer = getattr(torch, request.dtype), request.optimizer or "sgd"
    prepared = prepare(inputs, batch=request.batch, device=_META, dtype=dtype,
                       argument=request.spell("inputs"))
    with user_code(f"the forward of {named.name}"):
        unfrozen = training.count_step(net, prepared.args, prepared.kwargs, dtype=dtype,
                                       optimizer=optimizer) if names else None
        with training.frozen(net, names):
            counted = _forward(forward)
            counts = training.count_step(net, prepared.args, prepared.kwargs, dtype=dtype, optimizer=optimizer)
    described = [*request.freeze, *([f"everything before {request.freeze_until}"] if request.freeze_until else [])]
    result = training.attach(counted, counts, optimizer=optimizer, freeze_text=", ".join(described) or None,
                             unfrozen=unfrozen)
    return replace(result, model=named.name, citation=named.cite)


# --- an ensemble -------------------------------------------------------------------------------


def _ensemble(request: Request) -> Profile:
    """The members averaged over crops, counted as one module (``costlens/ensemble.py``)."""
    from costlens import ensemble

    members, crops = request.members, request.crops or 1
    named = _members(request)
    inputs = request.inputs if request.inputs is not None else named[0].input
    if inputs is None:
        raise InputShapeError(f"{members[0]} has no default input: give one")
    images = request.batch or ensemble.images(inputs)
    device = torch.device(request.device)
    module = ensemble.Ensemble([build(member, device) for member in named], crops)
    counted = _forward(replace(request, model=module, inputs=inputs, batches=(images * crops,), ensemble=None,
                               crops=None, time=False, name=ensemble.label(members, crops)))
    return replace(counted, citation=ensemble.described(members, crops))


def _members(request: Request) -> list[NamedModel]:
    """The ensemble's members resolved; a member name that is not a model names the argument it came in."""
    try:
        return [resolve(member) for member in request.members]
    except UnknownModelError as error:
        if isinstance(request.ensemble, tuple) and request.ensemble != (request.model,) * len(request.ensemble):
            raise UnknownModelError(f"{request.spell('ensemble')}: {error}") from error
        raise


# --- timing --------------------------------------------------------------------------------------


def time_counted(requests: Sequence[Request], counted: Sequence[Profile]) -> list[Profile]:
    """The counted profiles of checked requests, measured: forward passes and ensembles together
    (interleaved), training steps one by one."""
    from costlens.timing.measure import Job, time_profiles

    steps = {i for i, request in enumerate(requests) if request.step}
    jobs = [Job(profile, _real_builder(request), profile.input_shape if request.grouped else _timed_inputs(request),
                train=request.train_mode)
            for i, (request, profile) in enumerate(zip(requests, counted)) if i not in steps]
    timed_forwards: list[Profile] = []
    if jobs:
        first = next(request for request in requests if not request.step)
        options = replace(first.timing, batches=first.batches)
        if any(request.grouped for request in requests):
            options = replace(options, batches=(), layers=False)  # every member's layers would take minutes
        names = ", ".join(job.counted.model for job in jobs)
        try:
            with contained("the model's code, while it was timed,", f"timing {names} failed"):
                timed_forwards = time_profiles(jobs, options)
        except RecursionError as error:
            raise _too_deep(names, error) from error
    forwards = iter(timed_forwards)
    return [_timed_step(request, profile) if i in steps else next(forwards)
            for i, (request, profile) in enumerate(zip(requests, counted))]


def _timed_inputs(request: Request) -> Inputs:
    named, _ = model_of(request)
    return _inputs(request, named)


def _real_builder(request: Request) -> Callable[[torch.device], nn.Module]:
    """How to get the model with real weights on a device (a copy when a given module lives elsewhere)."""
    if request.grouped:
        from costlens.ensemble import Ensemble

        members = _members(request)
        return lambda device: Ensemble([build(member, device) for member in members], request.crops or 1)
    if isinstance(request.model, nn.Module):
        module = request.model

        def place(device: torch.device) -> nn.Module:
            on = {p.device for p in module.parameters()}
            return module if on <= {device} else copy.deepcopy(module).to(device)
        return place
    named, _ = model_of(request)
    return lambda device: build(named, device)


def _timed_step(request: Request, counted: Profile) -> Profile:
    """``counted`` (a training step) with its measured time: forward, backward and update."""
    from costlens.timing.device import resolve_device
    from costlens.timing.step import time_step

    where = resolve_device(request.timing.device)
    memory.refuse_unless_run_fits(counted, where, f"one training step of {counted.model} cannot run on {where.type}")
    batch = counted.input_shape[0] if counted.input_shape else 1
    frozen = _frozen_names(request, counted)
    threads = request.timing.threads or torch.get_num_threads()
    timing: dict[str, Any] = {"step": None, "timed_on": str(where), "dtype": counted.dtype,
                              "optimizer": request.optimizer or "sgd", "threads": threads,
                              "torch": torch.__version__, "interrupted": False}
    try:
        with contained("the model's code, while its training step was timed,",
                       f"timing the training step of {counted.model} failed"):
            times = time_step(_real_builder(request), _timed_inputs(request), batch=batch, device=where,
                              dtype=getattr(torch, counted.dtype), optimizer=request.optimizer or "sgd", frozen=frozen,
                              threads=threads)
    except KeyboardInterrupt:  # Ctrl-C before a step was measured: the count stands, said to be cut short
        return replace(counted, timing={**timing, "interrupted": True})
    except RecursionError as error:
        raise _too_deep(counted.model, error) from error
    step = times.to_dict()
    totals = {**counted.totals, **times.totals()}
    timing.update(step=step, threads=times.threads, interrupted=bool(times.interrupted))  # cut short: rounds kept
    return replace(counted, totals={m.key: totals[m.key] for m in catalogue() if m.key in totals}, timing=timing)


def _frozen_names(request: Request, counted: Profile) -> set[str]:
    """The parameters the counted step froze, found again on a meta copy of the model."""
    from costlens.count import training

    if not request.freeze and request.freeze_until is None:
        return set()
    named, given = model_of(request)
    net = given if given is not None else build(named, _META)
    order = list(dict.fromkeys(layer.path for layer in counted.layers))
    return training.frozen_parameters(net, request.freeze, request.freeze_until, order, _freeze_arguments(request))


def _freeze_arguments(request: Request) -> tuple[str, str]:
    return request.spell("freeze"), request.spell("freeze_until")


# --- errors ---------------------------------------------------------------------------------------


def _nesting(model: nn.Module) -> int:
    """How many levels of submodules ``model`` has, counted without recursion."""
    deepest, stack, seen = 0, [(model, 0)], {id(model)}
    while stack:
        module, level = stack.pop()
        deepest = max(deepest, level)
        for child in module.children():
            if id(child) not in seen:
                seen.add(id(child))
                stack.append((child, level + 1))
    return deepest


def _too_deep(name: str, error: RecursionError, net: nn.Module | None = None) -> ModelError:
    levels = f" ({_nesting(net):,} levels of submodules)" if net is not None else ""
    return ModelError(f"{name} is nested too deeply to trace{levels}: Python's recursion limit "
                      f"({sys.getrecursionlimit():,} frames) was reached; flatten the model")


def _check_names(model: str, layers: Sequence[LayerCost]) -> None:
    """Module paths and types must be text that UTF-8 reports (JSON, HTML, CSV) can hold: a lone
    surrogate (a name decoded with surrogateescape, or built with one) is refused here, before any
    report is written."""
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

