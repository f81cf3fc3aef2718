"""The data a trace produces: ``LayerCost`` per module call and the ``Profile`` around them.

A Profile is plain data: it counts nothing, and its display methods (``__repr__``,
``_repr_html_``, ``_repr_markdown_``, ``figures``) hand it to the report modules. It
round-trips through JSON (schema ``costlens.profile/1``, docs/architecture.md) and
gives a pandas DataFrame with one row per record. Its metric values follow the
catalogue in ``costlens/metrics.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from costlens import metrics
from costlens.errors import ProfileFileError
from costlens.units import format_shape

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

SCHEMA = "costlens.profile/1"
_STRUCTURE = ("path", "type", "depth", "call", "leaf", "input_shapes", "output_shapes", "formula", "ops")


@dataclass(frozen=True)
class LayerCost:
    """The cost of one module call; parents come before their children.

    ``depth`` counts the module calls around this one (the root is 0). It equals the
    depth of the dotted path unless a container that is never called itself (a
    ModuleList) sits between, so a record's children are the calls directly inside it.
    ``values`` holds one number per per-layer metric of the catalogue, also readable
    as attributes (``layer.macs``).
    """

    path: str
    type: str
    depth: int
    call: int
    leaf: bool
    input_shapes: list[list[int]]
    output_shapes: list[list[int]]
    formula: str | None
    ops: dict[str, int]
    values: dict[str, float]

    @classmethod
    def made(cls, path: str, type: str, depth: int, call: int, leaf: bool, input_shapes: list[list[int]],
             output_shapes: list[list[int]], formula: str | None, ops: dict[str, int],
             values: dict[str, float]) -> LayerCost:
        """The record with these fields, built without the frozen dataclass's ``__init__`` (a
        setattr through ``object`` per field): a trace makes one per module call, thousands on
        a deep network. Equal to ``LayerCost(...)`` with the same arguments."""
        record = object.__new__(cls)
        record.__dict__.update(path=path, type=type, depth=depth, call=call, leaf=leaf, input_shapes=input_shapes,
                               output_shapes=output_shapes, formula=formula, ops=ops, values=values)
        return record

    def __getattr__(self, key: str) -> Any:
        values = self.__dict__.get("values")
        if values is not None and key in values:
            return values[key]
        raise AttributeError(f"LayerCost has no attribute or metric {key!r}")

    def get(self, key: str) -> float | None:
        """The value of metric ``key``; None when this record does not carry it."""
        return self.values.get(key)

    @property
    def name(self) -> str:
        """The last part of the dotted path; ``<root>`` for the model itself."""
        return self.path.rsplit(".", 1)[-1] if self.path else "<root>"

    @property
    def label(self) -> str:
        """The path as reports show it: ``<root>`` for the model, the call number after a reused module."""
        return (self.path or "<root>") + (f" (call {self.call + 1})" if self.call else "")

    @property
    def output(self) -> str:
        """Output shapes as text: '1x64x28x28' ('-' when the call returned no tensor)."""
        return " ".join(format_shape(s) for s in self.output_shapes) or "-"

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: flops per byte moved (0 when nothing moved)."""
        moved = self.values.get("bytes", 0)
        return self.values.get("flops", 0) / moved if moved else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON data: its structure, then one key per metric."""
        data: dict[str, Any] = {key: getattr(self, key) for key in _STRUCTURE}
        data["ops"] = dict(self.ops)
        data.update(self.values)
        return data


@dataclass(frozen=True)
class Uncounted:
    """An op with no formula: how often it ran and in which module paths."""

    op: str
    count: int
    paths: list[str]


@dataclass(frozen=True)
class ValueRead:
    """A tensor value the model read during a meta trace (``costlens/count/values.py``): where (the
    model's file and line), which op, the value used, and whether it was known or assumed."""

    where: str  # "modeling_bert.py:1021"
    op: str  # "aten._local_scalar_dense"
    value: str  # "True", "1", "a 1x16 int64 tensor"
    known: bool

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "op": self.op, "value": self.value, "known": self.known}


