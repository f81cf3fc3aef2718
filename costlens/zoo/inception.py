"""The Inception module (naive and with 1×1 bottlenecks), GoogLeNet, and the lecture's
5×5-convolution example (Szegedy et al. 2014; deeplearning.ai's Case Studies)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from costlens.zoo.registry import register

SZEGEDY_2014 = "Szegedy et al. 2014, Going deeper with convolutions, CVPR 2015"
LECTURE = "deeplearning.ai, Convolutional Neural Networks, Case Studies: Inception network motivation"


class ConvReLU(nn.Sequential):
    """A convolution followed by ReLU: GoogLeNet uses ReLU after every convolution."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__(OrderedDict([
            ("conv", nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2)),
            ("relu", nn.ReLU(inplace=True)),
        ]))


class NaiveInception(nn.Module):
    """Fig. 2(a): 1×1, 3×3 and 5×5 same convolutions and a 3×3 max-pool side by side,
    their outputs stacked along channels. The pool branch passes every input channel
    through, so the output is wider than the input."""

    def __init__(self, in_ch: int, c1: int, c3: int, c5: int) -> None:
        super().__init__()
        self.branch1 = ConvReLU(in_ch, c1, 1)
        self.branch2 = ConvReLU(in_ch, c3, 3)
        self.branch3 = ConvReLU(in_ch, c5, 5)
        self.branch4 = nn.MaxPool2d(3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class Inception(nn.Module):
    """Fig. 2(b): 1×1 convolutions reduce the channels before the 3×3 and 5×5
    convolutions and project the pooled branch; the columns of Table 1."""

    def __init__(self, in_ch: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = ConvReLU(in_ch, c1, 1)
        self.branch2 = nn.Sequential(OrderedDict([
            ("reduce", ConvReLU(in_ch, c3r, 1)), ("conv", ConvReLU(c3r, c3, 3))]))
        self.branch3 = nn.Sequential(OrderedDict([
            ("reduce", ConvReLU(in_ch, c5r, 1)), ("conv", ConvReLU(c5r, c5, 5))]))
        self.branch4 = nn.Sequential(OrderedDict([
            ("pool", nn.MaxPool2d(3, stride=1, padding=1)), ("proj", ConvReLU(in_ch, pool_proj, 1))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


# GoogLeNet's inception(3a) on its 28×28×192 input, the lecture's running example.
MODULE_INPUT = (1, 192, 28, 28)


@register("inception-naive", input=MODULE_INPUT, cite=SZEGEDY_2014 + ", Fig. 2(a), with inception(3a)'s widths",
          short="Szegedy et al. 2014, Fig. 2(a), 3a's widths")
def inception_naive() -> nn.Module:
    """Naive module with 3a's widths: 1×1 (64), 3×3 (128), 5×5 (32), max-pool → 28×28×416."""
    return NaiveInception(192, 64, 128, 32)


@register("inception", input=MODULE_INPUT, cite=SZEGEDY_2014 + ", Fig. 2(b), Table 1 inception(3a)",
          short="Szegedy et al. 2014, Fig. 2(b), inception(3a)")
def inception() -> nn.Module:
    """Inception(3a): 1×1 (64); 1×1 (96) → 3×3 (128); 1×1 (16) → 5×5 (32); pool → 1×1 (32) → 28×28×256."""
    return Inception(192, 64, 96, 128, 16, 32, 32)


@register("conv5x5", input=MODULE_INPUT, cite=LECTURE, short="deeplearning.ai, Inception motivation: 5×5")
def conv5x5() -> nn.Module:
    """28×28×192 → 5×5 same conv, 32 filters → 28×28×32: 120,422,400 MACs."""
    return nn.Sequential(OrderedDict([("conv", nn.Conv2d(192, 32, 5, padding=2))]))


@register("conv1x1-5x5", input=MODULE_INPUT, cite=LECTURE, short="deeplearning.ai, Inception motivation: 1×1, 5×5")
def conv1x1_5x5() -> nn.Module:
    """28×28×192 → 1×1 conv to 16 (the bottleneck) → 5×5 same conv to 32: 12,443,648 MACs."""
    return nn.Sequential(OrderedDict([
        ("reduce", nn.Conv2d(192, 16, 1)),          # N x 16 x 28 x 28
        ("conv", nn.Conv2d(16, 32, 5, padding=2)),  # N x 32 x 28 x 28
    ]))


# Table 1: #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj.
TABLE_1: dict[str, tuple[int, int, int, int, int, int]] = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def _inception(in_ch: int, stage: str) -> tuple[Inception, int]:
    c1, c3r, c3, c5r, c5, pp = TABLE_1[stage]
    return Inception(in_ch, c1, c3r, c3, c5r, c5, pp), c1 + c3 + c5 + pp


def _lrn() -> nn.LocalResponseNorm:
    # Caffe's LRN (size 5, alpha 1e-4 on the plain sum, beta 0.75); PyTorch divides
    # alpha by size, so 5e-4 here.
    return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=1.0)


def _pool() -> nn.MaxPool2d:
    # 3×3 stride 2, rounding up as the paper's Caffe model does: 112→56→28→14→7.
    return nn.MaxPool2d(3, stride=2, ceil_mode=True)


class AuxClassifier(nn.Sequential):
    """Sec. 5's auxiliary classifier: 5×5/3 average pool, 1×1 conv (128), fc 1024, 70% dropout, fc."""

    def __init__(self, in_ch: int, classes: int = 1000) -> None:
        super().__init__(OrderedDict([
            ("pool", nn.AvgPool2d(5, stride=3)),             # N x C x 4 x 4
            ("conv", ConvReLU(in_ch, 128, 1)),
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(128 * 4 * 4, 1024)),
            ("relu", nn.ReLU(inplace=True)),
            ("dropout", nn.Dropout(0.7)),
            ("fc2", nn.Linear(1024, classes)),
        ]))


class GoogLeNet(nn.Module):
    """GoogLeNet as in Table 1 and Fig. 3: 5×5 branches, LRN, no batch norm.

    The auxiliary classifiers (on 4a and 4d) are off by default, since they are
    discarded at inference; ``aux_classifiers=True`` adds them and returns three outputs.
    """

    def __init__(self, aux_classifiers: bool = False, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = ConvReLU(3, 64, 7, stride=2)          # N x 64 x 112 x 112
        self.pool1 = _pool()                               # N x 64 x 56 x 56
        self.norm1 = _lrn()
        self.conv2_reduce = ConvReLU(64, 64, 1)
        self.conv2 = ConvReLU(64, 192, 3)                  # N x 192 x 56 x 56
        self.norm2 = _lrn()
        self.pool2 = _pool()                               # N x 192 x 28 x 28
        self.inception3a, ch = _inception(192, "3a")       # N x 256 x 28 x 28
        self.inception3b, ch = _inception(ch, "3b")        # N x 480 x 28 x 28
        self.pool3 = _pool()                               # N x 480 x 14 x 14
        self.inception4a, ch = _inception(ch, "4a")        # N x 512 x 14 x 14
        self.inception4b, ch = _inception(ch, "4b")        # N x 512 x 14 x 14
        self.inception4c, ch = _inception(ch, "4c")        # N x 512 x 14 x 14
        self.inception4d, ch = _inception(ch, "4d")        # N x 528 x 14 x 14
        self.inception4e, ch = _inception(ch, "4e")        # N x 832 x 14 x 14
        self.pool4 = _pool()                               # N x 832 x 7 x 7
        self.inception5a, ch = _inception(ch, "5a")        # N x 832 x 7 x 7
        self.inception5b, ch = _inception(ch, "5b")        # N x 1024 x 7 x 7
        self.avgpool = nn.AvgPool2d(7, stride=1)           # N x 1024 x 1 x 1
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(ch, classes)                   # the paper's "linear" layer
        self.aux1 = AuxClassifier(512, classes) if aux_classifiers else None
        self.aux2 = AuxClassifier(528, classes) if aux_classifiers else None

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        x = self.norm1(self.pool1(self.conv1(x)))
        x = self.pool2(self.norm2(self.conv2(self.conv2_reduce(x))))
        x = self.pool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None else None
        x = self.pool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        logits = self.fc(torch.flatten(self.dropout(self.avgpool(x)), 1))
        if aux1 is not None and aux2 is not None:
            return logits, aux1, aux2
        return logits


@register("googlenet", input=(1, 3, 224, 224), cite=SZEGEDY_2014 + ", Table 1", short="Szegedy et al. 2014, Table 1")
def googlenet(aux_classifiers: bool = False) -> nn.Module:
    """GoogLeNet (Inception v1) from Table 1."""
    return GoogLeNet(aux_classifiers=aux_classifiers)
