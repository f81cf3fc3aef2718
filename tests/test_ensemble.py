"""Ensembles and multi-crop testing cost exactly their products."""

from __future__ import annotations

import pytest

from costlens.ensemble import ensemble_profile, parse_members, summary
from costlens.errors import InputShapeError

# conv1x1-5x5 (the lecture's bottleneck): 28·28·16 × 192 + 28·28·32 × 5·5·16 = 12,443,648 MACs;
# params 192·16 + 16 + 16·5·5·32 + 32 = 15,920
MACS, PARAMS = 12_443_648, 15_920


def test_macs_are_members_times_crops_times_one_model_exactly() -> None:
    cost = ensemble_profile("conv1x1-5x5", parse_members("conv1x1-5x5", "3"), 10)
    assert cost.single.totals["macs"] == MACS
    assert cost.profile.totals["macs"] == 3 * 10 * MACS == 373_309_440
    assert cost.profile.totals["params"] == 3 * PARAMS  # each member is stored and served
    assert cost.profile.input_shape[0] == 10  # the crops run as one batch
    assert "30x" in summary(cost) and "3x" in summary(cost)


def test_a_list_of_different_models_sums_their_costs() -> None:
    # conv5x5 alone: 28·28·32 × 5·5·192 = 120,422,400 MACs
    cost = ensemble_profile("conv5x5", parse_members("conv5x5", "conv5x5,conv1x1-5x5"), 2, batch=3)
    assert cost.profile.totals["macs"] == 3 * 2 * (120_422_400 + MACS)
    assert cost.single.totals["macs"] == 3 * 120_422_400


def test_member_specs() -> None:
    assert parse_members("resnet50", "7") == ["resnet50"] * 7
    assert parse_members("x", "resnet50, resnet101") == ["resnet50", "resnet101"]
    assert parse_members("x", None) == ["x"]
    with pytest.raises(InputShapeError):
        parse_members("x", "0")
