"""How cost grows: profile a model over input sizes, batch sizes or widths and fit a power law.

``costlens sweep NAME --input 1x3x{112,160,224}x{same}`` profiles NAME at each size (inputs are
written as ``profile`` takes them, repeatable and named; one carries the swept groups). For every
metric the growth exponent ``b`` of ``metric ≈ a · x^b`` is fitted by least squares on
log-log axes, with R² of that fit; ``x`` is, for an input sweep, the product of the sizes that
change from point to point (an image's pixels H·W, so a plain conv net's MACs have exponent
1.0; a sequence's length), the batch size, the width multiplier
(a conv stack's MACs and params grow as width², exponent 2.0), or the depth, where the zoo has
a family of depths (``--depth 18,34,50,101,152`` profiles resnet18 ... resnet152).
"""

from __future__ import annotations

import functools
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
from costlens.inputs import Inputs, from_texts, is_shape, split
from costlens.records import Profile
from costlens.request import DEFAULT_TIMING, Front, Request, batch_sizes
from costlens.timing.options import TimingOptions
from costlens.units import InputText, format_shape, parse_input
from costlens.zoo.registry import NamedModel

METRICS = ("params", "macs", "flops", "activation_bytes", "peak_bytes", "weight_bytes", "latency_ms")
_DEPTH_NAME = re.compile(r"^(?P<family>[a-z]+)(?P<depth>[0-9]+)$")
_GROUP = re.compile(r"\{([^{}]*)\}")


def expand_shapes(text: str, argument: str = "--input") -> list[tuple[int, ...]]:
    """``1x3x{112,224}x{same}`` -> [(1, 3, 112, 112), (1, 3, 224, 224)]; ``{same}`` repeats the
    group before it, other groups combine (every pair)."""
    return [point[0].shape for point in expand_inputs([text], argument)]


def expand_inputs(texts: Sequence[str], argument: str = "--input") -> list[tuple[InputText, ...]]:
    """The inputs at each point of a sweep, from ``--input`` texts as ``profile`` takes them
    (``[NAME=]SHAPE[:DTYPE[:FILL]]``, ``costlens/units.py``) where one input's sizes carry the
    swept groups ``{a,b,...}`` (several combine: every pair) and the others are fixed;
    ``{same}`` repeats the group before it, in its own input or an earlier one
    (``--input input_ids=1x{32,64}:int64 --input attention_mask=1x{same}:int64:ones``)."""
    parts = [_input_parts(text, argument) for text in texts]
    choices: list[list[list[int] | str]] = []
    for text, (_, shape, _) in zip(texts, parts):
        choices.append(_choices(shape, text, argument, grouped=any(isinstance(c, list) and len(c) > 1
                                                                  for row in choices for c in row)))
    carrying = [i for i, row in enumerate(choices) if any(isinstance(c, list) and len(c) > 1 for c in row)]
    if len(carrying) > 1:
        raise InputShapeError(f"{argument}: groups {{a,b,...}} in {texts[carrying[0]]!r} and {texts[carrying[1]]!r}: "
                              "one input carries the swept sizes ({same} repeats them in another)")
    free = [c for row in choices for c in row if isinstance(c, list)]
    points = []
    for combo in itertools.product(*free):
        picked, group, shapes = iter(combo), 0, []
        for row in choices:
            sizes = []
            for choice in row:
                size = group if choice == "same" else next(picked)
                group = size if isinstance(choice, list) and len(choice) > 1 else group
                sizes.append(size)
            shapes.append(sizes)
        points.append(tuple(parse_input(f"{name}{'x'.join(map(str, sizes))}{tail}", argument)
                            for (name, _, tail), sizes in zip(parts, shapes)))
    return points


