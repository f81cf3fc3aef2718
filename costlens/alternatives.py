"""What the standard alternatives of a model's costliest convolutions would cost, and the model rewritten with them.

The case studies' one lesson, applied to any model: a 5×5 convolution from 28×28×192 to
32 channels costs 120,422,400 MACs; a 1×1 bottleneck to 16 channels before it cuts that to
12,443,648. ``whatif`` finds the convolutions that carry a model's MACs and prices each
alternative in ``ALTERNATIVES`` by building it as a module on meta and tracing it with the
same tracer as the model (``costlens.profile``): counted, never estimated. ``rewrite``
returns a copy of a model with chosen convolutions replaced, the original untouched.

How an alternative is built from the original ``nn.Conv2d`` (every choice keeps the
original's output shape for any input size):

- **stride** goes on the part with the k×k kernel (the k×k of a bottleneck, the depthwise
  k×k); a factorized stack puts it on its first 3×3 (as Inception-v3's stem does), an
  asymmetric pair splits it by axis (the k×1 strides down, the 1×k across);
- **padding** is the original's on the k×k part; a factorized stack gives each later 3×3 a
  padding of 1 and its first 3×3 what is left, so the sizes work out exactly (with a
  stride, only when the original pads at least (k-3)/2: otherwise it is not applicable);
- **bias**: every part has one when the original has one (as GoogLeNet's 1×1 reductions do);
- **channels** between stacked parts (factorized, asymmetric) are the narrower of the input's
  and the output's (5×5 192→32: 3×3 192→32, 3×3 32→32);
- **activation**: none is added between the parts; the alternative stands for the
  convolution alone, and whatever follows it in the model (ReLU, batch norm) stays.

Layers that cannot be rewritten (transposed, 1-D or 3-D, dilated, already grouped, a
subclass of ``nn.Conv2d`` with a forward of its own) and alternatives that do not fit a
layer (channels that do not divide, a 1×1 kernel to factorize) are listed with the reason,
never dropped. Alternatives change what the network can learn; costlens only prices them.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
from torch import nn

from costlens.errors import InputShapeError, ModelError
from costlens.records import LayerCost, Profile
from costlens.units import format_shape

if TYPE_CHECKING:
    import pandas as pd

    from costlens.inputs import Inputs

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
SCHEMA = "costlens.whatif/1"
SHARE = 0.9  # by default, the convolutions that together carry this share of the model's MACs
RATIOS = (2, 4, 8)  # bottleneck(r=R): 1×1 to C_in/R channels
GROUPS = (2, 4, 8, 32)
HONESTY = ("Alternatives change what the network can learn (fewer weights, fewer connections between channels): "
           "costlens prices them; whether one trains as well is for an experiment to say.")
CONVENTIONS = ("Each alternative is built on meta and traced like the model. Stride on the k×k part (a factorized "
               "stack: its first 3×3; an asymmetric pair: k×1 down, 1×k across); padding keeps the output shape; "
               "stacked parts keep the narrower of the input's and output's channels between them; every part has "
               "a bias when the original has one; no activation is added between parts.")


# --- the convolution an alternative starts from ----------------------------------------


@dataclass(frozen=True)
class Conv:
    """The facts of an ``nn.Conv2d`` that its alternatives are built from."""

    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] | str  # 'same' or 'valid' as torch keeps them
    bias: bool
    padding_mode: PaddingMode

    @property
    def text(self) -> str:
        """'5×5 192→32', with '/2' for a stride and 'pad 0' where it is not 'same'-like."""
        return Part(self.in_channels, self.out_channels, self.kernel, self.stride, self.padding).text

    def pads(self) -> tuple[int, int]:
        """The padding as numbers per axis ('same' on an odd kernel: (k-1)/2; 'valid': 0)."""
        if self.padding == "valid":
            return (0, 0)
        if self.padding == "same":
            return (self.kernel[0] - 1) // 2, (self.kernel[1] - 1) // 2
        return self.padding  # type: ignore[return-value]


@dataclass(frozen=True)
class Part:
    """One convolution of an alternative."""

    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] | str = (0, 0)
    groups: int = 1

    @property
    def text(self) -> str:
        """'1×1 192→16', '5×5 192→192 dw', '3×3 64→128 /2', '5×5 192→32 g4'."""
        kernel = f"{self.kernel[0]}×{self.kernel[1]}"
        channels = f"{self.in_channels}→{self.out_channels}"
        if self.groups > 1:
            channels += " dw" if self.groups == self.in_channels == self.out_channels else f" g{self.groups}"
        stride = "" if self.stride == (1, 1) else (
            f" /{self.stride[0]}" if self.stride[0] == self.stride[1] else f" /{self.stride[0]}×{self.stride[1]}")
        return f"{kernel} {channels}{stride}"


def refusal(module: nn.Module) -> str | None:
    """Why no alternative is built for ``module``; None for a plain 2-D convolution."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return "a transposed convolution: the alternatives are of forward convolutions"
    if isinstance(module, (nn.Conv1d, nn.Conv3d)):
        return f"a {'1-D' if isinstance(module, nn.Conv1d) else '3-D'} convolution: the alternatives are 2-D"
    if not isinstance(module, nn.Conv2d):
        return f"a {type(module).__name__}, not a convolution"
    if type(module) is not nn.Conv2d:
        return f"a subclass of Conv2d ({type(module).__name__}) whose forward may differ: not rewritten"
    if tuple(module.dilation) != (1, 1):
        return f"dilated (dilation {_pair_text(module.dilation)}): the alternatives are of plain convolutions"
    if module.groups != 1:
        if module.groups == module.in_channels:
            return f"already depthwise (groups = {module.groups} input channels)"
        return f"already grouped (groups={module.groups})"
    return None


