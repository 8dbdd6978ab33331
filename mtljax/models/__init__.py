"""Models: backbones by name, task heads, and the fast CPU ops they are built from."""

from mtljax.models.backbones import (BACKBONES, MODEL_DEFAULTS, Head, MultiTaskModel, build_model,
                                     flatten_or_gap, model_params, register_backbone)

__all__ = ["BACKBONES", "MODEL_DEFAULTS", "Head", "MultiTaskModel", "build_model", "flatten_or_gap",
           "model_params", "register_backbone"]
