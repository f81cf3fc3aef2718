"""How fast and how lean a full per-layer profile is, against torch's FlopCounterMode.

Run:  .venv/bin/python bench/trace_speed.py

1. resnet152, batch 1, 224×224, on the meta device: costlens's trace (every module
   call, every op) against FlopCounterMode over the same prebuilt model, in the same
   process, rounds interleaved; medians and the ratio. Target: ratio <= 1/3.
2. A 2-billion-parameter model and vgg16 at 1×3×1024×1024, end to end (build on meta
   + trace + Profile), each in a fresh process: wall time of the first profile (it
   pays torch's one-time import of torch._dynamo, which torch's Python meta kernels
   trigger) and of a second one, and peak extra memory (VmHWM minus the RSS after
   imports). Target: < 1 s and < 200 MB.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

ROUNDS = 15


def _speed() -> dict[str, float]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from costlens.api import profile
    from costlens.count.tracer import trace
    from costlens.zoo import create

    with torch.device("meta"):
        model = create("resnet152").eval()
    x = torch.randn(1, 3, 224, 224, device="meta")

    def flop_counter() -> None:
        with torch.no_grad(), FlopCounterMode(display=False):
            model(x)

    def bare() -> None:
        with torch.no_grad():
            model(x)

    runs: dict[str, list[float]] = {"costlens trace": [], "FlopCounterMode": [], "bare meta forward": [],
                                     "costlens profile() end to end": []}
    jobs = {"costlens trace": lambda: trace(model, [x]), "FlopCounterMode": flop_counter,
            "bare meta forward": bare, "costlens profile() end to end": lambda: profile("resnet152")}
    for job in jobs.values():
        job()  # warm-up: imports, first meta kernels
    for _ in range(ROUNDS):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            runs[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) * 1000 for name, times in runs.items()}


CHILD = r"""
import json, sys, time
def rss(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
import torch
from torch import nn
from costlens.api import profile
base = rss('VmRSS')
def run():
    start = time.perf_counter()
    if sys.argv[1] == 'wide-mlp-2b':
        with torch.device('meta'):
            model = nn.Sequential(*[nn.Linear(16384, 16384) for _ in range(8)])  # 8 x 268M = 2.15B
        result = profile(model, (1, 16384))
    else:
        result = profile('vgg16', (1, 3, 1024, 1024))
    return result, time.perf_counter() - start
result, cold = run()
_, warm = run()
print(json.dumps({'params': result.totals['params'], 'macs': result.totals['macs'],
                  'cold': cold, 'warm': warm, 'extra_mb': (rss('VmHWM') - base) / 1e6}))
"""


def _lean(case: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, case], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    speed = _speed()
    print(f"resnet152 1x3x224x224 on meta, median of {ROUNDS} interleaved rounds:")
    for name, ms in speed.items():
        print(f"  {name:32s} {ms:8.1f} ms")
    ratio = speed["costlens trace"] / speed["FlopCounterMode"]
    print(f"  trace / FlopCounterMode = {ratio:.2f} (target <= 0.33)")
    end_to_end = speed["costlens profile() end to end"] / speed["FlopCounterMode"]
    print(f"  profile() end to end / FlopCounterMode = {end_to_end:.2f}")
    for case in ("wide-mlp-2b", "vgg16-1024"):
        r = _lean(case)
        print(f"{case:12s} params {r['params']:,}  MACs {r['macs']:,}  first in a fresh process "
              f"{r['cold'] * 1000:.0f} ms, again {r['warm'] * 1000:.0f} ms  "
              f"peak extra memory {r['extra_mb']:.1f} MB (target < 1 s, < 200 MB)")


if __name__ == "__main__":
    main()
