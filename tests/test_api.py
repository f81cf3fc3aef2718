"""The Python API as a notebook user meets it: names, input forms, reprs, exports, formulas."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from torch import nn

import costlens
from costlens import Input, OpCost, compare, load, profile
from costlens.errors import InputShapeError


class TwoTower(nn.Module):
    """Two image inputs: RGB and depth, fused by concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.rgb = nn.Conv2d(3, 8, 3, padding=1)
        self.depth = nn.Conv2d(1, 8, 1)
        self.head = nn.Linear(16, 2)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.rgb(rgb), self.depth(depth)], 1)
        return self.head(x.mean((2, 3)))


# rgb: 16·16·8 outputs × 3·3·3 = 55,296; depth: 16·16·8 × 1 = 2,048; head: 16·2 = 32
TWO_TOWER_MACS = 55_296 + 2_048 + 32


class Tagger(nn.Module):
    """Token ids plus a mask: an embedding, masked, then a per-token linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        self.proj = nn.Linear(32, 5)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.proj(self.embed(ids) * mask.unsqueeze(-1))


TAGGER_MACS = 2 * 16 * 32 * 5  # 32 tokens × 32 → 5 = 5,120; an embedding lookup is no MAC


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[1])


@pytest.mark.parametrize("code", [
    "from costlens import profile; profile('conv5x5'); print(profile('conv5x5').totals['macs'])",
    "import costlens; costlens.profile('conv5x5'); print(costlens.profile('conv5x5').totals['macs'])",
    "import costlens, costlens.api, costlens.records; print(costlens.profile('conv5x5').totals['macs'])",
    "import costlens.api; import costlens; print(costlens.profile('conv5x5').totals['macs'])",
    "from costlens import compare; c = compare('conv5x5', 'conv1x1-5x5'); print(c.profiles[0].totals['macs'])",
])
def test_public_names_are_functions_in_a_fresh_interpreter(code: str) -> None:
    done = _fresh(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "120422400"  # 28·28·32 × 5·5·192


def test_no_module_shadows_a_public_function() -> None:
    import costlens.api  # noqa: F401
    import costlens.comparison  # noqa: F401
    import costlens.records  # noqa: F401

    assert callable(costlens.profile) and callable(costlens.compare) and callable(costlens.load)


@pytest.mark.parametrize("inputs", [
    ((1, 3, 16, 16), (1, 1, 16, 16)),
    [torch.empty(1, 3, 16, 16, device="meta"), torch.empty(1, 1, 16, 16, device="meta")],
    {"rgb": (1, 3, 16, 16), "depth": (1, 1, 16, 16)},
    (Input((1, 3, 16, 16)), Input((1, 1, 16, 16), torch.float32)),
    (torch.randn(1, 3, 16, 16), (1, 1, 16, 16)),
])
def test_two_image_inputs_in_every_form(inputs: object) -> None:
    result = profile(TwoTower(), inputs)
    assert result.totals["macs"] == TWO_TOWER_MACS
    assert [i.shape for i in result.inputs] == [[1, 3, 16, 16], [1, 1, 16, 16]]


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("inputs", [
    (((2, 16), torch.int64), ((2, 16), "bool")),
    {"ids": Input((2, 16), "int64"), "mask": Input((2, 16), torch.bool)},
])
def test_token_ids_and_a_mask(inputs: object, device: str) -> None:
    result = profile(Tagger(), inputs, device=device)
    assert result.totals["macs"] == TAGGER_MACS
    assert [i.dtype for i in result.inputs] == ["int64", "bool"]
    assert result.totals["params"] == 100 * 32 + 32 * 5 + 5  # embedding + weight + bias = 3,365


def test_dtype_objects_and_batch() -> None:
    result = profile(TwoTower(), ((1, 3, 16, 16), (1, 1, 16, 16)), dtype=torch.float16, batch=4)
    assert result.dtype == "float16" and result.totals["macs"] == 4 * TWO_TOWER_MACS
    assert result.totals["weight_bytes"] == 2 * (8 * 27 + 8 + 8 + 8 + 16 * 2 + 2)  # 274 params × 2 bytes


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"inputs": "1x3x16x16"}, "inputs: expected a shape"),
    ({"inputs": ((1, 3, 16, 16), "nonsense")}, "inputs: unknown dtype 'nonsense'"),  # a (shape, dtype) pair
    ({"inputs": ((1, 3, 16, 16), [2.5])}, "inputs[1]: expected a shape"),
    ({"inputs": {"ids": Input((2, 16), "int99")}}, "inputs['ids']: unknown dtype 'int99'"),
    ({"inputs": (1, 0, 16)}, "inputs: shape (1, 0, 16) must be positive"),
    ({"inputs": (1, 3, 16, 16), "dtype": "int64"}, "dtype: int64 is not a dtype to trace in"),
    ({"inputs": (1, 3, 16, 16), "device": "gpu9"}, "device: 'gpu9' is not a device"),
])
def test_errors_name_the_python_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(InputShapeError) as error:
        profile(TwoTower(), **kwargs)
    assert message in str(error.value) and "--input" not in str(error.value)


def test_reprs_for_notebooks() -> None:
    result = profile("inception")
    text = repr(result)
    assert len(text) < 200 and "inception" in text and "128M" in text  # 128,049,152 MACs
    markdown = result._repr_markdown_()
    assert "128,049,152" in markdown and "| branch3 |" in markdown
    page = result._repr_html_()
    assert "128,049,152" in page and "branch3" in page and "<script" not in page
    parser = _Balanced()
    parser.feed(page)
    assert parser.stack == [] and parser.rows >= 5  # four branches and the header row


class _Balanced(HTMLParser):
    """Checks that every opened element closes in order."""

    VOID = {"br", "meta", "input", "img", "hr", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.rows = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)
        self.rows += tag == "tr"

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (self.stack[-3:], tag)
        self.stack.pop()


def test_figures_frame_json_and_load(tmp_path: Path) -> None:
    result = profile(TwoTower(), ((1, 3, 16, 16), (1, 1, 16, 16)))
    figures = result.figures()
    assert {"macs-bars", "sunburst", "memory"} <= set(figures)
    assert sum(figures["macs-bars"].data[0].y) == TWO_TOWER_MACS
    frame = result.to_frame()
    assert frame.loc[frame.path == "rgb", "macs"].item() == 55_296
    saved = tmp_path / "two.json"
    saved.write_text(result.to_json())
    assert load(saved) == result
    assert json.loads(result.to_json())["inputs"][1] == {"name": None, "shape": [1, 1, 16, 16], "dtype": "float32"}


def test_compare_at_the_top_level() -> None:
    comparison = compare("inception-naive", "inception")
    assert comparison.ratios("macs")[1] == pytest.approx(128_049_152 / 303_464_448)
    assert "branch3" in comparison._repr_markdown_() and "9.7x less" in comparison._repr_markdown_()
    assert "inception-naive" in repr(comparison) and len(repr(comparison)) < 200
    assert "<table" in comparison._repr_html_()
    assert set(comparison.figures()) == {"totals", "blocks-macs", "blocks-params"}
    frame = comparison.to_frame()
    assert frame[(frame.block == "branch3") & (frame.model == "inception")]["macs"].item() == 12_443_648


class Gelu(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(x)


def _gelu_cost(args: tuple, kwargs: dict, out: torch.Tensor) -> OpCost:
    return OpCost(flops=8 * out.numel())  # the user's own rule: 8 flops per element


def test_custom_formulas_apply_to_one_call_only() -> None:
    plain = profile(Gelu(), (1, 10))
    custom = profile(Gelu(), (1, 10), formulas={torch.ops.aten.gelu: _gelu_cost})
    again = profile(Gelu(), (1, 10), formulas={"aten.gelu": _gelu_cost})  # re-running the cell is fine
    assert custom.totals["flops"] == again.totals["flops"] == 80  # 10 elements × 8
    assert plain.totals["flops"] != 80
    assert profile(Gelu(), (1, 10)).totals == plain.totals  # nothing registered globally


_BUILDS = []


def built_on_cpu_only() -> nn.Module:
    """A factory that reads real values: it cannot build on the meta device."""
    _BUILDS.append(1)
    layer = nn.Linear(4, 4)
    float(layer.weight.sum())  # reading a value fails on meta
    return layer


def test_a_factory_that_needs_real_values_is_built_on_cpu_with_a_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = profile("tests.test_api:built_on_cpu_only", (1, 4))
        second = profile("tests.test_api:built_on_cpu_only", (1, 4))
    assert first.totals["macs"] == second.totals["macs"] == 16  # 4 × 4
    messages = [str(w.message) for w in caught if issubclass(w.category, costlens.CostlensWarning)]
    # nothing is remembered between profiles: each tries meta, then builds on cpu and says so
    assert len(messages) == 2 and all("cannot be built on the meta device" in m for m in messages)
    assert len(_BUILDS) == 4


def test_dynamo_skip_hook_still_exists_in_torch() -> None:
    """The tracer overrides TorchDispatchMode._should_skip_dynamo (a private hook) to keep
    torch._dynamo from loading; if torch renames or drops it, this must fail loudly."""
    import inspect

    import torch.utils._python_dispatch as dispatch

    assert hasattr(dispatch.TorchDispatchMode, "_should_skip_dynamo")
    assert "_should_skip_dynamo" in inspect.getsource(dispatch)


def test_a_plain_shape_on_meta_is_prepared_as_the_general_path_prepares_it() -> None:
    from costlens.errors import InputShapeError
    from costlens.inputs import prepare

    meta = torch.device("meta")
    for batch, dtype in ((None, torch.float32), (3, torch.bfloat16)):
        fast = prepare((1, 192, 28, 28), batch=batch, device=meta, dtype=dtype)
        general = prepare([1, 192, 28, 28], batch=batch, device=meta, dtype=dtype)  # a list takes the general path
        assert fast.infos == general.infos and fast.kwargs == general.kwargs == {}
        assert [(t.shape, t.dtype, t.device) for t in fast.args] == [(t.shape, t.dtype, t.device) for t in general.args]
    with pytest.raises(InputShapeError, match="beyond what any device can address"):
        prepare((2**40, 2**40), batch=None, device=meta, dtype=torch.float32)  # 2^80 values: the general path's words
