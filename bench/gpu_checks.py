"""issue 20's GPU checks, in one process on one GPU (bench/gpu.sh runs it; a CPU-only machine refuses).

1. googlenet at batch 1, eager and as a CUDA graph (interleaved), per-layer time in place
   (kernel time from torch's profiler) and by replay: the in-place layers' sum against the
   graph's replay (target >= 85%), and against eager.
2. resnet50 at batch 1 and 64 the same way (a compute-bound contrast).
3. The calibrated bfloat16 (and float16, float32, TF32) peak against the best torch matmul seen
   in the same run over a wider sweep of sizes, each timed for a second (target >= 90%).

Run: python bench/gpu_checks.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from costlens import profile
from costlens.timing import calibration
from costlens.timing.device import device_facts
from costlens.timing.latency import time_fixed
from costlens.timing.measure import TimingOptions

WIDE_SIZES = (2048, 3072, 4096, 6144, 8192, 12288, 16384)


def timed(name: str, batch: int) -> dict[str, Any]:
    started = time.perf_counter()
    found = profile(name, time=TimingOptions(device="cuda", batches=(batch,), cuda_graphs=True, layer_time_method="both",
                                             progress=False))
    timing = found.timing or {}
    first = timing["batches"][0]
    graph = first.get("cuda_graph") or {}
    eager_ms, graph_ms = first.get("median_ms"), graph.get("median_ms")
    trace, replay = timing.get("layers_trace") or {}, timing.get("layers") or {}
    return {"model": name, "batch": batch, "seconds": time.perf_counter() - started, "eager_ms": eager_ms,
            "graph_ms": graph_ms, "graph_error": graph.get("error"), "stopped": first.get("stopped"),
            "trace_sum_ms": trace.get("sum_ms"), "replay_sum_ms": replay.get("sum_ms"),
            "trace_over_graph": trace["sum_ms"] / graph_ms if graph_ms and trace.get("sum_ms") else None,
            "trace_over_eager": trace["sum_ms"] / eager_ms if eager_ms and trace.get("sum_ms") else None,
            "replay_over_eager": replay["sum_ms"] / eager_ms if eager_ms and replay.get("sum_ms") else None,
            "peak_memory_bytes": first.get("peak_memory_bytes"), "layer_errors": [trace.get("error"), replay.get("error")]}


def best_matmul(dtype: str) -> dict[str, float]:
    reached = {}
    for n in WIDE_SIZES:
        a, b = calibration._operands(torch.device("cuda"), dtype, n)
        with calibration._tf32(dtype == "tf32"):
            time_fixed(lambda a=a, b=b: torch.mm(a, b), 1, 0.5)
            median_s = time_fixed(lambda a=a, b=b: torch.mm(a, b), 1, 1.0).median_ms / 1e3
        reached[str(n)] = 2 * n**3 / median_s
        del a, b
        torch.cuda.empty_cache()
    return reached


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA here: these checks need a GPU", file=sys.stderr)
        return 2
    import os

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp()
    found: dict[str, Any] = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
    started = time.perf_counter()
    facts = device_facts(torch.device("cuda"), progress=lambda step: print(f"calibrating: {step}", flush=True))
    found["calibration"] = {"seconds": time.perf_counter() - started, "peaks": facts.peak_flops, "by_size": facts.details,
                            "bandwidth": facts.bandwidth}
    found["matmul"] = {}
    for dtype, peak in facts.peak_flops.items():
        wide = best_matmul(dtype)
        found["matmul"][dtype] = {"calibrated": peak, "wide": wide, "calibrated_over_best": peak / max(wide.values())}
        print(f"3. {dtype}: calibrated {peak / 1e12:.1f} TFLOP/s, best of the wide sweep {max(wide.values()) / 1e12:.1f} "
              f"TFLOP/s: {100 * peak / max(wide.values()):.0f}% (target >= 90%)", flush=True)
    found["models"] = [timed("googlenet", 1), timed("resnet50", 1), timed("resnet50", 64)]
    for check in found["models"]:
        share = check["trace_over_graph"]
        print(f"1-2. {check['model']} batch {check['batch']}: eager {check['eager_ms']} ms, graph {check['graph_ms']} ms "
              f"({check['graph_error'] or 'captured'}); in-place layers sum {check['trace_sum_ms']} ms = "
              f"{'-' if share is None else f'{100 * share:.0f}%'} of the graph (target >= 85%), replay sum "
              f"{check['replay_sum_ms']} ms; {check['seconds']:.0f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
