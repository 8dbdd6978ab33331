"""The small problems MTL methods solve on the T×T Gramian M = G·Gᵀ of the task gradients.

Several methods share them: the min-norm point of the gradients' convex hull (MGDA, MGDA-UB),
a box-constrained quadratic program (UPGrad, DualProj) and the projection onto the simplex (MoCo,
MoDo, SDMGrad). Every function is pure and jit/vmap-friendly; T is small, so exact solutions over
every support are affordable where they are used.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

EPS = 1e-12


def dot(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """a·b with highest-precision dots (the small solves below are sensitive)."""
    return jnp.dot(a, b, precision=jax.lax.Precision.HIGHEST)


def gram(g: jnp.ndarray) -> jnp.ndarray:
    """The Gramian M = G·Gᵀ in float32 with highest-precision dots."""
    return dot(g, g.T)


def cross_gram(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """A·Bᵀ divided by the mean of ‖a_t‖‖b_t‖: step sizes on it are free of the gradients' scale."""
    scale = jnp.mean(jnp.linalg.norm(a, axis=1) * jnp.linalg.norm(b, axis=1)) + EPS
    return dot(a, b.T) / scale


def min_norm_weights(m: jnp.ndarray, iters: int = 250) -> jnp.ndarray:
    """The w on the simplex minimising ‖wᵀG‖² = wᵀMw, by Frank-Wolfe with exact line search
    (Sener & Koltun 2018, Alg. 2), started at the uniform point."""
    t = m.shape[0]

    def body(_, w):
        grad = m @ w
        s = jax.nn.one_hot(jnp.argmin(grad), t, dtype=m.dtype)
        # Exact minimiser of ‖(1-γ)wG + γ sG‖² over γ in [0, 1].
        a, b = w @ m @ w, s @ m @ s
        c = w @ m @ s
        gamma = jnp.clip((a - c) / (a + b - 2 * c + EPS), 0.0, 1.0)
        return (1 - gamma) * w + gamma * s

    return jax.lax.fori_loop(0, iters, body, jnp.full((t,), 1.0 / t, m.dtype))


def subsets(t: int) -> np.ndarray:
    """Every 0/1 vector of length t (2^t × t)."""
    return np.array(list(itertools.product([0.0, 1.0], repeat=t)))


def min_norm_weights_exact(m: jnp.ndarray) -> jnp.ndarray:
    """argmin_{w∈Δ} wᵀMw exactly, for small T: on every support S the equality-constrained problem
    is the linear system [M_SS 1; 1ᵀ 0][w; μ] = [0; 1]; of the solutions with w ≥ 0 (points of the
    simplex, among them the optimum) the one of least value is returned. A ridge of 1e-5 of the
    mean diagonal makes the solution unique: among tied optima (identical gradients) it picks the
    most even weights, so no task's head is dropped by a tie."""
    t = m.shape[0]
    ridge = 1e-5 * (jnp.trace(m) / t + EPS) * jnp.eye(t, dtype=m.dtype)

    def candidate(support):
        inside = support[:, None] * support[None, :]
        a = jnp.block([[inside * (m + ridge) + jnp.diag(1 - support), support[:, None]],
                       [support[None, :], jnp.zeros((1, 1), m.dtype)]])
        w = jnp.linalg.solve(a, jnp.concatenate([jnp.zeros(t, m.dtype), jnp.ones(1, m.dtype)]))[:t] * support
        return w, jnp.where(jnp.all(w >= -1e-6), w @ (m + ridge) @ w, jnp.inf)

    supports = jnp.asarray(subsets(t)[1:], m.dtype)  # Non-empty supports.
    ws, values = jax.vmap(candidate)(supports)
    return jnp.clip(ws[jnp.argmin(values)], 0.0, None)


def box_qp_exact(m: jnp.ndarray, u: jnp.ndarray) -> jnp.ndarray:
    """argmin_{v ≥ u} vᵀMv (M positive semi-definite, T small), exactly: every choice of the set of
    free coordinates is solved as a linear system, and the KKT point of least value is kept."""
    t = m.shape[0]
    masks = jnp.asarray(subsets(t), m.dtype)
    ridge = 1e-7 * (jnp.trace(m) / t + EPS) * jnp.eye(t, dtype=m.dtype)
    mr = m + ridge

    def candidate(free):
        a = free[:, None] * mr + (1 - free)[:, None] * jnp.eye(t, dtype=m.dtype)
        v = jnp.linalg.solve(a, (1 - free) * u)
        grad = mr @ v
        scale = jnp.max(jnp.abs(grad)) + jnp.max(jnp.diag(mr)) * jnp.max(jnp.abs(u)) + EPS
        ok = jnp.all(v >= u - 1e-5 * (jnp.abs(u) + 1)) & jnp.all((free == 1) | (grad >= -1e-4 * scale))
        return v, jnp.where(ok, v @ mr @ v, jnp.inf)

    vs, values = jax.vmap(candidate)(masks)
    return vs[jnp.argmin(values)]


