"""Cost budgets: rules read from a TOML file, checked against traced profiles.

The file (read with the standard library's tomllib)::

    rules = [
      "conv5x5.macs == 120,422,400",                              # absolute, exact
      "resnet50.params <= 25.6M",                                 # absolute, human number
      "inception.macs <= 0.45 * inception-naive.macs",            # relative between models
      "inception:branch3.macs <= 0.11 * inception-naive:branch3.macs",  # block level
      "mynet.macs <= 105% * mynet-base.macs",                     # grows by at most 5%
    ]

    [models]                       # names that are not zoo names, or zoo models at another input
    mynet = { import = "mypkg.models:build_net", input = "1x3x64x64" }
    mynet-base = { profile = "baselines/mynet.json" }   # saved with profile --save; relative to this file
    vgg16-448 = { zoo = "vgg16", input = "1x3x448x448" }

A reference is ``MODEL[:BLOCK].METRIC``; the metric follows the last dot, the block
(a dotted module path) follows the colon. Counted metrics may have absolute limits.
Measured metrics vary between machines, so they are accepted only as ratios of two
models measured in the same run, and only those ``check`` measures: each model timed
end to end (``latency_ms``, ``throughput``, ``peak_memory_bytes``), not per layer or as
a training step.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from costlens import metrics
from costlens.errors import CostlensError
from costlens.records import Profile, load
from costlens.sanitize import terminal_text
from costlens.units import InputText, parse_human, parse_input

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, "==": operator.eq, ">=": operator.ge, ">": operator.gt,
}
_RULE = re.compile(r"^\s*(?P<left>\S+)\s*(?P<op><=|>=|==|<|>|=<|=>|!=|=)\s*(?P<right>.+?)\s*$")
_SCALED = re.compile(r"^(?P<factor>[0-9.,_]+%?)\s*\*\s*(?P<ref>\S+)$")
# Limits and factors at or beyond this are no budget: larger than any count a profile holds.
LIMIT_BOUND = 10**30
LIMIT_BOUND_TEXT = "10**30"
# A budget is a few hundred lines; a file beyond this is something else.
MAX_BUDGET_BYTES = 16 * 2**20


class BudgetFileError(CostlensError):
    """The budget file is missing or wrong: the message names the file and line."""


@dataclass(frozen=True)
class Reference:
    """``MODEL[:BLOCK].METRIC`` in a rule."""

    model: str
    block: str | None
    metric: str

    def __str__(self) -> str:
        return f"{self.model}{':' + self.block if self.block else ''}.{self.metric}"


@dataclass(frozen=True)
class Rule:
    """``left OP limit`` where the limit is a number or ``factor × reference``."""

    text: str
    line: int
    left: Reference
    op: str
    number: int | None = None
    factor: float = 1.0
    right: Reference | None = None


@dataclass(frozen=True)
class ModelSpec:
    """How to obtain one model's profile: a zoo name or import path (with input), or a file."""

    alias: str
    spec: str | None = None
    input: tuple[int, ...] | tuple[InputText, ...] | None = None  # a shape, or inputs as --input takes them
    profile: str | None = None
    members: tuple[str, ...] | None = None  # an ensemble of these models (costlens/ensemble.py)
    crops: int = 1  # the ensemble's crops per image
    apply: tuple[str, ...] = ()  # convolutions rewritten first, 'PATH=ALTERNATIVE' (costlens/alternatives.py)

    def request(self) -> Any:
        """The ``Request`` (``costlens/request.py``) that profiles this model (not a saved profile)."""
        from costlens.inputs import from_texts
        from costlens.request import Request

        given: Any = self.input
        if given and not isinstance(given[0], int):
            given = from_texts(given)
        if self.members is not None:
            return Request(self.members[0], given, ensemble=self.members, crops=self.crops)
        return Request(self.spec or self.alias, given, apply=self.apply)


@dataclass(frozen=True)
class Verdict:
    """One rule's outcome: what was measured against what limit, and by what margin."""

    rule: Rule
    measured: float
    limit: float
    passed: bool

    @property
    def margin(self) -> float | None:
        """Headroom as a fraction of the limit: positive while the rule holds."""
        if not self.limit:
            return None
        if self.rule.op in ("<=", "<"):
            return (self.limit - self.measured) / self.limit
        if self.rule.op in (">=", ">"):
            return (self.measured - self.limit) / self.limit
        return -abs(self.measured - self.limit) / self.limit


