"""Atomic writes: an interrupted write leaves the old file whole and no temporary behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from costlens import files
from costlens.errors import OutputError


class Interrupted(Exception):
    pass


def test_interrupted_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.html"
    target.write_text("old page")

    def explode(src: str, dst: str) -> None:
        raise Interrupted

    monkeypatch.setattr(files.os, "replace", explode)
    with pytest.raises(Interrupted):
        files.write_atomic(target, "new page " * 1000)
    assert target.read_text() == "old page"
    assert list(tmp_path.iterdir()) == [target]


def test_write_and_unwritable(tmp_path: Path) -> None:
    assert files.write_atomic(tmp_path / "a" / "b.txt", "x").read_text() == "x"
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="cannot write"):
        files.write_atomic(tmp_path / "file" / "sub.txt", "x")
