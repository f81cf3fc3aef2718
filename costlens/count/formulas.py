"""The cost of each aten operator, as pure functions of shapes and arguments.

Counting convention (the one place it is stated; reports quote ``CONVENTION``):

* ``macs`` are the multiply-accumulates of convolution, linear and matrix-multiply
  ops only. A bias add is not a MAC. This is what the papers and torchvision's
  documented "GFLOPS" count, so totals are comparable with theirs.
* ``flops`` are 2 x macs, plus the per-element cost written next to every other
  rule below (bias add, normalization, activation, pooling comparisons and
  additions, residual add, softmax ...).
* Shape-only and data-movement ops (view, cat, pad, index_select ...) have no
  flops; the tracer still counts the bytes they copy.
* An op with no rule here is never a silent zero: the tracer lists it as uncounted.

Every handler has the same signature, documented once::

    handler(args: tuple, kwargs: dict, out: Any) -> OpCost

``args``/``kwargs`` are the op's arguments exactly as the dispatcher passed them
(tensors may live on the meta device: handlers read shapes, never values) and
``out`` is the op's result. Register a handler with ``@formula(aten.op, ...)``;
registering an op twice raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch._ops import OpOverloadPacket

aten = torch.ops.aten

CONVENTION = (
    "MACs count multiply-accumulates of convolution, linear and matmul ops only "
    "(no bias); FLOPs = 2 x MACs + one per element for every other arithmetic op "
    "(bias, normalization, activation, pooling, residual add, softmax)."
)


@dataclass(frozen=True)
class OpCost:
    """What one op costs in arithmetic; ``formula`` shows conv/linear/matmul products."""

    macs: int = 0
    flops: int = 0
    formula: str | None = None


FREE = OpCost()
Handler = Callable[[tuple, dict, Any], OpCost]
FORMULAS: dict[OpOverloadPacket, Handler] = {}


def formula(*ops: OpOverloadPacket) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the cost rule of each op in ``ops``."""

    def register(handler: Handler) -> Handler:
        for op in ops:
            if op in FORMULAS:
                raise ValueError(f"a formula for {op} is already registered")
            FORMULAS[op] = handler
        return handler

    return register


def rule_for(op: OpOverloadPacket) -> Handler | None:
    """Return the registered rule of ``op``, or None when it has none."""
    return FORMULAS.get(op)


def _numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def _first_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    return next(v for v in value if isinstance(v, torch.Tensor))


def _dots(factors: Sequence[int]) -> str:
    return "·".join(str(f) for f in factors)


def _product(left: Sequence[int], right: Sequence[int], macs: int) -> str:
    return f"{_dots(left)} × {_dots(right)} = {macs:,}"


# --- convolution and matrix products: the MACs -------------------------------


