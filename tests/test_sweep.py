"""Sweeps: shape expansion, the fitted growth exponents, the width knob of the zoo."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from torch import nn

from costlens.api import profile
from costlens.errors import InputShapeError
from costlens.sweep import expand_shapes, fit, sweep


def conv_stack(width: float = 1.0) -> nn.Module:
    """Four 3x3 convs of c = 32·width channels on a c-channel input: MACs = 4 · H·W · c · 9c ∝ width²."""
    c = round(32 * width)
    return nn.Sequential(*[nn.Conv2d(c, c, 3, padding=1) for _ in range(4)])


def test_shapes_expand_with_same() -> None:
    assert expand_shapes("1x3x{112,224}x{same}") == [(1, 3, 112, 112), (1, 3, 224, 224)]
    assert expand_shapes("{1,2}x3x8x8") == [(1, 3, 8, 8), (2, 3, 8, 8)]
    assert expand_shapes("1x3x{4,8}x{5,6}") == [(1, 3, 4, 5), (1, 3, 4, 6), (1, 3, 8, 5), (1, 3, 8, 6)]
    with pytest.raises(InputShapeError):
        expand_shapes("1x3x{a,b}x{same}")
    with pytest.raises(InputShapeError):
        expand_shapes("1x3x{same}x8")


def test_fit_of_an_exact_power_law() -> None:
    found = fit([1, 2, 4, 8], [3, 12, 48, 192])  # 3·x²
    assert found is not None and found.exponent == pytest.approx(2.0, abs=1e-12) and found.r2 == pytest.approx(1.0)


def test_resolution_exponent_of_a_plain_conv_net_is_one() -> None:
    # conv5x5: a 5x5 same conv 192 -> 32: MACs = H·W·32 × 5·5·192, exactly proportional to H·W
    result = sweep("conv5x5", inputs=expand_shapes("1x192x{14,28,56,112}x{same}"))
    assert [p.totals["macs"] for p in result.points][1] == 120_422_400  # the lecture's 28x28 figure
    fits = result.fits()
    assert fits["macs"] is not None and fits["macs"].exponent == pytest.approx(1.0, abs=1e-9)
    assert fits["macs"].r2 == pytest.approx(1.0, abs=1e-9)
    assert fits["params"] is not None and fits["params"].exponent == pytest.approx(0.0, abs=1e-12)


def test_width_exponent_of_a_conv_stack_is_two() -> None:
    points = []  # the input's channels grow with the width too, so every conv grows as width²
    for width in (0.5, 1.0, 2.0, 4.0):
        c = round(32 * width)
        points.append(profile(conv_stack(width), (1, c, 16, 16)).totals["macs"])
    assert points[1] == 4 * 16 * 16 * 32 * 9 * 32  # 4 convs · H·W·c × 3·3·c = 9,437,184
    found = fit([0.5, 1.0, 2.0, 4.0], points)
    assert found is not None and found.exponent == pytest.approx(2.0, abs=1e-9)


def test_width_sweep_of_a_factory() -> None:
    # the stack's input keeps 32 channels, so the first conv grows as width and the rest as width²
    def stack(width: float = 1.0) -> nn.Module:
        c = round(64 * width)
        return nn.Sequential(nn.Conv2d(32, c, 1), *[nn.Conv2d(c, c, 3, padding=1) for _ in range(4)])

    result = sweep(stack, inputs=[(1, 32, 8, 8)], widths=[1.0, 2.0, 4.0])
    assert result.variable == "width" and len(result.points) == 3
    fits = result.fits()
    assert fits["macs"] is not None and 1.98 < fits["macs"].exponent < 2.0  # the 1x1 stem's linear share is small


def test_width_knob_leaves_the_defaults_and_scales_the_zoo() -> None:
    import torch

    from costlens.zoo import create

    assert profile("vgg16").totals["params"] == 138_357_544  # published, width 1
    assert profile("resnet18").totals["macs"] == 1_814_073_344  # published, width 1
    with torch.device("meta"):
        half = create("resnet18", width=0.5)
    # conv1 at half width: 112·112·32 × 7·7·3 = 59,006,976
    assert profile(half, (1, 3, 224, 224)).find("conv1").macs == 112 * 112 * 32 * 7 * 7 * 3 == 59_006_976


def test_batch_sweep_and_the_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from costlens.cli import cli

    result = sweep("conv5x5", batches=[1, 2, 4])
    found = result.fits()["macs"]
    assert found is not None and found.exponent == pytest.approx(1.0, abs=1e-12)
    page = tmp_path / "s.html"
    ran = CliRunner().invoke(cli, ["sweep", "conv5x5", "--input", "1x192x{14,28}x{same}", "--format", "html",
                                   "-o", str(page), "--plotlyjs", str(tmp_path)], standalone_mode=False)
    assert ran.return_value == 0, ran.output
    assert "Growth exponents" in page.read_text()
    with pytest.raises(InputShapeError):
        sweep("conv5x5", batches=[1, 2], widths=[1.0, 2.0])


def test_depth_sweep_takes_the_family_at_each_depth() -> None:
    import math

    result = sweep("resnet50", depths=[18, 34, 152])
    assert result.model == "resnet" and result.variable == "depth"
    # torchvision's documented params of resnet18, resnet34 and resnet152
    assert [p.totals["params"] for p in result.points] == [11_689_512, 21_797_672, 60_192_808]
    two = sweep("vgg16", depths=[11, 19]).fits()["params"]
    # two points: the exponent is the slope ln(143,667,240 / 132,863,336) / ln(19 / 11) = 0.07818 / 0.54654
    assert two is not None and two.exponent == pytest.approx(math.log(143_667_240 / 132_863_336) / math.log(19 / 11))
    assert two.exponent == pytest.approx(0.14304, abs=1e-4)
    with pytest.raises(InputShapeError, match="resnet at depths 18, 34, 50, 101, 152, not 42"):
        sweep("resnet50", depths=[18, 42])
    with pytest.raises(InputShapeError, match="no family of depths"):
        sweep("inception", depths=[1, 2])


def test_the_sweep_command_saves_its_json_beside_its_page(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from costlens.cli import cli

    monkeypatch.chdir(tmp_path)
    ran = CliRunner().invoke(cli, ["sweep", "conv5x5", "--batch", "1,2", "--plotlyjs", "."])
    assert ran.exit_code == 0, ran.output
    saved = json.loads((tmp_path / "reports" / "sweep-conv5x5-batch.json").read_text())
    assert saved["schema"] == "costlens.sweep/1" and [p["totals"]["macs"] for p in saved["points"]] == [
        120_422_400, 2 * 120_422_400]
    assert (tmp_path / "reports" / "sweep-conv5x5-batch.html").is_file()


def test_a_sweep_shows_itself_in_a_notebook() -> None:
    result = sweep("conv5x5", batches=[1, 2])
    # conv5x5's MACs double with the batch, its params do not change: exponents 1 and 0
    assert repr(result) == "<Sweep 'conv5x5' over batch: 2 points; params ∝ x^0.00, macs ∝ x^1.00>"
    assert "| batch 2 |" in result._repr_markdown_() and "MACs ∝ batch^1.000" in result._repr_markdown_()


def test_inputs_expand_as_profile_writes_them() -> None:
    from costlens.sweep import expand_inputs

    points = expand_inputs(["ids=1x{4,8}:int64", "mask=1x{same}:int64:ones", "extra=2x3"])
    assert [[(t.name, t.shape, t.dtype, t.fill) for t in point] for point in points] == [
        [("ids", (1, 4), "int64", None), ("mask", (1, 4), "int64", "ones"), ("extra", (2, 3), None, None)],
        [("ids", (1, 8), "int64", None), ("mask", (1, 8), "int64", "ones"), ("extra", (2, 3), None, None)]]
    # {same} repeats the group before it, not the size before it
    assert expand_shapes("{1,2}x3x{same}") == [(1, 3, 1), (2, 3, 2)]
    with pytest.raises(InputShapeError, match="one input carries the swept sizes"):
        expand_inputs(["a=1x{4,8}", "b=1x{2,3}"])
    with pytest.raises(InputShapeError, match="unknown dtype 'int65'"):  # each point parsed as --input parses it
        expand_inputs(["ids=1x{4,8}:int65"])


def test_the_sweep_command_takes_named_inputs() -> None:
    import json

    from costlens.cli import cli

    ran = CliRunner().invoke(cli, ["sweep", "tests.test_api:Tagger", "--input", "ids=1x{16,32,64}:int64",
                                   "--input", "mask=1x{same}:int64:ones", "--format", "json", "--no-save"])
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.stdout)
    assert result["variable"] == "ids size (dim 1)" and [p["x"] for p in result["points"]] == [16, 32, 64]
    # the projection alone has MACs: n tokens × 32 × 5 = 2,560, 5,120 (tests/test_api.py's TAGGER_MACS), 10,240
    assert [p["totals"]["macs"] for p in result["points"]] == [2_560, 5_120, 10_240]
    assert result["fits"]["macs"]["exponent"] == pytest.approx(1.0)
