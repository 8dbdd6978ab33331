"""Transfer (the Keras transfer project): train digit, then a new parity head on the frozen trunk.

Stage 1 (`transfer_digit`) trains the threshold.py trunk with a digit head. Stage 2
(`transfer_parity`) restores stage 1's best checkpoint into the trunk, freezes it
(`optax.multi_transform` with `set_to_zero`: its weights stay bit-identical) and trains a new parity
head. Stage 3 (`transfer_parity_finetune`) starts from the same checkpoint but trains everything.
That project reached 98.85 % parity with the frozen trunk. One command runs all three:

    python -m mtljax.run experiments/transfer.py

Measured here (2-core CPU): transfer_digit: digit 99.33 % test accuracy, 1.0 min (run
20261121-221753); transfer_parity: parity 99.39 % test accuracy, 0.3 min (run 20261121-221853);
transfer_parity_finetune: parity 99.48 % test accuracy, 0.5 min (run 20261121-221909).
"""

from experiments.threshold import CONFIG as BASE

REFERENCE = {"parity": 98.85}  # The Keras transfer project, frozen trunk, test accuracy %.

DIGIT = {**BASE, "name": "transfer_digit", "tasks": ["digit"]}
PARITY = {**BASE, "name": "transfer_parity", "tasks": ["parity"],
          "init": {"run": "stage:transfer_digit", "params": ["backbone"]},
          "train": {**BASE["train"], "epochs": 5, "freeze": ["backbone"]}}
FINETUNE = {**PARITY, "name": "transfer_parity_finetune", "train": {**PARITY["train"], "freeze": []}}

STAGES = [DIGIT, PARITY, FINETUNE]
