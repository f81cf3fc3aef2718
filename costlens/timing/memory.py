"""Measured peak memory of one call: the most bytes it held allocated at once beyond what existed before.

CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, less what was
allocated before the call. CPU: the allocation events torch's profiler records with
``profile_memory=True`` (every allocation and free through c10's CPU allocator, worker
threads of a parallel region included), summed in time order; the peak of that running sum
is the same quantity CUDA's statistics give. Both are allocations, not the process's
resident set: the allocator's caching, pages the OS has not reclaimed and what other code
does meanwhile do not enter, so the figure does not depend on what ran before (another
batch size, another model). Tensors freed before the call (negative events) count as
below zero and do not lower the peak of what the call itself allocated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def peak_memory(call: Callable[[], Any], device: torch.device, grad: bool = False) -> int | None:
    """Bytes ``call`` needed beyond what was allocated before it (None when this torch cannot say).
    ``grad``: run it with autograd recording (a training step), else under no_grad."""
    context = torch.enable_grad() if grad else torch.no_grad()
    with context:
        if device.type == "cuda":
            return _cuda_peak(call, device)
        return _cpu_peak(call)


def _cuda_peak(call: Callable[[], Any], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    result = call()
    torch.cuda.synchronize(device)
    del result
    return int(torch.cuda.max_memory_allocated(device) - before)


def _cpu_peak(call: Callable[[], Any]) -> int | None:
    from costlens.timing.profiler import profiled

    with profiled(profile_memory=True, use_kineto=True) as recorded:
        call()  # its result is dropped inside: the output's bytes count while it is alive
    return allocation_peak(_allocation_events(recorded))


def _allocation_events(recorded: Any) -> list[tuple[int, int]] | None:
    """(time in ns, bytes: + allocated, - freed) of every CPU allocation event, or None."""
    try:
        from torch._C._profiler import _EventType

        tree = recorded.kineto_results.experimental_event_tree()
    except (AttributeError, ImportError, RuntimeError):
        return None
    found: list[tuple[int, int]] = []
    stack = list(reversed(tree))  # depth first, in recorded order: ties in time keep it
    while stack:
        event = stack.pop()
        stack.extend(reversed(event.children))
        if event.tag == _EventType.Allocation and getattr(event.extra_fields, "device", None) is not None \
                and event.extra_fields.device.type == "cpu":
            found.append((event.start_time_ns, int(event.extra_fields.alloc_size)))
    return found


def allocation_peak(events: list[tuple[int, int]] | None) -> int | None:
    """The highest running sum of allocation sizes in time order (0 when nothing was allocated)."""
    if events is None:
        return None
    level = peak = 0
    for _, size in sorted(events, key=lambda e: e[0]):
        level += size
        peak = max(peak, level)
    return peak
