"""Ensembles and multi-crop testing cost exactly their products."""

from __future__ import annotations

import pytest
from torch import nn

from costlens.errors import InputShapeError, UnknownModelError
from costlens.report.ensemble_text import summary
from costlens.request import Request, checked
from costlens.run import run_all


def members(model: str, ensemble: object) -> tuple[str, ...]:
    return checked(Request(model, ensemble=ensemble)).members  # type: ignore[arg-type]

# conv1x1-5x5 (the lecture's bottleneck): 28·28·16 × 192 + 28·28·32 × 5·5·16 = 12,443,648 MACs;
# params 192·16 + 16 + 16·5·5·32 + 32 = 15,920
MACS, PARAMS = 12_443_648, 15_920


def test_macs_are_members_times_crops_times_one_model_exactly() -> None:
    ensemble, single = run_all([Request("conv1x1-5x5", ensemble="3", crops=10), Request("conv1x1-5x5")])
    assert single.totals["macs"] == MACS
    assert ensemble.totals["macs"] == 3 * 10 * MACS == 373_309_440
    assert ensemble.totals["params"] == 3 * PARAMS  # each member is stored and served
    assert ensemble.input_shape[0] == 10  # the crops run as one batch
    words = summary(ensemble, single, ("conv1x1-5x5",) * 3, 10)
    assert "30x" in words and "3x" in words


def test_a_list_of_different_models_sums_their_costs() -> None:
    # conv5x5 alone: 28·28·32 × 5·5·192 = 120,422,400 MACs
    ensemble, single = run_all([Request("conv5x5", ensemble="conv5x5,conv1x1-5x5", crops=2, batches=(3,)),
                                Request("conv5x5", batches=(3,))])
    assert ensemble.totals["macs"] == 3 * 2 * (120_422_400 + MACS)
    assert single.totals["macs"] == 3 * 120_422_400


def test_member_specs() -> None:
    assert members("resnet50", "7") == ("resnet50",) * 7
    assert members("x", "resnet50, resnet101") == ("resnet50", "resnet101")
    assert members("x", 2) == ("x", "x") and members("x", ("a", "b")) == ("a", "b")  # the Python API's
    with pytest.raises(InputShapeError, match="a number of copies or model names, got True"):
        members("x", True)
    with pytest.raises(InputShapeError):
        members("x", "0")
    assert members("x", "²") == ("²",)  # a digit to str.isdigit, no number to int(): a name, unknown to the zoo
    with pytest.raises(UnknownModelError, match="unknown model '²'"):
        run_all([Request("conv5x5", ensemble="²")])


def test_the_python_api_profiles_an_ensemble_and_compares_it_with_one_model() -> None:
    import costlens

    ensemble = costlens.profile("conv1x1-5x5", ensemble=3, crops=10)
    assert ensemble.model == "ensemble-3xconv1x1-5x5-10crops"
    assert ensemble.totals["macs"] == 3 * 10 * MACS
    comparison = costlens.compare("conv1x1-5x5", ensemble)
    assert comparison.ratios("macs")[1] == pytest.approx(30)
    assert comparison.ratios("params")[1] == pytest.approx(3)
    listed = costlens.profile("conv5x5", ensemble=["conv5x5", "conv1x1-5x5"])
    assert listed.totals["macs"] == 120_422_400 + MACS
    with pytest.raises(InputShapeError, match="copies of a given module are not made"):
        costlens.profile(nn.Conv2d(3, 3, 1), (1, 3, 4, 4), ensemble=2)


def test_compare_adds_the_ensemble_as_the_last_model(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from click.testing import CliRunner

    from costlens.cli import cli

    monkeypatch.chdir(tmp_path)
    ran = CliRunner().invoke(cli, ["compare", "conv1x1-5x5", "--ensemble", "2", "--crops", "10", "--format", "json"])
    assert ran.exit_code == 0, ran.output
    data = json.loads(ran.stdout)
    assert [p["model"] for p in data["profiles"]] == ["conv1x1-5x5", "ensemble-2xconv1x1-5x5-10crops"]
    assert [p["totals"]["macs"] for p in data["profiles"]] == [MACS, 2 * 10 * MACS]  # 2 members x 10 crops


def test_a_budget_names_an_ensemble(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from costlens.budget import BudgetFileError, check, load_budget

    path = tmp_path / "b.toml"
    path.write_text('rules = [\n  "ens.macs == 70 * conv1x1-5x5.macs",\n  "ens.params == 7 * conv1x1-5x5.params",\n'
                    '  "pair.macs == 132,866,048",\n]\n'  # 120,422,400 + 12,443,648
                    '[models]\nens = { zoo = "conv1x1-5x5", ensemble = 7, crops = 10 }\n'
                    'pair = { ensemble = ["conv1x1-5x5", "conv5x5"] }\n')
    verdicts = check(load_budget(path))
    assert [v.passed for v in verdicts] == [True, True, True]
    path.write_text('rules = ["ens.macs <= 1"]\n[models]\nens = { zoo = "conv5x5", ensemble = 0 }\n')
    with pytest.raises(BudgetFileError, match="ensemble must be a number of copies"):
        load_budget(path)
