"""How honest costlens' timing is on this machine (issue 20), and how long a first calibration takes (issue 22).

Every check is a ratio taken in one process, so a noisy machine hits both sides alike, and
everything runs on the same thread count (torch's, or --threads):

1. For each model at batch 1: costlens' end-to-end median (``profile(..., time=...)``, no
   layers) against a plain ``time.perf_counter`` loop of the same model on the same input,
   round by round, costlens first in odd rounds and second in even ones (target: within 5%).
2. resnet18: the 95% interval's half-width against the median, and the seconds it took
   (target: <= 2% within 10 s).
3. The sum of per-layer medians against end to end, by replay and in place (target: within 15%).
4. The calibrated float32 (and bfloat16) peak against the best matmul FLOP/s torch reaches
   here over a wider sweep of sizes, timed longer (target: >= 90%).
5. The first calibration's wall time on a fresh cache: the timed dtype only (what
   ``profile --time`` pays) and every dtype (what ``costlens device`` pays) (target: < 15 s).

The load average and the CPU time other processes took during the run say how busy the
machine was; each measurement also says the share of the machine's CPUs other processes
used while it ran ("others busy"), and check 1 gives the ratio over quiet rounds (others
under 5%) apart: on 2 cores, 2 threads beside any other work time the other work.

Run: .venv/bin/python bench/timing.py [--models resnet18,resnet50,vgg16,inception] [--rounds 3] [--threads N]
[--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from costlens import profile
from costlens.timing.device import device_facts
from costlens.timing.latency import time_fixed, using_threads
from costlens.timing.measure import TimingOptions

QUIET = 0.05  # a round is quiet when other processes used under 5% of the machine's CPUs meanwhile
WIDE_SIZES = (64, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)


def _busy_seconds() -> tuple[float, float]:
    """(CPU seconds of every process since boot, of this process): /proc/stat and os.times."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    busy = (int(fields[0]) + int(fields[1]) + int(fields[2]) + int(fields[5]) + int(fields[6]) + int(fields[7])) / ticks
    own = os.times()
    return busy, own.user + own.system


def _watched(work: Callable[[], Any]) -> tuple[Any, float]:
    """``work()``'s result and the share of the machine's CPUs other processes used meanwhile (0 to 1)."""
    (busy, own), started = _busy_seconds(), time.perf_counter()
    found = work()
    (busy_end, own_end), wall = _busy_seconds(), time.perf_counter() - started
    return found, max(0.0, ((busy_end - busy) - (own_end - own)) / (wall * (os.cpu_count() or 1)))


def _plain(model: torch.nn.Module, example: torch.Tensor, seconds: float, threads: int) -> tuple[float, float]:
    with using_threads(threads):
        return _watched(lambda: _plain_median(model, example, seconds))  # type: ignore[no-any-return]


def _plain_median(model: torch.nn.Module, example: torch.Tensor, seconds: float) -> float:
    """Median ms of a plain perf_counter loop of the model, after one warm-up call."""
    times = []
    with torch.no_grad():
        model(example)
        started = time.perf_counter()
        while time.perf_counter() - started < seconds or len(times) < 10:
            before = time.perf_counter()
            model(example)
            times.append(time.perf_counter() - before)
    return statistics.median(times) * 1e3


