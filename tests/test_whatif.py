"""What the alternatives of a convolution cost (costlens/alternatives.py), checked against the
lecture's figures and hand arithmetic; rewriting models; the reports; the command line."""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import costlens
from costlens.alternatives import (
    HONESTY,
    Conv,
    LayerWhatIf,
    Spec,
    WhatIf,
    build,
    conv_of,
    default_specs,
    misfit,
    parse_applied,
    parse_spec,
    rewrite,
    whatif,
)
from costlens.cli import cli
from costlens.comparison import align
from costlens.errors import InputShapeError
from costlens.report import html
from costlens.report import whatif_text as text


@functools.cache
def _lecture() -> WhatIf:
    return whatif("conv5x5", reduce=16)


@functools.cache
def _googlenet(top: int | None = None) -> WhatIf:
    return whatif("googlenet", top=top)


def _priced(result: WhatIf, spec: str, layer: int = 0):  # type: ignore[no-untyped-def]
    return next(p for p in result.layers[layer].alternatives if p.spec == spec)


# --- the lecture's layer: 28×28×192 -> 32, 5×5 ------------------------------------------


def test_the_lecture_layer_and_its_alternatives_by_hand() -> None:
    result = _lecture()
    (layer,) = result.layers
    assert layer.path == "conv" and layer.conv == "5×5 192→32"
    assert layer.macs == 120_422_400  # 28·28·32 × 5·5·192
    macs = {p.spec: p.macs for p in layer.alternatives}
    assert macs["bottleneck(16)"] == 12_443_648  # 28·28·16·192 + 28·28·32·5·5·16 = 2,408,448 + 10,035,200
    assert macs["depthwise"] == 8_580_096  # 28·28·192·25 + 28·28·192·32 = 3,763,200 + 4,816,896
    assert macs["grouped(4)"] == 30_105_600  # 28·28·32 × 5·5·(192/4)
    assert macs["factorized"] == 50_577_408  # 28·28·32·9·192 + 28·28·32·9·32 = 43,352,064 + 7,225,344
    # 5×1 192→32: 28·28·32 × 5·192 = 24,084,480; 1×5 32→32: 28·28·32 × 5·32 = 4,014,080
    assert macs["asymmetric"] == 24_084_480 + 4_014_080 == 28_098_560
    assert macs["grouped(2)"] == 60_211_200 and macs["grouped(8)"] == 15_052_800 and macs["grouped(32)"] == 3_763_200


def test_the_lecture_bottleneck_is_the_zoo_bottleneck_model() -> None:
    """bottleneck(16) of conv5x5 is conv1x1-5x5 (the zoo's own 1×1 then 5×5, built apart)."""
    priced = _priced(_lecture(), "bottleneck(16)")
    zoo = costlens.profile("conv1x1-5x5")
    assert (priced.params, priced.macs) == (zoo.totals["params"], zoo.totals["macs"])
    assert priced.params == 15_920  # 192·16 + 16 + 16·32·25 + 32 = 3,088 + 12,832


def test_params_and_savings_by_hand() -> None:
    layer = _lecture().layers[0]
    assert layer.params == 153_632  # 192·32·25 + 32
    depthwise = _priced(_lecture(), "depthwise")
    assert depthwise.params == 11_168  # 192·25 + 192 + 192·32 + 32 = 4,992 + 6,176
    assert depthwise.macs_saved == 120_422_400 - 8_580_096
    assert depthwise.saved_of_layer == pytest.approx(1 - 8_580_096 / 120_422_400)
    assert depthwise.saved_of_model == depthwise.saved_of_layer  # the model is this one layer
    assert layer.share_of_model == 1.0


def test_bottleneck_by_ratio() -> None:
    result = whatif("conv5x5")
    macs = {p.spec: p.macs for p in result.layers[0].alternatives}
    assert list(macs)[:3] == ["bottleneck(r=2)", "bottleneck(r=4)", "bottleneck(r=8)"]
    assert macs["bottleneck(r=4)"] == 7_225_344 + 30_105_600  # 28·28·48·192 + 28·28·32·25·48


