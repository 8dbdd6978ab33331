"""A new task in one file: the digit modulo 3, a three-class classification task.

Importing this module registers it; an experiment file that imports it can then name it in
`tasks` (examples/extended_experiment.py). Nothing in the package changes.
"""

from mtljax import tasks

tasks.TASKS.register("mod3", tasks.classification(
    num_classes=3,
    label_fn=lambda raw: raw["digit"] % 3,  # Raw labels: whatever the dataset provides ("digit" here).
    class_names=("0 mod 3", "1 mod 3", "2 mod 3"),
    sources=("digit",),  # Checked against the dataset's labels when a config is validated.
))
