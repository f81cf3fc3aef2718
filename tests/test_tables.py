"""Terminal, markdown and CSV tables: the depth that shows where the cost goes, rows that add up."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from costlens import profile
from costlens.report import profile_text as text


def _rows(table: str) -> list[str]:
    """The body rows of a terminal table: between the rule under the heading and the rule above Total."""
    lines = table.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("---")]
    return lines[rules[0] + 1:rules[1]]


class Projected(nn.Module):
    """A conv, then a matmul in the model's own forward: the matmul belongs to no child."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Parameter(torch.ones(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x)) @ self.head


def test_vgg16_table_goes_down_to_its_layers(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    table = text.table(zoo_profile("vgg16"))
    names = [row.split()[0] for row in _rows(table)]
    # features and classifier, then the 13 convolutions and 3 conv-ified fully connected layers under them
    assert names[:3] == ["features", "conv1_1", "conv1_2"] and "fc6" in names
    assert len(names) == 2 + 13 + 3
    assert not any(name.startswith(("relu", "pool", "drop")) for name in names)
    assert "Depth 2, chosen automatically" in table
    # 13 ReLU + 5 max-pools in features; 2 ReLU + 2 dropouts in classifier; avgpool and flatten: 24
    assert "Left out: 24 calls without MACs or params (ReLU, MaxPool2d, Dropout, AdaptiveAvgPool2d, Flatten)" in table
    assert max(len(line) for line in table.splitlines()) <= 100  # a 100-column terminal, citation and convention wrapped


def test_a_depth_given_shows_every_call_down_to_it(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    table = text.table(zoo_profile("vgg16"), depth=1)
    assert [row.split()[0] for row in _rows(table)] == ["features", "classifier", "avgpool", "flatten"]
    assert "chosen automatically" not in table


def test_depth_zero_prints_the_totals_row_under_one_rule(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    lines = text.table(zoo_profile("inception"), depth=0).splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("Layer"))
    assert lines[heading + 1].startswith("---") and lines[heading + 2].startswith("Total")


def test_the_models_own_ops_are_a_row_and_rows_add_up() -> None:
    result = profile(Projected(), (1, 3, 8, 8))
    rows = _rows(text.table(result, depth=1))
    assert [row.split()[0] for row in rows] == ["conv", "(self)"]
    conv = result.find("conv").values["macs"]
    own = result.own_record(0)
    assert own is not None
    assert conv == 8 * 8 * 8 * 3 * 3 * 3  # 13,824: an 8×8×8 output, 3×3×3 kernels
    assert own.values["macs"] == 1 * 8 * 8 * 2 * 8  # 1×8×8×8 @ 8×2: 64 rows × 2 columns × 8 = 1,024
    assert own.values["params"] == 8 * 2  # the head parameter the forward uses directly
    assert conv + own.values["macs"] == result.totals["macs"]
    assert "13,824" in rows[0] and "1,024" in rows[1]


def test_a_timed_parent_whose_children_take_all_its_time_has_no_negative_self_row() -> None:
    import dataclasses

    result = profile(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)), (1, 4))
    # measured times as floats: 0.3 - 0.1 - 0.2 is -2.8e-17 in binary, float rounding that must
    # not show as a (self) row of "-0.000 ms"
    times = {0: 0.3, 1: 0.1, 2: 0.2}
    timed = [dataclasses.replace(layer, values={**layer.values, "time_ms": times[i]})
             for i, layer in enumerate(result.layers)]
    result = dataclasses.replace(result, layers=timed)
    assert result.own(0)["time_ms"] == 0.0
    assert result.own_record(0) is None  # nothing ran outside the two layers


def test_csv_lists_every_call_or_those_down_to_the_depth(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("inception")
    every = text.csv(result).strip().splitlines()
    assert len(every) == 1 + len(result.layers)
    shallow = text.csv(result, depth=1).strip().splitlines()
    assert len(shallow) == 1 + 1 + 4  # heading, the model, its four branches


def test_markdown_says_how_deep_it_goes(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    md = text.markdown(zoo_profile("vgg16"))
    assert "| conv1_1 |" in md.replace("&nbsp;", "") and "Depth 2, chosen automatically" in md
