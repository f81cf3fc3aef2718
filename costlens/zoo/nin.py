"""Network in Network (Lin, Chen, Yan 2013): mlpconv blocks and global average pooling."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from costlens.zoo.registry import register

LIN_2013 = "Lin, Chen, Yan 2013, Network in network, arXiv:1312.4400 (ICLR 2014)"


def mlpconv(in_ch: int, widths: tuple[int, int, int], kernel: int) -> nn.Sequential:
    """One mlpconv layer: a k×k conv followed by two 1×1 convs (the "micro network"),
    each with ReLU; the 1×1 convs are the paper's cascaded cross-channel pooling."""
    w1, w2, w3 = widths
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(in_ch, w1, kernel, padding=kernel // 2)),
        ("relu", nn.ReLU(inplace=True)),
        ("cccp1", nn.Conv2d(w1, w2, 1)),
        ("relu1", nn.ReLU(inplace=True)),
        ("cccp2", nn.Conv2d(w2, w3, 1)),
        ("relu2", nn.ReLU(inplace=True)),
    ]))


@register("nin", input=(1, 3, 32, 32), cite=LIN_2013 + ", CIFAR-10 model", short="Lin et al. 2013, CIFAR-10 model")
def nin() -> nn.Module:
    """The paper's CIFAR-10 network: three mlpconv layers, then global average pooling
    over ten class maps instead of fully connected layers (Fig. 2).

    The paper gives the structure but not the widths; these are from the authors'
    released CIFAR-10 model definition. Pools round up, as Caffe's do.
    """
    return nn.Sequential(OrderedDict([
        ("mlpconv1", mlpconv(3, (192, 160, 96), 5)),                  # N x 96 x 32 x 32
        ("pool1", nn.MaxPool2d(3, stride=2, ceil_mode=True)),         # N x 96 x 16 x 16
        ("drop1", nn.Dropout(0.5)),
        ("mlpconv2", mlpconv(96, (192, 192, 192), 5)),                # N x 192 x 16 x 16
        ("pool2", nn.AvgPool2d(3, stride=2, ceil_mode=True)),         # N x 192 x 8 x 8
        ("drop2", nn.Dropout(0.5)),
        ("mlpconv3", mlpconv(192, (192, 192, 10), 3)),                # N x 10 x 8 x 8
        ("gap", nn.AdaptiveAvgPool2d(1)),                             # global average pooling
        ("flatten", nn.Flatten()),                                    # N x 10
    ]))
