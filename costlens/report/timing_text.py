"""Measured time as text: the device's peaks, latency per batch size, layers against end to end."""

from __future__ import annotations

import textwrap
from typing import Any

from costlens.records import Profile
from costlens.report.grid import grid
from costlens.timing.device import DeviceFacts
from costlens.units import human, human_bytes

WIDTH = 100  # columns the notes under the table are wrapped to


def _rate(value: float, unit: str) -> str:
    return f"{human(value)}{unit}"


def device_table(facts: DeviceFacts) -> str:
    """`costlens device`: name, peaks per dtype, bandwidth, ridge points, where they came from."""
    rows: list[tuple[str, ...]] = [("dtype", "Peak", "Ridge (FLOPs/byte)", "Reached by size")]
    for dtype, peak in facts.peak_flops.items():
        sizes = facts.details.get(f"matmul_{dtype}")
        by_size = ", ".join(f"{n}: {_rate(v, 'FLOP/s')}" for n, v in sizes.items()) if isinstance(sizes, dict) else ""
        rows.append((dtype, _rate(peak, "FLOP/s"), f"{facts.ridge(dtype):.1f}", by_size))
    lines = [f"{facts.name}  ({facts.type}, {facts.threads} threads; {facts.source})", ""]
    lines += grid(rows, {1, 2})
    lines += ["", f"Memory bandwidth {_rate(facts.bandwidth, 'B/s')} (a large copy, read + write)"]
    skipped = [f"{k.removeprefix('matmul_')}: {v}" for k, v in facts.details.items() if isinstance(v, str)]
    lines += [f"Not calibrated: {s}" for s in skipped]
    return "\n".join(lines) + "\n"


def _batch_cells(entry: dict[str, Any]) -> tuple[str, ...]:
    if entry.get("median_ms") is None:
        return (str(entry["batch"]), "-", "-", "-", "-", "-", "-", entry.get("error") or "not measured")
    peak = entry.get("peak_memory_bytes")
    return (str(entry["batch"]), f"{entry['median_ms']:.3f} ms", f"{entry['iqr_ms']:.3f} ms",
            f"{100 * entry['iqr_ms'] / entry['median_ms']:.1f}%", f"{entry['min_ms']:.3f} ms", str(entry["runs"]),
            f"{entry['throughput']:,.1f}/s", human_bytes(peak) if peak is not None else "-")


def timing_summary(profile: Profile) -> str:
    """Latency per batch size and the layers' sum against end to end ('' without timing)."""
    timing = profile.timing
    if not timing:
        return ""
    if "step" in timing:
        return _step_summary(timing)
    device = timing["device"]
    peak = device["peak_flops"].get(profile.dtype) or device["peak_flops"].get("float32")
    head = "\n".join(textwrap.wrap(
        f"Timed on {device['type']} ({device['name']}, {timing['threads']} threads), {timing['dtype']}"
        + (", torch.compile" if timing.get("compile") else "") + (", channels-last" if timing.get("channels_last") else "")
        + f"; roofline peak {_rate(peak, 'FLOP/s')}, bandwidth {_rate(device['bandwidth'], 'B/s')} ({device['source']})",
        WIDTH))
    rows: list[tuple[str, ...]] = [("Batch", "Median", "IQR", "IQR/median", "Min", "Runs", "Throughput",
                                    "Peak memory")]
    rows += [_batch_cells(entry) for entry in timing["batches"]]
    lines = [head, ""] + grid(rows, {0, 1, 2, 3, 4, 5, 6, 7})
    compiled = [e for e in timing["batches"] if e.get("compile_s") is not None]
    if compiled:
        lines.append(f"Compile time (first call): {compiled[0]['compile_s']:.2f} s, not included above")
    layers = timing.get("layers")
    if layers and layers.get("sum_ms") is not None and layers.get("end_to_end_ms"):
        share = 100 * layers["sum_ms"] / layers["end_to_end_ms"]
        why = ("the rest is time outside leaf modules: functional ops, Python, launch overhead" if share <= 100 else
               "layers replayed alone take longer than inside the forward: per-call overhead of small layers, caches")
        lines += textwrap.wrap(
            f"Layers: the sum of {layers['timed_calls']} leaf medians is {layers['sum_ms']:.3f} ms, "
            f"{share:.0f}% of end to end ({layers['distinct_computations']} distinct computations replayed; {why})",
            WIDTH)
    if timing.get("interrupted"):
        lines.append("Interrupted: figures above are what was measured before Ctrl-C")
    return "\n".join(lines) + "\n"


def _step_summary(timing: dict[str, Any]) -> str:
    """A timed training step: the three statements behind its figures."""
    step = timing["step"]
    rows: list[tuple[str, ...]] = [("Statement", "Median", "IQR", "IQR/median", "Min", "Runs")]
    for label, key in (("forward (recording the graph)", "forward"), ("forward + backward", "forward_backward"),
                       ("whole step (+ optimizer update)", "step")):
        stats = step[key]
        rows.append((label, f"{stats['median_ms']:.3f} ms", f"{stats['iqr_ms']:.3f} ms",
                     f"{100 * stats['iqr_ms'] / stats['median_ms']:.1f}%", f"{stats['min_ms']:.3f} ms",
                     str(stats["runs"])))
    head = (f"Training step timed on {timing['timed_on']} ({timing['threads']} threads), {timing['dtype']}, "
            f"batch {step['batch']}, {timing.get('optimizer', 'sgd')}")
    lines = [head, "", *grid(rows, {1, 2, 3, 4, 5}), *textwrap.wrap(
        "Backward = forward+backward - forward; update = step - forward+backward (medians of interleaved rounds).",
        WIDTH)]
    return "\n".join(lines) + "\n"