# --- output shapes ---------------------------------------------------------------------


def _out(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(module(torch.empty(shape, device="meta")).shape)


CONVS = [  # kernel, stride, padding
    *itertools.product([1, 3, 5, 7], [1, 2, 3], [0, 1, 2, 3]),
    ((3, 5), 1, (1, 2)), ((5, 3), (2, 1), (2, 0)), (11, 4, 2), (11, 4, 5), (4, 1, "same"), (5, 1, "same"),
    (7, 1, "valid"), (6, 2, 1),
]


@pytest.mark.parametrize(("kernel", "stride", "padding"), CONVS)
def test_every_alternative_keeps_the_output_shape(kernel, stride, padding) -> None:  # type: ignore[no-untyped-def]
    with torch.device("meta"):
        original = nn.Conv2d(64, 32, kernel, stride=stride, padding=padding)
    conv = conv_of(original)
    built = 0
    for size, spec in itertools.product([(1, 64, 23, 23), (2, 64, 32, 17)], default_specs(16)):
        if min(size[2:]) < max(original.kernel_size) or misfit(conv, spec) is not None:
            continue
        with torch.device("meta"):
            alternative = build(conv, spec)
        assert _out(alternative, size) == _out(original, size), (spec, size)
        built += 1
    assert built >= 6  # bottleneck(16), grouped(2, 4, 8, 32) fit every one of these; depthwise from 3×3 on


def test_every_zoo_convolution_is_priced_or_refused_with_a_reason() -> None:
    """Each alternative of every convolution of these models was traced with the original's
    output shape (the guard in _priced), or says why it does not fit."""
    for name in ("googlenet", "resnet18", "alexnet-owt", "nin", "lenet5"):
        result = whatif(name, top=1000)
        assert len(result.layers) == result.convolutions
        for layer in result.layers:
            assert layer.reason is None, (name, layer.path, layer.reason)
            for priced in layer.alternatives:
                assert (priced.macs is None) == (priced.reason is not None), (name, layer.path, priced)
                assert "is not the original's" not in (priced.reason or ""), (name, layer.path, priced)


def test_stride_and_padding_of_a_factorized_stem() -> None:
    """GoogLeNet's 7×7/2 (3→64, padding 3, 224 -> 112) as three 3×3s: 3×3/2 3→3 pad 1, then
    3×3 3→3 and 3×3 3→64 with padding 1 (the narrower channels inside)."""
    conv1 = _googlenet(3).layers[2]
    assert conv1.path == "conv1.conv" and conv1.conv == "7×7 3→64 /2"
    factorized = next(p for p in conv1.alternatives if p.spec == "factorized")
    assert factorized.parts == "3×3 3→3 /2 · 3×3 3→3 · 3×3 3→64"
    assert factorized.macs == 112 * 112 * (3 * 9 * 3 + 3 * 9 * 3 + 64 * 9 * 3)  # 23,708,160
    asymmetric = next(p for p in conv1.alternatives if p.spec == "asymmetric")
    # 7×1 3→3 stride 2 down (112×224 out), then 1×7 3→64 stride 2 across (112×112)
    assert asymmetric.macs == 112 * 224 * 3 * 7 * 3 + 112 * 112 * 64 * 7 * 3


def test_factorizing_needs_enough_padding_under_a_stride() -> None:
    with torch.device("meta"):
        alexnet_stem = nn.Conv2d(3, 64, 11, stride=4, padding=2)  # five 3×3s would need a padding of 4
    reason = misfit(conv_of(alexnet_stem), Spec("factorized"))
    assert reason is not None and "padding of at least 4" in reason


# --- what is chosen, and what cannot be rewritten ---------------------------------------


def test_the_default_is_the_convolutions_that_make_ninety_percent() -> None:
    result = _googlenet()
    macs = [layer.macs for layer in result.layers]
    assert macs == sorted(macs, reverse=True)
    assert sum(macs) >= 0.9 * result.model_macs > sum(macs[:-1])
    assert result.layers[0].path == "conv2.conv" and result.layers[0].macs == 56 * 56 * 192 * 3 * 3 * 64


def test_top_and_layers() -> None:
    assert [layer.path for layer in _googlenet(2).layers] == ["conv2.conv", "inception3b.branch2.conv.conv"]
    chosen = whatif("googlenet", layers=["inception3a.branch3.conv.conv", "conv1.conv"])
    assert [layer.path for layer in chosen.layers] == ["inception3a.branch3.conv.conv", "conv1.conv"]
    assert chosen.layers[0].macs == 10_035_200  # 28·28·32 × 5·5·16
    with pytest.raises(InputShapeError, match="not both"):
        whatif("googlenet", top=2, layers=["conv1.conv"])


class Awkward(nn.Module):
    """One of each convolution no alternative is built for, and one plain one."""

    def __init__(self) -> None:
        super().__init__()
        self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.transposed = nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.volume = nn.Conv3d(8, 8, 3, padding=1)
        self.line = nn.Conv1d(8, 8, 3, padding=1)
        self.plain = nn.Conv2d(8, 6, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y = self.depthwise(self.grouped(self.dilated(x)))
        return self.transposed(y), self.volume(y.unsqueeze(2)), self.line(y.flatten(2)), self.plain(y)


def test_layers_that_cannot_be_rewritten_are_listed_with_the_reason() -> None:
    with torch.device("meta"):
        model = Awkward()
    result = whatif(model, (1, 8, 8, 8), top=100)
    reasons = {layer.path: layer.reason for layer in result.layers}
    assert set(reasons) == {"dilated", "transposed", "grouped", "depthwise", "volume", "line", "plain"}
    assert "dilated" in reasons["dilated"] and "transposed" in reasons["transposed"]
    assert reasons["grouped"] == "already grouped (groups=2)" and "already depthwise" in reasons["depthwise"]
    assert "3-D" in reasons["volume"] and "1-D" in reasons["line"] and reasons["plain"] is None
    plain = next(layer for layer in result.layers if layer.path == "plain")
    grouped = {p.spec: p.reason for p in plain.alternatives if p.spec.startswith("grouped")}
    assert grouped["grouped(4)"] == "6 output channels do not divide into 4 groups"
    assert grouped["grouped(2)"] is None
    listed = text.table(result)
    for path, reason in reasons.items():
        assert path in listed and (reason is None or f"cannot rewrite: {reason}" in listed)


# --- rewriting ---------------------------------------------------------------------------


def test_rewrite_returns_a_new_model_and_leaves_the_original_as_it_was() -> None:
    torch.manual_seed(0)
    original = nn.Sequential(nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.Conv2d(32, 8, 3, padding=1))
    before = {key: value.clone() for key, value in original.state_dict().items()}
    modules = list(original.named_modules())
    rewritten = costlens.rewrite(original, {"0": "bottleneck(4)", "2": "depthwise"})
    assert [(n, type(m)) for n, m in original.named_modules()] == [(n, type(m)) for n, m in modules]
    assert all(torch.equal(before[key], value) for key, value in original.state_dict().items())
    assert rewritten is not original and rewritten[1] is not original[1]
    assert [n for n, _ in rewritten.named_modules()] == ["", "0", "0.reduce", "0.conv", "1", "2", "2.depthwise",
                                                           "2.pointwise"]
    x = torch.randn(2, 16, 12, 12)
    assert rewritten(x).shape == original(x).shape == (2, 8, 12, 12)  # real cpu tensors, both run


def test_rewrite_errors_are_one_line() -> None:
    with torch.device("meta"):
        net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3, dilation=2))
    cases = [
        ({"O": "depthwise"}, "Sequential has no module 'O'; closest: "),
        ({"1": "depthwise"}, "1 is a ReLU, not a convolution"),
        ({"0": "grouped(2)"}, "grouped(2) does not fit 0 (3×3 3→16): 3 input channels do not divide into 2 groups"),
        ({"2": "depthwise"}, "2 cannot be rewritten: dilated"),
        ({"0": "bottleneck"}, "bottleneck needs its argument: write bottleneck(C) or bottleneck(r=R)"),
    ]
    for changes, message in cases:
        with pytest.raises(InputShapeError) as error:
            costlens.rewrite(net, changes)
        assert message in str(error.value) and "\n" not in str(error.value)


