"""The profiles a user waits for: costlens against FlopCounterMode, ptflops (aten) and torchinfo.

Set up once:  bash bench/peers-env.sh        (makes bench/.venv-peers; see bench/README.md)
Run:          bench/.venv-peers/bin/python bench/cold.py [--rounds 7] [--processes 3] [--models a,b]

Three views, each a ratio against the fastest peer timed in the same run (this machine is noisy):

1. **A new model in a warm process** (a notebook's next cell): every tool has run once before
   (imports, first kernels); then, round after round, each tool gets a model object it has never
   seen, built on meta outside the timing, and a batch size never used before in the run, so no
   tool can reuse anything it kept from an earlier call. Tools run in an order rotated from round
   to round. A round times a block of such calls, each on its own model and batch size, lasting
   about ``--block-ms`` (a single call where one takes longer): a single sub-millisecond call
   after other work times the processor's cache refill more than the tool (bench/README.md).
   A cell is the median over rounds of the block's mean per call. Target: costlens at most 1.0x
   the fastest peer on every zoo model, at most 0.3x on the ResNets.
2. **The first profile in a fresh process**: each tool in a new process of its own that imports
   torch, the tool and the zoo and builds the model on meta (none of it timed), then times its
   first call; the median over ``--processes`` processes per tool, processes interleaved.
   Target: at most 0.2x the fastest peer.
3. **A sweep of resnet50 over five input sizes** in a warm process: ``costlens.sweep.sweep``
   (which builds the model once and profiles it at each size) against FlopCounterMode run five
   times on one model built on meta, both timed from the call to the result. Sizes differ from
   round to round. Target: at most 0.3x.

What costlens keeps between profiles cannot make any of these faster: each call sees a new model
and new shapes.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import math
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import Runner, load_runners, short_error, tools  # noqa: E402  (bench/peers.py, beside this file)

warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=DeprecationWarning)

TOOLS = ("costlens", "flopcounter", "ptflops", "torchinfo")
PEERS = ("flopcounter", "ptflops", "torchinfo")
TARGET_WARM = {"resnet18": 0.3, "resnet34": 0.3, "resnet50": 0.3, "resnet101": 0.3, "resnet152": 0.3}
TARGET_WARM_DEFAULT = 1.0
TARGET_FRESH = 0.2
TARGET_SWEEP = 0.3
MOST_CALLS_PER_BLOCK = 64


class Batches:
    """Batch sizes never used before in this process: each call gets its own."""

    def __init__(self) -> None:
        self.next = 2

    def take(self) -> int:
        self.next += 1
        return self.next


def fresh(name: str) -> nn.Module:
    from costlens.zoo import create

    with torch.device("meta"):
        return create(name).eval()


def shape_of(name: str) -> tuple[int, ...]:
    from costlens.zoo import entry

    return tuple(entry(name).input)  # type: ignore[arg-type]


def _call(runner: Runner, model: nn.Module, shape: tuple[int, ...], batch: int) -> float:
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        return float(runner(model, torch.empty((batch, *shape[1:]), device="meta")))


def _block_seconds(runner: Runner, name: str, shape: tuple[int, ...], batches: Batches, calls: int) -> float:
    """Mean seconds a call over ``calls`` calls, each on a model and batch size of its own."""
    models = [fresh(name) for _ in range(calls)]
    sizes = [batches.take() for _ in range(calls)]
    gc.collect()
    start = time.perf_counter()
    for model, size in zip(models, sizes):
        _call(runner, model, shape, size)
    return (time.perf_counter() - start) / calls


def warm_process(names: list[str], runners: dict[str, Runner | str], rounds: int, block_ms: float) -> dict:
    """View 1: milliseconds a call per tool and model, and each model's ratio."""
    batches = Batches()
    results: dict[str, dict[str, float | str]] = {}
    for name in names:
        shape = shape_of(name)
        live = {key: r for key, r in runners.items() if not isinstance(r, str)}
        cells: dict[str, float | str] = {key: r for key, r in runners.items() if isinstance(r, str)}
        calls: dict[str, int] = {}
        for key, runner in list(live.items()):
            try:
                first = _block_seconds(runner, name, shape, batches, 1)  # the warm-up call
                second = _block_seconds(runner, name, shape, batches, 1)
            except Exception as error:  # a peer that cannot count this model
                cells[key] = f"n/a ({short_error(error)[:40]})"
                del live[key]
                continue
            del first
            calls[key] = 1 if block_ms <= 0 else max(1, min(MOST_CALLS_PER_BLOCK, math.ceil(block_ms / 1e3 / second)))
        times: dict[str, list[float]] = {key: [] for key in live}
        order = list(live)
        for index in range(rounds):
            shift = index % len(order)
            for key in order[shift:] + order[:shift]:
                times[key].append(_block_seconds(live[key], name, shape, batches, calls[key]))
        cells.update({key: statistics.median(found) * 1e3 for key, found in times.items()})
        results[name] = cells
        print(f"  {name}: " + ", ".join(f"{k} {v:.3g} ms" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in cells.items()), file=sys.stderr)
    return results


FRESH = r"""
import sys, time, warnings, io, contextlib
warnings.filterwarnings("ignore")
import torch
sys.path.insert(0, {bench!r})
from peers import tools
tool = next(t for t in tools() if t.key == {tool!r})
runner = tool.load()
from costlens.zoo import create, entry
with torch.device("meta"):
    model = create({name!r}).eval()
x = torch.empty(tuple(entry({name!r}).input), device="meta")
with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
    start = time.perf_counter()
    runner(model, x)
    seconds = time.perf_counter() - start
print(seconds)
"""


