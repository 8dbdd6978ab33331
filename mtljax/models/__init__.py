"""Models: backbones and multi-task architectures by name, task heads, and the fast CPU ops they are built from."""

from mtljax.models.architectures import (ARCHITECTURE_OPTIONS, ARCHITECTURES, Head, HardSharing, MultiTaskModel,
                                         build_model, encode, expand_shared, has_blocks, param_count)
from mtljax.models.backbones import (BACKBONES, MODEL_OPTIONS, build_backbone, default_config, flatten_or_gap,
                                     input_problem, model_params)

__all__ = ["ARCHITECTURE_OPTIONS", "ARCHITECTURES", "BACKBONES", "MODEL_OPTIONS", "HardSharing", "Head", "MultiTaskModel",
           "build_backbone", "build_model", "default_config", "encode", "expand_shared", "flatten_or_gap", "has_blocks",
           "input_problem", "model_params", "param_count"]