def test_a_rewritten_models_totals_are_the_original_less_the_layer_plus_its_alternative() -> None:
    """inception(3a): its 5×5 (16→32 on 28×28) made depthwise-separable."""
    original, rewritten = rewritten_profiles("inception", {"branch3.conv.conv": "depthwise"})
    assert rewritten.totals["macs"] == costlens.profile("inception", apply=["branch3.conv.conv=depthwise"]).totals["macs"]
    assert original.totals["macs"] == 128_049_152  # Szegedy et al. 2014, Table 1, inception(3a)
    layer, alternative = 10_035_200, 313_600 + 401_408  # 28·28·32·25·16; 28·28·16·25 + 28·28·16·32
    assert rewritten.totals["macs"] == 128_049_152 - layer + alternative == 118_728_960
    assert rewritten.totals["params"] == original.totals["params"] - 12_832 + 960  # 16·32·25+32; 16·25+16 + 16·32+32
    comparison = align([original, rewritten])
    assert comparison.total("macs") == [128_049_152, 118_728_960]
    branch3 = next(block for block in comparison.blocks if block.path == "branch3")
    # its 1×1 reduce (192→16: 28·28·16·192 = 2,408,448) stays: the lecture's 12,443,648 before
    assert branch3.values["macs"] == (2_408_448 + 10_035_200, 2_408_448 + alternative) == (12_443_648, 3_123_456)
    assert rewritten.model == "inception [branch3.conv.conv=depthwise]"