def conv_of(module: nn.Conv2d) -> Conv:
    """The facts of a plain 2-D convolution (``refusal`` found nothing)."""
    padding = module.padding if isinstance(module.padding, str) else _pair(module.padding)
    return Conv(module.in_channels, module.out_channels, _pair(module.kernel_size), _pair(module.stride), padding,
                module.bias is not None, cast(PaddingMode, module.padding_mode))


def _pair(value: Any) -> tuple[int, int]:
    return (int(value[0]), int(value[1]))


def _pair_text(value: Any) -> str:
    return str(value[0]) if value[0] == value[1] else f"{value[0]}×{value[1]}"


# --- the catalogue ------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One alternative as written: ``bottleneck(16)``, ``bottleneck(r=4)``, ``depthwise``, ``grouped(4)``."""

    name: str
    value: int | None = None
    ratio: bool = False  # bottleneck(r=R): ``value`` divides the input channels

    def __str__(self) -> str:
        if self.value is None:
            return self.name
        return f"{self.name}({'r=' if self.ratio else ''}{self.value})"


@dataclass(frozen=True)
class Alternative:
    """An entry of the catalogue: its name, how it is written, what it builds and when it applies."""

    name: str
    usage: str  # how it is written
    argument: str  # "none", "groups" or "width" (channels, or r=R)
    summary: str
    refuse: Callable[[Conv, Spec], str | None]  # why it does not fit a convolution; None when it does
    parts: Callable[[Conv, Spec], list[Part]]  # the convolutions it is made of, in order
    names: Callable[[int], list[str]]  # the parts' module names in the rewritten model


def _width(conv: Conv, spec: Spec) -> int:
    assert spec.value is not None
    return conv.in_channels // spec.value if spec.ratio else spec.value


def _bottleneck_refusal(conv: Conv, spec: Spec) -> str | None:
    assert spec.value is not None
    if spec.ratio and conv.in_channels % spec.value:
        return f"{conv.in_channels} input channels do not divide by r={spec.value}"
    width = _width(conv, spec)
    if width >= conv.in_channels:
        return f"{width} channels are no fewer than the {conv.in_channels} input channels"
    return None


def _bottleneck(conv: Conv, spec: Spec) -> list[Part]:
    width = _width(conv, spec)
    return [Part(conv.in_channels, width, (1, 1)),
            Part(width, conv.out_channels, conv.kernel, conv.stride, conv.padding)]


def _depthwise_refusal(conv: Conv, spec: Spec) -> str | None:
    return "a 1×1 kernel has no spatial part to separate" if conv.kernel == (1, 1) else None


def _depthwise(conv: Conv, spec: Spec) -> list[Part]:
    return [Part(conv.in_channels, conv.in_channels, conv.kernel, conv.stride, conv.padding, groups=conv.in_channels),
            Part(conv.in_channels, conv.out_channels, (1, 1))]


