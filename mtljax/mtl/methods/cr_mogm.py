"""CR-MOGM (Zhou et al. 2022, "On the convergence of stochastic multi-objective gradient
manipulation and beyond", Alg. 2): the weights of any Gramian weighting, smoothed by an
exponential moving average over the steps, which removes the bias of stochastic MGDA."""

import jax.numpy as jnp

from mtljax.mtl.base import STRATEGIES, aggregator, from_gramian, register
from mtljax.registry import Option


def smoothed(new: jnp.ndarray, previous: jnp.ndarray, started: jnp.ndarray, beta: float) -> jnp.ndarray:
    """w_k = β·w_{k−1} + (1 − β)·ŵ_k; the first step takes ŵ_0 itself."""
    return jnp.where(started, beta * previous + (1.0 - beta) * new, new)


def cr_mogm(m, losses, state, ctx):
    """ŵ from the method `weighting` (its default options) on this step's Gramian, then the
    average; the state keeps w_{k−1}."""
    options = ctx["options"]
    inner = STRATEGIES[options["weighting"]]
    w_hat, _ = inner.gramian(m, losses, inner.init_state(m.shape[0], 0), {**ctx, "options": _defaults(options["weighting"])})
    w = smoothed(w_hat, state["w"], state["started"], options["beta"])
    return w, {"w": w, "started": jnp.ones((), bool)}


def _defaults(name: str) -> dict:
    return {k: o.default for k, o in STRATEGIES.options(name).items()}


def cr_mogm_problem(options, tasks) -> str | None:
    """The inner method must be a stateless Gramian weighting."""
    name = options["weighting"]
    if name not in STRATEGIES or STRATEGIES[name].weighting is None:
        have = [n for n in STRATEGIES.names() if STRATEGIES[n].weighting is not None and n != "cr_mogm"]
        return f"weighting: {name!r} is not a Gramian weighting; choose one of {', '.join(have)}"
    if not 0 <= options["beta"] < 1:
        return f"beta: must be in [0, 1), got {options['beta']!r}"
    inner = STRATEGIES[name].check
    return inner(_defaults(name), tasks) if inner else None


register("cr_mogm", aggregator(from_gramian(cr_mogm), gramian=cr_mogm, check=cr_mogm_problem,
                               init_state=lambda t, p: {"w": jnp.zeros(t), "started": jnp.zeros((), bool)}),
         {"weighting": Option("mgda", "the Gramian weighting whose weights are averaged (its default options)"),
          "beta": Option(0.9, "CR-MOGM's moving-average factor β of the previous weights", minimum=0)})