def fresh_process(names: list[str], keys: list[str], processes: int) -> dict:
    """View 2: the first call in a new process, median over processes, per tool and model."""
    bench = str(Path(__file__).resolve().parent)
    results: dict[str, dict[str, float | str]] = {}
    for name in names:
        found: dict[str, list[float]] = {key: [] for key in keys}
        failed: dict[str, str] = {}
        for index in range(processes):
            shift = index % len(keys)
            for key in keys[shift:] + keys[:shift]:
                if key in failed:
                    continue
                done = subprocess.run([sys.executable, "-c", FRESH.format(bench=bench, tool=key, name=name)],
                                      capture_output=True, text=True, timeout=600)
                if done.returncode != 0:
                    failed[key] = "n/a (" + (done.stderr.strip().splitlines() or ["failed"])[-1][:60] + ")"
                    continue
                found[key].append(float(done.stdout.strip().splitlines()[-1]))
        results[name] = {**{key: statistics.median(v) * 1e3 for key, v in found.items() if v}, **failed}
        print(f"  {name}: " + ", ".join(f"{k} {v:.0f} ms" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in results[name].items()), file=sys.stderr)
    return results


def sweep_view(runners: dict[str, Runner | str], rounds: int) -> dict:
    """View 3: a sweep of resnet50 over five input sizes against five FlopCounterMode calls."""
    from costlens.sweep import sweep

    counter = runners["flopcounter"]
    assert not isinstance(counter, str)

    def ours(sizes: list[int]) -> None:
        sweep("resnet50", inputs=[(1, 3, s, s) for s in sizes])

    def theirs(sizes: list[int]) -> None:
        model = fresh("resnet50")
        for s in sizes:
            _call(counter, model, (1, 3, s, s), 1)

    base = iter(range(64, 10_000, 8))
    jobs: dict[str, Callable[[list[int]], None]] = {"costlens sweep": ours, "5 x FlopCounterMode": theirs}
    for job in jobs.values():
        job([next(base) for _ in range(5)])  # warm
    times: dict[str, list[float]] = {key: [] for key in jobs}
    for index in range(rounds):
        for key in (list(jobs) if index % 2 == 0 else list(jobs)[::-1]):
            sizes = [next(base) for _ in range(5)]
            gc.collect()
            start = time.perf_counter()
            jobs[key](sizes)
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(v) * 1e3 for key, v in times.items()}


def fastest_peer(cells: dict[str, float | str]) -> tuple[float, str] | None:
    timed = [(v, k) for k, v in cells.items() if k in PEERS and isinstance(v, float)]
    return min(timed) if timed else None


def table(title: str, results: dict, target: Callable[[str], float], digits: str) -> list[str]:
    lines = [f"\n{title}\n", "| model | " + " | ".join(TOOLS) + " | costlens / fastest | target |",
             "|" + "---|" * (len(TOOLS) + 3)]
    passed = total = 0
    for name, cells in results.items():
        best = fastest_peer(cells)
        ours = cells.get("costlens")
        ratio = ours / best[0] if best and isinstance(ours, float) else None
        verdict = "n/a" if ratio is None else ("PASS" if ratio <= target(name) else "MISS")
        total += ratio is not None
        passed += verdict == "PASS"
        row = [f"{cells[k]:{digits}}" if isinstance(cells.get(k), float) else str(cells.get(k, "-")) for k in TOOLS]
        lines.append(f"| {name} | " + " | ".join(row) + f" | **{ratio:.2f}** ({best[1]}) | {target(name)} {verdict} |"
                     if ratio is not None else f"| {name} | " + " | ".join(row) + " | n/a | |")
    lines.append(f"\n{passed} of {total} within target.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", help="comma-separated zoo names (default: every zoo model)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--processes", type=int, default=3, help="fresh processes per tool and model (0: skip)")
    parser.add_argument("--block-ms", type=float, default=20.0)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    from costlens.zoo import names as zoo_names

    names = args.models.split(",") if args.models else zoo_names()
    chosen = [t for t in tools() if t.key in TOOLS]
    runners = load_runners(chosen)
    print("warm process, new models:", file=sys.stderr)
    warm = warm_process(names, runners, args.rounds, args.block_ms)
    print("fresh processes:", file=sys.stderr)
    first = fresh_process(names, list(TOOLS), args.processes) if args.processes else {}
    print("sweep:", file=sys.stderr)
    swept = sweep_view(runners, args.rounds)
    ratio = swept["costlens sweep"] / swept["5 x FlopCounterMode"]
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms a call, median of {args.rounds} rounds"]
    lines += table("1. A new model in a warm process (ms a call)", warm,
                   lambda n: TARGET_WARM.get(n, TARGET_WARM_DEFAULT), ".3g")
    if first:
        lines += table(f"2. The first profile in a fresh process (ms, median of {args.processes} processes)", first,
                       lambda n: TARGET_FRESH, ".0f")
    lines += [f"\n3. resnet50 over five input sizes: costlens sweep {swept['costlens sweep']:.1f} ms, five "
              f"FlopCounterMode calls {swept['5 x FlopCounterMode']:.1f} ms: **{ratio:.2f}** (target {TARGET_SWEEP}, "
              f"{'PASS' if ratio <= TARGET_SWEEP else 'MISS'})"]
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"warm": warm, "fresh": first, "sweep": swept}, indent=1))


if __name__ == "__main__":
    main()
