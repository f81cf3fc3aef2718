"""What a user asks costlens to do with one model, and the one place it is checked.

A ``Request`` holds everything a profile depends on: the model, its inputs, where and in
which dtype it is counted, the modes (training-mode forward, a training step, an
ensemble over crops), custom formulas, and whether and how it is timed. The Python API
(``costlens.api``), every command of the command line, ``compare``, ``sweep`` and budget
files all build one and hand it to ``costlens.run.run``.

``checked`` validates it before any work: each field's type and range, then the table of
refused combinations (``PAIRS``, ``NEEDS``). Messages name the arguments the way the front
door the request came through spells them (``Front``): ``train_mode`` in Python,
``--train-mode`` on the command line, so both refuse the same things with the same words.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from costlens.errors import InputShapeError, ModelError
from costlens.timing.options import TimingOptions

if TYPE_CHECKING:
    from torch import nn

    from costlens.inputs import Inputs
    from costlens.zoo.registry import NamedModel

MAX_BATCH = 2**31
MAX_MEMBERS = 1000
MAX_CROPS = 1000
OPTIMIZERS = ("sgd", "sgd-momentum", "adam")
DTYPES = ("float32", "float16", "bfloat16")
DEFAULT_TIMING = TimingOptions()  # frozen: one instance serves every request that does not time


class Front(StrEnum):
    """The front door a request came through, which sets how its messages spell arguments."""

    API = "api"
    CLI = "cli"


# Each argument as the Python API and the command line spell it.
SPELLINGS: dict[str, tuple[str, str]] = {
    "model": ("model", "NAME"),
    "inputs": ("inputs", "--input"),
    "batch": ("batch", "--batch"),
    "device": ("device", "--device"),
    "dtype": ("dtype", "--dtype"),
    "train_mode": ("train_mode", "--train-mode"),
    "train": ("train", "--train"),
    "optimizer": ("optimizer", "--optimizer"),
    "freeze": ("freeze", "--freeze"),
    "freeze_until": ("freeze_until", "--freeze-until"),
    "ensemble": ("ensemble", "--ensemble"),
    "crops": ("crops", "--crops"),
    "formulas": ("formulas", "formulas"),
    "apply": ("apply", "--apply"),
    "strict": ("strict", "--strict"),
    "time": ("time", "--time"),
    "compile": ("time.compile", "--compile"),
    "channels_last": ("time.channels_last", "--channels-last"),
    "layers": ("time.layers", "--no-layers"),
    "layer_time": ("time.layer_time", "--layer-time"),
    "peak_flops": ("time.peak_flops", "--peak-flops"),
    "bandwidth": ("time.bandwidth", "--bandwidth"),
    "device_file": ("time.device_file", "--device-file"),
    "threads": ("time.threads", "--threads"),
    "cuda_graphs": ("time.cuda_graphs", "--cuda-graphs"),
    "layer_time_method": ("time.layer_time_method", "--layer-time-method"),
    "latency_time": ("time.latency_time", "--latency-time"),
    "latency_cap": ("time.latency_cap", "--latency-cap"),
    "precision": ("time.precision", "--precision"),
    "recalibrate": ("time.recalibrate", "--recalibrate"),
}


def spelled(argument: str, front: Front) -> str:
    """``argument`` as the front door spells it: 'train_mode' or '--train-mode'."""
    api, cli = SPELLINGS.get(argument, (argument, f"--{argument.replace('_', '-')}"))
    return cli if front is Front.CLI else api


@dataclass(frozen=True)
class Request:
    """One model to profile, and how (see ``costlens.api.profile`` for each argument's meaning).

    ``device`` is where it is counted (meta: no weights, no arithmetic); ``timing.device`` where
    it is timed when ``time`` is set. ``batches``: the first is counted, every one is timed.
    ``train`` (implied by ``freeze``/``freeze_until``) counts one training step; ``ensemble``
    (a number of copies or member names) and ``crops`` count an ensemble over multi-crop testing.
    ``name`` replaces the model's own name in the profile.
    """

    model: str | nn.Module | NamedModel  # a zoo name or import path, a module, or how to build one
    inputs: Inputs = None
    batches: tuple[int, ...] = ()
    device: str = "meta"
    dtype: str = "float32"
    train_mode: bool = False
    train: bool = False
    optimizer: str | None = None
    freeze: tuple[str, ...] = ()
    freeze_until: str | None = None
    ensemble: int | str | tuple[str, ...] | None = None
    crops: int | None = None
    formulas: Mapping[Any, Any] | None = None
    apply: tuple[str, ...] | Mapping[str, str] = ()  # convolutions rewritten first: 'PATH=ALTERNATIVE' (alternatives.py)
    strict: bool = False  # on meta, refuse to assume a tensor value the model reads (count/values.py)
    time: bool = False
    timing: TimingOptions = DEFAULT_TIMING
    name: str | None = None
    front: Front = Front.API

    @property
    def batch(self) -> int | None:
        """The batch size counted: the first one given, else the inputs' own."""
        return self.batches[0] if self.batches else None

    @property
    def step(self) -> bool:
        """A training step is counted (``train``, or a freeze, which implies it)."""
        return self.train or bool(self.freeze) or self.freeze_until is not None

    @property
    def grouped(self) -> bool:
        """An ensemble (or one model over crops) is counted."""
        return self.ensemble is not None or self.crops is not None

    @property
    def members(self) -> tuple[str, ...]:
        """The ensemble's members, once checked: copies of the model or the names given."""
        if isinstance(self.ensemble, tuple):
            return self.ensemble
        return (self.model,) * (self.ensemble if isinstance(self.ensemble, int) else 1)  # type: ignore[return-value]

    def spell(self, argument: str) -> str:
        return spelled(argument, self.front)

    def label(self) -> str:
        """The model as the user named it: a zoo name, an import path, or a module's class."""
        from costlens.zoo.registry import NamedModel

        if self.name is not None:
            return self.name
        if isinstance(self.model, NamedModel):
            return self.model.name
        return self.model if isinstance(self.model, str) else type(self.model).__name__


# --- refused combinations: the one table -------------------------------------------------

# Each pair of arguments that do not combine, with why; an argument is "given" as ``_given`` says.
PAIRS: tuple[tuple[str, str, str], ...] = (
    ("train", "train_mode", "a training step already runs its forward in training mode: choose one"),
    ("ensemble", "train", "an ensemble is counted as a forward pass"),
    ("ensemble", "train_mode", "an ensemble is counted as a forward pass in eval mode"),
    ("ensemble", "formulas", "an ensemble is counted with the registered formulas"),
    ("ensemble", "apply", "an ensemble's members are built by name: profile the rewritten model on its own"),
    ("train", "compile", "a training step is timed eager"),
    ("train", "channels_last", "a training step is timed in the default memory format"),
    ("train", "batches", "a training step is timed at one batch size"),
    ("ensemble", "batches", "an ensemble is timed at one batch size"),
    ("train", "cuda_graphs", "a training step is timed eager"),
)
# Arguments that mean nothing without another one.
NEEDS: tuple[tuple[str, str, str], ...] = (
    ("optimizer", "train", "the optimizer's update is part of a training step"),
    ("batches", "time", "each of several batch sizes is timed; one is counted"),
    *((option, "time", "it sets how the model is timed") for option in (
        "compile", "channels_last", "layers", "layer_time", "peak_flops", "bandwidth", "device_file", "threads",
        "cuda_graphs", "layer_time_method", "latency_time", "latency_cap", "precision", "recalibrate")),
)


def _given(request: Request, argument: str) -> bool:
    """Whether the request asks for ``argument`` (for timing options: set away from their default)."""
    if argument == "train":
        return request.step
    if argument == "ensemble":
        return request.grouped
    if argument == "batches":
        return len(request.batches) > 1
    if argument == "time":
        return request.time
    if argument in _TIMING_OPTIONS:
        return getattr(request.timing, argument) != getattr(DEFAULT_TIMING, argument)
    value = getattr(request, argument)
    return bool(value) and value is not None


# options of how to time, given when set away from their default (``batches`` is the request's own)
_TIMING_OPTIONS = {f.name for f in fields(TimingOptions)} - {"batches"}


def _named(request: Request, argument: str) -> str:
    """How a message names a given argument: the one the user actually gave."""
    if argument == "train":
        chosen = "train" if request.train else ("freeze" if request.freeze else "freeze_until")
        return request.spell(chosen)
    if argument == "ensemble":
        return request.spell("ensemble" if request.ensemble is not None else "crops")
    if argument == "batches":
        return f"{request.spell('batch')} with several sizes"
    return request.spell(argument)


_TABLE_ARGUMENTS = tuple(dict.fromkeys(name for entry in (*PAIRS, *NEEDS) for name in entry[:2]))
_PLAIN_ARGUMENTS = tuple(name for name in _TABLE_ARGUMENTS if name not in _TIMING_OPTIONS)


def refusal(request: Request) -> str | None:
    """Why the request's arguments do not combine, in one line; None when they do."""
    asked = _TABLE_ARGUMENTS if request.timing != DEFAULT_TIMING else _PLAIN_ARGUMENTS  # the usual request is plain
    given = {argument for argument in asked if _given(request, argument)}
    if not given:
        return None  # a plain forward: nothing to combine
    for first, second, why in PAIRS:
        if first in given and second in given:
            return f"{_named(request, first)} and {_named(request, second)} do not combine: {why}"
    for argument, needed, why in NEEDS:
        if argument in given and needed not in given:
            return f"{_named(request, argument)} needs {request.spell(needed)}: {why}"
    return None


# --- each argument's own checks -------------------------------------------------------------


def checked(request: Request) -> Request:
    """The request with its arguments checked and put in their plain forms (a dtype's name, the
    ensemble's members, tuples); an ``InputShapeError`` or ``ModelError`` naming the argument
    otherwise. Nothing is built or run."""
    say = request.spell
    _check_model(request)
    plain: dict[str, Any] = {
        "batches": batch_sizes(request.batches, say("batch")), "device": _device(request.device, say("device")),
        "dtype": _dtype(request.dtype, say("dtype")), "freeze": _patterns(request.freeze, say("freeze")),
        "freeze_until": _optional_text(request.freeze_until, say("freeze_until"))}
    if any(getattr(request, name) != value for name, value in plain.items()):
        request = replace(request, **plain)
    for flag in ("train_mode", "train", "time", "strict"):
        if not isinstance(getattr(request, flag), bool):
            raise InputShapeError(f"{say(flag)}: expected True or False, got {getattr(request, flag)!r}")
    if request.optimizer is not None and request.optimizer not in OPTIMIZERS:
        raise InputShapeError(f"{say('optimizer')}: expected one of {', '.join(OPTIMIZERS)}, got {request.optimizer!r}")
    if request.formulas is not None and not isinstance(request.formulas, Mapping):
        raise InputShapeError(f"{say('formulas')}: expected a dict of aten op -> handler, got {_brief(request.formulas)}")
    if request.crops is not None:
        _count(request.crops, say("crops"), MAX_CROPS)
    if request.apply:
        request = replace(request, apply=_applied(request.apply, say("apply")))
    reason = refusal(request)
    if reason is not None:
        raise InputShapeError(reason)
    if request.grouped:
        request = replace(request, ensemble=_members(request), crops=request.crops or 1)
    if request.time:
        request.timing.check()
    _check_tensors(request)
    return request


def _check_tensors(request: Request) -> None:
    """Tensors the user gave (inputs, a module's weights) that cannot serve the request: sparse
    inputs, and tensors on the meta device where real values are needed (a real device, timing)."""
    import torch
    from torch import nn

    from costlens.inputs import is_shape, split

    real = [where for where, needed in ((f"{request.spell('device')} {request.device}", request.device != "meta"),
                                        (request.spell("time"), request.time)) if needed]
    if isinstance(request.model, nn.Module) and real and any(
            t.is_meta for t in itertools.chain(request.model.parameters(), request.model.buffers())):
        raise ModelError(f"{request.label()} has weights on the meta device, and {real[0]} needs real ones: count it "
                         "on meta, or give a model with real weights")
    if request.inputs is None or is_shape(request.inputs):
        return  # no tensors given: the model's default input, or one shape
    positional, keyword = split(request.inputs, request.spell("inputs"))
    named = [*((f"{request.spell('inputs')}[{i}]" if len(positional) > 1 else request.spell("inputs"), spec)
               for i, spec in enumerate(positional)), *((f"{request.spell('inputs')}[{k!r}]", spec)
                                                        for k, spec in keyword.items())]
    for argument, spec in named:
        if not isinstance(spec, torch.Tensor):
            continue
        if spec.layout != torch.strided:
            raise InputShapeError(f"{argument}: a {str(spec.layout).removeprefix('torch.')} tensor is not an input "
                                  "costlens can trace: give a dense tensor (.to_dense()) or its shape")
        if spec.is_meta and real:
            raise InputShapeError(f"{argument}: a tensor on the meta device has no values, and {real[0]} needs "
                                  "them: give its shape or a real tensor")


def _check_model(request: Request) -> None:
    from torch import nn

    from costlens.zoo.registry import NamedModel

    if isinstance(request.model, (nn.Module, NamedModel)):
        return
    if not isinstance(request.model, str) or not request.model.strip():
        raise ModelError(f"{request.spell('model')}: expected a zoo name, 'package.module:factory' or an nn.Module, "
                         f"got {_brief(request.model)}")


def batch_sizes(batches: object, argument: str) -> tuple[int, ...]:
    """Batch sizes as a tuple: whole numbers from 1 to ``MAX_BATCH``, none twice (each is timed
    once, and measured memory depends on what ran before); an ``InputShapeError`` naming ``argument``."""
    if batches is None or batches == ():
        return ()
    values = (batches,) if not isinstance(batches, (tuple, list)) else tuple(batches)
    for value in values:
        if not _is_int(value) or not 1 <= value <= MAX_BATCH:
            raise InputShapeError(f"{argument}: batch sizes must be whole numbers from 1 to {MAX_BATCH:,}, "
                                  f"got {_brief(value)}")
    repeated = next((b for i, b in enumerate(values) if b in values[:i]), None)
    if repeated is not None:
        raise InputShapeError(f"{argument}: {repeated} is listed twice")
    return values  # type: ignore[return-value]


def _device(device: object, argument: str) -> str:
    if device == "meta":  # the usual case, without parsing it
        return "meta"
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise InputShapeError(f"{argument}: expected meta, cpu or cuda, got {_brief(device)}")
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise InputShapeError(f"{argument}: {device!r} is not a device (meta, cpu or cuda)") from error
    if found.type not in ("meta", "cpu", "cuda"):
        raise InputShapeError(f"{argument}: expected meta, cpu or cuda, got {device!r}")
    if found.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"{argument}: cuda is not available here (torch.cuda.is_available() is False): "
                         "count on meta, the default, or on cpu")
    return str(found)


