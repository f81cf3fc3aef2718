"""Attention on every backend, and the per-element rules transformer models need, against hand arithmetic.

The convention (costlens/count/formulas.py): a fused attention kernel counts what torch's math
decomposition of the same call counts on meta, full score matrix included, so the kernels that
cpu and cuda dispatch to agree with the meta trace. Shapes below, unless a test says otherwise:
batch B=2, query heads H=4, key/value heads 2 (grouped-query), Sq=5 queries, Sk=6 keys, width E=8.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import costlens
from costlens import Input
from costlens.count.formulas import attention_sizes, named_arguments, rule_for
from costlens.count.training import BACKWARD_RULES
from costlens.records import Profile

aten = torch.ops.aten
B, H, HKV, SQ, SK, E = 2, 4, 2, 5, 6, 8


class Attend(nn.Module):
    """One attention call on q, k, v and an optional additive mask: its own record in a profile."""

    def __init__(self, call: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.call = call

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.call(q, k, v, mask)


class Scaled(nn.Module):
    """q, k and v scaled by a parameter first, so a training step has gradients to compute."""

    def __init__(self, call: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.attend = Attend(call)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.attend(q * self.w, k * self.w, v * self.w, mask)


# What each variant passes: is_causal, dropout_p, whether an additive mask is given, key/value heads.
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {"causal": False, "dropout": 0.0, "masked": False, "kv_heads": H},
    "mask": {"causal": False, "dropout": 0.0, "masked": True, "kv_heads": H},
    "causal": {"causal": True, "dropout": 0.0, "masked": False, "kv_heads": H},
    "gqa-mask": {"causal": False, "dropout": 0.0, "masked": True, "kv_heads": HKV},
    "dropout": {"causal": False, "dropout": 0.1, "masked": False, "kv_heads": H},
}


def _sdpa(v: dict[str, Any]) -> Callable[..., torch.Tensor]:
    def call(q, k, val, mask):  # type: ignore[no-untyped-def]
        return F.scaled_dot_product_attention(q, k, val, attn_mask=mask if v["masked"] else None,
                                              dropout_p=v["dropout"], is_causal=v["causal"],
                                              enable_gqa=v["kv_heads"] != H)
    return call


def _seq_first(t: torch.Tensor) -> torch.Tensor:
    return t.transpose(1, 2)  # (B, H, S, E) -> (B, S, H, E)


# Each kernel called as the dispatcher calls it (positions and keywords as in its schema), on meta; the
# kernels without an additive mask or without grouped-query heads are not given those variants.
def _kernels(v: dict[str, Any]) -> dict[str, Callable[..., torch.Tensor]]:
    p, causal = v["dropout"], v["causal"]

    def m(mask: torch.Tensor) -> torch.Tensor | None:
        return mask if v["masked"] else None

    return {
        "flash_for_cpu": lambda q, k, val, mask: aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, val, p, causal, attn_mask=m(mask))[0],
        "flash": lambda q, k, val, mask: aten._scaled_dot_product_flash_attention(q, k, val, p, causal)[0],
        "efficient": lambda q, k, val, mask: aten._scaled_dot_product_efficient_attention(
            q, k, val, m(mask), False, p, causal)[0],
        "cudnn": lambda q, k, val, mask: aten._scaled_dot_product_cudnn_attention(q, k, val, m(mask), False, p, causal)[0],
        "overrideable": lambda q, k, val, mask: aten._scaled_dot_product_fused_attention_overrideable(
            q, k, val, m(mask), p, causal)[0],
        "math_for_mps": lambda q, k, val, mask: aten._scaled_dot_product_attention_math_for_mps(
            q, k, val, m(mask), p, causal)[0],
        "flash_forward": lambda q, k, val, mask: aten._flash_attention_forward(
            _seq_first(q), _seq_first(k), _seq_first(val), None, None, SQ, SK, p, causal, False)[0],
        "efficient_forward": lambda q, k, val, mask: aten._efficient_attention_forward(
            _seq_first(q), _seq_first(k), _seq_first(val), m(mask), None, None, None, None, p, int(causal))[0],
    }


_NO_MASK = {"flash", "flash_forward"}
_NO_GQA = {"efficient", "cudnn", "overrideable", "math_for_mps", "efficient_forward"}
CASES = [(kernel, variant) for variant, v in VARIANTS.items() for kernel in _kernels(v)
         if not (v["masked"] and kernel in _NO_MASK) and not (v["kv_heads"] != H and kernel in _NO_GQA)]


def _shapes(v: dict[str, Any]) -> tuple[tuple[int, ...], ...]:
    return (B, H, SQ, E), (B, v["kv_heads"], SK, E), (B, v["kv_heads"], SK, E), (B, 1, SQ, SK)


def _attention_record(call: Callable[..., torch.Tensor], v: dict[str, Any], **options: Any) -> Any:
    found: Profile = costlens.profile(Scaled(call), _shapes(v), **options)
    assert found.uncounted == []
    return found.find("attend")


@pytest.mark.parametrize(("kernel", "variant"), CASES)
def test_every_kernel_counts_what_the_math_decomposition_counts_on_meta(kernel: str, variant: str) -> None:
    v = VARIANTS[variant]
    math = _attention_record(_sdpa(v), v)
    fused = _attention_record(_kernels(v)[kernel], v)
    assert "aten.bmm" in math.ops and f"aten.{kernel}" not in math.ops  # meta: torch's decomposition
    assert (fused.macs, fused.flops) == (math.macs, math.flops)


# (the mps math kernel has no derivative; a dropout's mask differs between the two runs' draws only in value)
@pytest.mark.parametrize(("kernel", "variant"), [c for c in CASES if VARIANTS[c[1]]["dropout"] == 0 and c[0] != "math_for_mps"])
def test_every_kernels_backward_counts_what_the_decompositions_backward_counts(kernel: str, variant: str) -> None:
    v = VARIANTS[variant]
    math = _attention_record(_sdpa(v), v, train=True)
    fused = _attention_record(_kernels(v)[kernel], v, train=True)
    assert math.values["backward_macs"] > 0
    assert (fused.values["backward_macs"], fused.values["backward_flops"]) == (
        math.values["backward_macs"], math.values["backward_flops"])


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_sdpa_counts_the_same_on_cpu_as_on_meta(variant: str, dtype: str) -> None:
    v = VARIANTS[variant]
    meta = costlens.profile(Scaled(_sdpa(v)), _shapes(v), dtype=dtype)
    cpu = costlens.profile(Scaled(_sdpa(v)), _shapes(v), device="cpu", dtype=dtype)
    if v["dropout"] == 0:  # with dropout torch takes the math path on cpu too
        assert "aten._scaled_dot_product_flash_attention_for_cpu" in cpu.find("attend").ops
    assert cpu.uncounted == meta.uncounted == []
    assert (cpu.totals["macs"], cpu.totals["flops"]) == (meta.totals["macs"], meta.totals["flops"])


def test_grouped_query_attention_with_a_mask_by_hand() -> None:
    record = _attention_record(_kernels(VARIANTS["gqa-mask"])["flash_for_cpu"], VARIANTS["gqa-mask"])
    # scores: B·H·Sq·Sk = 2·4·5·6 = 240, every query head counted (2 key/value heads shared by 4)
    assert record.macs == 3_840  # QKᵀ 240·8 + scores·V 240·8
    assert record.flops == 9_824  # 2·3,840 + q scaled 2·4·5·8 (320) + k scaled 2·4·6·8 (384) + mask 240 + softmax 5·240
    assert record.formula == "attention 2·4·5·6 × (8+8) = 3,840 (4 query heads share 2 key/value heads)"
    q, k, mask = torch.empty(B, H, SQ, E, device="meta"), torch.empty(B, HKV, SK, E, device="meta"), _x(B, 1, SQ, SK)
    rule = BACKWARD_RULES[aten._scaled_dot_product_flash_attention_for_cpu_backward]
    backward = rule((q, q, k, k, q, _x(B, H, SQ), 0.0, False), {"attn_mask": mask}, None)
    assert backward.macs == 7_680  # dV, dP, dQ, dK: 240·8 each
    # 2·7,680 + softmax's backward 4·240 (960) + dQ and dK scaled (320 + 384) + the shared heads'
    # key and value gradients summed back (384 + 384)
    assert backward.flops == 17_792
    assert backward.formula == "dV 1,920 + dP 1,920 + dQ 1,920 + dK 1,920 = 7,680"


def test_causal_attention_counts_every_score_and_says_the_kernel_computes_about_half() -> None:
    causal = VARIANTS["causal"]
    q, k = torch.empty(B, H, 6, E, device="meta"), torch.empty(B, H, 6, E, device="meta")
    cost = rule_for(aten._scaled_dot_product_flash_attention_for_cpu)((q, k, k, 0.0, True), {}, None)
    # scores 2·4·6·6 = 288; MACs 288·(8+8) = 4,608
    assert cost.macs == 4_608
    # 2·4,608 + q and k scaled (384 + 384) + the causal mask added (288), built once (6·6 = 36) + softmax 5·288
    assert cost.flops == 11_748
    assert cost.formula == ("attention 2·4·6·6 × (8+8) = 4,608 "
                            "(causal: every score counted, the kernel computes about half)")
    assert _attention_record(_sdpa(causal), causal).macs == 2 * 4 * 5 * 6 * 16  # Sq=5, Sk=6: all 240 scores, 3,840


def test_packed_sequences_count_each_query_against_the_longest_key_sequence() -> None:
    # 3 sequences of 37 queries in all, 4 heads sharing 2, the longest key sequence 16
    q, k = torch.empty(37, 4, 8, device="meta"), torch.empty(40, 2, 8, device="meta")
    offsets = torch.empty(4, dtype=torch.int32, device="meta")
    cost = rule_for(aten._flash_attention_forward)((q, k, k, offsets, offsets, 15, 16, 0.0, False, False), {}, None)
    assert cost.macs == 4 * 37 * 16 * 16  # 2,368 scores at most × (8+8) = 37,888
    assert cost.formula is not None and "an upper bound" in cost.formula


def test_arguments_are_read_by_their_schema_names_in_every_overload() -> None:
    q = torch.empty(1, 2, 3, 4, device="meta")
    default = named_arguments(aten._scaled_dot_product_flash_attention, (q, q, q, 0.1, True), {})
    quantized = named_arguments(aten._scaled_dot_product_flash_attention, (q, q, q, None, None, None, 0.1, True), {})
    assert (default["dropout_p"], default["is_causal"], default["scale"]) == (0.1, True, None)
    assert (quantized["dropout_p"], quantized["is_causal"]) == (0.1, True)
    with pytest.raises(TypeError, match="fits none of its schemas"):
        named_arguments(aten._scaled_dot_product_flash_attention, (q,), {"bogus": 1})
    assert attention_sizes(default, heads_first=True).scores == 1 * 2 * 3 * 3  # 18


# --- the per-element rules transformer models need ------------------------------------------------


class Apply(nn.Module):
    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.fn(*xs)


def _root(fn: Callable[..., Any], *inputs: torch.Tensor) -> Any:
    found = costlens.profile(fn if isinstance(fn, nn.Module) else Apply(fn), inputs)
    assert found.uncounted == []
    return found.root


def _x(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


@pytest.mark.parametrize(("name", "fn", "inputs", "flops"), [
    # (2,5,8) = 80 elements, 10 rows of 8 unless said otherwise
    ("layer norm", nn.LayerNorm(8), (_x(2, 5, 8),), 320),  # 4 per element: statistics, then scale and shift
    # square 80 + mean 80 + eps 10 + rsqrt 10 + x·rstd 80 + ·weight 80
    ("nn.RMSNorm", nn.RMSNorm(8), (_x(2, 5, 8),), 340),
    ("gelu tanh", nn.GELU("tanh"), (_x(2, 5, 8),), 80),  # one per element
    ("silu", nn.SiLU(), (_x(2, 5, 8),), 80),
    ("embedding", nn.Embedding(10, 8), (_x(2, 5, dtype=torch.int64),), 0),  # a lookup: no arithmetic
    ("_safe_softmax", lambda x: aten._safe_softmax(x, -1), (_x(4, 10),), 200),  # 5 per element
    ("cumsum", lambda x: x.cumsum(-1), (_x(4, 10),), 40),  # one add per element
    ("sin and cos", lambda x: x.sin() + x.cos(), (_x(4, 10),), 120),  # 40 + 40, the add 40
    ("tril", lambda x: x.tril(), (_x(4, 10),), 0),  # a select by position
    ("all", lambda x: x.all(), (_x(4, 10, dtype=torch.bool),), 40),  # a reduction: one per input element
    ("bitwise and", lambda x: x & x, (_x(4, 10, dtype=torch.bool),), 40),  # one per output element
    ("as_strided_", lambda x: x.as_strided_((10, 4), (1, 10)), (_x(4, 10),), 0),  # a view
])
def test_per_element_rules(name: str, fn: Callable[..., Any], inputs: tuple[torch.Tensor, ...], flops: int) -> None:
    root = _root(fn, *inputs)
    assert (root.macs, root.flops) == (0, flops)


def test_the_fused_rms_norm_counts_what_its_decomposition_counts() -> None:
    x, weight = _x(2, 5, 8), _x(8)
    rule = rule_for(aten._fused_rms_norm)
    assert rule is not None
    assert rule((x, [8], weight, 1e-6), {}, None).flops == 340  # nn.RMSNorm's decomposition, above
    assert rule((x, [8], None, 1e-6), {}, None).flops == 260  # without the weight: 80 fewer


class AfterScale(nn.Module):
    """``fn(x·w)``: a parameter before ``fn`` so that ``fn``'s backward runs and computes an input gradient."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x * self.w)


