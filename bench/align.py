"""How comparing two profiles block by block scales: comparison._aligned_keys against the
original list-insert algorithm (kept in tests/test_align_order.py), in the same run.

Run:  .venv/bin/python bench/align.py [--sizes 5000,10000,20000] [--rounds 5]

Each size n is a pair of profiles of n depth-1 blocks: the baseline has the even-numbered
ones, the other all of them, so half the blocks are merged in between the baseline's.
The original runs once per size (seconds to minutes: it grows as n²), the linear one
--rounds times (median); both orders are checked equal. Prints seconds and original/linear.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's costlens and tests

from costlens.comparison import _aligned_keys  # noqa: E402
from tests.test_align_order import fake_profile, reference_order  # noqa: E402


def _median_seconds(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5000,10000,20000")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    print(f"{'blocks':>8}  {'original s':>10}  {'linear s':>9}  {'original/linear':>15}")
    for blocks in (int(n) for n in options.sizes.split(",")):
        pair: Any = (fake_profile([(f"b{i}", 0, 1) for i in range(0, blocks, 2)]),
                fake_profile([(f"b{i}", 0, 1) for i in range(blocks)]))
        started = time.perf_counter()
        expected = reference_order(list(pair), 1)
        old = time.perf_counter() - started
        assert _aligned_keys(pair, 1) == expected
        new = _median_seconds(functools.partial(_aligned_keys, pair, 1), options.rounds)
        print(f"{blocks:>8,}  {old:>10.3f}  {new:>9.4f}  {old / new:>15.0f}")


if __name__ == "__main__":
    main()
