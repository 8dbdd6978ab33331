"""Gradient aggregators that carry state between steps, as pure functions.

Each takes the task-gradient matrix G (T×P; MoDo and SDMGrad: S×T×P, one matrix per independent
sample of the batch) and its state, and returns the direction (scaled so that agreeing gradients
give their sum) with the new state. The state's arrays are sized by T and P only, so they are
created before the first step (`strategies.Strategy.init_state(T, P)`) and carried by the train
state through jit, vmap over seeds and sharding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtljax.mtl.aggregators import EPS, gram, project_simplex


def _dot(a, b):
    return jnp.dot(a, b, precision=jax.lax.Precision.HIGHEST)


def gradnorm(g, losses, state, alpha: float, lr: float):
    """GradNorm (Chen et al. 2018, Eqs. 1-2): with G_t = w_t‖g_t‖, Ḡ their mean, r_t = L̃_t/mean(L̃)
    and L̃_t = L_t/L_t(0), the weights descend L_grad = Σ_t |G_t − Ḡ·r_t^α| (the target held
    constant), by SGD with learning rate `lr`, then are renormalised to Σw = T. d = Σ w_t g_t with the
    weights before the update. Here g_t are the gradients of all shared parameters (the paper's W
    is the last shared layer, a cheaper approximation). Returns (d, weights, state)."""
    weights = state["weights"]
    initial = jnp.where(state["started"], state["initial"], losses)
    norms = jnp.linalg.norm(g, axis=1)
    grad_norms = weights * norms
    ratio = (losses / initial) / jnp.mean(losses / initial)
    target = jax.lax.stop_gradient(jnp.mean(grad_norms) * ratio ** alpha)
    d_weights = jnp.sign(grad_norms - target) * norms  # ∂L_grad/∂w_t.
    new = jnp.maximum(weights - lr * d_weights, 1e-6)
    new = new * g.shape[0] / jnp.sum(new)
    return weights @ g, weights, {"weights": new, "initial": initial, "started": jnp.ones((), bool)}


def gradvac(g, targets, rng, beta: float):
    """Gradient Vaccine (Wang et al. 2021, Alg. 1 and Eq. 3): for each task i, in a random order over
    the other tasks j, where the cosine φ_ij of the current g_i with g_j is below its target φ̂_ij,
    g_i ← g_i + ‖g_i‖(φ̂_ij√(1−φ_ij²) − φ_ij√(1−φ̂_ij²)) / (‖g_j‖√(1−φ̂_ij²)) · g_j, which sets their
    cosine to φ̂_ij; then φ̂_ij ← (1−β)φ̂_ij + βφ_ij. d = Σ_i g_i. With targets 0 the step is PCGrad's
    projection. One target per task pair (the paper's whole-model granularity); they start at 0.
    Returns (d, new targets)."""
    t = g.shape[0]
    norms = jnp.linalg.norm(g, axis=1)

    def one(i, key):
        order = jax.random.permutation(key, t)

        def body(k, carry):
            gi, phis = carry
            j = order[k]
            phi = _dot(gi, g[j]) / (jnp.linalg.norm(gi) * norms[j] + EPS)
            goal = targets[i, j]
            root = jnp.sqrt(jnp.maximum(1.0 - goal**2, 0.0))
            coef = jnp.linalg.norm(gi) * (goal * jnp.sqrt(jnp.maximum(1.0 - phi**2, 0.0)) - phi * root) \
                / (norms[j] * root + EPS)
            gi = gi + jnp.where((j != i) & (phi < goal), coef, 0.0) * g[j]
            return gi, phis.at[j].set(jnp.where(j != i, phi, phis[j]))

        return jax.lax.fori_loop(0, t, body, (g[i], targets[i]))

    rows, phis = jax.vmap(one)(jnp.arange(t), jax.random.split(rng, t))
    return jnp.sum(rows, axis=0), (1.0 - beta) * targets + beta * phis


def moco(g, state, step, beta: float, beta_sigma: float, gamma: float, gamma_sigma: float, rho: float):
    """MoCo (Fernando et al. 2023, Alg. 1): tracked gradients Y ← Y − β_k(Y − G) (Y = G at the first
    step), weights λ ← Π_Δ(λ − γ_k(YYᵀ + ρI)λ), d = T·λᵀY; β_k = β/(k+1)^σ_β, γ_k = γ/(k+1)^σ_γ,
    k the step. The paper's projection of Y onto a ball is left out (its radius is a bound on the
    gradients, not known here). Returns (d, state)."""
    k = step.astype(jnp.float32) + 1.0
    y = jnp.where(step == 0, g, state["y"] - beta / k**beta_sigma * (state["y"] - g))
    m = gram(y) + rho * jnp.eye(g.shape[0], dtype=g.dtype)
    lam = project_simplex(state["lam"] - gamma / k**gamma_sigma * (m @ state["lam"]))
    return g.shape[0] * (lam @ y), {"y": y, "lam": lam}


def db_mtl(g, state, step, beta: float, beta_sigma: float):
    """DB-MTL (Lin et al. 2023, Alg. 1), gradient-magnitude balancing: on the gradients of the
    log-losses (the strategy differentiates log L_t: loss-scale balancing), their moving averages
    ĝ_t ← β_k ĝ_t + (1−β_k) g_t (ĝ = g at the first step; β_k = β/(k+1)^σ), then
    d = max_s‖ĝ_s‖ · Σ_t ĝ_t/‖ĝ_t‖: every task's direction with the largest task's magnitude.
    Returns (d, state)."""
    b = beta / (step.astype(jnp.float32) + 1.0) ** beta_sigma
    avg = jnp.where(step == 0, g, b * state["avg"] + (1.0 - b) * g)
    norms = jnp.linalg.norm(avg, axis=1)
    return (jnp.max(norms) / (norms + EPS)) @ avg, {"avg": avg}


def excessmtl(g, state, step, lr: float):
    """ExcessMTL (He et al. 2024, Alg. 1): each task's excess risk estimated as g_tᵀ H_t⁻¹ g_t with
    the diagonal H_t = √(Σ_steps g_t²) (AdaGrad's accumulated squares), relative to its value at the
    first step; the task weights follow exponentiated gradient ascent on it,
    w_t ← w_t·exp(η·E_t/E_t(0)), renormalised to Σw = T (η: `lr`); d = Σ_t w_t g_t.
    Returns (d, weights, state): the weights also scale each head's gradient."""
    acc = state["acc"] + g * g
    risk = jnp.sum(g * g / jnp.sqrt(acc + 1e-7), axis=1)
    initial = jnp.where(step == 0, risk, state["initial"])
    w = state["weights"] * jnp.exp(lr * risk / (initial + EPS))
    w = g.shape[0] * w / jnp.sum(w)
    return w @ g, w, {"acc": acc, "initial": initial, "weights": w}


def _samples(g):
    """The S×T×P stack of independent samples' matrices (one sample: used for every role)."""
    g = g if g.ndim == 3 else g[None]
    return g[0], g[1 % g.shape[0]], g[2 % g.shape[0]]


def _cross_gram(a, b):
    """A·Bᵀ divided by the mean of ‖a_t‖‖b_t‖: step sizes on it are free of the gradients' scale."""
    scale = jnp.mean(jnp.linalg.norm(a, axis=1) * jnp.linalg.norm(b, axis=1)) + EPS
    return _dot(a, b.T) / scale


def modo(g, lam, gamma: float, rho: float):
    """MoDo (Chen et al. 2023, Alg. 1), double sampling: with G₁, G₂, G₃ the task gradients of three
    independent samples (the step splits the batch), λ ← Π_Δ(λ − γ(G₁G₂ᵀ + ρI)λ) (an unbiased
    stochastic step on ½‖Gᵀλ‖²), d = T·λᵀG₃. The Gram product is divided by the mean product of
    the rows' norms so that γ does not depend on the gradients' scale. Returns (d, λ)."""
    g1, g2, g3 = _samples(g)
    lam = project_simplex(lam - gamma * ((_cross_gram(g1, g2) + rho * jnp.eye(g1.shape[0])) @ lam))
    return g1.shape[0] * (lam @ g3), lam


def sdmgrad(g, w, reg: float, lr: float, iters: int):
    """SDMGrad (Xiao et al. 2023, Alg. 1): the direction-oriented weights
    w = argmin_{w∈Δ} ½‖Gᵀw + λḡ‖² (ḡ the mean gradient, λ: `reg`), by `iters` projected stochastic
    gradient steps w ← Π_Δ(w − lr·G₁(G₂ᵀw + λḡ₂)) on two independent samples, warm-started from
    the last step's w; d = T·(G₃ᵀw + λḡ₃)/(1 + λ) (λ → ∞: the sum; λ = 0: MGDA). As for MoDo, the
    products are divided by the mean product of the rows' norms. Returns (d, w)."""
    g1, g2, g3 = _samples(g)
    t = g1.shape[0]
    m = _cross_gram(g1, g2)
    pull = reg * jnp.mean(m, axis=1)  # G₁·λḡ₂ in the same units.

    def body(_, w):
        return project_simplex(w - lr * (m @ w + pull))

    w = jax.lax.fori_loop(0, iters, body, w)
    return t * (w @ g3 + reg * jnp.mean(g3, axis=0)) / (1.0 + reg), w
