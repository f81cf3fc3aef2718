"""LeNet-5: the lecture's simplified version and LeCun et al. 1998 as published."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from costlens.zoo.registry import register

LECUN_1998 = (
    "LeCun, Bottou, Bengio, Haffner 1998, Gradient-based learning applied to document "
    "recognition, Proc. IEEE 86(11)"
)


@register("lenet5", input=(1, 1, 32, 32), cite=LECUN_1998 + " (as simplified in the lecture)",
          short="LeCun et al. 1998, as simplified in the lecture")
def lenet5() -> nn.Module:
    """The lecture's LeNet-5: conv 5×5 → pool → conv 5×5 → pool → fc 120 → fc 84 → 10.

    Deviations from the 1998 paper, as the lecture draws it: full connections in
    conv2 (no C3 table), parameter-free average pooling, plain tanh, and a linear
    output layer instead of Euclidean RBF units.
    """
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 6, 5)),       # N x 6 x 28 x 28
        ("act1", nn.Tanh()),
        ("pool1", nn.AvgPool2d(2)),          # N x 6 x 14 x 14
        ("conv2", nn.Conv2d(6, 16, 5)),      # N x 16 x 10 x 10
        ("act2", nn.Tanh()),
        ("pool2", nn.AvgPool2d(2)),          # N x 16 x 5 x 5
        ("flatten", nn.Flatten()),           # N x 400
        ("fc1", nn.Linear(400, 120)),
        ("act3", nn.Tanh()),
        ("fc2", nn.Linear(120, 84)),
        ("act4", nn.Tanh()),
        ("fc3", nn.Linear(84, 10)),
    ]))


class ScaledTanh(nn.Module):
    """The paper's squashing function f(a) = A·tanh(S·a), A = 1.7159, S = 2/3 (Appendix A)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class Subsampling(nn.Module):
    """S2/S4: the four inputs of a unit are added, multiplied by a trainable
    coefficient and added to a trainable bias, one pair per feature map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        summed = F.avg_pool2d(x, 2, divisor_override=1)
        return summed * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


# Table I of the paper: which S2 maps (rows) feed each C3 map (columns).
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


def _runs(channels: tuple[int, ...]) -> list[tuple[int, int]]:
    """Split channel indices into (start, length) runs of consecutive channels."""
    runs: list[tuple[int, int]] = []
    for c in channels:
        if runs and runs[-1][0] + runs[-1][1] == c:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((c, 1))
    return runs


class PartiallyConnectedConv(nn.Module):
    """C3: each output map convolves only the input maps its table column names,
    so its parameters (1,516) and connections (151,600) are the paper's, not a
    full 6→16 convolution's."""

    def __init__(self, table: tuple[tuple[int, ...], ...], kernel: int) -> None:
        super().__init__()
        self.table = table
        self.maps = nn.ModuleList(nn.Conv2d(len(inputs), 1, kernel) for inputs in table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for inputs, conv in zip(self.table, self.maps):
            parts = [x.narrow(1, start, length) for start, length in _runs(inputs)]
            selected = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
            outputs.append(conv(selected))
        return torch.cat(outputs, dim=1)


class EuclideanRBF(nn.Module):
    """The output layer: y_i = Σ_j (x_j − w_ij)². The paper sets the w by hand
    (stylized 7×12 bitmaps of the characters) and keeps them fixed, so they are
    frozen parameters here."""

    def __init__(self, in_features: int, classes: int) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.zeros(classes, in_features), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(1) - self.centers).pow(2).sum(dim=-1)


@register("lenet5-1998", input=(1, 1, 32, 32), cite=LECUN_1998, short="LeCun et al. 1998, Fig. 2")
def lenet5_1998() -> nn.Module:
    """LeNet-5 as in Fig. 2 of the paper: 60,000 trainable parameters."""
    return nn.Sequential(OrderedDict([
        ("c1", nn.Conv2d(1, 6, 5)),                           # N x 6 x 28 x 28, 156 params
        ("act1", ScaledTanh()),
        ("s2", Subsampling(6)),                               # N x 6 x 14 x 14, 12 params
        ("act2", ScaledTanh()),
        ("c3", PartiallyConnectedConv(C3_TABLE, 5)),          # N x 16 x 10 x 10, 1,516 params
        ("act3", ScaledTanh()),
        ("s4", Subsampling(16)),                              # N x 16 x 5 x 5, 32 params
        ("act4", ScaledTanh()),
        ("c5", nn.Conv2d(16, 120, 5)),                        # N x 120 x 1 x 1, 48,120 params
        ("act5", ScaledTanh()),
        ("flatten", nn.Flatten()),
        ("f6", nn.Linear(120, 84)),                           # N x 84, 10,164 params
        ("act6", ScaledTanh()),
        ("output", EuclideanRBF(84, 10)),                     # N x 10, 840 fixed params
    ]))
