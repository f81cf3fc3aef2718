"""Measured time as text: where and how it was timed, the device's peaks, latency per batch size
with its interval, layers against end to end."""

from __future__ import annotations

import textwrap
import time
from typing import Any

from costlens.records import Profile
from costlens.report.grid import grid
from costlens.timing.device import DeviceFacts
from costlens.timing.roofline import peak_of
from costlens.units import human, human_bytes

WIDTH = 100  # columns the notes under the table are wrapped to


def _rate(value: float, unit: str) -> str:
    return f"{human(value)}{unit}"


def _when(at: object) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(at))) if isinstance(at, (int, float)) else "?"


def _load(taken: dict[str, Any]) -> str:
    return f", load {taken['load']:.1f}" if isinstance(taken.get("load"), (int, float)) else ""


def calibration_source(device: dict[str, Any], dtype: str) -> str:
    """Where a peak came from and when: 'calibrated now (load 0.4)', 'cached 2026-12-01 10:02 (load 0.3),
    checked now at 512x512: 97%', 'override', or a file name."""
    source = device.get("source", "")
    if source not in ("calibrated", "cache"):
        return str(source)
    key = "tf32" if dtype == "float32" and "tf32" in device.get("peak_flops", {}) and \
        device["peak_flops"]["tf32"] > device["peak_flops"].get("float32", 0) else dtype
    taken = device.get("calibrated", {}).get(key, {})
    check = device.get("check") or {}
    checked = check.get("dtype") == key and isinstance(check.get("ratio"), (int, float))
    if checked and check.get("passed"):
        return (f"calibrated {_when(taken.get('at'))}{_load(taken)}, cached; checked now at "
                f"{check['size']}x{check['size']}: {100 * check['ratio']:.0f}% of it")
    if source == "cache":
        return f"calibrated {_when(taken.get('at'))}{_load(taken)}, cached"
    if checked:
        return (f"calibrated now{_load(taken)}: the cached figure of {_when(check.get('cached_at'))} failed a check "
                f"at {check['size']}x{check['size']} ({100 * check['ratio']:.0f}% of it)")
    return f"calibrated now{_load(taken)}"


def device_table(facts: DeviceFacts) -> str:
    """`costlens device`: name, peaks per dtype with when they were taken, bandwidth, ridge points, history."""
    rows: list[tuple[str, ...]] = [("dtype", "Peak", "Ridge (FLOPs/byte)", "Taken", "Reached by size")]
    for dtype, peak in facts.peak_flops.items():
        sizes = facts.details.get(f"matmul_{dtype}")
        by_size = ", ".join(f"{n}: {_rate(v, 'FLOP/s')}" for n, v in sizes.items()) if isinstance(sizes, dict) else ""
        taken = facts.calibrated.get(dtype, {})
        rows.append((_dtype_label(dtype), _rate(peak, "FLOP/s"), f"{peak / facts.bandwidth:.1f}",
                     (_when(taken["at"]) + _load(taken)) if "at" in taken else "-", by_size))
    lines = [f"{facts.name}  ({facts.type}, {facts.threads} threads; {_source_words(facts)})", ""]
    lines += grid(rows, {1, 2})
    copy = facts.calibrated.get("copy", {})
    lines += ["", f"Memory bandwidth {_rate(facts.bandwidth, 'B/s')} (a large copy, read + write"
              + (f"; {_when(copy['at'])}{_load(copy)})" if "at" in copy else ")")]
    skipped = [f"{k.removeprefix('matmul_')}: {v}" for k, v in facts.details.items() if isinstance(v, str)]
    lines += [f"Not calibrated: {s}" for s in skipped]
    if facts.check:
        check = facts.check
        verdict = "within" if check.get("passed") else "more than 10% off: measured again"
        lines.append(f"Checked before use: {check['dtype']} at {check['size']}x{check['size']} reached "
                     f"{_rate(check['reached'], 'FLOP/s')}, {100 * check['ratio']:.0f}% of the cached figure ({verdict})")
    if facts.history:
        lines += ["", "Earlier calibrations (replaced):"]
        lines += [f"  {_when(h.get('at'))}  {h.get('dtype')}  {_rate(float(h.get('peak', 0)), 'FLOP/s')}"
                  f"{_load(h)}  ({h.get('replaced', '')})" for h in facts.history]
    return "\n".join(lines) + "\n"


def _dtype_label(dtype: str) -> str:
    return "float32 (TF32 on)" if dtype == "tf32" else dtype


def _source_words(facts: DeviceFacts) -> str:
    return {"calibrated": "calibrated now", "cache": "from the cache"}.get(facts.source, facts.source)


