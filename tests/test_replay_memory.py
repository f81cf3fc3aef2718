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


@pytest.mark.parametrize("name", ["linear", "norms", "dropout"])
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
