"""ResNets (He et al. 2015, Table 1), their v1.5 variants, and the plain nets without shortcuts."""

from __future__ import annotations

import torch
from torch import nn

from costlens.zoo.registry import register

HE_2015 = "He, Zhang, Ren, Sun 2015, Deep residual learning for image recognition, CVPR 2016"
V15 = " (v1.5: stride on the 3×3 conv, as torchvision and NVIDIA's recipe)"


def _projection(in_ch: int, out_ch: int, stride: int) -> nn.Sequential | None:
    """Option B of the paper: a 1×1 projection shortcut where the shape changes."""
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))


class BasicBlock(nn.Module):
    """Two 3×3 convs (ResNet-18/34); ``shortcut=False`` gives the plain net's block."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int, shortcut: bool, stride_on_3x3: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = shortcut
        self.downsample = _projection(in_ch, width, stride) if shortcut else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut:
            out = out + (self.downsample(x) if self.downsample is not None else x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 expand (ResNet-50/101/152).

    v1 (the paper) strides the first 1×1 when it downsamples; v1.5 strides the 3×3,
    which costs more MACs and gains accuracy.
    """

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int, shortcut: bool, stride_on_3x3: bool) -> None:
        super().__init__()
        out_ch = width * self.expansion
        s1, s3 = (1, stride) if stride_on_3x3 else (stride, 1)
        self.conv1 = nn.Conv2d(in_ch, width, 1, stride=s1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=s3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = shortcut
        self.downsample = _projection(in_ch, out_ch, stride) if shortcut else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut:
            out = out + (self.downsample(x) if self.downsample is not None else x)
        return self.relu(out)


class ResNet(nn.Module):
    """The ImageNet ResNet of Table 1: conv1, four stages layer1..layer4, pool, fc."""

    def __init__(self, block: type[BasicBlock | Bottleneck], depths: tuple[int, int, int, int],
                 shortcut: bool = True, stride_on_3x3: bool = False, classes: int = 1000, width: float = 1.0) -> None:
        super().__init__()
        stem = scaled(64, width)  # ``width`` multiplies every channel count (1.0: the paper's network)
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)  # N x 64 x 112 x 112
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)                  # N x 64 x 56 x 56
        in_ch = stem
        stages = []
        for i, (width, depth) in enumerate(zip([scaled(c, width) for c in (64, 128, 256, 512)], depths)):
            blocks = []
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(in_ch, width, stride, shortcut, stride_on_3x3))
                in_ch = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        # conv2_x .. conv5_x of the paper: 56, 28, 14, 7 pixels on a side at 224×224
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)                               # N x C x 1 x 1
        self.fc = nn.Linear(in_ch, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


DEPTHS: dict[int, tuple[type[BasicBlock | Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def scaled(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, at least one."""
    return max(1, round(channels * width))


def _register(name: str, depth: int, cite: str, short: str, **options: bool) -> None:
    block, depths = DEPTHS[depth]
    register(name, input=(1, 3, 224, 224), cite=cite, short=short)(
        lambda width=1.0: ResNet(block, depths, width=width, **options))


for _depth in DEPTHS:
    _register(f"resnet{_depth}", _depth, HE_2015, "He et al. 2015, Table 1")
for _depth in (50, 101, 152):
    _register(f"resnet{_depth}-v1.5", _depth, HE_2015 + V15, "He et al. 2015, v1.5 (stride on the 3×3)", stride_on_3x3=True)
for _depth in (18, 34):
    _register(f"plain{_depth}", _depth, HE_2015 + " (plain baseline of Fig. 3, no shortcuts)",
              "He et al. 2015, plain baseline (Fig. 3)", shortcut=False)
