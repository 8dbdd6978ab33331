"""Krum and Multi-Krum (Blanchard et al. 2017, "Machine learning with adversaries: Byzantine
tolerant gradient descent", Sec. 4; as in TorchJD, options named as there)."""

import jax.numpy as jnp

from mtljax.mtl.base import aggregator, from_gramian, register
from mtljax.registry import Option


def krum_weights(m: jnp.ndarray, n_byzantine: int = 0, n_selected: int = 1) -> jnp.ndarray:
    """Each row's score is the sum of its squared distances to its T − f − 2 nearest other rows
    (f = `n_byzantine`; ‖g_i − g_j‖² = M_ii + M_jj − 2M_ij, so the Gramian suffices); the
    `n_selected` rows of least score are averaged (Multi-Krum; 1: Krum). Returns the weights,
    scaled by T (identical rows give their sum); ties go to the first rows."""
    t = m.shape[0]
    norms = jnp.diag(m)
    distances = jnp.maximum(norms[:, None] + norms[None, :] - 2 * m, 0.0)
    nearest = jnp.sort(distances + jnp.diag(jnp.full(t, jnp.inf, m.dtype)), axis=1)[:, :t - n_byzantine - 2]
    chosen = jnp.argsort(jnp.sum(nearest, axis=1), stable=True)[:n_selected]
    return t * jnp.zeros(t, m.dtype).at[chosen].set(1.0 / n_selected)


def krum_problem(options, tasks) -> str | None:
    """Krum needs T ≥ n_byzantine + 3 rows (every row needs T − f − 2 ≥ 1 neighbours) and
    n_selected ≤ T."""
    t, f, k = len(tasks), options["n_byzantine"], options["n_selected"]
    if t < f + 3:
        return f"n_byzantine: {f} needs at least {f + 3} tasks (n_byzantine + 3); there are {t}"
    if k > t:
        return f"n_selected: {k} is more than the {t} tasks"
    return None


register("krum", aggregator(from_gramian(lambda m, losses, state, ctx: (krum_weights(m, **ctx["options"]), state)),
                            weighting=krum_weights, check=krum_problem),
         {"n_byzantine": Option(0, "Krum's number f of rows that may be adversarial", minimum=0),
          "n_selected": Option(1, "Multi-Krum's number of rows averaged (1: Krum)", positive=True)})
