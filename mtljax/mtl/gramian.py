"""Jacobian descent without the Jacobian: the Gramian M = J·Jᵀ of the task gradients of the shared
parameters, computed a column at a time, then one backward pass of Σ_t w_t L_t.

The Jacobian path (`gradients.aggregated`) holds J, T×P: memory grows with the number of tasks
times the number of parameters. A method that needs only M (UPGrad, MGDA, DualProj, Nash-MTL,
CAGrad, Aligned-MTL, FairGrad, Krum, PCD, ConicGrad, CR-MOGM: their `Strategy.gramian`) can do
without it: column j of M is J(Jᵀe_j), task j's gradient pushed forward again (a forward-mode
pass; mtljax's custom-VJP layers trace as plain JAX for it), and only one gradient is alive at a
time; the weights w then make the direction in one more pullback, d = Jᵀw. Memory does not grow
with T; time is T + 1 forward passes, T + 1 pullbacks and T forward-mode passes (the Jacobian
path: one forward pass and T pullbacks). TorchJD's `autogram` engine does the same job layer by
layer (docs/performance.md compares the two paths).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mtljax.mtl.gradients import Gradient, Objective

ENGINES = ("auto", "jacobian", "gramian")
# `mtl.engine: auto` takes the Gramian path from this many tasks on. Measured (docs/performance.md):
# the Gramian path took less memory at every T measured (3, 10, 40) on the VGG and the MLP, but
# 2-3× the Jacobian path's time on the VGG (0.9-1.4× on the MLP); from 10 tasks the Jacobian
# path's memory is ~6× a plain step's and grows with T (its T pullbacks' buffers), the Gramian
# path's stays under 1.7×.
AUTO_TASKS = 10


def supports(strategy, microbatch: int = 0, batch_size: int = 0) -> bool:
    """Whether the Gramian path can run `strategy`: a method defined by the Gramian alone, on one
    sample of the batch, not micro-batched (the batch's Gramian is not the sum of its parts')."""
    whole = microbatch <= 0 or microbatch >= batch_size
    return strategy.kind == "gradient" and strategy.gramian is not None and strategy.samples == 1 and whole


def gramian_of(loss_fn, params, shared, t: int, push=None) -> tuple[jnp.ndarray, dict]:
    """M = J_s·J_sᵀ (T×T) of the losses `loss_fn(params)` (T), J_s their Jacobian in the `shared`
    subtrees, one column per task in a `lax.scan`; and the sum of the task gradients of every
    other subtree (heads, a task's own experts).

    Column j is J(Jᵀe_j): task j's gradient (a forward pass and its pullback, made anew in every
    column: no forward pass's residuals outlive their column; the optimization barrier keeps XLA
    from hoisting that loop-invariant pass out of the loop) pushed forward again by `push`
    (tangent tree ↦ J·tangent: a forward-mode pass, which stores nothing); without one, by the
    pullback's transpose (`jax.linear_transpose`), which works through any custom-VJP layer but
    keeps more buffers alive. One gradient is alive at a time.
    """

    def column(own, j):
        p, j = jax.lax.optimization_barrier((params, j))
        _, pull = jax.vjp(loss_fn, p)
        grad = jax.lax.optimization_barrier(pull(jax.nn.one_hot(j, t, dtype=jnp.float32))[0])
        tangent = {k: grad[k] if k in shared else jax.tree.map(jnp.zeros_like, v) for k, v in params.items()}
        own = {k: jax.tree.map(jnp.add, own[k], grad[k]) for k in own}
        if push is None:
            return own, jax.linear_transpose(pull, jnp.zeros(t, jnp.float32))((tangent,))[0]
        return own, push(tangent)

    zero = {k: jax.tree.map(jnp.zeros_like, v) for k, v in params.items() if k not in shared}
    own, m = jax.lax.scan(column, zero, jnp.arange(t))
    return 0.5 * (m + m.T), own  # Symmetric up to rounding; made exactly so.


def forward_push(objective: Objective, loss_fn, params):
    """tangent ↦ J·tangent by `jax.jvp` of `loss_fn`, traced in the objective's `forward` context
    (the model's custom-VJP layers as plain JAX); None where the model has no such twin (a
    custom-VJP layer without one, the hand-written MLP): then the pullback's transpose serves."""
    if objective.forward is None:
        return None

    def push(tangent):
        with objective.forward():
            return jax.jvp(loss_fn, (params,), (tangent,))[1]

    try:
        jax.eval_shape(push, jax.tree.map(jnp.zeros_like, params))
    except TypeError:  # "can't apply forward-mode autodiff (jvp) to a custom_vjp function"
        return None
    return push


def gramian_aggregated(strategy, objective: Objective, params, mtl_state, batch, rng, ctx) -> Gradient:
    """A Gramian method's gradient without holding the Jacobian: M (`gramian_of`, pushing forward by
    `forward_push` where the model allows it), the method's weights from M (`strategy.gramian`),
    then the shared subtrees get Jᵀw (one more pullback) and every other subtree the sum of its
    tasks' gradients, as on the Jacobian path. Traced in the objective's `low_memory` context."""
    with objective.low_memory():
        return _gramian_aggregated(strategy, objective, params, mtl_state, batch, rng, ctx)


def _gramian_aggregated(strategy, objective: Objective, params, mtl_state, batch, rng, ctx) -> Gradient:
    """`gramian_aggregated`'s computation, traced in whatever context it set."""
    shared = tuple(k for k in objective.shared if k in params)

    def losses_of(p):
        losses, aux = objective.losses(p, batch, rng, 1)
        return strategy.differentiated(losses, p), (losses, aux)

    loss_fn = lambda p: losses_of(p)[0]
    m, own = gramian_of(loss_fn, params, shared, jax.eval_shape(loss_fn, params).shape[0],
                        forward_push(objective, loss_fn, params))
    after, m = jax.lax.optimization_barrier((params, m))  # The last forward pass after the columns.
    differentiated, pull, (losses, (counts, stats)) = jax.vjp(losses_of, after, has_aux=True)
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
