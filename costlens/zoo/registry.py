"""The zoo's registry: ``@register`` a builder under a name; ``create(name)`` builds it."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from costlens.errors import UnknownModelError

FAMILIES = ("lenet", "alexnet", "vgg", "resnet", "nin", "inception")


@dataclass(frozen=True)
class NamedModel:
    """A model the user named (a zoo name or an import path): how to build it, its
    default input and its source, when known."""

    name: str
    build: Callable[..., nn.Module]
    input: tuple[int, ...] | None = None
    cite: str | None = None
    short_cite: str | None = None  # authors, year and figure: what fits a line of ``costlens list``


_ZOO: dict[str, NamedModel] = {}


SHORT_CITE = 50  # characters: the citation column of ``costlens list`` in a 100-column terminal


def register(
    name: str, *, input: tuple[int, ...], cite: str, short: str | None = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a zero-argument (options optional) builder under ``name``, with its
    default input, its full citation and a short one (at most SHORT_CITE characters;
    default: the citation up to its first comma); a duplicate name raises."""
    brief = short if short is not None else cite.split(",")[0][:SHORT_CITE]

    def add(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _ZOO:
            raise ValueError(f"zoo name {name!r} is already registered")
        if len(brief) > SHORT_CITE:
            raise ValueError(f"the short citation of {name!r} is longer than {SHORT_CITE} characters")
        _ZOO[name] = NamedModel(name, build, tuple(input), cite, brief)
        return build

    return add


_LOADED: list[bool] = [False]  # every family imported (each registers its models as it is)


def _load_families() -> None:
    if _LOADED[0]:
        return
    for family in FAMILIES:
        importlib.import_module(f"costlens.zoo.{family}")
    _LOADED[0] = True


def names() -> list[str]:
    """Every registered model name, in registration (lecture) order."""
    _load_families()
    return list(_ZOO)


def entry(name: str) -> NamedModel:
    """The registered entry of ``name``; an unknown name suggests the nearest ones."""
    _load_families()
    if name in _ZOO:
        return _ZOO[name]
    close = difflib.get_close_matches(name.lower(), list(_ZOO), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see 'costlens list'"
    raise UnknownModelError(f"unknown model '{name}'{hint}")


def create(name: str, **options: Any) -> nn.Module:
    """Build the architecture registered as ``name`` (in the current default device)."""
    return entry(name).build(**options)
