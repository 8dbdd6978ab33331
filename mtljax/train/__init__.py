"""Training: state, the train step, the epoch loop, checkpoints, sweeps, optimizers, schedules."""
