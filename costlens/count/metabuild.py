"""Build a model on the meta device without initialising weights that have no values.

On meta a tensor has a shape and no values, yet module constructors still run their
initialisers (``kaiming_uniform_``, ``uniform_``, ``zero_``, ``fill_``), each a trip
through torch's meta kernels, and batch norm's ``torch.zeros``/``torch.ones`` go
through Python decompositions: about half of building a ResNet on meta. Inside
``building_on_meta()``, which is ``torch.device("meta")`` in every other respect (the
same default device for every factory), those calls on meta tensors return at once.

Nothing about the model changes: its parameters and buffers have the same shapes,
dtypes, strides and ``requires_grad`` flags, and an initialiser still checks its
arguments (fan mode, nonlinearity, a negative std) and raises as it would, so a
factory that fails on meta still fails. Calls that are not on meta, or not plain
fills, run unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

_NUMBER = (bool, int, float)
_META = torch.device("meta")


def _argument(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _fills_meta(tensor: Any) -> bool:
    return isinstance(tensor, torch.Tensor) and tensor.is_meta and tensor.dtype.is_floating_point


def _uniform(args: tuple, kwargs: dict) -> torch.Tensor | None:
    tensor = _argument(args, kwargs, 0, "tensor", None)
    return tensor if _fills_meta(tensor) else None


def _normal(args: tuple, kwargs: dict) -> torch.Tensor | None:
    tensor, std = _argument(args, kwargs, 0, "tensor", None), _argument(args, kwargs, 2, "std", 1.0)
    # a negative std raises in torch's kernel: let it
    return tensor if _fills_meta(tensor) and type(std) in _NUMBER and std >= 0 else None


def _fill(args: tuple, kwargs: dict) -> torch.Tensor | None:
    tensor = _argument(args, kwargs, 0, "tensor", None)
    value = _argument(args, kwargs, 1, "val", kwargs.get("value"))
    return tensor if _fills_meta(tensor) and type(value) in _NUMBER else None


def _zero(args: tuple, kwargs: dict) -> torch.Tensor | None:
    tensor = _argument(args, kwargs, 0, "tensor", None)
    return tensor if isinstance(tensor, torch.Tensor) and tensor.is_meta else None


_FAN_MODES = frozenset({"fan_in", "fan_out"})


def _kaiming_uniform(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """He initialisation: its gain check runs (it raises on a bad nonlinearity), its fill does not.
    A mode or tensor that torch would refuse (an unknown fan mode, fewer than 2 dimensions)
    runs the real initialiser, which raises; so does a zero-size tensor, on which torch warns."""
    tensor, mode = _argument(args, kwargs, 0, "tensor", None), _argument(args, kwargs, 2, "mode", "fan_in")
    if not _fills_meta(tensor) or tensor.dim() < 2 or 0 in tensor.shape or not isinstance(mode, str) \
            or mode.lower() not in _FAN_MODES:
        return None
    nn.init.calculate_gain(_argument(args, kwargs, 3, "nonlinearity", "leaky_relu"), _argument(args, kwargs, 1, "a", 0))
    return tensor


# What each short-cut call is, and when it may return its tensor at once (None: run it).
_SHORT_CUTS: dict[Any, Callable[[tuple, dict], torch.Tensor | None]] = {
    torch.Tensor.uniform_: _uniform, torch.Tensor.normal_: _normal, torch.Tensor.fill_: _fill,
    torch.Tensor.zero_: _zero, nn.init.uniform_: _uniform, nn.init.normal_: _normal, nn.init.constant_: _fill,
    nn.init.kaiming_uniform_: _kaiming_uniform,
}
# Factories whose values do not exist on meta: an empty tensor has the same shape, dtype and strides.
_VALUE_FACTORIES = {torch.zeros, torch.ones}


def _device_context() -> tuple[type, frozenset] | None:
    """torch's mode behind ``torch.device(...)``, and the factories it gives the default device."""
    try:
        from torch.utils._device import DeviceContext, _device_constructors
    except ImportError:  # another torch: build as torch.device("meta") does
        return None
    return DeviceContext, frozenset(_device_constructors())


_MODE_CLASS: list[type | None] = []  # made once: MetaBuild over torch's DeviceContext, None without one


def _mode_class() -> type | None:
    if not _MODE_CLASS:
        found = _device_context()
        _MODE_CLASS.append(None if found is None else _meta_build_class(*found))
    return _MODE_CLASS[0]


def _meta_build_class(base: type, constructors: frozenset) -> type:
    class MetaBuild(base):  # type: ignore[valid-type, misc]
        """torch.device("meta"), with initialisers of meta tensors returning at once.

        Its ``__torch_function__`` does what ``DeviceContext``'s does (a factory called
        without a device gets meta) in the same call as the short-cuts: a module's build
        makes a dozen such calls per layer, each through here."""

        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            kwargs = kwargs or {}
            short_cut = _SHORT_CUTS.get(func)
            if short_cut is not None:
                tensor = short_cut(args, kwargs)
                if tensor is not None:
                    return tensor
            elif func in constructors:
                device = kwargs.get("device")
                if func in _VALUE_FACTORIES and device in (None, _META, "meta") and not (
                        "out" in kwargs or "names" in kwargs):
                    return torch.empty(*args, **{**kwargs, "device": _META})
                if device is None:
                    kwargs["device"] = _META
            return func(*args, **kwargs)

    return MetaBuild


@contextlib.contextmanager
def building_on_meta() -> Iterator[None]:
    """``with torch.device("meta")`` for building a model, without initialising its weights."""
    kind = _mode_class()
    with (kind(_META) if kind is not None else torch.device("meta")):
        yield