@formula(aten.convolution, aten._convolution)
def convolution(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """Conv: each output element is a dot product of k_h·k_w·(C_in/groups) terms.

    Transposed conv: each *input* element is scattered through k_h·k_w·(C_out/groups)
    weights. Bias: one add per output element.
    """
    x, weight, bias = args[0], args[1], args[2]
    transposed = bool(args[6]) if len(args) > 6 else bool(kwargs.get("transposed"))
    kernel = list(weight.shape[2:])
    batch = [x.shape[0]] if x.shape[0] != 1 else []
    if transposed:
        spatial, channels = list(x.shape[2:]), x.shape[1]
    else:
        spatial, channels = list(out.shape[2:]), out.shape[1]
    left = batch + spatial + [channels]
    right = kernel + [weight.shape[1]]
    macs = _numel(left) * _numel(right)
    bias_flops = out.numel() if bias is not None else 0
    return OpCost(macs, 2 * macs + bias_flops, _product(left, right, macs))


def _matrix_product(batch: int, m: int, k: int, n: int, bias_flops: int) -> OpCost:
    """batch·m·n dot products of k terms; size-1 factors are left out of the formula."""
    left = [f for f in (batch, m) if f != 1] + [n]
    macs = batch * m * n * k
    return OpCost(macs, 2 * macs + bias_flops, _product(left, [k], macs))


@formula(aten.mm)
def mm(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """(m×k)·(k×n): m·n dot products of k terms."""
    a, b = args[0], args[1]
    return _matrix_product(1, a.shape[0], a.shape[1], b.shape[1], 0)


@formula(aten.addmm)
def addmm(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """bias + (m×k)·(k×n): the product's MACs plus one add per output element."""
    a, b = args[1], args[2]
    return _matrix_product(1, a.shape[0], a.shape[1], b.shape[1], out.numel())


@formula(aten.bmm)
def bmm(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """Batched (b×m×k)·(b×k×n)."""
    a, b = args[0], args[1]
    return _matrix_product(a.shape[0], a.shape[1], a.shape[2], b.shape[2], 0)


@formula(aten.baddbmm)
def baddbmm(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """bias + batched product: plus one add per output element."""
    a, b = args[1], args[2]
    return _matrix_product(a.shape[0], a.shape[1], a.shape[2], b.shape[2], out.numel())


@formula(aten.mv)
def mv(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """(m×k)·(k): m dot products of k terms (``x @ v`` with a vector v)."""
    a = args[0]
    macs = a.shape[0] * a.shape[1]
    return OpCost(macs, 2 * macs, _product([a.shape[0]], [a.shape[1]], macs))


@formula(aten.addmv)
def addmv(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """bias + (m×k)·(k): the product's MACs plus one add per output element."""
    a = args[1]
    macs = a.shape[0] * a.shape[1]
    return OpCost(macs, 2 * macs + out.numel(), _product([a.shape[0]], [a.shape[1]], macs))


@formula(aten.dot, aten.vdot)
def dot(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """(k)·(k): one dot product of k terms."""
    macs = args[0].shape[0]
    return OpCost(macs, 2 * macs, _product([1], [macs], macs))


# --- families of per-element rules -------------------------------------------


def per_output_element(flops_each: int) -> Handler:
    """Rule factory: ``flops_each`` flops for every element of the (first) output."""

    def handler(args: tuple, kwargs: dict, out: Any) -> OpCost:
        return OpCost(0, flops_each * _first_tensor(out).numel())

    return handler


def per_input_element(flops_each: int) -> Handler:
    """Rule factory: ``flops_each`` flops for every element of the first input."""

    def handler(args: tuple, kwargs: dict, out: Any) -> OpCost:
        return OpCost(0, flops_each * _first_tensor(args).numel())

    return handler


def _free(args: tuple, kwargs: dict, out: Any) -> OpCost:
    return FREE


def _register_family(handler: Handler, names: Sequence[str]) -> None:
    """Register ``handler`` for every aten op in ``names`` that this torch has."""
    ops = [getattr(aten, name) for name in names if hasattr(aten, name)]
    formula(*ops)(handler)


# Activations and other unary maps: one flop per output element.
_register_family(per_output_element(1), [
    "relu", "relu_", "relu6", "threshold", "threshold_", "tanh", "tanh_", "sigmoid",
    "sigmoid_", "gelu", "gelu_", "silu", "silu_", "hardtanh", "hardtanh_", "leaky_relu",
    "leaky_relu_", "elu", "elu_", "hardswish", "hardswish_", "hardsigmoid",
    "hardsigmoid_", "mish", "mish_", "softplus", "exp", "exp_", "log", "log_", "sqrt",
    "sqrt_", "rsqrt", "rsqrt_", "neg", "neg_", "abs", "abs_", "reciprocal",
    "reciprocal_", "pow", "pow_", "clamp", "clamp_", "clamp_min", "clamp_min_",
    "clamp_max", "clamp_max_", "sign", "floor", "ceil", "round", "erf",
])
# Binary arithmetic (residual add, scaling, ...): one flop per output element.
_register_family(per_output_element(1), [
    "add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "maximum",
    "minimum", "where", "eq", "ne", "lt", "le", "gt", "ge", "square",
])
# Fused multiply-adds of two products: two flops per output element.
_register_family(per_output_element(2), ["addcmul", "addcmul_", "addcdiv", "addcdiv_", "lerp"])
# Dropout in training mode: one multiply by the scaled mask per element.
_register_family(per_output_element(1), ["native_dropout", "bernoulli_"])
# Reductions: one flop (add or comparison) per input element.
_register_family(per_input_element(1), [
    "sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "prod", "norm",
    "linalg_vector_norm",
])
# Variance/std: subtract the mean and square, per input element.
_register_family(per_input_element(3), ["var", "std", "var_mean", "std_mean"])
# Softmax: max, subtract, exp, sum, divide: five per element.
_register_family(per_output_element(5), ["_softmax", "_log_softmax", "softmax", "log_softmax"])
# Normalization at inference: statistics are constants, so x·scale + shift: 2 per element.
_register_family(per_output_element(2), ["_native_batch_norm_legit_no_training"])
# Normalization that computes its statistics (sum, sum of squares) then scales and
# shifts: 4 per element.
_register_family(per_output_element(4), [
    "_native_batch_norm_legit", "native_layer_norm", "native_group_norm",
])


@formula(aten.native_batch_norm, aten.cudnn_batch_norm)
def batch_norm(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """Batch norm: 2 per element at inference (x·scale + shift), 4 when it computes
    its statistics in training mode (sum and sum of squares first)."""
    training = bool(args[5]) if len(args) > 5 else bool(kwargs.get("training", True))
    return OpCost(0, (4 if training else 2) * _first_tensor(out).numel())


_register_family(per_output_element(4), ["_batch_norm_with_update"])


# --- pooling ------------------------------------------------------------------


def _window(kernel: Sequence[int] | int, dims: int) -> int:
    if isinstance(kernel, int):
        return kernel**dims
    sizes = list(kernel)
    if len(sizes) == 1:
        sizes = sizes * dims
    return _numel(sizes)


def max_pool(dims: int) -> Handler:
    """Rule factory: a max over a k-element window costs k-1 comparisons per output."""

    def handler(args: tuple, kwargs: dict, out: Any) -> OpCost:
        window = _window(args[1], dims)
        return OpCost(0, (window - 1) * _first_tensor(out).numel())

    return handler


def avg_pool(dims: int) -> Handler:
    """Rule factory: an average over a k-element window costs k-1 adds + 1 divide = k."""

    def handler(args: tuple, kwargs: dict, out: Any) -> OpCost:
        window = _window(args[1], dims)
        return OpCost(0, window * _first_tensor(out).numel())

    return handler


_register_family(max_pool(1), ["max_pool1d", "max_pool1d_with_indices"])
_register_family(max_pool(2), ["max_pool2d", "max_pool2d_with_indices", "mkldnn_max_pool2d"])
_register_family(max_pool(3), ["max_pool3d", "max_pool3d_with_indices"])
_register_family(avg_pool(1), ["avg_pool1d"])
_register_family(avg_pool(2), ["avg_pool2d"])
_register_family(avg_pool(3), ["avg_pool3d"])


def _adaptive_window_total(in_size: int, out_size: int) -> int:
    """Sum over output positions of the adaptive window length along one axis."""
    total = 0
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = -((-(i + 1) * in_size) // out_size)
        total += end - start
    return total


def adaptive_pool(per_window_offset: int) -> Handler:
    """Rule factory for adaptive pooling, with each window's exact length.

    Average: k-1 adds + 1 divide = k per window (offset 0).
    Max: k-1 comparisons per window (offset -1).
    """

    def handler(args: tuple, kwargs: dict, out: Any) -> OpCost:
        x, out_t = args[0], _first_tensor(out)
        spatial_in = list(x.shape[-len(args[1]):])
        spatial_out = list(out_t.shape[-len(args[1]):])
        window_sum = 1
        for size_in, size_out in zip(spatial_in, spatial_out):
            window_sum *= _adaptive_window_total(size_in, size_out)
        planes = out_t.numel() // _numel(spatial_out)
        windows = out_t.numel()
        return OpCost(0, planes * window_sum + per_window_offset * windows)

    return handler


_register_family(adaptive_pool(0), [
    "_adaptive_avg_pool2d", "adaptive_avg_pool2d", "_adaptive_avg_pool3d",
    "adaptive_avg_pool1d",
])
_register_family(adaptive_pool(-1), ["adaptive_max_pool2d", "adaptive_max_pool1d", "adaptive_max_pool3d"])

# --- no arithmetic: views, copies, creation, indexing --------------------------

_register_family(_free, [
    "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "squeeze",
    "unsqueeze", "flatten", "slice", "select", "narrow", "split", "split_with_sizes",
    "chunk", "unbind", "detach", "alias", "as_strided", "clone", "contiguous",
    "_to_copy", "copy_", "cat", "stack", "constant_pad_nd", "pad", "reflection_pad1d",
    "reflection_pad2d", "reflection_pad3d", "replication_pad1d", "replication_pad2d",
    "replication_pad3d", "index_select", "index", "gather", "empty", "empty_like",
    "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full", "full_like",
    "fill_", "zero_", "randn", "rand", "randn_like", "rand_like", "normal_", "uniform_",
    "lift_fresh", "lift_fresh_copy", "_local_scalar_dense", "repeat", "roll", "flip",
    "arange", "scalar_tensor", "masked_fill", "masked_fill_", "_reshape_alias",
    "expand_as", "view_as", "new_empty", "new_zeros", "new_ones", "channel_shuffle",
    "pixel_shuffle", "upsample_nearest2d", "_unsafe_index", "sym_size", "sym_numel",
    "sym_stride", "sym_storage_offset", "is_same_size", "_to_dtype",
])
