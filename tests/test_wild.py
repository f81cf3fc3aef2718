"""Models from the wild: `transformers` architectures in tiny configs (random weights, nothing
downloaded), each with eager and SDPA attention where it has both, counted on meta and on cpu.

The independent count is torch's FlopCounterMode run on cpu with eager attention. Its convention
(torch/utils/flop_counter.py): 2 FLOPs per multiply-accumulate of matrix products, convolutions and
fused attention, and nothing for any other op; so costlens's MACs must be its total / 2. It runs
eager attention because on cpu it has no formula for aten._scaled_dot_product_flash_attention_for_cpu
(PyTorch's own hole); the matrix products eager attention runs are the ones SDPA fuses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import costlens
from costlens import Input

transformers = pytest.importorskip("transformers", reason="the wild-model suite needs transformers (the test extra)")

TOKENS = 16  # text inputs: 1 sequence of 16 tokens (decoders of encoder-decoders: 8)
PIXELS = (1, 3, 32, 32)
# Two layers of width 32, four heads of 8 (two key/value heads where the model has grouped queries).
TEXT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, "vocab_size": 100}
VIT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
       "image_size": 32, "patch_size": 8}


@dataclass(frozen=True)
class Architecture:
    """A tiny config of one architecture, what it is fed, and the attention it can run."""

    name: str
    config: Callable[[], Any]
    feeds: str  # "pixels", "text", "seq2seq" (encoder and decoder tokens) or "text+pixels"
    attention: tuple[str | None, ...] = ("eager", "sdpa")  # (None,): the model has no attention


T = transformers
ARCHITECTURES = [
    Architecture("vit", lambda: T.ViTConfig(**VIT), "pixels"),
    Architecture("deit", lambda: T.DeiTConfig(**VIT), "pixels"),
    Architecture("dinov2", lambda: T.Dinov2Config(**VIT), "pixels"),
    Architecture("swin", lambda: T.SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 4],
                                              window_size=4), "pixels"),
    Architecture("segformer", lambda: T.SegformerConfig(
        num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16], num_attention_heads=[1, 2],
        patch_sizes=[7, 3], strides=[4, 2], mlp_ratios=[2, 2]), "pixels"),
    Architecture("convnext", lambda: T.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2), "pixels", (None,)),
    Architecture("resnet", lambda: T.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]), "pixels", (None,)),
    Architecture("regnet", lambda: T.RegNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], groups_width=8),
                 "pixels", (None,)),
    Architecture("mobilenetv2", lambda: T.MobileNetV2Config(depth_multiplier=0.25, image_size=32), "pixels", (None,)),
    # hidden_dim: the top conv's width, 1280 scaled by the width coefficient
    Architecture("efficientnet", lambda: T.EfficientNetConfig(width_coefficient=0.1, depth_coefficient=0.1, image_size=32,
                                                              hidden_dim=128), "pixels", (None,)),
    Architecture("bert", lambda: T.BertConfig(**TEXT), "text"),
    Architecture("roberta", lambda: T.RobertaConfig(**TEXT), "text"),
    Architecture("distilbert", lambda: T.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=64, vocab_size=100), "text"),
    Architecture("gpt2", lambda: T.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=100, n_positions=64,
                                              bos_token_id=0, eos_token_id=0), "text"),
    Architecture("llama", lambda: T.LlamaConfig(**TEXT, num_key_value_heads=2), "text"),
    Architecture("mistral", lambda: T.MistralConfig(**TEXT, num_key_value_heads=2), "text"),
    Architecture("qwen2", lambda: T.Qwen2Config(**TEXT, num_key_value_heads=2), "text"),
    Architecture("t5", lambda: T.T5Config(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, vocab_size=100), "seq2seq"),
    Architecture("bart", lambda: T.BartConfig(
        d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=100, max_position_embeddings=64), "seq2seq"),
    Architecture("clip", lambda: T.CLIPConfig(
        text_config={**TEXT, "num_hidden_layers": 1, "max_position_embeddings": 32, "bos_token_id": 0, "eos_token_id": 1},
        vision_config={**VIT, "num_hidden_layers": 1}, projection_dim=16), "text+pixels"),
]
BY_NAME = {a.name: a for a in ARCHITECTURES}


@dataclass(frozen=True)
class Case:
    architecture: str
    attention: str | None
    mask: bool  # an attention mask (all ones) beside the token ids

    @property
    def id(self) -> str:
        return "-".join(p for p in (self.architecture, self.attention, "mask" if self.mask else None) if p)


CASES = [Case(a.name, attention, mask) for a in ARCHITECTURES for attention in a.attention
         for mask in ((False, True) if a.feeds != "pixels" else (False,))]

def _on(*devices: str) -> list[Any]:
    """Every case on each device."""
    return [pytest.param(c, d, id=f"{c.id}-{d}") for c in CASES for d in devices]


@functools.cache
def model_of(architecture: str, attention: str | None) -> nn.Module:
    """The architecture's tiny model with random weights, in eval mode, built once."""
    torch.manual_seed(0)
    options = {"attn_implementation": attention} if attention else {}
    return T.AutoModel.from_config(BY_NAME[architecture].config(), **options).eval()


