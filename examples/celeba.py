"""CelebA's 40 face attributes as 40 binary tasks (Liu et al. 2015; the MTL benchmark of Sener &
Koltun 2018), read from TensorFlow Datasets with no new Python: each task is declared over one of
TFDS's `attributes/<name>` label columns, its classes (0, 1) read from the data.

    pip install -e ".[tfds]" && tfds build celeb_a --file_format=array_record   # needs the network
    python -m mtljax.run examples/celeba.py

The source is `tfds:celeb_a` under `data.dir`/tfds; its train and test splits are used (its
validation split is not read: validation comes from train, as for every source). 162,770 training
images of 218×178×3 take 19 GB as uint8 in memory.
"""

ATTRIBUTES = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
]

CONFIG = {
    "tasks": [a.lower() for a in ATTRIBUTES],
    "columns": {a.lower(): f"attributes/{a}" for a in ATTRIBUTES},
    "data": {"source": "tfds:celeb_a", "val_size": 10000},
    "model": {"name": "cnn3", "features": [32, 64, 64], "dense": 256, "pool": "gap"},
    "train": {"epochs": 5, "batch_size": 128},
}