def _grouped_refusal(conv: Conv, spec: Spec) -> str | None:
    groups = spec.value
    assert groups is not None
    if groups < 2:
        return f"grouped({groups}) is the original convolution"
    for channels, side in ((conv.in_channels, "input"), (conv.out_channels, "output")):
        if channels % groups:
            return f"{channels} {side} channels do not divide into {groups} groups"
    return None


def _grouped(conv: Conv, spec: Spec) -> list[Part]:
    assert spec.value is not None
    return [Part(conv.in_channels, conv.out_channels, conv.kernel, conv.stride, conv.padding, groups=spec.value)]


def _widths(conv: Conv, count: int) -> list[int]:
    """The channels between ``count`` stacked parts: the narrower of input and output inside
    (192→32→32 for a narrowing 5×5, 64→64→192 for a widening 3×3), so that no part is wider
    than the original needs."""
    inside = min(conv.in_channels, conv.out_channels)
    return [conv.in_channels, *[inside] * (count - 1), conv.out_channels]


def _stack_paddings(kernel: int, stride: int, padding: int) -> list[int] | None:
    """The paddings of (k-1)/2 stacked 3×3s on one axis that give a k×k's output size for
    every input size, the stride on the first; None when there are none. Later 3×3s take 1
    each while the padding lasts (with a stride they must all: after it, a 3×3 without
    padding takes 2·stride input rows, not 2), the first takes the rest."""
    count = (kernel - 1) // 2
    later = min(padding, count - 1)
    if stride > 1 and later < count - 1:
        return None
    return [padding - later] + [1] * later + [0] * (count - 1 - later)


def _factorized_refusal(conv: Conv, spec: Spec) -> str | None:
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel, conv.stride, conv.pads()
    if kh != kw:
        return f"a {kh}×{kw} kernel is not square: a factorized stack is of 3×3s"
    if kh < 5 or kh % 2 == 0:
        return (f"a {kh}×{kh} kernel is no stack of two or more 3×3s" + (" (asymmetric splits it)" if kh == 3 else ""))
    if _stack_paddings(kh, sh, ph) is None or _stack_paddings(kw, sw, pw) is None:
        return (f"stride {_pair_text(conv.stride)} with padding {_pair_text((ph, pw))}: stacked 3×3s keep the output "
                f"shape only with a padding of at least {(kh - 3) // 2}")
    return None


def _factorized(conv: Conv, spec: Spec) -> list[Part]:
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel, conv.stride, conv.pads()
    rows, columns = _stack_paddings(kh, sh, ph), _stack_paddings(kw, sw, pw)
    assert rows is not None and columns is not None
    widths = _widths(conv, len(rows))
    return [Part(widths[i], widths[i + 1], (3, 3), conv.stride if i == 0 else (1, 1), (rows[i], columns[i]))
            for i in range(len(rows))]


def _asymmetric_refusal(conv: Conv, spec: Spec) -> str | None:
    kh, kw = conv.kernel
    return f"a {kh}×{kw} kernel has no two axes to split" if kh == 1 or kw == 1 else None


def _asymmetric(conv: Conv, spec: Spec) -> list[Part]:
    (kh, kw), (sh, sw) = conv.kernel, conv.stride
    down: tuple[int, int] | str
    across: tuple[int, int] | str
    if isinstance(conv.padding, str):  # torch's 'same' and 'valid' mean the same on each axis alone
        down, across = conv.padding, conv.padding
    else:
        down, across = (conv.padding[0], 0), (0, conv.padding[1])
    widths = _widths(conv, 2)
    return [Part(widths[0], widths[1], (kh, 1), (sh, 1), down), Part(widths[1], widths[2], (1, kw), (1, sw), across)]


