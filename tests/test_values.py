"""Values on meta: a model that reads a tensor's value is counted anyway, and never silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import costlens
from costlens.cli import cli
from costlens.errors import ModelError
from costlens.inputs import Arguments, Input


class Gate(nn.Module):
    """Takes one branch or the other on its mask's values: 8x8 = 64 MACs when every entry is set,
    8x16 = 128 MACs otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 16)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if mask.all():  # the read
            return self.a(x)
        return self.b(x)


class Picks(nn.Module):
    """Keeps the rows its mask selects (nonzero: the output's shape is the mask's count)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        rows = mask.nonzero().flatten()
        return self.fc(x[rows])  # (kept rows) x 4 x 3 MACs


class Sized(nn.Module):
    """Reads a length with .item() and builds its layer's input from it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        longest = int(lengths.max().item())
        return self.fc(torch.zeros(longest, 4))  # 3 x 4 x 2 = 24 MACs


def inputs(mask: object) -> Arguments:
    return Arguments((Input((1, 8)),), {"mask": mask})


def test_a_known_mask_takes_the_branch_it_would_take_on_cpu() -> None:
    for fill, macs in (("ones", 64), ("zeros", 128)):  # 8·8 when every entry is set, else 8·16
        meta = costlens.profile(Gate(), inputs(Input((1, 8), "bool", fill)))
        cpu = costlens.profile(Gate(), inputs(Input((1, 8), "bool", fill)), device="cpu")
        assert meta.totals["macs"] == cpu.totals["macs"] == macs
        assert [(r.op, r.value, r.known) for r in meta.value_reads] == [
            ("aten._local_scalar_dense", str(fill == "ones"), True)]
        assert meta.assumed == []


def test_an_unknown_value_is_assumed_and_listed_where_the_model_read_it() -> None:
    unknown = torch.empty(1, 8, dtype=torch.bool, device="meta")  # a meta tensor: no values anywhere
    found = costlens.profile(Gate(), inputs(unknown))
    assert found.totals["macs"] == 64  # the branch True took
    (read,) = found.assumed
    assert read.op == "aten._local_scalar_dense" and read.value == "True" and not read.known
    assert read.where.startswith("test_values.py:")  # the model's own line, not torch's or costlens's
    line = read.where.split(":")[1]
    assert Path(__file__).read_text().splitlines()[int(line) - 1].strip().startswith("if mask.all():")
    data = json.loads(found.to_json())
    assert data["value_reads"] == [{"where": read.where, "op": read.op, "value": "True", "known": False}]
    assert costlens.Profile.from_json(found.to_json()).assumed == [read]  # read back, validated


def test_strict_refuses_to_assume() -> None:
    unknown = torch.empty(1, 8, dtype=torch.bool, device="meta")
    with pytest.raises(ModelError, match=r"^test_values.py:\d+ reads a tensor's value \(aten._local_scalar_dense\), "
                                         r"which a meta trace does not have.*--device cpu"):
        costlens.profile(Gate(), inputs(unknown), strict=True)
    assert costlens.profile(Gate(), inputs(Input((1, 8), "bool")), strict=True).totals["macs"] == 64  # known: fine


def test_a_data_dependent_shape_is_counted_from_known_values_and_refused_from_unknown_ones() -> None:
    mask = torch.tensor([1, 0, 1, 1, 0])  # a real tensor given for a meta trace: its values are known
    given = Arguments((Input((5, 4)),), {"mask": mask})
    meta, cpu = costlens.profile(Picks(), given), costlens.profile(Picks(), given, device="cpu")
    assert meta.totals["macs"] == cpu.totals["macs"] == 3 * 4 * 3  # three rows kept, 4 -> 3
    with pytest.raises(ModelError, match="runs aten.nonzero, whose output's shape depends on tensor values.*--device cpu"):
        costlens.profile(Picks(), Arguments((Input((5, 4)),), {"mask": torch.empty(5, device="meta")}))


def test_item_reads_known_values() -> None:
    found = costlens.profile(Sized(), {"lengths": Input((2,), "int64", "randint(1)")})  # randint(1): zeros
    assert found.totals["macs"] == 0  # zero rows: torch.zeros(0, 4)
    found = costlens.profile(Sized(), {"lengths": torch.tensor([3, 3])})
    assert found.totals["macs"] == 3 * 4 * 2
    assert all(read.known for read in found.value_reads)


def test_tolist_on_meta_is_one_line_that_says_what_to_do() -> None:
    class Listed(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * len(x.tolist())  # torch refuses before any op runs: nothing can answer it

    with pytest.raises(ModelError, match="tolist.*a meta tensor has no values: count it with --device cpu"):
        costlens.profile(Listed(), (2, 3))


def test_a_write_with_unknown_values_forgets_what_was_known() -> None:
    class Overwritten(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            mask.copy_(x > 0)  # the known mask is overwritten with values the trace cannot know
            return self.fc(x) if mask.all() else x

    found = costlens.profile(Overwritten(), Arguments((Input((1, 8)),), {"mask": Input((1, 8), "bool")}))
    assert [read.known for read in found.value_reads] == [False]  # assumed, and said so


def test_the_command_line_takes_named_inputs_with_dtypes_and_fills(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "gates.py").write_text("from tests.test_values import Gate\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for fill, macs in (("ones", 64), ("zeros", 128)):
        ran = CliRunner().invoke(cli, ["profile", "gates:Gate", "--input", "1x8", "--input", f"mask=1x8:bool:{fill}",
                                       "--format", "json"])
        assert ran.exit_code == 0, ran.stderr
        data = json.loads(ran.stdout)
        assert data["totals"]["macs"] == macs
        assert data["inputs"] == [{"name": None, "shape": [1, 8], "dtype": "float32"},
                                  {"name": "mask", "shape": [1, 8], "dtype": "bool"}]


@pytest.mark.parametrize(("given", "needle"), [
    ("mask=1x8:bool:twos", "--input mask: unknown fill 'twos' (one of zeros, ones, rand or randint(N))"),
    ("mask=1x8:boolean", "--input mask: unknown dtype 'boolean'"),
    ("2mask=1x8", "the input's name must be a Python identifier, got '2mask'"),
    ("mask=1xq", "--input mask: malformed input shape '1xq'"),
])
def test_a_bad_named_input_is_one_line_naming_it(given: str, needle: str) -> None:
    ran = CliRunner().invoke(cli, ["profile", "conv5x5", "--input", given, "--no-save"])
    assert ran.exit_code == 2
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], ran.stderr


def test_a_budget_names_inputs_as_the_command_line_does(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from costlens.budget import BudgetFileError, check, load_budget

    (tmp_path / "gates.py").write_text("from tests.test_values import Gate\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "b.toml"
    path.write_text('rules = ["open.macs == 64", "shut.macs == 128"]\n[models]\n'  # 8·8 and 8·16
                    'open = { import = "gates:Gate", input = ["1x8", "mask=1x8:bool:ones"] }\n'
                    'shut = { import = "gates:Gate", input = ["1x8", "mask=1x8:bool:zeros"] }\n')
    assert [v.passed for v in check(load_budget(path))] == [True, True]
    path.write_text('rules = ["open.macs == 64"]\n[models]\nopen = { import = "gates:Gate", input = ["mask=1x8:boool"] }\n')
    with pytest.raises(BudgetFileError, match=r"b.toml:3: model 'open': input mask: unknown dtype 'boool'"):
        load_budget(path)
