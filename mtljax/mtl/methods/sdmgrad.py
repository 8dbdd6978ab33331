"""SDMGrad (Xiao et al. 2023, "Direction-oriented multi-objective learning: simple and provable
stochastic algorithms", Alg. 1)."""

import jax
import jax.numpy as jnp

from mtljax.mtl.base import aggregator, ones, register
from mtljax.mtl.methods.modo import samples
from mtljax.mtl.solvers import cross_gram, project_simplex
from mtljax.registry import Option


def sdmgrad(g, w, reg: float, lr: float, iters: int):
    """The direction-oriented weights w = argmin_{w∈Δ} ½‖Gᵀw + λḡ‖² (ḡ the mean gradient, λ:
    `reg`), by `iters` projected stochastic gradient steps w ← Π_Δ(w − lr·G₁(G₂ᵀw + λḡ₂)) on two
    independent samples, warm-started from the last step's w; d = T·(G₃ᵀw + λḡ₃)/(1 + λ) (λ → ∞:
    the sum; λ = 0: MGDA). As for MoDo, the products are divided by the mean product of the rows'
    norms. Returns (d, w)."""
    g1, g2, g3 = samples(g)
    t = g1.shape[0]
    m = cross_gram(g1, g2)
    pull = reg * jnp.mean(m, axis=1)  # G₁·λḡ₂ in the same units.

    def body(_, w):
        return project_simplex(w - lr * (m @ w + pull))

    w = jax.lax.fori_loop(0, iters, body, w)
    return t * (w @ g3 + reg * jnp.mean(g3, axis=0)) / (1.0 + reg), w


def _aggregate(g, losses, state, ctx):
    d, w = sdmgrad(g, state["w"], **ctx["options"])
    return d, ones(g), {"w": w}


register("sdmgrad", aggregator(_aggregate, samples=3, init_state=lambda t, p: {"w": jnp.full((t,), 1.0 / t)}),
         {"reg": Option(0.3, "SDMGrad's λ: pull towards the mean gradient", minimum=0),
          "lr": Option(0.5, "step size of the weights' inner iterations", positive=True),
          "iters": Option(20, "inner iterations per step", positive=True)})
