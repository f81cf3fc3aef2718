"""End to end through the CLI: the commands a user types, and every kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from costlens.cli import cli
from costlens.zoo import names


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Invoke the CLI in an empty working directory; returns the click Result."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def _one_line_error(result, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("costlens: error: "), result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_profile_inception_prints_the_table_and_saves_json(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("profile", "inception")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    branch3 = next(line for line in lines if line.startswith("branch3"))
    assert "12,443,648" in branch3  # the lecture's bottleneck number, with separators
    assert any(line.startswith("Total") and "128,049,152" in line for line in lines)
    assert "Convention: MACs count multiply-accumulates" in result.stdout
    assert "Uncounted ops: none" in result.stdout
    saved = json.loads((tmp_path / "reports" / "inception.json").read_text())
    assert saved["schema"] == "costlens.profile/1"
    assert saved["totals"]["macs"] == 128_049_152


def test_depth_limits_the_table(run) -> None:  # type: ignore[no-untyped-def]
    shallow = run("profile", "inception").stdout
    deep = run("profile", "inception", "--depth", "3").stdout
    assert "reduce" not in shallow
    assert "\n    conv " in deep  # branch3.conv.conv at depth 3: two spaces per level below 1


def test_json_format_follows_the_contract(run) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(run("profile", "conv5x5", "--format", "json").stdout)
    assert set(data) >= {"schema", "model", "input_shape", "dtype", "device", "environment",
                         "convention", "totals", "layers", "uncounted", "timing"}
    assert data["input_shape"] == [1, 192, 28, 28]
    conv = next(layer for layer in data["layers"] if layer["path"] == "conv")
    assert conv["formula"] == "28·28·32 × 5·5·192 = 120,422,400"
    assert conv["ops"] == {"aten.convolution": 1}


def test_csv_and_markdown_and_output_file(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv_text = run("profile", "lenet5", "--format", "csv").stdout
    assert csv_text.splitlines()[0].startswith("path,type,depth,call,leaf")
    assert len(csv_text.strip().splitlines()) == 1 + 13  # header + root + 12 layers
    result = run("profile", "lenet5", "--format", "markdown", "-o", "out/lenet.md")
    assert result.exit_code == 0
    text = (tmp_path / "out" / "lenet.md").read_text()
    assert "| Layer |" in text and "**61,706**" in text


def test_batch_and_input_options(run) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(run("profile", "conv5x5", "--batch", "4", "--format", "json").stdout)
    assert data["totals"]["macs"] == 4 * 120_422_400
    data = json.loads(run("profile", "conv5x5", "--input", "1x192x14x14", "--format", "json").stdout)
    assert data["totals"]["macs"] == 14 * 14 * 32 * 5 * 5 * 192  # 30,105,600


def test_list_shows_every_model(run) -> None:  # type: ignore[no-untyped-def]
    result = run("list")
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()}
    assert set(names()) <= listed
    vgg16 = next(line for line in result.stdout.splitlines() if line.startswith("vgg16 "))
    assert "138M" in vgg16 and "15.5G" in vgg16 and "Simonyan" in vgg16


def test_user_model_by_import_path(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "usernet.py").write_text(textwrap.dedent("""
        import torch.nn.functional as F
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3, padding=1)
            def forward(self, x):
                return F.relu(self.conv(x)) @ x.new_ones(64, 2)

        def build_net():
            return Net()
    """))
    result = run("profile", "usernet:build_net", "--input", "1x3x64x64", "--format", "json")
    data = json.loads(result.stdout)
    # conv: 64·64·8 × 3·3·3 = 884,736; matmul (1·8·64 × 64)·2 = 512·64·2 = 65,536
    assert data["totals"]["macs"] == 884_736 + 65_536
    assert (tmp_path / "reports" / "usernet-build_net.json").exists()


@pytest.mark.parametrize(("args", "needle"), [
    (["profile", "resnet5O"], "unknown model 'resnet5O'; did you mean resnet50"),
    (["profile", "vgg16", "--input", "1x3xfoo"], "malformed input shape '1x3xfoo'"),
    (["profile", "vgg16", "--input", "1x3x0x4"], "has a size below 1"),
    (["profile", "vgg16", "--input", "1x3x32x32"], "layer 'classifier.fc6' (Conv2d) failed on input 1x512x1x1"),
    (["profile", "lenet5", "--input", "1x3x32x32"], "layer 'conv1' (Conv2d) failed on input 1x3x32x32"),
    (["profile", "nosuchpkg.models:net", "--input", "1x3x8x8"], "cannot import 'nosuchpkg.models'"),
    (["profile", "vgg16", "--format", "xml"], "Invalid value for '--format'"),
    (["profile", "inception", "-o", "/proc/costlens/x.txt"], "cannot write /proc/costlens/x.txt"),
    (["profile", "inception", "--device", "cpu", "--input", "1x192x100000x100000"], "cannot allocate"),
])
def test_bad_input_is_one_line_and_exit_2(run, args: list[str], needle: str) -> None:  # type: ignore[no-untyped-def]
    _one_line_error(run(*args), needle)


def test_forward_that_raises_names_the_layer(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "badnet.py").write_text(textwrap.dedent("""
        from torch import nn
        class Boom(nn.Module):
            def forward(self, x):
                raise RuntimeError("boom")
        def build():
            return nn.Sequential(nn.Conv2d(3, 4, 3), Boom())
    """))
    _one_line_error(run("profile", "badnet:build", "--input", "1x3x8x8"), "layer '1' (Boom) failed on input 1x4x6x6: boom")


def test_help_and_version_do_not_import_torch() -> None:
    code = "import sys; from costlens.cli import cli; cli.main(['--help'], standalone_mode=False); " \
           "assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "profile" in done.stdout
    version = subprocess.run([sys.executable, "-m", "costlens", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "0.1.0" in version.stdout


def test_profile_writes_the_page_and_html_format(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("profile", "conv5x5").exit_code == 0
    page = (tmp_path / "reports" / "conv5x5.html").read_text()
    assert "28·28·32 × 5·5·192 = 120,422,400" in page
    result = run("profile", "conv5x5", "--format", "html", "-o", "pages/c.html", "--plotlyjs", "assets")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "assets" / "plotly.min.js").exists()
    assert '<script src="../assets/plotly.min.js"></script>' in (tmp_path / "pages" / "c.html").read_text()


def test_compare_prints_branches_and_writes_a_page(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("compare", "inception-naive", "inception")
    assert result.exit_code == 0, result.stderr
    branch3 = next(line for line in result.stdout.splitlines() if line.startswith("branch3"))
    assert "120,422,400" in branch3 and "12,443,648" in branch3 and "9.7x less" in branch3
    assert (tmp_path / "reports" / "compare-inception-naive-vs-inception.html").exists()


def test_compare_mixes_saved_profiles_and_names(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("profile", "resnet34", "--save", "saved/r34.json")
    result = run("compare", "saved/r34.json", "plain34", "--format", "json")
    data = json.loads(result.stdout)
    assert data["models"] == ["resnet34", "plain34"]
    # plain34 drops three projection shortcuts: 28·28·128×64 + 14·14·256×128 + 7·7·512×256 MACs
    assert data["totals"]["macs"][0] - data["totals"]["macs"][1] == 6_422_528 + 6_422_528 + 6_422_528
    md = run("compare", "conv5x5", "conv1x1-5x5", "--format", "markdown").stdout
    assert "| MACs | 120,422,400 | 12,443,648 | 0.10x (9.7x less) |" in md


def test_compare_bad_inputs(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "foreign.json").write_text('{"schema": "other/1"}')
    (tmp_path / "broken.json").write_text("{")
    _one_line_error(run("compare", "inception", "inceptoin"), "unknown model 'inceptoin'")
    _one_line_error(run("compare", "inception", "foreign.json"), "foreign.json: not a costlens profile")
    _one_line_error(run("compare", "inception", "broken.json"), "broken.json: not JSON")
    _one_line_error(run("compare", "inception", "missing.json"), "missing.json: cannot read profile")
    _one_line_error(run("compare", "inception"), "at least two models")


def test_train_mode_counts_batch_statistics(run) -> None:  # type: ignore[no-untyped-def]
    eval_mode = json.loads(run("profile", "resnet18", "--format", "json").stdout)
    train_mode = json.loads(run("profile", "resnet18", "--format", "json", "--train").stdout)
    assert train_mode["totals"]["macs"] == eval_mode["totals"]["macs"]
    bn1 = [next(x for x in d["layers"] if x["path"] == "bn1") for d in (eval_mode, train_mode)]
    # 64·112·112 = 802,816 elements: 2 flops each at inference, 4 when computing statistics,
    # plus training's num_batches_tracked += 1
    assert [b["flops"] for b in bn1] == [2 * 802_816, 4 * 802_816 + 1]


def test_factory_that_needs_real_weights_still_profiles_on_meta(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "loaded.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def build():
            net = nn.Linear(4, 3)
            with torch.no_grad():
                net.weight.fill_(1.0)
            assert net.weight.sum().item() == 12.0  # reads values: impossible on meta
            return net
    """))
    data = json.loads(run("profile", "loaded:build", "--input", "2x4", "--format", "json").stdout)
    assert data["totals"]["macs"] == 2 * 3 * 4  # 24
    assert data["device"]["type"] == "meta"


def test_cuda_where_there_is_none(run) -> None:  # type: ignore[no-untyped-def]
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _one_line_error(run("profile", "inception", "--device", "cuda"), "device 'cuda' is not available here")
