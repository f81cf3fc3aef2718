"""Random CNNs, valid by construction, each paired with the cost every module call must have.

Used by tests/test_properties.py. The builder tracks the tensor shape as it goes, so each
layer is drawn with arguments that fit its input; next to each module it writes down the
call it expects: output shape, multiply-accumulates from closed forms, and flops by the
counting convention quoted in costlens/count/formulas.py (2 per MAC, one per element of
every other arithmetic op). Nothing here is computed by costlens.

Closed forms, N the batch, S the input and S' the output spatial sizes:

* convolution: N·C_out·prod(S')·(C_in/groups)·prod(k), each output a dot product;
* transposed convolution: N·C_in·prod(S)·(C_out/groups)·prod(k), each input element
  scattered through its kernel (the convention of fvcore and torch's FlopCounterMode);
* linear and matrix products: (elements of the output)·(length of the contracted axis).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

Shape = tuple[int, ...]
Draw = Callable[[st.SearchStrategy[Any]], Any]

# Caps that keep one example at a few milliseconds on cpu (3-D tensors stay tiny).
MAX_CHANNELS = 8
MAX_SPATIAL = {1: 12, 2: 7, 3: 4}
MAX_HEAD = 10  # outputs of the Linear after Flatten
MAX_NESTING = 2  # chains inside residual/concat blocks inside the root chain


@dataclass
class Expected:
    """One module call as predicted: its shapes, its own closed-form cost, the calls inside it."""

    module: nn.Module = field(repr=False)
    input_shape: Shape
    output_shape: Shape
    own_macs: int = 0
    own_flops: int = 0
    own_ops: bool = False  # its forward runs aten ops itself, not only through child modules
    children: list[Expected] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return self.own_macs + sum(child.macs for child in self.children)

    @property
    def flops(self) -> int:
        return self.own_flops + sum(child.flops for child in self.children)


@dataclass
class Layer:
    """A built module and how to predict its call for an input shape."""

    module: nn.Module
    predict: Callable[[Shape], Expected]

    def output_shape(self, shape: Shape) -> Shape:
        return self.predict(shape).output_shape


@dataclass(frozen=True)
class Context:
    """What every builder must respect: the trace's mode and dtype, and how deep it may nest."""

    train: bool
    dtype: str
    depth: int = 0

    def deeper(self) -> Context:
        return Context(self.train, self.dtype, self.depth + 1)


class Case:
    """A drawn network, its input, how to profile it, and the root call it must produce."""

    def __init__(self, model: nn.Module, input_shape: Shape, dtype: str, train: bool, expected: Expected) -> None:
        self.model, self.input_shape, self.dtype, self.train, self.expected = model, input_shape, dtype, train, expected

    def __repr__(self) -> str:  # hypothesis prints this for a falsifying example
        return f"Case(input_shape={self.input_shape}, dtype={self.dtype!r}, train={self.train},\nmodel={self.model})"


def numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


def leaf(module: nn.Module, shape: Shape, out: Shape, macs: int = 0, flops: int = 0) -> Expected:
    return Expected(module, shape, out, macs, flops, own_ops=True)


def spatial_cap(shape: Shape) -> int:
    return MAX_SPATIAL.get(len(shape) - 2, MAX_HEAD)


def fixed(module: nn.Module, build_shape: Shape, expected: Expected) -> Layer:
    """A layer whose prediction holds only at the shape it was built for (blocks with children)."""

    def predict(shape: Shape) -> Expected:
        assert shape == build_shape, f"{type(module).__name__} built for {build_shape}, called on {shape}"
        return expected

    return Layer(module, predict)


# --- convolutions -----------------------------------------------------------------


@dataclass(frozen=True)
class ConvAxis:
    kernel: int
    stride: int
    padding: int
    dilation: int
    output_padding: int = 0


