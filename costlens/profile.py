"""The data a trace produces: ``LayerCost`` per module call and the ``Profile`` around them.

A Profile is plain data: it renders nothing and counts nothing. It round-trips
through JSON (schema ``costlens.profile/1``, see DESIGN.md) and gives a pandas
DataFrame with one row per record.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from costlens.errors import ProfileFileError

if TYPE_CHECKING:
    import pandas as pd

SCHEMA = "costlens.profile/1"
TOTAL_KEYS = (
    "params", "trainable_params", "buffers", "macs", "flops",
    "activation_bytes", "weight_bytes", "bytes",
)


@dataclass(frozen=True)
class LayerCost:
    """The cost of one module call; parents come before their children.

    ``depth`` counts the module calls around this one (the root is 0). It equals the
    depth of the dotted path unless a container that is never called itself (a
    ModuleList) sits between, so a record's children are the calls directly inside it.
    ``macs``, ``flops``, ``bytes`` and ``activation_bytes`` sum every op that ran
    inside the call (children included); ``params`` and ``weight_bytes`` are the
    module's own state, children included, each tensor once.
    """

    path: str
    type: str
    depth: int
    call: int
    leaf: bool
    input_shapes: list[list[int]]
    output_shapes: list[list[int]]
    params: int
    macs: int
    flops: int
    activation_bytes: int
    weight_bytes: int
    bytes: int
    formula: str | None
    ops: dict[str, int]

    @property
    def name(self) -> str:
        """The last part of the dotted path; ``<root>`` for the model itself."""
        return self.path.rsplit(".", 1)[-1] if self.path else "<root>"

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: flops per byte moved (0 when nothing moved)."""
        return self.flops / self.bytes if self.bytes else 0.0


@dataclass(frozen=True)
class Uncounted:
    """An op with no formula: how often it ran and in which module paths."""

    op: str
    count: int
    paths: list[str]


@dataclass(frozen=True)
class Profile:
    """One model's traced cost: records, totals, and what was measured where."""

    model: str
    input_shape: list[int]
    dtype: str
    device: dict[str, Any]
    environment: dict[str, str]
    convention: str
    totals: dict[str, int]
    layers: list[LayerCost]
    uncounted: list[Uncounted] = field(default_factory=list)
    timing: dict[str, Any] | None = None
    citation: str | None = None
    flops_by_op: dict[str, int] = field(default_factory=dict)

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

    def to_frame(self) -> pd.DataFrame:
        """One row per module call, in execution order; shapes and ops as strings."""
        import pandas as pd

        rows = []
        for layer in self.layers:
            row = asdict(layer)
            row["input_shapes"] = " ".join("x".join(map(str, s)) for s in layer.input_shapes)
            row["output_shapes"] = " ".join("x".join(map(str, s)) for s in layer.output_shapes)
            row["ops"] = " ".join(f"{k}:{v}" for k, v in layer.ops.items())
            row["intensity"] = layer.intensity
            rows.append(row)
        return pd.DataFrame(rows, columns=[f.name for f in fields(LayerCost)] + ["intensity"])

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract's dictionary (DESIGN.md)."""
        return {
            "schema": SCHEMA,
            "model": self.model,
            "citation": self.citation,
            "input_shape": list(self.input_shape),
            "dtype": self.dtype,
            "device": self.device,
            "environment": self.environment,
            "convention": self.convention,
            "totals": dict(self.totals),
            "layers": [asdict(layer) for layer in self.layers],
            "uncounted": [asdict(u) for u in self.uncounted],
            "flops_by_op": dict(self.flops_by_op),
            "timing": self.timing,
        }

    def to_json(self) -> str:
        """The profile as JSON text, schema ``costlens.profile/1``."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<data>") -> Profile:
        """Rebuild a profile; a foreign or unknown schema is a ``ProfileFileError``."""
        schema = data.get("schema") if isinstance(data, dict) else None
        if schema != SCHEMA:
            raise ProfileFileError(
                f"{source}: not a costlens profile (schema {schema!r}, expected {SCHEMA!r})"
            )
        try:
            layer_keys = {f.name for f in fields(LayerCost)}
            layers = [LayerCost(**{k: v for k, v in d.items() if k in layer_keys}) for d in data["layers"]]
            return cls(
                model=data["model"], input_shape=list(data["input_shape"]),
                dtype=data["dtype"], device=data["device"],
                environment=data["environment"], convention=data["convention"],
                totals={k: int(data["totals"][k]) for k in TOTAL_KEYS},
                layers=layers,
                uncounted=[Uncounted(**u) for u in data.get("uncounted", [])],
                timing=data.get("timing"), citation=data.get("citation"),
                flops_by_op={k: int(v) for k, v in data.get("flops_by_op", {}).items()},
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ProfileFileError(f"{source}: malformed costlens profile ({error})") from error

    @classmethod
    def from_json(cls, text: str, source: str = "<json>") -> Profile:
        """Parse JSON text written by ``to_json``."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ProfileFileError(f"{source}: not JSON ({error.msg}, line {error.lineno})") from error
        return cls.from_dict(data, source)


def load(path: str | Path) -> Profile:
    """Read a profile saved with ``--save`` or ``--format json``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "unreadable"
        raise ProfileFileError(f"{path}: cannot read profile ({reason})") from error
    return Profile.from_json(text, str(path))
