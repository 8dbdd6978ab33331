"""Learning-rate schedules in units of epochs, and the reduce-on-plateau controller.

`step`, `cosine`, `onecycle` and `constant` are optax schedules of the step count. `plateau` uses
`optax.contrib.reduce_on_plateau`, updated once per epoch with the validation loss (Keras's
ReduceLROnPlateau); its `scale` multiplies every update in the train step.
"""

from __future__ import annotations

from typing import Any, Mapping

import optax

from mtljax.registry import Option, Registry

SCHEDULES = Registry("schedule")
# Options of every schedule (config `schedule.*`); a schedule adds its own at registration.
SCHEDULE_OPTIONS: dict[str, Option] = {
    "name": Option("constant", "the schedule's registered name", choices=lambda: SCHEDULES.names()),
}
STEP = {"step_epochs": Option(5, "multiply by gamma every step_epochs epochs (PyTorch's StepLR)", positive=True),
        "gamma": Option(0.1, "the factor of each step", minimum=0)}
ONECYCLE = {"pct_start": Option(0.3, "fraction of the steps spent warming up to the peak (lr)", positive=True,
                                below_one=True),
            "div_factor": Option(25.0, "the warm-up starts at lr / div_factor", positive=True),
            "final_div_factor": Option(1e4, "the run ends at lr / (div_factor * final_div_factor)", positive=True)}
MIN_LR = Option(1e-5, "the floor of the learning rate", minimum=0)
PLATEAU = {"factor": Option(0.5, "multiply by factor after `patience` epochs without improvement",
                            minimum=0, below_one=True),
           "patience": Option(3, "epochs without improvement of the validation loss", minimum=0),
           "cooldown": Option(0, "epochs after a reduction before counting again", minimum=0),
           "min_lr": MIN_LR}


def _constant(lr: float, sched: Mapping[str, Any], steps_per_epoch: int, epochs: int) -> optax.Schedule:
    return optax.constant_schedule(lr)


def _step(lr: float, sched: Mapping[str, Any], steps_per_epoch: int, epochs: int) -> optax.Schedule:
    return optax.exponential_decay(lr, transition_steps=sched["step_epochs"] * steps_per_epoch,
                                   decay_rate=sched["gamma"], staircase=True)


def _cosine(lr: float, sched: Mapping[str, Any], steps_per_epoch: int, epochs: int) -> optax.Schedule:
    return optax.cosine_decay_schedule(lr, decay_steps=epochs * steps_per_epoch,
                                       alpha=min(sched["min_lr"] / lr, 1.0))


def _onecycle(lr: float, sched: Mapping[str, Any], steps_per_epoch: int, epochs: int) -> optax.Schedule:
    """Smith & Topin's one-cycle policy (2019) with cosine phases, as PyTorch's OneCycleLR without
    momentum cycling: from lr / div_factor up to lr over pct_start of the steps, then down."""
    return optax.cosine_onecycle_schedule(epochs * steps_per_epoch, lr, pct_start=sched["pct_start"],
                                          div_factor=sched["div_factor"],
                                          final_div_factor=sched["final_div_factor"])


SCHEDULES.register("constant", _constant)
SCHEDULES.register("step", _step, STEP)
SCHEDULES.register("cosine", _cosine, {"min_lr": MIN_LR})
SCHEDULES.register("onecycle", _onecycle, ONECYCLE)
SCHEDULES.register("plateau", _constant, PLATEAU)  # The plateau controller below does the reducing.


def lr_schedule(lr: float, sched: Mapping[str, Any], steps_per_epoch: int, epochs: int) -> optax.Schedule:
    """The step-indexed learning-rate schedule named by `sched["name"]`."""
    return SCHEDULES[sched["name"]](lr, sched, steps_per_epoch, epochs)


def plateau_controller(lr: float, sched: Mapping[str, Any]) -> optax.GradientTransformationExtraArgs:
    """reduce_on_plateau, to be updated once per epoch with `value=val_loss`.

    For schedules other than `plateau` it has infinite patience, so its scale stays 1.
    """
    active = sched["name"] == "plateau"
    options = sched if active else {k: o.default for k, o in PLATEAU.items()}
    return optax.contrib.reduce_on_plateau(
        factor=options["factor"],
        patience=options["patience"] if active else 2**31 - 1,
        cooldown=options["cooldown"],
        min_scale=min(options["min_lr"] / lr, 1.0),
        accumulation_size=1,
    )
