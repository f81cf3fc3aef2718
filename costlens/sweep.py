"""How cost grows: profile a model over input sizes, batch sizes or widths and fit a power law.

``costlens sweep NAME --input 1x3x{112,160,224}x{same}`` profiles NAME at each size. For every
metric the growth exponent ``b`` of ``metric ≈ a · x^b`` is fitted by least squares on
log-log axes, with R² of that fit; ``x`` is the number of input pixels (H·W) for an input
sweep, so a plain conv net's MACs have exponent 1.0, the batch size, the width multiplier
(a conv stack's MACs and params grow as width², exponent 2.0), or the depth, where the zoo has
a family of depths (``--depth 18,34,50,101,152`` profiles resnet18 ... resnet152).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from costlens.errors import InputShapeError
from costlens.records import Profile
from costlens.timing.measure import TimingOptions
from costlens.zoo.registry import NamedModel

METRICS = ("params", "macs", "flops", "activation_bytes", "peak_bytes", "weight_bytes", "latency_ms")
_DEPTH_NAME = re.compile(r"^(?P<family>[a-z]+)(?P<depth>[0-9]+)$")
_GROUP = re.compile(r"\{([^{}]*)\}")


def expand_shapes(text: str) -> list[tuple[int, ...]]:
    """``1x3x{112,224}x{same}`` -> [(1, 3, 112, 112), (1, 3, 224, 224)]; ``{same}`` repeats the
    group before it, other groups combine (every pair)."""
    parts = _split(text.strip().lower())
    choices: list[list[int] | str] = []
    for part in parts:
        group = _GROUP.fullmatch(part)
        if group is None:
            choices.append([_size(part, text)])
        elif group.group(1).strip() == "same":
            if not any(isinstance(c, list) and len(c) > 1 for c in choices):
                raise InputShapeError(f"--input: {{same}} needs a {{a,b,...}} group before it in {text!r}")
            choices.append("same")
        else:
            choices.append([_size(v, text) for v in group.group(1).split(",") if v.strip()])
    free = [c for c in choices if isinstance(c, list)]
    shapes = []
    for combo in itertools.product(*free):
        values, picked, last = [], iter(combo), 0
        for choice in choices:
            last = last if choice == "same" else next(picked)
            values.append(last)
        shapes.append(tuple(values))
    return shapes


def _split(text: str) -> list[str]:
    """Split on 'x' outside braces."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "{"
        depth -= char == "}"
        if char == "x" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _size(value: str, text: str) -> int:
    try:
        size = int(value.strip())
    except ValueError:
        raise InputShapeError(f"--input: {value.strip()!r} is not a size in {text!r} "
                              "(write 1x3x{112,224}x{same})") from None
    if size < 1:
        raise InputShapeError(f"--input: sizes must be positive, got {size} in {text!r}")
    return size


@dataclass(frozen=True)
class Fit:
    """``metric ≈ scale · x^exponent`` on the swept points, and R² of the log-log fit."""

    exponent: float
    r2: float


def fit(xs: Sequence[float], ys: Sequence[float]) -> Fit | None:
    """Least squares on (log x, log y); None with fewer than two positive points or one x."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(points) < 2 or len({p[0] for p in points}) < 2:
        return None
    mx = sum(p[0] for p in points) / len(points)
    my = sum(p[1] for p in points) / len(points)
    sxx = sum((p[0] - mx) ** 2 for p in points)
    slope = sum((p[0] - mx) * (p[1] - my) for p in points) / sxx
    total = sum((p[1] - my) ** 2 for p in points)
    residual = sum((p[1] - my - slope * (p[0] - mx)) ** 2 for p in points)
    return Fit(slope, 1.0 - residual / total if total > 0 else 1.0)


@dataclass(frozen=True)
class Point:
    """One profiled setting: its label ('1x3x224x224', 'batch 4', 'width 0.5'), x and totals."""

    label: str
    x: float
    totals: dict[str, float]


@dataclass
class Sweep:
    """A model's totals over one swept variable, with the fitted growth exponents."""

    model: str
    variable: str  # "pixels (H·W)", "batch" or "width"
    points: list[Point] = field(default_factory=list)
    interrupted: bool = False

    def metrics(self) -> list[str]:
        """The metrics every point has."""
        return [k for k in METRICS if self.points and all(k in p.totals for p in self.points)]

    def fits(self) -> dict[str, Fit | None]:
        """The growth exponent of each metric against the swept variable."""
        xs = [p.x for p in self.points]
        return {k: fit(xs, [p.totals[k] for p in self.points]) for k in self.metrics()}

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "costlens.sweep/1", "model": self.model, "variable": self.variable,
                "interrupted": self.interrupted,
                "points": [{"label": p.label, "x": p.x, "totals": p.totals} for p in self.points],
                "fits": {k: None if f is None else {"exponent": f.exponent, "r2": f.r2} for k, f in self.fits().items()}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def __repr__(self) -> str:
        fits = ", ".join(f"{key} ∝ x^{found.exponent:.2f}" for key, found in self.fits().items()
                         if found is not None and key in ("params", "macs"))
        return (f"<Sweep {self.model!r} over {self.variable}: {len(self.points)} points"
                f"{'; ' + fits if fits else ''}{' (interrupted)' if self.interrupted else ''}>")

    def _repr_markdown_(self) -> str:
        """A notebook's view: the points and the fitted exponents."""
        from costlens.report.sweep_text import markdown

        return markdown(self)


@dataclass(frozen=True)
class _Setting:
    label: str
    x: float
    shape: tuple[int, ...] | None
    batch: int | None
    width: float | None
    depth: int | None = None


def _settings(inputs: Sequence[tuple[int, ...]] | None, batches: Sequence[int] | None,
              widths: Sequence[float] | None, depths: Sequence[int] | None = None) -> tuple[str, list[_Setting]]:
    swept = [name for name, values in (("input", inputs), ("batch", batches), ("width", widths), ("depth", depths))
             if values is not None and len(values) > 1]
    if len(swept) != 1:
        raise InputShapeError("sweep: give exactly one list to sweep: --input with {a,b,...}, --batch 1,2,4, "
                              "--width 0.5,1,2 or --depth 18,34,50")
    shape = tuple(inputs[0]) if inputs else None
    batch = batches[0] if batches else None
    width = widths[0] if widths else None
    if swept == ["depth"]:
        assert depths is not None
        return "depth", [_Setting(f"depth {d}", float(d), shape, batch, width, d) for d in depths]
    if swept == ["input"]:
        assert inputs is not None
        return "pixels (H·W)", [_Setting("x".join(map(str, s)), float(math.prod(s[2:]) or math.prod(s)), tuple(s),
                                         batch, width) for s in inputs]
    if swept == ["batch"]:
        assert batches is not None
        return "batch", [_Setting(f"batch {b}", float(b), shape, b, width) for b in batches]
    assert widths is not None
    return "width", [_Setting(f"width {w:g}", float(w), shape, batch, w) for w in widths]


def sweep(model: str | Callable[..., nn.Module], *, inputs: Sequence[tuple[int, ...]] | None = None,
          batches: Sequence[int] | None = None,
          widths: Sequence[float] | None = None, depths: Sequence[int] | None = None, dtype: str = "float32",
          timing: bool | TimingOptions = False, progress: bool | None = False) -> Sweep:
    """Profile ``model`` (a zoo name, an import path, or a factory taking ``width=``) at each
    setting of the one swept variable; factories without a default input need ``inputs``;
    ``depths`` take the zoo model's family at those depths (resnet18, resnet34, ...).
    Ctrl-C stops the sweep and keeps the points already profiled (``interrupted`` is set)."""
    from costlens.models import resolve

    variable, settings = _settings(inputs, batches, widths, depths)
    if any(s.width is not None and not 0 < s.width <= 64 for s in settings):
        raise InputShapeError("--width: multipliers must be in (0, 64]")
    named_at: dict[int | None, NamedModel] = {}
    if variable == "depth":
        if not isinstance(model, str):
            raise InputShapeError("--depth: name a zoo model of a family of depths (resnet50, vgg16)")
        named_at = {s.depth: resolve(at_depth(model, s.depth)) for s in settings if s.depth is not None}
    if isinstance(model, nn.Module):
        raise InputShapeError("sweep: give a zoo name, an import path or a factory (each point builds the model "
                              "afresh), not a built nn.Module")
    if callable(model):
        factory = model
        named = NamedModel(getattr(model, "__name__", "model"),
                           lambda **options: _factory_call(factory, **options))
    else:
        named = resolve(model)
    result = Sweep(_family(named.name) if variable == "depth" else named.name, variable)
    built = _built_once(named) if variable in ("pixels (H·W)", "batch") and not timing else None
    bar = _bar(len(settings), progress)
    try:
        for setting in settings:
            profiled = _point(named_at[setting.depth] if setting.depth is not None else named, setting, dtype,
                              timing, built)
            result.points.append(Point(setting.label, setting.x, dict(profiled.totals)))
            bar.update(1)
            if (profiled.timing or {}).get("interrupted"):
                result.interrupted = True
                break
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        bar.close()
    return result


def at_depth(name: str, depth: int) -> str:
    """The zoo model of ``name``'s family at ``depth`` ('resnet50', 101 -> 'resnet101')."""
    from costlens.zoo import names

    found = _DEPTH_NAME.match(name)
    family = [n for n in names() if found and (m := _DEPTH_NAME.match(n)) and m["family"] == found["family"]]
    if not found or len(family) < 2:
        raise InputShapeError(f"--depth: {name} has no family of depths in the zoo (resnet18 ... resnet152, "
                              "vgg11 ... vgg19)")
    wanted = f"{found['family']}{depth}"
    if wanted not in family:
        depths = ", ".join(sorted((n.removeprefix(found["family"]) for n in family), key=int))
        raise InputShapeError(f"--depth: the zoo has {found['family']} at depths {depths}, not {depth}")
    return wanted


def _family(name: str) -> str:
    found = _DEPTH_NAME.match(name)
    return found["family"] if found else name


def _bar(total: int, shown: bool | None) -> Any:
    """tqdm's bar on stderr; ``None``: shown when stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, disable=None if shown is None else not shown, unit="point",
                desc="sweep", leave=False)


def _built_once(named: NamedModel) -> nn.Module:
    """The model on meta, built once for a sweep over its inputs (a trace leaves it as found)."""
    import torch

    from costlens.run import build

    return build(named, torch.device("meta"))


def _point(named: NamedModel, setting: _Setting, dtype: str, timing: bool | TimingOptions,
           built: nn.Module | None = None) -> Profile:
    """One setting's profile: the model (at the setting's width; ``built`` when it was built once)
    on its input, timed end to end when asked."""
    from costlens.request import Request
    from costlens.run import run

    model: nn.Module | NamedModel = built if built is not None else (
        named if setting.width is None else _at_width(named, setting.width))
    options = replace(timing, layers=False) if isinstance(timing, TimingOptions) else TimingOptions(layers=not timing)
    return run(Request(model, setting.shape or named.input, batches=() if setting.batch is None else (setting.batch,),
                       dtype=dtype, time=bool(timing), timing=options, name=named.name))


def _at_width(named: NamedModel, width: float) -> NamedModel:
    """``named`` built at ``width``: its builder called with ``width=``."""
    return NamedModel(named.name, lambda: _with_width(named, width), named.input, named.cite)


def _with_width(named: Any, width: float) -> nn.Module:
    try:
        return named.build(width=width)  # type: ignore[no-any-return]
    except TypeError as error:
        raise InputShapeError(f"{named.name} has no width knob (its builder takes no 'width'): {error}") from error


def _factory_call(factory: Callable[..., nn.Module], **options: Any) -> nn.Module:
    """A factory given to ``sweep`` in Python, called as user code (``costlens/models.py``)."""
    from costlens.errors import CostlensError, ModelError
    from costlens.models import first_line, user_code

    try:
        with user_code("the sweep's factory"):
            built = factory(**options)
    except CostlensError:
        raise
    except Exception as error:  # the user's factory can raise anything
        raise ModelError(f"the sweep's factory failed to build the model: {type(error).__name__}: "
                         f"{first_line(error)}") from error
    if not isinstance(built, nn.Module):
        raise ModelError(f"the sweep's factory returned {type(built).__name__}, not an nn.Module")
    return built


def parse_floats(text: str, argument: str) -> list[float]:
    """'0.5,1,2' -> [0.5, 1.0, 2.0]."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputShapeError(f"{argument}: expected numbers separated by commas, got {text!r}") from None

