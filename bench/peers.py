"""costlens against the peer counters, on every zoo model, in one process.

Set up once:  bash bench/peers-env.sh        (makes bench/.venv-peers; see bench/README.md)
Run:          bench/.venv-peers/bin/python bench/peers.py [--rounds 7] [--models a,b] [--block-ms 20] [--json PATH]

The peers (fvcore, ptflops's aten backend, thop, torchinfo, torchprofile) live in that
benchmark environment only; torch's own FlopCounterMode comes with torch. A peer that is
missing or fails on a model is shown as "n/a (reason)" in its cells.

Per model, every tool is warmed once (imports, first kernels, and the count it reports),
then timed with torch.utils.benchmark over interleaved rounds: each round runs every tool
once, in an order rotated from round to round, each after gc.collect(), as a block of
back-to-back calls long enough to last --block-ms (default 20 ms; one call where a call
takes longer); the round's time is the block's mean per call, and a cell is the median of
the rounds. Every call runs under torch.no_grad(), with the garbage collector on as in use.
Why blocks: a single sub-millisecond call times the processor's caches more than the tool.
A full collection, or another tool run before, leaves them cold, and the call that
follows pays for refilling them: half a millisecond on one-layer models, more than some
tools' whole call, and a tool's share of it grows with how much code it runs, not how
long. ``--block-ms 0`` times single calls, each after gc.collect() (cold), for that view.
The cpu peers run the real model, up to seconds a call on vgg, so they are timed in
--cpu-rounds rounds of their own (default 3), after the meta tools' rounds: sharing a
round, they would slow whichever meta tool ran next, and the targets compare meta tools only.

1. Model given (target 1 of issue 8): each tool gets a model already built on the
   device it supports best: meta for costlens, FlopCounterMode, ptflops aten, torchinfo
   (and thop, which also runs there); cpu with real tensors for thop, fvcore and
   torchprofile (the last two trace with torch.jit, which fails on meta). The ratio is
   costlens / the fastest of FlopCounterMode, ptflops aten and torchinfo; target <= 0.5,
   resnet152 <= 0.25.
2. By name, the build included (target 2): profile(name), which builds on meta itself,
   against building the same model on meta plus FlopCounterMode; target <= 1/3 for
   resnet50 and resnet152, <= 0.5 for the others.

Counts: each tool's MAC count from its warm-up call is compared with costlens's; a
difference over 1% is printed as a warning (some peers count more than conv/linear/matmul
products by design; the warning says what), never a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import io
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils import benchmark

# fvcore and torchprofile import torch.jit.script, which torch 2.13 marks deprecated on every use.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=DeprecationWarning)
# torchprofile warns on every call about each op it has no rule for (aten::pad in googlenet's pools);
# its count is compared with costlens's below instead.
warnings.filterwarnings("ignore", message="No handlers found", category=UserWarning, module="torchprofile")

INPUT_FIELD = "input"  # the ZooEntry attribute that holds a model's default input shape
TARGET_GIVEN = {"resnet152": 0.25}  # target 1: costlens / fastest meta peer; 0.5 for the rest
TARGET_GIVEN_DEFAULT = 0.5
TARGET_BY_NAME = {"resnet50": 1 / 3, "resnet152": 1 / 3}  # target 2: profile(name) / meta build + FlopCounterMode
TARGET_BY_NAME_DEFAULT = 0.5
COUNT_TOLERANCE = 0.01
PEER_DISTRIBUTIONS = ("fvcore", "ptflops", "ultralytics-thop", "thop", "torchinfo", "torchprofile")

Runner = Callable[[nn.Module, torch.Tensor], float]  # runs a tool once; returns the MACs it reports


def costlens_profile() -> Callable[..., Any]:
    """``profile`` from the package root after the API refactor, from ``costlens.api`` before it."""
    import costlens

    candidate = getattr(costlens, "profile", None)  # before the refactor this is the costlens.profile module
    if callable(candidate):
        return candidate
    from costlens.api import profile

    return profile


@dataclass(frozen=True)
class Tool:
    """A counter given a built model: how to load it, where it runs, what its count includes."""

    key: str
    column: str
    device: str
    load: Callable[[], Runner]
    counts: str  # what its count covers besides conv/linear/matmul MACs, quoted in a mismatch warning
    baseline: bool = False  # one of the peers that target 1 is measured against
    resetter: Callable[[nn.Module], Callable[[], None]] | None = None  # undoes what a run leaves on a model


def _load_costlens() -> Runner:
    profile = costlens_profile()
    return lambda model, x: profile(model, tuple(x.shape)).totals["macs"]


def _load_flop_counter() -> Runner:
    from torch.utils.flop_counter import FlopCounterMode

    def run(model: nn.Module, x: torch.Tensor) -> float:
        with FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops() / 2  # it counts 2 FLOPs per multiply-accumulate

    return run


def _load_ptflops() -> Runner:
    from ptflops import get_model_complexity_info
    from ptflops.flops_counter import FLOPS_BACKEND

    def run(model: nn.Module, x: torch.Tensor) -> float:
        macs, _ = get_model_complexity_info(
            model, tuple(x.shape[1:]), input_constructor=lambda _: x, as_strings=False,
            print_per_layer_stat=False, backend=FLOPS_BACKEND.ATEN, ost=io.StringIO())
        if macs is None:  # ptflops catches the model's exception, prints it and returns None
            raise RuntimeError("ptflops returned no count")
        return macs

    return run


def _ptflops_hook_reset(model: nn.Module) -> Callable[[], None]:
    """ptflops's aten counter adds a pre- and a post-hook to every top-level child on each call and
    never removes them; this puts back the hooks the model had, so it does not slow down round by round."""
    clean = [(child, dict(child._forward_pre_hooks), dict(child._forward_hooks)) for child in model.children()]

    def reset() -> None:
        for child, pre_hooks, hooks in clean:
            child._forward_pre_hooks.clear()
            child._forward_pre_hooks.update(pre_hooks)
            child._forward_hooks.clear()
            child._forward_hooks.update(hooks)

    return reset


def _load_torchinfo() -> Runner:
    from torchinfo import summary

    return lambda model, x: summary(model, input_data=x, device=x.device, verbose=0).total_mult_adds


def _load_thop() -> Runner:
    import thop

    return lambda model, x: thop.profile(model, inputs=(x,), verbose=False)[0]


def _load_fvcore() -> Runner:
    from fvcore.nn import FlopCountAnalysis

    def run(model: nn.Module, x: torch.Tensor) -> float:
        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        return analysis.total()

    return run


def _load_torchprofile() -> Runner:
    from torchprofile import profile_macs

    return profile_macs


def tools() -> list[Tool]:
    """The model-given tools, in table order."""
    return [
        Tool("costlens", "costlens (meta)", "meta", _load_costlens, "-"),
        Tool("flopcounter", "FlopCounterMode (meta)", "meta", _load_flop_counter, "nothing else", baseline=True),
        Tool("ptflops", "ptflops aten (meta)", "meta", _load_ptflops, "the bias adds of conv and linear",
             baseline=True, resetter=_ptflops_hook_reset),
        Tool("torchinfo", "torchinfo (meta)", "meta", _load_torchinfo,
             "the bias adds of conv and linear, per-element parameters (batch norm)", baseline=True),
        Tool("thop-meta", "thop (meta)", "meta", _load_thop, "batch norm, pooling, bias adds, some activations"),
        Tool("thop", "thop (cpu)", "cpu", _load_thop, "batch norm, pooling, bias adds, some activations"),
        Tool("fvcore", "fvcore (cpu)", "cpu", _load_fvcore, "batch norm, adaptive pooling, upsampling"),
        Tool("torchprofile", "torchprofile (cpu)", "cpu", _load_torchprofile, "element-wise ops, pooling, batch norm"),
    ]


BY_NAME = ("by-name costlens", "by-name meta build + FlopCounterMode")


def _nothing() -> None:
    pass


@dataclass
class Job:
    """One timed thing for one model: a zero-argument call, its untimed reset, its times."""

    call: Callable[[], float]
    reset: Callable[[], None] = _nothing
    times: list[float] = field(default_factory=list)
    count: float | None = None
    error: str | None = None
    rounds: int | None = None  # takes part in only the first this many rounds (the cpu peers)
    number: int = 1  # calls per timed block (``calibrate``)
    reset_seconds: float = 0.0  # the reset's own time per call, taken off each block's mean

    def timed(self) -> None:
        """One call of a block and its reset (whose time, ``reset_seconds``, is taken off the block's)."""
        self.call()
        self.reset()


def short_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text[:160]}" if text else type(error).__name__


