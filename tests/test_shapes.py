"""Shape rules against torch's own meta kernels, on thousands of random arguments.

Every op is called through a dispatch mode, so each rule sees its arguments exactly as
the tracer does. Where a rule answers, its shapes, strides and dtypes must equal the
meta kernel's, and the kernel must not raise; a rule may always decline (None). Each op
family also checks that its rule answers the common cases, so a rule that declines
everything fails too.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from costlens.count import shapes

aten = torch.ops.aten
CASES = 1000  # per family; every family mixes valid, unusual and invalid arguments
MANY = os.environ.get("COSTLENS_SLOW_TESTS") == "1"  # 20,000 more cases per family, about two minutes
SIZES = (0, 1, 1, 2, 3, 3, 4, 5, 7, 8, 13)
DTYPES = (torch.float32,) * 6 + (torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.bool)


def _metas(out: Any) -> tuple[shapes.Meta, ...]:
    outs = (out,) if isinstance(out, torch.Tensor) else tuple(out)
    return tuple((tuple(o.shape), o.stride(), o.dtype) for o in outs)


class _Judge(TorchDispatchMode):
    """Runs each op's rule beside its kernel and keeps what both said."""

    def __init__(self) -> None:
        super().__init__()
        self.answered: Counter = Counter()
        self.seen: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        rule = shapes.rule_of(func)
        predicted = rule(*args, **kwargs) if rule is not None else None
        self.seen[func] += 1
        try:
            out = func(*args, **kwargs)
        except Exception as error:
            assert predicted is None, f"{func}: the rule answered {predicted} but the kernel raised {error!r}"
            raise
        if predicted is not None:
            self.answered[func] += 1
            assert predicted == _metas(out), f"{func}{_describe(args, kwargs)}: rule {predicted}, kernel {_metas(out)}"
        return out


def _describe(args: tuple, kwargs: dict) -> str:
    def one(v: Any) -> str:
        if isinstance(v, torch.Tensor):
            return f"T{tuple(v.shape)}/{v.stride()}/{str(v.dtype)[6:]}/{v.device.type}"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(one(x) for x in v) + "]"
        return repr(v)

    return "(" + ", ".join([one(a) for a in args] + [f"{k}={one(v)}" for k, v in kwargs.items()]) + ")"


def _run(calls: Callable[[random.Random], Callable[[], Any]], seed: int, cases: int = CASES) -> _Judge:
    rng = random.Random(seed)
    judge = _Judge()
    with judge:
        for _ in range(cases):
            call = calls(rng)
            with contextlib.suppress(Exception):  # invalid arguments are part of the sample; the judge checked the rule
                call()
    return judge


# --- random tensors ------------------------------------------------------------------


def _shape(rng: random.Random, rank: int) -> list[int]:
    return [rng.choice(SIZES) for _ in range(rank)]


def _layout(rng: random.Random, shape: list[int], dtype: torch.dtype, device: str = "meta") -> torch.Tensor:
    """A tensor of ``shape`` in a random layout: plain, channels-last, permuted, strided,
    odd strides on size-1 dimensions, or broadcast (stride 0)."""
    kind = rng.choice(["plain"] * 6 + ["channels_last", "permuted", "strided", "odd", "broadcast"])
    if device == "cpu" and dtype in (torch.bool, torch.int64):
        base = torch.zeros(shape, dtype=dtype)
    else:
        base = torch.empty(shape, dtype=dtype, device=device)
    if kind == "channels_last" and len(shape) in (4, 5):
        return base.contiguous(memory_format=torch.channels_last if len(shape) == 4 else torch.channels_last_3d)
    if kind == "permuted" and len(shape) >= 2:
        order = list(range(len(shape)))
        rng.shuffle(order)
        return torch.empty([shape[i] for i in order], dtype=dtype, device=device).permute(
            [order.index(i) for i in range(len(shape))])
    if kind == "strided" and shape:
        wide = list(shape)
        wide[-1] = 2 * max(shape[-1], 1)
        return torch.empty(wide, dtype=dtype, device=device)[..., : shape[-1]]
    if kind == "odd":
        strides = [rng.choice((1, 2, 7, 99)) if s == 1 else st for s, st in zip(shape, base.stride())]
        return base.as_strided(shape, strides)
    if kind == "broadcast" and shape:
        return base.as_strided(shape, [0 if rng.random() < 0.3 else st for st in base.stride()])
    return base


