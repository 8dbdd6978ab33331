"""The docs' lists of methods, generated from the registry so that they stay true.

    python -m mtljax.mtl.catalog --update README.md docs/strategies.md

rewrites the text between each file's `<!-- methods:start -->` / `<!-- methods:end -->` markers
(the README's one-paragraph list) and `<!-- method-table:start -->` / `<!-- method-table:end -->`
(docs/strategies.md's table: name, kind, source and options); tests/test_catalog.py fails when a
file differs from what this writes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Sequence

from mtljax.mtl import strategies

KINDS = {"loss": "loss weighting", "representation": "on the shared representation",
         "gradient": "gradient aggregation"}


def source(name: str) -> str:
    """The first paragraph of a built-in method's module docstring (its paper), on one line."""
    doc = importlib.import_module(f"mtljax.mtl.methods.{name}").__doc__ or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _options(name: str) -> str:
    own = strategies.STRATEGIES.options(name)
    return ", ".join(f"`{key}` {option.default}" for key, option in own.items())


def method_list() -> str:
    """The README's paragraph: every method's name, by kind."""
    groups = {kind: [n for n in strategies.STRATEGIES.names() if strategies.get(n).kind == kind] for kind in KINDS}
    parts = [f"{KINDS[kind]}: {', '.join(f'`{n}`' for n in names)}" for kind, names in groups.items() if names]
    return f"{len(strategies.STRATEGIES.names())} methods; " + "; ".join(parts) + "."


def method_table() -> str:
    """docs/strategies.md's table: each method's kind, source, options and defaults."""
    rows = ["| `mtl.strategy` | kind | source | options (`mtl.<name>.<option>`, default) |", "|---|---|---|---|"]
    for name in strategies.STRATEGIES.names():
        strategy = strategies.get(name)
        kind = KINDS[strategy.kind] + (", Gramian weighting" if strategy.weighting is not None else "")
        rows.append(f"| `{name}` | {kind} | {source(name)} | {_options(name)} |")
    return "\n".join(rows)


SECTIONS = {"methods": method_list, "method-table": method_table}


def rewritten(text: str) -> str:
    """`text` with every section whose markers it has regenerated."""
    for section, make in SECTIONS.items():
        start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            text = f"{head}{start}\n{make()}\n{end}{rest.split(end, 1)[1]}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtljax.mtl.catalog", description=__doc__.splitlines()[0])
    parser.add_argument("--update", type=Path, nargs="+", required=True, help="Markdown files to rewrite")
    for path in parser.parse_args(argv).update:
        if not path.is_file():
            print(f"error: no file {path}", file=sys.stderr)
            return 2
        path.write_text(rewritten(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