def project_simplex(v: jnp.ndarray) -> jnp.ndarray:
    """The Euclidean projection of v onto the simplex {w ≥ 0, Σw = 1} (sort-based, Held et al. 1974)."""
    u = jnp.sort(v)[::-1]
    cssv = jnp.cumsum(u) - 1.0
    k = jnp.arange(1, v.shape[0] + 1, dtype=v.dtype)
    rho = jnp.max(jnp.where(u - cssv / k > 0, k, 0.0))
    theta = jnp.sum(jnp.where(k <= rho, u, 0.0)) / jnp.maximum(rho, 1.0) - 1.0 / jnp.maximum(rho, 1.0)
    return jnp.maximum(v - theta, 0.0)


def lp_vertices(c: jnp.ndarray, a_ub: jnp.ndarray, b_ub: jnp.ndarray, a_eq: jnp.ndarray, b_eq: jnp.ndarray,
                active: jnp.ndarray | None = None, max_systems: int = 5000) -> tuple[jnp.ndarray, jnp.ndarray]:
    """max_x cᵀx s.t. A_ub x ≤ b_ub (the rows where `active`) and A_eq x = b_eq, exactly, for
    tiny problems whose feasible set is bounded: a linear objective's maximum over a polytope is at
    a vertex, where n - E of the inequalities are tight beside the E equalities, so every choice of
    them is solved as a linear system and the best feasible solution kept. Rows are scaled to unit
    norm, so the feasibility tolerance does not depend on the data's scale.

    Returns:
      (x, feasible): the best feasible vertex (on a tie, the first in enumeration order), and
      whether there was one (where not, x is 0).
    """
    n, m = c.shape[0], a_ub.shape[0]
    combos = np.array(list(itertools.combinations(range(m), n - a_eq.shape[0])), np.int64).reshape(-1, n - a_eq.shape[0])
    if len(combos) > max_systems:
        raise ValueError(f"lp_vertices: {len(combos)} vertex systems (of {m} inequalities in {n} variables) is too many")
    active = jnp.ones(m, bool) if active is None else active
    norm = jnp.linalg.norm(a_ub, axis=1) + EPS
    rows, rhs = a_ub / norm[:, None], b_ub / norm
    eq_norm = jnp.linalg.norm(a_eq, axis=1) + EPS
    eq_rows, eq_rhs = a_eq / eq_norm[:, None], b_eq / eq_norm
    k = len(combos)
    systems = jnp.concatenate([rows[combos], jnp.broadcast_to(eq_rows, (k, *eq_rows.shape))], axis=1)
    targets = jnp.concatenate([rhs[combos], jnp.broadcast_to(eq_rhs, (k, eq_rhs.shape[0]))], axis=1)
    solvable = (jnp.abs(jnp.linalg.det(systems)) > 1e-9) & jnp.all(active[combos], axis=1)
    safe = jnp.where(solvable[:, None, None], systems, jnp.eye(n, dtype=c.dtype))
    xs = jnp.linalg.solve(safe, targets[..., None])[..., 0]
    slack = rhs - xs @ rows.T  # K × M: every inequality's slack at every vertex.
    feasible = solvable & jnp.all(jnp.where(active[None, :], slack >= -1e-6, True), axis=1)
    values = jnp.where(feasible, xs @ c, -jnp.inf)
    found = jnp.any(feasible)
    return jnp.where(found, xs[jnp.argmax(values)], 0.0), found


