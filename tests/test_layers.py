"""The package's wings import one way: each module imports only its own wing and the wings before
it in `WINGS` (docs/design.md explains them). A new upward import fails here, naming the line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mtljax"
# The wing order, written once: foundation first, the commands last.
WINGS = [
    ("foundation", ["mtljax.registry", "mtljax.tasks", "mtljax.metrics", "mtljax.calibration", "mtljax.timing"]),
    ("data", ["mtljax.data"]),
    ("models", ["mtljax.models"]),
    ("mtl", ["mtljax.mtl"]),
    ("train", ["mtljax.train"]),
    ("outputs", ["mtljax.outputs"]),
    ("config", ["mtljax.config"]),
    ("commands", ["mtljax.run", "mtljax.evaluate", "mtljax.predict", "mtljax.report", "mtljax.results",
                  "mtljax.compare", "mtljax.benchmark", "mtljax"]),
]
# Wings that import less than their place allows: the MTL methods are for any training loop, so
# they know nothing of the data or the models.
ONLY = {"mtl": {"foundation", "mtl"}}


def wing(module: str) -> int | None:
    """The index of `module`'s wing in WINGS (None outside mtljax)."""
    for index, (_, prefixes) in enumerate(WINGS):
        if any(module == p or (p != "mtljax" and module.startswith(p + ".")) for p in prefixes):
            return index
    return None


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every mtljax module `path` imports, at any depth of its code."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from mtljax import config` imports mtljax.config; `from mtljax.mtl import x` mtljax.mtl.
            found += [(f"{node.module}.{a.name}" if node.module == "mtljax" else node.module, node.lineno)
                      for a in node.names]
    return [(name, line) for name, line in found if name == "mtljax" or name.startswith("mtljax.")]


def test_every_module_has_a_wing():
    assert [m for m in modules() if wing(m) is None] == []


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_point_down(module):
    path, own = modules()[module], wing(module)
    allowed = ONLY.get(WINGS[own][0])
    for name, line in imports(path):
        target = wing(name)
        assert target <= own, (f"{path.relative_to(PACKAGE.parent)}:{line} imports {name} "
                               f"({WINGS[target][0]}), a wing above {WINGS[own][0]}")
        assert allowed is None or WINGS[target][0] in allowed, (
            f"{path.relative_to(PACKAGE.parent)}:{line}: the {WINGS[own][0]} wing imports {name}")
