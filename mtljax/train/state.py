"""The train state: everything that changes during training, as one pytree (checkpointed whole)."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training (a pytree, checkpointed whole).

    Attributes:
      step: number of train steps taken.
      params: model parameters, and the MTL strategy's own under `params["mtl"]`.
      batch_stats: BatchNorm running statistics ({} when the model has none).
      opt_state: the optax state.
      plateau: state of the reduce-on-plateau controller; its `scale` multiplies the updates.
      hyper: this replica's swept values, `{dotted key: scalar}` ({} outside sweeps; sweeps.py).
      mtl: the MTL strategy's state (mtljax/mtl/strategies.py; {} for stateless strategies).
      ema: `{"params", "batch_stats"}` averaged over the steps (`train.ema_decay`; None when off):
        what evaluation and checkpoint loading use when present (`eval_variables`).
    """

    step: jnp.ndarray
    params: Any
    batch_stats: Any
    opt_state: Any
    plateau: Any
    hyper: Any = flax.struct.field(default_factory=dict)
    mtl: Any = flax.struct.field(default_factory=dict)
    ema: Any = None


def create_state(model, tx: optax.GradientTransformation, plateau, rng: jax.Array,
                 image_shape: tuple[int, ...], strategy: Any, ema: bool = False, rows: int = 0) -> TrainState:
    """Initialises parameters with `rng`, the MTL `strategy`'s parameters (under `params["mtl"]`,
    trained by the same optimizer) and state, and the optimizer and plateau states; with `ema`,
    the moving average starts at the initial parameters and statistics. The strategy's state is
    sized for task-gradient rows of `rows` entries (0: the model's shared parameters)."""
    variables = model.init(rng, jnp.zeros((1, *image_shape), jnp.float32), train=False)
    params = dict(variables["params"])
    n_tasks = len(model.heads)
    extra = strategy.init_params(n_tasks)
    if extra:
        params["mtl"] = extra
    batch_stats = variables.get("batch_stats", {})
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=batch_stats,
        opt_state=tx.init(params),
        plateau=plateau.init(jnp.zeros(())),
        mtl=strategy.init_state(n_tasks, rows or sum(a.size for name in model.shared_params() if name in params
                                                     for a in jax.tree.leaves(params[name]))),
        ema={"params": params, "batch_stats": batch_stats} if ema else None,
    )


def eval_variables(state: TrainState) -> tuple[Any, Any]:
    """(params, batch_stats) to evaluate: the exponential moving average when kept, else the current."""
    source = state.ema or {"params": state.params, "batch_stats": state.batch_stats}
    return source["params"], source["batch_stats"]


def ema_update(ema: Any, new: Any, decay: float, step: jnp.ndarray) -> Any:
    """`ema + (1 - d)·(new - ema)` with `d = min(decay, (1 + step) / (10 + step))`.

    The warm-up (TensorFlow's ExponentialMovingAverage with num_updates) keeps the first steps from
    weighting the initialisation for ~1/(1 - decay) steps; the difference form leaves an unchanged
    value (a frozen parameter) exactly as it was."""
    step = step.astype(jnp.float32)
    d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
    return jax.tree.map(lambda e, x: e + (1.0 - d) * (x - e), ema, new)
