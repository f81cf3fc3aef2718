"""Calibration: the peak FLOP/s and bandwidth this machine reaches, measured, cached and checked.

Peaks: n x n matmuls (2·n³ FLOPs) over a sweep of sizes, smallest first; the best size
wins, measured once more at the end (noise only ever slows a product: the higher of the two
stands). The sweep stops once larger sizes stop helping (three sizes in a row without a 2%
gain), and skips a size whose single product would take longer than ``PRODUCT_LIMIT``
(a CPU without bfloat16 units runs bfloat16 at a GFLOP/s, where one 2048 product takes
seconds). Only the dtypes asked are measured: a timed run needs its own dtype's peak.
On CUDA float32 is measured twice, TF32 off ("float32") and on ("tf32"), reported apart.
Bandwidth: a large copy (read + write). Every timer runs on the run's thread count.

The cache (``$XDG_CACHE_HOME/costlens``, else ``~/.cache/costlens``) is one file per device
name, torch version and thread count. Each dtype's figures say when they were taken and
the load average then. Before a cached peak is used, a quick check times one matmul size
(well under a second); a figure older than a week, or that the check finds more than 10%
off, is measured again; so is a cache that cannot be read or describes another machine
(never trusted). Earlier figures stay in the file's history (``costlens device``).
The clock and the quick check are parameters (``Policy``), so tests can fake them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from costlens.errors import CostlensError
from costlens.timing.description import DTYPE_KEYS, DeviceError, read_json
from costlens.timing.device import DeviceFacts, device_name
from costlens.timing.latency import time_fixed, using_threads

# sizes between powers of two too: a CPU's best is often at 384 or 3072 (how its kernels block the product)
SIZES = {"cpu": (128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096),
         "cuda": (1024, 2048, 4096, 6144, 8192, 12288, 16384)}
DTYPES = {"cpu": ("float32", "bfloat16"), "cuda": ("float32", "tf32", "float16", "bfloat16")}
PRODUCT_LIMIT = {"cpu": 0.5, "cuda": 1.0}  # seconds one product may take
SWEEP_LIMIT = {"cpu": 5.0, "cuda": 20.0}  # seconds of one dtype's sweep, after which larger sizes are skipped
GAIN = 1.02  # a larger size "helps" when it beats the best so far by this
PATIENCE = 3  # sizes in a row that do not help before the sweep stops
MEASURE_SECONDS = 0.2  # timed per size, after a warm-up
WARM_SECONDS = {"cpu": 0.05, "cuda": 0.3}  # GPU clocks rise from idle only under load
COPY_BYTES = {"cpu": 256 * 2**20, "cuda": 2 * 2**30}
CHECK_PRODUCT = {"cpu": 0.02, "cuda": 0.01}  # the quick check's size: the largest whose product takes this
HISTORY = 20  # earlier calibrations kept in the cache file
WEEK = 7 * 24 * 3600.0


def check_matmul(device: torch.device, dtype: str, size: int, threads: int) -> float:
    """FLOP/s of one n x n matmul size, briefly (the check before a cached peak is used)."""
    return _reached(device, dtype, size, threads, warm=WARM_SECONDS[device.type], seconds=0.1)


@dataclass(frozen=True)
class Policy:
    """When a cached calibration is measured again, and the clock and check that decide it."""

    max_age: float = WEEK
    tolerance: float = 0.10
    clock: Callable[[], float] = time.time
    check: Callable[[torch.device, str, int, int], float] = check_matmul
    sizes: dict[str, tuple[int, ...]] = field(default_factory=lambda: dict(SIZES))
    copy_bytes: dict[str, int] = field(default_factory=lambda: dict(COPY_BYTES))
    seconds: float = MEASURE_SECONDS  # timed per matmul size and for the copy


def cache_dir() -> Path:
    """Where calibrations are kept: $XDG_CACHE_HOME/costlens or ~/.cache/costlens."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "costlens"


