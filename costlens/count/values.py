"""Tensor values during a meta trace: known where costlens knows them, assumed and listed where not.

On the meta device a tensor has a shape and no values. A model that reads one (``if
mask.all():``, ``.item()``, ``int(t)``, ``.tolist()``, ``torch.equal``) or runs an op whose
output shape depends on values (``nonzero``, ``masked_select``) stops a plain meta forward
("Tensor.item() cannot be called on meta tensors"); `transformers`' masking code does both.
``MetaValues`` answers them in the tracer's dispatch mode (``count/tracer.py``):

1. **Known values.** A small tensor (at most ``LIMIT`` elements) whose values costlens knows
   carries them beside it, on cpu: the inputs costlens made with a known fill (token ids are
   zeros, masks ones, ``--input NAME=SHAPE:DTYPE:FILL``), what a factory makes inside the
   forward (``arange``, ``ones``, ``full``; not ``empty`` or random ones), and the result of any
   op whose every tensor argument is known, computed on cpu. A read of a known value is
   answered exactly, and so is a data-dependent op on known inputs.
2. **Assumed values.** A read of a value costlens cannot know is answered with an assumption
   (``True`` for a truth value, 1 for an integer, 1.0 for a float, ones for a copy to a real
   device) and recorded as a ``ValueRead``: the model's file and line, the op, the value used.
   Profiles list them under every table, in JSON and on the page; ``strict`` refuses instead.
   A data-dependent op on unknown values cannot be assumed (its output's shape is the count):
   it stops the trace with one line suggesting ``--device cpu``.

An op that writes into a tensor while some of its inputs are unknown makes every known value
stale (a view of the tensor may be known elsewhere), so from then on nothing is known.
"""

from __future__ import annotations

import functools
import os
import traceback
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from costlens.errors import ModelError
from costlens.records import ValueRead

LIMIT = 1 << 16  # elements of a tensor whose values are kept beside it: a mask of 65,536 tokens (not a causal L×L one)
_VALUE = "_costlens_value"  # the attribute of a meta tensor that holds its known values, on cpu
_CPU = torch.device("cpu")
_META = torch.device("meta")
_aten = torch.ops.aten
_READS = {_aten._local_scalar_dense.default, _aten.equal.default}
_OUTSIDE = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__)))  # torch's and costlens's code


def known(tensor: torch.Tensor) -> torch.Tensor | None:
    """The values costlens knows of a meta tensor, on cpu; None when it does not know them."""
    return getattr(tensor, _VALUE, None)


def remember(tensor: torch.Tensor, value: torch.Tensor) -> None:
    """Keep ``value`` (on cpu, the tensor's shape) beside the meta ``tensor``, if it is small enough."""
    if tensor.is_meta and value.numel() <= LIMIT and tuple(value.shape) == tuple(tensor.shape):
        setattr(tensor, _VALUE, value)


