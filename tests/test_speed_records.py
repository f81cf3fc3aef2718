"""Records built fast (costlens/records.py ``LayerCost.made``) are the records their fields make."""

from __future__ import annotations

import dataclasses

import pytest

from costlens.records import LayerCost


def test_a_record_made_fast_is_the_record_built_by_its_fields() -> None:
    fields = dict(path="features.0", type="Conv2d", depth=2, call=1, leaf=True, input_shapes=[[1, 3, 8, 8]],
                  output_shapes=[[1, 4, 8, 8]], formula="conv", ops={"aten.convolution": 1},
                  values={"macs": 6912.0})
    made, built = LayerCost.made(**fields), LayerCost(**fields)  # type: ignore[arg-type]
    assert made == built and made.to_dict() == built.to_dict() and repr(made) == repr(built)
    assert made.macs == 6912.0 and made.get("flops") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.depth = 3  # type: ignore[misc]
