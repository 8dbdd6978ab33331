"""Exact Pareto Optimal search, EPO (Mahapatra & Rajan 2020, "Multi-task learning with user
preferences: gradient descent with controlled ascent in Pareto optimization", §3.2): the task
weights of a linear program over the Gramian that first moves the losses onto the preference ray
(balance mode), then descends along it (descent mode). The ray is the replica's loss weights
(`pareto.rays`, docs/pareto.md); the weights come from mtljax/mtl/pareto.py's `epo_weights`."""

from mtljax.mtl import pareto
from mtljax.mtl.base import aggregator, register
from mtljax.mtl.solvers import gram
from mtljax.registry import Option


def epo(g, losses, state, ctx):
    """d = T·βᵀG with EPO's β (on the simplex); each task's head gets T·β_t of its gradient, as
    EPO's loss Σ_t β_t L_t gives it."""
    beta = pareto.epo_weights(gram(g), losses, ctx["weights"], ctx["options"]["eps"])
    t = g.shape[0]
    return t * (beta @ g), t * beta, state


register("epo", aggregator(epo), {"eps": Option(1e-4, "EPO's tolerance on the non-uniformity μ: above it the "
                                                "balance mode, below it the descent mode", positive=True)})


