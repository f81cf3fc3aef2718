"""fvcore's JIT counter, on real CPU tensors, agrees with the tracer module by module."""

from __future__ import annotations

import pytest

from costlens.crosscheck import crosscheck


@pytest.mark.parametrize(("name", "shape"), [
    ("inception", (1, 192, 28, 28)),
    ("lenet5-1998", (1, 1, 32, 32)),
    ("alexnet", (1, 3, 227, 227)),
    ("resnet50", (1, 3, 224, 224)),
    ("googlenet", (1, 3, 224, 224)),
    ("nin", (1, 3, 32, 32)),
])
def test_fvcore_agrees_module_by_module(name: str, shape: tuple[int, ...]) -> None:
    check = crosscheck(name, shape)
    assert check.agrees, check.summary()
    assert len(check.fvcore) > 5  # fvcore really counted modules, not an empty dict


def test_what_fvcore_counts_beyond_macs_is_explained_op_by_op(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from click.testing import CliRunner

    from costlens.cli import cli

    check = crosscheck("resnet18", (1, 3, 224, 224))
    # batch norm inputs: bn1 64·112² = 802,816; layer1 4 × 64·56² = 802,816; layer2 4 × 128·28² + 1 = 501,760;
    # layer3 4 × 256·14² + 1 = 250,880; layer4 4 × 512·7² + 1 = 125,440 -> 2,483,712 elements, 2 each (affine)
    assert check.other_ops == {"batch_norm": 2 * 2_483_712, "adaptive_avg_pool2d": 512 * 7 * 7}
    assert [line.split(":")[0] for line in check.explanations] == ["adaptive_avg_pool2d", "batch_norm"]
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["profile", "resnet18", "--crosscheck", "--save", "out/"])
    assert result.exit_code == 0, result.stderr
    assert "batch_norm: fvcore 4,967,424, costlens 0 MACs" in result.stdout
    saved = json.loads((tmp_path / "out" / "resnet18.json").read_text())
    assert saved["crosscheck"]["agrees"] and len(saved["crosscheck"]["explanations"]) == 2
    assert "costlens counts normalization as FLOPs" in (tmp_path / "out" / "resnet18.html").read_text()