@dataclass(frozen=True)
class Budget:
    """A parsed budget file."""

    path: str
    models: dict[str, ModelSpec]
    rules: list[Rule]


def _fail(path: str, line: int | None, message: str) -> BudgetFileError:
    return BudgetFileError(f"{path}{f':{line}' if line else ''}: {message}")


def _line_of(text: str, needle: str, start: int = 0) -> tuple[int, int]:
    """1-based line of ``needle`` in ``text`` at or after offset ``start``, and its offset."""
    at = text.find(needle, start)
    if at < 0:
        return 0, start
    return text.count("\n", 0, at) + 1, at + len(needle)


def parse_reference(text: str) -> tuple[str, str | None, str]:
    """'inception:branch3.macs' -> ('inception', 'branch3', 'macs')."""
    head, dot, metric = text.rpartition(".")
    if not dot or not head or not metric:
        raise ValueError(f"'{text}' is not MODEL[:BLOCK].METRIC")
    model, colon, block = head.partition(":")
    if colon and not block:
        raise ValueError(f"'{text}' has an empty block after ':'")
    return model, (block or None), metric


class _BeyondBound(ValueError):
    """A limit or factor that parses, but beyond ``LIMIT_BOUND``."""


def _factor(text: str) -> float:
    """'0.45' -> 0.45; '105%' -> 1.05; a factor too large to mean anything is a ValueError."""
    plain = text.replace(",", "").replace("_", "")
    factor = float(plain[:-1]) / 100 if plain.endswith("%") else float(plain)
    if not math.isfinite(factor) or factor >= LIMIT_BOUND:
        raise _BeyondBound(f"the factor {_brief(text)} is beyond {LIMIT_BOUND_TEXT}")
    return factor


def _brief(text: str, width: int = 40) -> str:
    return text if len(text) <= width else f"{text[:width - 3]}... ({len(text):,} characters)"


def _limit(text: str) -> int:
    """An absolute limit: '12.4M' -> 12400000; ValueError for what is not a number below LIMIT_BOUND."""
    try:
        number = parse_human(text)
    except OverflowError:  # more digits than a float holds
        number = LIMIT_BOUND
    if number >= LIMIT_BOUND:
        raise _BeyondBound(f"the limit {_brief(text)} is beyond {LIMIT_BOUND_TEXT}, larger than any count")
    return number


def _metric(path: str, line: int, key: str, absolute: bool) -> None:
    known = metrics.all_keys()
    if key not in known:
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; choose from {', '.join(known)}"
        raise _fail(path, line, f"unknown metric '{key}'{hint}")
    if absolute and metrics.get(key).kind is metrics.Kind.MEASURED:
        raise _fail(path, line, f"'{key}' is measured, and absolute measurements on shared machines are noise: "
                                f"compare two models in one run instead (a.{key} <= 0.5 * b.{key})")


# The measured metrics ``check`` measures: each model is timed end to end (no per-layer replay, no
# training step), so per-layer times, the roofline and a step's times would be read as 0 or missing.
CHECKED_MEASURED = ("latency_ms", "throughput", "peak_memory_bytes")


def _measurable(path: str, line: int, ref: Reference) -> None:
    """A measured metric in a rule is one ``check`` measures, and of the whole model."""
    if not _measured(ref):
        return
    if ref.metric not in CHECKED_MEASURED:
        raise _fail(path, line, f"'{ref.metric}' is not measured by check: it times each model end to end "
                                f"({', '.join(CHECKED_MEASURED)})")
    if ref.block is not None:
        raise _fail(path, line, f"'{ref}': check times whole models, not blocks: write {ref.model}.{ref.metric}")


def _measured(ref: Reference) -> bool:
    return metrics.get(ref.metric).kind is metrics.Kind.MEASURED


