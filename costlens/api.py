"""The Python API: ``profile`` and ``compare``.

Each call becomes a ``Request`` (``costlens/request.py``), checked in the one place every
front door shares, and is run by ``costlens.run``: the command line does the same with its
options, so both refuse the same things with the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from costlens.comparison import Comparison, align
from costlens.errors import InputShapeError
from costlens.inputs import Inputs
from costlens.records import Profile, load
from costlens.request import Request, of_api
from costlens.run import run, run_all
from costlens.timing.options import TimingOptions


def profile(
    model: str | nn.Module,
    inputs: Inputs = None,
    *,
    batch: int | Sequence[int] | None = None,
    device: str | torch.device = "meta",
    dtype: str | torch.dtype = "float32",
    train: bool = False,
    train_mode: bool = False,
    formulas: Mapping[Any, Callable[[tuple, dict, Any], Any]] | None = None,
    time: bool | TimingOptions = False,
    optimizer: str | None = None,
    freeze: str | Sequence[str] | None = None,
    freeze_until: str | None = None,
    ensemble: int | str | Sequence[str] | None = None,
    crops: int | None = None,
    apply: Mapping[str, str] | Sequence[str] = (),
    strict: bool = False,
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
    update (``"sgd"``, the default, ``"sgd-momentum"`` or ``"adam"``), per layer, with gradient,
    optimizer-state and saved-activation memory; with ``time``, the step is also timed
    (forward, backward, update). ``freeze`` (globs over module paths, ``"features.*"``)
    and ``freeze_until`` (a module path: everything that runs before it) freeze parameters
    for that step (the model's own flags are restored after) and imply ``train``.
    ``train_mode=True`` only runs the forward in training mode (batch statistics, dropout).

    ``ensemble=7`` (seven copies of ``model``) or ``ensemble=["resnet50", "resnet101"]``, and
    ``crops=10``: the profile of those networks averaged over multi-crop testing, each image
    as ``crops`` rows of one batch (``costlens/ensemble.py``); with ``time``, timed end to
    end. Compare it with the single model: ``compare("resnet50", profile("resnet50", ensemble=7, crops=10))``.

    ``apply={"inception3a.branch3.conv.conv": "depthwise"}`` profiles the model with those
    convolutions rewritten (``costlens/alternatives.py``; ``costlens.whatif`` prices every
    alternative, ``costlens.rewrite`` returns the rewritten module); a given module is copied.

    On meta, a model that reads a tensor's value (``if mask.all():``, ``.item()``) reads it exactly
    where costlens knows it (the inputs it made: token ids are zeros, masks ones) and otherwise
    gets an assumed value, listed in ``Profile.value_reads`` (``costlens/count/values.py``);
    ``strict=True`` refuses to assume one.

    Arguments that do not combine (``train`` with ``train_mode``, an ensemble with ``train``,
    several batch sizes without ``time`` ...) raise an ``InputShapeError`` naming both.
    """
    return run(of_api(model, inputs, batch=batch, device=device, dtype=dtype, train=train, train_mode=train_mode,
                      formulas=formulas, time=time, optimizer=optimizer, freeze=freeze, freeze_until=freeze_until,
                      ensemble=ensemble, crops=crops, apply=apply, strict=strict))


def compare(*models: str | nn.Module | Profile, inputs: Inputs = None, batch: int | None = None,
            device: str | torch.device = "meta", dtype: str | torch.dtype = "float32",
            depth: int | None = None, time: bool | TimingOptions = False) -> Comparison:
    """Compare models (zoo names, import paths, modules, saved .json files or Profiles), the
    first as the baseline of every ratio, block by block down to ``depth`` (default: the
    first level where three blocks carry MACs). ``time=True`` measures every model (not
    saved profiles) in the same run, interleaved, on ``device`` (auto when left at meta)."""
    if len(models) < 2:
        raise InputShapeError("compare needs at least two models")
    template = of_api("", inputs, batch=batch, device=device, dtype=dtype, train=False, train_mode=False,
                      formulas=None, time=time, optimizer=None, freeze=None, freeze_until=None, ensemble=None,
                      crops=None, apply=())
    return align(profiles_of(models, template), depth=depth)


def is_saved_profile(spec: object) -> bool:
    """A compare/check argument that names a saved profile JSON rather than a model."""
    return isinstance(spec, str) and (spec.endswith(".json") or ("/" in spec and ":" not in spec))


def profiles_of(specs: Sequence[str | nn.Module | Profile | Request], template: Request) -> list[Profile]:
    """A profile for each spec, in order: Profiles and saved JSON files as they are, requests as
    they ask, every other model run as ``template`` asks; the timed ones together."""
    live = {i for i, spec in enumerate(specs) if not isinstance(spec, Profile) and not is_saved_profile(spec)}
    ran = iter(run_all([spec if isinstance(spec := specs[i], Request) else replace(template, model=spec)  # type: ignore[arg-type]
                        for i in sorted(live)]))
    return [next(ran) if i in live else (spec if isinstance(spec, Profile) else load(spec))  # type: ignore[arg-type]
            for i, spec in enumerate(specs)]
