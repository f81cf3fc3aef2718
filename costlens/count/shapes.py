"""Output metadata of common aten ops on the meta device, computed from shape rules.

On the meta device an op computes only what its outputs look like: shape, strides and
dtype. torch does that with meta kernels, and for many common ops those are Python:
type-promotion wrappers for element-wise ops, and a decomposition of some twenty
sub-ops for batch norm (about a millisecond a call, and on first use it imports
torch._dynamo, about a second). The rules here give the same metadata directly for
the cases that CNN layers produce.

A rule is written with the op's schema argument names and defaults, so the tracer calls
it as ``rule(*args, **kwargs)`` exactly as the dispatcher passed them. It returns one
``Meta`` per output, or None whenever it is not certain: an input off the meta device,
a dtype it does not model, an unusual layout, or arguments that would make torch's
kernel raise. On None the tracer runs torch's kernel, so errors and rare cases stay
torch's own.

tests/test_shapes.py checks every rule against torch's meta kernel on thousands of
random arguments, strides included: later ops and the tracer's cache key read them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch

aten = torch.ops.aten

Shape = tuple[int, ...]
Meta = tuple[Shape, Shape, torch.dtype]  # shape, strides, dtype of one output
Rule = Callable[..., tuple[Meta, ...] | None]

RULES: dict[Any, Rule] = {}

FLOATS = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})
_UNSIGNED = frozenset({torch.uint8, torch.uint16, torch.uint32, torch.uint64})


def rule(*ops: Any) -> Callable[[Rule], Rule]:
    """Register a shape rule for each aten overload in ``ops``; registering one twice raises."""

    def register(function: Rule) -> Rule:
        for op in ops:
            if op in RULES:
                raise ValueError(f"a shape rule for {op} is already registered")
            RULES[op] = function
        return function

    return register


def rule_of(op: Any) -> Rule | None:
    """The shape rule of an aten overload, or None when torch's kernel must run."""
    return RULES.get(op)


# --- strides and layouts, as torch computes them -------------------------------


@functools.lru_cache(maxsize=4096)
def contiguous_strides(shape: Shape) -> Shape:
    """Row-major strides; a size-0 dimension steps like a size-1 one, as in torch."""
    strides = [1] * len(shape)
    step = 1
    for i in range(len(shape) - 1, -1, -1):
        strides[i] = step
        step *= max(shape[i], 1)
    return tuple(strides)


def is_plain(t: torch.Tensor) -> bool:
    """On meta, with exactly the row-major strides of its shape.

    ``is_contiguous()`` is not enough: it ignores the strides of size-1 dimensions,
    which element-wise kernels copy into their outputs.
    """
    return t.is_meta and t.stride() == contiguous_strides(tuple(t.shape))


def channels_last_like(shape: Sequence[int], strides: Sequence[int]) -> bool:
    """torch's test for NHWC / NDHWC-ordered strides (``suggest_memory_format``)."""
    if len(shape) == 4:
        order: tuple[int, ...] = (1, 3, 2, 0)
    elif len(shape) == 5:
        order = (1, 4, 3, 2, 0)
    else:
        return False
    if strides[1] == 0:
        return False
    least = 0
    for d in order:
        if shape[d] == 0 or strides[d] < least:
            return False
        if d == 0 and least == strides[1]:
            return False
        least = strides[d] * shape[d]
    return True


def _plain(shape: Sequence[int], dtype: torch.dtype) -> Meta:
    shape = tuple(shape)
    return shape, contiguous_strides(shape), dtype


def _is_number(value: object) -> bool:
    return type(value) in (int, float)


