"""`python -m mtljax.report RUN_DIR [RUN_DIR ...] -o report.html`: one self-contained HTML report.

Across runs: a comparison table (test accuracy per task, mean ± std for seed sweeps; wall time) and
overlaid validation curves. Per run: its test metrics per task, its figures (curves, confusion
matrices, sample grid, gradient conflict and Pareto plots when present) and its config. Every
image is embedded as a data URI, so the file can be mailed or archived alone.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import sys
from pathlib import Path
from typing import Sequence

from mtljax.outputs import plots, rundir
from mtljax.outputs.summary import format_metric, headlines

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}th{background:#eee}img{max-width:100%;margin:4px}
pre{background:#f6f6f6;padding:1em;overflow:auto;max-height:30em}section{border-top:2px solid #444;margin-top:2em}"""

# After loading, the page records how many of its images decoded (read back by the browser test).
CHECK = """<script>window.addEventListener('load',()=>{const imgs=[...document.images];
document.body.dataset.images=imgs.length;document.body.dataset.decoded=imgs.filter(i=>i.naturalWidth>0).length;});
</script>"""


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _cell(summary: dict, key: str) -> str:
    value = summary["test"].get(key)
    if value is None:
        return ""
    metric = key.split("/")[-1]
    stats = summary.get("test_stats", {}).get(key)
    return format_metric(metric, value) + (f" ± {format_metric(metric, stats['std'])}" if stats else "")


def comparison_table(runs: Sequence[tuple[Path, dict]]) -> str:
    metric = {t: m for _, s in runs for t, m in headlines(s).items()}
    names = sorted(metric)
    head = "".join(f"<th>{t} {metric[t]}{' %' if metric[t] == 'accuracy' else ''}</th>" for t in names)
    rows = [f"<table class='comparison'><tr><th>run</th><th>epochs</th>{head}<th>wall time</th></tr>"]
    for run_dir, s in runs:
        cells = "".join(f"<td>{_cell(s, f'{t}/{metric[t]}')}</td>" for t in names)
        rows.append(f"<tr><td>{html.escape(s['name'])} / {html.escape(run_dir.name)}</td><td>{s['epochs_run']}</td>"
                    f"{cells}<td>{s['wall_time_s'] / 60:.1f} min</td></tr>")
    return "".join(rows) + "</table>"


def overlaid_curves(runs: Sequence[tuple[Path, dict]]) -> bytes:
    """Validation loss and each task's validation headline metric, one line per run."""
    histories = [(f"{s['name']}/{d.name}", rundir.read_history(d)) for d, s in runs]
    metric = {t: m for _, s in runs for t, m in headlines(s).items()}
    keys = ["val/loss"] + [f"val/{t}/{metric[t]}" for t in sorted(metric)]
    fig, axes = plots.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, history in histories:
            points = [(r["epoch"], r[key]) for r in history if key in r]
            if points:
                ax.plot(*zip(*points), "-o", ms=3, label=label)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def run_section(run_dir: Path, summary: dict) -> str:
    names = list(headlines(summary))
    columns = [m for m in ("accuracy", "precision", "recall", "f1", "mae", "rmse")
               if any(f"{t}/{m}" in summary["test"] for t in names)]
    rows = "".join(f"<tr><td>{t}</td>" + "".join(f"<td>{_cell(summary, f'{t}/{m}')}</td>" for m in columns) + "</tr>"
                   for t in names)
    titles = {"accuracy": "accuracy %", "precision": "macro precision %", "recall": "macro recall %",
              "f1": "macro F1 %", "mae": "MAE", "rmse": "RMSE"}
    metrics = (f"<table class='metrics'><tr><th>task</th>{''.join(f'<th>{titles[m]}</th>' for m in columns)}</tr>"
               f"{rows}</table>")
    seeds = f", {len(summary['seeds'])} seeds (mean ± std)" if "test_stats" in summary else ""
    figures = "".join(_img(p.read_bytes(), p.stem) for p in sorted(run_dir.glob("*.png")))
    config = html.escape(json.dumps(rundir.read_json(run_dir / rundir.CONFIG_FILE), indent=1))
    return (f"<section><h2>{html.escape(summary['name'])} — {html.escape(str(run_dir))}</h2>"
            f"<p>{summary['epochs_run']} epochs{seeds}; wall time {summary['wall_time_s'] / 60:.1f} min, "
            f"{summary['mean_epoch_time_s']:.1f} s per epoch.</p>{metrics}<div class='figures'>{figures}</div>"
            f"<details><summary>config</summary><pre>{config}</pre></details></section>")


def build_report(run_dirs: Sequence[Path]) -> str:
    """The HTML text of the report on `run_dirs`.

    Raises:
      ValueError: a directory is not a finished run (no summary.json).
    """
    runs = []
    for run_dir in run_dirs:
        path = Path(run_dir) / rundir.SUMMARY_FILE
        if not path.is_file():
            raise ValueError(f"{run_dir} is not a finished run (no {rundir.SUMMARY_FILE})")
        runs.append((Path(run_dir), rundir.read_json(path)))
    body = [f"<h1>mtljax report: {len(runs)} run(s)</h1>", "<h2>Comparison</h2>", comparison_table(runs),
            _img(overlaid_curves(runs), "overlaid validation curves")]
    body += [run_section(d, s) for d, s in runs]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>mtljax report</title><style>{STYLE}</style>"
            f"{CHECK}</head><body>{''.join(body)}</body></html>")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtljax.report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("-o", "--output", type=Path, default=Path("report.html"))
    args = parser.parse_args(argv)
    try:
        text = build_report(args.run_dirs)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(text) / 1e6:.1f} MB, {len(args.run_dirs)} run(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
