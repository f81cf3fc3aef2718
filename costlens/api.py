"""``profile()``: build a model, trace it once, and return its ``Profile``."""

from __future__ import annotations

import platform
from collections.abc import Sequence

import torch
from torch import nn

from costlens import __version__
from costlens.count.formulas import CONVENTION
from costlens.count.tracer import trace
from costlens.errors import CostlensError, InputShapeError, ModelError
from costlens.models import resolve
from costlens.profile import Profile, Uncounted

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def environment() -> dict[str, str]:
    """Versions that a reader of a profile needs to reproduce it."""
    return {"costlens": __version__, "torch": torch.__version__, "python": platform.python_version()}


def input_shape_for(default: Sequence[int] | None, given: Sequence[int] | None,
                    batch: int | None, name: str) -> tuple[int, ...]:
    """The input shape to trace: ``given`` or the model's default, with ``batch`` applied."""
    shape = tuple(given) if given else (tuple(default) if default else None)
    if shape is None:
        raise InputShapeError(f"{name} has no default input: give one, e.g. --input 1x3x224x224")
    if batch is not None:
        if batch < 1:
            raise InputShapeError(f"batch size must be at least 1, got {batch}")
        shape = (batch,) + shape[1:]
    return shape


def build(spec: str | nn.Module, device: torch.device) -> tuple[nn.Module, str, tuple[int, ...] | None, str | None]:
    """The model, its display name, default input and citation.

    For a meta trace the zoo (and any factory that allows it) builds on the meta
    device, so no weights are allocated at all.
    """
    if isinstance(spec, nn.Module):
        return spec, type(spec).__name__, None, None
    source = resolve(spec)
    if device.type == "meta":
        try:
            with torch.device("meta"):
                return source.build(), source.name, source.input, source.cite
        except Exception:  # a factory that reads real values: build it plainly below
            pass
    real = torch.device("cpu") if device.type == "meta" else device  # the trace swaps in meta stand-ins
    try:
        with real:
            return source.build(), source.name, source.input, source.cite
    except CostlensError:
        raise
    except Exception as error:
        raise ModelError(f"cannot build {source.name}: {type(error).__name__}: {error}") from error


def profile(
    model: str | nn.Module,
    input_shape: Sequence[int] | None = None,
    *,
    batch: int | None = None,
    device: str = "meta",
    dtype: str = "float32",
    train: bool = False,
) -> Profile:
    """Trace ``model`` (a zoo name, ``pkg.module:factory`` or an nn.Module) once.

    ``device="meta"`` (the default) counts without allocating weights or doing
    arithmetic; ``"cpu"``/``"cuda"`` run real tensors and give the same counts.
    """
    if dtype not in DTYPES:
        raise InputShapeError(f"unknown dtype '{dtype}': choose one of {', '.join(DTYPES)}")
    torch_device = torch.device(device)
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' is not available here (torch.cuda.is_available() is False): "
                         "count on meta, the default, or on cpu")
    net, name, default_input, cite = build(model, torch_device)
    shape = input_shape_for(default_input, input_shape, batch, name)
    try:
        # values do not matter on meta; torch.randn's meta path imports sympy (0.5 s)
        make = torch.empty if torch_device.type == "meta" else torch.randn
        example = make(shape, device=torch_device, dtype=DTYPES[dtype])
    except (RuntimeError, MemoryError) as error:
        raise InputShapeError(
            f"cannot allocate a {'x'.join(map(str, shape))} {dtype} input on {device}: "
            f"{str(error).splitlines()[0]} (the meta device needs no memory)"
        ) from error
    result = trace(net, [example], train=train, dtype=DTYPES[dtype])
    root = result.layers[0]
    unique_params = list(net.parameters())
    totals = {
        "params": sum(p.numel() for p in unique_params),
        "trainable_params": sum(p.numel() for p in unique_params if p.requires_grad),
        "buffers": sum(b.numel() for b in net.buffers()),
        "macs": root.macs, "flops": root.flops,
        "activation_bytes": root.activation_bytes, "weight_bytes": root.weight_bytes,
        "bytes": root.bytes,
    }
    uncounted = [Uncounted(op, count, paths) for op, (count, paths) in sorted(result.uncounted.items())]
    return Profile(
        model=name, input_shape=list(shape), dtype=dtype,
        device={"type": torch_device.type}, environment=environment(),
        convention=CONVENTION, totals=totals, layers=result.layers,
        uncounted=uncounted, citation=cite, flops_by_op=result.flops_by_op,
    )


def is_saved_profile(spec: str) -> bool:
    """A compare/check argument that names a saved profile JSON rather than a model."""
    return spec.endswith(".json") or ("/" in spec and ":" not in spec)


def obtain(spec: str, input_shape: Sequence[int] | None = None, *, batch: int | None = None,
           device: str = "meta", dtype: str = "float32") -> Profile:
    """A profile for ``spec``: read from a saved JSON file, or traced from a model."""
    if is_saved_profile(spec):
        from costlens.profile import load

        return load(spec)
    return profile(spec, input_shape, batch=batch, device=device, dtype=dtype)
