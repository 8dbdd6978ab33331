"""Learning to Branch: a search over where the tasks branch, then the chosen tree retrained."""

from __future__ import annotations

from typing import ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mtljax.models.architectures.base import ARCHITECTURES, MultiTaskArchitecture, heads_of
from mtljax.registry import Option


def _tree_problem(tree) -> str | None:
    if isinstance(tree, str):
        return None if tree.startswith("stage:") else f"expected a list of parent lists or 'stage:<name>', got {tree!r}"
    if not all(isinstance(level, (list, tuple)) and all(isinstance(p, int) for p in level) for level in tree):
        return f"expected a list of lists of parent indices, got {tree!r}"
    return None


@ARCHITECTURES.register("branch", options={
    "width": Option(0, "the search's nodes per level (0: one per task)", minimum=0),
    "temperature": Option(1.0, "the Gumbel-softmax temperature of the search", positive=True),
    "tree": Option([], "the tree to train: each level's parents of its nodes, then each task's parent "
                   "([]: search it; 'stage:<name>': the tree an earlier stage chose)", nullable=(list, tuple, str),
                   check=_tree_problem)})
class LearningToBranch(MultiTaskArchitecture):
    """Learning to Branch (Guo, Lee & Ulbricht, ICML 2020, Sec. 3).

    The backbone's blocks are the levels of a tree. Searching (`tree` empty), every level has
    `width` nodes, each its own copy of that level's block; every node of level l+1 (and every
    task's head, after the last level) reads a mix of the nodes of level l, weighted by a
    Gumbel-softmax sample of its learned parent logits (Eq. 3; soft samples of temperature τ while
    training, the most likely parent when evaluating). Level 1's nodes all read the image. After
    the search `chosen_tree` takes every most likely parent and drops the nodes no task reaches;
    retraining (`tree` given) builds that tree alone, from scratch. The paper's schedule of τ and
    its separate learning rate for the logits are not used: τ is fixed and one optimizer trains all.
    Shared: every node (and the logits) while searching; in a tree, the nodes above a branching.
    """

    needs_blocks: ClassVar[bool] = True
    width: int = 0
    temperature: float = 1.0
    tree: Sequence = ()

    @property
    def nodes(self) -> int:
        return self.width or len(self.heads)

    @property
    def fixed(self) -> Sequence:
        """The tree to build; () to search (also for 'stage:<name>', until the run reads that stage's)."""
        return () if isinstance(self.tree, str) else self.tree

    def shared_params(self) -> tuple[str, ...]:
        if not self.fixed:
            levels = self.backbone.num_blocks
            return (*[f"node_{l}_{k}" for l in range(levels) for k in range(self.nodes)], "branch")
        users = tree_users(self.tree, len(self.heads))
        return tuple(f"node_{l}_{k}" for l, level in enumerate(users) for k, tasks in enumerate(level) if len(tasks) > 1)

    def config_problem(self) -> str | None:
        tree, levels = self.tree, self.backbone.num_blocks
        if isinstance(tree, str) or not tree:
            return None
        if len(tree) != levels + 1:
            return f"branch.tree: {len(tree)} lists; the backbone has {levels} levels, so {levels + 1} (the last: the tasks')"
        widths = [1] + [len(level) for level in tree[:-1]]
        if len(tree[-1]) != len(self.heads):
            return f"branch.tree: the last list gives {len(tree[-1])} parents; there are {len(self.heads)} tasks"
        for l, level in enumerate(tree):
            if any(not 0 <= p < widths[l] for p in level):
                return f"branch.tree: level {l + 1} names a parent outside 0..{widths[l] - 1}"
        return None

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        tasks, levels = list(self.heads), self.backbone.num_blocks
        block = lambda l, k, h: self.backbone.clone(name=f"node_{l}_{k}", parent=self)(h, train, l, l + 1)
        if self.fixed:
            users = tree_users(self.tree, len(tasks))
            outs = [x]
            for l in range(levels):  # Only the nodes some task reaches are built.
                outs = [block(l, k, outs[p]) if users[l][k] else None for k, p in enumerate(self.tree[l])]
            return heads_of(self, {t: outs[p] for t, p in zip(tasks, self.tree[-1])}, train)
        logits = BranchLogits(levels, self.nodes, len(tasks), name="branch")()
        outs = [block(0, k, x) for k in range(self.nodes)]
        for l in range(1, levels + 1):
            mixing = self.parents(logits[l - 1][:self.nodes] if l < levels else logits[-1][:len(tasks)], train)
            stacked = jnp.stack(outs)
            mixed = jnp.tensordot(mixing, stacked, axes=1)  # children × B × ...
            outs = [block(l, k, mixed[k]) for k in range(self.nodes)] if l < levels else list(mixed)
        return heads_of(self, dict(zip(tasks, outs)), train)

    def parents(self, logits: jnp.ndarray, train: bool) -> jnp.ndarray:
        """Each child's weights over its parents: a soft Gumbel-softmax sample while training, the
        most likely parent (one-hot) when evaluating."""
        if not train:
            return jax.nn.one_hot(jnp.argmax(logits, axis=-1), logits.shape[-1], dtype=logits.dtype)
        gumbel = jax.random.gumbel(self.make_rng("dropout"), logits.shape, logits.dtype)
        return jax.nn.softmax((logits + gumbel) / self.temperature, axis=-1)

    def chosen_tree(self, params) -> list[list[int]]:
        """The tree of every most likely parent, without the nodes no task reaches, numbered anew
        (the `tree` option's form): what the search chose."""
        logits = np.asarray(params["branch"]["logits"])
        levels, tasks = self.backbone.num_blocks, len(self.heads)
        choice = [[0] * self.nodes] + [list(np.argmax(logits[l - 1][:self.nodes], axis=-1)) for l in range(1, levels)]
        heads = list(np.argmax(logits[-1][:tasks], axis=-1))
        keep = [sorted(set(heads))]
        for l in range(levels - 1, 0, -1):
            keep.insert(0, sorted({int(choice[l][k]) for k in keep[0]}))
        number = [{k: i for i, k in enumerate(level)} for level in keep]
        tree = [[0] * len(keep[0])]
        tree += [[number[l - 1][int(choice[l][k])] for k in keep[l]] for l in range(1, levels)]
        return [*tree, [number[-1][int(p)] for p in heads]]


def tree_users(tree: Sequence[Sequence[int]], tasks: int) -> list[list[set[int]]]:
    """For every node of every level of `tree`, the tasks whose heads it feeds."""
    users = [[set() for _ in level] for level in tree[:-1]]
    for t, p in enumerate(tree[-1]):
        for l in range(len(users) - 1, -1, -1):
            users[l][p].add(t)
            p = tree[l][p]
    return users


class BranchLogits(nn.Module):
    """The parent logits of the search: level l+1's nodes over level l's, and the tasks over the
    last level's (the last slice; rows past the number of tasks unused)."""

    levels: int
    nodes: int
    tasks: int

    @nn.compact
    def __call__(self) -> jnp.ndarray:
        rows = max(self.nodes, self.tasks)
        return self.param("logits", nn.initializers.zeros, (self.levels, rows, self.nodes))
