"""Ablations behind the tables of docs/performance.md, one script per table: `python -m benchmarks.tables.NAME`."""
