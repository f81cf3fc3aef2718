"""Robust statistics of a timed statement, from ``torch.utils.benchmark``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Stats:
    """Median, spread and extremes of one timed statement, in milliseconds."""

    median_ms: float
    iqr_ms: float
    min_ms: float
    runs: int  # statement executions behind the figures

    @property
    def spread(self) -> float:
        """IQR / median: the relative noise of the measurement."""
        return self.iqr_ms / self.median_ms if self.median_ms else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def from_measurement(measurement: Any) -> Stats:
    """A ``torch.utils.benchmark.Measurement`` as Stats (its times are per execution)."""
    times = list(measurement.times)
    return Stats(
        median_ms=measurement.median * 1e3,
        iqr_ms=measurement.iqr * 1e3,
        min_ms=min(times) * 1e3,
        runs=len(times) * int(measurement.number_per_run),
    )


def merged(measurements: list[Any]) -> Stats:
    """One Stats from measurements of the same statement taken in several rounds."""
    from torch.utils.benchmark import Measurement

    return from_measurement(Measurement.merge(measurements)[0])
