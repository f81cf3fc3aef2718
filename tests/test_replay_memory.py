"""A profile must not depend on what ran before it in the process.

The tracer keeps meta results and layer calls for the process (``costlens/count/tracer.py``,
``costlens/count/replay.py``); a cached op or a replayed layer runs nothing, yet every
figure, peak memory included (``costlens/count/live.py``), must be the one a first
profile in a fresh process gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import torch
from torch import nn

from costlens.api import profile
from costlens.count import replay, tracer


class Residual(nn.Module):
    """conv, batch norm, in-place ReLU over a residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)) + x)


class Joined(nn.Module):
    """Two branches joined by cat, then a max-pool that returns its indices."""

    def __init__(self) -> None:
        super().__init__()
        self.left, self.right = nn.Conv2d(4, 2, 1), nn.Conv2d(4, 2, 1)
        self.pool = nn.MaxPool2d(2, return_indices=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled, _ = self.pool(torch.cat([self.left(x), self.right(x)], 1))
        return pooled


class Reshaped(nn.Module):
    """A reshape that cannot be a view: ``clone`` then ``_unsafe_view``, twice alike."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = x.transpose(1, 2).reshape(2, 18), x.transpose(1, 2).reshape(2, 18)
        return first.sum() + second.sum()


def _hooked() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    model[1].register_forward_hook(lambda module, args, out: out * 2)
    return model


def _blocks() -> nn.Module:
    """Sequentials in a Sequential, one of them registered twice, an in-place ReLU and a Linear."""
    inner = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(inplace=True))
    other = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Dropout())
    return nn.Sequential(inner, other, inner, nn.Sequential(nn.MaxPool2d(2), nn.Linear(3, 5)))


SMALL: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "residual": (Residual, (2, 4, 6, 6)),
    "joined": (Joined, (1, 4, 8, 8)),
    "reshaped": (Reshaped, (2, 3, 6)),
    "hooked": (_hooked, (1, 4, 9, 9)),
    "dropout": (lambda: nn.Sequential(nn.Linear(8, 8), nn.Dropout(), nn.Linear(8, 8), nn.Dropout()), (3, 8)),
    "linear": (lambda: nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8), nn.ReLU(inplace=True), nn.Linear(8, 8)), (2, 8)),
    "norms": (lambda: nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)),
              (2, 4, 5, 5)),
    "pools": (lambda: nn.Sequential(nn.MaxPool2d(1), nn.MaxPool2d(1)), (1, 1, 4, 4)),
    "blocks": (_blocks, (1, 4, 6, 6)),
}
ZOO = ("resnet18", "googlenet", "inception", "alexnet", "lenet5-1998", "vgg11", "nin")


def _everything(name: str, train: bool, models: dict[str, nn.Module]) -> dict:
    """Every field of the profile (each layer's and the totals), as its JSON has them."""
    if name in SMALL:
        result = profile(models[name], SMALL[name][1], train=train)
    else:
        result = profile(name, train=train)
    data = json.loads(result.to_json())
    data.pop("environment")
    return data


@pytest.fixture
def models() -> dict[str, nn.Module]:
    with torch.device("meta"):
        return {name: make() for name, (make, _) in SMALL.items()}


JOBS = [(name, train) for name in (*SMALL, *ZOO) for train in (False, True)]


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_every_figure_is_the_same_whatever_ran_before(order: str, models: dict[str, nn.Module]) -> None:
    jobs = JOBS if order == "forward" else JOBS[::-1]
    tracer.clear_caches()
    first = {job: _everything(*job, models) for job in jobs}  # each after the others before it
    again = {job: _everything(*job, models) for job in jobs}  # every op and layer call cached now
    for job in jobs:
        tracer.clear_caches()
        assert _everything(*job, models) == first[job], job  # as the first profile of a process
    assert again == first


def test_a_replayed_layer_counts_its_temporaries_in_the_peak(models: dict[str, nn.Module],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # two 1×1 max-pools on a 4×4 float32 map: 64 B each output, 128 B of int64 indices each,
    # which die when the pool returns. During the second pool the input (64), the first
    # pool's output (64), its own output (64) and indices (128) are alive: 320 B.
    tracer.clear_caches()
    pools = models["pools"]
    for _ in range(2):  # the second pool replays the first's call, and then both replay
        assert profile(pools, (1, 1, 4, 4)).totals["peak_bytes"] == 320
    monkeypatch.setattr(replay, "REPLAYABLE", frozenset())
    tracer.clear_caches()
    assert profile(pools, (1, 1, 4, 4)).totals["peak_bytes"] == 320


def test_a_reshape_copy_is_held_once_not_once_more_from_the_cache(models: dict[str, nn.Module]) -> None:
    # x is 2×3×6 float32 (144 B); each reshape of its transpose copies it (144 B), and
    # _unsafe_view returns that copy's storage; then two 0-dim sums and their sum, 4 B each
    tracer.clear_caches()
    peaks = [profile(models["reshaped"], (2, 3, 6)).totals["peak_bytes"] for _ in range(2)]
    assert peaks == [3 * 144 + 3 * 4] * 2


@pytest.mark.parametrize("name", ["linear", "norms", "dropout", "blocks"])
def test_replayed_layers_leave_what_running_them_leaves(name: str, models: dict[str, nn.Module],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Layers of one configuration on inputs of one shape, in training mode too: replayed,
    every figure is the one of running each of them."""
    tracer.clear_caches()
    replayed = [_everything(name, train, models) for train in (False, True, False, True)]
    monkeypatch.setattr(replay, "REPLAYABLE", frozenset())
    tracer.clear_caches()
    run = [_everything(name, train, models) for train in (False, True)]
    tracer.clear_caches()  # what was cached without replays must not outlive this test
    assert replayed == run + run


def test_dtypes_and_tied_layers_do_not_carry_over() -> None:
    """A layer replayed across dtypes (stand-in parameters) or called twice as one object."""
    with torch.device("meta"):
        shared = nn.Linear(8, 8)
        tied = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(8, 8))
    jobs: list[tuple[tuple, dict]] = [
        (("resnet18",), {"dtype": "float16"}), (("resnet18",), {}), (("alexnet",), {"dtype": "bfloat16", "batch": 2}),
        ((tied, (2, 8)), {}), ((tied, (2, 8)), {"train_mode": True}), ((tied, (2, 8)), {"train": True}),
    ]

    def data(args: tuple, options: dict) -> dict:
        found = json.loads(profile(*args, **options).to_json())
        found.pop("environment")
        return found

    tracer.clear_caches()
    first = [data(*job) for job in jobs]
    again = [data(*job) for job in reversed(jobs)][::-1]
    fresh = []
    for job in jobs:
        tracer.clear_caches()
        fresh.append(data(*job))
    assert first == fresh
    assert again == fresh


def test_a_layer_registered_twice_profiles_in_another_dtype_and_is_left_as_it_was() -> None:
    with torch.device("meta"):
        shared = nn.Linear(8, 8)
        tied = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(8, 8))
    before = [id(p) for p in tied.parameters()]
    result = profile(tied, (2, 8), dtype="bfloat16")
    assert result.totals["weight_bytes"] == (72 + 72) * 2  # two distinct linears, 2 bytes a value
    assert [id(p) for p in tied.parameters()] == before


def test_a_linear_layer_weight_is_counted_once_in_the_peak() -> None:
    # weights 1000·1000 + 1000 = 1,001,000 values = 4,004,000 B; input and output 1000 floats each, 4,000 B:
    # the transposed weight linear uses is a view of the weight, not new memory
    assert profile(nn.Linear(1000, 1000), (1, 1000)).totals["peak_bytes"] == 4_004_000 + 4_000 + 4_000


def test_a_replayed_block_makes_every_call_inside_it(models: dict[str, nn.Module]) -> None:
    """A Sequential of plain layers is replayed whole; each call inside it keeps its own record.

    Each 3×3 conv, 4 → 4 channels, padding 1, on 6×6: 36 positions × 4 × 4 × 9 = 5,184 MACs.
    The block at "0" runs twice (it is also registered as "2"): calls 0 and 1.
    """
    tracer.clear_caches()
    for _ in range(3):  # run and recorded, then replayed, then replayed again
        result = profile(models["blocks"], (1, 4, 6, 6))
        calls = [(layer.path, layer.call, layer.depth) for layer in result.layers]
        assert calls == [("", 0, 0), ("0", 0, 1), ("0.0", 0, 2), ("0.1", 0, 2),
                         ("1", 0, 1), ("1.0", 0, 2), ("1.1", 0, 2), ("1.2", 0, 2),
                         ("0", 1, 1), ("0.0", 1, 2), ("0.1", 1, 2),
                         ("3", 0, 1), ("3.0", 0, 2), ("3.1", 0, 2)]
        assert [layer.macs for layer in result.layers if layer.type == "Conv2d"] == [5184] * 3
        assert result.find("0", 1).macs == 5184
        # the pool gives 1×4×3×3; the linear maps its last dimension 3 → 5: 12 rows × 3 × 5 MACs
        assert result.find("3").macs == 180
        assert result.find("3.1").output_shapes == [[1, 4, 3, 5]]
        assert result.root.macs == 3 * 5184 + 180
    recorded = [done for cache in tracer._REPLAYS.values() for done in cache.values()]
    # "0" and "1"; the root and "3" end in a Linear on a 4-d input, which returns a view: always run
    assert sum(isinstance(done, replay.BlockReplay) for done in recorded) == 2


def test_a_block_changed_between_profiles_is_not_replayed_as_it_was() -> None:
    """A layer of a block replaced, reconfigured or given a weight of another shape or dtype: figures follow."""
    tracer.clear_caches()
    with torch.device("meta"):
        model = nn.Sequential(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()), nn.ReLU())
        profile(model, (1, 4, 6, 6))
        assert profile(model, (1, 4, 6, 6)).root.macs == 36 * 4 * 4 * 9
        model[0][0] = nn.Conv2d(4, 8, 3, padding=1)  # 8 output channels
        assert profile(model, (1, 4, 6, 6)).root.macs == 36 * 8 * 4 * 9
        model[0][0].padding = (0, 0)  # 4×4 outputs
        assert profile(model, (1, 4, 6, 6)).root.macs == 16 * 8 * 4 * 9
        model[0][0].weight = nn.Parameter(torch.empty(8, 4, 1, 1))  # a 1×1 kernel on 6×6
        assert profile(model, (1, 4, 6, 6)).root.macs == 36 * 8 * 4
        model[0][0].weight.data = torch.empty(8, 4, 3, 3)  # the same parameter, 3×3 again: 4×4 outputs
        assert profile(model, (1, 4, 6, 6)).root.macs == 16 * 8 * 4 * 9
        # float64 weights: float32 stand-ins in the trace, 4 bytes an element
        model[0][0].to(torch.float64)
        assert profile(model, (1, 4, 6, 6)).totals["weight_bytes"] == (8 * 4 * 9 + 8) * 4
        model[0].append(nn.Conv2d(8, 2, 1))  # a 1×1 conv on the 4×4 map: 16 × 2 × 8
        assert profile(model, (1, 4, 6, 6)).root.macs == 16 * 8 * 4 * 9 + 16 * 2 * 8
