"""MTL: how task losses and task gradients are combined, and their conflict diagnostics.

The public API (docs/api.md) for any training loop: `task_gradients`, `aggregate`, `weights`,
`weigh`, `aggregation` (an optax transformation), `combine`, `task_weighted`, `flatten`,
`method`, `methods`, `method_options`, `context`. One module per method: mtljax/mtl/methods/.
"""

from mtljax.mtl.api import (AggregationState, aggregate, aggregation, combine, context, flatten, method,
                            method_options, methods, task_gradients, task_weighted, weigh, weighted_methods,
                            weights)

__all__ = ["AggregationState", "aggregate", "aggregation", "combine", "context", "flatten", "method",
           "method_options", "methods", "task_gradients", "task_weighted", "weigh", "weighted_methods", "weights"]
