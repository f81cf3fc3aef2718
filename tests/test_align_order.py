"""comparison._aligned_keys: the same order as the original list-insert algorithm, in linear time
(issue 9, item 5: two 330,000-layer profiles took minutes). Timings are in bench/align.py."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

from costlens.comparison import _aligned_keys


def reference_order(profiles: list[Any], depth: int) -> list[tuple[str, int, int]]:
    """The original algorithm, quadratic: a list searched and inserted into."""
    order: list[tuple[str, int, int]] = []
    for profile in profiles:
        previous = -1
        for layer in profile.layers:
            if not 1 <= layer.depth <= depth:
                continue
            key = (layer.path, layer.call, layer.depth)
            if key in order:
                previous = order.index(key)
            else:
                previous += 1
                order.insert(previous, key)
    return order


def fake_profile(keys: list[tuple[str, int, int]]) -> SimpleNamespace:
    return SimpleNamespace(layers=[SimpleNamespace(path=p, call=c, depth=d) for p, c, d in keys])


def random_profiles(rng: random.Random) -> list[SimpleNamespace]:
    """2-4 profiles drawing from one pool of blocks, each a shuffled subset: shared and lone blocks, any order."""
    pool = [(f"b{i}", rng.randint(0, 2), rng.randint(0, 4)) for i in range(rng.randint(1, 30))]
    return [fake_profile(rng.sample(pool, rng.randint(0, len(pool)))) for _ in range(rng.randint(2, 4))]


def test_same_order_as_the_original_algorithm() -> None:
    rng = random.Random(9)
    for _ in range(500):
        profiles = random_profiles(rng)
        depth = rng.randint(1, 4)
        assert _aligned_keys(tuple(profiles), depth) == reference_order(profiles, depth)  # type: ignore[arg-type]


def test_the_lecture_pair_merges_a_block_after_its_predecessor() -> None:
    base = fake_profile([("a", 0, 1), ("c", 0, 1)])
    other = fake_profile([("a", 0, 1), ("b", 0, 1), ("c", 0, 1), ("d", 0, 1)])
    assert [k[0] for k in _aligned_keys((base, other), 1)] == ["a", "b", "c", "d"]  # type: ignore[arg-type]


class CountedPath(str):
    """A path that counts the equality tests made on it: a list search makes O(n) per lookup."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        CountedPath.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_each_block_costs_a_constant_number_of_comparisons() -> None:
    blocks = 2000
    base = fake_profile([(CountedPath(f"b{i}"), 0, 1) for i in range(0, blocks, 2)])
    other = fake_profile([(CountedPath(f"b{i}"), 0, 1) for i in range(blocks)])
    CountedPath.comparisons = 0
    order = _aligned_keys((base, other), 1)  # type: ignore[arg-type]
    assert len(order) == blocks
    # a dict lookup compares a key with the entry of equal hash: about one test per record
    # (1,000 + 2,000 records); the list search made ~blocks²/4 = 1,000,000
    assert CountedPath.comparisons <= 3 * (blocks // 2 + blocks)
