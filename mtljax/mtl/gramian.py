"""Jacobian descent without the Jacobian: the Gramian M = J·Jᵀ of the task gradients of the shared
parameters, computed a column at a time, then one backward pass of Σ_t w_t L_t.

The Jacobian path (`gradients.aggregated`) holds J, T×P: memory grows with the number of tasks
times the number of parameters. A method that needs only M (UPGrad, MGDA, DualProj, Nash-MTL,
CAGrad, Aligned-MTL, FairGrad, Krum, PCD, ConicGrad, CR-MOGM: their `Strategy.gramian`) can do
without it: column j of M is J(Jᵀe_j), task j's gradient pushed forward again, and only one
gradient is alive at a time; the weights w then make the direction in one more pullback,
d = Jᵀw. Memory does not grow with T; time is T pullbacks and T pushes (the Jacobian path: T
pullbacks). TorchJD's `autogram` engine does the same job layer by layer
(docs/performance.md compares the two paths).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtljax.mtl.gradients import Gradient, Objective

ENGINES = ("auto", "jacobian", "gramian")
# `mtl.engine: auto` takes the Gramian path from this many tasks on. Measured (docs/performance.md):
# the Jacobian path's memory grows with T (its T pullbacks' buffers), the Gramian path's does not;
# they cross between 3 and 10 tasks on the VGG and the MLP.
AUTO_TASKS = 10


def supports(strategy, microbatch: int = 0, batch_size: int = 0) -> bool:
    """Whether the Gramian path can run `strategy`: a method defined by the Gramian alone, on one
    sample of the batch, not micro-batched (the batch's Gramian is not the sum of its parts')."""
    whole = microbatch <= 0 or microbatch >= batch_size
    return strategy.kind == "gradient" and strategy.gramian is not None and strategy.samples == 1 and whole


def gramian_of(pull, params, shared, t: int) -> tuple[jnp.ndarray, dict]:
    """M = J_s·J_sᵀ (T×T) of the losses whose vjp pullback is `pull` (v ↦ Jᵀv), J_s their Jacobian
    in the `shared` subtrees, one column per task in a `lax.scan`; and the sum of the task
    gradients of every other subtree (heads, a task's own experts).

    Column j is J(Jᵀe_j): task j's gradient (a pullback through the stored forward pass) pushed
    forward again by the pullback's transpose (`jax.linear_transpose`, on the same stored pass; it
    runs through custom-VJP layers such as mtljax's convolutions, where `jax.jvp` cannot). One
    gradient is alive at a time.
    """
    push = jax.linear_transpose(pull, jnp.zeros(t, jnp.float32))

    def column(own, j):
        grad = pull(jax.nn.one_hot(j, t, dtype=jnp.float32))[0]
        tangent = {k: grad[k] if k in shared else jax.tree.map(jnp.zeros_like, v) for k, v in params.items()}
        own = {k: jax.tree.map(jnp.add, own[k], grad[k]) for k in own}
        return own, push((tangent,))[0]

    zero = {k: jax.tree.map(jnp.zeros_like, v) for k, v in params.items() if k not in shared}
    own, m = jax.lax.scan(column, zero, jnp.arange(t))
    return 0.5 * (m + m.T), own  # Symmetric up to rounding; made exactly so.


def gramian_aggregated(strategy, objective: Objective, params, mtl_state, batch, rng, ctx) -> Gradient:
    """A Gramian method's gradient without holding the Jacobian: M (`gramian_of`), the method's
    weights from M (`strategy.gramian`), then the shared subtrees get Jᵀw (one more pullback) and
    every other subtree the sum of its tasks' gradients, as on the Jacobian path."""
    shared = tuple(k for k in objective.shared if k in params)

    def losses_of(p):
        losses, aux = objective.losses(p, batch, rng, 1)
        return strategy.differentiated(losses, p), (losses, aux)

    differentiated, pull, (losses, (counts, stats)) = jax.vjp(losses_of, params, has_aux=True)
    m, own = gramian_of(pull, params, shared, differentiated.shape[0])
    weights, new_state = strategy.gramian(m, losses, mtl_state, ctx)
    direction = pull(jax.lax.stop_gradient(weights).astype(differentiated.dtype))[0]
    grads = {k: direction[k] if k in shared else own[k] for k in params}
    return Gradient(losses, counts, stats if stats else objective.batch_stats, grads, new_state)


def use_gramian(engine: str, strategy, tasks: int, microbatch: int = 0, batch_size: int = 0) -> bool:
    """Whether a run takes the Gramian path: `mtl.engine` "gramian" (where `supports`), "jacobian"
    never, "auto" where it is supported and there are AUTO_TASKS tasks or more."""
    if engine == "jacobian" or not supports(strategy, microbatch, batch_size):
        return False
    return engine == "gramian" or tasks >= AUTO_TASKS
