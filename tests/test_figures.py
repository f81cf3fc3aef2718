"""Figure builders are pure: their data can be checked without a browser."""

from __future__ import annotations

from costlens.report import figures


def test_shape_walk_follows_the_trunk(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    fig = figures.shape_walk(zoo_profile("resnet50"))
    pixels, channels = fig.data[0].y, fig.data[1].y
    # conv1 at 112², maxpool and layer1 at 56², layer2 28², layer3 14², layer4 7², avgpool 1;
    # bn1 and relu keep the shape and are no step of the walk
    assert list(pixels) == [12544, 3136, 3136, 784, 196, 49, 1]
    assert list(channels) == [64, 64, 256, 512, 1024, 2048, 2048]
    assert "falls" not in fig.layout.title.text  # the title says what is drawn, not what should happen


def test_shape_walk_draws_parallel_branches_as_branches(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    fig = figures.shape_walk(zoo_profile("inception"))
    lines = {trace.name: list(trace.y) for trace in fig.data}
    # from the 192-channel input: 1×1 to 64; 1×1 to 96 then 3×3 to 128; 1×1 to 16 then 5×5 to 32;
    # a 3×3 max-pool keeps 192, then a 1×1 projects to 32 (Table 1, inception(3a))
    assert lines == {"branch1": [192, 64], "branch2": [192, 96, 128], "branch3": [192, 16, 32],
                     "branch4": [192, 192, 32]}
    assert "4 parallel branches" in fig.layout.title.text and "784" in fig.layout.title.text  # 28·28 throughout


def test_sunburst_is_a_consistent_tree(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("googlenet")
    sun = figures.sunburst(result).data[0]
    value = dict(zip(sun.ids, sun.values))
    children: dict[str, int] = {}
    for node, parent in zip(sun.ids, sun.parents):
        if parent:
            children[parent] = children.get(parent, 0) + value[node]
    # branchvalues="total" needs every parent to hold at least its children's sum
    assert all(value[p] >= total for p, total in children.items())
    assert value["0"] == result.totals["macs"]


def test_layer_bars_show_the_layers_that_carry_the_metric(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("inception")
    bars = figures.layer_bars(result, "macs", "t").data[0]
    assert sum(bars.y) == 128_049_152  # every MAC sits in a leaf conv
    assert all(bars.y)  # ReLU and the max-pool carry no MACs and get no bar
    blocks, names = bars.x
    # six convolutions: branch1; branch2's reduce and 3×3; branch3's reduce and 5×5; branch4's projection
    assert list(names) == ["branch1", "reduce", "conv", "reduce", "conv", "branch4"]
    # one-bar blocks name the bar and leave the block row blank, so short names never overprint
    assert [b.strip("\u200b") for b in blocks] == ["", "branch2", "branch2", "branch3", "branch3", ""]


def test_bars_are_colored_by_block_alike_in_every_chart(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("resnet50")
    for metric in ("macs", "params"):
        bars = figures.layer_bars(result, metric, "t").data[0]
        colors: dict[str, set[str]] = {}
        for block, color in zip(bars.x[0], bars.marker.color):
            colors.setdefault(block, set()).add(color)
        assert all(len(c) == 1 for b, c in colors.items() if b.strip("\u200b"))  # a block is one color
        # by the order of the top-level calls: conv1, bn1, relu, maxpool, layer1, layer2, layer3
        assert colors["layer3"] == {figures.BLOCK_COLORS[6]}


def test_sunburst_labels_the_largest_blocks_with_their_share(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    sun = figures.sunburst(zoo_profile("googlenet")).data[0]
    share = dict(zip(sun.labels, sun.text))
    assert share["conv2"] == "21.9%"  # 346,816,512 / 1,582,671,872 MACs
    assert share["fc"] == ""  # 1,024,000: 0.06%, too small to label


def test_self_flops_partition_the_total(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("resnet18")
    assert sum(result.own(i)["flops"] for i in range(len(result.layers))) == result.totals["flops"]


def test_a_model_of_vectors_has_a_page_without_a_shape_walk() -> None:
    """Two Linear branches side by side on a 1x8 input: no feature map to walk (it once raised IndexError)."""
    import torch
    from torch import nn

    import costlens
    from costlens.report.figures import profile_figures

    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(8, 4), nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.a(x), self.b(x)], 1)

    ids = [name for name, _ in profile_figures(costlens.profile(Two(), (1, 8)))]
    assert "shape-walk" not in ids and "macs-bars" in ids