def inputs_of(case: Case) -> dict[str, Any]:
    """What ``costlens.profile`` is fed: token ids (zeros), pixels, a mask of ones as a real tensor."""
    feeds = BY_NAME[case.architecture].feeds
    if feeds == "pixels":
        return {"pixel_values": PIXELS}
    inputs: dict[str, Any] = {"input_ids": Input((1, TOKENS), "int64")}
    if case.mask:
        inputs["attention_mask"] = torch.ones(1, TOKENS, dtype=torch.int64)
    if feeds == "seq2seq":
        inputs["decoder_input_ids"] = Input((1, 8), "int64")
    if feeds == "text+pixels":
        inputs["pixel_values"] = PIXELS
    return inputs


def _real(value: Any) -> torch.Tensor:
    """The tensor costlens makes on cpu for an input: integers are zeros, floats random."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, Input):
        return torch.zeros(value.shape, dtype=getattr(torch, str(value.dtype)))
    return torch.randn(value)


@functools.cache
def flop_counter_macs(architecture: str, mask: bool) -> int:
    """FlopCounterMode's total on cpu with eager attention, halved (its 2 FLOPs per MAC)."""
    eager = "eager" if BY_NAME[architecture].attention != (None,) else None
    inputs = {k: _real(v) for k, v in inputs_of(Case(architecture, eager, mask)).items()}
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model_of(architecture, eager)(**inputs)
    total = counter.get_total_flops()
    assert total % 2 == 0
    return total // 2


@functools.cache
def profile_of(case: Case, device: str) -> costlens.Profile:
    return costlens.profile(model_of(case.architecture, case.attention), inputs_of(case), device=device)


@pytest.mark.parametrize(("case", "device"), _on("meta", "cpu"))
def test_counts_agree_with_flop_counter_and_the_parameters(case: Case, device: str) -> None:
    found = profile_of(case, device)
    model = model_of(case.architecture, case.attention)
    assert found.uncounted == []
    assert found.totals["macs"] == flop_counter_macs(case.architecture, case.mask)
    assert found.totals["params"] == sum(p.numel() for p in model.parameters())  # each shared tensor once


@pytest.mark.parametrize(("case", "device"), _on("meta"))
def test_meta_counts_what_cpu_counts(case: Case, device: str) -> None:
    meta, cpu = profile_of(case, "meta"), profile_of(case, "cpu")
    memory = ("activation_bytes", "bytes", "peak_bytes")
    assert {k: v for k, v in meta.totals.items() if k not in memory} == {
        k: v for k, v in cpu.totals.items() if k not in memory}  # MACs, FLOPs, params, weights, output
    if case.attention == "sdpa":
        return  # SDPA's kernel on cpu never writes the score matrix its decomposition on meta writes
    moved = {k: meta.totals[k] - cpu.totals[k] for k in memory}
    # Mistral's sliding-window key/value cache makes a cpu scalar (the window) and moves it to the
    # model's device, once per layer: on meta a copy, 8 bytes read and 8 written (2 layers: 32 moved,
    # 16 written); on cpu none, the scalar is there already
    copies = {"bytes": 32, "activation_bytes": 16} if case.architecture == "mistral" else {}
    assert moved == {"activation_bytes": 0, "bytes": 0, "peak_bytes": 0, **copies}


