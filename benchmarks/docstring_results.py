"""Writes each experiment's newest measured result into its docstring (a "Measured here" line).

    python benchmarks/docstring_results.py [--root checkpoints]
"""

from __future__ import annotations

import argparse
import json
import re
import runpy
import sys
from pathlib import Path


def measured_line(root: Path, names: list[str]) -> str | None:
    parts = []
    for name in names:
        runs = [p for p in sorted((root / name).glob("*/summary.json"))
                if "sweep" not in json.loads(p.read_text())]  # A sweep's summary mixes configurations.
        if not runs:
            return None
        summary = json.loads(runs[-1].read_text())
        stats = summary.get("test_stats", {})
        accs = ", ".join(f"{k.split('/')[0]} {100 * v:.2f}" + (f" ± {100 * stats[k]['std']:.2f}" if k in stats else "")
                         for k, v in summary["test"].items() if k.endswith("/accuracy"))
        seeds = f" (mean ± std of {len(summary['seeds'])} seeds)" if stats else ""
        prefix = f"{name}: " if len(names) > 1 else ""
        parts.append(f"{prefix}{accs} % test accuracy{seeds}, {summary['wall_time_s'] / 60:.1f} min "
                     f"(run {runs[-1].parent.name})")
    return "Measured here (2-core CPU): " + "; ".join(parts) + "."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("checkpoints"))
    args = parser.parse_args()
    sys.path.insert(0, str(Path.cwd()))  # Variants import `experiments.<base>`.
    for path in sorted(Path("experiments").glob("*.py")):
        if path.stem == "__init__":
            continue
        namespace = runpy.run_path(str(path))
        names = [s["name"] for s in namespace["STAGES"]] if "STAGES" in namespace else [path.stem]
        line = measured_line(args.root, names)
        if line is None:
            continue
        text = path.read_text()
        head, sep, rest = text.partition('"""\n\n')  # The end of the module docstring.
        head = re.sub(r"\nMeasured here \(2-core CPU\):.*?(?=\n\n|\Z)", "", head, flags=re.S)
        wrapped = "\n".join(_wrap(line))
        path.write_text(f"{head}\n{wrapped}\n{sep}{rest}")
        print(f"{path}: {line}")


def _wrap(text: str, width: int = 100) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return lines + [current]


if __name__ == "__main__":
    main()
