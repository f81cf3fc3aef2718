"""Parameters and buffers swapped for stand-ins during one forward, and put back after.

``torch.func.functional_call`` does this by name, and a module registered twice (one
``nn.Linear`` at two places of a ``Sequential``, a layer applied twice) breaks it: it
either refuses ("multiple values for keys ... tied") or, given each tensor once, leaves the
model holding the stand-ins afterwards. Swapping by tensor identity in each module's own
tables, each module once, has neither problem.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


@contextlib.contextmanager
def swapped(model: nn.Module, by_id: dict[int, torch.Tensor]) -> Iterator[None]:
    """Inside the block every parameter or buffer ``t`` of ``model`` with ``id(t)`` in ``by_id``
    is ``by_id[id(t)]``; the originals are back after it, whatever the forward did."""
    saved: list[tuple[dict[str, Any], str, torch.Tensor]] = []
    try:
        # each module once, however often it is registered; nothing to swap: no walk at all
        for module in model.modules() if by_id else ():
            tables: tuple[dict[str, Any], ...] = (module._parameters, module._buffers)
            for table in tables:
                for name, tensor in table.items():
                    if tensor is not None and id(tensor) in by_id:
                        saved.append((table, name, tensor))
                        table[name] = by_id[id(tensor)]
        yield
    finally:
        for table, name, tensor in reversed(saved):
            table[name] = tensor