def _backward_flops(fn: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...]) -> int:
    step = costlens.profile(AfterScale(fn), shape, train=True)
    assert step.uncounted == []
    return int(step.totals["backward_flops"])


@pytest.mark.parametrize(("name", "fn", "flops"), [
    # (4, 10) = 40 elements; each against the same model without the op
    ("gelu", F.gelu, 80),  # the derivative, 1 per element as the forward, times the incoming gradient: 2
    ("gelu tanh", lambda x: F.gelu(x, approximate="tanh"), 80),
    ("silu", F.silu, 80),
    ("tanh", torch.tanh, 80),
    ("sigmoid", torch.sigmoid, 80),
    ("hardtanh", F.hardtanh, 40),  # piecewise linear: a slope picked per element, 1
    ("layer norm", nn.LayerNorm(10), 360),  # as batch norm's with an input gradient: 9 per element
    ("softmax", lambda x: torch.softmax(x, -1), 160),  # y·(g - Σ g·y): 4 per element
    ("a slice", lambda x: x[:, 2:5], 0),  # zeros with the gradient copied in
])
def test_backward_rules(name: str, fn: Callable[[torch.Tensor], torch.Tensor], flops: int) -> None:
    assert _backward_flops(fn, (4, 10)) - _backward_flops(lambda x: x, (4, 10)) == flops


