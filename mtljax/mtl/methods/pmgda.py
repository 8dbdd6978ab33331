"""PMGDA (Zhang et al. 2024, "PMGDA: a preference-based multiple gradient descent algorithm",
Eq. 18 and 20; LibMOON's `pmgda`): MGDA's common descent where the losses lie on the preference
ray, and otherwise the direction that best descends every task while moving the losses towards
the ray at rate σ, from a linear program over the task gradients and the constraint's gradient.
The ray is the replica's loss weights (`pareto.rays`, docs/pareto.md); the losses aim along it."""

from mtljax.mtl import pareto
from mtljax.mtl.base import aggregator, register
from mtljax.mtl.solvers import gram
from mtljax.registry import Option


def pmgda(g, losses, state, ctx):
    """d = wᵀG with PMGDA's weights (Σ|w| = T); each task's head gets w_t of its gradient."""
    options = ctx["options"]
    w = pareto.pmgda_weights(gram(g), losses, ctx["weights"], options["h_tol"], options["sigma"])
    return w @ g, w, state


register("pmgda", aggregator(pmgda), {
    "h_tol": Option(1e-3, "distance of the losses from the ray below which the step is MGDA's", positive=True),
    "sigma": Option(0.5, "the least rate σ ∈ (0, 1] at which a correction step reduces that distance", positive=True)})
