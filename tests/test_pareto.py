"""Preference-driven MTL: rays, scalarizations, EPO's and ParetoMTL's directions against
independent SciPy solutions, the hypervolume against brute force, and the preference's checks."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog, minimize

from mtljax import config, mtl
from mtljax.models.preference import PreferenceModel
from mtljax.mtl import pareto, solvers
from mtljax.outputs import stats
from mtljax.train import sweeps
from conftest import tiny_config


def test_uniform_rays_spread_evenly_inside_the_simplex():
    rays = pareto.uniform_rays(25, 2)
    assert rays.shape == (25, 2) and np.allclose(rays.sum(1), 1) and np.all(rays > 0)
    assert np.allclose(np.diff(rays[:, 0]), 1 / 25)  # Evenly spaced, ((k + 1/2)/n, ...).
    three = pareto.uniform_rays(15, 3)
    assert three.shape == (15, 3) and np.allclose(three.sum(1), 1) and np.all(three > 0)
    assert len({tuple(np.round(r, 9)) for r in three}) == 15
    with pytest.raises(ValueError, match="5 rays cannot be spread evenly over 3 tasks; possible: 3, 6, 10"):
        pareto.uniform_rays(5, 3)


def test_sampled_rays_lie_on_the_simplex():
    rays = pareto.sample_rays(jax.random.key(0), 3, (100,), alpha=1.2)
    assert rays.shape == (100, 3) and np.allclose(rays.sum(-1), 1, atol=1e-6) and np.all(rays >= 0)


def test_scalarizations_by_hand():
    losses, ray = jnp.array([0.5, 2.0]), jnp.array([0.75, 0.25])
    assert pareto.linear(losses, ray) == pytest.approx(0.875)
    assert pareto.tchebycheff(losses, ray) == pytest.approx(0.5)  # max(0.375, 0.5).
    assert pareto.smooth_tchebycheff(losses, ray, mu=1e-3) == pytest.approx(0.5, abs=1e-3)
    unit = np.array([0.75, 0.25]) / np.hypot(0.75, 0.25)
    d1 = float(np.dot([0.5, 2.0], unit))
    d2 = float(np.linalg.norm(np.array([0.5, 2.0]) - d1 * unit))
    assert pareto.pbi(losses, ray, theta=5.0) == pytest.approx(d1 + 5 * d2, rel=1e-5)
    cos = (0.75 * 0.5 + 0.25 * 2.0) / (np.hypot(0.75, 0.25) * np.hypot(0.5, 2.0))
    assert pareto.cosine(losses, ray) == pytest.approx(cos, rel=1e-5)
    ctx = mtl.context("cosmos", num_tasks=2, weights=ray, lamda=2.0)
    value, _ = mtl.method("cosmos").loss(losses, {}, {}, ctx)
    assert value == pytest.approx(0.875 - 2.0 * cos, rel=1e-5)  # COSMOS's Σ r L − λ cos(r, L).


def test_lp_on_simplex_matches_linprog():
    rng = np.random.default_rng(0)
    for _ in range(30):
        t = int(rng.integers(2, 6))
        g = rng.normal(size=(t, 7))
        m, c, b = g @ g.T, rng.normal(size=t), 0.3 * rng.normal(size=t)
        active = rng.uniform(size=t) < 0.6
        beta, ok = solvers.lp_on_simplex(jnp.asarray(c), jnp.asarray(m), jnp.asarray(b), jnp.asarray(active))
        rows = m[active]
        res = linprog(-c, A_ub=-rows if len(rows) else None, b_ub=-b[active] if len(rows) else None,
                      A_eq=np.ones((1, t)), b_eq=[1.0], bounds=[(0, None)] * t)
        assert bool(ok) == (res.status == 0)
        if res.status == 0:
            assert float(c @ np.asarray(beta)) == pytest.approx(-res.fun, abs=1e-4)
            assert np.all(rows @ np.asarray(beta) >= b[active] - 1e-4 * np.linalg.norm(rows, axis=1))


def _epo_by_linprog(m, losses, ray, eps=1e-4):
    """EPO's program written again from its definition, solved by SciPy: (mode, optimal value)."""
    t = len(losses)
    r = ray / ray.sum()
    l_hat = r * losses / np.sum(r * losses)
    mu = float(np.sum(l_hat * np.log(l_hat * t)))
    a = r * (np.log(l_hat * t) - mu)
    ma = m @ a
    if mu > eps:
        star = int(np.argmax(r * losses))
        keep = [j for j in range(t) if ma[j] <= 0 or j == star] if np.any(ma > 0) else list(range(t))
        rhs = np.array([0.0 if (j == star or not np.any(ma > 0)) else ma[j] for j in keep])
        c = ma
    else:
        keep, rhs, c = list(range(t)), np.zeros(t), m @ np.ones(t)
    res = linprog(-c, A_ub=-m[keep], b_ub=-rhs, A_eq=np.ones((1, t)), b_eq=[1.0], bounds=[(0, None)] * t)
    return ("balance" if mu > eps else "descent"), c, res