class MetaValues:
    """The known values of one meta trace, and the value reads it answered."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.reads: list[ValueRead] = []
        self.trusted = True  # cleared for good once a known tensor may have been written with unknown values

    def answers(self, func: Any, kwargs: dict) -> bool:
        """Whether ``func`` reads values (a copy off meta included; one that stays on meta reads
        nothing), so that ``answer`` gives its result instead of running it."""
        if func is _aten._to_copy.default:
            return kwargs.get("device", _META) not in (_META, "meta")
        return _facts(func).reads

    def answer(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """The result of a value-reading op: computed from known values, else assumed and recorded
        (a data-dependent output shape cannot be assumed: a ``ModelError``)."""
        values = self._values(args, kwargs)
        if values is not None:
            real_args, real_kwargs = values
            result = func(*real_args, **real_kwargs)
            self._record(func, _shown(result), known=True)
            return self._back_on_meta(func, result, kwargs)
        if _facts(func).dynamic:
            try:  # many calls of such an op have a static shape (indexing with integers): torch's meta kernel knows
                return func(*args, **kwargs)
            except Exception as error:
                raise ModelError(f"{_where()} runs {_name(func)}, whose output's shape depends on tensor values that "
                                 "a meta trace does not have: count it with --device cpu (device='cpu')") from error
        assumed = _assumption(func, args, kwargs)
        self._record(func, _shown(assumed), known=False)
        return assumed

    def propagate(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        """Keep the values of ``out`` beside it when every tensor argument's values are known (or the
        op makes a tensor of known values from none); forget every value when an op writes into a
        known tensor with unknown ones."""
        if not self.trusted or _facts(func).arbitrary:
            return
        values = self._values(args, kwargs)
        if values is None:
            if _facts(func).mutates and any(known(t) is not None for t in _tensors_in(args)):
                self.trusted = False
            return
        if not _tensors_in(args) and not _tensors_in(kwargs.values()) and "device" not in kwargs:
            return  # no tensor made from known values: nothing to keep
        outs = [out] if isinstance(out, torch.Tensor) else [o for o in out if isinstance(o, torch.Tensor)] \
            if isinstance(out, (tuple, list)) else []
        if not outs or any(o.numel() > LIMIT for o in outs):
            return
        result = func(*values[0], **values[1])
        results = [result] if isinstance(result, torch.Tensor) else list(result)
        for meta, real in zip(outs, results):
            if isinstance(real, torch.Tensor):
                remember(meta, real)

    def _values(self, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        """``args`` and ``kwargs`` with every meta tensor replaced by its known values (and a meta
        device by cpu); None when one is not known."""
        if not self.trusted or not _all_known(args):
            return None  # the usual op, on a tensor of unknown values, found without copying anything
        missing = False

        def real(value: Any) -> Any:
            nonlocal missing
            if isinstance(value, torch.Tensor):
                found = known(value) if value.is_meta else value
                if found is None:
                    missing = True
                return found
            if isinstance(value, (list, tuple)):
                return type(value)(real(item) for item in value)
            if isinstance(value, torch.device) and value.type == "meta" or value == "meta":
                return _CPU
            return value

        real_args = tuple(real(a) for a in args)
        real_kwargs = {k: real(v) for k, v in kwargs.items()}
        return None if missing else (real_args, real_kwargs)

    def _back_on_meta(self, func: Any, result: Any, kwargs: dict) -> Any:
        """A read's result as the model gets it: a Python value, a real tensor copied off meta, or
        a meta tensor of the real shape with the values kept beside it."""
        if not isinstance(result, (torch.Tensor, tuple, list)) or func is _aten._to_copy.default:
            return result
        results = [result] if isinstance(result, torch.Tensor) else list(result)
        metas = []
        for real in results:
            meta = torch.empty_like(real, device=_META)
            remember(meta, real)
            metas.append(meta)
        return metas[0] if isinstance(result, torch.Tensor) else type(result)(metas)

    def _record(self, func: Any, value: str, known: bool) -> None:
        read = ValueRead(_where(), _name(func), value, known)
        if not known and self.strict:
            raise ModelError(f"{read.where} reads a tensor's value ({read.op}), which a meta trace does not have; "
                             "counting it would assume one (strict): count with --device cpu (device='cpu')")
        self.reads.append(read)


@dataclass(frozen=True)
class _ValueFacts:
    """What an op does with values, from its tags and schema (a tag lookup costs 2 µs: read once)."""

    reads: bool  # returns a Python value read from a tensor, or a tensor shaped by values
    dynamic: bool  # its output's shape depends on its inputs' values
    arbitrary: bool  # its output's values are random or uninitialised: never known
    mutates: bool  # writes into an argument


@functools.cache
def _facts(func: Any) -> _ValueFacts:
    tags = func.tags
    dynamic = torch.Tag.dynamic_output_shape in tags
    return _ValueFacts(func in _READS or dynamic, dynamic,
                       torch.Tag.nondeterministic_seeded in tags
                       or func.overloadpacket.__name__.startswith(("empty", "new_empty")),
                       func._schema.is_mutable)


def _assumption(func: Any, args: tuple, kwargs: dict) -> Any:
    """What an unknown read is taken to be: true, one, or a real tensor of ones."""
    if func is _aten._to_copy.default:
        source = args[0]
        dtype = kwargs.get("dtype") or source.dtype
        return torch.ones(source.shape, dtype=dtype, device=kwargs.get("device", _CPU))
    if func is _aten.equal.default:
        return True
    dtype = args[0].dtype
    return True if dtype == torch.bool else (1.0 if dtype.is_floating_point or dtype.is_complex else 1)


def _shown(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return str(value.item())
        return f"a {'x'.join(map(str, value.shape)) or 'scalar'} {str(value.dtype).removeprefix('torch.')} tensor"
    return repr(value)


def _name(func: Any) -> str:
    return f"aten.{func.overloadpacket.__name__}"


def _where() -> str:
    """The model's own line that read a value: the innermost frame outside torch and costlens."""
    for frame in reversed(traceback.extract_stack()):
        if not frame.filename.startswith(_OUTSIDE):
            return f"{os.path.basename(frame.filename)}:{frame.lineno}"
    return "<unknown>"


def _all_known(args: tuple | list) -> bool:
    """Every meta tensor among ``args`` (one level of lists included) has known values."""
    for value in args:
        if isinstance(value, torch.Tensor):
            unknown = value.is_meta and getattr(value, _VALUE, None) is None
        else:
            unknown = isinstance(value, (list, tuple)) and bool(value) and isinstance(value[0], torch.Tensor) \
                and not _all_known(value)
        if unknown:
            return False
    return True


def _tensors_in(values: Any) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []
    for value in values:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(t for t in value if isinstance(t, torch.Tensor))
    return found


class ReadingMode(TorchDispatchMode):
    """A dispatch mode that only answers value reads and keeps known values (a meta forward that
    counts nothing itself: the training step's forward with gradients, ``count/training.py``)."""

    def __init__(self, values: MetaValues) -> None:
        super().__init__()
        self.values = values

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # nothing is compiled here; see costlens/count/tracer.py

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if self.values.answers(func, kwargs):
            return self.values.answer(func, args, kwargs)
        out = func(*args, **kwargs)
        self.values.propagate(func, args, kwargs, out)
        return out
