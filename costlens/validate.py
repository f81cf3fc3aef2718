"""A saved profile checked before it becomes a ``Profile``: file, JSON text, then every field.

A profile file may come from anywhere (a CI artifact, a colleague, a hand edit), so
reading one never trusts it:

* ``read_profile_text`` refuses a path that is not a regular file before opening it
  (``/dev/zero`` would be read forever, a fifo blocks, opening some devices acts on
  them), refuses a file over ``MAX_PROFILE_BYTES``, and decodes UTF-8.
* ``parse_profile_json`` rejects what Python's ``json`` accepts but JSON does not
  (``NaN``, ``Infinity``, numbers beyond a double) and turns the RecursionError of a
  deeply nested document into a one-line error.
* ``check_profile_data`` walks the parsed data in document order and names the first
  bad field by its JSON path: ``layers[3].macs: expected a non-negative integer, got "many"``.
  Every count is an ``int`` (``true`` is not 1, ``1.0`` is not 1) in ``[0, 10**30)``;
  every string is valid Unicode (no lone surrogates, which no UTF-8 report can hold);
  depths go down one level at a time from a root at depth 0, as a trace records them.
  Keys the schema does not name are allowed (later versions add keys), but their values
  must be plain JSON: finite numbers, strings, and at most ``MAX_NESTING`` levels deep.

Each failure is a ``ProfileFileError`` whose message starts with the ``source`` given
(the path as the user wrote it); values are quoted with JSON escapes, so a hostile
value cannot reach the terminal raw.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeGuard, cast

from costlens import metrics
from costlens.errors import ProfileFileError

SCHEMA = "costlens.profile/1"
# The per-layer metrics every profile of schema costlens.profile/1 has; totals carry these and
# the two after. Other metrics of the catalogue (costlens/metrics.py) are optional, checked
# by their unit: counts and bytes are integers, times and rates finite non-negative numbers.
METRIC_KEYS = ("params", "macs", "flops", "activation_bytes", "weight_bytes", "bytes")
TOTAL_KEYS = METRIC_KEYS + ("trainable_params", "buffers")
# Larger than any real count (a 10**15-MAC network is far beyond any CNN), small enough
# that a ratio or a sum of counts stays an exact float-convertible figure.
INTEGER_BOUND = 10**30
INTEGER_BOUND_TEXT = "10**30"
# A valid profile nests 4 levels (layers[i].input_shapes[j][k]); added keys get room to spare.
MAX_NESTING = 32
# A 330,000-layer profile is about 200 MB; a file beyond this is not a profile.
MAX_PROFILE_BYTES = 512 * 2**20

_SURROGATE = re.compile("[\ud800-\udfff]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Bad(Exception):
    """A field that fails its check; the path is prefixed on the way up, only on failure."""

    def __init__(self, expected: str, value: object, path: list[str | int]) -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.path = path


class _Missing:
    """Stands for an absent key in a message."""


_MISSING = _Missing()


def _fail(expected: str, value: object, *path: str | int) -> NoReturn:
    """Raise for ``value``; ``path`` leads from the value being checked to the bad one."""
    raise _Bad(expected, value, list(path))


def _missing(key: str) -> NoReturn:
    raise _Bad("present", _MISSING, [key])


def _describe(value: object) -> str:
    """A short, terminal-safe rendering of a bad value."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value) if abs(value) < INTEGER_BOUND else f"an integer of {len(str(abs(value)))} digits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, list):
        return "[]" if not value else f"a list of {len(value)}"
    if isinstance(value, dict):
        return "{}" if not value else "an object"
    return f"a Python {type(value).__name__}"