def end_to_end(name: str, rounds: int, threads: int) -> dict[str, Any]:
    """Checks 1-2: costlens' latency against a plain loop, interleaved, and the interval it reached."""
    from costlens.zoo import create, entry

    model = create(name).eval()
    example = torch.randn(entry(name).input or (1, 3, 224, 224))
    ours, plain, runs = [], [], []
    seconds = 5.0  # the plain loop's time: the last costlens measurement's, 2 to 10 s
    for index in range(rounds):
        plain_first = index % 2 == 1  # A B, B A, ...: a drift of the machine during a round cancels over two
        if plain_first:
            plain_ms, plain_busy = _plain(model, example, seconds, threads)
        found, busy = _watched(lambda: profile(name, time=TimingOptions(device="cpu", layers=False, threads=threads,
                                                                          progress=False)))
        batch = (found.timing or {})["batches"][0]
        seconds = max(2.0, min(batch["seconds"], 10.0))
        if not plain_first:
            plain_ms, plain_busy = _plain(model, example, seconds, threads)
        ours.append(batch["median_ms"])
        plain.append(plain_ms)
        runs.append({k: batch[k] for k in ("median_ms", "ci_low_ms", "ci_high_ms", "iqr_ms", "runs", "samples",
                                           "stopped", "seconds")} | {"others_busy": busy, "plain_others_busy": plain_busy,
                                                                     "plain_first": plain_first})
    half = [max(r["median_ms"] - r["ci_low_ms"], r["ci_high_ms"] - r["median_ms"]) / r["median_ms"] for r in runs]
    quiet = [i for i, r in enumerate(runs) if max(r["others_busy"], r["plain_others_busy"]) < QUIET]
    return {"model": name, "costlens_ms": ours, "plain_ms": plain, "half_width": half, "runs": runs,
            "round_ratios": [o / p for o, p in zip(ours, plain)], "quiet_rounds": quiet,
            "costlens_over_plain": statistics.median(ours) / statistics.median(plain),
            "quiet_costlens_over_plain": statistics.median(ours[i] / plain[i] for i in quiet) if quiet else None}


def layer_sums(name: str, threads: int) -> dict[str, Any]:
    """Check 3: both per-layer methods' sums against end to end, in one timed profile."""
    found, busy = _watched(lambda: profile(name, time=TimingOptions(
        device="cpu", threads=threads, layer_time_method="both", progress=False, peak_flops=1e11, bandwidth=1e10)))
    timing = found.timing or {}
    e2e = timing["batches"][0]["median_ms"]
    return {"model": name, "others_busy": busy, "end_to_end_ms": e2e, "replay_sum_ms": timing["layers"]["sum_ms"],
            "trace_sum_ms": timing["layers_trace"]["sum_ms"], "replay_over_end_to_end": timing["layers"]["sum_ms"] / e2e,
            "trace_over_end_to_end": timing["layers_trace"]["sum_ms"] / e2e,
            "peak_memory_bytes": timing["batches"][0]["peak_memory_bytes"],
            "counted_peak_less_weights_and_input": found.totals["peak_bytes"] - found.totals["weight_bytes"]
            - sum(int(torch.tensor(i.shape).prod()) * 4 for i in found.inputs)}


def first_calibration(threads: int) -> dict[str, Any]:
    """Check 5: wall time of a calibration on a fresh cache, the timed dtype only, then every dtype."""
    found: dict[str, Any] = {}
    for label, dtypes in (("float32_only", ("float32",)), ("every_dtype", None)):
        os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp()
        heard: list[str] = []
        started = time.perf_counter()
        facts, busy = _watched(lambda dtypes=dtypes, heard=heard: device_facts(
            torch.device("cpu"), dtypes=dtypes, threads=threads, progress=heard.append))
        found[label] = {"seconds": time.perf_counter() - started, "peaks": facts.peak_flops, "steps": heard,
                        "by_size": facts.details, "bandwidth": facts.bandwidth, "others_busy": busy}
    return found


