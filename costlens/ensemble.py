"""The competition tricks: an ensemble of networks averaged over multi-crop testing.

The ensemble is a module of its own (``Ensemble``): each member runs on the batched crops,
its class scores are turned into probabilities, and they are averaged over members and then
over each image's crops. Counting it is an ordinary trace, so its MACs are the members'
MACs on ``batch × crops`` images, exactly (plus the averaging's few FLOPs), and its params
are every member's (each is trained separately, so each must be stored and served). With
timing, the whole ensemble is timed end to end on the batched crops: measured, not multiplied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from costlens.errors import InputShapeError
from costlens.inputs import Inputs
from costlens.metrics import get
from costlens.records import Profile
from costlens.timing.measure import TimingOptions

MAX_MEMBERS = 1000
MAX_CROPS = 1000


class Ensemble(nn.Module):
    """``members`` averaged over ``crops``: the input holds each image's crops one after another
    (``batch × crops`` rows); the output is one probability row per image."""

    def __init__(self, members: list[nn.Module], crops: int) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.crops = crops

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.stack([member(x).flatten(1).softmax(-1) for member in self.members]).mean(0)
        return scores.view(-1, self.crops, scores.shape[-1]).mean(1)


def parse_members(name: str, spec: str | int | Sequence[str] | None, argument: str = "--ensemble") -> list[str]:
    """``7`` (or ``"7"``): seven copies of ``name``; ``"a,b,c"`` or ``["a", "b", "c"]``: those
    models; None: ``name`` alone."""
    if spec is None:
        return [name]
    given = spec
    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec.strip())
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 1 <= spec <= MAX_MEMBERS:
            raise InputShapeError(f"{argument}: between 1 and {MAX_MEMBERS} members, got {spec}")
        return [name] * spec
    if isinstance(spec, str):
        spec = spec.split(",")
    if not isinstance(spec, (list, tuple)) or not all(isinstance(part, str) for part in spec):
        raise InputShapeError(f"{argument}: a number of copies or model names, got {given!r}")
    members = [part.strip() for part in spec if part.strip()]
    if not members:
        raise InputShapeError(f"{argument}: expected a count or model names separated by commas, got {given!r}")
    return members


@dataclass(frozen=True)
class EnsembleCost:
    """The ensemble's profile (batch × crops rows) next to the single model on a single crop."""

    profile: Profile
    single: Profile
    members: list[str]
    crops: int


def described(members: list[str], crops: int) -> str:
    """What the ensemble is, in words, for its report's header."""
    who = f"{len(members)} x {members[0]}" if len(set(members)) == 1 else ", ".join(members)
    return (f"Ensemble of {who}, probabilities averaged over members and over {crops} crop"
            f"{'s' if crops != 1 else ''} of each image (batched)")


def label(members: list[str], crops: int) -> str:
    """'ensemble-7xresnet50-10crops': the ensemble's name in reports and files."""
    names = f"{len(members)}x{members[0]}" if len(set(members)) == 1 else "+".join(members)
    return f"ensemble-{names}-{crops}crops"


def builder(members: Sequence[str], crops: int) -> Callable[[torch.device], nn.Module]:
    """How to build the ensemble of ``members`` (zoo names or import paths) over ``crops`` on a device."""
    from costlens.api import build
    from costlens.models import resolve

    named = [resolve(member) for member in members]
    return lambda device: Ensemble([build(n, device) for n in named], crops)


def ensemble_of(members: Sequence[str], crops: int, inputs: Inputs = None, *, batch: int | None = None,
                dtype: str = "float32", timing: bool | TimingOptions = False, argument: str = "inputs") -> Profile:
    """The profile of ``members`` averaged over ``crops`` (``batch`` images, each as ``crops``
    rows), counted on meta and, with ``timing``, timed end to end."""
    from costlens.api import _profile
    from costlens.models import resolve

    if not members:
        raise InputShapeError("ensemble: name at least one member")
    if not 1 <= crops <= MAX_CROPS:
        raise InputShapeError(f"crops: between 1 and {MAX_CROPS}, got {crops}")
    if len(members) > MAX_MEMBERS:
        raise InputShapeError(f"ensemble: at most {MAX_MEMBERS} members, got {len(members)}")
    shape = inputs if inputs is not None else resolve(members[0]).input
    if shape is None:
        raise InputShapeError(f"{members[0]} has no default input: give one")
    make = builder(members, crops)
    counted = _profile(make(torch.device("meta")), shape, batch=_images(shape, batch) * crops,
                       device=torch.device("meta"), dtype=dtype, train=False, formulas=None, argument=argument)
    counted = replace(counted, model=label(list(members), crops), citation=described(list(members), crops))
    if not timing:
        return counted
    from costlens.timing.measure import Job, time_profiles

    (timed,) = time_profiles([Job(counted, make, counted.input_shape)], _end_to_end(timing))
    return timed


