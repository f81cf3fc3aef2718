"""What a forward pass is fed: shapes, tensors, several inputs, keyword inputs, dtypes.

``inputs`` of ``costlens.profile`` may be:

* a shape: ``(1, 3, 224, 224)`` or ``torch.Size``;
* a tensor (on the meta device it costs no memory);
* ``Input((1, 16), "int64")`` or a pair ``((1, 16), torch.int64)``: a shape with its dtype;
  ``Input((1, 16), "int64", "ones")`` with how it is filled: ``zeros``, ``ones``, ``rand`` or
  ``randint(N)`` (0 to N-1);
* a tuple or list of those: several positional inputs;
* a dict of those: keyword inputs; ``Arguments((...), {...})``: both.

Floating-point inputs take the trace's dtype unless one is given. Unless a fill is given,
floating-point inputs are random, integer inputs zeros (valid token ids) and boolean inputs
ones (nothing masked). On meta, where tensors have no values, the values of an input costlens
makes with a known fill (every one but a random float) ride beside it, so that a model that
reads them (``if mask.all():``) reads them exactly (``count/values.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from costlens.count.values import LIMIT, remember
from costlens.errors import InputShapeError
from costlens.memory import readable_bytes, refuse_unless_fits
from costlens.records import InputInfo
from costlens.units import FILLS, InputText, check_fill, format_shape

FLOAT_DTYPES = ("float32", "float16", "bfloat16")  # the dtypes a model can be traced in
# each of them by name and by dtype (``trace_dtype`` finds these without parsing)
_TRACE_DTYPES: dict[str | torch.dtype, torch.dtype] = {
    key: getattr(torch, name) for name in FLOAT_DTYPES for key in (name, getattr(torch, name))}
# torch sizes tensors in int64 bytes: beyond this no device, meta included, can describe one.
MAX_TENSOR_BYTES = 2**63


@dataclass(frozen=True)
class Input:
    """A shape with its dtype and fill: ``Input((1, 16), "int64", "ones")``; no dtype means the
    trace's, no fill the dtype's usual one (random floats, zero integers, true booleans)."""

    shape: tuple[int, ...]
    dtype: str | torch.dtype | None = None
    fill: str | None = None  # "zeros", "ones", "rand" or "randint(N)"


InputSpec = Sequence[int] | torch.Size | torch.Tensor | Input


@dataclass(frozen=True)
class Arguments:
    """Positional and keyword inputs together: ``model(*positional, **keyword)``."""

    positional: tuple[InputSpec, ...] = ()
    keyword: Mapping[str, InputSpec] = field(default_factory=dict)


Inputs = InputSpec | Sequence[InputSpec] | Mapping[str, InputSpec] | Arguments | None


@dataclass(frozen=True)
class Prepared:
    """Tensors ready for ``model(*args, **kwargs)`` and their description for the profile."""

    args: tuple[torch.Tensor, ...]
    kwargs: dict[str, torch.Tensor]
    infos: list[InputInfo]


def from_texts(texts: Sequence[InputText]) -> Inputs:
    """``--input`` options as written (``units.parse_input``) as ``inputs=``: one plain shape as
    that shape, else each an ``Input``, named ones as keywords."""
    if len(texts) == 1 and texts[0].name is None and texts[0].dtype is None and texts[0].fill is None:
        return texts[0].shape
    positional = tuple(Input(t.shape, t.dtype, t.fill) for t in texts if t.name is None)
    keyword = {t.name: Input(t.shape, t.dtype, t.fill) for t in texts if t.name is not None}
    return Arguments(positional, keyword) if keyword else positional


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
    known = _TRACE_DTYPES.get(value) if isinstance(value, (str, torch.dtype)) else None
    if known is not None:
        return known
    dtype = dtype_of(value, "dtype")
    if dtype_name(dtype) not in FLOAT_DTYPES:
        raise InputShapeError(f"dtype: {dtype_name(dtype)} is not a dtype to trace in; choose {', '.join(FLOAT_DTYPES)}")
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    """torch.float32 -> 'float32'."""
    return str(dtype).removeprefix("torch.")


def is_shape(value: object) -> bool:
    return isinstance(value, (tuple, list, torch.Size)) and len(value) > 0 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value)


def _is_pair(value: object) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 2 and is_shape(value[0])
            and isinstance(value[1], (str, torch.dtype)))


def _as_spec(value: object, argument: str) -> InputSpec:
    """One input: a shape, a tensor or an Input (pairs become Inputs)."""
    if isinstance(value, (torch.Tensor, Input)) or is_shape(value):
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
    if isinstance(inputs, Arguments):
        positional = split(tuple(inputs.positional), argument)[0] if inputs.positional else []
        keyword = split(dict(inputs.keyword), argument)[1] if inputs.keyword else {}
        if not positional and not keyword:
            raise InputShapeError(f"{argument}: Arguments() names no input")
        return positional, keyword
    if isinstance(inputs, Mapping):
        if not inputs:
            raise InputShapeError(f"{argument}: an empty dict names no input")
        bad = [k for k in inputs if not (isinstance(k, str) and k.isidentifier())]
        if bad:
            raise InputShapeError(f"{argument}: keyword input names must be identifiers, got {bad[0]!r}")
        return [], {k: _as_spec(v, f"{argument}[{k!r}]") for k, v in inputs.items()}
    if isinstance(inputs, (torch.Tensor, Input)) or is_shape(inputs) or _is_pair(inputs):
        return [_as_spec(inputs, argument)], {}
    if isinstance(inputs, (tuple, list)) and inputs:
        return [_as_spec(v, f"{argument}[{i}]") for i, v in enumerate(inputs)], {}
    raise InputShapeError(
        f"{argument}: expected a shape like (1, 3, 224, 224), a tensor, Input(shape, dtype), "
        f"or a tuple or dict of those, got {_brief(inputs)}")


def prepare(inputs: Inputs, *, batch: int | None, device: torch.device, dtype: torch.dtype,
            argument: str = "inputs") -> Prepared:
    """Tensors on ``device`` for every input; ``batch`` replaces the first size of every shape given.

    Every shape is checked and, on a real device, the bytes of all inputs together are
    weighed against the memory available there before the first one is allocated.
    """
    if batch is not None and batch < 1:
        raise InputShapeError(f"batch size must be at least 1, got {batch}")
    if device.type == "meta" and type(inputs) is tuple and inputs and all(type(s) is int and s > 0 for s in inputs):
        return _one_shape_on_meta(inputs if batch is None else (batch, *inputs[1:]), dtype, argument)
    positional, keyword = split(inputs, argument)
    planned = _plans(positional, keyword, batch, dtype, argument)
    _refuse_unless_planned_fit(planned, device, argument)
    tensors = [_materialize(p, device) for p in planned]
    args, kwargs = tensors[:len(positional)], dict(zip(keyword, tensors[len(positional):]))
    infos = [InputInfo(None, list(t.shape), dtype_name(t.dtype)) for t in args]
    infos += [InputInfo(k, list(t.shape), dtype_name(t.dtype)) for k, t in kwargs.items()]
    return Prepared(tuple(args), kwargs, infos)


def _one_shape_on_meta(shape: tuple[int, ...], dtype: torch.dtype, argument: str) -> Prepared:
    """The usual input, one shape on meta, as the general path makes it without its parsing (a
    tenth of a one-layer profile)."""
    if math.prod(shape) * dtype.itemsize >= MAX_TENSOR_BYTES:
        _plan(shape, argument, None, dtype)  # the general path's message
    tensor = torch.empty(shape, dtype=dtype, device="meta")
    return Prepared((tensor,), {}, [InputInfo(None, list(shape), dtype_name(dtype))])


def input_bytes(inputs: Inputs, *, batch: int | None, device: torch.device, dtype: torch.dtype,
                argument: str = "inputs") -> tuple[int, int]:
    """Bytes of all the inputs ``prepare`` would give the model, and of those it would allocate
    on ``device`` (tensors already there cost nothing); an ``InputShapeError`` when the
    allocation cannot fit in the memory ``device`` has free."""
    positional, keyword = split(inputs, argument)
    planned = _plans(positional, keyword, batch, dtype, argument)
    _refuse_unless_planned_fit(planned, device, argument)
    return sum(p.nbytes for p in planned), _new_bytes(planned, device)


def _refuse_unless_planned_fit(planned: list[_Planned], device: torch.device, argument: str) -> None:
    if device.type != "meta":
        refuse_unless_fits(_new_bytes(planned, device), device, f"{argument}: cannot allocate {_what(planned)} on {device}")


def _plans(positional: list[InputSpec], keyword: dict[str, InputSpec], batch: int | None, dtype: torch.dtype,
           argument: str) -> list[_Planned]:
    named = [(f"{argument}[{i}]" if len(positional) > 1 else argument, spec) for i, spec in enumerate(positional)]
    named += [(f"{argument}[{k!r}]", spec) for k, spec in keyword.items()]
    return [_plan(spec, where, batch, dtype) for where, spec in named]


def _new_bytes(planned: list[_Planned], device: torch.device) -> int:
    return sum(p.nbytes for p in planned if not (isinstance(p.spec, torch.Tensor) and p.spec.device == device))


@dataclass(frozen=True)
class _Planned:
    """One input before allocation: its final shape and dtype, and what it will cost."""

    argument: str
    spec: InputSpec
    shape: tuple[int, ...]
    dtype: torch.dtype
    fill: str | None = None  # as Input's; None: the dtype's usual one

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _what(planned: list[_Planned]) -> str:
    if len(planned) == 1:
        return f"a {format_shape(planned[0].shape)} {dtype_name(planned[0].dtype)} input"
    return f"{len(planned)} inputs"


def _plan(spec: InputSpec, argument: str, batch: int | None, dtype: torch.dtype) -> _Planned:
    if isinstance(spec, torch.Tensor):
        return _Planned(argument, spec, tuple(spec.shape), spec.dtype)
    shape, want = (spec.shape, spec.dtype) if isinstance(spec, Input) else (spec, None)
    shape = tuple(shape)
    if not is_shape(shape) or any(s < 1 for s in shape):
        raise InputShapeError(f"{argument}: shape {_brief(shape)} must be positive sizes, like (1, 3, 224, 224)")
    if batch is not None:
        shape = (batch,) + shape[1:]
    kind = dtype_of(want, argument) if want is not None else dtype
    fill = spec.fill if isinstance(spec, Input) else None
    if fill is not None:
        if not isinstance(fill, str):
            raise InputShapeError(f"{argument}: fill must be text ({FILLS}), got {_brief(fill)}")
        check_fill(fill.strip().lower(), argument)
        fill = fill.strip().lower()
    planned = _Planned(argument, spec, shape, kind, fill)
    if planned.nbytes >= MAX_TENSOR_BYTES:
        raise InputShapeError(
            f"{argument}: a {_brief_shape(shape)} {dtype_name(kind)} input would take {readable_bytes(planned.nbytes)}, "
            f"beyond what any device can address (2**63 bytes)")
    return planned


def _materialize(planned: _Planned, device: torch.device) -> torch.Tensor:
    spec = planned.spec
    if isinstance(spec, torch.Tensor):
        if spec.device == device:
            return spec
        if device.type == "meta":
            meta = torch.empty_like(spec, device="meta")
            if not spec.is_meta and spec.numel() <= LIMIT:
                remember(meta, spec.detach().cpu())  # a real tensor's values are known
            return meta
        return spec.detach().to(device)
    return _allocate(planned, device)


def _brief_shape(shape: tuple[int, ...]) -> str:
    try:
        text = format_shape(shape)
    except ValueError:  # a size with more digits than str() writes (sys.get_int_max_str_digits)
        return f"{len(shape)}-dimensional"
    return text if len(text) <= 60 else text[:57] + "..."


def _allocate(planned: _Planned, device: torch.device) -> torch.Tensor:
    """A new input as ``planned`` says; on meta, with its values beside it when they are known."""
    shape, dtype = planned.shape, planned.dtype
    fill = planned.fill or ("rand" if dtype.is_floating_point else "ones" if dtype == torch.bool else "zeros")
    try:
        if device.type != "meta":
            return _filled(shape, dtype, fill, device)
        tensor = torch.empty(shape, dtype=dtype, device=device)  # torch.randn's meta path imports sympy (0.5 s)
        if (fill != "rand" or planned.fill is not None) and math.prod(shape) <= LIMIT:
            remember(tensor, _filled(shape, dtype, fill, torch.device("cpu")))
        return tensor
    except (RuntimeError, MemoryError, OverflowError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputShapeError(
            f"{planned.argument}: cannot allocate a {format_shape(shape)} {dtype_name(dtype)} input on {device}: "
            f"{reason} (the meta device needs no memory)") from error


def _filled(shape: tuple[int, ...], dtype: torch.dtype, fill: str, device: torch.device) -> torch.Tensor:
    """A tensor filled as ``fill`` says; random fills from a fixed seed, so two runs see one input."""
    if fill == "zeros":
        return torch.zeros(shape, dtype=dtype, device=device)
    if fill == "ones":
        return torch.ones(shape, dtype=dtype, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    if fill == "rand":
        if not (dtype.is_floating_point or dtype.is_complex):
            return torch.randint(0, 2, shape, dtype=dtype, device=device, generator=generator)
        return torch.randn(shape, dtype=dtype, device=device, generator=generator)
    high = int(fill[len("randint("):-1])
    return torch.randint(0, high, shape, dtype=dtype, device=device, generator=generator)