def test_a_rewritten_model_built_with_real_weights_for_timing() -> None:
    """A request with apply builds afresh on a real device and rewrites in place: the same cost."""
    from costlens.request import Request
    from costlens.run import build, model_of

    named, _ = model_of(Request("inception", apply=("branch3.conv.conv=depthwise",)))
    net = build(named, torch.device("cpu"))
    assert net.branch3.conv.conv.depthwise.weight.device.type == "cpu"
    assert net(torch.randn(1, 192, 28, 28)).shape == (1, 256, 28, 28)
    assert costlens.profile(net, (1, 192, 28, 28)).totals["macs"] == 118_728_960  # as above


def test_a_saved_profile_has_nothing_to_rewrite() -> None:
    with pytest.raises(InputShapeError, match="is a saved profile: it has no modules to price or rewrite"):
        whatif("reports/googlenet.json")


def test_googlenet_rewritten_as_the_table_says() -> None:
    """What the table prices for a layer is what the rewritten model saves."""
    table = _googlenet(2)
    priced = _priced(table, "bottleneck(r=4)", layer=1)
    original, rewritten = rewritten_profiles("googlenet", {"inception3b.branch2.conv.conv": "bottleneck(r=4)"})
    assert original.totals["macs"] - rewritten.totals["macs"] == priced.macs_saved
    # 1×1 128→32 then 3×3 32→192 on 28×28, against 3×3 128→192
    assert priced.macs_saved == 28 * 28 * 192 * 9 * 128 - (28 * 28 * 32 * 128 + 28 * 28 * 192 * 9 * 32)


def rewritten_profiles(model: str, applied: dict[str, str]) -> tuple[costlens.Profile, costlens.Profile]:
    """The model and its rewrite, counted together as the command line counts them."""
    from costlens.request import Request
    from costlens.run import run_all

    original, rewritten = run_all([Request(model), Request(model, apply=applied)])
    return original, rewritten


# --- the alternatives as text ------------------------------------------------------------


