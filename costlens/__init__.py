"""costlens: where the cost of a convolutional network goes, layer by layer.

The public API is imported lazily, so that ``costlens --help`` starts without torch::

    import costlens
    p = costlens.profile("inception")            # a zoo name, "pkg.module:factory" or an nn.Module
    p = costlens.profile(net, inputs={"ids": costlens.Input((1, 16), "int64")})
    c = costlens.compare("inception-naive", "inception")
    w = costlens.whatif("googlenet")               # what a bottleneck, depthwise, grouped ... version would cost
    slim = costlens.rewrite(net, {"features.3": "depthwise"})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "Comparison", "CostlensWarning", "Input", "LayerCost", "OpCost", "Profile",
    "compare", "load", "profile", "rewrite", "whatif", "__version__",
]

# Where each public name lives; no submodule carries a public function's name, so
# importing one (costlens.api, costlens.records) never shadows a function.
_EXPORTS = {
    "profile": "costlens.api", "compare": "costlens.api", "CostlensWarning": "costlens.errors",
    "Profile": "costlens.records", "LayerCost": "costlens.records", "load": "costlens.records",
    "Comparison": "costlens.comparison", "Input": "costlens.inputs", "OpCost": "costlens.count.formulas",
    "whatif": "costlens.alternatives", "rewrite": "costlens.alternatives",
}

if TYPE_CHECKING:
    from costlens.alternatives import rewrite, whatif
    from costlens.api import compare, profile
    from costlens.comparison import Comparison
    from costlens.count.formulas import OpCost
    from costlens.errors import CostlensWarning
    from costlens.inputs import Input
    from costlens.records import LayerCost, Profile, load


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module 'costlens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
