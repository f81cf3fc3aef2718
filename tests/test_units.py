from __future__ import annotations

import pytest

from costlens.errors import InputShapeError
from costlens.units import grouped, human, human_bytes, parse_human, parse_shape


def test_human_numbers_both_ways() -> None:
    assert grouped(120_422_400) == "120,422,400"
    assert human(120_422_400) == "120M"
    assert human(1_814_073_344) == "1.81G"
    assert human_bytes(1_048_576) == "1.00 MiB"
    assert parse_human("12.4M") == 12_400_000
    assert parse_human("1.5G") == 1_500_000_000
    assert parse_human("120,422,400") == 120_422_400
    with pytest.raises(ValueError, match="not a number"):
        parse_human("12 apples")


def test_shapes() -> None:
    assert parse_shape("1x3x224x224") == (1, 3, 224, 224)
    with pytest.raises(InputShapeError):
        parse_shape("1x3xfoo")
