"""How a command line answers from a fresh process, and how lean a profile is at scale.

Run:  .venv/bin/python bench/fresh_process.py [--runs 5]

Targets 3 and 4 of issue 8 (the profile's tightened by issue 18), each command in a new
process, runs interleaved, medians of wall time:

3. ``costlens profile resnet50`` (its table on stdout, reports/resnet50.json and the page
   reports/resnet50.html written, in a scratch directory) within 1.1x the wall time of
   ``python -c "import torch"``; ``costlens list`` within 1.5x; ``costlens --help``
   for scale; and the profile's table and JSON without the page, to tell the page's
   share. Each run also reports whether torch._dynamo or sympy was imported.
4. A 2-billion-parameter MLP and vgg16 at 1x3x1024x1024, built and profiled on meta in a
   fresh process: the first profile's wall time (imports excluded, target < 1 s) and
   the peak memory it adds over the process after its imports (target < 200 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Runs a command's module the way the costlens console script does, then says what it imported.
CLI = ("import runpy, sys; sys.argv = ['costlens'] + sys.argv[1:]\n"
       "try:\n    runpy.run_module('costlens', run_name='__main__')\n"
       "finally:\n    sys.stderr.write('imported: dynamo=%s sympy=%s\\n' % ("
       "'torch._dynamo' in sys.modules, 'sympy' in sys.modules))\n")
# What `costlens profile resnet50` does but write the page: the share of its time that is not the page's.
NO_PAGE = ("import sys\nfrom costlens.api import profile\nfrom costlens.files import write_atomic\n"
           "from costlens.report.profile_text import table\nresult = profile('resnet50')\n"
           "write_atomic('reports/resnet50.json', result.to_json())\nsys.stdout.write(table(result, 1))\n"
           "sys.stderr.write('imported: dynamo=%s sympy=%s\\n' % ('torch._dynamo' in sys.modules, 'sympy' in sys.modules))\n")
COMMANDS = {
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "costlens --help": [sys.executable, "-c", CLI, "--help"],
    "costlens profile resnet50": [sys.executable, "-c", CLI, "profile", "resnet50"],
    "  the same without its page": [sys.executable, "-c", NO_PAGE],
    "costlens list": [sys.executable, "-c", CLI, "list"],
}
TARGETS = {"costlens profile resnet50": 1.1, "costlens list": 1.5}  # issue 18 set the profile's to 1.1

SCALE = r"""
import json, sys, time
def rss(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
import torch
from torch import nn
from costlens.api import profile
base = rss('VmRSS')
start = time.perf_counter()
if sys.argv[1] == 'mlp-2b':
    with torch.device('meta'):
        model = nn.Sequential(*[nn.Linear(16384, 16384) for _ in range(8)])  # 8 x 268,451,840 = 2.15B
    result = profile(model, (1, 16384))
else:
    result = profile('vgg16', (1, 3, 1024, 1024))
first = time.perf_counter() - start
print(json.dumps({'params': result.totals['params'], 'macs': result.totals['macs'], 'first_s': first,
                  'extra_mb': (rss('VmHWM') - base) / 1e6, 'dynamo': 'torch._dynamo' in sys.modules}))
"""


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _wall(command: list[str], scratch: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=scratch, env=_environment(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed: {done.stderr.strip().splitlines()[-1:]}")
    imported = [line for line in done.stderr.splitlines() if line.startswith("imported:")]
    return elapsed, imported[-1] if imported else ""


def commands(runs: int) -> None:
    times: dict[str, list[float]] = {label: [] for label in COMMANDS}
    imports: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(runs):
            for label, command in COMMANDS.items():
                elapsed, imports[label] = _wall(command, scratch)
                times[label].append(elapsed)
        page = Path(scratch, "reports", "resnet50.html")
        page_mb = page.stat().st_size / 1e6 if page.exists() else 0.0
    torch_s = statistics.median(times["python -c 'import torch'"])
    print(f"fresh processes, median of {runs} interleaved runs (wall time):")
    for label, values in times.items():
        ratio = statistics.median(values) / torch_s
        target = TARGETS.get(label)
        verdict = f"  target <= {target} {'met' if ratio <= target else 'MISSED'}" if target else ""
        print(f"  {label:28s} {statistics.median(values):6.2f} s  {ratio:4.2f}x import torch{verdict}  {imports[label]}")
    print(f"  (the page reports/resnet50.html is {page_mb:.1f} MB)")


def scale() -> None:
    print("first profile in a fresh process, imports excluded:")
    for case in ("mlp-2b", "vgg16-1024"):
        done = subprocess.run([sys.executable, "-c", SCALE, case], env=_environment(), capture_output=True,
                              text=True, check=True)
        r = json.loads(done.stdout)
        print(f"  {case:11s} params {r['params']:,}  MACs {r['macs']:,}  {r['first_s'] * 1000:.0f} ms "
              f"(target < 1000)  peak extra memory {r['extra_mb']:.1f} MB (target < 200)  dynamo imported: {r['dynamo']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    commands(options.runs)
    scale()


if __name__ == "__main__":
    main()