def best_matmul(dtype: str, threads: int, limit_s: float = 1.0) -> dict[str, float]:
    """Check 4's reference: each size of a wide sweep timed for a second (sizes whose product takes over
    ``limit_s`` skipped)."""
    reached: dict[str, float] = {}
    rate = 0.0
    with using_threads(threads):
        for n in WIDE_SIZES:
            if rate and 2 * n**3 / rate > limit_s:
                break
            a, b = (torch.randn(n, n, dtype=getattr(torch, dtype)) for _ in range(2))
            time_fixed(lambda a=a, b=b: torch.mm(a, b), threads, 0.2)
            median = time_fixed(lambda a=a, b=b: torch.mm(a, b), threads, 1.0).median_ms / 1e3
            rate = 2 * n**3 / median
            reached[str(n)] = rate
    return reached


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,resnet50,vgg16,inception")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp()  # never the user's cache
    load, (busy_start, own_start), started = os.getloadavg(), _busy_seconds(), time.perf_counter()
    found: dict[str, Any] = {"threads": args.threads, "torch": torch.__version__, "cpus": os.cpu_count(),
                             "load_average_start": load}
    found["calibration"] = first_calibration(args.threads)
    calibrated = found["calibration"]["every_dtype"]["peaks"]
    found["matmul"] = {}
    for dtype, peak in calibrated.items():
        wide, busy = _watched(lambda dtype=dtype: best_matmul(dtype, args.threads))
        found["matmul"][dtype] = {"calibrated": peak, "wide_sweep": wide, "calibrated_over_best": peak / max(wide.values()),
                                  "others_busy": busy}
    names = args.models.split(",")
    found["end_to_end"] = [end_to_end(name, args.rounds, args.threads) for name in names]
    found["layers"] = [layer_sums(name, args.threads) for name in names]
    wall = time.perf_counter() - started
    busy_end, own_end = _busy_seconds()
    found |= {"load_average_end": os.getloadavg(), "wall_s": wall,
              "other_processes_cpu_s": (busy_end - busy_start) - (own_end - own_start),
              "this_process_cpu_s": own_end - own_start}
    _print(found)
    if args.json:
        Path(args.json).write_text(json.dumps(found, indent=1))
    return 0


def _print(found: dict[str, Any]) -> None:
    cores = found["cpus"] or 1
    print(f"cpu, {found['threads']} threads, torch {found['torch']}; load average {found['load_average_start'][0]:.1f} -> "
          f"{found['load_average_end'][0]:.1f}; other processes took {found['other_processes_cpu_s']:.0f} CPU-s of the "
          f"{found['wall_s']:.0f} s run ({100 * found['other_processes_cpu_s'] / (found['wall_s'] * cores):.0f}% of "
          f"{cores} cores)")
    for check in found["end_to_end"]:
        quiet = check["quiet_costlens_over_plain"]
        print(f"1. {check['model']}: costlens {_ms(check['costlens_ms'])} vs plain loop {_ms(check['plain_ms'])}; "
              f"per round {', '.join(f'{r:.3f}' for r in check['round_ratios'])} (others busy "
              f"{', '.join(_busy(max(r['others_busy'], r['plain_others_busy'])) for r in check['runs'])}); "
              f"quiet rounds: {'none' if quiet is None else f'{quiet:.3f}'} (target 0.95-1.05)")
        print(f"2. {check['model']}: interval half-width "
              + ", ".join(f"{100 * h:.1f}% ({r['stopped']} after {r['seconds']:.1f} s, {r['samples']} samples)"
                          for h, r in zip(check["half_width"], check["runs"])) + " (target <= 2% within 10 s)")
    for check in found["layers"]:
        print(f"3. {check['model']}: layer sums / end to end: replay {100 * check['replay_over_end_to_end']:.0f}%, "
              f"in place {100 * check['trace_over_end_to_end']:.0f}% of {check['end_to_end_ms']:.2f} ms "
              f"(target 85-115%; others busy {_busy(check['others_busy'])}); measured peak memory "
              f"{check['peak_memory_bytes']:,} B, counted less weights and input "
              f"{check['counted_peak_less_weights_and_input']:,} B")
    for dtype, check in found["matmul"].items():
        print(f"4. {dtype}: calibrated {check['calibrated'] / 1e9:.1f} GFLOP/s (others busy "
              f"{_busy(found['calibration']['every_dtype']['others_busy'])}), best of a wide sweep "
              f"{max(check['wide_sweep'].values()) / 1e9:.1f} GFLOP/s (others busy {_busy(check['others_busy'])}): "
              f"{100 * check['calibrated_over_best']:.0f}% (target >= 90%)")
    for label, check in found["calibration"].items():
        print(f"5. first calibration, {label.replace('_', ' ')}: {check['seconds']:.1f} s on a fresh cache "
              f"({len(check['steps'])} steps; others busy {_busy(check['others_busy'])}; target < 15 s)")


def _busy(share: float) -> str:
    return f"{100 * share:.0f}%"


def _ms(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "] ms"


if __name__ == "__main__":
    sys.exit(main())
