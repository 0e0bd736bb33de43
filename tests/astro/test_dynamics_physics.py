"""The physics core on analytic equilibria: no training involved."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from excess.astro.dynamics.analytic import HernquistSphere, PlummerSphere  # noqa: E402
from excess.astro.dynamics.boltzmann import (  # noqa: E402
    accelerations_at,
    boltzmann_residual,
    density_at,
    log_f_gradients,
    solve_accelerations,
)
from excess.astro.dynamics.units import G, MSUN_PC3_TO_GEV_CM3  # noqa: E402
from excess.errors import ConfigError, InputError  # noqa: E402

MODELS = [HernquistSphere(mass=1e12, a=10.0), PlummerSphere(mass=5e11, a=5.0)]


def _positions(model, n, rng):
    r = model.mass_radius(rng.uniform(0.1, 0.9, n))
    d = rng.normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True) * r[:, None]


def _bound_velocities(model, x, n_v, rng):
    """Velocities uniform in the ball of radius 0.9 v_esc(x): any set works for an exact equilibrium."""
    vesc = np.sqrt(-2 * model.potential(x))
    d = rng.normal(size=(x.shape[0], n_v, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    s = 0.9 * vesc[:, None] * rng.uniform(0.05, 1, (x.shape[0], n_v)) ** (1 / 3)
    return d * s[..., None]


def test_units():
    assert G == pytest.approx(4.3009e-6, rel=1e-4)
    assert MSUN_PC3_TO_GEV_CM3 == pytest.approx(37.97, rel=1e-3)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_residual_vanishes_for_equilibrium_and_not_for_wrong_field(model):
    rng = np.random.default_rng(1)
    x = _positions(model, 20, rng)
    v = _bound_velocities(model, x, 50, rng)
    xt, vt = torch.as_tensor(x), torch.as_tensor(v)
    gx, gv = log_f_gradients(model.log_df, xt, vt)
    a_true = torch.as_tensor(model.acceleration(x))
    res = boltzmann_residual(gx, gv, vt, a_true)
    scale = (vt * gx).sum(-1).abs().mean()
    assert res.abs().max() < 1e-8 * scale
    res_wrong = boltzmann_residual(gx, gv, vt, 1.1 * a_true)  # a 10 % stronger field is not an equilibrium
    assert res_wrong.abs().mean() > 1e-3 * scale


@pytest.mark.parametrize("weights", ["score", "velocity"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_solver_recovers_field_and_density(model, weights):
    # both solves are exact for an exact equilibrium f (every residual vanishes)
    rng = np.random.default_rng(2)
    x = _positions(model, 16, rng)
    v = _bound_velocities(model, x, 40, rng)
    xt, vt = torch.as_tensor(x), torch.as_tensor(v)
    a = accelerations_at(model.log_df, xt, vt, weights=weights).numpy()
    np.testing.assert_allclose(a, model.acceleration(x), rtol=1e-8, atol=1e-12)
    a2, rho = density_at(model.log_df, xt, vt, weights=weights)
    np.testing.assert_allclose(a2.numpy(), model.acceleration(x), rtol=1e-8)
    np.testing.assert_allclose(rho.numpy(), model.density(x), rtol=1e-6)
    with pytest.raises(InputError, match="weights"):
        accelerations_at(model.log_df, xt, vt, weights="bogus")


def test_velocity_weighted_solve_is_the_jeans_equation_of_the_model():
    # f = n(x) N(v; 0, s(x)^2 I), velocities drawn from it: the velocity-weighted solve gives the isotropic Jeans
    # acceleration grad(n s^2) / n (Stein's identity), up to the Monte-Carlo noise of the velocities
    n_log = lambda X: -((X * X).sum(-1)) / 50.0  # noqa: E731  (log n)
    ls2 = lambda X: 8.0 - 0.1 * torch.log1p((X * X).sum(-1))  # noqa: E731  (log s^2)

    def log_f(X, V):
        return n_log(X) - 0.5 * (V * V).sum(-1) / torch.exp(ls2(X)) - 1.5 * ls2(X)

    xt = torch.tensor([[3.0, 0.0, 0.0], [0.0, -8.0, 2.0], [5.0, 5.0, 5.0]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    vg = torch.randn(3, 40_000, 3, generator=gen, dtype=torch.float64) * torch.exp(0.5 * ls2(xt))[:, None, None]
    X = xt.clone().requires_grad_(True)
    (g,) = torch.autograd.grad((n_log(X) + ls2(X)).sum(), X)
    jeans = (torch.exp(ls2(xt))[:, None] * g).numpy()
    a_v = accelerations_at(log_f, xt, vg, weights="velocity").numpy()
    np.testing.assert_allclose(a_v, jeans, rtol=0.03, atol=0.03 * np.abs(jeans).max())


def test_solver_on_synthetic_gradients():
    # a known field recovered from gradients constructed to satisfy the equation up to noise
    gen = torch.Generator().manual_seed(0)
    P, N = 5, 200
    a_true = torch.randn(P, 3, generator=gen, dtype=torch.float64)
    v = torch.randn(P, N, 3, generator=gen, dtype=torch.float64)
    gv = torch.randn(P, N, 3, generator=gen, dtype=torch.float64)
    # choose g_x so that v.g_x = -a.g_v: g_x = -(a.g_v) v / |v|^2
    gx = -((a_true[:, None, :] * gv).sum(-1) / (v * v).sum(-1))[..., None] * v
    np.testing.assert_allclose(solve_accelerations(gx, gv, v).numpy(), a_true.numpy(), rtol=1e-10)


def test_enclosed_mass_and_radii_consistent():
    for m in MODELS:
        r = m.mass_radius(np.array([0.1, 0.5, 0.9]))
        np.testing.assert_allclose(m.enclosed_mass(r) / m.mass, [0.1, 0.5, 0.9], rtol=1e-12)
        # density integrates to the enclosed mass
        rr = np.linspace(1e-4, r[1], 20001)
        dens = m.density(np.column_stack([rr, 0 * rr, 0 * rr]))
        assert np.trapezoid(4 * math.pi * rr**2 * dens, rr) == pytest.approx(0.5 * m.mass, rel=2e-3)


def test_bad_shapes_and_parameters():
    m = MODELS[0]
    with pytest.raises(InputError, match="shape"):
        accelerations_at(m.log_df, torch.zeros(4, 2), torch.zeros(4, 10, 3))
    with pytest.raises(InputError, match="at least 3"):
        accelerations_at(m.log_df, torch.ones(4, 3), torch.ones(4, 2, 3))
    with pytest.raises(ConfigError, match="mass"):
        HernquistSphere(mass=-1.0)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: type(m).__name__)
def test_df_integrates_to_density(model):
    x = np.array([[0.3 * model.a, 0.0, 0.0], [0.0, 2 * model.a, model.a]])
    for xi in x:
        vesc = math.sqrt(-2 * model.potential(xi[None])[0])
        s = np.linspace(0, vesc, 20001)[1:-1]
        v = np.column_stack([s, 0 * s, 0 * s])
        f = np.exp(model.log_df(torch.as_tensor(np.repeat(xi[None], s.size, 0)), torch.as_tensor(v)).numpy())
        assert np.trapezoid(4 * math.pi * s**2 * f, s) == pytest.approx(model.density(xi[None])[0], rel=1e-3)
