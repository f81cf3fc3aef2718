"""The device a model is timed on: its name, peak FLOP/s per dtype and memory bandwidth.

Where the facts come from, in order: a JSON file the user gives (``--device-file``, the
fields of ``DeviceFacts.to_dict``), peaks the user states (``--peak-flops``,
``--bandwidth``), else a calibration measured on this machine and cached
(``costlens/timing/calibration.py``: when it is measured again, and how it is checked
before use). Files are read as hostile input (``costlens/timing/description.py``).
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from costlens.sanitize import terminal_text
from costlens.timing.description import DeviceError, described, read_json

if TYPE_CHECKING:
    from costlens.timing.calibration import Policy

__all__ = ["DeviceError", "DeviceFacts", "device_facts", "device_name", "resolve_device"]


@dataclass(frozen=True)
class DeviceFacts:
    """What the roofline needs of a device: peaks per dtype and memory bandwidth, and where they came from."""

    type: str
    name: str
    peak_flops: dict[str, float]  # FLOP/s per dtype name ("tf32": float32 matmuls with TF32 on, CUDA)
    bandwidth: float  # bytes/s, read + write of a large copy
    threads: int
    source: str  # "calibrated" (now), "cache", "override", or a file name
    details: dict[str, Any] = field(default_factory=dict)  # "matmul_<dtype>": what each size reached, or why not
    calibrated: dict[str, dict[str, Any]] = field(default_factory=dict)  # per dtype and "copy": at, load, seconds
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier calibrations of this machine, oldest first
    check: dict[str, Any] | None = None  # the quick check a cached calibration passed or failed before use

    def peak(self, dtype: str) -> float:
        """The peak FLOP/s for ``dtype``: float32 takes TF32's when that is higher (cuDNN convolutions
        use TF32 by default); a dtype not calibrated takes float32's."""
        from costlens.timing.roofline import peak_of

        return peak_of({"peak_flops": self.peak_flops}, dtype)

    def ridge(self, dtype: str) -> float:
        """The arithmetic intensity (FLOPs/byte) where the roofs meet."""
        return self.peak(dtype) / self.bandwidth

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object, source: str) -> DeviceFacts:
        """Facts from a description's JSON value; every fault a one-line DeviceError."""
        return cls(source=source, **described(data, source))


def resolve_device(name: str) -> torch.device:
    """``auto`` is cuda when available, else cpu; cuda without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"cannot time on '{terminal_text(str(name))}': choose auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' is not available here (torch.cuda.is_available() is False): "
                          "time on cpu, or use --device auto")
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"cannot time on '{terminal_text(str(name))}': choose auto, cpu or cuda")
    return device


def device_name(device: torch.device) -> str:
    """A human name: the GPU's, or the CPU model from /proc/cpuinfo (control characters escaped)."""
    if device.type == "cuda":
        return terminal_text(torch.cuda.get_device_name(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return terminal_text(line.split(":", 1)[1].strip())
    except OSError:
        pass
    return terminal_text(platform.processor() or platform.machine())


def read_file(path: str | Path) -> DeviceFacts:
    """A ``--device-file``: its facts, or a one-line DeviceError saying what is wrong with it."""
    found = Path(path)
    return DeviceFacts.from_dict(read_json(found), str(found))


def device_facts(device: torch.device, *, dtypes: tuple[str, ...] | None = None, threads: int | None = None,
                 recalibrate: bool = False, file: str | None = None, peak_flops: float | None = None,
                 bandwidth: float | None = None, progress: Callable[[str], None] | None = None,
                 policy: Policy | None = None) -> DeviceFacts:
    """The facts of ``device`` on ``threads`` threads (torch's count when None): from ``file``, else
    the user's peaks, else the cache (checked first) or a calibration of ``dtypes`` (the device
    type's usual ones when None); ``peak_flops`` (for every dtype) and ``bandwidth`` override
    what was found. ``progress`` hears what is being measured."""
    from costlens.timing import calibration

    threads = threads or torch.get_num_threads()
    if file is not None:
        facts = read_file(file)
    elif peak_flops is not None and bandwidth is not None:  # fully described: nothing to measure
        names = dtypes or calibration.DTYPES[device.type]
        return DeviceFacts(device.type, device_name(device), dict.fromkeys(names, peak_flops), bandwidth, threads,
                           "override")
    else:
        facts = calibration.cached_or_measured(device, dtypes or calibration.DTYPES[device.type], threads,
                                               recalibrate=recalibrate, progress=progress, policy=policy)
    if peak_flops is not None:
        facts = replace(facts, peak_flops=dict.fromkeys(facts.peak_flops, peak_flops), source="override")
    if bandwidth is not None:
        facts = replace(facts, bandwidth=bandwidth, source="override")
    return facts
