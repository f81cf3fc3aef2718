"""Statistics of a timed statement: the median with a confidence interval, IQR, minimum, runs.

Each sample is one block of runs timed by ``torch.utils.benchmark.Timer`` (its time per
run). The interval for the median is distribution-free, from order statistics: with n
samples sorted, the median lies between the j-th and the (n+1-j)-th with probability
1 - 2·P(B <= j-1), B ~ Binomial(n, 1/2); j is the largest rank that keeps that at or above
the confidence asked (95%). Fewer than 6 samples cannot reach 95% (two samples on one side
of the median have probability 1/32 at n = 6); the interval is then the whole range and
its confidence is the lower one it has.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

CONFIDENCE = 0.95
EXACT_UP_TO = 200  # samples up to which the binomial sums are exact


class Stopped:
    """Why a measurement ended (``Stats.stopped``)."""

    INTERVAL = "interval"  # the interval's half-width came under the precision asked
    TIME_CAP = "time cap"  # the time allowed ran out first
    ROUNDS = "rounds"  # a fixed number of rounds (the training step, per-layer replay)
    INTERRUPTED = "interrupted"  # Ctrl-C


@dataclass(frozen=True)
class Stats:
    """Median, its confidence interval, spread and extremes of one timed statement, in milliseconds."""

    median_ms: float
    ci_low_ms: float
    ci_high_ms: float
    confidence: float  # the interval's coverage (0.95, or less with few samples)
    iqr_ms: float
    min_ms: float
    runs: int  # statement executions behind the figures
    samples: int  # timed blocks (each a mean over its runs): what the median and interval are of
    stopped: str = Stopped.ROUNDS
    seconds: float = 0.0  # wall time of the rounds behind it (shared by statements timed interleaved)

    @property
    def spread(self) -> float:
        """IQR / median: the relative noise of the measurement."""
        return self.iqr_ms / self.median_ms if self.median_ms else 0.0

    @property
    def half_width(self) -> float:
        """The interval's half-width relative to the median: max distance from the median / median."""
        if not self.median_ms:
            return 0.0
        return max(self.median_ms - self.ci_low_ms, self.ci_high_ms - self.median_ms) / self.median_ms

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def median_interval(samples: list[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(low, high, coverage) of the distribution-free interval for the median of ``samples``."""
    ordered = sorted(samples)
    n = len(ordered)
    if n == 0:
        raise ValueError("no samples")
    rank = _rank(n, confidence)  # 1-based: the interval [x_(rank), x_(n+1-rank)]
    return ordered[rank - 1], ordered[n - rank], _coverage(n, rank)


def _rank(n: int, confidence: float) -> int:
    """The largest rank whose interval still covers the median with ``confidence`` (1 at least)."""
    rank = 1
    if n > EXACT_UP_TO:  # start near the normal approximation's rank, then settle exactly
        z = statistics.NormalDist().inv_cdf((1 + confidence) / 2)
        rank = max(1, int((n - z * math.sqrt(n)) / 2) - 2)
    while rank < (n + 1) // 2 and _coverage(n, rank + 1) >= confidence:
        rank += 1
    return rank


def _coverage(n: int, rank: int) -> float:
    """P(x_(rank) <= median <= x_(n+1-rank)) = 1 - 2 P(Binomial(n, 1/2) <= rank - 1)."""
    if n > EXACT_UP_TO:  # normal approximation with continuity correction: the exact sum grows as n^2 bits
        return 1 - 2 * statistics.NormalDist(n / 2, math.sqrt(n) / 2).cdf(rank - 0.5)
    below = sum(math.comb(n, i) for i in range(rank)) / 2**n
    return 1 - 2 * below


def from_samples(per_run_s: list[float], runs: int, stopped: str = Stopped.ROUNDS,
                 confidence: float = CONFIDENCE) -> Stats:
    """Stats of blocks whose mean times per run (seconds) are ``per_run_s``, ``runs`` executions in all."""
    low, high, coverage = median_interval(per_run_s, confidence)
    ms = [t * 1e3 for t in per_run_s]
    quartiles = statistics.quantiles(ms, n=4, method="inclusive") if len(ms) > 1 else [ms[0]] * 3
    return Stats(median_ms=statistics.median(ms), ci_low_ms=low * 1e3, ci_high_ms=high * 1e3, confidence=coverage,
                 iqr_ms=quartiles[2] - quartiles[0], min_ms=min(ms), runs=runs, samples=len(ms), stopped=stopped)


def from_measurements(measurements: list[Any], stopped: str = Stopped.ROUNDS) -> Stats:
    """One Stats from ``torch.utils.benchmark.Measurement`` s of one statement (several rounds)."""
    per_run = [t for m in measurements for t in m.times]
    runs = sum(len(m.raw_times) * int(m.number_per_run) for m in measurements)
    return from_samples(per_run, runs, stopped)


def from_measurement(measurement: Any) -> Stats:
    """A single ``torch.utils.benchmark.Measurement`` as Stats."""
    return from_measurements([measurement])
