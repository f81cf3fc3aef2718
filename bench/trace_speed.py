"""How fast a full per-layer profile is, against counters that give less, on every zoo model.

Run:  .venv/bin/python bench/trace_speed.py [--rounds 9] [--models vgg16,resnet152] [--gc] [--statistic min]

Targets 1 and 2 of issue 8, in one process, rounds interleaved (each round runs every
job once, in an order rotated from round to round), medians (or minima, ``--statistic
min``) of process CPU time:

1. Model given: ``profile(model, shape)`` on a model built on meta, against torch's
   FlopCounterMode over another copy (and ptflops' aten backend and torchinfo when they
   are importable; bench/peers.py runs every peer in an environment of its own). The
   ratio is costlens / the fastest of those; target <= 0.5, resnet152 <= 0.25.
   "warm" is the usual case, the process's meta-result cache and layer recordings
   holding the model's ops and layer calls from an earlier call (and its kept setup and
   whole trace, costlens/count/kept.py); "cold" empties them before every call, as in
   the first profile of a process (other models' kept setups stay, see ``_cold``).
2. By name, the build included: ``profile(name)`` against building the same model on
   meta plus FlopCounterMode; target <= 1/3 for resnet50 and resnet152, 0.5 for others.

Every call is timed alone, after whichever job ran before it: the view of one call in a
process doing other work. bench/peers.py, the script the targets are read from, times
blocks of back-to-back calls instead (bench/README.md says why). ``--gc`` runs
``gc.collect()`` before every timed call, as ``bench/peers.py --block-ms 0`` does. A full
collection walks every Python object and leaves the processor's caches cold, which
adds about half a millisecond to whatever runs next: on one-layer models that is most
of every tool's time.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from costlens.api import profile
from costlens.zoo import create, entry, names

try:
    from costlens.count.tracer import clear_caches
except ImportError:  # a costlens from before the process-wide caches (to measure it): every call is cold

    def clear_caches() -> None:
        pass

TARGET_GIVEN = {"resnet152": 0.25}
TARGET_BY_NAME = {"resnet50": 1 / 3, "resnet152": 1 / 3}
PEERS = ("FlopCounterMode", "ptflops aten", "torchinfo")


def _meta_model(name: str) -> nn.Module:
    with torch.device("meta"):
        return create(name).eval()


def _flop_counter(model: nn.Module, x: torch.Tensor) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False):
        model(x)


def _ptflops(model: nn.Module, x: torch.Tensor) -> Callable[[], None] | None:
    try:
        from ptflops import get_model_complexity_info
        from ptflops.flops_counter import FLOPS_BACKEND
    except ImportError:
        return None
    # ptflops's aten counter leaves hooks on the top-level children; put back what the model had
    clean = [(child, dict(child._forward_pre_hooks), dict(child._forward_hooks)) for child in model.children()]

    def run() -> None:
        get_model_complexity_info(model, tuple(x.shape[1:]), input_constructor=lambda _: x, as_strings=False,
                                  print_per_layer_stat=False, backend=FLOPS_BACKEND.ATEN, ost=io.StringIO())
        for child, pre_hooks, hooks in clean:
            child._forward_pre_hooks.clear()
            child._forward_pre_hooks.update(pre_hooks)
            child._forward_hooks.clear()
            child._forward_hooks.update(hooks)

    return run


def _torchinfo(model: nn.Module, x: torch.Tensor) -> Callable[[], None] | None:
    try:
        from torchinfo import summary
    except ImportError:
        return None

    def run() -> None:
        summary(model, input_data=x, device=x.device, verbose=0)

    return run


def _cold(shape: tuple[int, ...], model: nn.Module) -> None:
    """The first profile of ``model`` in a process: every process cache empty but the setups that
    costlens/count/kept.py keeps per model object for the other models (the warm job's among them,
    which a process that profiled it before holds)."""
    from costlens.count import tracer

    try:
        from costlens.count.kept import SETUPS as setups
    except ImportError:  # a costlens from before count/kept.py, or before kept setups
        setups = getattr(tracer, "_SETUPS", {})
    others = {key: kept for key, kept in setups.items() if kept[0]() is not model}
    clear_caches()
    setups.update(others)
    profile(model, shape)


def jobs(name: str) -> dict[str, Callable[[], object]]:
    """Every timed call for one model, each over its own copy of it."""
    shape = tuple(entry(name).input or ())
    x = torch.empty(shape, device="meta")
    mine, cold, counted = _meta_model(name), _meta_model(name), _meta_model(name)
    found: dict[str, Callable[[], object]] = {
        "costlens warm": lambda: profile(mine, shape),
        "costlens cold": lambda: _cold(shape, cold),
        "FlopCounterMode": lambda: _flop_counter(counted, x),
    }
    for label, make in (("ptflops aten", _ptflops), ("torchinfo", _torchinfo)):
        runner = make(_meta_model(name), x)
        if runner is not None:
            found[label] = runner
    found["by name: costlens"] = lambda: profile(name)
    found["by name: meta build + FlopCounterMode"] = lambda: _flop_counter(_meta_model(name), x)
    return found


def measure(name: str, rounds: int, collect: bool) -> dict[str, list[float]]:
    """Process CPU milliseconds of each job in every round, rounds interleaved and rotated."""
    todo = jobs(name)
    with torch.no_grad():
        for job in todo.values():
            job()  # warm-up: imports, first kernels, the warm cache
        times: dict[str, list[float]] = {label: [] for label in todo}
        order = list(todo)
        for r in range(rounds):
            for label in order[r % len(order):] + order[:r % len(order)]:
                if collect:
                    gc.collect()
                start = time.process_time()
                todo[label]()
                times[label].append((time.process_time() - start) * 1000)
    return times


def report(name: str, times: dict[str, list[float]], statistic: str) -> str:
    """One line per model: the times, and the ratios of targets 1 and 2 against their targets."""
    pick = min if statistic == "min" else statistics.median
    ms = {label: pick(values) for label, values in times.items()}
    fastest = min(ms[p] for p in PEERS if p in ms)
    given, by_name = TARGET_GIVEN.get(name, 0.5), TARGET_BY_NAME.get(name, 0.5)
    warm, cold = ms["costlens warm"] / fastest, ms["costlens cold"] / fastest
    build = ms["by name: costlens"] / ms["by name: meta build + FlopCounterMode"]
    peers = "  ".join(f"{p} {ms[p]:7.2f}" for p in PEERS if p in ms)
    return (f"{name:15s} warm {ms['costlens warm']:7.2f}  cold {ms['costlens cold']:7.2f}  {peers}  "
            f"1: {warm:4.2f}{'' if warm <= given else ' MISS'} (cold {cold:4.2f}, target {given:.2f})  "
            f"by name {ms['by name: costlens']:7.2f} vs {ms['by name: meta build + FlopCounterMode']:7.2f}  "
            f"2: {build:4.2f}{'' if build <= by_name else ' MISS'} (target {by_name:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--models", default=",".join(names()))
    parser.add_argument("--gc", action="store_true", help="gc.collect() before every timed call, as bench/peers.py")
    parser.add_argument("--statistic", choices=("median", "min"), default="median",
                        help="median (the default), or min: the least disturbed round, on a busy machine")
    options = parser.parse_args()
    print(f"torch {torch.__version__}; {options.statistic} of {options.rounds} interleaved rounds, process CPU ms"
          + ("; gc.collect() before every call" if options.gc else ""))
    for name in options.models.split(","):
        with contextlib.redirect_stdout(io.StringIO()):  # ptflops and torchinfo talk
            times = measure(name, options.rounds, options.gc)
        print(report(name, times, options.statistic), flush=True)


if __name__ == "__main__":
    main()
