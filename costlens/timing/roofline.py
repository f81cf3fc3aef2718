"""The roofline (Williams, Waterman, Patterson 2009): what a layer could reach on a device.

A layer doing F FLOPs while moving B bytes has arithmetic intensity I = F / B. On a
device with peak P FLOP/s and bandwidth W bytes/s it can reach at most
min(P, I · W): below the ridge I = P / W it is memory-bound, above it compute-bound.
Measured time t gives the achieved F / t and the share of that roof reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RooflinePoint:
    """One layer on the roofline."""

    intensity: float  # FLOPs per byte
    attainable: float  # FLOP/s the roofs allow at that intensity
    achieved: float | None  # FLOP/s measured (None without a time)
    predicted_ms: float  # the time the roofline predicts

    @property
    def share(self) -> float | None:
        """Achieved as a fraction of attainable."""
        return None if self.achieved is None or not self.attainable else self.achieved / self.attainable


def bound(intensity: float, peak: float, bandwidth: float) -> str:
    """'memory' below the ridge point, 'compute' at or above it."""
    return "memory" if intensity < peak / bandwidth else "compute"


def point(flops: float, nbytes: float, time_ms: float | None, peak: float, bandwidth: float) -> RooflinePoint:
    """Where a layer of ``flops`` FLOPs moving ``nbytes`` bytes sits, measured in ``time_ms``."""
    intensity = flops / nbytes if nbytes else 0.0
    attainable = min(peak, intensity * bandwidth)
    # a layer that moves bytes but does no arithmetic is bounded by the copy alone
    predicted_s = flops / attainable if attainable else nbytes / bandwidth
    achieved = flops / (time_ms / 1e3) if time_ms else None
    return RooflinePoint(intensity, attainable, achieved, predicted_s * 1e3)


def peak_of(device: dict[str, Any], dtype: str) -> float:
    """The roofline's peak for ``dtype`` from a saved device description (``DeviceFacts.to_dict``),
    chosen as ``DeviceFacts.peak`` chooses it: float32 takes TF32's when higher; a dtype not
    calibrated takes float32's."""
    peaks = device["peak_flops"]
    found = peaks.get(dtype)
    if dtype == "float32" and "tf32" in peaks:
        found = max(found or 0.0, peaks["tf32"])
    return float(found or peaks.get("float32") or max(peaks.values()))
