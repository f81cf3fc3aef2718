"""Numbers as people read and write them: 1,234,567 / 1.23M / "12.4M" / 1x3x224x224."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from costlens.errors import InputShapeError

_PREFIXES = (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3))
_BINARY = (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
_HUMAN = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?|\.[0-9]+)\s*([kKMGTPE]?)\s*$")


def grouped(value: int | float) -> str:
    """Thousands separators: 120422400 -> '120,422,400'."""
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def human(value: float, digits: int = 3) -> str:
    """Short decimal units: 120422400 -> '120M', 1814073344 -> '1.81G'."""
    for suffix, scale in _PREFIXES:
        if abs(value) >= scale:
            return f"{_significant(value / scale, digits)}{suffix}"
    return _significant(value, digits) if isinstance(value, float) else str(value)


def human_bytes(value: float) -> str:
    """Binary byte units: 1048576 -> '1.00 MiB'."""
    for suffix, scale in _BINARY:
        if abs(value) >= scale:
            return f"{value / scale:.2f} {suffix}"
    return f"{int(value)} B"


def _significant(value: float, digits: int) -> str:
    if value == int(value) and abs(value) < 10**digits:
        return str(int(value))
    decimals = max(0, digits - len(str(int(abs(value)))))
    return f"{value:.{decimals}f}"


def parse_human(text: str) -> int:
    """'12.4M' -> 12400000, '1.5G' -> 1500000000, '120,422,400' -> 120422400."""
    match = _HUMAN.match(str(text))
    if not match:
        raise ValueError(f"not a number: {text!r} (write 12400000, 12,400,000, 12.4M or 1.5G)")
    number, suffix = match.groups()
    scale = dict(_PREFIXES).get(suffix.upper(), 1)
    return round(float(number.replace(",", "").replace("_", "")) * scale)


# A rate as people write it: plain (989000000000000, 1,000), decimal (0.4), scientific (3.35e12, 1E10),
# with an SI prefix in either case (989T, 989t, 1.5k) and optionally the unit (989TFLOP/s, 3.35 TB/s).
_RATE = re.compile(r"^\s*(?P<number>[+-]?(?:[0-9][0-9_,]*(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*"
                   r"(?P<prefix>[kKmMgGtTpP]?)\s*(?:flop/s|flops|b/s|bytes/s|/s)?\s*$", re.IGNORECASE)
_RATE_WORDS = "write 989T, 989t, 3.35e12, 1e10 or 0.4"


def parse_rate(text: str, option: str = "value") -> float:
    """A positive, finite rate: '989T' and '989t' -> 9.89e14, '3.35e12' -> 3.35e12, '0.4' -> 0.4.
    SI prefixes multiply, in either case: k M G T P (no milli; no E, which reads as a cut exponent).
    Anything else, NaN, infinity, zero or a negative number is a one-line ``InputShapeError``
    that names ``option``."""
    shown = repr(str(text))[:60]
    match = _RATE.match(str(text))
    if not match:
        raise InputShapeError(f"{option}: {shown} is not a number ({_RATE_WORDS})")
    try:
        number = float(match["number"].replace(",", "").replace("_", ""))
        value = number * dict(_PREFIXES).get(match["prefix"].upper(), 1)
    except (ValueError, OverflowError):
        raise InputShapeError(f"{option}: {shown} is not a number ({_RATE_WORDS})") from None
    if not math.isfinite(value):
        raise InputShapeError(f"{option}: {shown} is too large to be a rate")
    if value <= 0:
        raise InputShapeError(f"{option}: {shown} must be positive")
    return value


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x3x224x224' -> (1, 3, 224, 224); anything else is an ``InputShapeError``."""
    parts = str(text).strip().lower().replace("×", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise InputShapeError(
            f"malformed input shape '{text}': expected sizes joined by x, like 1x3x224x224"
        ) from None
    if any(s <= 0 for s in shape):
        raise InputShapeError(f"input shape '{text}' has a size below 1")
    return shape


INPUT_DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
FILLS = "zeros, ones, rand or randint(N)"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RANDINT = re.compile(r"randint\((\d+)\)")


@dataclass(frozen=True)
class InputText:
    """One ``--input`` as written: ``NAME=SHAPE[:DTYPE[:FILL]]``, the name and the rest optional."""

    name: str | None
    shape: tuple[int, ...]
    dtype: str | None = None
    fill: str | None = None  # "zeros", "ones", "rand" or "randint(N)"


def parse_input(text: str, argument: str = "--input") -> InputText:
    """'input_ids=1x128:int64', 'attention_mask=1x128:int64:ones' or '1x3x224x224'; anything
    else is an ``InputShapeError`` naming the input."""
    written = str(text).strip()
    name, equals, rest = written.partition("=")
    if not equals:
        name, rest = "", written
    name = name.strip()
    if equals and not _NAME.fullmatch(name):
        raise InputShapeError(f"{argument} {written!r}: the input's name must be a Python identifier, got {name!r}")
    where = f"{argument} {name}" if name else argument
    shape_text, _, tail = rest.partition(":")
    dtype_text, _, fill_text = tail.partition(":")
    try:
        shape = parse_shape(shape_text)
    except InputShapeError as error:
        raise InputShapeError(f"{where}: {error}") from None
    dtype, fill = dtype_text.strip().lower() or None, fill_text.strip().lower() or None
    if dtype is not None and dtype not in INPUT_DTYPES:
        raise InputShapeError(f"{where}: unknown dtype {dtype!r} (one of {', '.join(INPUT_DTYPES)})")
    if fill is not None:
        check_fill(fill, where)
    return InputText(name or None, shape, dtype, fill)


def check_fill(fill: str, where: str) -> None:
    """``fill`` names how an input is filled: zeros, ones, rand or randint(N) with N at least 1."""
    found = _RANDINT.fullmatch(fill)
    if fill not in ("zeros", "ones", "rand") and (found is None or int(found.group(1)) < 1):
        raise InputShapeError(f"{where}: unknown fill {fill!r} (one of {FILLS})")


def format_shape(shape: list[int] | tuple[int, ...]) -> str:
    """(1, 3, 224, 224) -> '1x3x224x224'."""
    return "x".join(str(s) for s in shape)
