"""Multi-task architectures, one module each (what they share: base.py); importing one registers it.

The list below is the registry's order: hard sharing first.
"""

from mtljax.models.architectures import base, hard, cross_stitch, mtan, mmoe, cgc, ple, dselect_k, branch  # noqa: F401
from mtljax.models.architectures.base import (ARCHITECTURE_OPTIONS, ARCHITECTURES, Gate, Head, MultiTaskArchitecture,
                                              build_model, expand_shared, flat, gate, has_blocks, heads_of, mix,
                                              param_count)
from mtljax.models.architectures.branch import LearningToBranch, tree_users
from mtljax.models.architectures.cross_stitch import CrossStitch, StitchUnits
from mtljax.models.architectures.dselect_k import DSelectGate, DSelectK, dselect_weights, selector, smooth_step
from mtljax.models.architectures.hard import HardSharing, MultiTaskModel, encode
from mtljax.models.architectures.mtan import MTAN, Attention, Extractor
from mtljax.models.architectures.mmoe import MMoE
from mtljax.models.architectures.cgc import CGC
from mtljax.models.architectures.ple import PLE