def test_an_embeddings_gradient_adds_each_incoming_row_into_its_tokens_row() -> None:
    step = costlens.profile(nn.Embedding(100, 8), Input((2, 5), "int64"), train=True)
    assert step.uncounted == []
    assert step.totals["backward_flops"] == 80  # 2·5 tokens × 8: one add per element of the incoming gradient
    accumulate = costlens.profile(Apply(lambda x: x.index_put((torch.zeros(3, dtype=torch.int64),), x[:3], True)),
                                  (4, 10))
    assert accumulate.totals["flops"] == 30  # 3 rows of 10 added where the indices say


# --- torch's own fused layers ---------------------------------------------------------------------


class SelfAttention(nn.Module):
    """nn.MultiheadAttention on x (2 sequences of 10 tokens, width 32, 4 heads of 8), masks as inputs."""

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(32, 4, batch_first=True)
        self.options = options

    def forward(self, x: torch.Tensor, *masks: torch.Tensor) -> torch.Tensor:
        given = dict(zip([k for k in ("attn_mask", "key_padding_mask") if self.options.get(k)], masks))
        return self.attention(x, x, x, **{**self.options, **given})[0]


class Encoder(nn.Module):
    def __init__(self, **options: Any) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, **options)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor, *masks: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, src_key_padding_mask=masks[0] if masks else None)


