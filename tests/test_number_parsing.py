"""Rates as users write them (--peak-flops, --bandwidth): what costlens recommends is accepted."""

from __future__ import annotations

import pytest

from costlens.errors import InputShapeError
from costlens.units import parse_rate


@pytest.mark.parametrize(("text", "value"), [
    ("989T", 989e12), ("989t", 989e12), ("3.35e12", 3.35e12), ("1e10", 1e10), ("1E10", 1e10),
    ("0.4", 0.4),  # a fraction stays a fraction
    (".5G", 0.5e9), ("1.5k", 1500.0), ("2m", 2e6), ("5P", 5e15), ("1,000", 1000.0), ("250_000", 250_000.0),
    ("3.35 TB/s", 3.35e12), ("989TFLOP/s", 989e12), ("  120G  ", 120e9), ("+7", 7.0),
])
def test_plain_scientific_and_prefixed_rates(text: str, value: float) -> None:
    assert parse_rate(text, "--peak-flops") == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize(("text", "message"), [
    ("nan", "'nan' is not a number"), ("NaN", "is not a number"), ("inf", "is not a number"),
    ("infinity", "is not a number"), ("lots", "is not a number (write 989T, 989t, 3.35e12, 1e10 or 0.4)"),
    ("", "is not a number"), ("1e", "is not a number"), ("2E", "is not a number"), ("1x", "is not a number"),
    ("0", "'0' must be positive"), ("-3T", "'-3T' must be positive"), ("0.0e5", "must be positive"),
    ("1e400", "too large to be a rate"), ("9" * 401, "too large to be a rate"),
])
def test_what_is_not_a_positive_finite_rate_is_one_line(text: str, message: str) -> None:
    with pytest.raises(InputShapeError) as caught:
        parse_rate(text, "--bandwidth")
    said = str(caught.value)
    assert said.startswith("--bandwidth: ") and message in said and "\n" not in said
