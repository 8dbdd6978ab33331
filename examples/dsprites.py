"""dSprites (Matthey et al. 2017) from TensorFlow Datasets as five tasks over its latent factors,
with no new Python: shape, scale and orientation classified, the x and y positions regressed.

    pip install -e ".[tfds]" && tfds build dsprites --file_format=array_record   # needs the network
    python -m mtljax.run examples/dsprites.py

TFDS's dsprites has a train split only: 20 % of its 737,280 images are held out for test
(`data.test_fraction`, drawn with `data.split_seed`).
"""

CONFIG = {
    "tasks": ["shape", "scale", "orientation", "x", "y"],
    "columns": {
        "shape": "label_shape",
        "scale": "label_scale",
        "orientation": {"column": "label_orientation", "classes": 40},
        "x": {"column": "value_x_position", "kind": "regression"},
        "y": {"column": "value_y_position", "kind": "regression"},
    },
    "data": {"source": "tfds:dsprites", "val_size": 20000},
    "model": {"name": "cnn3", "features": [32, 64, 64], "dense": 128},
    "train": {"epochs": 3, "batch_size": 128},
}
