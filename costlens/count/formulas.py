"""The cost of each aten operator, as pure functions of shapes and arguments.

Counting convention (the one place it is stated; reports quote ``CONVENTION``):

* ``macs`` are the multiply-accumulates of convolution, linear and matrix-multiply
  ops only. A bias add is not a MAC. This is what the papers and torchvision's
  documented "GFLOPS" count, so totals are comparable with theirs.
* Attention's two products (QKᵀ and the scores times V) are MACs too, over the full
  Sq×Sk score matrix of every query head, on every backend: a fused kernel
  (flash, memory-efficient, cudnn, cpu) counts what torch's math decomposition of
  the same call counts on meta, so a model counts the same on meta, cpu and cuda, as
  FlopCounterMode and fvcore count it. A causal or sliding-window kernel computes
  only part of the scores (about half for causal); its formula text says so.
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
    "(bias, normalization, activation, pooling, residual add, softmax); attention counts "
    "its full score matrix on every backend (a causal kernel computes about half)."
)


@dataclass(frozen=True)
class OpCost:
    """What one op costs in arithmetic; ``formula`` shows conv/linear/matmul products.

    Checked when made, since a user's handler (``profile(formulas=...)``) makes them too: MACs
    and FLOPs are whole numbers from 0 below ``COST_BOUND`` (what a saved profile may hold,
    ``costlens/validate.py``), the formula text or None; else a ``TypeError``/``ValueError``
    naming the field."""

    macs: int = 0
    flops: int = 0
    formula: str | None = None

    def __post_init__(self) -> None:
        for name in ("macs", "flops"):
            value = getattr(self, name)
            if type(value) is not int:  # the usual case in one test; bool, float, numpy and SymInt below
                object.__setattr__(self, name, _whole(name, value))
            elif not 0 <= value < COST_BOUND:
                raise ValueError(f"OpCost.{name}: expected a whole number from 0 below 10**30, got {value!r}")
        if self.formula is not None and not isinstance(self.formula, str):
            raise TypeError(f"OpCost.formula: expected text or None, got {type(self.formula).__name__} {self.formula!r}")


COST_BOUND = 10**30


def _whole(name: str, value: object) -> int:
    """A count of another type as an int: an integer-like one (numpy's, torch's SymInt) is taken;
    a bool, a float (even 2.0: a count is not rounded) or anything else is refused."""
    import operator

    if isinstance(value, (bool, float)):
        raise ValueError(f"OpCost.{name}: expected a whole number from 0 below 10**30, got {value!r}")
    try:
        whole = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"OpCost.{name}: expected a whole number, got {type(value).__name__} {value!r}") from None
    if not 0 <= whole < COST_BOUND:
        raise ValueError(f"OpCost.{name}: expected a whole number from 0 below 10**30, got {value!r}")
    return whole


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
    return "·".join(map(str, factors))


def _product(left: Sequence[int], right: Sequence[int], macs: int) -> str:
    return f"{_dots(left)} × {_dots(right)} = {macs:,}"


# The schema arguments of each op by call form: (packet, number of positional arguments,
# keyword names) -> the arguments of the overload such a call fits.
_SCHEMAS: dict[tuple[OpOverloadPacket, int, tuple[str, ...]], list[Any]] = {}


def named_arguments(op: OpOverloadPacket, args: tuple, kwargs: dict) -> dict[str, Any]:
    """A call's arguments by their schema names, defaults filled in.

    The schema is that of the first overload of ``op`` the call fits (``default`` first):
    ``_scaled_dot_product_flash_attention.quantized`` takes three tensors more before
    ``dropout_p`` than its default overload, so positions alone would mislead."""
    key = (op, len(args), tuple(kwargs))
    schema = _SCHEMAS.get(key)
    if schema is None:
        schema = _SCHEMAS[key] = _fitting_schema(op, len(args), set(kwargs))
    named = {a.name: a.default_value for a in schema if a.has_default_value()}
    positional = [a for a in schema if not a.kwarg_only]
    named.update((a.name, value) for a, value in zip(positional, args))
    named.update(kwargs)
    return named


def _fitting_schema(op: OpOverloadPacket, count: int, names: set[str]) -> list[Any]:
    overloads = sorted(op.overloads(), key=lambda name: name != "default")
    for overload in overloads:
        arguments = list(getattr(op, overload)._schema.arguments)
        positional = [a for a in arguments if not a.kwarg_only]
        given = {a.name for a in positional[:count]} | names
        if count <= len(positional) and names <= {a.name for a in arguments} and all(
                a.name in given or a.has_default_value() for a in arguments):
            return arguments
    raise TypeError(f"a call of aten.{op.__name__} with {count} positional arguments and keywords "
                    f"{sorted(names)} fits none of its schemas")


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


# --- attention: two products over the score matrix ----------------------------------


@dataclass(frozen=True)
class Attention:
    """The sizes one attention call costs by. Every query head is counted: a key/value head that
    several query heads share (grouped-query attention) counts once per query head, as the math
    decomposition expands it before its products."""

    scores: int  # B·H·Sq·Sk: one per query and key, in every query head
    query_rows: int  # B·H·Sq
    key_rows: int  # B·H·Sk, key/value heads expanded to the query heads
    qk_dim: int  # E: the width of a query and a key
    v_dim: int  # Ev: the width of a value
    mask_cells: int  # Sq·Sk of one head: a causal mask is built once per call
    query_heads: int
    kv_heads: int
    factors: str  # the scores as a product, for the formula text
    packed: bool = False  # sequences of several lengths packed along one axis

    @property
    def notes(self) -> list[str]:
        """What a reader of the formula text needs besides the product."""
        notes = []
        if self.kv_heads != self.query_heads:
            notes.append(f"{self.query_heads} query heads share {self.kv_heads} key/value heads")
        if self.packed:
            notes.append("packed sequences: each query counted against the longest key sequence, an upper bound")
        return notes


def _attention(scores: list[int], query_rows: int, key_rows: int, qk_dim: int, v_dim: int, mask_cells: int,
               heads: tuple[int, int], packed: bool = False) -> Attention:
    factors = _dots([f for f in scores[:-2] if f != 1] + scores[-2:])
    return Attention(_numel(scores), query_rows, key_rows, qk_dim, v_dim, mask_cells, *heads, factors, packed)


def attention_sizes(named: dict[str, Any], *, heads_first: bool) -> Attention:
    """The sizes of an attention op's call from its named arguments (``query``, ``key``, ``value``).

    ``heads_first``: (..., H, S, E) tensors, as ``F.scaled_dot_product_attention`` and its fused
    ops take them; else (B, S, H, E), as ``_flash_attention_forward`` and ``_efficient_attention_forward``
    do. With cumulative sequence offsets (``cum_seq_q``, ``cu_seqlens_q``) the sequences are packed
    along S ((T, H, E), or (1, T, H, E)): their lengths are values, so each query is counted against
    the longest key sequence (``max_k``, ``max_seqlen_k``)."""
    q, k, v = named["query"], named["key"], named["value"]
    if named.get("cum_seq_q", named.get("cu_seqlens_q")) is not None:
        return _packed_sizes(q, k, v, named.get("max_k", named.get("max_seqlen_k")))
    if heads_first:
        batch_heads, sq, sk = _numel(q.shape[:-2]), q.shape[-2], k.shape[-2]
        heads = (q.shape[-3], k.shape[-3]) if q.dim() > 2 else (1, 1)
        return _attention([*q.shape[:-2], sq, sk], batch_heads * sq, batch_heads * sk, q.shape[-1], v.shape[-1],
                          sq * sk, heads)
    batch, sq, heads_q, width = q.shape
    sk = k.shape[1]
    return _attention([batch, heads_q, sq, sk], batch * heads_q * sq, batch * heads_q * sk, width, v.shape[-1],
                      sq * sk, (heads_q, k.shape[2]))


def _packed_sizes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, longest_key: int | None) -> Attention:
    tokens_q, heads_q, width = q.shape[-3:]
    tokens_k, heads_kv = k.shape[-3], k.shape[-2]
    keys = int(longest_key) if longest_key is not None else tokens_k
    return _attention([heads_q, tokens_q, keys], heads_q * tokens_q, heads_q * tokens_k, width, v.shape[-1],
                      tokens_q * keys, (heads_q, heads_kv), packed=True)


def attention_cost(sizes: Attention, *, masked: bool, causal: bool, dropout: bool, window: bool = False) -> OpCost:
    """Forward attention, counted as torch's math decomposition of the same call counts on meta.

    MACs: QKᵀ, E per score, and the scores times V, Ev per score. FLOPs: 2 per MAC; q and k
    each scaled by √scale, 1 per element of every query and (expanded) key row; an additive
    mask, 1 per score (a causal one built first with one select per cell of one head's Sq×Sk);
    softmax, 5 per score (max, subtract, exp, sum, divide); dropout, 3 per score (draw, scale,
    multiply). Every score is counted, also where a causal or sliding-window kernel skips some."""
    macs = sizes.scores * (sizes.qk_dim + sizes.v_dim)
    flops = 2 * macs + (sizes.query_rows + sizes.key_rows) * sizes.qk_dim + 5 * sizes.scores
    flops += sizes.scores if masked or causal else 0
    flops += sizes.mask_cells if causal else 0
    flops += 3 * sizes.scores if dropout else 0
    notes = sizes.notes
    if causal:
        notes.append("causal: every score counted, the kernel computes about half")
    if window:
        notes.append("sliding window: every score counted, the kernel computes only the window")
    text = f"attention {sizes.factors} × ({sizes.qk_dim}+{sizes.v_dim}) = {macs:,}"
    return OpCost(macs, flops, f"{text} ({'; '.join(notes)})" if notes else text)


def _attention_rule(op: OpOverloadPacket, mask: str | None, heads_first: bool) -> Handler:
    """Rule factory for a fused attention op whose additive mask argument is named ``mask``."""

    def handler(args: tuple, kwargs: dict, out: Any) -> OpCost:
        named = named_arguments(op, args, kwargs)
        causal = bool(named.get("is_causal")) or named.get("custom_mask_type") in (1, 2)
        masked = (mask is not None and named.get(mask) is not None) or named.get("alibi_slopes") is not None
        window = any(named.get(n) is not None for n in ("window_size", "window_size_left", "window_size_right"))
        return attention_cost(attention_sizes(named, heads_first=heads_first), masked=masked, causal=causal,
                              dropout=float(named.get("dropout_p") or 0.0) > 0, window=window)

    return handler


@dataclass(frozen=True)
class AttentionKernel:
    """A fused attention op: its backward's name, its additive mask's argument, its layout."""

    forward: str
    backward: str | None
    mask: str | None
    heads_first: bool  # (..., H, S, E), else (B, S, H, E)


# Every kernel F.scaled_dot_product_attention (and torch's fused layers) may dispatch to; those this
# torch lacks are left out. (scaled_dot_product_attention itself and _scaled_dot_product_attention_math
# decompose before a dispatch mode sees them: their products are counted one by one.) The backward
# rules are in costlens/count/training.py.
ATTENTION_KERNELS = (
    AttentionKernel("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention_for_cpu_backward",
                    "attn_mask", True),
    AttentionKernel("_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_backward", None, True),
    AttentionKernel("_scaled_dot_product_efficient_attention", "_scaled_dot_product_efficient_attention_backward",
                    "attn_bias", True),
    AttentionKernel("_scaled_dot_product_cudnn_attention", "_scaled_dot_product_cudnn_attention_backward",
                    "attn_bias", True),
    AttentionKernel("_scaled_dot_product_fused_attention_overrideable",
                    "_scaled_dot_product_fused_attention_overrideable_backward", "attn_bias", True),
    AttentionKernel("_scaled_dot_product_attention_math_for_mps", None, "attn_mask", True),
    AttentionKernel("_cudnn_attention_forward", "_cudnn_attention_backward", "attn_bias", True),
    AttentionKernel("_flash_attention_forward", "_flash_attention_backward", None, False),
    AttentionKernel("_efficient_attention_forward", "_efficient_attention_backward", "bias", False),
)
for _kernel in ATTENTION_KERNELS:
    if hasattr(aten, _kernel.forward):
        _op = getattr(aten, _kernel.forward)
        formula(_op)(_attention_rule(_op, _kernel.mask, _kernel.heads_first))


def _multi_head(query: torch.Tensor, key: torch.Tensor, heads: int, *, masked: bool, weights: bool,
                average: bool) -> OpCost:
    """nn.MultiheadAttention's fused inference path (batch first), counted as its Python path counts
    the same call on meta: the q, k, v and output projections (E·E MACs per row and one bias add
    per output element), then attention as ``attention_cost``; or, where the weights are returned,
    q alone scaled (1 per element), the mask added while QKᵀ is computed (1 per score), softmax
    (5 per score) and the weights averaged over the heads (1 per score)."""
    width = query.shape[-1]
    batch, sq, sk = _numel(query.shape[:-2]), query.shape[-2], key.shape[-2]
    sizes = _attention([batch, heads, sq, sk], batch * heads * sq, batch * heads * sk, width // heads,
                       width // heads, sq * sk, (heads, heads))
    rows = 2 * batch * sq + 2 * batch * sk  # q and output from the queries, k and v from the keys
    projections = rows * width * width
    if weights:
        products = sizes.scores * (sizes.qk_dim + sizes.v_dim)
        attention = OpCost(products, 2 * products + sizes.query_rows * sizes.qk_dim
                           + (5 + int(masked) + int(average)) * sizes.scores)
    else:
        attention = attention_cost(sizes, masked=masked, causal=False, dropout=False)
    text = f"projections {rows} rows × {width}·{width} = {projections:,}; {attention.formula or 'attention'}"
    return OpCost(projections + attention.macs, 2 * projections + rows * width + attention.flops, text)


@formula(aten._native_multi_head_attention)
def native_multi_head_attention(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """nn.MultiheadAttention in eval mode without gradients (its fast path on cpu and cuda)."""
    named = named_arguments(aten._native_multi_head_attention, args, kwargs)
    return _multi_head(named["query"], named["key"], named["num_head"], masked=named.get("mask") is not None,
                       weights=bool(named["need_weights"]), average=bool(named["average_attn_weights"]))


@formula(aten._transformer_encoder_layer_fwd)
def transformer_encoder_layer(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """nn.TransformerEncoderLayer's fast path, counted as its Python path counts it on meta:
    self-attention without weights (above); two residual adds (1 per element) and two layer norms
    (4 per element); the feed-forward's two linear layers (E·F MACs per row each, one bias add per
    output element) and the activation between them (1 per element)."""
    named = named_arguments(aten._transformer_encoder_layer_fwd, args, kwargs)
    src = named["src"]
    rows, width, hidden = _numel(src.shape[:-1]), src.shape[-1], named["ffn_weight_1"].shape[0]
    attention = _multi_head(src, src, named["num_heads"], masked=named.get("mask") is not None, weights=False,
                            average=False)
    feed_forward = 2 * rows * width * hidden
    flops = 2 * feed_forward + 2 * rows * hidden + rows * width + 2 * rows * width + 2 * 4 * rows * width
    text = f"{attention.formula}; feed-forward {rows} × 2·{width}·{hidden} = {feed_forward:,}"
    return OpCost(attention.macs + feed_forward, attention.flops + flops, text)


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
    # rotary position embeddings' sin and cos, as exp: one per element
    "sin", "sin_", "cos", "cos_",
])
# Binary arithmetic (residual add, scaling, ...): one flop per output element.
_register_family(per_output_element(1), [
    "add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "maximum",
    "minimum", "where", "eq", "ne", "lt", "le", "gt", "ge", "square",
    # logic on masks, as a comparison: one per output element
    "bitwise_and", "bitwise_and_", "bitwise_or", "bitwise_or_", "bitwise_xor", "bitwise_not",
    "logical_and", "logical_or", "logical_xor", "logical_not",
])
# Fused multiply-adds of two products: two flops per output element.
_register_family(per_output_element(2), ["addcmul", "addcmul_", "addcdiv", "addcdiv_", "lerp"])
# Dropout in training mode: one multiply by the scaled mask per element.
_register_family(per_output_element(1), ["native_dropout", "bernoulli_"])
# Reductions: one flop (add or comparison) per input element.
_register_family(per_input_element(1), [
    "sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "prod", "norm",
    "linalg_vector_norm", "all", "any",
])
# Running sum (position ids from a mask): one add per element.
_register_family(per_output_element(1), ["cumsum", "cumsum_"])
# Variance/std: subtract the mean and square, per input element.
_register_family(per_input_element(3), ["var", "std", "var_mean", "std_mean"])
# Softmax: max, subtract, exp, sum, divide: five per element. _safe_softmax (attention's, which
# gives 0 where a whole row is masked) and _masked_softmax (the fused layers') alike.
_register_family(per_output_element(5), [
    "_softmax", "_log_softmax", "softmax", "log_softmax", "_safe_softmax", "_masked_softmax",
])
# Normalization at inference: statistics are constants, so x·scale + shift: 2 per element.
_register_family(per_output_element(2), ["_native_batch_norm_legit_no_training"])
# Normalization that computes its statistics (sum, sum of squares) then scales and
# shifts: 4 per element.
_register_family(per_output_element(4), [
    "_native_batch_norm_legit", "native_layer_norm", "native_group_norm",
])


def _index_put_rule(op: OpOverloadPacket) -> Handler:
    """Values written at indices: no arithmetic, unless ``accumulate`` adds each value to what is
    there (an index's backward): one add per value."""

    def handler(args: tuple, kwargs: dict, out: Any) -> OpCost:
        named = named_arguments(op, args, kwargs)
        return OpCost(0, named["values"].numel() if named.get("accumulate") else 0)

    return handler


for _name in ("index_put", "index_put_", "_index_put_impl_"):
    formula(getattr(aten, _name))(_index_put_rule(getattr(aten, _name)))


@formula(aten._fused_rms_norm)
def fused_rms_norm(args: tuple, kwargs: dict, out: Any) -> OpCost:
    """RMS norm as its decomposition (nn.RMSNorm on meta and cpu, LlamaRMSNorm) counts it: per
    element square, mean's add and x·rstd (3), times the weight (1 more); per row eps add and
    rsqrt (2)."""
    named = named_arguments(aten._fused_rms_norm, args, kwargs)
    x, normalized = named["input"], list(named["normalized_shape"])
    rows = x.numel() // _numel(normalized) if _numel(normalized) else 0
    per_element = 4 if named.get("weight") is not None else 3
    return OpCost(0, per_element * x.numel() + 2 * rows)


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
    # a lookup: rows copied, no arithmetic
    "embedding",
    # a triangle kept and the rest set to zero: a select by position, like masked_fill
    "tril", "tril_", "triu", "triu_",
    # a view set in place (Swin's relative positions)
    "as_strided_",
])