def parse_rule(path: str, line: int, text: str) -> Rule:
    """One rule string; every mistake is a ``BudgetFileError`` naming the line."""
    match = _RULE.match(text)
    if not match:
        raise _fail(path, line, f"cannot read rule '{text}': write MODEL[:BLOCK].METRIC <= LIMIT")
    op = match["op"]
    if op not in OPERATORS:
        raise _fail(path, line, f"bad operator '{op}' in '{text}': use one of {', '.join(OPERATORS)}")
    try:
        left = Reference(*parse_reference(match["left"]))
    except ValueError as error:
        raise _fail(path, line, str(error)) from None
    right_text = match["right"]
    scaled = _SCALED.match(right_text)
    if scaled or re.match(r"^[A-Za-z]", right_text):
        ref_text = scaled["ref"] if scaled else right_text
        try:
            right = Reference(*parse_reference(ref_text))
            factor = _factor(scaled["factor"]) if scaled else 1.0
        except ValueError as error:
            raise _fail(path, line, f"cannot read limit '{_brief(right_text)}': {error}") from None
        _metric(path, line, left.metric, absolute=False)
        _metric(path, line, right.metric, absolute=False)
        _measurable(path, line, left)
        _measurable(path, line, right)
        if _measured(left) != _measured(right):
            raise _fail(path, line, f"'{text}' compares a measured metric with a counted one: "
                                    "compare measured with measured (a.latency_ms <= 0.5 * b.latency_ms)")
        return Rule(text, line, left, op, factor=factor, right=right)
    try:
        number = _limit(right_text)
    except _BeyondBound as error:
        raise _fail(path, line, str(error)) from None
    except ValueError:
        raise _fail(path, line, f"unparsable number '{_brief(right_text)}' (write 12400000, 12,400,000, 12.4M or 1.5G)") from None
    _metric(path, line, left.metric, absolute=True)
    return Rule(text, line, left, op, number=number)


_SPEC_KEYS = {"zoo": "a zoo name", "import": "an import path package.module:factory", "profile": "a saved profile's path",
              "input": "a shape like \"1x3x224x224\", or a list of named inputs like [\"input_ids=1x128:int64\", "
                       "\"attention_mask=1x128:int64:ones\"]", "ensemble": "a number of copies or a list of model names",
              "crops": "a number of crops per image",
              "apply": "a list of rewrites [\"PATH=ALTERNATIVE\", ...] (see costlens whatif)"}


def _model_specs(path: str, text: str, table: object) -> dict[str, ModelSpec]:
    if not isinstance(table, dict):
        raise _fail(path, _line_of(text, "[models]")[0], "[models] must be a table of name = { ... }")
    from costlens.zoo import names

    zoo = set(names())
    specs = {}
    for alias, entry in table.items():
        line = _key_line(text, alias)
        _check_alias(path, line, alias, entry, zoo)
        sources = {"zoo", "import", "profile"} & set(entry) if isinstance(entry, dict) else set()
        if not isinstance(entry, dict) or len(sources) > 1 or not (sources or isinstance(entry.get("ensemble"), list)):
            raise _fail(path, line, f"model '{alias}' needs exactly one of zoo = ..., import = ... or profile = ... "
                                    "(or an ensemble = [list of models])")
        unknown = set(entry) - set(_SPEC_KEYS)
        if unknown:
            raise _fail(path, line, f"model '{alias}' has unknown key(s) {', '.join(sorted(unknown))}")
        members, crops = _ensemble(path, line, alias, entry)
        applied = _applied(path, line, alias, entry)
        for key, value in entry.items():
            if key in ("ensemble", "crops", "apply") or (key == "input" and isinstance(value, list)):
                continue
            if not isinstance(value, str) or not value.strip():
                shown = f"{type(value).__name__} {_brief(repr(value))}" if not isinstance(value, str) else "an empty string"
                raise _fail(path, line, f"model '{alias}': {key} must be {_SPEC_KEYS[key]}, got {shown}")
        shape = _inputs(path, line, alias, entry["input"]) if "input" in entry else None
        if "import" in entry and shape is None:
            raise _fail(path, line, f"model '{alias}' imports {entry['import']} and needs input = \"1x3x224x224\"")
        if members is not None and "profile" in entry:
            raise _fail(path, line, f"model '{alias}': an ensemble is traced from models, not read from a profile")
        if applied and (members is not None or "profile" in entry):
            raise _fail(path, line, f"model '{alias}': apply rewrites a zoo or import model, not "
                                    f"{'an ensemble' if members is not None else 'a saved profile'}")
        specs[alias] = ModelSpec(alias, entry.get("zoo") or entry.get("import"), shape, entry.get("profile"),
                                 members, crops, applied)
    return specs


