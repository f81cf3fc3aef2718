"""Profile: JSON round trip, schema check, DataFrame."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from costlens.errors import ProfileFileError
from costlens.records import Profile, load


def test_json_round_trip(zoo_profile, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    original = zoo_profile("googlenet")
    path = tmp_path / "g.json"
    path.write_text(original.to_json())
    again = load(path)
    assert again == original


def test_foreign_and_broken_files_are_clear_errors(tmp_path: Path) -> None:
    foreign = tmp_path / "other.json"
    foreign.write_text(json.dumps({"schema": "someone.else/3"}))
    with pytest.raises(ProfileFileError, match="not a costlens profile"):
        load(foreign)
    broken = tmp_path / "broken.json"
    broken.write_text("{ nope")
    with pytest.raises(ProfileFileError, match="not JSON"):
        load(broken)
    with pytest.raises(ProfileFileError, match="cannot read profile"):
        load(tmp_path / "missing.json")


def test_frame_has_one_row_per_call(zoo_profile) -> None:  # type: ignore[no-untyped-def]
    result: Profile = zoo_profile("inception")
    frame = result.to_frame()
    assert len(frame) == len(result.layers)
    leaves = frame[frame["leaf"]]
    assert int(leaves["macs"].sum()) == 128_049_152  # every MAC runs in a leaf conv