def timed_where(profile: Profile) -> str:
    """'counted on meta, timed on cpu (Intel Xeon) with 2 threads, float32, eager' ('' when not timed)."""
    timing = profile.timing or {}
    where = timing.get("timed_on")
    counted = f"counted on {timing.get('counted_on', profile.device.get('type'))}"
    if not isinstance(where, dict):  # a training step, or a profile saved before these fields
        on = timing.get("timed_on") or (timing.get("device") or {}).get("type")
        return f"{counted}, timed on {on}" if on else ""
    how = [f"{where.get('threads')} threads", str(where.get("dtype"))]
    how += [label for key, label in (("compile", "torch.compile"), ("channels_last", "channels-last"),
                                     ("cuda_graphs", "CUDA graphs beside eager")) if where.get(key)]
    if not where.get("compile"):
        how.insert(2, "eager")
    return f"{counted}, timed on {where.get('device')} ({where.get('name')}) with {', '.join(how)}"


def _interval(entry: dict[str, Any]) -> str:
    if entry.get("ci_low_ms") is None:
        return "-"
    half = max(entry["median_ms"] - entry["ci_low_ms"], entry["ci_high_ms"] - entry["median_ms"])
    return f"{entry['ci_low_ms']:.3f}-{entry['ci_high_ms']:.3f} ms (±{100 * half / entry['median_ms']:.1f}%)"


def _stats_cells(label: str, entry: dict[str, Any], batch: int, peak: int | None) -> tuple[str, ...]:
    if entry.get("median_ms") is None:
        return (label, "-", "-", "-", "-", "-", "-", "-", entry.get("error") or "not measured")
    throughput = entry.get("throughput") or batch / (entry["median_ms"] / 1e3)
    return (label, f"{entry['median_ms']:.3f} ms", _interval(entry), f"{100 * entry['iqr_ms'] / entry['median_ms']:.1f}%",
            f"{entry['min_ms']:.3f} ms", f"{entry['runs']} in {entry.get('samples', '?')}", _stopped(entry),
            f"{throughput:,.1f}/s", human_bytes(peak) if peak is not None else "-")


def _stopped(entry: dict[str, Any]) -> str:
    seconds = entry.get("seconds")
    return str(entry.get("stopped", "-")) + (f" after {seconds:.1f} s" if seconds else "")