def _input_parts(text: str, argument: str) -> tuple[str, str, str]:
    """'input_ids=1x{32,64}:int64' -> ('input_ids=', '1x{32,64}', ':int64')."""
    if not isinstance(text, str):
        raise InputShapeError(f"{argument}: expected text like 1x3x{{112,224}}x{{same}}, got {text!r}")
    name, equals, rest = text.strip().partition("=")
    if not equals:
        name, rest = "", text.strip()
    shape, colon, tail = rest.partition(":")
    return (f"{name}=" if equals else ""), shape, colon + tail


def _choices(shape: str, text: str, argument: str, grouped: bool) -> list[list[int] | str]:
    """Each size of ``shape``: one value, a group's values, or 'same'."""
    choices: list[list[int] | str] = []
    for part in _split(shape.strip().lower().replace("×", "x")):
        group = _GROUP.fullmatch(part.strip())
        if group is None:
            choices.append([_size(part, text, argument)])
        elif group.group(1).strip() == "same":
            if not grouped and not any(isinstance(c, list) and len(c) > 1 for c in choices):
                raise InputShapeError(f"{argument}: {{same}} needs a {{a,b,...}} group before it in {text!r}")
            choices.append("same")
        else:
            values = [_size(v, text, argument) for v in group.group(1).split(",") if v.strip()]
            if not values:
                raise InputShapeError(f"{argument}: an empty group {{}} in {text!r}")
            repeated = next((v for i, v in enumerate(values) if v in values[:i]), None)
            if repeated is not None:
                raise InputShapeError(f"{argument}: {repeated} is listed twice in {text!r}")
            choices.append(values)
    return choices


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


def _size(value: str, text: str, argument: str) -> int:
    try:
        size = int(value.strip())
    except ValueError:
        raise InputShapeError(f"{argument}: {value.strip()[:40]!r} is not a size in {text[:200]!r} "
                              "(write 1x3x{112,224}x{same})") from None
    if size < 1:
        raise InputShapeError(f"{argument}: sizes must be positive, got {size} in {text[:200]!r}")
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
    variable: str  # what x is: "pixels (H·W)", "input size (dim 1)", "batch", "width" or "depth"
    points: list[Point] = field(default_factory=list)
    interrupted: bool = False
    swept: str = ""  # "input", "batch", "width" or "depth"

    def metrics(self) -> list[str]:
        """The metrics every point has."""
        return [k for k in METRICS if self.points and all(k in p.totals for p in self.points)]

    def fits(self) -> dict[str, Fit | None]:
        """The growth exponent of each metric against the swept variable."""
        xs = [p.x for p in self.points]
        return {k: fit(xs, [p.totals[k] for p in self.points]) for k in self.metrics()}

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "costlens.sweep/1", "model": self.model, "variable": self.variable, "swept": self.swept,
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


# Each swept argument as the Python API and the command line spell it.
SPELLINGS = {"inputs": ("inputs", "--input"), "batches": ("batches", "--batch"), "widths": ("widths", "--width"),
             "depths": ("depths", "--depth")}
MAX_WIDTH = 64


@dataclass(frozen=True)
class _Setting:
    label: str
    x: float
    inputs: Inputs  # None: the model's own
    batch: int | None
    width: float | None
    depth: int | None = None


def _spell(argument: str, front: Front) -> str:
    return SPELLINGS[argument][1 if front is Front.CLI else 0]


