"""Priority-Constrained Descent (Varam & AlHajri 2026, "Not all objectives are born equal:
priority-constrained descent for hierarchical multi-objective optimization"): the primary task's
gradient, distorted as little as it must be for every other task to make progress."""

import jax.numpy as jnp

from mtljax.mtl.base import aggregator, from_gramian, register, task_index
from mtljax.mtl.solvers import EPS, nonneg_qp
from mtljax.registry import Option


def pcd_weights(m: jnp.ndarray, primary: int = 0, tau: float = 0.5) -> jnp.ndarray:
    """d = argmin_d ½‖d − g_p‖² s.t. ⟨d, u_i⟩ ≥ τ‖g_p‖ for every secondary task i, u_i = g_i/‖g_i‖
    (p: `primary`, τ ∈ [0, 1]): the nearest direction to the primary gradient that decreases every
    secondary loss at a rate of at least τ‖g_p‖ per unit of its own gradient's norm. Invariant to
    the scale of any secondary loss; with no conflict, d = g_p. By duality d = g_p + Σ_i μ_i u_i
    with μ = argmin_{μ≥0} ½μᵀ(UUᵀ)μ − μᵀ(τ‖g_p‖1 − Ug_p), which needs only the Gramian M. Returns
    the weights of d on the rows of G, scaled by T (identical rows give their sum). A secondary
    with a zero gradient imposes nothing."""
    t = m.shape[0]
    norms = jnp.sqrt(jnp.maximum(jnp.diag(m), 0.0))
    others = jnp.array([i for i in range(t) if i != primary])
    live = norms[others] > EPS
    inv = jnp.where(live, 1.0 / jnp.where(live, norms[others], 1.0), 0.0)
    uu = m[others][:, others] * inv[:, None] * inv[None, :] + jnp.diag(1.0 - live)
    target = jnp.where(live, tau * norms[primary] - m[others, primary] * inv, 0.0)
    mu = nonneg_qp(uu, target)
    return t * jnp.zeros(t, m.dtype).at[primary].set(1.0).at[others].set(mu * inv)


def pcd(m, losses, state, ctx):
    options = ctx["options"]
    return pcd_weights(m, task_index(options["primary"], ctx["tasks"]), options["tau"]), state


def pcd_problem(options, tasks) -> str | None:
    """PCD needs its primary task, by name (or row index)."""
    primary = options["primary"]
    if primary is None:
        return f"primary: PCD needs its primary task; name one of {', '.join(tasks)}"
    if isinstance(primary, int) and not 0 <= primary < len(tasks) or isinstance(primary, str) and primary not in tasks:
        return f"primary: {primary!r} is not one of the tasks ({', '.join(tasks)})"
    if not 0 <= options["tau"] <= 1:
        return f"tau: must be in [0, 1], got {options['tau']!r}"
    return None


register("pcd", aggregator(from_gramian(pcd), gramian=pcd, check=pcd_problem),
         {"primary": Option(None, "PCD's primary task: a task's name (or its row, 0-based)", nullable=(str, int)),
          "tau": Option(0.5, "PCD's τ in [0, 1]: how much progress every secondary task must make", minimum=0)})