def cache_key(device: torch.device, threads: int) -> dict[str, Any]:
    """What a calibration is valid for: this device by name, this torch, this thread count."""
    return {"type": device.type, "name": device_name(device), "torch": torch.__version__, "threads": threads}


def cache_file(device: torch.device, threads: int) -> Path:
    key = json.dumps(cache_key(device, threads), sort_keys=True)
    return cache_dir() / f"device-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


# --- measuring ------------------------------------------------------------------------


def _operands(device: torch.device, dtype: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    kind = torch.float32 if dtype == "tf32" else getattr(torch, dtype)
    return torch.randn(n, n, device=device, dtype=kind), torch.randn(n, n, device=device, dtype=kind)


@contextlib.contextmanager
def _tf32(on: bool) -> Any:
    """CUDA matmuls in float32 with TF32 on or off inside, the user's setting restored after."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def _reached(device: torch.device, dtype: str, n: int, threads: int, warm: float, seconds: float) -> float:
    """FLOP/s of n x n matmuls in ``dtype``, timed for ``seconds`` after ``warm`` seconds of them."""
    a, b = _operands(device, dtype, n)
    with _tf32(dtype == "tf32") if device.type == "cuda" else contextlib.nullcontext():
        def product() -> torch.Tensor:
            return torch.mm(a, b)
        time_fixed(product, threads, warm)
        median_ms = time_fixed(product, threads, seconds).median_ms
    return 2 * n**3 / (median_ms / 1e3)


def sweep(device: torch.device, dtype: str, threads: int, sizes: tuple[int, ...],
          progress: Callable[[str], None] | None = None, seconds: float = MEASURE_SECONDS) -> tuple[float, dict[str, float]]:
    """The best matmul FLOP/s of ``dtype`` over ``sizes`` (stopping early, see the module's
    docstring) and what each size measured reached."""
    kind = device.type
    reached: dict[str, float] = {}
    best, stale, started, rate = 0.0, 0, time.perf_counter(), 0.0
    for n in sizes:
        # one product of this size at the rate the last size reached: 2·n³ / its FLOP/s
        if rate and (2 * n**3 / rate > PRODUCT_LIMIT[kind] or time.perf_counter() - started > SWEEP_LIMIT[kind]):
            break
        if progress:
            progress(f"{dtype} matmul {n}x{n}")
        rate = _reached(device, dtype, n, threads, warm=WARM_SECONDS[kind] if not reached else 0.02,
                        seconds=seconds)
        reached[str(n)] = rate
        stale = 0 if rate > best * GAIN else stale + 1
        best = max(best, rate)
        if stale == PATIENCE:
            break
    # the best size once more, longer: a machine's noise only ever slows a product, so the higher stands
    size = max(reached, key=lambda n: reached[n])
    if progress:
        progress(f"{dtype} matmul {size}x{size} again")
    reached[size] = max(reached[size], _reached(device, dtype, int(size), threads, warm=0.02, seconds=2 * seconds))
    return reached[size], reached


def copy_bandwidth(device: torch.device, threads: int, nbytes: int, seconds: float = MEASURE_SECONDS) -> float:
    """Bytes/s of a large copy, counting the read and the write."""
    source = torch.empty(nbytes // 4, device=device, dtype=torch.float32).uniform_()
    target = torch.empty_like(source)
    time_fixed(lambda: target.copy_(source), threads, WARM_SECONDS[device.type])
    median_s = time_fixed(lambda: target.copy_(source), threads, seconds).median_ms / 1e3
    return 2 * nbytes / median_s


def _taken(at: float, started: float) -> dict[str, float]:
    """When a figure was taken, the load average then (where the OS tells it), and how long it took."""
    taken = {"at": float(at), "seconds": time.perf_counter() - started}
    with contextlib.suppress(OSError, AttributeError):
        taken["load"] = os.getloadavg()[0]
    return taken


def measure_dtype(device: torch.device, dtype: str, threads: int, policy: Policy,
                  progress: Callable[[str], None] | None) -> tuple[float | None, dict[str, float] | str, dict[str, Any]]:
    """(peak or None, by size or why not, when and under what load) of one dtype, measured now."""
    at, started = policy.clock(), time.perf_counter()
    try:
        with using_threads(threads):
            peak, by_size = sweep(device, dtype, threads, policy.sizes[device.type], progress, policy.seconds)
    except (RuntimeError, TypeError) as error:  # a dtype this device's kernels lack
        return None, f"unsupported: {_first_line(error)}", {}
    return peak, by_size, _taken(at, started)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def measure_copy(device: torch.device, threads: int, policy: Policy,
                 progress: Callable[[str], None] | None) -> tuple[float, dict[str, Any]]:
    at, started = policy.clock(), time.perf_counter()
    nbytes = policy.copy_bytes[device.type]
    if progress:
        progress(f"memory bandwidth (a {nbytes / 2**20:g} MiB copy)")
    with using_threads(threads):
        found = copy_bandwidth(device, threads, nbytes, policy.seconds)
    return found, _taken(at, started)


# --- the cache --------------------------------------------------------------------------


def read_cache(path: Path, key: dict[str, Any]) -> tuple[DeviceFacts | None, str | None]:
    """The cached facts for ``key``, or None and why not (None: no cache at all)."""
    if not path.exists():
        return None, None
    try:
        data = read_json(path)
        if not isinstance(data, dict) or data.get("key") != key:
            return None, "the cache describes another device, torch or thread count"
        facts = DeviceFacts.from_dict(data.get("facts"), "cache")
    except DeviceError as error:
        return None, f"the cache cannot be trusted ({error})"
    return facts, None


def write_cache(path: Path, key: dict[str, Any], facts: DeviceFacts) -> None:
    from costlens.files import write_atomic

    data = {"key": key, "facts": replace(facts, source="cache", check=None).to_dict()}
    with contextlib.suppress(CostlensError, OSError):  # an unwritable cache only costs a calibration next time
        write_atomic(path, json.dumps(data, indent=1, allow_nan=False))


def _stale(facts: DeviceFacts, dtype: str, device: torch.device, threads: int,
           policy: Policy) -> tuple[str | None, dict[str, Any] | None]:
    """Why ``dtype``'s cached peak must be measured again (None: it holds), and the check's figures."""
    taken = facts.calibrated.get(dtype, {})
    by_size = facts.details.get(f"matmul_{dtype}")
    if not isinstance(taken.get("at"), (int, float)):
        return ("not calibrated yet" if dtype not in facts.peak_flops else "the cache does not say when"), None
    age = policy.clock() - taken["at"]
    if age > policy.max_age or age < -3600:  # a date in the future: a clock that was wrong, or a forged file
        return f"taken {age / 86400:.1f} days ago (a week at most)", None
    if not isinstance(by_size, dict) or not by_size:
        return None, None  # a peak without sizes (an override kept in the cache): nothing to check against
    size = _check_size(by_size, device.type)
    expected = by_size[str(size)]
    try:
        with using_threads(threads):
            found = policy.check(device, dtype, size, threads)
    except (RuntimeError, TypeError) as error:
        return f"the quick check failed ({_first_line(error)})", None
    passed = abs(found / expected - 1) <= policy.tolerance
    check = {"dtype": dtype, "size": size, "reached": found, "cached": expected, "ratio": found / expected,
             "passed": passed, "cached_at": taken["at"], **_taken(policy.clock(), time.perf_counter())}
    del check["seconds"]
    if not passed:
        return (f"a quick check reached {100 * found / expected:.0f}% of the cached figure at {size}x{size} "
                f"(more than {100 * policy.tolerance:.0f}% off)"), check
    return None, check


def _check_size(by_size: dict[str, float], kind: str) -> int:
    """The largest calibrated size whose one product takes at most CHECK_PRODUCT seconds (else the smallest)."""
    sizes = sorted((int(n), rate) for n, rate in by_size.items() if n.isdigit() and rate > 0)
    fitting = [n for n, rate in sizes if 2 * n**3 / rate <= CHECK_PRODUCT[kind]]
    return fitting[-1] if fitting else sizes[0][0]


def cached_or_measured(device: torch.device, dtypes: tuple[str, ...], threads: int, *, recalibrate: bool = False,
                       progress: Callable[[str], None] | None = None, policy: Policy | None = None) -> DeviceFacts:
    """The calibration of ``dtypes`` on ``threads`` threads: each dtype from the cache when it holds,
    else measured now (and cached). ``progress`` hears what is measured and why."""
    policy = policy or Policy()
    say = progress or (lambda _: None)
    dtypes = tuple(d for d in dtypes if d in DTYPE_KEYS and (d != "tf32" or device.type == "cuda")) or ("float32",)
    path, key = cache_file(device, threads), cache_key(device, threads)
    cached, refused = read_cache(path, key)
    if refused:
        say(f"{refused}: measuring again")
    facts = cached or DeviceFacts(device.type, device_name(device), {}, 0.0, threads, "calibrated")
    measured_now, checks = False, []
    for dtype in dtypes:
        why, check = _why_measure(cached, facts, dtype, device, threads, policy, recalibrate)
        if check is not None:
            checks.append(check)
        if why is None:
            continue
        if cached is not None:
            say(f"{dtype}: {why}: measuring again")
        facts = _with_dtype(facts, dtype, *measure_dtype(device, dtype, threads, policy, progress), why=why)
        measured_now = True
    if recalibrate or not facts.bandwidth or "copy" not in facts.calibrated or _too_old(facts.calibrated["copy"], policy):
        bandwidth, taken = measure_copy(device, threads, policy, progress)
        facts = replace(facts, bandwidth=bandwidth, calibrated={**facts.calibrated, "copy": taken})
        measured_now = True
    if not facts.peak_flops:
        raise DeviceError(f"no matmul of {', '.join(dtypes)} ran on {device.type}: "
                          f"{'; '.join(str(v) for v in facts.details.values())}")
    if measured_now:
        write_cache(path, key, facts)
    return replace(facts, source="calibrated" if measured_now else "cache", check=checks[-1] if checks else None)


def _why_measure(cached: DeviceFacts | None, facts: DeviceFacts, dtype: str, device: torch.device, threads: int,
                 policy: Policy, recalibrate: bool) -> tuple[str | None, dict[str, Any] | None]:
    if recalibrate:
        return "asked to recalibrate", None
    if cached is None:
        return "no calibration cached", None
    return _stale(facts, dtype, device, threads, policy)


def _too_old(taken: dict[str, Any], policy: Policy) -> bool:
    at = taken.get("at")
    return not isinstance(at, (int, float)) or not -3600 <= policy.clock() - at <= policy.max_age


def _with_dtype(facts: DeviceFacts, dtype: str, peak: float | None, by_size: dict[str, float] | str,
                taken: dict[str, Any], why: str) -> DeviceFacts:
    """``facts`` with ``dtype`` measured anew; the figure it replaces goes to the history."""
    history = list(facts.history)
    if dtype in facts.peak_flops:
        earlier = facts.calibrated.get(dtype, {})
        history.append({"dtype": dtype, "peak": facts.peak_flops[dtype], **earlier, "replaced": why})
    peaks = {k: v for k, v in facts.peak_flops.items() if k != dtype}
    if peak is not None:
        peaks[dtype] = peak
    calibrated = {**facts.calibrated, dtype: taken} if taken else {k: v for k, v in facts.calibrated.items() if k != dtype}
    return replace(facts, peak_flops=peaks, details={**facts.details, f"matmul_{dtype}": by_size},
                   calibrated=calibrated, history=history[-HISTORY:])
