"""The flow model of f(x, v), the ConditionalFlow additions it uses, and the galpy mocks (short trainings)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("galpy")

from excess.astro.dynamics.analytic import HernquistSphere  # noqa: E402
from excess.astro.dynamics.estimate import estimate_field  # noqa: E402
from excess.astro.dynamics.mocks import hernquist_mock, load_mock, save_mock  # noqa: E402
from excess.astro.dynamics.model import PhaseSpaceFlow  # noqa: E402
from excess.errors import ConfigError, InputError, NotFittedError  # noqa: E402
from excess.nn.flows import ConditionalFlow  # noqa: E402


@pytest.fixture(scope="module")
def mock():
    return hernquist_mock(3000, mass=1e12, a=10.0, random_state=3)


@pytest.fixture(scope="module")
def fitted(mock):
    torch.set_num_threads(1)
    return PhaseSpaceFlow(n_members=2, transforms=2, hidden=(32, 32), epochs=10, batch_size=128, radial_scale="auto",
                          random_state=0, device="cpu").fit(mock.x, mock.v)


def test_mock_truth_matches_analytic_and_is_seeded(mock):
    h = HernquistSphere(mass=1e12, a=10.0)
    np.testing.assert_allclose(mock.truth.acceleration(mock.x[:50]), h.acceleration(mock.x[:50]), rtol=1e-6)
    np.testing.assert_allclose(mock.truth.density(mock.x[:50]), h.density(mock.x[:50]), rtol=1e-6)
    r = np.linalg.norm(mock.x, axis=1)
    assert abs(np.mean(r < h.mass_radius(0.5)) - 0.5) < 0.04  # stars trace the mass
    state = np.random.get_state()[1].copy()
    again = hernquist_mock(3000, mass=1e12, a=10.0, random_state=3)
    np.testing.assert_array_equal(again.x, mock.x)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # numpy's global state untouched
    assert not np.array_equal(hernquist_mock(100, random_state=4).x, again.x[:100])


def test_mock_roundtrip_and_bad_files(mock, tmp_path):
    p = save_mock(mock, tmp_path / "m.h5")
    back = load_mock(p)
    np.testing.assert_array_equal(back.v, mock.v)
    assert back.spec == mock.spec
    import h5py

    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["x"] = mock.x
    with pytest.raises(InputError, match="missing datasets v"):
        load_mock(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "nan.h5", "w") as f:
        x = mock.x.copy()
        x[7, 1] = np.nan
        f["x"], f["v"] = x, mock.v
    with pytest.raises(InputError, match="row 7"):
        load_mock(tmp_path / "nan.h5")


def test_conditional_flow_torch_log_prob_and_unconditional():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2)) * [1.0, 3.0]
    c = X[:, :1] + rng.normal(size=(400, 1))
    cond = ConditionalFlow(kind="maf", transforms=2, hidden=(16,), epochs=2, activation="silu",
                           preprocessing="standard", random_state=0, device="cpu").fit(X, c)
    xt = torch.as_tensor(X[:5], dtype=torch.float64).requires_grad_(True)
    ct = torch.as_tensor(c[:5], dtype=torch.float64).requires_grad_(True)
    lp = cond.log_prob_torch(xt, ct)
    np.testing.assert_allclose(lp.detach().numpy(), cond.log_prob(X[:5], c[:5]), rtol=1e-5, atol=1e-5)
    gx, gc = torch.autograd.grad(lp.sum(), (xt, ct))
    h = 1e-3  # central differences in float32 flows
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        fd = (cond.log_prob(X[:5] + e, c[:5]) - cond.log_prob(X[:5] - e, c[:5])) / (2 * h)
        np.testing.assert_allclose(gx[:, j].numpy(), fd, atol=2e-2 * np.abs(fd).max() + 1e-3)
    assert torch.all(gc.abs() > 0)
    unc = ConditionalFlow(kind="maf", transforms=2, hidden=(16,), epochs=2, preprocessing="standard",
                          random_state=0, device="cpu").fit(X, None)
    assert unc.n_context_ == 0
    np.testing.assert_allclose(unc.log_prob_torch(torch.as_tensor(X[:5])).detach().numpy(),
                               unc.log_prob(X[:5], None), rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="activation"):
        ConditionalFlow(activation="softsign", epochs=1, device="cpu").fit(X, c)
    with pytest.raises(InputError, match="context"):
        cond.log_prob_torch(xt, None)


def test_default_activation_is_zuko_default():
    # the 'relu' default builds exactly zuko's default flow (same modules, same parameter count)
    import zuko

    from excess.nn.flows import build_zuko_flow

    a = build_zuko_flow("maf", 3, 2, 2, (8,))
    b = zuko.flows.MAF(3, 2, transforms=2, hidden_features=(8,))
    assert repr(a) == repr(b)


def test_phase_space_flow(fitted, mock, tmp_path):
    assert fitted.n_members_ == 2 and fitted.radial_scale_ > 0
    lp = fitted.log_prob(mock.x[:20], mock.v[:20])
    assert lp.shape == (20,) and np.all(np.isfinite(lp))
    # members differ (different seeds) but both are trained densities
    xt, vt = torch.as_tensor(mock.x[:20]), torch.as_tensor(mock.v[:20])
    l0, l1 = (fitted.log_f_torch(xt, vt, k).detach().numpy() for k in (0, 1))
    assert not np.allclose(l0, l1)
    # the radial compression's inverse
    y = fitted._compress_np(mock.x[:50])
    np.testing.assert_allclose(fitted._expand_np(y), mock.x[:50], rtol=1e-9, atol=1e-9)
    # f(x, v) is the density of both: stars are much likelier than their velocities reversed far out of scale
    assert np.mean(fitted.log_prob(mock.x[:200], mock.v[:200])) > np.mean(fitted.log_prob(mock.x[:200], 3 * mock.v[:200]))
    v = fitted.sample_velocities(mock.x[:4], 7, member=1, random_state=0)
    assert v.shape == (4, 7, 3)
    np.testing.assert_array_equal(v, fitted.sample_velocities(mock.x[:4], 7, member=1, random_state=0))
    xs, vs = fitted.sample(500, random_state=1)
    assert xs.shape == vs.shape == (500, 3)
    # sampled radii follow the data's within a loose tolerance after this short training
    r_data, r_s = np.median(np.linalg.norm(mock.x, axis=1)), np.median(np.linalg.norm(xs, axis=1))
    assert 0.5 < r_s / r_data < 2.0
    back = PhaseSpaceFlow.load(fitted.save(tmp_path / "model"))
    np.testing.assert_allclose(back.log_prob(mock.x[:20], mock.v[:20]), lp, rtol=1e-6)


def test_field_estimate_shapes_and_direction(fitted, mock):
    h = HernquistSphere(mass=1e12, a=10.0)
    r = h.mass_radius(np.array([0.3, 0.5]))
    x = np.array([[r[0], 0, 0], [0, 0, r[1]]])
    est = estimate_field(fitted, x, n_velocities=50, random_state=0)
    assert est.acc_members.shape == (2, 2, 3) and est.rho_members.shape == (2, 2)
    assert np.all(np.isfinite(est.acc)) and np.all(est.acc_std >= 0)
    # even after 10 short epochs on 3000 stars, gravity points inward
    assert np.all(np.sum(est.acc * x, axis=1) < 0)
    d = est.to_dict()
    assert set(d) >= {"acc", "acc_std", "rho", "rho_std"}
    est2 = estimate_field(fitted, x, n_velocities=50, density=False, random_state=0)
    np.testing.assert_allclose(est2.acc, est.acc, rtol=1e-5)
    assert est2.rho is None


def test_bad_inputs(mock):
    with pytest.raises(NotFittedError):
        PhaseSpaceFlow().log_prob(mock.x[:2], mock.v[:2])
    with pytest.raises(InputError, match="shape"):
        PhaseSpaceFlow(epochs=1).fit(mock.x[:, :2], mock.v)
    x = mock.x.copy()
    x[3] = np.nan
    with pytest.raises(InputError, match="row 3"):
        PhaseSpaceFlow(epochs=1).fit(x, mock.v)
    with pytest.raises(ConfigError, match="quantile"):
        PhaseSpaceFlow(epochs=1, preprocessing="quantile").fit(mock.x, mock.v)
    with pytest.raises(ConfigError, match="radial_scale"):
        PhaseSpaceFlow(epochs=1, radial_scale="big").fit(mock.x, mock.v)


def test_vertical_map_roundtrip_jacobian_and_fit(tmp_path):
    from excess.astro.dynamics.model import _fit_vertical_profile, vertical_map_torch, vertical_unmap_np

    zc, z0 = 0.02, 0.15
    z = torch.tensor([-40.0, -1.0, -0.3, 0.0, 0.02, 0.3, 1.0, 40.0], dtype=torch.float64, requires_grad=True)
    u, logdet = vertical_map_torch(z, zc, z0)
    np.testing.assert_allclose(vertical_unmap_np(u.detach().numpy(), zc, z0), z.detach().numpy(), rtol=1e-9, atol=1e-9)
    (du,) = torch.autograd.grad(u.sum(), z, create_graph=True)
    np.testing.assert_allclose(logdet.detach().numpy(), np.log(du.detach().numpy()), rtol=1e-7, atol=1e-9)
    assert abs(u[4].item()) < 1e-12 and np.all(np.diff(u.detach().numpy()) > 0)
    (dl,) = torch.autograd.grad(logdet.sum(), z)  # the Boltzmann solve differentiates the log-Jacobian
    assert np.all(np.isfinite(dl.numpy())) and abs(dl[3].item()) > 0  # smooth through the plane (no where/abs kink)
    # sech^2 heights map to a standard normal coordinate; the fit recovers (zc, z0)
    rng = np.random.default_rng(0)
    q = rng.uniform(size=20000)
    zs = zc + z0 * np.log(q / (1 - q))
    fc, f0 = _fit_vertical_profile(zs)
    assert abs(fc - zc) < 0.01 and abs(f0 / z0 - 1) < 0.03
    us = vertical_map_torch(torch.as_tensor(zs), fc, f0)[0].numpy()
    assert abs(us.mean()) < 0.03 and abs(us.std() - 1) < 0.03
    # in the model: fitted, saved and loaded; positions round-trip through the map
    x = np.column_stack([rng.normal(8, 1, 400), rng.normal(0, 1, 400), zs[:400]])
    v = rng.normal(0, 30, (400, 3))
    m = PhaseSpaceFlow(n_members=1, transforms=1, hidden=(8,), epochs=1, batch_size=128, vertical_scale="profile",
                       velocity_kind="nsf", random_state=0, device="cpu").fit(x, v)
    assert m.members_[0][0].kind == "maf" and m.members_[0][1].kind == "nsf"
    np.testing.assert_allclose(m._expand_np(m._compress_np(x)), x, atol=1e-9)
    back = PhaseSpaceFlow.load(m.save(tmp_path / "vm"))
    assert back.vertical_profile_ == pytest.approx(m.vertical_profile_)
    np.testing.assert_allclose(back.log_prob(x[:5], v[:5]), m.log_prob(x[:5], v[:5]), rtol=1e-6)
    with pytest.raises(ConfigError, match="radial_scale=None"):
        PhaseSpaceFlow(vertical_scale="profile", radial_scale="auto").fit(x, v)
    with pytest.raises(ConfigError, match="vertical_scale"):
        PhaseSpaceFlow(vertical_scale="sech").fit(x, v)


def test_bootstrap_members_see_different_resamples(mock):
    x, v = mock.x[:300], mock.v[:300]
    kw = dict(n_members=2, transforms=1, hidden=(8,), epochs=1, batch_size=128, radial_scale="auto", random_state=3,
              device="cpu")
    plain = PhaseSpaceFlow(**kw).fit(x, v)
    boot = PhaseSpaceFlow(resample="bootstrap", **kw).fit(x, v)
    again = PhaseSpaceFlow(resample="bootstrap", **kw).fit(x, v)
    lp = [m.members_[0][0].log_prob(m._compress_np(x[:20]), None) for m in (plain, boot, again)]
    assert not np.allclose(lp[0], lp[1])  # same seeds, other stars' weights
    np.testing.assert_allclose(lp[1], lp[2])  # reproducible from random_state
    with pytest.raises(ConfigError, match="resample"):
        PhaseSpaceFlow(resample="jackknife", epochs=1).fit(x, v)
