"""COSMOS (Ruchte & Grabocka 2021, "Scalable Pareto front approximation for deep multi-objective
learning", Eq. 4; TorchJD's and LibMOON's `cosmos`): the linear scalarization Σ_t r_t L_t minus
λ times the cosine between the ray and the losses, which pulls the losses onto the ray.

With `pareto.condition` 'input' this is the COSMOS method of the paper, one model for every ray:
each step draws r ~ Dir(α) and the network sees it as input channels (mtljax/train/step.py).
Otherwise the ray is the replica's loss weights (`pareto.rays`: one model per ray)."""

from mtljax.mtl import pareto
from mtljax.mtl.base import loss_weighting, register
from mtljax.registry import Option


def cosmos(losses, params, state, ctx):
    """Σ_t r_t L_t - λ cos(r, L)."""
    ray = ctx["weights"]
    return pareto.linear(losses, ray) - ctx["options"]["lamda"] * pareto.cosine(losses, ray), state


register("cosmos", loss_weighting(cosmos), {
    "lamda": Option(2.0, "COSMOS's weight λ of the cosine penalty (named as in its code)", minimum=0)})
