"""FORUM (Ye et al. 2024, "A first-order multi-gradient algorithm for multi-objective bi-level
optimization", Alg. 1): the bilevel problem of the loss weights w (upper level: every task's
validation loss; lower level: Σ_t w_t L_t on training data) as one constrained multi-objective
problem in (θ, w), solved by first-order multi-gradient steps."""

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from mtljax.mtl import bilevel
from mtljax.mtl.base import aggregator, register
from mtljax.mtl.gradients import Gradient, task_gradients
from mtljax.mtl.solvers import dot, project_simplex, simplex_qp_exact
from mtljax.registry import Option


def forum_direction(upper: jnp.ndarray, gq: jnp.ndarray, eta: float) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The multipliers (γ ∈ Δ_T, μ ≥ 0) of d = γᵀF + μ∇q, F the T upper gradients (rows) and ∇q the
    constraint's, for the step z ← z − βd: the dual of max_d min_i ⟨F_i, d⟩ − ½‖d‖² s.t.
    ⟨∇q, d⟩ ≥ φ, φ = η‖∇q‖² (every upper objective and q decrease), i.e.
    argmin_{γ∈Δ, μ≥0} ½‖γᵀF + μ∇q‖² − μφ (an exact QP over T+1 variables: `simplex_qp_exact`)."""
    rows = jnp.concatenate([upper, gq[None]])
    t = upper.shape[0]
    q = jnp.zeros(t + 1, upper.dtype).at[t].set(-eta * dot(gq, gq))
    x = simplex_qp_exact(dot(rows, rows.T), q, simplex=[1.0] * t + [0.0])
    return x[:t], x[t]


def forum(strategy, objective, params, mtl_state, batch, rng, ctx) -> Gradient:
    """One FORUM step with z = (θ, w): the lower level f(w, θ) = Σ_t w_t L_t^train(θ), its
    look-ahead θ_K = θ − α∇θ f (one step, held fixed: first order), the constraint
    q(w, θ) = f(w, θ) − f(w, θ_K) ≤ 0 with ∇θ q = ∇θ f and ∇w q = L^train(θ) − L^train(θ_K); the
    upper gradients are each task's validation gradient (zero in w). θ gets T·d_θ (the optimizer's
    gradient, so that agreeing tasks give their sum) and w ← Π(w − β d_w), Π the projection on
    T·Δ."""
    options, look = ctx["options"], bilevel.lookahead_of(ctx)
    w = mtl_state["weights"]
    f = lambda p: objective.losses(p, batch, rng, 1)
    losses, (counts, stats) = f(params)
    grad_f = jax.grad(lambda p: jnp.sum(w * f(p)[0]))(params)
    ahead = jax.lax.stop_gradient(jax.tree.map(lambda p, g: p - options["inner_lr"] * g, params, grad_f))
    gq_w = losses - f(ahead)[0]
    _, jac = task_gradients(lambda p: objective.losses(p, look, jax.random.fold_in(rng, 1), 1)[0], params)
    upper = jax.vmap(lambda tree: ravel_pytree(tree)[0])(jac)
    flat_f, unravel = ravel_pytree(grad_f)
    gq = jnp.concatenate([flat_f, gq_w])
    upper = jnp.concatenate([upper, jnp.zeros((upper.shape[0], w.shape[0]), upper.dtype)], axis=1)
    gamma, mu = forum_direction(upper, gq, options["eta"])
    d = gamma @ upper + mu * gq
    t = w.shape[0]
    new_w = t * project_simplex((w - options["lr"] * d[-t:]) / t)
    grads = unravel(t * d[:-t])
    return Gradient(losses, counts, stats if stats else objective.batch_stats, grads, {"weights": new_w})


register("forum", aggregator(None, computes=forum, lookahead=True,
                             init_state=lambda t, p: {"weights": jnp.ones(t)}),
         {**bilevel.LOOKAHEAD_OPTIONS,
          "lr": Option(0.01, "FORUM's step size β of the loss weights", positive=True),
          "eta": Option(0.1, "FORUM's η: the constraint's decrease φ = η‖∇q‖²", positive=True)})