X = (2, 10, 32)
PADDING = torch.zeros(2, 10, dtype=torch.bool)
FUSED_LAYERS = {
    "mha": (SelfAttention(need_weights=False), (X,)),
    "mha with weights": (SelfAttention(), (X,)),
    "mha with each head's weights": (SelfAttention(average_attn_weights=False), (X,)),
    "mha bool mask and weights": (SelfAttention(attn_mask=True), (X, torch.zeros(10, 10, dtype=torch.bool))),
    "mha both masks": (SelfAttention(need_weights=False, attn_mask=True, key_padding_mask=True),
                       (X, torch.zeros(10, 10, dtype=torch.bool), PADDING)),
    # a float mask without weights: torch leaves the fast path for F.scaled_dot_product_attention on cpu
    "mha float mask": (SelfAttention(need_weights=False, attn_mask=True), (X, torch.zeros(10, 10))),
    "encoder": (Encoder(), (X,)),
    "encoder gelu norm first, padding": (Encoder(activation="gelu", norm_first=True), (X, PADDING)),
}


@pytest.mark.parametrize("name", list(FUSED_LAYERS))
def test_torchs_fused_layers_count_on_cpu_what_their_python_path_counts_on_meta(name: str) -> None:
    model, inputs = FUSED_LAYERS[name]
    meta, cpu = costlens.profile(model.eval(), inputs), costlens.profile(model.eval(), inputs, device="cpu")
    fused = {op for layer in cpu.layers for op in layer.ops} & {
        "aten._native_multi_head_attention", "aten._transformer_encoder_layer_fwd",
        "aten._scaled_dot_product_flash_attention_for_cpu"}
    assert fused and not {op for layer in meta.layers for op in layer.ops} & fused  # cpu fused, meta decomposed
    assert meta.uncounted == cpu.uncounted == []
    assert (cpu.totals["macs"], cpu.totals["flops"]) == (meta.totals["macs"], meta.totals["flops"])


def test_multi_head_attention_by_hand() -> None:
    found = costlens.profile(FUSED_LAYERS["mha"][0].eval(), X, device="cpu")
    # q, k, v and output projections: 4 × 2·10 rows × 32·32 = 81,920; attention 2·4·10·10 scores × (8+8) = 12,800
    assert found.totals["macs"] == 94_720
    # 2·81,920 + the projections' biases 80·32 (2,560); attention 2·12,800 + q and k scaled 2·4·10·8 each (640 + 640)
    # + softmax 5·800 (4,000)
    assert found.totals["flops"] == 197_280
