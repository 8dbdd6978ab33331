"""Preference-driven MTL: rays, scalarizations and the per-ray directions of EPO and ParetoMTL.

A preference ray r (T non-negative numbers, not all zero) says which trade-off between the task
losses a model should reach. The functions here are pure and take the T task losses L, the ray r
and, for the directions, the Gramian M = G·Gᵀ of the task gradients (T×T), so they run inside
the compiled train step and in any loop (the public API, docs/api.md). The methods built on them
are registered in mtljax/mtl/methods/ (`tchebycheff`, `pbi`, `epo`, `pmtl`, `cosmos`; linear
scalarization is `static`), and docs/pareto.md says how to trace a front with them.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mtljax.mtl.solvers import EPS, gram, lp_on_simplex, lp_vertices, min_norm_weights, min_norm_weights_exact


def ray_counts(t: int, limit: int = 400) -> list[int]:
    """The numbers of evenly spread rays `uniform_rays` makes for T tasks: C(H + T - 1, T - 1)."""
    return [math.comb(h + t - 1, t - 1) for h in range(limit) if math.comb(h + t - 1, t - 1) <= limit]


def uniform_rays(n: int, t: int) -> np.ndarray:
    """n rays evenly spread over the inside of the simplex of T tasks (n×T, rows sum to 1).

    The Das-Dennis lattice {c/H : c ∈ ℕ^T, Σc = H}, moved inside: r = (c + 1/T)/(H + 1), so that no
    task gets weight 0 (EPO and the logarithmic methods need every component). For two tasks the
    rays are ((k + ½)/n, 1 - (k + ½)/n), k = 0..n-1.

    Raises:
      ValueError: n is not a lattice size for T tasks (`ray_counts(T)`); for two tasks every n ≥ 1 is.
    """
    if t < 1 or n < 1:
        raise ValueError(f"uniform_rays: expected n >= 1 rays of t >= 1 tasks, got n={n}, t={t}")
    h = next((h for h in range(n) if math.comb(h + t - 1, t - 1) >= n), n - 1)
    if math.comb(h + t - 1, t - 1) != n:
        raise ValueError(f"{n} rays cannot be spread evenly over {t} tasks; possible: "
                         f"{', '.join(map(str, ray_counts(t, 4 * n)[1:8]))}, ...")
    return lattice(h, t)


def lattice(divisions: int, t: int) -> np.ndarray:
    """The Das-Dennis lattice of H = `divisions` moved inside the simplex, (c + 1/T)/(H + 1) for
    every c ∈ ℕ^T with Σc = H: C(H + T - 1, T - 1) rays (`uniform_rays`)."""
    return (np.asarray(list(_compositions(divisions, t)), np.float64) + 1.0 / t) / (divisions + 1)


def _compositions(total: int, parts: int):
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def sample_rays(key: jax.Array, t: int, shape: tuple[int, ...] = (), alpha: float = 1.0) -> jnp.ndarray:
    """Rays drawn from the Dirichlet distribution Dir(α, ..., α) (shape + (T,)), as PHN and COSMOS
    draw one per step (α = 1: uniform on the simplex; α < 1 favours the corners)."""
    return jax.random.dirichlet(key, jnp.full((t,), alpha, jnp.float32), shape)


def normalized(ray: jnp.ndarray) -> jnp.ndarray:
    """The ray on the simplex, r / Σr."""
    return ray / (jnp.sum(ray) + EPS)


def linear(losses: jnp.ndarray, ray: jnp.ndarray) -> jnp.ndarray:
    """Linear scalarization Σ_t r_t L_t."""
    return jnp.sum(ray * losses)


def tchebycheff(losses: jnp.ndarray, ray: jnp.ndarray, ideal: jnp.ndarray | float = 0.0) -> jnp.ndarray:
    """Weighted Tchebycheff scalarization max_t r_t (L_t - z_t) (Miettinen 1999, Eq. 3.4.1; z the
    ideal point): every Pareto-optimal point is the minimum of some ray's, unlike linear's."""
    return jnp.max(ray * (losses - ideal))


def smooth_tchebycheff(losses: jnp.ndarray, ray: jnp.ndarray, mu: float = 0.1,
                       ideal: jnp.ndarray | float = 0.0) -> jnp.ndarray:
    """Smooth Tchebycheff (Lin et al. 2024, Eq. 6): μ log Σ_t exp(r_t (L_t - z_t) / μ), a smooth
    upper bound of Tchebycheff's maximum that tends to it as μ → 0."""
    return mu * jax.nn.logsumexp(ray * (losses - ideal) / mu)


