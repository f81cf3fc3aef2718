"""How honest costlens' timing is, on this machine (issue: measured time on CPU and GPU).

Four checks, each a ratio taken in one process, so a noisy machine hits both sides alike:

1. resnet18, batch 1, cpu: IQR / median of costlens' end-to-end latency (target <= 5%).
2. The sum of the per-layer medians against the end-to-end median (target within 15%).
3. costlens' end-to-end median against a plain ``torch.utils.benchmark`` measurement of the
   same model in the same process, interleaved round by round (target within 5%).
4. The calibrated CPU peak against the best matmul FLOP/s torch reaches here at any of a
   range of sizes (target >= 90%).

Run: .venv/bin/python bench/timing.py [--rounds 5] [--model resnet18] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile

import torch
from torch.utils.benchmark import Timer

from costlens import profile
from costlens.timing.device import calibrate, matmul_peak
from costlens.timing.measure import TimingOptions


def _plain_median(model: torch.nn.Module, example: torch.Tensor, seconds: float) -> float:
    with torch.no_grad():
        timer = Timer("model(x)", globals={"model": model, "x": example})
        return float(timer.blocked_autorange(min_run_time=seconds).median) * 1e3


def latency_checks(name: str, rounds: int) -> dict[str, object]:
    """Checks 1-3: costlens' profile --time against itself and against a plain Timer."""
    from costlens.zoo import create, entry

    options = TimingOptions(device="cpu", progress=False)
    first = profile(name, time=options)
    timing = first.timing or {}
    batch = timing["batches"][0]
    layers = timing["layers"]
    model = create(name).eval()
    example = torch.randn(entry(name).input or (1, 3, 224, 224))
    ours, plain = [], []
    for _ in range(rounds):  # interleaved: each round times both
        ours.append(profile(name, time=TimingOptions(device="cpu", layers=False, progress=False)).totals["latency_ms"])
        plain.append(_plain_median(model, example, 1.0))
    return {
        "model": name,
        "threads": torch.get_num_threads(),
        "latency_ms": batch["median_ms"], "iqr_ms": batch["iqr_ms"], "iqr_over_median": batch["iqr_ms"] / batch["median_ms"],
        "runs": batch["runs"],
        "layers_sum_ms": layers["sum_ms"], "layers_over_end_to_end": layers["sum_ms"] / batch["median_ms"],
        "costlens_medians_ms": ours, "plain_timer_medians_ms": plain,
        "costlens_over_plain": statistics.median(ours) / statistics.median(plain),
    }


def peak_check() -> dict[str, object]:
    """Check 4: the calibration's float32 peak against the best of a wider sweep of sizes."""
    calibrated = calibrate(torch.device("cpu")).peak_flops["float32"]
    best, by_size = matmul_peak(torch.device("cpu"), torch.float32, (128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096))
    return {"calibrated_flops": calibrated, "best_flops": best, "by_size": by_size, "calibrated_over_best": calibrated / best}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp())  # calibrate afresh, not from the user's cache
    load = os.getloadavg()[0]
    found = {"load_average_start": load, **latency_checks(args.model, args.rounds), **peak_check(),
             "load_average_end": os.getloadavg()[0]}
    print(f"{args.model} batch 1 on cpu ({found['threads']} threads), load average {load:.1f} -> "
          f"{found['load_average_end']:.1f}")
    print(f"1. latency {found['latency_ms']:.2f} ms, IQR {found['iqr_ms']:.2f} ms over {found['runs']} runs: "
          f"IQR/median {100 * found['iqr_over_median']:.1f}% (target <= 5%)")
    print(f"2. sum of layer medians {found['layers_sum_ms']:.2f} ms = {100 * found['layers_over_end_to_end']:.0f}% "
          "of end to end (target 85-115%)")
    print(f"3. costlens median / plain torch.utils.benchmark median = {found['costlens_over_plain']:.3f} "
          f"(target 0.95-1.05); costlens {[round(v, 2) for v in found['costlens_medians_ms']]}, "
          f"plain {[round(v, 2) for v in found['plain_timer_medians_ms']]}")
    print(f"4. calibrated float32 peak {found['calibrated_flops'] / 1e9:.1f} GFLOP/s, best of the sweep "
          f"{found['best_flops'] / 1e9:.1f} GFLOP/s: {100 * found['calibrated_over_best']:.0f}% (target >= 90%)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump(found, stream, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
