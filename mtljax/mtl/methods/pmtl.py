"""Pareto Multi-Task Learning, ParetoMTL (Lin et al. 2019, "Pareto multi-task learning", Eq. 14-16):
the min-norm point of the task gradients and of the gradients of the violated constraints that
keep the losses in the preference's cone, closer in angle to the ray than to any reference
vector. The ray is the replica's loss weights (`pareto.rays`, docs/pareto.md); the reference
vectors are the evenly spread rays of a lattice of `divisions` (mtljax/mtl/pareto.py's
`lattice`: 4 gives the paper's 5 vectors for two tasks, 15 for three)."""

import jax.numpy as jnp

from mtljax.mtl import pareto
from mtljax.mtl.base import aggregator, register
from mtljax.mtl.solvers import gram
from mtljax.registry import Option


def pmtl(g, losses, state, ctx):
    """d = wᵀG with ParetoMTL's weights (Σ|w| = T); each task's head gets w_t of its gradient, as the
    weighted loss Σ_t w_t L_t gives it. During the first `init_steps` steps the search for a
    feasible start (Eq. 13) leaves the task gradients out while a constraint is violated."""
    options, t = ctx["options"], g.shape[0]
    refs = jnp.asarray(pareto.lattice(options["divisions"], t), g.dtype)
    w = pareto.pmtl_weights(gram(g), losses, ctx["weights"], refs, initial=ctx["step"] < options["init_steps"])
    return w @ g, w, state


register("pmtl", aggregator(pmtl), {
    "divisions": Option(4, "divisions of the lattice of reference vectors whose cones divide the front (4: five "
                        "vectors for two tasks)", positive=True),
    "init_steps": Option(100, "steps of the search for a start inside the preference's cone", minimum=0)})
