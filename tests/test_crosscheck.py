"""fvcore's JIT counter, on real CPU tensors, agrees with the tracer module by module."""

from __future__ import annotations

import pytest

from costlens.crosscheck import crosscheck


@pytest.mark.parametrize(("name", "shape"), [
    ("inception", (1, 192, 28, 28)),
    ("lenet5-1998", (1, 1, 32, 32)),
    ("alexnet", (1, 3, 227, 227)),
    ("resnet50", (1, 3, 224, 224)),
    ("googlenet", (1, 3, 224, 224)),
    ("nin", (1, 3, 32, 32)),
])
def test_fvcore_agrees_module_by_module(name: str, shape: tuple[int, ...]) -> None:
    check = crosscheck(name, shape)
    assert check.agrees, check.summary()
    assert len(check.fvcore) > 5  # fvcore really counted modules, not an empty dict
