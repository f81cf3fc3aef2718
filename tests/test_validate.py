"""Saved profiles are checked field by field before they become a Profile; the first bad field is named."""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from costlens import files, validate
from costlens.api import profile
from costlens.errors import ProfileFileError
from costlens.records import Profile
from costlens.validate import check_profile_data, load_profile_data, parse_profile_json, read_profile_text


@pytest.fixture(scope="module")
def valid() -> dict[str, Any]:
    # conv5x5 is a Sequential around one Conv2d: layers[0] is the root, layers[1] the convolution
    data = profile("conv5x5").to_dict()
    return json.loads(json.dumps(data))  # the data as a file gives it back


def _refused(data: object) -> str:
    with pytest.raises(ProfileFileError) as caught:
        check_profile_data(data, "saved.json")
    message = str(caught.value)
    assert message.startswith("saved.json: ") and "\n" not in message
    return message.removeprefix("saved.json: ")


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    node: Any = changed
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return changed


def _drop(data: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    node: Any = changed
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return changed


def test_a_profile_costlens_wrote_passes(valid: dict[str, Any]) -> None:
    check_profile_data(valid, "saved.json")
    check_profile_data(profile("conv5x5").to_dict(), "in memory")  # str subclasses such as torch's version pass too


def test_added_keys_are_allowed_when_plain_json(valid: dict[str, Any]) -> None:
    data = _set(valid, ("future_key",), {"a": [1, 2.5, None, True, "x"]})
    data = _set(data, ("layers", 1, "latency_us"), 12.5)
    check_profile_data(data, "saved.json")


# (path to change, new value, the message after "saved.json: ")
BAD_VALUES: list[tuple[tuple[str | int, ...], object, str]] = [
    (("layers",), "str", 'layers: expected a non-empty list of layer records, got "str"'),
    (("layers",), [], "layers: expected a non-empty list of layer records, got []"),
    (("layers", 1), "conv", 'layers[1]: expected a layer record (an object), got "conv"'),
    (("layers", 1, "macs"), "many", 'layers[1].macs: expected a non-negative integer, got "many"'),
    (("layers", 1, "macs"), -120422400, "layers[1].macs: expected a non-negative integer, got -120422400"),
    (("layers", 1, "macs"), None, "layers[1].macs: expected a non-negative integer, got null"),
    (("layers", 1, "macs"), True, "layers[1].macs: expected a non-negative integer, got true"),
    (("layers", 1, "macs"), 1.0, "layers[1].macs: expected a non-negative integer, got 1.0"),
    (("layers", 1, "macs"), 10**400,
     "layers[1].macs: expected a non-negative integer below 10**30, got an integer of 401 digits"),
    (("layers", 1, "depth"), "1", 'layers[1].depth: expected a non-negative integer, got "1"'),
    (("layers", 1, "depth"), 5, "layers[1].depth: expected a depth of at most 1 (one below the record before), got 5"),
    (("layers", 0, "depth"), 1, "layers[0].depth: expected a depth of at most 0 (one below the record before), got 1"),
    (("layers", 1, "call"), -1, "layers[1].call: expected a non-negative integer, got -1"),
    (("layers", 1, "leaf"), "yes", 'layers[1].leaf: expected true or false, got "yes"'),
    (("layers", 1, "leaf"), 1, "layers[1].leaf: expected true or false, got 1"),
    (("layers", 1, "path"), 7, "layers[1].path: expected a string, got 7"),
    (("layers", 1, "path"), "conv\ud800",
     'layers[1].path: expected a string of valid Unicode (no lone surrogates), got "conv\\ud800"'),
    (("layers", 1, "type"), ["Conv2d"], "layers[1].type: expected a string, got a list of 1"),
    (("layers", 1, "input_shapes"), [[1, -192, 28, 28]],
     "layers[1].input_shapes[0][1]: expected a non-negative integer, got -192"),
    (("layers", 1, "input_shapes"), "1x192x28x28", 'layers[1].input_shapes: expected a list of shapes, got "1x192x28x28"'),
    (("layers", 1, "output_shapes"), [1, 32, 28, 28],
     "layers[1].output_shapes[0]: expected a shape (a list of non-negative integers), got 1"),
    (("layers", 1, "formula"), 5, "layers[1].formula: expected a string, got 5"),
    (("layers", 1, "ops"), {"aten.convolution": -1},
     'layers[1].ops["aten.convolution"]: expected a non-negative integer, got -1'),
    (("layers", 1, "ops"), ["aten.convolution"],
     'layers[1].ops: expected an object of op name -> non-negative integer, got a list of 1'),
    (("layers", 1, "note"), float("nan"), "layers[1].note: expected a finite number, got nan"),
    (("model",), {"name": "x"}, "model: expected a string, got an object"),
    (("device",), "cpu", 'device: expected an object, got "cpu"'),
    (("dtype",), 32, "dtype: expected a string, got 32"),
    (("environment",), {"torch": 2}, "environment.torch: expected a string, got 2"),
    (("input_shape",), [1, 0, 28, 28], "input_shape[1]: expected a positive integer below 10**30, got 0"),
    (("input_shape",), [], "input_shape: expected a non-empty list of positive integers, got []"),
    (("input_shape",), [1, 99999999999999999999999999999999, 224, 224],
     "input_shape[1]: expected a positive integer below 10**30, got an integer of 32 digits"),
    (("totals", "flops"), float("inf"), "totals.flops: expected a non-negative integer, got inf"),
    (("totals", "macs"), -1, "totals.macs: expected a non-negative integer, got -1"),
    (("totals", "extra"), "1", 'totals.extra: expected a non-negative integer, got "1"'),
    (("totals",), [], "totals: expected an object of totals, got []"),
    (("citation",), 3, "citation: expected a string, got 3"),
    (("flops_by_op", "aten.convolution"), 1.5, 'flops_by_op["aten.convolution"]: expected a non-negative integer, got 1.5'),
    (("uncounted",), [{"op": "aten.sort", "count": "2", "paths": ["conv"]}],
     'uncounted[0].count: expected a non-negative integer, got "2"'),
    (("uncounted",), [{"op": "aten.sort", "count": 2, "paths": "conv"}],
     'uncounted[0].paths: expected a list of module paths, got "conv"'),
    (("uncounted",), {"aten.sort": 2}, "uncounted: expected a list of uncounted ops, got an object"),
    (("timing",), "fast", 'timing: expected an object or null, got "fast"'),
    (("timing",), {"median_ms": float("inf")}, "timing.median_ms: expected a finite number, got inf"),
    (("future",), {"x": {1, 2}}, "future.x: expected a JSON value, got a Python set"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_VALUES,
                         ids=[m.split(":")[0] + "=" + repr(v)[:20] for _, v, m in BAD_VALUES])
def test_bad_value_is_named_by_its_json_path(valid: dict[str, Any], path: tuple[str | int, ...], value: object,
                                             message: str) -> None:
    assert _refused(_set(valid, path, value)) == message


@pytest.mark.parametrize(("path", "message"), [
    (("layers", 1, "bytes"), "layers[1].bytes: missing"),
    (("totals", "macs"), "totals.macs: missing"),
    (("input_shape",), "input_shape: missing"),
    (("convention",), "convention: missing"),
])
def test_missing_key_is_named(valid: dict[str, Any], path: tuple[str | int, ...], message: str) -> None:
    assert _refused(_drop(valid, path)) == message


def test_not_a_profile_at_all(valid: dict[str, Any]) -> None:
    assert _refused([valid]) == "not a costlens profile (a JSON object is expected, got a list of 1)"
    assert _refused(_set(valid, ("schema",), "costlens.profile/2")) == \
        "not a costlens profile (schema \"costlens.profile/2\", expected 'costlens.profile/1')"


def test_the_first_bad_field_in_document_order_is_named(valid: dict[str, Any]) -> None:
    data = _set(valid, ("layers", 1, "ops"), {"aten.convolution": "x"})  # ops comes before the metrics in a record
    data = _set(data, ("layers", 1, "macs"), "many")
    data["layers"] += [copy.deepcopy(data["layers"][1]) for _ in range(3)]
    data["layers"][3]["flops"] = -1
    assert _refused(data).startswith('layers[1].ops["aten.convolution"]:')
    data["layers"][1]["ops"] = {"aten.convolution": 1}
    assert _refused(data).startswith("layers[1].macs:")


def test_hostile_values_are_quoted_with_escapes(valid: dict[str, Any]) -> None:
    message = _refused(_set(valid, ("layers", 1, "macs"), "\x1b[2J\u202e" + "x" * 100))
    # the first 40 characters are quoted: ESC, '[2J', U+202E (5 characters), then 35 x
    assert message == 'layers[1].macs: expected a non-negative integer, got "\\u001b[2J\\u202e' + "x" * 35 + '..."'
    assert message.isprintable()


def test_nesting_of_added_keys_is_bounded(valid: dict[str, Any]) -> None:
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    message = _refused(_set(valid, ("future",), deep))
    # the walk descends 32 lists below 'future', then refuses the 33rd
    assert message == "future" + "[0]" * 32 + ": expected at most 32 levels of nesting, got a list of 1"


def test_many_layers_keep_the_quick_path_honest(valid: dict[str, Any]) -> None:
    # the quick test and the walk must agree: a bad value far down a long profile is still found
    data = copy.deepcopy(valid)
    data["layers"] += [copy.deepcopy(valid["layers"][1]) for _ in range(2000)]
    check_profile_data(data, "saved.json")
    data["layers"][1500]["input_shapes"] = [[1, 192, 28, True]]
    assert _refused(data) == "layers[1500].input_shapes[0][3]: expected a non-negative integer, got true"


# -- parsing --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ('{"macs": NaN}', "not a costlens profile (NaN is not a JSON number)"),
    ('{"macs": Infinity}', "not a costlens profile (Infinity is not a JSON number)"),
    ('{"macs": -Infinity}', "not a costlens profile (-Infinity is not a JSON number)"),
    ('{"macs": 1e400}', "not a costlens profile (1e400 is beyond the range of a double)"),
    ('{"macs": ' + "9" * 5000 + "}", "not a costlens profile (an integer of more than 4,300 digits)"),
    ("[" * 100_000 + "]" * 100_000, "not a costlens profile (nested too deeply)"),
    ('{"macs" 1}', "not JSON (Expecting ':' delimiter, line 1 column 9)"),
    ("", "not JSON (Expecting value, line 1 column 1)"),
])
def test_parse_refuses_what_json_does_not_allow(text: str, message: str) -> None:
    with pytest.raises(ProfileFileError) as caught:
        parse_profile_json(text, "saved.json")
    assert str(caught.value) == f"saved.json: {message}"


