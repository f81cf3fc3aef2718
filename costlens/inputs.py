"""What a forward pass is fed: shapes, tensors, several inputs, keyword inputs, dtypes.

``inputs`` of ``costlens.profile`` may be:

* a shape: ``(1, 3, 224, 224)`` or ``torch.Size``;
* a tensor (on the meta device it costs no memory);
* ``Input((1, 16), "int64")`` or a pair ``((1, 16), torch.int64)``: a shape with its dtype;
* a tuple or list of those: several positional inputs;
* a dict of those: keyword inputs.

Floating-point inputs take the trace's dtype unless one is given; integer inputs are
zeros (valid token ids) and boolean inputs ones (nothing masked) on real devices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from costlens.errors import InputShapeError
from costlens.records import InputInfo
from costlens.units import format_shape

FLOAT_DTYPES = ("float32", "float16", "bfloat16")  # the dtypes a model can be traced in


@dataclass(frozen=True)
class Input:
    """A shape with its dtype: ``Input((1, 16), "int64")``; no dtype means the trace's."""

    shape: tuple[int, ...]
    dtype: str | torch.dtype | None = None


InputSpec = Sequence[int] | torch.Size | torch.Tensor | Input
Inputs = InputSpec | Sequence[InputSpec] | Mapping[str, InputSpec] | None


@dataclass(frozen=True)
class Prepared:
    """Tensors ready for ``model(*args, **kwargs)`` and their description for the profile."""

    args: tuple[torch.Tensor, ...]
    kwargs: dict[str, torch.Tensor]
    infos: list[InputInfo]


def dtype_of(value: str | torch.dtype, argument: str) -> torch.dtype:
    """``"int64"``, ``"float16"`` or ``torch.bfloat16`` as a torch dtype; anything else is an error."""
    if isinstance(value, torch.dtype):
        return value
    found = getattr(torch, str(value), None) if isinstance(value, str) and value.isidentifier() else None
    if not isinstance(found, torch.dtype):
        raise InputShapeError(f"{argument}: unknown dtype {value!r} (e.g. float32, float16, bfloat16, int64, bool)")
    return found


def trace_dtype(value: str | torch.dtype) -> torch.dtype:
    """The dtype weights and float inputs are traced in: float32, float16 or bfloat16."""
    dtype = dtype_of(value, "dtype")
    if dtype_name(dtype) not in FLOAT_DTYPES:
        raise InputShapeError(f"dtype: {dtype_name(dtype)} is not a dtype to trace in; choose {', '.join(FLOAT_DTYPES)}")
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    """torch.float32 -> 'float32'."""
    return str(dtype).removeprefix("torch.")


def _is_shape(value: object) -> bool:
    return isinstance(value, (tuple, list, torch.Size)) and len(value) > 0 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value)


def _is_pair(value: object) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 2 and _is_shape(value[0])
            and isinstance(value[1], (str, torch.dtype)))


def _as_spec(value: object, argument: str) -> InputSpec:
    """One input: a shape, a tensor or an Input (pairs become Inputs)."""
    if isinstance(value, (torch.Tensor, Input)) or _is_shape(value):
        return value  # type: ignore[return-value]
    if _is_pair(value):
        pair: Any = value
        return Input(tuple(pair[0]), pair[1])
    raise InputShapeError(
        f"{argument}: expected a shape like (1, 3, 224, 224), a tensor or Input(shape, dtype), got {_brief(value)}")


def _brief(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def split(inputs: Inputs, argument: str) -> tuple[list[InputSpec], dict[str, InputSpec]]:
    """Positional and keyword input specs from what the user passed."""
    if isinstance(inputs, Mapping):
        if not inputs:
            raise InputShapeError(f"{argument}: an empty dict names no input")
        bad = [k for k in inputs if not (isinstance(k, str) and k.isidentifier())]
        if bad:
            raise InputShapeError(f"{argument}: keyword input names must be identifiers, got {bad[0]!r}")
        return [], {k: _as_spec(v, f"{argument}[{k!r}]") for k, v in inputs.items()}
    if isinstance(inputs, (torch.Tensor, Input)) or _is_shape(inputs) or _is_pair(inputs):
        return [_as_spec(inputs, argument)], {}
    if isinstance(inputs, (tuple, list)) and inputs:
        return [_as_spec(v, f"{argument}[{i}]") for i, v in enumerate(inputs)], {}
    raise InputShapeError(
        f"{argument}: expected a shape like (1, 3, 224, 224), a tensor, Input(shape, dtype), "
        f"or a tuple or dict of those, got {_brief(inputs)}")


def prepare(inputs: Inputs, *, batch: int | None, device: torch.device, dtype: torch.dtype,
            argument: str = "inputs") -> Prepared:
    """Tensors on ``device`` for every input; ``batch`` replaces the first size of every shape given."""
    if batch is not None and batch < 1:
        raise InputShapeError(f"batch size must be at least 1, got {batch}")
    positional, keyword = split(inputs, argument)
    args = [_tensor(spec, f"{argument}[{i}]" if len(positional) > 1 else argument, batch, device, dtype)
            for i, spec in enumerate(positional)]
    kwargs = {k: _tensor(spec, f"{argument}[{k!r}]", batch, device, dtype) for k, spec in keyword.items()}
    infos = [InputInfo(None, list(t.shape), dtype_name(t.dtype)) for t in args]
    infos += [InputInfo(k, list(t.shape), dtype_name(t.dtype)) for k, t in kwargs.items()]
    return Prepared(tuple(args), kwargs, infos)


def _tensor(spec: InputSpec, argument: str, batch: int | None, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(spec, torch.Tensor):
        if spec.device == device:
            return spec
        if device.type == "meta":
            return torch.empty_like(spec, device="meta")
        return spec.detach().to(device)
    shape, want = (spec.shape, spec.dtype) if isinstance(spec, Input) else (spec, None)
    shape = tuple(shape)
    if not _is_shape(shape) or any(s < 1 for s in shape):
        raise InputShapeError(f"{argument}: shape {_brief(shape)} must be positive sizes, like (1, 3, 224, 224)")
    if batch is not None:
        shape = (batch,) + shape[1:]
    kind = dtype_of(want, argument) if want is not None else dtype
    return _allocate(shape, kind, device, argument)


def _allocate(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, argument: str) -> torch.Tensor:
    try:
        if device.type == "meta":  # values do not matter; torch.randn's meta path imports sympy (0.5 s)
            return torch.empty(shape, dtype=dtype, device=device)
        if dtype.is_floating_point:
            return torch.randn(shape, dtype=dtype, device=device)
        if dtype == torch.bool:
            return torch.ones(shape, dtype=dtype, device=device)
        return torch.zeros(shape, dtype=dtype, device=device)
    except (RuntimeError, MemoryError, OverflowError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputShapeError(
            f"{argument}: cannot allocate a {format_shape(shape)} {dtype_name(dtype)} input on {device}: "
            f"{reason} (the meta device needs no memory)") from error
