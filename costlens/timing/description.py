"""A device description read from disk (``--device-file``, the calibration cache) as hostile input.

Such a file may come from anyone: numbers with 401 digits, ``Infinity`` and ``NaN`` (which
Python's json accepts by default), ``true`` where a number belongs (a bool is an int in
Python), 200,000 nested brackets, peaks of 5e-308 whose roofline times overflow to
infinity, names with control characters. ``read_description`` turns every such fault into
a one-line ``DeviceError`` and returns only plain, bounded values: finite numbers in
range, short strings with control characters shown as escapes (``costlens/sanitize.py``).
"""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path
from typing import Any

from costlens.errors import CostlensError
from costlens.sanitize import terminal_text

MAX_FILE_BYTES = 2**20
RATE_RANGE = (1e3, 1e21)  # FLOP/s and bytes/s a description may give: far beyond any device on either side
DTYPE_KEYS = ("float32", "tf32", "float16", "bfloat16", "float64")  # tf32: float32 matmuls with TF32 on (CUDA)
MAX_TEXT = 200
MAX_ENTRIES = 64


class DeviceError(CostlensError):
    """A device that cannot be used or described as asked."""


def read_json(path: Path) -> Any:
    """The JSON value of a small regular file; every fault a one-line DeviceError."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # /dev/zero or a fifo would be read forever
            raise DeviceError(f"{path}: not a regular file (a device description is a small JSON file)")
        if info.st_size > MAX_FILE_BYTES:
            raise DeviceError(f"{path}: over 1 MiB, not a device description")
        text = path.read_text(encoding="utf-8")
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise DeviceError(f"{path}: nested too deeply to be a device description") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:  # JSONDecodeError, 4,300-digit ints
        raise DeviceError(f"{path}: cannot read a device description ({_brief(str(error))})") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a device description may hold")


def _brief(text: str) -> str:
    text = terminal_text(text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "..."


def number(value: object, where: str, low: float, high: float) -> float:
    """``value`` as a finite float in [low, high]; a bool, a string or anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceError(f"{where} must be a number, not {_kind(value)}")
    try:
        found = float(value)
    except OverflowError:
        raise DeviceError(f"{where} is a number too large to hold") from None
    if not math.isfinite(found) or not low <= found <= high:
        raise DeviceError(f"{where} must be between {low:g} and {high:g}, not {_brief(repr(value))}")
    return found


def integer(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DeviceError(f"{where} must be a whole number from {low} to {high}, not {_brief(repr(value))}")
    return value


def text(value: object, where: str) -> str:
    """A string made safe for a terminal, at most MAX_TEXT characters."""
    if not isinstance(value, str):
        raise DeviceError(f"{where} must be a string, not {_kind(value)}")
    return _brief(value)


def mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DeviceError(f"{where} must be a JSON object, not {_kind(value)}")
    if len(value) > MAX_ENTRIES:
        raise DeviceError(f"{where} has {len(value)} entries, more than a device description holds ({MAX_ENTRIES})")
    return value


def sequence(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise DeviceError(f"{where} must be a JSON array, not {_kind(value)}")
    return value[-MAX_ENTRIES:]


def _kind(value: object) -> str:
    return {bool: "true/false", str: "a string", list: "an array", dict: "an object", type(None): "null"}.get(
        type(value), type(value).__name__)


def peaks(value: object, where: str) -> dict[str, float]:
    """{dtype: FLOP/s}, dtypes among DTYPE_KEYS, at least one."""
    found = {}
    for key, peak in mapping(value, where).items():
        if key not in DTYPE_KEYS:
            raise DeviceError(f"{where} names '{_brief(key)}': expected {', '.join(DTYPE_KEYS)}")
        found[key] = number(peak, f"{where}.{key}", *RATE_RANGE)
    if not found:
        raise DeviceError(f"{where} is empty: give at least float32's peak FLOP/s")
    return found


def by_size(value: object, where: str) -> dict[str, float] | str:
    """What each matmul size reached ({"1024": FLOP/s}), or why a dtype was not calibrated (a string)."""
    if isinstance(value, str):
        return text(value, where)
    return {text(size, where): number(rate, f"{where}.{size}", 0.0, RATE_RANGE[1])
            for size, rate in mapping(value, where).items()}


def record(value: object, where: str) -> dict[str, float | str]:
    """A flat object of numbers and strings (when and under what load a figure was taken)."""
    found: dict[str, float | str] = {}
    for key, item in mapping(value, where).items():
        name = text(key, where)
        found[name] = text(item, f"{where}.{name}") if isinstance(item, str) else \
            number(item, f"{where}.{name}", -1e21, 1e21)
    return found


def described(data: object, source: str) -> dict[str, Any]:
    """The fields of a DeviceFacts from a description's JSON value, every one checked."""
    data = mapping(data, source)
    for required in ("peak_flops", "bandwidth"):
        if required not in data:
            raise DeviceError(f"{source}: not a device description: needs peak_flops and bandwidth (missing {required})")
    kind = data.get("type", "cpu")
    if kind not in ("cpu", "cuda"):
        raise DeviceError(f"{source}: type must be cpu or cuda, not {_brief(repr(kind))}")
    return {
        "type": kind,
        "name": text(data.get("name", source), f"{source}: name"),
        "peak_flops": peaks(data["peak_flops"], f"{source}: peak_flops"),
        "bandwidth": number(data["bandwidth"], f"{source}: bandwidth", *RATE_RANGE),
        "threads": integer(data.get("threads", 0), f"{source}: threads", 0, 4096),
        "details": {text(k, f"{source}: details"): by_size(v, f"{source}: details.{k}")
                    for k, v in mapping(data.get("details", {}), f"{source}: details").items()},
        "calibrated": {text(k, f"{source}: calibrated"): record(v, f"{source}: calibrated.{k}")
                       for k, v in mapping(data.get("calibrated", {}), f"{source}: calibrated").items()},
        "history": [record(v, f"{source}: history") for v in sequence(data.get("history", []), f"{source}: history")],
    }