def pbi(losses: jnp.ndarray, ray: jnp.ndarray, theta: float = 5.0, ideal: jnp.ndarray | float = 0.0) -> jnp.ndarray:
    """Penalty-based boundary intersection (Zhang & Li 2007, MOEA/D, Eq. 4): d₁ + θ d₂, where d₁
    is the length of L - z along the unit ray and d₂ its distance from the ray."""
    unit = ray / (jnp.linalg.norm(ray) + EPS)
    shifted = losses - ideal
    d1 = shifted @ unit
    d2 = jnp.sqrt(jnp.sum((shifted - d1 * unit) ** 2) + EPS)
    return d1 + theta * d2


def cosine(losses: jnp.ndarray, ray: jnp.ndarray) -> jnp.ndarray:
    """cos(r, L) = rᵀL / (‖r‖‖L‖): COSMOS's penalty term (Ruchte & Grabocka 2021, Eq. 4)."""
    return ray @ losses / (jnp.linalg.norm(ray) * jnp.linalg.norm(losses) + EPS)


def condition_input(images: jnp.ndarray, ray: jnp.ndarray) -> jnp.ndarray:
    """Images (B×H×W×C float) with the ray appended as T constant channels: COSMOS's input
    (Ruchte & Grabocka 2021, §4: the preference fed to the network with every image)."""
    b, h, w, _ = images.shape
    return jnp.concatenate([images, jnp.broadcast_to(ray.astype(images.dtype), (b, h, w, ray.shape[-1]))], -1)


def non_uniformity(losses: jnp.ndarray, ray: jnp.ndarray) -> jnp.ndarray:
    """EPO's μ(r⊙L) = KL(l̂ ‖ 1/T) with l̂ = r⊙L / Σ r⊙L (Mahapatra & Rajan 2020, §3.1): zero
    exactly when r_t L_t is the same for every task, i.e. L lies on the ray's inverse direction."""
    l_hat = normalized(normalized(ray) * losses)
    t = losses.shape[0]
    return jnp.sum(jnp.where(l_hat > EPS, l_hat * jnp.log(jnp.maximum(l_hat, EPS) * t), 0.0))


def epo_weights(gramian: jnp.ndarray, losses: jnp.ndarray, ray: jnp.ndarray, eps: float = 1e-4) -> jnp.ndarray:
    """EPO's weights β (on the simplex) of the task gradients, d = βᵀG (Mahapatra & Rajan 2020,
    "Multi-task learning with user preferences: gradient descent with controlled ascent in
    Pareto optimization", §3.2, the linear programs of the balance and descent modes).

    With r on the simplex, l̂ = r⊙L/Σr⊙L, μ = KL(l̂ ‖ 1/T) and a = r⊙(log(T·l̂) - μ) (the direction
    that reduces μ): while μ > eps (off the ray) the balance mode maximises βᵀMa (the decrease of
    μ) over the simplex, keeping (Mβ)_j ≥ (Ma)_j for the tasks the adjustment lets grow
    ((Ma)_j ≤ 0) and (Mβ)_j* ≥ 0 for the task j* of largest r_j L_j; where no task has
    (Ma)_j > 0, all of Mβ ≥ 0. On the ray (μ ≤ eps) the descent mode maximises Σ_j (Mβ)_j with
    Mβ ≥ 0 (every task descends). An infeasible program falls back to β = r.
    """
    t = losses.shape[0]
    r = normalized(ray)
    l_hat = normalized(r * losses)
    mu = non_uniformity(losses, ray)
    a = r * (jnp.log(jnp.maximum(l_hat, EPS) * t) - mu)
    ma = gramian @ a
    star = jax.nn.one_hot(jnp.argmax(r * losses), t) > 0
    grows = ma > 0
    some = jnp.any(grows)
    rhs = jnp.where(some, jnp.where(star, 0.0, ma), 0.0)
    active = jnp.where(some, ~grows | star, True)
    balance, ok_balance = lp_on_simplex(ma, gramian, rhs, active)
    descent, ok_descent = lp_on_simplex(gramian @ jnp.ones(t, gramian.dtype), gramian, jnp.zeros(t, gramian.dtype),
                                        jnp.ones(t, bool))
    beta, ok = jnp.where(mu > eps, balance, descent), jnp.where(mu > eps, ok_balance, ok_descent)
    return jnp.where(ok, beta, r)


