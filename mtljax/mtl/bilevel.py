"""What the bilevel methods (Auto-Lambda, MOML, FORUM) share: a look-ahead step on the training
batch and the validation losses after it, as functions of the loss weights.

The train step hands a bilevel method its look-ahead batch in `ctx["lookahead"]` (validation
items, or other training items: the method's option `lookahead`), so the whole method, its
second-order derivatives included, runs inside the compiled step. A model enters only through
an `Objective` (mtljax/mtl/gradients.py).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax

from mtljax.mtl import gradients
from mtljax.registry import Option

# The options every bilevel method owns.
LOOKAHEAD_OPTIONS = {
    "lookahead": Option("val", "where the look-ahead batch comes from: 'val' (the validation split) or 'train' "
                        "(other training items)", choices=("val", "train")),
    "inner_lr": Option(0.1, "the look-ahead step's size α: θ' = θ − α∇θ Σ_t w_t L_t(θ)", positive=True),
    "lr": Option(1e-3, "the learning rate of the loss weights (Adam)", positive=True),
}


def lookahead_of(ctx: Mapping[str, Any]) -> Mapping[str, jnp.ndarray]:
    """The look-ahead batch of the step.

    Raises:
      ValueError: there is none (a bilevel method outside the trainer's step).
    """
    if ctx.get("lookahead") is None:
        raise ValueError("a bilevel method (auto_lambda, moml, forum) learns its loss weights from a look-ahead step on "
                         "validation data: give the step a look-ahead batch (ctx['lookahead']), as the trainer does")
    return ctx["lookahead"]


def virtual_step(objective: gradients.Objective, params: Any, batch, key: jax.Array, weights: jnp.ndarray,
                 lr: float) -> Any:
    """θ' = θ − α∇θ Σ_t w_t L_t(θ) on the training batch (plain SGD, as Auto-Lambda's step)."""
    grads = jax.grad(lambda p: jnp.sum(weights * objective.losses(p, batch, key, 1)[0]))(params)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads)


def lookahead_losses(objective: gradients.Objective, params: Any, batch, look, key: jax.Array,
                     weights: jnp.ndarray, lr: float) -> jnp.ndarray:
    """The T validation losses after the look-ahead step, L_t^val(θ'(w)): differentiable in w."""
    ahead = virtual_step(objective, params, batch, key, weights, lr)
    return objective.losses(ahead, look, jax.random.fold_in(key, 1), 1)[0]


def adam_step(grad: jnp.ndarray, value: jnp.ndarray, opt_state: Any, lr: float) -> tuple[jnp.ndarray, Any]:
    """One Adam step of the loss weights' parameters (`adam_init` for the state)."""
    updates, opt_state = optax.adam(lr).update(grad, opt_state)
    return value + updates, opt_state


def adam_init(t: int) -> Any:
    """Adam's state for T parameters (its learning rate enters only `adam_step`)."""
    return optax.adam(1.0).init(jnp.zeros(t))


def weighted(strategy, objective: gradients.Objective, params, mtl_state, batch, rng, ctx) -> gradients.Gradient:
    """The gradient of a bilevel loss weighting: its weights from the look-ahead
    (`strategy.lookahead`), then Σ_t w_t L_t differentiated once (`gradients.weighted_loss`)."""
    look = lookahead_of(ctx)
    weights, state = strategy.lookahead(objective, params, mtl_state, batch, look, rng, ctx)
    return gradients.weighted_loss(strategy, objective, params, state, batch, rng,
                                   {**ctx, "weights": jax.lax.stop_gradient(weights)})
