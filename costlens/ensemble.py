"""The competition tricks: an ensemble of networks averaged over multi-crop testing.

The ensemble is a module of its own (``Ensemble``): each member runs on the batched crops,
its class scores are turned into probabilities, and they are averaged over members and then
over each image's crops. Counting it is an ordinary trace (``costlens/run.py`` builds it for
a request with ``ensemble``/``crops``), so its MACs are the members' MACs on ``batch × crops``
images, exactly (plus the averaging's few FLOPs), and its params are every member's (each is
trained separately, so each must be stored and served). With timing, the whole ensemble is
timed end to end on the batched crops: measured, not multiplied.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from costlens.inputs import Inputs


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


def described(members: Sequence[str], crops: int) -> str:
    """What the ensemble is, in words, for its report's header."""
    who = f"{len(members)} x {members[0]}" if len(set(members)) == 1 else ", ".join(members)
    return (f"Ensemble of {who}, probabilities averaged over members and over {crops} crop"
            f"{'s' if crops != 1 else ''} of each image (batched)")


def label(members: Sequence[str], crops: int) -> str:
    """'ensemble-7xresnet50-10crops': the ensemble's name in reports and files."""
    names = f"{len(members)}x{members[0]}" if len(set(members)) == 1 else "+".join(members)
    return f"ensemble-{names}-{crops}crops"


def images(inputs: Inputs) -> int:
    """Images per batch of a plain shape's inputs: its first size (1 for anything else)."""
    return inputs[0] if isinstance(inputs, (tuple, list)) and inputs and isinstance(inputs[0], int) else 1