ALTERNATIVES: tuple[Alternative, ...] = (
    Alternative("bottleneck", "bottleneck(C) or bottleneck(r=R)", "width",
                "a 1×1 convolution to C channels (or the input's channels / R), then the k×k",
                _bottleneck_refusal, _bottleneck, lambda n: ["reduce", "conv"]),
    Alternative("depthwise", "depthwise", "none",
                "depthwise-separable: a k×k per input channel (groups = channels), then a 1×1 to the output channels",
                _depthwise_refusal, _depthwise, lambda n: ["depthwise", "pointwise"]),
    Alternative("grouped", "grouped(G)", "groups",
                "the k×k in G groups: each output channel sees 1/G of the input channels",
                _grouped_refusal, _grouped, lambda n: []),
    Alternative("factorized", "factorized", "none",
                "a k×k as (k-1)/2 stacked 3×3s with the same receptive field (5×5: two, 7×7: three)",
                _factorized_refusal, _factorized, lambda n: [f"conv{i + 1}" for i in range(n)]),
    Alternative("asymmetric", "asymmetric", "none",
                "a k×k as a k×1 then a 1×k",
                _asymmetric_refusal, _asymmetric, lambda n: ["column", "row"]),
)
_BY_NAME = {alternative.name: alternative for alternative in ALTERNATIVES}
_SPEC = re.compile(r"^\s*(?P<name>[A-Za-z_][\w-]*)\s*(?:\(\s*(?:(?P<key>[A-Za-z_]\w*)\s*=\s*)?(?P<value>[^()]*?)\s*\))?\s*$")
_EXAMPLES = "bottleneck(16), bottleneck(r=4), depthwise, grouped(4), factorized or asymmetric"


def default_specs(reduce: int | None = None) -> list[Spec]:
    """Every alternative a layer is priced with: bottlenecks (to ``reduce`` channels, else to
    C_in/2, /4, /8), depthwise, grouped (2, 4, 8, 32), factorized, asymmetric."""
    widths = [Spec("bottleneck", reduce)] if reduce is not None else [Spec("bottleneck", r, True) for r in RATIOS]
    return [*widths, Spec("depthwise"), *(Spec("grouped", g) for g in GROUPS), Spec("factorized"), Spec("asymmetric")]


def parse_spec(text: str, argument: str = "alternative") -> Spec:
    """``'bottleneck(16)'`` -> Spec('bottleneck', 16); malformed text or an unknown name is one
    ``InputShapeError`` naming the problem."""
    found = _SPEC.match(str(text))
    if found is None:
        raise InputShapeError(f"{argument}: {str(text)!r} is not an alternative: write {_EXAMPLES}")
    name, key, value = found["name"].lower(), found["key"], found["value"]
    entry = _BY_NAME.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(_BY_NAME), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise InputShapeError(f"{argument}: no alternative named {name!r}: {hint}the alternatives are {_EXAMPLES}")
    if entry.argument == "none":
        if value is not None:
            raise InputShapeError(f"{argument}: {name} takes no argument: write {name}")
        return Spec(name)
    if value is None or value == "":
        raise InputShapeError(f"{argument}: {name} needs its argument: write {entry.usage}")
    if key is not None and not (entry.argument == "width" and key == "r"):
        raise InputShapeError(f"{argument}: {name} has no argument {key!r}: write {entry.usage}")
    if not value.isdigit() or int(value) < 1:
        raise InputShapeError(f"{argument}: {text.strip()!r}: the argument must be a whole number of at least 1 "
                              f"(write {entry.usage})")
    return Spec(name, int(value), ratio=key == "r")


def parse_applied(texts: Sequence[str], argument: str = "--apply") -> dict[str, Spec]:
    """``['inception3a.branch3.conv.conv=bottleneck(8)']`` -> {path: Spec}; a text that is
    not PATH=SPEC, a bad alternative or a path given twice is one ``InputShapeError``."""
    applied: dict[str, Spec] = {}
    for text in texts:
        path, equals, spec = str(text).partition("=")
        if not equals or not path.strip() or not spec.strip():
            raise InputShapeError(f"{argument}: {str(text)!r} is not PATH=ALTERNATIVE "
                                  "(e.g. inception3a.branch3.conv.conv=bottleneck(8))")
        path = path.strip()
        if path in applied:
            raise InputShapeError(f"{argument}: {path} is rewritten twice: give one alternative per layer")
        applied[path] = parse_spec(spec, f"{argument} {path}")
    return applied


def misfit(conv: Conv, spec: Spec) -> str | None:
    """Why ``spec`` cannot replace ``conv``; None when it can."""
    return _BY_NAME[spec.name].refuse(conv, spec)


def parts_of(conv: Conv, spec: Spec) -> list[Part]:
    """The convolutions ``spec`` replaces ``conv`` with (``misfit`` found nothing)."""
    return _BY_NAME[spec.name].parts(conv, spec)


