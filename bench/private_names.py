"""The size of the house: lines of code in costlens/ and costlens/count/, and the private torch
names the package uses (docs/architecture.md says why each one is still there).

Run:  .venv/bin/python bench/private_names.py [PATH]     (PATH: a costlens/ directory, default this checkout's)

A private name is an attribute or import with one leading underscore that is not costlens's
own: an attribute costlens never defines, or a torch module or name imported with one (aten
op names such as ``_convolution`` are op names, not private API, and are left out).
"""

from __future__ import annotations

import ast
import collections
import sys
from pathlib import Path

import torch


def own_names(files: list[Path]) -> set[str]:
    """Every name costlens defines: functions, classes, assigned names and attributes, arguments."""
    own: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.arg):
                own.add(node.arg)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    own.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
                    own.update(n.attr for n in ast.walk(target) if isinstance(n, ast.Attribute))
    return own


def private_names(files: list[Path], root: Path) -> dict[str, set[str]]:
    """Each private name used, with the files that use it."""
    own = own_names(files)
    found: dict[str, set[str]] = collections.defaultdict(set)
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if node.attr not in own and not hasattr(torch.ops.aten, node.attr):
                    names.append(node.attr)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("torch"):
                names += [part for part in node.module.split(".") if part.startswith("_")]
                names += [alias.name for alias in node.names if alias.name.startswith("_")]
            for name in names:
                found[name].add(str(path.relative_to(root)))
    return found


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "costlens"
    files = sorted(root.rglob("*.py"))
    lines = sum(len(p.read_text().splitlines()) for p in files)
    count_lines = sum(len(p.read_text().splitlines()) for p in files if p.parent.name == "count")
    print(f"{root}: {lines:,} lines in costlens/, {count_lines:,} in costlens/count/")
    found = private_names(files, root)
    for name, where in sorted(found.items()):
        print(f"  {name:28s} {', '.join(sorted(where))}")
    print(f"{len(found)} private torch names")


if __name__ == "__main__":
    main()
