"""Penalty-based boundary intersection (Zhang & Li 2007, "MOEA/D", Eq. 4; LibMOON's and
TorchJD's `pbi`): d₁ + θ·d₂, the losses' length along the ray plus θ times their distance from it,
with the ideal point at 0. The ray is the replica's loss weights (`pareto.rays`, docs/pareto.md)."""

from mtljax.mtl import pareto
from mtljax.mtl.base import loss_weighting, register
from mtljax.registry import Option


def pbi(losses, params, state, ctx):
    """d₁ + θ d₂ of the task losses against the ray (mtljax/mtl/pareto.py)."""
    return pareto.pbi(losses, ctx["weights"], ctx["options"]["theta"]), state


register("pbi", loss_weighting(pbi), {"theta": Option(5.0, "PBI's penalty θ on the distance from the ray", minimum=0)})
