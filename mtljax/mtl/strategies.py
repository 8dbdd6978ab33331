"""MTL methods by name (config `mtl.strategy`): the registry, its options, and the resolution of a
config's `mtl` section into the one `Strategy` a run uses.

Each method lives in its own module under mtljax/mtl/methods/ (what a method is:
mtljax/mtl/base.py). `resolve` is called once per run; the train step then asks the resolved
strategy for its gradient (`Strategy.gradient`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from mtljax.mtl import gradients, gramian, methods  # noqa: F401 - importing `methods` registers them.
from mtljax.mtl.base import STRATEGIES, Strategy, context
from mtljax.registry import Option

__all__ = ["MTL_OPTIONS", "STRATEGIES", "Strategy", "context", "default_config", "get", "resolve"]

# Options of every strategy (config `mtl.*`); a strategy's own live under `mtl.<name>`.
MTL_OPTIONS: dict[str, Option] = {
    "strategy": Option("static", "the strategy's registered name", choices=lambda: STRATEGIES.names()),
    "diagnose_every": Option(0, "epochs between task-gradient conflict diagnostics; 0: off", minimum=0),
    "diagnose_batch": Option(256, "training images the diagnostics use (the same ones every time)", positive=True),
    "engine": Option("auto", "gradient aggregators defined by the Gramian: 'gramian' computes it without holding the "
                     "task Jacobian (memory independent of the number of tasks), 'jacobian' holds it, 'auto' picks "
                     "'gramian' from 10 tasks on", choices=gramian.ENGINES),
    "rep_grad": Option(False, "gradient aggregators: combine the task gradients of the shared representation "
                       "instead of the shared parameters (cheaper; architectures with one shared representation)"),
}


def get(name: str) -> Strategy:
    """The strategy registered as `name`."""
    return STRATEGIES[name]


def resolve(mtl: Mapping[str, Any], tasks: int = 0, microbatch: int = 0, batch_size: int = 0) -> Strategy:
    """The strategy a config's `mtl` section selects, as the train step uses it: with `mtl.rep_grad`
    a gradient aggregator combines the task gradients of the shared representation; a Gramian
    method takes the Jacobian-free path where `mtl.engine` (and, for "auto", the number of `tasks`)
    says so (mtljax/mtl/gramian.py)."""
    strategy = get(mtl["strategy"])
    if mtl.get("rep_grad", False) and strategy.kind == "gradient":
        return dataclasses.replace(strategy, computes=gradients.representation_aggregated)
    if gramian.use_gramian(mtl.get("engine", "auto"), strategy, tasks, microbatch, batch_size):
        return dataclasses.replace(strategy, computes=gramian.gramian_aggregated)
    return strategy


def default_config(name: str = "static", **options: Any) -> dict[str, Any]:
    """An `mtl` config section: strategy `name` with its default options updated by `options`."""
    section = {k: o.default for k, o in MTL_OPTIONS.items()}
    own = {k: o.default for k, o in STRATEGIES.options(name).items()}
    return {**section, "strategy": name, **({name: {**own, **options}} if own else {})}
