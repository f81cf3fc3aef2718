"""The device a model is timed on: its name, peak FLOP/s per dtype and memory bandwidth.

Peaks are measured by a short calibration — large matmuls at a few sizes (the best
size wins) and a large copy (read + write) — and cached per machine under the user's
cache directory (``$XDG_CACHE_HOME/costlens``, else ``~/.cache/costlens``). A device
the user does not have is described by overrides (``--peak-flops``, ``--bandwidth``)
or a JSON file with the same fields as ``DeviceFacts.to_dict``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from costlens.errors import CostlensError

# Matmul sizes tried per device type; the best FLOP/s of them is the peak.
MATMUL_SIZES = {"cpu": (512, 1024, 2048), "cuda": (4096, 8192, 16384)}
WARM_SECONDS = 0.3  # run each product this long first: GPU clocks rise from idle only under load
COPY_BYTES = {"cpu": 256 * 2**20, "cuda": 2 * 2**30}
CALIBRATED_DTYPES = {"cpu": ("float32", "bfloat16"), "cuda": ("float32", "float16", "bfloat16")}


class DeviceError(CostlensError):
    """A device that cannot be used or described as asked."""


@dataclass(frozen=True)
class DeviceFacts:
    """What the roofline needs of a device: peaks per dtype and memory bandwidth."""

    type: str
    name: str
    peak_flops: dict[str, float]  # FLOP/s per dtype name
    bandwidth: float  # bytes/s, read + write of a large copy
    threads: int
    source: str  # "calibrated", "cache", "override", or a file name
    details: dict[str, Any] = field(default_factory=dict)  # what each size reached

    def peak(self, dtype: str) -> float:
        """The peak FLOP/s for ``dtype`` (float32's when that dtype was not calibrated)."""
        return self.peak_flops.get(dtype) or self.peak_flops.get("float32") or max(self.peak_flops.values())

    def ridge(self, dtype: str) -> float:
        """The arithmetic intensity (FLOPs/byte) where the roofs meet."""
        return self.peak(dtype) / self.bandwidth

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> DeviceFacts:
        try:
            peaks = {str(k): float(v) for k, v in data["peak_flops"].items()}
            facts = cls(type=str(data.get("type", "cpu")), name=str(data.get("name", source)), peak_flops=peaks,
                        bandwidth=float(data["bandwidth"]), threads=int(data.get("threads", 0)), source=source,
                        details=dict(data.get("details", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise DeviceError(f"{source}: not a device description ({error}); needs peak_flops and bandwidth") from None
        if not peaks or any(v <= 0 or v != v or v == float("inf") for v in [*peaks.values(), facts.bandwidth]):
            raise DeviceError(f"{source}: peaks and bandwidth must be positive finite numbers")
        return facts


def resolve_device(name: str) -> torch.device:
    """``auto`` is cuda when available, else cpu; cuda without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' is not available here (torch.cuda.is_available() is False): "
                          "time on cpu, or use --device auto")
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"cannot time on '{name}': choose auto, cpu or cuda")
    return device


def device_name(device: torch.device) -> str:
    """A human name: the GPU's, or the CPU model from /proc/cpuinfo."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_dir() -> Path:
    """Where calibrations are kept: $XDG_CACHE_HOME/costlens or ~/.cache/costlens."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "costlens"


def _cache_file(device: torch.device) -> Path:
    key = f"{device.type}|{device_name(device)}|{torch.__version__}|{torch.get_num_threads()}"
    return cache_dir() / f"device-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def _time_seconds(stmt: Callable[[], Any], min_run_time: float) -> float:
    """Median seconds of ``stmt`` after running it for ``WARM_SECONDS`` (clocks, caches, autotuning)."""
    from torch.utils.benchmark import Timer

    timer = Timer("f()", globals={"f": stmt})
    timer.blocked_autorange(min_run_time=WARM_SECONDS)
    return float(timer.blocked_autorange(min_run_time=min_run_time).median)


def matmul_peak(device: torch.device, dtype: torch.dtype, sizes: tuple[int, ...],
                min_run_time: float = 0.3) -> tuple[float, dict[str, float]]:
    """The best matmul FLOP/s over ``sizes`` (2·n³ FLOPs per n×n product) and each size's."""
    reached: dict[str, float] = {}
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        seconds = _time_seconds(_product(a, b), min_run_time)
        reached[str(n)] = 2 * n**3 / seconds
        del a, b
    return max(reached.values()), reached


def _product(a: torch.Tensor, b: torch.Tensor) -> Callable[[], torch.Tensor]:
    return lambda: torch.mm(a, b)


def copy_bandwidth(device: torch.device, nbytes: int, min_run_time: float = 0.2) -> float:
    """Bytes/s of a large copy, counting the read and the write."""
    source = torch.empty(nbytes // 4, device=device, dtype=torch.float32).uniform_()
    target = torch.empty_like(source)
    seconds = _time_seconds(lambda: target.copy_(source), min_run_time)
    return 2 * nbytes / seconds


def calibrate(device: torch.device, progress: Callable[[str], None] | None = None) -> DeviceFacts:
    """Measure the peaks of ``device`` now (a few seconds)."""
    kind = device.type
    peaks: dict[str, float] = {}
    details: dict[str, Any] = {}
    for name in CALIBRATED_DTYPES[kind]:
        if progress:
            progress(f"matmul {name}")
        try:
            peaks[name], details[f"matmul_{name}"] = matmul_peak(device, getattr(torch, name), MATMUL_SIZES[kind])
        except RuntimeError as error:  # a dtype this device's kernels lack
            details[f"matmul_{name}"] = f"unsupported: {str(error).splitlines()[0]}"
    if progress:
        progress("copy")
    bandwidth = copy_bandwidth(device, COPY_BYTES[kind])
    return DeviceFacts(kind, device_name(device), peaks, bandwidth, torch.get_num_threads(), "calibrated", details)


def device_facts(device: torch.device, *, recalibrate: bool = False, file: str | None = None,
                 peak_flops: float | None = None, bandwidth: float | None = None,
                 progress: Callable[[str], None] | None = None) -> DeviceFacts:
    """The facts of ``device``: from ``file``, else the cache, else a calibration (then cached);
    ``peak_flops`` (for every dtype) and ``bandwidth`` override what was found."""
    if file is not None:
        facts = _read(Path(file))
    elif peak_flops is not None and bandwidth is not None:  # fully described: nothing to measure
        peaks = dict.fromkeys(CALIBRATED_DTYPES[device.type], peak_flops)
        return DeviceFacts(device.type, device_name(device), peaks, bandwidth, torch.get_num_threads(), "override")
    else:
        cached = _cache_file(device)
        found = None if recalibrate else _read_cache(cached)
        if found is None:
            found = calibrate(device, progress)
            _write_cache(cached, found)
        facts = found
    if peak_flops is not None:
        facts = replace(facts, peak_flops={k: peak_flops for k in (facts.peak_flops or {"float32": 0})},
                        source="override")
    if bandwidth is not None:
        facts = replace(facts, bandwidth=bandwidth, source="override")
    return facts


def _read(path: Path) -> DeviceFacts:
    import stat

    try:
        if not stat.S_ISREG(path.stat().st_mode):  # /dev/zero or a fifo would be read forever
            raise DeviceError(f"{path}: not a regular file (a device description is a small JSON file)")
        if path.stat().st_size > 2**20:
            raise DeviceError(f"{path}: over 1 MiB, not a device description")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DeviceError(f"{path}: cannot read a device description ({error})") from None
    if not isinstance(data, dict):
        raise DeviceError(f"{path}: a device description is a JSON object")
    return DeviceFacts.from_dict(data, str(path))


def _read_cache(path: Path) -> DeviceFacts | None:
    try:
        return replace(_read(path), source="cache") if path.is_file() else None
    except DeviceError:
        return None  # a damaged cache is measured again


def _write_cache(path: Path, facts: DeviceFacts) -> None:
    from costlens.files import write_atomic

    with contextlib.suppress(CostlensError):  # an unwritable cache only costs a calibration next time
        write_atomic(path, json.dumps(facts.to_dict(), indent=1))
