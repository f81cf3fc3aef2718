"""The metric catalogue drives every output: one new entry shows up everywhere."""

from __future__ import annotations

import json

import pytest

from costlens import metrics, profile
from costlens.metrics import Kind, Metric, Rollup
from costlens.report import html, profile_text

# One per op that ran: a metric no module of costlens knows by name.
DUMMY = Metric("dummy_ops", "Dummy ops", "count", Kind.COUNTED, Rollup.CALLS, "one per aten op that ran",
               of_op=lambda event: 1)


@pytest.fixture
def with_dummy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "METRICS", (*metrics.METRICS, DUMMY))


def test_a_new_metric_reaches_every_output(with_dummy: None) -> None:
    result = profile("conv1x1-5x5")  # 1×1 conv, ReLU, 5×5 conv, ReLU: ops below
    data = json.loads(result.to_json())
    root_ops = sum(data["layers"][0]["ops"].values())
    assert data["totals"]["dummy_ops"] == data["layers"][0]["dummy_ops"] == root_ops > 0
    assert "dummy_ops" in result.to_frame().columns
    assert "dummy_ops" in profile_text.csv(result).splitlines()[0].split(",")
    assert "Dummy ops" in profile_text.table(result).splitlines()[3]  # the table's heading row
    assert "Dummy ops" in profile_text.markdown(result)
    page = html.profile_page(result, plotlyjs_src="plotly.min.js")
    assert ">Dummy ops</th>" in page and 'data-metric="dummy_ops"' in page


def test_a_new_metric_is_legal_in_budgets(with_dummy: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from costlens.budget import check, load_budget

    path = tmp_path / "b.toml"
    path.write_text('rules = ["conv5x5.dummy_ops <= 2 * conv1x1-5x5.dummy_ops"]\n')
    (verdict,) = check(load_budget(path))
    assert verdict.passed and verdict.measured > 0


def test_catalogue_keys_are_unique_and_each_counted_metric_has_a_producer() -> None:
    keys = metrics.all_keys()
    assert len(keys) == len(set(keys))
    from costlens.count.training import PRODUCED  # the training step's metrics: produced by its own pass

    for metric in metrics.of_kind(Kind.COUNTED):
        if metric.key in PRODUCED:
            assert metric.of_op is None and metric.of_tensor is None, metric.key
            continue
        assert (metric.of_op is None) != (metric.of_tensor is None), metric.key
        assert (metric.rollup is Rollup.CALLS) == (metric.of_op is not None), metric.key


def test_units_write_values_as_people_read_them() -> None:
    assert metrics.get("macs").format(120_422_400) == "120,422,400"
    assert metrics.get("flops").cell(257_879_552) == "258M"
    assert metrics.get("activation_bytes").format(1024) == "1,024 B"
    assert metrics.get("activation_bytes").short(1024) == "1.00 KiB"
    assert metrics.get("macs").format(None) == "-"
