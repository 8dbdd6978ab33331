"""The docs' lists of methods, generated from the registry so that they stay true.

    python -m mtljax.mtl.catalog --update README.md docs/strategies.md

rewrites the text between each file's `<!-- methods:start -->` / `<!-- methods:end -->` markers
(the README's one-paragraph list) and `<!-- method-table:start -->` / `<!-- method-table:end -->`
(docs/strategies.md's table: name, kind, source and options) and `<!-- libraries:start -->` /
`<!-- libraries:end -->` (every method and architecture LibMTL and TorchJD have, beside mtljax's
name for it); tests/test_catalog.py fails when a file differs from what this writes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Sequence

from mtljax.mtl import gramian, strategies

# Each library's methods and architectures (their own names) -> mtljax's name. LibMTL: its
# weightings, bilevel methods and architectures; TorchJD 0.18: its aggregators, weightings and
# scalarizers.
LIBMTL = {"EW": "equal", "GradNorm": "gradnorm", "UW": "uw", "MGDA": "mgda", "DWA": "dwa", "GLS": "gls",
          "GradDrop": "graddrop", "PCGrad": "pcgrad", "GradVac": "gradvac", "IMTL": "imtl", "CAGrad": "cagrad",
          "Nash_MTL": "nash_mtl", "RLW": "rlw", "MoCo": "moco", "Aligned_MTL": "aligned_mtl", "DB_MTL": "db_mtl",
          "STCH": "stch", "ExcessMTL": "excessmtl", "FairGrad": "fairgrad", "FAMO": "famo", "MoDo": "modo",
          "SDMGrad": "sdmgrad", "UPGrad": "upgrad", "MGDA (rep_grad)": "mgda_ub", "AutoLambda": "auto_lambda",
          "MOML": "moml", "FORUM": "forum"}
# LibMTL's architectures -> mtljax's `model.architecture` (tests/test_catalog.py checks each is registered;
# this wing does not import the models).
LIBMTL_ARCHITECTURES = {"HPS": "hard", "Cross_stitch": "cross_stitch", "MTAN": "mtan", "MMoE": "mmoe", "CGC": "cgc",
                        "PLE": "ple", "DSelect_k": "dselect_k", "LTB": "branch"}
TORCHJD = {"UPGrad": "upgrad", "AlignedMTL": "aligned_mtl", "CAGrad": "cagrad", "ConFIG": "config",
           "Constant": "static", "DualProj": "dualproj", "GradDrop": "graddrop", "IMTLG": "imtl_g", "Krum": "krum",
           "Mean": "equal", "MGDA": "mgda", "NashMTL": "nash_mtl", "PCGrad": "pcgrad", "Random": "rlw",
           "Sum": "equal", "TrimmedMean": "trimmed_mean", "PCD": "pcd", "CRMOGM": "cr_mogm", "PBI": "pbi",
           "COSMOS": "cosmos"}

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
        kind = KINDS[strategy.kind] + (", Gramian weighting" if strategy.weighting is not None else "") \
            + (", Gramian engine" if gramian.supports(strategy) else "") + (", bilevel" if strategy.lookahead else "")
        rows.append(f"| `{name}` | {kind} | {source(name)} | {_options(name)} |")
    return "\n".join(rows)


def library_table() -> str:
    """Every method of LibMTL and TorchJD under mtljax's name, LibMTL's architectures, then the
    methods only mtljax has."""
    ours = strategies.STRATEGIES.names()
    names = list(dict.fromkeys([*LIBMTL.values(), *TORCHJD.values()]))
    theirs = lambda lib, n: ", ".join(k for k, v in lib.items() if v == n) or "–"
    rows = ["| mtljax | LibMTL | TorchJD |", "|---|---|---|"]
    rows += [f"| `{n}` | {theirs(LIBMTL, n)} | {theirs(TORCHJD, n)} |" for n in names if n in ours]
    rows += [f"| `model.architecture: {n}` | {k} | – |" for k, n in LIBMTL_ARCHITECTURES.items()]
    missing = [n for n in names if n not in ours]
    only = [n for n in ours if n not in names]
    text = "\n".join(rows) + f"\n\nOnly in mtljax ({len(only)}): " + ", ".join(f"`{n}`" for n in only) + "."
    return text + ("" if not missing else "\n\nNot in mtljax: " + ", ".join(missing) + ".")


SECTIONS = {"methods": method_list, "method-table": method_table, "libraries": library_table}


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