def _dtype(dtype: object, argument: str) -> str:
    name = str(dtype).removeprefix("torch.") if isinstance(dtype, str) or type(dtype).__name__ == "dtype" else None
    if name not in DTYPES:
        shown = name if name is not None else _brief(dtype)
        raise InputShapeError(f"{argument}: {shown} is not a dtype to trace in; choose {', '.join(DTYPES)}")
    return name


def _patterns(patterns: object, argument: str) -> tuple[str, ...]:
    if patterns == ():
        return ()
    listed = (patterns,) if isinstance(patterns, str) else patterns
    if not isinstance(listed, (tuple, list)) or not all(isinstance(p, str) and p.strip() for p in listed):
        raise InputShapeError(f"{argument}: expected module path globs like 'features.*', got {_brief(patterns)}")
    return tuple(listed)


def _optional_text(value: object, argument: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise InputShapeError(f"{argument}: expected a module path like 'layer3', got {_brief(value)}")
    return value


def _applied(changes: object, argument: str) -> tuple[str, ...]:
    """Rewrites as 'PATH=ALTERNATIVE' texts, each checked (``costlens/alternatives.py``); the paths
    themselves are checked against the model once it is built."""
    from costlens.alternatives import parse_applied

    if isinstance(changes, Mapping):
        texts = [f"{path}={spec}" for path, spec in changes.items()]
    elif isinstance(changes, (tuple, list)) and all(isinstance(text, str) for text in changes):
        texts = list(changes)
    else:
        raise InputShapeError(f"{argument}: expected {{path: alternative}} or ['PATH=ALTERNATIVE', ...], "
                              f"got {_brief(changes)}")
    return tuple(f"{path}={spec}" for path, spec in parse_applied(texts, argument).items())


def _members(request: Request) -> tuple[str, ...]:
    """``7`` (or ``"7"``): seven copies of the model; ``"a,b,c"`` or ``["a", "b", "c"]``: those models."""
    spec, argument = request.ensemble, request.spell("ensemble")
    if spec is None:
        spec = 1
    if isinstance(spec, str) and spec.strip().isascii() and spec.strip().isdecimal():
        spec = int(spec.strip())
    if _is_int(spec):
        _count(spec, argument, MAX_MEMBERS)
        if not isinstance(request.model, str):
            raise InputShapeError(f"{argument}: copies of a given module are not made: name the model "
                                  "(a zoo name or an import path)")
        return (request.model,) * int(spec)  # type: ignore[arg-type]
    listed = spec.split(",") if isinstance(spec, str) else spec
    if not isinstance(listed, (tuple, list)) or not all(isinstance(part, str) for part in listed):
        raise InputShapeError(f"{argument}: a number of copies or model names, got {_brief(spec)}")
    members = tuple(part.strip() for part in listed if part.strip())
    if not members:
        raise InputShapeError(f"{argument}: a number of copies or model names separated by commas, got {_brief(spec)}")
    if len(members) > MAX_MEMBERS:
        raise InputShapeError(f"{argument}: at most {MAX_MEMBERS} members, got {len(members)}")
    return members


def _count(value: object, argument: str, most: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise InputShapeError(f"{argument}: a whole number from 1 to {most}, got {_brief(value)}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _brief(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def of_api(model: Any, inputs: Any, *, batch: Any, device: Any, dtype: Any, train: Any, train_mode: Any,
           formulas: Any, time: Any, optimizer: Any, freeze: Any, freeze_until: Any, ensemble: Any,
           crops: Any, apply: Any = (), strict: Any = False) -> Request:
    """The request of a Python call ``profile(...)``: ``batch`` an int or a list, ``freeze`` a glob
    or a list, ``time`` True or ``TimingOptions``; ``device`` is where it is timed when timed
    (meta then means auto), else where it is counted."""
    timing = time if isinstance(time, TimingOptions) else DEFAULT_TIMING
    timed = isinstance(time, TimingOptions) or time
    counted_on = device
    if timed is True:
        where = str(device) if str(device) != "meta" else timing.device
        timing, counted_on = replace(timing, device=where), "meta"
    batches = () if batch is None else (tuple(batch) if isinstance(batch, (tuple, list)) else (batch,))
    return Request(model, inputs, batches=batches, device=counted_on, dtype=dtype, train_mode=train_mode,
                   train=train, optimizer=optimizer, freeze=() if freeze is None else freeze,
                   freeze_until=freeze_until, ensemble=ensemble, crops=crops, formulas=formulas, apply=apply,
                   strict=strict, time=timed, timing=timing)

