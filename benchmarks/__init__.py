"""Measurement scripts, run from the repository root as modules: `python -m benchmarks.speed`.

benchmarks/ holds what a user runs to measure this machine or check a claim (speed against
PyTorch, a full run, data-parallel scaling, each strategy's step cost, streaming, crash-safe
resume, predictions on foreign digits, the accelerator check); benchmarks/tables/ holds the
ablations behind one table of docs/performance.md each, kept so the table can be regenerated.
Shared helpers live in `benchmarks.common` (the models measured, timed train calls) and
`benchmarks.torch_models` (the PyTorch twins, from the optional `bench` extra). The method
comparison itself is a command of the package, `python -m mtljax.compare`.
"""
