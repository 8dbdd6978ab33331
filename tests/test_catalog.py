"""The docs' lists of methods are the registry's: regenerating them changes nothing, and the
generator covers every registered method."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtljax.mtl import catalog, strategies

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", ["README.md", "docs/strategies.md"])
def test_the_docs_lists_are_generated(path):
    text = (ROOT / path).read_text()
    assert "<!-- method" in text
    assert catalog.rewritten(text) == text, (
        f"{path} is stale: python -m mtljax.mtl.catalog --update README.md docs/strategies.md")


def test_every_method_is_listed_once():
    table, names = catalog.method_table(), strategies.STRATEGIES.names()
    assert len(table.splitlines()) == 2 + len(names)
    assert all(f"| `{name}` |" in table and f"`{name}`" in catalog.method_list() for name in names)


def test_update_rewrites_between_the_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- methods:start -->\nold\n<!-- methods:end -->\nend\n")
    assert catalog.main(["--update", str(page)]) == 0
    assert page.read_text() == f"intro\n<!-- methods:start -->\n{catalog.method_list()}\n<!-- methods:end -->\nend\n"
    assert catalog.main(["--update", str(tmp_path / "missing.md")]) == 2


def test_every_library_architecture_is_registered():
    from mtljax import models

    assert set(catalog.LIBMTL_ARCHITECTURES.values()) <= set(models.ARCHITECTURES.names())