def test_parse_keeps_big_integers_for_the_check(valid: dict[str, Any]) -> None:
    text = json.dumps(valid).replace('"macs": 120422400', '"macs": 1' + "0" * 400, 1)
    data = parse_profile_json(text, "saved.json")
    assert _refused(data).endswith("got an integer of 401 digits")


# -- reading --------------------------------------------------------------------------------

def _within(seconds: float, call: Callable[[], object]) -> object:
    """Run ``call`` in a thread; fail, instead of hanging the suite, if it blocks."""
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(_outcome(call)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"blocked for more than {seconds} s"
    return outcome[0]


def _outcome(call: Callable[[], object]) -> object:
    try:
        return call()
    except Exception as error:  # the caller asserts on it
        return error


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"), ("/dev/urandom", "a character device"),
                                            ("/dev/null", "a character device")])
def test_devices_are_refused_before_reading(path: str, kind: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    error = _within(5, lambda: read_profile_text(path))
    assert isinstance(error, ProfileFileError)
    assert str(error) == f"{path}: not a regular file ({kind}); a saved profile is a JSON file"


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "profile.json"
    os.mkfifo(fifo)
    error = _within(5, lambda: read_profile_text(fifo))
    assert isinstance(error, ProfileFileError) and "(a fifo)" in str(error)


def test_directory_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileFileError, match=r"not a regular file \(a directory\)"):
        read_profile_text(tmp_path)
    with pytest.raises(ProfileFileError, match=r"cannot read profile \(No such file or directory\)"):
        read_profile_text(tmp_path / "missing.json")
    with pytest.raises(ProfileFileError, match=r"cannot read profile \(not a valid file name\)"):
        read_profile_text("bad\0name.json")