def test_epo_weights_solve_epo_linear_program():
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(40):
        t = int(rng.integers(2, 5))
        g = rng.normal(size=(t, 9))
        m, losses, ray = g @ g.T, rng.uniform(0.2, 2.0, t), rng.uniform(0.1, 1.0, t)
        beta = np.asarray(pareto.epo_weights(jnp.asarray(m), jnp.asarray(losses), jnp.asarray(ray)))
        _, c, res = _epo_by_linprog(m, losses, ray)
        assert np.all(beta >= -1e-6) and beta.sum() == pytest.approx(1.0, abs=1e-5)
        if res.status == 0:
            assert float(c @ beta) == pytest.approx(-res.fun, abs=1e-3 * (1 + abs(res.fun)))
            checked += 1
    assert checked > 25


def test_epo_on_its_ray_descends_for_every_task():
    g = jnp.asarray(np.random.default_rng(2).normal(size=(3, 6)))
    ray = jnp.array([0.2, 0.3, 0.5])
    losses = 1.0 / ray  # r ⊙ L is the same for every task: on the ray, the descent mode.
    assert pareto.non_uniformity(losses, ray) == pytest.approx(0.0, abs=1e-6)
    beta = pareto.epo_weights(solvers.gram(g), losses, ray)
    assert np.all(np.asarray(g @ (beta @ g)) >= -1e-5)


def _min_norm_by_slsqp(vectors):
    """argmin ‖λᵀV‖² over the simplex, by SciPy's SLSQP."""
    k = len(vectors)
    gram = vectors @ vectors.T
    res = minimize(lambda w: w @ gram @ w, np.full(k, 1 / k), jac=lambda w: 2 * gram @ w, method="SLSQP",
                   bounds=[(0, None)] * k, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                   options={"ftol": 1e-14, "maxiter": 500})
    return res.x @ vectors


def test_pmtl_direction_is_the_min_norm_point_of_its_constraints():
    rng = np.random.default_rng(3)
    refs = pareto.lattice(4, 2)
    for _ in range(20):
        g = rng.normal(size=(2, 8))
        losses, ray = rng.uniform(0.2, 2.0, 2), refs[int(rng.integers(0, 5))]
        w = np.asarray(pareto.pmtl_weights(jnp.asarray(g @ g.T), jnp.asarray(losses), jnp.asarray(ray),
                                           jnp.asarray(refs)))
        u = ray / np.linalg.norm(ray)
        units = refs / np.linalg.norm(refs, axis=1, keepdims=True)
        violated = [(uj - u) @ g for uj in units if (uj - u) @ (losses / np.linalg.norm(losses)) > 0
                    and np.linalg.norm(uj - u) > 1e-6]
        expected = _min_norm_by_slsqp(np.vstack([g, *violated]) if violated else g)
        direction = w @ g
        # Same direction; pmtl scales its weights to Σ|w| = T.
        cos = direction @ expected / (np.linalg.norm(direction) * np.linalg.norm(expected) + 1e-12)
        assert np.linalg.norm(expected) < 1e-3 or cos == pytest.approx(1.0, abs=1e-3)


def test_hypervolume_matches_counting_grid_cells():
    """Brute force: on integer points, the dominated region is a union of unit cells; count them."""
    rng = np.random.default_rng(4)
    for dims in (2, 3):
        for _ in range(20):
            points = rng.integers(0, 8, (int(rng.integers(1, 9)), dims)).astype(float)
            ref = np.full(dims, 8.0)
            cells = itertools.product(range(8), repeat=dims)
            count = sum(any(np.all(p <= np.asarray(c)) for p in points) for c in cells)
            assert stats.hypervolume(points, ref) == pytest.approx(count)


def test_condition_input_appends_the_ray_as_channels():
    images = jnp.zeros((2, 4, 4, 1))
    out = pareto.condition_input(images, jnp.array([0.3, 0.7]))
    assert out.shape == (2, 4, 4, 3)
    assert np.allclose(out[..., 1], 0.3) and np.allclose(out[..., 2], 0.7)