def build(conv: Conv, spec: Spec) -> nn.Module:
    """The alternative as a module, on the current default device: one ``nn.Conv2d`` for a
    grouped convolution, else an ``nn.Sequential`` of named parts."""
    parts = parts_of(conv, spec)
    layers = [nn.Conv2d(p.in_channels, p.out_channels, p.kernel, stride=p.stride, padding=p.padding, groups=p.groups,
                        bias=conv.bias, padding_mode=conv.padding_mode) for p in parts]
    names = _BY_NAME[spec.name].names(len(parts))
    if not names:
        return layers[0]
    return nn.Sequential(OrderedDict(zip(names, layers)))


# --- pricing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Priced:
    """One alternative of one layer: its parts and their traced cost, or why it does not fit."""

    spec: str
    parts: str  # '1×1 192→16 · 5×5 16→32'
    params: int | None
    macs: int | None
    params_saved: int | None = None
    macs_saved: int | None = None  # the original layer's MACs less the alternative's (negative: it costs more)
    saved_of_layer: float | None = None  # macs_saved / the layer's MACs
    saved_of_model: float | None = None  # macs_saved / the whole model's MACs
    reason: str | None = None


@dataclass(frozen=True)
class LayerWhatIf:
    """A convolution of the model, its traced cost, and each alternative priced."""

    path: str
    type: str
    conv: str  # '5×5 192→32', '' when it is not a plain 2-D convolution
    calls: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    macs: int
    share_of_model: float
    alternatives: tuple[Priced, ...]
    reason: str | None = None  # why no alternative is built for it


@dataclass(frozen=True)
class WhatIf:
    """The alternatives of a model's chosen convolutions, each counted by the tracer."""

    model: str
    input_shape: tuple[int, ...]  # the first input's
    input_text: str
    dtype: str
    model_params: int
    model_macs: int
    chosen: str  # how the layers were chosen, in words
    convolutions: int  # how many convolutions ran in the model
    layers: tuple[LayerWhatIf, ...]
    note: str = HONESTY
    conventions: str = CONVENTIONS

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON data (schema ``costlens.whatif/1``)."""
        return {
            "schema": SCHEMA, "model": self.model, "input_shape": list(self.input_shape), "input": self.input_text,
            "dtype": self.dtype,
            "totals": {"params": self.model_params, "macs": self.model_macs}, "chosen": self.chosen,
            "convolutions": self.convolutions, "note": self.note, "conventions": self.conventions,
            "layers": [{
                "path": layer.path, "type": layer.type, "conv": layer.conv, "calls": layer.calls,
                "input_shape": list(layer.input_shape), "output_shape": list(layer.output_shape),
                "params": layer.params, "macs": layer.macs, "share_of_model": layer.share_of_model,
                "reason": layer.reason, "alternatives": [vars(priced).copy() for priced in layer.alternatives],
            } for layer in self.layers],
        }

    def to_json(self) -> str:
        """The result as JSON text."""
        return json.dumps(self.to_dict(), indent=1)

    def to_frame(self) -> pd.DataFrame:
        """One row per layer and alternative (a layer that cannot be rewritten: one row with its
        reason), with the layer's own params and MACs beside each."""
        import pandas as pd

        rows = []
        for layer in self.layers:
            base = {"layer": layer.path, "type": layer.type, "conv": layer.conv, "layer_params": layer.params,
                    "layer_macs": layer.macs, "layer_share_of_model": layer.share_of_model}
            for priced in layer.alternatives or (Priced("", "", None, None, reason=layer.reason),):
                rows.append({**base, "alternative": priced.spec or None, **{
                    key: value for key, value in vars(priced).items() if key != "spec"}})
        columns = ["layer", "type", "conv", "layer_params", "layer_macs", "layer_share_of_model", "alternative",
                   "parts", "params", "macs", "params_saved", "macs_saved", "saved_of_layer", "saved_of_model", "reason"]
        return pd.DataFrame(rows, columns=columns)

    def __repr__(self) -> str:
        return (f"<WhatIf {self.model!r}: {len(self.layers)} of {self.convolutions} convolutions "
                f"({self.chosen}), {sum(len(layer.alternatives) for layer in self.layers)} alternatives>")

    def _repr_markdown_(self) -> str:
        from costlens.report.whatif_text import markdown

        return markdown(self)


