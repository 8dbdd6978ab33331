"""One network for every preference ray, from the weights up: Pareto HyperNetworks and Pareto
Manifold Learning's simplex of networks (docs/pareto.md).

A preference-conditioned run feeds the ray r (T numbers on the simplex) to the model as the last
T channels of every image (mtljax/mtl/pareto.py `condition_input`; one ray per batch). COSMOS's
network reads those channels as input. The two wrappers here instead strip them and make the
weights θ(r) of the multi-task model they wrap, which then runs on the images alone:

- "hyper" (Navon et al. 2021, "Learning the Pareto front with hypernetworks", §4): an MLP maps r
  to a hidden vector h, and one linear head per parameter tensor of the target network maps h to
  that tensor. Each head's bias starts at the target network's own initialization and its
  kernel near 0 (our choice), so θ(r) starts as a plainly initialized network.
- "simplex" (Dimitriadis et al. 2023, "Pareto manifold learning", Eq. 3): T copies θ_1..θ_T of
  the target network's weights, one per task, and θ(r) = Σ_t r_t θ_t, a point of their simplex.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

MODES = ("hyper", "simplex")


class PreferenceModel(nn.Module):
    """The weights of `inner` (any multi-task architecture) as a function of the preference ray.

    Attributes:
      inner: the multi-task model whose weights are made (not called as a submodule).
      mode: "hyper" (PHN) or "simplex" (PML).
      num_tasks: T, the ray's length (the input's last T channels).
      hidden: the hypernetwork's width ("hyper").
    """

    inner: Any
    mode: str
    num_tasks: int
    hidden: int = 100

    shared_representation: ClassVar[bool] = False
    needs_blocks: ClassVar[bool] = False

    @property
    def heads(self) -> dict[str, int]:
        """The wrapped model's heads."""
        return self.inner.heads

    def shared_params(self) -> tuple[str, ...]:
        """Every parameter serves every task: the hypernetwork, or the simplex's vertices."""
        return (self.mode,)

    def __call__(self, x: jnp.ndarray, train: bool = False, features: jnp.ndarray | None = None) -> dict:
        """Each task's outputs of the network θ(r), r the ray in `x`'s last channels."""
        params = self.weights(x)
        rngs = {"dropout": self.make_rng("dropout")} if train and self.has_rng("dropout") else {}
        return self.inner.clone(parent=None).apply({"params": params}, x[..., :-self.num_tasks], train=train, rngs=rngs)

    @nn.compact
    def weights(self, x: jnp.ndarray) -> Any:
        """θ(r): the wrapped network's parameters for the ray r in `x`'s last channels (use as
        `model.apply(variables, x, method=PreferenceModel.weights)` to get the network of a ray)."""
        t = self.num_tasks
        inner = self.inner.clone(parent=None)
        init = lambda key: inner.init(key, x[:1, ..., :-t])["params"]  # noqa: E731
        ray = x[0, 0, 0, -t:]
        if self.mode == "simplex":
            vertices = self.param("simplex", lambda key: jax.vmap(init)(jax.random.split(key, t)))
            return jax.tree.map(lambda v: jnp.tensordot(ray.astype(v.dtype), v, 1), vertices)
        return Hypernetwork(init, self.hidden, name="hyper")(ray)


class Hypernetwork(nn.Module):
    """PHN's hypernetwork: r -> Dense(hidden) -> ReLU -> Dense(hidden) -> ReLU -> h, then one
    linear head per tensor of the target network's parameters (`init(key)` makes them)."""

    init_target: Any
    hidden: int

    @nn.compact
    def __call__(self, ray: jnp.ndarray) -> Any:
        h = nn.relu(nn.Dense(self.hidden)(ray))
        h = nn.relu(nn.Dense(self.hidden)(h))
        template = self.param("start", lambda key: ravel_pytree(self.init_target(key))[0])
        shapes = jax.eval_shape(self.init_target, jax.random.key(0))
        unravel = ravel_pytree(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))[1]
        sizes = [math.prod(s.shape) for s in jax.tree.leaves(shapes)]
        kernel = nn.initializers.normal(0.01 / math.sqrt(self.hidden))
        chunks = [nn.Dense(n, kernel_init=kernel, use_bias=False, name=f"head_{k}")(h) for k, n in enumerate(sizes)]
        return unravel(template + jnp.concatenate(chunks))