@pytest.mark.parametrize("pareto_section, message", [
    ({"rays": 4}, None),
    ({"rays": 5}, "pareto.rays: 5 rays cannot be spread evenly over 3 tasks"),
    ({"condition": "input", "rays": 3}, "pareto.rays: a conditioned run is one model for every ray"),
    ({"preference": [0.5, 0.5, 0.0]}, "pareto.preference: this run is not preference-conditioned"),
    ({"condition": "input", "preference": [0.5, 0.5]}, "pareto.preference: expected 3 numbers"),
    ({"condition": "input", "preference": [1, -1, 1]}, "pareto.preference: expected numbers >= 0"),
    ({"condition": "input", "preference": [0, 0, 0]}, "pareto.preference: a ray needs a number > 0"),
])
def test_pareto_section_is_checked(tiny_data_dir, pareto_section, message):
    cfg = tiny_config(tiny_data_dir, pareto=pareto_section)
    if pareto_section == {"rays": 4}:
        cfg["tasks"] = ["digit", "parity"]
        assert len(sweeps.points(config.resolve(cfg))) == 4
        return
    with pytest.raises(config.ConfigError, match=message):
        config.resolve(cfg)


def test_epo_with_too_many_tasks_is_one_config_error(tiny_data_dir):
    cfg = tiny_config(tiny_data_dir, mtl={"strategy": "epo"}, tasks=[f"t{k}" for k in range(7)],
                      columns={f"t{k}": {"column": "label", "classes": 10} for k in range(7)})
    with pytest.raises(config.ConfigError, match="mtl.strategy: 'epo' solves its linear program exactly over its "
                                                 "vertices, for at most 6 tasks; this config has 7"):
        config.resolve(cfg)


def test_rays_cannot_go_with_a_loss_weight_sweep(tiny_data_dir):
    cfg = tiny_config(tiny_data_dir, pareto={"rays": 3}, sweep={"loss_weights.parity": [1, 2]})
    cfg["tasks"] = ["digit", "parity"]
    with pytest.raises(config.ConfigError, match="pareto.rays: the rays are the replicas' loss weights"):
        config.resolve(cfg)


def test_attach_preference_keeps_a_negative_value_for_the_check():
    assert sweeps.attach_preference(["run", "--preference", "-1,2"]) == ["run", "--preference=-1,2"]
    with pytest.raises(ValueError, match="--preference 'a,b': expected numbers"):
        sweeps.parse_preference("a,b")


def _lenet_pair(condition):
    from mtljax import models

    cfg = {**models.default_config("lenet"), "architecture": "hard"}
    target = models.build_model(cfg, {"left": 10, "right": 10})
    return target, models.build_model(cfg, {"left": 10, "right": 10}, condition=condition, hidden=16)


def test_phn_makes_every_weight_of_the_target_network():
    target, phn = _lenet_pair("hyper")
    images = jnp.zeros((2, 36, 36, 1))
    x = pareto.condition_input(images, jnp.array([0.3, 0.7]))
    variables = phn.init(jax.random.key(0), x)
    made = phn.apply(variables, x, method=PreferenceModel.weights)
    shapes = jax.eval_shape(lambda: target.init(jax.random.key(0), images))["params"]
    assert jax.tree.map(lambda a: a.shape, made) == jax.tree.map(lambda a: a.shape, shapes)
    other = phn.apply(variables, pareto.condition_input(images, jnp.array([0.9, 0.1])),
                      method=PreferenceModel.weights)
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(made), jax.tree.leaves(other)))
    # The network PHN makes is the target network with those weights.
    np.testing.assert_allclose(phn.apply(variables, x)["left"], target.apply({"params": made}, images)["left"], rtol=1e-5)


def test_pml_weights_are_the_rays_point_of_the_simplex():
    target, pml = _lenet_pair("simplex")
    images = jax.random.uniform(jax.random.key(1), (2, 36, 36, 1))
    ray = jnp.array([0.25, 0.75])
    variables = pml.init(jax.random.key(0), pareto.condition_input(images, ray))
    vertices = variables["params"]["simplex"]
    assert all(v.shape[0] == 2 for v in jax.tree.leaves(vertices))
    mixed = jax.tree.map(lambda v: 0.25 * v[0] + 0.75 * v[1], vertices)
    np.testing.assert_allclose(pml.apply(variables, pareto.condition_input(images, ray))["right"],
                               target.apply({"params": mixed}, images)["right"], rtol=1e-5, atol=1e-6)
    corner = jax.tree.map(lambda v: v[0], vertices)  # The ray (1, 0): the first task's network.
    np.testing.assert_allclose(pml.apply(variables, pareto.condition_input(images, jnp.array([1.0, 0.0])))["left"],
                               target.apply({"params": corner}, images)["left"], rtol=1e-5, atol=1e-6)