def _tensor(rng: random.Random, shape: list[int], dtype: torch.dtype | None = None) -> torch.Tensor:
    dtype = dtype or rng.choice(DTYPES)
    device = "cpu" if rng.random() < 0.03 and all(s <= 8 for s in shape) else "meta"
    return _layout(rng, shape, dtype, device)


def _floats(rng: random.Random) -> torch.dtype:
    return rng.choice((torch.float32,) * 5 + (torch.float16, torch.bfloat16, torch.float64))


def _number(rng: random.Random) -> Any:
    return rng.choice([0, 1, 2, -1, 0.5, -0.25, 3.0, True])


def _like(rng: random.Random, shape: list[int]) -> list[int]:
    """A shape that broadcasts with ``shape`` (usually), or a random one."""
    if rng.random() < 0.1:
        return _shape(rng, rng.randint(0, 4))
    other = [1 if rng.random() < 0.3 else s for s in shape]
    return other[rng.randint(0, len(other)):] if rng.random() < 0.3 else other


# --- the op families -------------------------------------------------------------------


def _conv(rng: random.Random) -> Callable[[], Any]:
    dims = rng.choice((1, 2, 2, 2, 3))
    groups = rng.choice((1, 1, 1, 2, 3))
    per_group, out = rng.choice((1, 2, 3)), groups * rng.choice((1, 2, 4))
    batch = rng.choice((0, 1, 1, 2, 3))
    kernel = [rng.choice((1, 1, 2, 3, 5)) for _ in range(dims)]
    spatial = [rng.choice((1, 2, 3, 5, 8, 13)) for _ in range(dims)]
    transposed = rng.random() < 0.2
    channels = groups * per_group if rng.random() < 0.95 else groups * per_group + 1
    x = _tensor(rng, [batch, channels, *spatial], rng.choice((torch.float32, torch.float32, torch.float16)))
    w_shape = [per_group * groups, out // groups, *kernel] if transposed else [out, per_group, *kernel]
    weight = _tensor(rng, w_shape, x.dtype if rng.random() < 0.95 else torch.float64)
    bias = _tensor(rng, [out], x.dtype) if rng.random() < 0.5 else None

    def spread(low: int, high: int) -> Any:
        n = rng.choice((1, dims, dims, dims + 1))
        return [rng.randint(low, high) for _ in range(n)]

    stride, padding, dilation = spread(1, 3), spread(0, 2), spread(1, 2)
    if rng.random() < 0.03:
        stride = [0] * dims
    output_padding = rng.choice(([0] * dims, [], [1] * dims, [0]))
    return lambda: aten.convolution.default(x, weight, bias, stride, padding, dilation, transposed, output_padding, groups)


def _conv_functional(rng: random.Random) -> Callable[[], Any]:
    x = _tensor(rng, [rng.choice((1, 2)), 6, rng.choice((5, 8, 16)), rng.choice((5, 9))], torch.float32)
    weight = torch.empty(4, 6 // (g := rng.choice((1, 2, 3))), 3, 3, device="meta")
    return lambda: F.conv2d(x, weight, None, rng.choice((1, 2)), rng.choice((0, 1, "same")), 1, g)


def _matrices(rng: random.Random) -> Callable[[], Any]:
    m, k, n, b = (rng.choice((0, 1, 2, 3, 7)) for _ in range(4))
    dtype = _floats(rng) if rng.random() < 0.9 else torch.int64
    k2 = k if rng.random() < 0.9 else k + 1
    a, c = _tensor(rng, [m, k], dtype), _tensor(rng, [k2, n], dtype if rng.random() < 0.95 else torch.float64)
    bias = _tensor(rng, rng.choice(([n], [m, n], [1, n], [m, 1], [], [2, m, n], [n + 1])), dtype)
    batched = (_tensor(rng, [b, m, k], dtype), _tensor(rng, [b if rng.random() < 0.9 else b + 1, k2, n], dtype))
    beta, alpha = rng.choice((1, 0, 0.5, True)), rng.choice((1, 2.0))
    return rng.choice((
        lambda: aten.mm.default(a, c),
        lambda: aten.addmm.default(bias, a, c, beta=beta, alpha=alpha),
        lambda: aten.bmm.default(*batched),
        lambda: F.linear(a, c.t(), bias if rng.random() < 0.5 else None),
    ))


def _batch_norm(rng: random.Random) -> Callable[[], Any]:
    rank = rng.choice((2, 3, 4, 4, 4, 5))
    shape = _shape(rng, rank)
    x = _tensor(rng, shape, _floats(rng) if rng.random() < 0.95 else torch.int64)
    channels = shape[1]

    def vector() -> torch.Tensor | None:
        if rng.random() < 0.2:
            return None
        size = channels if rng.random() < 0.95 else channels + 1
        return _tensor(rng, [size], _floats(rng))

    weight, bias, mean, var = vector(), vector(), vector(), vector()
    training = rng.random() < 0.5
    return lambda: aten.native_batch_norm.default(x, weight, bias, mean, var, training, 0.1, 1e-5)


UNARY = (aten.relu.default, aten.tanh.default, aten.sigmoid.default, aten.silu.default, aten.exp.default,
         aten.log.default, aten.sqrt.default, aten.rsqrt.default, aten.neg.default, aten.abs.default,
         aten.hardswish.default, aten.hardsigmoid.default, aten.erf.default, aten.mish.default)


def _unary(rng: random.Random) -> Callable[[], Any]:
    x = _tensor(rng, _shape(rng, rng.randint(0, 5)))
    a, b = _number(rng), _number(rng)
    return rng.choice((
        lambda: rng.choice(UNARY)(x),
        lambda: aten.gelu.default(x, approximate=rng.choice(("none", "tanh", "other"))),
        lambda: aten.pow.Tensor_Scalar(x, a),
        lambda: aten.leaky_relu.default(x, a),
        lambda: aten.elu.default(x, a, b),
        lambda: aten.hardtanh.default(x, a, b),
        lambda: aten.clamp.default(x, rng.choice((None, a)), rng.choice((None, b))),
        lambda: aten.clamp_min.default(x, a),
        lambda: aten.clamp_max.default(x, b),
        lambda: aten.rsub.Scalar(x, a, b),
        lambda: F.relu(x),
        lambda: 1.7159 * torch.tanh(x * (2.0 / 3.0)),
    ))


def _binary(rng: random.Random) -> Callable[[], Any]:
    shape = _shape(rng, rng.randint(0, 5))
    x = _tensor(rng, shape)
    other: Any = _tensor(rng, _like(rng, shape), x.dtype if rng.random() < 0.9 else None)
    if rng.random() < 0.2:
        other = _number(rng)
    if rng.random() < 0.5:
        x, other = (other, x) if isinstance(other, torch.Tensor) else (x, other)
    alpha = rng.choice((1, 2, 0.5, True))
    return rng.choice((
        lambda: aten.add.Tensor(x, other, alpha=alpha),
        lambda: aten.sub.Tensor(x, other),
        lambda: aten.mul.Tensor(x, other),
        lambda: aten.div.Tensor(x, other),
        lambda: x + other,
    ))


def _reduction(rng: random.Random) -> Callable[[], Any]:
    rank = rng.randint(0, 5)
    x = _tensor(rng, _shape(rng, rank))
    dims = rng.choice((None, [], [rng.randint(-rank - 1, rank) for _ in range(rng.randint(1, 3))]))
    keepdim = rng.random() < 0.5
    dtype = torch.float64 if rng.random() < 0.05 else None
    return rng.choice((
        lambda: aten.mean.dim(x, dims, keepdim, dtype=dtype),
        lambda: aten.sum.dim_IntList(x, dims, keepdim, dtype=dtype),
        lambda: aten.mean.default(x, dtype=dtype),
        lambda: aten.sum.default(x),
        lambda: F.adaptive_avg_pool2d(x, 1),
    ))


def _pool(rng: random.Random) -> Callable[[], Any]:
    x = _tensor(rng, [rng.choice((0, 1, 2))] * (rng.random() < 0.8) + [rng.choice((1, 3, 16)),
                      rng.choice((0, 1, 2, 5, 7, 14)), rng.choice((1, 3, 6, 13))])
    kernel = rng.choice(([2, 2], [3, 3], [3], [1, 2], [2, 3, 1], [0, 1]))
    stride = rng.choice(([], [2, 2], [1], [2, 1], [1, 1, 1], [0, 1]))
    padding = rng.choice(([0, 0], [1], [1, 0], [2, 2], [0]))
    dilation = rng.choice(([1, 1], [2], [1, 2], [0, 1]))
    ceil_mode = rng.random() < 0.4
    return rng.choice((
        lambda: aten.max_pool2d_with_indices.default(x, kernel, stride, padding, dilation, ceil_mode),
        lambda: aten.avg_pool2d.default(x, kernel, stride, padding, ceil_mode, rng.random() < 0.5,
                                        rng.choice((None, None, 2, 0))),
        lambda: F.max_pool2d(x, rng.choice((2, 3)), rng.choice((1, 2)), rng.choice((0, 1)), ceil_mode=ceil_mode),
        lambda: F.avg_pool2d(x, rng.choice((2, 3, 5)), rng.choice((None, 1, 3)), ceil_mode=ceil_mode),
    ))


def _pool3d(rng: random.Random) -> Callable[[], Any]:
    x = _tensor(rng, [rng.choice((0, 1, 2))] * (rng.random() < 0.8) + [rng.choice((1, 3)), rng.choice((0, 1, 4, 9)),
                      rng.choice((1, 5, 7)), rng.choice((1, 3, 6))])
    kernel = rng.choice(([2, 2, 2], [3, 1, 1], [5, 1, 1], [3], [1, 2], [0, 1, 1]))
    stride = rng.choice(([], [1, 1, 1], [2], [1, 2, 1], [0, 1, 1]))
    padding = rng.choice(([0, 0, 0], [1], [1, 0, 0], [2, 2, 2], [0]))
    y = _tensor(rng, [rng.choice((0, 1, 2))] * (rng.random() < 0.8) + [rng.choice((1, 3)), rng.choice((0, 1, 6, 13)),
                      rng.choice((1, 6, 7))])
    return rng.choice((
        lambda: aten.avg_pool3d.default(x, kernel, stride, padding, rng.random() < 0.4, rng.random() < 0.5,
                                        rng.choice((None, None, 3, 0))),
        lambda: F.local_response_norm(x, rng.choice((2, 5))),
        lambda: aten._adaptive_avg_pool2d.default(y, rng.choice(([1, 1], [6, 6], [2, 3], [0, 1], [1], [-1, 2]))),
        lambda: F.adaptive_avg_pool2d(y, rng.choice((1, 3, (2, 5)))),
    ))


def _cat(rng: random.Random) -> Callable[[], Any]:
    rank = rng.randint(1, 5)
    shape = _shape(rng, rank)
    dim = rng.randint(-rank, rank - 1) if rng.random() < 0.95 else rank
    dtype = rng.choice(DTYPES)
    parts = []
    for _ in range(rng.randint(1, 4)):
        part = list(shape)
        part[dim % rank] = rng.choice(SIZES)
        if rng.random() < 0.05:
            part = _shape(rng, rng.choice((1, rank)))
        parts.append(_tensor(rng, part, dtype if rng.random() < 0.95 else None))
    return lambda: torch.cat(parts, dim)


def _empty(rng: random.Random) -> Callable[[], Any]:
    size = _shape(rng, rng.randint(0, 5))
    dtype = rng.choice((None, torch.float16, torch.int64, torch.bool, torch.float32))
    memory_format = rng.choice((None, torch.contiguous_format, torch.channels_last, torch.preserve_format))
    device = "meta" if rng.random() < 0.9 else "cpu"
    like = _tensor(rng, size)
    return rng.choice((
        lambda: aten.empty.memory_format(size, dtype=dtype, device=device, memory_format=memory_format),
        lambda: aten.empty_like.default(like, dtype=dtype, device=device, memory_format=memory_format),
    ))


# Batch norm's statistics of one value per channel are degenerate; torch warns, and that is expected here.
pytestmark = pytest.mark.filterwarnings(r"ignore:var_mean\(\).*degrees of freedom:UserWarning")

FAMILIES: dict[str, tuple[Callable[[random.Random], Callable[[], Any]], tuple[Any, ...]]] = {
    "convolution": (_conv, (aten.convolution.default,)),
    "conv2d": (_conv_functional, (aten.convolution.default,)),
    "matrices": (_matrices, (aten.mm.default, aten.addmm.default, aten.bmm.default)),
    "batch_norm": (_batch_norm, (aten.native_batch_norm.default,)),
    "unary": (_unary, (aten.relu.default, aten.pow.Tensor_Scalar, aten.clamp.default, aten.gelu.default)),
    "binary": (_binary, (aten.add.Tensor, aten.mul.Tensor, aten.sub.Tensor, aten.div.Tensor)),
    "reduction": (_reduction, (aten.mean.dim, aten.sum.dim_IntList, aten.mean.default)),
    "pool": (_pool, (aten.max_pool2d_with_indices.default, aten.avg_pool2d.default)),
    "pool3d": (_pool3d, (aten.avg_pool3d.default, aten._adaptive_avg_pool2d.default)),
    "cat": (_cat, (aten.cat.default,)),
    "empty": (_empty, (aten.empty.memory_format, aten.empty_like.default)),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_rules_agree_with_the_meta_kernels(family: str) -> None:
    make, common = FAMILIES[family]
    judge = _run(make, seed=sum(map(ord, family)))
    for op in common:
        # the rule must answer a good share of the calls it sees, not just decline safely
        assert judge.answered[op] >= 0.25 * judge.seen[op] > 0, (op, judge.answered[op], judge.seen[op])


@pytest.mark.skipif(not MANY, reason="set COSTLENS_SLOW_TESTS=1 for 20,000 more cases per family")
@pytest.mark.parametrize("family", FAMILIES)
def test_rules_agree_on_many_more_cases(family: str) -> None:
    for seed in range(1, 11):
        _run(FAMILIES[family][0], seed=seed * 7919 + len(family), cases=2000)


def test_every_rule_reads_its_arguments_by_schema_name() -> None:
    for op, rule in shapes.RULES.items():
        parameters = list(inspect.signature(rule).parameters.values())
        arguments = op._schema.arguments
        assert [p.name for p in parameters] == [a.name for a in arguments], op
        for parameter, argument in zip(parameters, arguments):
            keyword_only = parameter.kind is inspect.Parameter.KEYWORD_ONLY
            assert keyword_only == argument.kwarg_only, (op, argument.name)
            assert (parameter.default is inspect.Parameter.empty) == (not argument.has_default_value()), (
                op, argument.name)


def test_rules_cover_the_ops_of_common_layers() -> None:
    # the ops whose Python meta kernels import torch._dynamo in the zoo's models
    for op in (aten.native_batch_norm.default, aten.add.Tensor, aten.mul.Tensor, aten.sub.Tensor, aten.div.Tensor,
               aten.tanh.default, aten.pow.Tensor_Scalar, aten.addmm.default, aten.cat.default, aten.mean.dim):
        assert shapes.rule_of(op) is not None, op


def test_a_rule_registered_twice_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):
        shapes.rule(aten.relu.default)(shapes.unary)


def test_contiguous_strides_match_torch() -> None:
    for shape in [(), (0,), (2, 0, 3), (1, 64, 1, 1), (2, 3, 4, 5), (7,)]:
        assert shapes.contiguous_strides(shape) == torch.empty(shape, device="meta").stride(), shape