def whatif(model: str | nn.Module, inputs: Inputs = None, *, top: int | None = None,
           layers: Sequence[str] | None = None, reduce: int | None = None, share: float = SHARE,
           batch: int | None = None, dtype: str | torch.dtype = "float32", argument: str = "inputs") -> WhatIf:
    """The alternatives of ``model``'s costliest convolutions, each traced on meta.

    ``model``: a zoo name, ``"pkg.module:factory"`` or an ``nn.Module``. The layers: by
    default the convolutions that together carry ``share`` (90%) of the model's MACs,
    costliest first; ``top=N`` the N costliest; ``layers=[path, ...]`` those. Each is priced
    with every entry of ``default_specs(reduce)``. An unknown path (with the closest paths)
    or a path that is not a convolution is one ``InputShapeError``.
    """
    if top is not None and layers:
        raise InputShapeError("whatif: choose the layers by top or by their paths, not both")
    if top is not None and top < 1:
        raise InputShapeError(f"whatif: top must be at least 1, got {top}")
    if not 0 < share <= 1:
        raise InputShapeError(f"whatif: share must be in (0, 1], got {share}")
    if reduce is not None and reduce < 1:
        raise InputShapeError(f"whatif: reduce must be at least 1 channel, got {reduce}")
    net, profile, _ = _traced(model, inputs, batch, dtype, argument)
    modules = dict(net.named_modules())
    ran = _convolution_calls(profile, modules)
    for path in layers or ():
        _convolution(modules, path, profile.model, "--layer" if argument == "--input" else "layers")
    if layers:
        chosen, how = list(dict.fromkeys(layers)), "the layers asked for"
    elif top is not None:
        chosen, how = list(ran)[:top], f"the {min(top, len(ran))} costliest"
    else:
        chosen, how = _carrying(ran, share * profile.totals.get("macs", 0)), f"the ones that make {share:.0%} of MACs"
    specs = default_specs(reduce)
    total = int(profile.totals.get("macs", 0))
    priced = tuple(_layer(path, modules[path], ran.get(path, []), specs, profile.dtype, total) for path in chosen)
    return WhatIf(profile.model, tuple(profile.input_shape), profile.input_text, profile.dtype,
                  int(profile.totals.get("params", 0)), total, how, len(ran), priced)


def _traced(model: str | nn.Module, inputs: Inputs, batch: int | None, dtype: str | torch.dtype,
            argument: str) -> tuple[nn.Module, Profile, Inputs]:
    """The model as a module (built on meta when named), its profile under its own name, and
    the inputs it was traced with (a zoo model's default when none were given)."""
    from costlens.api import is_saved_profile
    from costlens.models import resolve
    from costlens.request import Front, Request
    from costlens.run import build, run

    if isinstance(model, str) and is_saved_profile(model):
        raise InputShapeError(f"{model} is a saved profile: it has no modules to price or rewrite; name the model "
                              "(a zoo name or pkg.module:factory)")
    front = Front.CLI if argument.startswith("--") else Front.API
    if isinstance(model, nn.Module):
        return model, run(Request(model, inputs, batches=_batches(batch), dtype=str(dtype), front=front)), inputs
    if not isinstance(model, str):
        raise ModelError(f"model: expected a zoo name, 'package.module:factory' or an nn.Module, "
                         f"got {type(model).__name__}")
    named = resolve(model)
    net = build(named, torch.device("meta"))
    given = inputs if inputs is not None else named.input
    profile = run(Request(net, given, batches=_batches(batch), dtype=str(dtype), name=named.name, front=front))
    return net, replace(profile, citation=named.cite), given


def _batches(batch: int | None) -> tuple[int, ...]:
    return () if batch is None else (batch,)


def _convolution_calls(profile: Profile, modules: Mapping[str, nn.Module]) -> dict[str, list[LayerCost]]:
    """Each convolution that ran, costliest first (a module called twice: its calls together)."""
    calls: dict[str, list[LayerCost]] = {}
    for layer in profile.layers:
        module = modules.get(layer.path)
        if isinstance(module, nn.modules.conv._ConvNd):
            calls.setdefault(layer.path, []).append(layer)
    order = sorted(calls, key=lambda path: -sum(record.values.get("macs", 0) for record in calls[path]))
    return {path: calls[path] for path in order}