def test_pmgda_correction_solves_its_linear_program():
    rng = np.random.default_rng(5)
    sigma = 0.5
    for _ in range(20):
        t = int(rng.integers(2, 4))
        g = rng.normal(size=(t, 7))
        losses, ray = rng.uniform(0.2, 2.0, t), rng.uniform(0.1, 1.0, t)
        w, descent, ok = pareto.pmgda_correction(jnp.asarray(g @ g.T), jnp.asarray(losses), jnp.asarray(ray), sigma)
        unit = ray / np.linalg.norm(ray)
        perp = losses - (losses @ unit) * unit
        grad_h = (perp / np.linalg.norm(perp)) @ g  # ∇h of h = PBI's d₂, by hand.
        vectors = np.vstack([g, grad_h])
        units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        # Variables (μ, γ): min γ s.t. g_t·(μᵀV̂) ≥ -γ, ∇h·(μᵀV̂) ≥ σ‖∇h‖, μ on the simplex.
        a_ub = np.vstack([np.c_[-(g @ units.T), -np.ones(t)], np.r_[-(grad_h @ units.T), 0.0]])
        b_ub = np.r_[np.zeros(t), -sigma * np.linalg.norm(grad_h)]
        res = linprog(np.r_[np.zeros(t + 1), 1.0], A_ub=a_ub, b_ub=b_ub, A_eq=np.r_[np.ones(t + 1), 0.0][None],
                      b_eq=[1.0], bounds=[(0, None)] * (t + 1) + [(None, None)])
        assert bool(ok) == (res.status == 0)
        if res.status == 0:
            assert float(descent) == pytest.approx(-res.fun, abs=1e-4)
            d = np.asarray(w) @ g
            assert grad_h @ d >= sigma * np.linalg.norm(grad_h) - 1e-4  # h decreases at rate σ.
            assert np.min(g @ d) == pytest.approx(-res.fun, abs=1e-4)


def test_pmgda_on_the_ray_is_mgda():
    g = jnp.asarray(np.random.default_rng(6).normal(size=(2, 5)))
    ray = jnp.array([0.3, 0.7])
    w = pareto.pmgda_weights(solvers.gram(g), 2.0 * ray, ray)  # Losses along the ray: h = 0.
    np.testing.assert_allclose(w, 2 * solvers.min_norm_weights_exact(solvers.gram(g)), rtol=1e-4)


def test_the_registered_per_ray_methods_are_the_api_functions():
    g = jnp.asarray(np.random.default_rng(7).normal(size=(2, 6)))
    losses, ray = jnp.array([0.7, 1.3]), jnp.array([0.4, 0.6])
    np.testing.assert_allclose(mtl.aggregate("epo", g, losses=losses, weights=ray),
                               2 * mtl.epo_direction(g, losses, ray), rtol=1e-5)
    np.testing.assert_allclose(mtl.aggregate("pmtl", g, losses=losses, weights=ray, init_steps=0),
                               mtl.pmtl_direction(g, losses, ray), rtol=1e-5)
    assert mtl.weigh("tchebycheff", losses, weights=ray)[0] == pytest.approx(float(mtl.tchebycheff(losses, ray)))
    assert mtl.weigh("pbi", losses, weights=ray)[0] == pytest.approx(float(mtl.pbi(losses, ray)))


@pytest.mark.parametrize("condition", ["hyper", "simplex"])
def test_evaluating_at_a_ray_makes_the_weights_once_with_the_same_outputs(condition):
    from mtljax.train.step import at_ray, make_eval_step

    _, model = _lenet_pair(condition)
    images = jax.random.uniform(jax.random.key(2), (3, 36, 36, 1))
    ray = np.array([0.6, 0.4], np.float32)
    params = model.init(jax.random.key(0), pareto.condition_input(images, jnp.asarray(ray)))["params"]
    made, step = at_ray(model, params, images, ray)
    assert set(made) == {"backbone", "head_left", "head_right"}  # The wrapped network's own parameters.
    np.testing.assert_allclose(step(made, {}, images)["left"], make_eval_step(model, ray)(params, {}, images)["left"],
                               rtol=1e-5, atol=1e-6)
