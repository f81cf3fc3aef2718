"""Figure builders are pure: their data can be checked without a browser."""

from __future__ import annotations

from costlens.report import figures


def test_shape_walk_follows_the_trunk(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    fig = figures.shape_walk(zoo_profile("resnet50"))
    pixels, channels = fig.data[0].y, fig.data[1].y
    # conv1, bn1, relu at 112², maxpool and layer1 at 56², layer2 28², layer3 14², layer4 7², avgpool 1
    assert list(pixels) == [12544, 12544, 12544, 3136, 3136, 784, 196, 49, 1]
    assert list(channels) == [64, 64, 64, 64, 256, 512, 1024, 2048, 2048]


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


def test_layer_bars_cover_every_leaf_call(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("inception")
    bars = figures.layer_bars(result, "macs", "t").data[0]
    assert sum(bars.y) == 128_049_152  # every MAC sits in a leaf conv
    assert len(bars.x) == sum(1 for layer in result.layers if layer.leaf)


def test_self_flops_partition_the_total(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    result = zoo_profile("resnet18")
    assert sum(result.own(i)["flops"] for i in range(len(result.layers))) == result.totals["flops"]
