"""The calibration and its cache (a fake clock and a fake quick check decide staleness; the matmuls
are real but small), and device descriptions read as hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from costlens.cli import cli
from costlens.timing import calibration
from costlens.timing.calibration import Policy
from costlens.timing.device import DeviceError, device_facts, read_file

CPU = torch.device("cpu")
DAY = 24 * 3600.0
T0 = 1_800_000_000.0  # 2027-01-15, a fixed "now"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


class Machine:
    """A fake clock and quick check: the check reaches ``factor`` x what the cache holds at its size."""

    def __init__(self) -> None:
        self.now = T0
        self.factor = 1.0
        self.checked: list[tuple[str, int]] = []
        self.heard: list[str] = []

    def policy(self) -> Policy:
        return Policy(clock=lambda: self.now, check=self.check, sizes={"cpu": (64, 128)}, copy_bytes={"cpu": 2**20},
                      seconds=0.02)

    def check(self, device: torch.device, dtype: str, size: int, threads: int) -> float:
        self.checked.append((dtype, size))
        cached = json.loads(calibration.cache_file(device, threads).read_text())["facts"]
        return self.factor * cached["details"][f"matmul_{dtype}"][str(size)]

    def facts(self, **options: object):  # type: ignore[no-untyped-def]
        return device_facts(CPU, dtypes=("float32",), threads=1, progress=self.heard.append, policy=self.policy(),
                            **options)  # type: ignore[arg-type]


def test_a_first_calibration_measures_the_dtype_asked_and_says_what_it_does() -> None:
    machine = Machine()
    facts = machine.facts()
    assert facts.source == "calibrated" and set(facts.peak_flops) == {"float32"}  # bfloat16 not asked, not run
    assert facts.threads == 1 and facts.calibrated["float32"]["at"] == T0 and "load" in facts.calibrated["float32"]
    assert machine.heard[:2] == ["float32 matmul 64x64", "float32 matmul 128x128"]
    assert machine.heard[-1] == "memory bandwidth (a 1 MiB copy)"
    saved = json.loads(calibration.cache_file(CPU, 1).read_text())
    assert saved["key"] == calibration.cache_key(CPU, 1) and saved["key"]["threads"] == 1


def test_a_cache_is_keyed_by_thread_count() -> None:
    assert calibration.cache_file(CPU, 1) != calibration.cache_file(CPU, 2)


def test_a_cached_calibration_is_checked_then_used() -> None:
    machine = Machine()
    first = machine.facts()
    machine.now, machine.factor = T0 + 6 * DAY, 1.05  # six days on, within 10%
    again = machine.facts()
    assert again.source == "cache" and again.peak_flops == first.peak_flops
    assert machine.checked == [("float32", 128)]  # the largest size whose product takes < 20 ms
    assert again.check is not None and again.check["ratio"] == pytest.approx(1.05) and again.check["at"] == T0 + 6 * DAY


def test_a_calibration_older_than_a_week_is_measured_again_and_kept_in_the_history() -> None:
    machine = Machine()
    first = machine.facts()
    machine.now = T0 + 8 * DAY
    again = machine.facts()
    assert again.source == "calibrated" and again.calibrated["float32"]["at"] == T0 + 8 * DAY
    assert machine.checked == []  # too old to be worth a check
    assert "float32: taken 8.0 days ago (a week at most): measuring again" in machine.heard
    (old,) = again.history
    assert old["peak"] == first.peak_flops["float32"] and old["at"] == T0 and "8.0 days ago" in old["replaced"]


@pytest.mark.parametrize("factor", [0.8, 1.2])
def test_a_calibration_the_check_finds_off_by_more_than_ten_percent_is_measured_again(factor: float) -> None:
    machine = Machine()
    machine.facts()
    machine.now, machine.factor = T0 + DAY, factor
    again = machine.facts()
    assert again.source == "calibrated" and again.calibrated["float32"]["at"] == T0 + DAY
    assert any(f"reached {100 * factor:.0f}% of the cached figure at 128x128" in h for h in machine.heard)
    assert len(again.history) == 1


def test_recalibrate_measures_again_and_keeps_the_history() -> None:
    machine = Machine()
    machine.facts()
    again = machine.facts(recalibrate=True)
    assert again.source == "calibrated" and again.history[0]["replaced"] == "asked to recalibrate"


def test_a_device_table_shows_when_and_the_history() -> None:
    from costlens.report.timing_text import device_table

    machine = Machine()
    machine.facts()
    machine.now = T0 + 8 * DAY
    text = device_table(machine.facts())
    assert "Earlier calibrations (replaced):" in text and "8.0 days ago" in text and "load" in text


# --- hostile descriptions ---------------------------------------------------------------------

GOOD = {"type": "cpu", "name": "test cpu", "peak_flops": {"float32": 1e11}, "bandwidth": 1e10, "threads": 2}
HOSTILE = {
    "401 digits": json.dumps({**GOOD, "bandwidth": 0}).replace('"bandwidth": 0', '"bandwidth": ' + "9" * 401),
    "Infinity": json.dumps(GOOD).replace('"threads": 2', '"threads": Infinity'),
    "NaN": json.dumps(GOOD).replace('100000000000.0', 'NaN'),
    "deep nesting": '{"peak_flops": ' + "[" * 200_000 + "]" * 200_000 + "}",
    "true as a number": json.dumps({**GOOD, "peak_flops": {"float32": True}}),
    "5e-308 peaks": json.dumps({**GOOD, "peak_flops": {"float32": 5e-308}, "bandwidth": 5e-308}),
    "nested arrays in details": json.dumps({**GOOD, "details": {"matmul_float32": [[[1]]]}}),
    "an unknown dtype": json.dumps({**GOOD, "peak_flops": {"int4": 1e12}}),
    "not an object": "[1, 2, 3]",
    "not json": "peak_flops: lots",
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_device_file_is_one_line_exit_2(tmp_path: Path, text: str) -> None:
    path = tmp_path / "device.json"
    path.write_text(text)
    with pytest.raises(DeviceError) as caught:
        read_file(path)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400
    done = CliRunner().invoke(cli, ["device", "--device-file", str(path)])
    assert done.exit_code == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_damaged_cache_is_measured_again_never_trusted(text: str) -> None:
    machine = Machine()
    path = calibration.cache_file(CPU, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": calibration.cache_key(CPU, 1), "facts": "@"}).replace('"@"', text))
    facts = machine.facts()
    assert facts.source == "calibrated" and facts.peak_flops["float32"] > 1e6
    assert machine.heard[0].startswith("the cache cannot be trusted (") and machine.heard[0].endswith(": measuring again")
    assert json.loads(path.read_text())["facts"]["source"] == "cache"  # rewritten whole


def test_a_cache_of_another_machine_is_measured_again() -> None:
    machine = Machine()
    machine.facts()
    path = calibration.cache_file(CPU, 1)
    saved = json.loads(path.read_text())
    saved["key"]["torch"] = "0.0.1"
    path.write_text(json.dumps(saved))
    assert machine.facts().source == "calibrated"
    assert "the cache describes another device, torch or thread count: measuring again" in machine.heard


def test_a_device_name_cannot_steer_the_terminal(tmp_path: Path) -> None:
    path = tmp_path / "device.json"
    path.write_text(json.dumps({**GOOD, "name": "GPU\r\x07\nX\x1b[2J"}))
    facts = read_file(path)
    assert facts.name == "GPU\\r\\x07\\nX\\x1b[2J"
    done = CliRunner().invoke(cli, ["device", "--device-file", str(path)])
    assert done.exit_code == 0 and "\r" not in done.stdout and "\x07" not in done.stdout and "\x1b" not in done.stdout


def test_a_device_file_round_trips_what_costlens_writes(tmp_path: Path) -> None:
    machine = Machine()
    written = machine.facts()
    path = tmp_path / "device.json"
    path.write_text(json.dumps(written.to_dict()))
    read = read_file(path)
    assert read.peak_flops == written.peak_flops and read.calibrated == written.calibrated
    assert read.source == str(path)


def test_the_summary_says_which_source_was_used_and_when() -> None:
    from costlens.report.timing_text import calibration_source

    machine = Machine()
    machine.facts()
    machine.now, machine.factor = T0 + DAY, 1.0
    used = machine.facts().to_dict()
    when = calibration._taken(T0, 0)["at"]
    assert calibration_source(used, "float32").startswith(f"calibrated {_local(when)}")
    assert calibration_source(used, "float32").endswith("cached; checked now at 128x128: 100% of it")
    machine.factor = 0.5
    again = machine.facts().to_dict()
    assert calibration_source(again, "float32").startswith("calibrated now")
    assert "failed a check at 128x128 (50% of it)" in calibration_source(again, "float32")


def _local(at: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))
