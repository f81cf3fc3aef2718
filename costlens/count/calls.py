"""Which module call is running: the one module-attribution mechanism of costlens.

Two global module hooks (torch's public ``register_module_forward_pre_hook`` and
``register_module_forward_hook``, as torch's own ``ModuleTracker`` uses), registered for the
block only, keep a stack of the calls in progress; calls of modules outside the model (another
model, a module made inside a forward) are not the model's and are left out. Registering two
hooks costs the same for any model, where a pair per module cost 5 µs a module (1.5 ms on
resnet50). A module's own forward pre-hooks run inside its call; its own forward hooks run
after the call closed, so what they compute counts in the calls around it.

Each call is known by its module's dotted path (``named_modules``: root ``""``; a module
registered twice under its first name) and its call index (the how-manieth call of that
path), so a shared module called twice gives two calls and no double count.

The forward trace (``count/tracer.py``) counts each op into the innermost call; the
training step (``count/training.py``) attributes autograd nodes and saved tensors to it.
Both subclass ``ModuleCalls`` and add what they record per call in ``opened``/``closed``.
Hooks are removed when the block ends, whatever the forward did; the stack then still
holds the call that was running when a forward raised, for the error message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook


class Call(NamedTuple):
    """One module call: where it is (path, call index), how deep, and the call it runs inside."""

    path: str
    call_index: int  # 0 for a path's first call, 1 for its second ...
    depth: int  # calls around it (the root's call is 0)
    parent: int | None  # position of the enclosing call in ``ModuleCalls.calls``


class ModuleCalls:
    """The module calls of one forward, in the order they began, and the stack of those running."""

    def __init__(self, modules: Sequence[tuple[str, nn.Module]]) -> None:
        self.modules = modules
        self.paths = {id(module): path for path, module in reversed(modules)}  # the first name wins
        self.calls: list[Call] = []
        self.stack: list[int] = []  # positions in ``calls``
        self._counts: dict[str, int] = {}

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Report every call of the model's modules to ``enter``/``leave`` inside the block."""
        handles = [register_module_forward_pre_hook(self.enter),
                   register_module_forward_hook(self.leave, with_kwargs=True)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def enter(self, module: nn.Module, args: tuple) -> None:
        path = self.paths.get(id(module))
        if path is None:
            return  # not one of the model's modules
        index = self._counts.get(path, 0)
        self._counts[path] = index + 1
        position = len(self.calls)
        self.calls.append(Call(path, index, len(self.stack), self.stack[-1] if self.stack else None))
        self.stack.append(position)
        self.opened(position, module, args)

    def leave(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if id(module) not in self.paths:
            return
        position = self.stack.pop()
        self.closed(position, module, args, kwargs, output)

    def innermost(self) -> int | None:
        """The position of the call running now, None outside every call."""
        return self.stack[-1] if self.stack else None

    def opened(self, position: int, module: nn.Module, args: tuple) -> None:
        """A call began (``calls[position]``) with positional ``args``; subclasses record what they need."""

    def closed(self, position: int, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        """A call of ``module(*args, **kwargs)`` returned ``output``; subclasses record what they need."""
