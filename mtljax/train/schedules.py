"""Learning-rate schedules in units of epochs, and the reduce-on-plateau controller.

`step`, `cosine` and `constant` are optax schedules of the step count. `plateau` uses
`optax.contrib.reduce_on_plateau`, updated once per epoch with the validation loss (Keras's
ReduceLROnPlateau); its `scale` multiplies every update in the train step.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import optax

SCHEDULE_DEFAULTS: dict[str, Any] = {
    "name": "constant",
    "step_epochs": 5,  # step: multiply by gamma every step_epochs epochs (PyTorch's StepLR).
    "gamma": 0.1,
    "factor": 0.5,  # plateau: multiply by factor after `patience` epochs without improvement.
    "patience": 3,
    "cooldown": 0,
    "min_lr": 1e-5,  # plateau and cosine: the floor.
}


def _constant(lr: float, sched: Mapping[str, Any], steps_per_epoch: int, epochs: int) -> optax.Schedule:
    return optax.constant_schedule(lr)


def _step(lr: float, sched: Mapping[str, Any], steps_per_epoch: int, epochs: int) -> optax.Schedule:
    return optax.exponential_decay(lr, transition_steps=sched["step_epochs"] * steps_per_epoch,
                                   decay_rate=sched["gamma"], staircase=True)


def _cosine(lr: float, sched: Mapping[str, Any], steps_per_epoch: int, epochs: int) -> optax.Schedule:
    return optax.cosine_decay_schedule(lr, decay_steps=epochs * steps_per_epoch,
                                       alpha=min(sched["min_lr"] / lr, 1.0))


SCHEDULES: dict[str, Callable[..., optax.Schedule]] = {
    "constant": _constant,
    "step": _step,
    "cosine": _cosine,
    "plateau": _constant,  # The plateau controller below does the reducing.
}


def lr_schedule(lr: float, sched: Mapping[str, Any], steps_per_epoch: int, epochs: int) -> optax.Schedule:
    """The step-indexed learning-rate schedule named by `sched["name"]`."""
    return SCHEDULES[sched["name"]](lr, sched, steps_per_epoch, epochs)


def plateau_controller(lr: float, sched: Mapping[str, Any]) -> optax.GradientTransformationExtraArgs:
    """reduce_on_plateau, to be updated once per epoch with `value=val_loss`.

    For schedules other than `plateau` it has infinite patience, so its scale stays 1.
    """
    active = sched["name"] == "plateau"
    return optax.contrib.reduce_on_plateau(
        factor=sched["factor"],
        patience=sched["patience"] if active else 2**31 - 1,
        cooldown=sched["cooldown"],
        min_scale=min(sched["min_lr"] / lr, 1.0),
        accumulation_size=1,
    )