@pytest.mark.parametrize(("written", "spec"), [
    ("bottleneck(16)", Spec("bottleneck", 16)), (" bottleneck( r = 4 ) ", Spec("bottleneck", 4, True)),
    ("depthwise", Spec("depthwise")), ("grouped(32)", Spec("grouped", 32)), ("Factorized", Spec("factorized")),
    ("asymmetric", Spec("asymmetric")),
])
def test_specs_are_read_and_written_back(written: str, spec: Spec) -> None:
    assert parse_spec(written) == spec
    assert parse_spec(str(spec)) == spec


@pytest.mark.parametrize(("written", "message"), [
    ("bottleneck(16", "is not an alternative: write bottleneck(16), bottleneck(r=4), depthwise"),
    ("bottlenek(16)", "no alternative named 'bottlenek': did you mean bottleneck?"),
    ("pruned", "no alternative named 'pruned'"),
    ("depthwise(2)", "depthwise takes no argument"),
    ("grouped", "grouped needs its argument: write grouped(G)"),
    ("grouped(r=2)", "grouped has no argument 'r'"),
    ("grouped(2.5)", "the argument must be a whole number"),
    ("bottleneck(0)", "the argument must be a whole number of at least 1"),
    ("", "is not an alternative"),
])
def test_malformed_specs_are_one_line(written: str, message: str) -> None:
    with pytest.raises(InputShapeError) as error:
        parse_spec(written, "--apply x")
    assert message in str(error.value) and str(error.value).startswith("--apply x: ")


def test_applied_is_path_equals_alternative() -> None:
    assert parse_applied(["a.b=bottleneck(r=4)", "c=depthwise"]) == {
        "a.b": Spec("bottleneck", 4, True), "c": Spec("depthwise")}
    for bad in (["a.b"], ["=depthwise"], ["a="], ["a=depthwise", "a=grouped(2)"]):
        with pytest.raises(InputShapeError):
            parse_applied(bad)


# --- results and reports ---------------------------------------------------------------


def test_frame_json_and_every_text_say_what_alternatives_are() -> None:
    result = _lecture()
    frame = result.to_frame()
    assert len(frame) == 8 and list(frame["alternative"])[0] == "bottleneck(16)"
    assert frame.loc[frame["alternative"] == "depthwise", "macs"].item() == 8_580_096
    data = json.loads(result.to_json())
    assert data["schema"] == "costlens.whatif/1" and data["totals"]["macs"] == 120_422_400
    assert data["layers"][0]["alternatives"][0]["macs"] == 12_443_648
    for rendered in (text.table(result), text.markdown(result), html.whatif_page(result)):
        assert HONESTY in rendered.replace("&#x27;", "'")
    assert "12,443,648" in text.table(result) and "0.10x (9.7x less)" in text.table(result)
    assert text.csv(result).splitlines()[0].startswith("layer,type,conv,layer_params,layer_macs")
    with pytest.raises(FrozenInstanceError):
        result.model = "x"  # type: ignore[misc]


def test_a_model_without_convolutions() -> None:
    with torch.device("meta"):
        mlp = nn.Sequential(nn.Linear(8, 4))
    result = whatif(mlp, (1, 8))
    assert result.layers == () and "nothing to rewrite" in text.table(result)
    assert "nothing to rewrite" in html.whatif_page(result)


def test_the_public_names_are_the_functions() -> None:
    import costlens.report.whatif_text  # noqa: F401  (imports costlens.alternatives first)

    assert costlens.whatif is whatif and costlens.rewrite is rewrite
    assert isinstance(LayerWhatIf, type) and isinstance(Conv, type)


# --- the command line --------------------------------------------------------------------


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)


def test_whatif_prints_the_table_and_saves_its_reports(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("whatif", "conv5x5", "--reduce", "16")
    assert result.exit_code == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "bottleneck(16)" in line)
    assert "12,443,648" in line and "15,920" in line
    assert HONESTY in result.stdout
    assert result.stderr == "saved reports/whatif-conv5x5.json and reports/whatif-conv5x5.html\n"
    saved = json.loads((tmp_path / "reports" / "whatif-conv5x5.json").read_text())
    assert saved["layers"][0]["alternatives"][1]["macs"] == 8_580_096


