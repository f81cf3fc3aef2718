"""Will it fit: the one estimate of the memory a real run needs, and what a device has free.

Counting on cpu or cuda, ``--crosscheck`` on cpu tensors, timing and the timed training step
all run a model for real. Each first counts it on meta, which costs nothing, and asks
``refuse_unless_fits(needed(counted), device, ...)``: the counted peak (weights, inputs and
the activations alive at the worst moment of the forward; for a training step, weights,
gradients, optimizer state and saved activations) scaled to the batch size, against
``SHARE`` of what the device has free. A run that cannot fit is refused with both figures
before anything is allocated.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from costlens.errors import InputShapeError

if TYPE_CHECKING:
    import torch

    from costlens.records import Profile

SHARE = 0.9  # of the free memory a run may take; the rest stays for the system and other processes


def needed(counted: Profile, batch: int | None = None, held: int = 0) -> tuple[int, str]:
    """Bytes a real run of ``counted`` needs at once at ``batch`` (default: its own), less ``held``
    bytes already on the device (a given model's weights, given input tensors), and what they are.

    Weights do not grow with the batch; everything else the peak holds does, in proportion.
    """
    totals = counted.totals
    weights = int(totals.get("weight_bytes", 0))
    step = "train_memory_bytes" in totals
    peak = int(totals["train_memory_bytes"] if step else totals.get("peak_bytes", weights))
    counted_batch = counted.input_shape[0] if counted.input_shape else 1
    rest = int((peak - weights) * (batch or counted_batch) / max(counted_batch, 1))
    what = ("gradients, optimizer state and saved activations" if step
            else "the inputs and the activations alive at once")
    return max(0, weights + rest - held), f"weights {readable_bytes(weights)}, {what} {readable_bytes(rest)}"


def refuse_unless_run_fits(counted: Profile, device: torch.device, what: str, batch: int | None = None,
                           held: int = 0) -> None:
    """``refuse_unless_fits`` for a real run of ``counted`` (``needed``), naming what it holds."""
    need, detail = needed(counted, batch, held)
    refuse_unless_fits(need, device, what, f" ({detail})")


def refuse_unless_fits(need: int, device: torch.device, what: str, detail: str = "") -> None:
    """An ``InputShapeError`` naming both figures when ``need`` bytes exceed ``SHARE`` of what
    ``device`` has free (nothing is known: nothing is refused)."""
    free = available(device)
    if free is not None and need > SHARE * free:
        raise InputShapeError(f"{what}: it needs {readable_bytes(need)}{detail} and {readable_bytes(free)} is "
                              "available (count on meta, the default, which allocates nothing)")


def readable_bytes(count: int) -> str:
    """Bytes in decimal units as people read a memory figure: '4.8 GB', '6.02e+25 bytes'."""
    if count >= 10**15:  # beyond any memory: a power of ten (math.log10 takes ints of any size)
        exponent = math.floor(math.log10(count))
        return f"{10 ** (math.log10(count) - exponent):.2f}e+{exponent} bytes"
    for suffix, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:.3g} {suffix}"
    return f"{count} bytes"


def available(device: torch.device) -> int | None:
    """Bytes that can still be allocated on ``device``, None when unknown.

    cpu: the kernel's MemAvailable, or less when a cgroup (a container's memory limit)
    leaves less; cuda: the free memory of the device.
    """
    if device.type == "cuda":
        import torch

        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError, ValueError):
            return None
    if device.type != "cpu":
        return None
    found = [v for v in (proc_kib("/proc/meminfo", "MemAvailable"), _cgroup_headroom()) if v is not None]
    return min(found) if found else None


def proc_kib(path: str, field: str) -> int | None:
    """A 'Field:   1234 kB' line of a /proc file, in bytes; None when it cannot be read."""
    try:
        with open(path, encoding="ascii") as stream:
            for line in stream:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_headroom() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), when it has a limit."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as stream:
            groups = [line.strip().split(":", 2)[2] for line in stream if line.startswith("0::")]
        base = "/sys/fs/cgroup" + (groups[0] if groups else "/")
        with open(os.path.join(base, "memory.max"), encoding="ascii") as stream:
            limit = stream.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(base, "memory.current"), encoding="ascii") as stream:
            return max(0, int(limit) - int(stream.read().strip()))
    except (OSError, ValueError, IndexError):
        return None


_CAPPING = [False]  # set by ``cap_data_segment_in_this_process``: the command line's process only


def cap_data_segment_in_this_process() -> None:
    """From now on, ``capped`` limits this process's data segment while a model runs on cpu. The
    command line turns it on for its own process; a library call leaves its host's limits alone."""
    _CAPPING[0] = True


@contextlib.contextmanager
def capped(device: torch.device) -> Iterator[None]:
    """Where turned on, on cpu under Linux: cap the process's data segment (RLIMIT_DATA) at what it
    holds now plus ``SHARE`` of what the machine has free, for the block only.

    The estimate before a run is a floor; a forward that needs more than the machine has
    then fails one allocation, a one-line error, instead of filling memory until the
    kernel's OOM killer ends this or another process.
    """
    if not _CAPPING[0] or device.type != "cpu" or not sys.platform.startswith("linux"):
        yield
        return
    import resource

    free, used = available(device), proc_kib("/proc/self/status", "VmData")
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = None if free is None or used is None else used + int(free * SHARE)
    if cap is None or (soft != resource.RLIM_INFINITY and soft <= cap):
        yield  # no figure, or a tighter limit already
        return
    resource.setrlimit(resource.RLIMIT_DATA, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
