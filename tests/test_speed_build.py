"""Building on meta without initialising weights builds the same model, and fails where torch fails."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from costlens.count.metabuild import building_on_meta
from costlens.zoo import create, names


def _state(model: nn.Module) -> list[tuple]:
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    return ([(name, tuple(t.shape), t.stride(), t.dtype, t.requires_grad, type(t).__name__, t.device.type)
             for name, t in tensors]
            + [(name, type(m).__name__, m.training) for name, m in model.named_modules()])


@pytest.mark.parametrize("name", names())
def test_every_zoo_model_builds_the_same_without_initialising(name: str) -> None:
    with torch.device("meta"):
        plain = create(name)
    with building_on_meta():
        fast = create(name)
    assert _state(fast) == _state(plain)


def test_the_default_device_and_other_factories_are_meta_inside() -> None:
    with building_on_meta():
        made = [torch.zeros(2, 3), torch.ones((4,), dtype=torch.float16), torch.empty(1), torch.arange(3),
                torch.zeros(2, requires_grad=True), torch.full((2,), 7.0)]
        assert torch.get_default_device().type == "meta"
    assert [(t.device.type, tuple(t.shape), t.dtype, t.requires_grad) for t in made] == [
        ("meta", (2, 3), torch.float32, False), ("meta", (4,), torch.float16, False), ("meta", (1,), torch.float32, False),
        ("meta", (3,), torch.int64, False), ("meta", (2,), torch.float32, True), ("meta", (2,), torch.float32, False)]
    assert torch.get_default_device().type == "cpu"


@pytest.mark.parametrize("initialise, error", [
    (lambda w: nn.init.kaiming_uniform_(w, mode="fan_sideways"), "Mode fan_sideways not supported"),
    (lambda w: nn.init.kaiming_uniform_(w, nonlinearity="wobbly"), "Unsupported nonlinearity wobbly"),
    (lambda w: nn.init.kaiming_uniform_(w[0, 0, 0]), "fewer than 2 dimensions"),
    (lambda w: w.normal_(0, -1.0), "normal expects std >= 0.0"),
    (lambda w: nn.init.normal_(w, 0, -1.0), "normal expects std >= 0.0"),
])
def test_initialisers_still_check_their_arguments(initialise, error: str) -> None:  # type: ignore[no-untyped-def]
    with building_on_meta():
        weight = torch.empty(4, 3, 3, 3)
        with pytest.raises((ValueError, RuntimeError), match=error):
            initialise(weight)


def test_real_tensors_are_still_initialised() -> None:
    with building_on_meta():
        real = torch.zeros(3, device="cpu")
        real.fill_(2.0)
        nn.init.ones_(real)
    assert real.tolist() == [1.0, 1.0, 1.0]
