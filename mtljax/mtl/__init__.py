"""MTL: how task losses and task gradients are combined, and their conflict diagnostics.

The public API (docs/api.md) for any training loop: `task_gradients`, `aggregate`, `weights`,
`weigh`, `aggregation` (an optax transformation), `combine`, `task_weighted`, `flatten`,
`method`, `methods`, `method_options`, `context`; for Pareto fronts (mtljax/mtl/pareto.py) rays
(`uniform_rays`, `sample_rays`), scalarizations, EPO's and ParetoMTL's directions and weights,
`hypervolume`. One module per method: mtljax/mtl/methods/.
"""

from mtljax.mtl.api import (AggregationState, aggregate, aggregation, combine, context, flatten, method,
                            method_options, methods, task_gradients, task_weighted, weigh, weighted_methods,
                            weights)
from mtljax.mtl.pareto import (condition_input, cosine, epo_direction, epo_weights, hypervolume, lattice, linear, pbi,
                               pmgda_weights, pmtl_direction, pmtl_weights, sample_rays, smooth_tchebycheff,
                               tchebycheff, uniform_rays)

__all__ = ["AggregationState", "aggregate", "aggregation", "combine", "context", "flatten", "method",
           "method_options", "methods", "task_gradients", "task_weighted", "weigh", "weighted_methods", "weights",
           "condition_input", "cosine", "epo_direction", "epo_weights", "hypervolume", "lattice", "linear", "pbi",
           "pmgda_weights", "pmtl_direction", "pmtl_weights", "sample_rays", "smooth_tchebycheff", "tchebycheff",
           "uniform_rays"]