def model_given_jobs(name: str, shape: tuple[int, ...], chosen: list[Tool], runners: dict[str, Runner | str],
                     cpu_rounds: int) -> dict[str, Job]:
    """A job per tool over its own freshly built model (on meta, or cpu with one shared real model)."""
    from costlens.zoo import create

    jobs: dict[str, Job] = {}
    cpu_model: nn.Module | None = None
    cpu_input = torch.randn(shape)
    meta_input = torch.empty(shape, device="meta")
    for tool in chosen:
        runner = runners[tool.key]
        if isinstance(runner, str):
            jobs[tool.key] = Job(call=lambda: 0.0, error=runner)
            continue
        if tool.device == "meta":
            with torch.device("meta"):
                model = create(name).eval()
            x = meta_input
        else:
            if cpu_model is None:
                cpu_model = create(name).eval()
            model, x = cpu_model, cpu_input
        reset = tool.resetter(model) if tool.resetter else _nothing
        jobs[tool.key] = Job(call=lambda r=runner, m=model, x=x: r(m, x), reset=reset,
                             rounds=cpu_rounds if tool.device == "cpu" else None)
    return jobs


def by_name_jobs(name: str, shape: tuple[int, ...]) -> dict[str, Job]:
    """Target 2: the whole profile by name against building on meta plus FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    from costlens.zoo import create

    profile = costlens_profile()

    def baseline() -> float:
        with torch.device("meta"):
            model = create(name).eval()
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(shape, device="meta"))
        return counter.get_total_flops() / 2

    return {BY_NAME[0]: Job(call=lambda: profile(name).totals["macs"]), BY_NAME[1]: Job(call=baseline)}


def warm(jobs: dict[str, Job]) -> None:
    """Run each job once untimed; keep its count, or the reason it cannot run."""
    for job in jobs.values():
        if job.error:
            continue
        try:
            with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
                job.count = float(job.call())
        except Exception as error:  # a peer that cannot handle this model: its cells say why
            job.error = short_error(error)
        finally:
            job.reset()


MOST_CALLS_PER_BLOCK = 10_000


def calibrate(jobs: dict[str, Job], block_seconds: float) -> None:
    """How many calls make each job's block last ``block_seconds`` (at least one), estimated from
    blocks of 1, 2, 4 ... calls until one lasts a quarter of that (a single call straight after
    the other tools is slow, its caches cold); and what its reset costs a call, to be taken off."""
    if block_seconds <= 0:
        return
    for job in jobs.values():
        if job.error:
            continue
        number = 1
        with torch.no_grad():
            while True:
                seconds = _block(job.timed, number) * number
                if seconds >= block_seconds / 4 or number >= MOST_CALLS_PER_BLOCK:
                    break
                number *= 2
        job.number = max(1, min(MOST_CALLS_PER_BLOCK, math.ceil(block_seconds * number / max(seconds, 1e-9))))
        if job.reset is not _nothing and job.number > 1:
            job.reset_seconds = _block(job.reset, job.number)


def _block(call: Callable[[], Any], number: int) -> float:
    """Mean seconds a call over ``number`` calls back to back, the garbage collector on as in use."""
    timer = benchmark.Timer(stmt="call()", setup="gc.enable()", globals={"call": call, "gc": gc},
                            num_threads=torch.get_num_threads())
    return timer.timeit(number).mean


def time_rounds(jobs: dict[str, Job], rounds: int) -> None:
    """The meta tools' rounds, then the cpu peers' rounds among themselves: a cpu peer runs the
    real model (seconds on vgg, through every cache of the processor), which would slow whichever
    meta tool ran after it in a shared round, and the targets compare meta tools only."""
    heavy = {label: job for label, job in jobs.items() if job.rounds is not None}
    _interleaved({label: job for label, job in jobs.items() if job.rounds is None}, rounds)
    _interleaved(heavy, max((job.rounds or 0 for job in heavy.values()), default=0))


def _interleaved(jobs: dict[str, Job], rounds: int) -> None:
    for round_index in range(rounds):
        live = [job for job in jobs.values() if not job.error and (job.rounds is None or round_index < job.rounds)]
        shift = round_index % max(len(live), 1)
        for job in live[shift:] + live[:shift]:  # rotated so that no tool always runs first or last
            gc.collect()  # before each tool, so each starts from the same state
            with torch.no_grad():
                if job.number == 1:  # one call: its reset stays out of the time
                    start = time.perf_counter()
                    job.call()
                    seconds = time.perf_counter() - start
                else:
                    seconds = _block(job.timed, job.number) - job.reset_seconds
            job.times.append(seconds)
            job.reset()


def load_runners(chosen: list[Tool]) -> dict[str, Runner | str]:
    """Import each peer once; a peer that cannot be imported becomes its reason."""
    runners: dict[str, Runner | str] = {}
    for tool in chosen:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                runners[tool.key] = tool.load()
        except ModuleNotFoundError as error:
            runners[tool.key] = f"not installed: {short_error(error)}"
        except Exception as error:  # installed, but broken beside this torch
            runners[tool.key] = f"import fails: {short_error(error)}"
    return runners


def median_ms(job: Job | None) -> float | None:
    return statistics.median(job.times) * 1000 if job and job.times else None


def min_ms(job: Job | None) -> float | None:
    return min(job.times) * 1000 if job and job.times else None


def fastest(jobs: dict[str, Job], chosen: list[Tool],
            statistic: Callable[[Job | None], float | None]) -> tuple[float, str] | None:
    """The fastest target-1 baseline peer by ``statistic``, with its column; None if none ran."""
    timed = [(statistic(jobs.get(tool.key)), tool.column) for tool in chosen if tool.baseline]
    timed = [(ms, column) for ms, column in timed if ms is not None]
    return min(timed) if timed else None


def cell(job: Job | None) -> str:
    if job is None:
        return "-"
    if job.error:
        return f"n/a ({job.error.split(':')[0]})"
    ms = median_ms(job)
    return "-" if ms is None else f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def markdown(header: Sequence[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ratio: float | None, target: float) -> str:
    if ratio is None:
        return "n/a"
    return "PASS" if ratio <= target else "MISS"


def given_rows(results: dict[str, dict[str, Job]], chosen: list[Tool]) -> tuple[list[list[str]], list[list[str]]]:
    """The timing table and the target-1 table."""
    timing, target_rows = [], []
    for name, jobs in results.items():
        timing.append([name] + [cell(jobs.get(tool.key)) for tool in chosen])
        ours, best, best_min = median_ms(jobs.get("costlens")), fastest(jobs, chosen, median_ms), fastest(jobs, chosen, min_ms)
        if ours is None or best is None or best_min is None:
            continue
        ratio = ours / best[0]
        ratio_of_minima = min_ms(jobs["costlens"]) / best_min[0]  # type: ignore[operator]
        target = TARGET_GIVEN.get(name, TARGET_GIVEN_DEFAULT)
        target_rows.append([name, f"{ours:.3g}", f"{best[0]:.3g} ({best[1].split(' (')[0]})", f"{ratio:.2f}",
                            f"{ratio_of_minima:.2f}", f"<= {target:.2f}", verdict(ratio, target)])
    return timing, target_rows


def by_name_rows(results: dict[str, dict[str, Job]]) -> list[list[str]]:
    rows = []
    for name, jobs in results.items():
        ours, theirs = jobs.get(BY_NAME[0]), jobs.get(BY_NAME[1])
        if not (ours and theirs and ours.times and theirs.times):
            continue
        target = TARGET_BY_NAME.get(name, TARGET_BY_NAME_DEFAULT)
        ratio = statistics.median(ours.times) / statistics.median(theirs.times)
        rows.append([name, f"{median_ms(ours):.3g}", f"{median_ms(theirs):.3g}", f"{ratio:.2f}",
                     f"{min(ours.times) / min(theirs.times):.2f}", f"<= {target:.2f}", verdict(ratio, target)])
    return rows


def count_report(results: dict[str, dict[str, Job]], chosen: list[Tool]) -> tuple[list[list[str]], list[str]]:
    """Each peer's count as a difference from costlens's MACs, and a warning per difference over 1%."""
    peers = [tool for tool in chosen if tool.key != "costlens"]
    rows, warnings_ = [], []
    for name, jobs in results.items():
        ours = jobs["costlens"].count if "costlens" in jobs else None
        if not ours:
            continue
        row = [name, f"{ours:,.0f}"]
        for tool in peers:
            job = jobs.get(tool.key)
            if job is None or job.count is None:
                row.append("-" if job is None else "n/a")
                continue
            difference = (job.count - ours) / ours
            row.append("=" if job.count == ours else f"{difference:+.2%}")
            if abs(difference) > COUNT_TOLERANCE:
                warnings_.append(f"warning: {name}: {tool.column} counts {job.count:,.0f}, {difference:+.2%} against "
                                 f"costlens's {ours:,.0f} MACs (it also counts {tool.counts})")
        rows.append(row)
    return rows, warnings_


def environment() -> dict[str, str]:
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "threads": str(torch.get_num_threads()), "machine": platform.machine()}
    for distribution in ("costlens",) + PEER_DISTRIBUTIONS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[distribution] = importlib.metadata.version(distribution)
    return versions


def method(block_ms: float) -> str:
    """How each round's time was taken, for the report's header."""
    if block_ms <= 0:
        return "each round's time: one call, after gc.collect() (the processor's caches cold)"
    return (f"each round's time: the mean of a block of back-to-back calls lasting about {block_ms:g} ms "
            "(one call where a call takes longer), after gc.collect()")


def report(results: dict[str, dict[str, Job]], chosen: list[Tool], rounds: int, cpu_rounds: int, by_name: bool,
           load: tuple[float, float], block_ms: float) -> None:
    versions = environment()
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(method(block_ms))
    print(f"load average over 1 min: {load[0]:.2f} at the start, {load[1]:.2f} at the end, on {os.cpu_count()} cores "
          "(other work running beside the benchmark shows in its medians; the ratios of minima suffer less)")
    timing, target_rows = given_rows(results, chosen)
    print(f"\n1. Model given, ms, median of {rounds} interleaved rounds (cpu peers: of {cpu_rounds} rounds of their own)")
    print(markdown(["model"] + [tool.column for tool in chosen], timing))
    if target_rows:
        print("\nTarget 1: costlens / fastest of FlopCounterMode, ptflops aten and torchinfo (all on meta)")
        print(markdown(["model", "costlens ms", "fastest peer ms", "ratio", "ratio of minima", "target", ""], target_rows))
    if by_name:
        print(f"\n2. By name, the build included, ms, median of {rounds} interleaved rounds")
        print(markdown(["model", "costlens profile(name)", "meta build + FlopCounterMode", "ratio", "ratio of minima",
                        "target", ""],
                       by_name_rows(results)))
    rows, count_warnings = count_report(results, chosen)
    if rows:
        print("\nCounts: each peer's MACs against costlens's (= identical)")
        print(markdown(["model", "costlens MACs"] + [t.column for t in chosen if t.key != "costlens"], rows))
        print("\n".join(count_warnings) if count_warnings else "every count within 1% of costlens's")
    columns = {tool.key: tool.column for tool in chosen}
    reasons = sorted({(columns.get(key, key), job.error) for jobs in results.values() for key, job in jobs.items() if job.error})
    for column, error in reasons:
        print(f"n/a: {column}: {error}")
    verdicts = [row[-1] for row in target_rows] + ([row[-1] for row in by_name_rows(results)] if by_name else [])
    print(f"\n{verdicts.count('PASS')} PASS, {verdicts.count('MISS')} MISS")


def save(path: str, results: dict[str, dict[str, Job]], shapes: dict[str, tuple[int, ...]], rounds: int,
         load: tuple[float, float], block_ms: float) -> None:
    models = {name: {"input": list(shapes[name]), "tools": {
        key: {"seconds": job.times, "median_ms": median_ms(job), "calls_per_block": job.number,
              "count": job.count, "error": job.error}
        for key, job in jobs.items()}}
        for name, jobs in results.items()}
    data = {"environment": environment(), "rounds": rounds, "block_ms": block_ms, "load_average_1min": list(load),
            "models": models}
    with open(path, "w") as out:
        json.dump(data, out, indent=1)


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    keys = [tool.key for tool in tools()] + ["by-name"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per model (default 7)")
    parser.add_argument("--cpu-rounds", type=int, default=3,
                        help="rounds of their own for the cpu peers, after the meta tools' (default 3): each of their "
                             "calls runs the real model, seconds on vgg, and their times are not what the targets compare")
    parser.add_argument("--block-ms", type=float, default=20.0,
                        help="each tool's timed block in a round lasts about this long, its mean per call being the "
                             "round's time (default 20; 0: single calls, each after gc.collect(), which leaves the "
                             "processor's caches cold)")
    parser.add_argument("--models", help="comma-separated zoo names (default: every zoo model)")
    parser.add_argument("--tools", help=f"comma-separated subset of: {', '.join(keys)} (default: all)")
    parser.add_argument("--json", metavar="PATH", help="save every timing and count here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(argv)
    from costlens.errors import CostlensError
    from costlens.zoo import entry, names

    models = list(dict.fromkeys(args.models.split(","))) if args.models else names()  # a model once, in given order
    wanted = set(args.tools.split(",")) if args.tools else None
    unknown = wanted - {tool.key for tool in tools()} - {"by-name"} if wanted else set()
    if unknown:
        print(f"unknown --tools: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    shapes: dict[str, tuple[int, ...]] = {}
    for name in models:
        try:
            shapes[name] = tuple(getattr(entry(name), INPUT_FIELD))
        except CostlensError as error:  # an unknown name: the message suggests the nearest ones
            print(error, file=sys.stderr)
            return 2
    chosen = [tool for tool in tools() if wanted is None or tool.key in wanted or tool.key == "costlens"]
    by_name = wanted is None or "by-name" in wanted
    runners = load_runners(chosen)
    load_at_start = os.getloadavg()[0]
    results: dict[str, dict[str, Job]] = {}
    for name in models:
        started = time.perf_counter()
        jobs = model_given_jobs(name, shapes[name], chosen, runners, args.cpu_rounds)
        if by_name:
            jobs.update(by_name_jobs(name, shapes[name]))
        warm(jobs)
        calibrate(jobs, args.block_ms / 1000)
        time_rounds(jobs, args.rounds)
        for job in jobs.values():  # the calls hold the models: let them go before the next model
            job.call, job.reset = float, _nothing
        results[name] = jobs
        print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        gc.collect()
    load = (load_at_start, os.getloadavg()[0])
    report(results, chosen, args.rounds, min(args.cpu_rounds, args.rounds), by_name, load, args.block_ms)
    if args.json:
        save(args.json, results, shapes, args.rounds, load, args.block_ms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
