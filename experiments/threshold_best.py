"""The best recipe found for the three MNIST tasks (digit, parity, threshold) within 10 minutes of
training per seed on a 2-core CPU.

Ingredients over `threshold.py`: a wider trunk (32, 64, 128 channels) with BatchNorm after every
convolution, a dense layer of 256 with dropout 0.3, on-device augmentation (shifts of up to 2
pixels, rotations of up to 10°, scalings of ±10 %), Adam under a one-cycle schedule peaking at
3e-3, batch 128, 30 epochs, and an exponential moving average of the weights (decay 0.999) that is
what gets evaluated and checkpointed. 2,000 training images are held out for validation.

    python -m mtljax.run experiments/threshold_best.py

Measured (5 seeds): 99.54 ± 0.06 / 99.77 ± 0.05 / 99.70 ± 0.04 % test accuracy (digit / parity /
threshold) from the checkpoints chosen by validation loss, 99.56 / 99.78 / 99.72 % at the last
epoch; 51 minutes for the 5 seeds while other training shared the CPU. The digit target of
99.65 % is not reached yet; docs/performance.md has the ablation.
"""

CONFIG = {
    "tasks": ["digit", "parity", "threshold"],
    "seeds": 5,
    "model": {"name": "cnn3", "features": [32, 64, 128], "batchnorm": True, "dense": 256, "dropout": 0.3},
    "optimizer": {"name": "adam", "lr": 3e-3},
    "schedule": {"name": "onecycle"},
    "augment": {"shift": 2.0, "rotate": 10.0, "scale": 0.1},
    "data": {"val_size": 2000},
    "train": {"epochs": 30, "batch_size": 128, "ema_decay": 0.999},
}