def _settings(inputs: object, batches: object, widths: object, depths: object,
              front: Front) -> tuple[str, str, list[_Setting]]:
    """What is swept ('input', 'batch', 'width' or 'depth'), what x is, and each point; every list
    checked first, so a bad value is refused before the first point is profiled."""
    say = functools.partial(_spell, front=front)
    points = _input_points(inputs, say("inputs"))
    sizes = list(batch_sizes(batches, say("batches"))) if batches is not None else None
    multipliers = _widths(widths, say("widths")) if widths is not None else None
    levels = _depths(depths, say("depths")) if depths is not None else None
    swept = [name for name, values in (("input", points), ("batch", sizes), ("width", multipliers), ("depth", levels))
             if values is not None and len(values) > 1]
    if len(swept) != 1:
        given = ", ".join(f"{say(a)} {len(v)} values" for a, v in (("inputs", points), ("batches", sizes),
                                                                  ("widths", multipliers), ("depths", levels))
                          if v is not None and len(v) > 1)
        raise InputShapeError(f"sweep: give exactly one list to sweep ({given or 'none has two values'}): "
                              f"{say('inputs')} with {{a,b,...}}, {say('batches')} 1,2,4, {say('widths')} 0.5,1,2 or "
                              f"{say('depths')} 18,34,50")
    fixed = points[0][1] if points else None
    batch = sizes[0] if sizes else None
    width = multipliers[0] if multipliers else None
    if swept == ["depth"]:
        assert levels is not None
        return "depth", "depth", [_Setting(f"depth {d}", float(d), fixed, batch, width, d) for d in levels]
    if swept == ["input"]:
        assert points is not None
        variable, xs = _input_axis(points, say("inputs"))
        return "input", variable, [_Setting(label, x, given, batch, width) for (label, given), x in zip(points, xs)]
    if swept == ["batch"]:
        assert sizes is not None
        return "batch", "batch", [_Setting(f"batch {b}", float(b), fixed, b, width) for b in sizes]
    assert multipliers is not None
    return "width", "width", [_Setting(f"width {w:g}", float(w), fixed, batch, w) for w in multipliers]


def _input_points(inputs: object, argument: str) -> list[tuple[str, Inputs]] | None:
    """Each point's label and inputs: from ``--input`` texts with groups, a shape, or a list of points
    (each what ``profile`` takes as ``inputs``)."""
    if inputs is None:
        return None
    if isinstance(inputs, str) or (isinstance(inputs, (list, tuple)) and inputs and all(isinstance(t, str) for t in inputs)):
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        return [(_label(point), from_texts(point)) for point in expand_inputs(texts, argument)]
    if is_shape(inputs):
        shape: tuple[int, ...] = tuple(inputs)  # type: ignore[arg-type]
        return [(format_shape(shape), shape)]
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise InputShapeError(f"{argument}: expected text like '1x3x{{112,224}}x{{same}}' or a list of points "
                              f"(each a shape or what profile takes as inputs), got {_brief(inputs)}")
    return [(_point_label(point, f"{argument}[{i}]"), point) for i, point in enumerate(inputs)]


def _label(point: tuple[InputText, ...]) -> str:
    if len(point) == 1 and point[0].name is None:
        return format_shape(point[0].shape)
    return " ".join(f"{t.name + '=' if t.name else ''}{format_shape(t.shape)}" for t in point)


def _point_label(point: Inputs, argument: str) -> str:
    return " ".join(f"{name + '=' if name else ''}{format_shape(shape)}" for name, shape in _shapes(point, argument))


def _shapes(point: Inputs, argument: str) -> list[tuple[str | None, tuple[int, ...]]]:
    """Each input of a point, named when it is a keyword input, with its shape."""
    positional, keyword = split(point, argument)

    def shape(spec: Any) -> tuple[int, ...]:
        return tuple(spec.shape) if hasattr(spec, "shape") else tuple(spec)

    return [(None, shape(spec)) for spec in positional] + [(name, shape(spec)) for name, spec in keyword.items()]


def _input_axis(points: list[tuple[str, Inputs]], argument: str) -> tuple[str, list[float]]:
    """What x is over an input sweep, and each point's x: the product of the sizes that change from
    point to point in the first input that changes (H·W of an image, a sequence's length)."""
    shapes = [_shapes(given, argument) for _, given in points]
    if len({tuple(s) for s in shapes}) < len(shapes):
        raise InputShapeError(f"{argument}: two points have the same inputs")
    if len({tuple(name for name, _ in s) for s in shapes}) > 1 or len({len(s) for s in shapes}) > 1:
        raise InputShapeError(f"{argument}: every point needs the same inputs, named alike")
    changing = next(i for i in range(len(shapes[0])) if len({s[i][1] for s in shapes}) > 1)
    name, ranks = shapes[0][changing][0], {len(s[changing][1]) for s in shapes}
    if len(ranks) > 1:
        return f"{name or 'input'} elements", [float(math.prod(s[changing][1])) for s in shapes]
    dims = [d for d in range(ranks.pop()) if len({s[changing][1][d] for s in shapes}) > 1]
    xs = [float(math.prod(s[changing][1][d] for d in dims)) for s in shapes]
    if len(shapes[0][changing][1]) == 4 and dims == [2, 3] and name is None:
        return "pixels (H·W)", xs
    return f"{name or 'input'} size (dim{'s' if len(dims) > 1 else ''} {'·'.join(map(str, dims))})", xs