@dataclass(frozen=True)
class InputInfo:
    """One input of the traced forward: its keyword (None when positional), shape and dtype."""

    name: str | None
    shape: list[int]
    dtype: str

    def __str__(self) -> str:
        text = f"{format_shape(self.shape)} {self.dtype}"
        return f"{self.name}={text}" if self.name else text


@dataclass(frozen=True)
class Profile:
    """One model's traced cost: records, totals, and what was measured where."""

    model: str
    inputs: list[InputInfo]
    dtype: str
    device: dict[str, Any]
    environment: dict[str, str]
    convention: str
    totals: dict[str, float]
    layers: list[LayerCost]
    uncounted: list[Uncounted] = field(default_factory=list)
    citation: str | None = None
    flops_by_op: dict[str, int] = field(default_factory=dict)
    timing: dict[str, Any] | None = None  # how measured metrics were measured, when they were
    crosscheck: dict[str, Any] | None = None  # fvcore's second opinion, with each difference explained
    value_reads: list[ValueRead] = field(default_factory=list)  # tensor values the model read on meta

    @property
    def assumed(self) -> list[ValueRead]:
        """The value reads a meta trace had to assume (its count rests on them)."""
        return [read for read in self.value_reads if not read.known]

    # --- the layer tree ---------------------------------------------------------------

    @property
    def input_shape(self) -> list[int]:
        """The first input's shape (the only one for most CNNs)."""
        return list(self.inputs[0].shape) if self.inputs else []

    @property
    def input_text(self) -> str:
        """Every input as text: '1x3x224x224' or 'x=1x16 int64, mask=1x16 bool'."""
        if len(self.inputs) == 1 and self.inputs[0].name is None and self.inputs[0].dtype == self.dtype:
            return format_shape(self.inputs[0].shape)
        return ", ".join(str(i) for i in self.inputs)

    @property
    def root(self) -> LayerCost:
        """The record of the model itself (path ``""``)."""
        return self.layers[0]

    def find(self, path: str, call: int = 0) -> LayerCost:
        """The record of module ``path``'s call number ``call``; KeyError if it never ran."""
        for layer in self.layers:
            if layer.path == path and layer.call == call:
                return layer
        raise KeyError(f"{self.model} has no layer '{path}' (call {call})")

    def children(self, index: int) -> list[int]:
        """Indices of the records directly inside record ``index``."""
        depth = self.layers[index].depth
        found = []
        for j in range(index + 1, len(self.layers)):
            d = self.layers[j].depth
            if d <= depth:
                break
            if d == depth + 1:
                found.append(j)
        return found

    def blocks(self, depth: int) -> list[LayerCost]:
        """The records from depth 1 down to ``depth``, in execution order."""
        return [layer for layer in self.layers if 1 <= layer.depth <= depth]

    def at_depth(self, depth: int) -> list[LayerCost]:
        """The records exactly at ``depth``."""
        return [layer for layer in self.layers if layer.depth == depth]

    def leaves(self) -> list[LayerCost]:
        """Leaf module calls in execution order: where the arithmetic happens."""
        return [layer for layer in self.layers if layer.leaf]

    def own(self, index: int) -> dict[str, float]:
        """Record ``index``'s own cost: its summed metrics less its direct children's
        (the residual add of a block, the functional ops of a model's forward)."""
        keys = [m.key for m in metrics.per_layer() if m.rollup is metrics.Rollup.CALLS]
        record = self.layers[index]
        own = {k: record.values[k] for k in keys if k in record.values}
        for child in self.children(index):
            for k in own:
                own[k] -= self.layers[child].values.get(k, 0)
        for k, value in own.items():  # a measured sum less its parts leaves float rounding, not a time
            if isinstance(value, float) and abs(value) <= 1e-9 * abs(record.values[k]):
                own[k] = 0.0
        return own

    def own_record(self, index: int) -> LayerCost | None:
        """Record ``index``'s own ops as a row of their own, named ``(self)``: what its
        forward ran outside any child call (the model's functional ops, a residual add,
        Inception's concatenation) and the parameters it uses directly. None for a leaf,
        or when what ran outside its children costs nothing (views only)."""
        record = self.layers[index]
        children = self.children(index)
        if not children:
            return None
        values: dict[str, float] = dict(self.own(index))
        for metric in metrics.per_layer():
            if metric.rollup is metrics.Rollup.STATE and metric.key in record.values:
                inside = sum(self.layers[c].values.get(metric.key, 0) for c in children)
                values[metric.key] = max(record.values[metric.key] - inside, 0)
        ops = dict(record.ops)
        for child in children:
            for op, count in self.layers[child].ops.items():
                ops[op] = ops.get(op, 0) - count
        ops = {op: count for op, count in ops.items() if count > 0}
        if not any(values.values()):
            return None  # views only (a flatten): nothing to show
        ordered = {m.key: values[m.key] for m in metrics.per_layer() if m.key in values}
        return LayerCost(path=f"{record.path}.(self)" if record.path else "(self)", type=record.type,
                         depth=record.depth + 1, call=record.call, leaf=True, input_shapes=[], output_shapes=[],
                         formula=record.formula, ops=ops, values=ordered)

    def rows(self, depth: int) -> list[LayerCost]:
        """What a table down to ``depth`` shows: the records from depth 1 to ``depth`` in
        execution order, and after the last child of each parent shown, the parent's
        ``own_record`` (when it has one), so that each level adds up to its parent."""
        shown: list[LayerCost] = []
        opened: list[int] = []  # parents whose children are shown, innermost last

        def close(level: int) -> None:
            while opened and self.layers[opened[-1]].depth >= level:
                own = self.own_record(opened.pop())
                if own is not None:
                    shown.append(own)

        for index, layer in enumerate(self.layers):
            if layer.depth > depth:
                continue
            close(layer.depth)
            if layer.depth >= 1:
                shown.append(layer)
            if layer.depth < depth and not layer.leaf:
                opened.append(index)
        close(0)
        return shown

    def useful_depth(self, minimum: int = 3) -> int:
        """The shallowest depth at which at least ``minimum`` records carry MACs: 1 for
        ResNet's stages or Inception's branches, 2 for VGG's layers under ``features``."""
        deepest = max(layer.depth for layer in self.layers)
        for depth in range(1, deepest + 1):
            if sum(1 for layer in self.at_depth(depth) if layer.values.get("macs")) >= minimum:
                return depth
        return 1

    def trunk(self, minimum: int = 5) -> list[LayerCost]:
        """The network's main path: the shallowest level with at least ``minimum`` calls
        that output a 4-d feature map (ResNet's stages, GoogLeNet's modules, VGG's layers)."""
        deepest = max(layer.depth for layer in self.layers)
        for depth in range(1, deepest + 1):
            rows = [layer for layer in self.at_depth(depth) if layer.output_shapes and len(layer.output_shapes[0]) == 4]
            if len(rows) >= minimum:
                return rows
        return [layer for layer in self.leaves() if layer.output_shapes and len(layer.output_shapes[0]) == 4]

    # --- exports ----------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """One row per module call, in execution order; shapes and ops as strings."""
        import pandas as pd

        keys = [m.key for m in metrics.per_layer()]
        rows = []
        for layer in self.layers:
            row: dict[str, Any] = {key: getattr(layer, key) for key in _STRUCTURE}
            row["input_shapes"] = " ".join(format_shape(s) for s in layer.input_shapes)
            row["output_shapes"] = " ".join(format_shape(s) for s in layer.output_shapes)
            row["ops"] = " ".join(f"{k}:{v}" for k, v in layer.ops.items())
            row.update({key: layer.values.get(key) for key in keys})
            row["intensity"] = layer.intensity
            rows.append(row)
        return pd.DataFrame(rows, columns=[*_STRUCTURE, *keys, "intensity"])

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract's dictionary (docs/architecture.md)."""
        return {
            "schema": SCHEMA,
            "model": self.model,
            "citation": self.citation,
            "input_shape": self.input_shape,
            "inputs": [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in self.inputs],
            "dtype": self.dtype,
            "device": self.device,
            "environment": self.environment,
            "convention": self.convention,
            "totals": dict(self.totals),
            "layers": [layer.to_dict() for layer in self.layers],
            "uncounted": [{"op": u.op, "count": u.count, "paths": list(u.paths)} for u in self.uncounted],
            "flops_by_op": dict(self.flops_by_op),
            "timing": self.timing,
            "crosscheck": self.crosscheck,
            "value_reads": [read.to_dict() for read in self.value_reads],
        }

    def to_json(self) -> str:
        """The profile as JSON text, schema ``costlens.profile/1``."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<data>") -> Profile:
        """Rebuild a profile; a foreign or unknown schema is a ``ProfileFileError``."""
        schema = data.get("schema") if isinstance(data, dict) else None
        if schema != SCHEMA:
            raise ProfileFileError(f"{source}: not a costlens profile (schema {schema!r}, expected {SCHEMA!r})")
        try:
            return cls._from_checked(data)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ProfileFileError(f"{source}: malformed costlens profile ({error})") from error

    @classmethod
    def _from_checked(cls, data: dict[str, Any]) -> Profile:
        layer_keys = [m.key for m in metrics.per_layer()]
        layers = [
            LayerCost(**{key: d[key] for key in _STRUCTURE},
                      values={key: d[key] for key in layer_keys if key in d})
            for d in data["layers"]
        ]
        inputs = data.get("inputs") or [{"name": None, "shape": data["input_shape"], "dtype": data["dtype"]}]
        return cls(
            model=data["model"], inputs=[InputInfo(i["name"], list(i["shape"]), i["dtype"]) for i in inputs],
            dtype=data["dtype"], device=data["device"],
            environment=data["environment"], convention=data["convention"],
            totals={key: data["totals"][key] for key in metrics.all_keys() if key in data["totals"]},
            layers=layers,
            uncounted=[Uncounted(u["op"], u["count"], list(u["paths"])) for u in data.get("uncounted", [])],
            citation=data.get("citation"),
            flops_by_op={k: int(v) for k, v in data.get("flops_by_op", {}).items()},
            timing=data.get("timing"),
            crosscheck=data.get("crosscheck"),
            value_reads=[ValueRead(r["where"], r["op"], r["value"], r["known"]) for r in data.get("value_reads", [])],
        )

    @classmethod
    def from_json(cls, text: str, source: str = "<json>") -> Profile:
        """Parse JSON text written by ``to_json``."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ProfileFileError(f"{source}: not JSON ({error.msg}, line {error.lineno})") from error
        return cls.from_dict(data, source)

    # --- display ----------------------------------------------------------------------

    def figures(self) -> dict[str, go.Figure]:
        """The page's plotly figures by id ('macs-bars', 'sunburst', ...)."""
        from costlens.report.figures import profile_figures

        return dict(profile_figures(self))

    def __repr__(self) -> str:
        totals = ", ".join(f"{m.key}={m.short(self.totals.get(m.key))}" for m in metrics.columns()[:3])
        return (f"<Profile {self.model!r} input {self.input_text} {self.dtype} on {self.device.get('type')}: "
                f"{totals}; {len(self.layers)} module calls>")

    def _repr_markdown_(self) -> str:
        from costlens.report.profile_text import markdown

        return markdown(self, self.useful_depth())

    def _repr_html_(self) -> str:
        from costlens.report.html import profile_fragment

        return profile_fragment(self, self.useful_depth())


def load(path: str | Path) -> Profile:
    """Read a profile saved with ``--save`` or ``--format json``: the file, its JSON and
    every field are checked first (``costlens/validate.py``), so a bad file is one error
    naming the first bad field."""
    from costlens.validate import load_profile_data

    return Profile.from_dict(load_profile_data(path), str(path))
