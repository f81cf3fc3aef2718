"""Comparisons: aligned blocks, ratios, and their text renderings."""

from __future__ import annotations

import json

import pytest

from costlens.comparison import align, ratio_row
from costlens.report import comparison_text as text
from costlens.report import grid


def test_inception_branch_by_branch(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    c = align([zoo_profile("inception-naive"), zoo_profile("inception")])
    blocks = {b.path: b for b in c.blocks}
    assert list(blocks) == ["branch1", "branch2", "branch3", "branch4"]
    assert blocks["branch3"].values["macs"] == (120_422_400, 12_443_648)
    # the naive pool branch is a bare max-pool: no MACs; the bottleneck projects it:
    # 28·28·32 × 192 = 4,816,896
    assert blocks["branch4"].values["macs"] == (0, 4_816_896)
    assert c.ratios("macs")[1] == pytest.approx(128_049_152 / 303_464_448)


def test_lecture_pair_keeps_blocks_only_one_side_has(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    c = align([zoo_profile("conv5x5"), zoo_profile("conv1x1-5x5")])
    assert [(b.path, b.values["macs"]) for b in c.blocks] == [
        ("reduce", (None, 2_408_448)),      # 28·28·16 × 192
        ("conv", (120_422_400, 10_035_200)),  # 28·28·32 × 5·5·16
    ]
    assert not c.blocks[0].shared and c.blocks[1].shared


def test_resnet_vs_plain_stage_by_stage(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    c = align([zoo_profile("resnet34"), zoo_profile("plain34")])
    layer2 = next(b for b in c.blocks if b.path == "layer2")
    # the shortcut's projection in layer2.0: 28·28·128 × 1·1·64 = 6,422,528 MACs
    assert layer2.values["macs"][0] - layer2.values["macs"][1] == 6_422_528


def test_vgg16_vs_vgg19_deeper(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    c = align([zoo_profile("vgg16"), zoo_profile("vgg19")], depth=2)
    only19 = [b.path for b in c.blocks if b.values["macs"][0] is None]
    assert only19 == ["features.conv3_4", "features.relu3_4", "features.conv4_4", "features.relu4_4",
                      "features.conv5_4", "features.relu5_4"]
    paths = [b.path for b in c.blocks]
    assert paths.index("features.conv3_4") == paths.index("features.relu3_3") + 1  # merged in place


def test_ratio_row_and_words() -> None:
    assert ratio_row([10, 5, None, 20]) == [1.0, 0.5, None, 2.0]
    assert ratio_row([0, 5]) == [None, None]
    assert grid.ratio_words(12_443_648 / 120_422_400) == "0.10x (9.7x less)"
    assert grid.ratio_words(2.5) == "2.50x (2.5x more)"
    assert grid.ratio_words(None) == "-"


def test_renderings(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    c = align([zoo_profile("inception-naive"), zoo_profile("inception")])
    table = text.comparison_table(c)
    branch3 = next(line for line in table.splitlines() if line.startswith("branch3"))
    assert "120,422,400" in branch3 and "12,443,648" in branch3 and "9.7x less" in branch3
    md = text.comparison_markdown(c)
    assert "| branch3 | 120,422,400 | 12,443,648 | 0.10x (9.7x less) |" in md
    csv_lines = text.comparison_csv(c).strip().splitlines()
    assert csv_lines[0] == "block,call,depth,model,type,params,macs,flops,output_bytes,activation_bytes,weight_bytes,bytes"
    assert len(csv_lines) == 1 + 8  # 4 blocks × 2 models
    data = json.loads(json.dumps(c.to_dict()))
    assert data["schema"] == "costlens.comparison/1"
    assert data["blocks"][2]["macs"] == [120_422_400, 12_443_648]


def test_automatic_depth(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    from costlens.comparison import align

    assert zoo_profile("resnet34").useful_depth() == 1  # conv1, layer1..layer4, fc carry MACs
    assert zoo_profile("inception-naive").useful_depth() == 1  # branch1..branch3
    assert zoo_profile("vgg16").useful_depth() == 2  # only features and classifier at depth 1
    c = align([zoo_profile("vgg16"), zoo_profile("vgg19")])
    assert any(b.path == "features.conv5_4" for b in c.blocks)