def pmtl_weights(gramian: jnp.ndarray, losses: jnp.ndarray, ray: jnp.ndarray, refs: jnp.ndarray,
                 initial: jnp.ndarray | bool = False) -> jnp.ndarray:
    """ParetoMTL's task weights w, d = wᵀG (Lin et al. 2019, "Pareto multi-task learning", Eq. 14
    and its dual, Eq. 15-16), scaled so that Σ|w| = T.

    The preference u = r/‖r‖ owns the cone of losses closer (in angle) to it than to any reference
    vector u_j (`refs`, K×T): G_j(θ) = (u_j - u)ᵀ L̂ ≤ 0, L̂ = L/‖L‖. The direction is the
    min-norm point of the convex hull of the task gradients and the gradients (u_j - u)ᵀG of the
    violated constraints (G_j > 0); its weights are λ + Σ_j β_j (u_j - u). With `initial` (the
    search for a feasible start, Eq. 13), the task gradients are left out while any constraint is
    violated. References equal to u are no constraint.
    """
    t = losses.shape[0]
    u = ray / (jnp.linalg.norm(ray) + EPS)
    units = refs / (jnp.linalg.norm(refs, axis=1, keepdims=True) + EPS)
    diff = units - u
    violated = (diff @ (losses / (jnp.linalg.norm(losses) + EPS)) > 0) & (jnp.linalg.norm(diff, axis=1) > 1e-6)
    # A duplicate of a vector already in the hull leaves the hull unchanged: the constraints that
    # hold are replaced by the first task's gradient (or, searching a start, the first violated one).
    start = jnp.asarray(initial) & jnp.any(violated)
    first = diff[jnp.argmax(violated)]
    filler = jnp.where(start, first, jax.nn.one_hot(0, t, dtype=diff.dtype))
    rows = jnp.where(violated[:, None], diff, filler)
    tasks = jnp.where(start, jnp.broadcast_to(first, (t, t)), jnp.eye(t, dtype=diff.dtype))
    combos = jnp.concatenate([tasks, rows])  # (T + K)×T: each hull vector as a combination of task gradients.
    m = combos @ gramian @ combos.T
    lam = min_norm_weights_exact(m) if m.shape[0] <= 10 else min_norm_weights(m, iters=500)
    w = lam @ combos
    return t * w / (jnp.sum(jnp.abs(w)) + EPS)


def pmgda_weights(gramian: jnp.ndarray, losses: jnp.ndarray, ray: jnp.ndarray, h_tol: float = 1e-3,
                  sigma: float = 0.5) -> jnp.ndarray:
    """PMGDA's task weights w, d = wᵀG (Zhang et al. 2024, "PMGDA: a preference-based multiple
    gradient descent algorithm", Eq. 18 and 20), scaled so that Σ|w| = T.

    The preference is the constraint h(L) = 0, h PBI's distance d₂ of the losses from the ray
    (losses along r). Where h ≤ h_tol the step is MGDA's min-norm direction. Otherwise, with the
    task gradients g_t and ∇h = Σ_t (∂h/∂L_t) g_t normalized to ĝ_k, the direction d = Σ_k μ_k ĝ_k
    (μ on the simplex of T + 1) maximizes min_t g_t·d, the worst task's descent, while reducing h
    at rate σ: ∇h·d ≥ σ‖∇h‖ (a linear program in μ and the bound γ).
    """
    t = losses.shape[0]
    correction, _, ok = pmgda_correction(gramian, losses, ray, sigma)
    mgda = min_norm_weights_exact(gramian) if t <= 10 else min_norm_weights(gramian)
    w = jnp.where((_ray_distance(losses, ray) > h_tol) & ok, correction, mgda)
    return t * w / (jnp.sum(jnp.abs(w)) + EPS)