def _carrying(ran: Mapping[str, list[LayerCost]], wanted: float) -> list[str]:
    """The costliest convolutions until their MACs reach ``wanted`` (all of them if they never do)."""
    chosen: list[str] = []
    carried = 0.0
    for path, records in ran.items():
        if carried >= wanted or not any(record.values.get("macs") for record in records):
            break
        chosen.append(path)
        carried += sum(record.values.get("macs", 0) for record in records)
    return chosen


def _layer(path: str, module: nn.Module, records: list[LayerCost], specs: Sequence[Spec], dtype: str,
           total: int) -> LayerWhatIf:
    """One convolution with each alternative priced (or the reason none is built)."""
    macs = int(sum(record.values.get("macs", 0) for record in records))
    params = int(records[0].values.get("params", 0)) if records else sum(p.numel() for p in module.parameters())
    reason = refusal(module) or (None if records else "it did not run in the traced forward")
    conv = conv_of(module) if isinstance(module, nn.Conv2d) and refusal(module) is None else None
    first = records[0] if records else None
    alternatives = () if reason or conv is None else tuple(
        _priced(conv, spec, records, dtype, params, macs, total) for spec in specs)
    return LayerWhatIf(path, type(module).__name__, conv.text if conv else "", len(records),
                       tuple(first.input_shapes[0]) if first and first.input_shapes else (),
                       tuple(first.output_shapes[0]) if first and first.output_shapes else (),
                       params, macs, macs / total if total else 0.0, alternatives, reason)


def _priced(conv: Conv, spec: Spec, records: Sequence[LayerCost], dtype: str, params: int, macs: int,
            total: int) -> Priced:
    """``spec`` built on meta and traced at each call's input; the savings against the layer and the model."""
    from costlens.api import profile

    reason = misfit(conv, spec)
    if reason is not None:
        return Priced(str(spec), "", None, None, reason=reason)
    text = " · ".join(part.text for part in parts_of(conv, spec))
    with torch.device("meta"):
        module = build(conv, spec)
    counted_macs, counted_params = 0, 0
    for record in records:
        traced = profile(module, tuple(record.input_shapes[0]), dtype=dtype)
        if traced.root.output_shapes[:1] != record.output_shapes[:1]:  # the constructions above keep it: a guard
            return Priced(str(spec), text, None, None, reason=f"its output {format_shape(traced.root.output_shapes[0])} "
                          f"is not the original's {format_shape(record.output_shapes[0])}")
        counted_macs += int(traced.totals.get("macs", 0))
        counted_params = int(traced.totals.get("params", 0))
    saved = macs - counted_macs
    return Priced(str(spec), text, counted_params, counted_macs, params - counted_params, saved,
                  saved / macs if macs else None, saved / total if total else None)


# --- rewriting ----------------------------------------------------------------------


def _convolution(modules: Mapping[str, nn.Module], path: str, model: str, argument: str) -> nn.Module:
    """The convolution at ``path``; an unknown path (with the closest ones) or another module is an error."""
    module = modules.get(path)
    if module is None:
        raise InputShapeError(f"{argument}: {model} has no module {path!r}; closest: {', '.join(_closest(modules, path))}")
    if not isinstance(module, nn.modules.conv._ConvNd):
        inside = [p for p, m in modules.items() if p.startswith(path + ".") and isinstance(m, nn.modules.conv._ConvNd)]
        hint = f" (its convolutions: {', '.join(inside[:3])}{', ...' if len(inside) > 3 else ''})" if inside else ""
        raise InputShapeError(f"{argument}: {path} is a {type(module).__name__}, not a convolution{hint}")
    return module


def _closest(modules: Mapping[str, nn.Module], path: str) -> list[str]:
    """Up to three convolution paths a mistyped ``path`` may mean: those inside the longest
    part of it that exists ('inception3b.branch2' of 'inception3b.branch2.1'), else the
    nearest by spelling (among convolutions first, then any module)."""
    convs = [p for p, m in modules.items() if isinstance(m, nn.modules.conv._ConvNd)]
    parts = path.split(".")
    for end in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:end]) + "."
        inside = [p for p in convs if p.startswith(prefix)]
        if inside:
            return inside[:3]
    return (difflib.get_close_matches(path, convs, n=3, cutoff=0.5)
            or difflib.get_close_matches(path, [p for p in modules if p], n=3, cutoff=0.5) or convs[:3])


