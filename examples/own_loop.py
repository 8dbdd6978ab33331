"""Your own Flax model and optax loop with mtljax's MTL methods: MultiMNIST with UPGrad, MGDA, the sum.

    python examples/own_loop.py [--steps 1500] [--methods upgrad mgda equal pcgrad ...]

The model's trunk ("trunk") is shared; each head gets its own task's gradient. (With two tasks
PCGrad's direction is UPGrad's, Quinton & Rey 2024, so the default leaves it out.)
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtljax import mtl
from mtljax.data import mnist
from mtljax.data.constructions import multimnist


class Net(nn.Module):
    def setup(self):
        self.trunk = nn.Sequential([nn.Conv(16, (5, 5), strides=2), nn.relu, nn.Conv(32, (5, 5), strides=2), nn.relu,
                                    lambda x: x.reshape(len(x), -1), nn.Dense(64), nn.relu])
        self.left, self.right = nn.Dense(10), nn.Dense(10)

    def __call__(self, x):
        z = self.trunk(x)
        return self.left(z), self.right(z)


def task_losses(params, x, y):
    left, right = Net().apply({"params": params}, x)
    ce = optax.softmax_cross_entropy_with_integer_labels
    return jnp.stack([ce(left, y[:, 0]).mean(), ce(right, y[:, 1]).mean()])


def train(method, x, y, steps, seed=0):
    params = Net().init(jax.random.key(seed), x[:1])["params"]
    tx = optax.chain(mtl.aggregation(method, num_tasks=2, shared=("trunk",)), optax.adam(1e-3))
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb, key):
        losses, jac = mtl.task_gradients(task_losses, params, xb, yb)  # jac: every leaf 2 × its shape.
        updates, opt_state = tx.update(jac, opt_state, params, losses=losses, key=key)
        return optax.apply_updates(params, updates), opt_state, losses

    order, key, history = np.random.default_rng(seed), jax.random.key(seed), []
    for k in range(steps):
        idx = order.integers(0, len(x), 64)
        params, opt_state, losses = step(params, opt_state, x[idx], y[idx], jax.random.fold_in(key, k))
        history.append(float(losses.sum()))
    return params, history


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--methods", nargs="+", default=["upgrad", "mgda", "equal"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--source", default="auto")
    args = parser.parse_args(argv)
    raw = mnist.load_mnist(args.data_dir, args.source)
    (x, y), (xt, yt) = [multimnist(images, labels, seed) for seed, (images, labels) in
                        enumerate(((raw.train_images, raw.train_labels), (raw.test_images, raw.test_labels)))]
    x, xt = (jnp.asarray(a, jnp.float32) / 255.0 for a in (x, xt))
    y, yt = (np.stack([labels["left"], labels["right"]], 1).astype(np.int32) for labels in (y, yt))
    results = {}
    for method in args.methods:
        params, history = train(method, x, y, args.steps)
        left, right = Net().apply({"params": params}, xt)
        acc = [float(jnp.mean(o.argmax(-1) == yt[:, k])) for k, o in enumerate((left, right))]
        results[method] = {"accuracy": acc, "first_loss": np.mean(history[:20]), "last_loss": np.mean(history[-20:])}
        print(f"{method}: test accuracy left {acc[0]:.2%}, right {acc[1]:.2%}")
    return results


if __name__ == "__main__":
    main()