def test_the_suite_covers_the_architectures_the_issue_names() -> None:
    vision = {"vit", "deit", "dinov2", "swin", "convnext", "resnet", "regnet", "mobilenetv2", "efficientnet", "segformer"}
    text = {"bert", "roberta", "distilbert", "gpt2", "llama", "mistral", "qwen2"}
    assert vision | text | {"t5", "bart", "clip"} == set(BY_NAME)  # encoder-decoders T5, BART; two towers: CLIP


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_one_llama_attention_layer_by_hand(attention: str, device: str) -> None:
    # width 32, 4 query heads of 8 sharing 2 key/value heads (k and v projections 32 -> 16), 16 tokens
    layer = profile_of(Case("llama", attention, False), device).find("layers.0.self_attn")
    # q_proj 16·32·32 (16,384) + k_proj 16·32·16 (8,192) + v_proj 8,192 + o_proj 16,384
    # + QKᵀ 4·16·16·8 (8,192) + scores·V 4·16·16·8 (8,192)
    assert layer.macs == 65_536
    # projections, no bias: 2·(16,384 + 8,192 + 8,192 + 16,384) = 98,304
    # rotary: q·cos + rotate_half(q)·sin on 4·16·8 = 512 elements: 512 + 256 (negate half) + 512 + 512 = 1,792;
    #         on k's 2·16·8 = 256 elements: 896
    # eager attention: 2·(8,192 + 8,192) = 32,768 + scaling 1,024 + causal mask added 1,024 + softmax 5·1,024 = 5,120
    #   -> 39,936
    # SDPA: 32,768 + q and k scaled by √scale, 4·16·8 each (512 + 512) + causal mask added 1,024 and built
    #   once, 16·16 = 256 + softmax 5,120 -> 40,192
    assert layer.flops == 98_304 + 1_792 + 896 + (39_936 if attention == "eager" else 40_192)


# The MACs of the one convolution that reads the pixels: a training step computes its weight gradient
# but no gradient for the image, so its backward is one product where every other layer's is two.
FIRST_CONV = {
    "vit": 98_304, "deit": 98_304, "dinov2": 98_304, "clip": 98_304,  # 4·4 patches · 32 channels × 8·8·3
    "swin": 49_152,  # 8·8 patches · 16 channels × 4·4·3
    "segformer": 75_264,  # 8·8 · 8 channels × 7·7·3 (stride 4)
    "convnext": 24_576,  # 8·8 · 8 channels × 4·4·3 (stride 4)
    "resnet": 301_056,  # 16·16 · 8 channels × 7·7·3 (stride 2)
    "regnet": 55_296,  # 16·16 · 8 channels × 3·3·3 (stride 2)
}
# Batch norm in training mode refuses their 1x1 maps of one image (torch: "Expected more than 1 value
# per channel when training").
TOO_SMALL_TO_TRAIN = {"mobilenetv2", "efficientnet"}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if not c.mask
                                  and c.architecture not in TOO_SMALL_TO_TRAIN])
def test_a_training_step_counts_every_backward_op(case: Case) -> None:
    step = costlens.profile(model_of(case.architecture, case.attention), inputs_of(case), train=True)
    assert step.uncounted == []
    # every product's backward is two products as large (input and weight gradients; attention's
    # dS·K and dSᵀ·Q for QKᵀ, Pᵀ·dO and dO·Vᵀ for the scores times V) but the first convolution's
    assert step.totals["backward_macs"] == 2 * step.totals["macs"] - FIRST_CONV.get(case.architecture, 0)
