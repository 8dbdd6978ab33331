"""An experiment using the four components of this folder: the task `mod3` beside `parity`, the
backbone `conv_gap` in the architecture `adapters`, and the strategy `hardest_first`.

    python -m mtljax.run examples/extended_experiment.py

`imports` names the modules that register them: they are imported before the config is checked,
and again by `evaluate`, `predict` and `--resume`, which read the run's config.json.
"""

CONFIG = {
    "imports": ["examples.my_task", "examples.my_backbone", "examples.my_architecture", "examples.my_strategy"],
    "tasks": ["mod3", "parity"],
    "model": {"name": "conv_gap", "width": 16, "dense": 32, "architecture": "adapters", "adapters": {"hidden": 8}},
    "mtl": {"strategy": "hardest_first", "hardest_first": {"temperature": 2.0}},
    "train": {"epochs": 2, "batch_size": 64},
}
