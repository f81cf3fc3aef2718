"""Budgets: every rule kind passes and fails on purpose; every malformed file exits 2 naming the line."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from costlens.budget import load_budget, parse_reference
from costlens.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, body: str, name: str = "budgets.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _check(path: Path, *extra: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner(env=env).invoke(cli, ["check", str(path), *extra], catch_exceptions=False)


def _row(result, line: int) -> str:  # type: ignore[no-untyped-def]
    return next(r for r in result.stdout.splitlines() if r.strip().startswith(f"{line} "))


def test_project_budgets_hold() -> None:
    result = _check(ROOT / "reports" / "budgets.toml")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout


@pytest.mark.parametrize(("rule", "passes"), [
    # absolute, exact: 28·28·32 × 5·5·192
    ("conv5x5.macs == 120,422,400", True),
    ("conv5x5.macs == 120,422,401", False),
    # absolute with human numbers: conv5x5 has 32·5·5·192 + 32 = 153,632 params
    ("conv5x5.params <= 153.7K", True),
    ("conv5x5.params < 153.6K", False),
    ("conv5x5.params >= 0.15M", True),
    # relative between models: 12,443,648 / 120,422,400 = 0.1033
    ("conv1x1-5x5.macs <= 0.11 * conv5x5.macs", True),
    ("conv1x1-5x5.macs <= 0.10 * conv5x5.macs", False),
    # block level: the bottleneck's 5×5 branch
    ("inception:branch3.macs <= 0.11 * inception-naive:branch3.macs", True),
    ("inception:branch3.macs <= 0.1 * inception-naive:branch3.macs", False),
    # percentage factor: 128,049,152 is 42.2% of 303,464,448
    ("inception.macs <= 43% * inception-naive.macs", True),
    ("inception.macs <= 42% * inception-naive.macs", False),
])
def test_rule_kinds_pass_and_fail(tmp_path: Path, rule: str, passes: bool) -> None:
    path = _write(tmp_path, f'rules = [\n  "{rule}",\n]\n')
    result = _check(path)
    assert result.exit_code == (0 if passes else 1), result.stdout + result.stderr
    row = _row(result, 2)
    assert row.endswith("pass" if passes else "FAIL")
    assert ("1 passed, 0 failed" if passes else "0 passed, 1 failed") in result.stdout


def test_failing_table_shows_measured_limit_and_margin(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
        rules = [
          "inception.macs <= 0.40 * inception-naive.macs",
        ]
        """)
    result = _check(path)
    assert result.exit_code == 1
    row = _row(result, 2)
    # limit 0.40 × 303,464,448 = 121,385,779.2; margin (121,385,779 − 128,049,152) / 121,385,779 = −5.5%
    assert "128,049,152" in row and "<= 121,385,779" in row and "-5.5%" in row and row.endswith("FAIL")


def test_baseline_growth_rule(tmp_path: Path) -> None:
    runner = CliRunner()
    saved = tmp_path / "baselines" / "r18.json"
    assert runner.invoke(cli, ["profile", "resnet18", "--save", str(saved), "-o", str(tmp_path / "t.txt")]).exit_code == 0
    path = _write(tmp_path, """\
        [models]
        r18-base = { profile = "baselines/r18.json" }
        r18-wide = { zoo = "resnet18", input = "1x3x256x256" }
        rules = [
          "resnet18.macs <= 105% * r18-base.macs",
          "r18-wide.macs <= 105% * r18-base.macs",
        ]
        """)
    result = _check(path)
    assert result.exit_code == 1, result.stderr
    assert _row(result, 5).endswith("pass")  # unchanged model: +0%
    assert _row(result, 6).endswith("FAIL")  # 256² / 224² = 1.31x the MACs of the convs


def test_import_path_model_with_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tinynet.py").write_text("from torch import nn\ndef build():\n    return nn.Conv2d(3, 8, 3)\n")
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, """\
        [models]
        tiny = { import = "tinynet:build", input = "1x3x10x10" }
        rules = [
          "tiny.macs == 13,824",
          "tiny.macs < 13,824",
        ]
        """)
    result = _check(path)  # 8·8·8 × 3·3·3 = 13,824
    assert result.exit_code == 1
    assert _row(result, 4).endswith("pass") and _row(result, 5).endswith("FAIL")


def test_junit_and_github_summary(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
        rules = [
          "conv5x5.macs == 120,422,400",
          "conv1x1-5x5.macs <= 0.05 * conv5x5.macs",
        ]
        """)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = _check(path, "--junit", str(tmp_path / "junit.xml"), env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 1
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    failures = suite.findall("testcase/failure")
    assert len(failures) == 1 and "measured 12,443,648" in (failures[0].get("message") or "")
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "❌ **FAIL**" in text and "1 passed, 1 failed" in text


@pytest.mark.parametrize(("body", "message"), [
    ('rules = [\n  "conv5x5.macs == 1",\n  "inceptoin.macs <= 1G",\n]\n',
     ":3: unknown model 'inceptoin'; did you mean inception"),
    ('rules = [\n  "inception.maks <= 1G",\n]\n', ":2: unknown metric 'maks'; did you mean macs?"),
    ('rules = [\n  "inception.macs =< 1G",\n]\n', ":2: bad operator '=<'"),
    ('rules = [\n  "inception.macs <= 12 apples",\n]\n', ":2: unparsable number '12 apples'"),
    ('rules = [\n  "inception.latency_ms <= 3",\n]\n', ":2: 'latency_ms' is measured"),
    ('rules = [\n  "inception.latency_ms <= 2 * inception.macs",\n]\n', "2 * inception.macs' compares a measured"),
    ('rules = [\n  "inception:branch9.macs <= 1G",\n]\n', ":2: inception has no block 'branch9'; did you mean branch4?"),
    ('rules = [\n  "inception macs <= 1G",\n]\n', ":2: cannot read rule"),
    ('rules = [\n  "a.macs <= 1"\n', ": not valid TOML"),
    ('[models]\nx = { zoo = "vgg16", input = "1x3xfoo" }\nrules = ["x.macs <= 1"]\n',
     ":2: model 'x': input: malformed input shape"),
    ('[models]\nx = { import = "a.b:c" }\nrules = ["x.macs <= 1"]\n', ":2: model 'x' imports a.b:c and needs input"),
    ('limits = ["x"]\n', ":1: unknown key(s) limits"),
    ('rules = []\n', ":1: rules must be a non-empty list"),
])
def test_malformed_files_exit_2_naming_the_line(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, body)
    result = _check(path)
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"costlens: error: {path}")
    assert message in lines[0], lines[0]


def test_missing_file(tmp_path: Path) -> None:
    result = _check(tmp_path / "nope.toml")
    assert result.exit_code == 2 and "no such budget file" in result.stderr


def test_references_parse_dotted_names() -> None:
    assert parse_reference("resnet50-v1.5.macs") == ("resnet50-v1.5", None, "macs")  # metric after the last dot
    assert parse_reference("resnet50-v1.5:layer1.0.macs") == ("resnet50-v1.5", "layer1.0", "macs")
    assert parse_reference("inception:branch3.params") == ("inception", "branch3", "params")


def test_load_budget_finds_rule_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, '# comment\n\nrules = [\n  "conv5x5.macs == 1",\n\n  "conv5x5.macs == 1",\n]\n')
    assert [r.line for r in load_budget(path).rules] == [4, 6]
