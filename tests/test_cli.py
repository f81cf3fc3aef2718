"""End to end through the CLI: the commands a user types, and every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from costlens.cli import cli
from costlens.zoo import names

ROOT = Path(__file__).resolve().parents[1]


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
    assert not (tmp_path / "reports").exists()  # JSON on stdout was the output asked for: nothing else
    table = run("profile", "usernet:build_net", "--input", "1x3x64x64")
    assert any(line.startswith("(self)") and "65,536" in line for line in table.stdout.splitlines())  # the matmul
    # an import path has no default input: the input names the files
    assert (tmp_path / "reports" / "usernet-build_net-1x3x64x64.json").exists()


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
    train_mode = json.loads(run("profile", "resnet18", "--format", "json", "--train-mode").stdout)
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
    _one_line_error(run("profile", "inception", "--device", "cuda"), "--device: cuda is not available here")


# --- where output goes ---------------------------------------------------------------


def test_the_table_comes_first_then_the_saved_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    done = subprocess.run([sys.executable, "-m", "costlens", "profile", "conv5x5"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("Uncounted ops: none\n")  # the table's last line ends before anything else
    assert done.stderr == "saved reports/conv5x5.json and reports/conv5x5.html\n"
    assert {p.name for p in (tmp_path / "reports").iterdir()} == {"conv5x5.json", "conv5x5.html"}


def test_other_inputs_get_their_own_files(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("profile", "conv5x5", "--batch", "2").exit_code == 0
    assert run("profile", "conv5x5", "--input", "1x192x14x14", "--dtype", "bfloat16").exit_code == 0
    assert run("profile", "conv5x5", "--input", "1x192x28x28", "--train-mode").exit_code == 0  # the default input
    assert sorted(p.name for p in (tmp_path / "reports").glob("*.json")) == [
        "conv5x5-1x192x14x14-bfloat16.json", "conv5x5-2x192x28x28.json", "conv5x5-train-mode.json"]


@pytest.mark.parametrize("args", [
    ["--format", "json", "-o", "x.json"], ["--format", "markdown"], ["--format", "csv", "-o", "t.csv"], ["--no-save"]])
def test_only_the_output_asked_for_is_written(run, tmp_path: Path, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    result = run("profile", "conv5x5", *args)
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "reports").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(a for a in args if "." in a)


def test_dash_is_stdout(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("profile", "conv5x5", "--format", "json", "-o", "-")
    assert json.loads(result.stdout)["model"] == "conv5x5"
    page = run("profile", "conv5x5", "--format", "html", "-o", "-")
    assert page.stdout.startswith("<!doctype html>")
    assert list(tmp_path.iterdir()) == []  # no file named '-', no reports


def test_save_into_a_directory_or_as_a_file(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("profile", "conv5x5", "--save", "out/")
    run("profile", "conv5x5", "--save", "kept")  # no .json: a directory too
    run("profile", "conv5x5", "--save", "named/c.json")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.*")) == [
        "kept/conv5x5.html", "kept/conv5x5.json", "named/c.html", "named/c.json", "out/conv5x5.html", "out/conv5x5.json"]


def test_a_report_that_cannot_be_saved_costs_no_output(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "reports").write_text("a file where the directory should be")
    result = run("profile", "conv5x5")
    assert result.exit_code == 0
    assert "Total" in result.stdout and result.stdout.endswith("Uncounted ops: none\n")
    assert result.stderr.startswith("costlens: warning: reports not saved: cannot write reports/conv5x5.json")
    asked = run("profile", "conv5x5", "--save", "reports/x.json")  # asked for: an error, after the table
    assert asked.exit_code == 2 and "Total" in asked.stdout
    assert asked.stderr.startswith("costlens: error: cannot write reports/x.json")


def test_debug_after_the_subcommand_and_bare_costlens(run) -> None:  # type: ignore[no-untyped-def]
    result = run("profile", "resnet5O", "--debug")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "unknown model 'resnet5O'" in result.stderr
    bare = run()
    assert bare.exit_code == 0 and bare.stdout.startswith("Usage: ") and "Commands:" in bare.stdout


def test_a_factory_that_prints_leaves_json_intact(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "chatty.py").write_text(textwrap.dedent("""
        from torch import nn

        class Net(nn.Linear):
            def forward(self, x):
                print("forward called")
                return super().forward(x)

        def build():
            print("building the model")
            return Net(4, 3)
    """))
    result = run("profile", "chatty:build", "--input", "2x4", "--format", "json")
    assert json.loads(result.stdout)["totals"]["macs"] == 2 * 3 * 4  # 24
    assert "building the model" in result.stderr and "forward called" in result.stderr


def test_comparing_many_models_names_a_file_that_fits(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(run("profile", "conv5x5", "--format", "json").stdout)
    specs = []
    for i in range(12):
        data["model"] = f"mypackage.experiments.architectures:a_rather_long_factory_name_{i}"
        (tmp_path / f"p{i}.json").write_text(json.dumps(data))
        specs.append(f"p{i}.json")
    result = run("compare", *specs)
    assert result.exit_code == 0, result.stderr
    (page,) = (tmp_path / "reports").iterdir()
    assert page.name.startswith("compare-mypackage.experiments.architectures-a_rather_long_factory_name_0-and-11-more-")
    assert len(page.name) <= 130  # a 120-character stem and .html, far below the file system's 255 bytes
    other = run("compare", *specs[1:])
    assert other.exit_code == 0 and len(list((tmp_path / "reports").iterdir())) == 2  # another set, another name


def test_wrong_input_channels_say_what_the_model_takes(run) -> None:  # type: ignore[no-untyped-def]
    _one_line_error(run("profile", "inception", "--input", "1x3x224x224"),
                    "inception takes 1x192x28x28 by default (192 input channels; --input 1x3x224x224 has 3)")


def test_list_fits_a_100_column_terminal(run) -> None:  # type: ignore[no-untyped-def]
    listing = run("list").stdout
    assert max(len(line) for line in listing.splitlines()) <= 100
    assert "Simonyan & Zisserman 2015, configuration D" in listing
    header = run("profile", "vgg16", "--no-save").stdout.splitlines()
    assert "Very deep convolutional networks for large-scale image recognition" in " ".join(header[1:3])


def test_progress_shows_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from costlens import cli as cli_module

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(cli_module, "PROGRESS_DELAY", 0.0)
    assert list(cli_module._progress(["a", "b"], "profiling")) == ["a", "b"]
    assert "profiling:" in terminal.getvalue() and "/2 " in terminal.getvalue()
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    assert list(cli_module._progress(["a", "b"], "profiling")) == ["a", "b"]
    assert piped.getvalue() == ""
