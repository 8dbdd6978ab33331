"""MoDo (Chen et al. 2023, "Three-way trade-off in multi-objective learning: optimization,
generalization and conflict-avoidance", Alg. 1): double sampling."""

import jax.numpy as jnp

from mtljax.mtl.base import aggregator, ones, register
from mtljax.mtl.solvers import cross_gram, project_simplex
from mtljax.registry import Option


def samples(g):
    """The three matrices of an S×T×P stack of independent samples (one sample: used for each)."""
    g = g if g.ndim == 3 else g[None]
    return g[0], g[1 % g.shape[0]], g[2 % g.shape[0]]


def modo(g, lam, gamma: float, rho: float):
    """With G₁, G₂, G₃ the task gradients of three independent samples (the step splits the
    batch), λ ← Π_Δ(λ − γ(G₁G₂ᵀ + ρI)λ) (an unbiased stochastic step on ½‖Gᵀλ‖²), d = T·λᵀG₃.
    The Gram product is divided by the mean product of the rows' norms so that γ does not depend
    on the gradients' scale. Returns (d, λ)."""
    g1, g2, g3 = samples(g)
    lam = project_simplex(lam - gamma * ((cross_gram(g1, g2) + rho * jnp.eye(g1.shape[0])) @ lam))
    return g1.shape[0] * (lam @ g3), lam


def _aggregate(g, losses, state, ctx):
    d, lam = modo(g, state["lam"], **ctx["options"])
    return d, ones(g), {"lam": lam}


register("modo", aggregator(_aggregate, samples=3, init_state=lambda t, p: {"lam": jnp.full((t,), 1.0 / t)}),
         {"gamma": Option(0.1, "MoDo's step size γ of the weights", positive=True),
          "rho": Option(0.0, "MoDo's regularisation ρ of the weights", minimum=0)})