def _format_path(parts: list[str | int]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


# -- leaf checks: each returns nothing or raises _Bad ------------------------------------------

def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not 1


def _count(value: object) -> None:
    if not _is_int(value) or value < 0:
        _fail("a non-negative integer", value)
    if value >= INTEGER_BOUND:
        _fail(f"a non-negative integer below {INTEGER_BOUND_TEXT}", value)


def _number(value: object) -> None:
    """A measured value: a finite, non-negative number (JSON has no NaN; the parser refuses it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < INTEGER_BOUND:
        _fail(f"a non-negative number below {INTEGER_BOUND_TEXT}", value)


def _metric_check(key: str) -> Check:
    """How a catalogue metric's value is checked; a key the catalogue lacks is plain JSON."""
    try:
        metric = metrics.get(key)
    except KeyError:
        return _sane
    return _count if metric.unit in ("count", "bytes") and metric.kind is metrics.Kind.COUNTED else _number


def _optional_metrics() -> dict[str, Check]:
    return {m.key: _metric_check(m.key) for m in metrics.per_layer() if m.key not in METRIC_KEYS}


def _positive(value: object) -> None:
    if not _is_int(value) or not 0 < value < INTEGER_BOUND:
        _fail(f"a positive integer below {INTEGER_BOUND_TEXT}", value)


def _string(value: object) -> None:
    # isinstance, not type: data built in Python may hold str subclasses such as torch's version string
    if not isinstance(value, str):
        _fail("a string", value)
    if not value.isascii() and _SURROGATE.search(value):
        _fail("a string of valid Unicode (no lone surrogates)", value)


def _optional_string(value: object) -> None:
    if value is not None:
        _string(value)


def _boolean(value: object) -> None:
    if not isinstance(value, bool):
        _fail("true or false", value)


def _list(value: object, expected: str) -> list[Any]:
    if not isinstance(value, list):
        _fail(expected, value)
    return value


def _dict(value: object, expected: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(expected, value)
    return value


def _each(items: list[Any], check: Callable[[Any], None]) -> None:
    for index, item in enumerate(items):
        try:
            check(item)
        except _Bad as bad:
            bad.path.insert(0, index)
            raise


def _each_value(mapping: dict[str, Any], check: Callable[[Any], None]) -> None:
    for key, item in mapping.items():
        try:
            _string(key)
            check(item)
        except _Bad as bad:
            bad.path.insert(0, key)
            raise


def _sane(value: object, depth_left: int = MAX_NESTING) -> None:
    """Plain JSON, bounded: for values under keys the schema does not name."""
    if value is None or isinstance(value, int):  # bool is an int
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            _fail("a finite number", value)
    elif isinstance(value, str):
        _string(value)
    elif not isinstance(value, list | dict):
        _fail("a JSON value", value)
    elif depth_left <= 0:
        _fail(f"at most {MAX_NESTING} levels of nesting", value)
    elif isinstance(value, list):
        _each(value, lambda item: _sane(item, depth_left - 1))
    else:
        _each_value(value, lambda item: _sane(item, depth_left - 1))


# -- composite checks ------------------------------------------------------------------------

def _shape(value: object) -> None:
    _each(_list(value, "a shape (a list of non-negative integers)"), _count)


def _shapes(value: object) -> None:
    _each(_list(value, "a list of shapes"), _shape)


def _input_shape(value: object) -> None:
    shape = _list(value, "a non-empty list of positive integers")
    if not shape:
        _fail("a non-empty list of positive integers", value)
    _each(shape, _positive)


def _op_counts(value: object) -> None:
    _each_value(_dict(value, "an object of op name -> non-negative integer"), _count)


def _environment(value: object) -> None:
    _each_value(_dict(value, "an object of strings"), _string)


def _device(value: object) -> None:
    _sane(_dict(value, "an object"))


def _object_or_null(value: object) -> None:
    if value is not None:
        _sane(_dict(value, "an object or null"))


def _optional(check: Check) -> Check:
    """``check``, or null."""
    return lambda value: None if value is None else check(value)


def _rate(value: object) -> None:
    """A peak or a bandwidth: at least 1 per second (a roofline divides by it), finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value < INTEGER_BOUND:
        _fail(f"a number of at least 1 (per second) below {INTEGER_BOUND_TEXT}", value)


def _peaks(value: object) -> None:
    peaks = _dict(value, "an object of dtype -> FLOP/s")
    if not peaks:
        _fail("an object of dtype -> FLOP/s with at least one dtype", value)
    _each_value(peaks, _rate)


# The timing block (costlens/timing/measure.py ``_timing_facts``, run.py ``_timed_step``): the fields
# the reports read are checked; what timing adds beside them is plain JSON.
DEVICE_FIELDS: dict[str, Check] = {"type": _string, "name": _string, "peak_flops": _peaks, "bandwidth": _rate,
                                   "source": _string, "threads": _positive}
STATS_FIELDS: dict[str, Check] = {"median_ms": _number, "iqr_ms": _number, "min_ms": _number, "runs": _positive}


def _device_facts(value: object) -> None:
    _record(value, DEVICE_FIELDS, "the device's facts: an object with type, name, peak_flops, bandwidth, source "
                                  "and threads")


def _stats(value: object) -> None:
    _record(value, STATS_FIELDS, "timed figures: an object with median_ms, iqr_ms, min_ms and runs")


def _timed_batch(value: object) -> None:
    """One batch size: its figures, or the reason it has none."""
    optional = {"throughput": _optional(_number), "peak_memory_bytes": _optional(_count),
                "compile_s": _optional(_number), "error": _optional_string,
                **{key: _optional(check) for key, check in STATS_FIELDS.items()}}
    entry = _record(value, {"batch": _positive}, "a batch size's timing: an object with batch and its figures",
                    optional)
    if entry.get("median_ms") is not None:  # measured: the figures a table shows beside the median
        for key in ("iqr_ms", "min_ms", "runs", "throughput"):
            if entry.get(key) is None:
                _fail("a number (the batch size was measured)", entry.get(key, _MISSING), key)


def _layer_timing(value: object) -> None:
    _record(value, {}, "how layers were timed: an object", {
        "sum_ms": _optional(_number), "end_to_end_ms": _optional(_number), "timed_calls": _optional(_count),
        "distinct_computations": _optional(_count), "leaf_calls": _optional(_count), "method": _optional_string,
        "error": _optional_string})


def _step(value: object) -> None:
    _record(value, {"forward": _stats, "forward_backward": _stats, "step": _stats, "batch": _positive},
            "a timed training step: an object with forward, forward_backward, step and batch")


COMMON_TIMING_FIELDS: dict[str, Check] = {"dtype": _string, "threads": _positive, "interrupted": _boolean,
                                          "compile": _boolean, "channels_last": _boolean, "torch": _string}
FORWARD_TIMING_FIELDS: dict[str, Check] = {
    "batches": lambda value: _each(_list(value, "a list of batch sizes' timings"), _timed_batch),
    "device": _optional(_device_facts),  # null: nothing needed the device's peaks (no layers, no roofline)
    "layers": _optional(_layer_timing),
}


def _timing(value: object) -> None:
    """Null, a training step's timing (``step``), or a forward's (``batches`` and the ``device``)."""
    if value is None:
        return
    timing = _dict(value, "an object or null")
    if "step" in timing:
        _record(timing, {"step": _optional(_step), "timed_on": _string}, "a training step's timing",
                {**COMMON_TIMING_FIELDS, "optimizer": _string})
    else:
        _record(timing, {"batches": FORWARD_TIMING_FIELDS["batches"], "device": FORWARD_TIMING_FIELDS["device"]},
                "a forward's timing", {**COMMON_TIMING_FIELDS, **FORWARD_TIMING_FIELDS})


Check = Callable[[Any], None]


def _record(value: object, required: dict[str, Check], expected: str, optional: dict[str, Check] | None = None) -> dict[str, Any]:
    """A dict whose required fields are present; every field valid, in document order; other keys plain JSON."""
    record = _dict(value, expected)
    fields = required | optional if optional else required
    for key, item in record.items():
        try:
            fields.get(key, _sane)(item)
        except _Bad as bad:
            bad.path.insert(0, key)
            raise
    for key in required:
        if key not in record:
            _missing(key)
    return record


UNCOUNTED_FIELDS: dict[str, Check] = {
    "op": _string,
    "count": _count,
    "paths": lambda value: _each(_list(value, "a list of module paths"), _string),
}


def _uncounted_entry(value: object) -> None:
    _record(value, UNCOUNTED_FIELDS, "an object with op, count and paths")


def _uncounted(value: object) -> None:
    _each(_list(value, "a list of uncounted ops"), _uncounted_entry)


LAYER_FIELDS: dict[str, Check] = {
    "path": _string,
    "type": _string,
    "depth": _count,
    "call": _count,
    "leaf": _boolean,
    "input_shapes": _shapes,
    "output_shapes": _shapes,
    **dict.fromkeys(METRIC_KEYS, _count),
    "formula": _optional_string,
    "ops": _op_counts,
}


_INT = {int}
_LIST = {list}
_LAYER_COUNT_KEYS = ("depth", "call") + METRIC_KEYS
_count_values = operator.itemgetter(*_LAYER_COUNT_KEYS)
_text_values = operator.itemgetter("path", "type")


def _plain_layer(layer: object, deepest_allowed: int) -> bool:
    """A quick test that accepts nothing the field-by-field walk refuses; its loops run in C,
    which makes checking a profile of hundreds of thousands of layers a fraction of parsing it."""
    if type(layer) is not dict or layer.keys() != LAYER_FIELDS.keys():
        return False  # a missing or an added key: the walk checks it
    inputs, outputs, ops, formula = layer["input_shapes"], layer["output_shapes"], layer["ops"], layer["formula"]
    if type(inputs) is not list or type(outputs) is not list or type(ops) is not dict or type(layer["leaf"]) is not bool:
        return False
    shapes = inputs + outputs
    if (shapes and set(map(type, shapes)) != _LIST) or not (formula is None or type(formula) is str):
        return False
    try:
        text = "".join((*_text_values(layer), *ops, formula or ""))  # TypeError unless every part is a str
    except TypeError:
        return False
    counts = [*_count_values(layer), *ops.values(), *itertools.chain.from_iterable(shapes)]
    return (
        set(map(type, counts)) == _INT and min(counts) >= 0 and max(counts) < INTEGER_BOUND
        and layer["depth"] <= deepest_allowed and (text.isascii() or not _SURROGATE.search(text))
    )


def _layers(value: object) -> None:
    layers = _list(value, "a non-empty list of layer records")
    if not layers:
        _fail("a non-empty list of layer records", value)
    deepest_allowed = 0  # the root is at depth 0; each record is at most one below the one before
    for index, item in enumerate(layers):
        if _plain_layer(item, deepest_allowed):
            deepest_allowed = item["depth"] + 1
            continue
        try:  # the field-by-field walk, slower, finds and names what the quick test refused
            layer = _record(item, LAYER_FIELDS, "a layer record (an object)", _optional_metrics())
            if layer["depth"] > deepest_allowed:
                _fail(f"a depth of at most {deepest_allowed} (one below the record before)",
                      layer["depth"], "depth")
        except _Bad as bad:
            bad.path.insert(0, index)
            raise
        deepest_allowed = layer["depth"] + 1


def _totals(value: object) -> None:
    totals = _dict(value, "an object of totals")
    for key, item in totals.items():
        try:
            check = _metric_check(key)
            (_count if key in TOTAL_KEYS or check is _sane else check)(item)  # an unknown total: a count
        except _Bad as bad:
            bad.path.insert(0, key)
            raise
    for key in TOTAL_KEYS:
        if key not in totals:
            _missing(key)


TOP_FIELDS: dict[str, Check] = {
    "schema": _string,
    "model": _string,
    "input_shape": _input_shape,
    "dtype": _string,
    "device": _device,
    "environment": _environment,
    "convention": _string,
    "totals": _totals,
    "layers": _layers,
}
def _input(value: object) -> None:
    entry = _record(value, {"name": _optional_string, "shape": _input_shape, "dtype": _string},
                    "an input: an object with name, shape and dtype")
    del entry


def _inputs(value: object) -> None:
    _each(_list(value, "a list of inputs"), _input)


def _value_read(value: object) -> None:
    _record(value, {"where": _string, "op": _string, "value": _string, "known": _boolean},
            "a value read: an object with where, op, value and known")


def _value_reads(value: object) -> None:
    _each(_list(value, "a list of value reads"), _value_read)


OPTIONAL_TOP_FIELDS: dict[str, Check] = {
    "inputs": _inputs,
    "citation": _optional_string,
    "uncounted": _uncounted,
    "flops_by_op": _op_counts,
    "timing": _timing,
    "crosscheck": _object_or_null,  # plain JSON
    "value_reads": _value_reads,
}


def _message(bad: _Bad) -> str:
    where = _format_path(bad.path)
    if bad.value is _MISSING:
        return f"{where}: missing"
    return f"{where}: expected {bad.expected}, got {_describe(bad.value)}"


def check_profile_data(data: object, source: str) -> None:
    """Raise ``ProfileFileError`` naming the first field of ``data`` that schema costlens.profile/1 forbids."""
    if type(data) is not dict:
        raise ProfileFileError(f"{source}: not a costlens profile (a JSON object is expected, got {_describe(data)})")
    schema = data.get("schema")
    if schema != SCHEMA:
        raise ProfileFileError(f"{source}: not a costlens profile (schema {_describe(schema)}, expected {SCHEMA!r})")
    try:
        _record(data, TOP_FIELDS, "a JSON object", OPTIONAL_TOP_FIELDS)
    except _Bad as bad:
        raise ProfileFileError(f"{source}: {_message(bad)}") from None


# -- reading and parsing ---------------------------------------------------------------------

def read_profile_text(path: str | Path) -> str:
    """The text of a saved profile; anything but a regular UTF-8 file of sane size is a ``ProfileFileError``."""
    from costlens.files import Unreadable, read_text

    try:
        return read_text(path, MAX_PROFILE_BYTES, "profile", "a saved profile is a JSON file")
    except Unreadable as why:
        raise ProfileFileError(f"{path}: {why}") from None


class _NotJSONNumber(ValueError):
    """A number the JSON grammar or a double cannot hold."""


def _reject_constant(name: str) -> NoReturn:
    raise _NotJSONNumber(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJSONNumber(f"{text[:20]} is beyond the range of a double")
    return value


def parse_profile_json(text: str, source: str) -> object:
    """Parse JSON text strictly: no NaN or Infinity, no huge numbers, nesting the interpreter can hold."""
    try:
        # no parse_int hook: it would cost a Python call per integer; Python refuses integers
        # of more than 4,300 digits itself (a ValueError below), check_profile_data bounds the rest
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except _NotJSONNumber as error:
        raise ProfileFileError(f"{source}: not a costlens profile ({error})") from None
    except json.JSONDecodeError as error:
        raise ProfileFileError(f"{source}: not JSON ({error.msg}, line {error.lineno} column {error.colno})") from None
    except ValueError:  # the only other ValueError json raises: an integer too long to convert
        raise ProfileFileError(f"{source}: not a costlens profile (an integer of more than 4,300 digits)") from None
    except RecursionError:
        raise ProfileFileError(f"{source}: not a costlens profile (nested too deeply)") from None


def load_profile_data(path: str | Path) -> dict[str, Any]:
    """Read, parse and check a saved profile: the data ``Profile.from_dict`` can trust."""
    data = parse_profile_json(read_profile_text(path), str(path))
    check_profile_data(data, str(path))
    return cast(dict[str, Any], data)
