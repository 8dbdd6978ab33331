"""MOML (Ye et al. 2021, "Multi-objective meta learning", Sec. 3-4): the loss weights as the
upper level of a bilevel problem whose upper objectives are every task's validation loss,
updated along MGDA's common descent direction of their hypergradients."""

import jax
import jax.numpy as jnp

from mtljax.mtl import bilevel
from mtljax.mtl.base import Strategy, register, weighted_static
from mtljax.mtl.solvers import gram, min_norm_weights, min_norm_weights_exact


def moml(objective, params, state, batch, look, rng, ctx):
    """w = T·softmax(ζ); H = ∂L^val(θ'(w(ζ)))/∂ζ (T×T, one row per task's validation loss);
    γ = argmin_{γ∈Δ} ‖γᵀH‖² and ζ ← ζ − Adam(γᵀH): a step that lowers every validation loss
    (to first order) where one exists."""
    options, t = ctx["options"], state["logits"].shape[0]
    weights_of = lambda z: t * jax.nn.softmax(z)
    losses_of = lambda z: bilevel.lookahead_losses(objective, params, batch, look, rng, weights_of(z),
                                                   options["inner_lr"])
    h = jax.jacrev(losses_of)(state["logits"])
    m = gram(h)
    gamma = min_norm_weights_exact(m) if t <= 10 else min_norm_weights(m)
    logits, opt = bilevel.adam_step(gamma @ h, state["logits"], state["opt"], options["lr"])
    return weights_of(logits), {"logits": logits, "opt": opt}


register("moml", Strategy("loss", computes=bilevel.weighted, loss=weighted_static, lookahead=moml,
                          init_state=lambda t, p: {"logits": jnp.zeros(t), "opt": bilevel.adam_init(t)}),
         bilevel.LOOKAHEAD_OPTIONS)
