"""TrimmedMean (Yin et al. 2018, "Byzantine-robust distributed learning: towards optimal
statistical rates", Def. 2; as in TorchJD, option named as there)."""

import jax.numpy as jnp

from mtljax.mtl.base import aggregator, register, stateless
from mtljax.registry import Option


def trimmed_mean(g: jnp.ndarray, trim_number: int = 1) -> jnp.ndarray:
    """Coordinate by coordinate, the mean of the rows' values without the `trim_number` largest
    and the `trim_number` smallest; scaled by T (identical rows give their sum). Not a weighting
    of the rows: each coordinate drops its own."""
    t = g.shape[0]
    return t * jnp.mean(jnp.sort(g, axis=0)[trim_number:t - trim_number], axis=0)


def trimmed_problem(options, tasks) -> str | None:
    """Something must remain: T ≥ 2·trim_number + 1."""
    k = options["trim_number"]
    if len(tasks) < 2 * k + 1:
        return f"trim_number: {k} trims all of the {len(tasks)} tasks' values; it needs at least {2 * k + 1} tasks"
    return None


register("trimmed_mean", aggregator(stateless(trimmed_mean), check=trimmed_problem),
         {"trim_number": Option(1, "values removed at each end of every coordinate (2·trim_number in all)",
                                minimum=0)})