def _batch_rows(timing: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for entry in timing["batches"]:
        rows.append(_stats_cells(str(entry["batch"]), entry, entry["batch"], entry.get("peak_memory_bytes")))
        graph = entry.get("cuda_graph")
        if graph:
            rows.append(_stats_cells(f"{entry['batch']} (CUDA graph)", graph, entry["batch"], None) if not
                        graph.get("error") else (f"{entry['batch']} (CUDA graph)", "-", "-", "-", "-", "-", "-", "-",
                                                 graph["error"]))
    return rows


def timing_summary(profile: Profile) -> str:
    """Where and how it was timed, latency per batch size with its interval, memory, and the layers'
    sums against end to end ('' without timing)."""
    timing = profile.timing
    if not timing:
        return ""
    if "step" in timing:
        return _step_summary(timing)
    where = timed_where(profile)
    lines = textwrap.wrap(where[:1].upper() + where[1:], WIDTH)
    device = timing.get("device")
    if device:
        peak = peak_of(device, profile.dtype)
        lines += textwrap.wrap(f"Roofline: {profile.dtype} peak {_rate(peak, 'FLOP/s')} "
                               f"({calibration_source(device, profile.dtype)}), bandwidth "
                               f"{_rate(device['bandwidth'], 'B/s')}", WIDTH)
    lines += _load_lines(timing)
    statistics = timing.get("statistics", {})
    rows: list[tuple[str, ...]] = [("Batch", "Median", f"{100 * statistics.get('confidence', 0.95):.0f}% interval",
                                    "IQR/median", "Min", "Runs in blocks", "Stopped by", "Throughput", "Peak memory")]
    rows += _batch_rows(timing)
    lines += [""] + grid(rows, {1, 3, 4, 5, 7, 8})
    if statistics:
        lines += textwrap.wrap(
            f"Stopped by 'interval' when the interval's half-width came under {100 * statistics['precision']:g}% of "
            f"the median (after {statistics['min_time_s']:g} s at least), by 'time cap' after {statistics['cap_s']:g} s.",
            WIDTH)
    lines += _memory_lines(profile, timing)
    compiled = [e for e in timing["batches"] if e.get("compile_s") is not None]
    if compiled:
        lines.append(f"Compile time (first call): {compiled[0]['compile_s']:.2f} s, not included above")
    lines += _layer_lines(timing.get("layers"), "Layers replayed alone")
    lines += _layer_lines(timing.get("layers_trace"), "Layers in place")
    if timing.get("interrupted"):
        lines.append("Interrupted: figures above are what was measured before Ctrl-C")
    return "\n".join(lines) + "\n"


def _load_lines(timing: dict[str, Any]) -> list[str]:
    """How busy the machine was, and a warning when other work likely competed for the threads timed on."""
    machine = timing.get("machine") or {}
    loads = [v for v in machine.get("load_average", []) if isinstance(v, (int, float))]
    cpus = machine.get("cpus")
    if not loads or not cpus:
        return []
    text = f"Machine: 1-minute load average {' -> '.join(f'{v:.1f}' for v in loads)} (start -> end) on {cpus} CPUs"
    threads = timing.get("threads") or 1
    if loads[0] > max(cpus - threads, 0) + 0.5:  # at the start the run itself has added little
        text += (f"; it was busy: on {threads} threads the figures may have waited for other work (rerun on a "
                 "quiet machine, or with fewer threads)")
    return textwrap.wrap(text, WIDTH)


def _memory_lines(profile: Profile, timing: dict[str, Any]) -> list[str]:
    method = timing.get("peak_memory_method")
    first = timing["batches"][0] if timing.get("batches") else {}
    if not method or first.get("peak_memory_bytes") is None:
        return []
    text = f"Peak memory: bytes one forward held allocated beyond weights and inputs ({method})"
    counted, weights = profile.totals.get("peak_bytes"), profile.totals.get("weight_bytes")
    if counted is not None and weights is not None and profile.input_shape and first.get("batch") == profile.input_shape[0]:
        inputs = sum(_numel(i.shape) * _itemsize(i.dtype) for i in profile.inputs)
        text += f"; counted: {human_bytes(counted - weights - inputs)} beyond weights and inputs at batch {first['batch']}"
    return textwrap.wrap(text, WIDTH)


def _numel(shape: list[int]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def _itemsize(dtype: str) -> int:
    import torch

    return int(getattr(torch, dtype).itemsize)


def _layer_lines(layers: dict[str, Any] | None, title: str) -> list[str]:
    if layers and layers.get("error"):
        return textwrap.wrap(f"{title}: not measured: {layers['error']} (the end-to-end figures stand)", WIDTH)
    if not layers or layers.get("sum_ms") is None or not layers.get("end_to_end_ms"):
        return []
    share = 100 * layers["sum_ms"] / layers["end_to_end_ms"]
    graph = layers.get("cuda_graph_ms")
    against_graph = f", {100 * layers['sum_ms'] / graph:.0f}% of the CUDA graph's replay" if graph else ""
    if "replay" in layers.get("method", ""):
        why = ("the rest is time outside leaf modules: functional ops, Python, launch overhead" if share <= 100 else
               "layers replayed alone take longer than inside the forward: per-call overhead of small layers, caches")
        detail = f"{layers['distinct_computations']} distinct computations replayed; {why}"
    else:
        detail = layers.get("method", "")
    return textwrap.wrap(
        f"{title}: the sum of {layers['timed_calls']} leaf medians is {layers['sum_ms']:.3f} ms, "
        f"{share:.0f}% of end to end{against_graph} ({detail})", WIDTH)


def _step_summary(timing: dict[str, Any]) -> str:
    """A timed training step: the three statements behind its figures."""
    step = timing["step"]
    rows: list[tuple[str, ...]] = [("Statement", "Median", "95% interval", "IQR/median", "Min", "Runs")]
    for label, key in (("forward (recording the graph)", "forward"), ("forward + backward", "forward_backward"),
                       ("whole step (+ optimizer update)", "step")):
        stats = step[key]
        rows.append((label, f"{stats['median_ms']:.3f} ms", _interval(stats),
                     f"{100 * stats['iqr_ms'] / stats['median_ms']:.1f}%", f"{stats['min_ms']:.3f} ms",
                     str(stats["runs"])))
    threads = step.get("threads", timing.get("threads"))
    head = (f"Training step timed on {timing['timed_on']} ({threads} threads), {timing['dtype']}, "
            f"batch {step['batch']}, {timing.get('optimizer', 'sgd')}")
    lines = [head, "", *grid(rows, {1, 3, 4, 5}), *textwrap.wrap(
        "Backward = forward+backward - forward; update = step - forward+backward (medians of interleaved rounds).",
        WIDTH)]
    if step.get("interrupted"):
        lines.append("Interrupted: figures above are the rounds measured before Ctrl-C")
    return "\n".join(lines) + "\n"
