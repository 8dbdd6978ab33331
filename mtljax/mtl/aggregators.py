"""Gradient aggregators: the task-gradient matrix G (T×P, one row per task, gradients of the task
losses with respect to the shared parameters) -> one update direction d (P).

Every function is pure and jit/vmap-friendly; the small problems they solve live in the T×T Gram
matrix M = G·Gᵀ, so their cost is O(T²P) plus a T-sized solve. Each follows its paper's equations;
tests/test_strategies.py checks them against independent NumPy/SciPy solutions and the properties
their papers prove. `weights_*` return w with d = wᵀG where the method is a weighting of rows.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

EPS = 1e-12


def gram(g: jnp.ndarray) -> jnp.ndarray:
    """M = G·Gᵀ in float32 with highest-precision dots (the small solves below are sensitive)."""
    return jnp.dot(g, g.T, precision=jax.lax.Precision.HIGHEST)


def pcgrad(g: jnp.ndarray, rng: jax.Array) -> jnp.ndarray:
    """PCGrad (Yu et al. 2020, Alg. 1): for each task i, in a random order over the other tasks j,
    g_i ← g_i − min(0, g_i·g_j)/‖g_j‖² · g_j (projecting away the conflicting component); d = Σ_i g_i.
    The projections use the original g_j, as in the paper and its code."""
    t = g.shape[0]
    norms2 = jnp.sum(g * g, axis=1)

    def project_one(i, key):
        order = jax.random.permutation(key, t)

        def body(k, gi):
            j = order[k]
            dot = jnp.dot(gi, g[j])
            coef = jnp.where((j != i) & (dot < 0), dot / (norms2[j] + EPS), 0.0)
            return gi - coef * g[j]

        return jax.lax.fori_loop(0, t, body, g[i])

    return jnp.sum(jax.vmap(project_one)(jnp.arange(t), jax.random.split(rng, t)), axis=0)


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


def _subsets(t: int) -> np.ndarray:
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

    supports = jnp.asarray(_subsets(t)[1:], m.dtype)  # Non-empty supports.
    ws, values = jax.vmap(candidate)(supports)
    return jnp.clip(ws[jnp.argmin(values)], 0.0, None)


def mgda(g: jnp.ndarray) -> jnp.ndarray:
    """MGDA (Sener & Koltun 2018, Eq. 3 / Désidéri 2012): d = w*ᵀG, w* = argmin_{w∈Δ} ‖wᵀG‖², the
    min-norm point of the convex hull of the task gradients, solved exactly for T ≤ 10 (else by
    Frank-Wolfe). Scaled by T, so that identical gradients give their sum, as the other aggregators
    do. (The paper's MGDA-UB applies this to the gradients of the shared representation: see
    `mgda_ub` in strategies.py.)"""
    m = gram(g)
    w = min_norm_weights_exact(m) if g.shape[0] <= 10 else min_norm_weights(m)
    return g.shape[0] * (w @ g)


def cagrad(g: jnp.ndarray, c: float = 0.4, steps: int = 21) -> jnp.ndarray:
    """CAGrad (Liu et al. 2021, Eq. 4 and the authors' code): with g₀ the mean gradient, find
    w ∈ Δ minimising g_wᵀg₀ + c‖g₀‖·‖g_w‖ (w = softmax(z), 21 SGD steps, lr 25, momentum 0.5, on
    the Gram matrix normalised by the mean gradient norm, as the code does); then
    d = (g₀ + c‖g₀‖/‖g_w‖ · g_w) / (1 + c²), times T (a sum, like the other aggregators)."""
    t = g.shape[0]
    m = gram(g)
    scale = jnp.mean(jnp.sqrt(jnp.diag(m) + 1e-4))
    m = m / scale**2
    mg = jnp.mean(m, axis=1)  # G·g₀ per task, normalised.
    cc = jnp.sqrt(jnp.mean(mg) + 1e-4) * c  # c·‖g₀‖.

    def objective(z):
        w = jax.nn.softmax(z)
        return w @ mg + cc * jnp.sqrt(w @ m @ w + 1e-4)

    def body(_, carry):
        z, velocity = carry
        velocity = 0.5 * velocity + jax.grad(objective)(z)
        return z - 25.0 * velocity, velocity

    z, _ = jax.lax.fori_loop(0, steps, body, (jnp.zeros(t, g.dtype), jnp.zeros(t, g.dtype)))
    w = jax.nn.softmax(z)
    lam = cc / (jnp.sqrt(w @ m @ w + 1e-4) + 1e-4)
    coef = (1.0 / t + lam * w) / (1 + c**2)
    return t * (coef @ g)


def imtl_g(g: jnp.ndarray) -> jnp.ndarray:
    """IMTL-G (Liu et al. 2021, Sec. 3.2): α such that d = αᵀG has equal projections on every unit
    gradient u_t = g_t/‖g_t‖, Σα = 1: α_{2:T} = g₁Uᵀ(DUᵀ)⁻¹ with D = g₁ − g_t, U = u₁ − u_t.
    Scaled by T, so identical gradients give their sum."""
    t = g.shape[0]
    if t == 1:
        return g[0]
    u = g / (jnp.linalg.norm(g, axis=1, keepdims=True) + EPS)
    d, uu = g[0] - g[1:], u[0] - u[1:]
    du = jnp.dot(d, uu.T, precision=jax.lax.Precision.HIGHEST)
    rhs = jnp.dot(g[0], uu.T, precision=jax.lax.Precision.HIGHEST)
    alpha_rest = jnp.linalg.lstsq(du.T, rhs)[0]  # Solves α Dᵁᵀ = g₁Uᵀ; lstsq for parallel rows.
    alpha = jnp.concatenate([1 - jnp.sum(alpha_rest, keepdims=True), alpha_rest])
    return t * (alpha @ g)


def nash_weights(m: jnp.ndarray, iters: int = 50) -> jnp.ndarray:
    """The α > 0 solving (Mα)_t = 1/α_t for every t (Navon et al. 2022, Eq. 5).

    They are the minimiser of φ(α) = ½αᵀMα − Σ_t log α_t over α > 0 (∇φ = Mα − 1/α), a strictly
    convex, self-concordant function, so damped Newton steps α ← α − H⁻¹∇φ / (1 + λ), with
    H = M + diag(1/α²) and λ the Newton decrement, stay inside α > 0 and converge from any start
    (Nesterov 2004, Sec. 4.1.5); started at α = 1/√diag(M). (Newton on log α, used before, could
    leave the region where Mα > 0 when gradients conflict, and returned NaN.)"""
    t = m.shape[0]
    m = m + 1e-8 * jnp.trace(m) / t * jnp.eye(t, dtype=m.dtype)

    def body(_, alpha):
        grad = m @ alpha - 1.0 / alpha
        step = jnp.linalg.solve(m + jnp.diag(1.0 / alpha**2), grad)
        decrement = jnp.sqrt(jnp.maximum(grad @ step, 0.0))
        return alpha - step / (1.0 + decrement)

    return jax.lax.fori_loop(0, iters, body, 1.0 / jnp.sqrt(jnp.diag(m) + EPS))


def nash_mtl(g: jnp.ndarray) -> jnp.ndarray:
    """Nash-MTL (Navon et al. 2022): d = αᵀG with GGᵀα = 1/α, the Nash bargaining solution (each
    task's utility d·g_t = 1/α_t). Solved exactly here, where the authors approximate it by a few
    convex-concave steps with cvxpy."""
    return nash_weights(gram(g)) @ g


def aligned_mtl(g: jnp.ndarray) -> jnp.ndarray:
    """Aligned-MTL (Senushkin et al. 2023, Alg. 1): with M = GGᵀ = VΛVᵀ, B = √λ_min · VΛ^{-½}Vᵀ
    makes the rows of BG orthogonal with equal norms √λ_min (condition number 1); d = Σ_t (BG)_t.
    Eigenvalues below the numerical rank's tolerance are left out, as in the authors' code."""
    m = gram(g)
    lam, v = jnp.linalg.eigh(m)
    tol = jnp.max(lam) * m.shape[0] * jnp.finfo(m.dtype).eps * 10
    keep = lam > tol
    sigma = jnp.sqrt(jnp.where(keep, lam, 1.0))
    sigma_min = jnp.min(jnp.where(keep, sigma, jnp.inf))
    b = sigma_min * (v * jnp.where(keep, 1.0 / sigma, 0.0)) @ v.T
    return jnp.sum(b, axis=0) @ g


def _box_qp_exact(m: jnp.ndarray, u: jnp.ndarray) -> jnp.ndarray:
    """argmin_{v ≥ u} vᵀMv (M positive semi-definite, T small), exactly: every choice of the set of
    free coordinates is solved as a linear system, and the KKT point of least value is kept."""
    t = m.shape[0]
    masks = jnp.asarray(_subsets(t), m.dtype)
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


def upgrad_weights(m: jnp.ndarray) -> jnp.ndarray:
    """UPGrad's weights (Quinton & Rey 2024, Def. 3 / TorchJD): the mean over tasks i of
    argmin_{v ≥ e_i} vᵀMv, i.e. of the projections of each g_i onto the dual cone of the rows of G."""
    t = m.shape[0]
    return jnp.mean(jax.vmap(lambda e: _box_qp_exact(m, e))(jnp.eye(t, dtype=m.dtype)), axis=0)


def upgrad(g: jnp.ndarray) -> jnp.ndarray:
    """UPGrad (Quinton & Rey 2024): d = (1/T) Σ_i π(g_i), π the projection onto the dual cone
    {x : g_j·x ≥ 0 ∀j}; scaled by T, so that non-conflicting gradients give their sum."""
    return g.shape[0] * (upgrad_weights(gram(g)) @ g)


def dualproj(g: jnp.ndarray) -> jnp.ndarray:
    """DualProj (Quinton & Rey 2024, Sec. 2 / TorchJD): the mean gradient projected onto the dual
    cone of the rows of G, π(ḡ) = argmin_{d: Gd ≥ 0} ‖d − ḡ‖ = vᵀG with v = argmin_{v ≥ 1/T} vᵀMv
    (the dual of the projection, as for UPGrad); scaled by T (agreeing gradients give their sum)."""
    t = g.shape[0]
    m = gram(g)
    return t * (_box_qp_exact(m, jnp.full((t,), 1.0 / t, m.dtype)) @ g)


def config_direction(g: jnp.ndarray) -> jnp.ndarray:
    """ConFIG (Liu et al. 2024, Eqs. 3-4): with U the unit task gradients (rows g_t/‖g_t‖), the unit
    direction û ∝ U⁺·1 has the same cosine with every task gradient; its length is the sum of the
    projections, d = (Σ_t g_t·û)·û (the sum for agreeing gradients). U⁺·1 = Uᵀ(UUᵀ)⁺·1."""
    u = g / (jnp.linalg.norm(g, axis=1, keepdims=True) + EPS)
    x = jnp.linalg.pinv(gram(u), hermitian=True) @ jnp.ones(g.shape[0], g.dtype) @ u
    unit = x / (jnp.linalg.norm(x) + EPS)
    return jnp.sum(g @ unit) * unit


def graddrop(g: jnp.ndarray, rng: jax.Array, leak: float = 0.0) -> jnp.ndarray:
    """GradDrop (Chen et al. 2020, Eqs. 1-3): per coordinate, the positive sign purity
    P = ½(1 + Σ_t g_t / Σ_t |g_t|) and one U ~ Uniform(0, 1); task t keeps its entry where
    (P > U and g_t > 0) or (P < U and g_t < 0), so each coordinate keeps one sign; d = Σ_t M_t g_t.
    `leak` ∈ [0, 1] keeps that fraction of every dropped entry (1: the plain sum). The paper drops
    at a layer's activations; here it acts on the rows it is given (parameters, or the
    representation with `mtl.rep_grad`)."""
    purity = 0.5 * (1.0 + jnp.sum(g, axis=0) / (jnp.sum(jnp.abs(g), axis=0) + EPS))
    u = jax.random.uniform(rng, purity.shape, g.dtype)
    keep = ((purity > u) & (g > 0)) | ((purity < u) & (g < 0))
    return jnp.sum((leak + (1.0 - leak) * keep) * g, axis=0)


def fairgrad_weights(m: jnp.ndarray, alpha: float, iters: int = 60) -> jnp.ndarray:
    """The w > 0 solving (Mw)_t = w_t^(−1/α) (Ban & Ji 2024, Eq. 8; α = 1 is Nash-MTL's equation).

    They minimise φ(w) = ½wᵀMw − Σ_t h(w_t) with h' = w^(−1/α) (h(w) = log w for α = 1, else
    w^(1−1/α)/(1−1/α)): strictly convex on w > 0, so Newton steps with H = M + diag(w^(−1/α−1)/α),
    damped by 1/(1 + decrement) and kept to 90 % of the way to the boundary w = 0, converge."""
    t = m.shape[0]
    m = m + 1e-8 * jnp.trace(m) / t * jnp.eye(t, dtype=m.dtype)

    def body(_, w):
        grad = m @ w - w ** (-1.0 / alpha)
        newton = jnp.linalg.solve(m + jnp.diag(w ** (-1.0 / alpha - 1.0) / alpha), grad)
        step = newton / (1.0 + jnp.sqrt(jnp.maximum(grad @ newton, 0.0)))
        room = jnp.min(jnp.where(step > 0, 0.9 * w / jnp.where(step > 0, step, 1.0), jnp.inf))
        return w - jnp.minimum(1.0, room) * step

    return jax.lax.fori_loop(0, iters, body, 1.0 / jnp.sqrt(jnp.diag(m) + EPS))


def fairgrad(g: jnp.ndarray, alpha: float = 1.0) -> jnp.ndarray:
    """FairGrad (Ban & Ji 2024): d = wᵀG with GGᵀw = w^(−1/α), the α-fair allocation of the update
    among the tasks (each task's utility d·g_t = w_t^(−1/α)); solved exactly by `fairgrad_weights`
    where the authors use a least-squares solver."""
    return fairgrad_weights(gram(g), alpha) @ g


def project_simplex(v: jnp.ndarray) -> jnp.ndarray:
    """The Euclidean projection of v onto the simplex {w ≥ 0, Σw = 1} (sort-based, Held et al. 1974)."""
    u = jnp.sort(v)[::-1]
    cssv = jnp.cumsum(u) - 1.0
    k = jnp.arange(1, v.shape[0] + 1, dtype=v.dtype)
    rho = jnp.max(jnp.where(u - cssv / k > 0, k, 0.0))
    theta = jnp.sum(jnp.where(k <= rho, u, 0.0)) / jnp.maximum(rho, 1.0) - 1.0 / jnp.maximum(rho, 1.0)
    return jnp.maximum(v - theta, 0.0)
