"""DSelect-k: MMoE with differentiable sparse gates."""

from __future__ import annotations


import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from mtljax.models.architectures.base import ARCHITECTURES, MultiTaskArchitecture, flat, heads_of, mix
from mtljax.registry import Option


def smooth_step(t: jnp.ndarray, gamma: float) -> jnp.ndarray:
    """The smooth-step function (Hazimeh et al. 2021, Eq. 3): 0 below −γ/2, 1 above γ/2, and the
    cubic −2t³/γ³ + 3t/(2γ) + 1/2 between (continuously differentiable)."""
    cubic = -2.0 / gamma**3 * t**3 + 3.0 / (2.0 * gamma) * t + 0.5
    return jnp.where(t <= -gamma / 2, 0.0, jnp.where(t >= gamma / 2, 1.0, cubic))


def selector(z: jnp.ndarray, gamma: float) -> jnp.ndarray:
    """One single-expert selector (Hazimeh et al. 2021, Eq. 4): z (…×m) to weights over 2^m
    experts, r(z)_e = Π_j S(z_j) if bit j of e is 1 else 1 − S(z_j). A distribution; one-hot once
    every |z_j| ≥ γ/2."""
    m = z.shape[-1]
    bits = (np.arange(2**m)[:, None] >> np.arange(m)[None, :]) & 1  # E×m: expert e's binary code.
    s = smooth_step(z, gamma)[..., None, :]
    return jnp.prod(jnp.where(bits == 1, s, 1.0 - s), axis=-1)


def dselect_weights(z: jnp.ndarray, w: jnp.ndarray, gamma: float) -> jnp.ndarray:
    """The DSelect-k gate (Hazimeh et al. 2021, Eq. 5): z (B×k×m) and w (B×k) to Σ_i softmax(w)_i
    r(z_i), weights over 2^m experts with at most k non-zero once the selectors have converged."""
    return jnp.einsum("bk,bke->be", nn.softmax(w), selector(z, gamma))


class DSelectGate(nn.Module):
    """One task's per-example DSelect-k gate: z = W_z x (k selectors of m = log2 E bits, kernel
    initialised uniformly in ±γ/100 as the paper's code, so every expert starts near weight 1/E)
    and the selectors' weights w = W_w x."""

    experts: int
    k: int
    gamma: float

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        m = int(np.log2(self.experts))
        small = nn.initializers.uniform(self.gamma / 50)  # U[0, γ/50), shifted below to ±γ/100.
        z = nn.Dense(self.k * m, kernel_init=lambda key, shape, dtype=jnp.float32: small(key, shape, dtype)
                     - self.gamma / 100, name="z")(flat(x))
        w = nn.Dense(self.k, name="w")(flat(x))
        return dselect_weights(z.reshape(-1, self.k, m), w, self.gamma)


@ARCHITECTURES.register("dselect_k", options={
    "experts": Option(4, "number of experts (backbone copies), a power of two", choices=(2, 4, 8, 16)),
    "k": Option(2, "experts each task selects (at most `experts`)", positive=True),
    "gamma": Option(1.0, "the smooth-step's width γ", positive=True)})
class DSelectK(MultiTaskArchitecture):
    """DSelect-k (Hazimeh, Zhao, Chowdhery, Sathiamoorthy, Chen, Mazumder, Hong & Chi, NeurIPS 2021).

    MMoE with each task's softmax gate replaced by a per-example DSelect-k gate (`gate_<task>`,
    `DSelectGate`): k differentiable single-expert selectors built from the smooth-step function,
    so that each task ends up using at most k of the E experts (`expert_<e>`, whole backbone
    copies). Defaults: E = 4, k = 2, γ = 1, chosen for the cost of whole-CNN experts (the paper's
    entropy regulariser, which speeds the selectors' convergence, is not used). Shared: the experts.
    """

    experts: int = 4
    k: int = 2
    gamma: float = 1.0

    def shared_params(self) -> tuple[str, ...]:
        return tuple(f"expert_{e}" for e in range(self.experts))

    def config_problem(self) -> str | None:
        return f"k: at most the {self.experts} experts, got {self.k}" if self.k > self.experts else None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        outs = jnp.stack([self.backbone.clone(name=f"expert_{e}", parent=self)(x, train)
                          for e in range(self.experts)])
        features = {t: mix(DSelectGate(self.experts, self.k, self.gamma, name=f"gate_{t}")(x), outs)
                    for t in self.heads}
        return heads_of(self, features, train)
