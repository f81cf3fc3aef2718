"""AlexNet: Krizhevsky et al. 2012 (two towers) and torchvision's one-tower variant."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from costlens.zoo.registry import register

KRIZHEVSKY_2012 = (
    "Krizhevsky, Sutskever, Hinton 2012, ImageNet classification with deep "
    "convolutional neural networks, NeurIPS"
)
KRIZHEVSKY_2014 = "Krizhevsky 2014, One weird trick for parallelizing convolutional neural networks, arXiv:1404.5997"


def _lrn() -> nn.LocalResponseNorm:
    # Paper: k=2, n=5, alpha=1e-4, beta=0.75 with alpha multiplying the plain sum of
    # squares; PyTorch divides alpha by n, so alpha = 5e-4 here gives the paper's map.
    return nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)


@register("alexnet", input=(1, 3, 227, 227), cite=KRIZHEVSKY_2012, short="Krizhevsky et al. 2012, Fig. 2")
def alexnet() -> nn.Module:
    """The paper's network (Fig. 2), its two GPU towers as grouped convolutions.

    Deviation: the paper says 224×224 inputs, but 11×11 stride-4 convolution to
    55×55 needs 227×227, which is the default input here.
    conv1, conv3 and the fully connected layers see both towers (groups=1);
    conv2, conv4 and conv5 see only their own tower's maps (groups=2).
    """
    features = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 96, 11, stride=4)),               # N x 96 x 55 x 55
        ("relu1", nn.ReLU(inplace=True)),
        ("norm1", _lrn()),
        ("pool1", nn.MaxPool2d(3, stride=2)),                    # N x 96 x 27 x 27 (overlapping)
        ("conv2", nn.Conv2d(96, 256, 5, padding=2, groups=2)),   # N x 256 x 27 x 27
        ("relu2", nn.ReLU(inplace=True)),
        ("norm2", _lrn()),
        ("pool2", nn.MaxPool2d(3, stride=2)),                    # N x 256 x 13 x 13
        ("conv3", nn.Conv2d(256, 384, 3, padding=1)),            # N x 384 x 13 x 13
        ("relu3", nn.ReLU(inplace=True)),
        ("conv4", nn.Conv2d(384, 384, 3, padding=1, groups=2)),  # N x 384 x 13 x 13
        ("relu4", nn.ReLU(inplace=True)),
        ("conv5", nn.Conv2d(384, 256, 3, padding=1, groups=2)),  # N x 256 x 13 x 13
        ("relu5", nn.ReLU(inplace=True)),
        ("pool5", nn.MaxPool2d(3, stride=2)),                    # N x 256 x 6 x 6
    ]))
    classifier = nn.Sequential(OrderedDict([
        ("fc6", nn.Linear(256 * 6 * 6, 4096)),
        ("relu6", nn.ReLU(inplace=True)),
        ("drop6", nn.Dropout(0.5)),
        ("fc7", nn.Linear(4096, 4096)),
        ("relu7", nn.ReLU(inplace=True)),
        ("drop7", nn.Dropout(0.5)),
        ("fc8", nn.Linear(4096, 1000)),
    ]))
    return nn.Sequential(OrderedDict([
        ("features", features), ("flatten", nn.Flatten()), ("classifier", classifier),
    ]))


@register("alexnet-owt", input=(1, 3, 224, 224), cite=KRIZHEVSKY_2014 + " (torchvision's alexnet)",
          short="Krizhevsky 2014 (torchvision's alexnet)")
def alexnet_owt() -> nn.Module:
    """The single-tower variant torchvision ships: 64/192/384/256/256 filters, no LRN."""
    features = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 64, 11, stride=4, padding=2)),    # N x 64 x 55 x 55
        ("relu1", nn.ReLU(inplace=True)),
        ("pool1", nn.MaxPool2d(3, stride=2)),                    # N x 64 x 27 x 27
        ("conv2", nn.Conv2d(64, 192, 5, padding=2)),             # N x 192 x 27 x 27
        ("relu2", nn.ReLU(inplace=True)),
        ("pool2", nn.MaxPool2d(3, stride=2)),                    # N x 192 x 13 x 13
        ("conv3", nn.Conv2d(192, 384, 3, padding=1)),
        ("relu3", nn.ReLU(inplace=True)),
        ("conv4", nn.Conv2d(384, 256, 3, padding=1)),
        ("relu4", nn.ReLU(inplace=True)),
        ("conv5", nn.Conv2d(256, 256, 3, padding=1)),            # N x 256 x 13 x 13
        ("relu5", nn.ReLU(inplace=True)),
        ("pool5", nn.MaxPool2d(3, stride=2)),                    # N x 256 x 6 x 6
    ]))
    classifier = nn.Sequential(OrderedDict([
        ("drop6", nn.Dropout(0.5)),
        ("fc6", nn.Linear(256 * 6 * 6, 4096)),
        ("relu6", nn.ReLU(inplace=True)),
        ("drop7", nn.Dropout(0.5)),
        ("fc7", nn.Linear(4096, 4096)),
        ("relu7", nn.ReLU(inplace=True)),
        ("fc8", nn.Linear(4096, 1000)),
    ]))
    return nn.Sequential(OrderedDict([
        ("features", features),
        ("avgpool", nn.AdaptiveAvgPool2d((6, 6))),  # torchvision's: lets other input sizes through
        ("flatten", nn.Flatten()),
        ("classifier", classifier),
    ]))