def rewrite(model: nn.Module, changes: Mapping[str, str | Spec] | Sequence[str], *, argument: str = "rewrite",
            name: str | None = None) -> nn.Module:
    """A copy of ``model`` with the convolution at each path replaced by its alternative
    (``{'inception3a.branch3.conv.conv': 'bottleneck(8)'}``); ``model`` is left as it was.
    Each part is made where the original's weight lives, in its dtype, freshly initialised.
    Everything is checked before the copy: an unknown path (with the closest paths), a
    module that is not a convolution, one that cannot be rewritten, or an alternative that
    does not fit it is one ``InputShapeError`` (naming the model as ``name``, else by its class)."""
    plans = _plans(model, _as_mapping(changes, argument), argument, name)
    return _replaced(_copy(model), plans)


def rewritten_in_place(model: nn.Module, changes: Mapping[str, str | Spec] | Sequence[str], *,
                       argument: str = "--apply", name: str | None = None) -> nn.Module:
    """``model`` itself with the convolution at each path replaced (a model built afresh for
    one profile, which needs no copy: ``costlens/run.py`` for a request with ``apply``)."""
    return _replaced(model, _plans(model, _as_mapping(changes, argument), argument, name))


def _as_mapping(changes: Mapping[str, str | Spec] | Sequence[str], argument: str) -> Mapping[str, str | Spec]:
    """``{path: alternative}`` as given, or parsed from ``['path=alternative', ...]``."""
    if isinstance(changes, Mapping):
        return changes
    if isinstance(changes, str) or not isinstance(changes, Sequence):
        raise InputShapeError(f"{argument}: expected {{path: alternative}} or ['PATH=ALTERNATIVE', ...], "
                              f"got {changes!r}"[:200])
    return parse_applied(changes, argument)


def _plans(model: nn.Module, changes: Mapping[str, str | Spec], argument: str,
           name: str | None) -> dict[str, tuple[Conv, Spec]]:
    """Each path's convolution and the alternative that replaces it, every one checked."""
    if not isinstance(model, nn.Module):
        raise ModelError(f"{argument}: expected an nn.Module, got {type(model).__name__}")
    modules = dict(model.named_modules())
    plans: dict[str, tuple[Conv, Spec]] = {}
    for path, given in changes.items():
        spec = given if isinstance(given, Spec) else parse_spec(given, f"{argument} {path}")
        module = _convolution(modules, path, name or type(model).__name__, argument)
        reason = refusal(module)
        if reason is not None:
            raise InputShapeError(f"{argument}: {path} cannot be rewritten: {reason}")
        conv = conv_of(module)  # type: ignore[arg-type]
        reason = misfit(conv, spec)
        if reason is not None:
            raise InputShapeError(f"{argument}: {spec} does not fit {path} ({conv.text}): {reason}")
        plans[path] = conv, spec
    return plans


def _replaced(model: nn.Module, plans: Mapping[str, tuple[Conv, Spec]]) -> nn.Module:
    """``model`` with each planned convolution replaced, in place (the replacement itself
    when the model is the convolution)."""
    for path, (conv, spec) in plans.items():
        original = model.get_submodule(path)
        weight = original.weight
        assert isinstance(weight, torch.Tensor)  # a plain Conv2d's, checked by _plans
        with torch.device(weight.device):
            replacement = build(conv, spec).to(weight.dtype).train(original.training)
        if not path:
            return replacement
        parent, _, child = path.rpartition(".")
        setattr(model.get_submodule(parent), child, replacement)
    return model


def _copy(model: nn.Module) -> nn.Module:
    """A deep copy (on meta, of shapes only); whatever the model's own copying raises is one ``ModelError``."""
    from costlens.models import first_line, user_code

    try:
        with user_code("the model's code, while it was copied,"):
            return copy.deepcopy(model)
    except ModelError:
        raise
    except Exception as error:
        raise ModelError(f"cannot copy {type(model).__name__} to rewrite it: {type(error).__name__}: "
                         f"{first_line(error)}") from error


def rewritten_name(model: str, applied: Mapping[str, str | Spec]) -> str:
    """'googlenet [inception3a.branch3.conv.conv=bottleneck(8)]': the model and its rewrites."""
    return f"{model} [{', '.join(f'{path}={spec}' for path, spec in applied.items())}]"