def _widths(widths: object, argument: str) -> list[float]:
    listed: list[float] = []
    for width in widths if isinstance(widths, (list, tuple)) else [widths]:
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not math.isfinite(width) \
                or not 0 < width <= MAX_WIDTH:
            raise InputShapeError(f"{argument}: width multipliers are numbers in (0, {MAX_WIDTH}], got {_brief(width)}")
        if width in listed:
            raise InputShapeError(f"{argument}: {width:g} is listed twice")
        listed.append(float(width))
    return listed


def _depths(depths: object, argument: str) -> list[int]:
    listed: list[int] = []
    for depth in depths if isinstance(depths, (list, tuple)) else [depths]:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise InputShapeError(f"{argument}: depths are whole numbers from 1, got {_brief(depth)}")
        if depth in listed:
            raise InputShapeError(f"{argument}: {depth} is listed twice")
        listed.append(depth)
    return listed


def _brief(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def sweep(model: str | Callable[..., nn.Module], *, inputs: Any = None, batches: Sequence[int] | None = None,
          widths: Sequence[float] | None = None, depths: Sequence[int] | None = None, dtype: str = "float32",
          device: str = "meta", timing: bool | TimingOptions = False, progress: bool | None = False,
          front: Front = Front.API) -> Sweep:
    """Profile ``model`` (a zoo name, an import path, or a factory taking ``width=``) at each
    setting of the one swept variable, and fit each metric's growth exponent.

    ``inputs``: ``--input`` texts with the swept groups in one input, as the command line takes
    them (``"1x3x{112,224}x{same}"``, or ``["input_ids=1x{32,64}:int64",
    "attention_mask=1x{same}:int64:ones"]``), a list of points (each a shape or what
    ``profile`` takes as ``inputs``), or one shape, fixed, while something else is swept;
    factories without a default input need it. ``depths`` take the zoo model's family at
    those depths (resnet18, resnet34, ...). ``device`` is where each point is counted, or,
    with ``timing``, timed end to end. Every argument is checked before the first point.
    Ctrl-C stops the sweep and keeps the points already profiled (``interrupted`` is set);
    a timed point Ctrl-C cut before its latency was measured is left out."""
    from costlens.models import resolve

    swept, variable, settings = _settings(inputs, batches, widths, depths, front)
    if isinstance(model, nn.Module):
        raise InputShapeError("sweep: give a zoo name, an import path or a factory (each point builds the model "
                              "afresh), not a built nn.Module")
    named_at: dict[int | None, NamedModel] = {}
    if swept == "depth":
        if not isinstance(model, str):
            raise InputShapeError(f"{_spell('depths', front)}: name a zoo model of a family of depths (resnet50, vgg16)")
        named_at = {s.depth: resolve(at_depth(model, s.depth, _spell("depths", front)))
                    for s in settings if s.depth is not None}
    if isinstance(model, str):
        named = resolve(model)
    elif callable(model):
        factory = model
        named = NamedModel(getattr(model, "__name__", "model"), lambda **options: _factory_call(factory, **options))
    else:
        raise InputShapeError(f"sweep: expected a zoo name, an import path or a factory, got {_brief(model)}")
    template = _template(named, dtype, device, timing, front)
    result = Sweep(_family(named.name) if swept == "depth" else named.name, variable, swept=swept)
    built = _built_once(named) if swept in ("input", "batch") and template.device == "meta" and not template.time \
        else None
    bar = _bar(len(settings), progress)
    try:
        for setting in settings:
            profiled = _point(named_at[setting.depth] if setting.depth is not None else named, setting, template,
                              built)
            cut = bool((profiled.timing or {}).get("interrupted"))
            if not cut or "latency_ms" in profiled.totals:  # a point Ctrl-C cut before its latency is left out
                result.points.append(Point(setting.label, setting.x, dict(profiled.totals)))
            bar.update(1)
            if cut:
                result.interrupted = True
                break
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        bar.close()
    return result


def _template(named: NamedModel, dtype: str, device: str, timing: bool | TimingOptions, front: Front) -> Request:
    """The request every point is made from, checked once: where and how it is counted and timed."""
    from costlens.request import checked

    timed = isinstance(timing, TimingOptions) or timing is True
    if not isinstance(timing, (bool, TimingOptions)):
        raise InputShapeError(f"timing: expected True, False or TimingOptions, got {_brief(timing)}")
    options = replace(timing, layers=False) if isinstance(timing, TimingOptions) else TimingOptions(layers=False)
    if timed and not isinstance(timing, TimingOptions):
        options = replace(options, device="auto" if str(device) == "meta" else str(device))
    request = Request(named, None, device="meta" if timed else device, dtype=dtype, time=timed,
                      timing=options if timed else DEFAULT_TIMING, name=named.name, front=front)
    return checked(request)


def at_depth(name: str, depth: int, argument: str = "--depth") -> str:
    """The zoo model of ``name``'s family at ``depth`` ('resnet50', 101 -> 'resnet101')."""
    from costlens.zoo import names

    found = _DEPTH_NAME.match(name)
    family = [n for n in names() if found and (m := _DEPTH_NAME.match(n)) and m["family"] == found["family"]]
    if not found or len(family) < 2:
        raise InputShapeError(f"{argument}: {name} has no family of depths in the zoo (resnet18 ... resnet152, "
                              "vgg11 ... vgg19)")
    wanted = f"{found['family']}{depth}"
    if wanted not in family:
        depths = ", ".join(sorted((n.removeprefix(found["family"]) for n in family), key=int))
        raise InputShapeError(f"{argument}: the zoo has {found['family']} at depths {depths}, not {depth}")
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


def _point(named: NamedModel, setting: _Setting, template: Request, built: nn.Module | None = None) -> Profile:
    """One setting's profile: the model (at the setting's width; ``built`` when it was built once)
    on its inputs, as the template asks (timed end to end when it is timed)."""
    from costlens.run import run

    model: nn.Module | NamedModel = built if built is not None else (
        named if setting.width is None else _at_width(named, setting.width))
    return run(replace(template, model=model, inputs=setting.inputs if setting.inputs is not None else named.input,
                       batches=() if setting.batch is None else (setting.batch,)))


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
    """'0.5,1,2' -> [0.5, 1.0, 2.0]; NaN and infinity are refused."""
    values = []
    for part in (v.strip() for v in text.split(",")):
        try:
            value = float(part)
        except ValueError:
            raise InputShapeError(f"{argument}: expected numbers separated by commas, got {_brief(part)} in "
                                  f"{_brief(text)}") from None
        if not math.isfinite(value):
            raise InputShapeError(f"{argument}: {_brief(part)} is not a finite number")
        values.append(value)
    return values


def parse_counts(text: str, argument: str, example: str = "1,2,4") -> list[int]:
    """'1,2,4' -> [1, 2, 4]; '1.5', 'inf' or 'nan' is refused, not rounded."""
    values = []
    for part in (v.strip() for v in text.split(",")):
        if not part.isascii() or not part.isdigit():
            raise InputShapeError(f"{argument}: {_brief(part)} is not a whole number (write {argument} {example})")
        values.append(int(part))
    return values
