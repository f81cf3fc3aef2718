"""A model whose module and type names try to inject markup into reports."""

from __future__ import annotations

import torch
from torch import nn

EVIL_NAME = "<img src=x onerror=alert(1)>"
EVIL_TYPE = "</script><script>alert(2)</script>"


def build() -> nn.Module:
    model = nn.Sequential()
    model.add_module(EVIL_NAME, nn.Conv2d(3, 4, 3))
    evil_type = type(EVIL_TYPE, (nn.ReLU,), {})
    model.add_module("act", evil_type())
    return model


def example() -> torch.Tensor:
    return torch.randn(1, 3, 8, 8)
