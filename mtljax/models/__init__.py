"""Models: backbones by name, task heads, and the fast CPU ops they are built from."""

from mtljax.models.backbones import (BACKBONES, MODEL_OPTIONS, Head, MultiTaskModel, build_model, default_config,
                                     flatten_or_gap, model_params)

__all__ = ["BACKBONES", "MODEL_OPTIONS", "Head", "MultiTaskModel", "build_model", "default_config",
           "flatten_or_gap", "model_params"]
