"""Auto-Lambda (Liu, Li, Kuang & Davison 2022, "Auto-Lambda: disentangling dynamic task
relationships", Eq. 2-3): loss weights learned by the gradient of the validation losses after a
look-ahead step."""

import jax
import jax.numpy as jnp

from mtljax.mtl import bilevel
from mtljax.mtl.base import Strategy, register, weighted_static


def hypergradient(objective, params, batch, look, key, weights, inner_lr):
    """∇_w Σ_t L_t^val(θ − α∇θ Σ_s w_s L_s^train(θ)), exactly (second order through the look-ahead
    step; the paper approximates that term by finite differences)."""
    return jax.grad(lambda w: jnp.sum(bilevel.lookahead_losses(objective, params, batch, look, key, w, inner_lr)))(weights)


def auto_lambda(objective, params, state, batch, look, rng, ctx):
    """w ← w − Adam(hypergradient) (every task a primary task); the step then trains Σ_t w_t L_t."""
    options = ctx["options"]
    grad = hypergradient(objective, params, batch, look, rng, state["weights"], options["inner_lr"])
    weights, opt = bilevel.adam_step(grad, state["weights"], state["opt"], options["lr"])
    return weights, {"weights": weights, "opt": opt}


register("auto_lambda", Strategy("loss", computes=bilevel.weighted, loss=weighted_static, lookahead=auto_lambda,
                                 init_state=lambda t, p: {"weights": jnp.ones(t), "opt": bilevel.adam_init(t)}),
         bilevel.LOOKAHEAD_OPTIONS)
