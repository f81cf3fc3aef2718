"""VGG: Simonyan & Zisserman 2015, configurations A, B, C, D, E (Table 1)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from costlens.zoo.registry import register

SIMONYAN_2015 = (
    "Simonyan, Zisserman 2015, Very deep convolutional networks for large-scale "
    "image recognition, ICLR"
)

# Table 1: an int is a 3×3 conv with that many filters, "1:n" a 1×1 conv with n
# filters (configuration C only), "M" a 2×2 stride-2 max-pool.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, "1:256", "M",
          512, 512, "1:512", "M", 512, 512, "1:512", "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def features(config: list[int | str], width: float = 1.0) -> nn.Sequential:
    """The conv stack, named as the authors' release names it (conv1_1 ... pool5); ``width``
    multiplies every conv's filter count (1.0: the paper's)."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels, stage, index = 3, 1, 1
    for item in config:
        if item == "M":
            layers[f"pool{stage}"] = nn.MaxPool2d(2, stride=2)  # halves n_H and n_W
            stage, index = stage + 1, 1
            continue
        kernel, filters = (1, int(item[2:])) if isinstance(item, str) else (3, item)
        filters = max(1, round(filters * width))
        layers[f"conv{stage}_{index}"] = nn.Conv2d(channels, filters, kernel, padding=kernel // 2)
        layers[f"relu{stage}_{index}"] = nn.ReLU(inplace=True)
        channels, index = filters, index + 1
    return nn.Sequential(layers)


def classifier(classes: int = 1000, channels: int = 512) -> nn.Sequential:
    """FC-4096, FC-4096, FC-1000 in the paper's test-time dense form (Sec. 3.2).

    The first FC layer is a 7×7 conv and the last two are 1×1 convs, so any input of
    at least 224×224 gives a class-score map; at 224×224 the map is 1×1 and params
    and MACs equal the fully connected layers' exactly.
    """
    return nn.Sequential(OrderedDict([
        ("fc6", nn.Conv2d(channels, 4096, 7)),       # N x 4096 x 1 x 1 at 224×224
        ("relu6", nn.ReLU(inplace=True)),
        ("drop6", nn.Dropout(0.5)),
        ("fc7", nn.Conv2d(4096, 4096, 1)),
        ("relu7", nn.ReLU(inplace=True)),
        ("drop7", nn.Dropout(0.5)),
        ("fc8", nn.Conv2d(4096, classes, 1)),   # class-score map
    ]))


def vgg(config: str, width: float = 1.0) -> nn.Module:
    """VGG of the given Table 1 column; the score map is averaged as in Sec. 3.2. ``width``
    multiplies the conv stack's filters (the fully connected layers keep 4096)."""
    return nn.Sequential(OrderedDict([
        ("features", features(CONFIGS[config], width)),   # N x 512 x 7 x 7 at 224×224
        ("classifier", classifier(channels=max(1, round(512 * width)))),
        ("avgpool", nn.AdaptiveAvgPool2d(1)),      # spatial average of the score map
        ("flatten", nn.Flatten()),                 # N x 1000
    ]))


def _register(name: str, config: str) -> None:
    register(name, input=(1, 3, 224, 224), cite=f"{SIMONYAN_2015}, configuration {config}",
             short=f"Simonyan & Zisserman 2015, configuration {config}")(
        lambda width=1.0: vgg(config, width)
    )


for _name, _config in (("vgg11", "A"), ("vgg13", "B"), ("vgg16", "D"), ("vgg16-c", "C"), ("vgg19", "E")):
    _register(_name, _config)