def test_whatif_formats_and_layers(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(run("whatif", "googlenet", "--layer", "inception3a.branch3.conv.conv", "--format", "json").stdout)
    assert [layer["path"] for layer in data["layers"]] == ["inception3a.branch3.conv.conv"]
    assert run("whatif", "googlenet", "--top", "1", "--format", "markdown").stdout.count("| conv2.conv |") == 1
    assert run("whatif", "conv5x5", "--format", "html", "-o", "page.html").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]


def test_apply_profiles_the_rewritten_model_and_compare_sets_it_beside(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(run("whatif", "inception", "--apply", "branch3.conv.conv=depthwise", "--format", "json").stdout)
    assert data["totals"]["macs"] == 118_728_960  # 128,049,152 - 10,035,200 + 715,008, as above
    compared = run("whatif", "inception", "--apply", "branch3.conv.conv=depthwise", "--compare", "--no-save")
    assert compared.exit_code == 0, compared.stderr
    totals = next(line for line in compared.stdout.splitlines() if line.startswith("MACs "))
    assert "128,049,152" in totals and "118,728,960" in totals
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "message"), [
    (["googlenet", "--layer", "inception3b.branch2.1"],
     "--layer: googlenet has no module 'inception3b.branch2.1'; closest: inception3b.branch2.reduce.conv, "
     "inception3b.branch2.conv.conv"),
    (["googlenet", "--apply", "inception3b.branch2.1=depthwise"], "closest: inception3b.branch2.reduce.conv"),
    (["googlenet", "--layer", "inception3b.branch2"], "inception3b.branch2 is a Sequential, not a convolution"),
    (["googlenet", "--apply", "conv1=depthwise"], "conv1 is a ConvReLU, not a convolution (its convolutions: conv1.conv)"),
    (["googlenet", "--apply", "conv1.conv=grouped(2)"], "3 input channels do not divide into 2 groups"),
    (["conv5x5", "--apply", "conv=bottleneck(r=5)"], "192 input channels do not divide by r=5"),
    (["conv5x5", "--apply", "conv"], "'conv' is not PATH=ALTERNATIVE"),
    (["conv5x5", "--apply", "conv=bottleneck(16"], "'bottleneck(16' is not an alternative"),
    (["conv5x5", "--apply", "conv=depthwise", "--top", "2"], "choose one"),
    (["conv5x5", "--compare"], "give --apply"),
])
def test_bad_input_is_one_line_exit_two_and_nothing_written(run, tmp_path: Path, args: list[str],
                                                             message: str) -> None:  # type: ignore[no-untyped-def]
    result = run("whatif", *args, "--save", "out")
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("costlens: error: ") and message in lines[0], result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


# --- the page in a browser ---------------------------------------------------------------


def test_the_page_draws_a_chart_per_layer(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = _googlenet(4)
    path = html.write_page(tmp_path / "whatif.html", lambda src: html.whatif_page(result, src))
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri())
    page.wait_for_function("document.querySelectorAll('.chart .main-svg').length >= 5")
    charts = page.eval_on_selector_all(".chart", "els => els.map(e => e.dataset.chart)")
    assert charts == ["overview", "layer-0", "layer-1", "layer-2", "layer-3"]
    # the heatmap names every layer; each layer's chart names the original and every alternative
    overview = page.inner_text('[data-chart="overview"]')
    assert all(layer.path in overview for layer in result.layers)
    first = page.inner_text('[data-chart="layer-0"]')
    assert "original" in first and "bottleneck(r=4)" in first and "not applicable" in first
    assert page.locator("#whatif tbody tr.original").count() == 4
    assert HONESTY in page.inner_text("#table") and not errors
    page.close()
