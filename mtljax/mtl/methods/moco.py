"""MoCo (Fernando et al. 2023, "Mitigating gradient bias in multi-objective learning: a provably
convergent approach", Alg. 1)."""

import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stepped
from mtljax.mtl.solvers import gram, project_simplex
from mtljax.registry import Option

BETA_SIGMA = Option(0.5, "decay of β over steps: β/(k+1)^σ", minimum=0)


def moco(g, state, step, beta: float, beta_sigma: float, gamma: float, gamma_sigma: float, rho: float):
    """Tracked gradients Y ← Y − β_k(Y − G) (Y = G at the first step), weights
    λ ← Π_Δ(λ − γ_k(YYᵀ + ρI)λ), d = T·λᵀY; β_k = β/(k+1)^σ_β, γ_k = γ/(k+1)^σ_γ, k the step.
    The paper's projection of Y onto a ball is left out (its radius is a bound on the gradients,
    not known here). Returns (d, state)."""
    k = step.astype(jnp.float32) + 1.0
    y = jnp.where(step == 0, g, state["y"] - beta / k**beta_sigma * (state["y"] - g))
    m = gram(y) + rho * jnp.eye(g.shape[0], dtype=g.dtype)
    lam = project_simplex(state["lam"] - gamma / k**gamma_sigma * (m @ state["lam"]))
    return g.shape[0] * (lam @ y), {"y": y, "lam": lam}


register("moco", aggregator(stepped(moco), init_state=lambda t, p: {"y": jnp.zeros((t, p)),
                                                                     "lam": jnp.full((t,), 1.0 / t)}),
         {"beta": Option(0.5, "MoCo's tracking rate β", positive=True), "beta_sigma": BETA_SIGMA,
          "gamma": Option(0.1, "MoCo's step size γ of the weights", positive=True),
          "gamma_sigma": Option(0.5, "decay of γ over steps: γ/(k+1)^σ", minimum=0),
          "rho": Option(0.0, "MoCo's regularisation ρ of the weights", minimum=0)})
