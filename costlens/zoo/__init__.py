"""The architecture zoo: each classic CNN built from its paper."""

from costlens.zoo.registry import create, entry, names, register

__all__ = ["create", "entry", "names", "register"]
