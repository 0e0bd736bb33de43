"""Ball-averaged densities, ensemble combination, the profile and velocity maps, and the disk mock (no long training)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("galpy")

from excess.astro.dynamics.analytic import HernquistSphere  # noqa: E402
from excess.astro.dynamics.boltzmann import ICOSAHEDRON, ball_divergence, ball_stencil  # noqa: E402
from excess.astro.dynamics.estimate import estimate_field  # noqa: E402
from excess.astro.dynamics.mocks import disk_mock, truth_from_spec  # noqa: E402
from excess.astro.dynamics.model import PhaseSpaceFlow, _fit_dehnen, _fit_dispersion_profile  # noqa: E402
from excess.errors import ConfigError  # noqa: E402


def test_ball_divergence_exact_for_quadratic_fields():
    rng = np.random.default_rng(0)
    assert ICOSAHEDRON.shape == (12, 3)
    np.testing.assert_allclose(np.linalg.norm(ICOSAHEDRON, axis=1), 1.0)
    A, B = rng.normal(size=(3, 3)), rng.normal(size=(3, 3, 3))

    def field(x):  # a_i = A_ij x_j + B_ijk x_j x_k: div a = tr A + (B_iik + B_iki) x_k, linear in x
        return x @ A.T + np.einsum("ijk,...j,...k->...i", B, x, x)

    x0 = rng.normal(size=(5, 3))
    h = np.array([0.1, 0.5, 1.0, 2.0, 3.0])
    div = ball_divergence(field(ball_stencil(x0, h)), h)
    exact = np.trace(A) + (np.einsum("iik->k", B) + np.einsum("iki->k", B)) @ x0.T
    np.testing.assert_allclose(div, exact, rtol=1e-10)


class _AnalyticEnsemble:
    """The interface estimate_field uses, on an exact isotropic Hernquist DF (members = slightly different velocity sets)."""

    device = "cpu"

    def __init__(self, sphere, members=2):
        self.sphere, self.n_members_ = sphere, members

    def log_f_fn(self, member=0):
        return self.sphere.log_df

    def sample_velocities(self, x, n, member=0, random_state=None):
        rng = np.random.default_rng(random_state)
        vesc = np.sqrt(-2 * self.sphere.potential(x))
        d = rng.normal(size=(x.shape[0], n, 3))
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        return d * (0.8 * vesc[:, None] * rng.uniform(0.1, 1, (x.shape[0], n)) ** (1 / 3))[..., None]


@pytest.mark.parametrize("combine", ["gradients", "accelerations"])
def test_estimate_field_on_exact_df(combine):
    s = HernquistSphere(mass=1e12, a=10.0)
    model = _AnalyticEnsemble(s)
    x = np.array([[10.0, 0, 0], [0, 20.0, 5.0], [-30.0, 3.0, 40.0]])
    r = np.linalg.norm(x, axis=1)
    est = estimate_field(model, x, n_velocities=40, density=True, density_method="ball", ball_radius=0.05 * r,
                         combine=combine, random_state=0)
    np.testing.assert_allclose(est.acc, s.acceleration(x), rtol=1e-8, atol=1e-8)
    # the ball average of rho differs from the point value by ~ h^2 lap(rho) / (10 rho) ~ 0.3 %
    np.testing.assert_allclose(est.rho, s.density(x), rtol=5e-3)
    assert est.rho_members.shape == (2, 3) and (est.acc_combined is not None) == (combine == "gradients")
    auto = estimate_field(model, x, n_velocities=40, density=True, density_method="autograd", combine=combine,
                          random_state=0)
    np.testing.assert_allclose(auto.rho, s.density(x), rtol=1e-6)
    with pytest.raises(ConfigError, match="ball_radius"):
        estimate_field(model, x, n_velocities=40, density_method="ball")
    with pytest.raises(ConfigError, match="combine"):
        estimate_field(model, x, combine="median")


def test_profile_map_and_velocity_scale(tmp_path):
    s = HernquistSphere(mass=1e12, a=10.0)
    rng = np.random.default_rng(1)
    r = s.mass_radius(rng.uniform(0.0, 0.995, 4000))
    d = rng.normal(size=(4000, 3))
    x = d / np.linalg.norm(d, axis=1, keepdims=True) * r[:, None]
    sc, k = _fit_dehnen(r)
    assert abs(sc / 10.0 - 1) < 0.1 and abs(k - 2.0) < 0.1  # Hernquist = Dehnen gamma = 1
    sigma = 300.0 / (1 + r / 10.0) ** 0.5  # velocities whose dispersion falls with radius
    v = rng.normal(size=(4000, 3)) * sigma[:, None]
    m = PhaseSpaceFlow(n_members=1, transforms=1, hidden=(8,), epochs=1, batch_size=512, radial_scale="profile",
                       velocity_scale="auto", random_state=0, device="cpu").fit(x, v)
    # the map's log-Jacobian is the log-determinant of its Jacobian
    xt = torch.as_tensor(x[:4])
    _, logdet = m._compress(xt)
    jac = [torch.autograd.functional.jacobian(lambda z: m._compress(z[None])[0][0], xt[i]) for i in range(4)]
    np.testing.assert_allclose(logdet.numpy(), [torch.logdet(j).item() for j in jac], rtol=1e-8)
    np.testing.assert_allclose(m._expand_np(m._compress_np(x[:50])), x[:50], rtol=1e-6)
    # the fitted dispersion profile follows sigma(r) within the noise of 30 bins
    ls = m._velocity_log_scale(torch.as_tensor(x)).numpy()
    inner = (r > np.quantile(r, 0.1)) & (r < np.quantile(r, 0.9))
    assert np.median(np.abs(np.exp(ls[inner]) / sigma[inner] - 1)) < 0.1
    vs = m.sample_velocities(x[:3], 2000, random_state=0)
    np.testing.assert_allclose(vs.std(axis=(1, 2)) / sigma[:3], 1.0, atol=0.35)  # one epoch: loose
    back = PhaseSpaceFlow.load(m.save(tmp_path / "m"))
    np.testing.assert_allclose(back.log_prob(x[:10], v[:10]), m.log_prob(x[:10], v[:10]), rtol=1e-6)
    with pytest.raises(ConfigError, match="velocity_scale"):
        PhaseSpaceFlow(epochs=1, velocity_scale="fast").fit(x, v)


def test_dispersion_profile_degree_by_bic():
    rng = np.random.default_rng(4)
    r = np.exp(rng.uniform(np.log(0.1), np.log(1000.0), 30000))
    d = rng.normal(size=(r.size, 3))
    x = d / np.linalg.norm(d, axis=1, keepdims=True) * r[:, None]
    u = np.log(r)
    # a power law (log sigma^2 linear in log r): BIC keeps the degree low, the slope is right
    v = rng.normal(size=(r.size, 3)) * (200.0 * r**-0.25)[:, None]
    coef, _ = _fit_dispersion_profile(x, v, degree="bic")
    assert len(coef) - 1 <= 2 and abs(np.polyval(np.polyder(coef), 1.0) + 0.5) < 0.03
    # a profile that rises then falls over 4 decades (Hernquist-like): the chosen degree follows its slope
    # d log sigma^2 / d log r = 1 - 2 r / (1 + r) within 0.05, where a cubic misses by more
    ls_true = np.log(r / (1 + r) ** 2)
    v = rng.normal(size=(r.size, 3)) * np.exp(0.5 * ls_true)[:, None]
    inner = np.linspace(np.quantile(u, 0.1), np.quantile(u, 0.9), 50)
    slope_true = 1 - 2 * np.exp(inner) / (1 + np.exp(inner))
    errs = {}
    for deg in ("bic", 3):
        coef, _ = _fit_dispersion_profile(x, v, degree=deg)
        errs[deg] = (len(coef) - 1, np.max(np.abs(np.polyval(np.polyder(coef), inner) - slope_true)))
    assert errs["bic"][0] > 3 and errs["bic"][1] < 0.05 < errs[3][1]
    # in the model: None (default) is BIC, an integer fixes the degree, anything else is refused
    m = PhaseSpaceFlow(n_members=1, transforms=1, hidden=(8,), epochs=1, batch_size=4096, velocity_scale="auto",
                       velocity_degree=3, random_state=0, device="cpu").fit(x[:2000], v[:2000])
    assert len(m.velocity_coef_) == 4
    with pytest.raises(ConfigError, match="velocity_degree"):
        PhaseSpaceFlow(epochs=1, velocity_scale="auto", velocity_degree=0).fit(x[:100], v[:100])


def test_dispersion_profile_clamped_to_the_bins():
    # a high degree over radii with a far tail (as 1,000,000 Hernquist stars reach 13 Mpc): the profile is held
    # constant beyond the outermost bins' mean log r, so the scaled velocities of the farthest stars stay finite
    rng = np.random.default_rng(5)
    r = np.concatenate([np.exp(rng.uniform(np.log(0.1), np.log(1000.0), 30000)), [1e5, 1e6, 1e7]])
    d = rng.normal(size=(r.size, 3))
    x = d / np.linalg.norm(d, axis=1, keepdims=True) * r[:, None]
    v = rng.normal(size=(r.size, 3)) * np.sqrt(r / (1 + r) ** 2)[:, None]
    coef, (lo, hi) = _fit_dispersion_profile(x, v, degree=8)
    u = np.log(r)
    assert u.min() < lo < np.quantile(u, 1 / 30) and np.quantile(u, 29 / 30) < hi < u.max()
    m = PhaseSpaceFlow(velocity_scale="auto")
    m.velocity_coef_, m.velocity_range_ = coef, (lo, hi)
    vs = m._scaled_velocities_np(x, v)
    assert np.all(np.isfinite(vs)) and np.abs(vs).max() < 10
    s = m._scaled_velocities_np(x[-3:], np.ones((3, 3)))  # 1 / s(r): the same at the three farthest stars
    np.testing.assert_allclose(s, np.broadcast_to(s[0], s.shape), rtol=1e-12)


def test_disk_mock_sanity():
    m = disk_mock(300, batch=3000, random_state=2)
    assert m.x.shape == m.v.shape == (300, 3) and m.spec["kind"] == "disk"
    assert np.all(np.linalg.norm(m.x - [8.0, 0, 0], axis=1) < 2.0)
    assert m.spec["max_acceptance_ratio"] <= 1.0
    R = np.hypot(m.x[:, 0], m.x[:, 1])
    v_phi = (m.x[:, 0] * m.v[:, 1] - m.x[:, 1] * m.v[:, 0]) / R
    assert 180 < np.mean(v_phi) < 215 and 12 < np.std(m.v[:, 2]) < 30 and 0.15 < np.std(m.x[:, 2]) < 0.6
    np.testing.assert_array_equal(disk_mock(20, batch=2000, random_state=5).x, disk_mock(20, batch=2000, random_state=5).x)
    truth = truth_from_spec(m.spec)
    a = truth.acceleration(np.array([[8.0, 0, 0.5], [8.0, 0, -0.5], [8.0, 0, 0]]))
    assert a[0, 2] < 0 < a[1, 2] and abs(a[2, 2]) < 1e-8 and a[2, 0] < 0  # toward the plane and the centre
    assert abs(a[2, 0] + 220.0**2 / 8.0) < 0.01 * 220.0**2 / 8.0  # v_c = 220 km/s at R0 = 8 kpc
    rho = truth.density(np.array([[8.0, 0, 0]]))[0] * 1e-9
    assert 0.08 < rho < 0.12  # MWPotential2014: ~0.10 Msun/pc^3 in the plane at R0


def test_trim_velocities_drops_the_tails():
    from excess.astro.dynamics.estimate import trim_velocities

    rng = np.random.default_rng(3)
    v = rng.normal(size=(2, 200, 3)) * [10.0, 20.0, 30.0] + [0.0, 200.0, 0.0]
    v[0, 7] = [500.0, 200.0, 0.0]  # an outlier
    t = trim_velocities(v, 0.1)
    assert t.shape == (2, 180, 3)
    assert not np.any(np.all(t[0] == [500.0, 200.0, 0.0], axis=1))
    assert trim_velocities(v, 0.0) is v
    # the exact solution does not depend on which velocities are used
    s = HernquistSphere(mass=1e12, a=10.0)
    x = np.array([[10.0, 0, 0], [0, 20.0, 5.0]])
    est = estimate_field(_AnalyticEnsemble(s), x, n_velocities=40, density=False, trim=0.2, random_state=0)
    np.testing.assert_allclose(est.acc, s.acceleration(x), rtol=1e-8, atol=1e-8)