def pmgda_correction(gramian: jnp.ndarray, losses: jnp.ndarray, ray: jnp.ndarray,
                     sigma: float) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """PMGDA's correction step (Eq. 20): (the task weights w of d = wᵀG, the worst task's descent
    min_t g_t·d, whether the program was feasible)."""
    t = losses.shape[0]
    jh = jax.grad(lambda l: _ray_distance(l, ray))(losses)  # ∂h/∂L: ∇h = jhᵀG.
    combos = jnp.concatenate([jnp.eye(t, dtype=gramian.dtype), jh[None, :]])  # (T + 1)×T.
    m = combos @ gramian @ combos.T
    norms = jnp.sqrt(jnp.maximum(jnp.diag(m), 0.0)) + EPS
    dots = m / norms[None, :]  # dots[k, j] = v_k · v̂_j
    # Variables (μ (T + 1), γ): max -γ s.t. -dots[:T]μ - γ ≤ 0, -dots[T]μ ≤ -σ‖∇h‖, μ ≥ 0, Σμ = 1.
    a_ub = jnp.concatenate([jnp.concatenate([-dots[:t], -jnp.ones((t, 1))], 1),
                            jnp.concatenate([-dots[t:], jnp.zeros((1, 1))], 1),
                            jnp.concatenate([-jnp.eye(t + 1), jnp.zeros((t + 1, 1))], 1)]).astype(gramian.dtype)
    b_ub = jnp.concatenate([jnp.zeros(t), -sigma * norms[t:], jnp.zeros(t + 1)]).astype(gramian.dtype)
    a_eq = jnp.concatenate([jnp.ones((1, t + 1)), jnp.zeros((1, 1))], 1).astype(gramian.dtype)
    c = jnp.zeros(t + 2, gramian.dtype).at[-1].set(-1.0)
    x, ok = lp_vertices(c, a_ub, b_ub, a_eq, jnp.ones(1, gramian.dtype))
    return (x[:-1] / norms) @ combos, -x[-1], ok


def _ray_distance(losses: jnp.ndarray, ray: jnp.ndarray) -> jnp.ndarray:
    """PBI's d₂: the distance of the losses from the line of the ray."""
    unit = ray / (jnp.linalg.norm(ray) + EPS)
    return jnp.sqrt(jnp.sum((losses - (losses @ unit) * unit) ** 2) + EPS)


def epo_direction(jac: jnp.ndarray, losses: jnp.ndarray, ray: jnp.ndarray, eps: float = 1e-4) -> jnp.ndarray:
    """EPO's descent direction βᵀJ from the task Jacobian J (T×P), the losses and the ray
    (`epo_weights`; β on the simplex, so not scaled by T as the registered `epo` is)."""
    return epo_weights(gram(jac), losses, ray, eps) @ jac


def pmtl_direction(jac: jnp.ndarray, losses: jnp.ndarray, ray: jnp.ndarray, refs: jnp.ndarray | None = None,
                   initial: bool = False) -> jnp.ndarray:
    """ParetoMTL's descent direction wᵀJ from the task Jacobian J (T×P), the losses and the ray
    (`pmtl_weights`); `refs` default to the lattice of 4 divisions (5 vectors for two tasks)."""
    refs = jnp.asarray(lattice(4, jac.shape[0]), jac.dtype) if refs is None else refs
    return pmtl_weights(gram(jac), losses, ray, refs, initial) @ jac


def hypervolume(points: np.ndarray, reference: Sequence[float]) -> float:
    """The Lebesgue measure of the region dominated by `points` (n × d, minimised) and bounded by
    `reference` (Zitzler & Thiele 1998). Points not better than the reference on every objective
    add nothing. Exact, by slicing along the last objective (O(n^d), for the few points of a front).
    """
    ref = np.asarray(reference, np.float64)
    pts = np.asarray(points, np.float64).reshape(-1, len(ref))
    return _slices(pts[np.all(pts < ref, axis=1)], ref)


def _slices(pts: np.ndarray, ref: np.ndarray) -> float:
    if len(pts) == 0:
        return 0.0
    if len(ref) == 1:
        return float(ref[0] - pts[:, 0].min())
    pts = pts[np.argsort(pts[:, -1], kind="stable")]
    volume = 0.0
    for i in range(len(pts)):  # The slab between this point's last coordinate and the next one's.
        top = pts[i + 1, -1] if i + 1 < len(pts) else ref[-1]
        if top > pts[i, -1]:
            volume += (top - pts[i, -1]) * _slices(pts[:i + 1, :-1], ref[:-1])
    return volume