def _draw_conv_axis(draw: Draw, size: int, cap: int, stride_one: bool) -> ConvAxis:
    kernel = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2)) if kernel > 1 else 1
    reach = dilation * (kernel - 1) + 1
    least = max(0, -(-(reach - size) // 2))  # the padding that makes the window fit at least once
    # more padding than needed only while the output stays within the cap
    padding = draw(st.integers(least, least + 1)) if size + 2 * (least + 1) - reach + 1 <= cap else least
    stride = 1 if stride_one else draw(st.integers(1, 2))
    return ConvAxis(kernel, stride, padding, dilation)


def conv_out(size: int, a: ConvAxis) -> int:
    """Output length of a convolution along one axis: floor((S + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * a.padding - a.dilation * (a.kernel - 1) - 1) // a.stride + 1


def _draw_groups(draw: Draw, channels: int) -> int:
    return draw(st.sampled_from([g for g in range(1, channels + 1) if channels % g == 0]))


CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
TRANSPOSED = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def conv(draw: Draw, shape: Shape, ctx: Context) -> Layer:
    """A convolution with random kernel, stride, padding (numbers or 'same'), dilation, groups, bias, padding mode."""
    c_in, spatial = shape[1], shape[2:]
    same = draw(st.booleans())
    axes = [_draw_conv_axis(draw, s, spatial_cap(shape), stride_one=same) for s in spatial]
    groups = _draw_groups(draw, c_in)
    c_out = groups * draw(st.integers(1, MAX_CHANNELS // groups))
    bias = draw(st.booleans())
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    if same:
        # 'same' pads d(k-1) in all, the odd element at the end
        pads = [(a.dilation * (a.kernel - 1)) - (a.dilation * (a.kernel - 1)) // 2 for a in axes]
        axes = [ConvAxis(a.kernel, 1, a.dilation * (a.kernel - 1) // 2, a.dilation) for a in axes]
    else:
        pads = [a.padding for a in axes]
    if mode != "zeros" and any(p >= s for p, s in zip(pads, spatial)):
        mode = "zeros"  # reflect and circular padding must be shorter than the input
    module = CONVS[len(spatial)](
        c_in, c_out, [a.kernel for a in axes], stride=[a.stride for a in axes],
        padding="same" if same else [a.padding for a in axes], dilation=[a.dilation for a in axes],
        groups=groups, bias=bias, padding_mode=mode,
    )

    def predict(x: Shape) -> Expected:
        out_spatial = tuple(x[2:]) if same else tuple(conv_out(s, a) for s, a in zip(x[2:], axes))
        out = (x[0], c_out, *out_spatial)
        macs = x[0] * c_out * numel(out_spatial) * (c_in // groups) * numel([a.kernel for a in axes])
        return leaf(module, x, out, macs, 2 * macs + (numel(out) if bias else 0))

    return Layer(module, predict)


def transposed_conv_out(size: int, a: ConvAxis) -> int:
    """Output length of a transposed convolution: (S-1)s - 2p + d(k-1) + output_padding + 1."""
    return (size - 1) * a.stride - 2 * a.padding + a.dilation * (a.kernel - 1) + a.output_padding + 1


def _draw_transposed_axis(draw: Draw, size: int, cap: int) -> ConvAxis:
    stride = draw(st.integers(1, 2)) if 2 * size <= cap else 1
    kernel = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2)) if kernel > 1 else 1
    output_padding = draw(st.integers(0, max(stride, dilation) - 1))  # torch: smaller than stride or dilation
    full = (size - 1) * stride + dilation * (kernel - 1) + output_padding + 1
    least = max(0, -(-(full - cap) // 2))  # crop enough to stay within the cap
    padding = draw(st.integers(least, max(least, (full - 1) // 2)))  # keep at least one output
    return ConvAxis(kernel, stride, padding, dilation, output_padding)


def transposed_conv(draw: Draw, shape: Shape, ctx: Context) -> Layer:
    c_in, spatial = shape[1], shape[2:]
    axes = [_draw_transposed_axis(draw, s, spatial_cap(shape)) for s in spatial]
    groups = _draw_groups(draw, c_in)
    c_out = groups * draw(st.integers(1, MAX_CHANNELS // groups))
    bias = draw(st.booleans())
    module = TRANSPOSED[len(spatial)](
        c_in, c_out, [a.kernel for a in axes], stride=[a.stride for a in axes],
        padding=[a.padding for a in axes], output_padding=[a.output_padding for a in axes],
        groups=groups, bias=bias, dilation=[a.dilation for a in axes],
    )

    def predict(x: Shape) -> Expected:
        out = (x[0], c_out, *(transposed_conv_out(s, a) for s, a in zip(x[2:], axes)))
        macs = x[0] * c_in * numel(x[2:]) * (c_out // groups) * numel([a.kernel for a in axes])
        return leaf(module, x, out, macs, 2 * macs + (numel(out) if bias else 0))

    return Layer(module, predict)


def linear(draw: Draw, shape: Shape, ctx: Context) -> Layer:
    """nn.Linear on the last axis of an N-D tensor: every leading axis is a batch axis."""
    features = draw(st.integers(1, spatial_cap(shape)))
    bias = draw(st.booleans())
    module = nn.Linear(shape[-1], features, bias=bias)

    def predict(x: Shape) -> Expected:
        out = (*x[:-1], features)
        macs = numel(x[:-1]) * x[-1] * features
        return leaf(module, x, out, macs, 2 * macs + (numel(out) if bias else 0))

    return Layer(module, predict)


# --- pooling --------------------------------------------------------------------


def pool_out(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling length: floor or ceil of (S + 2p - d(k-1) - 1)/s, + 1; a last window
    that would start in the right padding is dropped."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


MAX_POOLS = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVG_POOLS = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


def _draw_pool_axis(draw: Draw, size: int, cap: int, dilated: bool, padded_fit: bool = True) -> tuple[int, int, int, int]:
    # torch allows padding up to half the kernel; keep (kernel, dilation) pairs whose window fits then
    # (avg_pool3d wants the kernel within the unpadded input: padded_fit False)
    fits = [(k, d) for k in (1, 2, 3) for d in ((1, 2) if dilated and k > 1 else (1,))
            if d * (k - 1) + 1 <= size + (2 * (k // 2) if padded_fit else 0)]
    kernel, dilation = draw(st.sampled_from(fits))
    least = max(0, -(-(dilation * (kernel - 1) + 1 - size) // 2))
    # a 2-wide window padded by 1 makes the axis one longer: not past the cap
    padding = draw(st.integers(least, kernel // 2)) if size < cap else least
    stride = draw(st.integers(1, 3))
    return kernel, stride, padding, dilation


def max_pool(draw: Draw, shape: Shape, ctx: Context) -> Layer:
    axes = [_draw_pool_axis(draw, s, spatial_cap(shape), dilated=True) for s in shape[2:]]
    ceil_mode = draw(st.booleans())
    kernels = [a[0] for a in axes]
    module = MAX_POOLS[len(axes)](kernels, [a[1] for a in axes], [a[2] for a in axes], [a[3] for a in axes],
                                  ceil_mode=ceil_mode)

    def predict(x: Shape) -> Expected:
        out = (*x[:2], *(pool_out(s, *a, ceil_mode) for s, a in zip(x[2:], axes)))
        return leaf(module, x, out, 0, (numel(kernels) - 1) * numel(out))  # a max of k values: k-1 comparisons

    return Layer(module, predict)


def avg_pool(draw: Draw, shape: Shape, ctx: Context) -> Layer:
    axes = [_draw_pool_axis(draw, s, spatial_cap(shape), dilated=False, padded_fit=len(shape) < 5) for s in shape[2:]]
    ceil_mode, include_pad = draw(st.booleans()), draw(st.booleans())
    kernels = [a[0] for a in axes]
    module = AVG_POOLS[len(axes)](kernels, [a[1] for a in axes], [a[2] for a in axes], ceil_mode=ceil_mode,
                                  count_include_pad=include_pad)

    def predict(x: Shape) -> Expected:
        out = (*x[:2], *(pool_out(s, k, stride, p, 1, ceil_mode) for s, (k, stride, p, _) in zip(x[2:], axes)))
        return leaf(module, x, out, 0, numel(kernels) * numel(out))  # k-1 adds and one divide

    return Layer(module, predict)


def adaptive_windows(size: int, out: int) -> list[int]:
    """Window lengths of adaptive pooling along one axis: [floor(i·S/O), ceil((i+1)·S/O))."""
    return [math.ceil((i + 1) * size / out) - (i * size) // out for i in range(out)]


ADAPTIVE = {
    ("avg", 1): nn.AdaptiveAvgPool1d, ("avg", 2): nn.AdaptiveAvgPool2d, ("avg", 3): nn.AdaptiveAvgPool3d,
    ("max", 1): nn.AdaptiveMaxPool1d, ("max", 2): nn.AdaptiveMaxPool2d, ("max", 3): nn.AdaptiveMaxPool3d,
}


def adaptive_pool(draw: Draw, shape: Shape, ctx: Context, kind: str | None = None,
                  size: Shape | None = None) -> Layer:
    kind = kind or draw(st.sampled_from(["avg", "max"]))
    cap = spatial_cap(shape)
    size = size or tuple(draw(st.integers(1, min(s + 1, cap))) for s in shape[2:])
    module = ADAPTIVE[kind, len(size)](size)

    def predict(x: Shape) -> Expected:
        out = (*x[:2], *size)
        # windows are products of the per-axis windows, so their summed sizes multiply
        summed = numel([sum(adaptive_windows(s, o)) for s, o in zip(x[2:], size)])
        flops = numel(x[:2]) * summed - (numel(out) if kind == "max" else 0)  # avg: k per window, max: k-1
        return leaf(module, x, out, 0, flops)

    return Layer(module, predict)


# --- normalization and activations ------------------------------------------------


NORMS = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def batch_norm(draw: Draw, shape: Shape, ctx: Context) -> Layer:
    one_value = numel(shape) // shape[1] == 1  # batch statistics of one value per channel are refused
    track = True if one_value else draw(st.booleans())
    module = NORMS[len(shape) - 2](shape[1], affine=draw(st.booleans()), track_running_stats=track)
    batch_stats = ctx.train or not track

    def predict(x: Shape) -> Expected:
        # scale and shift with running statistics: 2 per element; computing statistics first: 4
        flops = (4 if batch_stats else 2) * numel(x) + (1 if ctx.train and track else 0)  # num_batches_tracked += 1
        return leaf(module, x, x, 0, flops)

    return Layer(module, predict)


def can_batch_norm(shape: Shape, ctx: Context) -> bool:
    return not (ctx.train and numel(shape) // shape[1] == 1)


ACTIVATIONS: list[Callable[[bool], nn.Module]] = [
    lambda inplace: nn.ReLU(inplace), lambda inplace: nn.ReLU6(inplace), lambda inplace: nn.LeakyReLU(0.1, inplace),
    lambda inplace: nn.ELU(inplace=inplace), lambda inplace: nn.SiLU(inplace), lambda inplace: nn.Hardswish(inplace),
    lambda _: nn.GELU(), lambda _: nn.Sigmoid(), lambda _: nn.Tanh(), lambda _: nn.Hardsigmoid(),
]


ACTIVATION_TYPES = {type(make(False)) for make in ACTIVATIONS}


def activation(draw: Draw, shape: Shape, ctx: Context) -> Layer:
    module = draw(st.sampled_from(ACTIVATIONS))(draw(st.booleans()))
    return Layer(module, lambda x: leaf(module, x, x, 0, numel(x)))  # one per element


# --- functional ops inside a forward ----------------------------------------------


@dataclass
class Step:
    """An op that a Chain's forward runs itself: how to run it and what it costs."""

    label: str  # how the step reads in forward, for the falsifying example's printout
    run: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    out: Callable[[Shape], Shape]
    macs: Callable[[Shape], int]
    extra_flops: Callable[[Shape], int] = lambda _: 0  # flops beyond 2 per MAC


def _parameter(chain: nn.Module, name: str, *sizes: int) -> None:
    chain.register_parameter(name, nn.Parameter(torch.randn(*sizes)))


def draw_step(draw: Draw, chain: nn.Module, shape: Shape, index: int) -> Step:
    """F.relu, torch.cat, x @ W, x @ v, x @ xᵀ or an einsum over channels, written in forward."""
    name = f"w{index}"
    kinds = ["relu", "matmul", "matvec", "gram"] + (["cat"] if 2 * shape[1] <= MAX_CHANNELS else [])
    if shape[1] > 1:  # over one channel torch's einsum is a plain multiply: see test_properties.py
        kinds.append("einsum")
    if shape[-2] > spatial_cap(shape):
        kinds.remove("gram")  # x @ xᵀ makes the last axis as long as the one before it
    kind = draw(st.sampled_from(kinds))
    if kind == "relu":
        return Step("F.relu(x)", lambda m, x: F.relu(x), lambda s: s, lambda s: 0, numel)
    if kind == "cat":
        return Step("torch.cat([x, F.relu(x)], dim=1)", lambda m, x: torch.cat([x, F.relu(x)], dim=1),
                    lambda s: (s[0], 2 * s[1], *s[2:]), lambda s: 0, numel)
    if kind == "matmul":
        width = draw(st.integers(1, spatial_cap(shape)))
        _parameter(chain, name, shape[-1], width)
        return Step(f"x @ {name} ({shape[-1]}x{width})", lambda m, x: x @ getattr(m, name), lambda s: (*s[:-1], width),
                    lambda s: numel(s) * width)  # every output element: a dot product of s[-1] terms
    if kind == "matvec":
        _parameter(chain, name, shape[-1])
        return Step(f"(x @ {name} ({shape[-1]},)).unsqueeze(-1)", lambda m, x: (x @ getattr(m, name)).unsqueeze(-1),
                    lambda s: (*s[:-1], 1), numel)  # every output element: a dot product of s[-1] terms
    if kind == "gram":
        return Step("x @ x.transpose(-1, -2)", lambda m, x: x @ x.transpose(-1, -2), lambda s: (*s[:-1], s[-2]),
                    lambda s: numel(s) * s[-2])  # (…, A, L) @ (…, L, A): A·A outputs per plane, L terms each
    channels = draw(st.integers(1, MAX_CHANNELS))
    _parameter(chain, name, shape[1], channels)
    # einsum leaves channels last in memory, where meta and cpu kernels disagree on later
    # strides (see test_properties.py); .contiguous() keeps the two traces comparable
    return Step(f"torch.einsum('nc...,ck->nk...', x, {name} ({shape[1]}x{channels})).contiguous()",
                lambda m, x: torch.einsum("nc...,ck->nk...", x, getattr(m, name)).contiguous(),
                lambda s: (s[0], channels, *s[2:]), lambda s: numel(s) * channels)


# --- blocks with children -----------------------------------------------------------


class Chain(nn.Module):
    """Runs child modules and functional steps in the drawn order."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList()  # never called itself: its entries are this module's children
        self.plan: list[int | Step] = []

    def extra_repr(self) -> str:
        return "forward: " + "; ".join(f"layers[{item}]" if isinstance(item, int) else item.label for item in self.plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for item in self.plan:
            x = self.layers[item](x) if isinstance(item, int) else item.run(self, x)
        return x


class Residual(nn.Module):
    """body(x) + shortcut(x), optionally through F.relu: the functional residual add."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None, relu: bool) -> None:
        super().__init__()
        self.body, self.shortcut, self.relu = body, shortcut, relu

    def extra_repr(self) -> str:
        return f"relu={self.relu}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(y) if self.relu else y


class Concat(nn.Module):
    """Branches on the same input, concatenated along channels (torch.cat in forward)."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class Twice(nn.Module):
    """One module reused: inner(inner(x)), or torch.cat of two calls on the same input."""

    def __init__(self, inner: nn.Module, parallel: bool) -> None:
        super().__init__()
        self.inner, self.parallel = inner, parallel

    def extra_repr(self) -> str:
        return f"parallel={self.parallel}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.parallel:
            return torch.cat([self.inner(x), self.inner(x)], dim=1)
        return self.inner(self.inner(x))


def shape_keeping(draw: Draw, shape: Shape, ctx: Context) -> Layer:
    """A layer whose output shape is its input shape, so it can run on its own output."""
    options = ["activation", "conv"] + (["norm"] if can_batch_norm(shape, ctx) else [])
    kind = draw(st.sampled_from(options))
    if kind == "activation":
        return activation(draw, shape, ctx)
    if kind == "norm":
        return batch_norm(draw, shape, ctx)
    c, dims = shape[1], len(shape) - 2
    kernels = [draw(st.sampled_from([1, 3])) for _ in range(dims)]
    dilations = [draw(st.integers(1, 2)) for _ in range(dims)]
    groups = _draw_groups(draw, c)
    bias = draw(st.booleans())
    module = CONVS[dims](c, c, kernels, padding=[d * (k - 1) // 2 for k, d in zip(kernels, dilations)],
                         dilation=dilations, groups=groups, bias=bias)

    def predict(x: Shape) -> Expected:
        macs = numel(x) * (c // groups) * numel(kernels)
        return leaf(module, x, x, macs, 2 * macs + (numel(x) if bias else 0))

    return Layer(module, predict)


def twice(draw: Draw, shape: Shape, ctx: Context) -> Layer:
    parallel = 2 * shape[1] <= MAX_CHANNELS and draw(st.booleans())
    inner = shape_keeping(draw, shape, ctx)
    module = Twice(inner.module, parallel)
    call = inner.predict(shape)
    if parallel:
        out = (shape[0], 2 * shape[1], *shape[2:])
        return fixed(module, shape, Expected(module, shape, out, 0, 0, own_ops=True, children=[call, call]))
    return fixed(module, shape, Expected(module, shape, shape, children=[call, call]))


def _align(draw: Draw, layer: Chain, expected: Expected, spatial: Shape | None, channels: int | None,
           ctx: Context) -> Expected:
    """Append an adaptive pool and a 1x1 convolution to a chain until its output has the wanted sizes."""
    shape = expected.output_shape
    if spatial is not None and shape[2:] != spatial:
        _append(layer, expected, adaptive_pool(draw, shape, ctx, "avg", spatial))
    shape = expected.output_shape
    if channels is not None and shape[1] != channels:
        projection = CONVS[len(shape) - 2](shape[1], channels, 1, bias=False)
        macs = numel(shape) // shape[1] * channels * shape[1]
        _append(layer, expected, Layer(projection, lambda x: leaf(projection, x, (x[0], channels, *x[2:]), macs, 2 * macs)))
    return expected


def _append(chain: Chain, expected: Expected, layer: Layer) -> None:
    call = layer.predict(expected.output_shape)
    chain.plan.append(len(chain.layers))
    chain.layers.append(layer.module)
    expected.children.append(call)
    expected.output_shape = call.output_shape


def residual(draw: Draw, shape: Shape, ctx: Context) -> Layer:
    body = chain(draw, shape, ctx.deeper(), max_steps=3)
    out = body.output_shape(shape)
    shortcut: Chain | None = None
    children = [body.predict(shape)]
    if out != shape:  # a projection shortcut, as in ResNet: pool to the body's size, 1x1 conv to its channels
        shortcut = Chain()
        path = _align(draw, shortcut, Expected(shortcut, shape, shape), out[2:], out[1], ctx)
        children.append(path)
    module = Residual(body.module, shortcut, draw(st.booleans()))
    flops = numel(out) * (2 if module.relu else 1)  # the add, and F.relu after it
    return fixed(module, shape, Expected(module, shape, out, 0, flops, own_ops=True, children=children))


def concat(draw: Draw, shape: Shape, ctx: Context) -> Layer:
    branches: list[nn.Module] = []
    calls: list[Expected] = []
    spatial: Shape | None = None
    channels = 0
    for _ in range(draw(st.integers(2, 3))):
        room = MAX_CHANNELS - channels
        if room < 1:
            break
        branch = chain(draw, shape, ctx.deeper(), max_steps=2)
        call = branch.predict(shape)
        assert isinstance(branch.module, Chain)
        # every branch ends at the first one's spatial size; the first leaves room for a second
        limit = MAX_CHANNELS // 2 if not branches else room
        _align(draw, branch.module, call, spatial, min(call.output_shape[1], limit), ctx)
        spatial = call.output_shape[2:]
        channels += call.output_shape[1]
        branches.append(branch.module)
        calls.append(call)
    module = Concat(branches)
    out = (shape[0], channels, *(spatial or ()))
    return fixed(module, shape, Expected(module, shape, out, 0, 0, own_ops=True, children=calls))


LEAVES: dict[str, Callable[[Draw, Shape, Context], Layer]] = {
    "conv": conv, "transposed": transposed_conv, "linear": linear, "max_pool": max_pool,
    "avg_pool": avg_pool, "adaptive_pool": adaptive_pool, "batch_norm": batch_norm, "activation": activation,
}
BLOCKS: dict[str, Callable[[Draw, Shape, Context], Layer]] = {
    "residual": residual, "concat": concat, "twice": twice,
}


def _kinds(shape: Shape, ctx: Context) -> list[str]:
    kinds = list(LEAVES) + ["step", "reuse"]
    if not can_batch_norm(shape, ctx):
        kinds.remove("batch_norm")
    if ctx.dtype == "bfloat16" and len(shape) == 5:
        kinds.remove("avg_pool")  # torch's cpu avg_pool3d has no bfloat16 kernel
    if ctx.depth < MAX_NESTING:
        kinds += list(BLOCKS)
    return kinds


def chain(draw: Draw, shape: Shape, ctx: Context, max_steps: int) -> Layer:
    """A Chain of 1..max_steps layers, functional steps and reuses of an earlier activation."""
    module = Chain()
    expected = Expected(module, shape, shape)
    for _ in range(draw(st.integers(1, max_steps))):
        here = expected.output_shape
        kind = draw(st.sampled_from(_kinds(here, ctx)))
        if kind == "step":
            step = draw_step(draw, module, here, len(module.plan))
            module.plan.append(step)
            expected.own_ops = True
            expected.own_macs += step.macs(here)
            expected.own_flops += 2 * step.macs(here) + step.extra_flops(here)
            expected.output_shape = step.out(here)
        elif kind == "reuse":
            # the same activation module again, later in the chain, on whatever shape is there now
            earlier = [m for m in module.layers if type(m) in ACTIVATION_TYPES]
            picked = draw(st.sampled_from(earlier)) if earlier else nn.ReLU()
            _append(module, expected, Layer(picked, lambda x, m=picked: leaf(m, x, x, 0, numel(x))))
        else:
            builder = LEAVES.get(kind) or BLOCKS[kind]
            _append(module, expected, builder(draw, here, ctx))
    return fixed(module, shape, expected)


@st.composite
def networks(draw: Draw) -> Case:
    """A random CNN: a root Chain over a 1-D, 2-D or 3-D input, sometimes ending in Flatten + Linear."""
    dims = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)),
              *(draw(st.integers(1, MAX_SPATIAL[dims])) for _ in range(dims)))
    ctx = Context(train=draw(st.booleans()), dtype=draw(st.sampled_from(["float32", "bfloat16"])))
    root = chain(draw, shape, ctx, max_steps=4)
    assert isinstance(root.module, Chain)
    expected = root.predict(shape)
    if draw(st.booleans()):
        flatten = nn.Flatten()
        _append(root.module, expected, Layer(flatten, lambda x: leaf(flatten, x, (x[0], numel(x[1:])))))
        _append(root.module, expected, linear(draw, expected.output_shape, ctx))
    return Case(root.module, shape, ctx.dtype, ctx.train, expected)
