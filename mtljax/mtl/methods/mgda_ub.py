"""MGDA-UB (Sener & Koltun 2018, "Multi-task learning as multi-objective optimization", Eq. 6 and
Alg. 2): MGDA's weights from the gradients of the shared representation z, an upper bound of the
parameter-level problem that needs only the heads differentiated per task."""

from mtljax.mtl.base import register, representation_weighting
from mtljax.mtl.solvers import min_norm_weights_exact


def mgda_ub_weights(m):
    """The min-norm weights of the representation's Gramian (the exact small QP), times T so that
    agreeing tasks keep unit weights; the loss Σ_t w_t L_t is then differentiated once."""
    return m.shape[0] * min_norm_weights_exact(m)


register("mgda_ub", representation_weighting(mgda_ub_weights))