def _inputs(path: str, line: int, alias: str, value: object) -> tuple[int, ...] | tuple[InputText, ...]:
    """``input = "1x3x224x224"`` (a shape) or ``input = ["input_ids=1x128:int64", ...]`` (inputs as
    ``--input`` takes them: ``[NAME=]SHAPE[:DTYPE[:FILL]]``)."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
        raise _fail(path, line, f"model '{alias}': input must be {_SPEC_KEYS['input']}, got {_brief(repr(value))}")
    try:
        parsed = tuple(parse_input(text, f"model '{alias}': input") for text in texts)
    except CostlensError as error:
        raise _fail(path, line, str(error)) from None
    if isinstance(value, str) and parsed[0].name is None and parsed[0].dtype is None and parsed[0].fill is None:
        return parsed[0].shape
    return parsed


def _ensemble(path: str, line: int, alias: str, entry: dict) -> tuple[tuple[str, ...] | None, int]:
    """``ensemble = 7`` (copies of the entry's model) or ``ensemble = ["a", "b"]``, and ``crops = 10``."""
    from costlens.request import MAX_CROPS, MAX_MEMBERS

    value, crops = entry.get("ensemble"), entry.get("crops", 1)
    if isinstance(crops, bool) or not isinstance(crops, int) or not 1 <= crops <= MAX_CROPS:
        raise _fail(path, line, f"model '{alias}': crops must be a whole number from 1 to {MAX_CROPS}, "
                                f"got {_brief(repr(crops))}")
    if value is None:
        return (None, 1) if "crops" not in entry else ((entry.get("zoo") or entry.get("import") or alias,), crops)
    source = entry.get("zoo") or entry.get("import")
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_MEMBERS and source:
        return (source,) * value, crops
    if isinstance(value, list) and value and len(value) <= MAX_MEMBERS and all(
            isinstance(m, str) and m.strip() for m in value):
        return tuple(m.strip() for m in value), crops
    raise _fail(path, line, f"model '{alias}': ensemble must be a number of copies (1 to {MAX_MEMBERS}) of its "
                            f"zoo or import model, or a list of model names, got {_brief(repr(value))}")


def _applied(path: str, line: int, alias: str, entry: dict) -> tuple[str, ...]:
    """``apply = ["PATH=ALTERNATIVE", ...]``: each rewrite checked now, its path once the model is built."""
    if "apply" not in entry:
        return ()
    value = entry["apply"]
    if not isinstance(value, list) or not value or not all(isinstance(text, str) for text in value):
        raise _fail(path, line, f"model '{alias}': apply must be {_SPEC_KEYS['apply']}, got {_brief(repr(value))}")
    from costlens.alternatives import parse_applied

    try:
        return tuple(f"{at}={spec}" for at, spec in parse_applied(value, f"model '{alias}': apply").items())
    except CostlensError as error:
        raise _fail(path, line, str(error)) from None


def _check_alias(path: str, line: int, alias: str, entry: object, zoo: set[str]) -> None:
    """An alias is a plain name that a rule can reference, and never a zoo name: a rule
    'conv5x5.macs' must not silently measure another model."""
    if not alias or terminal_text(alias) != alias or any(c.isspace() or c == ":" for c in alias):
        raise _fail(path, line, f"model alias {alias!r} must be a name without spaces, ':' or control characters")
    if alias in zoo:
        same = isinstance(entry, dict) and entry.get("zoo") == alias and set(entry) == {"zoo"}
        if not same:
            raise _fail(path, line, f"model alias '{alias}' is the zoo's {alias}: a rule naming it would measure "
                                    f"another model; give it another name (e.g. {alias}-mine)")


def _key_line(text: str, key: str) -> int:
    """1-based line where ``key = ...`` is written under [models] (quoted or bare), or [models]'s own line."""
    header = re.search(r"^[ \t]*\[[ \t]*models[ \t]*\]", text, re.M)
    start = header.end() if header else 0
    for found in _KEY_AT_LINE_START.finditer(text, start):
        try:
            decoded = next(iter(tomllib.loads(f"{found['key']} = 0")))
        except (tomllib.TOMLDecodeError, StopIteration):
            continue
        if decoded == key:
            return text.count("\n", 0, found.start("key")) + 1
    return text.count("\n", 0, header.start()) + 1 if header else 0


_KEY_AT_LINE_START = re.compile(r"""^[ \t]*(?P<key>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[A-Za-z0-9_-]+)[ \t]*=""", re.M)


def _string_end(text: str, at: int) -> int:
    """Offset just past the TOML string that opens at ``at`` (basic or literal, one-line or multi-line)."""
    quote = text[at]
    closing = quote * 3 if text.startswith(quote * 3, at) else quote
    i = at + len(closing)
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text.startswith(closing, i):
            end = i + len(closing)
            while len(closing) == 3 and end < len(text) and text[end] == quote and end - i < 5:
                end += 1  # up to two quotes may end a multi-line string's content
            return end
        i += 1
    return len(text)


def _rule_lines(text: str, rules: list[str]) -> list[int] | None:
    """The line of each string in the ``rules = [ ... ]`` array, in order, read from the
    TOML text itself: comments and other keys that contain a rule's text are skipped.
    None when the text does not yield exactly these rules (then lines are searched)."""
    key = re.search(r"""^[ \t]*(?:rules|"rules"|'rules')[ \t]*=[ \t]*\[""", text, re.M)
    if not key:
        return None
    lines: list[int] = []
    at = key.end()
    line, counted = text.count("\n", 0, at) + 1, at  # the line at offset `counted`, kept as the scan advances
    while at < len(text) and text[at] != "]":
        char = text[at]
        if char == "#":
            newline = text.find("\n", at)
            at = len(text) if newline < 0 else newline
        elif char in "\"'":
            end = _string_end(text, at)
            try:
                value = tomllib.loads(f"v = {text[at:end]}")["v"]
            except tomllib.TOMLDecodeError:
                return None
            if len(lines) >= len(rules) or value != rules[len(lines)]:
                return None
            line, counted = line + text.count("\n", counted, at), at
            lines.append(line)
            at = end
        else:
            at += 1
    return lines if len(lines) == len(rules) else None


def _read_text(name: str) -> str:
    """The budget file's text, read with a bound (``files.read_text``)."""
    from costlens.files import Unreadable, read_text

    try:
        return read_text(name, MAX_BUDGET_BYTES, "budget file", "a budget is a TOML file")
    except Unreadable as why:
        if why.missing:
            raise _fail(name, None, "no such budget file (create it, or name another: costlens check FILE)") from None
        raise _fail(name, None, str(why)) from None


def load_budget(path: str | Path) -> Budget:
    """Read and validate a budget file (models resolve later, in ``check``)."""
    name = str(path)
    text = _read_text(name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"\(at line (\d+)", str(error))
        raise _fail(name, int(found.group(1)) if found else None, f"not valid TOML: {error}") from None
    unknown = set(data) - {"models", "rules"}
    if unknown:
        raise _fail(name, _line_of(text, sorted(unknown)[0])[0], f"unknown key(s) {', '.join(sorted(unknown))}: "
                                                                  "a budget file has [models] and rules = [...]")
    models_table = data.get("models", {})
    if "rules" not in data and isinstance(models_table, dict) and isinstance(models_table.get("rules"), list):
        # `rules = [...]` written below [models] lands inside that table in TOML; it
        # cannot be a model (those are tables), so take it as the rules.
        data["rules"] = models_table.pop("rules")
    rules_data = data.get("rules")
    if not isinstance(rules_data, list) or not rules_data or not all(isinstance(r, str) for r in rules_data):
        raise _fail(name, _line_of(text, "rules")[0], "rules must be a non-empty list of strings")
    models = _model_specs(name, text, models_table)
    lines = _rule_lines(text, rules_data)
    if lines is None:
        lines, offset = [], 0
        for rule_text in rules_data:
            line, offset = _line_of(text, rule_text, offset)
            lines.append(line)
    rules = [parse_rule(name, line, rule_text) for line, rule_text in zip(lines, rules_data)]
    _check_models_known(name, models, rules)
    return Budget(name, models, rules)


def _check_models_known(path: str, models: dict[str, ModelSpec], rules: list[Rule]) -> None:
    """Every model a rule names is a zoo name or a [models] alias: checked before any tracing."""
    from costlens.zoo import names

    known = set(names()) | set(models)
    for rule in rules:
        for ref in (rule.left, rule.right):
            if ref is not None and ref.model not in known:
                close = difflib.get_close_matches(ref.model, sorted(known), n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise _fail(path, rule.line, f"unknown model '{ref.model}'{hint} (an import path needs a [models] alias)")


class _Profiles:
    """Profiles of the models a budget names, each traced (or read) once; those a rule names with a
    measured metric timed together (interleaved) before any rule is evaluated."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.found: dict[str, Profile] = {}

    def get(self, rule: Rule, model: str) -> Profile:
        if model not in self.found:
            self.found[model] = self._count(rule, model, timed=False)[1]
        return self.found[model]

    def time_measured(self) -> None:
        """Time, in one interleaved run, every model that a rule names with a measured metric."""
        from costlens.run import time_counted

        first: dict[str, Rule] = {}
        for rule in self.budget.rules:
            for ref in (rule.left, rule.right):
                if ref is not None and _measured(ref):
                    first.setdefault(ref.model, rule)
        if not first:
            return
        for model, rule in first.items():
            spec = self.budget.models.get(model)
            if spec is not None and spec.profile is not None:
                raise _fail(self.budget.path, rule.line, f"model '{model}' is a saved profile: measured metrics "
                                                         "compare models timed in this run")
        counted = {model: self._count(rule, model, timed=True) for model, rule in first.items()}
        try:
            timed = time_counted([request for request, _ in counted.values()], [p for _, p in counted.values()])
        except CostlensError as error:
            raise _fail(self.budget.path, next(iter(first.values())).line, str(error)) from None
        if any((profile.timing or {}).get("interrupted") for profile in timed):
            raise KeyboardInterrupt  # a rule must not pass or fail on a measurement Ctrl-C cut short
        self.found.update(zip(first, timed))

    def _count(self, rule: Rule, model: str, timed: bool) -> tuple[Any, Profile]:
        """The request of ``model`` (a saved profile is read: no request) and its counted profile."""
        from dataclasses import replace

        from costlens.request import checked
        from costlens.run import count
        from costlens.timing.options import TimingOptions

        spec = self.budget.models.get(model)
        try:
            if spec is not None and spec.profile is not None:
                # a saved profile, relative to the budget file (an absolute path stays absolute)
                return None, load(Path(self.budget.path).parent / spec.profile)
            request = spec.request() if spec is not None else _zoo_request(model)
            if timed:
                request = replace(request, time=True, timing=TimingOptions(layers=False))
            request = checked(request)
            return request, count(request)
        except CostlensError as error:
            raise _fail(self.budget.path, rule.line, f"model '{model}': {error}") from None


def _zoo_request(model: str) -> Any:
    from costlens.request import Request

    return Request(model)


def _value(profiles: _Profiles, rule: Rule, ref: Reference) -> float:
    budget = profiles.budget
    result = profiles.get(rule, ref.model)
    metric = metrics.get(ref.metric)
    if ref.block is None:
        if ref.metric not in result.totals:
            raise _fail(budget.path, rule.line, f"{ref.model} has no {metric.label.lower()} ({ref.metric}) in its profile")
        return result.totals[ref.metric]
    records = [layer for layer in result.layers if layer.path == ref.block]
    if not records:
        paths = [layer.path for layer in result.layers if layer.path]
        close = difflib.get_close_matches(ref.block, paths, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise _fail(budget.path, rule.line, f"{ref.model} has no block '{ref.block}'{hint}")
    if not metric.per_layer:
        raise _fail(budget.path, rule.line, f"{ref.metric} is a model total, not a block's")
    if metric.rollup is metrics.Rollup.STATE:
        return records[0].values[ref.metric]  # the module's state, the same on every call
    return sum(r.values.get(ref.metric, 0) for r in records)


def check(budget: Budget) -> list[Verdict]:
    """Evaluate every rule; models are profiled on meta, each once; models named with a
    measured metric are timed first, all together (interleaved), on cuda if available, else cpu."""
    profiles = _Profiles(budget)
    profiles.time_measured()
    verdicts = []
    for rule in budget.rules:
        measured = _value(profiles, rule, rule.left)
        if rule.right is not None:
            limit = rule.factor * _value(profiles, rule, rule.right)
        else:
            limit = rule.number or 0
        verdicts.append(Verdict(rule, measured, limit, OPERATORS[rule.op](measured, limit)))
    return verdicts