def lp_on_simplex(c: jnp.ndarray, a: jnp.ndarray, b: jnp.ndarray, active: jnp.ndarray,
                  max_tasks: int = 6) -> tuple[jnp.ndarray, jnp.ndarray]:
    """max_β cᵀβ over the simplex {β ≥ 0, Σβ = 1} with (Aβ)_j ≥ b_j for the rows j where `active`
    (`lp_vertices`: C(T+M, T-1) linear systems, so T small).

    Returns:
      (β, feasible): the best feasible vertex, and whether there was one (where not, β is the
      uniform point).
    """
    t = c.shape[0]
    if t > max_tasks:
        raise ValueError(f"lp_on_simplex enumerates vertices: at most {max_tasks} objectives, got {t}")
    a_ub = jnp.concatenate([-jnp.eye(t, dtype=c.dtype), -a])
    b_ub = jnp.concatenate([jnp.zeros(t, c.dtype), -b])
    beta, found = lp_vertices(c, a_ub, b_ub, jnp.ones((1, t), c.dtype), jnp.ones(1, c.dtype),
                              jnp.concatenate([jnp.ones(t, bool), active]))
    beta = jnp.clip(beta, 0.0, None)
    return jnp.where(found, beta / jnp.sum(beta), jnp.full((t,), 1.0 / t, c.dtype)), found


def nonneg_qp(a: jnp.ndarray, b: jnp.ndarray, exact_up_to: int = 10, iters: int = 2000) -> jnp.ndarray:
    """argmin_{μ ≥ 0} ½μᵀAμ − bᵀμ (A positive semi-definite). Exactly for n ≤ `exact_up_to`: on
    every support S the stationary point solves A_SS μ_S = b_S; of the KKT points (μ ≥ 0, the
    gradient ≥ 0 off S) the one of least value is kept. Larger n: projected gradient steps of
    1/‖A‖ (`iters` of them). A ridge of 1e-7 of the mean diagonal keeps every system solvable."""
    n = a.shape[0]
    a = a + 1e-7 * (jnp.trace(a) / n + EPS) * jnp.eye(n, dtype=a.dtype)
    if n > exact_up_to:
        step = 1.0 / (jnp.linalg.norm(a, 2) + EPS)
        body = lambda _, mu: jnp.maximum(mu - step * (a @ mu - b), 0.0)
        return jax.lax.fori_loop(0, iters, body, jnp.zeros(n, a.dtype))

    def candidate(free):
        system = free[:, None] * a * free[None, :] + jnp.diag(1 - free)
        mu = jnp.linalg.solve(system, free * b) * free
        grad = a @ mu - b
        scale = jnp.max(jnp.abs(b)) + jnp.max(jnp.diag(a)) * jnp.max(mu) + EPS
        ok = jnp.all(mu >= -1e-6 * scale) & jnp.all((free == 1) | (grad >= -1e-5 * scale))
        return mu, jnp.where(ok, 0.5 * mu @ a @ mu - b @ mu, jnp.inf)

    mus, values = jax.vmap(candidate)(jnp.asarray(subsets(n), a.dtype))
    return jnp.clip(mus[jnp.argmin(values)], 0.0, None)


def simplex_qp_exact(a: jnp.ndarray, q: jnp.ndarray, simplex: np.ndarray | None = None) -> jnp.ndarray:
    """argmin ½xᵀAx + qᵀx over x ≥ 0 with Σ_{i∈E} x_i = 1 (A positive semi-definite, T small; E:
    the coordinates where `simplex`, default all: the simplex), exactly: on every support S the
    equality-constrained problem is [A_SS e_S; e_Sᵀ 0][x; ν] = [−q; 1]; the optimum is the feasible
    solution of least value. A ridge of 1e-9 of the mean diagonal keeps every system solvable."""
    t = a.shape[0]
    mask = np.ones(t) if simplex is None else np.asarray(simplex, float)
    e = jnp.asarray(mask, a.dtype)
    a = a + 1e-9 * (jnp.trace(a) / t + EPS) * jnp.eye(t, dtype=a.dtype)

    def candidate(s):
        inside = s[:, None] * s[None, :]
        es = (s * e)[:, None]
        system = jnp.block([[inside * a + jnp.diag(1 - s), es], [es.T, jnp.zeros((1, 1), a.dtype)]])
        x = jnp.linalg.solve(system, jnp.concatenate([-q * s, jnp.ones(1, a.dtype)]))[:t] * s
        return x, jnp.where(jnp.all(x >= -1e-7), 0.5 * x @ a @ x + q @ x, jnp.inf)

    supports = subsets(t)[1:]
    supports = supports[supports @ mask > 0]
    xs, values = jax.vmap(candidate)(jnp.asarray(supports, a.dtype))
    x = jnp.clip(xs[jnp.argmin(values)], 0.0, None)
    return x / jnp.where(jnp.sum(x * e) > 0, jnp.sum(x * e), 1.0)
