"""MTL: how task losses and task gradients are combined, and their conflict diagnostics.

The public API (docs/api.md) for any training loop: `task_gradients`, `aggregate`, `weigh`,
`aggregation` (an optax transformation), `combine`, `method`, `methods`, `method_options`.
"""

from mtljax.mtl.api import (AggregationState, aggregate, aggregation, combine, context, flatten, method,
                            method_options, methods, task_gradients, task_weighted, weigh)

__all__ = ["AggregationState", "aggregate", "aggregation", "combine", "context", "flatten", "method",
           "method_options", "methods", "task_gradients", "task_weighted", "weigh"]
