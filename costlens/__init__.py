"""costlens: where the cost of a convolutional network goes, layer by layer.

The public API is imported lazily, so that ``costlens --help`` starts without torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["LayerCost", "Profile", "load", "profile", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "profile":
        from costlens.api import profile

        return profile
    if name in ("Profile", "LayerCost", "load"):
        from costlens import profile as profile_module

        return getattr(profile_module, name)
    raise AttributeError(f"module 'costlens' has no attribute {name!r}")
