"""Turn what the user typed into a model: a zoo name, or ``pkg.module:attribute``."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

from torch import nn

from costlens.errors import ModelError, UnknownModelError
from costlens.zoo import registry
from costlens.zoo.registry import NamedModel


def is_import_path(spec: str) -> bool:
    """``pkg.module:factory`` names a user's model; everything else is a zoo name."""
    return ":" in spec


def resolve(spec: str) -> NamedModel:
    """The model ``spec`` names; unknown names and failing imports raise one-line errors."""
    if not is_import_path(spec):
        return registry.entry(spec)
    return NamedModel(spec, _user_builder(spec))


def _user_builder(spec: str) -> Callable[[], nn.Module]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UnknownModelError(f"'{spec}' is not an import path: write package.module:factory")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would find the user's package
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # an import can raise anything
        raise ModelError(f"cannot import '{module_name}': {type(error).__name__}: {error}") from error
    target = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ModelError(f"module '{module_name}' has no attribute '{attribute}'")
        target = getattr(target, part)
    return lambda: _instantiate(spec, target)


def _instantiate(spec: str, target: object) -> nn.Module:
    if isinstance(target, nn.Module):
        return target
    if not callable(target):
        raise ModelError(f"'{spec}' is neither an nn.Module nor a factory")
    try:
        model = target()
    except Exception as error:  # the user's factory can raise anything
        raise ModelError(f"'{spec}' failed to build the model: {type(error).__name__}: {error}") from error
    if not isinstance(model, nn.Module):
        raise ModelError(f"'{spec}' returned {type(model).__name__}, not an nn.Module")
    return model