def _end_to_end(timing: bool | TimingOptions) -> TimingOptions:
    """An ensemble is timed end to end at its own batch: every member's layers would take minutes."""
    settings = timing if isinstance(timing, TimingOptions) else TimingOptions()
    return replace(settings, batches=(), layers=False)


def _images(shape: Inputs, batch: int | None) -> int:
    """Images per batch: ``batch``, or the first size of a plain shape."""
    if batch is not None:
        return batch
    return shape[0] if isinstance(shape, (tuple, list)) and shape and isinstance(shape[0], int) else 1


def ensemble_profile(name: str, members: list[str], crops: int, inputs: Inputs = None, *, batch: int | None = None,
                     dtype: str = "float32", timing: bool | TimingOptions = False,
                     argument: str = "inputs") -> EnsembleCost:
    """Count (and with ``timing``, time) ``members`` averaged over ``crops`` against ``name`` alone."""
    from costlens.api import _profile, _real_builder
    from costlens.models import resolve

    shape = inputs if inputs is not None else (resolve(name).input or resolve(members[0]).input)
    counted = ensemble_of(members, crops, shape, batch=batch, dtype=dtype, timing=timing, argument=argument)
    single = _profile(name, shape, batch=_images(shape, batch) if shape is not None else None,
                      device=torch.device("meta"), dtype=dtype, train=False, formulas=None, argument=argument)
    if timing:
        from costlens.timing.measure import Job, time_profiles

        (single,) = time_profiles([Job(single, _real_builder(name), single.input_shape)], _end_to_end(timing))
    factors = ", ".join(f"{counted.totals[k] / single.totals[k]:.3g}x the {words}"
                        for k, words in (("macs", "MACs"), ("params", "params")) if single.totals.get(k))
    against = (f"; one {name} on one crop: {get('macs').short(single.totals['macs'])} MACs, "
               f"{get('params').short(single.totals['params'])} params (this ensemble: {factors})")
    return EnsembleCost(replace(counted, citation=(counted.citation or "") + against), single, members, crops)


SUMMARY_KEYS = ("macs", "flops", "params", "weight_bytes", "latency_ms")


def summary(cost: EnsembleCost) -> str:
    """Single model on one crop, the ensemble on every crop, and the factor between them."""
    from costlens.report.grid import grid

    keys = [k for k in SUMMARY_KEYS if k in cost.profile.totals and k in cost.single.totals]
    rows: list[tuple[str, ...]] = [("", *(get(k).label for k in keys))]
    images = cost.single.input_shape[0] if cost.single.input_shape else 1
    rows.append((f"{cost.single.model}, 1 crop, batch {images}", *(get(k).short(cost.single.totals[k]) for k in keys)))
    members = f"{len(cost.members)} x {cost.members[0]}" if len(set(cost.members)) == 1 else ", ".join(cost.members)
    rows.append((f"ensemble of {members}, {cost.crops} crops", *(get(k).short(cost.profile.totals[k]) for k in keys)))
    rows.append(("factor", *(_factor(cost.profile.totals[k], cost.single.totals[k]) for k in keys)))
    note = (f"Crops are batched: each member runs once on {images} x {cost.crops} images; "
            "probabilities are averaged over members, then over crops.")
    return "\n".join([*grid(rows, set(range(1, len(keys) + 1))), note]) + "\n"


def _factor(value: float, base: float) -> str:
    return f"{value / base:.3g}x" if base else "-"