def test_oversized_file_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "MAX_PROFILE_BYTES", 100)
    big = tmp_path / "big.json"
    big.write_text(" " * 101)
    with pytest.raises(ProfileFileError, match=r"big.json: 101 bytes, more than any profile \(100 bytes at most\)"):
        read_profile_text(big)
    big.write_text(" " * 100)
    assert read_profile_text(big) == " " * 100


def test_encoding(tmp_path: Path) -> None:
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"model": "caf\xe9"}')
    with pytest.raises(ProfileFileError, match=r"latin.json: not UTF-8 text \(byte 0xe9 at offset 14\)"):
        read_profile_text(latin)
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf{}")
    assert read_profile_text(bom) == "{}"


def test_load_profile_data_end_to_end(tmp_path: Path, valid: dict[str, Any]) -> None:
    saved = tmp_path / "conv5x5.json"
    saved.write_text(json.dumps(valid))
    link = tmp_path / "link.json"
    link.symlink_to(saved)
    data = load_profile_data(link)
    # 28*28*32 * 5*5*192 = 120,422,400
    assert Profile.from_dict(data).totals["macs"] == 120_422_400
    saved.write_text(json.dumps(_set(valid, ("layers", 1, "macs"), "many")))
    with pytest.raises(ProfileFileError) as caught:
        load_profile_data(link)
    assert str(caught.value) == f'{link}: layers[1].macs: expected a non-negative integer, got "many"'


def test_a_device_is_never_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # opening is itself an action on some devices (a watchdog starts counting): stat must refuse first
    opened: list[object] = []

    def spy(*args: object) -> int:
        opened.append(args)
        return -1

    monkeypatch.setattr(files.os, "open", spy)  # the one reader, costlens/files.py
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for path in ("/dev/null", fifo, tmp_path):
        with pytest.raises(ProfileFileError, match="not a regular file"):
            read_profile_text(path)
    assert opened == []
