"""The smooth-potential ("Deep Potential") solver: it recovers a known potential from an analytic equilibrium's
exact ``grad log f``, and refuses bad input with a clear error."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from excess.astro.dynamics.analytic import PlummerSphere  # noqa: E402
from excess.astro.dynamics.boltzmann import log_f_gradients  # noqa: E402
from excess.astro.dynamics.potential import BoltzmannPotential, estimate_field_potential  # noqa: E402
from excess.errors import ConfigError, InputError, NotFittedError  # noqa: E402


def plummer_stars(n, sph, rng):
    """Positions (inverse cumulative mass) and velocities (rejection sampling of f ~ (-E)^(7/2)) of a Plummer sphere."""
    u = rng.uniform(0.0, 0.999, n)
    r = sph.a / np.sqrt(u ** (-2 / 3) - 1)
    d = rng.normal(size=(n, 3))
    x = d / np.linalg.norm(d, axis=1, keepdims=True) * r[:, None]
    q = np.empty(0)
    while q.size < n:  # v / v_esc has density ~ q^2 (1 - q^2)^(7/2), below 0.1 on [0, 1]
        c, y = rng.uniform(0, 1, 4 * n), rng.uniform(0, 0.1, 4 * n)
        q = np.concatenate([q, c[y < c**2 * (1 - c**2) ** 3.5]])
    d = rng.normal(size=(n, 3))
    v = d / np.linalg.norm(d, axis=1, keepdims=True) * (q[:n] * np.sqrt(-2 * sph.potential(x)))[:, None]
    return x, v


@pytest.fixture(scope="module")
def plummer_pairs():
    sph = PlummerSphere(1e11, 5.0)
    x, v = plummer_stars(2000, sph, np.random.default_rng(0))
    gx, gv = log_f_gradients(sph.log_df, torch.as_tensor(x), torch.as_tensor(v)[:, None, :])
    return sph, x, v, gx[:, 0].numpy(), gv[:, 0].numpy()


def test_recovers_plummer_potential_from_exact_gradients(plummer_pairs):
    sph, x, v, gx, gv = plummer_pairs
    def log_map(X):  # a fixed radial compression of the positions, as the flows' (PhaseSpaceFlow radial_scale)
        r = torch.linalg.vector_norm(X, dim=-1).clamp_min(1e-9)
        return X * (sph.a * torch.log1p(r / sph.a) / r)[:, None]

    pot = BoltzmannPotential(hidden=(32, 32), epochs=60, batch_size=128, random_state=0, device="cpu")
    pot.fit(x, v, gx, gv, position_map=log_map)
    r = np.repeat(np.geomspace(*sph.mass_radius([0.1, 0.9]), 6), 2)
    d = np.random.default_rng(1).normal(size=(r.size, 3))
    q = d / np.linalg.norm(d, axis=1, keepdims=True) * r[:, None]
    est = estimate_field_potential([pot], q)
    a_true = sph.acceleration(q)
    err = np.linalg.norm(est.acc - a_true, axis=1) / np.linalg.norm(a_true, axis=1)
    assert np.median(err) < 0.05, err
    rho_err = est.rho / sph.density(q) - 1
    assert np.median(np.abs(rho_err)) < 0.3, rho_err
    # curl-free by construction, and the potential's gradient is the acceleration
    h = 1e-3
    dphi = (pot.potential(q + [h, 0, 0]) - pot.potential(q - [h, 0, 0])) / (2 * h)
    np.testing.assert_allclose(-dphi, est.acc[:, 0], rtol=1e-2, atol=1e-3 * np.abs(est.acc).max())


def test_bad_input(plummer_pairs):
    _, x, v, gx, gv = plummer_pairs
    bad = gx.copy()
    bad[7, 1] = np.nan
    with pytest.raises(InputError, match="grad_x log f: 1 rows with NaN.*row 7"):
        BoltzmannPotential(epochs=1).fit(x, v, bad, gv)
    with pytest.raises(InputError, match="grad_v log f has 10 rows"):
        BoltzmannPotential(epochs=1).fit(x, v, gx, gv[:10])
    with pytest.raises(InputError, match=r"velocities must have shape \(n, 3\)"):
        BoltzmannPotential(epochs=1).fit(x, v[:, :2], gx, gv)
    with pytest.raises(InputError, match="at least 20"):
        BoltzmannPotential(epochs=1).fit(x[:5], v[:5], gx[:5], gv[:5])
    with pytest.raises(InputError, match="velocities are all zero"):
        BoltzmannPotential(epochs=1).fit(x, 0 * v, gx, gv)
    with pytest.raises(ConfigError, match="piecewise linear"):
        BoltzmannPotential(activation="relu", epochs=1).fit(x, v, gx, gv)
    with pytest.raises(ConfigError, match="laplacian_penalty"):
        BoltzmannPotential(laplacian_penalty=-1.0, epochs=1).fit(x, v, gx, gv)
    with pytest.raises(NotFittedError):
        BoltzmannPotential().acceleration(x[:3])
    with pytest.raises(ConfigError, match="no potentials"):
        estimate_field_potential([], x[:3])