def _meta_tensor(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.is_meta


def _broadcast(a: Sequence[int], b: Sequence[int]) -> Shape | None:
    """The broadcast of two shapes, or None when they do not broadcast."""
    if len(a) < len(b):
        a, b = b, a
    out = list(a)
    offset = len(a) - len(b)
    for i, size in enumerate(b):
        mine = out[offset + i]
        if mine == size or size == 1:
            continue
        if mine != 1:
            return None
        out[offset + i] = size
    return tuple(out)


def _pair(value: int | Sequence[int]) -> tuple[int, int] | None:
    """An int[2] argument as torch's pooling kernels unpack it; None for other lengths."""
    if isinstance(value, int):
        return value, value
    items = list(value)
    if len(items) == 1:
        return items[0], items[0]
    if len(items) == 2:
        return items[0], items[1]
    return None


def _computation_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half-precision floats are computed in float32 (torch's ``get_computation_dtype``)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


# --- convolution and matrix products -------------------------------------------


def _spread(value: int | Sequence[int], dims: int) -> list[int] | None:
    """A per-dimension argument: an int or one value for every dim, or one per dim."""
    if isinstance(value, int):
        return [value] * dims
    items = list(value)
    if len(items) == 1:
        return items * dims
    return items if len(items) == dims else None


@rule(aten.convolution.default)
def convolution(input: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
                transposed: bool, output_padding: Any, groups: int) -> tuple[Meta, ...] | None:
    """torch's meta kernel: a contiguous output in the input's dtype, whatever the input's layout."""
    if not (_meta_tensor(input) and _meta_tensor(weight) and (bias is None or _meta_tensor(bias))):
        return None
    if input.dim() < 3 or weight.dim() != input.dim() or type(groups) is not int or groups < 1:
        return None
    dims = input.dim() - 2
    strides, pads, dilations = _spread(stride, dims), _spread(padding, dims), _spread(dilation, dims)
    if strides is None or pads is None or dilations is None or 0 in strides:
        return None
    kernel, sizes = weight.shape[2:], input.shape[2:]
    if transposed:
        channels = groups * weight.shape[1]
    else:
        channels = weight.shape[0]
        if weight.shape[1] * groups != input.shape[1]:
            return None
        if any(sizes[i] + 2 * pads[i] < dilations[i] * (kernel[i] - 1) + 1 for i in range(dims)):
            return None
    extra = _spread(output_padding, dims) if (transposed and output_padding) else None
    if transposed and output_padding and extra is None:
        return None
    if extra is not None:
        spatial = [(sizes[i] - 1) * strides[i] - 2 * pads[i] + dilations[i] * (kernel[i] - 1) + extra[i] + 1
                   for i in range(dims)]
    else:
        spatial = [(sizes[i] + 2 * pads[i] - dilations[i] * (kernel[i] - 1) - 1) // strides[i] + 1
                   for i in range(dims)]
    if any(size <= 0 for size in spatial):
        return None  # torch checks these its own way; let it
    if input.shape[1] == 0:
        channels = 0
    return (_plain([input.shape[0], channels, *spatial], input.dtype),)


def _same_float(*tensors: Any) -> torch.dtype | None:
    """The dtype shared by meta float tensors, or None."""
    dtype = tensors[0].dtype if isinstance(tensors[0], torch.Tensor) else None
    if dtype not in FLOATS:
        return None
    for t in tensors:
        if not _meta_tensor(t) or t.dtype != dtype:
            return None
    return dtype


@rule(aten.mm.default)
def mm(self: Any, mat2: Any) -> tuple[Meta, ...] | None:
    dtype = _same_float(self, mat2)
    if dtype is None or self.dim() != 2 or mat2.dim() != 2 or self.shape[1] != mat2.shape[0]:
        return None
    return (_plain((self.shape[0], mat2.shape[1]), dtype),)


@rule(aten.addmm.default)
def addmm(self: Any, mat1: Any, mat2: Any, *, beta: Any = 1, alpha: Any = 1) -> tuple[Meta, ...] | None:
    """bias + mat1 @ mat2: the product's contiguous (m, n), which the bias must broadcast to."""
    dtype = _same_float(self, mat1, mat2)
    if dtype is None or not (_is_number(beta) and _is_number(alpha)):
        return None
    if mat1.dim() != 2 or mat2.dim() != 2 or mat1.shape[1] != mat2.shape[0]:
        return None
    shape = (mat1.shape[0], mat2.shape[1])
    if _broadcast(shape, tuple(self.shape)) != shape:
        return None
    return (_plain(shape, dtype),)


@rule(aten.bmm.default)
def bmm(self: Any, mat2: Any) -> tuple[Meta, ...] | None:
    dtype = _same_float(self, mat2)
    if dtype is None or self.dim() != 3 or mat2.dim() != 3:
        return None
    if self.shape[0] != mat2.shape[0] or self.shape[2] != mat2.shape[1]:
        return None
    return (_plain((self.shape[0], self.shape[1], mat2.shape[2]), dtype),)


# --- batch norm -------------------------------------------------------------------


def _vector_or_none(t: Any, size: int) -> bool:
    return t is None or (_meta_tensor(t) and t.dtype in FLOATS and tuple(t.shape) == (size,))


@rule(aten.native_batch_norm.default)
def native_batch_norm(input: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any,
                      training: bool, momentum: Any, eps: Any) -> tuple[Meta, ...] | None:
    """The normalized output like the input; the saved mean and inverse std as (C,) vectors
    in the computation dtype (float32 for half precision), as torch's decomposition on meta."""
    if not (is_plain(input) and input.dtype in FLOATS and input.dim() >= 2 and input.numel() > 0):
        return None
    channels = input.shape[1]
    stats = (weight, bias, running_mean, running_var)
    if not all(_vector_or_none(t, channels) for t in stats) or not (_is_number(momentum) and _is_number(eps)):
        return None
    if not training and (running_mean is None or running_var is None):
        return None
    if training and running_var is not None and input.numel() == channels:
        return None  # one value per channel: torch's unbiased variance divides by zero
    saved = _plain((channels,), _computation_dtype(input.dtype))
    return _plain(input.shape, input.dtype), saved, saved


# --- element-wise ops ---------------------------------------------------------------


def _unary(self: Any, *numbers: Any) -> tuple[Meta, ...] | None:
    """A float map of one plain tensor (numeric options only): same shape, strides and dtype."""
    if not (isinstance(self, torch.Tensor) and self.dtype in FLOATS and is_plain(self)):
        return None
    if not all(_is_number(n) for n in numbers):
        return None
    return (_plain(self.shape, self.dtype),)


@rule(aten.relu.default, aten.tanh.default, aten.sigmoid.default, aten.silu.default, aten.exp.default,
      aten.log.default, aten.sqrt.default, aten.rsqrt.default, aten.neg.default, aten.abs.default,
      aten.hardswish.default, aten.hardsigmoid.default, aten.erf.default, aten.mish.default)
def unary(self: Any) -> tuple[Meta, ...] | None:
    return _unary(self)


@rule(aten.gelu.default)
def gelu(self: Any, *, approximate: str = "none") -> tuple[Meta, ...] | None:
    return _unary(self) if approximate in ("none", "tanh") else None


@rule(aten.pow.Tensor_Scalar)
def pow_scalar(self: Any, exponent: Any) -> tuple[Meta, ...] | None:
    return _unary(self, exponent)


@rule(aten.leaky_relu.default)
def leaky_relu(self: Any, negative_slope: Any = 0.01) -> tuple[Meta, ...] | None:
    return _unary(self, negative_slope)


@rule(aten.elu.default)
def elu(self: Any, alpha: Any = 1, scale: Any = 1, input_scale: Any = 1) -> tuple[Meta, ...] | None:
    return _unary(self, alpha, scale, input_scale)


@rule(aten.hardtanh.default)
def hardtanh(self: Any, min_val: Any = -1, max_val: Any = 1) -> tuple[Meta, ...] | None:
    return _unary(self, min_val, max_val)


@rule(aten.clamp.default)
def clamp(self: Any, min: Any = None, max: Any = None) -> tuple[Meta, ...] | None:
    if min is None and max is None:
        return None  # torch requires one of them
    return _unary(self, *(bound for bound in (min, max) if bound is not None))


@rule(aten.clamp_min.default)
def clamp_min(self: Any, min: Any) -> tuple[Meta, ...] | None:
    return _unary(self, min)


@rule(aten.clamp_max.default)
def clamp_max(self: Any, max: Any) -> tuple[Meta, ...] | None:
    return _unary(self, max)


def _binary(self: Any, other: Any, *numbers: Any) -> tuple[Meta, ...] | None:
    """Float tensors of one dtype (or a Python number), plain layouts: a plain broadcast output."""
    if not (isinstance(self, torch.Tensor) and self.dtype in FLOATS and is_plain(self)):
        return None
    if not all(_is_number(n) for n in numbers):
        return None
    if _is_number(other):
        return (_plain(self.shape, self.dtype),)
    if not (isinstance(other, torch.Tensor) and other.dtype == self.dtype and is_plain(other)):
        return None
    shape = _broadcast(tuple(self.shape), tuple(other.shape))
    return None if shape is None else (_plain(shape, self.dtype),)


@rule(aten.add.Tensor, aten.sub.Tensor)
def add(self: Any, other: Any, *, alpha: Any = 1) -> tuple[Meta, ...] | None:
    return _binary(self, other, alpha)


@rule(aten.rsub.Scalar)
def rsub(self: Any, other: Any, alpha: Any = 1) -> tuple[Meta, ...] | None:
    """other - alpha * self, with a Python number ``other``."""
    return _unary(self, other, alpha)


@rule(aten.mul.Tensor, aten.div.Tensor)
def mul(self: Any, other: Any) -> tuple[Meta, ...] | None:
    return _binary(self, other)


# --- reductions ----------------------------------------------------------------------


def _reduced(self: Any, dim: Any, keepdim: bool, dtype: Any) -> tuple[Meta, ...] | None:
    """A float reduction of a plain tensor over ``dim`` (None or [] for every dim)."""
    if not (isinstance(self, torch.Tensor) and self.dtype in FLOATS and is_plain(self)):
        return None
    if dtype is not None or self.dim() == 0 or type(keepdim) is not bool:
        return None
    rank = self.dim()
    dims = list(range(rank)) if not dim else [d + rank if type(d) is int and d < 0 else d for d in dim]
    if any(type(d) is not int or not 0 <= d < rank for d in dims) or len(set(dims)) != len(dims):
        return None
    if keepdim:
        shape = [1 if i in dims else size for i, size in enumerate(self.shape)]
    else:
        shape = [size for i, size in enumerate(self.shape) if i not in dims]
    return (_plain(shape, self.dtype),)


@rule(aten.mean.dim, aten.sum.dim_IntList)
def mean(self: Any, dim: Any, keepdim: bool = False, *, dtype: Any = None) -> tuple[Meta, ...] | None:
    return _reduced(self, dim, keepdim, dtype)


@rule(aten.mean.default, aten.sum.default)
def mean_all(self: Any, *, dtype: Any = None) -> tuple[Meta, ...] | None:
    """A reduction over every element: a 0-dim tensor."""
    if not (isinstance(self, torch.Tensor) and self.dtype in FLOATS and self.is_meta) or dtype is not None:
        return None
    return (_plain((), self.dtype),)


# --- pooling ----------------------------------------------------------------------------


def _pooled_size(size: int, kernel: int, pad: int, stride: int, dilation: int, ceil_mode: bool) -> int:
    """torch's ``pooling_output_shape``: with ceil_mode, the last window must start inside the input."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _pool2d(input: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
            ceil_mode: Any) -> list[int] | None:
    """The output shape of 2-D max/avg pooling over a contiguous-format input, or None."""
    if not (_meta_tensor(input) and input.dim() in (3, 4) and type(ceil_mode) is bool):
        return None
    if channels_last_like(input.shape, input.stride()):
        return None
    kernel = _pair(kernel_size)
    steps = kernel if (type(stride) is not int and len(stride) == 0) else _pair(stride)
    pads, dilations = _pair(padding), _pair(dilation)
    if kernel is None or steps is None or pads is None or dilations is None:
        return None
    if min(*kernel, *steps, *dilations) <= 0 or min(pads) < 0 or 0 in input.shape[-3:]:
        return None
    if any(pads[i] > kernel[i] // 2 or pads[i] > ((kernel[i] - 1) * dilations[i] + 1) // 2 for i in (0, 1)):
        return None
    height, width = (_pooled_size(input.shape[-2 + i], kernel[i], pads[i], steps[i], dilations[i], ceil_mode)
                     for i in (0, 1))
    if height < 1 or width < 1:
        return None
    return [*input.shape[:-2], height, width]


@rule(aten.max_pool2d_with_indices.default)
def max_pool2d_with_indices(self: Any, kernel_size: Any, stride: Any = (), padding: Any = 0, dilation: Any = 1,
                            ceil_mode: bool = False) -> tuple[Meta, ...] | None:
    """Pooled values in the input's dtype and their int64 indices, both contiguous."""
    shape = _pool2d(self, kernel_size, stride, padding, dilation, ceil_mode)
    if shape is None:
        return None
    return _plain(shape, self.dtype), _plain(shape, torch.int64)


@rule(aten.avg_pool2d.default)
def avg_pool2d(self: Any, kernel_size: Any, stride: Any = (), padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: Any = None) -> tuple[Meta, ...] | None:
    if not _meta_tensor(self) or self.dtype in _UNSIGNED or divisor_override == 0:
        return None
    shape = _pool2d(self, kernel_size, stride, padding, 1, ceil_mode)
    return None if shape is None else (_plain(shape, self.dtype),)


def _triple(value: Any) -> tuple[int, int, int] | None:
    """An int[3] argument of 3-D pooling: one value or three."""
    items = [value] if isinstance(value, int) else list(value)
    if len(items) == 1:
        return items[0], items[0], items[0]
    return (items[0], items[1], items[2]) if len(items) == 3 else None


@rule(aten.avg_pool3d.default)
def avg_pool3d(self: Any, kernel_size: Any, stride: Any = (), padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: Any = None) -> tuple[Meta, ...] | None:
    """A contiguous output whatever the input's layout (local response norm pools this way)."""
    if not (_meta_tensor(self) and self.dim() in (4, 5) and type(ceil_mode) is bool):
        return None
    if self.dtype in _UNSIGNED or divisor_override == 0:
        return None
    kernel = _triple(kernel_size)
    steps = kernel if (not isinstance(stride, int) and len(stride) == 0) else _triple(stride)
    pads = _triple(padding)
    if kernel is None or steps is None or pads is None or min(*kernel, *steps) <= 0 or min(pads) < 0:
        return None
    sizes = self.shape[-3:]
    if any(size <= 0 for size in self.shape[-4:]) or any(sizes[i] < kernel[i] or pads[i] > kernel[i] // 2 for i in range(3)):
        return None
    pooled = [_pooled_size(sizes[i], kernel[i], pads[i], steps[i], 1, ceil_mode) for i in range(3)]
    if min(pooled) < 1:
        return None
    return (_plain([*self.shape[:-3], *pooled], self.dtype),)


@rule(aten._adaptive_avg_pool2d.default)
def adaptive_avg_pool2d(self: Any, output_size: Any) -> tuple[Meta, ...] | None:
    """The input's leading sizes and ``output_size``, contiguous for a contiguous-format input."""
    if not (_meta_tensor(self) and self.dim() in (3, 4)) or channels_last_like(self.shape, self.stride()):
        return None
    size = list(output_size)
    if len(size) != 2 or not all(isinstance(s, int) and s >= 0 for s in size):
        return None
    return (_plain([*self.shape[:-2], *size], self.dtype),)


# --- joining and creating ----------------------------------------------------------------


@rule(aten.cat.default)
def cat(tensors: Any, dim: int = 0) -> tuple[Meta, ...] | None:
    """Tensors of one dtype and rank, none laid out channels-last: a contiguous join along ``dim``."""
    if not tensors or type(dim) is not int:
        return None
    first = tensors[0]
    if not _meta_tensor(first) or first.dim() == 0:
        return None
    rank, dtype = first.dim(), first.dtype
    axis = dim + rank if dim < 0 else dim
    if not 0 <= axis < rank:
        return None
    shape = list(first.shape)
    shape[axis] = 0
    for t in tensors:
        if not _meta_tensor(t) or t.dtype != dtype or t.dim() != rank or channels_last_like(t.shape, t.stride()):
            return None
        if any(t.shape[i] != shape[i] for i in range(rank) if i != axis):
            return None
        shape[axis] += t.shape[axis]
    return (_plain(shape, dtype),)


@rule(aten.empty.memory_format)
def empty(size: Any, *, dtype: Any = None, layout: Any = None, device: Any = None, pin_memory: Any = None,
          memory_format: Any = None) -> tuple[Meta, ...] | None:
    """A new contiguous tensor on meta (the tracer moves factories inside forward there)."""
    if device is None or torch.device(device).type != "meta" or pin_memory:
        return None
    if layout not in (None, torch.strided) or memory_format not in (None, torch.contiguous_format):
        return None
    if not all(type(s) is int and s >= 0 for s in size):
        return None
    return (_plain(size, torch.get_default_dtype() if dtype is None else dtype),)


@rule(aten.empty_like.default)
def empty_like(self: Any, *, dtype: Any = None, layout: Any = None, device: Any = None, pin_memory: Any = None,
               memory_format: Any = None) -> tuple[Meta, ...] | None:
    """A new tensor shaped like a plain one, on meta (dropout's mask in training)."""
    if not is_plain(self) or device is None or torch.device(device).type != "meta" or pin_memory:
        return None
    if layout not in (None, torch.strided) or memory_format not in (None, torch.preserve_format, torch.contiguous_format):
        return None
    return (_plain(self.shape, self.dtype if dtype is None else dtype),)
